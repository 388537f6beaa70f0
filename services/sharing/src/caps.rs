//! How much one visitor may hold (issue 22): an unpaid booking holds its space only for a few
//! minutes, and a plate and a client address may each have only so many live bookings — held,
//! paid or in use — so that one anonymous client cannot take every shared space, and a stranger
//! who books someone else's plate must pay to keep it.

use chrono::{DateTime, Duration, Utc};

/// The named limits; the service takes them from its settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BookingCaps {
    /// An unpaid booking holds its space this many minutes.
    pub hold_min: i64,
    /// Live bookings of one plate.
    pub per_plate_max: i64,
    /// Live bookings made from one client address.
    pub per_client_max: i64,
}

/// Live bookings a new one would join.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Live {
    pub plate: i64,
    pub client: i64,
    /// When the client's first unpaid hold runs out, if it has one.
    pub client_next_expiry: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CapExceeded {
    #[error("this plate already has {max} live bookings, the most allowed")]
    Plate { max: i64 },
    /// `retry_after`: when a slot may free (the client's first hold runs out, or a hold's
    /// length when every booking is paid).
    #[error("{max} live bookings were made from this address, the most allowed")]
    Client { max: i64, retry_after: Duration },
}

impl CapExceeded {
    /// Stable machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            CapExceeded::Plate { .. } => "plate_booking_limit",
            CapExceeded::Client { .. } => "client_booking_limit",
        }
    }
}

impl BookingCaps {
    /// Whether one more booking may join `live` at `now`; the plate's cap is checked first.
    pub fn admit(&self, live: Live, now: DateTime<Utc>) -> Result<(), CapExceeded> {
        if live.plate >= self.per_plate_max {
            return Err(CapExceeded::Plate {
                max: self.per_plate_max,
            });
        }
        if live.client >= self.per_client_max {
            let retry_after = live
                .client_next_expiry
                .map(|at| at - now)
                .filter(|wait| *wait > Duration::zero())
                .unwrap_or(Duration::minutes(self.hold_min));
            return Err(CapExceeded::Client {
                max: self.per_client_max,
                retry_after,
            });
        }
        Ok(())
    }

    /// When a hold made at `now` runs out.
    pub fn hold_until(&self, now: DateTime<Utc>) -> DateTime<Utc> {
        now + Duration::minutes(self.hold_min)
    }
}

/// Whether a booking in `status` (with its hold's end, if held) keeps its space at `now`: paid
/// and in-use bookings do, an unpaid hold only until it runs out, whether or not anything has
/// marked it expired yet.
pub fn holds_space(
    status: &str,
    hold_expires_at: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> bool {
    match status {
        "booked" | "arrived" => true,
        "held" => hold_expires_at.is_some_and(|until| until > now),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use proptest::prelude::*;

    const CAPS: BookingCaps = BookingCaps {
        hold_min: 10,
        per_plate_max: 2,
        per_client_max: 5,
    };

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 12, 2, 10, 0, 0)
            .single()
            .unwrap_or_default()
    }

    fn live(plate: i64, client: i64, next: Option<i64>) -> Live {
        Live {
            plate,
            client,
            client_next_expiry: next.map(|s| now() + Duration::seconds(s)),
        }
    }

    #[test]
    fn the_plate_and_the_client_are_capped_with_their_codes() {
        assert_eq!(CAPS.admit(live(1, 4, None), now()), Ok(()));
        let plate = CAPS.admit(live(2, 0, None), now());
        assert_eq!(plate.map_err(|e| e.code()), Err("plate_booking_limit"));
        let client = CAPS.admit(live(0, 5, Some(90)), now());
        assert_eq!(
            client,
            Err(CapExceeded::Client {
                max: 5,
                retry_after: Duration::seconds(90)
            })
        );
        assert_eq!(client.map_err(|e| e.code()), Err("client_booking_limit"));
        // With no hold to run out (all paid), a hold's length is the best guess.
        let paid_up = CAPS.admit(live(0, 5, None), now());
        assert!(
            matches!(paid_up, Err(CapExceeded::Client { retry_after, .. }) if retry_after == Duration::minutes(10))
        );
    }

    #[test]
    fn a_hold_holds_until_it_runs_out_and_paid_bookings_for_good() {
        let until = CAPS.hold_until(now());
        assert!(holds_space("held", Some(until), now()));
        assert!(holds_space(
            "held",
            Some(until),
            until - Duration::seconds(1)
        ));
        assert!(!holds_space("held", Some(until), until));
        assert!(!holds_space("held", None, now()));
        assert!(holds_space("booked", None, until + Duration::days(1)));
        assert!(holds_space("arrived", None, now()));
        for gone in ["expired", "cancelled", "completed", "no_show"] {
            assert!(!holds_space(gone, Some(until), now()), "{gone}");
        }
    }

    proptest! {
        /// Admitted exactly while both counts are under their caps.
        #[test]
        fn admitted_iff_under_both_caps(plate in 0i64..6, client in 0i64..10) {
            let admitted = CAPS.admit(live(plate, client, None), now()).is_ok();
            prop_assert_eq!(admitted, plate < CAPS.per_plate_max && client < CAPS.per_client_max);
        }
    }
}
