//! Which shared spaces of a lot are free for a time range, and holding one of them.
//!
//! Searching reads the owners' schedules (the pure `parkshare-sharing` crate decides what is
//! open) and the live bookings. Holding a space first locks its `shared_spaces` row, skipping
//! it when another transaction holds it, then inserts the booking, which the database's
//! exclusion constraint may still refuse: two visitors racing for the last space both see it
//! free, exactly one gets it, the other moves on to the next candidate or is told none is
//! left. Nobody ever waits for a space's lock, so holding spaces cannot deadlock (two inserts
//! meeting in the exclusion constraint would wait for each other). A stay starting now also
//! re-checks under the lock that no car placed on the space is still inside.

use crate::error::ErrorCode;
use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use parkshare_sharing::Interval;
use sqlx::{Acquire, PgConnection};
use uuid::Uuid;

use crate::error::{is_unique_violation, ApiError};
use crate::store::sharing::{self, NewBooking, SharedSpace};

/// Whether spaces a car stands on right now count as taken (for a stay starting now).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Standing {
    Ignore,
    Exclude,
}

fn zone(space: &SharedSpace) -> Result<Tz, ApiError> {
    space
        .time_zone
        .parse()
        .map_err(|_| ApiError::Internal(anyhow::anyhow!("compound time zone {}", space.time_zone)))
}

/// The lot's shared spaces that are open, not paused and not booked (as of `now`: a hold that
/// ran out holds nothing) for all of `wanted`, in the order they are offered (by code).
/// `except` leaves one space out (the one being moved off).
pub async fn free_spaces(
    db: &mut PgConnection,
    lot_id: Uuid,
    wanted: &Interval,
    standing: Standing,
    except: Option<Uuid>,
    now: DateTime<Utc>,
) -> Result<Vec<SharedSpace>, ApiError> {
    let spaces: Vec<SharedSpace> = sharing::shared_spaces_of_lot(&mut *db, lot_id)
        .await?
        .into_iter()
        .filter(|s| !s.paused && Some(s.space_id) != except)
        .collect();
    if spaces.is_empty() {
        return Ok(spaces);
    }
    let ids: Vec<Uuid> = spaces.iter().map(|s| s.space_id).collect();
    let exceptions = sharing::exceptions(&mut *db, &ids, wanted.start).await?;
    let mut taken = sharing::booked_space_ids(&mut *db, lot_id, wanted, now).await?;
    if standing == Standing::Exclude {
        taken.extend(sharing::occupied_space_ids(&mut *db, lot_id).await?);
    }
    let mut free = Vec::new();
    for space in spaces {
        if taken.contains(&space.space_id) {
            continue;
        }
        let schedule = sharing::schedule_of(&space, &exceptions);
        let open = schedule
            .covers(zone(&space)?, wanted)
            .map_err(|e| ApiError::invalid(ErrorCode::RangeTooLong, e.to_string()))?;
        if open {
            free.push(space);
        }
    }
    Ok(free)
}

/// What to hold a space for.
pub struct Hold<'a> {
    pub booking_id: Uuid,
    pub plate: &'a str,
    pub during: Interval,
    pub status: &'static str,
    pub origin: &'static str,
    pub token_sha256: &'a [u8],
    pub webhook_url: Option<&'a str>,
    pub webhook_secret: Option<&'a str>,
    pub session_id: Option<Uuid>,
    pub free_cancel_until: DateTime<Utc>,
    /// A `held` booking's hold runs out then.
    pub hold_expires_at: Option<DateTime<Utc>>,
    pub client_addr: Option<&'a str>,
    /// Whether a car still standing on a space keeps it from being held.
    pub standing: Standing,
}

/// Holds the first of `candidates` the database lets us have; `None` when every one was taken
/// by a concurrent booking in the meantime.
pub async fn hold_first(
    tx: &mut PgConnection,
    candidates: &[SharedSpace],
    hold: &Hold<'_>,
) -> Result<Option<SharedSpace>, ApiError> {
    for space in candidates {
        // A savepoint, so that a refused insert does not abort the whole transaction (and the
        // space's lock goes with it).
        let mut attempt = tx.begin().await?;
        if !lockable(&mut attempt, space.space_id, hold.standing).await? {
            attempt.rollback().await?;
            continue;
        }
        let inserted = sharing::insert_booking(
            &mut attempt,
            &NewBooking {
                id: hold.booking_id,
                space,
                plate: hold.plate,
                during: hold.during,
                status: hold.status,
                origin: hold.origin,
                token_sha256: hold.token_sha256,
                webhook_url: hold.webhook_url,
                webhook_secret: hold.webhook_secret,
                session_id: hold.session_id,
                free_cancel_until: hold.free_cancel_until,
                hold_expires_at: hold.hold_expires_at,
                client_addr: hold.client_addr.map(str::to_owned),
            },
        )
        .await;
        match inserted {
            Ok(()) => {
                attempt.commit().await?;
                return Ok(Some(space.clone()));
            }
            Err(e) if is_unique_violation(&e, "bookings_no_overlap") => {
                attempt.rollback().await?;
            }
            Err(e) => return Err(e.into()),
        }
    }
    Ok(None)
}

/// Locks `space_id` for a booking, unless another transaction holds it or (for a stay that
/// starts now) a car placed on it is still inside.
async fn lockable(
    tx: &mut PgConnection,
    space_id: Uuid,
    standing: Standing,
) -> Result<bool, ApiError> {
    if !sharing::lock_space_unless_busy(&mut *tx, space_id).await? {
        return Ok(false);
    }
    Ok(standing == Standing::Ignore || !sharing::car_on_space(&mut *tx, space_id).await?)
}

/// Moves a booking to the first space free as of `now` other than its own; `None` when there
/// is none.
pub async fn move_elsewhere(
    tx: &mut PgConnection,
    booking: &sharing::Booking,
    now: DateTime<Utc>,
) -> Result<Option<SharedSpace>, ApiError> {
    let Some(during) = booking.during() else {
        return Ok(None);
    };
    let candidates = free_spaces(
        &mut *tx,
        booking.lot_id,
        &during,
        Standing::Exclude,
        Some(booking.space_id),
        now,
    )
    .await?;
    for space in candidates {
        let mut attempt = tx.begin().await?;
        if !lockable(&mut attempt, space.space_id, Standing::Exclude).await? {
            attempt.rollback().await?;
            continue;
        }
        match sharing::move_booking(&mut *attempt, booking.id, space.space_id).await {
            Ok(()) => {
                attempt.commit().await?;
                return Ok(Some(space));
            }
            Err(e) if is_unique_violation(&e, "bookings_no_overlap") => attempt.rollback().await?,
            Err(e) => return Err(e.into()),
        }
    }
    Ok(None)
}
