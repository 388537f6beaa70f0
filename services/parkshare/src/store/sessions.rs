//! Session storage: stays, the gate events that decided them, payments and anomalies.

use std::sync::LazyLock;

use chrono::{DateTime, NaiveDate, Utc};
use rust_decimal::Decimal;
use serde::Serialize;
use sqlx::types::Json;
use sqlx::{FromRow, PgConnection, PgExecutor, Row};
use uuid::Uuid;

use parkshare_domain::decision::{Origin, Pool, SessionKind, StayStatus};
use parkshare_domain::vehicle::VehicleClass;
use parkshare_tariff::Bill;

use crate::store::answers::GateDecision;

/// Most rows one listing returns.
pub const LIST_ROWS_MAX: i64 = 500;

/// A stable 64-bit advisory-lock key for a lot.
pub fn lot_lock_key(lot_id: Uuid) -> i64 {
    let (high, low) = lot_id.as_u64_pair();
    i64::from_ne_bytes((high ^ low).to_ne_bytes())
}

/// Serialises events for one plate in one lot (a camera's retry racing its original), and
/// takes the lot's lock shared so that an occupancy rebuild (exclusive) never sees a half-done
/// event. Both are released at commit or rollback.
pub async fn lock_plate(tx: &mut PgConnection, lot_id: Uuid, plate: &str) -> sqlx::Result<()> {
    sqlx::query(
        "select pg_advisory_xact_lock_shared($1), pg_advisory_xact_lock(hashtextextended($2, 0))",
    )
    .bind(lot_lock_key(lot_id))
    .bind(plate_lock_key(lot_id, plate))
    .execute(tx)
    .await
    .map(drop)
}

/// The text whose hash is the advisory-lock key of one plate in one lot.
pub fn plate_lock_key(lot_id: Uuid, plate: &str) -> String {
    format!("{lot_id}/{plate}")
}

/// The statement that begins an event's transaction and takes [`lock_plate`]'s locks in the
/// same round trip (a simple query carries no parameters, so the key is written in: a lot id
/// and a parsed plate, quoted as a literal).
pub fn begin_locking_plate(lot_id: Uuid, plate: &str) -> String {
    begin_locking_plates([(lot_id, plate)])
}

/// [`begin_locking_plate`] for the cars of a batch: every lot's shared lock, then every
/// plate's, each set sorted, so that two batches never wait for each other in a circle.
pub fn begin_locking_plates<'a>(cars: impl IntoIterator<Item = (Uuid, &'a str)>) -> String {
    let mut lots = std::collections::BTreeSet::new();
    let mut plates = std::collections::BTreeSet::new();
    for (lot_id, plate) in cars {
        lots.insert(lot_lock_key(lot_id));
        plates.insert(plate_lock_key(lot_id, plate).replace('\'', "''"));
    }
    let locks = lots
        .iter()
        .map(|lot| format!("pg_advisory_xact_lock_shared({lot})"))
        .chain(
            plates
                .iter()
                .map(|key| format!("pg_advisory_xact_lock(hashtextextended('{key}', 0))")),
        )
        .collect::<Vec<_>>()
        .join(", ");
    format!("begin; select {locks}")
}

/// Waits for every in-flight event of the lot to finish and holds new ones off until commit.
pub async fn lock_lot_exclusive(tx: &mut PgConnection, lot_id: Uuid) -> sqlx::Result<()> {
    sqlx::query("select pg_advisory_xact_lock($1)")
        .bind(lot_lock_key(lot_id))
        .execute(tx)
        .await
        .map(drop)
}

pub async fn response_by_device_event(
    db: impl PgExecutor<'_>,
    gate_id: Uuid,
    device_event_id: &str,
) -> sqlx::Result<Option<GateDecision>> {
    sqlx::query_scalar::<_, Json<GateDecision>>(
        "select response from gate_events where gate_id = $1 and device_event_id = $2",
    )
    .bind(gate_id)
    .bind(device_event_id)
    .fetch_optional(db)
    .await
    .map(|r| r.map(|j| j.0))
}

/// The query of [`prior_response`] with its values where the statement that embeds it has
/// them (`$n` parameters or a batch's columns): `[gate_id, device_event_id, plate,
/// captured_at, window_s]`.
pub fn prior_response_sql([gate, event, plate, at, window]: [&str; 5]) -> String {
    format!(
        "select response from (
           (select response, 0 as rank from gate_events where gate_id = {gate} and device_event_id = {event})
           union all
           (select response, 1 from gate_events e
             where {window} > 0 and e.gate_id = {gate} and e.plate = {plate} and e.action = 'open'
               and e.captured_at between {at} - make_interval(secs => {window})
                                     and {at} + make_interval(secs => {window})
               -- The passage it opened still stands: the stay an entry opened is still
               -- inside; the car an exit let out has not come back in. Else this read is a
               -- new passage, not a camera firing twice.
               and case when e.direction = 'entry'
                        then exists (select 1 from sessions s
                                      where s.id = e.session_id and s.status = 'open')
                        else not exists (select 1 from sessions s, gates g
                                          where g.id = e.gate_id and s.lot_id = g.lot_id
                                            and s.plate = e.plate and s.status = 'open')
                   end
             order by e.captured_at desc limit 1)
         ) prior order by rank limit 1"
    )
}

/// The answer already given to this read, in one round trip: the answer stored under the
/// device's event id if there is one, else the last answer that opened this gate for this
/// plate within `window_s` of `captured_at` (none when `window_s` is 0) while the passage it
/// opened still stands (an entry's stay inside, an exit's car not back in).
pub async fn prior_response(
    db: impl PgExecutor<'_>,
    gate_id: Uuid,
    device_event_id: &str,
    plate: &str,
    captured_at: DateTime<Utc>,
    window_s: u32,
) -> sqlx::Result<Option<GateDecision>> {
    static SQL: LazyLock<String> =
        LazyLock::new(|| prior_response_sql(["$1", "$2", "$3", "$4", "$5"]));
    sqlx::query_scalar::<_, Json<GateDecision>>(&SQL)
        .bind(gate_id)
        .bind(device_event_id)
        .bind(plate)
        .bind(captured_at)
        .bind(f64::from(window_s))
        .fetch_optional(db)
        .await
        .map(|r| r.map(|j| j.0))
}

#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct Session {
    pub id: Uuid,
    #[serde(skip)]
    pub tenant_id: Uuid,
    pub lot_id: Uuid,
    pub plate: String,
    #[sqlx(try_from = "String")]
    #[schema(value_type = String)]
    pub vehicle_class: VehicleClass,
    #[sqlx(try_from = "String")]
    #[schema(value_type = String)]
    pub kind: SessionKind,
    #[sqlx(try_from = "String")]
    #[schema(value_type = String)]
    pub pool: Pool,
    #[sqlx(try_from = "String")]
    #[schema(value_type = String)]
    pub status: StayStatus,
    #[sqlx(try_from = "String")]
    #[schema(value_type = String)]
    pub origin: Origin,
    pub entered_at: Option<DateTime<Utc>>,
    pub entry_gate_id: Option<Uuid>,
    pub exited_at: Option<DateTime<Utc>>,
    pub exit_gate_id: Option<Uuid>,
    /// Yuan, a decimal string; set at exit.
    #[serde(with = "rust_decimal::serde::str_option")]
    #[schema(value_type = Option<String>)]
    pub fee: Option<Decimal>,
    /// The itemised bill, set at exit.
    #[schema(value_type = Option<Object>)]
    pub bill: Option<Json<serde_json::Value>>,
    #[serde(with = "rust_decimal::serde::str")]
    pub paid: Decimal,
    pub last_paid_at: Option<DateTime<Utc>>,
    /// The instant the last payment's amount was priced at.
    pub last_paid_priced_at: Option<DateTime<Utc>>,
    pub anomaly: Option<String>,
    pub tariff_version_id: Option<Uuid>,
    /// The shared space a booking placed the car on.
    pub space_id: Option<Uuid>,
}

impl Session {
    /// The stay's latest payment, which the exit grace and the billing instant follow.
    pub fn last_payment(&self) -> Option<parkshare_domain::decision::LastPayment> {
        let paid_at = self.last_paid_at?;
        Some(parkshare_domain::decision::LastPayment {
            paid_at,
            priced_at: self.last_paid_priced_at.unwrap_or(paid_at),
        })
    }
}

const SESSION_COLUMNS: &str = "id, tenant_id, lot_id, plate, vehicle_class, kind, pool, status, origin, entered_at,
    entry_gate_id, exited_at, exit_gate_id, fee, bill, paid, last_paid_at, last_paid_priced_at, anomaly, tariff_version_id, space_id";

pub async fn open_session(
    db: impl PgExecutor<'_>,
    lot_id: Uuid,
    plate: &str,
) -> sqlx::Result<Option<Session>> {
    sqlx::query_as(&format!(
        "select {SESSION_COLUMNS} from sessions where lot_id = $1 and plate = $2 and status = 'open'"
    ))
    .bind(lot_id)
    .bind(plate)
    .fetch_optional(db)
    .await
}

/// Plates of open sessions of the lot whose plate has `char_count` characters: the candidates
/// for matching a misread exit plate.
pub async fn open_plates_of_length(
    db: impl PgExecutor<'_>,
    lot_id: Uuid,
    char_count: i32,
) -> sqlx::Result<Vec<String>> {
    sqlx::query_scalar(
        "select plate from sessions
          where lot_id = $1 and status = 'open' and origin = 'entry' and char_length(plate) = $2",
    )
    .bind(lot_id)
    .bind(char_count)
    .fetch_all(db)
    .await
}

pub struct NewSession<'a> {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub compound_id: Uuid,
    pub lot_id: Uuid,
    pub plate: &'a str,
    pub vehicle_class: VehicleClass,
    pub kind: SessionKind,
    pub pool: Pool,
    pub origin: Origin,
    pub entered_at: Option<DateTime<Utc>>,
    pub entry_gate_id: Option<Uuid>,
    /// The filed tariff version in force at entry.
    pub tariff_version_id: Option<Uuid>,
    /// The shared space a booking placed the car on.
    pub space_id: Option<Uuid>,
}

/// Opens a stay.
pub async fn insert_session(db: &mut PgConnection, s: &NewSession<'_>) -> sqlx::Result<()> {
    let mut writes = DecisionWrites::default();
    writes.stay(s);
    write_decisions(db, &writes).await
}

/// Records a stay seen only at its exit, closed there at `exit` with its bill, in one
/// statement: it is never open, so it may be recorded while the plate has a later stay open
/// (an offline camera's exit older than the car's current entry).
pub async fn insert_closed_session(
    db: &mut PgConnection,
    s: &NewSession<'_>,
    bill: &Bill,
    exit: (DateTime<Utc>, Uuid),
) -> sqlx::Result<()> {
    sqlx::query(
        "insert into sessions (id, tenant_id, compound_id, lot_id, plate, vehicle_class, kind,
                               pool, origin, entered_at, entry_gate_id, tariff_version_id,
                               space_id, status, fee, bill, exited_at, exit_gate_id)
         values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, 'closed', $14, $15,
                 $16, $17)",
    )
    .bind(s.id)
    .bind(s.tenant_id)
    .bind(s.compound_id)
    .bind(s.lot_id)
    .bind(s.plate)
    .bind(s.vehicle_class.as_str())
    .bind(s.kind.as_str())
    .bind(s.pool.as_str())
    .bind(s.origin.as_str())
    .bind(s.entered_at)
    .bind(s.entry_gate_id)
    .bind(s.tariff_version_id)
    .bind(s.space_id)
    .bind(bill.total.yuan())
    .bind(Json(bill))
    .bind(exit.0)
    .bind(exit.1)
    .execute(db)
    .await
    .map(drop)
}

/// Records the latest bill of a session; with `exit` it also closes the session.
pub async fn bill_session(
    db: &mut PgConnection,
    id: Uuid,
    bill: &Bill,
    exit: Option<(DateTime<Utc>, Uuid)>,
) -> sqlx::Result<()> {
    let mut writes = DecisionWrites::default();
    writes.bill(id, bill, exit);
    write_decisions(db, &writes).await
}

/// The stay whose exit was recorded before its entry was known and that an entry captured at
/// `entered_at` completes: no entry time, and its exit (or, still waiting at the exit, its
/// creation) after `entered_at`. The earliest such stay is the one this entry began.
pub async fn entryless_after(
    db: impl PgExecutor<'_>,
    lot_id: Uuid,
    plate: &str,
    entered_at: DateTime<Utc>,
) -> sqlx::Result<Option<Session>> {
    sqlx::query_as(&format!(
        "select {SESSION_COLUMNS} from sessions
          where lot_id = $1 and plate = $2 and entered_at is null
            and origin in ('no_entry_record', 'offline_exit')
            and coalesce(exited_at, created_at) >= $3
          order by coalesce(exited_at, created_at) limit 1 for update"
    ))
    .bind(lot_id)
    .bind(plate)
    .bind(entered_at)
    .fetch_optional(db)
    .await
}

/// The latest stay of `plate` closed as a missed exit (a later entry of the car closed it, its
/// exit never read) that began at or before `exited_at`: the stay an exit record captured then,
/// replayed late, ends.
pub async fn missed_exit_before(
    db: impl PgExecutor<'_>,
    lot_id: Uuid,
    plate: &str,
    exited_at: DateTime<Utc>,
) -> sqlx::Result<Option<Session>> {
    sqlx::query_as(&format!(
        "select {SESSION_COLUMNS} from sessions
          where lot_id = $1 and plate = $2 and status = 'closed' and exited_at is null
            and anomaly = 'missed_exit' and entered_at <= $3
          order by entered_at desc limit 1 for update"
    ))
    .bind(lot_id)
    .bind(plate)
    .bind(exited_at)
    .fetch_optional(db)
    .await
}

/// What a stay is marked with when its entry was recorded late and its exit read had been
/// refused `no_entry_record` meanwhile: closed at that read, and found again by the plate's next
/// exit read (the car may still have been waiting at the barrier).
pub const CLOSED_AT_REFUSED_EXIT: &str = "closed_at_refused_exit";

/// The first exit read of `plate` at this lot refused `no_entry_record` (no stay found) at or
/// after `entered_at`, with no other stay of the plate entered in between: the car stood at the
/// exit before its entry, captured at `entered_at`, was recorded. Its capture time and gate.
pub async fn refused_exit_after(
    db: impl PgExecutor<'_>,
    lot_id: Uuid,
    plate: &str,
    entered_at: DateTime<Utc>,
) -> sqlx::Result<Option<(DateTime<Utc>, Uuid)>> {
    sqlx::query_as(
        "select e.captured_at, e.gate_id from gate_events e
          where e.gate_id in (select id from gates where lot_id = $1 and direction = 'exit')
            and e.plate = $2 and e.captured_at >= $3
            and e.reason = 'no_entry_record' and e.session_id is null
            and not exists (select 1 from sessions s
                             where s.lot_id = $1 and s.plate = $2
                               and s.entered_at > $3 and s.entered_at <= e.captured_at)
          order by e.captured_at limit 1",
    )
    .bind(lot_id)
    .bind(plate)
    .bind(entered_at)
    .fetch_optional(db)
    .await
}

/// The latest stay of `plate` closed at a refused exit read ([`CLOSED_AT_REFUSED_EXIT`]) at or
/// before `at` and within a day of it, locked: the car's next exit read ends it again.
pub async fn closed_at_refused_exit(
    db: impl PgExecutor<'_>,
    lot_id: Uuid,
    plate: &str,
    at: DateTime<Utc>,
) -> sqlx::Result<Option<Session>> {
    sqlx::query_as(&format!(
        "select {SESSION_COLUMNS} from sessions
          where lot_id = $1 and plate = $2 and status = 'closed' and anomaly = $3
            and exited_at <= $4 and exited_at > $4 - interval '1 day'
          order by exited_at desc limit 1 for update"
    ))
    .bind(lot_id)
    .bind(plate)
    .bind(CLOSED_AT_REFUSED_EXIT)
    .bind(at)
    .fetch_optional(db)
    .await
}

/// Gives a stay the entry that was read late; it is an ordinary entry-opened stay from now on.
pub async fn set_late_entry(
    db: impl PgExecutor<'_>,
    id: Uuid,
    entered_at: DateTime<Utc>,
    entry_gate_id: Uuid,
    tariff_version_id: Option<Uuid>,
) -> sqlx::Result<()> {
    sqlx::query(
        "update sessions set entered_at = $2, entry_gate_id = $3, origin = 'entry',
                tariff_version_id = coalesce($4, tariff_version_id), updated_at = now()
          where id = $1",
    )
    .bind(id)
    .bind(entered_at)
    .bind(entry_gate_id)
    .bind(tariff_version_id)
    .execute(db)
    .await
    .map(drop)
}

/// Closes a session whose exit was never read (the car is back at an entry).
pub async fn close_as_anomaly(
    db: impl PgExecutor<'_>,
    id: Uuid,
    anomaly: &str,
) -> sqlx::Result<()> {
    sqlx::query(
        "update sessions set status = 'closed', anomaly = $2, updated_at = now() where id = $1",
    )
    .bind(id)
    .bind(anomaly)
    .execute(db)
    .await
    .map(drop)
}

pub async fn mark_anomaly(db: impl PgExecutor<'_>, id: Uuid, anomaly: &str) -> sqlx::Result<()> {
    sqlx::query("update sessions set anomaly = $2, updated_at = now() where id = $1")
        .bind(id)
        .bind(anomaly)
        .execute(db)
        .await
        .map(drop)
}

/// A decided read to store: the read, and its answer (which names the gate, the plate, the
/// stay, the action and the reason the event's columns repeat).
pub struct NewGateEvent<'a> {
    pub device_event_id: &'a str,
    pub captured_at: DateTime<Utc>,
    pub response: &'a GateDecision,
    /// `api`, a vendor name, `fail_open` or `manual`.
    pub source: &'a str,
    /// A passage that already happened (offline buffer, fail-open, manual open).
    pub offline: bool,
}

/// A plate read at a gate, as the statements of the gate pipeline need it (the entries' plate
/// facts in `registry`, the exits' prior answers and open stays here).
pub struct PlateRead<'a> {
    pub compound_id: Uuid,
    pub lot_id: Uuid,
    pub gate_id: Uuid,
    pub plate: &'a str,
    pub device_event_id: &'a str,
    /// The read's local date in the compound's zone (permits run by local dates).
    pub local_date: NaiveDate,
    pub at: DateTime<Utc>,
    /// How early a booked plate counts as due.
    pub early_arrival_min: i32,
    /// The gate's duplicate window; 0 turns the same-plate replay off.
    pub duplicate_window_s: u32,
}

/// What an exit read finds, in one statement for a whole batch: the answer the read already
/// got (see [`prior_response`]) and the plate's open stay in the lot.
pub struct ExitRead {
    pub prior_response: Option<Json<GateDecision>>,
    pub session: Option<Session>,
}

/// [`ExitRead`]s of `reads`, in their order.
pub async fn exit_reads(
    db: &mut PgConnection,
    reads: &[PlateRead<'_>],
) -> sqlx::Result<Vec<ExitRead>> {
    static SQL: LazyLock<String> = LazyLock::new(|| {
        format!(
            "select r.i, ({prior}) as prior_response, s.*
               from unnest($1::int4[], $2::uuid[], $3::text[], $4::text[], $5::timestamptz[],
                           $6::float8[], $7::uuid[])
                    as r(i, gate_id, device_event_id, plate, at, window_s, lot_id)
               left join lateral (
                 select {SESSION_COLUMNS} from sessions
                  where lot_id = r.lot_id and plate = r.plate and status = 'open'
                  -- (one at most, by the unique index; the limit keeps the planner from
                  -- hash-joining the batch against every open stay)
                  limit 1) s on true
              order by r.i",
            prior = prior_response_sql([
                "r.gate_id",
                "r.device_event_id",
                "r.plate",
                "r.at",
                "r.window_s"
            ]),
        )
    });
    if reads.is_empty() {
        return Ok(Vec::new());
    }
    let rows = sqlx::query(&SQL)
        .bind((0..).take(reads.len()).collect::<Vec<i32>>())
        .bind(reads.iter().map(|r| r.gate_id).collect::<Vec<_>>())
        .bind(reads.iter().map(|r| r.device_event_id).collect::<Vec<_>>())
        .bind(reads.iter().map(|r| r.plate).collect::<Vec<_>>())
        .bind(reads.iter().map(|r| r.at).collect::<Vec<_>>())
        .bind(
            reads
                .iter()
                .map(|r| f64::from(r.duplicate_window_s))
                .collect::<Vec<_>>(),
        )
        .bind(reads.iter().map(|r| r.lot_id).collect::<Vec<_>>())
        .fetch_all(db)
        .await?;
    rows.iter()
        .map(|row| {
            let open: Option<Uuid> = row.try_get("id")?;
            Ok(ExitRead {
                prior_response: row.try_get("prior_response")?,
                session: open.map(|_| Session::from_row(row)).transpose()?,
            })
        })
        .collect()
}

/// The writes of gate decisions — one read's or a batch's — as columns: stays opened, stays
/// billed (and closed), gate events. [`write_decisions`] stores them in one statement.
#[derive(Default)]
pub struct DecisionWrites {
    stays: StayColumns,
    bills: BillColumns,
    events: EventColumns,
}

#[derive(Default)]
struct StayColumns {
    id: Vec<Uuid>,
    tenant_id: Vec<Uuid>,
    compound_id: Vec<Uuid>,
    lot_id: Vec<Uuid>,
    plate: Vec<String>,
    vehicle_class: Vec<&'static str>,
    kind: Vec<&'static str>,
    pool: Vec<&'static str>,
    origin: Vec<&'static str>,
    entered_at: Vec<Option<DateTime<Utc>>>,
    entry_gate_id: Vec<Option<Uuid>>,
    tariff_version_id: Vec<Option<Uuid>>,
    space_id: Vec<Option<Uuid>>,
}

#[derive(Default)]
struct BillColumns {
    id: Vec<Uuid>,
    fee: Vec<Decimal>,
    bill: Vec<Json<Bill>>,
    exited_at: Vec<Option<DateTime<Utc>>>,
    exit_gate_id: Vec<Option<Uuid>>,
}

#[derive(Default)]
struct EventColumns {
    id: Vec<Uuid>,
    gate_id: Vec<Uuid>,
    device_event_id: Vec<String>,
    plate: Vec<String>,
    direction: Vec<String>,
    captured_at: Vec<DateTime<Utc>>,
    session_id: Vec<Option<Uuid>>,
    action: Vec<String>,
    reason: Vec<String>,
    response: Vec<Json<GateDecision>>,
    source: Vec<String>,
    offline: Vec<bool>,
}

impl DecisionWrites {
    /// Nothing to write: every read was answered from a stored answer.
    pub fn is_empty(&self) -> bool {
        self.stays.id.is_empty() && self.bills.id.is_empty() && self.events.id.is_empty()
    }

    /// A stay to open.
    pub fn stay(&mut self, s: &NewSession<'_>) {
        let c = &mut self.stays;
        c.id.push(s.id);
        c.tenant_id.push(s.tenant_id);
        c.compound_id.push(s.compound_id);
        c.lot_id.push(s.lot_id);
        c.plate.push(s.plate.to_owned());
        c.vehicle_class.push(s.vehicle_class.as_str());
        c.kind.push(s.kind.as_str());
        c.pool.push(s.pool.as_str());
        c.origin.push(s.origin.as_str());
        c.entered_at.push(s.entered_at);
        c.entry_gate_id.push(s.entry_gate_id);
        c.tariff_version_id.push(s.tariff_version_id);
        c.space_id.push(s.space_id);
    }

    /// A stay's bill, its fee the bill's total; with `exit` the stay is closed too.
    pub fn bill(&mut self, id: Uuid, bill: &Bill, exit: Option<(DateTime<Utc>, Uuid)>) {
        let c = &mut self.bills;
        c.id.push(id);
        c.fee.push(bill.total.yuan());
        c.bill.push(Json(bill.clone()));
        c.exited_at.push(exit.map(|(at, _)| at));
        c.exit_gate_id.push(exit.map(|(_, gate)| gate));
    }

    /// A gate event with its answer.
    pub fn event(&mut self, e: &NewGateEvent<'_>) {
        let (c, answer) = (&mut self.events, e.response);
        c.id.push(answer.event_id);
        c.gate_id.push(answer.gate_id);
        c.device_event_id.push(e.device_event_id.to_owned());
        c.plate.push(answer.plate.clone());
        c.direction.push(answer.direction.as_str().to_owned());
        c.captured_at.push(e.captured_at);
        c.session_id.push(answer.session_id);
        c.action.push(answer.action.as_str().to_owned());
        c.reason.push(answer.reason.as_str().to_owned());
        c.response.push(Json(answer.clone()));
        c.source.push(e.source.to_owned());
        c.offline.push(e.offline);
    }
}

/// Stores decisions in one statement: the stays, then the bills, then the events (which may
/// name the stays). The bills cannot see stays opened by the same call: bill a new stay in a
/// call of its own.
pub async fn write_decisions(db: &mut PgConnection, w: &DecisionWrites) -> sqlx::Result<()> {
    const SQL: &str = "with stays as (
           insert into sessions (id, tenant_id, compound_id, lot_id, plate, vehicle_class, kind, pool,
                                 origin, entered_at, entry_gate_id, tariff_version_id, space_id, status)
           select *, 'open' from unnest($1::uuid[], $2::uuid[], $3::uuid[], $4::uuid[], $5::text[],
                                        $6::text[], $7::text[], $8::text[], $9::text[],
                                        $10::timestamptz[], $11::uuid[], $12::uuid[], $13::uuid[])),
         billed as (
           update sessions s set fee = b.fee, bill = b.bill, updated_at = now(),
                  status = case when b.exited_at is null then s.status else 'closed' end,
                  exited_at = coalesce(b.exited_at, s.exited_at),
                  exit_gate_id = coalesce(b.exit_gate_id, s.exit_gate_id)
             from unnest($14::uuid[], $15::numeric[], $16::jsonb[], $17::timestamptz[], $18::uuid[])
                  as b(id, fee, bill, exited_at, exit_gate_id)
            where s.id = b.id)
         insert into gate_events (id, gate_id, device_event_id, plate, direction, captured_at,
                                  session_id, action, reason, response, source, offline)
         select * from unnest($19::uuid[], $20::uuid[], $21::text[], $22::text[], $23::text[],
                              $24::timestamptz[], $25::uuid[], $26::text[], $27::text[],
                              $28::jsonb[], $29::text[], $30::bool[])";
    if w.is_empty() {
        return Ok(());
    }
    let (s, b, e) = (&w.stays, &w.bills, &w.events);
    sqlx::query(SQL)
        // Planned afresh at every execution, for the table as it is now: the bills join their
        // batch to `sessions`, and a pooled connection's cached plan, made while the table was
        // small, hash-joined against a sequential scan of every stay and kept doing so as the
        // table grew (load-tests/README.md, "A plan made for an empty table"). One more round
        // trip and a plan of ~0.2 ms per batch; the gate core's maximum rose ×1.5.
        .persistent(false)
        .bind(&s.id)
        .bind(&s.tenant_id)
        .bind(&s.compound_id)
        .bind(&s.lot_id)
        .bind(&s.plate)
        .bind(&s.vehicle_class)
        .bind(&s.kind)
        .bind(&s.pool)
        .bind(&s.origin)
        .bind(&s.entered_at)
        .bind(&s.entry_gate_id)
        .bind(&s.tariff_version_id)
        .bind(&s.space_id)
        .bind(&b.id)
        .bind(&b.fee)
        .bind(&b.bill)
        .bind(&b.exited_at)
        .bind(&b.exit_gate_id)
        .bind(&e.id)
        .bind(&e.gate_id)
        .bind(&e.device_event_id)
        .bind(&e.plate)
        .bind(&e.direction)
        .bind(&e.captured_at)
        .bind(&e.session_id)
        .bind(&e.action)
        .bind(&e.reason)
        .bind(&e.response)
        .bind(&e.source)
        .bind(&e.offline)
        .execute(db)
        .await
        .map(drop)
}

pub struct NewAnomaly<'a> {
    pub tenant_id: Uuid,
    pub lot_id: Uuid,
    pub session_id: Option<Uuid>,
    pub gate_id: Option<Uuid>,
    pub kind: &'a str,
    pub plate: &'a str,
    pub detail: String,
}

pub async fn insert_anomaly(db: impl PgExecutor<'_>, a: &NewAnomaly<'_>) -> sqlx::Result<()> {
    sqlx::query(
        "insert into anomalies (id, tenant_id, lot_id, session_id, gate_id, kind, plate, detail)
         values ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(Uuid::new_v4())
    .bind(a.tenant_id)
    .bind(a.lot_id)
    .bind(a.session_id)
    .bind(a.gate_id)
    .bind(a.kind)
    .bind(a.plate)
    .bind(&a.detail)
    .execute(db)
    .await
    .map(drop)
}

#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct Anomaly {
    pub id: Uuid,
    pub session_id: Option<Uuid>,
    pub gate_id: Option<Uuid>,
    pub kind: String,
    pub plate: String,
    pub detail: String,
    pub created_at: DateTime<Utc>,
    pub resolved_at: Option<DateTime<Utc>>,
    pub resolved_note: Option<String>,
}

/// The lot's anomalies, newest first: all, only open (`Some(true)`) or only resolved.
pub async fn anomalies(
    db: impl PgExecutor<'_>,
    tenant_id: Uuid,
    lot_id: Uuid,
    open: Option<bool>,
) -> sqlx::Result<Vec<Anomaly>> {
    sqlx::query_as(
        "select id, session_id, gate_id, kind, plate, detail, created_at, resolved_at, resolved_note
           from anomalies
          where tenant_id = $1 and lot_id = $2
            and ($4::boolean is null or (resolved_at is null) = $4)
          order by created_at desc limit $3",
    )
    .bind(tenant_id)
    .bind(lot_id)
    .bind(LIST_ROWS_MAX)
    .bind(open)
    .fetch_all(db)
    .await
}

/// Plates and pools of the cars inside a lot according to Postgres (sessions opened by an
/// entry read; a no-entry-record session never took a place).
pub async fn inside(db: impl PgExecutor<'_>, lot_id: Uuid) -> sqlx::Result<Vec<(String, String)>> {
    sqlx::query_as(
        "select plate, pool from sessions where lot_id = $1 and status = 'open' and origin = 'entry' order by plate",
    )
    .bind(lot_id)
    .fetch_all(db)
    .await
}

/// Cars inside every lot, per pool: `(lot, pool, count)` — what Redis should hold, in one
/// statement over the open sessions' partial index.
pub async fn inside_counts(db: impl PgExecutor<'_>) -> sqlx::Result<Vec<(Uuid, String, i64)>> {
    sqlx::query_as(
        "select lot_id, pool, count(*) from sessions where status = 'open' and origin = 'entry'
         group by lot_id, pool",
    )
    .fetch_all(db)
    .await
}

pub async fn sessions(
    db: impl PgExecutor<'_>,
    tenant_id: Uuid,
    lot_id: Uuid,
    status: Option<&str>,
) -> sqlx::Result<Vec<Session>> {
    sqlx::query_as(&format!(
        "select {SESSION_COLUMNS} from sessions
          where tenant_id = $1 and lot_id = $2 and ($3::text is null or status = $3)
          order by created_at desc limit $4"
    ))
    .bind(tenant_id)
    .bind(lot_id)
    .bind(status)
    .bind(LIST_ROWS_MAX)
    .fetch_all(db)
    .await
}

pub async fn session(
    db: impl PgExecutor<'_>,
    tenant_id: Uuid,
    id: Uuid,
) -> sqlx::Result<Option<Session>> {
    sqlx::query_as(&format!(
        "select {SESSION_COLUMNS} from sessions where tenant_id = $1 and id = $2"
    ))
    .bind(tenant_id)
    .bind(id)
    .fetch_optional(db)
    .await
}

pub async fn session_for_update(
    db: impl PgExecutor<'_>,
    tenant_id: Uuid,
    id: Uuid,
) -> sqlx::Result<Option<Session>> {
    sqlx::query_as(&format!(
        "select {SESSION_COLUMNS} from sessions where tenant_id = $1 and id = $2 for update"
    ))
    .bind(tenant_id)
    .bind(id)
    .fetch_optional(db)
    .await
}
