//! Real-time occupancy in Redis: a derived view of the open sessions in Postgres.
//!
//! Per lot, two keys share the hash tag `{lot:<id>}` so they live in one Redis Cluster slot and
//! one Lua script can update both atomically:
//! - `<prefix>:{lot:<id>}:occ`    hash: `capacity` (visitor places) and one count per pool;
//! - `<prefix>:{lot:<id>}:plates` hash: plate → pool, the cars inside.
//!
//! Taking a place is one script call that checks capacity and records the plate together, so
//! concurrent gates can never take the same last place. When the keys are missing (Redis lost
//! its data) the script says so and the caller rebuilds the lot from Postgres.

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use parkshare_domain::decision::Pool;
use parkshare_domain::plate::Plate;
use redis::aio::ConnectionManager;
use redis::cluster_async::ClusterConnection;
use redis::{Cmd, Pipeline, RedisFuture, Value};
use serde::Serialize;
use uuid::Uuid;

/// Takes a place: KEYS occ, plates; ARGV plate, pool, capacity_limited ("1"/"0").
/// Returns {"missing"} | {"full"} | {"granted", previous_pool_or_empty}.
const OCCUPY: &str = r#"
if redis.call('EXISTS', KEYS[1]) == 0 then return {'missing'} end
local prev = redis.call('HGET', KEYS[2], ARGV[1])
if prev == ARGV[2] then return {'granted', prev} end
if ARGV[3] == '1' then
  local used = tonumber(redis.call('HGET', KEYS[1], ARGV[2]) or '0')
  local cap = tonumber(redis.call('HGET', KEYS[1], 'capacity') or '0')
  if used >= cap then return {'full'} end
end
if prev then redis.call('HINCRBY', KEYS[1], prev, -1) end
redis.call('HINCRBY', KEYS[1], ARGV[2], 1)
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
return {'granted', prev or ''}
"#;

/// Undoes an occupy whose session could not be committed, or releases a place at exit:
/// KEYS occ, plates; ARGV plate, expected_pool, restore_pool_or_empty.
/// Only acts if the plate still holds `expected_pool`, so a late undo cannot clobber a newer
/// state.
const RELEASE: &str = r#"
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local cur = redis.call('HGET', KEYS[2], ARGV[1])
if cur ~= ARGV[2] then return 0 end
redis.call('HINCRBY', KEYS[1], cur, -1)
if ARGV[3] == '' then
  redis.call('HDEL', KEYS[2], ARGV[1])
else
  redis.call('HINCRBY', KEYS[1], ARGV[3], 1)
  redis.call('HSET', KEYS[2], ARGV[1], ARGV[3])
end
return 1
"#;

/// Replaces a lot's view: KEYS occ, plates; ARGV mode ("force"/"if_missing"), capacity,
/// then plate, pool pairs. Returns 1 if it wrote, 0 if the keys existed in if_missing mode.
const REBUILD: &str = r#"
if ARGV[1] == 'if_missing' and redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('DEL', KEYS[1], KEYS[2])
local counts = {visitor = 0, reserved = 0, exempt = 0}
for i = 3, #ARGV, 2 do
  redis.call('HSET', KEYS[2], ARGV[i], ARGV[i + 1])
  counts[ARGV[i + 1]] = (counts[ARGV[i + 1]] or 0) + 1
end
redis.call('HSET', KEYS[1], 'capacity', ARGV[2], 'visitor', counts.visitor,
  'reserved', counts.reserved, 'exempt', counts.exempt)
return 1
"#;

/// Sets the visitor capacity if the lot's view exists (else the next rebuild sets it).
const SET_CAPACITY: &str = r#"
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], 'capacity', ARGV[1])
return 1
"#;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Occupy {
    /// A place was taken; `previous` is the pool the plate held before, if it was inside.
    Granted {
        previous: Option<Pool>,
    },
    Full,
    /// The lot's keys are gone: rebuild from Postgres, then try again.
    Missing,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum RebuildMode {
    /// Every lot, from Postgres.
    Force,
    /// Only lots whose keys Redis has lost.
    #[value(name = "if_missing")]
    IfMissing,
}

/// What Redis says is inside a lot.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct LotView {
    pub present: bool,
    pub visitor_capacity: i64,
    pub counts: BTreeMap<String, i64>,
    pub plates: BTreeMap<String, String>,
}

/// A connection to one Redis or to a Redis Cluster. The scripts run unchanged on both: a lot's
/// keys share one hash slot, so each script call goes to the one node that owns the lot.
#[derive(Clone)]
pub enum RedisConnection {
    Single(ConnectionManager),
    Cluster(ClusterConnection),
}

impl redis::aio::ConnectionLike for RedisConnection {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            RedisConnection::Single(c) => c.req_packed_command(cmd),
            RedisConnection::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            RedisConnection::Single(c) => c.req_packed_commands(pipeline, offset, count),
            RedisConnection::Cluster(c) => c.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            RedisConnection::Single(c) => c.get_db(),
            RedisConnection::Cluster(c) => c.get_db(),
        }
    }
}

/// Connects to `url`, or, in cluster mode, to the cluster whose seed nodes `url` lists
/// separated by commas (`redis://10.0.0.1:6379,redis://10.0.0.2:6379`). `timeout` bounds
/// connecting and each reply, so that a Redis that hangs (or a reconnect that does) fails a
/// call quickly instead of holding the lane; [`Occupancy`] bounds every call again, whole.
pub async fn connect(
    url: &str,
    cluster: bool,
    timeout: Duration,
) -> redis::RedisResult<RedisConnection> {
    if cluster {
        let nodes: Vec<&str> = url
            .split(',')
            .map(str::trim)
            .filter(|n| !n.is_empty())
            .collect();
        let client = redis::cluster::ClusterClientBuilder::new(nodes)
            .connection_timeout(timeout)
            .response_timeout(timeout)
            .build()?;
        Ok(RedisConnection::Cluster(
            client.get_async_connection().await?,
        ))
    } else {
        let client = redis::Client::open(url)?;
        let config = redis::aio::ConnectionManagerConfig::new()
            .set_connection_timeout(Some(timeout))
            .set_response_timeout(Some(timeout));
        Ok(RedisConnection::Single(
            client.get_connection_manager_with_config(config).await?,
        ))
    }
}

/// How long one Redis call may take unless the settings say otherwise
/// (`PARKSHARE_REDIS_TIMEOUT_MS`).
pub const REDIS_TIMEOUT_DEFAULT: Duration = Duration::from_millis(300);
/// A rebuild writes a whole lot in one script: it may take longer than one small call.
const REBUILD_TIMEOUT_MIN: Duration = Duration::from_secs(2);

/// `call` limited to `limit`; running out is an I/O timeout error, like a dropped connection.
async fn within<T>(
    limit: Duration,
    call: impl Future<Output = redis::RedisResult<T>>,
) -> redis::RedisResult<T> {
    match tokio::time::timeout(limit, call).await {
        Ok(result) => result,
        Err(_) => {
            crate::metrics::backend_error("redis_timeout");
            Err(redis::RedisError::from(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                format!("no Redis reply within {} ms", limit.as_millis()),
            )))
        }
    }
}

/// Lots whose place-taking or place-giving call failed (timed out, connection lost), with the
/// time of the last failure: Redis may have run the call anyway, so each is compared with
/// Postgres once Redis answers again. Shared by the clones of one [`Occupancy`].
#[derive(Clone, Default)]
pub struct Suspects(Arc<Mutex<HashMap<Uuid, Instant>>>);

impl Suspects {
    fn mark(&self, lot: Uuid) {
        if let Ok(mut lots) = self.0.lock() {
            lots.insert(lot, Instant::now());
        }
    }

    /// The lots whose last failure is at least `quiet` ago: a call still queued in a Redis
    /// that has just resumed has run by then.
    pub fn due(&self, quiet: Duration) -> Vec<(Uuid, Instant)> {
        self.0
            .lock()
            .map(|lots| {
                lots.iter()
                    .filter(|(_, at)| at.elapsed() >= quiet)
                    .map(|(lot, at)| (*lot, *at))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// `lot` checked after its failure at `failed_at`: cleared unless it failed again since.
    pub fn cleared(&self, lot: Uuid, failed_at: Instant) {
        if let Ok(mut lots) = self.0.lock() {
            if lots.get(&lot) == Some(&failed_at) {
                lots.remove(&lot);
            }
        }
    }

    /// `lot` could not be checked: try again after another quiet spell.
    pub fn retry(&self, lot: Uuid) {
        self.mark(lot);
    }
}

#[derive(Clone)]
pub struct Occupancy {
    redis: RedisConnection,
    prefix: String,
    /// Every call's limit, whole (a reconnect included): a lane must not wait on a Redis that
    /// hangs. A call cut short may still have run in Redis — a place taken for a car that was
    /// answered 503, once a hung Redis resumes — so its lot is marked [`Suspects`] and
    /// compared with Postgres as soon as Redis answers again (`sync::repair_suspects`).
    timeout: Duration,
    suspects: Suspects,
    occupy: redis::Script,
    release: redis::Script,
    rebuild: redis::Script,
    set_capacity: redis::Script,
}

impl Occupancy {
    pub fn new(redis: RedisConnection, prefix: String) -> Occupancy {
        Occupancy {
            redis,
            prefix,
            timeout: REDIS_TIMEOUT_DEFAULT,
            suspects: Suspects::default(),
            occupy: redis::Script::new(OCCUPY),
            release: redis::Script::new(RELEASE),
            rebuild: redis::Script::new(REBUILD),
            set_capacity: redis::Script::new(SET_CAPACITY),
        }
    }

    /// The lots to compare with Postgres because a call on them failed.
    pub fn suspects(&self) -> &Suspects {
        &self.suspects
    }

    /// The same view with every call limited to `timeout`.
    pub fn with_timeout(mut self, timeout: Duration) -> Occupancy {
        self.timeout = timeout;
        self
    }

    /// Runs one Redis call within the call limit.
    async fn timed<T>(
        &self,
        call: impl Future<Output = redis::RedisResult<T>>,
    ) -> redis::RedisResult<T> {
        within(self.timeout, call).await
    }

    fn fail_open_key(&self) -> String {
        format!("{}:fail_open", self.prefix)
    }

    /// The oldest fail-open passage an earlier version queued here (the journal replaced the
    /// queue: `gate::journal`), removed from the queue.
    pub async fn pop_fail_open(&self) -> redis::RedisResult<Option<String>> {
        let mut con = self.redis.clone();
        let mut cmd = redis::cmd("LPOP");
        cmd.arg(self.fail_open_key());
        self.timed(cmd.query_async(&mut con)).await
    }

    fn keys(&self, lot: Uuid) -> (String, String) {
        (
            format!("{}:{{lot:{lot}}}:occ", self.prefix),
            format!("{}:{{lot:{lot}}}:plates", self.prefix),
        )
    }

    pub async fn occupy(&self, lot: Uuid, plate: &Plate, pool: Pool) -> redis::RedisResult<Occupy> {
        self.take(lot, plate, pool, pool.capacity_limited()).await
    }

    /// Records a car that is already inside (let in by an offline camera, a fail-open lane or
    /// a staff member): it takes its place even past capacity.
    pub async fn record_inside(
        &self,
        lot: Uuid,
        plate: &Plate,
        pool: Pool,
    ) -> redis::RedisResult<Occupy> {
        self.take(lot, plate, pool, false).await
    }

    async fn take(
        &self,
        lot: Uuid,
        plate: &Plate,
        pool: Pool,
        capacity_limited: bool,
    ) -> redis::RedisResult<Occupy> {
        let (occ, plates) = self.keys(lot);
        let mut con = self.redis.clone();
        let mut invocation = self.occupy.key(occ);
        invocation
            .key(plates)
            .arg(plate.as_str())
            .arg(pool.as_str())
            .arg(if capacity_limited { "1" } else { "0" });
        let reply: Vec<String> = self
            .timed(invocation.invoke_async(&mut con))
            .await
            .inspect_err(|_| self.suspects.mark(lot))?;
        Ok(match reply.first().map(String::as_str) {
            Some("granted") => Occupy::Granted {
                previous: reply.get(1).and_then(|p| Pool::parse(p)),
            },
            Some("full") => Occupy::Full,
            _ => Occupy::Missing,
        })
    }

    /// Releases `plate`'s place in `pool`, restoring `restore` if given.
    pub async fn release(
        &self,
        lot: Uuid,
        plate: &Plate,
        pool: Pool,
        restore: Option<Pool>,
    ) -> redis::RedisResult<bool> {
        let (occ, plates) = self.keys(lot);
        let mut con = self.redis.clone();
        let mut invocation = self.release.key(occ);
        invocation
            .key(plates)
            .arg(plate.as_str())
            .arg(pool.as_str())
            .arg(restore.map(Pool::as_str).unwrap_or(""));
        let done: i64 = self
            .timed(invocation.invoke_async(&mut con))
            .await
            .inspect_err(|_| self.suspects.mark(lot))?;
        Ok(done == 1)
    }

    pub async fn rebuild(
        &self,
        lot: Uuid,
        visitor_capacity: i32,
        inside: &[(String, Pool)],
        mode: RebuildMode,
    ) -> redis::RedisResult<bool> {
        let (occ, plates) = self.keys(lot);
        let mut invocation = self.rebuild.key(occ);
        invocation
            .key(plates)
            .arg(match mode {
                RebuildMode::Force => "force",
                RebuildMode::IfMissing => "if_missing",
            })
            .arg(visitor_capacity);
        for (plate, pool) in inside {
            invocation.arg(plate.as_str()).arg(pool.as_str());
        }
        let mut con = self.redis.clone();
        // A lot of a few thousand cars is one larger script; still far below this limit.
        let limit = self.timeout.max(REBUILD_TIMEOUT_MIN);
        let wrote: i64 = within(limit, invocation.invoke_async(&mut con)).await?;
        Ok(wrote == 1)
    }

    pub async fn set_capacity(&self, lot: Uuid, visitor_capacity: i32) -> redis::RedisResult<()> {
        let (occ, _) = self.keys(lot);
        let mut con = self.redis.clone();
        let mut invocation = self.set_capacity.key(occ);
        invocation.arg(visitor_capacity);
        let _: i64 = self.timed(invocation.invoke_async(&mut con)).await?;
        Ok(())
    }

    /// The lot's counts only (`capacity` and one per pool), without the plates inside: what
    /// the metrics need, one small hash per lot.
    pub async fn counts(&self, lot: Uuid) -> redis::RedisResult<BTreeMap<String, i64>> {
        let (occ, _) = self.keys(lot);
        let mut con = self.redis.clone();
        let mut cmd = redis::cmd("HGETALL");
        cmd.arg(occ);
        self.timed(cmd.query_async(&mut con)).await
    }

    pub async fn view(&self, lot: Uuid) -> redis::RedisResult<LotView> {
        let (occ, plates) = self.keys(lot);
        let mut con = self.redis.clone();
        let mut pipe = redis::pipe();
        pipe.hgetall(occ).hgetall(plates);
        let (mut counts, plates): (BTreeMap<String, i64>, BTreeMap<String, String>) =
            self.timed(pipe.query_async(&mut con)).await?;
        let present = !counts.is_empty();
        let visitor_capacity = counts.remove("capacity").unwrap_or(0);
        Ok(LotView {
            present,
            visitor_capacity,
            counts,
            plates,
        })
    }

    pub async fn ping(&self) -> redis::RedisResult<()> {
        let mut con = self.redis.clone();
        let _: String = self.timed(redis::cmd("PING").query_async(&mut con)).await?;
        Ok(())
    }
}
