//! One pipeline decides every gate read: a batch of live reads, a live read alone, and a
//! passage that already happened (an offline camera's buffer, a fail-open lane, a staff
//! member's open) are runs of [`run`] with different sizes and scopes:
//!
//! 1. `begin`, with the advisory locks of every lot (shared) and plate (exclusive) of the
//!    run, sorted, in one round trip (two runs never wait for each other in a circle);
//! 2. the facts of every live read, one statement per direction: an entry's plate facts (its
//!    prior answer, the registry, bookings, its open stay, the tariff in force), an exit's
//!    prior answer and open stay;
//! 3. each read taken through the domain's one rule of a gate read, `plan::next`: it says
//!    what to learn next (a lookup in the transaction, a place in Redis) or how the read is
//!    decided; the pipeline answers each question into the read's facts and asks again;
//! 4. the places of the admitted cars in Redis, concurrently (the one question a batch asks
//!    of all its reads at once);
//! 5. every stay, bill and gate event in one statement (`sessions::write_decisions`); the
//!    places of the cars that leave given back, still under the plates' locks; one commit,
//!    unless a lane of the run already gave up waiting and answered 503 (`super::answer`):
//!    then nothing of it is committed, and the cars that did not leave are counted back in;
//!    the cars inside whatever the capacity (emergency vehicles, recorded passages) are
//!    counted before the commit too, and taken out again should it not happen.
//!
//! A batch ([`Scope::Common`]) decides the common cases. Where a read needs more — a booking,
//! a shared or rented space, a re-entry, a misread exit plate, an anomaly, a full lot a walk-in
//! space might still take, a lot Redis has lost — the plan answers [`Next::Alone`], and the read
//! runs again as a run of its own ([`Scope::Every`]), which does that work in its transaction.
//! The plan's property tests show a batch never decides a read otherwise than a run of one.
//! A passage that already happened is always a run of its own (`super::facts`).
//!
//! Nothing is answered before the commit: an acknowledged decision is durable. A commit whose
//! outcome is unknown (the connection died with it on its way) is settled by asking the store
//! for one of its gate events before anything is answered or given back.

use chrono::{DateTime, Utc};
use parkshare_domain::decision::{Action, Decision, Direction, Origin, Pool, Reason, SessionKind};
use parkshare_domain::money::Money;
pub use parkshare_domain::plan::Scope;
use parkshare_domain::plan::{
    self, BillFacts, EntryFacts, ExitFacts, Next, PlaceAnswer, Prior, Question, ReadFacts,
    StayFacts, Verdict,
};
use parkshare_tariff::engine::LineCode;
use parkshare_tariff::Bill;
use sqlx::{PgConnection, PgPool, Postgres, Transaction};
use uuid::Uuid;

use super::answer::{self, Waiting};
use super::record::{
    self, anomaly, decision_into, new_stay, AfterWrite, Began, Effects, Failure, Hold, Place,
};
use crate::billing::{self, LotRules, Priced};
use crate::error::ApiError;
use crate::occupancy::{Occupancy, Occupy};
use crate::sharing::gate as shared;
use crate::state::lanes::{Batched, Event};
use crate::store::answers::GateDecision;
use crate::store::registry::{self, GateContext, PlateFactsRow};
use crate::store::sessions::{self, ExitRead, Session};
use crate::store::sharing::Booking;
use crate::store::tariffs;

/// What a run works with.
#[derive(Clone, Copy)]
pub struct Deps<'a> {
    pub db: &'a PgPool,
    pub occupancy: &'a Occupancy,
}

/// A read to decide.
#[derive(Clone, Copy)]
pub struct Read<'a> {
    pub gate: &'a GateContext,
    pub event: &'a Event,
    /// The lane waiting for the answer, if it keeps one (`super::answer`).
    pub waiting: Option<&'a Waiting>,
}

/// One run: what it works with, how much it does, its instant.
struct Run<'a> {
    deps: Deps<'a>,
    scope: Scope,
    now: DateTime<Utc>,
}

/// Decides `reads` in one transaction at `now` (the service's clock: the instant bookings,
/// holds and webhooks are judged by) and returns each one's outcome, in their order; in
/// [`Scope::Every`] every outcome is `Decided`. `Err`: nothing was committed (the store was
/// asked when the commit's outcome was unknown), and every place taken was given back.
pub async fn run(
    deps: Deps<'_>,
    reads: &[Read<'_>],
    scope: Scope,
    now: DateTime<Utc>,
) -> Result<Vec<Batched>, Failure> {
    let cars = reads
        .iter()
        .map(|r| (r.gate.lot_id, r.event.plate.as_str()));
    let mut tx = deps
        .db
        .begin_with(sessions::begin_locking_plates(cars))
        .await?;
    let mut fx = Effects::default();
    let run = Run { deps, scope, now };
    let outcomes = match decide_all(&run, &mut tx, reads, &mut fx).await {
        Ok(outcomes) => outcomes,
        Err(failure) => {
            give_back(deps, &fx.holds).await;
            return Err(failure);
        }
    };
    // Every read answered from a stored answer (a camera's retry): nothing to write, give back
    // or count, so no commit round trip — the transaction only read.
    if fx.is_empty() {
        return Ok(outcomes);
    }
    // Only the lanes whose reads this run decides are asked: the others are decided alone.
    let decided = || {
        reads
            .iter()
            .zip(&outcomes)
            .filter(|(_, outcome)| matches!(outcome, Batched::Decided(_)))
    };
    let lanes = decided().filter_map(|(read, _)| read.waiting);
    let mut released = record::Released::default();
    let mut counted = (Vec::new(), Vec::new());
    let stored = write_and_commit(deps, tx, &fx, now, lanes, &mut released, &mut counted).await;
    if let Err(failure) = stored {
        // A read whose answer the run wrote: its gate event is there if the commit happened.
        let written = decided().find_map(|(read, outcome)| match outcome {
            Batched::Decided(answer) if !answer.duplicate => Some(read),
            _ => None,
        });
        let asked = match written {
            Some(read) if failure.outcome_unknown() => Some(
                committed_after_all(deps.db, read.gate, read.event)
                    .await
                    .is_some(),
            ),
            _ => None,
        };
        if asked != Some(true) {
            give_back(deps, &fx.holds).await;
            give_back(deps, &counted.0).await;
            // The cars whose places were given back before the commit are still inside.
            record::count_inside(deps.db, deps.occupancy, &released.done).await;
            return Err(match asked {
                // Asked once: nobody must wait on the store again.
                Some(_) => failure.not_committed(),
                None => failure,
            });
        }
    }
    record::retry_release(deps.db, deps.occupancy, released.failed);
    // Cars in a lot Redis had lost: the lot rebuilt (this run's stays now in it) and counted.
    record::count_inside(deps.db, deps.occupancy, &counted.1).await;
    Ok(outcomes)
}

/// How long a run waits to learn whether a commit it lost track of happened.
const REREAD_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

/// The answer stored for this read if its decision committed after all (its connection failed
/// with the commit on its way). A 503 says nothing was decided, so it is only given once the
/// store says so (or cannot be asked: then the retry finds out, as `duplicate`).
pub async fn committed_after_all(
    db: &PgPool,
    gate: &GateContext,
    ev: &Event,
) -> Option<GateDecision> {
    let stored = sessions::response_by_device_event(db, gate.gate_id, &ev.device_event_id);
    match tokio::time::timeout(REREAD_WAIT, stored).await {
        Ok(Ok(found)) => found,
        Ok(Err(e)) => {
            tracing::error!(gate_id = %gate.gate_id, error = %e, "could not learn whether a decision committed");
            None
        }
        Err(_) => {
            tracing::error!(gate_id = %gate.gate_id, "could not learn in time whether a decision committed");
            None
        }
    }
}

/// Returns the places a run took in Redis and did not keep.
async fn give_back(deps: Deps<'_>, holds: &[Hold]) {
    for Hold { place, previous } in holds {
        if let Err(e) = deps
            .occupancy
            .release(place.lot_id, &place.plate, place.pool, *previous)
            .await
        {
            tracing::error!(lot_id = %place.lot_id, error = %e, "could not return a place; rebuild will fix it");
        }
    }
}

/// Step 5: the writes, the work on their rows, the places of the cars that left given back
/// (into `released`, those Redis took), the commit.
///
/// The places go back before the commit, while the run still holds the plates' locks: a read
/// of the same plate waiting for them (the car turning back at the barrier, a camera firing at
/// both lanes) then finds Redis as this run left it. Given back after the commit, a release
/// could land after that read had taken the plate's place again, and remove it: Redis one
/// car short, the lot over-admitting until the reconciler's next pass (issue 20's tester, F1).
/// Should the commit not happen, the caller counts those cars back in.
async fn write_and_commit<'a>(
    deps: Deps<'_>,
    mut tx: Transaction<'_, Postgres>,
    fx: &Effects,
    now: DateTime<Utc>,
    lanes: impl Iterator<Item = &'a Waiting> + Clone,
    released: &mut record::Released,
    counted: &mut (Vec<Hold>, Vec<Place>),
) -> Result<(), Failure> {
    sessions::write_decisions(&mut tx, &fx.writes).await?;
    for after in &fx.after_writes {
        match after {
            AfterWrite::Arrived {
                booking,
                session_id,
            } => shared::arrived(&mut tx, booking, *session_id, now).await?,
            // It left now: no later read is this stay's.
            AfterWrite::Reconstructed { session_id } => {
                sessions::mark_anomaly(&mut *tx, *session_id, "offline_reconstructed").await?
            }
            AfterWrite::Exited { session_id, at } => {
                shared::exited(&mut tx, *session_id, *at, now).await?
            }
        }
    }
    *released = record::release(deps.occupancy, &fx.released).await;
    *counted = record::count_before_commit(deps.occupancy, &fx.counted).await;
    for _ in &released.done {
        crate::failpoints::exit_released();
    }
    answer::commit_for(tx, lanes).await?;
    Ok(())
}

/// Steps 2 to 4: every read decided, its writes and effects in `fx`.
async fn decide_all(
    run: &Run<'_>,
    tx: &mut PgConnection,
    reads: &[Read<'_>],
    fx: &mut Effects,
) -> Result<Vec<Batched>, Failure> {
    let mut outcomes: Vec<Option<Batched>> = reads.iter().map(|_| None).collect();
    let (mut entries, mut exits) = (Vec::new(), Vec::new());
    for (index, read) in reads.iter().enumerate() {
        match (read.event.offline, read.gate.direction) {
            (true, _) if run.scope == Scope::Common => outcomes[index] = Some(Batched::Alone),
            (true, _) => {
                let answer = super::facts::record(tx, run.now, read.gate, read.event, fx).await?;
                outcomes[index] = Some(Batched::Decided(answer));
            }
            (false, Direction::Entry) => entries.push(index),
            (false, Direction::Exit) => exits.push(index),
        }
    }

    let facts_of = |indexes: &[usize]| -> Vec<_> {
        indexes
            .iter()
            .map(|&i| {
                let (gate, event) = (reads[i].gate, reads[i].event);
                record::plate_read(gate, event, record::booking_early_min(gate))
            })
            .collect()
    };
    let facts = registry::plate_facts_of(&mut *tx, &facts_of(&entries)).await?;
    let found = sessions::exit_reads(&mut *tx, &facts_of(&exits)).await?;
    let mut live: Vec<(usize, Live)> = entries
        .iter()
        .zip(facts)
        .map(|(&i, row)| (i, Live::entry(&reads[i], row)))
        .chain(
            exits
                .iter()
                .zip(found)
                .map(|(&i, found)| (i, Live::exit(&reads[i], found))),
        )
        .collect();

    // Every read taken as far as it goes without Redis; then the places, all at once (from
    // here every failure gives back what was taken); then each read to its end.
    let mut waiting = Vec::new();
    for (slot, (index, read)) in live.iter_mut().enumerate() {
        if let Some(Question::Place(pool)) = read
            .advance(run, tx, &reads[*index], fx, Places::Wait)
            .await?
        {
            waiting.push((slot, pool));
        }
    }
    let places = futures_util::future::join_all(waiting.iter().map(|&(slot, pool)| {
        let Read { gate, event, .. } = reads[live[slot].0];
        run.deps.occupancy.occupy(gate.lot_id, &event.plate, pool)
    }))
    .await;
    for ((slot, pool), place) in waiting.into_iter().zip(places) {
        let (index, read) = &mut live[slot];
        read.placed(&reads[*index], pool, place, fx);
    }
    for (index, mut read) in live {
        read.advance(run, tx, &reads[index], fx, Places::Ask)
            .await?;
        outcomes[index] = Some(read.conclude(tx, &reads[index], fx).await?);
    }
    Ok(outcomes
        .into_iter()
        .map(|o| o.unwrap_or(Batched::Alone))
        .collect())
}

/// Whether `advance` asks Redis for a place itself or stops at the question.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Places {
    Wait,
    Ask,
}

/// A live read on its way through [`plan::next`]: its facts, and what answering its
/// questions brought.
struct Live {
    facts: ReadFacts,
    next: Next,
    /// The stored answer of a replay, or the refusal of a reused id.
    prior: Option<Result<GateDecision, Failure>>,
    /// What the entry's plate-facts statement found.
    entry: Option<PlateFactsRow>,
    /// The booking (or walk-in space) the car comes in on.
    booking: Option<Box<Booking>>,
    /// The stay an exit ends, and its bill.
    stay: Option<Session>,
    priced: Option<Priced>,
    /// The no-entry-record fee's tariff version.
    fee_version: Option<Uuid>,
    /// Why the read cannot be decided, when the plan says so.
    failure: Option<Failure>,
}

impl Live {
    fn entry(read: &Read<'_>, mut row: PlateFactsRow) -> Live {
        let Read { gate, event, .. } = *read;
        let prior = row
            .prior_response
            .take()
            .map(|p| record::replayed(p.0, event));
        let facts = EntryFacts {
            prior: prior.as_ref().map(prior_of),
            booking_due: row.booking_due,
            own_space_taken: row.own_space_taken,
            rents_space: row.rental_space_id.is_some(),
            open_stay: row.open_session_id.is_some(),
            ..EntryFacts::new(record::standing_of(&row, &event.plate), gate.policy.reentry)
        };
        Live::new(ReadFacts::Entry(facts), prior, Some(row), None)
    }

    fn exit(read: &Read<'_>, found: ExitRead) -> Live {
        let prior = found
            .prior_response
            .map(|p| record::replayed(p.0, read.event));
        let facts = ExitFacts {
            prior: prior.as_ref().map(prior_of),
            ..ExitFacts::new(
                found.session.as_ref().map(|s| stay_facts(s, read.event)),
                read.gate.policy.no_entry_record,
            )
        };
        Live::new(ReadFacts::Exit(facts), prior, None, found.session)
    }

    fn new(
        facts: ReadFacts,
        prior: Option<Result<GateDecision, Failure>>,
        entry: Option<PlateFactsRow>,
        stay: Option<Session>,
    ) -> Live {
        Live {
            facts,
            next: Next::Alone,
            prior,
            entry,
            booking: None,
            stay,
            priced: None,
            fee_version: None,
            failure: None,
        }
    }

    /// Answers the plan's questions until it decides (or, with `Places::Wait`, asks Redis
    /// for a place); returns the question it stopped at.
    async fn advance(
        &mut self,
        run: &Run<'_>,
        tx: &mut PgConnection,
        read: &Read<'_>,
        fx: &mut Effects,
        places: Places,
    ) -> Result<Option<Question>, Failure> {
        loop {
            self.next = plan::next(&self.facts, run.scope);
            let Next::Ask(question) = self.next else {
                return Ok(None);
            };
            if let (Question::Place(_), Places::Wait) = (question, places) {
                return Ok(Some(question));
            }
            self.learn(run, tx, read, question, fx).await?;
        }
    }

    /// Answers one question into the facts.
    async fn learn(
        &mut self,
        run: &Run<'_>,
        tx: &mut PgConnection,
        read: &Read<'_>,
        question: Question,
        fx: &mut Effects,
    ) -> Result<(), Failure> {
        let Read {
            gate, event: ev, ..
        } = *read;
        let (plate, at, now) = (ev.plate.as_str(), ev.captured_at, run.now);
        let open_id = self.open_id();
        match (&mut self.facts, question) {
            (ReadFacts::Entry(f), Question::CloseMissedExit) => {
                let open_id = open_id?;
                record::close_missed_exit(tx, gate, ev, open_id).await?;
                f.missed_exit_closed = true;
            }
            (ReadFacts::Entry(f), Question::Booking) => {
                self.booking = shared::booking_for_entry(tx, gate, plate, at, now)
                    .await?
                    .map(Box::new);
                f.booking = Some(self.booking.is_some());
            }
            (ReadFacts::Entry(f), Question::OwnerHomeEarly) => {
                shared::owner_home_early(tx, gate, plate, at, now).await?;
                f.owner_home_handled = true;
            }
            (ReadFacts::Entry(f), Question::WalkIn) => {
                let walk_in = shared::place_walk_in(tx, gate, plate, at, now).await?;
                f.walk_in = Some(walk_in.is_some());
                self.booking = walk_in.map(Box::new);
            }
            (ReadFacts::Entry(_), Question::Place(pool)) => {
                let place = run
                    .deps
                    .occupancy
                    .occupy(gate.lot_id, &ev.plate, pool)
                    .await;
                self.placed(read, pool, place, fx);
            }
            (ReadFacts::Exit(f), Question::StayLeaving) => {
                self.stay = record::stay_leaving(tx, gate, ev).await?;
                f.stay = self.stay.as_ref().map(|s| stay_facts(s, ev));
                f.searched = true;
            }
            (ReadFacts::Exit(f), Question::Emergency) => {
                let registered = registry::is_exempt(&mut *tx, gate.compound_id, plate);
                f.emergency = Some(ev.plate.mark().is_some() || registered.await?);
            }
            (ReadFacts::Exit(f), Question::NoEntryFee) => {
                let (fee, version) = billing::no_entry_fee(tx, &LotRules::from(gate), at).await?;
                f.no_entry_fee = Some(fee);
                self.fee_version = version;
            }
            (ReadFacts::Exit(f), Question::Bill) => {
                let stay = self.stay.as_ref().ok_or_else(unplanned)?;
                let priced = match Money::total(stay.paid) {
                    Ok(paid) => billing::price(tx, &LotRules::from(gate), stay, at)
                        .await
                        .map(|priced| (paid, priced)),
                    Err(e) => Err(ApiError::internal(e)),
                };
                f.bill = Some(match priced {
                    Ok((paid, priced)) => {
                        let billed = BillFacts::Billed {
                            fee: priced.bill.total,
                            paid,
                            clamped: priced.clamped,
                        };
                        self.priced = Some(priced);
                        billed
                    }
                    Err(e) => {
                        self.failure = Some(e.into());
                        BillFacts::Unbillable
                    }
                });
            }
            _ => return Err(unplanned()),
        }
        Ok(())
    }

    /// Redis's answer for a place in `pool`, into the facts; a place taken is held until the
    /// run commits.
    fn placed(
        &mut self,
        read: &Read<'_>,
        pool: Pool,
        place: redis::RedisResult<Occupy>,
        fx: &mut Effects,
    ) {
        let ReadFacts::Entry(f) = &mut self.facts else {
            return;
        };
        let answer = match place {
            Ok(Occupy::Granted { previous }) => {
                fx.holds.push(Hold {
                    place: Place {
                        lot_id: read.gate.lot_id,
                        plate: read.event.plate.clone(),
                        pool,
                    },
                    previous,
                });
                PlaceAnswer::Granted
            }
            Ok(Occupy::Full) => PlaceAnswer::Full,
            Ok(Occupy::Missing) => {
                self.failure = Some(Failure::RebuildNeeded(read.gate.lot_id));
                PlaceAnswer::Missing
            }
            Err(e) => {
                self.failure = Some(e.into());
                PlaceAnswer::Unavailable
            }
        };
        match f.walk_in {
            Some(true) => f.walk_in_place = Some(answer),
            _ => f.place = Some(answer),
        }
    }

    fn open_id(&self) -> Result<Uuid, Failure> {
        let open = self.entry.as_ref().and_then(|row| row.open_session_id);
        open.ok_or_else(unplanned)
    }

    /// What the plan ended in: the answer, written into `fx`.
    async fn conclude(
        mut self,
        tx: &mut PgConnection,
        read: &Read<'_>,
        fx: &mut Effects,
    ) -> Result<Batched, Failure> {
        let Read {
            gate, event: ev, ..
        } = *read;
        let verdict = match std::mem::replace(&mut self.next, Next::Alone) {
            Next::Replay | Next::IdReused => {
                return self.prior.ok_or_else(unplanned)?.map(Batched::Decided)
            }
            Next::Alone => return Ok(Batched::Alone),
            Next::Fail(_) => return Err(self.failure.ok_or_else(unplanned)?),
            Next::Ask(_) => return Err(unplanned()),
            Next::Decide(verdict) => verdict,
        };
        let answer = match verdict {
            Verdict::Refuse(decision) => {
                let session_id = match decision.reason {
                    Reason::AlreadyInside => {
                        let open_id = self.open_id()?;
                        let detail = format!("entry read while session {open_id} is open");
                        anomaly(tx, gate, Some(open_id), "already_inside", &ev.plate, detail)
                            .await?;
                        Some(open_id)
                    }
                    Reason::NoEntryRecord => {
                        let detail = "exit read with no open session; refused".to_owned();
                        anomaly(tx, gate, None, "no_entry_record", &ev.plate, detail).await?;
                        None
                    }
                    _ => None,
                };
                decision_into(&mut fx.writes, gate, ev, session_id, &decision, None)
            }
            Verdict::Admit {
                decision,
                kind,
                pool,
            } => self.opened(read, decision, kind, pool, fx),
            Verdict::Bill(decision) => {
                let (Some(stay), Some(priced)) = (self.stay, self.priced) else {
                    return Err(unplanned());
                };
                billed(tx, read, &stay, &priced, &decision, fx).await?
            }
            Verdict::ChargeAtExit {
                decision,
                kind,
                fee,
            } => charged_at_exit(tx, read, (kind, fee, self.fee_version), &decision, fx).await?,
        };
        Ok(Batched::Decided(answer))
    }

    /// The stay of an admitted entry, and its answer.
    fn opened(
        self,
        read: &Read<'_>,
        mut decision: Decision,
        kind: SessionKind,
        pool: Pool,
        fx: &mut Effects,
    ) -> GateDecision {
        let Read {
            gate, event: ev, ..
        } = *read;
        let row = self.entry.as_ref();
        if pool == Pool::Exempt {
            // Emergency vehicles take no capacity: counted in Redis after the commit.
            fx.counted.push(Place {
                lot_id: gate.lot_id,
                plate: ev.plate.clone(),
                pool,
            });
        }
        let rented_space = match kind {
            SessionKind::Permit => row.and_then(|r| r.rental_space_id),
            _ => None,
        };
        let session_id = record::new_id();
        let began = Began::Entered {
            kind,
            pool,
            class: record::class_of(ev, row.and_then(|r| r.vehicle_class).map(|w| w.0)),
            tariff_version_id: row.and_then(|r| r.tariff_version_id),
            space_id: self.booking.as_ref().map(|b| b.space_id).or(rented_space),
        };
        // The stay and the event that admitted it go in one statement.
        fx.writes.stay(&new_stay(session_id, gate, ev, &began));
        if let Some(booking) = &self.booking {
            decision.display = format!("预约车位 {} 欢迎光临", booking.space_code);
        }
        let answer = decision_into(&mut fx.writes, gate, ev, Some(session_id), &decision, None);
        if let Some(booking) = self.booking {
            fx.after_writes.push(AfterWrite::Arrived {
                booking,
                session_id,
            });
        }
        answer
    }
}

/// A question the plan asked of a read that cannot have it (a bug, not a client's fault).
fn unplanned() -> Failure {
    ApiError::internal(anyhow::anyhow!(
        "the gate plan asked what the read cannot answer"
    ))
    .into()
}

fn prior_of(prior: &Result<GateDecision, Failure>) -> Prior {
    match prior {
        Ok(_) => Prior::SameCar,
        Err(_) => Prior::OtherPlate,
    }
}

fn stay_facts(stay: &Session, ev: &Event) -> StayFacts {
    StayFacts {
        kind: stay.kind,
        on_space: stay.space_id.is_some(),
        read_before_entry: stay.entered_at.is_some_and(|at| at > ev.captured_at),
    }
}

// ---- exit ----------------------------------------------------------------------------------

/// An exit's stay billed (closed if the barrier opens), and its answer.
async fn billed(
    tx: &mut PgConnection,
    read: &Read<'_>,
    stay: &Session,
    priced: &Priced,
    decision: &Decision,
    fx: &mut Effects,
) -> Result<GateDecision, Failure> {
    let Read {
        gate, event: ev, ..
    } = *read;
    if let Some(entered_at) = stay.entered_at.filter(|at| *at > ev.captured_at) {
        let detail = format!(
            "exit captured at {} before entry at {entered_at}",
            ev.captured_at
        );
        anomaly(
            tx,
            gate,
            Some(stay.id),
            "exit_before_entry",
            &ev.plate,
            detail,
        )
        .await?;
    }
    if priced.clamped {
        let detail = format!(
            "bill lowered to the regulated ceiling: ¥{}",
            priced.bill.total
        );
        anomaly(tx, gate, Some(stay.id), "tariff_clamped", &ev.plate, detail).await?;
    }
    let opens = decision.action == Action::Open;
    // The bill (closing the stay if the barrier opens) and the event in one statement.
    let exit = opens.then_some((ev.captured_at, gate.gate_id));
    fx.writes.bill(stay.id, &priced.bill, exit);
    let answer = decision_into(
        &mut fx.writes,
        gate,
        ev,
        Some(stay.id),
        decision,
        Some(priced),
    );
    if opens {
        left(stay, ev, fx);
    }
    Ok(answer)
}

/// What a stay that left through the barrier leaves to do: its booking ended, its place
/// given back.
fn left(stay: &Session, ev: &Event, fx: &mut Effects) {
    if stay.anomaly.as_deref() == Some(sessions::CLOSED_AT_REFUSED_EXIT) {
        fx.after_writes.push(AfterWrite::Reconstructed {
            session_id: stay.id,
        });
    }
    // Only a stay placed on a shared space has a booking to close.
    if stay.space_id.is_some() {
        fx.after_writes.push(AfterWrite::Exited {
            session_id: stay.id,
            at: ev.captured_at,
        });
    }
    fx.released.extend(Place::of_stay(stay));
}

/// An exit read with no stay to end, charged `fee` (an emergency vehicle's free, also with no
/// entry on record: its entry may be a fail-open passage not recorded yet) on a stay recorded
/// at the exit, kept like a charged one's so that a late entry finds it.
async fn charged_at_exit(
    tx: &mut PgConnection,
    read: &Read<'_>,
    (kind, fee, tariff_version_id): (SessionKind, Money, Option<Uuid>),
    decision: &Decision,
    fx: &mut Effects,
) -> Result<GateDecision, Failure> {
    let Read {
        gate, event: ev, ..
    } = *read;
    let session_id = record::new_id();
    let began = Began::AtExit {
        kind,
        origin: Origin::NoEntryRecord,
        tariff_version_id,
    };
    sessions::insert_session(tx, &new_stay(session_id, gate, ev, &began)).await?;
    let bill = Bill::flat(LineCode::NoEntryFee, fee, "无入场记录");
    let exit = fee.is_zero().then_some((ev.captured_at, gate.gate_id));
    sessions::bill_session(tx, session_id, &bill, exit).await?;
    sessions::mark_anomaly(&mut *tx, session_id, "no_entry_record").await?;
    let detail = format!("exit read with no open session; flat fee ¥{fee}");
    anomaly(
        tx,
        gate,
        Some(session_id),
        "no_entry_record",
        &ev.plate,
        detail,
    )
    .await?;
    let filing_no = match tariff_version_id {
        Some(id) => tariffs::filed(&mut *tx, id)
            .await?
            .map(|f| f.filing_no.clone()),
        None => None,
    };
    let priced = Priced {
        bill,
        filing_no,
        clamped: false,
    };
    Ok(decision_into(
        &mut fx.writes,
        gate,
        ev,
        Some(session_id),
        decision,
        Some(&priced),
    ))
}
