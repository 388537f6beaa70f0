//! Lanes as devices: when each was last heard from, what a lane does when the backend cannot
//! decide in time (its fail-open or fail-closed policy), the passages let through on
//! fail-open (written to the `journal` before the lane opens, then recorded so the stay is
//! still billed), and barrier commands for
//! cameras (a Hikvision call, or a command handed over in a Vzenith or Dahua heartbeat reply).

use std::sync::Arc;
use std::time::{Duration, Instant};

use actix_web::web;
use parkshare_domain::decision::{Decision, Reason};
use parkshare_domain::money::Money;
use parkshare_domain::plate::Plate;
use parkshare_domain::vehicle::VehicleClass;
use uuid::Uuid;

use super::answer::{self, Waiting};
use super::decide::decide;
use crate::error::ApiError;
use crate::state::journal::Passage;
use crate::state::lanes::Event;
pub use crate::state::lanes::Lanes;
use crate::state::AppState;
use crate::store::answers::GateDecision;
use crate::store::registry::{self, GateContext};
use crate::store::sessions::{insert_anomaly, NewAnomaly};

/// Heartbeats and traffic write a device's `last_seen_at` at most this often per process (a
/// camera in comet mode, or a busy lane, would otherwise write it many times a second). Below
/// the shortest heartbeat window (10 s), so a device heard from is never shown silent.
const TOUCH_EVERY: Duration = Duration::from_secs(5);
/// A Vzenith heartbeat arriving this soon after the previous one was answered comes from a
/// camera in comet mode, which sends the next heartbeat as soon as it has a reply (HTTP push
/// protocol §2.5.2); in normal mode heartbeats are 5 or 30 s apart (§2.5.1).
const COMET_GAP: Duration = Duration::from_millis(1_000);
/// How long a comet heartbeat is held before it is answered: the documented heartbeat
/// interval (§2.5.1, 5 s with offline checking), so a camera polls once per interval instead
/// of hundreds of times a second. A manual open queued meanwhile is answered at once.
pub const COMET_HOLD: Duration = Duration::from_secs(5);
/// How often a held heartbeat looks for a queued open (also queued by other replicas).
const COMET_POLL: Duration = Duration::from_millis(250);
/// Attempts at a device call: the car is waiting at the barrier, so only a quick retry.
const DEVICE_CALL_ATTEMPTS: u32 = 2;

/// How long a lane out of budget still waits for a commit already on its way. A commit is one
/// round trip; only a Postgres that hangs mid-commit takes longer, and then the lane answers
/// 503 without knowing (logged; the retry is told `duplicate` if it committed).
const COMMIT_WAIT_MAX: Duration = Duration::from_secs(10);

/// Whether this gate's `last_seen_at` is due for a write (at most every [`TOUCH_EVERY`]).
fn touch_due(state: &AppState, gate_id: Uuid) -> bool {
    let Ok(mut seen) = state.lanes.last_touch.lock() else {
        return true;
    };
    let now = Instant::now();
    let due = seen
        .get(&gate_id)
        .is_none_or(|at| now.duration_since(*at) >= TOUCH_EVERY);
    if due {
        seen.insert(gate_id, now);
    }
    due
}

async fn touch(state: &AppState, gate_id: Uuid) {
    if let Err(e) = crate::store::devices::heard_from(&state.db, gate_id, state.clock.now()).await {
        tracing::warn!(%gate_id, error = %e, "could not record that the device was heard from");
    }
}

/// A heartbeat: written at most every [`TOUCH_EVERY`]; the device is online once this
/// returns (a heartbeat not written follows one written less than that ago).
pub async fn heartbeat(state: &AppState, gate_id: Uuid) {
    if touch_due(state, gate_id) {
        touch(state, gate_id).await;
    }
}

/// The barrier command for a heartbeat reply (Vzenith): a queued open if there is one. A
/// camera in comet mode is held up to [`COMET_HOLD`], answered as soon as an open is queued.
pub async fn wait_for_open(state: &AppState, gate_id: Uuid) -> sqlx::Result<bool> {
    let comet = state
        .lanes
        .heartbeat_answered
        .lock()
        .ok()
        .and_then(|answered| answered.get(&gate_id).copied())
        .is_some_and(|at| at.elapsed() < COMET_GAP);
    let deadline = Instant::now() + if comet { COMET_HOLD } else { Duration::ZERO };
    let open = loop {
        let queued = state.lanes.opens_queued.notified();
        if crate::store::devices::take_pending_open(&state.db, gate_id, state.clock.now()).await? {
            break true;
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break false;
        }
        let _ = tokio::time::timeout(left.min(COMET_POLL), queued).await;
    };
    if let Ok(mut answered) = state.lanes.heartbeat_answered.lock() {
        answered.insert(gate_id, Instant::now());
    }
    Ok(open)
}

/// Wakes the heartbeats held in this process: an open was queued.
pub fn open_queued(state: &AppState) {
    state.lanes.opens_queued.notify_waiters();
}

/// Traffic from a device also says it is alive; recorded in the background, off the
/// decision's path.
pub fn traffic(state: &web::Data<AppState>, gate_id: Uuid) {
    if touch_due(state, gate_id) {
        let state = state.clone();
        tokio::spawn(async move { touch(&state, gate_id).await });
    }
}

/// Decides within the lane's budget. When the backend cannot (too slow, Postgres or Redis
/// down), a fail-open lane opens once the passage is in the journal; a fail-closed lane
/// gets the failure (503, or 500 for a fault of ours). The decision itself is not cancelled when the budget runs
/// out: it finishes in the background, so a half-done decision never leaves Redis behind; on a
/// fail-closed lane it then rolls back instead of committing, since the lane said 503 ("nothing
/// was decided"), and a commit already under way is waited for instead (`super::answer`).
pub async fn decide_in_time(
    state: &web::Data<AppState>,
    gate: &Arc<GateContext>,
    event: Event,
) -> Result<GateDecision, ApiError> {
    // Emergency vehicles pass first (rule 1): a plate marked as one (应急, 警) is let through
    // on any lane when the backend cannot decide, as on a fail-open lane — its mark needs no
    // database. (One exempt only by the registry needs Postgres to be known.)
    let opens_anyway = gate.fail_open || event.plate.mark().is_some();
    // Only a passage let through this way ever waits for its late decision.
    let running =
        opens_anyway.then(|| Running::start(state.clone(), gate.gate_id, &event.device_event_id));
    // A lane that answers 503 when out of budget keeps its late decision from committing.
    let fails_closed = !opens_anyway || event.offline;
    let waiting = fails_closed.then(Waiting::new);
    let mut task = {
        let (state, gate) = (state.clone(), gate.clone());
        let event = event.clone();
        let waiting = waiting.clone();
        tokio::spawn(async move {
            // Dropped when the decision ends, however it ends (a panic included).
            let _running = running;
            match waiting {
                Some(waiting) => answer::scope(waiting, decide(&state, &gate, &event)).await,
                None => decide(&state, &gate, &event).await,
            }
        })
    };
    let outcome = match tokio::time::timeout(state.lanes.budget, &mut task).await {
        Ok(outcome) => Some(outcome),
        // Out of budget, but a commit is on its way: the answer waits for its outcome (one
        // round trip), so that a 503 is never given for a decision that stands.
        Err(_) if waiting.as_ref().is_some_and(|w| !w.give_up()) => {
            tokio::time::timeout(COMMIT_WAIT_MAX, task).await.ok()
        }
        Err(_) => None,
    };
    let failure = match outcome {
        Some(Ok(Ok(response))) => return Ok(response),
        Some(Ok(Err(e @ (ApiError::Unavailable(_) | ApiError::Internal(_))))) => e,
        Some(Ok(Err(refusal))) => return Err(refusal),
        Some(Err(join)) => ApiError::Internal(anyhow::anyhow!("decision task failed: {join}")),
        None => ApiError::Unavailable(anyhow::anyhow!(
            "no decision within {} ms",
            state.lanes.budget.as_millis()
        )),
    };
    tracing::error!(gate_id = %gate.gate_id, error = ?failure, fail_open = opens_anyway, "backend could not decide in time");
    crate::metrics::decision(gate.direction.as_str(), "backend_unavailable");
    if fails_closed {
        // Fail closed: the barrier stays shut and the device hears why (503, or 500 for a
        // fault of ours; neither body says more).
        return Err(failure);
    }
    journal_fail_open(state, gate, &event).await;
    Ok(fail_open_answer(gate, &event))
}

/// A decision in progress, listed in [`Lanes`] until dropped.
struct Running {
    state: web::Data<AppState>,
    key: (Uuid, String),
}

impl Running {
    fn start(state: web::Data<AppState>, gate_id: Uuid, device_event_id: &str) -> Running {
        let key = (gate_id, device_event_id.to_owned());
        if let Ok(mut running) = state.lanes.in_flight.lock() {
            running.insert(key.clone());
        }
        Running { state, key }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Ok(mut running) = self.state.lanes.in_flight.lock() {
            running.remove(&self.key);
        }
    }
}

/// The answer of a lane that opened on its fail-open policy: not stored (the passage is
/// recorded later, from the journal).
fn fail_open_answer(gate: &GateContext, event: &Event) -> GateDecision {
    let decision = Decision::new(Reason::FailOpen, gate.direction, Money::ZERO);
    GateDecision {
        event_id: Uuid::new_v4(),
        gate_id: gate.gate_id,
        direction: gate.direction,
        plate: event.plate.to_string(),
        action: decision.action,
        reason: decision.reason,
        display: decision.display,
        session_id: None,
        amount_due: decision.amount_due,
        bill: None,
        filing_no: None,
        duplicate: false,
    }
}

/// Writes the passage to the journal before the lane is told to open.
async fn journal_fail_open(state: &AppState, gate: &GateContext, event: &Event) {
    let passage = Passage {
        gate_id: gate.gate_id,
        plate: event.plate.to_string(),
        class: event.class.map(|c| c.as_str().to_owned()),
        captured_at: event.captured_at,
        device_event_id: event.device_event_id.clone(),
    };
    if let Err(e) = state.lanes.journal.append(&passage).await {
        // The barrier opens all the same (that is the lane's policy); the passage is kept in
        // memory until the journal takes it again.
        crate::metrics::backend_error("fail_open_journal");
        tracing::error!(gate_id = %gate.gate_id, error = %e, "fail-open passage kept in memory only: the journal cannot be written");
        if let Ok(mut kept) = state.lanes.unjournaled.lock() {
            kept.push(passage);
        }
    }
}

/// Records journaled fail-open passages (at start, then every `every`, so also as soon as
/// Postgres is back), undoes the passages of manual opens that expired undelivered, and
/// flags silent devices.
pub fn spawn_lane_worker(
    workers: &mut crate::workers::Workers,
    state: web::Data<AppState>,
    every: Duration,
) {
    workers.supervise("lanes", move |shutdown| {
        let state = state.clone();
        async move {
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            // A drain under way finishes: each passage it records is also taken off the
            // journal before the worker stops.
            while shutdown.until(tick.tick()).await.is_some() {
                drain_fail_open(&state).await;
                undo_undelivered(&state).await;
                if let Err(e) =
                    crate::store::devices::flag_silent_devices(&state.db, state.clock.now()).await
                {
                    tracing::warn!(error = %e, "could not check for silent devices");
                }
            }
        }
    });
}

/// Expires manual opens past their time and undoes the passage each recorded: the barrier
/// was never told, so the car did not pass. Each is listed for staff
/// (`manual_open_not_delivered`); the lot's Redis view is rebuilt from Postgres after.
pub async fn undo_undelivered(state: &AppState) {
    use crate::store::devices;
    let found = async {
        devices::expire_opens(&state.db, state.clock.now()).await?;
        devices::undelivered_passages(&state.db).await
    };
    let passages = match found.await {
        Ok(passages) => passages,
        Err(e) => {
            tracing::warn!(error = %e, "could not look for undelivered manual opens");
            return;
        }
    };
    let mut lots = std::collections::BTreeSet::new();
    for passage in passages {
        match undo_one(state, &passage).await {
            Ok(true) => {
                lots.insert(passage.lot_id);
            }
            Ok(false) => {}
            Err(e) => tracing::warn!(manual_open = %passage.manual_open_id, error = %e,
                "could not undo an undelivered manual open; will retry"),
        }
    }
    for lot_id in lots {
        if let Err(e) =
            crate::sync::rebuild_lot(state, lot_id, crate::occupancy::RebuildMode::Force).await
        {
            // The reconciler repairs it on its next pass.
            tracing::warn!(%lot_id, error = ?e, "occupancy not rebuilt after an undone manual open");
        }
    }
}

async fn undo_one(
    state: &AppState,
    passage: &crate::store::devices::Undelivered,
) -> sqlx::Result<bool> {
    use crate::store::sessions;
    let mut tx = state.db.begin().await?;
    sessions::lock_plate(&mut tx, passage.lot_id, &passage.plate).await?;
    let Some(outcome) = crate::store::devices::undo_passage(&mut tx, passage).await? else {
        return Ok(false);
    };
    let what = match outcome {
        "stay_voided" => "its stay is closed without a fee",
        "stay_reopened" => "its stay is open again",
        _ => "its stay had moved on and was left as it was",
    };
    sessions::insert_anomaly(
        &mut *tx,
        &sessions::NewAnomaly {
            tenant_id: passage.tenant_id,
            lot_id: passage.lot_id,
            session_id: Some(passage.session_id),
            gate_id: Some(passage.gate_id),
            kind: "manual_open_not_delivered",
            plate: &passage.plate,
            detail: format!(
                "a manual {} for this car expired before the camera took it: the barrier was \
                 never told, so the car did not pass; {what}",
                passage.direction
            ),
        },
    )
    .await?;
    tx.commit().await?;
    tracing::info!(manual_open = %passage.manual_open_id, outcome, "undelivered manual open undone");
    Ok(outcome != "unchanged")
}

async fn drain_fail_open(state: &AppState) {
    journal_kept(state).await;
    let pending = match state.lanes.journal.pending().await {
        Ok(pending) => pending,
        Err(e) => {
            tracing::error!(error = %e, "cannot read the fail-open journal");
            return;
        }
    };
    for pending in pending {
        // Its own late decision is still running here: recorded once it has finished.
        if waits_for_its_decision(state, &pending.passage) {
            continue;
        }
        if let Err(e) = record_fail_open(state, &pending.passage).await {
            tracing::warn!(error = ?e, "fail-open passage not recorded yet; will retry");
            return;
        }
        if let Err(e) = state.lanes.journal.done(pending).await {
            // Recorded: the next pass finds it a duplicate and tries again.
            tracing::error!(error = %e, "recorded fail-open passage left in the journal");
        }
    }
}

/// Moves into the journal what it could not take before (kept in memory), and what an
/// earlier version queued in Redis.
async fn journal_kept(state: &AppState) {
    let kept = match state.lanes.unjournaled.lock() {
        Ok(mut kept) => std::mem::take(&mut *kept),
        Err(_) => Vec::new(),
    };
    let mut left = Vec::new();
    for passage in kept {
        if state.lanes.journal.append(&passage).await.is_err() {
            left.push(passage);
        }
    }
    if !left.is_empty() {
        if let Ok(mut kept) = state.lanes.unjournaled.lock() {
            kept.append(&mut left);
        }
        return;
    }
    // Bounded: Redis away costs one short timeout a pass.
    for _ in 0..REDIS_QUEUE_PASS_MAX {
        let Ok(Some(text)) = state.occupancy.pop_fail_open().await else {
            return;
        };
        let Ok(passage) = serde_json::from_str::<Passage>(&text) else {
            tracing::error!("dropping an unreadable fail-open passage from Redis");
            continue;
        };
        if state.lanes.journal.append(&passage).await.is_err() {
            if let Ok(mut kept) = state.lanes.unjournaled.lock() {
                kept.push(passage);
            }
            return;
        }
    }
}

/// Passages taken from an earlier version's Redis queue in one pass.
const REDIS_QUEUE_PASS_MAX: usize = 1_000;

fn waits_for_its_decision(state: &AppState, passage: &Passage) -> bool {
    state
        .lanes
        .in_flight
        .lock()
        .is_ok_and(|running| running.contains(&(passage.gate_id, passage.device_event_id.clone())))
}

async fn record_fail_open(state: &AppState, passage: &Passage) -> Result<(), ApiError> {
    let Some(gate) = registry::gate_by_id(&state.db, passage.gate_id).await? else {
        return Ok(());
    };
    // The late decision opened too: the passage is already recorded as it happened.
    let late = crate::store::sessions::response_by_device_event(
        &state.db,
        gate.gate_id,
        &passage.device_event_id,
    )
    .await?;
    if let Some(answer) = late.filter(GateDecision::opens) {
        let session_id = answer.session_id;
        crate::store::sessions::insert_anomaly(
            &state.db,
            &crate::store::sessions::NewAnomaly {
                tenant_id: gate.tenant_id,
                lot_id: gate.lot_id,
                session_id,
                gate_id: Some(gate.gate_id),
                kind: "fail_open",
                plate: &passage.plate,
                detail: format!(
                    "the lane opened on its fail-open policy at {}; the late decision opened too",
                    passage.captured_at
                ),
            },
        )
        .await?;
        return Ok(());
    }
    let Ok(plate) = Plate::parse(&passage.plate) else {
        return Ok(());
    };
    let event = Event {
        plate,
        class: passage.class.as_deref().and_then(VehicleClass::parse),
        captured_at: passage.captured_at,
        // Its own id: the late decision may have been stored under the camera's id already.
        device_event_id: format!("{}#fail_open", passage.device_event_id),
        offline: true,
        source: "fail_open",
    };
    decide(state, &Arc::new(gate), &event).await.map(drop)
}

// ---- barrier commands ----------------------------------------------------------------------

/// How a barrier is told to open outside a decision reply.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    /// The backend calls the device (Hikvision ISAPI, Dahua `trafficSnap.cgi`).
    DeviceCall,
    /// The command waits for the camera's next heartbeat (Vzenith).
    NextHeartbeat,
    /// The lane's own controller acts on the API answer (JSON API devices).
    LaneController,
    /// Nothing outside a decision reply reaches this barrier: a camera that must be called,
    /// with no device URL or login stored.
    Unreachable,
}

impl Delivery {
    pub fn of(gate: &GateContext) -> Delivery {
        match (gate.vendor.as_deref(), gate.device.is_some()) {
            (Some("hikvision" | "dahua"), true) => Delivery::DeviceCall,
            (Some("hikvision" | "dahua"), false) => Delivery::Unreachable,
            (Some(_), _) => Delivery::NextHeartbeat,
            (None, _) => Delivery::LaneController,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Delivery::DeviceCall => "device_call",
            Delivery::NextHeartbeat => "next_heartbeat",
            Delivery::LaneController => "lane_controller",
            Delivery::Unreachable => "unreachable",
        }
    }
}

/// Calls the device to lift its barrier, in the background; the outcome is stored on the
/// command.
pub fn open_barrier(state: &web::Data<AppState>, gate: &GateContext, command_id: Uuid) {
    let Some(device) = gate.device.clone() else {
        return;
    };
    let (state, gate_id) = (state.clone(), gate.gate_id);
    let (tenant_id, lot_id) = (gate.tenant_id, gate.lot_id);
    let dahua = gate.vendor.as_deref() == Some("dahua");
    tokio::spawn(async move {
        use super::vendors::{dahua as dh, hikvision};
        let (mut last_error, mut attempts) = (String::new(), 0);
        for attempt in 1..=DEVICE_CALL_ATTEMPTS {
            attempts = attempt;
            let called = match dahua {
                true => dh::open_barrier(&state.outbound.devices, &device).await,
                false => hikvision::open_barrier(&state.outbound.devices, &device).await,
            };
            match called {
                Ok(()) => {
                    let now = state.clock.now();
                    let _ = crate::store::devices::command_done(
                        &state.db, command_id, attempt, None, now,
                    )
                    .await;
                    return;
                }
                // Asking again would not change where the name points.
                Err(e @ (hikvision::CallError::Refused(_) | hikvision::CallError::InvalidUrl)) => {
                    last_error = e.to_string();
                    break;
                }
                Err(e) => last_error = e.to_string(),
            }
        }
        tracing::error!(%gate_id, error = %last_error, "the device did not open its barrier");
        let now = state.clock.now();
        let _ = crate::store::devices::command_done(
            &state.db,
            command_id,
            attempts,
            Some(&last_error),
            now,
        )
        .await;
        // The barrier stays shut while the lane believes it opened: staff must know at once
        // (a changed camera password, a device gone from the network), not from a log line.
        let anomaly = crate::store::sessions::NewAnomaly {
            tenant_id,
            lot_id,
            session_id: None,
            gate_id: Some(gate_id),
            kind: "barrier_unreachable",
            plate: "",
            detail: format!(
                "the barrier was told to open {attempts} time(s) and did not: {last_error}; \
                 check the device's URL and login, and let the car through"
            ),
        };
        if let Err(e) = crate::store::sessions::insert_anomaly(&state.db, &anomaly).await {
            tracing::warn!(%gate_id, error = %e, "could not list a barrier that did not open");
        }
    });
}

/// What a read's capture time says is wrong with the camera.
pub enum ClockFault {
    /// Before [`CLOCK_FLOOR_YEAR`]: the clock was reset.
    Off,
    /// A live push older than this.
    StaleLiveRead(chrono::Duration),
}

/// A read as the clock check quotes it.
pub struct ClockRead<'a> {
    pub plate: &'a str,
    /// The device's own id for the read.
    pub record: &'a str,
    pub captured_at: chrono::DateTime<chrono::Utc>,
    pub offline: bool,
}

/// A read pushed as live but taken longer ago than `PARKSHARE_LIVE_READ_AGE_MAX_S`: a backlog
/// the camera does not mark as one, or a camera clock or time zone that is wrong. No car waits
/// at the barrier for it: it is recorded at its time, never opening, and listed for staff —
/// on every route (a camera's push, the JSON API).
pub fn stale_live_read(
    state: &AppState,
    offline: bool,
    captured_at: chrono::DateTime<chrono::Utc>,
) -> bool {
    !offline && captured_at < state.clock.now() - state.lanes.live_read_age_max
}

/// Lists a read whose capture time shows the camera's clock (or its upload) is off.
pub async fn flag_clock(
    state: &AppState,
    gate: &GateContext,
    read: &ClockRead<'_>,
    fault: ClockFault,
) {
    let at = read.captured_at.format("%Y-%m-%dT%H:%M:%SZ");
    let record = read.record;
    let detail = match fault {
        ClockFault::Off => format!(
            "the camera reported capture time {at} for record {record}: its clock is off (set \
             its time server); {}",
            if read.offline {
                "the offline record was not recorded"
            } else {
                "the read was decided at the time it arrived"
            }
        ),
        ClockFault::StaleLiveRead(age_max) => format!(
            "the camera pushed record {record}, taken at {at}, as a live read: more than {} \
             minutes old, so no car waits for it; recorded at its time without opening. If \
             the lane's cars are all refused so, the camera's clock or time zone is wrong",
            age_max.num_minutes()
        ),
    };
    let anomaly = NewAnomaly {
        tenant_id: gate.tenant_id,
        lot_id: gate.lot_id,
        session_id: None,
        gate_id: Some(gate.gate_id),
        kind: "device_clock",
        plate: read.plate,
        detail,
    };
    if let Err(e) = insert_anomaly(&state.db, &anomaly).await {
        tracing::warn!(gate_id = %gate.gate_id, error = %e, "could not list a camera clock fault");
    }
}
