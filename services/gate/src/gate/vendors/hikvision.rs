//! Hikvision ISAPI ANPR cameras: the camera's "HTTP listening" push posts each plate as an
//! ISAPI `EventNotificationAlert` — `multipart/form-data` with an XML part (`anpr.xml`) and
//! JPEG parts (`licensePlatePicture.jpg`, `detectionPicture.jpg`), or the XML alone — and
//! heartbeats as an alert with `eventType` `heartBeat`. The push is acknowledged with an ISAPI
//! `ResponseStatus`; the barrier is not opened by the reply but by a separate call to the
//! device, `PUT /ISAPI/Parking/channels/1/barrierGate` with `ctrlMode` `open`, authenticated
//! with the device's HTTP digest login ([`open_barrier`]).
//!
//! The record id is the alert's `UUID`, or the MAC address, capture time and plate together.
//! `isDataRetransmission` marks the camera's offline buffer being resent.

use actix_web::http::StatusCode;
use actix_web::{post, web, HttpRequest, HttpResponse};
use chrono::{DateTime, NaiveDateTime, TimeZone, Utc};
use futures_util::FutureExt;
use serde::Deserialize;

use super::{colour_named, fallback_id, handle, plate_text, text, Push, Read, Reply, Vendor};
use crate::outbound::{Guarded, OutboundError, Refused};
use crate::startup::AppState;
use crate::store::registry::{DeviceLogin, GateContext};

pub struct Hikvision;

/// The barrier control resource of the camera's first channel.
const BARRIER_PATH: &str = "/ISAPI/Parking/channels/1/barrierGate";
const OPEN_BODY: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<BarrierGate version="2.0" xmlns="http://www.isapi.org/ver20/XMLSchema"><ctrlMode>open</ctrlMode></BarrierGate>"#;
/// A barrier call that takes longer than this is of no use to the car waiting at it.
const DEVICE_CALL_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(3);

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct Alert {
    mac_address: Option<String>,
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

/// The XML part of a multipart push, or the body itself.
fn alert_xml(body: &[u8], content_type: &str) -> Result<String, String> {
    if !content_type.to_ascii_lowercase().starts_with("multipart/") {
        return Ok(text(body));
    }
    let boundary = multer::parse_boundary(content_type)
        .map_err(|_| "multipart body without a boundary".to_owned())?;
    let bytes = actix_web::web::Bytes::copy_from_slice(body);
    let stream =
        futures_util::stream::once(async move { Ok::<_, std::convert::Infallible>(bytes) });
    let mut parts = multer::Multipart::new(stream, boundary);
    // The body is all in memory: every step completes at once. Every part is read, so that a
    // truncated body is refused even when its XML part came whole.
    let mut xml = None;
    while let Some(part) = parts
        .next_field()
        .now_or_never()
        .ok_or("multipart body could not be read")?
        .map_err(|e| format!("multipart body is malformed: {e}"))?
    {
        let is_xml = part
            .content_type()
            .is_some_and(|t| t.essence_str().ends_with("xml"))
            || part.file_name().is_some_and(|n| n.ends_with(".xml"))
            || part.name().is_some_and(|n| n.ends_with(".xml"));
        let content = part
            .bytes()
            .now_or_never()
            .ok_or("multipart body could not be read")?
            .map_err(|e| format!("multipart body is malformed: {e}"))?;
        if is_xml && xml.is_none() {
            xml = Some(text(&content));
        }
    }
    xml.ok_or_else(|| "multipart body has no XML part".to_owned())
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

    fn parse(body: &[u8], content_type: &str, gate: &GateContext) -> Result<Push, String> {
        let xml = alert_xml(body, content_type)?;
        let alert: Alert = quick_xml::de::from_str(&xml)
            .map_err(|e| format!("not an ISAPI EventNotificationAlert: {e}"))?;
        let serial = alert.mac_address.as_deref().map(|m| m.trim().to_owned());
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
            offline: alert
                .is_data_retransmission
                .or(anpr.is_data_retransmission)
                .unwrap_or(false),
        }))
    }

    fn reply(reply: &Reply) -> HttpResponse {
        let (status, code, sub, message) = match reply {
            Reply::Decided { open, .. } => (
                StatusCode::OK,
                1,
                if *open { "ok" } else { "refused" },
                String::new(),
            ),
            Reply::Recorded | Reply::Heartbeat { .. } => (StatusCode::OK, 1, "ok", String::new()),
            Reply::Refused {
                status,
                code,
                message,
            } => (*status, 6, *code, message.clone()),
        };
        let status_string = if code == 1 { "OK" } else { "Invalid Content" };
        let body = format!(
            r#"<?xml version="1.0" encoding="UTF-8"?>
<ResponseStatus version="2.0" xmlns="http://www.isapi.org/ver20/XMLSchema">
<requestURL>/ISAPI/Event/notification/alertStream</requestURL>
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
    let url = format!("{}{BARRIER_PATH}", device.url.trim_end_matches('/'));
    let put = || -> Result<reqwest::RequestBuilder, CallError> {
        Ok(http
            .request(reqwest::Method::PUT, &url)?
            .timeout(DEVICE_CALL_TIMEOUT)
            .header(reqwest::header::CONTENT_TYPE, "application/xml")
            .body(OPEN_BODY))
    };
    let first = Guarded::send(put()?).await?;
    let response = if first.status() == reqwest::StatusCode::UNAUTHORIZED {
        let challenge = first
            .headers()
            .get(reqwest::header::WWW_AUTHENTICATE)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| CallError::Login("401 without a digest challenge".into()))?;
        let mut prompt =
            digest_auth::parse(challenge).map_err(|e| CallError::Login(e.to_string()))?;
        let context = digest_auth::AuthContext::new_with_method(
            device.username.as_str(),
            device.password.as_str(),
            BARRIER_PATH,
            Some(OPEN_BODY.as_bytes()),
            digest_auth::HttpMethod::PUT,
        );
        let answer = prompt
            .respond(&context)
            .map_err(|e| CallError::Login(e.to_string()))?;
        Guarded::send(put()?.header(reqwest::header::AUTHORIZATION, answer.to_header_string()))
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
#[post("/v1/vendor/{token}/hikvision")]
pub async fn push(
    state: web::Data<AppState>,
    token: web::Path<String>,
    req: HttpRequest,
    payload: web::Payload,
) -> HttpResponse {
    handle::<Hikvision>(state, &token, &req, payload).await
}
