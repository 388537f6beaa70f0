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

use std::collections::BTreeMap;

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

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RebuildMode {
    Force,
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
/// separated by commas (`redis://10.0.0.1:6379,redis://10.0.0.2:6379`).
pub async fn connect(url: &str, cluster: bool) -> redis::RedisResult<RedisConnection> {
    if cluster {
        let nodes: Vec<&str> = url
            .split(',')
            .map(str::trim)
            .filter(|n| !n.is_empty())
            .collect();
        let client = redis::cluster::ClusterClient::new(nodes)?;
        Ok(RedisConnection::Cluster(
            client.get_async_connection().await?,
        ))
    } else {
        let client = redis::Client::open(url)?;
        Ok(RedisConnection::Single(
            client.get_connection_manager().await?,
        ))
    }
}

#[derive(Clone)]
pub struct Occupancy {
    redis: RedisConnection,
    prefix: String,
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
            occupy: redis::Script::new(OCCUPY),
            release: redis::Script::new(RELEASE),
            rebuild: redis::Script::new(REBUILD),
            set_capacity: redis::Script::new(SET_CAPACITY),
        }
    }

    fn fail_open_key(&self) -> String {
        format!("{}:fail_open", self.prefix)
    }

    /// Queues a passage a lane let through on its fail-open policy, to be recorded.
    pub async fn push_fail_open(&self, passage: &str) -> redis::RedisResult<()> {
        redis::cmd("RPUSH")
            .arg(self.fail_open_key())
            .arg(passage)
            .query_async(&mut self.redis.clone())
            .await
    }

    /// The oldest queued fail-open passage, removed from the queue.
    pub async fn pop_fail_open(&self) -> redis::RedisResult<Option<String>> {
        redis::cmd("LPOP")
            .arg(self.fail_open_key())
            .query_async(&mut self.redis.clone())
            .await
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
        let reply: Vec<String> = self
            .occupy
            .key(occ)
            .key(plates)
            .arg(plate.as_str())
            .arg(pool.as_str())
            .arg(if capacity_limited { "1" } else { "0" })
            .invoke_async(&mut self.redis.clone())
            .await?;
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
        let done: i64 = self
            .release
            .key(occ)
            .key(plates)
            .arg(plate.as_str())
            .arg(pool.as_str())
            .arg(restore.map(Pool::as_str).unwrap_or(""))
            .invoke_async(&mut self.redis.clone())
            .await?;
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
        let wrote: i64 = invocation.invoke_async(&mut self.redis.clone()).await?;
        Ok(wrote == 1)
    }

    pub async fn set_capacity(&self, lot: Uuid, visitor_capacity: i32) -> redis::RedisResult<()> {
        let (occ, _) = self.keys(lot);
        let _: i64 = self
            .set_capacity
            .key(occ)
            .arg(visitor_capacity)
            .invoke_async(&mut self.redis.clone())
            .await?;
        Ok(())
    }

    /// The lot's counts only (`capacity` and one per pool), without the plates inside: what
    /// the metrics need, one small hash per lot.
    pub async fn counts(&self, lot: Uuid) -> redis::RedisResult<BTreeMap<String, i64>> {
        let (occ, _) = self.keys(lot);
        redis::cmd("HGETALL")
            .arg(occ)
            .query_async(&mut self.redis.clone())
            .await
    }

    pub async fn view(&self, lot: Uuid) -> redis::RedisResult<LotView> {
        let (occ, plates) = self.keys(lot);
        let mut con = self.redis.clone();
        let (mut counts, plates): (BTreeMap<String, i64>, BTreeMap<String, String>) = redis::pipe()
            .hgetall(occ)
            .hgetall(plates)
            .query_async(&mut con)
            .await?;
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
        let _: String = redis::cmd("PING")
            .query_async(&mut self.redis.clone())
            .await?;
        Ok(())
    }
}
