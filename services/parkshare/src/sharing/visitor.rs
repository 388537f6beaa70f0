//! Visitors, no login: search a lot's shared spaces, book one with a plate, read and cancel
//! the booking with the token the booking answered (shown once, stored as a digest).
//!
//! A booking holds its space only once it is paid (issue 22): a new booking is `held` for the
//! hold's minutes ([`BookingCaps`]) with a payment intent for its price; the provider's
//! notification makes it `booked` ([`confirm_paid`]); an unpaid hold expires — at once for
//! every availability read and for the next booking in its way, and for the record at the
//! sweep. A plate and a client address may each have only so many live bookings, so that one
//! anonymous client cannot hold every shared space, and a stranger booking someone's plate
//! must pay to do it.

use crate::error::ErrorCode;
use actix_web::{get, post, web, HttpRequest, HttpResponse};
use chrono::{DateTime, Duration, Utc};
use parkshare_domain::decision::{Origin, Pool, SessionKind, StayStatus};
use parkshare_domain::money::Money;
use parkshare_domain::plate::Plate;
use parkshare_domain::vehicle::VehicleClass;
use parkshare_sharing::{BookingCaps, BookingLimits, CapExceeded, Interval};
use serde::Deserialize;
use serde_json::json;
use sqlx::PgConnection;
use uuid::Uuid;

use crate::auth;
use crate::billing::{self, LotRules, Priced};
use crate::error::ApiError;
use crate::ratelimit::ClientAddr;
use crate::settlement::posting;
use crate::sharing::availability::{self, Hold, Standing};
use crate::state::AppState;
use crate::store::credentials::{self, Actor, Entry, Kind};
use crate::store::payments::{self, Intent, NewIntent, Pays};
use crate::store::sessions::Session;
use crate::store::sharing::{self, Booking};
use crate::store::{registry, tariffs};
use crate::webhooks;

/// A late cancellation costs what the first hour of the booking would (or its whole length,
/// if shorter), by the filed tariff at the booking's price: no fee off the published list.
const LATE_CANCEL_BILLED_MIN: i64 = 60;
/// Within this long of now, spaces with a car on them are not offered.
const STARTS_NOW_MIN: i64 = 15;

pub fn routes(cfg: &mut utoipa_actix_web::service_config::ServiceConfig) {
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

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct RangeQuery {
    from: DateTime<Utc>,
    to: DateTime<Utc>,
}

/// Shared spaces free for a whole range of time.
#[derive(serde::Serialize, utoipa::ToSchema)]
struct FreeForRange {
    lot_id: Uuid,
    /// The range asked for, as the lot's booking rules read it.
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    spaces: Vec<FreeSpace>,
}

/// A shared space free for the whole range.
#[derive(serde::Serialize, utoipa::ToSchema)]
struct FreeSpace {
    space_id: Uuid,
    code: String,
    /// Percent of the filed tariff a booking of this space is charged.
    price_pct: i16,
}

/// Shared spaces free for the whole of `[from, to)`.
#[utoipa::path(tag = "public", operation_id = "free_for_range", params(RangeQuery), responses((status = 200, description = "Done", body = FreeForRange)))]
#[get("/v1/public/lots/{lot}/availability")]
async fn free_for_range(
    state: web::Data<AppState>,
    lot: web::Path<Uuid>,
    query: web::Query<RangeQuery>,
) -> Result<HttpResponse, ApiError> {
    let rules = lot_rules(&state, *lot).await?;
    let now = state.clock.now();
    let wanted = limits(&rules)
        .check(now, query.from, query.to)
        .map_err(|e| ApiError::invalid(ErrorCode::from(&e), e.to_string()))?;
    let mut conn = state.db.acquire().await?;
    let free = availability::free_spaces(
        &mut conn,
        *lot,
        &wanted,
        standing_for(&wanted, now),
        None,
        now,
    )
    .await?;
    let spaces = free
        .into_iter()
        .map(|s| FreeSpace {
            space_id: s.space_id,
            code: s.code,
            price_pct: s.price_pct,
        })
        .collect();
    Ok(HttpResponse::Ok().json(FreeForRange {
        lot_id: *lot,
        from: wanted.start,
        to: wanted.end,
        spaces,
    }))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[schema(example = json!({"plate": "粤B12345", "from": "2030-01-07T09:00:00Z", "to": "2030-01-07T11:00:00Z"}))]
struct BookingRequest {
    plate: String,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    /// A space from the availability answer; any free one when absent.
    space_id: Option<Uuid>,
    /// Where to post this booking's events (made, moved, arrived, cancelled, overstay).
    webhook_url: Option<String>,
}

/// What the first `billed` of a stay over `during` costs at `price_pct` of the filed tariff,
/// with the bill it came from.
async fn price_of(
    tx: &mut PgConnection,
    rules: &LotRules,
    price_pct: i16,
    during: &Interval,
    billed: Duration,
) -> Result<Priced, ApiError> {
    let stay = Session {
        id: Uuid::nil(),
        tenant_id: Uuid::nil(),
        lot_id: rules.lot_id,
        plate: String::new(),
        vehicle_class: VehicleClass::Small,
        kind: SessionKind::Visitor,
        pool: Pool::Reserved,
        status: StayStatus::Open,
        origin: Origin::Entry,
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
    let mut priced = billing::price(tx, rules, &stay, during.start + billed).await?;
    let pct = u8::try_from(price_pct).unwrap_or(100);
    priced
        .bill
        .apply_rate_pct(pct, format!("业主共享车位定价 {pct}%"));
    Ok(priced)
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
    Ok(price_of(tx, rules, price_pct, during, billed)
        .await?
        .bill
        .total)
}

/// The client address the rate limiter found (the peer's when the limiter did not run).
fn client_of(req: &HttpRequest) -> String {
    use actix_web::HttpMessage;
    let found = req.extensions().get::<ClientAddr>().copied();
    found
        .map(|c| c.0)
        .or_else(|| req.peer_addr().map(|a| crate::ratelimit::bucket(a.ip())))
        .map(|ip| ip.to_string())
        .unwrap_or_else(|| "0.0.0.0".to_owned())
}

/// Refuses a booking over a cap: the plate's (409, it is about the plate) or the client's (429,
/// it is about this client's volume; a slot frees when its first hold runs out).
async fn check_caps(
    tx: &mut PgConnection,
    caps: &BookingCaps,
    lot_id: Uuid,
    plate: &str,
    client: &str,
    now: DateTime<Utc>,
) -> Result<(), ApiError> {
    sharing::lock_booking_caps(&mut *tx, plate, client).await?;
    let live = sharing::live_counts(&mut *tx, lot_id, plate, client, now).await?;
    caps.admit(live, now).map_err(|e| match e {
        CapExceeded::Plate { .. } => ApiError::conflict(ErrorCode::from(&e), e.to_string()),
        CapExceeded::Client { retry_after, .. } => ApiError::rate_limited(
            ErrorCode::from(&e),
            e.to_string(),
            retry_after
                .to_std()
                .unwrap_or(std::time::Duration::from_secs(1)),
        ),
    })
}

/// Asks for the booking's price: a payment intent valid as long as the hold. A booking that
/// costs nothing is confirmed at once instead (`None`).
async fn start_payment(
    tx: &mut PgConnection,
    booking: &Booking,
    priced: &Priced,
    now: DateTime<Utc>,
) -> Result<Option<Intent>, ApiError> {
    let price = priced.bill.total;
    sharing::set_booking_price(&mut *tx, booking.id, price.yuan()).await?;
    let Some(expires_at) = booking.hold_expires_at else {
        return Ok(None);
    };
    if price.is_zero() {
        sharing::confirm_booking(&mut *tx, booking.id, rust_decimal::Decimal::ZERO, None).await?;
        sharing::insert_booking_event(&mut *tx, booking.id, "confirmed", json!({"paid": "0.00"}))
            .await?;
        return Ok(None);
    }
    let bill = serde_json::to_value(&priced.bill)
        .map_err(|e| ApiError::Internal(anyhow::anyhow!("{e}")))?;
    let intent = payments::insert_intent(
        &mut *tx,
        &NewIntent {
            tenant_id: booking.tenant_id,
            pays: Pays::Booking(booking.id),
            amount: price.yuan(),
            expires_at,
            bill: &bill,
            priced_at: now,
            filing_no: priced.filing_no.as_deref(),
        },
    )
    .await?;
    Ok(Some(intent))
}

/// A booking just made, with its credential (shown once) and what to pay.
#[derive(serde::Serialize, utoipa::ToSchema)]
struct Booked {
    booking: Booking,
    /// Shown once: the credential to read and cancel this booking (`booking_token`).
    token: String,
    /// Shown once: the key this booking's webhook posts are signed with, when it has one.
    webhook_secret: Option<String>,
    /// What cancelling after `booking.free_cancel_until` costs (yuan).
    #[schema(value_type = String, example = "6.00")]
    late_cancellation_fee: String,
    /// Pay it before `booking.hold_expires_at`, or the hold lapses; none when the booking
    /// costs nothing (it is confirmed at once).
    payment_intent: Option<crate::settlement::payments::IntentView>,
}

/// Book a shared space for a plate: held until paid through its payment intent (or confirmed
/// at once when free).
#[utoipa::path(tag = "public", operation_id = "book_space", request_body = BookingRequest, responses((status = 201, description = "Created", body = Booked)))]
#[post("/v1/public/lots/{lot}/bookings")]
async fn book(
    state: web::Data<AppState>,
    req: HttpRequest,
    lot: web::Path<Uuid>,
    body: crate::input::Json<BookingRequest>,
) -> Result<HttpResponse, ApiError> {
    let rules = lot_rules(&state, *lot).await?;
    let plate = Plate::parse(&body.plate)
        .map_err(|e| ApiError::invalid(ErrorCode::MalformedPlate, e.to_string()))?;
    let now = state.clock.now();
    let limits = limits(&rules);
    let wanted = limits
        .check(now, body.from, body.to)
        .map_err(|e| ApiError::invalid(ErrorCode::from(&e), e.to_string()))?;
    let webhook_url = body
        .webhook_url
        .as_deref()
        .map(|url| webhooks::parse_url(url, state.webhook_private_hosts))
        .transpose()?;
    let client = client_of(&req);
    let caps = state.booking_caps;

    let mut tx = state.db.begin().await?;
    check_caps(&mut tx, &caps, *lot, plate.as_str(), &client, now).await?;
    // Holds that ran out stop holding now, not at the next sweep: those in this booking's way
    // are marked expired before the exclusion constraint is asked.
    sharing::expire_holds(&mut tx, now, Some((*lot, &wanted))).await?;
    if sharing::plate_has_live_booking(&mut *tx, *lot, (plate.as_str(), &client), &wanted, now)
        .await?
    {
        return Err(ApiError::conflict(
            ErrorCode::PlateAlreadyBooked,
            "this plate already has a booking at this lot for part of that time",
        ));
    }
    let mut candidates = availability::free_spaces(
        &mut tx,
        *lot,
        &wanted,
        standing_for(&wanted, now),
        None,
        now,
    )
    .await?;
    if let Some(wanted_space) = body.space_id {
        candidates.retain(|s| s.space_id == wanted_space);
        if candidates.is_empty() {
            return Err(ApiError::conflict(
                ErrorCode::SpaceNotAvailable,
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
        status: "held",
        origin: "booking",
        token_sha256: &auth::digest(&token),
        webhook_url: webhook_url.as_deref(),
        webhook_secret: webhook_secret.as_deref(),
        session_id: None,
        free_cancel_until: terms.free_until,
        hold_expires_at: Some(caps.hold_until(now)),
        client_addr: Some(&client),
        standing: standing_for(&wanted, now),
    };
    let Some(space) = availability::hold_first(&mut tx, &candidates, &hold).await? else {
        return Err(ApiError::conflict(
            ErrorCode::NoSpaceAvailable,
            "no shared space is free for all of that time",
        ));
    };
    let late_fee = late_cancellation_fee(&mut tx, &rules, space.price_pct, &wanted).await?;
    let priced = price_of(&mut tx, &rules, space.price_pct, &wanted, wanted.duration()).await?;
    let held = booking_of(&mut tx, booking_id).await?;
    sharing::insert_booking_event(
        &mut *tx,
        booking_id,
        "made",
        json!({"space_code": space.code}),
    )
    .await?;
    let intent = start_payment(&mut tx, &held, &priced, now).await?;
    let booking = booking_of(&mut tx, booking_id).await?;
    if intent.is_none() {
        let data = webhooks::booking_data(&booking)?;
        webhooks::to_owner_and_visitor(&mut tx, &booking, "booking.made", data, now).await?;
    }
    let issued = Entry::issued(
        Some(booking.tenant_id),
        Kind::Booking,
        booking_id,
        Actor::Visitor,
    );
    credentials::record(&mut *tx, &issued).await?;
    tx.commit().await?;
    tracing::info!(%booking_id, lot_id = %*lot, status = %booking.status, "space booked");
    Ok(HttpResponse::Created().json(Booked {
        booking,
        token,
        webhook_secret,
        late_cancellation_fee: late_fee.to_string(),
        payment_intent: intent
            .as_ref()
            .map(|i| crate::settlement::payments::intent_view(&state, i)),
    }))
}

async fn booking_of(tx: &mut PgConnection, id: Uuid) -> Result<Booking, ApiError> {
    sharing::booking(&mut *tx, id)
        .await?
        .ok_or_else(|| ApiError::Internal(anyhow::anyhow!("booking {id} vanished")))
}

/// The provider says `intent` (a booking's) was paid in time: the held booking is confirmed
/// and the payment posted, once. False when the booking no longer waits for it (the hold
/// lapsed or was cancelled): the caller books the money as owed back. `now` is when the
/// service heard of it.
pub async fn confirm_paid(
    tx: &mut PgConnection,
    intent: &Intent,
    booking_id: Uuid,
    amount: Money,
    paid_at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<bool, ApiError> {
    let Some(booking) = sharing::booking_for_update(&mut *tx, booking_id).await? else {
        return Ok(false);
    };
    if booking.status != "held" {
        return Ok(false);
    }
    // Someone else's unpaid hold of this plate did not stop this one; whoever paid first
    // keeps the plate's time, and a later payment is owed back.
    let during = Interval {
        start: booking.starts_at,
        end: booking.ends_at,
    };
    if sharing::plate_has_paid_booking(
        &mut *tx,
        booking.id,
        booking.lot_id,
        &booking.plate,
        &during,
    )
    .await?
    {
        return Ok(false);
    }
    let who = payments::booking_parties(&mut *tx, booking_id, paid_at)
        .await?
        .ok_or_else(|| ApiError::Internal(anyhow::anyhow!("booking {booking_id} has no owner")))?;
    payments::mark_intent_paid(&mut *tx, intent.id, paid_at).await?;
    let Some(transaction_id) =
        posting::credit_booking_payment(&mut *tx, &who, booking_id, intent.id, amount, paid_at)
            .await?
    else {
        // The intent was pending and is locked, so its key is new; were it not, the payment
        // is on record already.
        return Ok(true);
    };
    sharing::confirm_booking(&mut *tx, booking_id, amount.yuan(), Some(transaction_id)).await?;
    sharing::insert_booking_event(
        &mut *tx,
        booking_id,
        "confirmed",
        json!({"paid": amount.to_string(), "intent_id": intent.id, "transaction_id": transaction_id}),
    )
    .await?;
    let confirmed = booking_of(tx, booking_id).await?;
    let data = webhooks::booking_data(&confirmed)?;
    webhooks::to_owner_and_visitor(tx, &confirmed, "booking.made", data, now).await?;
    Ok(true)
}

/// Gives back what a cancelled booking's visitor paid, less `fee`; what was given back.
pub async fn refund_on_cancel(
    tx: &mut PgConnection,
    booking: &Booking,
    fee: Money,
    reason: &str,
) -> Result<Money, ApiError> {
    let parse = |d| Money::total(d).map_err(|e| ApiError::Internal(anyhow::anyhow!("{e}")));
    let (paid, already) = (parse(booking.paid)?, parse(booking.refunded)?);
    let refund = paid.saturating_sub(already).saturating_sub(fee);
    let Some(transaction_id) = booking.payment_transaction_id else {
        return Ok(Money::ZERO);
    };
    if refund.is_zero() {
        return Ok(Money::ZERO);
    }
    posting::refund_booking_payment(
        &mut *tx,
        booking.tenant_id,
        booking.id,
        transaction_id,
        already,
        refund,
        reason,
    )
    .await?;
    sharing::add_booking_refund(&mut *tx, booking.id, refund.yuan()).await?;
    Ok(refund)
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
#[utoipa::path(tag = "visitor", operation_id = "show_booking", security(("booking_token" = [])), responses((status = 200, description = "Done", body = Booking)))]
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
#[utoipa::path(tag = "visitor", operation_id = "cancel_booking", security(("booking_token" = [])), responses((status = 200, description = "The booking, cancelled (cancelling twice answers the first cancellation)", body = Booking)))]
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
                ErrorCode::BookingInUse,
                "the car is parked on this booking; it ends at the exit",
            ))
        }
        "completed" | "no_show" => {
            return Err(ApiError::conflict(
                ErrorCode::BookingCompleted,
                "this booking is over",
            ))
        }
        "expired" => {
            return Err(ApiError::conflict(
                ErrorCode::BookingExpired,
                "this booking was never paid and its hold lapsed",
            ))
        }
        _ => {}
    }
    let now = state.clock.now();
    if booking.ends_at <= now {
        return Err(ApiError::conflict(
            ErrorCode::BookingCompleted,
            "this booking is over",
        ));
    }
    let during = booking
        .during()
        .ok_or_else(|| ApiError::Internal(anyhow::anyhow!("booking {} is empty", booking.id)))?;
    let rules = lot_rules(&state, booking.lot_id).await?;
    // An unpaid hold costs nothing to drop: nothing was paid, and a fee could not be taken.
    let fee = if booking.free_cancel_until >= now || booking.status == "held" {
        Money::ZERO
    } else {
        late_cancellation_fee(&mut tx, &rules, booking.price_pct, &during).await?
    };
    if booking.status == "held" {
        payments::cancel_intent_of_booking(&mut *tx, booking.id).await?;
    }
    // A paid booking gets back all it paid, less the fee (kept, and split like the payment).
    let refund = refund_on_cancel(&mut tx, &booking, fee, "cancelled_by_visitor").await?;
    sharing::cancel_booking(&mut *tx, booking.id, fee.yuan(), "cancelled_by_visitor").await?;
    let cancelled = sharing::booking(&mut *tx, booking.id)
        .await?
        .ok_or_else(|| ApiError::Internal(anyhow::anyhow!("booking {} vanished", booking.id)))?;
    sharing::insert_booking_event(
        &mut *tx,
        booking.id,
        "cancelled",
        json!({"by": "visitor", "fee": fee.to_string(), "refund": refund.to_string()}),
    )
    .await?;
    let data = webhooks::booking_data(&cancelled)?;
    webhooks::to_owner_and_visitor(&mut tx, &cancelled, "booking.cancelled", data, now).await?;
    tx.commit().await?;
    Ok(HttpResponse::Ok().json(cancelled))
}
