//! Imported provider settlement files and the payments they are compared with.

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::Serialize;
use sqlx::types::Json;
use sqlx::PgExecutor;
use uuid::Uuid;

#[derive(Debug, sqlx::FromRow)]
pub struct ReceivedRow {
    pub notification_id: String,
    pub amount: Decimal,
    pub refunded: Decimal,
    /// The compound of the stay, booking or rental paid.
    pub compound_id: Option<Uuid>,
}

/// Money the tenant received through `provider` (credited, late or mismatched notifications,
/// each counted once): those named in the file, and those received in `[from, to)`.
pub async fn received(
    db: impl PgExecutor<'_>,
    tenant_id: Uuid,
    provider: &str,
    named: &[String],
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> sqlx::Result<Vec<ReceivedRow>> {
    sqlx::query_as(
        "select distinct on (c.notification_id) c.notification_id, coalesce(c.amount, 0) as amount,
                coalesce(sp.refunded, b.refunded, 0) as refunded,
                coalesce(s.compound_id, bk.compound_id, rt.compound_id) as compound_id
           from provider_callbacks c
           join payment_intents i on i.id = c.intent_id
           left join sessions s on s.id = i.session_id
           left join bookings bk on bk.id = i.booking_id
           -- A rental's early-end refund is owed back (refunds_payable), not returned through
           -- the provider: its payment counts whole here, like a receipt owed back.
           left join rentals rt on rt.id = i.rental_id
           left join session_payments sp on sp.intent_id = c.intent_id and c.outcome = 'credited'
           left join bookings b on b.id = i.booking_id and c.outcome = 'credited'
          where i.tenant_id = $1 and c.provider = $2 and c.outcome in ('credited', 'late', 'amount_mismatch', 'second_charge', 'overpaid')
            and (c.notification_id = any($3) or (c.received_at >= $4 and c.received_at < $5))
          order by c.notification_id, c.received_at",
    )
    .bind(tenant_id)
    .bind(provider)
    .bind(named)
    .bind(from)
    .bind(to)
    .fetch_all(db)
    .await
}

#[derive(Debug, Serialize, sqlx::FromRow)]
pub struct Reconciliation {
    pub id: Uuid,
    pub provider: String,
    pub covers_from: DateTime<Utc>,
    pub covers_to: DateTime<Utc>,
    pub rows: i32,
    pub report: Json<serde_json::Value>,
    /// Imports before migration 0024 booked their fees as this one transaction; later ones
    /// list theirs per compound in the report (`fee_transactions`).
    pub fee_transaction_id: Option<Uuid>,
    pub created_at: DateTime<Utc>,
}

const COLUMNS: &str =
    "id, provider, covers_from, covers_to, rows, report, fee_transaction_id, created_at";

pub async fn by_file(
    db: impl PgExecutor<'_>,
    tenant_id: Uuid,
    sha256: &[u8],
) -> sqlx::Result<Option<Reconciliation>> {
    sqlx::query_as(&format!(
        "select {COLUMNS} from reconciliations where tenant_id = $1 and file_sha256 = $2"
    ))
    .bind(tenant_id)
    .bind(sha256)
    .fetch_optional(db)
    .await
}

pub async fn list(db: impl PgExecutor<'_>, tenant_id: Uuid) -> sqlx::Result<Vec<Reconciliation>> {
    sqlx::query_as(&format!("select {COLUMNS} from reconciliations where tenant_id = $1 order by created_at desc limit 200"))
        .bind(tenant_id)
        .fetch_all(db)
        .await
}

pub struct NewReconciliation<'a> {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub provider: &'a str,
    pub sha256: &'a [u8],
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub rows: i32,
    pub report: &'a serde_json::Value,
}

pub async fn insert(db: impl PgExecutor<'_>, r: &NewReconciliation<'_>) -> sqlx::Result<()> {
    sqlx::query(
        "insert into reconciliations (id, tenant_id, provider, file_sha256, covers_from, covers_to, rows, report)
         values ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(r.id)
    .bind(r.tenant_id)
    .bind(r.provider)
    .bind(r.sha256)
    .bind(r.from)
    .bind(r.to)
    .bind(r.rows)
    .bind(r.report)
    .execute(db)
    .await
    .map(drop)
}
