//! One pipeline decides every gate read: a batch of live reads, a live read alone, and a
//! passage that already happened (an offline camera's buffer, a fail-open lane, a staff
//! member's open) are runs of [`run`] with different sizes and scopes:
//!
//! 1. `begin`, with the advisory locks of every lot (shared) and plate (exclusive) of the
//!    run, sorted, in one round trip (two runs never wait for each other in a circle);
//! 2. the facts of every live read, one statement per direction: an entry's plate facts (its
//!    prior answer, the registry, bookings, its open stay, the tariff in force), an exit's
//!    prior answer and open stay;
//! 3. each read decided by the domain's pure rules (`plan_entry`, `entry_decision`,
//!    `exit_decision`);
//! 4. the places of the admitted cars in Redis, concurrently;
//! 5. every stay, bill and gate event in one statement (`sessions::write_decisions`); the
//!    places of the cars that leave given back, still under the plates' locks; one commit,
//!    unless a lane of the run already gave up waiting and answered 503 (`super::answer`):
//!    then nothing of it is committed, and the cars that did not leave are counted back in;
//! 6. after the commit, the cars inside whatever the capacity counted.
//!
//! A batch ([`Scope::Common`]) decides the common cases. A read that needs more — a booking,
//! a shared or rented space, a re-entry, a misread exit plate, an anomaly, a full lot a walk-in
//! space might still take, a lot Redis has lost — is answered [`Batched::Alone`] and runs
//! again as a run of its own ([`Scope::Every`]), which does that work in its transaction.
//! A passage that already happened is always a run of its own (`super::facts`).
//!
//! Nothing is answered before the commit: an acknowledged decision is durable. A commit whose
//! outcome is unknown (the connection died with it on its way) is settled by asking the store
//! for one of its gate events before anything is answered or given back.

use chrono::{DateTime, Utc};
use parkshare_domain::decision::{
    entry_decision, exit_decision, plan_entry, Action, Decision, Direction, EntryPlan, Origin,
    Pool, Reason, SessionKind,
};
use parkshare_domain::money::Money;
use parkshare_domain::policy::{NoEntryRecord, Reentry};
use parkshare_domain::vehicle::VehicleClass;
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

/// How much of a read's work a run does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope {
    /// A batch: the common cases only; a read that needs more is answered `Alone`.
    Common,
    /// A run of one read: every case.
    Every,
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
    let stored = write_and_commit(deps, tx, &fx, now, lanes, &mut released).await;
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
    record::count_inside(deps.db, deps.occupancy, &fx.counted).await;
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

    let mut admits = Vec::new();
    for (&index, facts) in entries.iter().zip(facts) {
        match entry(run, tx, &reads[index], facts, fx).await? {
            Entry::Answered(outcome) => outcomes[index] = Some(outcome),
            Entry::Admit(admit) => admits.push((index, *admit)),
        }
    }
    for (&index, found) in exits.iter().zip(found) {
        outcomes[index] = Some(exit(run, tx, &reads[index], found, fx).await?);
    }

    // Emergency vehicles pass first (rule 1) and take no capacity: admitted without Redis,
    // counted there after the commit.
    let (exempt, limited): (Vec<_>, Vec<_>) = admits
        .into_iter()
        .partition(|(_, admit)| admit.pool == Pool::Exempt);
    for (index, admit) in exempt {
        let Read { gate, event, .. } = reads[index];
        fx.counted.push(Place {
            lot_id: gate.lot_id,
            plate: event.plate.clone(),
            pool: admit.pool,
        });
        outcomes[index] = Some(Batched::Decided(opened(&reads[index], admit, fx)));
    }
    // The places, all at once; from here every failure gives back what was taken.
    let places = futures_util::future::join_all(limited.iter().map(|(index, admit)| {
        let Read { gate, event, .. } = reads[*index];
        run.deps
            .occupancy
            .occupy(gate.lot_id, &event.plate, admit.pool)
    }))
    .await;
    for ((index, admit), place) in limited.into_iter().zip(places) {
        outcomes[index] = Some(placed(run, tx, &reads[index], admit, place, fx).await?);
    }
    Ok(outcomes
        .into_iter()
        .map(|o| o.unwrap_or(Batched::Alone))
        .collect())
}

// ---- entry ---------------------------------------------------------------------------------

/// An entry the registry admits, waiting for its place.
struct Admit {
    kind: SessionKind,
    pool: Pool,
    class: VehicleClass,
    tariff_version_id: Option<Uuid>,
    /// The booking the car comes in on.
    booking: Option<Box<Booking>>,
    /// The space the plate rents in this lot: its stay is that space's use.
    rented_space: Option<Uuid>,
}

enum Entry {
    Answered(Batched),
    Admit(Box<Admit>),
}

fn answered(answer: GateDecision) -> Entry {
    Entry::Answered(Batched::Decided(answer))
}

async fn entry(
    run: &Run<'_>,
    tx: &mut PgConnection,
    read: &Read<'_>,
    mut facts: PlateFactsRow,
    fx: &mut Effects,
) -> Result<Entry, Failure> {
    let Read {
        gate, event: ev, ..
    } = *read;
    if let Some(prior) = facts.prior_response.take() {
        return match record::replayed(prior.0, ev) {
            Ok(answer) => Ok(answered(answer)),
            // Refused on its own, not with the batch.
            Err(_) if run.scope == Scope::Common => Ok(Entry::Answered(Batched::Alone)),
            Err(refused) => Err(refused),
        };
    }
    let kind = match plan_entry(record::standing_of(&facts, &ev.plate)) {
        EntryPlan::Refuse(reason) => {
            let decision = Decision::new(reason, Direction::Entry, Money::ZERO);
            return Ok(answered(decision_into(
                &mut fx.writes,
                gate,
                ev,
                None,
                &decision,
                None,
            )));
        }
        EntryPlan::Admit(kind) => kind,
    };
    let booked = matches!(kind, SessionKind::Visitor | SessionKind::Owner) && facts.booking_due;
    let home_taken = kind == SessionKind::Permit && facts.own_space_taken;
    let rented_space = match kind {
        SessionKind::Permit => facts.rental_space_id,
        _ => None,
    };
    let more = facts.open_session_id.is_some() || booked || home_taken || rented_space.is_some();
    if more && run.scope == Scope::Common {
        return Ok(Entry::Answered(Batched::Alone));
    }
    if let Some(open_id) = facts.open_session_id {
        if let Some(answer) = reentry(tx, gate, ev, open_id, fx).await? {
            return Ok(answered(answer));
        }
    }
    let (plate, at, now) = (ev.plate.as_str(), ev.captured_at, run.now);
    let booking = match (booked, home_taken) {
        (true, _) => shared::booking_for_entry(tx, gate, plate, at, now)
            .await?
            .map(Box::new),
        (_, true) => {
            shared::owner_home_early(tx, gate, plate, at, now).await?;
            None
        }
        _ => None,
    };
    Ok(Entry::Admit(Box::new(Admit {
        kind,
        // A booked car has its own space: it does not count against the visitor pool.
        pool: match booking {
            Some(_) => Pool::Reserved,
            None => kind.pool(),
        },
        class: record::class_of(ev, facts.vehicle_class.as_deref()),
        tariff_version_id: facts.tariff_version_id,
        booking,
        rented_space,
    })))
}

/// An entry read while the plate's stay `open_id` is open, by the gate's re-entry policy:
/// refused as already inside (the answer), or that stay closed as a missed exit and the car
/// admitted again (`None`).
async fn reentry(
    tx: &mut PgConnection,
    gate: &GateContext,
    ev: &Event,
    open_id: Uuid,
    fx: &mut Effects,
) -> Result<Option<GateDecision>, Failure> {
    match gate.policy.reentry {
        Reentry::Refuse => {
            let detail = format!("entry read while session {open_id} is open");
            anomaly(tx, gate, Some(open_id), "already_inside", &ev.plate, detail).await?;
            let decision = Decision::new(Reason::AlreadyInside, Direction::Entry, Money::ZERO);
            Ok(Some(decision_into(
                &mut fx.writes,
                gate,
                ev,
                Some(open_id),
                &decision,
                None,
            )))
        }
        Reentry::CloseAndReopen => {
            // The stay it closes ended at the latest when the car came in again: its fee is
            // fixed at this entry, so nothing after it is charged on both stays.
            if let Some(old) = sessions::session(&mut *tx, gate.tenant_id, open_id).await? {
                match billing::price(tx, &LotRules::from(gate), &old, ev.captured_at).await {
                    Ok(priced) => sessions::bill_session(tx, open_id, &priced.bill, None).await?,
                    // Not billable automatically (a stay of over 400 days): staff settle it.
                    Err(ApiError::Invalid { .. }) => {}
                    Err(e) => return Err(e.into()),
                }
            }
            sessions::close_as_anomaly(&mut *tx, open_id, "missed_exit").await?;
            let detail =
                format!("exit of session {open_id} was never read; closed at the next entry");
            anomaly(tx, gate, Some(open_id), "missed_exit", &ev.plate, detail).await?;
            Ok(None)
        }
    }
}

/// An admitted entry once Redis answered for its place.
async fn placed(
    run: &Run<'_>,
    tx: &mut PgConnection,
    read: &Read<'_>,
    mut admit: Admit,
    mut place: redis::RedisResult<Occupy>,
    fx: &mut Effects,
) -> Result<Batched, Failure> {
    let Read {
        gate, event: ev, ..
    } = *read;
    let (scope, now) = (run.scope, run.now);
    if matches!(place, Ok(Occupy::Full)) && admit.kind == SessionKind::Visitor {
        if scope == Scope::Common {
            return Ok(Batched::Alone);
        }
        // A full visitor pool may still have a shared space free for a walk-in.
        let plate = ev.plate.as_str();
        if let Some(walk_in) = shared::place_walk_in(tx, gate, plate, ev.captured_at, now).await? {
            admit.booking = Some(Box::new(walk_in));
            admit.pool = Pool::Reserved;
            place = run
                .deps
                .occupancy
                .occupy(gate.lot_id, &ev.plate, admit.pool)
                .await;
        }
    }
    match (place, scope) {
        (Ok(Occupy::Granted { previous }), _) => {
            fx.holds.push(Hold {
                place: Place {
                    lot_id: gate.lot_id,
                    plate: ev.plate.clone(),
                    pool: admit.pool,
                },
                previous,
            });
            Ok(Batched::Decided(opened(read, admit, fx)))
        }
        (Ok(Occupy::Full), _) => {
            let decision = entry_decision(admit.kind, false);
            let answer = decision_into(&mut fx.writes, gate, ev, None, &decision, None);
            Ok(Batched::Decided(answer))
        }
        // A lot Redis lost needs a rebuild; Redis down is a 503 — both for a run of one.
        (Ok(Occupy::Missing) | Err(_), Scope::Common) => Ok(Batched::Alone),
        (Ok(Occupy::Missing), Scope::Every) => Err(Failure::RebuildNeeded(gate.lot_id)),
        (Err(e), Scope::Every) => Err(e.into()),
    }
}

/// The stay of an admitted entry, and its answer.
fn opened(read: &Read<'_>, admit: Admit, fx: &mut Effects) -> GateDecision {
    let Read {
        gate, event: ev, ..
    } = *read;
    let session_id = record::new_id();
    let began = Began::Entered {
        kind: admit.kind,
        pool: admit.pool,
        class: admit.class,
        tariff_version_id: admit.tariff_version_id,
        space_id: admit
            .booking
            .as_ref()
            .map(|b| b.space_id)
            .or(admit.rented_space),
    };
    // The stay and the event that admitted it go in one statement.
    fx.writes.stay(&new_stay(session_id, gate, ev, &began));
    let decision = match &admit.booking {
        Some(booking) => {
            let mut decision =
                Decision::new(Reason::BookingAdmitted, Direction::Entry, Money::ZERO);
            decision.display = format!("预约车位 {} 欢迎光临", booking.space_code);
            decision
        }
        None => entry_decision(admit.kind, true),
    };
    let answer = decision_into(&mut fx.writes, gate, ev, Some(session_id), &decision, None);
    if let Some(booking) = admit.booking {
        fx.after_writes.push(AfterWrite::Arrived {
            booking,
            session_id,
        });
    }
    answer
}

// ---- exit ----------------------------------------------------------------------------------

async fn exit(
    run: &Run<'_>,
    tx: &mut PgConnection,
    read: &Read<'_>,
    found: ExitRead,
    fx: &mut Effects,
) -> Result<Batched, Failure> {
    let Read {
        gate, event: ev, ..
    } = *read;
    let scope = run.scope;
    if let Some(prior) = found.prior_response {
        return match record::replayed(prior.0, ev) {
            Ok(answer) => Ok(Batched::Decided(answer)),
            // Refused on its own, not with the batch.
            Err(_) if scope == Scope::Common => Ok(Batched::Alone),
            Err(refused) => Err(refused),
        };
    }
    let stay = match (found.session, scope) {
        (Some(stay), _) => stay,
        // No open stay under the plate as read: a misread plate or a missing entry.
        (None, Scope::Common) => return Ok(Batched::Alone),
        (None, Scope::Every) => match record::stay_leaving(tx, gate, ev).await? {
            Some(stay) => stay,
            None => {
                return no_entry_record(tx, gate, ev, fx)
                    .await
                    .map(Batched::Decided)
            }
        },
    };
    let early_read = stay.entered_at.filter(|at| *at > ev.captured_at);
    // A stay on a shared space, an exit read before the entry, a bill the regulated guard
    // lowered: each records more than a bill.
    if scope == Scope::Common && (stay.space_id.is_some() || early_read.is_some()) {
        return Ok(Batched::Alone);
    }
    let paid = match Money::total(stay.paid) {
        Ok(paid) => paid,
        Err(_) if scope == Scope::Common => return Ok(Batched::Alone),
        Err(e) => return Err(ApiError::internal(e).into()),
    };
    let priced = match billing::price(tx, &LotRules::from(gate), &stay, ev.captured_at).await {
        Ok(priced) if priced.clamped && scope == Scope::Common => return Ok(Batched::Alone),
        Ok(priced) => priced,
        Err(_) if scope == Scope::Common => return Ok(Batched::Alone),
        Err(e) => return Err(e.into()),
    };
    let decision = exit_decision(stay.kind, priced.bill.total, paid);
    let opens = decision.action == Action::Open;
    if let Some(entered_at) = early_read {
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
    // The bill (closing the stay if the barrier opens) and the event in one statement.
    let exit = opens.then_some((ev.captured_at, gate.gate_id));
    fx.writes.bill(stay.id, &priced.bill, exit);
    let answer = decision_into(
        &mut fx.writes,
        gate,
        ev,
        Some(stay.id),
        &decision,
        Some(&priced),
    );
    if opens {
        left(&stay, ev, fx);
    }
    Ok(Batched::Decided(answer))
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

/// An exit read with no stay to end, by the gate's policy: refused, or charged the tariff's
/// flat fee on a stay recorded without an entry.
async fn no_entry_record(
    tx: &mut PgConnection,
    gate: &GateContext,
    ev: &Event,
    fx: &mut Effects,
) -> Result<GateDecision, Failure> {
    // An emergency vehicle — its plate marked so, or registered exempt — passes first and
    // free (rule 1), also with no entry on record (its entry may be a fail-open passage not
    // recorded yet): let out free, its stay kept like a charged one's, so that a late entry
    // finds it.
    let emergency = ev.plate.mark().is_some()
        || registry::is_exempt(&mut *tx, gate.compound_id, ev.plate.as_str()).await?;
    let (fee, tariff_version_id) = match gate.policy.no_entry_record {
        _ if emergency => (Some(Money::ZERO), None),
        NoEntryRecord::ChargeTariffFee => {
            billing::no_entry_fee(tx, &LotRules::from(gate), ev.captured_at).await?
        }
        NoEntryRecord::Refuse => (None, None),
    };
    let Some(fee) = fee else {
        let detail = "exit read with no open session; refused".to_owned();
        anomaly(tx, gate, None, "no_entry_record", &ev.plate, detail).await?;
        let decision = Decision::new(Reason::NoEntryRecord, Direction::Exit, Money::ZERO);
        return Ok(decision_into(
            &mut fx.writes,
            gate,
            ev,
            None,
            &decision,
            None,
        ));
    };
    let session_id = record::new_id();
    let began = Began::AtExit {
        origin: Origin::NoEntryRecord,
        tariff_version_id,
    };
    sessions::insert_session(tx, &new_stay(session_id, gate, ev, &began)).await?;
    let bill = Bill::flat(LineCode::NoEntryFee, fee, "无入场记录");
    let kind = match emergency {
        true => SessionKind::Exempt,
        false => SessionKind::Visitor,
    };
    let decision = exit_decision(kind, fee, Money::ZERO);
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
        &decision,
        Some(&priced),
    ))
}
