//! Prometheus metrics, served at `/metrics`: request latency histograms per route (by
//! actix-web-prom), gate decisions by direction and reason, the size of the gate's decision
//! batches, credential cache hits and misses, Redis and Postgres errors, and the
//! occupancy of every lot by pool (refreshed in the background, off the hot path).

use std::sync::LazyLock;

use prometheus::{
    Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGaugeVec, Opts, Registry,
};

pub struct Metrics {
    pub registry: Registry,
    pub decisions: IntCounterVec,
    pub backend_errors: IntCounterVec,
    pub occupancy: IntGaugeVec,
    pub webhook_deliveries: IntCounterVec,
    pub batch_reads: Histogram,
    pub batches: IntCounterVec,
    pub credential_lookups: IntCounterVec,
    pub occupancy_repairs: IntCounter,
    pub worker_restarts: IntCounterVec,
    pub rate_limited: IntCounterVec,
}

fn build() -> Result<Metrics, prometheus::Error> {
    let registry = Registry::new();
    let decisions = IntCounterVec::new(
        Opts::new(
            "parkshare_gate_decisions_total",
            "Gate decisions by direction and reason",
        ),
        &["direction", "reason"],
    )?;
    let backend_errors = IntCounterVec::new(
        Opts::new(
            "parkshare_backend_errors_total",
            "Errors talking to Postgres or Redis",
        ),
        &["backend"],
    )?;
    let occupancy = IntGaugeVec::new(
        Opts::new(
            "parkshare_lot_occupancy",
            "Cars inside each lot by pool, and its visitor capacity",
        ),
        &["lot", "pool"],
    )?;
    let webhook_deliveries = IntCounterVec::new(
        Opts::new(
            "parkshare_webhook_attempts_total",
            "Webhook delivery attempts by outcome",
        ),
        &["outcome"],
    )?;
    let batch_reads = Histogram::with_opts(
        HistogramOpts::new(
            "parkshare_gate_batch_reads",
            "Live gate reads decided together in one transaction",
        )
        .buckets(vec![1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0]),
    )?;
    let batches = IntCounterVec::new(
        Opts::new(
            "parkshare_gate_batches_total",
            "Batches of gate reads by outcome: committed, or failed and decided alone",
        ),
        &["outcome"],
    )?;
    let credential_lookups = IntCounterVec::new(
        Opts::new(
            "parkshare_credential_lookups_total",
            "Credential lookups by kind (gate, staff) and whether the process's cache answered",
        ),
        &["kind", "result"],
    )?;
    let occupancy_repairs = IntCounter::new(
        "parkshare_occupancy_repairs_total",
        "Lots whose Redis occupancy differed from Postgres and were rebuilt by the reconciler",
    )?;
    registry.register(Box::new(occupancy_repairs.clone()))?;
    let worker_restarts = IntCounterVec::new(
        Opts::new(
            "parkshare_worker_restarts_total",
            "Background workers started again after they panicked or ended, by worker",
        ),
        &["worker"],
    )?;
    registry.register(Box::new(worker_restarts.clone()))?;
    let rate_limited = IntCounterVec::new(
        Opts::new(
            "parkshare_rate_limited_total",
            "Public requests answered 429 by the per-client limits, by budget",
        ),
        &["budget"],
    )?;
    registry.register(Box::new(rate_limited.clone()))?;
    registry.register(Box::new(decisions.clone()))?;
    registry.register(Box::new(credential_lookups.clone()))?;
    registry.register(Box::new(batches.clone()))?;
    registry.register(Box::new(batch_reads.clone()))?;
    registry.register(Box::new(backend_errors.clone()))?;
    registry.register(Box::new(occupancy.clone()))?;
    registry.register(Box::new(webhook_deliveries.clone()))?;
    Ok(Metrics {
        registry,
        decisions,
        backend_errors,
        occupancy,
        webhook_deliveries,
        batch_reads,
        batches,
        credential_lookups,
        occupancy_repairs,
        worker_restarts,
        rate_limited,
    })
}

/// The process's metrics; `None` only if registering failed, a programming error the unit test
/// below catches (the service then runs without its own metrics rather than not at all).
static METRICS: LazyLock<Option<Metrics>> = LazyLock::new(|| {
    build()
        .inspect_err(|e| tracing::error!(error = %e, "metrics could not be registered"))
        .ok()
});

/// Counts a gate decision.
pub fn decision(direction: &str, reason: &str) {
    if let Some(m) = METRICS.as_ref() {
        m.decisions.with_label_values(&[direction, reason]).inc();
    }
}

/// Records a batch of gate reads: its size, and whether it committed.
pub fn batch(reads: usize, committed: bool) {
    if let Some(m) = METRICS.as_ref() {
        m.batch_reads.observe(reads as f64);
        let outcome = if committed { "committed" } else { "failed" };
        m.batches.with_label_values(&[outcome]).inc();
    }
}

/// The counters of credential lookups of `kind` (`gate`, `staff`), hits then misses: resolved
/// once, so that counting a lookup on the hot path is one atomic increment.
pub fn credential_lookups(kind: &str) -> Option<(IntCounter, IntCounter)> {
    let m = METRICS.as_ref()?;
    Some((
        m.credential_lookups.with_label_values(&[kind, "hit"]),
        m.credential_lookups.with_label_values(&[kind, "miss"]),
    ))
}

/// Counts a background worker started again by its supervisor.
pub fn worker_restarted(worker: &str) {
    if let Some(m) = METRICS.as_ref() {
        m.worker_restarts.with_label_values(&[worker]).inc();
    }
}

/// Counts a lot whose Redis view the reconciler rebuilt.
pub fn occupancy_repaired() {
    if let Some(m) = METRICS.as_ref() {
        m.occupancy_repairs.inc();
    }
}

/// Counts a request refused over the rate limit of `budget` (`booking` or `public`).
pub fn rate_limited(budget: &str) {
    if let Some(m) = METRICS.as_ref() {
        m.rate_limited.with_label_values(&[budget]).inc();
    }
}

/// Counts an error from `backend` (`postgres` or `redis`).
pub fn backend_error(backend: &str) {
    if let Some(m) = METRICS.as_ref() {
        m.backend_errors.with_label_values(&[backend]).inc();
    }
}

/// Counts a webhook delivery attempt by outcome (`delivered`, `pending`, `failed`, or
/// `refused`: not sent, its address is not public).
pub fn webhook_attempt(outcome: &str) {
    if let Some(m) = METRICS.as_ref() {
        m.webhook_deliveries.with_label_values(&[outcome]).inc();
    }
}

/// Sets the gauge of a lot's cars in a pool (the refresh is `sync::spawn_occupancy_refresh`).
pub fn set_occupancy(lot: &str, pool: &str, value: i64) {
    if let Some(m) = METRICS.as_ref() {
        m.occupancy.with_label_values(&[lot, pool]).set(value);
    }
}

/// The request middleware (per-route latency histograms, and `/metrics` itself), built once per
/// process: its histograms live in the one registry however many servers the process runs.
static HTTP: LazyLock<Result<actix_web_prom::PrometheusMetrics, String>> = LazyLock::new(|| {
    actix_web_prom::PrometheusMetricsBuilder::new("parkshare")
        .endpoint("/metrics")
        .registry(
            METRICS
                .as_ref()
                .map(|m| m.registry.clone())
                .unwrap_or_default(),
        )
        .mask_unmatched_patterns("UNKNOWN")
        .build()
        .map_err(|e| e.to_string())
});

pub fn http() -> Result<actix_web_prom::PrometheusMetrics, anyhow::Error> {
    HTTP.clone()
        .map_err(|e| anyhow::anyhow!("metrics middleware: {e}"))
}

#[cfg(test)]
mod tests {
    use super::build;

    #[test]
    fn every_metric_registers() {
        assert!(build().is_ok());
    }
}
