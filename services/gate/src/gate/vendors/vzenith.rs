//! Vzenith/臻识 IVS (and compatible) cameras: the HTTP push of plate results.
//!
//! The camera posts JSON (UTF-8, or GBK when so configured):
//! `{"AlarmInfoPlate": {"serialno", "ipaddr", "result": {"PlateResult": {"license",
//! "colorType", "plateid", "isoffline", "timeStamp": {"Timeval": {"sec"}}, "imageFile"...}}}}`
//! and opens its barrier when the reply's `Response_AlarmInfoPlate.info` is `"ok"`. The
//! reply also carries the LED text and voice prompt as RS-485 `serialData` (GBK text, base64;
//! channel 0 the display, channel 1 the voice module). `plateid` is the camera's record id.
//! Records the camera buffered while it could not reach us come with `isoffline` 1: they are
//! recorded, answered `"no"` with HTTP 200 so the camera sends the next, and never open.
//! The heartbeat (`{"heartbeat": {"serialno", "countid"}}`, "comet polling" mode) is answered
//! with `Response_Heartbeat`; a staff member's manual open waits for it and goes out as
//! `info: "ok"`.

use actix_web::http::StatusCode;
use actix_web::{post, web, HttpRequest, HttpResponse};
use chrono::{DateTime, Utc};
use parkshare_domain::plate::PlateColour;
use serde_json::{json, Value};

use super::{gbk_base64, handle, json, plate_text, Push, Read, Reply, Vendor};
use crate::startup::AppState;
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

    fn parse(body: &[u8], _content_type: &str, _gate: &GateContext) -> Result<Push, String> {
        let body = json(body)?;
        if let Some(heartbeat) = body.get("heartbeat") {
            let serial = string(&heartbeat["serialno"]).or_else(|| string(&body["serialno"]));
            return Ok(Push::Heartbeat { serial });
        }
        let alarm = body
            .get("AlarmInfoPlate")
            .ok_or("neither AlarmInfoPlate nor heartbeat")?;
        let result = &alarm["result"]["PlateResult"];
        let license = result["license"]
            .as_str()
            .ok_or("AlarmInfoPlate.result.PlateResult.license is missing")?;
        let plateid = string(&result["plateid"])
            .ok_or("AlarmInfoPlate.result.PlateResult.plateid is missing")?;
        let sec = int(&result["timeStamp"]["Timeval"]["sec"])
            .ok_or("PlateResult.timeStamp.Timeval.sec is missing")?;
        let captured_at = DateTime::<Utc>::from_timestamp(sec, 0)
            .ok_or("PlateResult.timeStamp.Timeval.sec is out of range")?;
        Ok(Push::Read(Read {
            serial: string(&alarm["serialno"]),
            plate: plate_text(license),
            colour: int(&result["colorType"]).and_then(colour),
            captured_at,
            device_event_id: plateid,
            offline: int(&result["isoffline"]).unwrap_or(0) != 0,
        }))
    }

    fn reply(reply: &Reply) -> HttpResponse {
        let (status, body) = match reply {
            Reply::Decided {
                open,
                display,
                voice,
                amount_due,
            } => (
                StatusCode::OK,
                json!({"Response_AlarmInfoPlate": {
                    "info": if *open { "ok" } else { "no" },
                    "content": display,
                    "is_pay": if *open { "true" } else { "false" },
                    "amount_due": amount_due,
                    "serialData": serial_data(display, voice),
                }}),
            ),
            Reply::Recorded => (
                StatusCode::OK,
                json!({"Response_AlarmInfoPlate": {"info": "no", "content": "offline record received"}}),
            ),
            Reply::Heartbeat { open } => (
                StatusCode::OK,
                if *open {
                    json!({"Response_AlarmInfoPlate": {"info": "ok", "content": "manual open"}})
                } else {
                    json!({"Response_Heartbeat": {"info": "no"}})
                },
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

fn serial_data(display: &str, voice: &str) -> Value {
    let channel = |n: u8, text: &str| {
        let (data, len) = gbk_base64(text);
        json!({"serialChannel": n, "data": data, "dataLen": len})
    };
    json!([channel(0, display), channel(1, voice)])
}

/// The push URL a Vzenith camera is given: plate results and heartbeats alike.
#[post("/v1/vendor/{token}/vzenith")]
pub async fn push(
    state: web::Data<AppState>,
    token: web::Path<String>,
    req: HttpRequest,
    payload: web::Payload,
) -> HttpResponse {
    handle::<Vzenith>(state, &token, &req, payload).await
}
