//! Lanes as devices, for staff: a gate's camera protocol, serial, login and fail policy; its
//! barrier commands; opening a barrier by hand (audited, with a reason code); the manual opens
//! of a lot; resolving anomalies.

use crate::error::ErrorCode;
use actix_web::{get, post, put, web, HttpResponse};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::lots::owned_lot;
use super::validate;
use crate::auth::Staff;
use crate::error::{is_unique_violation, ApiError};
use crate::gate::decide::decide;
use crate::gate::lanes::{self, Delivery};
use crate::outbound::Policy;
use crate::state::lanes::Event;
use crate::state::AppState;
use crate::store::devices::{self, NewManualOpen};
use crate::store::registry::{self, DeviceSettings, Gate};

pub fn routes(cfg: &mut utoipa_actix_web::service_config::ServiceConfig) {
    cfg.service(set_device)
        .service(list_commands)
        .service(manual_open)
        .service(list_manual_opens)
        .service(resolve_anomaly);
}

const VENDORS: [&str; 3] = ["vzenith", "dahua", "hikvision"];
/// Manual open reasons, as the audit records them.
const REASONS: [&str; 6] = [
    "payment_system_down",
    "emergency_vehicle",
    "plate_unreadable",
    "equipment_fault",
    "staff_verified",
    "other",
];
const HEARTBEAT_WINDOW_S: std::ops::RangeInclusive<i32> = 10..=86_400;

async fn owned_gate(state: &AppState, staff: &Staff, id: Uuid) -> Result<Gate, ApiError> {
    registry::gate(&state.db, staff.tenant_id, id, state.clock.now())
        .await?
        .ok_or(ApiError::NotFound("gate"))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct DeviceBody {
    /// `vzenith`, `dahua`, `hikvision`, or null for the JSON API.
    vendor: Option<String>,
    device_serial: Option<String>,
    device_url: Option<String>,
    /// Both or neither; leaving both out keeps the stored login.
    device_username: Option<String>,
    device_password: Option<String>,
    /// Removes the stored login.
    #[serde(default)]
    clear_login: bool,
    /// `open` or `closed` (default).
    fail_mode: Option<String>,
    heartbeat_window_s: Option<i32>,
    /// `raw` (default) or `led_board`: how the LED board behind a Vzenith camera takes its
    /// text.
    display_protocol: Option<String>,
}

/// Sets what camera a lane has and how it behaves. The push URL for the camera is
/// `/v1/vendor/<device secret>/<vendor>` (Dahua: that plus `/NotificationInfo/...`).
#[utoipa::path(tag = "staff", operation_id = "set_device", security(("staff_token" = [])), request_body = DeviceBody, responses((status = 200, description = "The gate with its device settings", body = registry::Gate)))]
#[put("/gates/{id}/device")]
async fn set_device(
    state: web::Data<AppState>,
    staff: Staff,
    id: web::Path<Uuid>,
    body: crate::input::Json<DeviceBody>,
) -> Result<HttpResponse, ApiError> {
    let gate = owned_gate(&state, &staff, *id).await?;
    let vendor = match body.vendor.as_deref().map(str::trim) {
        None => None,
        Some(v) if VENDORS.contains(&v) => Some(v),
        Some(v) => {
            return Err(ApiError::invalid(
                ErrorCode::UnknownVendor,
                format!("vendor must be one of {}, not '{v}'", VENDORS.join(", ")),
            ))
        }
    };
    let serial = body
        .device_serial
        .as_deref()
        .map(|s| validate::text("device_serial", s, 64))
        .transpose()?;
    let url = body
        .device_url
        .as_deref()
        .map(|text| device_url(text, Policy::devices(state.webhook_private_hosts)))
        .transpose()?;
    let login = match (
        body.clear_login,
        body.device_username.as_deref(),
        body.device_password.as_deref(),
    ) {
        (true, None, None) => Some(None),
        (false, None, None) => None,
        (false, Some(user), Some(password)) => {
            let user = validate::text("device_username", user, 128)?;
            if password.trim().is_empty() || password.chars().count() > 128 {
                return Err(ApiError::invalid(
                    ErrorCode::InvalidField,
                    "device_password: must be 1 to 128 characters",
                ));
            }
            Some(Some((user, password.to_owned())))
        }
        _ => {
            return Err(ApiError::invalid(
                ErrorCode::InvalidField,
                "give device_username and device_password together, or clear_login alone",
            ))
        }
    };
    let fail_mode = match body.fail_mode.as_deref().map(str::trim) {
        None | Some("closed") => "closed",
        Some("open") => "open",
        Some(other) => {
            return Err(ApiError::invalid(
                ErrorCode::InvalidField,
                format!("fail_mode must be open or closed, not '{other}'"),
            ))
        }
    };
    let heartbeat_window_s = body.heartbeat_window_s.unwrap_or(120);
    if !HEARTBEAT_WINDOW_S.contains(&heartbeat_window_s) {
        return Err(ApiError::invalid(
            ErrorCode::InvalidField,
            "heartbeat_window_s: must be 10 to 86400",
        ));
    }
    let display_protocol = match body.display_protocol.as_deref() {
        None => crate::gate::vendors::display::Protocol::Raw,
        Some(text) => crate::gate::vendors::display::Protocol::parse(text).ok_or_else(|| {
            ApiError::invalid(
                ErrorCode::InvalidField,
                format!("display_protocol must be raw or led_board, not '{text}'"),
            )
        })?,
    };
    // A Hikvision barrier opens only by a call to the device: a lane that could not make it
    // would answer "open" and leave the barrier shut.
    let has_login = match &login {
        Some(stored) => stored.is_some(),
        None => gate.device_login,
    };
    if vendor == Some("hikvision") && (url.is_none() || !has_login) {
        return Err(ApiError::invalid(
            ErrorCode::DeviceLoginRequired,
            "a Hikvision lane's barrier is opened by calling the device: give device_url, \
             device_username and device_password",
        ));
    }
    let login_ref = login
        .as_ref()
        .map(|l| l.as_ref().map(|(u, p)| (u.as_str(), p.as_str())));
    let updated = registry::update_gate_device(
        &state.db,
        staff.tenant_id,
        gate.id,
        &DeviceSettings {
            vendor,
            device_serial: serial.as_deref(),
            device_url: url.as_deref(),
            login: login_ref,
            fail_mode,
            heartbeat_window_s,
            display_protocol: display_protocol.as_str(),
        },
        state.clock.now(),
    )
    .await
    .map_err(|e| match is_unique_violation(&e, "gates_vendor_serial") {
        true => ApiError::conflict(
            ErrorCode::DeviceSerialTaken,
            "another gate already has a camera with this serial number",
        ),
        false => e.into(),
    })?
    .ok_or(ApiError::NotFound("gate"))?;
    Ok(HttpResponse::Ok().json(updated))
}

/// An http(s) URL with no login in it (the login has its own fields, never shown again), not
/// naming a literal address off the compound's network (a name is judged when it is called:
/// [`crate::outbound`]).
fn device_url(text: &str, policy: Policy) -> Result<String, ApiError> {
    let url = url::Url::parse(text.trim())
        .map_err(|_| ApiError::invalid(ErrorCode::InvalidField, "device_url: not a URL"))?;
    if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
        return Err(ApiError::invalid(
            ErrorCode::InvalidField,
            "device_url: must be an http or https URL with a host",
        ));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(ApiError::invalid(
            ErrorCode::InvalidField,
            "device_url: put the login in device_username and device_password, not the URL",
        ));
    }
    if let Err(refused) = crate::outbound::check_literal(&url, policy) {
        return Err(ApiError::invalid(
            ErrorCode::InvalidField,
            format!(
                "device_url: {refused}; a device must be on the compound's network \
                 (loopback, link-local and metadata addresses are never called)"
            ),
        ));
    }
    Ok(url.as_str().trim_end_matches('/').to_owned())
}

/// Barrier commands sent to the gate's device, newest first.
#[utoipa::path(tag = "staff", operation_id = "list_commands", security(("staff_token" = [])), responses((status = 200, description = "Done", body = Vec<devices::DeviceCommand>)))]
#[get("/gates/{id}/commands")]
async fn list_commands(
    state: web::Data<AppState>,
    staff: Staff,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    let gate = owned_gate(&state, &staff, *id).await?;
    Ok(HttpResponse::Ok().json(devices::commands(&state.db, staff.tenant_id, gate.id).await?))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct ManualOpenBody {
    reason: String,
    #[serde(default)]
    note: String,
    /// The car let through, if known: its stay is recorded (entry) or closed and billed
    /// (exit) as if the lane had read it.
    plate: Option<String>,
}

/// A staff member lifts the barrier. Audited with who, why and when; the barrier is told by
/// calling the device (Hikvision), in the camera's next heartbeat reply (Vzenith, Dahua), or,
/// for JSON API lanes, by the lane controller acting on this answer.
#[utoipa::path(tag = "staff", operation_id = "manual_open", security(("staff_token" = [])), request_body = ManualOpenBody, responses((status = 201, description = "Created", body = ManualOpened)))]
#[post("/gates/{id}/manual-open")]
async fn manual_open(
    state: web::Data<AppState>,
    staff: Staff,
    id: web::Path<Uuid>,
    body: crate::input::Json<ManualOpenBody>,
) -> Result<HttpResponse, ApiError> {
    let gate = owned_gate(&state, &staff, *id).await?;
    let reason = body.reason.trim();
    if !REASONS.contains(&reason) {
        return Err(ApiError::invalid(
            ErrorCode::UnknownReason,
            format!("reason must be one of {}", REASONS.join(", ")),
        ));
    }
    let note = body.note.trim();
    if note.chars().count() > 500 {
        return Err(ApiError::invalid(
            ErrorCode::InvalidField,
            "note: at most 500 characters",
        ));
    }
    if reason == "other" && note.is_empty() {
        return Err(ApiError::invalid(
            ErrorCode::NoteRequired,
            "a manual open for reason 'other' needs a note saying why",
        ));
    }
    let context = registry::gate_by_id(&state.db, gate.id)
        .await?
        .map(std::sync::Arc::new)
        .ok_or(ApiError::NotFound("gate"))?;
    let delivery = Delivery::of(&context);
    if delivery == Delivery::Unreachable {
        return Err(ApiError::conflict(
            ErrorCode::BarrierUnreachable,
            "this lane's camera opens its barrier for staff only when called: give the gate a \
             device_url, device_username and device_password",
        ));
    }
    let id = Uuid::new_v4();
    let now = state.clock.now();
    // Checked before anything is written: a bad plate changes nothing.
    let event = body
        .plate
        .as_deref()
        .map(|plate| {
            Event::new(plate, None, now, &format!("manual:{id}"), now).map(|mut event| {
                event.offline = true;
                event.source = "manual";
                event
            })
        })
        .transpose()?;
    let session_id = match &event {
        Some(event) => decide(&state, &context, event).await?.session_id,
        None => None,
    };
    // Audited per press; the barrier is told once for presses that come while an open waits.
    let command = match delivery {
        Delivery::LaneController | Delivery::Unreachable => None,
        _ => Some(
            devices::queue_manual_open(&state.db, gate.id, state.lanes.manual_open_ttl, now)
                .await?,
        ),
    };
    let record = devices::insert_manual_open(
        &state.db,
        &NewManualOpen {
            id,
            tenant_id: staff.tenant_id,
            gate_id: gate.id,
            staff_label: &staff.label,
            reason,
            note,
            plate: event.as_ref().map(|e| e.plate.as_str()),
            session_id,
            delivery: delivery.as_str(),
            command_id: command.map(|(id, _)| id),
        },
    )
    .await?;
    match (delivery, command) {
        (Delivery::DeviceCall, Some((command, true))) => {
            lanes::open_barrier(&state, &context, command)
        }
        (Delivery::NextHeartbeat, Some(_)) => lanes::open_queued(&state),
        _ => {}
    }
    tracing::info!(gate_id = %gate.id, staff = %staff.label, reason, "barrier opened by hand");
    Ok(HttpResponse::Created().json(ManualOpened {
        merged: command.is_some_and(|(_, new)| !new),
        expires_in_s: command.map(|_| state.lanes.manual_open_ttl.as_secs()),
        open: record,
    }))
}

/// A manual open recorded, and what became of its barrier command.
#[derive(Serialize, utoipa::ToSchema)]
struct ManualOpened {
    #[serde(flatten)]
    open: devices::ManualOpen,
    /// The lane had a command waiting already: this open joined it.
    merged: bool,
    /// How long the command waits for the device (none when no command was queued).
    expires_in_s: Option<u64>,
}

/// The lot's manual opens, newest first.
#[utoipa::path(tag = "staff", operation_id = "list_manual_opens", security(("staff_token" = [])), responses((status = 200, description = "Done", body = Vec<devices::ManualOpen>)))]
#[get("/lots/{id}/manual-opens")]
async fn list_manual_opens(
    state: web::Data<AppState>,
    staff: Staff,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    let lot = owned_lot(&state, &staff, *id).await?;
    Ok(HttpResponse::Ok().json(devices::manual_opens(&state.db, staff.tenant_id, lot.id).await?))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct ResolveBody {
    note: String,
}

/// Closes an anomaly with what staff found or did.
#[utoipa::path(tag = "staff", operation_id = "resolve_anomaly", security(("staff_token" = [])), request_body = ResolveBody, responses((status = 204, description = "Done; no body")))]
#[post("/anomalies/{id}/resolve")]
async fn resolve_anomaly(
    state: web::Data<AppState>,
    staff: Staff,
    id: web::Path<Uuid>,
    body: crate::input::Json<ResolveBody>,
) -> Result<HttpResponse, ApiError> {
    let note = validate::text("note", &body.note, 500)?;
    if !devices::resolve_anomaly(&state.db, staff.tenant_id, *id, &note).await? {
        return Err(ApiError::NotFound("open anomaly"));
    }
    Ok(HttpResponse::NoContent().finish())
}
