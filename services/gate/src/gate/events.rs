//! Entry and exit events.
//!
//! Live reads are first offered to a batch (`batch`: many reads, one transaction); the flows
//! here decide a read on its own — the cases a batch leaves alone, every read of a batch that
//! failed, and every read when batching is off — and record offline passages.
//!
//! Each such event runs in one Postgres transaction that first takes an advisory lock on
//! (lot, plate), so a camera's retry racing its original is serialised. The answer is only
//! sent after the transaction commits: an acknowledged decision is durable. Redis occupancy is
//! updated inside the transaction for entries (the capacity check must happen before we
//! admit) and undone if the commit fails; for exits it is released after the commit.

use crate::error::ErrorCode;
use std::sync::Arc;

use actix_web::{post, web, HttpResponse};
use chrono::{DateTime, Duration, Utc};
use parkshare_domain::decision::{
    entry_decision, exit_decision, plan_entry, Decision, Direction, EntryPlan, PlateFacts, Pool,
    Reason, SessionKind, Standing,
};
use parkshare_domain::money::Money;
use parkshare_domain::plate::{Plate, PlateColour, PlateMark};
use parkshare_domain::policy::{NoEntryRecord, Reentry};
use parkshare_domain::vehicle::{ExemptClass, VehicleClass};
use parkshare_tariff::engine::LineCode;
use parkshare_tariff::Bill;
use serde::Deserialize;
use sqlx::{PgConnection, Postgres, Transaction};
use utoipa::ToSchema;
use uuid::Uuid;

pub use crate::state::lanes::Event;
pub use crate::store::answers::GateDecision;

use super::batch::Batched;
use crate::auth::Device;
use crate::billing::{self, LotRules, Priced};
use crate::error::{is_unique_violation, ApiError};
use crate::occupancy::{Occupy, RebuildMode};
use crate::sharing::gate as shared;
use crate::state::AppState;
use crate::store::registry::{GateContext, PlateFactsRow, PlateRead};
use crate::store::sessions::{self, DecisionWrites, NewAnomaly, NewGateEvent, NewSession, Session};
use crate::store::tariffs;
use crate::sync;

/// A capture time this far ahead of our clock is a device with a wrong clock, not a car.
const CAPTURE_AHEAD_S_MAX: i64 = 5 * 60;
/// Cameras buffer events while offline; older than this is not a live read.
const CAPTURE_AGE_DAYS_MAX: i64 = 30;
/// Device event ids are the camera's own record ids.
const DEVICE_EVENT_ID_CHARS_MAX: usize = 128;

/// A plate read posted by a barrier device.
#[derive(Debug, Deserialize, ToSchema)]
pub struct GateEventRequest {
    /// The gate (lane) that read the plate; must be the authenticated device's own gate.
    pub gate_id: Uuid,
    /// The plate as read, e.g. `京A12345`; spaces, separators and case are normalised.
    pub plate: String,
    /// `blue`, `yellow`, `green`, `yellow_green`, `white` or `black`.
    pub plate_colour: Option<String>,
    /// `small`, `large` or `new_energy`; takes precedence over the colour.
    pub vehicle_class: Option<String>,
    /// When the camera captured the plate (RFC 3339).
    pub captured_at: DateTime<Utc>,
    /// The device's own id for this read: retries with the same id get the same answer.
    pub device_event_id: String,
    /// True for a read the device buffered while it could not reach us: the car already
    /// passed. It is recorded and its stay reconstructed; the answer never opens the barrier.
    #[serde(default)]
    pub offline: bool,
}

impl Event {
    /// Checks a read however it arrived.
    pub fn new(
        plate: &str,
        class: Option<VehicleClass>,
        captured_at: DateTime<Utc>,
        device_event_id: &str,
        now: DateTime<Utc>,
    ) -> Result<Event, ApiError> {
        // The plate first: a camera's record key may be made of it (a Vzenith plateid with
        // the plate), and a bad plate is what the device must be told.
        let plate = Plate::parse(plate)
            .map_err(|e| ApiError::invalid(ErrorCode::MalformedPlate, e.to_string()))?;
        let device_event_id = device_event_id.trim();
        if device_event_id.is_empty()
            || device_event_id.chars().count() > DEVICE_EVENT_ID_CHARS_MAX
            || device_event_id.chars().any(char::is_control)
        {
            return Err(ApiError::invalid(
                ErrorCode::InvalidDeviceEventId,
                format!(
                    "device_event_id must be 1 to {DEVICE_EVENT_ID_CHARS_MAX} printable characters"
                ),
            ));
        }
        if captured_at > now + Duration::seconds(CAPTURE_AHEAD_S_MAX) {
            return Err(ApiError::invalid(
                ErrorCode::CaptureTimeInFuture,
                "captured_at is in the future; check the device clock",
            ));
        }
        if captured_at < now - Duration::days(CAPTURE_AGE_DAYS_MAX) {
            return Err(ApiError::invalid(
                ErrorCode::CaptureTimeTooOld,
                format!("captured_at is more than {CAPTURE_AGE_DAYS_MAX} days old"),
            ));
        }
        Ok(Event {
            plate,
            class,
            captured_at,
            device_event_id: device_event_id.to_owned(),
            offline: false,
            source: "api",
        })
    }

    fn parse(body: &GateEventRequest, now: DateTime<Utc>) -> Result<Event, ApiError> {
        let colour_class = match &body.plate_colour {
            None => None,
            Some(colour) => {
                let colour: PlateColour = serde_json::from_value(serde_json::Value::String(
                    colour.clone(),
                ))
                .map_err(|_| {
                    ApiError::invalid(
                        ErrorCode::UnknownPlateColour,
                        format!("unknown plate colour '{colour}'"),
                    )
                })?;
                Some(VehicleClass::from_colour(colour))
            }
        };
        let class = match &body.vehicle_class {
            None => colour_class,
            Some(text) => Some(VehicleClass::parse(text).ok_or_else(|| {
                ApiError::invalid(
                    ErrorCode::UnknownVehicleClass,
                    format!("unknown vehicle class '{text}'"),
                )
            })?),
        };
        let mut event = Event::new(
            &body.plate,
            class,
            body.captured_at,
            &body.device_event_id,
            now,
        )?;
        event.offline = body.offline;
        Ok(event)
    }
}

/// Post an entry or exit plate read and get the barrier decision.
#[utoipa::path(
    tag = "gate",
    operation_id = "post_event",
    security(("device_token" = [])),
    request_body = GateEventRequest,
    responses(
        (status = 200, description = "Decision (open or refuse)", body = GateDecision),
        (status = 403, description = "The event names another gate than the device's own: `gate_not_permitted`", body = crate::error::ErrorBody),
    )
)]
#[post("/v1/gate/events")]
pub async fn post_event(
    state: web::Data<AppState>,
    device: Device,
    body: web::Json<GateEventRequest>,
) -> Result<HttpResponse, ApiError> {
    let gate = device.0;
    if body.gate_id != gate.gate_id {
        return Err(ApiError::Forbidden {
            code: ErrorCode::GateNotPermitted,
            message: "a device may only post events for its own gate".into(),
        });
    }
    // A read from the future (a device clock running ahead) is judged by the service's clock.
    let event = Event::parse(&body, state.clock.now())?;
    super::lanes::traffic(&state, gate.gate_id);
    let response = super::lanes::decide_in_time(&state, &gate, event).await?;
    Ok(HttpResponse::Ok().json(&response))
}

/// Decides a live read, or records an offline one, and returns the stored answer. Whatever
/// it returns is durable in Postgres.
pub async fn decide(
    state: &AppState,
    gate: &Arc<GateContext>,
    event: &Event,
) -> Result<GateDecision, ApiError> {
    let mut attempt = 1;
    let result = loop {
        let result = match (event.offline, gate.direction) {
            (true, _) => super::facts::record(state, gate, event).await,
            (false, direction) => match state.batches.decide(gate, event).await {
                Batched::Decided(response) => Ok(response),
                Batched::Alone if direction == Direction::Entry => entry(state, gate, event).await,
                Batched::Alone => exit(state, gate, event).await,
            },
        };
        match result {
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
                break match committed_after_all(state, gate, event).await {
                    Some(response) => Ok(response),
                    None => Err(failure),
                };
            }
            result => break result,
        }
    };
    let response = match result {
        Err(Failure::Db(e)) if is_unique_violation(&e, "gate_events_device_event_key") => {
            // The same device event id raced in with another plate: answer as the winner did.
            sessions::response_by_device_event(&state.db, gate.gate_id, &event.device_event_id)
                .await?
                .map(GateDecision::replayed)
                .ok_or_else(|| {
                    ApiError::Internal(anyhow::anyhow!("device event vanished after conflict"))
                })?
        }
        Err(Failure::Db(e)) => return Err(e.into()),
        Err(Failure::Api(e)) => return Err(e),
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

/// Attempts at deciding a read whose transaction Postgres aborted in a conflict (a deadlock,
/// a serialization failure, a second car on one space): the lane is waiting, so only a few.
const DECIDE_ATTEMPTS_MAX: u32 = 3;
/// Pause before deciding again, times the attempt, so that the conflicting transactions do
/// not meet again at once.
const CONFLICT_BACKOFF_MS: u64 = 10;
/// How long the answer waits to learn whether a commit it lost track of happened.
const REREAD_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

pub(super) enum Failure {
    Db(sqlx::Error),
    Api(ApiError),
}

impl Failure {
    /// Postgres aborted the transaction in a conflict: nothing committed, deciding again may
    /// succeed.
    fn is_retryable(&self) -> bool {
        match self {
            Failure::Db(e) => crate::error::is_retryable(e),
            Failure::Api(e) => e.is_retryable(),
        }
    }

    /// The connection failed, possibly while a commit was on its way: whether it happened is
    /// not known from here.
    fn outcome_unknown(&self) -> bool {
        match self {
            Failure::Db(e) => crate::error::is_outage(e),
            Failure::Api(ApiError::Unavailable(cause)) => cause
                .downcast_ref::<sqlx::Error>()
                .is_some_and(crate::error::is_outage),
            Failure::Api(_) => false,
        }
    }

    /// The same failure once the store was asked and the decision is known not to stand: the
    /// answer is 503 and nobody asks again.
    fn not_committed(self) -> Failure {
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

/// The answer stored for this read if its decision committed after all (its connection failed
/// with the commit on its way). A 503 says nothing was decided, so it is only given once the
/// store says so (or cannot be asked: then the retry finds out, as `duplicate`).
pub(super) async fn committed_after_all(
    state: &AppState,
    gate: &GateContext,
    ev: &Event,
) -> Option<GateDecision> {
    let stored = sessions::response_by_device_event(&state.db, gate.gate_id, &ev.device_event_id);
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

/// The stored answer if this read was already decided: the same device event id, or the
/// same plate opened this gate within the duplicate window. A refused read is decided again
/// instead (a place may have freed, a payment arrived); deciding it again creates nothing.
async fn replay(
    tx: &mut PgConnection,
    gate: &GateContext,
    ev: &Event,
) -> sqlx::Result<Option<GateDecision>> {
    let prior = sessions::prior_response(
        &mut *tx,
        gate.gate_id,
        &ev.device_event_id,
        ev.plate.as_str(),
        ev.captured_at,
        gate.policy.duplicate_window_s,
    )
    .await?;
    Ok(prior.map(GateDecision::replayed))
}

/// Stores the event with its answer and returns the answer.
pub(super) async fn record_decision(
    tx: &mut PgConnection,
    gate: &GateContext,
    ev: &Event,
    session_id: Option<Uuid>,
    decision: &Decision,
    priced: Option<&Priced>,
) -> Result<GateDecision, Failure> {
    let mut writes = DecisionWrites::default();
    let response = decision_into(&mut writes, gate, ev, session_id, decision, priced);
    sessions::write_decisions(tx, &writes).await?;
    Ok(response)
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
    let response = respond(gate, ev, session_id, decision, priced);
    writes.event(&NewGateEvent {
        device_event_id: &ev.device_event_id,
        captured_at: ev.captured_at,
        response: &response,
        source: ev.source,
        offline: ev.offline,
    });
    response
}

/// The answer as the device gets it and the store keeps it.
fn respond(
    gate: &GateContext,
    ev: &Event,
    session_id: Option<Uuid>,
    decision: &Decision,
    priced: Option<&Priced>,
) -> GateDecision {
    GateDecision {
        // Time-ordered ids: gate events and stays are the tables that grow without end, and
        // random keys would scatter every insert over their primary-key indexes.
        event_id: Uuid::now_v7(),
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
    }
}

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

pub(super) async fn begin_for_plate<'a>(
    state: &'a AppState,
    gate: &GateContext,
    plate: &Plate,
) -> sqlx::Result<Transaction<'a, Postgres>> {
    state
        .db
        .begin_with(sessions::begin_locking_plate(gate.lot_id, plate.as_str()))
        .await
}

// ---- entry ---------------------------------------------------------------------------------

enum EntryOutcome {
    Done(GateDecision),
    /// Redis had lost the lot's occupancy; rebuild it and decide again.
    RebuildNeeded,
}

async fn entry(state: &AppState, gate: &GateContext, ev: &Event) -> Result<GateDecision, Failure> {
    // Two attempts: the second follows a rebuild, which cannot be needed twice in a row
    // unless Redis is losing data continuously.
    for _ in 0..2 {
        match try_entry(state, gate, ev).await? {
            EntryOutcome::Done(response) => return Ok(response),
            EntryOutcome::RebuildNeeded => {
                sync::rebuild_lot(state, gate.lot_id, RebuildMode::IfMissing).await?;
            }
        }
    }
    Err(ApiError::Unavailable(anyhow::anyhow!(
        "occupancy of lot {} keeps disappearing",
        gate.lot_id
    ))
    .into())
}

/// What the registry says about the read plate at the capture time, and its standing.
/// `booking_early_min`: how early a booked plate counts as due.
pub(super) async fn plate_standing(
    tx: &mut PgConnection,
    gate: &GateContext,
    ev: &Event,
    booking_early_min: i32,
) -> sqlx::Result<(PlateFactsRow, Standing)> {
    let read = plate_read(gate, ev, booking_early_min);
    let facts = crate::store::registry::plate_facts(tx, &read).await?;
    let standing = standing_of(&facts, &ev.plate);
    Ok((facts, standing))
}

/// A read as the plate-facts and exit queries need it.
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

/// The plate's standing at the gate by the registry's facts.
pub(super) fn standing_of(facts: &PlateFactsRow, plate: &Plate) -> Standing {
    Standing::of(PlateFacts {
        exempt: exempt_class(facts.exempt_class.as_deref(), plate),
        blocklisted: facts.blocklisted,
        valid_permit: facts.valid_permit,
        registered_owner_vehicle: facts.vehicle_class.is_some(),
    })
}

fn exempt_class(registered: Option<&str>, plate: &Plate) -> Option<ExemptClass> {
    registered
        .and_then(ExemptClass::parse)
        .or(match plate.mark() {
            Some(PlateMark::EmergencyRescue) => Some(ExemptClass::Fire),
            Some(PlateMark::Police) => Some(ExemptClass::Police),
            None => None,
        })
}

async fn try_entry(
    state: &AppState,
    gate: &GateContext,
    ev: &Event,
) -> Result<EntryOutcome, Failure> {
    let mut tx = begin_for_plate(state, gate, &ev.plate).await?;
    let early_min = i32::try_from(gate.policy.booking_early_arrival_min).unwrap_or(0);
    let (mut facts, standing) = plate_standing(&mut tx, gate, ev, early_min).await?;
    if let Some(prior) = facts.prior_response.take() {
        return Ok(EntryOutcome::Done(prior.0.replayed()));
    }
    let kind = match plan_entry(standing) {
        EntryPlan::Refuse(reason) => {
            let response = record_decision(
                &mut tx,
                gate,
                ev,
                None,
                &Decision::new(reason, Direction::Entry, Money::ZERO),
                None,
            )
            .await?;
            super::answer::commit(tx).await?;
            return Ok(EntryOutcome::Done(response));
        }
        EntryPlan::Admit(kind) => kind,
    };

    if let Some(old_id) = facts.open_session_id {
        match gate.policy.reentry {
            Reentry::Refuse => {
                let detail = format!("entry read while session {} is open", old_id);
                anomaly(
                    &mut tx,
                    gate,
                    Some(old_id),
                    "already_inside",
                    &ev.plate,
                    detail,
                )
                .await?;
                let decision = Decision::new(Reason::AlreadyInside, Direction::Entry, Money::ZERO);
                let response =
                    record_decision(&mut tx, gate, ev, Some(old_id), &decision, None).await?;
                super::answer::commit(tx).await?;
                return Ok(EntryOutcome::Done(response));
            }
            Reentry::CloseAndReopen => {
                // The stay it closes ended at the latest when the car came in again: its fee is
                // fixed at this entry, so nothing after it is charged on both stays.
                if let Some(old) = sessions::session(&mut *tx, gate.tenant_id, old_id).await? {
                    match billing::price(&mut tx, &LotRules::from(gate), &old, ev.captured_at).await
                    {
                        Ok(priced) => {
                            sessions::bill_session(&mut tx, old_id, &priced.bill, None).await?;
                        }
                        // Not billable automatically (a stay of over 400 days): staff settle it.
                        Err(ApiError::Invalid { .. }) => {}
                        Err(e) => return Err(e.into()),
                    }
                }
                sessions::close_as_anomaly(&mut *tx, old_id, "missed_exit").await?;
                let detail = format!(
                    "exit of session {} was never read; closed at the next entry",
                    old_id
                );
                anomaly(
                    &mut tx,
                    gate,
                    Some(old_id),
                    "missed_exit",
                    &ev.plate,
                    detail,
                )
                .await?;
            }
        }
    }

    let plate = ev.plate.as_str();
    // Shared-space work only when the plate facts say there is some.
    let mut booking = match kind {
        SessionKind::Visitor | SessionKind::Owner if facts.booking_due => {
            shared::booking_for_entry(&mut tx, gate, plate, ev.captured_at, state.clock.now())
                .await?
        }
        SessionKind::Permit if facts.own_space_taken => {
            shared::owner_home_early(&mut tx, gate, plate, ev.captured_at, state.clock.now())
                .await?;
            None
        }
        _ => None,
    };
    // A booked car has its own space: it does not count against the visitor pool.
    let mut pool = if booking.is_some() {
        Pool::Reserved
    } else {
        kind.pool()
    };
    // Emergency vehicles pass first (rule 1) and take no capacity: they are decided without
    // Redis, and counted there after the commit (best-effort; the reconciler repairs a miss).
    let exempt = pool == Pool::Exempt;
    let mut occupied = if exempt {
        Occupy::Granted { previous: None }
    } else {
        state.occupancy.occupy(gate.lot_id, &ev.plate, pool).await?
    };
    if matches!(occupied, Occupy::Full) && kind == SessionKind::Visitor {
        let now = state.clock.now();
        if let Some(walk_in) =
            shared::place_walk_in(&mut tx, gate, plate, ev.captured_at, now).await?
        {
            booking = Some(walk_in);
            pool = Pool::Reserved;
            occupied = state.occupancy.occupy(gate.lot_id, &ev.plate, pool).await?;
        }
    }
    let previous = match occupied {
        Occupy::Missing => return Ok(EntryOutcome::RebuildNeeded),
        Occupy::Full => {
            let response =
                record_decision(&mut tx, gate, ev, None, &entry_decision(kind, false), None)
                    .await?;
            super::answer::commit(tx).await?;
            return Ok(EntryOutcome::Done(response));
        }
        Occupy::Granted { previous } => previous,
    };
    // A place is held in Redis: from here every failure must give it back.
    let committed = async {
        let class = ev
            .class
            .or(facts.vehicle_class.as_deref().and_then(VehicleClass::parse));
        let session_id = Uuid::now_v7();
        let stay = NewSession {
            id: session_id,
            tenant_id: gate.tenant_id,
            compound_id: gate.compound_id,
            lot_id: gate.lot_id,
            plate: ev.plate.as_str(),
            vehicle_class: class.unwrap_or(VehicleClass::Small).as_str(),
            kind: kind.as_str(),
            pool: pool.as_str(),
            origin: "entry",
            entered_at: Some(ev.captured_at),
            entry_gate_id: Some(gate.gate_id),
            tariff_version_id: facts.tariff_version_id,
            // A booked space, or the space a renter rents (its stay is that space's use).
            space_id: booking.as_ref().map(|b| b.space_id).or(match kind {
                SessionKind::Permit => facts.rental_space_id,
                _ => None,
            }),
        };
        let decision = match &booking {
            Some(booking) => {
                let mut decision =
                    Decision::new(Reason::BookingAdmitted, Direction::Entry, Money::ZERO);
                decision.display = format!("预约车位 {} 欢迎光临", booking.space_code);
                decision
            }
            None => entry_decision(kind, true),
        };
        // The stay and the event that admitted it go in one statement.
        let mut writes = DecisionWrites::default();
        writes.stay(&stay);
        let response = decision_into(&mut writes, gate, ev, Some(session_id), &decision, None);
        sessions::write_decisions(&mut tx, &writes).await?;
        if let Some(booking) = &booking {
            shared::arrived(&mut tx, booking, session_id, state.clock.now()).await?;
        }
        super::answer::commit(tx).await?;
        Ok::<_, Failure>(response)
    }
    .await;
    match committed {
        Ok(response) => {
            if exempt {
                super::facts::count_inside(state, gate, &ev.plate, pool).await;
            }
            Ok(EntryOutcome::Done(response))
        }
        // The commit may have happened: then the car has its place and its stay.
        Err(failure) if failure.outcome_unknown() => {
            match committed_after_all(state, gate, ev).await {
                Some(response) => {
                    if exempt {
                        super::facts::count_inside(state, gate, &ev.plate, pool).await;
                    }
                    Ok(EntryOutcome::Done(response))
                }
                None => {
                    if !exempt {
                        give_back(state, gate, ev, pool, previous).await;
                    }
                    // Asked once: `decide` must not wait on the store again.
                    Err(failure.not_committed())
                }
            }
        }
        Err(failure) => {
            if !exempt {
                give_back(state, gate, ev, pool, previous).await;
            }
            Err(failure)
        }
    }
}

/// Returns the place an entry took in Redis and did not keep.
async fn give_back(
    state: &AppState,
    gate: &GateContext,
    ev: &Event,
    pool: Pool,
    previous: Option<Pool>,
) {
    if let Err(e) = state
        .occupancy
        .release(gate.lot_id, &ev.plate, pool, previous)
        .await
    {
        tracing::error!(lot_id = %gate.lot_id, error = %e, "could not return a place; rebuild will fix it");
    }
}

// ---- exit ----------------------------------------------------------------------------------

async fn exit(state: &AppState, gate: &GateContext, ev: &Event) -> Result<GateDecision, Failure> {
    let mut tx = begin_for_plate(state, gate, &ev.plate).await?;
    if let Some(response) = replay(&mut tx, gate, ev).await? {
        return Ok(response);
    }
    let session = match sessions::open_session(&mut *tx, gate.lot_id, ev.plate.as_str()).await? {
        Some(session) => Some(session),
        None => confusable_session(&mut tx, gate, &ev.plate).await?,
    };
    // A stay whose entry was recorded late, closed at this car's earlier refused exit read:
    // the car was still at the barrier, and this read ends the stay again.
    let session = match session {
        Some(session) => Some(session),
        None => {
            sessions::closed_at_refused_exit(
                &mut *tx,
                gate.lot_id,
                ev.plate.as_str(),
                ev.captured_at,
            )
            .await?
        }
    };
    let Some(session) = session else {
        return no_entry_record(tx, gate, ev).await;
    };
    let kind = SessionKind::parse(&session.kind).ok_or_else(|| {
        ApiError::Internal(anyhow::anyhow!(
            "session {} has kind {}",
            session.id,
            session.kind
        ))
    })?;
    let priced = billing::price(&mut tx, &LotRules::from(gate), &session, ev.captured_at).await?;
    let bill = &priced.bill;
    let paid = Money::total(session.paid).map_err(|e| ApiError::Internal(e.into()))?;
    let decision = exit_decision(kind, bill.total, paid);
    let opens = decision.action == parkshare_domain::decision::Action::Open;
    if let Some(entered_at) = session.entered_at.filter(|at| *at > ev.captured_at) {
        let detail = format!(
            "exit captured at {} before entry at {entered_at}",
            ev.captured_at
        );
        anomaly(
            &mut tx,
            gate,
            Some(session.id),
            "exit_before_entry",
            &ev.plate,
            detail,
        )
        .await?;
    }
    if priced.clamped {
        let detail = format!("bill lowered to the regulated ceiling: ¥{}", bill.total);
        anomaly(
            &mut tx,
            gate,
            Some(session.id),
            "tariff_clamped",
            &ev.plate,
            detail,
        )
        .await?;
    }
    let exit = opens.then_some((ev.captured_at, gate.gate_id));
    // The bill (closing the stay if the barrier opens) and the event in one statement.
    let mut writes = DecisionWrites::default();
    writes.bill(session.id, bill, exit);
    let response = decision_into(
        &mut writes,
        gate,
        ev,
        Some(session.id),
        &decision,
        Some(&priced),
    );
    sessions::write_decisions(&mut tx, &writes).await?;
    if opens && session.anomaly.as_deref() == Some(sessions::CLOSED_AT_REFUSED_EXIT) {
        // It left now: no later read is this stay's.
        sessions::mark_anomaly(&mut *tx, session.id, "offline_reconstructed").await?;
    }
    // Only a stay placed on a shared space has a booking to close.
    if opens && session.space_id.is_some() {
        shared::exited(&mut tx, session.id, ev.captured_at, state.clock.now()).await?;
    }
    super::answer::commit(tx).await?;

    if opens {
        crate::failpoints::exit_committed();
        release_after_exit(state, gate, &session).await;
    }
    Ok(response)
}

/// Gives the place of a stay that has durably left back in Redis. Only stays opened by an
/// entry hold one. A release that fails (a dropped connection, a Redis that does not answer)
/// is tried again in the background ([`retry_release`]); what that cannot do the reconciler
/// repairs.
pub(super) async fn release_after_exit(state: &AppState, gate: &GateContext, session: &Session) {
    if session.origin != "entry" {
        return;
    }
    let (Ok(plate), Some(pool)) = (
        Plate::parse(&session.plate),
        parkshare_domain::decision::Pool::parse(&session.pool),
    ) else {
        tracing::error!(session_id = %session.id, "stored stay has an unreadable plate or pool");
        return;
    };
    if let Err(e) = state
        .occupancy
        .release(gate.lot_id, &plate, pool, None)
        .await
    {
        tracing::warn!(lot_id = %gate.lot_id, error = %e, "exit committed but Redis release failed; trying again");
        retry_release(&state.db, &state.occupancy, gate.lot_id, plate, pool);
    }
}

/// Pauses before each new try of a release that failed after its exit committed.
const RELEASE_RETRY_PAUSES_MS: [u64; 3] = [100, 400, 1_500];

/// Tries a failed release again in the background, a few times, so that a place given back
/// during a short Redis fault (a storm of dropped connections, a reconnect) is not held until
/// the reconciler's next pass. Each try first asks Postgres whether the car is inside again
/// (then its place is rightly taken, and nothing is done); the release itself only acts while
/// Redis lists the plate in `pool`, so a try after one that did succeed changes nothing.
pub(super) fn retry_release(
    db: &sqlx::PgPool,
    occupancy: &crate::occupancy::Occupancy,
    lot_id: Uuid,
    plate: Plate,
    pool: Pool,
) {
    let (db, occupancy) = (db.clone(), occupancy.clone());
    tokio::spawn(async move {
        for pause in RELEASE_RETRY_PAUSES_MS {
            tokio::time::sleep(std::time::Duration::from_millis(pause)).await;
            match sessions::open_session(&db, lot_id, plate.as_str()).await {
                Ok(Some(_)) => return, // inside again: the place is its new stay's
                Ok(None) => {}
                Err(_) => continue,
            }
            if occupancy.release(lot_id, &plate, pool, None).await.is_ok() {
                return;
            }
        }
        tracing::error!(%lot_id, "exit committed but its Redis release failed on every try; the reconciler will repair it");
    });
}

/// A retried exit answered from its stored answer: the attempt that decided it may have
/// committed and then died, or lost Redis, before giving the place back. The retry gives it
/// back now, unless the car is inside again; the release only acts while Redis still lists the
/// plate in the stay's pool, so doing it twice does nothing. (The reconciler would repair the
/// place too, within its interval; a lane of a full lot should not wait for it.)
async fn finish_release(state: &AppState, gate: &GateContext, response: &GateDecision) {
    let Some(id) = response.session_id else {
        return;
    };
    let stay = async {
        let Some(stay) = sessions::session(&state.db, gate.tenant_id, id).await? else {
            return Ok(None);
        };
        let inside_again = stay.status == "open"
            || sessions::open_session(&state.db, gate.lot_id, &stay.plate)
                .await?
                .is_some();
        Ok::<_, sqlx::Error>((!inside_again).then_some(stay))
    }
    .await;
    match stay {
        Ok(Some(stay)) => release_after_exit(state, gate, &stay).await,
        Ok(None) => {}
        Err(e) => {
            tracing::warn!(session_id = %id, error = %e, "could not check a retried exit's release");
        }
    }
}

/// Opens the record of a stay seen only at its exit: a visitor with no entry time.
pub(super) async fn insert_entryless(
    tx: &mut PgConnection,
    gate: &GateContext,
    ev: &Event,
    origin: &str,
    tariff_version_id: Option<Uuid>,
) -> sqlx::Result<Uuid> {
    let session_id = Uuid::now_v7();
    sessions::insert_session(
        tx,
        &NewSession {
            id: session_id,
            tenant_id: gate.tenant_id,
            compound_id: gate.compound_id,
            lot_id: gate.lot_id,
            plate: ev.plate.as_str(),
            vehicle_class: ev.class.unwrap_or(VehicleClass::Small).as_str(),
            kind: SessionKind::Visitor.as_str(),
            pool: SessionKind::Visitor.pool().as_str(),
            origin,
            entered_at: None,
            entry_gate_id: None,
            tariff_version_id,
            space_id: None,
        },
    )
    .await?;
    Ok(session_id)
}

/// The unique open session whose plate differs from the read by one confusable character.
pub(super) async fn confusable_session(
    tx: &mut PgConnection,
    gate: &GateContext,
    read: &Plate,
) -> Result<Option<Session>, Failure> {
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

async fn no_entry_record(
    mut tx: Transaction<'_, Postgres>,
    gate: &GateContext,
    ev: &Event,
) -> Result<GateDecision, Failure> {
    // An emergency vehicle passes first and free (rule 1), also with no entry on record (its
    // entry may be a fail-open passage not recorded yet): let out free, its stay kept like a
    // charged one's, so that a late entry finds it.
    let emergency = ev.plate.mark().is_some();
    let (fee, tariff_version_id) = match gate.policy.no_entry_record {
        _ if emergency => (Some(Money::ZERO), None),
        NoEntryRecord::ChargeTariffFee => {
            billing::no_entry_fee(&mut tx, &LotRules::from(gate), ev.captured_at).await?
        }
        NoEntryRecord::Refuse => (None, None),
    };
    let Some(fee) = fee else {
        let detail = "exit read with no open session; refused".to_owned();
        anomaly(&mut tx, gate, None, "no_entry_record", &ev.plate, detail).await?;
        let decision = Decision::new(Reason::NoEntryRecord, Direction::Exit, Money::ZERO);
        let response = record_decision(&mut tx, gate, ev, None, &decision, None).await?;
        super::answer::commit(tx).await?;
        return Ok(response);
    };
    let session_id =
        insert_entryless(&mut tx, gate, ev, "no_entry_record", tariff_version_id).await?;
    let bill = Bill::flat(LineCode::NoEntryFee, fee, "无入场记录");
    let kind = if emergency {
        SessionKind::Exempt
    } else {
        SessionKind::Visitor
    };
    let decision = exit_decision(kind, fee, Money::ZERO);
    let exit = (fee.is_zero()).then_some((ev.captured_at, gate.gate_id));
    sessions::bill_session(&mut tx, session_id, &bill, exit).await?;
    sessions::mark_anomaly(&mut *tx, session_id, "no_entry_record").await?;
    let detail = format!("exit read with no open session; flat fee ¥{fee}");
    anomaly(
        &mut tx,
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
    let response = record_decision(
        &mut tx,
        gate,
        ev,
        Some(session_id),
        &decision,
        Some(&priced),
    )
    .await?;
    super::answer::commit(tx).await?;
    Ok(response)
}
