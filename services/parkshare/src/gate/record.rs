//! What a decided read writes and leaves behind, for every step of the pipeline: its answer
//! and gate event, the stays it opens, the anomalies it lists for staff, and the places it
//! gives back to Redis or counts there once it committed.

use parkshare_domain::decision::{Decision, Origin, Pool, SessionKind, Standing};
use parkshare_domain::plate::{Plate, PlateMark};
use parkshare_domain::vehicle::{ExemptClass, VehicleClass};
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use crate::billing::{self, LotRules, Priced};
use crate::error::ApiError;
use crate::occupancy::{Occupancy, Occupy, RebuildMode};
use crate::state::lanes::Event;
use crate::store::answers::GateDecision;
use crate::store::registry::{GateContext, PlateFactsRow};
use crate::store::sessions::{
    self, DecisionWrites, NewAnomaly, NewGateEvent, NewSession, PlateRead, Session,
};
use crate::store::sharing::Booking;

/// Everything the reads of one pipeline run leave to do besides answering: the writes of one
/// statement, the work in the transaction that needs their rows, the places held in Redis
/// (given back unless the transaction commits), and what follows the commit.
#[derive(Default)]
pub(super) struct Effects {
    pub writes: DecisionWrites,
    pub after_writes: Vec<AfterWrite>,
    pub holds: Vec<Hold>,
    /// Places of stays that leave, given back just before the commit.
    pub released: Vec<Place>,
    /// Cars inside whatever the capacity, counted after the commit.
    pub counted: Vec<Place>,
}

impl Effects {
    /// The run changes nothing: every step wrote its changes here (a decided read always
    /// stores its gate event), so nothing here means every read was a replay.
    pub fn is_empty(&self) -> bool {
        self.writes.is_empty()
            && self.after_writes.is_empty()
            && self.holds.is_empty()
            && self.released.is_empty()
            && self.counted.is_empty()
    }
}

/// Work in the transaction after the writes, on the rows they wrote.
pub(super) enum AfterWrite {
    /// The booking's car came in on the stay just opened.
    Arrived {
        booking: Box<Booking>,
        session_id: Uuid,
    },
    /// A stay closed at a refused exit read has now left.
    Reconstructed { session_id: Uuid },
    /// A stay on a shared space left: its booking ends.
    Exited {
        session_id: Uuid,
        at: chrono::DateTime<chrono::Utc>,
    },
}

/// A place taken in Redis, and the pool the plate held before it, if any.
pub(super) struct Hold {
    pub place: Place,
    pub previous: Option<Pool>,
}

/// Why a pipeline run decided nothing. Nothing of it was committed, unless the commit's
/// outcome is unknown ([`Failure::outcome_unknown`]).
#[derive(Debug)]
pub enum Failure {
    Db(sqlx::Error),
    Api(ApiError),
    /// Redis had lost the lot's occupancy: rebuild it and decide again.
    RebuildNeeded(Uuid),
}

impl Failure {
    /// Postgres aborted the transaction in a conflict: nothing committed, deciding again may
    /// succeed.
    pub fn is_retryable(&self) -> bool {
        match self {
            Failure::Db(e) => crate::error::is_retryable(e),
            Failure::Api(e) => e.is_retryable(),
            Failure::RebuildNeeded(_) => false,
        }
    }

    /// The connection failed, possibly while a commit was on its way: whether it happened is
    /// not known from here.
    pub fn outcome_unknown(&self) -> bool {
        match self {
            Failure::Db(e) => crate::error::is_outage(e),
            Failure::Api(ApiError::Unavailable(cause)) => cause
                .downcast_ref::<sqlx::Error>()
                .is_some_and(crate::error::is_outage),
            Failure::Api(_) | Failure::RebuildNeeded(_) => false,
        }
    }

    /// The same failure once the store was asked and the decision is known not to stand: the
    /// answer is 503 and nobody asks again.
    pub fn not_committed(self) -> Failure {
        match self {
            Failure::Db(e) => Failure::Api(ApiError::Unavailable(anyhow::anyhow!(
                "the decision did not commit: {e}"
            ))),
            Failure::Api(ApiError::Unavailable(cause)) => Failure::Api(ApiError::Unavailable(
                anyhow::anyhow!("the decision did not commit: {cause}"),
            )),
            other => other,
        }
    }
}

impl From<super::answer::NotCommitted> for Failure {
    fn from(e: super::answer::NotCommitted) -> Failure {
        match e {
            super::answer::NotCommitted::Db(e) => Failure::Db(e),
            gave_up => Failure::Api(gave_up.into()),
        }
    }
}

impl From<sqlx::Error> for Failure {
    fn from(e: sqlx::Error) -> Failure {
        Failure::Db(e)
    }
}

impl From<ApiError> for Failure {
    fn from(e: ApiError) -> Failure {
        Failure::Api(e)
    }
}

impl From<redis::RedisError> for Failure {
    fn from(e: redis::RedisError) -> Failure {
        Failure::Api(e.into())
    }
}

/// A read as the plate-facts and exit statements need it. `booking_early_min`: how early a
/// booked plate counts as due.
pub(super) fn plate_read<'a>(
    gate: &GateContext,
    ev: &'a Event,
    booking_early_min: i32,
) -> PlateRead<'a> {
    PlateRead {
        compound_id: gate.compound_id,
        lot_id: gate.lot_id,
        gate_id: gate.gate_id,
        plate: ev.plate.as_str(),
        device_event_id: &ev.device_event_id,
        local_date: ev.captured_at.with_timezone(&gate.time_zone).date_naive(),
        at: ev.captured_at,
        early_arrival_min: booking_early_min,
        duplicate_window_s: gate.policy.duplicate_window_s,
    }
}

/// The gate's booking tolerance, as the plate-facts statement takes it.
pub(super) fn booking_early_min(gate: &GateContext) -> i32 {
    i32::try_from(gate.policy.booking_early_arrival_min).unwrap_or(0)
}

/// The plate's standing at the gate by the registry's facts.
pub(super) fn standing_of(facts: &PlateFactsRow, plate: &Plate) -> Standing {
    Standing::of(parkshare_domain::decision::PlateFacts {
        exempt: exempt_class(facts.exempt_class.map(|w| w.0), plate),
        blocklisted: facts.blocklisted,
        valid_permit: facts.valid_permit,
        registered_owner_vehicle: facts.vehicle_class.is_some(),
    })
}

fn exempt_class(registered: Option<ExemptClass>, plate: &Plate) -> Option<ExemptClass> {
    registered.or(match plate.mark() {
        Some(PlateMark::EmergencyRescue) => Some(ExemptClass::Fire),
        Some(PlateMark::Police) => Some(ExemptClass::Police),
        None => None,
    })
}

/// The class a stay is billed as: the one read, else the registered one, else small.
pub(super) fn class_of(ev: &Event, registered: Option<VehicleClass>) -> VehicleClass {
    ev.class.or(registered).unwrap_or(VehicleClass::Small)
}

/// How a stay began: the one place a stay's row is made.
pub(super) enum Began {
    /// At an entry read (live or recorded late): it holds a place in `pool`.
    Entered {
        kind: SessionKind,
        pool: Pool,
        class: VehicleClass,
        tariff_version_id: Option<Uuid>,
        /// A booked space, or the space a renter rents.
        space_id: Option<Uuid>,
    },
    /// Seen only at its exit: a stay with no entry time (`no_entry_record`, or `offline_exit`
    /// until its entry arrives): a visitor's, or an emergency vehicle's let out free.
    AtExit {
        kind: SessionKind,
        origin: Origin,
        tariff_version_id: Option<Uuid>,
    },
}

/// The row of a stay of `ev`'s car that began so.
pub(super) fn new_stay<'a>(
    id: Uuid,
    gate: &GateContext,
    ev: &'a Event,
    began: &Began,
) -> NewSession<'a> {
    let (kind, pool, class, origin, entered, tariff_version_id, space_id) = match *began {
        Began::Entered {
            kind,
            pool,
            class,
            tariff_version_id,
            space_id,
        } => (
            kind,
            pool,
            class,
            Origin::Entry,
            true,
            tariff_version_id,
            space_id,
        ),
        Began::AtExit {
            kind,
            origin,
            tariff_version_id,
        } => (
            kind,
            kind.pool(),
            ev.class.unwrap_or(VehicleClass::Small),
            origin,
            false,
            tariff_version_id,
            None,
        ),
    };
    NewSession {
        id,
        tenant_id: gate.tenant_id,
        compound_id: gate.compound_id,
        lot_id: gate.lot_id,
        plate: ev.plate.as_str(),
        vehicle_class: class,
        kind,
        pool,
        origin,
        entered_at: entered.then_some(ev.captured_at),
        entry_gate_id: entered.then_some(gate.gate_id),
        tariff_version_id,
        space_id,
    }
}

/// A new stay's id. Time-ordered ids: gate events and stays are the tables that grow without
/// end, and random keys would scatter every insert over their primary-key indexes.
pub(super) fn new_id() -> Uuid {
    Uuid::now_v7()
}

/// Adds the gate event of a decided read to `writes` and returns the answer it stores.
pub(super) fn decision_into(
    writes: &mut DecisionWrites,
    gate: &GateContext,
    ev: &Event,
    session_id: Option<Uuid>,
    decision: &Decision,
    priced: Option<&Priced>,
) -> GateDecision {
    let response = GateDecision {
        event_id: new_id(),
        gate_id: gate.gate_id,
        direction: gate.direction,
        plate: ev.plate.to_string(),
        action: decision.action,
        reason: decision.reason,
        display: decision.display.clone(),
        session_id,
        amount_due: decision.amount_due,
        bill: priced.map(|p| p.bill.clone()),
        filing_no: priced.and_then(|p| p.filing_no.clone()),
        duplicate: false,
    };
    writes.event(&NewGateEvent {
        device_event_id: &ev.device_event_id,
        captured_at: ev.captured_at,
        response: &response,
        source: ev.source,
        offline: ev.offline,
    });
    response
}

/// The answer already stored under this read's device event id, or under its plate within the
/// duplicate window, given again. A device event id that answered another plate is a device
/// reusing its ids (a counter reset): 409, since this read cannot be stored under that id and
/// the other car's answer must not open the barrier for this one.
pub(super) fn replayed(prior: GateDecision, ev: &Event) -> Result<GateDecision, Failure> {
    if prior.plate != ev.plate.as_str() {
        return Err(ApiError::conflict(
            crate::error::ErrorCode::DeviceEventIdReused,
            format!(
                "device_event_id '{}' already answered another plate's read at this gate: \
                 give every read its own id",
                ev.device_event_id
            ),
        )
        .into());
    }
    Ok(prior.replayed())
}

/// Lists a case for staff.
pub(super) async fn anomaly(
    tx: &mut PgConnection,
    gate: &GateContext,
    session_id: Option<Uuid>,
    kind: &str,
    plate: &Plate,
    detail: String,
) -> sqlx::Result<()> {
    sessions::insert_anomaly(
        tx,
        &NewAnomaly {
            tenant_id: gate.tenant_id,
            lot_id: gate.lot_id,
            session_id,
            gate_id: Some(gate.gate_id),
            kind,
            plate: plate.as_str(),
            detail,
        },
    )
    .await
}

/// A place in Redis to give back or to count once the transaction committed.
#[derive(Debug, Clone)]
pub(super) struct Place {
    pub lot_id: Uuid,
    pub plate: Plate,
    pub pool: Pool,
}

impl Place {
    /// The place a stay that left holds, if it holds one: only stays opened by an entry do.
    pub fn of_stay(stay: &sessions::Session) -> Option<Place> {
        if !stay.origin.holds_a_place() {
            return None;
        }
        match Plate::parse(&stay.plate) {
            Ok(plate) => Some(Place {
                lot_id: stay.lot_id,
                plate,
                pool: stay.pool,
            }),
            Err(_) => {
                tracing::error!(session_id = %stay.id, "stored stay has an unreadable plate");
                None
            }
        }
    }
}

/// Pauses before each new try of a release that failed after its exit committed.
const RELEASE_RETRY_PAUSES_MS: [u64; 3] = [100, 400, 1_500];

/// Places given back to Redis: those it took, and those whose release failed (a dropped
/// connection, a Redis that does not answer), for [`retry_release`] once the exit is
/// durable; what that cannot do the reconciler repairs.
#[derive(Default)]
pub(super) struct Released {
    pub done: Vec<Place>,
    pub failed: Vec<Place>,
}

/// Gives back the places of stays that left, all at once.
pub(super) async fn release(occupancy: &Occupancy, places: &[Place]) -> Released {
    let results = futures_util::future::join_all(
        places
            .iter()
            .map(|p| occupancy.release(p.lot_id, &p.plate, p.pool, None)),
    )
    .await;
    let mut released = Released::default();
    for (place, result) in places.iter().zip(results) {
        match result {
            Ok(_) => released.done.push(place.clone()),
            Err(e) => {
                tracing::warn!(lot_id = %place.lot_id, error = %e, "Redis release failed; trying again");
                released.failed.push(place.clone());
            }
        }
    }
    released
}

/// Tries a failed release again in the background, a few times, so that a place given back
/// during a short Redis fault (a storm of dropped connections, a reconnect) is not held until
/// the reconciler's next pass. Each try first asks Postgres whether the car is inside again
/// (then its place is rightly taken, and nothing is done); the release itself only acts while
/// Redis lists the plate in `pool`, so a try after one that did succeed changes nothing.
pub(super) fn retry_release(db: &PgPool, occupancy: &Occupancy, places: Vec<Place>) {
    for place in places {
        retry_one(db, occupancy, place);
    }
}

fn retry_one(db: &PgPool, occupancy: &Occupancy, place: Place) {
    let (db, occupancy) = (db.clone(), occupancy.clone());
    tokio::spawn(async move {
        for pause in RELEASE_RETRY_PAUSES_MS {
            tokio::time::sleep(std::time::Duration::from_millis(pause)).await;
            if release_if_gone(&db, &occupancy, &place).await.is_ok() {
                return;
            }
        }
        tracing::error!(lot_id = %place.lot_id, "exit committed but its Redis release failed on every try; the reconciler will repair it");
    });
}

/// Gives back the place of a car that durably left, after its exit's run (a retried exit, a
/// release Redis refused): under the plate's lock, and only while the car is not inside again.
/// A read of the plate (a re-entry) then either waits for this or is seen by it; it never has
/// its new place removed by a late release (issue 20's tester, round 2, F1b: two exit reads in
/// flight with an entry left Redis a car short). `Ok(false)`: inside again, nothing done.
pub(super) async fn release_if_gone(
    db: &PgPool,
    occupancy: &Occupancy,
    place: &Place,
) -> Result<bool, ApiError> {
    let (lot_id, plate) = (place.lot_id, place.plate.as_str());
    let mut tx = db
        .begin_with(sessions::begin_locking_plate(lot_id, plate))
        .await?;
    if sessions::open_session(&mut *tx, lot_id, plate)
        .await?
        .is_some()
    {
        return Ok(false); // inside again: the place is its new stay's
    }
    occupancy
        .release(lot_id, &place.plate, place.pool, None)
        .await?;
    tx.commit().await?;
    Ok(true)
}

/// Counts the cars a run records inside whatever the capacity (emergency vehicles, recorded
/// passages) before its commit, still under the plates' locks, and returns what each took, to
/// give back should the commit not happen. Counted after the commit, a count could land after
/// a later read of the plate had already let the car out (its release finding nothing to
/// remove): a car left in Redis that is gone (issue 20's tester, round 5, N1: both cameras
/// draining their offline buffers at once). A car whose lot Redis has lost is returned apart:
/// the lot's rebuild waits for the run's locks, so it is counted (and the lot rebuilt) after
/// the commit, by [`count_inside`].
pub(super) async fn count_before_commit(
    occupancy: &Occupancy,
    places: &[Place],
) -> (Vec<Hold>, Vec<Place>) {
    let (mut counted, mut lot_lost) = (Vec::new(), Vec::new());
    for place in places {
        let (lot, plate, pool) = (place.lot_id, &place.plate, place.pool);
        match occupancy.record_inside(lot, plate, pool).await {
            Ok(Occupy::Granted { previous }) => counted.push(Hold {
                place: place.clone(),
                previous,
            }),
            Ok(Occupy::Missing) => lot_lost.push(place.clone()),
            Ok(Occupy::Full) => {
                tracing::error!(lot_id = %lot, "a car inside was not counted in Redis; the reconciler will");
            }
            Err(e) => {
                tracing::error!(lot_id = %lot, error = %e, "a car inside was not counted in Redis");
            }
        }
    }
    (counted, lot_lost)
}

/// Counts cars that are inside whatever the capacity (emergency vehicles, recorded
/// passages). Postgres already holds their stays, so a failure here only leaves Redis behind
/// until the reconciler (or a rebuild) repairs it.
pub(super) async fn count_inside(db: &PgPool, occupancy: &Occupancy, places: &[Place]) {
    for place in places {
        let result = match occupancy
            .record_inside(place.lot_id, &place.plate, place.pool)
            .await
        {
            Ok(Occupy::Missing) => {
                crate::sync::rebuild_lot_in(db, occupancy, place.lot_id, RebuildMode::IfMissing)
                    .await
                    .map(drop)
                    .map_err(|e| format!("{e:?}"))
            }
            Ok(_) => Ok(()),
            Err(e) => Err(e.to_string()),
        };
        if let Err(e) = result {
            tracing::error!(lot_id = %place.lot_id, error = %e, "a car inside was not counted in Redis");
        }
    }
}

/// The stay an exit read ends when none is open under the plate as read: the one open stay
/// whose plate differs from the read by one confusable character (corrected, and listed for
/// staff), else a stay whose entry was recorded late and that was closed at this car's
/// earlier refused exit read (the car was still at the barrier; this read ends it again).
pub(super) async fn stay_leaving(
    tx: &mut PgConnection,
    gate: &GateContext,
    ev: &Event,
) -> sqlx::Result<Option<Session>> {
    if let Some(stay) = confusable_stay(tx, gate, &ev.plate).await? {
        return Ok(Some(stay));
    }
    sessions::closed_at_refused_exit(&mut *tx, gate.lot_id, ev.plate.as_str(), ev.captured_at).await
}

/// The unique open stay whose plate differs from the read by one confusable character.
async fn confusable_stay(
    tx: &mut PgConnection,
    gate: &GateContext,
    read: &Plate,
) -> sqlx::Result<Option<Session>> {
    let length = i32::try_from(read.as_str().chars().count()).unwrap_or(i32::MAX);
    let candidates = sessions::open_plates_of_length(&mut *tx, gate.lot_id, length).await?;
    let mut matches = candidates
        .iter()
        .filter_map(|p| Plate::parse(p).ok())
        .filter(|p| read.is_confusable_with(p));
    let (Some(matched), None) = (matches.next(), matches.next()) else {
        return Ok(None);
    };
    // Serialise with events for the matched plate too.
    sessions::lock_plate(&mut *tx, gate.lot_id, matched.as_str()).await?;
    let Some(session) = sessions::open_session(&mut *tx, gate.lot_id, matched.as_str()).await?
    else {
        return Ok(None);
    };
    let detail = format!("exit read {read} matched open session of {matched}");
    sessions::mark_anomaly(&mut *tx, session.id, "plate_corrected").await?;
    anomaly(tx, gate, Some(session.id), "plate_corrected", read, detail).await?;
    Ok(Some(session))
}

/// The plate's open stay closed as a missed exit, before the car is admitted again: its fee is
/// fixed at this entry, so nothing after it is charged on both stays.
pub(super) async fn close_missed_exit(
    tx: &mut PgConnection,
    gate: &GateContext,
    ev: &Event,
    open_id: Uuid,
) -> Result<(), Failure> {
    if let Some(old) = sessions::session(&mut *tx, gate.tenant_id, open_id).await? {
        match billing::price(tx, &LotRules::from(gate), &old, ev.captured_at).await {
            Ok(priced) => sessions::bill_session(tx, open_id, &priced.bill, None).await?,
            // Not billable automatically (a stay of over 400 days): staff settle it.
            Err(ApiError::Invalid { .. }) => {}
            Err(e) => return Err(e.into()),
        }
    }
    sessions::close_as_anomaly(&mut *tx, open_id, "missed_exit").await?;
    let detail = format!("exit of session {open_id} was never read; closed at the next entry");
    anomaly(tx, gate, Some(open_id), "missed_exit", &ev.plate, detail).await?;
    Ok(())
}
