//! Device storage: barrier commands, manual opens, silent devices, resolving anomalies.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::PgExecutor;
use uuid::Uuid;

/// Queues an `open_barrier` command for a gate; `pending` until delivered.
pub async fn insert_open_command(
    db: impl PgExecutor<'_>,
    gate_id: Uuid,
    cause: &str,
) -> sqlx::Result<Uuid> {
    sqlx::query_scalar(
        "insert into device_commands (id, gate_id, command, cause, status)
         values ($1, $2, 'open_barrier', $3, 'pending') returning id",
    )
    .bind(Uuid::new_v4())
    .bind(gate_id)
    .bind(cause)
    .fetch_one(db)
    .await
}

/// Presses within this long of an open the barrier was given are the same open: a staff
/// member pressing again while the barrier rises, or a comet camera polling again at once,
/// never opens it twice.
pub const PRESS_MERGE_WINDOW_S: f64 = 5.0;

/// Queues a staff member's open for a gate pressed at `now` (the clock's), to expire after
/// `ttl`. A press while an earlier one still waits, or within [`PRESS_MERGE_WINDOW_S`] of one
/// delivered, merges into it (one open, however often the button was pressed); presses racing
/// each other are serialised per gate. Returns the command and whether it is new.
pub async fn queue_manual_open(
    db: &sqlx::PgPool,
    gate_id: Uuid,
    ttl: std::time::Duration,
    now: DateTime<Utc>,
) -> sqlx::Result<(Uuid, bool)> {
    let mut tx = db.begin().await?;
    sqlx::query("select pg_advisory_xact_lock(hashtextextended('manual_open/' || $1::text, 0))")
        .bind(gate_id)
        .execute(&mut *tx)
        .await?;
    let waiting: Option<Uuid> = sqlx::query_scalar(
        "select id from device_commands
          where gate_id = $1 and cause = 'manual_open'
            and ((status = 'pending' and expires_at > $3)
              or (status = 'done' and done_at > $3 - make_interval(secs => $2)))
          order by created_at desc limit 1",
    )
    .bind(gate_id)
    .bind(PRESS_MERGE_WINDOW_S)
    .bind(now)
    .fetch_optional(&mut *tx)
    .await?;
    let queued = match waiting {
        Some(id) => (id, false),
        None => {
            let id = sqlx::query_scalar(
                "insert into device_commands (id, gate_id, command, cause, status, expires_at)
                 values ($1, $2, 'open_barrier', 'manual_open', 'pending',
                         $4 + make_interval(secs => $3))
                 returning id",
            )
            .bind(Uuid::new_v4())
            .bind(gate_id)
            .bind(ttl.as_secs_f64())
            .bind(now)
            .fetch_one(&mut *tx)
            .await?;
            (id, true)
        }
    };
    tx.commit().await?;
    Ok(queued)
}

/// Marks every open command past its time at `now` `expired` (a barrier never opens minutes
/// after the press); returns how many.
pub async fn expire_opens(db: impl PgExecutor<'_>, now: DateTime<Utc>) -> sqlx::Result<u64> {
    sqlx::query(
        "update device_commands set status = 'expired', done_at = $1
          where status = 'pending' and expires_at <= $1",
    )
    .bind(now)
    .execute(db)
    .await
    .map(|r| r.rows_affected())
}

/// A passage recorded by a manual open whose barrier command expired undelivered.
#[derive(Debug, sqlx::FromRow)]
pub struct Undelivered {
    pub manual_open_id: Uuid,
    pub tenant_id: Uuid,
    pub gate_id: Uuid,
    pub lot_id: Uuid,
    pub session_id: Uuid,
    pub plate: String,
    pub direction: String,
    pub captured_at: DateTime<Utc>,
}

/// Passages of manual opens that never reached their barrier, not yet undone.
pub async fn undelivered_passages(db: impl PgExecutor<'_>) -> sqlx::Result<Vec<Undelivered>> {
    sqlx::query_as(
        "select m.id as manual_open_id, m.tenant_id, m.gate_id, g.lot_id, m.session_id,
                e.plate, e.direction, e.captured_at
           from device_commands c
           join manual_opens m on m.command_id = c.id
           join gates g on g.id = m.gate_id
           join gate_events e on e.gate_id = m.gate_id and e.device_event_id = 'manual:' || m.id
          where c.status = 'expired' and m.session_id is not null
            and not exists (select 1 from manual_open_undone u where u.manual_open_id = m.id)
          order by m.created_at limit 100",
    )
    .fetch_all(db)
    .await
}

/// Undoes one passage, once: an entry's stay still open as that entry left it is closed
/// without a fee; an exit's stay still closed as that exit left it is opened again (unless
/// the car has another open stay). `None` if it was undone already (another process).
pub async fn undo_passage(
    tx: &mut sqlx::PgConnection,
    passage: &Undelivered,
) -> sqlx::Result<Option<&'static str>> {
    let changed = if passage.direction == "entry" {
        sqlx::query(
            "update sessions set status = 'closed', exited_at = entered_at, fee = 0,
                    anomaly = 'manual_open_not_delivered', updated_at = now()
              where id = $1 and status = 'open' and entry_gate_id = $2 and entered_at = $3
                and paid = 0",
        )
    } else {
        sqlx::query(
            "update sessions s set status = 'open', exited_at = null, exit_gate_id = null,
                    anomaly = 'manual_open_not_delivered', updated_at = now()
              where id = $1 and status = 'closed' and exit_gate_id = $2 and exited_at = $3
                and not exists (select 1 from sessions o
                                 where o.lot_id = s.lot_id and o.plate = s.plate
                                   and o.status = 'open')",
        )
    }
    .bind(passage.session_id)
    .bind(passage.gate_id)
    .bind(passage.captured_at)
    .execute(&mut *tx)
    .await?
    .rows_affected()
        > 0;
    let outcome = match (changed, passage.direction.as_str()) {
        (false, _) => "unchanged",
        (true, "entry") => "stay_voided",
        (true, _) => "stay_reopened",
    };
    let inserted = sqlx::query(
        "insert into manual_open_undone (manual_open_id, session_id, outcome) values ($1, $2, $3)
         on conflict do nothing",
    )
    .bind(passage.manual_open_id)
    .bind(passage.session_id)
    .bind(outcome)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    Ok((inserted > 0).then_some(outcome))
}

/// Marks the oldest pending open command of the gate delivered at `now` (it goes out in the
/// heartbeat reply being written); true if there was one. Commands past their time are marked
/// `expired` instead: a barrier never opens minutes after the press.
pub async fn take_pending_open(
    db: &sqlx::PgPool,
    gate_id: Uuid,
    now: DateTime<Utc>,
) -> sqlx::Result<bool> {
    sqlx::query(
        "update device_commands set status = 'expired', done_at = $2
          where gate_id = $1 and status = 'pending' and expires_at <= $2",
    )
    .bind(gate_id)
    .bind(now)
    .execute(db)
    .await?;
    // The passages of expired opens are undone by the lane worker (`lanes::undo_undelivered`).
    sqlx::query_scalar::<_, Uuid>(
        "update device_commands set status = 'done', attempts = attempts + 1, done_at = $2
          where id = (select id from device_commands
                       where gate_id = $1 and status = 'pending' and command = 'open_barrier'
                         and (expires_at is null or expires_at > $2)
                       order by created_at limit 1 for update skip locked)
         returning id",
    )
    .bind(gate_id)
    .bind(now)
    .fetch_optional(db)
    .await
    .map(|id| id.is_some())
}

/// Stores the outcome of a device call, ended at `now` (a press within the merge window of it
/// is the same open).
pub async fn command_done(
    db: impl PgExecutor<'_>,
    id: Uuid,
    attempts: u32,
    error: Option<&str>,
    now: DateTime<Utc>,
) -> sqlx::Result<()> {
    sqlx::query(
        "update device_commands set status = case when $3::text is null then 'done' else 'failed' end,
                attempts = $2, last_error = $3, done_at = $4
          where id = $1",
    )
    .bind(id)
    .bind(i32::try_from(attempts).unwrap_or(i32::MAX))
    .bind(error)
    .bind(now)
    .execute(db)
    .await
    .map(drop)
}

#[derive(Debug, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct DeviceCommand {
    pub id: Uuid,
    pub command: String,
    pub cause: String,
    pub status: String,
    pub attempts: i32,
    pub last_error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub done_at: Option<DateTime<Utc>>,
}

pub async fn commands(
    db: impl PgExecutor<'_>,
    tenant_id: Uuid,
    gate_id: Uuid,
) -> sqlx::Result<Vec<DeviceCommand>> {
    sqlx::query_as(
        "select c.id, c.command, c.cause, c.status, c.attempts, c.last_error, c.created_at, c.done_at
           from device_commands c join gates g on g.id = c.gate_id
          where g.tenant_id = $1 and c.gate_id = $2 order by c.created_at desc limit 200",
    )
    .bind(tenant_id)
    .bind(gate_id)
    .fetch_all(db)
    .await
}

/// Lists a `device_silent` anomaly for every camera silent at `now` past its heartbeat window
/// that has no open one yet. One statement, so two replicas cannot both list the same silence.
pub async fn flag_silent_devices(db: impl PgExecutor<'_>, now: DateTime<Utc>) -> sqlx::Result<u64> {
    sqlx::query(
        "insert into anomalies (id, tenant_id, lot_id, session_id, gate_id, kind, plate, detail)
         select gen_random_uuid(), g.tenant_id, g.lot_id, null, g.id, 'device_silent', '',
                'no heartbeat or event since ' || coalesce(to_char(g.last_seen_at at time zone 'UTC',
                'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), 'it was set up')
           from gates g
          where g.vendor is not null
            and greatest(g.last_seen_at, coalesce(g.device_configured_at, g.created_at))
                < $1 - make_interval(secs => g.heartbeat_window_s)
            and not exists (select 1 from anomalies a
                             where a.gate_id = g.id and a.kind = 'device_silent' and a.resolved_at is null)",
    )
    .bind(now)
    .execute(db)
    .await
    .map(|r| r.rows_affected())
}

/// Marks a device heard from at `now` (the clock's: its silence is judged against it), and
/// resolves its silence anomaly if it had one: one statement.
pub async fn heard_from(
    db: impl PgExecutor<'_>,
    gate_id: Uuid,
    now: DateTime<Utc>,
) -> sqlx::Result<()> {
    sqlx::query(
        "with touched as (update gates set last_seen_at = $2 where id = $1 returning id)
         update anomalies set resolved_at = now(), resolved_note = 'device heard from again'
          where gate_id = (select id from touched) and kind = 'device_silent' and resolved_at is null",
    )
    .bind(gate_id)
    .bind(now)
    .execute(db)
    .await
    .map(drop)
}

pub struct NewManualOpen<'a> {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub gate_id: Uuid,
    pub staff_label: &'a str,
    pub reason: &'a str,
    pub note: &'a str,
    pub plate: Option<&'a str>,
    pub session_id: Option<Uuid>,
    pub delivery: &'a str,
    pub command_id: Option<Uuid>,
}

pub async fn insert_manual_open(
    db: impl PgExecutor<'_>,
    m: &NewManualOpen<'_>,
) -> sqlx::Result<ManualOpen> {
    sqlx::query_as(&format!(
        "insert into manual_opens (id, tenant_id, gate_id, staff_label, reason, note, plate, session_id, delivery, command_id)
         values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) returning {MANUAL_OPEN_COLUMNS}"
    ))
    .bind(m.id)
    .bind(m.tenant_id)
    .bind(m.gate_id)
    .bind(m.staff_label)
    .bind(m.reason)
    .bind(m.note)
    .bind(m.plate)
    .bind(m.session_id)
    .bind(m.delivery)
    .bind(m.command_id)
    .fetch_one(db)
    .await
}

#[derive(Debug, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct ManualOpen {
    pub id: Uuid,
    pub gate_id: Uuid,
    pub staff_label: String,
    pub reason: String,
    pub note: String,
    pub plate: Option<String>,
    pub session_id: Option<Uuid>,
    pub delivery: String,
    pub created_at: DateTime<Utc>,
}

const MANUAL_OPEN_COLUMNS: &str =
    "id, gate_id, staff_label, reason, note, plate, session_id, delivery, created_at";

pub async fn manual_opens(
    db: impl PgExecutor<'_>,
    tenant_id: Uuid,
    lot_id: Uuid,
) -> sqlx::Result<Vec<ManualOpen>> {
    sqlx::query_as(&format!(
        "select {MANUAL_OPEN_COLUMNS} from manual_opens
          where tenant_id = $1 and gate_id in (select id from gates where lot_id = $2)
          order by created_at desc limit 500"
    ))
    .bind(tenant_id)
    .bind(lot_id)
    .fetch_all(db)
    .await
}

/// Resolves an open anomaly of the tenant; false if there is none by that id (or it was
/// resolved already).
pub async fn resolve_anomaly(
    db: impl PgExecutor<'_>,
    tenant_id: Uuid,
    id: Uuid,
    note: &str,
) -> sqlx::Result<bool> {
    sqlx::query(
        "update anomalies set resolved_at = now(), resolved_note = $3
          where tenant_id = $1 and id = $2 and resolved_at is null",
    )
    .bind(tenant_id)
    .bind(id)
    .bind(note)
    .execute(db)
    .await
    .map(|r| r.rows_affected() == 1)
}
