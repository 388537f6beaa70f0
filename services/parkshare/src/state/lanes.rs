//! The data of the gate's lanes that lives as long as the process, held by [`AppState`]
//! (`super::AppState`). Only the data: what a lane does with it is the gate's — heartbeats,
//! fail-open and barrier commands in `gate::lanes`, batches in `gate::decide`, a lane giving up
//! in `gate::answer`, a read checked in `gate::events` (each adds its `impl` there). It lives
//! here, below every feature, so that the shared state can hold it without importing the gate.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::AtomicU8;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use parkshare_domain::plate::Plate;
use parkshare_domain::vehicle::VehicleClass;
use tokio::sync::{mpsc, oneshot};
use uuid::Uuid;

use super::journal::{Journal, Passage};
use crate::store::answers::GateDecision;
use crate::store::registry::GateContext;

/// Per-process lane state.
pub struct Lanes {
    /// How long a lane waits for a decision.
    pub budget: Duration,
    /// How long a manual open waits to reach its barrier.
    pub manual_open_ttl: Duration,
    /// A camera read pushed as live but older than this is recorded, never decided live
    /// (`vendors::event_of`).
    pub live_read_age_max: chrono::Duration,
    pub(crate) last_touch: Mutex<HashMap<Uuid, Instant>>,
    /// When each gate's last heartbeat was answered, to know a comet-mode camera.
    pub(crate) heartbeat_answered: Mutex<HashMap<Uuid, Instant>>,
    /// Woken when a manual open is queued, so a held heartbeat answers at once.
    pub(crate) opens_queued: tokio::sync::Notify,
    /// Fail-open passages, on disk until Postgres has them.
    pub journal: Journal,
    /// Fail-open passages the journal could not take (its disk failed): kept here, written
    /// to the journal when it takes them again, and lost with the process until then.
    pub(crate) unjournaled: Mutex<Vec<Passage>>,
    /// Decisions still running, by gate and device event id: a fail-open passage is recorded
    /// only after its own late decision has finished, so the two never race.
    pub(crate) in_flight: Mutex<HashSet<(Uuid, String)>>,
}

impl Lanes {
    pub fn new(
        budget: Duration,
        manual_open_ttl: Duration,
        live_read_age_max: Duration,
        journal: Journal,
    ) -> Lanes {
        Lanes {
            budget,
            manual_open_ttl,
            live_read_age_max: chrono::Duration::from_std(live_read_age_max)
                .unwrap_or(chrono::Duration::MAX),
            last_touch: Mutex::new(HashMap::new()),
            heartbeat_answered: Mutex::new(HashMap::new()),
            opens_queued: tokio::sync::Notify::new(),
            journal,
            unjournaled: Mutex::new(Vec::new()),
            in_flight: Mutex::new(HashSet::new()),
        }
    }
}

/// A validated plate read, from the JSON API or a camera adapter.
#[derive(Clone)]
pub struct Event {
    pub plate: Plate,
    pub class: Option<VehicleClass>,
    pub captured_at: DateTime<Utc>,
    pub device_event_id: String,
    /// The car already passed (a camera's offline buffer, a fail-open lane, a manual open):
    /// the event is recorded, sessions are reconstructed, and the barrier is never opened.
    pub offline: bool,
    /// `api`, the vendor's name, `fail_open` or `manual`.
    pub source: &'static str,
}

/// Whether the lane still waits for a decision, one of its commits started, or it gave up.
#[derive(Debug)]
pub struct Waiting(pub(crate) AtomicU8);

/// What a batch made of one read.
#[derive(Debug)]
pub enum Batched {
    /// The stored answer, durable in Postgres.
    Decided(GateDecision),
    /// Decide this read on its own.
    Alone,
}

/// A live read queued for a batch, and where its answer goes.
pub(crate) struct Job {
    pub(crate) gate: Arc<GateContext>,
    pub(crate) event: Event,
    pub(crate) reply: oneshot::Sender<Batched>,
    /// The lane waiting for the answer, if it may give up (`gate::answer`).
    pub(crate) waiting: Option<Arc<Waiting>>,
    /// The service's clock when the read arrived.
    pub(crate) now: DateTime<Utc>,
}

/// The batches of this process: one queue of live reads, and at most `workers` batches being
/// decided at once.
pub struct Batches {
    pub(crate) queue: Option<mpsc::Sender<Job>>,
}
