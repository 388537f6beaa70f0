//! What the gate does for shared spaces: let a booked plate in during its booking even when
//! the visitor pool is full; place a walk-in on a free shared space when the pool is full;
//! notice an owner coming home to a space a visitor is standing on; and close the booking at
//! the exit, reporting an overstay.

use chrono::{DateTime, Duration, Utc};
use parkshare_sharing::Interval;
use serde_json::json;
use sqlx::PgConnection;
use uuid::Uuid;

use crate::error::ApiError;
use crate::sharing::availability::{self, Hold, Standing};
use crate::store::registry::GateContext;
use crate::store::sessions::{self, NewAnomaly};
use crate::store::sharing::{self, Booking};
use crate::webhooks;

/// A walk-in placed on a shared space holds it this long; staying longer is an overstay,
/// handled like a booked visitor's.
pub const WALK_IN_HOLD_MIN: i64 = 120;

/// The booking that lets `plate` in at `at`, locked. One space, one car: when a car placed
/// on its space earlier is still inside (an overstay the sweep has not moved this booking away
/// from yet), the booking is moved to a space free as of `now` (the service's clock) first;
/// with none free, the car comes in as an ordinary visitor if there is room (`None`).
pub async fn booking_for_entry(
    tx: &mut PgConnection,
    gate: &GateContext,
    plate: &str,
    at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<Option<Booking>, ApiError> {
    let early_min = i32::try_from(gate.policy.booking_early_arrival_min).unwrap_or(0);
    let Some(booking) =
        sharing::admissible_booking_for_update(&mut *tx, gate.lot_id, plate, at, early_min).await?
    else {
        return Ok(None);
    };
    if !sharing::car_on_space(&mut *tx, booking.space_id).await? {
        return Ok(Some(booking));
    }
    let Some(space) = availability::move_elsewhere(&mut *tx, &booking, now).await? else {
        return Ok(None);
    };
    let detail = json!({"from": booking.space_code, "to": space.code, "because": "space_occupied"});
    sharing::insert_booking_event(&mut *tx, booking.id, "moved", detail).await?;
    Ok(sharing::booking(&mut *tx, booking.id).await?)
}

/// Holds a shared space free as of `now` (the service's clock) for a walk-in read at `at`
/// that the full visitor pool could not take.
pub async fn place_walk_in(
    tx: &mut PgConnection,
    gate: &GateContext,
    plate: &str,
    at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<Option<Booking>, ApiError> {
    let Some(wanted) = Interval::new(at, at + Duration::minutes(WALK_IN_HOLD_MIN)) else {
        return Ok(None);
    };
    let candidates =
        availability::free_spaces(&mut *tx, gate.lot_id, &wanted, Standing::Exclude, None, now)
            .await?;
    let booking_id = Uuid::new_v4();
    // Nobody holds a walk-in's token: it is never shown, so the booking cannot be cancelled
    // from outside; it ends at the exit.
    let token = crate::auth::digest(&crate::auth::new_token());
    let hold = Hold {
        booking_id,
        plate,
        during: wanted,
        status: "booked",
        origin: "walk_in",
        token_sha256: &token,
        webhook_url: None,
        webhook_secret: None,
        session_id: None,
        free_cancel_until: at,
        // The car is at the gate: it pays for the stay at the exit.
        hold_expires_at: None,
        client_addr: None,
        // The car walks onto the space now: one still standing there keeps it.
        standing: Standing::Exclude,
    };
    if availability::hold_first(&mut *tx, &candidates, &hold)
        .await?
        .is_none()
    {
        return Ok(None);
    }
    Ok(sharing::booking(&mut *tx, booking_id).await?)
}

/// The booking's car is in: the booking is `arrived` on `session_id` (its owner and visitor
/// told at `now`).
pub async fn arrived(
    tx: &mut PgConnection,
    booking: &Booking,
    session_id: Uuid,
    now: DateTime<Utc>,
) -> Result<(), ApiError> {
    sharing::set_booking_status(&mut *tx, booking.id, "arrived", Some(session_id)).await?;
    // What the booking's visitor paid ahead counts towards the stay.
    sharing::apply_booking_payment(&mut *tx, booking, session_id).await?;
    sharing::insert_booking_event(
        &mut *tx,
        booking.id,
        "arrived",
        json!({"session_id": session_id}),
    )
    .await?;
    let mut data = webhooks::booking_data(booking)?;
    data["status"] = json!("arrived");
    data["session_id"] = json!(session_id);
    webhooks::to_owner_and_visitor(tx, booking, "booking.arrived", data, now).await?;
    Ok(())
}

/// A permit holder entering at `at` while a visitor stands on their own space: they are let
/// in on their permit as always; the case is recorded for the property firm and the owner is
/// told (at `now`).
pub async fn owner_home_early(
    tx: &mut PgConnection,
    gate: &GateContext,
    plate: &str,
    at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<(), ApiError> {
    let local_date = at.with_timezone(&gate.time_zone).date_naive();
    let spaces =
        sharing::owned_spaces_of_plate(&mut *tx, gate.compound_id, gate.lot_id, plate, local_date)
            .await?;
    for space_id in spaces {
        let Some(booking) = sharing::arrived_on_space(&mut *tx, space_id).await? else {
            continue;
        };
        let detail = format!(
            "owner's car {plate} arrived while the visitor {} on booking {} stands on space {}",
            booking.plate, booking.id, booking.space_code
        );
        sessions::insert_anomaly(
            &mut *tx,
            &NewAnomaly {
                tenant_id: gate.tenant_id,
                lot_id: gate.lot_id,
                session_id: booking.session_id,
                gate_id: Some(gate.gate_id),
                kind: "owner_space_occupied",
                plate,
                detail,
            },
        )
        .await?;
        if let Some(space) = sharing::shared_space(&mut *tx, space_id).await? {
            let data = json!({"space_code": booking.space_code, "visitor_booking": webhooks::booking_data(&booking)?, "owner_plate": plate, "at": at});
            webhooks::to_owner(
                tx,
                space.tenant_id,
                space.owner_id,
                "owner.space_occupied",
                data,
                now,
            )
            .await?;
        }
    }
    Ok(())
}

/// At the exit of `session_id` read at `exit_at`: its booking (if any) is completed; leaving
/// after the booking ended is an overstay, reported to the owner (at `now`, the service's
/// clock) unless the sweep already did.
pub async fn exited(
    tx: &mut PgConnection,
    session_id: Uuid,
    exit_at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<(), ApiError> {
    let Some(booking) = sharing::booking_of_session_for_update(tx, session_id).await? else {
        return Ok(());
    };
    if exit_at > booking.ends_at && booking.overstay_at.is_none() {
        crate::sharing::overstay::report(tx, &booking, exit_at, now).await?;
    }
    sharing::set_booking_status(&mut *tx, booking.id, "completed", None).await?;
    sharing::insert_booking_event(
        &mut *tx,
        booking.id,
        "completed",
        json!({"exited_at": exit_at}),
    )
    .await?;
    Ok(())
}
