//! The service's one source of "now": every rule that asks what time it is (does a hold still
//! hold, has the window closed, is the offer lapsed, is the read from the future, is the period
//! over) asks a [`Clock`], which lives in `AppState` and is handed to the background workers.
//!
//! In production it is [`Clock::system`], the wall clock. Tests build a [`TestClock`] and
//! advance it to let a hold lapse or a window close, instead of sleeping on the wall clock.
//!
//! **The rule for SQL `now()`.** A statement that applies a business rule to the time (hold
//! expiry, a lapse, a window's close, a manual open's time to live, a heartbeat window) binds
//! the clock's instant as a parameter, so Rust and Postgres cannot disagree about what time it
//! is. `now()` stays only where the wall clock is the right answer: audit columns no rule reads
//! (`created_at`, `updated_at`, `resolved_at`, `revoked_at`) and column defaults for rows the
//! service does not write.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use chrono::{DateTime, Duration, DurationRound, Utc};

/// What time it is, for every rule of the service. Cheap to clone; clones share the time.
#[derive(Clone, Debug, Default)]
pub struct Clock {
    /// How far a test moved this clock ahead of the wall clock, in microseconds; `None` for
    /// the wall clock itself.
    shift_us: Option<Arc<AtomicI64>>,
}

impl Clock {
    /// The wall clock.
    pub fn system() -> Clock {
        Clock { shift_us: None }
    }

    /// Now, to the microsecond: what Postgres keeps, so that an instant written and read
    /// back compares equal to the one the service decided with.
    pub fn now(&self) -> DateTime<Utc> {
        let shift = self
            .shift_us
            .as_ref()
            .map_or(0, |shift| shift.load(Ordering::SeqCst));
        let now = Utc::now() + Duration::microseconds(shift);
        now.duration_trunc(Duration::microseconds(1)).unwrap_or(now)
    }
}

/// A clock a test moves: it runs with the wall clock (so instants a test takes from
/// `Utc::now()` before it advances stay sensible) from an offset that [`TestClock::advance`]
/// only ever increases — time never runs back, as it does not for the service in production.
#[derive(Clone, Debug, Default)]
pub struct TestClock {
    shift_us: Arc<AtomicI64>,
}

impl TestClock {
    pub fn new() -> TestClock {
        TestClock::default()
    }

    /// The [`Clock`] to give the service: it reads this test clock's time.
    pub fn clock(&self) -> Clock {
        Clock {
            shift_us: Some(self.shift_us.clone()),
        }
    }

    pub fn now(&self) -> DateTime<Utc> {
        self.clock().now()
    }

    /// Moves the clock ahead by `by` (not negative).
    pub fn advance(&self, by: Duration) {
        assert!(by >= Duration::zero(), "a clock never runs back: {by}");
        let by_us = by
            .num_microseconds()
            .unwrap_or_else(|| panic!("{by} is too long to advance a clock by"));
        self.shift_us.fetch_add(by_us, Ordering::SeqCst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_test_clock_moves_only_when_told_and_only_forward() {
        let test = TestClock::new();
        let clock = test.clock();
        let before = clock.now();
        assert!((before - Utc::now()).num_seconds().abs() < 1);
        test.advance(Duration::hours(2));
        let after = clock.now();
        assert!(after - before >= Duration::hours(2), "{before} → {after}");
        assert!(after - before < Duration::hours(2) + Duration::seconds(1));
        // Clones share the time.
        assert!(clock.clone().now() >= after);
        assert!(test.now() >= after);
        let back = std::panic::catch_unwind(|| test.advance(Duration::seconds(-1)));
        assert!(back.is_err(), "a clock must not run back");
    }

    #[test]
    fn now_is_kept_to_the_microsecond_as_postgres_keeps_it() {
        let now = Clock::system().now();
        assert_eq!(now.timestamp_subsec_nanos() % 1_000, 0, "{now:?}");
    }
}
