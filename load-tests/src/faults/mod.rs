//! The fault matrix (issue 23, docs/faults.md): the gate service as two replicas on a Postgres
//! and a Redis of the run's own, cars at retrying cameras, one fault per scenario, and after
//! each scenario a verification of what the lanes were told against what Postgres and Redis
//! hold. `load-tests/faults.sh` builds the service with its `failpoints` feature and runs it.

mod cameras;
mod servers;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use serde_json::{json, Value};

use crate::seed::{seed, SeedConfig, World};
use cameras::{Car, Fleet, Outcome};
use servers::{OwnPostgres, OwnRedis, Replica};

/// How the matrix runs.
pub struct MatrixConfig {
    /// The gate service's binary, built with the `failpoints` feature.
    pub gate_bin: PathBuf,
    /// Cars driving at once (each enters, stays a moment, leaves, and the next comes).
    pub cars: usize,
    /// Seconds of load before the fault, and again after its recovery.
    pub calm_seconds: u64,
    /// Only the scenarios whose name contains one of these (all when empty).
    pub only: Vec<String>,
    /// Keep the temporary directory (logs, the clusters' data) for inspection.
    pub keep: bool,
    /// The replicas' `PARKSHARE_OCCUPANCY_RECONCILE_MS` (production's default: 10 000).
    pub reconcile_ms: u64,
}

impl MatrixConfig {
    /// Redis must equal Postgres this long after the load has drained, without a rebuild by
    /// staff: two reconciler passes and some, at most 30 s.
    fn repair_bound(&self) -> Duration {
        Duration::from_millis((2 * self.reconcile_ms + 5_000).min(30_000))
    }
}

/// The service's settings in the matrix (shorter than production's so a run is quick).
const BUDGET_MS: u64 = 1_000;
const REDIS_TIMEOUT_MS: u64 = 200;
const DRAIN_MS: u64 = 200;
/// A fail-open answer may take its budget, plus finding in an outage that a credential cannot
/// be read again (`STALE_REREAD_WAIT`, 300 ms), plus scheduling on a busy machine.
const FAIL_OPEN_LIMIT: Duration = Duration::from_millis(BUDGET_MS + 300 + 700);
const DATABASE: &str = "parkshare";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Fault {
    None,
    ReplicaKill,
    ReplicaKillBetweenReleaseAndCommit,
    ReplicaTerm,
    RedisFlushAll,
    RedisKilled,
    RedisHang,
    PostgresRestart,
    PostgresKilled,
    RedisConnectionStorm,
    PostgresConnectionStorm,
}

const SCENARIOS: [(&str, Fault); 11] = [
    ("no fault", Fault::None),
    ("replica A kill -9, restarted", Fault::ReplicaKill),
    (
        "replica A kill -9 between an exit's Redis release and its commit",
        Fault::ReplicaKillBetweenReleaseAndCommit,
    ),
    ("replica A SIGTERM, restarted", Fault::ReplicaTerm),
    ("Redis FLUSHALL", Fault::RedisFlushAll),
    (
        "Redis kill -9, restarted empty 3 s later",
        Fault::RedisKilled,
    ),
    ("Redis SIGSTOP 4 s (hangs)", Fault::RedisHang),
    (
        "Postgres restarted (fast stop, start)",
        Fault::PostgresRestart,
    ),
    (
        "Postgres killed (immediate stop), restarted 3 s later",
        Fault::PostgresKilled,
    ),
    (
        "Redis connection drops: CLIENT KILL TYPE normal every 100 ms for 5 s",
        Fault::RedisConnectionStorm,
    ),
    (
        "Postgres connection drops: pg_terminate_backend every 100 ms for 5 s",
        Fault::PostgresConnectionStorm,
    ),
];

/// One scenario's figures, a row of the table.
#[derive(Debug, Default)]
pub struct Row {
    pub scenario: String,
    pub reads: usize,
    pub attempts: usize,
    pub acknowledged: usize,
    pub fail_open: usize,
    pub answered_503: usize,
    pub gave_up: usize,
    pub lost: usize,
    /// Places that differed between Redis and Postgres when the load had drained.
    pub stuck_after_load: usize,
    /// Places still differing [`REPAIR_BOUND`] later.
    pub stuck: usize,
    /// Reads a camera never heard an answer to (the replica died with them).
    pub unanswered: usize,
    pub repair: Option<Duration>,
    pub max_fail_open: Duration,
    pub repair_bound: Duration,
    pub failures: Vec<String>,
    pub notes: Vec<String>,
}

impl Row {
    fn passed(&self) -> bool {
        self.failures.is_empty()
    }
}

/// Everything a run started, stopped by PID when dropped.
struct Rig {
    root: PathBuf,
    keep: bool,
    pg: OwnPostgres,
    redis: OwnRedis,
    replicas: [Replica; 2],
    http: reqwest::Client,
    db: sqlx::PgPool,
}

impl Drop for Rig {
    fn drop(&mut self) {
        for replica in &mut self.replicas {
            replica.kill();
        }
        self.redis.kill();
        let _ = self.pg.stop("immediate");
        if self.keep {
            eprintln!("kept: {}", self.root.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.root);
        }
    }
}

/// Runs the matrix; prints the table; the rows.
pub async fn run_matrix(config: &MatrixConfig) -> anyhow::Result<Vec<Row>> {
    let root = std::env::temp_dir().join(format!("ps-faults-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&root)?;
    let pg = OwnPostgres::start(&root)?;
    let redis = OwnRedis::start()?;
    let operator = format!("faults-{}", uuid::Uuid::new_v4().simple());
    let journal = |name: &str| {
        let dir = root.join(format!("journal-{name}"));
        dir.display().to_string()
    };
    let env = |name: &str| -> Vec<(String, String)> {
        [
            ("PARKSHARE_DATABASE_URL", format!("{}/{DATABASE}", pg.url())),
            ("PARKSHARE_REDIS_URL", redis.url()),
            ("PARKSHARE_REDIS_PREFIX", "psfaults".to_owned()),
            ("PARKSHARE_REBUILD_ON_START", "if_missing".to_owned()),
            ("PARKSHARE_PROVIDER_SECRET", operator.clone()),
            ("PARKSHARE_OPERATOR_TOKEN", operator.clone()),
            ("PARKSHARE_FAIL_OPEN_JOURNAL_DIR", journal(name)),
            ("PARKSHARE_GATE_DECISION_BUDGET_MS", BUDGET_MS.to_string()),
            ("PARKSHARE_REDIS_TIMEOUT_MS", REDIS_TIMEOUT_MS.to_string()),
            (
                "PARKSHARE_OCCUPANCY_RECONCILE_MS",
                config.reconcile_ms.to_string(),
            ),
            ("PARKSHARE_FAIL_OPEN_DRAIN_MS", DRAIN_MS.to_string()),
            ("RUST_LOG", "warn".to_owned()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect()
    };
    let replicas = [
        Replica::new("A", &config.gate_bin, env("a"), root.join("replica-a.log"))?,
        Replica::new("B", &config.gate_bin, env("b"), root.join("replica-b.log"))?,
    ];
    let db = sqlx::postgres::PgPoolOptions::new()
        .max_connections(4)
        .acquire_timeout(Duration::from_secs(2))
        .connect_lazy(&format!("{}/{DATABASE}", pg.url()))?;
    let mut rig = Rig {
        root,
        keep: config.keep,
        pg,
        redis,
        replicas,
        http: reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .build()?,
        db,
    };
    // One after the other: the first creates the database and runs the migrations.
    for replica in &mut rig.replicas {
        replica.start(None).await?;
    }
    let world = seed(&SeedConfig {
        compounds: 1,
        lots_per_compound: 3,
        peak_lots: 1,
        peak_capacity: 5,
        permit_holders: 0,
        ..SeedConfig::small(&rig.replicas[0].base_url(), &operator)
    })
    .await
    .context("seeding")?;
    // On every ordinary lot one entry lane fails open, the other closed; the peak lot's lanes
    // fail closed (a fail-open lane opens a full lot when it cannot count).
    let mut fail_open = Vec::new();
    for lot in world.ordinary_lots() {
        let gate = &lot.entries[0].gate_id;
        let (status, body) = staff(
            &rig,
            &world,
            reqwest::Method::PUT,
            &format!("/v1/admin/gates/{gate}/device"),
            Some(json!({"fail_mode": "open"})),
        )
        .await?;
        anyhow::ensure!(status == 200, "fail mode: {status} {body}");
        fail_open.push(gate.clone());
    }
    let fleet = Fleet::new(
        &world,
        &fail_open,
        [rig.replicas[0].base_url(), rig.replicas[1].base_url()],
    );
    let mut rows = Vec::new();
    for (name, fault) in SCENARIOS {
        if !config.only.is_empty() && !config.only.iter().any(|o| name.contains(o.as_str())) {
            continue;
        }
        eprintln!("== {name}");
        let row = scenario(&mut rig, &world, &fleet, config, name, fault).await?;
        eprintln!(
            "   {} reads, {} acknowledged, {} gave up, {} lost, {} stuck, repair {}: {}",
            row.reads,
            row.acknowledged,
            row.gave_up,
            row.lost,
            row.stuck,
            repair_text(&row),
            if row.passed() { "pass" } else { "FAIL" }
        );
        for failure in &row.failures {
            eprintln!("   - {failure}");
        }
        rows.push(row);
    }
    let failed = rows.iter().any(|r| !r.passed());
    if failed {
        // Logs of the replicas for whoever reads the failure.
        rig.keep = true;
    }
    Ok(rows)
}

fn repair_text(row: &Row) -> String {
    match row.repair {
        Some(d) => format!("{:.1} s", d.as_secs_f64()),
        None => format!("> {:.0} s", row.repair_bound.as_secs_f64()),
    }
}

/// The markdown table of the rows.
pub fn table(rows: &[Row]) -> String {
    let mut out = String::from(
        "| scenario | reads | acknowledged | 503 | lost | stuck places | repair time | result |\n\
         |---|---:|---:|---:|---:|---:|---:|---|\n",
    );
    for row in rows {
        out.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} | {} | {} |\n",
            row.scenario,
            row.reads,
            row.acknowledged,
            if row.gave_up > 0 {
                format!("{} ({} reads)", row.answered_503, row.gave_up)
            } else {
                row.answered_503.to_string()
            },
            row.lost,
            if row.stuck_after_load > 0 {
                format!("{} ({} after the load)", row.stuck, row.stuck_after_load)
            } else {
                row.stuck.to_string()
            },
            repair_text(row),
            if row.passed() { "pass" } else { "**fail**" }
        ));
    }
    out
}

async fn staff(
    rig: &Rig,
    world: &World,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> anyhow::Result<(u16, Value)> {
    let mut request = rig
        .http
        .request(method, format!("{}{path}", rig.replicas[1].base_url()))
        .bearer_auth(&world.staff_token);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await?;
    let status = response.status().as_u16();
    Ok((status, response.json().await.unwrap_or(Value::Null)))
}

/// Every lane authenticated on both replicas (a read naming another gate is refused after the
/// device is known, recording nothing): a lane whose credential a replica has never cached
/// answers 503 through a Postgres outage whatever its policy (docs/operations.md).
async fn warm_credentials(rig: &Rig, world: &World) {
    for replica in &rig.replicas {
        for lot in &world.lots {
            for lane in lot.entries.iter().chain([&lot.exit]) {
                let _ = rig
                    .http
                    .post(format!("{}/v1/gate/events", replica.base_url()))
                    .bearer_auth(&lane.secret)
                    .json(&json!({"gate_id": world.lots[0].id, "plate": "京A00000",
                                  "captured_at": chrono::Utc::now(), "device_event_id": "warm"}))
                    .send()
                    .await;
            }
        }
    }
}

/// Runs one scenario: calm load, the fault, its recovery, calm load, then the verification.
async fn scenario(
    rig: &mut Rig,
    world: &World,
    fleet: &Fleet,
    config: &MatrixConfig,
    name: &str,
    fault: Fault,
) -> anyhow::Result<Row> {
    let mut row = Row {
        scenario: name.to_owned(),
        repair_bound: config.repair_bound(),
        ..Row::default()
    };
    if fault == Fault::ReplicaKillBetweenReleaseAndCommit {
        // Replica A again, armed: it kills itself after the commit of its 4th exit.
        rig.replicas[0].terminate().await;
        rig.replicas[0].start(Some(4)).await?;
    }
    warm_credentials(rig, world).await;
    // Settle the background workers' view of the warm-up notifications.
    tokio::time::sleep(Duration::from_millis(500)).await;

    let stop = Arc::new(AtomicBool::new(false));
    let cars: Arc<Mutex<Vec<Car>>> = Arc::default();
    let drivers = fleet.drive(config.cars, stop.clone(), cars.clone());
    let sampler = sample_occupancy(rig.db.clone(), world, stop.clone());

    let calm = Duration::from_secs(config.calm_seconds);
    tokio::time::sleep(calm).await;
    inject(rig, world, fault, &mut row).await?;
    tokio::time::sleep(calm).await;
    stop.store(true, Ordering::SeqCst);
    for driver in drivers {
        let _ = driver.await;
    }
    let over = sampler.await.unwrap_or_default();
    row.failures.extend(over);
    // A replica that died by itself outside its scenario is a failure of the run.
    for replica in &mut rig.replicas {
        if !replica.alive() {
            row.failures
                .push(format!("replica {} died during the scenario", replica.name));
            replica.reap();
            replica.start(None).await?;
        }
    }

    // Redis equal to Postgres, lot by lot, without a rebuild by staff.
    let (repair, stuck, diffs) = wait_in_sync_for(rig, world, config.repair_bound()).await;
    row.repair = repair;
    row.stuck = stuck;
    row.stuck_after_load = diffs.1;
    let diffs = diffs.0;
    if repair.is_none() {
        row.failures.push(format!(
            "Redis differs from Postgres {:.0} s after the load: {diffs}",
            row.repair_bound.as_secs_f64()
        ));
    }
    let cars = std::mem::take(&mut *cars.lock().unwrap_or_else(|e| e.into_inner()));
    let cut_off: Vec<&cameras::Read> = cars
        .iter()
        .flat_map(|c| &c.reads)
        .filter(|r| r.attempts.iter().any(|a| a.status.is_none()))
        .collect();
    if !cut_off.is_empty() {
        let replayed = cut_off
            .iter()
            .filter(|r| {
                matches!(
                    r.outcome,
                    Outcome::Decided {
                        duplicate: true,
                        ..
                    }
                )
            })
            .count();
        row.notes.push(format!(
            "{} read(s) had a post that got no answer (its replica down or dying); the retry found {replayed} of them already decided",
            cut_off.len()
        ));
    }
    verify_cars(rig, &cars, &mut row).await?;
    Ok(row)
}

/// Injects `fault` into the running system and brings it back.
async fn inject(rig: &mut Rig, world: &World, fault: Fault, row: &mut Row) -> anyhow::Result<()> {
    match fault {
        Fault::None => {}
        Fault::ReplicaKill => {
            rig.replicas[0].kill();
            tokio::time::sleep(Duration::from_secs(2)).await;
            rig.replicas[0].start(None).await?;
        }
        Fault::ReplicaKillBetweenReleaseAndCommit => {
            // Armed at the scenario's start; restarted (disarmed) as soon as it has died.
            let deadline = Instant::now() + Duration::from_secs(20);
            while rig.replicas[0].alive() && Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            if rig.replicas[0].alive() {
                row.failures
                    .push("the failpoint did not fire within 20 s".into());
                rig.replicas[0].terminate().await;
            } else {
                rig.replicas[0].reap();
                // What the dead replica left behind, before anything repaired it.
                let (_, _, (_, stuck)) = wait_in_sync_for(rig, world, Duration::ZERO).await;
                row.notes.push(format!(
                    "replica A died after its 4th exit's release, before its commit; {stuck} place(s) differed between Redis and Postgres just after"
                ));
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
            rig.replicas[0].start(None).await?;
        }
        Fault::ReplicaTerm => {
            let took = rig.replicas[0].terminate().await;
            if took > Duration::from_secs(15) {
                row.failures
                    .push(format!("SIGTERM took {:.1} s", took.as_secs_f64()));
            }
            rig.replicas[0].start(None).await?;
        }
        Fault::RedisFlushAll => rig.redis.cli(&["FLUSHALL"]),
        Fault::RedisKilled => {
            rig.redis.kill();
            tokio::time::sleep(Duration::from_secs(3)).await;
            rig.redis.start_again()?;
        }
        Fault::RedisHang => {
            rig.redis.hang();
            tokio::time::sleep(Duration::from_secs(4)).await;
            rig.redis.resume();
        }
        Fault::PostgresRestart => {
            rig.pg.stop("fast")?;
            tokio::time::sleep(Duration::from_millis(500)).await;
            rig.pg.start_again()?;
        }
        Fault::PostgresKilled => {
            rig.pg.stop("immediate")?;
            tokio::time::sleep(Duration::from_secs(3)).await;
            rig.pg.start_again()?;
        }
        Fault::RedisConnectionStorm => {
            let until = Instant::now() + Duration::from_secs(5);
            while Instant::now() < until {
                rig.redis.cli(&["CLIENT", "KILL", "TYPE", "normal"]);
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
        Fault::PostgresConnectionStorm => {
            let until = Instant::now() + Duration::from_secs(5);
            while Instant::now() < until {
                rig.pg.terminate_backends(DATABASE);
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
    Ok(())
}

/// Samples the visitors inside each lot in Postgres every 200 ms until `stop`; the samples
/// that found a lot over its capacity.
fn sample_occupancy(
    db: sqlx::PgPool,
    world: &World,
    stop: Arc<AtomicBool>,
) -> tokio::task::JoinHandle<Vec<String>> {
    let capacity: BTreeMap<String, i64> = world
        .lots
        .iter()
        .map(|l| (l.id.clone(), i64::from(l.capacity)))
        .collect();
    tokio::spawn(async move {
        let mut over = Vec::new();
        while !stop.load(Ordering::SeqCst) {
            let counts: Vec<(String, i64)> = sqlx::query_as(
                "select lot_id::text, count(*) from sessions \
                 where status = 'open' and pool = 'visitor' group by lot_id",
            )
            .fetch_all(&db)
            .await
            .unwrap_or_default(); // Postgres away: no sample
            for (lot, inside) in counts {
                let cap = capacity.get(&lot).copied().unwrap_or(i64::MAX);
                if inside > cap && over.len() < 5 {
                    over.push(format!(
                        "lot {lot}: {inside} visitors inside, capacity {cap}"
                    ));
                }
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        over
    })
}

/// Waits up to `bound` (zero: one look) until every lot's Redis view equals Postgres (the
/// service's difference report); the time it took (None: not within `bound`), the places that
/// differed at the end, and (the differences, the places that differed at the first look).
async fn wait_in_sync_for(
    rig: &Rig,
    world: &World,
    bound: Duration,
) -> (Option<Duration>, usize, (String, usize)) {
    let started = Instant::now();
    let mut first: Option<usize> = None;
    let worst = loop {
        let mut stuck = 0;
        let mut diffs = Vec::new();
        let mut answered = true;
        for lot in &world.lots {
            let path = format!("/v1/admin/lots/{}/occupancy", lot.id);
            match staff(rig, world, reqwest::Method::GET, &path, None).await {
                Ok((200, view)) if view["in_sync"] == true => {}
                Ok((200, view)) => {
                    let places = ["only_in_redis", "only_in_postgres", "pool_mismatch"]
                        .iter()
                        .map(|k| view[k].as_array().map_or(0, Vec::len))
                        .sum::<usize>();
                    stuck += places.max(1);
                    diffs.push(format!(
                        "lot {}: redis {} postgres {} only in redis {}",
                        lot.id,
                        view["redis_counts"],
                        view["postgres_counts"],
                        view["only_in_redis"]
                    ));
                }
                _ => answered = false,
            }
        }
        if answered {
            first.get_or_insert(stuck);
        }
        if answered && diffs.is_empty() {
            return (
                Some(started.elapsed()),
                0,
                (String::new(), first.unwrap_or(0)),
            );
        }
        if started.elapsed() >= bound {
            break (stuck, diffs.join("; "));
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    (None, worst.0, (worst.1, first.unwrap_or(worst.0)))
}

/// Each car's reads against what Postgres holds, once the fail-open journal is recorded.
async fn verify_cars(rig: &Rig, cars: &[Car], row: &mut Row) -> anyhow::Result<()> {
    // Fail-open passages are recorded within the drain interval once Postgres is back.
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut wrong = Vec::new();
    while Instant::now() < deadline {
        wrong = check_cars(rig, cars).await?;
        if wrong.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    row.lost = wrong.len();
    for w in wrong.iter().take(5) {
        row.failures.push(w.clone());
    }
    for car in cars {
        for read in &car.reads {
            row.reads += 1;
            row.attempts += read.attempts.len();
            row.answered_503 += read
                .attempts
                .iter()
                .filter(|a| a.status == Some(503))
                .count();
            match &read.outcome {
                Outcome::Decided { reason, .. } => {
                    row.acknowledged += 1;
                    if reason == "fail_open" {
                        row.fail_open += 1;
                    }
                }
                Outcome::GaveUp { unknown } => {
                    row.gave_up += 1;
                    row.unanswered += usize::from(*unknown);
                }
                Outcome::Unexpected(what) => {
                    if row.failures.len() < 12 {
                        row.failures
                            .push(format!("{} {}: {what}", car.plate, read.direction));
                    }
                }
            }
            for attempt in &read.attempts {
                if attempt.status == Some(500) && row.failures.len() < 12 {
                    row.failures.push(format!(
                        "500 for {} {}: {}",
                        car.plate, read.direction, attempt.body
                    ));
                }
                let opens_anyway = read.fail_open_lane || car.emergency;
                if opens_anyway && attempt.status == Some(200) {
                    row.max_fail_open = row.max_fail_open.max(attempt.took);
                    if attempt.took > FAIL_OPEN_LIMIT && row.failures.len() < 12 {
                        row.failures.push(format!(
                            "{} {}: a lane that opens anyway answered after {} ms",
                            car.plate,
                            read.direction,
                            attempt.took.as_millis()
                        ));
                    }
                }
            }
            // Every post before the answer said 503, and the answer says an earlier post had
            // decided it: a 503 was given for a decision that stands.
            let decided_behind_503 = matches!(
                read.outcome,
                Outcome::Decided {
                    duplicate: true,
                    ..
                }
            ) && read.attempts.len() > 1
                && read.attempts[..read.attempts.len() - 1]
                    .iter()
                    .all(|a| a.status == Some(503));
            if decided_behind_503 {
                row.failures.push(format!(
                    "{} {}: answered 503, then a retry found it decided: {}",
                    car.plate,
                    read.direction,
                    car.describe()
                ));
            }
            if car.emergency && !read.opened() {
                row.failures.push(format!(
                    "emergency vehicle {} not let through at the {}: {:?}",
                    car.plate, read.direction, read.outcome
                ));
            }
        }
    }
    Ok(())
}

/// The cars whose stays in Postgres are not what their lanes were told.
async fn check_cars(rig: &Rig, cars: &[Car]) -> anyhow::Result<Vec<String>> {
    let plates: Vec<&str> = cars.iter().map(|c| c.plate.as_str()).collect();
    let stays: Vec<(String, String)> =
        sqlx::query_as("select plate, status from sessions where plate = any($1)")
            .bind(&plates)
            .fetch_all(&rig.db)
            .await
            .context("reading the stays")?;
    let mut by_plate: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (plate, status) in &stays {
        by_plate.entry(plate).or_default().push(status);
    }
    let events: Vec<(String, String)> = sqlx::query_as(
        "select gate_id::text, device_event_id from gate_events where plate = any($1)",
    )
    .bind(&plates)
    .fetch_all(&rig.db)
    .await
    .context("reading the gate events")?;
    let events: std::collections::BTreeSet<(String, String)> = events.into_iter().collect();
    let mut wrong = Vec::new();
    for car in cars {
        let stays = by_plate
            .get(car.plate.as_str())
            .cloned()
            .unwrap_or_default();
        let open = stays.iter().filter(|s| **s == "open").count();
        let entered = car
            .reads
            .iter()
            .any(|r| r.direction == "entry" && r.opened());
        let left = car
            .reads
            .iter()
            .any(|r| r.direction == "exit" && r.opened());
        let refused_no_entry = car.reads.iter().any(|r| {
            r.direction == "exit"
                && matches!(&r.outcome, Outcome::Decided { reason, .. } if reason == "no_entry_record")
        });
        // A read the camera never heard an answer to may have been decided: either is right.
        let unknown = car
            .reads
            .iter()
            .any(|r| matches!(r.outcome, Outcome::GaveUp { unknown: true }));
        let expected = unknown
            || match (entered, left) {
                (false, _) => stays.is_empty(),
                (true, true) => stays.len() == 1 && open == 0,
                // A late fail-open entry ends at an exit refused before it was recorded.
                (true, false) if refused_no_entry => stays.len() == 1,
                (true, false) => stays.len() == 1 && open == 1,
            };
        if !expected {
            wrong.push(format!(
                "{}: entered {entered}, left {left}, stays in Postgres {stays:?}; reads {}",
                car.plate,
                car.describe()
            ));
            continue;
        }
        // Every decided read is stored; none that the lane was told nothing about (503).
        for read in &car.reads {
            // A fail-open passage is recorded under its own id (the late decision may have
            // been stored under the camera's).
            let stored = [
                read.event_id.clone(),
                format!("{}#fail_open", read.event_id),
            ]
            .into_iter()
            .any(|id| events.contains(&(read.gate_id.clone(), id)));
            match &read.outcome {
                Outcome::Decided { .. } if !stored => wrong.push(format!(
                    "{} {} ({}): acknowledged but not in Postgres",
                    car.plate, read.direction, read.event_id
                )),
                Outcome::GaveUp { unknown: false } if stored => wrong.push(format!(
                    "{} {} ({}): answered 503 but recorded: {}",
                    car.plate,
                    read.direction,
                    read.event_id,
                    car.describe()
                )),
                _ => {}
            }
        }
    }
    Ok(wrong)
}
