//! The SQL of rentals and the waiting list, one function per statement.

use std::sync::LazyLock;

use chrono::{DateTime, NaiveDate, Utc};
use rust_decimal::Decimal;
use serde::Serialize;
use sqlx::{PgConnection, PgExecutor};
use uuid::Uuid;

/// One term of a rental, as stored; money in yuan, as decimal strings.
#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct Rental {
    pub id: Uuid,
    #[serde(skip)]
    pub tenant_id: Uuid,
    pub compound_id: Uuid,
    pub lot_id: Uuid,
    pub space_id: Option<Uuid>,
    pub space_code: Option<String>,
    /// `pool`, `common`, `developer_unsold` or `owned`.
    pub space_kind: String,
    pub plate: String,
    pub vehicle_class: String,
    pub owner_id: Option<Uuid>,
    pub renter_name: Option<String>,
    pub renter_phone: Option<String>,
    pub months: i32,
    pub starts_on: NaiveDate,
    /// The term's last day (after an early end, the last day of use).
    pub ends_on: NaiveDate,
    pub grace_days: i32,
    #[serde(serialize_with = "crate::store::yuan")]
    pub monthly_price: Decimal,
    #[serde(with = "rust_decimal::serde::str")]
    pub discount_pct: Decimal,
    #[serde(serialize_with = "crate::store::yuan")]
    pub price: Decimal,
    pub filing_no: String,
    /// As stored: `awaiting_payment`, `paid`, `ended`, `expired` or `cancelled`.
    pub status: String,
    pub hold_expires_at: Option<DateTime<Utc>>,
    pub renews_id: Option<Uuid>,
    /// The paid term that renews this one (a renewal awaiting its payment does not yet).
    pub renewed_by: Option<Uuid>,
    pub applied_by: String,
    #[serde(serialize_with = "crate::store::yuan")]
    pub paid: Decimal,
    #[serde(serialize_with = "crate::store::yuan")]
    pub refunded: Decimal,
    pub payment_method: Option<String>,
    #[serde(skip)]
    pub payment_transaction_id: Option<Uuid>,
    pub paid_at: Option<DateTime<Utc>>,
    pub ended_on: Option<NaiveDate>,
    pub reminded_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}

const RENTAL_SELECT: &str = "
    select r.id, r.tenant_id, r.compound_id, r.lot_id, r.space_id, sp.code as space_code, r.space_kind, r.plate,
           r.vehicle_class, r.owner_id, r.renter_name, r.renter_phone, r.months,
           lower(r.during) as starts_on, upper(r.during) - 1 as ends_on, r.grace_days,
           r.monthly_price, r.discount_pct, r.price, r.filing_no, r.status, r.hold_expires_at,
           r.renews_id,
           (select n.id from rentals n where n.renews_id = r.id
               and n.status in ('paid', 'ended')) as renewed_by,
           r.applied_by, r.paid, r.refunded, r.payment_method, r.payment_transaction_id,
           r.paid_at, r.ended_on, r.reminded_at, r.created_at
      from rentals r left join spaces sp on sp.id = r.space_id";

/// A term to be written, awaiting its payment.
pub struct NewRental<'a> {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub compound_id: Uuid,
    pub lot_id: Uuid,
    pub space_id: Option<Uuid>,
    pub space_kind: &'a str,
    pub plate: &'a str,
    pub vehicle_class: &'a str,
    pub owner_id: Option<Uuid>,
    pub renter_name: Option<&'a str>,
    pub renter_phone: Option<&'a str>,
    pub months: i32,
    pub starts_on: NaiveDate,
    pub ends_on: NaiveDate,
    pub grace_days: i32,
    pub monthly_price: Decimal,
    pub discount_pct: Decimal,
    pub price: Decimal,
    pub filing_no: &'a str,
    pub hold_expires_at: DateTime<Utc>,
    pub renews_id: Option<Uuid>,
    pub applied_by: &'a str,
}

/// Writes `r`; the exclusion constraints refuse a second live term of its space or plate.
pub async fn insert(db: impl PgExecutor<'_>, r: &NewRental<'_>) -> sqlx::Result<()> {
    sqlx::query(
        "insert into rentals (id, tenant_id, compound_id, lot_id, space_id, space_kind, plate,
             vehicle_class, owner_id, renter_name, renter_phone, months, during, grace_days,
             monthly_price, discount_pct, price, filing_no, status, hold_expires_at, renews_id,
             applied_by)
         values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, daterange($13, $14 + 1),
                 $15, $16, $17, $18, $19, 'awaiting_payment', $20, $21, $22)",
    )
    .bind(r.id)
    .bind(r.tenant_id)
    .bind(r.compound_id)
    .bind(r.lot_id)
    .bind(r.space_id)
    .bind(r.space_kind)
    .bind(r.plate)
    .bind(r.vehicle_class)
    .bind(r.owner_id)
    .bind(r.renter_name)
    .bind(r.renter_phone)
    .bind(r.months)
    .bind(r.starts_on)
    .bind(r.ends_on)
    .bind(r.grace_days)
    .bind(r.monthly_price)
    .bind(r.discount_pct)
    .bind(r.price)
    .bind(r.filing_no)
    .bind(r.hold_expires_at)
    .bind(r.renews_id)
    .bind(r.applied_by)
    .execute(db)
    .await
    .map(drop)
}

pub async fn rental(
    db: impl PgExecutor<'_>,
    tenant_id: Uuid,
    id: Uuid,
) -> sqlx::Result<Option<Rental>> {
    sqlx::query_as(&format!(
        "{RENTAL_SELECT} where r.tenant_id = $1 and r.id = $2"
    ))
    .bind(tenant_id)
    .bind(id)
    .fetch_optional(db)
    .await
}

/// The term, its row locked until the transaction ends.
pub async fn rental_for_update(
    db: impl PgExecutor<'_>,
    tenant_id: Uuid,
    id: Uuid,
) -> sqlx::Result<Option<Rental>> {
    sqlx::query_as(&format!(
        "{RENTAL_SELECT} where r.tenant_id = $1 and r.id = $2 for update of r"
    ))
    .bind(tenant_id)
    .bind(id)
    .fetch_optional(db)
    .await
}

/// The renewal of the term `id` that stands at `now`: paid, or held for its payment with its
/// hold running. Read in its own statement, after the term's lock: a renewal committed while
/// this request waited for the lock is seen.
pub async fn renewal_of(
    db: impl PgExecutor<'_>,
    id: Uuid,
    now: DateTime<Utc>,
) -> sqlx::Result<Option<Uuid>> {
    sqlx::query_scalar(
        "select id from rentals where renews_id = $1
            and (status in ('paid', 'ended')
                 or (status = 'awaiting_payment' and hold_expires_at > $2))
          limit 1",
    )
    .bind(id)
    .bind(now)
    .fetch_optional(db)
    .await
}

/// Withdraws the renewal of the term `id` still awaiting its payment (its term is ended
/// early): `cancelled`, so a payment that slips in is owed back. Answers its id.
pub async fn cancel_unpaid_renewal(
    db: impl PgExecutor<'_>,
    id: Uuid,
) -> sqlx::Result<Option<Uuid>> {
    sqlx::query_scalar(
        "update rentals set status = 'cancelled', hold_expires_at = null
          where renews_id = $1 and status = 'awaiting_payment' returning id",
    )
    .bind(id)
    .fetch_optional(db)
    .await
}

/// The compound's terms, newest first; with `expiring_by`, only paid terms not renewed that
/// end (or whose grace ends) on or before it and have not lapsed before `today`.
pub async fn of_compound(
    db: impl PgExecutor<'_>,
    tenant_id: Uuid,
    compound_id: Uuid,
    expiring: Option<(NaiveDate, NaiveDate)>,
    limit: i64,
) -> sqlx::Result<Vec<Rental>> {
    sqlx::query_as(&format!(
        "{RENTAL_SELECT} where r.tenant_id = $1 and r.compound_id = $2
            and ($3::date is null or (r.status = 'paid' and upper(r.during) - 1 <= $4
                 and upper(r.during) - 1 + r.grace_days >= $3
                 and not exists (select 1 from rentals n where n.renews_id = r.id
                                   and n.status in ('paid', 'ended'))))
          order by case when $3::date is null then r.created_at end desc,
                   upper(r.during), r.id
          limit $5"
    ))
    .bind(tenant_id)
    .bind(compound_id)
    .bind(expiring.map(|(today, _)| today))
    .bind(expiring.map(|(_, by)| by))
    .bind(limit)
    .fetch_all(db)
    .await
}

/// The owner's terms, newest first.
pub async fn of_owner(
    db: impl PgExecutor<'_>,
    tenant_id: Uuid,
    owner_id: Uuid,
) -> sqlx::Result<Vec<Rental>> {
    sqlx::query_as(&format!(
        "{RENTAL_SELECT} where r.tenant_id = $1 and r.owner_id = $2 order by r.created_at desc, r.id limit 500"
    ))
    .bind(tenant_id)
    .bind(owner_id)
    .fetch_all(db)
    .await
}

/// A space as a rental needs it, its row locked so that applications for it are decided one
/// after the other.
#[derive(Debug, sqlx::FromRow)]
pub struct SpaceToRent {
    pub id: Uuid,
    pub lot_id: Uuid,
    pub compound_id: Uuid,
    pub kind: String,
    pub owner_id: Option<Uuid>,
    pub offered_as: String,
}

/// The compound of the firm's space, read without a lock (to take the compound's locks before
/// the space's row).
pub async fn compound_of_space(
    db: impl PgExecutor<'_>,
    tenant_id: Uuid,
    space_id: Uuid,
) -> sqlx::Result<Option<Uuid>> {
    sqlx::query_scalar(
        "select l.compound_id from spaces s join lots l on l.id = s.lot_id
          where s.tenant_id = $1 and s.id = $2",
    )
    .bind(tenant_id)
    .bind(space_id)
    .fetch_optional(db)
    .await
}

pub async fn space_for_update(
    db: impl PgExecutor<'_>,
    tenant_id: Uuid,
    space_id: Uuid,
) -> sqlx::Result<Option<SpaceToRent>> {
    sqlx::query_as(
        "select s.id, s.lot_id, l.compound_id, s.kind, s.owner_id, s.offered_as
           from spaces s join lots l on l.id = s.lot_id
          where s.tenant_id = $1 and s.id = $2 for update of s",
    )
    .bind(tenant_id)
    .bind(space_id)
    .fetch_optional(db)
    .await
}

/// The lot's places for pool passes, its row locked (`for no key update`: gate writes that
/// only reference the lot go on) so that pass applications for it are decided one after the
/// other. `None`: no such lot.
pub async fn pass_places_for_update(
    db: impl PgExecutor<'_>,
    lot_id: Uuid,
) -> sqlx::Result<Option<i32>> {
    sqlx::query_scalar("select pass_places from lots where id = $1 for no key update")
        .bind(lot_id)
        .fetch_optional(db)
        .await
}

/// The most pool passes of `lot_id` in force on any one day of `[starts_on, ends_on]`: terms
/// paid (or ended early, through their last day), or held unpaid with their hold running at
/// `now`.
pub async fn passes_at_peak(
    db: impl PgExecutor<'_>,
    lot_id: Uuid,
    (starts_on, ends_on): (NaiveDate, NaiveDate),
    now: DateTime<Utc>,
) -> sqlx::Result<i64> {
    sqlx::query_scalar(
        "select coalesce(max(n), 0) from (
             select count(r.id) as n
               from generate_series($2::date, $3::date, interval '1 day') as d (day)
               join rentals r on r.lot_id = $1 and r.space_id is null
                    and r.during @> d.day::date
                    and (r.status in ('paid', 'ended')
                         or (r.status = 'awaiting_payment' and r.hold_expires_at > $4))
              group by d.day) per_day",
    )
    .bind(lot_id)
    .bind(starts_on)
    .bind(ends_on)
    .bind(now)
    .fetch_one(db)
    .await
}

/// The last day any pool pass of `lot_id` ever covered, if one was ever applied for.
pub async fn last_pass_day(
    db: impl PgExecutor<'_>,
    lot_id: Uuid,
) -> sqlx::Result<Option<NaiveDate>> {
    sqlx::query_scalar(
        "select max(upper(during)) - 1 from rentals where lot_id = $1 and space_id is null",
    )
    .bind(lot_id)
    .fetch_one(db)
    .await
}

/// Unpaid holds that ran out by `now` on `space_id` or of `plate` in `lot_id` are expired, so
/// they no longer stand in the way of a new application. Returns how many.
pub async fn expire_holds_in_way(
    db: impl PgExecutor<'_>,
    space_id: Option<Uuid>,
    lot_id: Uuid,
    plate: &str,
    now: DateTime<Utc>,
) -> sqlx::Result<u64> {
    expire(db, now, Some((space_id, lot_id, plate))).await
}

/// Every unpaid hold that ran out by `now`.
pub async fn expire_holds(db: impl PgExecutor<'_>, now: DateTime<Utc>) -> sqlx::Result<u64> {
    expire(db, now, None).await
}

/// Unpaid pool-pass holds of `lot_id` that ran out by `now` are expired before the lot's pass
/// places are counted: a place a lapsed hold kept goes to the new pass, and a payment that
/// arrives late for the lapsed hold is owed back instead of overselling the lot.
pub async fn expire_pass_holds(
    db: impl PgExecutor<'_>,
    lot_id: Uuid,
    now: DateTime<Utc>,
) -> sqlx::Result<u64> {
    expire(db, now, Some((None, lot_id, ""))).await
}

/// The one statement that expires unpaid holds (all, those in the way of an application, or,
/// with an empty plate, a lot's pool-pass holds):
/// a lottery offer accepted with a car whose rental it expires lapses with it, in the same
/// statement, so that the offer passes to the next applicant (docs/lottery.md).
async fn expire(
    db: impl PgExecutor<'_>,
    now: DateTime<Utc>,
    in_way: Option<(Option<Uuid>, Uuid, &str)>,
) -> sqlx::Result<u64> {
    sqlx::query_scalar::<_, i64>(
        "with expired as (
             update rentals set status = 'expired'
              where status = 'awaiting_payment' and hold_expires_at <= $1
                and ($2 or space_id = $3 or (lot_id = $4 and plate = $5)
                     or ($5 = '' and space_id is null and lot_id = $4))
             returning id),
         lapsed as (
             update lottery_offers o set lapsed_at = $1
               from expired e
              where o.rental_id = e.id and o.lapsed_at is null)
         select count(*) from expired",
    )
    .bind(now)
    .bind(in_way.is_none())
    .bind(in_way.and_then(|(space, _, _)| space))
    .bind(in_way.map(|(_, lot, _)| lot))
    .bind(in_way.map(|(_, _, plate)| plate))
    .fetch_one(db)
    .await
    .map(|n| u64::try_from(n).unwrap_or(0))
}

pub struct Paid<'a> {
    pub id: Uuid,
    pub amount: Decimal,
    pub method: &'a str,
    pub transaction_id: Uuid,
    pub paid_at: DateTime<Utc>,
}

pub async fn mark_paid(db: impl PgExecutor<'_>, p: &Paid<'_>) -> sqlx::Result<()> {
    sqlx::query(
        "update rentals set status = 'paid', paid = $2, payment_method = $3,
                payment_transaction_id = $4, paid_at = $5, hold_expires_at = null
          where id = $1",
    )
    .bind(p.id)
    .bind(p.amount)
    .bind(p.method)
    .bind(p.transaction_id)
    .bind(p.paid_at)
    .execute(db)
    .await
    .map(drop)
}

/// Ends a paid term after `last_day` with `refund` given back: cut to end on `last_day`
/// (`ended`), or, when it had not begun, `cancelled` whole.
pub async fn end_early(
    db: impl PgExecutor<'_>,
    id: Uuid,
    last_day: NaiveDate,
    refund: Decimal,
) -> sqlx::Result<()> {
    sqlx::query(
        "update rentals
            set status = case when $2 < lower(during) then 'cancelled' else 'ended' end,
                during = case when $2 < lower(during) then during
                              else daterange(lower(during), $2 + 1) end,
                grace_days = 0, ended_on = $2, refunded = refunded + $3
          where id = $1",
    )
    .bind(id)
    .bind(last_day)
    .bind(refund)
    .execute(db)
    .await
    .map(drop)
}

pub async fn set_status(db: impl PgExecutor<'_>, id: Uuid, status: &str) -> sqlx::Result<()> {
    sqlx::query("update rentals set status = $2 where id = $1")
        .bind(id)
        .bind(status)
        .execute(db)
        .await
        .map(drop)
}

/// Who a rental's payment credits: the kind of space and its owner, in its compound, by the
/// compound's revenue policy in force at `at`.
#[derive(Debug, sqlx::FromRow)]
pub struct RentalParties {
    pub tenant_id: Uuid,
    pub compound_id: Uuid,
    pub space_kind: String,
    pub space_owner_id: Option<Uuid>,
    pub plate: String,
    pub policy: Option<sqlx::types::Json<parkshare_ledger::RevenuePolicy>>,
}

pub async fn parties(
    db: impl PgExecutor<'_>,
    rental_id: Uuid,
    at: DateTime<Utc>,
) -> sqlx::Result<Option<RentalParties>> {
    static SQL: LazyLock<String> = LazyLock::new(|| {
        format!(
            "select r.tenant_id, r.compound_id, r.space_kind, sp.owner_id as space_owner_id,
                    r.plate, ({policy}) as policy
               from rentals r left join spaces sp on sp.id = r.space_id
              where r.id = $1",
            policy = crate::store::ledger::policy_in_force_sql("r.compound_id", "$2"),
        )
    });
    sqlx::query_as(&SQL)
        .bind(rental_id)
        .bind(at)
        .fetch_optional(db)
        .await
}

/// A paid term due its reminder at `now`: ending within `within_days` of its compound's local
/// today, not yet reminded, not renewed. Taken with `skip locked`, so replicas share the work.
#[derive(Debug, sqlx::FromRow)]
pub struct DueReminder {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub owner_id: Option<Uuid>,
    pub plate: String,
    pub space_code: Option<String>,
    pub ends_on: NaiveDate,
    pub grace_days: i32,
}

pub async fn due_reminders(
    db: &mut PgConnection,
    now: DateTime<Utc>,
    within_days: i32,
    limit: i64,
) -> sqlx::Result<Vec<DueReminder>> {
    sqlx::query_as(
        "select r.id, r.tenant_id, r.owner_id, r.plate, sp.code as space_code,
                upper(r.during) - 1 as ends_on, r.grace_days
           from rentals r
           join compounds c on c.id = r.compound_id
           left join spaces sp on sp.id = r.space_id
          where r.status = 'paid' and r.reminded_at is null
            and upper(r.during) - 1 >= ($1 at time zone c.time_zone)::date
            and upper(r.during) - 1 <= ($1 at time zone c.time_zone)::date + $2
            and not exists (select 1 from rentals n where n.renews_id = r.id
                              and n.status in ('paid', 'ended'))
          order by upper(r.during), r.id
          limit $3
          for update of r skip locked",
    )
    .bind(now)
    .bind(within_days)
    .bind(limit)
    .fetch_all(db)
    .await
}

pub async fn mark_reminded(
    db: impl PgExecutor<'_>,
    id: Uuid,
    at: DateTime<Utc>,
) -> sqlx::Result<()> {
    sqlx::query("update rentals set reminded_at = $2 where id = $1")
        .bind(id)
        .bind(at)
        .execute(db)
        .await
        .map(drop)
}

/// The condition that the term `r` holds its space on some day from the date `from` on, at
/// the instant `now`: paid (an early end cut its days), or held for its payment with the hold
/// still running. One home for "the space is rented from today" (an offer's free space, a
/// lottery's refusal of a rented space).
fn holds_space_from(r: &str, from: &str, now: &str) -> String {
    format!(
        "({r}.during && daterange({from}, null)
          and ({r}.status in ('paid', 'ended')
               or ({r}.status = 'awaiting_payment' and {r}.hold_expires_at > {now})))"
    )
}

/// The first of `space_ids` (in their order) with no live term on the local today of its
/// compound at `now`.
pub async fn first_free_space(
    db: impl PgExecutor<'_>,
    space_ids: &[Uuid],
    now: DateTime<Utc>,
) -> sqlx::Result<Option<Uuid>> {
    static SQL: LazyLock<String> = LazyLock::new(|| {
        format!(
            "select u.id from unnest($1::uuid[]) with ordinality as u (id, n)
               join spaces s on s.id = u.id
               join lots l on l.id = s.lot_id
               join compounds c on c.id = l.compound_id
              where not exists (select 1 from rentals r where r.space_id = u.id
                                  and {holds})
              order by u.n limit 1",
            holds = holds_space_from("r", "($2 at time zone c.time_zone)::date", "$2"),
        )
    });
    sqlx::query_scalar(&SQL)
        .bind(space_ids)
        .bind(now)
        .fetch_optional(db)
        .await
}

/// The first of `space_ids` (by id) rented on its compound's local today at `now` or later.
pub async fn rented_from_today(
    db: impl PgExecutor<'_>,
    space_ids: &[Uuid],
    now: DateTime<Utc>,
) -> sqlx::Result<Option<Uuid>> {
    static SQL: LazyLock<String> = LazyLock::new(|| {
        format!(
            "select s.id from spaces s
               join lots l on l.id = s.lot_id
               join compounds c on c.id = l.compound_id
              where s.id = any($1)
                and exists (select 1 from rentals r where r.space_id = s.id and {holds})
              order by s.id limit 1",
            holds = holds_space_from("r", "($2 at time zone c.time_zone)::date", "$2"),
        )
    });
    sqlx::query_scalar(&SQL)
        .bind(space_ids)
        .bind(now)
        .fetch_optional(db)
        .await
}

/// Billing asks it of a stay (below the rentals, in `store::registry`).
pub use crate::store::registry::lapsed_during_stay;

/// The owner of the registered vehicle `plate` in the compound, and its class.
pub async fn vehicle_of(
    db: impl PgExecutor<'_>,
    compound_id: Uuid,
    plate: &str,
) -> sqlx::Result<Option<(Uuid, String)>> {
    sqlx::query_as("select owner_id, class from vehicles where compound_id = $1 and plate = $2")
        .bind(compound_id)
        .bind(plate)
        .fetch_optional(db)
        .await
}

// ---- the waiting list ----------------------------------------------------------------------

/// An entry of the waiting list, with what its household holds now.
#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct WaitingRow {
    pub id: Uuid,
    pub owner_id: Uuid,
    pub unit: String,
    pub space_kind: String,
    pub status: String,
    pub joined_at: DateTime<Utc>,
    /// Spaces the household owns plus terms it rents, paid and in force at `today`.
    pub spaces_held: i64,
    pub rental_id: Option<Uuid>,
}

/// Owners waiting in the compound for `space_kind` (every kind if `None`), in no order, with
/// the spaces each household holds on `today`.
pub async fn waiting(
    db: impl PgExecutor<'_>,
    compound_id: Uuid,
    space_kind: Option<&str>,
    today: NaiveDate,
) -> sqlx::Result<Vec<WaitingRow>> {
    sqlx::query_as(
        "select w.id, w.owner_id, o.unit, w.space_kind, w.status, w.joined_at,
                (select count(*) from spaces s where s.owner_id = w.owner_id)
                + (select count(*) from rentals r where r.owner_id = w.owner_id
                     and r.status in ('paid', 'ended') and r.during @> $3::date) as spaces_held,
                w.rental_id
           from waiting_list w join owners o on o.id = w.owner_id
          where w.compound_id = $1 and w.status = 'waiting'
            and ($2::text is null or w.space_kind = $2)",
    )
    .bind(compound_id)
    .bind(space_kind)
    .bind(today)
    .fetch_all(db)
    .await
}

/// Locks the compound's waiting list for `space_kind` until the transaction ends: an
/// application and a joining owner are decided one after the other.
pub async fn lock_waiting(
    db: impl PgExecutor<'_>,
    compound_id: Uuid,
    space_kind: &str,
) -> sqlx::Result<()> {
    sqlx::query("select pg_advisory_xact_lock(hashtextextended($1::text || ':waiting:' || $2, 26))")
        .bind(compound_id)
        .bind(space_kind)
        .execute(db)
        .await
        .map(drop)
}

pub async fn join_waiting(
    db: impl PgExecutor<'_>,
    tenant_id: Uuid,
    compound_id: Uuid,
    owner_id: Uuid,
    space_kind: &str,
) -> sqlx::Result<Uuid> {
    sqlx::query_scalar(
        "insert into waiting_list (id, tenant_id, compound_id, owner_id, space_kind, status)
         values ($1, $2, $3, $4, $5, 'waiting') returning id",
    )
    .bind(Uuid::now_v7())
    .bind(tenant_id)
    .bind(compound_id)
    .bind(owner_id)
    .bind(space_kind)
    .fetch_one(db)
    .await
}

/// Marks the owner's waiting entry for `space_kind` served by `rental_id`, if they had one.
pub async fn serve_waiting(
    db: impl PgExecutor<'_>,
    owner_id: Uuid,
    space_kind: &str,
    rental_id: Uuid,
) -> sqlx::Result<()> {
    sqlx::query(
        "update waiting_list set status = 'served', rental_id = $3
          where owner_id = $1 and space_kind = $2 and status = 'waiting'",
    )
    .bind(owner_id)
    .bind(space_kind)
    .bind(rental_id)
    .execute(db)
    .await
    .map(drop)
}

/// Withdraws the owner's waiting entry `id`; `false` if there was none waiting.
pub async fn withdraw_waiting(
    db: impl PgExecutor<'_>,
    tenant_id: Uuid,
    owner_id: Option<Uuid>,
    id: Uuid,
) -> sqlx::Result<bool> {
    sqlx::query(
        "update waiting_list set status = 'withdrawn'
          where tenant_id = $1 and id = $3 and status = 'waiting'
            and ($2::uuid is null or owner_id = $2)",
    )
    .bind(tenant_id)
    .bind(owner_id)
    .bind(id)
    .execute(db)
    .await
    .map(|r| r.rows_affected() == 1)
}

pub async fn waiting_order(db: impl PgExecutor<'_>, compound_id: Uuid) -> sqlx::Result<String> {
    sqlx::query_scalar("select waiting_order from compounds where id = $1")
        .bind(compound_id)
        .fetch_one(db)
        .await
}

pub async fn set_waiting_order(
    db: impl PgExecutor<'_>,
    tenant_id: Uuid,
    compound_id: Uuid,
    order: &str,
) -> sqlx::Result<bool> {
    sqlx::query("update compounds set waiting_order = $3 where tenant_id = $1 and id = $2")
        .bind(tenant_id)
        .bind(compound_id)
        .bind(order)
        .execute(db)
        .await
        .map(|r| r.rows_affected() == 1)
}

/// The compound of an owner.
pub async fn owner_compound(
    db: impl PgExecutor<'_>,
    tenant_id: Uuid,
    owner_id: Uuid,
) -> sqlx::Result<Option<Uuid>> {
    sqlx::query_scalar("select compound_id from owners where tenant_id = $1 and id = $2")
        .bind(tenant_id)
        .bind(owner_id)
        .fetch_optional(db)
        .await
}

/// The compound and time zone of a lot.
pub async fn lot_place(
    db: impl PgExecutor<'_>,
    tenant_id: Uuid,
    lot_id: Uuid,
) -> sqlx::Result<Option<(Uuid, String)>> {
    sqlx::query_as(
        "select l.compound_id, c.time_zone from lots l join compounds c on c.id = l.compound_id
          where l.tenant_id = $1 and l.id = $2",
    )
    .bind(tenant_id)
    .bind(lot_id)
    .fetch_optional(db)
    .await
}

pub async fn compound_zone(db: impl PgExecutor<'_>, compound_id: Uuid) -> sqlx::Result<String> {
    sqlx::query_scalar("select time_zone from compounds where id = $1")
        .bind(compound_id)
        .fetch_one(db)
        .await
}
