//! Paying for a stay: payment intents (prepaid in the lot or at the exit), provider callbacks,
//! cash at a staffed booth, and refunds. Every payment and refund is one ledger transaction,
//! written in the same database transaction as the payment itself. An intent may also pay a
//! booking ahead of its stay (`sharing::visitor`) or a rental's term (`allocation::rentals`);
//! the callback confirms those through their own module, under the intent's lock, with the
//! same outcomes.

use crate::error::ErrorCode;
use crate::input::AnyJson;
use actix_web::{get, post, web, HttpRequest, HttpResponse};
use chrono::{DateTime, Duration, Utc};
use parkshare_domain::decision::StayStatus;
use parkshare_domain::money::Money;
use parkshare_domain::plate::Plate;
use parkshare_ledger::split::{refund_entry, Parties};
use parkshare_ledger::{Entry, Source};
use serde::Deserialize;
use uuid::Uuid;

use super::posting::{credit_payment, record_unmatched_receipt};
use super::provider::{self, Delivery, Notification, SIGNATURE_HEADER};
use crate::auth::Staff;
use crate::billing;
use crate::error::ApiError;
use crate::state::AppState;
use crate::store::ledger::{self, NewTransaction};
use crate::store::payments::{self, NewCallback, NewIntent, NewPayment};
use crate::store::{registry, sessions};

/// How long a driver has to pay an intent: long enough to pay on a phone, short enough that
/// the amount is still what the stay costs.
const INTENT_TTL_MIN: i64 = 15;
/// How far ahead of our clock a quoted instant (an exit camera's capture time) may be.
const QUOTE_AHEAD_MIN_MAX: i64 = 5;
/// Longest delay the simulated provider may be asked for.
const SIMULATED_DELAY_MS_MAX: u64 = 60_000;
/// Most copies of one notification the simulated provider may be asked to send.
const SIMULATED_COPIES_MAX: u32 = 3;

#[derive(Deserialize, utoipa::ToSchema)]
struct IntentBody {
    plate: String,
}

/// A driver asks to pay what their stay costs now: an intent for the amount due, valid for
/// [`INTENT_TTL_MIN`]. Asking again for the same amount returns the same intent.
#[utoipa::path(tag = "public", operation_id = "create_intent", request_body = IntentBody, responses((status = 201, description = "Created", body = IntentView), (status = 200, description = "The pending intent for the same amount, answered again", body = IntentView)))]
#[post("/v1/public/lots/{lot_id}/payment-intents")]
async fn create_intent(
    state: web::Data<AppState>,
    lot_id: web::Path<Uuid>,
    body: crate::input::Json<IntentBody>,
) -> Result<HttpResponse, ApiError> {
    let plate = Plate::parse(&body.plate)
        .map_err(|e| ApiError::invalid(ErrorCode::MalformedPlate, e.to_string()))?;
    let rules = registry::lot_rules(&state.db, *lot_id)
        .await?
        .ok_or(ApiError::NotFound("lot"))?;
    let session = sessions::open_session(&state.db, rules.lot_id, plate.as_str())
        .await?
        .ok_or(ApiError::NotFound("parking session"))?;
    let now = state.clock.now();
    let mut tx = state.db.begin().await?;
    let priced = billing::price(&mut tx, &rules, &session, now).await?;
    let paid = Money::total(session.paid).map_err(ApiError::internal)?;
    let due = priced.bill.total.saturating_sub(paid);
    if due.is_zero() {
        return Err(ApiError::invalid(
            ErrorCode::NothingDue,
            "nothing is owed for this stay now",
        ));
    }
    if let Some(pending) = payments::pending_intent(&mut *tx, session.id).await? {
        if pending.amount == due.yuan() && pending.expires_at > now {
            return Ok(HttpResponse::Ok().json(intent_view(&state, &pending)));
        }
        let status = if pending.expires_at > now {
            "cancelled"
        } else {
            "expired"
        };
        payments::set_intent_status(&mut *tx, pending.id, status).await?;
    }
    let bill = serde_json::to_value(&priced.bill).map_err(ApiError::internal)?;
    let new_intent = NewIntent {
        tenant_id: session.tenant_id,
        pays: payments::Pays::Stay(session.id),
        amount: due.yuan(),
        expires_at: now + Duration::minutes(INTENT_TTL_MIN),
        bill: &bill,
        priced_at: now,
        filing_no: priced.filing_no.as_deref(),
    };
    let intent = payments::insert_intent(&mut *tx, &new_intent)
        .await
        .map_err(|e| {
            match crate::error::is_unique_violation(&e, "payment_intents_one_pending") {
                true => ApiError::conflict(
                    ErrorCode::ConcurrentIntent,
                    "another payment for this stay was started; retry",
                ),
                false => e.into(),
            }
        })?;
    tx.commit().await?;
    Ok(HttpResponse::Created().json(intent_view(&state, &intent)))
}

/// A payment intent: what a driver (or a visitor, or a renter) is asked to pay, until when.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub(crate) struct IntentView {
    intent_id: Uuid,
    /// What it pays: a stay, a booking or a rental's term (one of the three).
    session_id: Option<Uuid>,
    booking_id: Option<Uuid>,
    rental_id: Option<Uuid>,
    #[schema(value_type = String, example = "12.50")]
    amount: Money,
    currency: String,
    provider: String,
    /// `pending`, `paid`, `expired` or `cancelled`.
    status: String,
    expires_at: DateTime<Utc>,
    paid_at: Option<DateTime<Utc>>,
    /// The tariff's filing number the amount was priced under.
    filing_no: Option<String>,
    /// The itemised bill the amount came from.
    #[schema(value_type = Object)]
    bill: serde_json::Value,
    /// Where to pay it, when the simulated provider is on.
    pay_url: Option<String>,
}

pub(crate) fn intent_view(state: &AppState, intent: &payments::Intent) -> IntentView {
    IntentView {
        intent_id: intent.id,
        session_id: intent.session_id,
        booking_id: intent.booking_id,
        rental_id: intent.rental_id,
        amount: Money::total(intent.amount).unwrap_or_default(),
        currency: intent.currency.clone(),
        provider: intent.provider.clone(),
        status: intent.status.clone(),
        expires_at: intent.expires_at,
        paid_at: intent.paid_at,
        filing_no: intent.filing_no.clone(),
        bill: intent.bill.clone(),
        pay_url: state
            .payments
            .simulated
            .then(|| format!("/v1/simulated-provider/intents/{}/pay", intent.id)),
    }
}

/// An intent with what of the money paid through it is owed back.
#[derive(serde::Serialize, utoipa::ToSchema)]
struct IntentReceipt {
    #[serde(flatten)]
    intent: IntentView,
    /// Paid through this intent and owed back to the payer (paid twice, too much, late or of
    /// the wrong amount).
    #[schema(value_type = String, example = "0.00")]
    owed_back: Money,
}

/// What the simulated provider will notify.
#[derive(serde::Serialize, utoipa::ToSchema)]
struct SimulatedNotification {
    notification_id: String,
}

/// What became of a provider's notification.
#[derive(serde::Serialize, utoipa::ToSchema)]
struct CallbackResult {
    /// `credited`, `duplicate`, `unknown_intent`, `foreign_currency`, `second_charge`,
    /// `amount_mismatch`, `late` or `overpaid`: all but `credited` and `duplicate` leave the
    /// money owed back.
    result: &'static str,
}

/// The intent and, once paid, the receipt: the itemised bill the amount came from.
#[utoipa::path(tag = "public", operation_id = "get_intent", responses((status = 200, description = "Done", body = IntentReceipt)))]
#[get("/v1/public/payment-intents/{id}")]
async fn get_intent(
    state: web::Data<AppState>,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    let intent = payments::intent(&state.db, *id)
        .await?
        .ok_or(ApiError::NotFound("payment intent"))?;
    // What of the money paid through this intent is owed back (paid twice, too much, late or
    // of the wrong amount): a receipt must not say only "paid" when some is to be refunded.
    let owed_back = payments::owed_back_for_intent(&state.db, intent.tenant_id, intent.id).await?;
    Ok(HttpResponse::Ok().json(IntentReceipt {
        intent: intent_view(&state, &intent),
        owed_back: Money::total(owed_back).map_err(ApiError::internal)?,
    }))
}

#[derive(Deserialize, Default, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct SimulatedPay {
    copies: Option<u32>,
    delay_ms: Option<u64>,
    /// Pay a different amount than asked (to exercise the mismatch path).
    amount: Option<rust_decimal::Decimal>,
}

/// The simulated provider's "driver paid" button: answers at once, then calls back the
/// service like a real provider would. Only when the simulated provider is enabled.
#[utoipa::path(tag = "provider", operation_id = "simulated_pay", request_body(content = Option<SimulatedPay>, description = "Optional: an empty body is none"), responses((status = 202, description = "Accepted", body = SimulatedNotification)))]
#[post("/v1/simulated-provider/intents/{id}/pay")]
async fn simulated_pay(
    state: web::Data<AppState>,
    id: web::Path<Uuid>,
    body: crate::input::MaybeJson<SimulatedPay>,
) -> Result<HttpResponse, ApiError> {
    if !state.payments.simulated {
        return Err(ApiError::NotFound("route"));
    }
    let body = body.0.unwrap_or_default();
    let intent = payments::intent(&state.db, *id)
        .await?
        .ok_or(ApiError::NotFound("payment intent"))?;
    let copies = body.copies.unwrap_or(1);
    let delay_ms = body.delay_ms.unwrap_or(0);
    if !(1..=SIMULATED_COPIES_MAX).contains(&copies) || delay_ms > SIMULATED_DELAY_MS_MAX {
        return Err(ApiError::invalid(
            ErrorCode::InvalidField,
            format!(
                "copies: 1 to {SIMULATED_COPIES_MAX}; delay_ms: at most {SIMULATED_DELAY_MS_MAX}"
            ),
        ));
    }
    let notification = Notification {
        notification_id: format!("sim-{}", Uuid::new_v4().simple()),
        intent_id: intent.id,
        amount: body.amount.unwrap_or(intent.amount),
        currency: intent.currency.clone(),
        paid_at: state.clock.now(),
    };
    provider::deliver(
        state.http.clone(),
        state.payments.provider_secret.clone(),
        format!(
            "{}/v1/payments/callbacks/simulated",
            state.payments.callback_base_url
        ),
        notification.clone(),
        Delivery {
            copies,
            delay: std::time::Duration::from_millis(delay_ms),
        },
    );
    Ok(HttpResponse::Accepted().json(SimulatedNotification {
        notification_id: notification.notification_id,
    }))
}

/// A provider's notification. Verified (signature, then amount and currency against the
/// intent), recorded whatever it says, and credited at most once per intent. Every one that
/// reports money received ends in the ledger: credited to the stay, or — paid late, of the
/// wrong amount, or a second charge for an intent already paid — owed back to the driver
/// (`refunds_payable`). Only a retry of a notification already handled (same id) moves no
/// money. All are answered 200 so the provider stops retrying.
#[utoipa::path(
    tag = "provider",
    operation_id = "provider_callback",
    request_body(content = AnyJson, description = "The provider's notification (JSON), signed with the provider secret (HMAC-SHA256 in the signature header)", content_type = "application/json"),
    responses(
        (status = 200, description = "Recorded (whatever it says): the provider stops retrying", body = CallbackResult),
        (status = 403, description = "The signature does not verify: `bad_signature`", body = crate::error::ErrorBody),
    )
)]
#[post("/v1/payments/callbacks/simulated")]
async fn callback(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let signature = req
        .headers()
        .get(SIGNATURE_HEADER)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if !provider::verify(&state.payments.provider_secret, &body, signature) {
        return Err(ApiError::Forbidden {
            code: ErrorCode::BadSignature,
            message: "the notification's signature does not verify".into(),
        });
    }
    let raw: serde_json::Value = serde_json::from_slice(&body)
        .map_err(|e| ApiError::bad_request(ErrorCode::InvalidBody, e.to_string()))?;
    let n: Notification = serde_json::from_value(raw.clone())
        .map_err(|e| ApiError::bad_request(ErrorCode::InvalidBody, e.to_string()))?;
    let amount = received(n.amount)?;
    let mut tx = state.db.begin().await?;
    let record = |outcome: &'static str, intent_id: Option<Uuid>| NewCallback {
        provider: "simulated",
        notification_id: &n.notification_id,
        intent_id,
        amount: Some(amount.yuan()),
        outcome,
        body: &raw,
    };
    let Some(intent) = payments::intent_for_update(&mut *tx, n.intent_id).await? else {
        payments::insert_callback(&mut *tx, &record("unknown_intent", None)).await?;
        tx.commit().await?;
        tracing::warn!(intent_id = %n.intent_id, "provider notification for an unknown intent");
        return Ok(HttpResponse::Ok().json(CallbackResult {
            result: "unknown_intent",
        }));
    };
    // When the money counts as paid: the provider's `paid_at`, but never later than we heard of
    // it (a provider clock running fast must not make an on-time payment late, nor void the
    // intent before its `expires_at`) and never before the intent existed (nor book a payment
    // into a long-closed period).
    let now = state.clock.now();
    let paid_at = n.paid_at.min(now).max(intent.created_at);
    if paid_at != n.paid_at {
        tracing::warn!(intent_id = %intent.id, provider_paid_at = %n.paid_at, %paid_at, "provider's paid_at outside the intent's life; using the nearest instant within it");
    }
    // Under the intent's lock: a retry of a notification already handled changes nothing;
    // a new charge for an intent already paid is money received twice, owed back.
    let mut outcome =
        if payments::notification_seen(&mut *tx, "simulated", &n.notification_id).await? {
            "duplicate"
        } else if n.currency != "CNY" {
            // The ledger keeps yuan: money in another currency is recorded and listed for the
            // operator (`operator::unbooked_receipts`), never booked as if it were yuan.
            "foreign_currency"
        } else if intent.status == "paid" {
            "second_charge"
        } else if amount.yuan() != intent.amount {
            "amount_mismatch"
        } else if intent.status != "pending" || paid_at > intent.expires_at {
            "late"
        } else {
            "credited"
        };
    if let (Some(booking_id), "credited") = (intent.booking_id, outcome) {
        // A booking's price: the held booking is confirmed, unless its hold already lapsed.
        let confirm = state.payments.paid_intents.booking;
        let confirmed = confirm(&mut tx, &intent, booking_id, amount, paid_at, now).await?;
        if !confirmed {
            outcome = "late";
        }
    }
    if let (Some(rental_id), "credited") = (intent.rental_id, outcome) {
        // A rental's term: paid, unless its hold lapsed or it was paid at the booth meanwhile.
        let confirm = state.payments.paid_intents.rental;
        let confirmed = confirm(&mut tx, &intent, rental_id, amount, paid_at, now).await?;
        if !confirmed {
            outcome = "late";
        }
    }
    match (outcome, intent.session_id) {
        ("credited", Some(session_id)) => {
            payments::mark_intent_paid(&mut *tx, intent.id, paid_at).await?;
            // Paid meanwhile at the booth (or by another intent): only what is still owed is
            // revenue; the rest is owed back to the driver.
            let owed =
                owed_for_stay(&mut tx, intent.tenant_id, session_id, intent.priced_at).await?;
            let revenue = amount.min(owed);
            let excess = amount.saturating_sub(revenue);
            if !excess.is_zero() {
                let why = format!("退款待付：已缴清，多付（通知 {}）", n.notification_id);
                record_unmatched_receipt(
                    &mut tx,
                    intent.tenant_id,
                    (intent.session_id, intent.booking_id, intent.rental_id),
                    &n.notification_id,
                    excess,
                    &why,
                )
                .await?;
            }
            if revenue.is_zero() {
                outcome = "overpaid";
            }
            let who = payments::session_parties(&mut *tx, session_id, paid_at)
                .await?
                .ok_or_else(|| ApiError::internal("payment for a missing session"))?;
            let payment_id = Uuid::new_v4();
            let key = format!("intent:{}", intent.id);
            let credited = if revenue.is_zero() {
                None
            } else {
                credit_payment(
                    &mut tx,
                    &who,
                    &key,
                    payment_id,
                    revenue,
                    Source::Provider,
                    paid_at,
                )
                .await?
            };
            // The intent is locked and was pending, so its key is new; were it not, the
            // payment is on record already.
            if let Some(transaction_id) = credited {
                let payment = NewPayment {
                    id: payment_id,
                    session_id,
                    amount: revenue.yuan(),
                    method: "provider",
                    intent_id: Some(intent.id),
                    shift: None,
                    paid_at,
                    // The amount was the quote of the intent's instant.
                    priced_at: intent.priced_at.min(paid_at),
                    transaction_id,
                };
                payments::insert_payment(&mut tx, &payment).await?;
            }
        }
        ("late" | "amount_mismatch" | "second_charge", _) => {
            // Only lateness ends the intent: a wrong amount (a bad notification, a driver's
            // mistake) leaves it payable until it expires, so the right payment still counts.
            if outcome == "late" && intent.status == "pending" {
                payments::set_intent_status(&mut *tx, intent.id, "expired").await?;
            }
            let why = format!("退款待付：{outcome}（通知 {}）", n.notification_id);
            record_unmatched_receipt(
                &mut tx,
                intent.tenant_id,
                (intent.session_id, intent.booking_id, intent.rental_id),
                &n.notification_id,
                amount,
                &why,
            )
            .await?;
        }
        _ => {}
    }
    payments::insert_callback(&mut *tx, &record(outcome, Some(intent.id))).await?;
    tx.commit().await?;
    tracing::info!(intent_id = %intent.id, outcome, "provider notification");
    Ok(HttpResponse::Ok().json(CallbackResult { result: outcome }))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct CashBody {
    #[serde(with = "rust_decimal::serde::str")]
    amount: rust_decimal::Decimal,
    /// The staff shift that took the cash, e.g. "2026-11-23 早班 王芳".
    shift: String,
    /// Sent again with a retried request, it records the payment once.
    idempotency_key: String,
    /// The `at` of the quote (or the exit read) whose amount this cash pays: the stay is
    /// settled up to that instant, so a price step between the quote and the payment does
    /// not refuse the car. At most [`INTENT_TTL_MIN`] minutes old; defaults to now.
    quoted_at: Option<DateTime<Utc>>,
    /// The driver handed over more than was owed and was given the change: what is recorded
    /// is what was owed. Without it, an amount above what is owed is refused.
    #[serde(default)]
    change_given: bool,
}

/// What is still owed for a stay priced at `at`: its final fee once it has left, else its
/// price at `at`, less everything paid. Locks the stay's row, so that two payments for one stay
/// (a phone and the booth) are judged one after the other: a stay is never credited more than
/// its fee (issue 21).
async fn owed_for_stay(
    tx: &mut sqlx::PgConnection,
    tenant_id: Uuid,
    session_id: Uuid,
    at: DateTime<Utc>,
) -> Result<Money, ApiError> {
    let session = sessions::session_for_update(&mut *tx, tenant_id, session_id)
        .await?
        .ok_or_else(|| ApiError::internal("payment for a missing session"))?;
    let paid = Money::total(session.paid).map_err(ApiError::internal)?;
    let total = match session.fee {
        Some(fee) if session.status != StayStatus::Open => {
            Money::total(fee).map_err(ApiError::internal)?
        }
        _ => {
            let rules = registry::lot_rules(&mut *tx, session.lot_id)
                .await?
                .ok_or_else(|| ApiError::internal("payment for a stay in a missing lot"))?;
            billing::price(tx, &rules, &session, at).await?.bill.total
        }
    };
    Ok(total.saturating_sub(paid))
}

/// An amount staff enter (cash, a refund): positive, in whole fen, at most one amount's bound;
/// 422 `invalid_amount` saying which rule it broke.
fn positive(amount: rust_decimal::Decimal) -> Result<Money, ApiError> {
    match Money::parse(amount) {
        Ok(m) if !m.is_zero() => Ok(m),
        Ok(_) => Err(ApiError::invalid(
            ErrorCode::InvalidAmount,
            "amount must be positive",
        )),
        Err(e) => Err(ApiError::invalid(ErrorCode::InvalidAmount, e.to_string())),
    }
}

/// The most a stored payment can carry (`numeric(12, 2)`).
const RECEIVED_YUAN_MAX: rust_decimal::Decimal = rust_decimal::dec!(9_999_999_999.99);

/// What a provider says it received. Not bounded like an amount typed in: money received is
/// booked whatever its size (above the intent's amount it is owed back), up to what a payment
/// can be stored as; a negative, zero or sub-fen amount is not a payment (400).
fn received(amount: rust_decimal::Decimal) -> Result<Money, ApiError> {
    let bad = |why: &str| ApiError::bad_request(ErrorCode::InvalidBody, format!("amount {why}"));
    match Money::total(amount) {
        Ok(m) if m.is_zero() => Err(bad("must be positive")),
        Ok(m) if m.yuan() > RECEIVED_YUAN_MAX => Err(bad("exceeds what a payment can carry")),
        Ok(m) => Ok(m),
        Err(e) => Err(bad(&e.to_string())),
    }
}

/// Cash taken at a staffed booth for a session. The next exit read within the grace opens.
#[utoipa::path(tag = "staff", operation_id = "record_cash", security(("staff_token" = [])), request_body = CashBody, responses((status = 201, description = "Created", body = payments::Payment), (status = 200, description = "The same request retried: the payment first recorded", body = payments::Payment)))]
#[post("/sessions/{id}/payments")]
async fn record_cash(
    state: web::Data<AppState>,
    staff: Staff,
    id: web::Path<Uuid>,
    body: crate::input::Json<CashBody>,
) -> Result<HttpResponse, ApiError> {
    let amount = positive(body.amount)?;
    let shift = crate::validate::text("shift", &body.shift, 100)?;
    let key = crate::validate::text("idempotency_key", &body.idempotency_key, 100)?;
    // One connection for the transaction and the answer read after it.
    let mut db = state.db.acquire().await?;
    let mut tx = sqlx::Connection::begin(&mut *db).await?;
    let ledger_key = format!("cash:{key}");
    let now = state.clock.now();
    let facts = payments::cash_facts(&mut tx, staff.tenant_id, *id, &ledger_key, now)
        .await?
        .ok_or(ApiError::NotFound("session"))?;
    if facts.recorded {
        // A retry of a payment already recorded answers with it.
        let existing = payments::payment_by_key(&mut *tx, staff.tenant_id, &ledger_key).await?;
        return cash_replay(
            existing.ok_or_else(|| ApiError::internal("payment vanished"))?,
            (*id, &shift),
            &body,
        );
    }
    let quoted_at = body.quoted_at.unwrap_or(now);
    // A camera's clock may run a little ahead of ours; its read counts as priced now.
    if quoted_at > now + Duration::minutes(QUOTE_AHEAD_MIN_MAX)
        || quoted_at < now - Duration::minutes(INTENT_TTL_MIN)
    {
        return Err(ApiError::invalid(
            ErrorCode::InvalidQuotedAt,
            format!("quoted_at must be within the last {INTENT_TTL_MIN} minutes; quote again"),
        ));
    }
    let owed = owed_for_stay(
        &mut tx,
        staff.tenant_id,
        facts.parties.session_id,
        quoted_at,
    )
    .await?;
    if amount > owed {
        // A retry that waited for this stay's lock while its first try paid it: `facts` was
        // read before the wait; the payment is there now.
        if let Some(existing) =
            payments::payment_by_key(&mut *tx, staff.tenant_id, &ledger_key).await?
        {
            return cash_replay(existing, (*id, &shift), &body);
        }
    }
    if owed.is_zero() {
        return Err(ApiError::invalid(
            ErrorCode::NothingDue,
            "nothing is owed for this stay: it is paid",
        ));
    }
    let amount = match (amount > owed, body.change_given) {
        (false, _) => amount,
        (true, true) => owed,
        (true, false) => {
            return Err(ApiError::invalid(
                ErrorCode::AmountExceedsDue,
                format!(
                    "¥{owed} is owed for this stay; record that, or set change_given if the \
                     driver was given change"
                ),
            ))
        }
    };
    let payment_id = Uuid::new_v4();
    let credited = credit_payment(
        &mut tx,
        &facts.parties,
        &ledger_key,
        payment_id,
        amount,
        Source::Cash,
        now,
    )
    .await?;
    let Some(transaction_id) = credited else {
        // The same request, racing this one, was recorded first.
        tx.rollback().await?;
        let existing = payments::payment_by_key(&mut *db, staff.tenant_id, &ledger_key).await?;
        return cash_replay(
            existing.ok_or_else(|| ApiError::internal("raced payment vanished"))?,
            (*id, &shift),
            &body,
        );
    };
    let payment = NewPayment {
        id: payment_id,
        session_id: facts.parties.session_id,
        amount: amount.yuan(),
        method: "cash",
        intent_id: None,
        shift: Some(&shift),
        paid_at: now,
        priced_at: quoted_at.min(now),
        transaction_id,
    };
    payments::insert_payment(&mut tx, &payment).await?;
    // Committed before the read-back: the postings' account rows are not held for it.
    tx.commit().await?;
    if amount == owed {
        // Paid in full at the booth: the phone's pending intent is withdrawn, so the driver is
        // not asked to pay again. After the commit, so this never waits on a notification that
        // holds the intent (it locks the intent before the stay); a payment that slips in is
        // owed back as late.
        payments::cancel_pending_intents(&mut *db, facts.parties.session_id).await?;
    }
    let payment = payments::payment_by_key(&mut *db, staff.tenant_id, &ledger_key)
        .await?
        .ok_or_else(|| ApiError::internal("payment vanished"))?;
    Ok(HttpResponse::Created().json(payment))
}

/// The answer to a request whose idempotency key was already used: the first result when the
/// request is the same one retried, else 409 — a key reused for another request is a client's
/// error that must not pass for success.
fn replay(first: impl serde::Serialize, same: bool) -> Result<HttpResponse, ApiError> {
    if same {
        Ok(HttpResponse::Ok().json(first))
    } else {
        Err(ApiError::conflict(
            ErrorCode::IdempotencyKeyReused,
            "this idempotency key was used for another request; use a new key",
        ))
    }
}

/// A cash retry asks the same if it names the same stay, shift and amount (with change given,
/// what was recorded is the amount owed, at most the amount handed over).
fn cash_replay(
    first: payments::Payment,
    (session_id, shift): (Uuid, &str),
    body: &CashBody,
) -> Result<HttpResponse, ApiError> {
    let amount_agrees = if body.change_given {
        first.amount <= body.amount
    } else {
        first.amount == body.amount
    };
    let same =
        first.session_id == session_id && first.shift.as_deref() == Some(shift) && amount_agrees;
    replay(first, same)
}

fn refund_replay(
    first: payments::Refund,
    (payment_id, reason): (Uuid, &str),
    amount: Money,
) -> Result<HttpResponse, ApiError> {
    let same =
        first.payment_id == payment_id && first.amount == amount.yuan() && first.reason == reason;
    replay(first, same)
}

/// A session's payments and refunds.
#[utoipa::path(tag = "staff", operation_id = "list_payments", security(("staff_token" = [])), responses((status = 200, description = "Done", body = Vec<payments::Payment>)))]
#[get("/sessions/{id}/payments")]
async fn list_payments(
    state: web::Data<AppState>,
    staff: Staff,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    let session = sessions::session(&state.db, staff.tenant_id, *id)
        .await?
        .ok_or(ApiError::NotFound("session"))?;
    Ok(HttpResponse::Ok().json(payments::payments_of_session(&state.db, session.id).await?))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct RefundBody {
    #[serde(with = "rust_decimal::serde::str")]
    amount: rust_decimal::Decimal,
    reason: String,
    idempotency_key: String,
}

/// Refunds part or all of a payment by a reversing transaction: every account the payment
/// credited gives back its share. Never more than was paid, in any number of refunds.
#[utoipa::path(tag = "staff", operation_id = "refund_payment", security(("staff_token" = [])), request_body = RefundBody, responses((status = 201, description = "Created", body = payments::Refund), (status = 200, description = "The same request retried: the refund first recorded", body = payments::Refund)))]
#[post("/payments/{id}/refunds")]
async fn refund(
    state: web::Data<AppState>,
    staff: Staff,
    id: web::Path<Uuid>,
    body: crate::input::Json<RefundBody>,
) -> Result<HttpResponse, ApiError> {
    let amount = positive(body.amount)?;
    let reason = crate::validate::text("reason", &body.reason, 500)?;
    let key = crate::validate::text("idempotency_key", &body.idempotency_key, 100)?;
    let mut tx = state.db.begin().await?;
    let payment = payments::payment_for_update(&mut *tx, staff.tenant_id, *id)
        .await?
        .ok_or(ApiError::NotFound("payment"))?;
    let ledger_key = format!("refund:{key}");
    if let Some(existing) = payments::refund_by_key(&mut *tx, staff.tenant_id, &ledger_key).await? {
        return refund_replay(existing, (*id, &reason), amount);
    }
    let Some(transaction_id) = payment.transaction_id else {
        return Err(ApiError::conflict(
            ErrorCode::NotRefundable,
            "this payment predates the ledger; refund it at the booth",
        ));
    };
    let paid_entry = Entry::new(ledger::entry_of(&mut *tx, transaction_id).await?)
        .map_err(ApiError::internal)?;
    let source = Parties {
        tenant_id: payment.tenant_id,
        compound_id: payment.compound_id,
    }
    .source(if payment.method == "cash" {
        Source::Cash
    } else {
        Source::Provider
    });
    let already = Money::total(payment.refunded).map_err(ApiError::internal)?;
    let entry = refund_entry(&paid_entry, source, already, amount).map_err(|e| match e {
        parkshare_ledger::RefundError::MoreThanPaid { .. } => {
            ApiError::invalid(ErrorCode::RefundExceedsPayment, e.to_string())
        }
        other => ApiError::internal(other),
    })?;
    let t = NewTransaction {
        tenant_id: staff.tenant_id,
        idempotency_key: &ledger_key,
        kind: "refund",
        session_id: Some(payment.session_id),
        payment_id: Some(payment.id),
        booking_id: None,
        rental_id: None,
        compound_id: Some(payment.compound_id),
        memo: &reason,
    };
    let (transaction_id, created) = ledger::post(&mut tx, &t, &entry).await?;
    if !created {
        tx.rollback().await?;
        let existing = payments::refund_by_key(&state.db, staff.tenant_id, &ledger_key).await?;
        return refund_replay(
            existing.ok_or_else(|| ApiError::internal("raced refund vanished"))?,
            (*id, &reason),
            amount,
        );
    }
    payments::insert_refund(&mut tx, &payment, amount.yuan(), &reason, transaction_id).await?;
    tx.commit().await?;
    let refund = payments::refund_by_key(&state.db, staff.tenant_id, &ledger_key)
        .await?
        .ok_or_else(|| ApiError::internal("refund vanished"))?;
    Ok(HttpResponse::Created().json(refund))
}

pub fn public_routes(cfg: &mut utoipa_actix_web::service_config::ServiceConfig) {
    cfg.service(create_intent)
        .service(get_intent)
        .service(simulated_pay)
        .service(callback);
}

pub fn admin_routes(cfg: &mut utoipa_actix_web::service_config::ServiceConfig) {
    cfg.service(record_cash)
        .service(list_payments)
        .service(refund);
}
