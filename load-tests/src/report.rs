//! What a run measured.

use std::collections::BTreeMap;

use hdrhistogram::Histogram;
use serde::Serialize;

use crate::scenario::Mix;

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub mix: String,
    /// Requests per second asked for.
    pub target_rate: f64,
    /// Requests answered per second.
    pub achieved_rate: f64,
    pub requests: u64,
    /// Milliseconds from each request's scheduled start to its answer.
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub p999_ms: f64,
    pub max_ms: f64,
    /// Decisions by gate and reason, e.g. `entry:visitor_admitted`.
    pub outcomes: BTreeMap<String, u64>,
    /// Errors by kind: `http_503:unavailable`, `transport:timeout`, `unexpected:…`.
    pub errors: BTreeMap<String, u64>,
    #[serde(skip)]
    pub acked: Vec<uuid::Uuid>,
}

impl Report {
    pub fn new(
        mix: Mix,
        target_rate: f64,
        seconds: f64,
        latency: &Histogram<u64>,
        outcomes: BTreeMap<String, u64>,
        errors: BTreeMap<String, u64>,
        acked: Vec<uuid::Uuid>,
    ) -> Report {
        let ms = |q: f64| latency.value_at_quantile(q) as f64 / 1000.0;
        let requests = latency.len();
        Report {
            mix: format!("{mix:?}").to_lowercase(),
            target_rate,
            achieved_rate: requests as f64 / seconds.max(0.001),
            requests,
            p50_ms: ms(0.5),
            p99_ms: ms(0.99),
            p999_ms: ms(0.999),
            max_ms: latency.max() as f64 / 1000.0,
            outcomes,
            errors,
            acked,
        }
    }

    pub fn error_count(&self) -> u64 {
        self.errors.values().sum()
    }

    /// One line for a step of the search or a run.
    pub fn line(&self) -> String {
        format!(
            "{:>8.0}/s asked {:>8.0}/s done  p50 {:>7.2} ms  p99 {:>7.2} ms  p99.9 {:>7.2} ms  max {:>8.2} ms  errors {} {:?}",
            self.target_rate,
            self.achieved_rate,
            self.p50_ms,
            self.p99_ms,
            self.p999_ms,
            self.max_ms,
            self.error_count(),
            self.errors
        )
    }
}
