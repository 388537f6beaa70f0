//! Payment intents, payments (cash and provider), provider callbacks and refunds.

use std::sync::LazyLock;

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::Serialize;
use sqlx::{PgConnection, PgExecutor};
use uuid::Uuid;

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct Intent {
    pub id: Uuid,
    pub tenant_id: Uuid,
    /// What the intent pays: a stay, or a booking ahead of its stay.
    pub session_id: Option<Uuid>,
    pub booking_id: Option<Uuid>,
    /// Or a rental's term.
    pub rental_id: Option<Uuid>,
    pub amount: Decimal,
    pub currency: String,
    pub provider: String,
    pub status: String,
    pub expires_at: DateTime<Utc>,
    pub paid_at: Option<DateTime<Utc>>,
    pub bill: serde_json::Value,
    /// The instant the amount was priced at; paying it settles the stay up to then.
    pub priced_at: DateTime<Utc>,
    pub filing_no: Option<String>,
    pub created_at: DateTime<Utc>,
}

const INTENT_COLUMNS: &str =
    "id, tenant_id, session_id, booking_id, rental_id, amount, currency, provider, status, expires_at, paid_at, bill, priced_at, filing_no, created_at";

pub async fn pending_intent(
    db: impl PgExecutor<'_>,
    session_id: Uuid,
) -> sqlx::Result<Option<Intent>> {
    sqlx::query_as(&format!(
        "select {INTENT_COLUMNS} from payment_intents where session_id = $1 and status = 'pending'"
    ))
    .bind(session_id)
    .fetch_optional(db)
    .await
}

/// The money received through `intent_id`'s notifications that is owed back to the driver.
pub async fn owed_back_for_intent(
    db: impl PgExecutor<'_>,
    tenant_id: Uuid,
    intent_id: Uuid,
) -> sqlx::Result<Decimal> {
    sqlx::query_scalar(
        "select coalesce(-sum(p.amount), 0)::numeric(20, 2)
           from journal_transactions t
           join postings p on p.transaction_id = t.id and p.account_kind = 'refunds_payable'
          where t.tenant_id = $1 and t.kind = 'unmatched_receipt'
            and t.idempotency_key in (select 'receipt:' || notification_id
                                        from provider_callbacks where intent_id = $2)",
    )
    .bind(tenant_id)
    .bind(intent_id)
    .fetch_one(db)
    .await
}

/// Withdraws the stay's pending intents (it was paid otherwise).
pub async fn cancel_pending_intents(db: impl PgExecutor<'_>, session_id: Uuid) -> sqlx::Result<()> {
    sqlx::query(
        "update payment_intents set status = 'cancelled' where session_id = $1 and status = 'pending'",
    )
    .bind(session_id)
    .execute(db)
    .await
    .map(drop)
}

pub async fn set_intent_status(
    db: impl PgExecutor<'_>,
    id: Uuid,
    status: &str,
) -> sqlx::Result<()> {
    sqlx::query("update payment_intents set status = $2 where id = $1")
        .bind(id)
        .bind(status)
        .execute(db)
        .await
        .map(drop)
}

/// A driver's request to pay: a stay's quote, or a booking's price.
pub struct NewIntent<'a> {
    pub tenant_id: Uuid,
    /// What the intent pays for.
    pub pays: Pays,
    pub amount: Decimal,
    pub expires_at: DateTime<Utc>,
    /// The itemised bill the amount came from.
    pub bill: &'a serde_json::Value,
    /// The instant the bill was priced at.
    pub priced_at: DateTime<Utc>,
    pub filing_no: Option<&'a str>,
}

/// What a payment intent pays for: a stay's fee, or a booking's price (valid as long as its
/// hold).
#[derive(Debug, Clone, Copy)]
pub enum Pays {
    Stay(Uuid),
    Booking(Uuid),
    /// A rental's term (valid as long as its hold).
    Rental(Uuid),
}

pub async fn insert_intent(db: impl PgExecutor<'_>, i: &NewIntent<'_>) -> sqlx::Result<Intent> {
    let (session_id, booking_id, rental_id) = match i.pays {
        Pays::Stay(id) => (Some(id), None, None),
        Pays::Booking(id) => (None, Some(id), None),
        Pays::Rental(id) => (None, None, Some(id)),
    };
    sqlx::query_as(&format!(
        "insert into payment_intents (id, tenant_id, session_id, booking_id, amount, currency, provider, status, expires_at, bill, priced_at, filing_no, rental_id)
         values ($1, $2, $3, $4, $5, 'CNY', 'simulated', 'pending', $6, $7, $8, $9, $10) returning {INTENT_COLUMNS}"
    ))
    .bind(Uuid::new_v4())
    .bind(i.tenant_id)
    .bind(session_id)
    .bind(booking_id)
    .bind(i.amount)
    .bind(i.expires_at)
    .bind(i.bill)
    .bind(i.priced_at)
    .bind(i.filing_no)
    .bind(rental_id)
    .fetch_one(db)
    .await
}

/// Cancels the pending intent of a booking being cancelled. One a provider notification holds
/// is skipped, not waited for (the callback locks the intent, then the booking): it will find
/// the booking cancelled and book the money as owed back.
pub async fn cancel_intent_of_booking(
    db: impl PgExecutor<'_>,
    booking_id: Uuid,
) -> sqlx::Result<()> {
    sqlx::query(
        "update payment_intents set status = 'cancelled'
          where id in (select id from payment_intents where booking_id = $1 and status = 'pending'
                         for update skip locked)",
    )
    .bind(booking_id)
    .execute(db)
    .await
    .map(drop)
}

/// Cancels the pending intent of a rental's term paid otherwise (in cash). One a provider
/// notification holds is skipped, not waited for: it will find the term paid and book the
/// money as owed back.
pub async fn cancel_intent_of_rental(db: impl PgExecutor<'_>, rental_id: Uuid) -> sqlx::Result<()> {
    sqlx::query(
        "update payment_intents set status = 'cancelled'
          where id in (select id from payment_intents where rental_id = $1 and status = 'pending'
                         for update skip locked)",
    )
    .bind(rental_id)
    .execute(db)
    .await
    .map(drop)
}

/// Who a booking's payment credits: its space's owner, in its compound, by the compound's
/// revenue policy in force at `at`.
#[derive(Debug, sqlx::FromRow)]
pub struct BookingParties {
    pub tenant_id: Uuid,
    pub compound_id: Uuid,
    pub owner_id: Uuid,
    pub plate: String,
    pub policy: Option<sqlx::types::Json<parkshare_ledger::RevenuePolicy>>,
}

pub async fn booking_parties(
    db: impl PgExecutor<'_>,
    booking_id: Uuid,
    at: DateTime<Utc>,
) -> sqlx::Result<Option<BookingParties>> {
    static SQL: LazyLock<String> = LazyLock::new(|| {
        format!(
            "select b.tenant_id, b.compound_id, ss.owner_id, b.plate, ({policy}) as policy
               from bookings b join shared_spaces ss on ss.space_id = b.space_id
              where b.id = $1",
            policy = crate::store::ledger::policy_in_force_sql("b.compound_id", "$2"),
        )
    });
    sqlx::query_as(&SQL)
        .bind(booking_id)
        .bind(at)
        .fetch_optional(db)
        .await
}

pub async fn intent(db: impl PgExecutor<'_>, id: Uuid) -> sqlx::Result<Option<Intent>> {
    sqlx::query_as(&format!(
        "select {INTENT_COLUMNS} from payment_intents where id = $1"
    ))
    .bind(id)
    .fetch_optional(db)
    .await
}

pub async fn intent_for_update(db: impl PgExecutor<'_>, id: Uuid) -> sqlx::Result<Option<Intent>> {
    sqlx::query_as(&format!(
        "select {INTENT_COLUMNS} from payment_intents where id = $1 for update"
    ))
    .bind(id)
    .fetch_optional(db)
    .await
}

pub async fn mark_intent_paid(
    db: impl PgExecutor<'_>,
    id: Uuid,
    paid_at: DateTime<Utc>,
) -> sqlx::Result<()> {
    sqlx::query("update payment_intents set status = 'paid', paid_at = $2 where id = $1")
        .bind(id)
        .bind(paid_at)
        .execute(db)
        .await
        .map(drop)
}

pub struct NewCallback<'a> {
    pub provider: &'a str,
    pub notification_id: &'a str,
    pub intent_id: Option<Uuid>,
    pub amount: Option<Decimal>,
    pub outcome: &'a str,
    pub body: &'a serde_json::Value,
}

pub async fn insert_callback(db: impl PgExecutor<'_>, c: &NewCallback<'_>) -> sqlx::Result<()> {
    sqlx::query(
        "insert into provider_callbacks (id, provider, notification_id, intent_id, amount, outcome, body)
         values ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(Uuid::new_v4())
    .bind(c.provider)
    .bind(c.notification_id)
    .bind(c.intent_id)
    .bind(c.amount)
    .bind(c.outcome)
    .bind(c.body)
    .execute(db)
    .await
    .map(drop)
}

/// Whether `provider` told us of this notification before: a retry, not a new charge.
pub async fn notification_seen(
    db: impl PgExecutor<'_>,
    provider: &str,
    notification_id: &str,
) -> sqlx::Result<bool> {
    sqlx::query_scalar(
        "select exists (select 1 from provider_callbacks where provider = $1 and notification_id = $2)",
    )
    .bind(provider)
    .bind(notification_id)
    .fetch_one(db)
    .await
}

pub async fn callback_outcomes(
    db: impl PgExecutor<'_>,
    intent_id: Uuid,
) -> sqlx::Result<Vec<String>> {
    sqlx::query_scalar(
        "select outcome from provider_callbacks where intent_id = $1 order by received_at",
    )
    .bind(intent_id)
    .fetch_all(db)
    .await
}

pub struct NewPayment<'a> {
    /// Chosen before the journal transaction is posted, which names it.
    pub id: Uuid,
    pub session_id: Uuid,
    pub amount: Decimal,
    pub method: &'static str,
    pub intent_id: Option<Uuid>,
    pub shift: Option<&'a str>,
    pub paid_at: DateTime<Utc>,
    /// The instant the amount was priced at (a quote the driver paid); at most `paid_at`.
    pub priced_at: DateTime<Utc>,
    /// The journal transaction that credited it.
    pub transaction_id: Uuid,
}

/// Records a credited payment and adds it to the session (the exit then opens within the
/// grace): the payment row and the stay's running total and last payment, in one statement.
pub async fn insert_payment(tx: &mut PgConnection, p: &NewPayment<'_>) -> sqlx::Result<()> {
    sqlx::query(
        "with p as (
           insert into session_payments (id, session_id, amount, method, intent_id, shift, recorded_at,
                                         priced_at, transaction_id)
           values ($1, $2, $3, $4, $5, $6, $7, $8, $9))
         update sessions set paid = paid + $3, last_paid_at = greatest(coalesce(last_paid_at, $7), $7),
                last_paid_priced_at = greatest(coalesce(last_paid_priced_at, $8), $8), updated_at = now()
          where id = $2",
    )
    .bind(p.id)
    .bind(p.session_id)
    .bind(p.amount)
    .bind(p.method)
    .bind(p.intent_id)
    .bind(p.shift)
    .bind(p.paid_at)
    .bind(p.priced_at)
    .bind(p.transaction_id)
    .execute(&mut *tx)
    .await
    .map(drop)
}

#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct Payment {
    pub id: Uuid,
    pub session_id: Uuid,
    pub tenant_id: Uuid,
    pub compound_id: Uuid,
    #[serde(serialize_with = "crate::store::yuan")]
    pub amount: Decimal,
    pub method: String,
    pub intent_id: Option<Uuid>,
    pub shift: Option<String>,
    pub transaction_id: Option<Uuid>,
    #[serde(serialize_with = "crate::store::yuan")]
    pub refunded: Decimal,
    pub recorded_at: DateTime<Utc>,
}

/// A payment of the tenant, locked for a refund.
pub async fn payment_for_update(
    db: impl PgExecutor<'_>,
    tenant_id: Uuid,
    id: Uuid,
) -> sqlx::Result<Option<Payment>> {
    sqlx::query_as(
        "select p.id, p.session_id, s.tenant_id, s.compound_id, p.amount, p.method, p.intent_id, p.shift,
                p.transaction_id, p.refunded, p.recorded_at
           from session_payments p join sessions s on s.id = p.session_id
          where p.id = $1 and s.tenant_id = $2
            for update of p",
    )
    .bind(id)
    .bind(tenant_id)
    .fetch_optional(db)
    .await
}

/// The payment recorded under a ledger idempotency key, if any.
pub async fn payment_by_key(
    db: impl PgExecutor<'_>,
    tenant_id: Uuid,
    key: &str,
) -> sqlx::Result<Option<Payment>> {
    sqlx::query_as(
        "select p.id, p.session_id, s.tenant_id, s.compound_id, p.amount, p.method, p.intent_id, p.shift,
                p.transaction_id, p.refunded, p.recorded_at
           from journal_transactions t
           join session_payments p on p.transaction_id = t.id
           join sessions s on s.id = p.session_id
          where t.tenant_id = $1 and t.idempotency_key = $2",
    )
    .bind(tenant_id)
    .bind(key)
    .fetch_optional(db)
    .await
}

#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct Refund {
    pub id: Uuid,
    pub payment_id: Uuid,
    #[serde(serialize_with = "crate::store::yuan")]
    pub amount: Decimal,
    pub reason: String,
    pub transaction_id: Uuid,
    /// The payment's refunds so far, this one included.
    #[serde(serialize_with = "crate::store::yuan")]
    pub refunded_total: Decimal,
    pub created_at: DateTime<Utc>,
}

pub async fn refund_by_key(
    db: impl PgExecutor<'_>,
    tenant_id: Uuid,
    key: &str,
) -> sqlx::Result<Option<Refund>> {
    sqlx::query_as(
        "select r.id, r.payment_id, r.amount, r.reason, r.transaction_id, p.refunded as refunded_total, r.created_at
           from journal_transactions t
           join payment_refunds r on r.transaction_id = t.id
           join session_payments p on p.id = r.payment_id
          where t.tenant_id = $1 and t.idempotency_key = $2",
    )
    .bind(tenant_id)
    .bind(key)
    .fetch_optional(db)
    .await
}

pub async fn payments_of_session(
    db: impl PgExecutor<'_>,
    session_id: Uuid,
) -> sqlx::Result<Vec<Payment>> {
    sqlx::query_as(
        "select p.id, p.session_id, s.tenant_id, s.compound_id, p.amount, p.method, p.intent_id, p.shift,
                p.transaction_id, p.refunded, p.recorded_at
           from session_payments p join sessions s on s.id = p.session_id
          where p.session_id = $1 order by p.recorded_at",
    )
    .bind(session_id)
    .fetch_all(db)
    .await
}

/// Records a refund of a payment: the payment's refunded total and the session's paid total.
pub async fn insert_refund(
    tx: &mut PgConnection,
    payment: &Payment,
    amount: Decimal,
    reason: &str,
    transaction_id: Uuid,
) -> sqlx::Result<()> {
    let id = Uuid::new_v4();
    sqlx::query(
        "insert into payment_refunds (id, payment_id, amount, reason, transaction_id) values ($1, $2, $3, $4, $5)",
    )
    .bind(id)
    .bind(payment.id)
    .bind(amount)
    .bind(reason)
    .bind(transaction_id)
    .execute(&mut *tx)
    .await?;
    sqlx::query("update session_payments set refunded = refunded + $2 where id = $1")
        .bind(payment.id)
        .bind(amount)
        .execute(&mut *tx)
        .await?;
    sqlx::query("update sessions set paid = paid - $2, updated_at = now() where id = $1")
        .bind(payment.session_id)
        .bind(amount)
        .execute(&mut *tx)
        .await
        .map(drop)
}

/// The owner's earnings per calendar month (UTC) of credits to their payable account.
#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct MonthlyEarnings {
    pub month: String,
    pub credited: Decimal,
    pub stays: i64,
}

pub async fn owner_earnings(
    db: impl PgExecutor<'_>,
    owner_id: Uuid,
) -> sqlx::Result<Vec<MonthlyEarnings>> {
    sqlx::query_as(
        "select to_char(t.created_at at time zone 'UTC', 'YYYY-MM') as month,
                -sum(p.amount) as credited, count(distinct t.session_id) as stays
           from postings p join journal_transactions t on t.id = p.transaction_id
          where p.account_kind = 'owner_payable' and p.account_holder = $1
          group by 1 order by 1",
    )
    .bind(owner_id)
    .fetch_all(db)
    .await
}

/// What settling a session's payment needs: whose it is, which space it used, and the revenue
/// policy of its compound in force when it was paid.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct SessionParties {
    pub session_id: Uuid,
    pub tenant_id: Uuid,
    pub compound_id: Uuid,
    pub plate: String,
    /// `owned`, `common` or `developer_unsold` for a stay on a particular space; `None` for the
    /// lot's visitor pool.
    pub space_kind: Option<String>,
    pub space_owner_id: Option<Uuid>,
    /// `None` when the compound never filed one: the default policy applies.
    pub policy: Option<sqlx::types::Json<parkshare_ledger::RevenuePolicy>>,
}

/// The [`SessionParties`] of the session `s`, with the policy in force at `at`, followed by
/// `extra` columns: a query to be finished with its `where` clause.
fn parties_query(at: &str, extra: &str) -> String {
    format!(
        "select s.id as session_id, s.tenant_id, s.compound_id, s.plate,
                sp.kind as space_kind, sp.owner_id as space_owner_id,
                ({policy}) as policy{extra}
           from sessions s left join spaces sp on sp.id = s.space_id",
        policy = crate::store::ledger::policy_in_force_sql("s.compound_id", at),
    )
}

/// The parties of `session_id` and its compound's policy at `paid_at`, in one round trip.
pub async fn session_parties(
    db: impl PgExecutor<'_>,
    session_id: Uuid,
    paid_at: DateTime<Utc>,
) -> sqlx::Result<Option<SessionParties>> {
    static SQL: LazyLock<String> =
        LazyLock::new(|| format!("{} where s.id = $1", parties_query("$2", "")));
    sqlx::query_as(&SQL)
        .bind(session_id)
        .bind(paid_at)
        .fetch_optional(db)
        .await
}

/// What recording cash for a session needs to know.
#[derive(Debug, sqlx::FromRow)]
pub struct CashFacts {
    #[sqlx(flatten)]
    pub parties: SessionParties,
    /// A payment is already recorded under the request's ledger key: a retry.
    pub recorded: bool,
}

/// The tenant's session `session_id`, locked, with its parties and policy at `paid_at` and any
/// payment recorded under `ledger_key`: one round trip. A payment that raced in under the same
/// key after this statement began is caught by the journal's key when it is posted.
pub async fn cash_facts(
    tx: &mut PgConnection,
    tenant_id: Uuid,
    session_id: Uuid,
    ledger_key: &str,
    paid_at: DateTime<Utc>,
) -> sqlx::Result<Option<CashFacts>> {
    static SQL: LazyLock<String> = LazyLock::new(|| {
        format!(
            "{} where s.tenant_id = $1 and s.id = $2 for update of s",
            parties_query(
                "$4",
                ", exists (select from journal_transactions t
                            join session_payments p on p.transaction_id = t.id
                           where t.tenant_id = $1 and t.idempotency_key = $3) as recorded"
            )
        )
    });
    sqlx::query_as(&SQL)
        .bind(tenant_id)
        .bind(session_id)
        .bind(ledger_key)
        .bind(paid_at)
        .fetch_optional(&mut *tx)
        .await
}
