//! Money owed back to drivers: unmatched receipts and the payouts that settle them.

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::Serialize;
use sqlx::PgExecutor;
use uuid::Uuid;

/// The idempotency key of the payout of the receipt `receipt_id`: one payout per receipt.
pub fn payout_key(receipt_id: Uuid) -> String {
    format!("payout:{receipt_id}")
}

/// A receipt owed back to its payer, and its payout once made.
#[derive(Debug, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct Owed {
    /// The unmatched receipt's journal transaction.
    pub id: Uuid,
    #[serde(with = "rust_decimal::serde::str")]
    pub amount: Decimal,
    /// Why it is owed back (the receipt's memo, naming the provider's notification).
    pub reason: String,
    pub session_id: Option<Uuid>,
    pub booking_id: Option<Uuid>,
    /// The rental term it is owed for (a late payment, an early end's refund).
    pub rental_id: Option<Uuid>,
    pub compound_id: Option<Uuid>,
    pub plate: Option<String>,
    pub received_at: DateTime<Utc>,
    /// The payout's transaction, once paid back.
    pub payout_transaction_id: Option<Uuid>,
    /// `provider_clearing` or `cash_on_hand`: where the money went back from.
    pub paid_back_from: Option<String>,
    pub paid_back_reference: Option<String>,
    pub paid_back_at: Option<DateTime<Utc>>,
}

const OWED_SELECT: &str = "
    select r.id, -(select sum(p.amount) from postings p
                    where p.transaction_id = r.id and p.account_kind = 'refunds_payable') as amount,
           r.memo as reason, r.session_id, r.booking_id, r.rental_id, r.compound_id,
           coalesce(s.plate, b.plate, rt.plate) as plate, r.created_at as received_at,
           o.id as payout_transaction_id,
           (select p.account_kind from postings p where p.transaction_id = o.id and p.amount < 0)
             as paid_back_from,
           o.memo as paid_back_reference, o.created_at as paid_back_at
      from journal_transactions r
      left join sessions s on s.id = r.session_id
      left join bookings b on b.id = r.booking_id
      left join rentals rt on rt.id = r.rental_id
      left join journal_transactions o
             on o.tenant_id = r.tenant_id and o.idempotency_key = 'payout:' || r.id::text
     where r.tenant_id = $1
       and (r.kind = 'unmatched_receipt'
            -- A rental's early end: its refund is owed back until paid out.
            or (r.kind = 'refund' and r.rental_id is not null
                and exists (select 1 from postings p where p.transaction_id = r.id
                              and p.account_kind = 'refunds_payable')))";

/// The firm's receipts owed back (`paid_back` false), paid back (true) or all, oldest first,
/// after the receipt `after` (its `(received_at, id)`), at most `limit`.
pub async fn list(
    db: impl PgExecutor<'_>,
    tenant_id: Uuid,
    paid_back: Option<bool>,
    after: Option<(DateTime<Utc>, Uuid)>,
    limit: i64,
) -> sqlx::Result<Vec<Owed>> {
    sqlx::query_as(&format!(
        "{OWED_SELECT} and ($2::bool is null or (o.id is not null) = $2)
            and ($4::timestamptz is null or (r.created_at, r.id) > ($4, $5))
          order by r.created_at, r.id limit $3"
    ))
    .bind(tenant_id)
    .bind(paid_back)
    .bind(limit)
    .bind(after.map(|(at, _)| at))
    .bind(after.map(|(_, id)| id))
    .fetch_all(db)
    .await
}

/// The receipt whose payout already carries `reference`, if any; locks the reference until
/// the transaction ends.
pub async fn payout_with_reference(
    tx: &mut sqlx::PgConnection,
    tenant_id: Uuid,
    reference: &str,
) -> sqlx::Result<Option<Uuid>> {
    sqlx::query("select pg_advisory_xact_lock(hashtextextended($1::text || ':' || $2, 21))")
        .bind(tenant_id)
        .bind(reference)
        .execute(&mut *tx)
        .await?;
    sqlx::query_scalar(
        "select substr(idempotency_key, length('payout:') + 1)::uuid from journal_transactions
          where tenant_id = $1 and kind = 'refund_payout' and memo = $2 limit 1",
    )
    .bind(tenant_id)
    .bind(reference)
    .fetch_optional(&mut *tx)
    .await
}

pub async fn one(db: impl PgExecutor<'_>, tenant_id: Uuid, id: Uuid) -> sqlx::Result<Option<Owed>> {
    sqlx::query_as(&format!("{OWED_SELECT} and r.id = $2"))
        .bind(tenant_id)
        .bind(id)
        .fetch_optional(db)
        .await
}
