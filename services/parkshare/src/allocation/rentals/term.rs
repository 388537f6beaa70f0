//! A term's life after its application: cash at the booth, renewal before it lapses, the
//! reminder to renew, and an early end that gives back the unused whole days.
//!
//! A term's renter is admitted through its last day and `grace_days` more; a term renewed
//! (the next whole months, paid) carries on from the day after. Without a renewal it lapses
//! and the car is a visitor again. A reminder goes to an owner renter's webhook
//! (`rental.expiring`) [`reminder_days`](super::RentalSettings) before the end, once per term,
//! and staff list the terms to chase (`GET …/rentals?expiring_within_days=`).

use actix_web::{post, web, HttpResponse};
use chrono::{DateTime, Duration, NaiveDate, Utc};
use parkshare_allocation::rental::{self, Applicant, Term};
use parkshare_domain::money::Money;
use parkshare_domain::vehicle::VehicleClass;
use parkshare_ledger::split::refund_entry;
use parkshare_ledger::{AccountKind, Entry, Parties, Posting, Source};
use serde::{Deserialize, Serialize};
use serde_json::json;
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use super::store::{self, NewRental, Rental};
use crate::auth::{Owner, Staff};
use crate::clock::Clock;
use crate::error::{ApiError, ErrorCode};
use crate::state::AppState;
use crate::store::ledger::{self, NewTransaction};
use crate::store::payments;

/// Reminders sent per sweep; the next sweep takes the rest.
const SWEEP_BATCH_MAX: i64 = 200;
/// How often the sweep runs: reminders are a matter of days, holds of minutes.
pub const SWEEP_INTERVAL_S: u64 = 60;

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct RentalCashBody {
    #[serde(with = "rust_decimal::serde::str")]
    amount: rust_decimal::Decimal,
    /// The staff shift that took the cash.
    shift: String,
    /// Sent again with a retried request, it records the payment once.
    idempotency_key: String,
}

/// Cash at the booth for a term awaiting payment: exactly its price. A retry with the same key
/// answers the term as paid (200); the term's pending payment intent is withdrawn.
#[utoipa::path(tag = "staff", operation_id = "record_rental_cash", security(("staff_token" = [])), request_body = RentalCashBody, responses((status = 201, description = "Paid", body = super::RentalView), (status = 200, description = "A retry with the same key: the term, paid", body = super::RentalView)))]
#[post("/rentals/{id}/payments")]
pub async fn record_cash(
    state: web::Data<AppState>,
    staff: Staff,
    id: web::Path<Uuid>,
    body: crate::input::Json<RentalCashBody>,
) -> Result<HttpResponse, ApiError> {
    let amount = Money::parse(body.amount)
        .map_err(|e| ApiError::invalid(ErrorCode::InvalidAmount, e.to_string()))?;
    let shift = crate::validate::text("shift", &body.shift, 100)?;
    let key = crate::validate::text("idempotency_key", &body.idempotency_key, 100)?;
    let ledger_key = format!("rental-cash:{key}");
    let now = state.clock.now();
    let mut tx = state.db.begin().await?;
    let rental = store::rental_for_update(&mut *tx, staff.tenant_id, *id)
        .await?
        .ok_or(ApiError::NotFound("rental"))?;
    if rental.status != "awaiting_payment" {
        let recorded = match rental.payment_transaction_id {
            Some(t) => ledger::transaction_key_and_memo(&mut *tx, t)
                .await?
                .filter(|(key, _)| *key == ledger_key),
            None => None,
        };
        if let Some((_, memo)) = recorded {
            // The key paid this term: the same request retried replays; another amount or
            // shift under it is another request, not what was recorded.
            if amount.yuan() != rental.paid || !memo.ends_with(&super::cash_mark(&shift)) {
                return Err(ApiError::conflict(
                    ErrorCode::IdempotencyKeyReused,
                    "this idempotency key recorded another amount or shift for this term; \
                     use a new key for another request",
                ));
            }
            let today = super::today_in(&mut tx, rental.compound_id, now).await?;
            return Ok(HttpResponse::Ok().json(super::view(&rental, today)));
        }
        if rental.status == "expired" {
            // Its hold ran out and the sweep (or an application in its way) marked it so.
            return Err(hold_expired());
        }
        return Err(ApiError::conflict(
            ErrorCode::NotAwaitingPayment,
            format!("this term is {}, not awaiting payment", rental.status),
        ));
    }
    if rental.hold_expires_at.is_some_and(|at| at <= now) {
        return Err(hold_expired());
    }
    if amount.yuan() != rental.price {
        return Err(ApiError::invalid(
            ErrorCode::AmountNotPrice,
            format!(
                "this term costs ¥{}: record exactly that",
                Money::total(rental.price).map_err(ApiError::internal)?
            ),
        ));
    }
    let Some(transaction_id) = super::credit(
        &mut tx,
        &rental,
        &ledger_key,
        amount,
        Source::Cash,
        now,
        Some(&shift),
    )
    .await?
    else {
        return Err(ApiError::conflict(
            ErrorCode::IdempotencyKeyReused,
            "this idempotency key was used for another request; use a new key",
        ));
    };
    super::settle(&mut tx, &rental, amount, "cash", transaction_id, now).await?;
    tx.commit().await?;
    // After the commit, so this never waits on a notification holding the intent (it locks
    // the intent before the term); a payment that slips in is owed back as late.
    payments::cancel_intent_of_rental(&state.db, rental.id).await?;
    let rental = store::rental(&state.db, staff.tenant_id, rental.id)
        .await?
        .ok_or_else(|| ApiError::internal("rental vanished"))?;
    let today = super::local_today(&state, rental.compound_id).await?;
    Ok(HttpResponse::Created().json(super::view(&rental, today)))
}

fn hold_expired() -> ApiError {
    ApiError::conflict(
        ErrorCode::HoldExpired,
        "the application's hold ran out; apply again",
    )
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct RenewBody {
    months: u32,
}

/// Renews `current` for `months` more, from the day after it ends, at the filed price in force
/// when the new term begins: a new term held for its payment. Only a paid term that has not lapsed; a non-owner
/// renter only while no owner waits for the kind of space (owners first).
async fn renew(
    state: &AppState,
    tenant_id: Uuid,
    id: Uuid,
    owner: Option<Uuid>,
    months: u32,
) -> Result<HttpResponse, ApiError> {
    let now = state.clock.now();
    let mut tx = state.db.begin().await?;
    let current = store::rental_for_update(&mut *tx, tenant_id, id)
        .await?
        .filter(|r| owner.is_none() || r.owner_id == owner)
        .ok_or(ApiError::NotFound("rental"))?;
    let today = super::today_in(&mut tx, current.compound_id, now).await?;
    if current.status != "paid" {
        return Err(ApiError::conflict(
            ErrorCode::NotRenewable,
            format!(
                "{} term is not renewed: apply anew",
                super::with_article(&current.status)
            ),
        ));
    }
    if store::renewal_of(&mut *tx, current.id, now)
        .await?
        .is_some()
    {
        return Err(ApiError::conflict(
            ErrorCode::AlreadyRenewed,
            "this term was renewed already (paid, or held for its payment)",
        ));
    }
    let grace_end = current.ends_on + Duration::days(i64::from(current.grace_days));
    if today > grace_end {
        return Err(ApiError::conflict(
            ErrorCode::RentalLapsed,
            format!("this term lapsed after {grace_end}: apply anew"),
        ));
    }
    let term = Term {
        starts_on: current.starts_on,
        ends_on: current.ends_on,
    }
    .next(months)
    .map_err(|e| ApiError::invalid(ErrorCode::InvalidMonths, e.to_string()))?;
    if let (Some(space_id), "owned") = (current.space_id, current.space_kind.as_str()) {
        super::letting::require_consent(&mut *tx, space_id).await?;
    }
    if current.owner_id.is_none() {
        super::waiting::check_owners_first(
            &mut tx,
            current.compound_id,
            &current.space_kind,
            Applicant::NonOwner,
            today,
        )
        .await?;
    }
    let class = VehicleClass::parse(&current.vehicle_class)
        .ok_or_else(|| ApiError::internal("a rental's vehicle class"))?;
    let starts_at = super::first_day_start(&mut tx, current.compound_id, term.starts_on).await?;
    let priced = super::price_term(
        &mut tx,
        current.lot_id,
        class,
        current.owner_id.is_some(),
        months,
        (starts_at, now),
    )
    .await?;
    let new = NewRental {
        id: Uuid::now_v7(),
        tenant_id,
        compound_id: current.compound_id,
        lot_id: current.lot_id,
        space_id: current.space_id,
        space_kind: &current.space_kind,
        plate: &current.plate,
        vehicle_class: &current.vehicle_class,
        owner_id: current.owner_id,
        renter_name: current.renter_name.as_deref(),
        renter_phone: current.renter_phone.as_deref(),
        months: i32::try_from(months).unwrap_or(1),
        starts_on: term.starts_on,
        ends_on: term.ends_on,
        grace_days: state.rentals.grace_days,
        monthly_price: priced.monthly.yuan(),
        discount_pct: priced.discount_pct,
        price: priced.price.yuan(),
        filing_no: &priced.filing_no,
        hold_expires_at: now + Duration::minutes(super::HOLD_MIN),
        renews_id: Some(current.id),
        applied_by: if owner.is_some() { "owner" } else { "staff" },
    };
    let (rental, intent) = super::hold(&mut tx, &new, now).await?;
    tx.commit().await?;
    Ok(HttpResponse::Created().json(super::answer(state, &rental, &intent, today)))
}

/// Staff renew a paid term for more whole months: a new term held for its payment.
#[utoipa::path(tag = "staff", operation_id = "renew_rental", security(("staff_token" = [])), request_body = RenewBody, responses((status = 201, description = "Created: the renewal term held for its payment", body = super::RentalAnswer)))]
#[post("/rentals/{id}/renewal")]
pub async fn staff_renew(
    state: web::Data<AppState>,
    staff: Staff,
    id: web::Path<Uuid>,
    body: crate::input::Json<RenewBody>,
) -> Result<HttpResponse, ApiError> {
    renew(&state, staff.tenant_id, *id, None, body.months).await
}

/// An owner renews their own paid term: a new term held for its payment.
#[utoipa::path(tag = "owner", operation_id = "renew_own_rental", security(("owner_token" = [])), request_body = RenewBody, responses((status = 201, description = "Created: the renewal term held for its payment", body = super::RentalAnswer)))]
#[post("/rentals/{id}/renewal")]
pub async fn owner_renew(
    state: web::Data<AppState>,
    owner: Owner,
    id: web::Path<Uuid>,
    body: crate::input::Json<RenewBody>,
) -> Result<HttpResponse, ApiError> {
    renew(
        &state,
        owner.tenant_id,
        *id,
        Some(owner.owner_id),
        body.months,
    )
    .await
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct EndBody {
    /// The last day the renter uses the term; default: the compound's today.
    last_day: Option<NaiveDate>,
    reason: String,
}

/// A term ended early, and what of it is owed back.
#[derive(Serialize, utoipa::ToSchema)]
struct Ended {
    rental: super::RentalView,
    unused_days: i64,
    refund: Money,
    /// The refund's journal transaction: owed back to the renter, in `GET /v1/admin/refunds-owed`.
    refund_transaction_id: Option<Uuid>,
}

/// Ends a paid term after `last_day`: the unused whole days are refunded
/// (`parkshare_allocation::rental::early_end`) by reversing the payment's entries, each
/// credited account giving back its share, into `refunds_payable` — owed back to the renter
/// until staff record its payout. Once per term; a term with a paid renewal is refused (end
/// the renewal first), and a renewal still awaiting its payment is withdrawn with it.
#[utoipa::path(tag = "staff", operation_id = "end_rental_early", security(("staff_token" = [])), request_body = EndBody, responses((status = 200, description = "Ended; the unused whole days owed back", body = Ended)))]
#[post("/rentals/{id}/end")]
pub async fn end_early(
    state: web::Data<AppState>,
    staff: Staff,
    id: web::Path<Uuid>,
    body: crate::input::Json<EndBody>,
) -> Result<HttpResponse, ApiError> {
    let reason = crate::validate::text("reason", &body.reason, 500)?;
    let now = state.clock.now();
    let mut tx = state.db.begin().await?;
    let rental = store::rental_for_update(&mut *tx, staff.tenant_id, *id)
        .await?
        .ok_or(ApiError::NotFound("rental"))?;
    let today = super::today_in(&mut tx, rental.compound_id, now).await?;
    if rental.status != "paid" {
        return Err(ApiError::conflict(
            ErrorCode::NotInForce,
            format!(
                "{} term is not ended early",
                super::with_article(&rental.status)
            ),
        ));
    }
    if today > rental.ends_on {
        return Err(ApiError::conflict(
            ErrorCode::NotInForce,
            format!(
                "this term ended on {} (the car is admitted through its grace): nothing is \
                 left to end early",
                rental.ends_on
            ),
        ));
    }
    if rental.renewed_by.is_some() {
        return Err(ApiError::conflict(
            ErrorCode::Renewed,
            "this term has a paid renewal: end the renewal first",
        ));
    }
    let last_day = body.last_day.unwrap_or(today);
    if last_day < today || last_day >= rental.ends_on {
        return Err(ApiError::invalid(
            ErrorCode::InvalidLastDay,
            format!(
                "the last day of use is from today ({today}) to the day before the term's end ({})",
                rental.ends_on
            ),
        ));
    }
    let term = Term {
        starts_on: rental.starts_on,
        ends_on: rental.ends_on,
    };
    let paid = Money::total(rental.paid).map_err(ApiError::internal)?;
    let end = rental::early_end(term, paid, last_day);
    let transaction_id = match end.refund.is_zero() {
        true => None,
        false => Some(post_refund(&mut tx, &rental, end.refund, end.unused_days, &reason).await?),
    };
    store::end_early(&mut *tx, rental.id, last_day, end.refund.yuan()).await?;
    // A renewal still awaiting its payment goes with the term it would have continued.
    let withdrawn = store::cancel_unpaid_renewal(&mut *tx, rental.id).await?;
    tx.commit().await?;
    if let Some(renewal) = withdrawn {
        payments::cancel_intent_of_rental(&state.db, renewal).await?;
    }
    let rental = store::rental(&state.db, staff.tenant_id, rental.id)
        .await?
        .ok_or_else(|| ApiError::internal("rental vanished"))?;
    Ok(HttpResponse::Ok().json(Ended {
        rental: super::view(&rental, today),
        unused_days: end.unused_days,
        refund: end.refund,
        refund_transaction_id: transaction_id,
    }))
}

/// Reverses `refund` of the term's payment: every account the payment credited gives back its
/// share (fen-exact, `refund_entry`), and the sum is owed back to the renter.
async fn post_refund(
    tx: &mut PgConnection,
    rental: &Rental,
    refund: Money,
    unused_days: i64,
    reason: &str,
) -> Result<Uuid, ApiError> {
    let paid_with = rental
        .payment_transaction_id
        .ok_or_else(|| ApiError::internal("a paid rental without its transaction"))?;
    let paid_entry =
        Entry::new(ledger::entry_of(&mut *tx, paid_with).await?).map_err(ApiError::internal)?;
    let parties = Parties {
        tenant_id: rental.tenant_id,
        compound_id: rental.compound_id,
    };
    let source = parties.source(match rental.payment_method.as_deref() {
        Some("cash") => Source::Cash,
        _ => Source::Provider,
    });
    let already = Money::total(rental.refunded).map_err(ApiError::internal)?;
    let reversed =
        refund_entry(&paid_entry, source, already, refund).map_err(ApiError::internal)?;
    // The money does not leave yet: what the source would give back is owed to the renter.
    let owed = parties.account(AccountKind::RefundsPayable);
    let entry = Entry::new(reversed.postings().iter().map(|p| Posting {
        account: if p.account == source { owed } else { p.account },
        amount: p.amount,
    }))
    .map_err(ApiError::internal)?;
    let key = format!("rental-end:{}", rental.id);
    let memo = format!(
        "退款待付：月租 {} 提前退租，退未用 {unused_days} 天（{reason}）",
        rental.plate
    );
    let t = NewTransaction {
        tenant_id: rental.tenant_id,
        idempotency_key: &key,
        kind: "refund",
        session_id: None,
        payment_id: None,
        booking_id: None,
        rental_id: Some(rental.id),
        compound_id: Some(rental.compound_id),
        memo: &memo,
    };
    let (transaction_id, created) = ledger::post(&mut *tx, &t, &entry).await?;
    if !created {
        return Err(ApiError::internal("a term's early end was posted twice"));
    }
    Ok(transaction_id)
}

/// What one sweep did.
#[derive(Debug, Default, Serialize, PartialEq, Eq)]
pub struct SweepReport {
    /// Unpaid holds that ran out.
    pub expired: u64,
    /// Renters reminded that their term ends soon.
    pub reminded: usize,
}

/// Expires unpaid holds and sends the reminders due at `now`.
pub async fn sweep(
    db: &PgPool,
    now: DateTime<Utc>,
    reminder_days: i32,
) -> Result<SweepReport, ApiError> {
    let mut tx = db.begin().await?;
    let expired = store::expire_holds(&mut *tx, now).await?;
    let due = store::due_reminders(&mut tx, now, reminder_days, SWEEP_BATCH_MAX).await?;
    for r in &due {
        store::mark_reminded(&mut *tx, r.id, now).await?;
        if let Some(owner_id) = r.owner_id {
            let data = json!({
                "rental_id": r.id, "plate": r.plate, "space_code": r.space_code,
                "ends_on": r.ends_on,
                "admitted_until": r.ends_on + Duration::days(i64::from(r.grace_days)),
            });
            crate::webhooks::to_owner(&mut tx, r.tenant_id, owner_id, "rental.expiring", data, now)
                .await?;
        }
    }
    tx.commit().await?;
    Ok(SweepReport {
        expired,
        reminded: due.len(),
    })
}

/// Sweeps every [`SWEEP_INTERVAL_S`] as of `clock`'s now until shutdown (a sweep under way
/// commits first).
pub fn spawn_sweeper(
    workers: &mut crate::workers::Workers,
    db: PgPool,
    reminder_days: i32,
    clock: Clock,
) {
    workers.supervise("rental_sweep", move |shutdown| {
        let (db, clock) = (db.clone(), clock.clone());
        async move {
            let mut tick = tokio::time::interval(std::time::Duration::from_secs(SWEEP_INTERVAL_S));
            while shutdown.until(tick.tick()).await.is_some() {
                match sweep(&db, clock.now(), reminder_days).await {
                    Ok(report) if report != SweepReport::default() => {
                        tracing::info!(?report, "rentals swept");
                    }
                    Ok(_) => {}
                    Err(e) => tracing::warn!(error = %e, "rental sweep failed"),
                }
            }
        }
    });
}
