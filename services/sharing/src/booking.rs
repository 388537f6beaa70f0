//! What a booking may be, when its holder is let in, and what cancelling it costs.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use crate::interval::Interval;

/// A booking shorter than this is not worth a space held idle around it.
pub const BOOKING_MIN: i64 = 15;
/// One booking holds a space for at most three days; longer stays are monthly permits.
pub const BOOKING_DAYS_MAX: i64 = 3;
/// Bookings open this many days ahead.
pub const ADVANCE_DAYS_MAX: i64 = 30;
/// A booking may start this far in the past (the visitor is already at the gate).
pub const START_IN_PAST_MIN_MAX: i64 = 5;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BookingError {
    #[error("a booking must end after it starts")]
    Empty,
    #[error("a booking lasts at least {BOOKING_MIN} minutes")]
    TooShort,
    #[error("a booking lasts at most {BOOKING_DAYS_MAX} days")]
    TooLong,
    #[error("a booking cannot start in the past")]
    InThePast,
    #[error("bookings open at most {ADVANCE_DAYS_MAX} days ahead")]
    TooFarAhead,
}

impl BookingError {
    /// Stable machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            BookingError::Empty => "empty_booking",
            BookingError::TooShort => "booking_too_short",
            BookingError::TooLong => "booking_too_long",
            BookingError::InThePast => "booking_in_the_past",
            BookingError::TooFarAhead => "booking_too_far_ahead",
        }
    }
}

/// A compound's booking rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct BookingLimits {
    /// A booked plate is admitted this many minutes before its booking starts.
    pub early_arrival_min: u32,
    /// Cancelling at least this many minutes before the start is free.
    pub free_cancel_min: u32,
}

impl Default for BookingLimits {
    fn default() -> BookingLimits {
        BookingLimits {
            early_arrival_min: 15,
            free_cancel_min: 60,
        }
    }
}

impl BookingLimits {
    /// Checks a requested period against the named limits.
    pub fn check(
        &self,
        now: DateTime<Utc>,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Interval, BookingError> {
        let wanted = Interval::new(from, to).ok_or(BookingError::Empty)?;
        if wanted.duration() < Duration::minutes(BOOKING_MIN) {
            return Err(BookingError::TooShort);
        }
        if wanted.duration() > Duration::days(BOOKING_DAYS_MAX) {
            return Err(BookingError::TooLong);
        }
        if from < now - Duration::minutes(START_IN_PAST_MIN_MAX) {
            return Err(BookingError::InThePast);
        }
        if from > now + Duration::days(ADVANCE_DAYS_MAX) {
            return Err(BookingError::TooFarAhead);
        }
        Ok(wanted)
    }

    /// Whether a car arriving at `at` is let in on the booking `booked`.
    pub fn admits(&self, booked: &Interval, at: DateTime<Utc>) -> bool {
        booked.start - Duration::minutes(i64::from(self.early_arrival_min)) <= at && at < booked.end
    }

    /// The terms a booking starting at `start` is made on.
    pub fn cancellation(&self, start: DateTime<Utc>) -> CancellationTerms {
        CancellationTerms {
            free_until: start - Duration::minutes(i64::from(self.free_cancel_min)),
        }
    }
}

/// Cancelling is free until `free_until`; after it the late-cancellation fee is due.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct CancellationTerms {
    pub free_until: DateTime<Utc>,
}

impl CancellationTerms {
    pub fn is_free_at(&self, now: DateTime<Utc>) -> bool {
        now <= self.free_until
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(h: u32, m: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 23, h, m, 0)
            .single()
            .unwrap_or_default()
    }

    #[test]
    fn requests_outside_the_limits_are_refused_with_their_reason() {
        let rules = BookingLimits::default();
        let now = at(8, 0);
        assert_eq!(
            rules.check(now, at(9, 0), at(9, 0)),
            Err(BookingError::Empty)
        );
        assert_eq!(
            rules.check(now, at(9, 0), at(9, 10)),
            Err(BookingError::TooShort)
        );
        assert_eq!(
            rules.check(now, at(7, 0), at(9, 0)),
            Err(BookingError::InThePast)
        );
        assert_eq!(
            rules.check(now, at(9, 0), at(9, 0) + Duration::days(4)),
            Err(BookingError::TooLong)
        );
        assert_eq!(
            rules.check(
                now,
                now + Duration::days(31),
                now + Duration::days(31) + Duration::hours(1)
            ),
            Err(BookingError::TooFarAhead)
        );
        assert!(rules.check(now, at(7, 57), at(9, 0)).is_ok());
    }

    #[test]
    fn a_booked_car_is_let_in_a_little_early_but_not_after_the_end() {
        let rules = BookingLimits {
            early_arrival_min: 15,
            free_cancel_min: 60,
        };
        let booked = Interval {
            start: at(10, 0),
            end: at(12, 0),
        };
        assert!(!rules.admits(&booked, at(9, 44)));
        assert!(rules.admits(&booked, at(9, 45)));
        assert!(rules.admits(&booked, at(11, 59)));
        assert!(!rules.admits(&booked, at(12, 0)));
    }

    #[test]
    fn cancelling_is_free_until_the_free_period_ends() {
        let terms = BookingLimits::default().cancellation(at(10, 0));
        assert!(terms.is_free_at(at(9, 0)));
        assert!(!terms.is_free_at(at(9, 1)));
    }
}
