//! The settlement ledger's tables: accounts, journal transactions, postings, revenue policies.
//! Postings are only ever inserted; the database checks each transaction balances at commit.

use chrono::{DateTime, Utc};
use parkshare_ledger::{Account, AccountKind, Entry, Posting, RevenuePolicy};
use rust_decimal::Decimal;
use serde::Serialize;
use sqlx::{PgConnection, PgExecutor};
use uuid::Uuid;

/// What a journal transaction is for, and how it is found again.
pub struct NewTransaction<'a> {
    pub tenant_id: Uuid,
    pub idempotency_key: &'a str,
    pub kind: &'static str,
    pub session_id: Option<Uuid>,
    pub payment_id: Option<Uuid>,
    /// The booking a prepayment (or its refund) is for, before any stay exists.
    pub booking_id: Option<Uuid>,
    /// The rental term a payment (or its refund) is for.
    pub rental_id: Option<Uuid>,
    /// The compound the transaction belongs to, where the caller knows it; `None`: that of its
    /// stay or booking, if any (looked up).
    pub compound_id: Option<Uuid>,
    pub memo: &'a str,
}

/// Locks the compound's books exclusively until commit: every transaction being booked to it
/// has committed, and any other waits (a period's close, which must read a complete period).
/// Transactions are dated when booked, so none booked after this can fall before it.
pub async fn lock_books(tx: &mut PgConnection, compound_id: Uuid) -> sqlx::Result<()> {
    sqlx::query("select pg_advisory_xact_lock(hashtextextended('books:' || $1::text, 0))")
        .bind(compound_id)
        .execute(tx)
        .await
        .map(drop)
}

/// Posts `entry` once per idempotency key: a repeat of the key returns the first
/// transaction's id with `created == false` and posts nothing.
pub async fn post(
    tx: &mut PgConnection,
    t: &NewTransaction<'_>,
    entry: &Entry,
) -> sqlx::Result<(Uuid, bool)> {
    let kinds: Vec<&str> = entry
        .postings()
        .iter()
        .map(|p| p.account.kind.code())
        .collect();
    let holders: Vec<Uuid> = entry.postings().iter().map(|p| p.account.holder).collect();
    let amounts: Vec<Decimal> = entry.postings().iter().map(|p| p.amount).collect();
    // The compound the transaction belongs to (as named, else its stay's, its booking's or
    // its rental's), with that compound's books locked for sharing until commit, in one round
    // trip: a period's close takes the lock exclusively, so it waits for every transaction
    // being booked to the compound, and one that starts booking after it is dated after it
    // (below).
    // The lock function is strict: no compound, no lock.
    let compound_id: Option<Uuid> = sqlx::query_scalar(
        "select x.c from (select coalesce($3, (select compound_id from sessions where id = $1),
                                          (select compound_id from bookings where id = $2),
                                          (select compound_id from rentals where id = $4)) as c) x
           cross join lateral (select pg_advisory_xact_lock_shared(
                                 hashtextextended('books:' || x.c::text, 0))) books",
    )
    .bind(t.session_id)
    .bind(t.booking_id)
    .bind(t.compound_id)
    .bind(t.rental_id)
    .fetch_one(&mut *tx)
    .await?;
    // One statement: the transaction, any account it opens, and its postings — the last two
    // only if the transaction is new. The postings' account keys are checked at the end of
    // the statement, after the accounts are in.
    let inserted: Option<Uuid> = sqlx::query_scalar(
        "with t as (
           insert into journal_transactions (id, tenant_id, idempotency_key, kind, session_id, payment_id, memo, booking_id, compound_id, rental_id, created_at)
           values ($1, $2, $3, $4, $5, $6, $7, $11, $12, $13, clock_timestamp())
           on conflict (tenant_id, idempotency_key) do nothing returning id),
         a as (
           insert into ledger_accounts (kind, holder_id, tenant_id)
           select kind, holder, $2 from unnest($8::text[], $9::uuid[]) as a (kind, holder)
            where exists (select from t)
           on conflict (kind, holder_id) do nothing),
         p as (
           insert into postings (transaction_id, account_kind, account_holder, amount)
           select t.id, kind, holder, amount
             from t, unnest($8::text[], $9::uuid[], $10::numeric[]) as p (kind, holder, amount))
         select id from t",
    )
    .bind(Uuid::new_v4())
    .bind(t.tenant_id)
    .bind(t.idempotency_key)
    .bind(t.kind)
    .bind(t.session_id)
    .bind(t.payment_id)
    .bind(t.memo)
    .bind(&kinds)
    .bind(&holders)
    .bind(&amounts)
    .bind(t.booking_id)
    .bind(compound_id)
    .bind(t.rental_id)
    .fetch_optional(&mut *tx)
    .await?;
    if let Some(id) = inserted {
        return Ok((id, true));
    }
    let existing = sqlx::query_scalar(
        "select id from journal_transactions where tenant_id = $1 and idempotency_key = $2",
    )
    .bind(t.tenant_id)
    .bind(t.idempotency_key)
    .fetch_one(&mut *tx)
    .await?;
    Ok((existing, false))
}

/// The idempotency key a transaction was posted under, and its memo.
pub async fn transaction_key_and_memo(
    db: impl PgExecutor<'_>,
    transaction_id: Uuid,
) -> sqlx::Result<Option<(String, String)>> {
    sqlx::query_as("select idempotency_key, memo from journal_transactions where id = $1")
        .bind(transaction_id)
        .fetch_optional(db)
        .await
}

/// The postings of one transaction, as an entry (for reversing it).
pub async fn entry_of(db: impl PgExecutor<'_>, transaction_id: Uuid) -> sqlx::Result<Vec<Posting>> {
    let rows: Vec<(String, Uuid, Decimal)> = sqlx::query_as(
        "select account_kind, account_holder, amount from postings where transaction_id = $1 order by id",
    )
    .bind(transaction_id)
    .fetch_all(db)
    .await?;
    Ok(rows
        .into_iter()
        .filter_map(|(kind, holder, amount)| {
            AccountKind::parse(&kind).map(|kind| Posting {
                account: Account::new(kind, holder),
                amount,
            })
        })
        .collect())
}

/// A ledger account and its balance (yuan; a credit is negative).
#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct AccountBalance {
    pub kind: String,
    pub holder_id: Uuid,
    #[serde(serialize_with = "crate::store::yuan")]
    pub balance: Decimal,
}

pub async fn accounts(
    db: impl PgExecutor<'_>,
    tenant_id: Uuid,
) -> sqlx::Result<Vec<AccountBalance>> {
    sqlx::query_as(
        "select kind, holder_id, balance from ledger_accounts where tenant_id = $1 order by kind, holder_id",
    )
    .bind(tenant_id)
    .fetch_all(db)
    .await
}

pub async fn balance(
    db: impl PgExecutor<'_>,
    tenant_id: Uuid,
    account: &Account,
) -> sqlx::Result<Decimal> {
    let balance: Option<Decimal> = sqlx::query_scalar(
        "select balance from ledger_accounts where tenant_id = $1 and kind = $2 and holder_id = $3",
    )
    .bind(tenant_id)
    .bind(account.kind.code())
    .bind(account.holder)
    .fetch_optional(db)
    .await?;
    Ok(balance.unwrap_or_default())
}

/// An account whose cached balance differs from the sum of its postings.
#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct BalanceDifference {
    pub kind: String,
    pub holder_id: Uuid,
    pub cached: Decimal,
    pub from_postings: Decimal,
}

pub async fn balance_differences(
    db: impl PgExecutor<'_>,
    tenant_id: Uuid,
) -> sqlx::Result<Vec<BalanceDifference>> {
    sqlx::query_as(
        "select a.kind, a.holder_id, a.balance as cached, coalesce(sum(p.amount), 0) as from_postings
           from ledger_accounts a
           left join postings p on p.account_kind = a.kind and p.account_holder = a.holder_id
          where a.tenant_id = $1
          group by a.kind, a.holder_id, a.balance
         having a.balance <> coalesce(sum(p.amount), 0)",
    )
    .bind(tenant_id)
    .fetch_all(db)
    .await
}

/// Transactions of the tenant with no postings at all (the database refuses to commit one,
/// and refuses to delete or truncate postings; the check reports them anyway, so that
/// tampering with the triggers off is seen).
pub async fn transactions_without_postings(
    db: impl PgExecutor<'_>,
    tenant_id: Uuid,
) -> sqlx::Result<Vec<Uuid>> {
    sqlx::query_scalar(
        "select t.id from journal_transactions t
          where t.tenant_id = $1
            and not exists (select 1 from postings p where p.transaction_id = t.id)",
    )
    .bind(tenant_id)
    .fetch_all(db)
    .await
}

/// Transactions of the tenant whose postings do not sum to zero (the database refuses them;
/// the check reports them anyway, so that the claim is verified rather than assumed).
pub async fn unbalanced_transactions(
    db: impl PgExecutor<'_>,
    tenant_id: Uuid,
) -> sqlx::Result<Vec<Uuid>> {
    sqlx::query_scalar(
        "select t.id from journal_transactions t join postings p on p.transaction_id = t.id
          where t.tenant_id = $1 group by t.id having sum(p.amount) <> 0",
    )
    .bind(tenant_id)
    .fetch_all(db)
    .await
}

/// One posting of a journal transaction (yuan; a credit is negative).
#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct JournalLine {
    pub transaction_id: Uuid,
    pub kind: String,
    pub session_id: Option<Uuid>,
    pub payment_id: Option<Uuid>,
    pub memo: String,
    pub created_at: DateTime<Utc>,
    pub account_kind: String,
    pub account_holder: Uuid,
    pub amount: Decimal,
}

/// Filters of the journal view; all optional, combined with "and".
#[derive(Debug, Default)]
pub struct JournalFilter {
    pub session_id: Option<Uuid>,
    pub account: Option<Account>,
    /// Transactions created in `[from, to)`: a calendar day in the compound's time zone.
    pub created: Option<(DateTime<Utc>, DateTime<Utc>)>,
}

/// Most transactions one page of the journal holds (each with all its postings: a page never
/// cuts a transaction in half).
pub const JOURNAL_TRANSACTIONS_MAX: i64 = 200;

/// Where a page of the journal ends: the last transaction's instant and id.
pub type JournalCursor = (DateTime<Utc>, Uuid);

/// One page of the journal: up to `limit` transactions after `after`, in order, with every
/// posting of each; and the cursor of the next page if there are more.
pub async fn journal_page(
    tx: &mut PgConnection,
    tenant_id: Uuid,
    f: &JournalFilter,
    after: Option<JournalCursor>,
    limit: i64,
) -> sqlx::Result<(Vec<JournalLine>, Option<JournalCursor>)> {
    let mut page: Vec<(Uuid, DateTime<Utc>)> = sqlx::query_as(
        "select t.id, t.created_at from journal_transactions t
          where t.tenant_id = $1
            and ($2::uuid is null or t.session_id = $2)
            and ($3::text is null or t.id in (select transaction_id from postings
                                              where account_kind = $3 and account_holder = $4))
            and ($5::timestamptz is null or (t.created_at >= $5 and t.created_at < $6))
            and ($7::timestamptz is null or (t.created_at, t.id) > ($7, $8))
          order by t.created_at, t.id
          limit $9",
    )
    .bind(tenant_id)
    .bind(f.session_id)
    .bind(f.account.map(|a| a.kind.code()))
    .bind(f.account.map(|a| a.holder))
    .bind(f.created.map(|(from, _)| from))
    .bind(f.created.map(|(_, to)| to))
    .bind(after.map(|(at, _)| at))
    .bind(after.map(|(_, id)| id))
    .bind(limit + 1)
    .fetch_all(&mut *tx)
    .await?;
    let more = page.len() as i64 > limit;
    page.truncate(usize::try_from(limit).unwrap_or(0));
    let next = if more {
        page.last().map(|(id, at)| (*at, *id))
    } else {
        None
    };
    let ids: Vec<Uuid> = page.iter().map(|(id, _)| *id).collect();
    let lines = sqlx::query_as(
        "select t.id as transaction_id, t.kind, t.session_id, t.payment_id, t.memo, t.created_at,
                p.account_kind, p.account_holder, p.amount
           from journal_transactions t join postings p on p.transaction_id = t.id
          where t.id = any($1)
          order by t.created_at, t.id, p.id",
    )
    .bind(&ids)
    .fetch_all(&mut *tx)
    .await?;
    Ok((lines, next))
}

/// The time zones of a firm's compounds.
pub async fn firm_time_zones(
    db: impl PgExecutor<'_>,
    tenant_id: Uuid,
) -> sqlx::Result<Vec<String>> {
    sqlx::query_scalar("select distinct time_zone from compounds where tenant_id = $1 order by 1")
        .bind(tenant_id)
        .fetch_all(db)
        .await
}

/// A compound's revenue policy and when it takes effect.
#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct StoredPolicy {
    pub id: Uuid,
    pub compound_id: Uuid,
    /// How the compound's common revenue is split (shares of the owners and the firm).
    #[sqlx(json)]
    #[schema(value_type = Object)]
    pub policy: RevenuePolicy,
    pub effective_from: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
}

pub async fn insert_policy(
    db: impl PgExecutor<'_>,
    tenant_id: Uuid,
    compound_id: Uuid,
    policy: &RevenuePolicy,
    effective_from: DateTime<Utc>,
) -> sqlx::Result<StoredPolicy> {
    sqlx::query_as(
        "insert into revenue_policies (id, tenant_id, compound_id, policy, effective_from)
         values ($1, $2, $3, $4, $5) returning id, compound_id, policy, effective_from, created_at",
    )
    .bind(Uuid::new_v4())
    .bind(tenant_id)
    .bind(compound_id)
    .bind(sqlx::types::Json(policy))
    .bind(effective_from)
    .fetch_one(db)
    .await
}

pub async fn policies(
    db: impl PgExecutor<'_>,
    tenant_id: Uuid,
    compound_id: Uuid,
) -> sqlx::Result<Vec<StoredPolicy>> {
    sqlx::query_as(
        "select id, compound_id, policy, effective_from, created_at from revenue_policies
          where tenant_id = $1 and compound_id = $2 order by effective_from",
    )
    .bind(tenant_id)
    .bind(compound_id)
    .fetch_all(db)
    .await
}

/// The query of the policy of compound `compound` in force at `at` (SQL expressions), for
/// use on its own or as a scalar subquery.
pub fn policy_in_force_sql(compound: &str, at: &str) -> String {
    format!(
        "select policy from revenue_policies where compound_id = {compound} and effective_from <= {at}
          order by effective_from desc limit 1"
    )
}

/// A stored policy, or the default if the compound has recorded none yet.
pub fn policy_or_default(policy: Option<&sqlx::types::Json<RevenuePolicy>>) -> RevenuePolicy {
    policy.map(|p| p.0.clone()).unwrap_or_default()
}

/// The policy in force at `at`, or the default if the compound has recorded none yet.
pub async fn policy_in_force(
    db: impl PgExecutor<'_>,
    compound_id: Uuid,
    at: DateTime<Utc>,
) -> sqlx::Result<RevenuePolicy> {
    static SQL: std::sync::LazyLock<String> =
        std::sync::LazyLock::new(|| policy_in_force_sql("$1", "$2"));
    let policy: Option<sqlx::types::Json<RevenuePolicy>> = sqlx::query_scalar(&SQL)
        .bind(compound_id)
        .bind(at)
        .fetch_optional(db)
        .await?;
    Ok(policy_or_default(policy.as_ref()))
}
