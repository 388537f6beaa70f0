//! `POST /v1/gate/events`: a plate read as the JSON API takes it, checked (the same checks
//! every camera adapter's reads pass through [`Event::new`]) and handed to the lane
//! (`super::lanes`), which has it decided in time.

use crate::error::ErrorCode;

use actix_web::{post, web, HttpResponse};
use chrono::{DateTime, Duration, Utc};
use parkshare_domain::plate::{Plate, PlateColour};
use parkshare_domain::vehicle::VehicleClass;
use serde::Deserialize;
use utoipa::ToSchema;
use uuid::Uuid;

pub use crate::state::lanes::Event;
pub use crate::store::answers::GateDecision;

use super::lanes;
use crate::auth::Device;
use crate::error::ApiError;
use crate::state::AppState;

/// A capture time this far ahead of our clock is a device with a wrong clock, not a car.
const CAPTURE_AHEAD_S_MAX: i64 = 5 * 60;
/// Cameras buffer events while offline; older than this is not a live read.
const CAPTURE_AGE_DAYS_MAX: i64 = 30;
/// Device event ids are the camera's own record ids.
const DEVICE_EVENT_ID_CHARS_MAX: usize = 128;

/// A plate read posted by a barrier device.
#[derive(Debug, Deserialize, ToSchema)]
pub struct GateEventRequest {
    /// The gate (lane) that read the plate; must be the authenticated device's own gate.
    pub gate_id: Uuid,
    /// The plate as read, e.g. `京A12345`; spaces, separators and case are normalised.
    pub plate: String,
    /// `blue`, `yellow`, `green`, `yellow_green`, `white` or `black`.
    pub plate_colour: Option<String>,
    /// `small`, `large` or `new_energy`; takes precedence over the colour.
    pub vehicle_class: Option<String>,
    /// When the camera captured the plate (RFC 3339).
    pub captured_at: DateTime<Utc>,
    /// The device's own id for this read: retries with the same id get the same answer.
    pub device_event_id: String,
    /// True for a read the device buffered while it could not reach us: the car already
    /// passed. It is recorded and its stay reconstructed; the answer never opens the barrier.
    #[serde(default)]
    pub offline: bool,
}

impl Event {
    /// Checks a read however it arrived.
    pub fn new(
        plate: &str,
        class: Option<VehicleClass>,
        captured_at: DateTime<Utc>,
        device_event_id: &str,
        now: DateTime<Utc>,
    ) -> Result<Event, ApiError> {
        // The plate first: a camera's record key may be made of it (a Vzenith plateid with
        // the plate), and a bad plate is what the device must be told.
        let plate = Plate::parse(plate)
            .map_err(|e| ApiError::invalid(ErrorCode::MalformedPlate, e.to_string()))?;
        let device_event_id = device_event_id.trim();
        if device_event_id.is_empty()
            || device_event_id.chars().count() > DEVICE_EVENT_ID_CHARS_MAX
            || device_event_id.chars().any(char::is_control)
        {
            return Err(ApiError::invalid(
                ErrorCode::InvalidDeviceEventId,
                format!(
                    "device_event_id must be 1 to {DEVICE_EVENT_ID_CHARS_MAX} printable characters"
                ),
            ));
        }
        if captured_at > now + Duration::seconds(CAPTURE_AHEAD_S_MAX) {
            return Err(ApiError::invalid(
                ErrorCode::CaptureTimeInFuture,
                "captured_at is in the future; check the device clock",
            ));
        }
        if captured_at < now - Duration::days(CAPTURE_AGE_DAYS_MAX) {
            return Err(ApiError::invalid(
                ErrorCode::CaptureTimeTooOld,
                format!("captured_at is more than {CAPTURE_AGE_DAYS_MAX} days old"),
            ));
        }
        Ok(Event {
            plate,
            class,
            captured_at,
            device_event_id: device_event_id.to_owned(),
            offline: false,
            source: "api",
        })
    }

    fn parse(body: &GateEventRequest, now: DateTime<Utc>) -> Result<Event, ApiError> {
        let colour_class = match &body.plate_colour {
            None => None,
            Some(colour) => {
                let colour: PlateColour = serde_json::from_value(serde_json::Value::String(
                    colour.clone(),
                ))
                .map_err(|_| {
                    ApiError::invalid(
                        ErrorCode::UnknownPlateColour,
                        format!("unknown plate colour '{colour}'"),
                    )
                })?;
                Some(VehicleClass::from_colour(colour))
            }
        };
        let class = match &body.vehicle_class {
            None => colour_class,
            Some(text) => Some(VehicleClass::parse(text).ok_or_else(|| {
                ApiError::invalid(
                    ErrorCode::UnknownVehicleClass,
                    format!("unknown vehicle class '{text}'"),
                )
            })?),
        };
        let mut event = Event::new(
            &body.plate,
            class,
            body.captured_at,
            &body.device_event_id,
            now,
        )?;
        event.offline = body.offline;
        Ok(event)
    }
}

/// Post an entry or exit plate read and get the barrier decision.
#[utoipa::path(
    tag = "gate",
    operation_id = "post_event",
    security(("device_token" = [])),
    request_body = GateEventRequest,
    responses(
        (status = 200, description = "Decision (open or refuse)", body = GateDecision),
        (status = 403, description = "The event names another gate than the device's own: `gate_not_permitted`", body = crate::error::ErrorBody),
        (status = 409, description = "The device event id already answered another plate's read at this gate (a device reusing its ids): `device_event_id_reused`", body = crate::error::ErrorBody),
    )
)]
#[post("/v1/gate/events")]
pub async fn post_event(
    state: web::Data<AppState>,
    device: Device,
    body: web::Json<GateEventRequest>,
) -> Result<HttpResponse, ApiError> {
    let gate = device.0;
    if body.gate_id != gate.gate_id {
        return Err(ApiError::Forbidden {
            code: ErrorCode::GateNotPermitted,
            message: "a device may only post events for its own gate".into(),
        });
    }
    // A read from the future (a device clock running ahead) is judged by the service's clock.
    let mut event = Event::parse(&body, state.clock.now())?;
    if lanes::stale_live_read(&state, event.offline, event.captured_at) {
        let read = lanes::ClockRead {
            plate: event.plate.as_str(),
            record: &event.device_event_id,
            captured_at: event.captured_at,
            offline: false,
        };
        let age_max = state.lanes.live_read_age_max;
        lanes::flag_clock(
            &state,
            &gate,
            &read,
            lanes::ClockFault::StaleLiveRead(age_max),
        )
        .await;
        event.offline = true;
    }
    lanes::traffic(&state, gate.gate_id);
    let response = lanes::decide_in_time(&state, &gate, event).await?;
    Ok(HttpResponse::Ok().json(&response))
}
