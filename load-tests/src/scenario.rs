//! One goose run.
//!
//! Open loop: every gate request has a scheduled start, `t0 + k / rate` for the k-th request
//! of the run, whatever happened to the earlier ones. A user waits for its request's slot and
//! sends; its latency is measured from the *scheduled* start, so a server that falls behind
//! shows it in the percentiles instead of slowing the generator down (coordinated omission).
//! Hundreds of goose users stand ready so that a slot rarely waits for a free user; when one
//! does, that wait counts as latency too.
//!
//! The cars: visitors with varied stays (a few minutes, free; up to five hours), half of them
//! prepaying at the booth and the rest paying at the barrier; permit holders; emergency
//! vehicles; duplicate camera reads; and, in the small "peak" lots, a morning peak of arrivals
//! that fills them so that later cars are refused `lot_full`. Each car enters before it exits.
//! Stays are simulated by capture times: a car enters "n minutes ago" and leaves now.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::Utc;
use goose::prelude::*;
use hdrhistogram::Histogram;
use rand::Rng;
use serde_json::{json, Value};

use crate::plates;
use crate::report::Report;
use crate::seed::{Lane, Lot, World};

/// What the run sends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mix {
    /// Cars through the gate API.
    Cars,
    /// The same cars, but every visitor stays within the free minutes: no quote, no
    /// payment, only the gate core's own work.
    FreeStays,
    /// `GET /healthz` of the same server: the ceiling of a trivial JSON endpoint.
    Trivial,
}

pub struct AttackConfig {
    pub mix: Mix,
    /// Gate requests (or trivial requests) per second.
    pub rate: f64,
    pub seconds: usize,
    /// Goose users standing ready.
    pub users: usize,
    /// Goose's HTML report, if wanted.
    pub report_file: Option<String>,
    /// Print goose's own tables.
    pub goose_tables: bool,
}

/// What one run records, beside goose's own metrics.
struct Recorder {
    /// Microseconds from the scheduled start to the answer, gate (or trivial) requests only.
    latency: Mutex<Histogram<u64>>,
    outcomes: Mutex<BTreeMap<String, u64>>,
    errors: Mutex<BTreeMap<String, u64>>,
    /// Event ids of decisions the server acknowledged (not replays).
    acked: Mutex<Vec<uuid::Uuid>>,
}

struct Run {
    world: World,
    free_stays: bool,
    interval: Duration,
    t0: Instant,
    next: AtomicU64,
    /// Slots in the run: `rate × seconds`; later requests are not sent.
    slots: u64,
    /// When the last answer came, in microseconds after `t0`.
    last_answer_us: AtomicU64,
    rec: Recorder,
}

/// How long a permit car keeps away from a lot it just used (`World::permit_trips`, kept
/// across the runs of a search): well past the gates' duplicate window (10 s by default).
/// Simulated stays are back-dated by a fixed 90 minutes, so two of the same car's trips seconds
/// apart would carry capture times seconds apart — which the gates rightly take for a camera's
/// duplicate read.
const PERMIT_REST: Duration = Duration::from_secs(30);

impl Run {
    /// Whether user `me`'s permit car may drive into `lot` now; if so, the trip is noted.
    fn permit_rested(&self, me: usize, lot: &Lot) -> bool {
        let Ok(mut trips) = self.world.permit_trips.lock() else {
            return false;
        };
        let now = Instant::now();
        let key = (me, lot.id.clone());
        if trips
            .get(&key)
            .is_some_and(|at| now.duration_since(*at) < PERMIT_REST)
        {
            return false;
        }
        trips.insert(key, now);
        true
    }
}

/// Time the run takes before its first slot: goose starts its users.
const WARM_UP: Duration = Duration::from_millis(1500);
/// Time after the last slot for the answers still on their way.
const DRAIN: Duration = Duration::from_secs(5);

static CURRENT: Mutex<Option<Arc<Run>>> = Mutex::new(None);

fn current() -> Option<Arc<Run>> {
    CURRENT.lock().ok().and_then(|run| run.clone())
}

impl Run {
    /// Waits for the next request slot; returns its scheduled start, or `None` when the
    /// run's slots are all taken.
    async fn slot(&self) -> Option<Instant> {
        let k = self.next.fetch_add(1, Ordering::Relaxed);
        if k >= self.slots {
            // Nothing more to send: idle until goose stops the users.
            tokio::time::sleep(Duration::from_millis(100)).await;
            return None;
        }
        let at = self.t0 + self.interval.mul_f64(k as f64);
        tokio::time::sleep_until(at.into()).await;
        Some(at)
    }

    fn count(&self, map: &Mutex<BTreeMap<String, u64>>, key: String) {
        if let Ok(mut map) = map.lock() {
            *map.entry(key).or_default() += 1;
        }
    }

    fn outcome(&self, key: String) {
        self.count(&self.rec.outcomes, key);
    }

    fn error(&self, key: String) {
        self.count(&self.rec.errors, key);
    }

    fn latency(&self, scheduled: Instant) {
        let micros = u64::try_from(scheduled.elapsed().as_micros()).unwrap_or(u64::MAX);
        let since_t0 = u64::try_from(self.t0.elapsed().as_micros()).unwrap_or(u64::MAX);
        self.last_answer_us.fetch_max(since_t0, Ordering::Relaxed);
        if let Ok(mut h) = self.rec.latency.lock() {
            h.saturating_record(micros.max(1));
        }
    }
}

/// Runs goose once at `config.rate` against `world` and reports.
pub async fn attack(world: &World, config: &AttackConfig) -> anyhow::Result<Report> {
    let run = Arc::new(Run {
        world: world.clone(),
        free_stays: config.mix == Mix::FreeStays,
        interval: Duration::from_secs_f64(1.0 / config.rate.max(0.001)),
        t0: Instant::now() + WARM_UP,
        next: AtomicU64::new(0),
        slots: (config.rate * config.seconds as f64).round() as u64,
        last_answer_us: AtomicU64::new(0),
        rec: Recorder {
            latency: Mutex::new(Histogram::new_with_bounds(1, 120_000_000, 3)?),
            outcomes: Mutex::new(BTreeMap::new()),
            errors: Mutex::new(BTreeMap::new()),
            acked: Mutex::new(Vec::new()),
        },
    });
    if let Ok(mut slot) = CURRENT.lock() {
        *slot = Some(run.clone());
    }
    let scenario = match config.mix {
        Mix::Cars | Mix::FreeStays => scenario!("cars")
            .register_transaction(transaction!(car).set_name("car"))
            .set_wait_time(Duration::ZERO, Duration::ZERO)?,
        Mix::Trivial => scenario!("trivial")
            .register_transaction(transaction!(trivial).set_name("healthz"))
            .set_wait_time(Duration::ZERO, Duration::ZERO)?,
    };
    let mut goose =
        GooseAttack::initialize_with_config(goose::config::GooseConfiguration::default())?
            .register_scenario(scenario)
            .set_default(GooseDefault::Host, world.base_url.as_str())?
            .set_default(GooseDefault::Users, config.users)?
            .set_default(GooseDefault::IncreaseRate, "1000")?
            .set_default(
                GooseDefault::RunTime,
                usize::try_from((WARM_UP + DRAIN).as_secs()).unwrap_or(7) + config.seconds,
            )?
            .set_default(GooseDefault::NoTelnet, true)?
            .set_default(GooseDefault::NoWebSocket, true)?
            .set_default(GooseDefault::NoResetMetrics, true)?
            .set_default(GooseDefault::Quiet, 1)?;
    if !config.goose_tables {
        goose = goose.set_default(GooseDefault::NoPrintMetrics, true)?;
    }
    if let Some(file) = &config.report_file {
        goose = goose.set_default(GooseDefault::ReportFile, file.as_str())?;
    }
    goose.execute().await?;
    if let Ok(mut slot) = CURRENT.lock() {
        *slot = None;
    }
    let poisoned = || anyhow::anyhow!("a load-test user panicked while recording");
    let latency = run.rec.latency.lock().map_err(|_| poisoned())?.clone();
    let outcomes = run.rec.outcomes.lock().map_err(|_| poisoned())?.clone();
    let errors = run.rec.errors.lock().map_err(|_| poisoned())?.clone();
    let acked = run.rec.acked.lock().map_err(|_| poisoned())?.clone();
    // The run lasted its scheduled seconds, or until its last answer if that came later.
    let last_answer = run.last_answer_us.load(Ordering::Relaxed) as f64 / 1e6;
    Ok(Report::new(
        config.mix,
        config.rate,
        last_answer.max(config.seconds as f64),
        &latency,
        outcomes,
        errors,
        acked,
    ))
}

async fn trivial(user: &mut GooseUser) -> TransactionResult {
    let Some(run) = current() else {
        return Ok(());
    };
    let Some(scheduled) = run.slot().await else {
        return Ok(());
    };
    let answer = user.get("/healthz").await?;
    run.latency(scheduled);
    match answer.response {
        Ok(r) if r.status().is_success() => run.outcome("healthz".into()),
        Ok(r) => run.error(format!("http_{}", r.status().as_u16())),
        Err(e) => run.error(transport(&e)),
    }
    Ok(())
}

fn transport(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        "transport:timeout".into()
    } else if e.is_connect() {
        "transport:connect".into()
    } else {
        "transport:other".into()
    }
}

/// What a camera read.
struct Plate<'a> {
    plate: &'a str,
    colour: Option<&'a str>,
}

/// One plate read; `None` if it failed (counted as an error).
async fn read(
    run: &Run,
    user: &mut GooseUser,
    (name, lane): (&str, &Lane),
    car: &Plate<'_>,
    captured_at: chrono::DateTime<Utc>,
    event_id: &str,
) -> Result<Option<Value>, Box<TransactionError>> {
    let body = json!({"gate_id": lane.gate_id, "plate": car.plate, "plate_colour": car.colour,
                      "captured_at": captured_at, "device_event_id": event_id});
    let builder = user
        .get_request_builder(&GooseMethod::Post, "/v1/gate/events")?
        .bearer_auth(&lane.secret)
        .json(&body);
    let request = GooseRequest::builder()
        .set_request_builder(builder)
        .name(name)
        .build();
    let Some(scheduled) = run.slot().await else {
        return Ok(None);
    };
    let mut answer = user.request(request).await?;
    let result = match answer.response {
        Ok(response) => {
            let status = response.status().as_u16();
            let body: Value = response.json().await.unwrap_or(Value::Null);
            run.latency(scheduled);
            if status == 200 {
                Some(body)
            } else {
                let code = body["error"]["code"].as_str().unwrap_or("-").to_owned();
                run.error(format!("http_{status}:{code}"));
                let _ =
                    user.set_failure(&format!("http_{status}"), &mut answer.request, None, None);
                None
            }
        }
        Err(e) => {
            run.latency(scheduled);
            run.error(transport(&e));
            None
        }
    };
    if let Some(body) = &result {
        run.outcome(format!("{name}:{}", body["reason"].as_str().unwrap_or("-")));
        let replay = body["duplicate"] == true;
        if let (false, Some(id)) = (
            replay,
            body["event_id"].as_str().and_then(|id| id.parse().ok()),
        ) {
            if let Ok(mut acked) = run.rec.acked.lock() {
                acked.push(id);
            }
        }
    }
    Ok(result)
}

/// Cash at the booth (staff API; not a gate request, not paced).
async fn pay(
    run: &Run,
    user: &mut GooseUser,
    session_id: &str,
    amount: &str,
    quoted_at: &str,
) -> Result<bool, Box<TransactionError>> {
    let builder = user
        .get_request_builder(
            &GooseMethod::Post,
            &format!("/v1/admin/sessions/{session_id}/payments"),
        )?
        .bearer_auth(&run.world.staff_token)
        .json(
            &json!({"amount": amount, "shift": "压测 岗亭", "quoted_at": quoted_at,
                      "idempotency_key": uuid::Uuid::new_v4().to_string()}),
        );
    let request = GooseRequest::builder()
        .set_request_builder(builder)
        .name("pay")
        .build();
    let answer = user.request(request).await?;
    let paid = matches!(&answer.response, Ok(r) if r.status().as_u16() == 201);
    if !paid {
        run.error("pay_failed".into());
    }
    Ok(paid)
}

/// Who comes to the gate.
enum Driver {
    Visitor {
        stay_min: i64,
        prepays: bool,
    },
    Permit(String),
    Emergency,
    /// A morning arrival at a peak lot: parks for the day.
    Commuter,
}

async fn car(user: &mut GooseUser) -> TransactionResult {
    let Some(run) = current() else {
        return Ok(());
    };
    let me = user.weighted_users_index;
    let (lot, driver, plate, kind, duplicate_read, lane_index) = {
        let mut rng = rand::thread_rng();
        let peak = run.world.peak_lots();
        let ordinary = run.world.ordinary_lots();
        let roll = rng.gen_range(0..100);
        let (lot, driver): (&Lot, Driver) =
            if !peak.is_empty() && (roll < 12 || ordinary.is_empty()) {
                (peak[rng.gen_range(0..peak.len())], Driver::Commuter)
            } else {
                let lot = ordinary[rng.gen_range(0..ordinary.len())];
                let driver = match roll {
                    // Each user drives its own permit holder's car: never two at once.
                    12..=21 if lot.permit_plates.len() > me && run.permit_rested(me, lot) => {
                        Driver::Permit(lot.permit_plates[me].clone())
                    }
                    22..=24 => Driver::Emergency,
                    _ => Driver::Visitor {
                        stay_min: if run.free_stays || rng.gen_bool(0.2) {
                            rng.gen_range(2..14)
                        } else {
                            rng.gen_range(30..300)
                        },
                        prepays: !run.free_stays && rng.gen_bool(0.5),
                    },
                };
                (lot, driver)
            };
        let (plate, kind) = match &driver {
            Driver::Permit(plate) => (plate.clone(), None),
            Driver::Emergency => (plates::emergency(&mut rng), None),
            _ => {
                let (plate, kind) = plates::any(&mut rng);
                (plate, Some(kind))
            }
        };
        (
            lot.clone(),
            driver,
            plate,
            kind,
            rng.gen_bool(0.05),
            rng.gen_range(0..lot.entries.len()),
        )
    };
    let colour = kind.map(plates::Kind::colour);
    let car = Plate {
        plate: &plate,
        colour,
    };
    let car_id = uuid::Uuid::new_v4().simple().to_string();
    let stay = match &driver {
        Driver::Visitor { stay_min, .. } => *stay_min,
        Driver::Permit(_) | Driver::Emergency => 90,
        Driver::Commuter => 0,
    };
    // Whole minutes: some quotes and payments straddle a price step, which a paid quote must
    // survive.
    let entered_at = Utc::now() - chrono::Duration::minutes(stay);
    let entry_id = format!("{car_id}-in");
    let lane = &lot.entries[lane_index];
    let Some(entry) = read(&run, user, ("entry", lane), &car, entered_at, &entry_id).await? else {
        return Ok(());
    };
    if duplicate_read {
        // The camera sends the same record again.
        let again = read(&run, user, ("entry", lane), &car, entered_at, &entry_id).await?;
        if again.is_some_and(|a| a["duplicate"] != true) {
            run.error("unexpected:duplicate_not_replayed".into());
        }
    }
    if entry["action"] != "open" {
        if !(matches!(driver, Driver::Commuter) && entry["reason"] == "lot_full") {
            run.error(format!(
                "unexpected:entry_{}",
                entry["reason"].as_str().unwrap_or("-")
            ));
        }
        return Ok(());
    }
    if matches!(driver, Driver::Commuter) {
        return Ok(()); // parked for the day
    }
    let session = entry["session_id"].as_str().unwrap_or_default().to_owned();
    if let Driver::Visitor {
        prepays: true,
        stay_min,
    } = driver
    {
        if stay_min >= 15 {
            // Pays the quoted fee at the booth before walking to the car.
            let quote = user
                .get_request_builder(
                    &GooseMethod::Get,
                    &format!("/v1/admin/sessions/{session}/quote"),
                )?
                .bearer_auth(&run.world.staff_token);
            let request = GooseRequest::builder()
                .set_request_builder(quote)
                .name("quote")
                .build();
            let answer = user.request(request).await?;
            let quote = match answer.response {
                Ok(r) => r.json::<Value>().await.unwrap_or(Value::Null),
                Err(_) => Value::Null,
            };
            if let (Some(due), Some(at)) = (quote["amount_due"].as_str(), quote["at"].as_str()) {
                if due != "0.00" {
                    pay(&run, user, &session, due, at).await?;
                }
            }
        }
    }
    let exit_id = format!("{car_id}-out");
    let exit_at = Utc::now();
    let Some(exit) = read(&run, user, ("exit", &lot.exit), &car, exit_at, &exit_id).await? else {
        return Ok(());
    };
    if exit["action"] == "open" {
        return Ok(());
    }
    if exit["reason"] != "payment_required" {
        run.error(format!(
            "unexpected:exit_{}",
            exit["reason"].as_str().unwrap_or("-")
        ));
        return Ok(());
    }
    // Pays at the barrier, and the camera reads the plate again.
    let due = exit["amount_due"].as_str().unwrap_or("0.00").to_owned();
    if pay(&run, user, &session, &due, &exit_at.to_rfc3339()).await? {
        let again_id = format!("{car_id}-out2");
        if let Some(again) =
            read(&run, user, ("exit", &lot.exit), &car, Utc::now(), &again_id).await?
        {
            if again["action"] != "open" {
                run.error("unexpected:exit_after_payment_refused".into());
            }
        }
    }
    Ok(())
}
