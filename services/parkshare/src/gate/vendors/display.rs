//! What the LED board and the speaker behind a camera are sent with a decision.
//!
//! Vzenith cameras pass `serialData` through to their RS-485 ports (HTTP push protocol §2.6.2:
//! channel 0 the first port, channel 1 the second one or RS-232 — not a speaker) and speak
//! with their own voice command, `playserver_json_request` `ps_voice_play` (§2.6.5). What
//! the board on the port understands is a per-lane setting:
//!
//! - [`Protocol::Raw`]: the text as GBK bytes (boards that show whatever they receive);
//! - [`Protocol::LedBoard`]: the framed protocol of the LED/voice boards sold with these
//!   cameras, built by [`led_board_frame`] (header DA=0x00, VR=0x64, PN=0xFFFF, CMD=0x6E as a
//!   public parking adapter frames it; per-line mode, colour and GBK text; the voice prompt
//!   after 0x0A; CRC-16/MODBUS). The layout of the data part is our reading of that adapter:
//!   check it against the board's manual before a site goes live.
//!
//! With the raw protocol the prompt is said by the camera's own speaker; with the framed one,
//! by the board.

/// How a lane's display board takes its text: a gate's stored setting, so it lives with the
/// gate's row (`store::registry`).
pub use crate::store::registry::DisplayProtocol as Protocol;

/// The bytes for the board on serial channel 0: the display text, and with the framed
/// protocol the voice prompt too (the board speaks it).
pub fn board_bytes(protocol: Protocol, display: &str, voice: &str) -> Vec<u8> {
    match protocol {
        Protocol::Raw => encoding_rs::GBK.encode(display).0.into_owned(),
        Protocol::LedBoard => led_board_frame(display, voice),
    }
}

/// Whether the camera's own speaker is to say the prompt (`playserver_json_request`): with
/// the framed protocol the board on the serial port says it instead, never both.
pub fn camera_speaks(protocol: Protocol) -> bool {
    protocol == Protocol::Raw
}

// The frame of the LED/voice boards (as public parking integrations drive them): destination
// address, protocol version, packet number, command, data length, data, CRC16.
/// DA: the board's address; 0x00 is the board on the port.
const FRAME_ADDRESS: u8 = 0x00;
/// VR: the protocol version these boards speak.
const FRAME_VERSION: u8 = 0x64;
/// PN: packet number; 0xFFFF is a single packet, not part of a sequence.
const FRAME_PACKET: [u8; 2] = [0xFF, 0xFF];
/// CMD: show text lines now, with a voice prompt.
const FRAME_SHOW_WITH_VOICE: u8 = 0x6E;
/// Marks the voice prompt after the text lines.
const FRAME_VOICE: u8 = 0x0A;
/// Display mode of a line: shown at once, no scrolling.
const LINE_MODE_STATIC: u8 = 0x00;
/// Colour of a line: red, the colour every board has.
const LINE_COLOUR_RED: u8 = 0x01;
/// The boards sold with these cameras have at most four lines.
const LINES_MAX: usize = 4;
/// One length byte per line and per prompt.
const TEXT_BYTES_MAX: usize = 255;
/// The CRC the boards check, sent low byte first.
const FRAME_CRC: crc::Crc<u16> = crc::Crc::<u16>::new(&crc::CRC_16_MODBUS);

/// GBK bytes of `text`, cut at [`TEXT_BYTES_MAX`] on a character boundary.
fn gbk_limited(text: &str) -> Vec<u8> {
    let mut out = Vec::new();
    let mut buf = [0; 4];
    for c in text.chars() {
        let bytes = encoding_rs::GBK.encode(c.encode_utf8(&mut buf)).0;
        if out.len() + bytes.len() > TEXT_BYTES_MAX {
            break;
        }
        out.extend_from_slice(&bytes);
    }
    out
}

/// A frame showing `display` (one line per `\n`, at most [`LINES_MAX`]) and saying `voice`:
/// `DA VR PN(2) CMD DL DATA CRC16(2)`, where DATA is, per line, its number, mode, colour,
/// length and GBK text, then [`FRAME_VOICE`], the prompt's length and its GBK text.
pub fn led_board_frame(display: &str, voice: &str) -> Vec<u8> {
    let mut data = Vec::new();
    for (number, line) in display.lines().take(LINES_MAX).enumerate() {
        let text = gbk_limited(line);
        data.extend_from_slice(&[
            u8::try_from(number).unwrap_or(0),
            LINE_MODE_STATIC,
            LINE_COLOUR_RED,
            u8::try_from(text.len()).unwrap_or(u8::MAX),
        ]);
        data.extend_from_slice(&text);
    }
    if !voice.is_empty() {
        let text = gbk_limited(voice);
        data.push(FRAME_VOICE);
        data.push(u8::try_from(text.len()).unwrap_or(u8::MAX));
        data.extend_from_slice(&text);
    }
    // Four lines of 255 bytes and a prompt would not fit one length byte: cut to what does.
    data.truncate(usize::from(u8::MAX));
    let mut frame = vec![FRAME_ADDRESS, FRAME_VERSION];
    frame.extend_from_slice(&FRAME_PACKET);
    frame.push(FRAME_SHOW_WITH_VOICE);
    frame.push(u8::try_from(data.len()).unwrap_or(u8::MAX));
    frame.extend_from_slice(&data);
    frame.extend_from_slice(&FRAME_CRC.checksum(&frame).to_le_bytes());
    frame
}

/// Checks a frame's CRC and returns its data: the inverse of [`led_board_frame`], for tests
/// and the camera simulator.
pub fn led_board_data(frame: &[u8]) -> Option<&[u8]> {
    let (body, crc) = frame.split_at_checked(frame.len().checked_sub(2)?)?;
    let expected = FRAME_CRC.checksum(body).to_le_bytes();
    if crc != expected || body.len() < 6 || body[..5] != [0x00, 0x64, 0xFF, 0xFF, 0x6E] {
        return None;
    }
    let data = &body[6..];
    (data.len() == usize::from(body[5])).then_some(data)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_board_frame_carries_its_lines_and_prompt_under_a_crc() {
        let frame = led_board_frame("京A12345\n请缴费9.00元", "请缴费9.00元");
        assert_eq!(&frame[..5], &[0x00, 0x64, 0xFF, 0xFF, 0x6E]);
        let data = led_board_data(&frame).unwrap_or_default();
        let plate = encoding_rs::GBK.encode("京A12345").0;
        assert_eq!(&data[..4], &[0, LINE_MODE_STATIC, LINE_COLOUR_RED, 8]);
        assert_eq!(&data[4..12], &plate[..]);
        assert_eq!(data[12], 1, "second line");
        let fee = encoding_rs::GBK.encode("请缴费9.00元").0;
        let voice_at = 16 + fee.len();
        assert_eq!(data[voice_at], FRAME_VOICE);
        assert_eq!(usize::from(data[voice_at + 1]), fee.len());
        // One byte changed anywhere: the board would refuse it, and so do we.
        let mut broken = frame.clone();
        broken[8] ^= 0x01;
        assert!(led_board_data(&broken).is_none());
        // CRC-16/MODBUS of the standard check string, so the variant is pinned.
        assert_eq!(FRAME_CRC.checksum(b"123456789"), 0x4B37);
    }

    #[test]
    fn long_text_is_cut_to_what_the_board_takes() {
        let long = "停".repeat(400);
        let frame = led_board_frame(&long, &long);
        assert!(led_board_data(&frame).is_some());
        assert!(frame.len() <= 6 + 255 + 2);
    }
}
