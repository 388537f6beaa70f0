//! Dahua ITSAPI (traffic and parking cameras): the platform is given a base URL and the camera
//! posts to `<base>/NotificationInfo/TollgateInfo` for each plate and to
//! `<base>/NotificationInfo/KeepAlive` as its heartbeat. The base URL of a lane is
//! `/v1/vendor/{token}/dahua`.
//!
//! The notification is JSON: `{"Picture": {"SnapInfo": {"DeviceID", "SnapTime",
//! "AccurateTime", "UUID", "OfflineFlag"}, "Plate": {"PlateNumber", "PlateColor"},
//! "NormalPic": {"Content": <base64 JPEG>}, "CutoutPic": {...}}}`. Snap times are the
//! camera's local time, read in the compound's time zone. The record id is `SnapInfo.UUID`,
//! or the device, capture time and plate together when a firmware omits it. The reply that
//! lifts the barrier is `{"Result": true, "OpenGate": true, ...}` with the LED and voice text
//! (`ShowInfo`, `VoiceInfo`); a waiting manual open goes out in the next `KeepAlive` reply.

use actix_web::http::StatusCode;
use actix_web::{post, web, HttpRequest, HttpResponse};
use chrono::{NaiveDateTime, TimeZone};
use serde_json::{json, Value};

use super::{colour_named, fallback_id, handle, json, plate_text, Push, Read, Reply, Vendor};
use crate::startup::AppState;
use crate::store::registry::GateContext;

pub struct Dahua;

fn flag(value: &Value) -> bool {
    match value {
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_i64().unwrap_or(0) != 0,
        Value::String(s) => matches!(s.trim(), "1" | "true" | "True"),
        _ => false,
    }
}

impl Vendor for Dahua {
    const NAME: &'static str = "dahua";

    fn parse(body: &[u8], _content_type: &str, gate: &GateContext) -> Result<Push, String> {
        let body = json(body)?;
        let Some(picture) = body.get("Picture") else {
            // KeepAlive bodies name the device and little else.
            let serial = body["DeviceID"].as_str().map(|s| s.trim().to_owned());
            return match serial {
                Some(_) => Ok(Push::Heartbeat { serial }),
                None => Err("neither Picture nor DeviceID".into()),
            };
        };
        let snap = &picture["SnapInfo"];
        let plate = picture["Plate"]["PlateNumber"]
            .as_str()
            .ok_or("Picture.Plate.PlateNumber is missing")?;
        let time = snap["AccurateTime"]
            .as_str()
            .or(snap["SnapTime"].as_str())
            .ok_or("Picture.SnapInfo.SnapTime is missing")?;
        let local = NaiveDateTime::parse_from_str(time.trim(), "%Y-%m-%d %H:%M:%S%.f")
            .map_err(|_| format!("SnapTime '{time}' is not YYYY-MM-DD hh:mm:ss"))?;
        let captured_at = gate
            .time_zone
            .from_local_datetime(&local)
            .earliest()
            .ok_or("SnapTime does not exist in the compound's time zone")?
            .to_utc();
        let serial = snap["DeviceID"].as_str().map(|s| s.trim().to_owned());
        let device_event_id = match snap["UUID"].as_str().filter(|u| !u.trim().is_empty()) {
            Some(uuid) => uuid.trim().to_owned(),
            None => fallback_id(serial.as_deref(), time, plate),
        };
        Ok(Push::Read(Read {
            serial,
            plate: plate_text(plate),
            colour: picture["Plate"]["PlateColor"]
                .as_str()
                .and_then(colour_named),
            captured_at,
            device_event_id,
            offline: flag(&snap["OfflineFlag"]),
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
                json!({"Result": true, "Message": "", "OpenGate": open,
                       "ShowInfo": display, "VoiceInfo": voice, "AmountDue": amount_due}),
            ),
            Reply::Recorded => (
                StatusCode::OK,
                json!({"Result": true, "Message": "offline record received", "OpenGate": false}),
            ),
            Reply::Heartbeat { open } => (
                StatusCode::OK,
                json!({"Result": true, "Message": "", "OpenGate": open}),
            ),
            Reply::Refused {
                status,
                code,
                message,
            } => (
                *status,
                json!({"Result": false, "Message": message, "OpenGate": false,
                       "error": {"code": code, "message": message}}),
            ),
        };
        HttpResponse::build(status).json(body)
    }
}

#[post("/v1/vendor/{token}/dahua/NotificationInfo/TollgateInfo")]
pub async fn tollgate_info(
    state: web::Data<AppState>,
    token: web::Path<String>,
    req: HttpRequest,
    payload: web::Payload,
) -> HttpResponse {
    handle::<Dahua>(state, &token, &req, payload).await
}

#[post("/v1/vendor/{token}/dahua/NotificationInfo/KeepAlive")]
pub async fn keep_alive(
    state: web::Data<AppState>,
    token: web::Path<String>,
    req: HttpRequest,
    payload: web::Payload,
) -> HttpResponse {
    handle::<Dahua>(state, &token, &req, payload).await
}
