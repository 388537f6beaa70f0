//! Dahua ITSAPI (traffic and parking cameras): the platform is given a base URL and the camera
//! posts to it (ITSAPI §5, as modelled in public integration code, e.g. the `models` package of
//! open-source Dahua ITSAPI camera simulators):
//!
//! - `<base>/NotificationInfo/DeviceInfo` (§5.1) when it registers: `{"DeviceName",
//!   "DeviceModel", "DeviceType", "Manufacturer", "DeviceID", ...}`, answered
//!   `{"Result": true, "Message": ""}`;
//! - `<base>/NotificationInfo/KeepAlive` (§5.2) as its heartbeat: `{"Active": "keepAlive",
//!   "DeviceID"}`, answered `{"Active": true, "DeviceID"}` and nothing else;
//! - `<base>/NotificationInfo/TollgateInfo` (§5.3) for each plate: `{"Picture": {"Plate":
//!   {"PlateNumber", "PlateColor", ...}, "SnapInfo": {"DeviceID", "SnapTime",
//!   "AccurateTime", "Source", ...}, "NormalPic": {...}, ...}}`, answered `{"Result": true,
//!   "DeviceID", "PlateNumber", "OpenStrobe"}`: `OpenStrobe` lifts the barrier.
//!
//! The base URL of a lane is `/v1/vendor/{token}/dahua`. `PlateNumber` may come as UTF-8,
//! GB2312 or hex (§5.3). Snap times are the camera's local time, read in the compound's time
//! zone. The protocol carries no record id: a record is known by its device, capture time
//! and plate. A record whose `SnapInfo.Source` says it comes from the camera's offline store
//! is recorded and never opens. The heartbeat carries no commands: a manual open reaches a
//! Dahua barrier by a call to the device ([`open_barrier`], `trafficSnap.cgi`
//! `action=openStrobe`, with its HTTP digest login).

use crate::input::AnyJson;
use actix_web::http::StatusCode;
use actix_web::{post, web, HttpRequest, HttpResponse};
use chrono::{NaiveDateTime, TimeZone};
use serde_json::{json, Value};

use super::hikvision::{digest_call, CallError};
use super::{colour_named, fallback_id, handle, json, plate_text, Echo, Endpoint, Push, Read};
use super::{Reply, Vendor};
use crate::outbound::Guarded;
use crate::state::AppState;
use crate::store::registry::{DeviceLogin, GateContext};

pub struct Dahua;

/// The device a body names.
fn device_id(body: &Value) -> Option<String> {
    body["DeviceID"]
        .as_str()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

/// Whether `SnapInfo.Source` says the record was kept while the camera was offline and is
/// being uploaded now.
fn from_offline_store(source: &Value) -> bool {
    source
        .as_str()
        .is_some_and(|s| s.trim().to_ascii_lowercase().contains("offline"))
}

impl Vendor for Dahua {
    const NAME: &'static str = "dahua";

    fn parse(body: &[u8], _content_type: &str, gate: &GateContext) -> Result<Push, String> {
        let body = json(body)?;
        let Some(picture) = body.get("Picture") else {
            let serial = device_id(&body);
            match body.get("Active").map(|a| a.as_str().map(str::trim)) {
                Some(Some("keepAlive")) => return Ok(Push::Heartbeat { serial }),
                Some(_) => return Err("Active must be \"keepAlive\"".into()),
                None => {}
            }
            return match serial {
                Some(_) if body.get("DeviceName").is_some() || body.get("DeviceType").is_some() => {
                    Ok(Push::Registration { serial })
                }
                Some(_) => Ok(Push::Heartbeat { serial }),
                None => Err("neither Picture, a KeepAlive nor a DeviceInfo".into()),
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
        let serial = device_id(snap).or_else(|| device_id(&body));
        let plate = plate_text(plate);
        Ok(Push::Read(Read {
            device_event_id: fallback_id(serial.as_deref(), time, &plate),
            record_id: None,
            serial,
            plate,
            colour: picture["Plate"]["PlateColor"]
                .as_str()
                .and_then(colour_named),
            captured_at,
            offline: from_offline_store(&snap["Source"]),
        }))
    }

    fn reply(reply: &Reply, echo: &Echo) -> HttpResponse {
        let device = echo.serial.clone().map(Value::from).unwrap_or(Value::Null);
        let (status, body) = match reply {
            Reply::Decided { open, .. } => (
                StatusCode::OK,
                json!({"Result": true, "DeviceID": device, "OpenStrobe": open}),
            ),
            Reply::Recorded => (
                StatusCode::OK,
                json!({"Result": true, "DeviceID": device, "OpenStrobe": false}),
            ),
            Reply::Heartbeat { .. } => {
                (StatusCode::OK, json!({"Active": true, "DeviceID": device}))
            }
            Reply::Registered => (StatusCode::OK, json!({"Result": true, "Message": ""})),
            // A refusal in the shape of the message it answers (§5.1–§5.3), with our error.
            Reply::Refused {
                status,
                code,
                message,
            } => {
                let error = json!({"code": code, "message": message});
                let body = match echo.endpoint {
                    Endpoint::KeepAlive => {
                        json!({"Active": false, "DeviceID": device, "error": error})
                    }
                    Endpoint::Registration => {
                        json!({"Result": false, "Message": message, "error": error})
                    }
                    Endpoint::Push => json!({"Result": false, "DeviceID": device,
                        "OpenStrobe": false, "Message": message, "error": error}),
                };
                (*status, body)
            }
        };
        HttpResponse::build(status).json(body)
    }
}

/// The barrier control of Dahua's HTTP API (`trafficSnap.cgi`, `action=openStrobe`).
const OPEN_STROBE_PATH: &str = "/cgi-bin/trafficSnap.cgi?action=openStrobe&channel=1";

/// Lifts the barrier of a Dahua camera by calling it, answering its digest challenge.
pub async fn open_barrier(http: &Guarded, device: &DeviceLogin) -> Result<(), CallError> {
    digest_call(http, device, reqwest::Method::GET, OPEN_STROBE_PATH, None).await
}

/// Dahua ITSAPI plate notification; the token in the path is the gate's device secret.
#[utoipa::path(
    tag = "gate",
    operation_id = "dahua_tollgate_info",
    params(("token" = String, Path, description = "The gate's device secret: cameras cannot send a bearer header, so their push URL carries it (the request log blanks it)")),
    request_body(content = AnyJson, description = "Dahua ITSAPI `TollgateInfo`: a plate read (JSON, with base64 pictures)", content_type = "application/json"),
    responses(
        (status = 200, description = "The vendor's format: `{Result, DeviceID, OpenStrobe}`; `OpenStrobe` true lifts the barrier", body = AnyJson),
        super::JsonPushRefusals,
    )
)]
#[post("/v1/vendor/{token}/dahua/NotificationInfo/TollgateInfo")]
pub async fn tollgate_info(
    state: web::Data<AppState>,
    token: web::Path<String>,
    req: HttpRequest,
    payload: web::Payload,
) -> HttpResponse {
    handle::<Dahua>(state, &token, &req, payload, Endpoint::Push).await
}

/// Dahua ITSAPI heartbeat, answered {Active: true, DeviceID}.
#[utoipa::path(
    tag = "gate",
    operation_id = "dahua_keep_alive",
    params(("token" = String, Path, description = "The gate's device secret: cameras cannot send a bearer header, so their push URL carries it (the request log blanks it)")),
    request_body(content = AnyJson, description = "Dahua ITSAPI `KeepAlive` heartbeat (JSON, `DeviceID`)", content_type = "application/json"),
    responses(
        (status = 200, description = "`{Active: true, DeviceID}`", body = AnyJson),
        super::JsonPushRefusals,
    )
)]
#[post("/v1/vendor/{token}/dahua/NotificationInfo/KeepAlive")]
pub async fn keep_alive(
    state: web::Data<AppState>,
    token: web::Path<String>,
    req: HttpRequest,
    payload: web::Payload,
) -> HttpResponse {
    handle::<Dahua>(state, &token, &req, payload, Endpoint::KeepAlive).await
}

/// Dahua ITSAPI device registration.
#[utoipa::path(
    tag = "gate",
    operation_id = "dahua_device_info",
    params(("token" = String, Path, description = "The gate's device secret: cameras cannot send a bearer header, so their push URL carries it (the request log blanks it)")),
    request_body(content = AnyJson, description = "Dahua ITSAPI `DeviceInfo` registration (JSON, `DeviceID`)", content_type = "application/json"),
    responses(
        (status = 200, description = "`{Result: true, Message}`", body = AnyJson),
        super::JsonPushRefusals,
    )
)]
#[post("/v1/vendor/{token}/dahua/NotificationInfo/DeviceInfo")]
pub async fn device_info(
    state: web::Data<AppState>,
    token: web::Path<String>,
    req: HttpRequest,
    payload: web::Payload,
) -> HttpResponse {
    handle::<Dahua>(state, &token, &req, payload, Endpoint::Registration).await
}
