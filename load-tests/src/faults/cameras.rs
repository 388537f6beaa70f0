//! Cars at retrying cameras: each car enters by one of its lot's entry lanes, stays a moment
//! and leaves by the exit. A camera that gets 503 or no answer posts the same read again,
//! under the same device event id, to the other replica (as a load balancer would send it).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rand::Rng;
use serde_json::{json, Value};

use crate::seed::{Lane, Lot, World};

/// Posts of one read before the camera gives up.
const ATTEMPTS: usize = 6;
/// Pause before posting a read again.
const RETRY_PAUSE: Duration = Duration::from_millis(250);
/// Reads of one car at the exit (a refused car is read again a second later).
const EXIT_READS: usize = 4;

#[derive(Clone, Debug)]
pub struct Attempt {
    pub replica: usize,
    /// None: no answer (connection refused or reset, timeout).
    pub status: Option<u16>,
    pub took: Duration,
    pub body: String,
}

#[derive(Clone, Debug)]
pub enum Outcome {
    /// An answer the lane acted on.
    Decided {
        action: String,
        reason: String,
        /// Answered from the stored answer of an earlier post of the same read.
        duplicate: bool,
    },
    /// Every post answered 503 (`unknown`: or not at all — a replica died with it).
    GaveUp { unknown: bool },
    /// An answer no fault excuses (500, another 4xx): the reason.
    Unexpected(String),
}

#[derive(Clone, Debug)]
pub struct Read {
    pub direction: &'static str,
    pub gate_id: String,
    pub event_id: String,
    pub fail_open_lane: bool,
    pub attempts: Vec<Attempt>,
    pub outcome: Outcome,
}

impl Read {
    pub fn opened(&self) -> bool {
        matches!(&self.outcome, Outcome::Decided { action, .. } if action == "open")
    }
}

#[derive(Clone, Debug)]
pub struct Car {
    pub plate: String,
    pub emergency: bool,
    pub reads: Vec<Read>,
}

impl Car {
    /// The reads in a line, for a failure's message.
    pub fn describe(&self) -> String {
        self.reads
            .iter()
            .map(|r| {
                let attempts: Vec<String> = r
                    .attempts
                    .iter()
                    .map(|a| {
                        format!(
                            "{}:{}",
                            ["A", "B"][a.replica],
                            a.status.map_or("none".to_owned(), |s| s.to_string())
                        )
                    })
                    .collect();
                format!("{} {:?} [{}]", r.direction, r.outcome, attempts.join(" "))
            })
            .collect::<Vec<_>>()
            .join("; ")
    }
}

/// The cars of a run.
#[derive(Clone)]
pub struct Fleet {
    lots: Vec<Lot>,
    fail_open: Vec<String>,
    replicas: [String; 2],
    http: reqwest::Client,
    serial: Arc<AtomicU64>,
}

const LETTERS: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZ";

impl Fleet {
    pub fn new(world: &World, fail_open: &[String], replicas: [String; 2]) -> Fleet {
        Fleet {
            lots: world.lots.clone(),
            fail_open: fail_open.to_vec(),
            replicas,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(5))
                .pool_max_idle_per_host(64)
                .build()
                .unwrap_or_default(),
            serial: Arc::default(),
        }
    }

    /// A plate never used before in this run.
    fn plate(&self, emergency: bool) -> String {
        let n = self.serial.fetch_add(1, Ordering::SeqCst);
        let letter = char::from(LETTERS[usize::try_from(n / 100_000).unwrap_or(0) % LETTERS.len()]);
        if emergency {
            format!("川{letter}{:05}应急", n % 100_000)
        } else {
            format!("粤{letter}{:05}", n % 100_000)
        }
    }

    /// `cars` drivers, each driving one car after another until `stop`; every car's reads are
    /// pushed to `done`.
    pub fn drive(
        &self,
        cars: usize,
        stop: Arc<AtomicBool>,
        done: Arc<Mutex<Vec<Car>>>,
    ) -> Vec<tokio::task::JoinHandle<()>> {
        (0..cars)
            .map(|_| {
                let (fleet, stop, done) = (self.clone(), stop.clone(), done.clone());
                tokio::spawn(async move {
                    while !stop.load(Ordering::SeqCst) {
                        let car = fleet.one_car().await;
                        done.lock().unwrap_or_else(|e| e.into_inner()).push(car);
                    }
                })
            })
            .collect()
    }

    async fn one_car(&self) -> Car {
        let (lot, emergency, lane, dwell) = {
            let mut rng = rand::thread_rng();
            let peak: Vec<&Lot> = self.lots.iter().filter(|l| l.peak).collect();
            let ordinary: Vec<&Lot> = self.lots.iter().filter(|l| !l.peak).collect();
            let lot = if rng.gen_bool(0.35) && !peak.is_empty() {
                peak[rng.gen_range(0..peak.len())].clone()
            } else {
                ordinary[rng.gen_range(0..ordinary.len())].clone()
            };
            let lane = rng.gen_range(0..lot.entries.len());
            (
                lot,
                rng.gen_bool(0.05),
                lane,
                Duration::from_millis(rng.gen_range(300..2_500)),
            )
        };
        let mut car = Car {
            plate: self.plate(emergency),
            emergency,
            reads: Vec::new(),
        };
        let entry = self.read(&lot.entries[lane], "entry", &car.plate).await;
        let entered = entry.opened();
        car.reads.push(entry);
        if !entered {
            return car; // turned away (full, 503): drives off
        }
        tokio::time::sleep(dwell).await;
        for _ in 0..EXIT_READS {
            let exit = self.read(&lot.exit, "exit", &car.plate).await;
            let left = exit.opened();
            car.reads.push(exit);
            if left {
                break;
            }
            // Still at the barrier: the camera reads it again.
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        car
    }

    /// One read, posted until it is answered or the camera gives up.
    async fn read(&self, lane: &Lane, direction: &'static str, plate: &str) -> Read {
        let event_id = uuid::Uuid::new_v4().simple().to_string();
        let captured_at = chrono::Utc::now();
        let mut replica = usize::from(rand::thread_rng().gen_bool(0.5));
        let body = json!({"gate_id": lane.gate_id, "plate": plate, "captured_at": captured_at,
                          "device_event_id": event_id});
        let mut read = Read {
            direction,
            gate_id: lane.gate_id.clone(),
            event_id,
            fail_open_lane: self.fail_open.contains(&lane.gate_id),
            attempts: Vec::new(),
            outcome: Outcome::GaveUp { unknown: false },
        };
        for _ in 0..ATTEMPTS {
            let started = Instant::now();
            let sent = self
                .http
                .post(format!("{}/v1/gate/events", self.replicas[replica]))
                .bearer_auth(&lane.secret)
                .json(&body)
                .send()
                .await;
            let (status, answer) = match sent {
                Ok(response) => {
                    let status = response.status().as_u16();
                    (Some(status), response.json::<Value>().await.ok())
                }
                Err(_) => (None, None),
            };
            let answer = answer.unwrap_or(Value::Null);
            read.attempts.push(Attempt {
                replica,
                status,
                took: started.elapsed(),
                body: answer.to_string(),
            });
            match status {
                Some(200) => {
                    let text = |k: &str| answer[k].as_str().unwrap_or_default().to_owned();
                    read.outcome = Outcome::Decided {
                        action: text("action"),
                        reason: text("reason"),
                        duplicate: answer["duplicate"] == true,
                    };
                    return read;
                }
                Some(503) | None => {
                    if status.is_none() {
                        read.outcome = Outcome::GaveUp { unknown: true };
                    }
                    // Again, same event id, to the other replica.
                    tokio::time::sleep(RETRY_PAUSE).await;
                    replica = 1 - replica;
                }
                Some(other) => {
                    read.outcome = Outcome::Unexpected(format!("{other} {answer}"));
                    return read;
                }
            }
        }
        read
    }
}
