//! What the LED board and the speaker behind a camera are sent with a decision.
//!
//! Vzenith cameras pass `serialData` through to their RS-485 ports (HTTP push protocol §2.6.2:
//! channel 0 the first port, channel 1 the second one or RS-232 — not a speaker) and speak
//! with their own voice command, `playserver_json_request` `ps_voice_play` (§2.6.5). What
//! the board on the port understands is a per-lane setting:
//!
//! - [`Protocol::Raw`]: the text as GBK bytes (boards that show whatever they receive);
//! - [`Protocol::LedBoard`]: the framed protocol of the LED/voice boards sold with these
//!   cameras, built by [`led_board_frame`].

use serde::{Deserialize, Serialize};

/// How a lane's display board takes its text.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Protocol {
    #[default]
    Raw,
    LedBoard,
}

impl Protocol {
    pub fn parse(text: &str) -> Option<Protocol> {
        match text.trim() {
            "raw" => Some(Protocol::Raw),
            "led_board" => Some(Protocol::LedBoard),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Raw => "raw",
            Protocol::LedBoard => "led_board",
        }
    }
}

/// The bytes for the board on serial channel 0.
pub fn board_bytes(protocol: Protocol, text: &str) -> Vec<u8> {
    match protocol {
        Protocol::Raw => encoding_rs::GBK.encode(text).0.into_owned(),
        Protocol::LedBoard => led_board_frame(text),
    }
}

/// Placeholder until the framed protocol lands.
pub fn led_board_frame(text: &str) -> Vec<u8> {
    encoding_rs::GBK.encode(text).0.into_owned()
}
