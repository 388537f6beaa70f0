//! Group commit for the entry/exit core.
//!
//! Live reads are decided in batches rather than one transaction each. Reads queue up; as soon
//! as one of a few batch slots is free, the reads waiting then (up to `batch_max`; none is held
//! back to wait for company, so a quiet lane pays little) become a batch, decided together in
//! one transaction:
//!
//! 1. `begin` and the advisory locks of every lot (shared) and plate (exclusive) in the batch,
//!    sorted, in one round trip: the same locks an event decided on its own takes;
//! 2. the plate facts of every entry, and the replay check and open stay of every exit, one
//!    statement each;
//! 3. the places of the admitted cars in Redis, concurrently on the one multiplexed
//!    connection;
//! 4. every stay opened, every bill and every gate event, one statement (planned for the
//!    batch and the tables as they are: `sessions::write_decisions`);
//! 5. one commit, after which every answer is sent and exits give their places back — unless
//!    a lane of the batch already gave up waiting and answered 503 (`super::answer`): then
//!    the batch rolls back and its reads are decided alone.
//!
//! Nothing is answered before the commit: an acknowledged decision is durable. A read whose
//! decision needs more than the common case — a booking, a shared space, a re-entry, a
//! misread exit plate, an anomaly, a full lot a walk-in space might still take, a lot Redis has
//! lost — is answered [`Batched::Alone`] and decided on its own by the ordinary path, after
//! the batch committed. So is every read of a batch that failed for any reason (a deadlock
//! with a rebuild, a device event id raced in by another plate, Postgres gone): deciding alone
//! finds the answer if the batch did commit after all, and reports the failure as it always
//! did if it did not. Two reads of one car never share a batch: the later goes into a later
//! one, whose begin waits for the first batch's plate lock. Batches take their locks in one
//! global order (lots, then plates, sorted), so two batches never wait for each other in a
//! circle.

use std::collections::{HashSet, VecDeque};
use std::sync::Arc;

use parkshare_domain::decision::{
    entry_decision, exit_decision, plan_entry, Action, Decision, Direction, EntryPlan, Pool,
    SessionKind,
};
use parkshare_domain::money::Money;
use parkshare_domain::plate::Plate;
use parkshare_domain::vehicle::VehicleClass;
use sqlx::{PgConnection, PgPool};
use tokio::sync::{mpsc, oneshot, Semaphore};
use uuid::Uuid;

use crate::state::lanes::Job;
pub use crate::state::lanes::{Batched, Batches};

use super::events::{decision_into, plate_read, standing_of, Event, GateDecision};
use crate::billing::{self, LotRules};
use crate::error::ApiError;
use crate::occupancy::{Occupancy, Occupy};
use crate::store::registry::{self, GateContext, PlateRead};
use crate::store::sessions::{self, DecisionWrites, ExitRead, NewSession, Session};

/// Reads waiting for a batch; a full queue makes the lanes wait (backpressure).
const QUEUE_DEPTH: usize = 4096;

impl Job {
    /// The car: its lot and plate.
    fn car(&self) -> (Uuid, &str) {
        (self.gate.lot_id, self.event.plate.as_str())
    }

    fn read(&self) -> PlateRead<'_> {
        let early_min = i32::try_from(self.gate.policy.booking_early_arrival_min).unwrap_or(0);
        plate_read(&self.gate, &self.event, early_min)
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
        tokio::spawn(dispatch(db, occupancy, receive, slots, batch_max.max(1)));
        Batches { queue: Some(send) }
    }

    /// Decides a live read (never an offline one) in a batch, or says it must be decided
    /// alone.
    pub async fn decide(&self, gate: &Arc<GateContext>, event: &Event) -> Batched {
        let Some(queue) = &self.queue else {
            return Batched::Alone;
        };
        let (reply, answer) = oneshot::channel();
        let job = Job {
            gate: gate.clone(),
            event: event.clone(),
            reply,
            waiting: super::answer::current(),
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
    db: PgPool,
    occupancy: Occupancy,
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
        let (db, occupancy) = (db.clone(), occupancy.clone());
        tokio::spawn(async move {
            decide_and_answer(&db, &occupancy, batch).await;
            drop(slot);
        });
    }
}

async fn decide_and_answer(db: &PgPool, occupancy: &Occupancy, batch: Vec<Job>) {
    match decide_together(db, occupancy, &batch).await {
        Ok(outcomes) => {
            crate::metrics::batch(batch.len(), true);
            for (job, outcome) in batch.into_iter().zip(outcomes) {
                // The lane may have stopped waiting; the decision stands all the same.
                let _ = job.reply.send(outcome);
            }
        }
        Err(e) => {
            crate::metrics::batch(batch.len(), false);
            tracing::warn!(reads = batch.len(), error = %e, "batch failed; deciding its reads alone");
            for job in batch {
                let _ = job.reply.send(Batched::Alone);
            }
        }
    }
}

/// A place taken in Redis, to give back if the batch does not commit.
struct Hold<'a> {
    lot_id: Uuid,
    plate: &'a Plate,
    pool: Pool,
    previous: Option<Pool>,
}

/// An entry the registry admits, waiting for its place.
struct Admit {
    index: usize,
    kind: SessionKind,
    /// The registered class of the plate, if any.
    vehicle_class: Option<String>,
    tariff_version_id: Option<Uuid>,
}

/// An exit that opens, whose place goes back to Redis after the commit.
struct Leaving<'a> {
    lot_id: Uuid,
    plate: &'a Plate,
    pool: Pool,
}

/// Decides `batch` in one transaction; `Err` means nothing of it was committed (or, for a
/// failed commit, that nobody knows: deciding alone will find out).
async fn decide_together(
    db: &PgPool,
    occupancy: &Occupancy,
    batch: &[Job],
) -> Result<Vec<Batched>, ApiError> {
    let mut tx = db
        .begin_with(sessions::begin_locking_plates(batch.iter().map(Job::car)))
        .await?;
    let mut outcomes: Vec<Option<Batched>> = batch.iter().map(|_| None).collect();
    let mut writes = DecisionWrites::default();
    let (entries, exits): (Vec<usize>, Vec<usize>) =
        (0..batch.len()).partition(|&i| batch[i].gate.direction == Direction::Entry);

    // Every read first: the entries' plate facts, the exits' replays and open stays.
    let reads: Vec<PlateRead<'_>> = entries.iter().map(|&i| batch[i].read()).collect();
    let facts = registry::plate_facts_of(&mut tx, &reads).await?;
    let reads: Vec<PlateRead<'_>> = exits.iter().map(|&i| batch[i].read()).collect();
    let found = sessions::exit_reads(&mut tx, &reads).await?;

    let mut admits = Vec::new();
    for (&index, mut facts) in entries.iter().zip(facts) {
        let Job { gate, event, .. } = &batch[index];
        if let Some(prior) = facts.prior_response.take() {
            outcomes[index] = Some(Batched::Decided(prior.0.replayed()));
            continue;
        }
        let kind = match plan_entry(standing_of(&facts, &event.plate)) {
            EntryPlan::Refuse(reason) => {
                let decision = Decision::new(reason, Direction::Entry, Money::ZERO);
                let response = decision_into(&mut writes, gate, event, None, &decision, None);
                outcomes[index] = Some(Batched::Decided(response));
                continue;
            }
            EntryPlan::Admit(kind) => kind,
        };
        // A booking, an owner's own space taken, a re-entry: the ordinary path's cases.
        let booked = matches!(kind, SessionKind::Visitor | SessionKind::Owner) && facts.booking_due;
        let home_taken = kind == SessionKind::Permit && facts.own_space_taken;
        // A renter's stay goes on the rented space: written by the ordinary path.
        let on_rented_space = kind == SessionKind::Permit && facts.rental_space_id.is_some();
        if facts.open_session_id.is_some() || booked || home_taken || on_rented_space {
            outcomes[index] = Some(Batched::Alone);
            continue;
        }
        admits.push(Admit {
            index,
            kind,
            vehicle_class: facts.vehicle_class.take(),
            tariff_version_id: facts.tariff_version_id,
        });
    }
    let mut leaving = Vec::new();
    for (&index, found) in exits.iter().zip(found) {
        let Job { gate, event, .. } = &batch[index];
        let outcome = match found {
            ExitRead {
                prior_response: Some(prior),
                ..
            } => Batched::Decided(prior.0.replayed()),
            ExitRead {
                session: Some(session),
                ..
            } => match bill_exit(&mut tx, &mut writes, gate, event, &session).await? {
                Some(response) => {
                    let pool = Pool::parse(&session.pool);
                    let opens = response.opens();
                    if let (true, "entry", Some(pool)) = (opens, session.origin.as_str(), pool) {
                        leaving.push(Leaving {
                            lot_id: gate.lot_id,
                            plate: &event.plate,
                            pool,
                        });
                    }
                    Batched::Decided(response)
                }
                None => Batched::Alone,
            },
            // No open stay under the plate as read: a misread plate or a missing entry.
            ExitRead { session: None, .. } => Batched::Alone,
        };
        outcomes[index] = Some(outcome);
    }

    // Emergency vehicles pass first (rule 1) and take no capacity: admitted without Redis,
    // counted there after the commit.
    let (exempt, admits): (Vec<Admit>, Vec<Admit>) = admits
        .into_iter()
        .partition(|a| a.kind == SessionKind::Exempt);
    // The places, all at once; from here every failure gives back what was taken.
    let places = futures_util::future::join_all(admits.iter().map(|a| {
        let Job { gate, event, .. } = &batch[a.index];
        occupancy.occupy(gate.lot_id, &event.plate, a.kind.pool())
    }))
    .await;
    let mut holds = Vec::new();
    let mut granted: Vec<&Admit> = exempt.iter().collect();
    for (admit, place) in admits.iter().zip(places) {
        let Job { gate, event, .. } = &batch[admit.index];
        match place {
            Ok(Occupy::Granted { previous }) => {
                holds.push(Hold {
                    lot_id: gate.lot_id,
                    plate: &event.plate,
                    pool: admit.kind.pool(),
                    previous,
                });
                granted.push(admit);
            }
            Ok(Occupy::Full) if admit.kind != SessionKind::Visitor => {
                let decision = entry_decision(admit.kind, false);
                let response = decision_into(&mut writes, gate, event, None, &decision, None);
                outcomes[admit.index] = Some(Batched::Decided(response));
            }
            // A full lot may still have a shared space for a walk-in, a lost lot needs a
            // rebuild, and Redis down is the ordinary path's 503.
            Ok(Occupy::Full | Occupy::Missing) | Err(_) => {
                outcomes[admit.index] = Some(Batched::Alone);
            }
        }
    }

    let committed = async {
        for admit in &granted {
            let Job { gate, event, .. } = &batch[admit.index];
            let class = event
                .class
                .or(admit.vehicle_class.as_deref().and_then(VehicleClass::parse));
            let session_id = Uuid::now_v7();
            writes.stay(&NewSession {
                id: session_id,
                tenant_id: gate.tenant_id,
                compound_id: gate.compound_id,
                lot_id: gate.lot_id,
                plate: event.plate.as_str(),
                vehicle_class: class.unwrap_or(VehicleClass::Small).as_str(),
                kind: admit.kind.as_str(),
                pool: admit.kind.pool().as_str(),
                origin: "entry",
                entered_at: Some(event.captured_at),
                entry_gate_id: Some(gate.gate_id),
                tariff_version_id: admit.tariff_version_id,
                space_id: None,
            });
            let decision = entry_decision(admit.kind, true);
            let response =
                decision_into(&mut writes, gate, event, Some(session_id), &decision, None);
            outcomes[admit.index] = Some(Batched::Decided(response));
        }
        sessions::write_decisions(&mut tx, &writes).await?;
        // A lane that gave up already answered 503: then nothing of the batch is committed,
        // and its reads are decided alone (the given-up one rolls back there too). Only the
        // lanes whose reads this batch decides are asked: the others are decided alone.
        let lanes = batch
            .iter()
            .zip(&outcomes)
            .filter(|(_, outcome)| matches!(outcome, Some(Batched::Decided(_))))
            .filter_map(|(job, _)| job.waiting.as_deref());
        super::answer::commit_for(tx, lanes).await?;
        Ok::<_, ApiError>(())
    }
    .await;
    if let Err(e) = committed {
        for hold in &holds {
            if let Err(e) = occupancy
                .release(hold.lot_id, hold.plate, hold.pool, hold.previous)
                .await
            {
                tracing::error!(lot_id = %hold.lot_id, error = %e, "could not return a place; rebuild will fix it");
            }
        }
        return Err(e);
    }
    // A release (or a count) that fails leaves Redis behind until the reconciler repairs it,
    // as alone.
    for _ in &leaving {
        crate::failpoints::exit_committed();
    }
    let released = futures_util::future::join_all(
        leaving
            .iter()
            .map(|l| occupancy.release(l.lot_id, l.plate, l.pool, None)),
    )
    .await;
    for (l, result) in leaving.iter().zip(released) {
        if let Err(e) = result {
            tracing::warn!(lot_id = %l.lot_id, error = %e, "exit committed but Redis release failed; trying again");
            super::events::retry_release(db, occupancy, l.lot_id, l.plate.clone(), l.pool);
        }
    }
    let counted = futures_util::future::join_all(exempt.iter().map(|a| {
        let Job { gate, event, .. } = &batch[a.index];
        occupancy.record_inside(gate.lot_id, &event.plate, a.kind.pool())
    }))
    .await;
    if let Some(e) = counted.into_iter().find_map(Result::err) {
        tracing::error!(error = %e, "emergency entries committed but not counted in Redis");
    }
    Ok(outcomes
        .into_iter()
        .map(|o| o.unwrap_or(Batched::Alone))
        .collect())
}

/// Bills an exit with an open stay; `None` when the ordinary path must decide it (a stay on a
/// shared space, an exit read before the entry, a bill the regulated guard lowered — each
/// records more than a bill — or a stay that cannot be billed).
async fn bill_exit(
    tx: &mut PgConnection,
    writes: &mut DecisionWrites,
    gate: &GateContext,
    event: &Event,
    session: &Session,
) -> Result<Option<GateDecision>, ApiError> {
    let early_read = session.entered_at.is_some_and(|at| at > event.captured_at);
    let Some(kind) = SessionKind::parse(&session.kind) else {
        return Ok(None);
    };
    if session.space_id.is_some() || early_read {
        return Ok(None);
    }
    let priced =
        match billing::price(&mut *tx, &LotRules::from(gate), session, event.captured_at).await {
            Ok(priced) if !priced.clamped => priced,
            _ => return Ok(None),
        };
    let Ok(paid) = Money::total(session.paid) else {
        return Ok(None);
    };
    let decision = exit_decision(kind, priced.bill.total, paid);
    let opens = decision.action == Action::Open;
    let exit = opens.then_some((event.captured_at, gate.gate_id));
    writes.bill(session.id, &priced.bill, exit);
    let response = decision_into(
        writes,
        gate,
        event,
        Some(session.id),
        &decision,
        Some(&priced),
    );
    Ok(Some(response))
}
