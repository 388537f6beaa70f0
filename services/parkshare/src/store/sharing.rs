//! Shared spaces, their exceptions, bookings and their history, owners' credentials and
//! webhooks, and the webhook outbox.

use chrono::{DateTime, Utc};
use parkshare_sharing::{Exception, ExceptionKind, Interval, Schedule, WeeklyWindow};
use rust_decimal::Decimal;
use serde::Serialize;
use sqlx::types::Json;
use sqlx::{PgConnection, PgExecutor};
use uuid::Uuid;

// ---- owners' credentials -------------------------------------------------------------------

pub async fn insert_owner_token(
    db: impl PgExecutor<'_>,
    tenant_id: Uuid,
    owner_id: Uuid,
    token_sha256: &[u8],
    label: &str,
) -> sqlx::Result<Uuid> {
    sqlx::query_scalar("insert into owner_tokens (token_sha256, tenant_id, owner_id, label) values ($1, $2, $3, $4) returning id")
        .bind(token_sha256)
        .bind(tenant_id)
        .bind(owner_id)
        .bind(label)
        .fetch_one(db)
        .await
}

/// `(tenant_id, owner_id)` of a live owner token.
pub async fn owner_by_token(
    db: impl PgExecutor<'_>,
    token_sha256: &[u8],
) -> sqlx::Result<Option<(Uuid, Uuid)>> {
    sqlx::query_as("select tenant_id, owner_id from owner_tokens where token_sha256 = $1 and revoked_at is null")
        .bind(token_sha256)
        .fetch_optional(db)
        .await
}

// ---- shared spaces -------------------------------------------------------------------------

/// An owned space as its owner sees it, with its sharing settings if it is shared.
#[derive(Debug, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct OwnedSpace {
    pub space_id: Uuid,
    pub code: String,
    pub lot_id: Uuid,
    pub lot_name: String,
    pub shared: bool,
    pub paused: bool,
    #[schema(value_type = Vec<WeeklyWindow>)]
    pub windows: Json<Vec<WeeklyWindow>>,
    pub price_pct: i16,
}

pub async fn spaces_of_owner(
    db: impl PgExecutor<'_>,
    tenant_id: Uuid,
    owner_id: Uuid,
) -> sqlx::Result<Vec<OwnedSpace>> {
    sqlx::query_as(
        "select s.id as space_id, s.code, s.lot_id, l.name as lot_name, (ss.space_id is not null) as shared,
                coalesce(ss.paused, false) as paused, coalesce(ss.windows, '[]') as windows,
                coalesce(ss.price_pct, 100::smallint) as price_pct
           from spaces s join lots l on l.id = s.lot_id
           left join shared_spaces ss on ss.space_id = s.id
          where s.tenant_id = $1 and s.owner_id = $2 and s.kind = 'owned'
          order by s.code",
    )
    .bind(tenant_id)
    .bind(owner_id)
    .fetch_all(db)
    .await
}

/// A shared space with what availability needs.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct SharedSpace {
    pub space_id: Uuid,
    pub tenant_id: Uuid,
    pub compound_id: Uuid,
    pub lot_id: Uuid,
    pub owner_id: Uuid,
    pub code: String,
    pub time_zone: String,
    pub paused: bool,
    pub windows: Json<Vec<WeeklyWindow>>,
    /// Percent of the filed tariff a stay on this space is charged.
    pub price_pct: i16,
}

const SHARED_COLUMNS: &str =
    "ss.space_id, ss.tenant_id, ss.compound_id, ss.lot_id, ss.owner_id, s.code,
    c.time_zone, ss.paused, ss.windows, ss.price_pct";
const SHARED_FROM: &str = "shared_spaces ss join spaces s on s.id = ss.space_id join compounds c on c.id = ss.compound_id";

/// Makes the owner's owned space shared (with no windows yet) and locks its row; `None` when
/// the space is not this owner's.
pub async fn shared_space_of_owner_for_update(
    tx: &mut PgConnection,
    tenant_id: Uuid,
    owner_id: Uuid,
    space_id: Uuid,
) -> sqlx::Result<Option<SharedSpace>> {
    sqlx::query(
        "insert into shared_spaces (space_id, tenant_id, compound_id, lot_id, owner_id)
         select s.id, s.tenant_id, l.compound_id, s.lot_id, s.owner_id
           from spaces s join lots l on l.id = s.lot_id
          where s.id = $1 and s.tenant_id = $2 and s.owner_id = $3 and s.kind = 'owned'
         on conflict (space_id) do nothing",
    )
    .bind(space_id)
    .bind(tenant_id)
    .bind(owner_id)
    .execute(&mut *tx)
    .await?;
    sqlx::query_as(&format!(
        "select {SHARED_COLUMNS} from {SHARED_FROM}
          where ss.space_id = $1 and ss.tenant_id = $2 and ss.owner_id = $3 for update of ss"
    ))
    .bind(space_id)
    .bind(tenant_id)
    .bind(owner_id)
    .fetch_optional(&mut *tx)
    .await
}

pub async fn shared_spaces_of_lot(
    db: impl PgExecutor<'_>,
    lot_id: Uuid,
) -> sqlx::Result<Vec<SharedSpace>> {
    sqlx::query_as(&format!(
        "select {SHARED_COLUMNS} from {SHARED_FROM} where ss.lot_id = $1 order by s.code"
    ))
    .bind(lot_id)
    .fetch_all(db)
    .await
}

pub async fn shared_space(
    db: impl PgExecutor<'_>,
    space_id: Uuid,
) -> sqlx::Result<Option<SharedSpace>> {
    sqlx::query_as(&format!(
        "select {SHARED_COLUMNS} from {SHARED_FROM} where ss.space_id = $1"
    ))
    .bind(space_id)
    .fetch_optional(db)
    .await
}

pub async fn set_windows(
    db: impl PgExecutor<'_>,
    space_id: Uuid,
    windows: &[WeeklyWindow],
) -> sqlx::Result<()> {
    sqlx::query("update shared_spaces set windows = $2, updated_at = now() where space_id = $1")
        .bind(space_id)
        .bind(Json(windows))
        .execute(db)
        .await
        .map(drop)
}

pub async fn set_price_pct(
    db: impl PgExecutor<'_>,
    space_id: Uuid,
    price_pct: i16,
) -> sqlx::Result<()> {
    sqlx::query("update shared_spaces set price_pct = $2, updated_at = now() where space_id = $1")
        .bind(space_id)
        .bind(price_pct)
        .execute(db)
        .await
        .map(drop)
}

/// The price the booking of `session_id` was made at, in percent of the filed tariff (`None`:
/// the stay was not booked, the tariff applies).
pub async fn booked_price_pct(
    db: impl PgExecutor<'_>,
    session_id: Uuid,
) -> sqlx::Result<Option<i16>> {
    sqlx::query_scalar("select price_pct from bookings where session_id = $1")
        .bind(session_id)
        .fetch_optional(db)
        .await
}

/// What each of the owner's bookings earned them, from the ledger: `(booking_id, credited)`.
pub async fn earnings_by_booking(
    db: impl PgExecutor<'_>,
    tenant_id: Uuid,
    owner_id: Uuid,
) -> sqlx::Result<Vec<(Uuid, Decimal)>> {
    sqlx::query_as(
        "select b.id, -sum(p.amount)
           from bookings b
           join journal_transactions t on t.tenant_id = b.tenant_id
                and (t.session_id = b.session_id or t.booking_id = b.id)
           join postings p on p.transaction_id = t.id
          where b.tenant_id = $1 and p.account_kind = 'owner_payable' and p.account_holder = $2
          group by b.id",
    )
    .bind(tenant_id)
    .bind(owner_id)
    .fetch_all(db)
    .await
}

pub async fn set_paused(db: impl PgExecutor<'_>, space_id: Uuid, paused: bool) -> sqlx::Result<()> {
    sqlx::query("update shared_spaces set paused = $2, updated_at = now() where space_id = $1")
        .bind(space_id)
        .bind(paused)
        .execute(db)
        .await
        .map(drop)
}

/// A one-off opening or blackout of a shared space.
#[derive(Debug, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct ExceptionRow {
    pub id: Uuid,
    pub space_id: Uuid,
    /// `open` or `blackout`.
    pub kind: String,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
}

impl ExceptionRow {
    pub fn exception(&self) -> Option<Exception> {
        Some(Exception {
            kind: ExceptionKind::parse(&self.kind)?,
            during: Interval::new(self.starts_at, self.ends_at)?,
        })
    }
}

/// Exceptions of the given spaces that end after `after` (older ones cannot matter).
pub async fn exceptions(
    db: impl PgExecutor<'_>,
    space_ids: &[Uuid],
    after: DateTime<Utc>,
) -> sqlx::Result<Vec<ExceptionRow>> {
    sqlx::query_as(
        "select id, space_id, kind, lower(during) as starts_at, upper(during) as ends_at
           from share_exceptions where space_id = any($1) and upper(during) > $2
          order by lower(during)",
    )
    .bind(space_ids)
    .bind(after)
    .fetch_all(db)
    .await
}

pub async fn insert_exception(
    db: impl PgExecutor<'_>,
    id: Uuid,
    space_id: Uuid,
    exception: &Exception,
) -> sqlx::Result<()> {
    sqlx::query("insert into share_exceptions (id, space_id, kind, during) values ($1, $2, $3, tstzrange($4, $5, '[)'))")
        .bind(id)
        .bind(space_id)
        .bind(exception.kind.as_str())
        .bind(exception.during.start)
        .bind(exception.during.end)
        .execute(db)
        .await
        .map(drop)
}

pub async fn delete_exception(
    db: impl PgExecutor<'_>,
    space_id: Uuid,
    id: Uuid,
) -> sqlx::Result<bool> {
    sqlx::query("delete from share_exceptions where space_id = $1 and id = $2")
        .bind(space_id)
        .bind(id)
        .execute(db)
        .await
        .map(|r| r.rows_affected() == 1)
}

/// The schedule of `space` from its row and its exceptions.
pub fn schedule_of(space: &SharedSpace, exceptions: &[ExceptionRow]) -> Schedule {
    Schedule {
        windows: space.windows.0.clone(),
        exceptions: exceptions
            .iter()
            .filter(|e| e.space_id == space.space_id)
            .filter_map(ExceptionRow::exception)
            .collect(),
    }
}

// ---- bookings ------------------------------------------------------------------------------

/// [`parkshare_sharing::holds_space`] in SQL, for the `bookings` row `row` (`""` or `"b."`)
/// at the instant bound as the parameter `now` (e.g. `"$4"`, the service's clock): paid and
/// in-use bookings hold their space, an unpaid hold until it runs out. One text for every
/// query; a test pins it to the pure function.
pub fn holds_space_sql(row: &str, now: &str) -> String {
    format!(
        "({row}status in ('booked', 'arrived') or ({row}status = 'held' and {row}hold_expires_at > {now}::timestamptz))"
    )
}

/// [`parkshare_sharing::BookingLimits::admits`] in SQL: a car read at `at` is let in on the
/// booking whose period is `during` (a `tstzrange`, stored `[)`) from `early_min` minutes
/// before its start, and not at or after its end. SQL expressions all three (a column, a
/// parameter). One text for the plate facts' `booking_due` and
/// [`admissible_booking_for_update`]; a test pins it to the pure rule.
pub fn booking_admits_sql(during: &str, at: &str, early_min: &str) -> String {
    format!(
        "(lower({during}) - make_interval(mins => {early_min}) <= {at} and {at} < upper({during}))"
    )
}

/// A visitor's booking of a shared space; money in yuan, as decimal strings.
#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct Booking {
    pub id: Uuid,
    #[serde(skip)]
    pub tenant_id: Uuid,
    pub lot_id: Uuid,
    pub space_id: Uuid,
    pub space_code: String,
    pub plate: String,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    pub status: String,
    pub origin: String,
    #[serde(skip)]
    pub webhook_url: Option<String>,
    #[serde(skip)]
    pub webhook_secret: Option<String>,
    pub session_id: Option<Uuid>,
    pub free_cancel_until: DateTime<Utc>,
    #[serde(serialize_with = "crate::store::yuan_option")]
    pub cancellation_fee: Option<Decimal>,
    pub cancel_reason: Option<String>,
    pub overstay_at: Option<DateTime<Utc>>,
    /// Percent of the filed tariff this booking is charged (the space's price when booked).
    pub price_pct: i16,
    pub created_at: DateTime<Utc>,
    /// A `held` booking holds its space until then unless it is paid.
    pub hold_expires_at: Option<DateTime<Utc>>,
    /// What the booked time costs (none for walk-ins, who pay at the exit).
    #[serde(serialize_with = "crate::store::yuan_option")]
    pub price: Option<Decimal>,
    /// Received for it, and given back of that.
    #[serde(serialize_with = "crate::store::yuan")]
    pub paid: Decimal,
    #[serde(serialize_with = "crate::store::yuan")]
    pub refunded: Decimal,
    #[serde(skip)]
    pub payment_transaction_id: Option<Uuid>,
}

impl Booking {
    pub fn during(&self) -> Option<Interval> {
        Interval::new(self.starts_at, self.ends_at)
    }
}

const BOOKING_COLUMNS: &str = "b.id, b.tenant_id, b.lot_id, b.space_id, s.code as space_code, b.plate,
    lower(b.during) as starts_at, upper(b.during) as ends_at, b.status, b.origin, b.webhook_url, b.webhook_secret,
    b.session_id, b.free_cancel_until, b.cancellation_fee, b.cancel_reason, b.overstay_at, b.price_pct, b.created_at,
    b.hold_expires_at, b.price, b.paid, b.refunded, b.payment_transaction_id";
const BOOKING_FROM: &str = "bookings b join spaces s on s.id = b.space_id";

pub struct NewBooking<'a> {
    pub id: Uuid,
    pub space: &'a SharedSpace,
    pub plate: &'a str,
    pub during: Interval,
    pub status: &'static str,
    pub origin: &'static str,
    pub token_sha256: &'a [u8],
    pub webhook_url: Option<&'a str>,
    pub webhook_secret: Option<&'a str>,
    pub session_id: Option<Uuid>,
    pub free_cancel_until: DateTime<Utc>,
    /// Set for a `held` booking.
    pub hold_expires_at: Option<DateTime<Utc>>,
    /// The client address it came from (public bookings).
    pub client_addr: Option<String>,
}

/// Fails with the `bookings_no_overlap` constraint when the space is taken for any of the time.
pub async fn insert_booking(tx: &mut PgConnection, b: &NewBooking<'_>) -> sqlx::Result<()> {
    sqlx::query(
        "insert into bookings (id, tenant_id, compound_id, lot_id, space_id, plate, during, status, origin,
                               token_sha256, webhook_url, webhook_secret, session_id, free_cancel_until, price_pct,
                               hold_expires_at, client_addr)
         values ($1, $2, $3, $4, $5, $6, tstzrange($7, $8, '[)'), $9, $10, $11, $12, $13, $14, $15, $16,
                 $17, $18::inet)",
    )
    .bind(b.id)
    .bind(b.space.tenant_id)
    .bind(b.space.compound_id)
    .bind(b.space.lot_id)
    .bind(b.space.space_id)
    .bind(b.plate)
    .bind(b.during.start)
    .bind(b.during.end)
    .bind(b.status)
    .bind(b.origin)
    .bind(b.token_sha256)
    .bind(b.webhook_url)
    .bind(b.webhook_secret)
    .bind(b.session_id)
    .bind(b.free_cancel_until)
    .bind(b.space.price_pct)
    .bind(b.hold_expires_at)
    .bind(b.client_addr.as_deref())
    .execute(tx)
    .await
    .map(drop)
}

pub async fn booking(db: impl PgExecutor<'_>, id: Uuid) -> sqlx::Result<Option<Booking>> {
    sqlx::query_as(&format!(
        "select {BOOKING_COLUMNS} from {BOOKING_FROM} where b.id = $1"
    ))
    .bind(id)
    .fetch_optional(db)
    .await
}

/// The booking if `token_sha256` is its visitor's credential, locked.
pub async fn booking_by_token_for_update(
    tx: &mut PgConnection,
    id: Uuid,
    token_sha256: &[u8],
) -> sqlx::Result<Option<Booking>> {
    sqlx::query_as(&format!(
        "select {BOOKING_COLUMNS} from {BOOKING_FROM} where b.id = $1 and b.token_sha256 = $2 and b.token_revoked_at is null for update of b"
    ))
    .bind(id)
    .bind(token_sha256)
    .fetch_optional(tx)
    .await
}

/// Spaces of the lot held as of `now` by a live booking at any time in `during`.
pub async fn booked_space_ids(
    db: impl PgExecutor<'_>,
    lot_id: Uuid,
    during: &Interval,
    now: DateTime<Utc>,
) -> sqlx::Result<Vec<Uuid>> {
    sqlx::query_scalar(&format!(
        "select distinct space_id from bookings
          where lot_id = $1 and during && tstzrange($2, $3, '[)') and {}",
        holds_space_sql("", "$4")
    ))
    .bind(lot_id)
    .bind(during.start)
    .bind(during.end)
    .bind(now)
    .fetch_all(db)
    .await
}

/// Spaces of the lot a car is standing on now (an open session placed on it).
pub async fn occupied_space_ids(db: impl PgExecutor<'_>, lot_id: Uuid) -> sqlx::Result<Vec<Uuid>> {
    sqlx::query_scalar("select space_id from sessions where lot_id = $1 and status = 'open' and space_id is not null")
        .bind(lot_id)
        .fetch_all(db)
        .await
}

/// Locks the shared space's row unless another transaction holds it; whether it is ours now.
///
/// Every write that puts a booking on a space (a new booking, a walk-in, a move) takes this
/// lock first and never waits for it: two writers never reach `bookings_no_overlap` for one
/// space at once (concurrent conflicting inserts into an exclusion constraint wait for each
/// other and deadlock), and a writer that holds one space never waits for another.
pub async fn lock_space_unless_busy(tx: &mut PgConnection, space_id: Uuid) -> sqlx::Result<bool> {
    sqlx::query_scalar::<_, Uuid>(
        "select space_id from shared_spaces where space_id = $1 for update skip locked",
    )
    .bind(space_id)
    .fetch_optional(tx)
    .await
    .map(|locked| locked.is_some())
}

/// Whether a car placed on `space_id` is still inside (its stay is open), whatever its
/// booking's time says. Asked under [`lock_space_unless_busy`], in a statement of its own so
/// that it sees what the lock's previous holder committed.
pub async fn car_on_space(tx: &mut PgConnection, space_id: Uuid) -> sqlx::Result<bool> {
    sqlx::query_scalar(
        "select exists (select 1 from sessions where space_id = $1 and status = 'open')",
    )
    .bind(space_id)
    .fetch_one(tx)
    .await
}

/// The live booking `plate` may enter on at `at`, allowing `early_min` minutes early
/// ([`booking_admits_sql`]); locked.
pub async fn admissible_booking_for_update(
    tx: &mut PgConnection,
    lot_id: Uuid,
    plate: &str,
    at: DateTime<Utc>,
    early_min: i32,
) -> sqlx::Result<Option<Booking>> {
    static SQL: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
        format!(
            "select {BOOKING_COLUMNS} from {BOOKING_FROM}
              where b.lot_id = $1 and b.plate = $2 and b.status = 'booked' and {admits}
              order by lower(b.during) limit 1 for update of b",
            admits = booking_admits_sql("b.during", "$3", "$4")
        )
    });
    sqlx::query_as(&SQL)
        .bind(lot_id)
        .bind(plate)
        .bind(at)
        .bind(early_min)
        .fetch_optional(tx)
        .await
}

/// Live bookings of `space_id` as of `now` that end after it, locked: what a schedule change
/// must keep.
pub async fn live_bookings_of_space_for_update(
    tx: &mut PgConnection,
    space_id: Uuid,
    now: DateTime<Utc>,
) -> sqlx::Result<Vec<Booking>> {
    sqlx::query_as(&format!(
        "select {BOOKING_COLUMNS} from {BOOKING_FROM}
          where b.space_id = $1 and upper(b.during) > $2 and {holds}
          order by lower(b.during) for update of b",
        holds = holds_space_sql("b.", "$2")
    ))
    .bind(space_id)
    .bind(now)
    .fetch_all(tx)
    .await
}

pub async fn booking_of_session_for_update(
    tx: &mut PgConnection,
    session_id: Uuid,
) -> sqlx::Result<Option<Booking>> {
    sqlx::query_as(&format!(
        "select {BOOKING_COLUMNS} from {BOOKING_FROM} where b.session_id = $1 and b.status = 'arrived' for update of b"
    ))
    .bind(session_id)
    .fetch_optional(tx)
    .await
}

pub async fn set_booking_status(
    db: impl PgExecutor<'_>,
    id: Uuid,
    status: &str,
    session_id: Option<Uuid>,
) -> sqlx::Result<()> {
    sqlx::query("update bookings set status = $2, session_id = coalesce($3, session_id), updated_at = now() where id = $1")
        .bind(id)
        .bind(status)
        .bind(session_id)
        .execute(db)
        .await
        .map(drop)
}

pub async fn cancel_booking(
    db: impl PgExecutor<'_>,
    id: Uuid,
    fee: Decimal,
    reason: &str,
) -> sqlx::Result<()> {
    sqlx::query(
        "update bookings set status = 'cancelled', cancellation_fee = $2, cancel_reason = $3, updated_at = now()
          where id = $1",
    )
    .bind(id)
    .bind(fee)
    .bind(reason)
    .execute(db)
    .await
    .map(drop)
}

/// Fails with `bookings_no_overlap` when `space_id` is taken for any of the booking's time.
pub async fn move_booking(db: impl PgExecutor<'_>, id: Uuid, space_id: Uuid) -> sqlx::Result<()> {
    sqlx::query("update bookings set space_id = $2, updated_at = now() where id = $1")
        .bind(id)
        .bind(space_id)
        .execute(db)
        .await
        .map(drop)
}

pub async fn mark_overstay(
    db: impl PgExecutor<'_>,
    id: Uuid,
    at: DateTime<Utc>,
) -> sqlx::Result<()> {
    sqlx::query("update bookings set overstay_at = $2, updated_at = now() where id = $1")
        .bind(id)
        .bind(at)
        .execute(db)
        .await
        .map(drop)
}

/// Arrived bookings whose time ended by `now` (the car is still there); locked, skipping rows
/// another sweeper holds.
pub async fn overstayed_bookings(
    tx: &mut PgConnection,
    now: DateTime<Utc>,
    limit: i64,
) -> sqlx::Result<Vec<Booking>> {
    sqlx::query_as(&format!(
        "select {BOOKING_COLUMNS} from {BOOKING_FROM}
          where b.status = 'arrived' and upper(b.during) <= $1
          order by upper(b.during) limit $2 for update of b skip locked"
    ))
    .bind(now)
    .bind(limit)
    .fetch_all(tx)
    .await
}

/// Bookings of `space_id` that hold it as of `now` but whose car is not in yet (paid, or held
/// and not run out: a hold paid later would land on the same space), starting before
/// `before`; locked.
pub async fn upcoming_on_space_for_update(
    tx: &mut PgConnection,
    space_id: Uuid,
    now: DateTime<Utc>,
    before: DateTime<Utc>,
) -> sqlx::Result<Vec<Booking>> {
    sqlx::query_as(&format!(
        "select {BOOKING_COLUMNS} from {BOOKING_FROM}
          where b.space_id = $1 and b.status <> 'arrived' and {holds} and lower(b.during) < $2
          order by lower(b.during) for update of b",
        holds = holds_space_sql("b.", "$3")
    ))
    .bind(space_id)
    .bind(before)
    .bind(now)
    .fetch_all(tx)
    .await
}

/// The arrived booking on `space_id`, if a visitor stands on it.
pub async fn arrived_on_space(
    db: impl PgExecutor<'_>,
    space_id: Uuid,
) -> sqlx::Result<Option<Booking>> {
    sqlx::query_as(&format!(
        "select {BOOKING_COLUMNS} from {BOOKING_FROM} where b.space_id = $1 and b.status = 'arrived' limit 1"
    ))
    .bind(space_id)
    .fetch_optional(db)
    .await
}

pub async fn bookings_of_owner(
    db: impl PgExecutor<'_>,
    tenant_id: Uuid,
    owner_id: Uuid,
) -> sqlx::Result<Vec<Booking>> {
    sqlx::query_as(&format!(
        "select {BOOKING_COLUMNS} from {BOOKING_FROM} join shared_spaces ss on ss.space_id = b.space_id
          where ss.tenant_id = $1 and ss.owner_id = $2 order by lower(b.during) desc limit 500"
    ))
    .bind(tenant_id)
    .bind(owner_id)
    .fetch_all(db)
    .await
}

pub async fn insert_booking_event(
    db: impl PgExecutor<'_>,
    booking_id: Uuid,
    kind: &str,
    detail: serde_json::Value,
) -> sqlx::Result<()> {
    sqlx::query("insert into booking_events (booking_id, kind, detail) values ($1, $2, $3)")
        .bind(booking_id)
        .bind(kind)
        .bind(detail)
        .execute(db)
        .await
        .map(drop)
}

/// What happened to a booking (made, confirmed, moved, arrived, cancelled, overstay…).
#[derive(Debug, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct BookingEvent {
    pub booking_id: Uuid,
    pub kind: String,
    /// The event's particulars, by kind.
    #[schema(value_type = Object)]
    pub detail: Json<serde_json::Value>,
    pub at: DateTime<Utc>,
}

pub async fn booking_events(
    db: impl PgExecutor<'_>,
    booking_ids: &[Uuid],
) -> sqlx::Result<Vec<BookingEvent>> {
    sqlx::query_as("select booking_id, kind, detail, at from booking_events where booking_id = any($1) order by id")
        .bind(booking_ids)
        .fetch_all(db)
        .await
}

// ---- webhooks ------------------------------------------------------------------------------

pub async fn upsert_owner_webhook(
    db: impl PgExecutor<'_>,
    tenant_id: Uuid,
    owner_id: Uuid,
    url: &str,
    secret: &str,
) -> sqlx::Result<()> {
    sqlx::query(
        "insert into owner_webhooks (owner_id, tenant_id, url, secret) values ($1, $2, $3, $4)
         on conflict (owner_id) do update set url = excluded.url, secret = excluded.secret, updated_at = now()",
    )
    .bind(owner_id)
    .bind(tenant_id)
    .bind(url)
    .bind(secret)
    .execute(db)
    .await
    .map(drop)
}

/// `(url, secret)` of the owner's webhook.
pub async fn owner_webhook(
    db: impl PgExecutor<'_>,
    owner_id: Uuid,
) -> sqlx::Result<Option<(String, String)>> {
    sqlx::query_as("select url, secret from owner_webhooks where owner_id = $1")
        .bind(owner_id)
        .fetch_optional(db)
        .await
}

pub struct NewDelivery<'a> {
    pub tenant_id: Uuid,
    pub url: &'a str,
    pub secret: &'a str,
    pub event: &'a str,
    pub payload: &'a serde_json::Value,
    /// When it is first due: the instant it was queued, by the service's clock.
    pub due_at: DateTime<Utc>,
}

/// Queues a delivery, due at once (`d.due_at`, the clock's now).
pub async fn enqueue_delivery(db: impl PgExecutor<'_>, d: &NewDelivery<'_>) -> sqlx::Result<()> {
    sqlx::query("insert into webhook_deliveries (id, tenant_id, url, secret, event, payload, next_attempt_at) values ($1, $2, $3, $4, $5, $6, $7)")
        .bind(Uuid::new_v4())
        .bind(d.tenant_id)
        .bind(d.url)
        .bind(d.secret)
        .bind(d.event)
        .bind(d.payload)
        .bind(d.due_at)
        .execute(db)
        .await
        .map(drop)
}

#[derive(Debug, sqlx::FromRow)]
pub struct DueDelivery {
    pub id: Uuid,
    pub url: String,
    pub secret: String,
    pub event: String,
    pub payload: serde_json::Value,
    pub attempts: i32,
}

/// Pending deliveries that are due, locked and skipping those another worker holds.
pub async fn due_deliveries(
    tx: &mut PgConnection,
    now: DateTime<Utc>,
    limit: i64,
) -> sqlx::Result<Vec<DueDelivery>> {
    sqlx::query_as(
        "select id, url, secret, event, payload, attempts from webhook_deliveries
          where status = 'pending' and next_attempt_at <= $1
          order by next_attempt_at limit $2 for update skip locked",
    )
    .bind(now)
    .bind(limit)
    .fetch_all(tx)
    .await
}

/// Records one attempt: delivered, failed for good, or due again at `retry_at`.
pub async fn record_attempt(
    db: impl PgExecutor<'_>,
    id: Uuid,
    status: &str,
    http_status: Option<i32>,
    error: Option<&str>,
    retry_at: DateTime<Utc>,
) -> sqlx::Result<()> {
    sqlx::query(
        "update webhook_deliveries
            set status = $2, attempts = attempts + 1, last_status = $3, last_error = $4, next_attempt_at = $5,
                delivered_at = case when $2 = 'delivered' then now() end
          where id = $1",
    )
    .bind(id)
    .bind(status)
    .bind(http_status)
    .bind(error)
    .bind(retry_at)
    .execute(db)
    .await
    .map(drop)
}

/// A webhook post and how its delivery went.
#[derive(Debug, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct Delivery {
    pub id: Uuid,
    pub url: String,
    pub event: String,
    /// The body posted: the event and its data.
    #[schema(value_type = Object)]
    pub payload: Json<serde_json::Value>,
    pub status: String,
    pub attempts: i32,
    pub last_status: Option<i32>,
    pub last_error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub delivered_at: Option<DateTime<Utc>>,
}

pub async fn deliveries(
    db: impl PgExecutor<'_>,
    tenant_id: Uuid,
    limit: i64,
) -> sqlx::Result<Vec<Delivery>> {
    sqlx::query_as(
        "select id, url, event, payload, status, attempts, last_status, last_error, created_at, delivered_at
           from webhook_deliveries where tenant_id = $1 order by created_at desc limit $2",
    )
    .bind(tenant_id)
    .bind(limit)
    .fetch_all(db)
    .await
}

/// Whether `plate` already holds a live booking (as of `now`) at the lot overlapping `during`.
pub async fn plate_has_live_booking(
    db: impl PgExecutor<'_>,
    lot_id: Uuid,
    (plate, client_addr): (&str, &str),
    during: &Interval,
    now: DateTime<Utc>,
) -> sqlx::Result<bool> {
    sqlx::query_scalar(&format!(
        "select exists (select 1 from bookings where lot_id = $1 and plate = $3 and {}
                          and during && tstzrange($4, $5, '[)'))",
        against_plate_sql("$6")
    ))
    .bind(lot_id)
    .bind(client_addr)
    .bind(plate)
    .bind(during.start)
    .bind(during.end)
    .bind(now)
    .fetch_one(db)
    .await
}

/// Whether another paid (or in use) booking of `plate` at the lot overlaps `during`: a hold
/// paid after it is not confirmed, and its money is owed back.
pub async fn plate_has_paid_booking(
    db: impl PgExecutor<'_>,
    booking_id: Uuid,
    lot_id: Uuid,
    plate: &str,
    during: &Interval,
) -> sqlx::Result<bool> {
    sqlx::query_scalar(
        "select exists (select 1 from bookings where lot_id = $1 and plate = $2 and id <> $3
                          and status in ('booked', 'arrived')
                          and during && tstzrange($4, $5, '[)'))",
    )
    .bind(lot_id)
    .bind(plate)
    .bind(booking_id)
    .bind(during.start)
    .bind(during.end)
    .fetch_one(db)
    .await
}

/// Spaces of valid owned-space permits of `plate` at the lot on `local_date`.
pub async fn owned_spaces_of_plate(
    db: impl PgExecutor<'_>,
    compound_id: Uuid,
    lot_id: Uuid,
    plate: &str,
    local_date: chrono::NaiveDate,
) -> sqlx::Result<Vec<Uuid>> {
    sqlx::query_scalar(
        "select p.space_id from permits p join vehicles v on v.id = p.vehicle_id
          where v.compound_id = $1 and v.plate = $3 and p.kind = 'owned_space' and p.lot_id = $2
            and p.valid_from <= $4 and (p.valid_to is null or p.valid_to >= $4)",
    )
    .bind(compound_id)
    .bind(lot_id)
    .bind(plate)
    .bind(local_date)
    .fetch_all(db)
    .await
}

/// Marks bookings whose time ended by `now` without their car as no-shows; their ids.
pub async fn mark_no_shows(db: impl PgExecutor<'_>, now: DateTime<Utc>) -> sqlx::Result<Vec<Uuid>> {
    sqlx::query_scalar(
        "update bookings set status = 'no_show', updated_at = now()
          where status = 'booked' and upper(during) <= $1 returning id",
    )
    .bind(now)
    .fetch_all(db)
    .await
}

// ---- paid holds ------------------------------------------------------------------------------

/// Marks `held` bookings whose hold ran out by `now` as `expired`, with their pending intents
/// and a history event; all of them, or only those of `lot_id` overlapping `during` (what a new
/// booking there would collide with). Their ids.
pub async fn expire_holds(
    tx: &mut PgConnection,
    now: DateTime<Utc>,
    scope: Option<(Uuid, &Interval)>,
) -> sqlx::Result<Vec<Uuid>> {
    sqlx::query_scalar(
        "with e as (
           update bookings set status = 'expired', updated_at = now()
            where status = 'held' and hold_expires_at <= $1
              and ($2::uuid is null or (lot_id = $2 and during && tstzrange($3, $4, '[)')))
           returning id),
         -- An intent a provider notification holds is skipped, not waited for (the callback
         -- locks the intent, then the booking: waiting here could deadlock); that callback
         -- finds the booking expired and expires the intent itself.
         i as (
           update payment_intents set status = 'expired'
            where id in (select id from payment_intents
                          where booking_id in (select id from e) and status = 'pending'
                            for update skip locked))
         insert into booking_events (booking_id, kind, detail)
         select id, 'expired', jsonb_build_object('noticed_at', $1) from e
         returning booking_id",
    )
    .bind(now)
    .bind(scope.map(|(lot, _)| lot))
    .bind(scope.map(|(_, d)| d.start))
    .bind(scope.map(|(_, d)| d.end))
    .fetch_all(tx)
    .await
}

/// Serialises booking attempts for one plate and one client address, so that their caps are
/// counted exactly (until the transaction ends).
pub async fn lock_booking_caps(
    tx: &mut PgConnection,
    plate: &str,
    client_addr: &str,
) -> sqlx::Result<()> {
    // Always the plate first, then the client: two attempts never wait on each other in a cycle.
    sqlx::query(
        "select pg_advisory_xact_lock(hashtextextended('booking-plate:' || $1, 0)),
                pg_advisory_xact_lock(hashtextextended('booking-client:' || $2, 0))",
    )
    .bind(plate)
    .bind(client_addr)
    .execute(tx)
    .await
    .map(drop)
}

#[derive(sqlx::FromRow)]
struct LiveRow {
    plate: i64,
    client: i64,
    client_next_expiry: Option<DateTime<Utc>>,
}

/// The bookings that stand against a plate for a client at `client_addr`: paid or in use, or
/// held unpaid by that same client. A stranger's unpaid hold of someone else's plate does not
/// lock the plate's driver out (issue 22): whoever pays first keeps the plate's time
/// ([`plate_has_paid_booking`] is asked again at payment).
/// `now` is the parameter the clock's instant is bound as, `$2` the client's address.
fn against_plate_sql(now: &str) -> String {
    format!(
        "(status in ('booked', 'arrived')
           or (status = 'held' and hold_expires_at > {now}::timestamptz and client_addr = $2::inet))"
    )
}

/// Live bookings as of `now` of a plate at the lot's firm that stand against this client
/// ([`against_plate_sql`]), and live bookings (held, paid or in use) made from the client
/// address anywhere.
pub async fn live_counts(
    tx: &mut PgConnection,
    lot_id: Uuid,
    plate: &str,
    client_addr: &str,
    now: DateTime<Utc>,
) -> sqlx::Result<parkshare_sharing::Live> {
    let row: LiveRow = sqlx::query_as(&format!(
        "select (select count(*) from bookings
                  where tenant_id = (select tenant_id from lots where id = $3)
                    and plate = $1 and {against}) as plate,
                (select count(*) from bookings where client_addr = $2::inet and {holds}) as client,
                (select min(hold_expires_at) from bookings
                  where client_addr = $2::inet and status = 'held' and hold_expires_at > $4)
                  as client_next_expiry",
        against = against_plate_sql("$4"),
        holds = holds_space_sql("", "$4")
    ))
    .bind(plate)
    .bind(client_addr)
    .bind(lot_id)
    .bind(now)
    .fetch_one(tx)
    .await?;
    Ok(parkshare_sharing::Live {
        plate: row.plate,
        client: row.client,
        client_next_expiry: row.client_next_expiry,
    })
}

pub async fn set_booking_price(
    db: impl PgExecutor<'_>,
    id: Uuid,
    price: Decimal,
) -> sqlx::Result<()> {
    sqlx::query("update bookings set price = $2, updated_at = now() where id = $1")
        .bind(id)
        .bind(price)
        .execute(db)
        .await
        .map(drop)
}

/// The hold is paid (or costs nothing): the booking is `booked` and holds its space for good.
pub async fn confirm_booking(
    db: impl PgExecutor<'_>,
    id: Uuid,
    paid: Decimal,
    transaction_id: Option<Uuid>,
) -> sqlx::Result<()> {
    sqlx::query(
        "update bookings set status = 'booked', hold_expires_at = null, paid = $2,
                payment_transaction_id = $3, updated_at = now()
          where id = $1",
    )
    .bind(id)
    .bind(paid)
    .bind(transaction_id)
    .execute(db)
    .await
    .map(drop)
}

pub async fn add_booking_refund(
    db: impl PgExecutor<'_>,
    id: Uuid,
    amount: Decimal,
) -> sqlx::Result<()> {
    sqlx::query("update bookings set refunded = refunded + $2, updated_at = now() where id = $1")
        .bind(id)
        .bind(amount)
        .execute(db)
        .await
        .map(drop)
}

pub async fn booking_for_update(tx: &mut PgConnection, id: Uuid) -> sqlx::Result<Option<Booking>> {
    sqlx::query_as(&format!(
        "select {BOOKING_COLUMNS} from {BOOKING_FROM} where b.id = $1 for update of b"
    ))
    .bind(id)
    .fetch_optional(tx)
    .await
}

/// The booked car is in: what was paid for the booking (net of refunds) counts towards the
/// stay, as a payment of the session naming the booking's journal transaction (it was posted
/// when the booking was paid, so nothing is posted again). The stay's last payment is not
/// moved: the prepayment is no quote of the stay.
pub async fn apply_booking_payment(
    tx: &mut PgConnection,
    booking: &Booking,
    session_id: Uuid,
) -> sqlx::Result<()> {
    let amount = booking.paid - booking.refunded;
    let Some(transaction_id) = booking.payment_transaction_id else {
        return Ok(());
    };
    if amount <= Decimal::ZERO {
        return Ok(());
    }
    sqlx::query(
        "with p as (
           insert into session_payments (id, session_id, amount, method, intent_id, recorded_at, priced_at, transaction_id)
           select $1, $2, $3, 'booking',
                  (select id from payment_intents where booking_id = $4 and status = 'paid'), now(), now(), $5)
         update sessions set paid = paid + $3, updated_at = now() where id = $2",
    )
    .bind(Uuid::new_v4())
    .bind(session_id)
    .bind(amount)
    .bind(booking.id)
    .bind(transaction_id)
    .execute(tx)
    .await
    .map(drop)
}
