//! Registry storage. Every staff-facing query takes the caller's `tenant_id` and filters by it,
//! so another tenant's rows are simply not found.

use std::sync::LazyLock;

use chrono::{DateTime, NaiveDate, Utc};
use parkshare_domain::decision::Direction;
use parkshare_domain::policy::GatePolicy;
use parkshare_domain::vehicle::{ExemptClass, VehicleClass};
use parkshare_tariff::Tariff;
use rust_decimal::Decimal;
use serde::Serialize;
use sqlx::types::Json;
use sqlx::{PgConnection, PgExecutor, PgPool};
use uuid::Uuid;

use crate::store::sessions::PlateRead;
use crate::store::Word;

/// Everything the entry/exit hot path needs about a gate, from one query.
#[derive(Debug, Clone)]
pub struct GateContext {
    pub gate_id: Uuid,
    pub tenant_id: Uuid,
    pub lot_id: Uuid,
    pub compound_id: Uuid,
    pub direction: Direction,
    pub time_zone: chrono_tz::Tz,
    pub policy: GatePolicy,
    pub tariff: Tariff,
    /// The camera protocol (`vzenith`, `dahua`, `hikvision`); none for the JSON API.
    pub vendor: Option<String>,
    /// The camera's own serial number, checked against every push.
    pub device_serial: Option<String>,
    /// Open the barrier when the backend cannot decide in time.
    pub fail_open: bool,
    /// How to call the device (Hikvision barrier control, Dahua manual opens).
    pub device: Option<DeviceLogin>,
    /// How the LED board behind the camera takes its text (Vzenith).
    pub display: DisplayProtocol,
}

/// How a lane's display board takes its text (`gate::vendors::display` writes it).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DisplayProtocol {
    #[default]
    Raw,
    LedBoard,
}

impl DisplayProtocol {
    pub fn parse(text: &str) -> Option<DisplayProtocol> {
        match text.trim() {
            "raw" => Some(DisplayProtocol::Raw),
            "led_board" => Some(DisplayProtocol::LedBoard),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            DisplayProtocol::Raw => "raw",
            DisplayProtocol::LedBoard => "led_board",
        }
    }
}

/// What billing needs to know about a lot.
#[derive(Debug, Clone)]
pub struct LotRules {
    pub lot_id: Uuid,
    pub time_zone: chrono_tz::Tz,
    pub policy: GatePolicy,
    /// The lot's draft tariff, used only while no version has been filed.
    pub draft_tariff: Tariff,
}

impl From<&GateContext> for LotRules {
    fn from(gate: &GateContext) -> LotRules {
        LotRules {
            lot_id: gate.lot_id,
            time_zone: gate.time_zone,
            policy: gate.policy.clone(),
            draft_tariff: gate.tariff.clone(),
        }
    }
}

/// A device's address and login. Its `Debug` never shows the password.
#[derive(Clone)]
pub struct DeviceLogin {
    pub url: String,
    pub username: String,
    pub password: String,
}

impl std::fmt::Debug for DeviceLogin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeviceLogin")
            .field("url", &self.url)
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .finish()
    }
}

#[derive(sqlx::FromRow)]
struct GateContextRow {
    gate_id: Uuid,
    tenant_id: Uuid,
    lot_id: Uuid,
    compound_id: Uuid,
    direction: String,
    time_zone: String,
    policy: Json<GatePolicy>,
    tariff: Json<Tariff>,
    vendor: Option<String>,
    device_serial: Option<String>,
    fail_mode: String,
    device_url: Option<String>,
    device_username: Option<String>,
    device_password: Option<String>,
    display_protocol: String,
}

const GATE_CONTEXT: &str =
    "select g.id as gate_id, g.tenant_id, g.lot_id, l.compound_id, g.direction,
        c.time_zone, c.policy, l.tariff, g.vendor, g.device_serial, g.fail_mode, g.device_url,
        g.device_username, g.device_password, g.display_protocol
   from gates g join lots l on l.id = g.lot_id join compounds c on c.id = l.compound_id";

pub async fn gate_by_secret(
    db: &PgPool,
    secret_sha256: &[u8],
) -> anyhow::Result<Option<GateContext>> {
    let row: Option<GateContextRow> = sqlx::query_as(&format!(
        "{GATE_CONTEXT} where g.secret_sha256 = $1 and g.secret_revoked_at is null"
    ))
    .bind(secret_sha256)
    .fetch_optional(db)
    .await?;
    gate_context(row)
}

/// The gate context by id, for work done on a gate's behalf later (recording fail-open
/// passages).
pub async fn gate_by_id(db: &PgPool, gate_id: Uuid) -> anyhow::Result<Option<GateContext>> {
    let row: Option<GateContextRow> = sqlx::query_as(&format!("{GATE_CONTEXT} where g.id = $1"))
        .bind(gate_id)
        .fetch_optional(db)
        .await?;
    gate_context(row)
}

fn gate_context(row: Option<GateContextRow>) -> anyhow::Result<Option<GateContext>> {
    row.map(|r| {
        Ok(GateContext {
            gate_id: r.gate_id,
            tenant_id: r.tenant_id,
            lot_id: r.lot_id,
            compound_id: r.compound_id,
            direction: Direction::parse(&r.direction).ok_or_else(|| {
                anyhow::anyhow!("gate {} has direction {}", r.gate_id, r.direction)
            })?,
            time_zone: r.time_zone.parse().map_err(|_| {
                anyhow::anyhow!("compound {} has time zone {}", r.compound_id, r.time_zone)
            })?,
            policy: r.policy.0,
            tariff: r.tariff.0,
            vendor: r.vendor,
            device_serial: r.device_serial,
            fail_open: r.fail_mode == "open",
            display: DisplayProtocol::parse(&r.display_protocol).unwrap_or_default(),
            device: match (r.device_url, r.device_username, r.device_password) {
                (Some(url), Some(username), Some(password)) => Some(DeviceLogin {
                    url,
                    username,
                    password,
                }),
                _ => None,
            },
        })
    })
    .transpose()
}

/// The id, tenant and label of a live staff token.
pub async fn staff_by_token(
    db: &PgPool,
    token_sha256: &[u8],
) -> sqlx::Result<Option<(Uuid, Uuid, String)>> {
    sqlx::query_as(
        "select id, tenant_id, label from staff_tokens where token_sha256 = $1 and revoked_at is null",
    )
        .bind(token_sha256)
        .fetch_optional(db)
        .await
}

/// What the registry says about a plate at a compound, at a local date.
#[derive(Debug, sqlx::FromRow)]
pub struct PlateFactsRow {
    /// The answer this read already got (the same device event id, or the same plate opened
    /// this gate within the duplicate window): the read is a replay.
    pub prior_response: Option<Json<crate::store::answers::GateDecision>>,
    pub exempt_class: Option<Word<ExemptClass>>,
    pub blocklisted: bool,
    pub valid_permit: bool,
    /// The class of the plate's registered vehicle: an owner's car.
    pub vehicle_class: Option<Word<VehicleClass>>,
    /// A booking of this plate at this lot lets it in now (within the early-arrival tolerance).
    pub booking_due: bool,
    /// A visitor stands on a space this plate's owned-space permit is for.
    pub own_space_taken: bool,
    /// The space this plate rents in this lot today, when no car stands on it: its stay is
    /// recorded on that space.
    pub rental_space_id: Option<Uuid>,
    /// The plate's open stay in this lot.
    pub open_session_id: Option<Uuid>,
    /// The lot's filed tariff version in force at the read.
    pub tariff_version_id: Option<Uuid>,
}

/// Where the plate-facts statement finds each value of a read (the columns of the unnested
/// reads).
struct FactsArgs {
    compound: &'static str,
    plate: &'static str,
    lot: &'static str,
    local_date: &'static str,
    at: &'static str,
    early_min: &'static str,
    gate: &'static str,
    device_event_id: &'static str,
    window_s: &'static str,
}

fn plate_facts_sql(a: &FactsArgs) -> String {
    let FactsArgs {
        compound: c,
        plate: p,
        lot: l,
        local_date: d,
        at,
        early_min,
        ..
    } = a;
    format!(
        "select
           ({prior}) as prior_response,
           (select class from exempt_vehicles where compound_id = {c} and plate = {p}) as exempt_class,
           exists (select 1 from blocklist where compound_id = {c} and plate = {p}) as blocklisted,
           (exists (select 1 from permits p join vehicles v on v.id = p.vehicle_id
                     where v.compound_id = {c} and v.plate = {p}
                       and p.valid_from <= {d} and (p.valid_to is null or p.valid_to >= {d})
                       and (p.lot_id is null or p.lot_id = {l}))
            or exists ({rental_in_force})) as valid_permit,
           (select rs.space_id from ({rental_in_force}) rs
             where rs.space_id is not null
               and not exists (select 1 from sessions s where s.space_id = rs.space_id and s.status = 'open')
             limit 1) as rental_space_id,
           (select class from vehicles where compound_id = {c} and plate = {p}) as vehicle_class,
           exists (select 1 from bookings
                    where lot_id = {l} and plate = {p} and status = 'booked' and {booking_admits}) as booking_due,
           exists (select 1 from permits p join vehicles v on v.id = p.vehicle_id
                     join bookings b on b.space_id = p.space_id and b.status = 'arrived'
                    where v.compound_id = {c} and v.plate = {p} and p.kind = 'owned_space' and p.lot_id = {l}
                      and p.valid_from <= {d} and (p.valid_to is null or p.valid_to >= {d})) as own_space_taken,
           (select id from sessions where lot_id = {l} and plate = {p} and status = 'open') as open_session_id,
           ({tariff_in_force}) as tariff_version_id",
        rental_in_force = rental_in_force_sql(l, p, d),
        tariff_in_force = crate::store::tariffs::version_in_force_sql(l, at),
        booking_admits = crate::store::sharing::booking_admits_sql("during", at, early_min),
        prior = crate::store::sessions::prior_response_sql([
            a.gate,
            a.device_event_id,
            p,
            at,
            a.window_s
        ]),
    )
}

/// The rental terms that admit `plate` to `lot` on the local date `date`: paid (or ended early,
/// then cut to their last day of use), from their first day through their last and their grace
/// days. The one rule of a renter's admission, read by the plate facts (a renter stands as a
/// permit holder) and pinned by the rental tests. Its aliases (`rn`) must not be used by the
/// statements it is put in (the batch's reads are `r`).
pub fn rental_in_force_sql(lot: &str, plate: &str, date: &str) -> String {
    format!(
        "select rn.space_id from rentals rn
          where rn.lot_id = {lot} and rn.plate = {plate} and rn.status in ('paid', 'ended')
            and lower(rn.during) <= {date} and {date} < upper(rn.during) + rn.grace_days"
    )
}

/// Everything the entry decision needs to know about the plate of each of `reads`, in their
/// order and in one statement: whether the read was answered before (as
/// `sessions::prior_response`), the registry's facts, and the shared-space facts, open stay
/// and tariff in force riding along, so that an ordinary car costs no extra query.
pub async fn plate_facts_of(
    db: &mut PgConnection,
    reads: &[PlateRead<'_>],
) -> sqlx::Result<Vec<PlateFactsRow>> {
    static SQL: LazyLock<String> = LazyLock::new(|| {
        format!(
            "select f.* from unnest($1::int4[], $2::uuid[], $3::text[], $4::uuid[], $5::date[],
                                   $6::timestamptz[], $7::int4[], $8::uuid[], $9::text[], $10::float8[])
                 as r(i, compound_id, plate, lot_id, local_date, at, early_min, gate_id,
                      device_event_id, window_s)
               cross join lateral ({}) f
              order by r.i",
            plate_facts_sql(&FactsArgs {
                compound: "r.compound_id",
                plate: "r.plate",
                lot: "r.lot_id",
                local_date: "r.local_date",
                at: "r.at",
                early_min: "r.early_min",
                gate: "r.gate_id",
                device_event_id: "r.device_event_id",
                window_s: "r.window_s",
            })
        )
    });
    if reads.is_empty() {
        return Ok(Vec::new());
    }
    sqlx::query_as(&SQL)
        .bind((0..).take(reads.len()).collect::<Vec<i32>>())
        .bind(reads.iter().map(|r| r.compound_id).collect::<Vec<_>>())
        .bind(reads.iter().map(|r| r.plate).collect::<Vec<_>>())
        .bind(reads.iter().map(|r| r.lot_id).collect::<Vec<_>>())
        .bind(reads.iter().map(|r| r.local_date).collect::<Vec<_>>())
        .bind(reads.iter().map(|r| r.at).collect::<Vec<_>>())
        .bind(
            reads
                .iter()
                .map(|r| r.early_arrival_min)
                .collect::<Vec<_>>(),
        )
        .bind(reads.iter().map(|r| r.gate_id).collect::<Vec<_>>())
        .bind(reads.iter().map(|r| r.device_event_id).collect::<Vec<_>>())
        .bind(
            reads
                .iter()
                .map(|r| f64::from(r.duplicate_window_s))
                .collect::<Vec<_>>(),
        )
        .fetch_all(db)
        .await
}

// ---- tenants -------------------------------------------------------------------------------

pub async fn insert_tenant(db: impl PgExecutor<'_>, id: Uuid, name: &str) -> sqlx::Result<()> {
    sqlx::query("insert into tenants (id, name) values ($1, $2)")
        .bind(id)
        .bind(name)
        .execute(db)
        .await
        .map(drop)
}

/// Answers the new token's id.
pub async fn insert_staff_token(
    db: impl PgExecutor<'_>,
    tenant_id: Uuid,
    token_sha256: &[u8],
    label: &str,
) -> sqlx::Result<Uuid> {
    sqlx::query_scalar(
        "insert into staff_tokens (token_sha256, tenant_id, label) values ($1, $2, $3) returning id",
    )
    .bind(token_sha256)
    .bind(tenant_id)
    .bind(label)
    .fetch_one(db)
    .await
}

pub async fn tenant_exists(db: impl PgExecutor<'_>, id: Uuid) -> sqlx::Result<bool> {
    sqlx::query_scalar("select exists (select 1 from tenants where id = $1)")
        .bind(id)
        .fetch_one(db)
        .await
}

// ---- compounds -----------------------------------------------------------------------------

#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct Compound {
    pub id: Uuid,
    pub name: String,
    pub time_zone: String,
    #[sqlx(json)]
    #[schema(value_type = Object)]
    pub policy: GatePolicy,
    pub created_at: DateTime<Utc>,
}

impl Compound {
    /// The compound's time zone. It was checked when written, so one that does not parse is
    /// a fault of ours (500), never the caller's.
    pub fn zone(&self) -> anyhow::Result<chrono_tz::Tz> {
        self.time_zone
            .parse()
            .map_err(|_| anyhow::anyhow!("compound {} has time zone {}", self.id, self.time_zone))
    }
}

const COMPOUND_COLUMNS: &str = "id, name, time_zone, policy, created_at";

pub async fn insert_compound(
    db: impl PgExecutor<'_>,
    tenant_id: Uuid,
    name: &str,
    time_zone: &str,
    policy: &GatePolicy,
) -> sqlx::Result<Compound> {
    sqlx::query_as(&format!(
        "insert into compounds (id, tenant_id, name, time_zone, policy) values ($1, $2, $3, $4, $5)
         returning {COMPOUND_COLUMNS}"
    ))
    .bind(Uuid::new_v4())
    .bind(tenant_id)
    .bind(name)
    .bind(time_zone)
    .bind(Json(policy))
    .fetch_one(db)
    .await
}

pub async fn compound(
    db: impl PgExecutor<'_>,
    tenant_id: Uuid,
    id: Uuid,
) -> sqlx::Result<Option<Compound>> {
    sqlx::query_as(&format!(
        "select {COMPOUND_COLUMNS} from compounds where tenant_id = $1 and id = $2"
    ))
    .bind(tenant_id)
    .bind(id)
    .fetch_optional(db)
    .await
}

pub async fn compounds(db: impl PgExecutor<'_>, tenant_id: Uuid) -> sqlx::Result<Vec<Compound>> {
    sqlx::query_as(&format!(
        "select {COMPOUND_COLUMNS} from compounds where tenant_id = $1 order by name"
    ))
    .bind(tenant_id)
    .fetch_all(db)
    .await
}

pub async fn update_compound_policy(
    db: impl PgExecutor<'_>,
    tenant_id: Uuid,
    id: Uuid,
    policy: &GatePolicy,
) -> sqlx::Result<Option<Compound>> {
    sqlx::query_as(&format!(
        "update compounds set policy = $3 where tenant_id = $1 and id = $2 returning {COMPOUND_COLUMNS}"
    ))
    .bind(tenant_id)
    .bind(id)
    .bind(Json(policy))
    .fetch_optional(db)
    .await
}

// ---- lots ----------------------------------------------------------------------------------

#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct Lot {
    pub id: Uuid,
    pub compound_id: Uuid,
    pub name: String,
    pub visitor_capacity: i32,
    /// Places reserved for pool passes: the most passes sold for any one day.
    pub pass_places: i32,
    #[sqlx(json)]
    #[schema(value_type = Object)]
    pub tariff: Tariff,
    pub created_at: DateTime<Utc>,
}

const LOT_COLUMNS: &str =
    "id, compound_id, name, visitor_capacity, pass_places, tariff, created_at";

pub async fn insert_lot(
    db: impl PgExecutor<'_>,
    tenant_id: Uuid,
    compound_id: Uuid,
    name: &str,
    (visitor_capacity, pass_places): (i32, i32),
    tariff: &Tariff,
) -> sqlx::Result<Lot> {
    sqlx::query_as(&format!(
        "insert into lots (id, tenant_id, compound_id, name, visitor_capacity, tariff, pass_places)
         values ($1, $2, $3, $4, $5, $6, $7) returning {LOT_COLUMNS}"
    ))
    .bind(Uuid::new_v4())
    .bind(tenant_id)
    .bind(compound_id)
    .bind(name)
    .bind(visitor_capacity)
    .bind(Json(tariff))
    .bind(pass_places)
    .fetch_one(db)
    .await
}

pub async fn lot(db: impl PgExecutor<'_>, tenant_id: Uuid, id: Uuid) -> sqlx::Result<Option<Lot>> {
    sqlx::query_as(&format!(
        "select {LOT_COLUMNS} from lots where tenant_id = $1 and id = $2"
    ))
    .bind(tenant_id)
    .bind(id)
    .fetch_optional(db)
    .await
}

/// A lot by id alone, for internal use (occupancy rebuild); never for a staff request.
pub async fn lot_unscoped(db: impl PgExecutor<'_>, id: Uuid) -> sqlx::Result<Option<Lot>> {
    sqlx::query_as(&format!("select {LOT_COLUMNS} from lots where id = $1"))
        .bind(id)
        .fetch_optional(db)
        .await
}

pub async fn all_lot_ids(db: impl PgExecutor<'_>) -> sqlx::Result<Vec<Uuid>> {
    sqlx::query_scalar("select id from lots order by id")
        .fetch_all(db)
        .await
}

/// Every lot with its visitor capacity.
pub async fn all_lot_capacities(db: impl PgExecutor<'_>) -> sqlx::Result<Vec<(Uuid, i32)>> {
    sqlx::query_as("select id, visitor_capacity from lots order by id")
        .fetch_all(db)
        .await
}

pub async fn lots(
    db: impl PgExecutor<'_>,
    tenant_id: Uuid,
    compound_id: Uuid,
) -> sqlx::Result<Vec<Lot>> {
    sqlx::query_as(&format!(
        "select {LOT_COLUMNS} from lots where tenant_id = $1 and compound_id = $2 order by name"
    ))
    .bind(tenant_id)
    .bind(compound_id)
    .fetch_all(db)
    .await
}

/// The firm's lot, locked against pool-pass sales (as `rentals` lock it) until the transaction
/// ends.
pub async fn lot_for_update(
    db: impl PgExecutor<'_>,
    tenant_id: Uuid,
    id: Uuid,
) -> sqlx::Result<Option<Lot>> {
    sqlx::query_as(&format!(
        "select {LOT_COLUMNS} from lots where tenant_id = $1 and id = $2 for no key update"
    ))
    .bind(tenant_id)
    .bind(id)
    .fetch_optional(db)
    .await
}

pub async fn update_lot(
    db: impl PgExecutor<'_>,
    tenant_id: Uuid,
    id: Uuid,
    (visitor_capacity, pass_places): (Option<i32>, Option<i32>),
    tariff: Option<&Tariff>,
) -> sqlx::Result<Option<Lot>> {
    sqlx::query_as(&format!(
        "update lots set visitor_capacity = coalesce($3, visitor_capacity), tariff = coalesce($4, tariff),
                pass_places = coalesce($5, pass_places)
          where tenant_id = $1 and id = $2 returning {LOT_COLUMNS}"
    ))
    .bind(tenant_id)
    .bind(id)
    .bind(visitor_capacity)
    .bind(tariff.map(Json))
    .bind(pass_places)
    .fetch_optional(db)
    .await
}

// ---- gates ---------------------------------------------------------------------------------

#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct Gate {
    pub id: Uuid,
    pub lot_id: Uuid,
    pub name: String,
    pub direction: String,
    pub created_at: DateTime<Utc>,
    pub vendor: Option<String>,
    pub device_serial: Option<String>,
    pub device_url: Option<String>,
    /// Whether a device login is stored (the password itself is never shown).
    pub device_login: bool,
    /// `open` or `closed`: what the lane does when the backend cannot decide in time.
    pub fail_mode: String,
    pub heartbeat_window_s: i32,
    /// `raw` or `led_board`: how the LED board behind a Vzenith camera takes its text.
    pub display_protocol: String,
    /// When the camera was set up; its silence is counted from here.
    pub device_configured_at: Option<DateTime<Utc>>,
    pub last_seen_at: Option<DateTime<Utc>>,
    /// Heard from (heartbeat or traffic) within its heartbeat window.
    pub online: bool,
    /// When the device secret was revoked; the lane is refused until it is rotated.
    pub secret_revoked_at: Option<DateTime<Utc>>,
}

/// A gate's columns, `online` as of the instant bound as the parameter `now` (the clock's).
fn gate_columns(now: &str) -> String {
    format!(
        "id, lot_id, name, direction, created_at, vendor, device_serial, device_url,
        device_username is not null as device_login, fail_mode, heartbeat_window_s, display_protocol,
        device_configured_at, last_seen_at,
        coalesce(last_seen_at > {now}::timestamptz - make_interval(secs => heartbeat_window_s), false)
            as online,
        secret_revoked_at"
    )
}

/// A gate's device settings, as staff set them.
pub struct DeviceSettings<'a> {
    pub vendor: Option<&'a str>,
    pub device_serial: Option<&'a str>,
    pub device_url: Option<&'a str>,
    /// `None` keeps the stored login; `Some(None)` removes it.
    pub login: Option<Option<(&'a str, &'a str)>>,
    pub fail_mode: &'a str,
    pub heartbeat_window_s: i32,
    pub display_protocol: &'a str,
}

/// Sets a gate's device at `now` (the clock's: a camera newly fitted is silent from then).
pub async fn update_gate_device(
    db: impl PgExecutor<'_>,
    tenant_id: Uuid,
    gate_id: Uuid,
    d: &DeviceSettings<'_>,
    now: DateTime<Utc>,
) -> sqlx::Result<Option<Gate>> {
    sqlx::query_as(&format!(
        "update gates set vendor = $3, device_serial = $4, device_url = $5,
                device_username = case when $10 then $6 else device_username end,
                device_password = case when $10 then $7 else device_password end,
                fail_mode = $8, heartbeat_window_s = $9, display_protocol = $11,
                -- A camera newly fitted, or another one: its silence counts from now.
                device_configured_at = case
                    when $3::text is null then null
                    when vendor is distinct from $3 or device_serial is distinct from $4
                         or device_configured_at is null then $12
                    else device_configured_at end
          where tenant_id = $1 and id = $2 returning {columns}",
        columns = gate_columns("$12")
    ))
    .bind(tenant_id)
    .bind(gate_id)
    .bind(d.vendor)
    .bind(d.device_serial)
    .bind(d.device_url)
    .bind(d.login.flatten().map(|l| l.0))
    .bind(d.login.flatten().map(|l| l.1))
    .bind(d.fail_mode)
    .bind(d.heartbeat_window_s)
    .bind(d.login.is_some())
    .bind(d.display_protocol)
    .bind(now)
    .fetch_optional(db)
    .await
}

/// A gate, `online` as of `now`.
pub async fn gate(
    db: impl PgExecutor<'_>,
    tenant_id: Uuid,
    id: Uuid,
    now: DateTime<Utc>,
) -> sqlx::Result<Option<Gate>> {
    sqlx::query_as(&format!(
        "select {} from gates where tenant_id = $1 and id = $2",
        gate_columns("$3")
    ))
    .bind(tenant_id)
    .bind(id)
    .bind(now)
    .fetch_optional(db)
    .await
}

pub async fn insert_gate(
    db: impl PgExecutor<'_>,
    tenant_id: Uuid,
    lot_id: Uuid,
    name: &str,
    direction: Direction,
    secret_sha256: &[u8],
) -> sqlx::Result<Gate> {
    sqlx::query_as(&format!(
        "insert into gates (id, tenant_id, lot_id, name, direction, secret_sha256)
         values ($1, $2, $3, $4, $5, $6) returning {}",
        // Never heard from yet: offline whatever the time.
        gate_columns("null")
    ))
    .bind(Uuid::new_v4())
    .bind(tenant_id)
    .bind(lot_id)
    .bind(name)
    .bind(direction.as_str())
    .bind(secret_sha256)
    .fetch_one(db)
    .await
}

/// The lot's gates, `online` as of `now`.
pub async fn gates(
    db: impl PgExecutor<'_>,
    tenant_id: Uuid,
    lot_id: Uuid,
    now: DateTime<Utc>,
) -> sqlx::Result<Vec<Gate>> {
    sqlx::query_as(&format!(
        "select {} from gates where tenant_id = $1 and lot_id = $2 order by name",
        gate_columns("$3")
    ))
    .bind(tenant_id)
    .bind(lot_id)
    .bind(now)
    .fetch_all(db)
    .await
}

// ---- owners, spaces, vehicles, permits ------------------------------------------------------

#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct Owner {
    pub id: Uuid,
    pub compound_id: Uuid,
    pub unit: String,
    pub name: String,
    #[serde(with = "rust_decimal::serde::str")]
    pub floor_area_m2: Decimal,
    pub phone: Option<String>,
}

pub struct NewOwner<'a> {
    pub unit: &'a str,
    pub name: &'a str,
    pub floor_area_m2: Decimal,
    pub phone: Option<&'a str>,
}

pub async fn insert_owner(
    db: impl PgExecutor<'_>,
    tenant_id: Uuid,
    compound_id: Uuid,
    owner: &NewOwner<'_>,
) -> sqlx::Result<Owner> {
    sqlx::query_as(
        "insert into owners (id, tenant_id, compound_id, unit, name, floor_area_m2, phone)
         values ($1, $2, $3, $4, $5, $6, $7)
         returning id, compound_id, unit, name, floor_area_m2, phone",
    )
    .bind(Uuid::new_v4())
    .bind(tenant_id)
    .bind(compound_id)
    .bind(owner.unit)
    .bind(owner.name)
    .bind(owner.floor_area_m2)
    .bind(owner.phone)
    .fetch_one(db)
    .await
}

pub async fn owners(
    db: impl PgExecutor<'_>,
    tenant_id: Uuid,
    compound_id: Uuid,
) -> sqlx::Result<Vec<Owner>> {
    sqlx::query_as(
        "select id, compound_id, unit, name, floor_area_m2, phone from owners
          where tenant_id = $1 and compound_id = $2 order by unit",
    )
    .bind(tenant_id)
    .bind(compound_id)
    .fetch_all(db)
    .await
}

pub async fn owner_id_by_unit(
    db: impl PgExecutor<'_>,
    tenant_id: Uuid,
    compound_id: Uuid,
    unit: &str,
) -> sqlx::Result<Option<Uuid>> {
    sqlx::query_scalar(
        "select id from owners where tenant_id = $1 and compound_id = $2 and unit = $3",
    )
    .bind(tenant_id)
    .bind(compound_id)
    .bind(unit)
    .fetch_optional(db)
    .await
}

pub async fn owner_in_compound(
    db: impl PgExecutor<'_>,
    tenant_id: Uuid,
    compound_id: Uuid,
    owner_id: Uuid,
) -> sqlx::Result<bool> {
    sqlx::query_scalar(
        "select exists (select 1 from owners where tenant_id = $1 and compound_id = $2 and id = $3)",
    )
    .bind(tenant_id)
    .bind(compound_id)
    .bind(owner_id)
    .fetch_one(db)
    .await
}

#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct Space {
    pub id: Uuid,
    pub lot_id: Uuid,
    pub code: String,
    pub kind: String,
    pub owner_id: Option<Uuid>,
}

pub async fn insert_space(
    db: impl PgExecutor<'_>,
    tenant_id: Uuid,
    lot_id: Uuid,
    code: &str,
    kind: &str,
    owner_id: Option<Uuid>,
) -> sqlx::Result<Space> {
    sqlx::query_as(
        "insert into spaces (id, tenant_id, lot_id, code, kind, owner_id) values ($1, $2, $3, $4, $5, $6)
         returning id, lot_id, code, kind, owner_id",
    )
    .bind(Uuid::new_v4())
    .bind(tenant_id)
    .bind(lot_id)
    .bind(code)
    .bind(kind)
    .bind(owner_id)
    .fetch_one(db)
    .await
}

pub async fn spaces(
    db: impl PgExecutor<'_>,
    tenant_id: Uuid,
    lot_id: Uuid,
) -> sqlx::Result<Vec<Space>> {
    sqlx::query_as(
        "select id, lot_id, code, kind, owner_id from spaces where tenant_id = $1 and lot_id = $2 order by code",
    )
    .bind(tenant_id)
    .bind(lot_id)
    .fetch_all(db)
    .await
}

pub async fn space(
    db: impl PgExecutor<'_>,
    tenant_id: Uuid,
    id: Uuid,
) -> sqlx::Result<Option<Space>> {
    sqlx::query_as(
        "select id, lot_id, code, kind, owner_id from spaces where tenant_id = $1 and id = $2",
    )
    .bind(tenant_id)
    .bind(id)
    .fetch_optional(db)
    .await
}

#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct Vehicle {
    pub id: Uuid,
    pub compound_id: Uuid,
    pub plate: String,
    pub class: String,
    pub owner_id: Uuid,
}

pub async fn insert_vehicle(
    db: impl PgExecutor<'_>,
    tenant_id: Uuid,
    compound_id: Uuid,
    plate: &str,
    class: &str,
    owner_id: Uuid,
) -> sqlx::Result<Vehicle> {
    sqlx::query_as(
        "insert into vehicles (id, tenant_id, compound_id, plate, class, owner_id) values ($1, $2, $3, $4, $5, $6)
         returning id, compound_id, plate, class, owner_id",
    )
    .bind(Uuid::new_v4())
    .bind(tenant_id)
    .bind(compound_id)
    .bind(plate)
    .bind(class)
    .bind(owner_id)
    .fetch_one(db)
    .await
}

pub async fn vehicles(
    db: impl PgExecutor<'_>,
    tenant_id: Uuid,
    compound_id: Uuid,
) -> sqlx::Result<Vec<Vehicle>> {
    sqlx::query_as(
        "select id, compound_id, plate, class, owner_id from vehicles
          where tenant_id = $1 and compound_id = $2 order by plate",
    )
    .bind(tenant_id)
    .bind(compound_id)
    .fetch_all(db)
    .await
}

pub async fn vehicle(
    db: impl PgExecutor<'_>,
    tenant_id: Uuid,
    id: Uuid,
) -> sqlx::Result<Option<Vehicle>> {
    sqlx::query_as("select id, compound_id, plate, class, owner_id from vehicles where tenant_id = $1 and id = $2")
        .bind(tenant_id)
        .bind(id)
        .fetch_optional(db)
        .await
}

#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct Permit {
    pub id: Uuid,
    pub compound_id: Uuid,
    pub vehicle_id: Uuid,
    pub kind: String,
    pub lot_id: Option<Uuid>,
    pub space_id: Option<Uuid>,
    pub valid_from: NaiveDate,
    pub valid_to: Option<NaiveDate>,
}

pub struct NewPermit {
    pub vehicle_id: Uuid,
    pub kind: &'static str,
    pub lot_id: Option<Uuid>,
    pub space_id: Option<Uuid>,
    pub valid_from: NaiveDate,
    pub valid_to: Option<NaiveDate>,
}

const PERMIT_COLUMNS: &str =
    "id, compound_id, vehicle_id, kind, lot_id, space_id, valid_from, valid_to";

pub async fn insert_permit(
    db: impl PgExecutor<'_>,
    tenant_id: Uuid,
    compound_id: Uuid,
    permit: &NewPermit,
) -> sqlx::Result<Permit> {
    sqlx::query_as(&format!(
        "insert into permits (id, tenant_id, compound_id, vehicle_id, kind, lot_id, space_id, valid_from, valid_to)
         values ($1, $2, $3, $4, $5, $6, $7, $8, $9) returning {PERMIT_COLUMNS}"
    ))
    .bind(Uuid::new_v4())
    .bind(tenant_id)
    .bind(compound_id)
    .bind(permit.vehicle_id)
    .bind(permit.kind)
    .bind(permit.lot_id)
    .bind(permit.space_id)
    .bind(permit.valid_from)
    .bind(permit.valid_to)
    .fetch_one(db)
    .await
}

pub async fn permits(
    db: impl PgExecutor<'_>,
    tenant_id: Uuid,
    compound_id: Uuid,
) -> sqlx::Result<Vec<Permit>> {
    sqlx::query_as(&format!(
        "select {PERMIT_COLUMNS} from permits where tenant_id = $1 and compound_id = $2 order by valid_from, id"
    ))
    .bind(tenant_id)
    .bind(compound_id)
    .fetch_all(db)
    .await
}

// ---- exempt vehicles and blocklist ----------------------------------------------------------

#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct ListedPlate {
    pub plate: String,
    /// The exempt class, or the blocklisting reason.
    pub detail: String,
    pub created_at: DateTime<Utc>,
}

pub async fn upsert_exempt_vehicle(
    db: impl PgExecutor<'_>,
    tenant_id: Uuid,
    compound_id: Uuid,
    plate: &str,
    class: &str,
    note: &str,
) -> sqlx::Result<()> {
    sqlx::query(
        "insert into exempt_vehicles (compound_id, tenant_id, plate, class, note) values ($1, $2, $3, $4, $5)
         on conflict (compound_id, plate) do update set class = excluded.class, note = excluded.note",
    )
    .bind(compound_id)
    .bind(tenant_id)
    .bind(plate)
    .bind(class)
    .bind(note)
    .execute(db)
    .await
    .map(drop)
}

pub async fn exempt_vehicles(
    db: impl PgExecutor<'_>,
    tenant_id: Uuid,
    compound_id: Uuid,
) -> sqlx::Result<Vec<ListedPlate>> {
    sqlx::query_as(
        "select plate, class as detail, created_at from exempt_vehicles
          where tenant_id = $1 and compound_id = $2 order by plate",
    )
    .bind(tenant_id)
    .bind(compound_id)
    .fetch_all(db)
    .await
}

/// Whether `plate` is a registered exempt (emergency) vehicle of the compound.
pub async fn is_exempt(
    db: impl PgExecutor<'_>,
    compound_id: Uuid,
    plate: &str,
) -> sqlx::Result<bool> {
    sqlx::query_scalar(
        "select exists (select 1 from exempt_vehicles where compound_id = $1 and plate = $2)",
    )
    .bind(compound_id)
    .bind(plate)
    .fetch_one(db)
    .await
}

pub async fn upsert_blocklisted(
    db: impl PgExecutor<'_>,
    tenant_id: Uuid,
    compound_id: Uuid,
    plate: &str,
    reason: &str,
) -> sqlx::Result<()> {
    sqlx::query(
        "insert into blocklist (compound_id, tenant_id, plate, reason) values ($1, $2, $3, $4)
         on conflict (compound_id, plate) do update set reason = excluded.reason",
    )
    .bind(compound_id)
    .bind(tenant_id)
    .bind(plate)
    .bind(reason)
    .execute(db)
    .await
    .map(drop)
}

pub async fn delete_blocklisted(
    db: impl PgExecutor<'_>,
    tenant_id: Uuid,
    compound_id: Uuid,
    plate: &str,
) -> sqlx::Result<bool> {
    sqlx::query("delete from blocklist where tenant_id = $1 and compound_id = $2 and plate = $3")
        .bind(tenant_id)
        .bind(compound_id)
        .bind(plate)
        .execute(db)
        .await
        .map(|r| r.rows_affected() == 1)
}

pub async fn blocklist(
    db: impl PgExecutor<'_>,
    tenant_id: Uuid,
    compound_id: Uuid,
) -> sqlx::Result<Vec<ListedPlate>> {
    sqlx::query_as(
        "select plate, reason as detail, created_at from blocklist
          where tenant_id = $1 and compound_id = $2 order by plate",
    )
    .bind(tenant_id)
    .bind(compound_id)
    .fetch_all(db)
    .await
}

// ---- imports (upserts keyed by the spreadsheet's natural keys) ------------------------------

/// Inserts or updates an owner by unit. Returns true when the row was new.
pub async fn upsert_owner(
    db: impl PgExecutor<'_>,
    tenant_id: Uuid,
    compound_id: Uuid,
    owner: &NewOwner<'_>,
) -> sqlx::Result<bool> {
    sqlx::query_scalar(
        "insert into owners (id, tenant_id, compound_id, unit, name, floor_area_m2, phone)
         values ($1, $2, $3, $4, $5, $6, $7)
         on conflict (compound_id, unit) do update
            set name = excluded.name, floor_area_m2 = excluded.floor_area_m2, phone = excluded.phone
         returning (xmax = 0)",
    )
    .bind(Uuid::new_v4())
    .bind(tenant_id)
    .bind(compound_id)
    .bind(owner.unit)
    .bind(owner.name)
    .bind(owner.floor_area_m2)
    .bind(owner.phone)
    .fetch_one(db)
    .await
}

pub async fn upsert_space(
    db: impl PgExecutor<'_>,
    tenant_id: Uuid,
    lot_id: Uuid,
    code: &str,
    kind: &str,
    owner_id: Option<Uuid>,
) -> sqlx::Result<bool> {
    sqlx::query_scalar(
        "insert into spaces (id, tenant_id, lot_id, code, kind, owner_id) values ($1, $2, $3, $4, $5, $6)
         on conflict (lot_id, code) do update set kind = excluded.kind, owner_id = excluded.owner_id
         returning (xmax = 0)",
    )
    .bind(Uuid::new_v4())
    .bind(tenant_id)
    .bind(lot_id)
    .bind(code)
    .bind(kind)
    .bind(owner_id)
    .fetch_one(db)
    .await
}

pub async fn upsert_vehicle(
    db: impl PgExecutor<'_>,
    tenant_id: Uuid,
    compound_id: Uuid,
    plate: &str,
    class: &str,
    owner_id: Uuid,
) -> sqlx::Result<bool> {
    sqlx::query_scalar(
        "insert into vehicles (id, tenant_id, compound_id, plate, class, owner_id) values ($1, $2, $3, $4, $5, $6)
         on conflict (compound_id, plate) do update set class = excluded.class, owner_id = excluded.owner_id
         returning (xmax = 0)",
    )
    .bind(Uuid::new_v4())
    .bind(tenant_id)
    .bind(compound_id)
    .bind(plate)
    .bind(class)
    .bind(owner_id)
    .fetch_one(db)
    .await
}

pub async fn lot_id_by_name(
    db: impl PgExecutor<'_>,
    tenant_id: Uuid,
    compound_id: Uuid,
    name: &str,
) -> sqlx::Result<Option<Uuid>> {
    sqlx::query_scalar(
        "select id from lots where tenant_id = $1 and compound_id = $2 and name = $3",
    )
    .bind(tenant_id)
    .bind(compound_id)
    .bind(name)
    .fetch_optional(db)
    .await
}

/// Billing rules of a lot (its compound's time zone and policy, its draft tariff).
pub async fn lot_rules(db: impl PgExecutor<'_>, lot_id: Uuid) -> anyhow::Result<Option<LotRules>> {
    let row: Option<(String, Json<GatePolicy>, Json<Tariff>)> = sqlx::query_as(
        "select c.time_zone, c.policy, l.tariff from lots l join compounds c on c.id = l.compound_id where l.id = $1",
    )
    .bind(lot_id)
    .fetch_optional(db)
    .await?;
    row.map(|(tz, policy, tariff)| {
        Ok(LotRules {
            lot_id,
            time_zone: tz
                .parse()
                .map_err(|_| anyhow::anyhow!("lot {lot_id} has time zone {tz}"))?,
            policy: policy.0,
            draft_tariff: tariff.0,
        })
    })
    .transpose()
}

/// The compound's and the lot's names.
pub async fn lot_names(
    db: impl PgExecutor<'_>,
    lot_id: Uuid,
) -> sqlx::Result<Option<(String, String)>> {
    sqlx::query_as("select c.name, l.name from lots l join compounds c on c.id = l.compound_id where l.id = $1")
        .bind(lot_id)
        .fetch_optional(db)
        .await
}

pub async fn owner_of_tenant(
    db: impl PgExecutor<'_>,
    tenant_id: Uuid,
    owner_id: Uuid,
) -> sqlx::Result<bool> {
    sqlx::query_scalar("select exists (select 1 from owners where tenant_id = $1 and id = $2)")
        .bind(tenant_id)
        .bind(owner_id)
        .fetch_one(db)
        .await
}
/// For a permit stay of `plate` in `lot_id` from the local date `entered_on` to `exit_on`:
/// the first local day no rental admitted it any more, when the stay came from a rental that
/// lapsed before the exit — no permit of the plate was valid on any day of the stay, no
/// rental admits it on the exit day, and a rental of it in the lot began by then. `None`: the
/// stay is free whole. (Billing prices with it; rentals are `allocation::rentals`.)
pub async fn lapsed_during_stay(
    db: impl PgExecutor<'_>,
    lot_id: Uuid,
    plate: &str,
    (entered_on, exit_on): (chrono::NaiveDate, chrono::NaiveDate),
) -> sqlx::Result<Option<NaiveDate>> {
    sqlx::query_scalar(
        "select max(upper(r.during) + r.grace_days) from rentals r
          where r.lot_id = $1 and r.plate = $2 and r.status in ('paid', 'ended')
            and lower(r.during) <= $4
         having not bool_or($4 < upper(r.during) + r.grace_days)
            and not exists (select 1 from permits p join vehicles v on v.id = p.vehicle_id
                              join lots l on l.id = $1
                             where v.compound_id = l.compound_id and v.plate = $2
                               and (p.lot_id is null or p.lot_id = $1)
                               and p.valid_from <= $4 and (p.valid_to is null or p.valid_to >= $3))",
    )
    .bind(lot_id)
    .bind(plate)
    .bind(entered_on)
    .bind(exit_on)
    .fetch_optional(db)
    .await
    .map(Option::flatten)
}
