//! Visitors, no login: search a lot's shared spaces, book one with a plate, read and cancel
//! the booking with the token the booking answered (shown once, stored as a digest).

use actix_web::{get, post, web, HttpRequest, HttpResponse};
use chrono::{DateTime, Duration, Utc};
use parkshare_domain::money::Money;
use parkshare_domain::plate::Plate;
use parkshare_sharing::{BookingLimits, Interval};
use serde::Deserialize;
use serde_json::json;
use sqlx::PgConnection;
use uuid::Uuid;

use crate::auth;
use crate::billing::{self, LotRules};
use crate::error::ApiError;
use crate::sharing::availability::{self, Hold, Standing};
use crate::sharing::webhooks;
use crate::startup::AppState;
use crate::store::credentials::{self, Actor, Entry, Kind};
use crate::store::sessions::Session;
use crate::store::sharing::{self, Booking};
use crate::store::{registry, tariffs};

/// A late cancellation costs what the first hour of the booking would (or its whole length,
/// if shorter), by the filed tariff at the booking's price: no fee off the published list.
const LATE_CANCEL_BILLED_MIN: i64 = 60;
/// Within this long of now, spaces with a car on them are not offered.
const STARTS_NOW_MIN: i64 = 15;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(free_for_range)
        .service(book)
        .service(show)
        .service(cancel);
}

pub fn limits(rules: &LotRules) -> BookingLimits {
    BookingLimits {
        early_arrival_min: rules.policy.booking_early_arrival_min,
        free_cancel_min: rules.policy.booking_free_cancel_min,
    }
}

async fn lot_rules(state: &AppState, lot_id: Uuid) -> Result<LotRules, ApiError> {
    registry::lot_rules(&state.db, lot_id)
        .await?
        .ok_or(ApiError::NotFound("lot"))
}

fn standing_for(wanted: &Interval, now: DateTime<Utc>) -> Standing {
    if wanted.start <= now + Duration::minutes(STARTS_NOW_MIN) {
        Standing::Exclude
    } else {
        Standing::Ignore
    }
}

#[derive(Debug, Deserialize)]
struct RangeQuery {
    from: DateTime<Utc>,
    to: DateTime<Utc>,
}

/// Shared spaces free for the whole of `[from, to)`.
#[get("/v1/public/lots/{lot}/availability")]
async fn free_for_range(
    state: web::Data<AppState>,
    lot: web::Path<Uuid>,
    query: web::Query<RangeQuery>,
) -> Result<HttpResponse, ApiError> {
    let rules = lot_rules(&state, *lot).await?;
    let now = Utc::now();
    let wanted = limits(&rules)
        .check(now, query.from, query.to)
        .map_err(|e| ApiError::invalid(e.code(), e.to_string()))?;
    let mut conn = state.db.acquire().await?;
    let free =
        availability::free_spaces(&mut conn, *lot, &wanted, standing_for(&wanted, now), None)
            .await?;
    let spaces: Vec<_> = free
        .iter()
        .map(|s| json!({"space_id": s.space_id, "code": s.code, "price_pct": s.price_pct}))
        .collect();
    Ok(HttpResponse::Ok()
        .json(json!({"lot_id": *lot, "from": wanted.start, "to": wanted.end, "spaces": spaces})))
}

#[derive(Debug, Deserialize)]
struct BookingRequest {
    plate: String,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    /// A space from the availability answer; any free one when absent.
    space_id: Option<Uuid>,
    /// Where to post this booking's events (made, moved, arrived, cancelled, overstay).
    webhook_url: Option<String>,
}

/// What the late-cancellation fee of a booking over `during` is.
pub async fn late_cancellation_fee(
    tx: &mut PgConnection,
    rules: &LotRules,
    price_pct: i16,
    during: &Interval,
) -> Result<Money, ApiError> {
    let billed = during
        .duration()
        .min(Duration::minutes(LATE_CANCEL_BILLED_MIN));
    let stay = Session {
        id: Uuid::nil(),
        tenant_id: Uuid::nil(),
        lot_id: rules.lot_id,
        plate: String::new(),
        vehicle_class: "small".into(),
        kind: "visitor".into(),
        pool: "reserved".into(),
        status: "open".into(),
        origin: "entry".into(),
        entered_at: Some(during.start),
        entry_gate_id: None,
        exited_at: None,
        exit_gate_id: None,
        fee: None,
        bill: None,
        paid: rust_decimal::Decimal::ZERO,
        last_paid_at: None,
        last_paid_priced_at: None,
        anomaly: None,
        tariff_version_id: tariffs::version_id_in_force(&mut *tx, rules.lot_id, during.start)
            .await?,
        space_id: None,
    };
    let mut bill = billing::price(tx, rules, &stay, during.start + billed)
        .await?
        .bill;
    bill.apply_rate_pct(u8::try_from(price_pct).unwrap_or(100), String::new());
    Ok(bill.total)
}

/// Book a shared space for a plate.
#[post("/v1/public/lots/{lot}/bookings")]
async fn book(
    state: web::Data<AppState>,
    lot: web::Path<Uuid>,
    body: crate::input::Json<BookingRequest>,
) -> Result<HttpResponse, ApiError> {
    let rules = lot_rules(&state, *lot).await?;
    let plate = Plate::parse(&body.plate)
        .map_err(|e| ApiError::invalid("malformed_plate", e.to_string()))?;
    let now = Utc::now();
    let limits = limits(&rules);
    let wanted = limits
        .check(now, body.from, body.to)
        .map_err(|e| ApiError::invalid(e.code(), e.to_string()))?;
    let webhook_url = body
        .webhook_url
        .as_deref()
        .map(|url| webhooks::parse_url(url, state.webhook_private_hosts))
        .transpose()?;

    let mut tx = state.db.begin().await?;
    if sharing::plate_has_live_booking(&mut *tx, *lot, plate.as_str(), &wanted).await? {
        return Err(ApiError::conflict(
            "plate_already_booked",
            "this plate already has a booking at this lot for part of that time",
        ));
    }
    let mut candidates =
        availability::free_spaces(&mut tx, *lot, &wanted, standing_for(&wanted, now), None).await?;
    if let Some(wanted_space) = body.space_id {
        candidates.retain(|s| s.space_id == wanted_space);
        if candidates.is_empty() {
            return Err(ApiError::conflict(
                "space_not_available",
                "that space is not free for all of that time",
            ));
        }
    }
    let token = auth::new_token();
    let webhook_secret = webhook_url.as_ref().map(|_| auth::new_token());
    let booking_id = Uuid::new_v4();
    let terms = limits.cancellation(wanted.start);
    let hold = Hold {
        booking_id,
        plate: plate.as_str(),
        during: wanted,
        status: "booked",
        origin: "booking",
        token_sha256: &auth::digest(&token),
        webhook_url: webhook_url.as_deref(),
        webhook_secret: webhook_secret.as_deref(),
        session_id: None,
        free_cancel_until: terms.free_until,
    };
    let Some(space) = availability::hold_first(&mut tx, &candidates, &hold).await? else {
        return Err(ApiError::conflict(
            "no_space_available",
            "no shared space is free for all of that time",
        ));
    };
    let late_fee = late_cancellation_fee(&mut tx, &rules, space.price_pct, &wanted).await?;
    let booking = sharing::booking(&mut *tx, booking_id)
        .await?
        .ok_or_else(|| ApiError::Internal(anyhow::anyhow!("booking {booking_id} vanished")))?;
    let data = webhooks::booking_data(&booking)?;
    sharing::insert_booking_event(
        &mut *tx,
        booking_id,
        "made",
        json!({"space_code": space.code}),
    )
    .await?;
    webhooks::to_owner_and_visitor(&mut tx, &booking, "booking.made", data).await?;
    let issued = Entry::issued(
        Some(booking.tenant_id),
        Kind::Booking,
        booking_id,
        Actor::Visitor,
    );
    credentials::record(&mut *tx, &issued).await?;
    tx.commit().await?;
    tracing::info!(%booking_id, lot_id = %*lot, "space booked");
    Ok(HttpResponse::Created().json(json!({
        "booking": booking,
        // Shown once: the credential to read and cancel this booking.
        "token": token,
        "webhook_secret": webhook_secret,
        "late_cancellation_fee": late_fee.to_string(),
    })))
}

async fn booking_of_visitor(
    tx: &mut PgConnection,
    req: &HttpRequest,
    id: Uuid,
) -> Result<Booking, ApiError> {
    let token = auth::bearer_digest(req).ok_or(ApiError::Unauthenticated)?;
    // A wrong token and an unknown booking look the same.
    sharing::booking_by_token_for_update(tx, id, &token)
        .await?
        .ok_or(ApiError::NotFound("booking"))
}

/// A booking, for the visitor holding its token (a revoked token opens nothing).
#[get("/v1/public/bookings/{id}")]
async fn show(
    state: web::Data<AppState>,
    req: HttpRequest,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    let mut tx = state.db.begin().await?;
    let booking = booking_of_visitor(&mut tx, &req, *id).await?;
    tx.rollback().await?;
    Ok(HttpResponse::Ok().json(booking))
}

/// Cancel a booking: free until its free-cancellation time, then the late fee.
#[post("/v1/public/bookings/{id}/cancel")]
async fn cancel(
    state: web::Data<AppState>,
    req: HttpRequest,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    let mut tx = state.db.begin().await?;
    let booking = booking_of_visitor(&mut tx, &req, *id).await?;
    match booking.status.as_str() {
        // Cancelling twice answers the first cancellation.
        "cancelled" => return Ok(HttpResponse::Ok().json(booking)),
        "arrived" => {
            return Err(ApiError::conflict(
                "booking_in_use",
                "the car is parked on this booking; it ends at the exit",
            ))
        }
        "completed" | "no_show" => {
            return Err(ApiError::conflict(
                "booking_completed",
                "this booking is over",
            ))
        }
        _ => {}
    }
    if booking.ends_at <= Utc::now() {
        return Err(ApiError::conflict(
            "booking_completed",
            "this booking is over",
        ));
    }
    let during = booking
        .during()
        .ok_or_else(|| ApiError::Internal(anyhow::anyhow!("booking {} is empty", booking.id)))?;
    let rules = lot_rules(&state, booking.lot_id).await?;
    let now = Utc::now();
    let fee = if booking.free_cancel_until >= now {
        Money::ZERO
    } else {
        late_cancellation_fee(&mut tx, &rules, booking.price_pct, &during).await?
    };
    sharing::cancel_booking(&mut *tx, booking.id, fee.yuan(), "cancelled_by_visitor").await?;
    let cancelled = sharing::booking(&mut *tx, booking.id)
        .await?
        .ok_or_else(|| ApiError::Internal(anyhow::anyhow!("booking {} vanished", booking.id)))?;
    sharing::insert_booking_event(
        &mut *tx,
        booking.id,
        "cancelled",
        json!({"by": "visitor", "fee": fee.to_string()}),
    )
    .await?;
    let data = webhooks::booking_data(&cancelled)?;
    webhooks::to_owner_and_visitor(&mut tx, &cancelled, "booking.cancelled", data).await?;
    tx.commit().await?;
    Ok(HttpResponse::Ok().json(cancelled))
}
