//! After a run: the system agrees with itself and with what it acknowledged.

use anyhow::Context;
use serde_json::Value;

use crate::seed::World;

#[derive(Debug, Default, serde::Serialize)]
pub struct Verdict {
    pub lots_checked: usize,
    pub acknowledged: usize,
    pub failures: Vec<String>,
}

/// Checks, for every lot of the world, that Redis occupancy equals the open sessions in
/// Postgres (the service's own difference report, which reads both stores) and that no lot
/// holds more visitors than its capacity; and, in Postgres directly, that every acknowledged
/// decision was stored.
pub async fn verify(
    world: &World,
    database_url: &str,
    acked: &[uuid::Uuid],
) -> anyhow::Result<Verdict> {
    let http = reqwest::Client::new();
    let mut verdict = Verdict {
        acknowledged: acked.len(),
        ..Verdict::default()
    };
    for lot in &world.lots {
        let view: Value = http
            .get(format!(
                "{}/v1/admin/lots/{}/occupancy",
                world.base_url, lot.id
            ))
            .bearer_auth(&world.staff_token)
            .send()
            .await?
            .json()
            .await
            .context("occupancy report")?;
        verdict.lots_checked += 1;
        if view["in_sync"] != true {
            verdict
                .failures
                .push(format!("lot {}: Redis and Postgres differ: {view}", lot.id));
        }
        let visitors = view["postgres_counts"]["visitor"].as_i64().unwrap_or(0);
        if visitors > i64::from(lot.capacity) {
            verdict.failures.push(format!(
                "lot {}: {visitors} visitors inside, capacity {}",
                lot.id, lot.capacity
            ));
        }
    }
    let db = sqlx::PgPool::connect(database_url)
        .await
        .context("connecting to Postgres to verify")?;
    let stored: i64 = sqlx::query_scalar("select count(*) from gate_events where id = any($1)")
        .bind(acked)
        .fetch_one(&db)
        .await?;
    if usize::try_from(stored).unwrap_or(0) != acked.len() {
        verdict.failures.push(format!(
            "{} acknowledged decisions, {stored} of them in Postgres",
            acked.len()
        ));
    }
    db.close().await;
    Ok(verdict)
}
