//! Accounting periods, owners' statements, and the ledger figures a period close reads.

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::Serialize;
use sqlx::types::Json;
use sqlx::{PgConnection, PgExecutor};
use uuid::Uuid;

/// Locks the compound for a close; `(created_at, time_zone)` when it is the tenant's.
pub async fn lock_compound(
    tx: &mut PgConnection,
    tenant_id: Uuid,
    compound_id: Uuid,
) -> sqlx::Result<Option<(DateTime<Utc>, String)>> {
    sqlx::query_as(
        // Not `for update`: that would also block the foreign-key checks (`for key share`) of
        // every transaction booked to the compound meanwhile, which hold the compound's books
        // lock the close waits for — a deadlock. Closes still exclude each other.
        "select created_at, time_zone from compounds where tenant_id = $1 and id = $2 for no key update",
    )
    .bind(tenant_id)
    .bind(compound_id)
    .fetch_optional(tx)
    .await
}

/// A closed accounting period with its summary as frozen at the close.
#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct Period {
    pub id: Uuid,
    pub compound_id: Uuid,
    pub label: String,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    /// The close's account: income by source, refunds, the split (yuan as decimal strings).
    #[schema(value_type = Object)]
    pub summary: Json<serde_json::Value>,
    pub transaction_id: Option<Uuid>,
    pub closed_at: DateTime<Utc>,
}

const PERIOD_COLUMNS: &str =
    "id, compound_id, label, starts_at, ends_at, summary, transaction_id, closed_at";

pub async fn last_period(
    db: impl PgExecutor<'_>,
    compound_id: Uuid,
) -> sqlx::Result<Option<Period>> {
    sqlx::query_as(&format!(
        "select {PERIOD_COLUMNS} from accounting_periods where compound_id = $1 order by ends_at desc limit 1"
    ))
    .bind(compound_id)
    .fetch_optional(db)
    .await
}

pub async fn period_ending(
    db: impl PgExecutor<'_>,
    compound_id: Uuid,
    ends_at: DateTime<Utc>,
) -> sqlx::Result<Option<Period>> {
    sqlx::query_as(&format!(
        "select {PERIOD_COLUMNS} from accounting_periods where compound_id = $1 and ends_at = $2"
    ))
    .bind(compound_id)
    .bind(ends_at)
    .fetch_optional(db)
    .await
}

pub async fn periods(
    db: impl PgExecutor<'_>,
    tenant_id: Uuid,
    compound_id: Uuid,
) -> sqlx::Result<Vec<Period>> {
    sqlx::query_as(&format!(
        "select {PERIOD_COLUMNS} from accounting_periods where tenant_id = $1 and compound_id = $2 order by starts_at"
    ))
    .bind(tenant_id)
    .bind(compound_id)
    .fetch_all(db)
    .await
}

pub async fn period(
    db: impl PgExecutor<'_>,
    tenant_id: Uuid,
    id: Uuid,
) -> sqlx::Result<Option<Period>> {
    sqlx::query_as(&format!(
        "select {PERIOD_COLUMNS} from accounting_periods where tenant_id = $1 and id = $2"
    ))
    .bind(tenant_id)
    .bind(id)
    .fetch_optional(db)
    .await
}

pub struct NewPeriod<'a> {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub compound_id: Uuid,
    pub label: &'a str,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    pub summary: &'a serde_json::Value,
    pub transaction_id: Option<Uuid>,
}

/// Records a closed period; when it was closed (an audit time, the database's clock).
pub async fn insert_period(
    db: impl PgExecutor<'_>,
    p: &NewPeriod<'_>,
) -> sqlx::Result<DateTime<Utc>> {
    sqlx::query_scalar(
        "insert into accounting_periods (id, tenant_id, compound_id, label, starts_at, ends_at, summary, transaction_id)
         values ($1, $2, $3, $4, $5, $6, $7, $8) returning closed_at",
    )
    .bind(p.id)
    .bind(p.tenant_id)
    .bind(p.compound_id)
    .bind(p.label)
    .bind(p.starts_at)
    .bind(p.ends_at)
    .bind(p.summary)
    .bind(p.transaction_id)
    .fetch_one(db)
    .await
}

pub async fn insert_statement(
    db: impl PgExecutor<'_>,
    period_id: Uuid,
    tenant_id: Uuid,
    owner_id: Uuid,
    floor_area_m2: Decimal,
    credited: Decimal,
) -> sqlx::Result<()> {
    sqlx::query(
        "insert into owner_statements (period_id, owner_id, tenant_id, floor_area_m2, credited) values ($1, $2, $3, $4, $5)",
    )
    .bind(period_id)
    .bind(owner_id)
    .bind(tenant_id)
    .bind(floor_area_m2)
    .bind(credited)
    .execute(db)
    .await
    .map(drop)
}

/// An owner's statement for a closed period: their credited share of common revenue.
#[derive(Debug, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct Statement {
    pub period_id: Uuid,
    pub label: String,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    pub owner_id: Uuid,
    pub unit: String,
    #[serde(with = "rust_decimal::serde::str")]
    pub floor_area_m2: Decimal,
    #[serde(serialize_with = "crate::store::yuan")]
    pub credited: Decimal,
}

const STATEMENT_SELECT: &str = "select s.period_id, p.label, p.starts_at, p.ends_at, s.owner_id, o.unit,
    s.floor_area_m2, s.credited
    from owner_statements s join accounting_periods p on p.id = s.period_id join owners o on o.id = s.owner_id";

pub async fn statements_of_period(
    db: impl PgExecutor<'_>,
    tenant_id: Uuid,
    period_id: Uuid,
) -> sqlx::Result<Vec<Statement>> {
    sqlx::query_as(&format!(
        "{STATEMENT_SELECT} where s.tenant_id = $1 and s.period_id = $2 order by o.unit"
    ))
    .bind(tenant_id)
    .bind(period_id)
    .fetch_all(db)
    .await
}

pub async fn statements_of_owner(
    db: impl PgExecutor<'_>,
    tenant_id: Uuid,
    owner_id: Uuid,
) -> sqlx::Result<Vec<Statement>> {
    sqlx::query_as(&format!(
        "{STATEMENT_SELECT} where s.tenant_id = $1 and s.owner_id = $2 order by p.starts_at desc"
    ))
    .bind(tenant_id)
    .bind(owner_id)
    .fetch_all(db)
    .await
}

/// The common revenue of `compound_id` not yet allocated as of `until`: minus the balance of
/// its common-revenue account over postings made before `until`.
pub async fn unallocated_common_revenue(
    db: impl PgExecutor<'_>,
    compound_id: Uuid,
    until: DateTime<Utc>,
) -> sqlx::Result<Decimal> {
    sqlx::query_scalar(
        "select coalesce(-sum(p.amount), 0) from postings p join journal_transactions t on t.id = p.transaction_id
          where p.account_kind = 'common_revenue' and p.account_holder = $1 and t.created_at < $2",
    )
    .bind(compound_id)
    .bind(until)
    .fetch_one(db)
    .await
}

/// One line of what a period brought: by source (the kind of space, `visitor_pool` for the
/// pool), by account, and whether it is a late adjustment (for a stay that had left before
/// the period began: a late payment or a refund of a closed period's stay).
#[derive(Debug, Serialize, serde::Deserialize, sqlx::FromRow)]
pub struct SourceLine {
    pub account_kind: String,
    pub source: String,
    pub transaction_kind: String,
    pub late: bool,
    #[serde(with = "rust_decimal::serde::str")]
    pub amount: Decimal,
    pub transactions: i64,
}

/// Credits to the compound's common revenue, the firm's management share and the platform's
/// fees from the compound's stays and rentals, posted in `[from, until)`, grouped. Amounts are positive
/// for income.
pub async fn period_sources(
    db: impl PgExecutor<'_>,
    compound_id: Uuid,
    from: DateTime<Utc>,
    until: DateTime<Utc>,
) -> sqlx::Result<Vec<SourceLine>> {
    sqlx::query_as(
        "select p.account_kind, coalesce(sp.kind, 'visitor_pool') as source, t.kind as transaction_kind,
                coalesce(s.exited_at < $2, false) as late, -sum(p.amount) as amount,
                count(distinct t.id) as transactions
           from postings p
           join journal_transactions t on t.id = p.transaction_id
           left join sessions s on s.id = t.session_id
           -- A rental's payment (and refund) counts by the kind of space rented.
           left join rentals r on r.id = t.rental_id
           left join spaces sp on sp.id = coalesce(s.space_id, r.space_id)
          where coalesce(s.compound_id, r.compound_id) = $1 and t.created_at >= $2 and t.created_at < $3
            and p.account_kind in ('common_revenue', 'management_income', 'platform_fee_income')
          group by 1, 2, 3, 4 order by 1, 2, 3, 4",
    )
    .bind(compound_id)
    .bind(from)
    .bind(until)
    .fetch_all(db)
    .await
}

/// `(owner_id, floor_area_m2)` of every owner of the compound, by unit.
pub async fn floor_areas(
    db: impl PgExecutor<'_>,
    compound_id: Uuid,
) -> sqlx::Result<Vec<(Uuid, Decimal)>> {
    sqlx::query_as("select id, floor_area_m2 from owners where compound_id = $1 order by unit")
        .bind(compound_id)
        .fetch_all(db)
        .await
}

#[derive(Debug, Serialize, sqlx::FromRow)]
pub struct JournalLine {
    pub transaction_id: Uuid,
    pub created_at: DateTime<Utc>,
    pub kind: String,
    pub memo: String,
    pub session_id: Option<Uuid>,
    pub account_kind: String,
    pub account_holder: Uuid,
    #[serde(with = "rust_decimal::serde::str")]
    pub amount: Decimal,
}

/// Every posting of the firm's own transactions booked in `[from, until)`: those of no
/// compound, such as the fee of a settlement-file row that matches none of our payments.
pub async fn firm_journal(
    db: impl PgExecutor<'_>,
    tenant_id: Uuid,
    from: DateTime<Utc>,
    until: DateTime<Utc>,
) -> sqlx::Result<Vec<JournalLine>> {
    sqlx::query_as(
        "select t.id as transaction_id, t.created_at, t.kind, t.memo, t.session_id,
                p.account_kind, p.account_holder, p.amount
           from journal_transactions t join postings p on p.transaction_id = t.id
          where t.tenant_id = $1 and t.compound_id is null
            and t.created_at >= $2 and t.created_at < $3
          order by t.created_at, t.id, p.id",
    )
    .bind(tenant_id)
    .bind(from)
    .bind(until)
    .fetch_all(db)
    .await
}

/// Every posting of the period: the compound's transactions booked in `[from, until)` — its
/// stays' and bookings' payments and refunds, money owed back, its provider fees — and the
/// period's own close (booked after the end; other periods' closes are theirs).
pub async fn period_journal(
    db: impl PgExecutor<'_>,
    tenant_id: Uuid,
    compound_id: Uuid,
    from: DateTime<Utc>,
    until: DateTime<Utc>,
    close_transaction: Option<Uuid>,
) -> sqlx::Result<Vec<JournalLine>> {
    sqlx::query_as(
        "select t.id as transaction_id, t.created_at, t.kind, t.memo, t.session_id,
                p.account_kind, p.account_holder, p.amount
           from journal_transactions t join postings p on p.transaction_id = t.id
          where t.tenant_id = $1
            and ((t.compound_id = $2 and t.created_at >= $3 and t.created_at < $4
                  and t.kind <> 'period_close')
                 or t.id = $5)
          order by t.created_at, t.id, p.id",
    )
    .bind(tenant_id)
    .bind(compound_id)
    .bind(from)
    .bind(until)
    .bind(close_transaction)
    .fetch_all(db)
    .await
}
