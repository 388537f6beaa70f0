//! Keeping Redis occupancy in step with Postgres, the system of record.
//!
//! A rebuild takes the lot's advisory lock exclusively: in-flight events (which hold it
//! shared) finish first and new ones wait, so the view written to Redis is exactly the open
//! sessions at one instant.
//!
//! Redis heals by itself: [`spawn_reconciler`] compares every lot's counts in Redis with
//! Postgres's, and a lot that differs is compared exactly under its lock and rebuilt. That
//! repairs what no request path can: a release lost after its exit committed (a dropped
//! connection, a replica killed between commit and release), a place taken for an entry
//! whose transaction then failed, keys lost with a Redis restart.

use std::collections::BTreeMap;
use std::time::Duration;

use parkshare_domain::decision::Pool;
use serde::Serialize;
use uuid::Uuid;

use crate::error::ApiError;
use crate::occupancy::RebuildMode;
use crate::state::AppState;
use crate::store::{registry, sessions};

/// Rebuilds one lot's occupancy from Postgres. Returns whether Redis was written.
pub async fn rebuild_lot(
    state: &AppState,
    lot_id: Uuid,
    mode: RebuildMode,
) -> Result<bool, ApiError> {
    rebuild_lot_in(&state.db, &state.occupancy, lot_id, mode).await
}

/// [`rebuild_lot`] with the connections it needs.
pub async fn rebuild_lot_in(
    db: &sqlx::PgPool,
    occupancy: &crate::occupancy::Occupancy,
    lot_id: Uuid,
    mode: RebuildMode,
) -> Result<bool, ApiError> {
    let mut tx = db.begin().await?;
    sessions::lock_lot_exclusive(&mut tx, lot_id).await?;
    let lot = registry::lot_unscoped(&mut *tx, lot_id)
        .await?
        .ok_or(ApiError::NotFound("lot"))?;
    let inside = inside(&mut tx, lot_id).await?;
    let wrote = occupancy
        .rebuild(lot_id, lot.visitor_capacity, &inside, mode)
        .await?;
    tx.commit().await?;
    if wrote {
        tracing::info!(%lot_id, cars_inside = inside.len(), "occupancy rebuilt from Postgres");
    }
    Ok(wrote)
}

async fn inside(
    tx: &mut sqlx::PgConnection,
    lot_id: Uuid,
) -> Result<Vec<(String, Pool)>, ApiError> {
    sessions::inside(&mut *tx, lot_id)
        .await?
        .into_iter()
        .map(|(plate, pool)| {
            Pool::parse(&pool)
                .map(|pool| (plate, pool))
                .ok_or_else(|| ApiError::Internal(anyhow::anyhow!("session pool {pool} unknown")))
        })
        .collect()
}

/// Rebuilds every lot, e.g. at start.
pub async fn rebuild_all(state: &AppState, mode: RebuildMode) -> Result<usize, ApiError> {
    let mut rebuilt = 0;
    for lot_id in registry::all_lot_ids(&state.db).await? {
        if rebuild_lot(state, lot_id, mode).await? {
            rebuilt += 1;
        }
    }
    Ok(rebuilt)
}

/// One pass of the reconciler: every lot whose Redis counts (cars per pool, capacity) differ
/// from Postgres's is compared exactly under its lock and, if it still differs, rebuilt.
/// Returns the lots repaired. Counts are the cheap check (one small hash per lot, one
/// statement for all lots); a stale plate balanced by a missing one in the same pool is not
/// seen by it, and waits for the next event of that plate or a rebuild.
pub async fn reconcile(state: &AppState) -> Result<usize, ApiError> {
    let mut expected: BTreeMap<Uuid, BTreeMap<String, i64>> = BTreeMap::new();
    for (lot, pool, count) in sessions::inside_counts(&state.db).await? {
        expected.entry(lot).or_default().insert(pool, count);
    }
    let mut repaired = 0;
    for (lot, capacity) in registry::all_lot_capacities(&state.db).await? {
        let mut redis = state.occupancy.counts(lot).await?;
        let redis_capacity = redis.remove("capacity");
        redis.retain(|_, count| *count != 0);
        let postgres = expected.remove(&lot).unwrap_or_default();
        if redis_capacity == Some(i64::from(capacity)) && redis == postgres {
            continue;
        }
        let found = difference(state, lot, capacity).await?;
        if found.in_sync {
            continue;
        }
        rebuild_lot(state, lot, RebuildMode::Force).await?;
        crate::metrics::occupancy_repaired();
        tracing::warn!(%lot, only_in_redis = ?found.only_in_redis,
            only_in_postgres = ?found.only_in_postgres, pool_mismatch = ?found.pool_mismatch,
            redis_present = found.redis_present, "occupancy differed from Postgres; rebuilt");
        repaired += 1;
    }
    Ok(repaired)
}

/// How long after its last failed call a suspect lot is compared with Postgres: a call still
/// queued in a Redis that has just resumed runs within it.
pub const SUSPECT_QUIET: Duration = Duration::from_millis(1_000);
/// How often the suspect lots are looked at.
const SUSPECT_CHECK_EVERY: Duration = Duration::from_millis(250);

/// Compares each lot whose place-taking or place-giving call failed at least [`SUSPECT_QUIET`]
/// ago with Postgres, exactly and under its lock, and rebuilds it if it differs: a place taken
/// in a hung Redis for a car that was answered 503 is given back as soon as Redis answers
/// again, not at the next full pass. Returns the lots repaired.
pub async fn repair_suspects(state: &AppState) -> usize {
    let mut repaired = 0;
    let suspects = state.occupancy.suspects();
    for (lot, failed_at) in suspects.due(SUSPECT_QUIET) {
        let checked = async {
            let Some(found) = registry::lot_unscoped(&state.db, lot).await? else {
                return Ok(false);
            };
            let difference = difference(state, lot, found.visitor_capacity).await?;
            if difference.in_sync {
                return Ok(false);
            }
            rebuild_lot(state, lot, RebuildMode::Force).await?;
            tracing::warn!(%lot, only_in_redis = ?difference.only_in_redis,
                only_in_postgres = ?difference.only_in_postgres,
                "occupancy differed from Postgres after a failed Redis call; rebuilt");
            Ok::<_, ApiError>(true)
        };
        match checked.await {
            Ok(rebuilt) => {
                suspects.cleared(lot, failed_at);
                if rebuilt {
                    crate::metrics::occupancy_repaired();
                    repaired += 1;
                }
            }
            Err(e) => {
                tracing::debug!(%lot, error = ?e, "suspect lot not checked yet; Redis or Postgres away");
                suspects.retry(lot);
            }
        }
    }
    repaired
}

/// Runs [`reconcile`] every `every`, and [`repair_suspects`] every few hundred milliseconds,
/// until shutdown (a pass under way finishes). A failed pass (Redis or Postgres away) is logged and the
/// next one tries again.
pub fn spawn_reconciler(
    workers: &mut crate::workers::Workers,
    state: actix_web::web::Data<AppState>,
    every: std::time::Duration,
) {
    /// What woke the reconciler.
    enum Due {
        Reconcile,
        Suspects,
    }
    workers.supervise("occupancy_reconciler", move |shutdown| {
        let state = state.clone();
        async move {
            // The first pass one interval after start: the start itself rebuilt every lot.
            let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut suspects = tokio::time::interval(SUSPECT_CHECK_EVERY);
            suspects.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                let next = async {
                    tokio::select! {
                        _ = tick.tick() => Due::Reconcile,
                        _ = suspects.tick() => Due::Suspects,
                    }
                };
                let Some(due) = shutdown.until(next).await else {
                    return;
                };
                match due {
                    Due::Reconcile => {
                        if let Err(e) = reconcile(&state).await {
                            tracing::warn!(error = ?e, "occupancy reconciliation failed; retrying later");
                        }
                    }
                    Due::Suspects => {
                        repair_suspects(&state).await;
                    }
                }
            }
        }
    });
}

/// Where Redis and Postgres disagree about a lot.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Difference {
    pub in_sync: bool,
    pub redis_present: bool,
    /// Cars inside per pool, according to each side.
    pub postgres_counts: BTreeMap<String, i64>,
    pub redis_counts: BTreeMap<String, i64>,
    pub postgres_visitor_capacity: i32,
    pub redis_visitor_capacity: i64,
    /// Visitor places free now, as the gates see it (from Redis).
    pub visitor_free: i64,
    /// Plates inside in Redis only, in Postgres only, and in both but in different pools.
    pub only_in_redis: Vec<String>,
    pub only_in_postgres: Vec<String>,
    pub pool_mismatch: Vec<String>,
}

pub async fn difference(
    state: &AppState,
    lot_id: Uuid,
    visitor_capacity: i32,
) -> Result<Difference, ApiError> {
    let mut tx = state.db.begin().await?;
    sessions::lock_lot_exclusive(&mut tx, lot_id).await?;
    let postgres: BTreeMap<String, String> = sessions::inside(&mut *tx, lot_id)
        .await?
        .into_iter()
        .collect();
    let redis = state.occupancy.view(lot_id).await?;
    tx.commit().await?;

    let mut postgres_counts = BTreeMap::new();
    for pool in [Pool::Visitor, Pool::Reserved, Pool::Exempt] {
        let count = postgres
            .values()
            .filter(|p| p.as_str() == pool.as_str())
            .count();
        postgres_counts.insert(
            pool.as_str().to_owned(),
            i64::try_from(count).unwrap_or(i64::MAX),
        );
    }
    let only_in_redis: Vec<String> = redis
        .plates
        .keys()
        .filter(|p| !postgres.contains_key(*p))
        .cloned()
        .collect();
    let only_in_postgres: Vec<String> = postgres
        .keys()
        .filter(|p| !redis.plates.contains_key(*p))
        .cloned()
        .collect();
    let pool_mismatch: Vec<String> = postgres
        .iter()
        .filter(|(plate, pool)| redis.plates.get(*plate).is_some_and(|r| r != *pool))
        .map(|(plate, _)| plate.clone())
        .collect();
    let in_sync = redis.present
        && only_in_redis.is_empty()
        && only_in_postgres.is_empty()
        && pool_mismatch.is_empty()
        && redis.counts == postgres_counts
        && redis.visitor_capacity == i64::from(visitor_capacity);
    let visitor_free =
        (redis.visitor_capacity - redis.counts.get("visitor").copied().unwrap_or(0)).max(0);
    Ok(Difference {
        in_sync,
        redis_present: redis.present,
        postgres_counts,
        redis_counts: redis.counts,
        postgres_visitor_capacity: visitor_capacity,
        redis_visitor_capacity: redis.visitor_capacity,
        visitor_free,
        only_in_redis,
        only_in_postgres,
        pool_mismatch,
    })
}
/// How often the occupancy gauges are refreshed from Redis.
const OCCUPANCY_REFRESH_S: u64 = 15;

/// Refreshes the occupancy gauges (`metrics::set_occupancy`) from Redis every
/// [`OCCUPANCY_REFRESH_S`] until shutdown.
pub fn spawn_occupancy_refresh(
    workers: &mut crate::workers::Workers,
    db: sqlx::PgPool,
    occupancy: crate::occupancy::Occupancy,
) {
    workers.supervise("occupancy_metrics", move |shutdown| {
        let (db, occupancy) = (db.clone(), occupancy.clone());
        async move {
            let mut tick = tokio::time::interval(Duration::from_secs(OCCUPANCY_REFRESH_S));
            while shutdown.until(tick.tick()).await.is_some() {
                let lots = match registry::all_lot_ids(&db).await {
                    Ok(lots) => lots,
                    Err(_) => continue,
                };
                // Counts only: reading every plate inside every lot made this sweep's cost grow
                // with the cars parked, on the connection the gates use.
                for lot in lots {
                    let Ok(counts) = occupancy.counts(lot).await else {
                        continue;
                    };
                    let lot = lot.to_string();
                    for (pool, count) in &counts {
                        crate::metrics::set_occupancy(&lot, pool, *count);
                    }
                }
            }
        }
    });
}
