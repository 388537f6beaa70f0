//! Overstays: a visitor still on a shared space after the booking (and so the owner's window)
//! ended. (The same sweep marks bookings whose time passed without their car as no-shows, and
//! unpaid holds that ran out as expired.) The owner is told, the case is recorded, and the bookings due next on that space
//! are moved to another free shared space — or, when there is none, cancelled free of charge
//! and their holders told. The stay itself is billed at the exit by the filed tariff like
//! every other minute of it: a surcharge that is not on the filed tariff may not be charged
//! (rule 4), so the tariff's own rates are the overstay rule.
//!
//! A background task sweeps every [`SWEEP_INTERVAL_S`]; [`sweep`] is public so that staff
//! tooling and tests can run it at a chosen instant.

use chrono::{DateTime, Duration, Utc};
use serde::Serialize;
use serde_json::json;
use sqlx::{PgConnection, PgPool};

use crate::clock::Clock;
use crate::error::ApiError;
use crate::sharing::{availability, webhooks};
use crate::store::sessions::{self, NewAnomaly};
use crate::store::sharing::{self, Booking};

/// Bookings starting within this long after an overstay is noticed are moved off the space.
pub const LOOKAHEAD_MIN: i64 = 120;
/// Overstays handled per sweep; the next sweep takes the rest.
const SWEEP_BATCH_MAX: i64 = 200;
pub const SWEEP_INTERVAL_S: u64 = 60;

#[derive(Debug, Default, Serialize, PartialEq, Eq)]
pub struct SweepReport {
    /// Overstays reported for the first time.
    pub reported: usize,
    /// Bookings whose time ended without their car.
    pub no_shows: usize,
    pub moved: usize,
    pub cancelled: usize,
    /// Unpaid holds that ran out.
    pub expired: usize,
}

/// Records the overstay of `booking` noticed at `at` (a sweep's instant, or the car's exit
/// read) and tells the owner and the visitor, now (`now`, the service's clock: a camera's clock
/// running ahead must not hold the webhook back).
pub async fn report(
    tx: &mut PgConnection,
    booking: &Booking,
    at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<(), ApiError> {
    sharing::mark_overstay(&mut *tx, booking.id, at).await?;
    sharing::insert_booking_event(
        &mut *tx,
        booking.id,
        "overstay",
        json!({"ended_at": booking.ends_at, "noticed_at": at}),
    )
    .await?;
    sessions::insert_anomaly(
        &mut *tx,
        &NewAnomaly {
            tenant_id: booking.tenant_id,
            lot_id: booking.lot_id,
            session_id: booking.session_id,
            gate_id: None,
            kind: "booking_overstay",
            plate: &booking.plate,
            detail: format!(
                "still on space {} after the booking ended at {}",
                booking.space_code, booking.ends_at
            ),
        },
    )
    .await?;
    let mut data = webhooks::booking_data(booking)?;
    data["overstay_at"] = json!(at);
    webhooks::to_owner_and_visitor(tx, booking, "booking.overstay", data, now).await?;
    Ok(())
}

/// Handles every overstay as of `now`.
pub async fn sweep(db: &PgPool, now: DateTime<Utc>) -> Result<SweepReport, ApiError> {
    let mut tx = db.begin().await?;
    let mut report_out = SweepReport::default();
    for stuck in sharing::overstayed_bookings(&mut tx, now, SWEEP_BATCH_MAX).await? {
        if stuck.overstay_at.is_none() {
            report(&mut tx, &stuck, now, now).await?;
            report_out.reported += 1;
        }
        let horizon = now + Duration::minutes(LOOKAHEAD_MIN);
        let upcoming =
            sharing::upcoming_on_space_for_update(&mut tx, stuck.space_id, now, horizon).await?;
        for next in upcoming {
            if displace(&mut tx, &next, &stuck, now).await? {
                report_out.moved += 1;
            } else {
                report_out.cancelled += 1;
            }
        }
    }
    report_out.expired = sharing::expire_holds(&mut tx, now, None).await?.len();
    for id in sharing::mark_no_shows(&mut *tx, now).await? {
        sharing::insert_booking_event(&mut *tx, id, "no_show", json!({"noticed_at": now})).await?;
        report_out.no_shows += 1;
    }
    tx.commit().await?;
    Ok(report_out)
}

/// Moves `next` off the space `stuck` is still on; cancels it free when nowhere is free
/// (as of `now`). True when it was moved.
async fn displace(
    tx: &mut PgConnection,
    next: &Booking,
    stuck: &Booking,
    now: DateTime<Utc>,
) -> Result<bool, ApiError> {
    if let Some(space) = availability::move_elsewhere(tx, next, now).await? {
        let detail = json!({"from": next.space_code, "to": space.code, "because": "overstay"});
        sharing::insert_booking_event(&mut *tx, next.id, "moved", detail).await?;
        let mut data = webhooks::booking_data(next)?;
        data["space_id"] = json!(space.space_id);
        data["space_code"] = json!(space.code);
        data["moved_from"] = json!(next.space_code);
        webhooks::to_visitor(tx, next, "booking.moved", data.clone(), now).await?;
        // An owner hears of a booking once it is paid (`booking.made` at confirmation).
        if next.status != "held" {
            webhooks::to_owner(
                tx,
                space.tenant_id,
                space.owner_id,
                "booking.made",
                data,
                now,
            )
            .await?;
        }
        return Ok(true);
    }
    // Not the visitor's doing: all they paid goes back; a hold not paid yet can no longer be.
    crate::store::payments::cancel_intent_of_booking(&mut *tx, next.id).await?;
    let refunded = crate::sharing::visitor::refund_on_cancel(
        tx,
        next,
        parkshare_domain::money::Money::ZERO,
        "displaced_by_overstay",
    )
    .await?;
    sharing::cancel_booking(
        &mut *tx,
        next.id,
        rust_decimal::Decimal::ZERO,
        "displaced_by_overstay",
    )
    .await?;
    let detail = json!({"by": "overstay", "overstaying_booking": stuck.id, "fee": "0.00",
        "refund": "full", "refunded": refunded.to_string()});
    sharing::insert_booking_event(&mut *tx, next.id, "cancelled", detail).await?;
    let mut data = webhooks::booking_data(next)?;
    data["status"] = json!("cancelled");
    data["cancel_reason"] = json!("displaced_by_overstay");
    data["refund"] = json!("full");
    webhooks::to_owner_and_visitor(tx, next, "booking.cancelled", data, now).await?;
    Ok(false)
}

/// Sweeps every [`SWEEP_INTERVAL_S`] as of `clock`'s now until shutdown (a sweep under way
/// commits first).
pub fn spawn_sweeper(workers: &mut crate::workers::Workers, db: PgPool, clock: Clock) {
    workers.supervise("overstay_sweep", move |shutdown| {
        let (db, clock) = (db.clone(), clock.clone());
        async move {
            let mut tick = tokio::time::interval(std::time::Duration::from_secs(SWEEP_INTERVAL_S));
            while shutdown.until(tick.tick()).await.is_some() {
                match sweep(&db, clock.now()).await {
                    Ok(report) if report != SweepReport::default() => {
                        tracing::info!(?report, "overstays handled");
                    }
                    Ok(_) => {}
                    Err(e) => tracing::warn!(error = %e, "overstay sweep failed"),
                }
            }
        }
    });
}
