//! Vzenith/臻识 IVS (and compatible) cameras: the HTTP push of plate results, as the vendor's
//! "HTTP 推送协议" document describes it (sections cited below as §).
//!
//! - **Plate results** (§2.1.1): JSON (UTF-8, or GBK when so configured)
//!   `{"AlarmInfoPlate": {"serialno", "ipaddr", "result": {"PlateResult": {"license",
//!   "colorType", "plateid", "isoffline", "timeStamp": {"Timeval": {"sec"}}, "imageFile"...}}}}`.
//!   `plateid` is the camera's record number, echoed in every reply; a push is known again by
//!   its plateid, capture second and plate together, since the counter restarts after a
//!   reset. An offline record without `plateid` is known by its device, time and plate; one
//!   that cannot be read at all is passed over. The reply opens the barrier with
//!   `Response_AlarmInfoPlate.info` `"ok"` (§2.6.1) and echoes `plateid` (§2.1.2 item 4); it
//!   carries the LED text as `serialData` (§2.6.2) and the voice prompt as the camera's own
//!   `playserver_json_request` (§2.6.5) — see [`super::display`].
//! - **Offline records** (§2.1.2 断线重传): records the camera kept while it could not reach
//!   us come with `isoffline` 1, up to 9,000 of them. Each is recorded (never opening) and
//!   answered `ContinuePushOffline {"plateid", "continue": 1}`: only that makes the camera
//!   send the next one.
//! - **Heartbeats** (§2.5.1 普通心跳, §2.5.2 comet 轮询): `multipart/form-data` with the fields
//!   `device_name, ipaddr, port, user_name, pass_wd, serialno, channel_num`, every 5 s (30 s
//!   without offline checking). In comet mode the camera sends the next one as soon as the
//!   previous is answered, and acts on the reply: a staff member's manual open goes out as
//!   `info: "ok"`. Such a heartbeat is held up to the documented interval
//!   ([`crate::gate::lanes::wait_for_open`]), and answered at once when an open is queued.
//!   Older firmware's JSON heartbeat `{"heartbeat": {"serialno"}}` is read too.

use crate::input::AnyJson;
use actix_web::http::StatusCode;
use actix_web::{post, web, HttpRequest, HttpResponse};
use base64::Engine;
use chrono::{DateTime, Utc};
use parkshare_domain::plate::PlateColour;
use serde_json::{json, Value};

use super::{display, fallback_id, handle, is_multipart, json, multipart_parts, plate_text, text};
use super::{Echo, Endpoint};
use super::{Push, Read, Reply, Vendor};
use crate::state::AppState;
use crate::store::registry::GateContext;

pub struct Vzenith;

/// The plate colour codes of `colorType`.
fn colour(code: i64) -> Option<PlateColour> {
    match code {
        1 => Some(PlateColour::Blue),
        2 => Some(PlateColour::Yellow),
        3 => Some(PlateColour::White),
        4 => Some(PlateColour::Black),
        5 => Some(PlateColour::Green),
        6 => Some(PlateColour::YellowGreen),
        _ => None,
    }
}

/// An integer the camera may send as a number or a string.
fn int(value: &Value) -> Option<i64> {
    value
        .as_i64()
        .or_else(|| value.as_str().and_then(|s| s.trim().parse().ok()))
}

fn string(value: &Value) -> Option<String> {
    match value {
        Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_owned()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

impl Vendor for Vzenith {
    const NAME: &'static str = "vzenith";

    fn parse(body: &[u8], content_type: &str, _gate: &GateContext) -> Result<Push, String> {
        if is_multipart(content_type) {
            return heartbeat_form(body, content_type);
        }
        let body = json(body)?;
        if let Some(heartbeat) = body.get("heartbeat") {
            let serial = string(&heartbeat["serialno"]).or_else(|| string(&body["serialno"]));
            return Ok(Push::Heartbeat { serial });
        }
        let alarm = body
            .get("AlarmInfoPlate")
            .ok_or("neither AlarmInfoPlate nor heartbeat")?;
        let serial = string(&alarm["serialno"]);
        let result = &alarm["result"]["PlateResult"];
        let plateid = string(&result["plateid"]);
        let offline = int(&result["isoffline"]).unwrap_or(0) != 0;
        match read(result) {
            Ok((license, sec, captured_at)) => Ok(Push::Read(Read {
                // The same push resent repeats all three; a plateid the camera's counter
                // reuses after a reset comes with another time (and plate).
                device_event_id: match &plateid {
                    Some(id) => format!("{id}/{sec}/{}", license.trim()),
                    None => fallback_id(serial.as_deref(), &sec.to_string(), license),
                },
                record_id: plateid,
                serial,
                plate: plate_text(license),
                colour: int(&result["colorType"]).and_then(colour),
                captured_at,
                offline,
            })),
            // An offline record that cannot be read is passed over: refusing it would make
            // the camera resend it for ever, and its backlog behind it would never come.
            Err(reason) if offline => Ok(Push::PassedOver {
                serial,
                record_id: plateid,
                reason: reason.into(),
            }),
            Err(reason) => Err(reason.into()),
        }
    }

    fn reply(reply: &Reply, echo: &Echo) -> HttpResponse {
        let plateid = echo.record_id.as_deref().map(record_id);
        let (status, body) = match reply {
            Reply::Decided {
                open,
                display,
                voice,
                amount_due,
            } => {
                let board = display::board_bytes(echo.display, display, voice);
                let mut answer = json!({
                    "info": if *open { "ok" } else { "no" },
                    "content": display,
                    "is_pay": if *open { "true" } else { "false" },
                    // Ours, for lane software reading the reply; the camera ignores it.
                    "amount_due": amount_due,
                    "serialData": [serial_data(0, &board)],
                });
                if display::camera_speaks(echo.display) {
                    answer["playserver_json_request"] = voice_request(voice);
                }
                if let Some(plateid) = plateid {
                    answer["plateid"] = plateid;
                }
                (StatusCode::OK, json!({ "Response_AlarmInfoPlate": answer }))
            }
            Reply::Recorded => (
                StatusCode::OK,
                json!({"Response_AlarmInfoPlate": {"ContinuePushOffline": {
                    "plateid": plateid.unwrap_or(Value::Null),
                    "continue": 1,
                }}}),
            ),
            Reply::Heartbeat { open } => (
                StatusCode::OK,
                json!({"Response_AlarmInfoPlate": {"info": if *open { "ok" } else { "no" }}}),
            ),
            Reply::Registered => (
                StatusCode::OK,
                json!({"Response_AlarmInfoPlate": {"info": "no"}}),
            ),
            Reply::Refused {
                status,
                code,
                message,
            } => (
                *status,
                json!({
                    "Response_AlarmInfoPlate": {"info": "no", "content": code},
                    "error": {"code": code, "message": message},
                }),
            ),
        };
        HttpResponse::build(status).json(body)
    }
}

/// The plate, the capture second and its time of a `PlateResult`.
fn read(result: &Value) -> Result<(&str, i64, DateTime<Utc>), &'static str> {
    let license = result["license"]
        .as_str()
        .ok_or("AlarmInfoPlate.result.PlateResult.license is missing")?;
    let sec = int(&result["timeStamp"]["Timeval"]["sec"])
        .ok_or("PlateResult.timeStamp.Timeval.sec is missing")?;
    let captured_at = DateTime::<Utc>::from_timestamp(sec, 0)
        .ok_or("PlateResult.timeStamp.Timeval.sec is out of range")?;
    Ok((license, sec, captured_at))
}

/// `plateid` as the camera sent it: a number (§2.1.1), or text from other firmware.
fn record_id(id: &str) -> Value {
    id.parse::<u64>()
        .map(Value::from)
        .unwrap_or_else(|_| Value::from(id))
}

/// Bytes for one serial port (§2.6.2): base64, with their length.
fn serial_data(channel: u8, bytes: &[u8]) -> Value {
    json!({
        "serialChannel": channel,
        "data": base64::engine::general_purpose::STANDARD.encode(bytes),
        "dataLen": bytes.len(),
    })
}

/// The camera's own voice prompt (§2.6.5): GBK text, base64; female voice, full volume.
fn voice_request(text: &str) -> Value {
    let gbk = encoding_rs::GBK.encode(text).0;
    json!({
        "type": "ps_voice_play",
        "voice": base64::engine::general_purpose::STANDARD.encode(&gbk),
        "voice_interval": 0,
        "voice_volume": 100,
        "voice_male": 1,
    })
}

/// The heartbeat of §2.5.1/§2.5.2: a form whose `serialno` names the camera.
fn heartbeat_form(body: &[u8], content_type: &str) -> Result<Push, String> {
    let parts = multipart_parts(body, content_type)?;
    let field = |name: &str| {
        parts
            .iter()
            .find(|p| p.name.as_deref() == Some(name))
            .map(|p| text(&p.bytes).trim().to_owned())
            .filter(|v| !v.is_empty())
    };
    if field("device_name").is_none() && field("serialno").is_none() {
        return Err("a heartbeat form names neither device_name nor serialno".into());
    }
    Ok(Push::Heartbeat {
        serial: field("serialno"),
    })
}

/// The push URL a Vzenith camera is given: plate results and heartbeats alike.
#[utoipa::path(
    tag = "gate",
    operation_id = "vzenith_push",
    params(("token" = String, Path, description = "The gate's device secret: cameras cannot send a bearer header, so their push URL carries it (the request log blanks it)")),
    request_body(
        description = "Vzenith IVS push: `AlarmInfoPlate` JSON (a plate result, live or offline replay), or a heartbeat (comet-mode JSON, or the normal-mode form with `device_name` / `serialno`)",
        content(
            (AnyJson = "application/json"),
            (AnyJson = "application/x-www-form-urlencoded"),
            (AnyJson = "multipart/form-data"),
        )
    ),
    responses(
        (status = 200, description = "`Response_AlarmInfoPlate`: `info` `ok` lifts the barrier; echoes the record's `plateid`; `ContinuePushOffline` asks an offline backlog for its next record; with the display text or LED board frame and the voice command when the lane has them", body = AnyJson),
        super::JsonPushRefusals,
    )
)]
#[post("/v1/vendor/{token}/vzenith")]
pub async fn push(
    state: web::Data<AppState>,
    token: web::Path<String>,
    req: HttpRequest,
    payload: web::Payload,
) -> HttpResponse {
    handle::<Vzenith>(state, &token, &req, payload, Endpoint::Push).await
}
