//! The lottery's Postgres statements (migration 0026).

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgExecutor};
use uuid::Uuid;

/// A lottery as stored. `seed` is secret until `drawn` holds the draw.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Lottery {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub compound_id: Uuid,
    pub title: String,
    pub space_ids: Vec<Uuid>,
    pub applications_open_at: DateTime<Utc>,
    pub applications_close_at: DateTime<Utc>,
    pub offer_minutes: i32,
    pub algorithm: String,
    pub commitment: String,
    pub seed: String,
    pub created_at: DateTime<Utc>,
}

const LOTTERY_COLUMNS: &str = "id, tenant_id, compound_id, title, space_ids, applications_open_at,
    applications_close_at, offer_minutes, algorithm, commitment, seed, created_at";

pub struct NewLottery<'a> {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub compound_id: Uuid,
    pub title: &'a str,
    pub space_ids: &'a [Uuid],
    pub applications_open_at: DateTime<Utc>,
    pub applications_close_at: DateTime<Utc>,
    pub offer_minutes: i32,
    pub commitment: &'a str,
    pub seed: &'a str,
    pub created_by: &'a str,
}

pub async fn insert(db: impl PgExecutor<'_>, new: &NewLottery<'_>) -> sqlx::Result<Lottery> {
    sqlx::query_as(&format!(
        "insert into lotteries (id, tenant_id, compound_id, title, space_ids, applications_open_at,
             applications_close_at, offer_minutes, algorithm, commitment, seed, created_by)
         values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
         returning {LOTTERY_COLUMNS}"
    ))
    .bind(new.id)
    .bind(new.tenant_id)
    .bind(new.compound_id)
    .bind(new.title)
    .bind(new.space_ids)
    .bind(new.applications_open_at)
    .bind(new.applications_close_at)
    .bind(new.offer_minutes)
    .bind(parkshare_allocation::lottery::ALGORITHM)
    .bind(new.commitment)
    .bind(new.seed)
    .bind(new.created_by)
    .fetch_one(db)
    .await
}

/// A lottery of one firm (`tenant_id`), or of anyone when `None` (the public page).
pub async fn lottery(
    db: impl PgExecutor<'_>,
    tenant_id: Option<Uuid>,
    id: Uuid,
) -> sqlx::Result<Option<Lottery>> {
    sqlx::query_as(&format!(
        "select {LOTTERY_COLUMNS} from lotteries
          where id = $1 and ($2::uuid is null or tenant_id = $2)"
    ))
    .bind(id)
    .bind(tenant_id)
    .fetch_optional(db)
    .await
}

/// A compound's lotteries, newest first.
pub async fn of_compound(
    db: impl PgExecutor<'_>,
    tenant_id: Uuid,
    compound_id: Uuid,
) -> sqlx::Result<Vec<Lottery>> {
    sqlx::query_as(&format!(
        "select {LOTTERY_COLUMNS} from lotteries
          where tenant_id = $1 and compound_id = $2 order by created_at desc, id"
    ))
    .bind(tenant_id)
    .bind(compound_id)
    .fetch_all(db)
    .await
}

/// A compound's latest lotteries as its disclosure page lists them, newest first.
pub async fn notices(
    db: impl PgExecutor<'_>,
    tenant_id: Uuid,
    compound_id: Uuid,
    limit: i64,
) -> sqlx::Result<Vec<super::Notice>> {
    sqlx::query_as(
        "select l.id, l.title, cardinality(l.space_ids) as places, l.applications_open_at,
                l.applications_close_at, l.commitment, d.drawn_at,
                (select count(*) from lottery_applications a where a.lottery_id = l.id) as applicants
           from lotteries l left join lottery_draws d on d.lottery_id = l.id
          where l.tenant_id = $1 and l.compound_id = $2
          order by l.created_at desc, l.id limit $3",
    )
    .bind(tenant_id)
    .bind(compound_id)
    .bind(limit)
    .fetch_all(db)
    .await
}

/// Of `space_ids`, those that are not a common-area or developer-unsold space of the compound
/// (unknown, another compound's, or an owner's): `(id, why)`.
pub async fn unallottable_spaces(
    db: impl PgExecutor<'_>,
    tenant_id: Uuid,
    compound_id: Uuid,
    space_ids: &[Uuid],
) -> sqlx::Result<Vec<(Uuid, String)>> {
    sqlx::query_as(
        "select wanted.id, case when s.id is null then 'unknown' else s.kind end
           from unnest($3::uuid[]) as wanted (id)
           left join spaces s on s.id = wanted.id and s.tenant_id = $1
                and s.lot_id in (select id from lots where compound_id = $2)
          where s.id is null or s.kind not in ('common', 'developer_unsold')
          order by wanted.id",
    )
    .bind(tenant_id)
    .bind(compound_id)
    .bind(space_ids)
    .fetch_all(db)
    .await
}

/// The first of `space_ids` (by id) that is a developer-unsold space run as metered parking.
pub async fn metered_space(
    db: impl PgExecutor<'_>,
    space_ids: &[Uuid],
) -> sqlx::Result<Option<Uuid>> {
    sqlx::query_scalar(
        "select id from spaces where id = any($1)
            and kind = 'developer_unsold' and offered_as = 'metered'
          order by id limit 1",
    )
    .bind(space_ids)
    .fetch_optional(db)
    .await
}

/// Serialises the compound's announcements: a space is checked free and put in a lottery by
/// one at a time.
pub async fn lock_compound(conn: &mut PgConnection, compound_id: Uuid) -> sqlx::Result<()> {
    sqlx::query("select pg_advisory_xact_lock(hashtextextended('lotteries:' || $1::text, 26))")
        .bind(compound_id)
        .execute(conn)
        .await?;
    Ok(())
}

/// A lottery that lists a space asked about.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct SpaceLottery {
    pub space_id: Uuid,
    pub lottery_id: Uuid,
    pub places: i32,
    /// The applicants drawn, once drawn.
    pub drawn: Option<i32>,
}

/// Every lottery of the compound that lists one of `space_ids`, oldest first.
pub async fn lotteries_of_spaces(
    conn: &mut PgConnection,
    compound_id: Uuid,
    space_ids: &[Uuid],
) -> sqlx::Result<Vec<SpaceLottery>> {
    sqlx::query_as(
        "select s.space_id, l.id as lottery_id, cardinality(l.space_ids) as places,
                cardinality(d.draw_order) as drawn
           from lotteries l
           cross join unnest(l.space_ids) as s (space_id)
           left join lottery_draws d on d.lottery_id = l.id
          where l.compound_id = $1 and s.space_id = any($2)
          order by l.created_at, l.id, s.space_id",
    )
    .bind(compound_id)
    .bind(space_ids)
    .fetch_all(conn)
    .await
}

/// Serialises applications against the draw: applications take it shared, the draw
/// exclusively, so that the draw sees every application the window let in.
pub async fn lock(conn: &mut PgConnection, id: Uuid, exclusive: bool) -> sqlx::Result<()> {
    let statement = if exclusive {
        "select pg_advisory_xact_lock(hashtextextended($1::text, 26))"
    } else {
        "select pg_advisory_xact_lock_shared(hashtextextended($1::text, 26))"
    };
    sqlx::query(statement).bind(id).execute(conn).await?;
    Ok(())
}

/// The owner's compound and unit, if the owner is of this firm.
pub async fn owner(
    db: impl PgExecutor<'_>,
    tenant_id: Uuid,
    owner_id: Uuid,
) -> sqlx::Result<Option<(Uuid, String)>> {
    sqlx::query_as("select compound_id, unit from owners where tenant_id = $1 and id = $2")
        .bind(tenant_id)
        .bind(owner_id)
        .fetch_optional(db)
        .await
}

/// Whether the owner's household holds a space (tier 1) or none (tier 0): one of its own, or
/// one it took through a lottery.
pub async fn holds_a_space(db: impl PgExecutor<'_>, owner_id: Uuid) -> sqlx::Result<bool> {
    sqlx::query_scalar(
        "select exists (select 1 from spaces where owner_id = $1)
             or exists (select 1 from lottery_offers where owner_id = $1 and answer = 'accepted'
                          and lapsed_at is null)",
    )
    .bind(owner_id)
    .fetch_one(db)
    .await
}

/// A household's application to a lottery.
#[derive(Debug, Clone, serde::Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct Application {
    pub owner_id: Uuid,
    pub unit: String,
    pub tier: i16,
    pub applied_at: DateTime<Utc>,
}

/// Inserts an application; the database refuses it outside the window (`P0002`).
/// Records an application made at `applied_at` (the service's clock), which the database
/// refuses outside the lottery's window (migration 0033).
pub async fn apply(
    db: impl PgExecutor<'_>,
    lottery: &Lottery,
    owner_id: Uuid,
    unit: &str,
    tier: i16,
    applied_at: DateTime<Utc>,
) -> sqlx::Result<Application> {
    sqlx::query_as(
        "insert into lottery_applications (lottery_id, tenant_id, owner_id, unit, tier, applied_at)
         values ($1, $2, $3, $4, $5, $6) returning owner_id, unit, tier, applied_at",
    )
    .bind(lottery.id)
    .bind(lottery.tenant_id)
    .bind(owner_id)
    .bind(unit)
    .bind(tier)
    .bind(applied_at)
    .fetch_one(db)
    .await
}

pub async fn applications(db: impl PgExecutor<'_>, id: Uuid) -> sqlx::Result<Vec<Application>> {
    sqlx::query_as(
        "select owner_id, unit, tier, applied_at from lottery_applications
          where lottery_id = $1 order by tier, unit",
    )
    .bind(id)
    .fetch_all(db)
    .await
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Draw {
    pub draw_order: Vec<String>,
    pub applicants_digest: String,
    pub drawn_at: DateTime<Utc>,
}

pub async fn draw(db: impl PgExecutor<'_>, id: Uuid) -> sqlx::Result<Option<Draw>> {
    sqlx::query_as(
        "select draw_order, applicants_digest, drawn_at from lottery_draws where lottery_id = $1",
    )
    .bind(id)
    .fetch_optional(db)
    .await
}

/// Records the draw, made at `drawn_at` (the service's clock: published, and after the close).
pub async fn insert_draw(
    db: impl PgExecutor<'_>,
    id: Uuid,
    order: &[String],
    applicants_digest: &str,
    drawn_by: &str,
    drawn_at: DateTime<Utc>,
) -> sqlx::Result<Draw> {
    sqlx::query_as(
        "insert into lottery_draws (lottery_id, draw_order, applicants_digest, drawn_by, drawn_at)
         values ($1, $2, $3, $4, $5) returning draw_order, applicants_digest, drawn_at",
    )
    .bind(id)
    .bind(order)
    .bind(applicants_digest)
    .bind(drawn_by)
    .bind(drawn_at)
    .fetch_one(db)
    .await
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Offer {
    pub position: i32,
    pub owner_id: Uuid,
    pub offered_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub answer: Option<String>,
    pub answered_at: Option<DateTime<Utc>>,
    /// An offer accepted with a car whose rental's hold ran out unpaid: it lapsed then.
    pub lapsed_at: Option<DateTime<Utc>>,
    /// The rental the accepted offer became is paid for (paid, or ended since).
    pub rental_paid: bool,
    /// Accepted without a car and not contracted yet: the office has until then (the
    /// lottery's offer time from the acceptance) to contract it, or it lapses.
    pub contract_by: Option<DateTime<Utc>>,
}

pub async fn offers(db: impl PgExecutor<'_>, id: Uuid) -> sqlx::Result<Vec<Offer>> {
    sqlx::query_as(
        "select o.position, o.owner_id, o.offered_at, o.expires_at, o.answer, o.answered_at,
                o.lapsed_at, coalesce(r.status in ('paid', 'ended'), false) as rental_paid,
                case when o.answer = 'accepted' and o.rental_id is null
                     then o.answered_at + make_interval(mins => l.offer_minutes) end as contract_by
           from lottery_offers o
           join lotteries l on l.id = o.lottery_id
           left join rentals r on r.id = o.rental_id
          where o.lottery_id = $1 order by o.position",
    )
    .bind(id)
    .fetch_all(db)
    .await
}

pub async fn insert_offer(
    db: impl PgExecutor<'_>,
    id: Uuid,
    position: i32,
    owner_id: Uuid,
    offered_at: DateTime<Utc>,
    expires_at: DateTime<Utc>,
) -> sqlx::Result<()> {
    sqlx::query(
        "insert into lottery_offers (lottery_id, position, owner_id, offered_at, expires_at)
         values ($1, $2, $3, $4, $5)",
    )
    .bind(id)
    .bind(position)
    .bind(owner_id)
    .bind(offered_at)
    .bind(expires_at)
    .execute(db)
    .await?;
    Ok(())
}

/// Answers the owner's open offer, if it is still open at `now`: `false` if there was none.
pub async fn answer_offer(
    db: impl PgExecutor<'_>,
    id: Uuid,
    owner_id: Uuid,
    answer: &str,
    now: DateTime<Utc>,
) -> sqlx::Result<bool> {
    let answered = sqlx::query(
        "update lottery_offers set answer = $3, answered_at = $4
          where lottery_id = $1 and owner_id = $2 and answer is null and expires_at > $4",
    )
    .bind(id)
    .bind(owner_id)
    .bind(answer)
    .bind(now)
    .execute(db)
    .await?;
    Ok(answered.rows_affected() == 1)
}

/// Records the rental an accepted offer became: its hold running out unpaid lapses the offer.
pub async fn set_offer_rental(
    db: impl PgExecutor<'_>,
    id: Uuid,
    owner_id: Uuid,
    rental_id: Uuid,
) -> sqlx::Result<()> {
    sqlx::query("update lottery_offers set rental_id = $3 where lottery_id = $1 and owner_id = $2")
        .bind(id)
        .bind(owner_id)
        .bind(rental_id)
        .execute(db)
        .await?;
    Ok(())
}
