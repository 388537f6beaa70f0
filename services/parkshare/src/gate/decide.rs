//! How a read reaches the pipeline (`super::pipeline`): a live read is offered to a batch —
//! reads queue up, and as soon as one of a few batch slots is free, the reads waiting then (up
//! to `batch_max`; none is held back to wait for company, so a quiet lane pays little) are
//! decided together in one run. A read the batch leaves alone (it needs more than the common
//! case), every read of a batch that failed, every read when batching is off, and every
//! passage that already happened run on their own. A run that Postgres aborted in a conflict
//! is run again; a lot Redis lost is rebuilt first.
//!
//! Two reads of one car never share a batch: the later goes into a later one, whose begin
//! waits for the first batch's plate lock. A batch that failed for any reason (a deadlock with
//! a rebuild, a device event id raced in by another plate, Postgres gone) gives its reads to
//! runs of their own: a run finds the answer if the batch did commit after all, and reports
//! the failure as it always did if it did not.

use std::collections::{HashSet, VecDeque};
use std::sync::Arc;

use chrono::{DateTime, Utc};

use parkshare_domain::decision::{Direction, StayStatus};
use sqlx::PgPool;
use tokio::sync::{mpsc, oneshot, Semaphore};

use crate::state::lanes::Job;
pub use crate::state::lanes::{Batched, Batches};

use super::pipeline::{self, Deps, Read, Scope};
use super::record::{Failure, Place};
use crate::error::{is_unique_violation, ApiError};
use crate::occupancy::{Occupancy, RebuildMode};
use crate::state::lanes::Event;
use crate::state::AppState;
use crate::store::answers::GateDecision;
use crate::store::registry::GateContext;
use crate::store::sessions;

/// Reads waiting for a batch; a full queue makes the lanes wait (backpressure).
const QUEUE_DEPTH: usize = 4096;
/// Attempts at deciding a read whose transaction Postgres aborted in a conflict (a deadlock,
/// a serialization failure, a second car on one space): the lane is waiting, so only a few.
const DECIDE_ATTEMPTS_MAX: u32 = 3;
/// Pause before deciding again, times the attempt, so that the conflicting transactions do
/// not meet again at once.
const CONFLICT_BACKOFF_MS: u64 = 10;

/// Decides a live read, or records an offline one, and returns the stored answer. Whatever
/// it returns is durable in Postgres.
pub async fn decide(
    state: &AppState,
    gate: &Arc<GateContext>,
    event: &Event,
) -> Result<GateDecision, ApiError> {
    let deps = Deps {
        db: &state.db,
        occupancy: &state.occupancy,
    };
    let mut attempt = 1;
    let mut rebuilt = false;
    let result = loop {
        let offered = match event.offline {
            true => Batched::Alone,
            false => state.batches.decide(gate, event, state.clock.now()).await,
        };
        let result = match offered {
            Batched::Decided(answer) => Ok(answer),
            Batched::Alone => alone(deps, gate, event, state.clock.now()).await,
        };
        match result {
            // Redis had lost the lot's occupancy: rebuilt, the read is decided again. Needed
            // twice in a row only while Redis is losing data continuously.
            Err(Failure::RebuildNeeded(lot_id)) if !rebuilt => {
                crate::sync::rebuild_lot(state, lot_id, RebuildMode::IfMissing).await?;
                rebuilt = true;
            }
            Err(Failure::RebuildNeeded(lot_id)) => {
                break Err(Failure::Api(ApiError::Unavailable(anyhow::anyhow!(
                    "occupancy of lot {lot_id} keeps disappearing"
                ))));
            }
            // Postgres aborted the transaction in a conflict with another: nothing of it was
            // committed, and deciding again (a fresh transaction) sees what the other did.
            Err(failure) if failure.is_retryable() && attempt < DECIDE_ATTEMPTS_MAX => {
                tracing::warn!(gate_id = %gate.gate_id, attempt, "decision conflicted; deciding again");
                crate::metrics::backend_error("postgres_conflict_retried");
                tokio::time::sleep(std::time::Duration::from_millis(
                    CONFLICT_BACKOFF_MS * u64::from(attempt),
                ))
                .await;
                attempt += 1;
            }
            Err(failure) if failure.outcome_unknown() => {
                break match pipeline::committed_after_all(&state.db, gate, event).await {
                    Some(response) => Ok(response),
                    None => Err(failure),
                };
            }
            result => break result,
        }
    };
    let response = match result {
        Err(Failure::Db(e)) if is_unique_violation(&e, "gate_events_device_event_key") => {
            // The same device event id raced in with another read: a retry of the same car is
            // answered as the winner was; another plate's read is refused, never given that
            // car's answer (issue 20's tester, round 4, F1: cars let out on another's permit).
            let stored =
                sessions::response_by_device_event(&state.db, gate.gate_id, &event.device_event_id)
                    .await?
                    .ok_or_else(|| {
                        ApiError::Internal(anyhow::anyhow!("device event vanished after conflict"))
                    })?;
            match super::record::replayed(stored, event) {
                Ok(answer) => answer,
                Err(Failure::Api(refused)) => return Err(refused),
                Err(other) => return Err(ApiError::internal(format!("{other:?}"))),
            }
        }
        Err(Failure::Db(e)) => return Err(e.into()),
        Err(Failure::Api(e)) => return Err(e),
        Err(Failure::RebuildNeeded(lot_id)) => {
            return Err(ApiError::Internal(anyhow::anyhow!(
                "lot {lot_id} still needed a rebuild"
            )))
        }
        Ok(response) => response,
    };
    if gate.direction == Direction::Exit && response.duplicate && response.opens() {
        finish_release(state, gate, &response).await;
    }
    tracing::info!(
        gate_id = %gate.gate_id, plate = %event.plate, action = response.action.as_str(),
        reason = response.reason.as_str(), source = event.source, "gate decision"
    );
    crate::metrics::decision(gate.direction.as_str(), response.reason.as_str());
    Ok(response)
}

/// A run of this one read, with every case's work.
async fn alone(
    deps: Deps<'_>,
    gate: &GateContext,
    event: &Event,
    now: DateTime<Utc>,
) -> Result<GateDecision, Failure> {
    let waiting = super::answer::current();
    let read = Read {
        gate,
        event,
        waiting: waiting.as_deref(),
    };
    match pipeline::run(deps, &[read], Scope::Every, now).await?.pop() {
        Some(Batched::Decided(answer)) => Ok(answer),
        _ => Err(ApiError::Internal(anyhow::anyhow!("a run of one read left it undecided")).into()),
    }
}

/// A retried exit answered from its stored answer: the attempt that decided it may have
/// died, or lost Redis, before its place was given back. The retry gives it back now, under the
/// plate's lock and unless the car is inside again ([`super::record::release_if_gone`]); the
/// release only acts while Redis still lists the plate in the stay's pool, so doing it twice
/// does nothing. (The reconciler would repair the place too, within its interval; a lane of a
/// full lot should not wait for it.)
async fn finish_release(state: &AppState, gate: &GateContext, response: &GateDecision) {
    let Some(id) = response.session_id else {
        return;
    };
    let place = match sessions::session(&state.db, gate.tenant_id, id).await {
        Ok(Some(stay)) if stay.status != StayStatus::Open => Place::of_stay(&stay),
        Ok(_) => None,
        Err(e) => {
            tracing::warn!(session_id = %id, error = %e, "could not check a retried exit's release");
            None
        }
    };
    let Some(place) = place else {
        return;
    };
    if let Err(e) = super::record::release_if_gone(&state.db, &state.occupancy, &place).await {
        tracing::warn!(session_id = %id, error = ?e, "a retried exit's release failed; trying again");
        super::record::retry_release(&state.db, &state.occupancy, vec![place]);
    }
}

/// What a batch worker runs with.
struct Owned {
    db: PgPool,
    occupancy: Occupancy,
}

impl Owned {
    fn deps(&self) -> Deps<'_> {
        Deps {
            db: &self.db,
            occupancy: &self.occupancy,
        }
    }
}

impl Batches {
    /// Starts deciding reads in batches, at most `workers` at once (none: every read is
    /// decided alone), each of at most `batch_max` reads.
    pub fn start(db: PgPool, occupancy: Occupancy, workers: usize, batch_max: usize) -> Batches {
        if workers == 0 {
            return Batches { queue: None };
        }
        let (send, receive) = mpsc::channel(QUEUE_DEPTH);
        let slots = Arc::new(Semaphore::new(workers));
        let owned = Arc::new(Owned { db, occupancy });
        tokio::spawn(dispatch(owned, receive, slots, batch_max.max(1)));
        Batches { queue: Some(send) }
    }

    /// Decides a live read (never an offline one) that arrived at `now` (the service's clock)
    /// in a batch, or says it must be decided alone.
    pub async fn decide(
        &self,
        gate: &Arc<GateContext>,
        event: &Event,
        now: DateTime<Utc>,
    ) -> Batched {
        let Some(queue) = &self.queue else {
            return Batched::Alone;
        };
        let (reply, answer) = oneshot::channel();
        let job = Job {
            gate: gate.clone(),
            event: event.clone(),
            reply,
            waiting: super::answer::current(),
            now,
        };
        if queue.send(job).await.is_err() {
            return Batched::Alone;
        }
        // A batch that ended without answering (it never does) dropped the reply.
        answer.await.unwrap_or(Batched::Alone)
    }
}

/// Forms batches: when a slot is free, every read waiting then (up to `batch_max`, one per
/// car) becomes a batch. While all slots are busy, reads gather for the next one.
async fn dispatch(
    owned: Arc<Owned>,
    mut queue: mpsc::Receiver<Job>,
    slots: Arc<Semaphore>,
    batch_max: usize,
) {
    let mut waiting: VecDeque<Job> = VecDeque::new();
    loop {
        if waiting.is_empty() {
            match queue.recv().await {
                Some(job) => waiting.push_back(job),
                None => return,
            }
        }
        let Ok(slot) = slots.clone().acquire_owned().await else {
            return;
        };
        while waiting.len() < batch_max * 2 {
            match queue.try_recv() {
                Ok(job) => waiting.push_back(job),
                Err(_) => break,
            }
        }
        // The first read of each car, in arrival order. A second read of a car waits for a
        // later batch, which waits for this one's plate lock and then sees what it did.
        let mut batch = Vec::new();
        let mut later = VecDeque::new();
        {
            let mut cars = HashSet::new();
            for job in waiting.drain(..) {
                let car = (job.gate.lot_id, job.event.plate.as_str().to_owned());
                if batch.len() < batch_max && cars.insert(car) {
                    batch.push(job);
                } else {
                    later.push_back(job);
                }
            }
        }
        waiting = later;
        let owned = owned.clone();
        tokio::spawn(async move {
            decide_and_answer(owned.deps(), batch).await;
            drop(slot);
        });
    }
}

async fn decide_and_answer(deps: Deps<'_>, batch: Vec<Job>) {
    let reads: Vec<Read<'_>> = batch
        .iter()
        .map(|job| Read {
            gate: &job.gate,
            event: &job.event,
            waiting: job.waiting.as_deref(),
        })
        .collect();
    // The batch's instant: that of its latest read.
    let now = batch.iter().map(|job| job.now).max().unwrap_or_default();
    let outcomes = pipeline::run(deps, &reads, Scope::Common, now).await;
    drop(reads);
    match outcomes {
        Ok(outcomes) => {
            crate::metrics::batch(batch.len(), true);
            for (job, outcome) in batch.into_iter().zip(outcomes) {
                // The lane may have stopped waiting; the decision stands all the same.
                let _ = job.reply.send(outcome);
            }
        }
        Err(e) => {
            crate::metrics::batch(batch.len(), false);
            tracing::warn!(reads = batch.len(), error = ?e, "batch failed; deciding its reads alone");
            for job in batch {
                let _ = job.reply.send(Batched::Alone);
            }
        }
    }
}
