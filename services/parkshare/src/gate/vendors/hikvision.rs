//! Hikvision ISAPI ANPR cameras: the camera's "HTTP listening" push posts each plate as an
//! ISAPI `EventNotificationAlert` — `multipart/form-data` with an XML part (`anpr.xml`) and
//! JPEG parts (`licensePlatePicture.jpg`, `detectionPicture.jpg`), or the XML alone — and
//! heartbeats as an alert with `eventType` `heartBeat`. The push is acknowledged with an ISAPI
//! `ResponseStatus`; the barrier is not opened by the reply but by a separate call to the
//! device, `PUT /ISAPI/Parking/channels/1/barrierGate` with `ctrlMode` `open`, authenticated
//! with the device's HTTP digest login ([`open_barrier`]).
//!
//! Newer firmware sends the same alert as JSON (`application/json`, or a JSON part of the
//! multipart body) with the same field names; both are read, and each is answered in its own
//! format (ISAPI's `ResponseStatus` as XML, or its JSON form `{"requestURL", "statusCode",
//! "statusString", "subStatusCode", "errorCode", "errorMsg"}`).
//!
//! The record id is the alert's `UUID`, or the device, capture time and plate together.
//! `isDataRetransmission` marks the camera's offline buffer being resent. `macAddress` is
//! optional in the alert: the device is named by it or by `deviceID`, and an alert naming
//! neither is known by the lane's own push URL.

use crate::input::AnyJson;
use actix_web::http::StatusCode;
use actix_web::{post, web, HttpRequest, HttpResponse};
use chrono::{DateTime, NaiveDateTime, TimeZone, Utc};
use serde::Deserialize;

use super::{
    colour_named, fallback_id, handle, is_multipart, multipart_parts, plate_text, text, Echo,
    Endpoint, Push, Read, Reply, Vendor,
};
use crate::outbound::{Guarded, OutboundError, Refused};
use crate::state::AppState;
use crate::store::registry::{DeviceLogin, GateContext};

pub struct Hikvision;

/// The barrier control resource of the camera's first channel.
const BARRIER_PATH: &str = "/ISAPI/Parking/channels/1/barrierGate";
const OPEN_BODY: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<BarrierGate version="2.0" xmlns="http://www.isapi.org/ver20/XMLSchema"><ctrlMode>open</ctrlMode></BarrierGate>"#;
/// The resource an alert answer names (ISAPI `ResponseStatus.requestURL`).
const ALERT_URL: &str = "/ISAPI/Event/notification/alertStream";
/// A barrier call that takes longer than this is of no use to the car waiting at it.
const DEVICE_CALL_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(3);

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct Alert {
    mac_address: Option<String>,
    #[serde(rename = "deviceID")]
    device_id: Option<String>,
    date_time: Option<String>,
    event_type: Option<String>,
    is_data_retransmission: Option<bool>,
    #[serde(rename = "UUID")]
    uuid: Option<String>,
    #[serde(rename = "ANPR")]
    anpr: Option<Anpr>,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct Anpr {
    license_plate: Option<String>,
    plate_color: Option<String>,
    is_data_retransmission: Option<bool>,
}

/// How an alert came: as ISAPI XML or as its JSON form.
enum Format {
    Xml,
    Json,
}

fn format_of(content_type: &str, body: &[u8]) -> Format {
    let essence = content_type.to_ascii_lowercase();
    let starts_like_json = body
        .iter()
        .find(|b| !b.is_ascii_whitespace())
        .is_some_and(|b| *b == b'{');
    if essence.contains("json") || starts_like_json {
        Format::Json
    } else {
        Format::Xml
    }
}

/// The alert part of a multipart push (XML or JSON), or the body itself.
fn alert_text(body: &[u8], content_type: &str) -> Result<(Format, String), String> {
    if !is_multipart(content_type) {
        return Ok((format_of(content_type, body), text(body)));
    }
    let parts = multipart_parts(body, content_type)?;
    let named = |part: &super::Part, suffix: &str| {
        part.content_type
            .as_deref()
            .is_some_and(|t| t.ends_with(suffix))
            || part
                .file_name
                .as_deref()
                .is_some_and(|n| n.ends_with(&format!(".{suffix}")))
            || part
                .name
                .as_deref()
                .is_some_and(|n| n.ends_with(&format!(".{suffix}")))
    };
    parts
        .iter()
        .find_map(|part| {
            if named(part, "xml") {
                Some((Format::Xml, text(&part.bytes)))
            } else if named(part, "json") {
                Some((Format::Json, text(&part.bytes)))
            } else {
                None
            }
        })
        .ok_or_else(|| "multipart body has no XML or JSON part".to_owned())
}

fn capture_time(text: &str, gate: &GateContext) -> Result<DateTime<Utc>, String> {
    let text = text.trim();
    if let Ok(at) = DateTime::parse_from_rfc3339(text) {
        return Ok(at.to_utc());
    }
    // Some firmware leaves the offset out: the camera's local time.
    let local = NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.f")
        .map_err(|_| format!("dateTime '{text}' is not ISO 8601"))?;
    gate.time_zone
        .from_local_datetime(&local)
        .earliest()
        .map(|at| at.to_utc())
        .ok_or_else(|| "dateTime does not exist in the compound's time zone".to_owned())
}

impl Vendor for Hikvision {
    const NAME: &'static str = "hikvision";

    const SERIAL_OPTIONAL: bool = true;

    fn parse(body: &[u8], content_type: &str, gate: &GateContext) -> Result<Push, String> {
        let (format, text) = alert_text(body, content_type)?;
        let alert: Alert = match format {
            Format::Xml => quick_xml::de::from_str(&text)
                .map_err(|e| format!("not an ISAPI EventNotificationAlert: {e}"))?,
            Format::Json => serde_json::from_str(&text)
                .map(|mut alert: serde_json::Value| {
                    // Some firmware sends the flag as a string ("true").
                    for path in ["/isDataRetransmission", "/ANPR/isDataRetransmission"] {
                        if let Some(flag) = alert.pointer_mut(path) {
                            if let Some(text) = flag.as_str() {
                                *flag = serde_json::Value::Bool(text.trim() == "true");
                            }
                        }
                    }
                    alert
                })
                .and_then(serde_json::from_value)
                .map_err(|e| format!("not an ISAPI EventNotificationAlert (JSON): {e}"))?,
        };
        let serial = alert
            .mac_address
            .as_deref()
            .or(alert.device_id.as_deref())
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned);
        if alert
            .event_type
            .as_deref()
            .is_none_or(|t| t.trim().is_empty())
        {
            return Err("not an ISAPI EventNotificationAlert: no eventType".into());
        }
        let is_anpr = alert
            .event_type
            .as_deref()
            .is_some_and(|t| t.trim().eq_ignore_ascii_case("ANPR"));
        if !is_anpr {
            // A heartbeat, or another event: either way the camera is alive.
            return Ok(Push::Heartbeat { serial });
        }
        let anpr = alert.anpr.ok_or("ANPR event without an ANPR element")?;
        let plate = anpr.license_plate.ok_or("ANPR.licensePlate is missing")?;
        let time = alert.date_time.ok_or("dateTime is missing")?;
        let captured_at = capture_time(&time, gate)?;
        let device_event_id = match alert.uuid.filter(|u| !u.trim().is_empty()) {
            Some(uuid) => uuid.trim().to_owned(),
            None => fallback_id(serial.as_deref(), &time, &plate),
        };
        Ok(Push::Read(Read {
            serial,
            plate: plate_text(&plate),
            colour: anpr.plate_color.as_deref().and_then(colour_named),
            captured_at,
            device_event_id,
            record_id: None,
            offline: alert
                .is_data_retransmission
                .or(anpr.is_data_retransmission)
                .unwrap_or(false),
        }))
    }

    fn is_json(body: &[u8], content_type: &str) -> bool {
        match alert_text(body, content_type) {
            Ok((format, _)) => matches!(format, Format::Json),
            // Unread or unreadable: by the declared type alone.
            Err(_) => content_type.to_ascii_lowercase().contains("json"),
        }
    }

    fn reply(reply: &Reply, echo: &Echo) -> HttpResponse {
        let (status, code, sub, message) = match reply {
            Reply::Decided { open, .. } => (
                StatusCode::OK,
                1,
                if *open { "ok" } else { "refused" },
                String::new(),
            ),
            Reply::Recorded | Reply::Heartbeat { .. } | Reply::Registered => {
                (StatusCode::OK, 1, "ok", String::new())
            }
            Reply::Refused {
                status,
                code,
                message,
            } => (*status, 6, code.as_str(), message.clone()),
        };
        let status_string = if code == 1 { "OK" } else { "Invalid Content" };
        if echo.json {
            // An alert that came as JSON is answered with ISAPI's JSON ResponseStatus.
            return HttpResponse::build(status).json(serde_json::json!({
                "requestURL": ALERT_URL,
                "statusCode": code,
                "statusString": status_string,
                "subStatusCode": sub,
                "errorCode": if code == 1 { 0 } else { 1 },
                "errorMsg": if code == 1 { "ok" } else { message.as_str() },
            }));
        }
        let body = format!(
            r#"<?xml version="1.0" encoding="UTF-8"?>
<ResponseStatus version="2.0" xmlns="http://www.isapi.org/ver20/XMLSchema">
<requestURL>{ALERT_URL}</requestURL>
<statusCode>{code}</statusCode>
<statusString>{status_string}</statusString>
<subStatusCode>{sub}</subStatusCode>
<errorMsg>{}</errorMsg>
</ResponseStatus>
"#,
            quick_xml::escape::escape(message.as_str())
        );
        HttpResponse::build(status)
            .content_type("application/xml; charset=utf-8")
            .body(body)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CallError {
    /// Not called: the device's address is off the compound's network (final).
    #[error("device not called: {0}, which a device may not be")]
    Refused(Refused),
    #[error("device URL is not an http(s) URL")]
    InvalidUrl,
    #[error("device unreachable: {0}")]
    Unreachable(reqwest::Error),
    #[error("device refused the login: {0}")]
    Login(String),
    #[error("device answered {0}")]
    Status(u16),
}

impl From<OutboundError> for CallError {
    fn from(e: OutboundError) -> CallError {
        match e {
            OutboundError::Refused(refused) => CallError::Refused(refused),
            OutboundError::InvalidUrl => CallError::InvalidUrl,
            OutboundError::Http(e) => CallError::Unreachable(e),
        }
    }
}

/// Lifts the barrier: `PUT /ISAPI/Parking/channels/1/barrierGate`, answering the device's
/// digest challenge with its login. `http` is the devices' guarded client: the call reaches
/// only the compound's network, never loopback, link-local or metadata addresses.
pub async fn open_barrier(http: &Guarded, device: &DeviceLogin) -> Result<(), CallError> {
    digest_call(
        http,
        device,
        reqwest::Method::PUT,
        BARRIER_PATH,
        Some(OPEN_BODY),
    )
    .await
}

/// One call to a device at `path`, answering its HTTP digest challenge with its login.
pub async fn digest_call(
    http: &Guarded,
    device: &DeviceLogin,
    method: reqwest::Method,
    path: &str,
    body: Option<&'static str>,
) -> Result<(), CallError> {
    let url = format!("{}{path}", device.url.trim_end_matches('/'));
    let request = || -> Result<reqwest::RequestBuilder, CallError> {
        let builder = http
            .request(method.clone(), &url)?
            .timeout(DEVICE_CALL_TIMEOUT);
        Ok(match body {
            Some(body) => builder
                .header(reqwest::header::CONTENT_TYPE, "application/xml")
                .body(body),
            None => builder,
        })
    };
    let first = Guarded::send(request()?).await?;
    let response = if first.status() == reqwest::StatusCode::UNAUTHORIZED {
        let challenge = first
            .headers()
            .get(reqwest::header::WWW_AUTHENTICATE)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| CallError::Login("401 without a digest challenge".into()))?;
        let mut prompt =
            digest_auth::parse(challenge).map_err(|e| CallError::Login(e.to_string()))?;
        let digest_method = if method == reqwest::Method::PUT {
            digest_auth::HttpMethod::PUT
        } else {
            digest_auth::HttpMethod::GET
        };
        let context = digest_auth::AuthContext::new_with_method(
            device.username.as_str(),
            device.password.as_str(),
            path,
            body.map(str::as_bytes),
            digest_method,
        );
        let answer = prompt
            .respond(&context)
            .map_err(|e| CallError::Login(e.to_string()))?;
        Guarded::send(request()?.header(reqwest::header::AUTHORIZATION, answer.to_header_string()))
            .await?
    } else {
        first
    };
    match response.status() {
        s if s.is_success() => Ok(()),
        reqwest::StatusCode::UNAUTHORIZED => Err(CallError::Login("credentials refused".into())),
        s => Err(CallError::Status(s.as_u16())),
    }
}

/// The push URL a Hikvision camera's HTTP listening is given.
#[utoipa::path(
    tag = "gate",
    operation_id = "hikvision_push",
    params(("token" = String, Path, description = "The gate's device secret: cameras cannot send a bearer header, so their push URL carries it (the request log blanks it)")),
    request_body(
        description = "Hikvision ISAPI `EventNotificationAlert` (ANPR plate read, or a heartbeat): multipart with the XML or JSON alert and pictures, or the alert alone as XML or JSON",
        content(
            (AnyJson = "multipart/form-data"),
            (String = "application/xml"),
            (AnyJson = "application/json"),
        )
    ),
    responses(
        (status = 200, description = "`ResponseStatus` (XML, or JSON when the push was JSON); the barrier is lifted by a digest-authenticated call back to the device", content((String = "application/xml"), (AnyJson = "application/json"))),
        (status = 400, description = "Not this vendor's format, or truncated: `malformed_push` (in the vendor's reply format, barrier shut)", content((String = "application/xml"), (AnyJson = "application/json"))),
        (status = 401, description = "Unknown device secret in the path: `unknown_device` (vendor's format)", content((String = "application/xml"), (AnyJson = "application/json"))),
        (status = 403, description = "The push names another serial than the gate's: `vendor_mismatch` (another vendor's lane), `device_mismatch` (vendor's format)", content((String = "application/xml"), (AnyJson = "application/json"))),
        (status = 413, description = "Body over 2 MiB: `body_too_large` (vendor's format)", content((String = "application/xml"), (AnyJson = "application/json"))),
        (status = 422, description = "A plate or time the gate core refuses (vendor's format, barrier shut)", content((String = "application/xml"), (AnyJson = "application/json"))),
        (status = 503, description = "Postgres or Redis unavailable, or the lane's decision budget ran out (vendor's format, barrier per the lane's fail policy)", content((String = "application/xml"), (AnyJson = "application/json"))),
    )
)]
#[post("/v1/vendor/{token}/hikvision")]
pub async fn push(
    state: web::Data<AppState>,
    token: web::Path<String>,
    req: HttpRequest,
    payload: web::Payload,
) -> HttpResponse {
    handle::<Hikvision>(state, &token, &req, payload, Endpoint::Push).await
}
