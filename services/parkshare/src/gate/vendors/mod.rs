//! Camera adapters: vendor push → normalised plate read → the gate core → vendor reply.
//!
//! Cameras cannot send our bearer header, so each lane's push URL carries the gate's device
//! token in its path (`/v1/vendor/{token}/...`; the request log blanks it) and, when the gate
//! has a registered serial number, the push must name that serial too. Everything a camera can
//! get wrong — an unknown token, another vendor's format, a truncated or oversized body, an
//! unreadable plate — is answered in the vendor's own reply format with the barrier shut and a
//! stable code; nothing is decided from it.
//!
//! - [`vzenith`]: Vzenith/臻识 IVS `AlarmInfoPlate` push, offline replay and heartbeat (normal
//!   and comet); [`display`] frames its LED/voice board text;
//! - [`dahua`]: Dahua ITSAPI `TollgateInfo` notification, `KeepAlive` and `DeviceInfo`
//!   registration, and the barrier call back to the device for manual opens;
//! - [`hikvision`]: Hikvision ISAPI ANPR `EventNotificationAlert` (multipart, XML or JSON),
//!   and the barrier call back to the device.
//!
//! A camera's clock is not trusted blindly: a capture time before [`CLOCK_FLOOR_YEAR`] (a
//! clock reset to 1970 after a power loss) is a fault of the device, listed as a
//! `device_clock` anomaly; a live read is then decided at the time it arrived, so the lane
//! keeps working.

pub mod dahua;
pub mod display;
pub mod hikvision;
pub mod vzenith;

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use base64::Engine;
use chrono::{DateTime, Utc};
use futures_util::StreamExt;
use parkshare_domain::decision::Action;
use parkshare_domain::money::Money;
use parkshare_domain::plate::{Plate, PlateColour};
use parkshare_domain::vehicle::VehicleClass;

use super::lanes::{self, decide_in_time, flag_clock, stale_live_read, ClockFault, ClockRead};
use crate::error::{ApiError, ErrorCode};
use crate::state::lanes::Event;
use crate::state::AppState;
use crate::store::answers::GateDecision;
use std::sync::Arc;

use crate::store::registry::GateContext;
use crate::store::sessions::{insert_anomaly, NewAnomaly};

/// The refusals a camera push answers in its vendor's JSON format (Dahua, Vzenith), in the
/// OpenAPI document: one list for every such route.
#[derive(utoipa::IntoResponses)]
#[allow(dead_code)]
pub enum JsonPushRefusals {
    #[response(
        status = 400,
        description = "Not this vendor's format, or truncated: `malformed_push` (in the vendor's reply format, barrier shut)"
    )]
    Malformed(crate::input::AnyJson),
    #[response(
        status = 401,
        description = "Unknown device secret in the path: `unknown_device` (vendor's format)"
    )]
    UnknownDevice(crate::input::AnyJson),
    #[response(
        status = 403,
        description = "The push names another serial than the gate's: `vendor_mismatch` (another vendor's lane), `device_mismatch` (vendor's format)"
    )]
    Mismatch(crate::input::AnyJson),
    #[response(
        status = 413,
        description = "Body over 2 MiB: `body_too_large` (vendor's format)"
    )]
    TooLarge(crate::input::AnyJson),
    #[response(
        status = 422,
        description = "A plate or time the gate core refuses (vendor's format, barrier shut)"
    )]
    Refused(crate::input::AnyJson),
    #[response(
        status = 503,
        description = "Postgres or Redis unavailable, or the lane's decision budget ran out (vendor's format, barrier per the lane's fail policy)"
    )]
    Unavailable(crate::input::AnyJson),
}

/// Capture times before this year are a camera clock that was reset (to 1970 after a power
/// loss, or to its firmware's build date): no camera this product supports was sold earlier.
/// It is the only lower bound on an offline record's time: a camera keeps up to 9,000
/// records (Vzenith HTTP push protocol, §2.1.2 断线重传), at a quiet lane many months' worth.
pub const CLOCK_FLOOR_YEAR: i32 = 2015;

fn clock_is_off(at: DateTime<Utc>) -> bool {
    use chrono::Datelike;
    at.year() < CLOCK_FLOOR_YEAR
}

/// Largest push body: a plate read with its inline JPEGs (scene and plate close-up).
pub const VENDOR_BODY_BYTES_MAX: usize = 2 * 1024 * 1024;

pub fn routes(cfg: &mut utoipa_actix_web::service_config::ServiceConfig) {
    cfg.service(vzenith::push)
        .service(dahua::tollgate_info)
        .service(dahua::keep_alive)
        .service(dahua::device_info)
        .service(hikvision::push);
}

/// What a camera pushed, in our words.
pub enum Push {
    Heartbeat {
        serial: Option<String>,
    },
    /// The device announcing itself (Dahua `DeviceInfo`): alive, nothing handed over.
    Registration {
        serial: Option<String>,
    },
    Read(Read),
    /// An offline record that cannot be read (no plate, no time): passed over, so that the
    /// camera's replay goes on to its next record instead of resending this one for ever.
    PassedOver {
        serial: Option<String>,
        record_id: Option<String>,
        reason: String,
    },
}

/// A plate read as a camera reported it.
pub struct Read {
    pub serial: Option<String>,
    /// The plate text, already decoded from GBK or base64 where it came so.
    pub plate: String,
    pub colour: Option<PlateColour>,
    pub captured_at: DateTime<Utc>,
    /// The idempotency key: the same push sent again carries the same one.
    pub device_event_id: String,
    /// The camera's own record number, which its reply must echo (Vzenith `plateid`). Not
    /// the idempotency key: a camera's counter starts again after a reset.
    pub record_id: Option<String>,
    /// The camera's offline buffer: the car already passed.
    pub offline: bool,
}

/// What the camera is told.
pub enum Reply {
    /// A decision: open or not, with the LED text and voice prompt.
    Decided {
        open: bool,
        display: String,
        voice: String,
        /// What the driver still owes, for the vendors whose reply carries it.
        amount_due: Money,
    },
    /// An offline read recorded; the barrier stays as it is, the camera sends the next one.
    Recorded,
    /// A heartbeat answered, with a barrier command if one is waiting.
    Heartbeat { open: bool },
    /// A registration answered.
    Registered,
    /// Nothing decided: the barrier stays shut.
    Refused {
        status: StatusCode,
        code: ErrorCode,
        message: String,
    },
}

impl Reply {
    fn refused(status: StatusCode, code: ErrorCode, message: impl Into<String>) -> Reply {
        Reply::Refused {
            status,
            code,
            message: message.into(),
        }
    }

    /// The refusal for an error of the gate core: its own status, code and message, except
    /// that a 5xx says nothing internal.
    fn from_error(e: &ApiError) -> Reply {
        let status = actix_web::ResponseError::status_code(e);
        match e {
            ApiError::Unavailable(_) | ApiError::Internal(_) => Reply::refused(
                status,
                ErrorCode::BackendUnavailable,
                "the backend could not decide; the barrier stays shut",
            ),
            other => Reply::refused(status, other.error_code(), other.to_string()),
        }
    }
}

/// What a reply repeats of the push it answers, and how the lane's display takes its text.
#[derive(Default)]
pub struct Echo {
    /// The device the push named (Dahua `DeviceID`).
    pub serial: Option<String>,
    /// The camera's record id (Vzenith `plateid`).
    pub record_id: Option<String>,
    pub display: display::Protocol,
    /// The push came as JSON (a Hikvision alert's JSON form is answered in JSON).
    pub json: bool,
    /// The URL the camera posted to: a refusal takes that endpoint's reply shape.
    pub endpoint: Endpoint,
}

/// Which of a vendor's URLs a push came to (Dahua has one per kind of message).
#[derive(Clone, Copy, Default, PartialEq, Eq, Debug)]
pub enum Endpoint {
    /// Plate reads (and, for Vzenith and Hikvision, heartbeats too).
    #[default]
    Push,
    KeepAlive,
    Registration,
}

/// One camera protocol.
pub trait Vendor {
    const NAME: &'static str;
    /// Whether a push may leave its device unnamed (Hikvision's `macAddress` is optional):
    /// the lane's own push URL then identifies it.
    const SERIAL_OPTIONAL: bool = false;
    /// Reads a push; `Err` is a malformed body (a refusal with this message).
    fn parse(body: &[u8], content_type: &str, gate: &GateContext) -> Result<Push, String>;
    /// Whether the push came as JSON, for protocols that answer in the push's own format.
    fn is_json(_body: &[u8], _content_type: &str) -> bool {
        false
    }
    fn reply(reply: &Reply, echo: &Echo) -> HttpResponse;
}

/// The whole adapter flow for one push to `endpoint`.
pub async fn handle<V: Vendor>(
    state: web::Data<AppState>,
    token: &str,
    req: &HttpRequest,
    payload: web::Payload,
    endpoint: Endpoint,
) -> HttpResponse {
    let mut echo = Echo {
        endpoint,
        json: V::is_json(b"", content_type(req)),
        ..Echo::default()
    };
    let reply = match handle_inner::<V>(&state, token, req, payload, &mut echo).await {
        Ok(reply) => reply,
        Err(reply) => reply,
    };
    if let Reply::Refused { code, status, .. } = &reply {
        tracing::warn!(
            vendor = V::NAME,
            code = code.as_str(),
            status = status.as_u16(),
            "camera push refused"
        );
    }
    V::reply(&reply, &echo)
}

async fn handle_inner<V: Vendor>(
    state: &web::Data<AppState>,
    token: &str,
    req: &HttpRequest,
    payload: web::Payload,
    echo: &mut Echo,
) -> Result<Reply, Reply> {
    let gate = crate::auth::gate_by_digest(state, &crate::auth::digest(token))
        .await
        .map_err(|e| Reply::from_error(&ApiError::Unavailable(e)))?
        .ok_or_else(|| {
            Reply::refused(
                StatusCode::UNAUTHORIZED,
                ErrorCode::UnknownDevice,
                "no gate has this push URL",
            )
        })?;
    if gate.vendor.as_deref() != Some(V::NAME) {
        return Err(Reply::refused(
            StatusCode::FORBIDDEN,
            ErrorCode::VendorMismatch,
            format!("this gate is not set up for {} cameras", V::NAME),
        ));
    }
    echo.display = gate.display;
    let body = read_body(payload).await?;
    let content_type = content_type(req);
    echo.json = V::is_json(&body, content_type);
    let push = V::parse(&body, content_type, &gate)
        .and_then(|push| fits(push, echo.endpoint))
        .map_err(|message| {
            Reply::refused(StatusCode::BAD_REQUEST, ErrorCode::MalformedPush, message)
        })?;
    let serial = match &push {
        Push::Heartbeat { serial }
        | Push::Registration { serial }
        | Push::PassedOver { serial, .. } => serial.as_deref(),
        Push::Read(read) => read.serial.as_deref(),
    };
    echo.serial = serial.map(str::to_owned);
    match &push {
        Push::Read(read) => echo.record_id = read.record_id.clone(),
        Push::PassedOver { record_id, .. } => echo.record_id = record_id.clone(),
        _ => {}
    }
    if let Some(expected) = &gate.device_serial {
        let unnamed_is_fine = V::SERIAL_OPTIONAL && serial.is_none();
        if !unnamed_is_fine && !serial.is_some_and(|s| same_device(s, expected)) {
            return Err(Reply::refused(
                StatusCode::FORBIDDEN,
                ErrorCode::DeviceMismatch,
                "the push names another device than the gate's registered camera",
            ));
        }
    }
    match push {
        Push::Heartbeat { .. } => {
            lanes::heartbeat(state, gate.gate_id).await;
            let open = if lanes::Delivery::of(&gate) == lanes::Delivery::NextHeartbeat {
                lanes::wait_for_open(state, gate.gate_id)
                    .await
                    .map_err(|e| Reply::from_error(&e.into()))?
            } else {
                false
            };
            Ok(Reply::Heartbeat { open })
        }
        Push::Registration { .. } => {
            lanes::heartbeat(state, gate.gate_id).await;
            Ok(Reply::Registered)
        }
        Push::Read(read) => {
            lanes::traffic(state, gate.gate_id);
            decide_read::<V>(state, &gate, read).await
        }
        Push::PassedOver {
            record_id, reason, ..
        } => {
            lanes::traffic(state, gate.gate_id);
            tracing::warn!(gate_id = %gate.gate_id, record = record_id.as_deref().unwrap_or("-"),
                reason, "offline record passed over: it cannot be read");
            Ok(Reply::Recorded)
        }
    }
}

/// A push as the URL it came to takes it: a KeepAlive URL takes heartbeats, a registration
/// URL registrations (a bare `DeviceID` there is one), the push URL anything.
fn fits(push: Push, endpoint: Endpoint) -> Result<Push, String> {
    match (endpoint, push) {
        (Endpoint::Push, push) | (Endpoint::KeepAlive, push @ Push::Heartbeat { .. }) => Ok(push),
        (Endpoint::Registration, Push::Registration { serial } | Push::Heartbeat { serial }) => {
            Ok(Push::Registration { serial })
        }
        (Endpoint::KeepAlive, _) => Err("this URL takes KeepAlive messages only".into()),
        (Endpoint::Registration, _) => Err("this URL takes DeviceInfo messages only".into()),
    }
}

/// Whether the serial a push names is the gate's registered one: the same text, or the same
/// MAC address however it is written (`A4-14-37-00-00-01` is `a4:14:37:00:00:01`).
fn same_device(named: &str, registered: &str) -> bool {
    let (named, registered) = (named.trim(), registered.trim());
    let mac = |s: &str| {
        let hex: String = s
            .chars()
            .filter(|c| !matches!(c, ':' | '-' | '.'))
            .collect();
        (hex.len() == 12 && hex.chars().all(|c| c.is_ascii_hexdigit()) && hex.len() < s.len())
            .then(|| hex.to_ascii_lowercase())
    };
    named == registered || mac(named).is_some_and(|m| Some(m) == mac(registered))
}

fn content_type(req: &HttpRequest) -> &str {
    req.headers()
        .get(actix_web::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
}

async fn decide_read<V: Vendor>(
    state: &web::Data<AppState>,
    gate: &Arc<GateContext>,
    read: Read,
) -> Result<Reply, Reply> {
    let Some(event) = event_of::<V>(state, gate, &read).await? else {
        return Ok(Reply::Recorded);
    };
    let offline = event.offline;
    let response = decide_in_time(state, gate, event)
        .await
        .map_err(|e| Reply::from_error(&e))?;
    if read.offline {
        return Ok(Reply::Recorded);
    }
    if offline {
        // A stale live read: recorded, and the barrier stays as it is.
        return Ok(Reply::Decided {
            open: false,
            display: String::new(),
            voice: String::new(),
            amount_due: Money::ZERO,
        });
    }
    let open = response.opens();
    let voice = voice(&response);
    // A camera the reply does not open (Hikvision) is called, as for a manual open; a Dahua
    // camera opens by the reply's `OpenStrobe`.
    let hikvision = gate.vendor.as_deref() == Some("hikvision");
    if open && hikvision && lanes::Delivery::of(gate) == lanes::Delivery::Unreachable {
        // Set up before a device login was required: the car waits at a shut barrier. Said
        // to staff at once, for every such read.
        flag_unreachable(state, gate, &read.plate).await;
    }
    if open
        && hikvision
        && lanes::Delivery::of(gate) == lanes::Delivery::DeviceCall
        && !response.duplicate
    {
        match crate::store::devices::insert_open_command(&state.db, gate.gate_id, "decision").await
        {
            Ok(id) => lanes::open_barrier(state, gate, id),
            Err(e) => {
                tracing::error!(gate_id = %gate.gate_id, error = %e, "could not queue the barrier call")
            }
        }
    }
    Ok(Reply::Decided {
        open,
        voice,
        display: response.display,
        amount_due: response.amount_due,
    })
}

/// The event a read stands for, or `None` for an offline record that is only listed or passed
/// over (the camera is still told to send the next one).
async fn event_of<V: Vendor>(
    state: &AppState,
    gate: &GateContext,
    read: &Read,
) -> Result<Option<Event>, Reply> {
    let now = state.clock.now();
    let clock_off = clock_is_off(read.captured_at);
    // A read pushed as live but taken long ago is a backlog the camera does not mark as one
    // (a Dahua upload without `Source`), or a camera clock or time zone that is wrong: no car
    // waits at the barrier for it. Recorded at its time, never opening, and listed for staff.
    // `PARKSHARE_LIVE_READ_AGE_MAX_S` (an hour): generous enough for a camera clock that
    // drifts without a time server.
    let age_max = state.lanes.live_read_age_max;
    let stale = !clock_off && stale_live_read(state, read.offline, read.captured_at);
    let offline = read.offline || stale;
    // The age limit of live reads does not apply to an offline record (the camera's backlog
    // may be months old; the car passed and is recorded); a future time is still refused.
    let checked_at = if clock_off {
        now
    } else if offline {
        read.captured_at.max(now - chrono::Duration::days(1))
    } else {
        read.captured_at
    };
    let mut event = match Event::new(
        &read.plate,
        read.colour.map(VehicleClass::from_colour),
        checked_at,
        &read.device_event_id,
        now,
    ) {
        Ok(event) => event,
        // An offline record that can never be recorded (no plate read: `_无_`) would stall
        // the camera's replay on it for good: it is passed over, and logged.
        Err(e) if offline && actix_web::ResponseError::status_code(&e).is_client_error() => {
            tracing::warn!(gate_id = %gate.gate_id, record = %read.device_event_id,
                error = %e, "offline record passed over: it cannot be recorded");
            return Ok(None);
        }
        Err(e) => return Err(Reply::from_error(&e)),
    };
    if clock_off {
        flag_clock(state, gate, &clock_read(read), ClockFault::Off).await;
        if offline {
            // When the car passed is unknown: recording it at any time would bill a stay
            // wrongly. Listed for staff; the camera moves on to its next record.
            return Ok(None);
        }
    } else {
        event.captured_at = read.captured_at;
    }
    if stale {
        flag_clock(
            state,
            gate,
            &clock_read(read),
            ClockFault::StaleLiveRead(age_max),
        )
        .await;
    }
    event.offline = offline;
    event.source = V::NAME;
    Ok(Some(event))
}

/// A vendor's read as the clock check quotes it.
fn clock_read(read: &Read) -> ClockRead<'_> {
    ClockRead {
        plate: read.plate.trim(),
        record: &read.device_event_id,
        captured_at: read.captured_at,
        offline: read.offline,
    }
}

/// Lists a decision to open that no call can carry to the barrier (a Hikvision lane without
/// a device login).
async fn flag_unreachable(state: &AppState, gate: &GateContext, plate: &str) {
    tracing::error!(gate_id = %gate.gate_id, "an open decision cannot reach the barrier: no device login");
    let anomaly = NewAnomaly {
        tenant_id: gate.tenant_id,
        lot_id: gate.lot_id,
        session_id: None,
        gate_id: Some(gate.gate_id),
        kind: "barrier_unreachable",
        plate: plate.trim(),
        detail: "the lane decided to open, but its barrier opens only by a call to the device \
                 and the gate has no device_url and login: set them, and let the car through"
            .into(),
    };
    if let Err(e) = insert_anomaly(&state.db, &anomaly).await {
        tracing::warn!(gate_id = %gate.gate_id, error = %e, "could not list an unreachable barrier");
    }
}

/// The voice prompt: the display text, with the amount spoken when one is owed at a barrier
/// that stays shut.
fn voice(response: &GateDecision) -> String {
    match response.action {
        Action::Refuse | Action::Recorded if !response.amount_due.is_zero() => {
            format!("请缴费{}元", response.amount_due)
        }
        Action::Open | Action::Refuse | Action::Recorded => response.display.clone(),
    }
}

/// Reads the body up to [`VENDOR_BODY_BYTES_MAX`].
async fn read_body(mut payload: web::Payload) -> Result<web::BytesMut, Reply> {
    let mut body = web::BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|_| {
            Reply::refused(
                StatusCode::BAD_REQUEST,
                ErrorCode::MalformedPush,
                "the body ended early or could not be read",
            )
        })?;
        if body.len() + chunk.len() > VENDOR_BODY_BYTES_MAX {
            return Err(Reply::refused(
                StatusCode::PAYLOAD_TOO_LARGE,
                ErrorCode::BodyTooLarge,
                format!("a push may be at most {VENDOR_BODY_BYTES_MAX} bytes"),
            ));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// The record id of a read whose firmware sends none: the device, its capture time and the
/// plate, which a repeated push repeats.
pub fn fallback_id(serial: Option<&str>, time: &str, plate: &str) -> String {
    format!("{}/{}/{}", serial.unwrap_or("-"), time.trim(), plate.trim())
}

/// A JSON body from a camera, in UTF-8 or GBK.
pub fn json(body: &[u8]) -> Result<serde_json::Value, String> {
    serde_json::from_str(&text(body)).map_err(|e| format!("the body is not JSON: {e}"))
}

/// A plate colour by the name a camera gives it (Dahua `PlateColor`, Hikvision `plateColor`),
/// in any case.
pub fn colour_named(name: &str) -> Option<PlateColour> {
    match name.trim().to_ascii_lowercase().as_str() {
        "blue" => Some(PlateColour::Blue),
        "yellow" => Some(PlateColour::Yellow),
        "white" => Some(PlateColour::White),
        "black" => Some(PlateColour::Black),
        "green" | "shadowgreen" | "gradientgreen" | "newenergygreen" => Some(PlateColour::Green),
        "yellowgreen" | "greenyellow" | "newenergyyellowgreen" => Some(PlateColour::YellowGreen),
        _ => None,
    }
}

/// Text from a camera: UTF-8, or GBK where it is not valid UTF-8.
pub fn text(bytes: &[u8]) -> String {
    match std::str::from_utf8(bytes) {
        Ok(text) => text.to_owned(),
        Err(_) => encoding_rs::GBK.decode(bytes).0.into_owned(),
    }
}

/// The plate a camera reported: as it came if it reads as a plate, else decoded from hex
/// (Dahua ITSAPI §5.3 allows `PlateNumber` as UTF-8, GB2312 or hex) or base64, each of UTF-8
/// or GBK. An unreadable plate is passed on as it came, to be refused with `malformed_plate`.
pub fn plate_text(raw: &str) -> String {
    let raw = raw.trim();
    if Plate::parse(raw).is_ok() {
        return raw.to_owned();
    }
    let hex = hex::decode(raw).ok();
    let b64 = base64::engine::general_purpose::STANDARD.decode(raw).ok();
    [hex, b64]
        .into_iter()
        .flatten()
        .map(|bytes| text(&bytes).trim().trim_end_matches('\0').to_owned())
        .find(|decoded| Plate::parse(decoded).is_ok())
        .unwrap_or_else(|| raw.to_owned())
}

/// One part of a `multipart/form-data` body.
pub struct Part {
    pub name: Option<String>,
    pub file_name: Option<String>,
    pub content_type: Option<String>,
    pub bytes: web::Bytes,
}

/// The parts of a multipart body that is all in memory. Every part is read, so that a
/// truncated body is refused even when the part wanted came whole.
pub fn multipart_parts(body: &[u8], content_type: &str) -> Result<Vec<Part>, String> {
    use futures_util::FutureExt;
    let boundary = multer::parse_boundary(content_type)
        .map_err(|_| "multipart body without a boundary".to_owned())?;
    let bytes = web::Bytes::copy_from_slice(body);
    let stream =
        futures_util::stream::once(async move { Ok::<_, std::convert::Infallible>(bytes) });
    let mut multipart = multer::Multipart::new(stream, boundary);
    let mut parts = Vec::new();
    // The body is all in memory: every step completes at once.
    while let Some(field) = multipart
        .next_field()
        .now_or_never()
        .ok_or("multipart body could not be read")?
        .map_err(|e| format!("multipart body is malformed: {e}"))?
    {
        let name = field.name().map(str::to_owned);
        let file_name = field.file_name().map(str::to_owned);
        let content_type = field.content_type().map(|t| t.essence_str().to_owned());
        let bytes = field
            .bytes()
            .now_or_never()
            .ok_or("multipart body could not be read")?
            .map_err(|e| format!("multipart body is malformed: {e}"))?;
        parts.push(Part {
            name,
            file_name,
            content_type,
            bytes,
        });
    }
    Ok(parts)
}

pub fn is_multipart(content_type: &str) -> bool {
    content_type
        .trim_start()
        .to_ascii_lowercase()
        .starts_with("multipart/")
}

/// GBK bytes of a text, base64: what RS-485 LED and voice modules behind a camera take.
pub fn gbk_base64(text: &str) -> (String, usize) {
    let bytes = encoding_rs::GBK.encode(text).0;
    (
        base64::engine::general_purpose::STANDARD.encode(&bytes),
        bytes.len(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_mac_address_is_the_same_however_it_is_written() {
        assert!(same_device("A4-14-37-00-00-01", "a4:14:37:00:00:01"));
        assert!(same_device(" a414.3700.0001", "A4:14:37:00:00:01"));
        assert!(same_device("DH-ITC-01", "DH-ITC-01"));
        assert!(!same_device("a4:14:37:00:00:02", "a4:14:37:00:00:01"));
        // Twelve hex digits without separators are a serial number, compared as written.
        assert!(!same_device("A41437000001", "a41437000001"));
    }

    #[test]
    fn plates_arrive_as_utf8_gbk_or_base64() {
        assert_eq!(plate_text("京A12345"), "京A12345");
        let gbk = encoding_rs::GBK.encode("粤B D12345").0.into_owned();
        assert_eq!(text(&gbk), "粤B D12345");
        let b64 = base64::engine::general_purpose::STANDARD.encode("沪A·88888".as_bytes());
        assert_eq!(plate_text(&b64), "沪A·88888");
        let b64_gbk = base64::engine::general_purpose::STANDARD.encode(&gbk);
        assert_eq!(plate_text(&b64_gbk), "粤B D12345");
        // Not a plate either way: passed on to be refused.
        assert_eq!(plate_text("无牌车"), "无牌车");
        // Hex of UTF-8 and of GB2312 (Dahua ITSAPI §5.3 PlateNumber).
        assert_eq!(plate_text(&hex::encode("浙AD12345")), "浙AD12345");
        assert_eq!(plate_text(&hex::encode(&gbk)), "粤B D12345");
        // A plate of digits and A-F letters only is a plate, not hex.
        assert_eq!(plate_text("京A12345"), "京A12345");
    }
}
