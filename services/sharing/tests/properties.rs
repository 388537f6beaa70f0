//! The availability arithmetic against the rules read one instant at a time.

use chrono::{DateTime, Duration, NaiveTime, TimeZone, Utc};
use chrono_tz::Tz;
use parkshare_sharing::{Exception, ExceptionKind, Interval, Schedule, WeeklyWindow};
use proptest::prelude::*;

fn base() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 16, 0, 0, 0)
        .single()
        .unwrap_or_default()
}

fn window() -> impl Strategy<Value = WeeklyWindow> {
    (
        proptest::collection::vec(1_u8..=7, 1..4),
        0_u32..48,
        0_u32..48,
    )
        .prop_map(|(days, a, b)| {
            let clock = |half_hours: u32| {
                NaiveTime::from_hms_opt(half_hours / 2, (half_hours % 2) * 30, 0)
                    .unwrap_or_default()
            };
            let mut days = days;
            days.sort_unstable();
            days.dedup();
            WeeklyWindow {
                days,
                start: clock(a),
                end: clock(b),
            }
        })
}

fn exception() -> impl Strategy<Value = Exception> {
    (any::<bool>(), 0_i64..(14 * 24 * 4), 1_i64..(24 * 4)).prop_map(|(open, start_q, len_q)| {
        let start = base() + Duration::minutes(start_q * 15);
        Exception {
            kind: if open {
                ExceptionKind::Open
            } else {
                ExceptionKind::Blackout
            },
            during: Interval {
                start,
                end: start + Duration::minutes(len_q * 15),
            },
        }
    })
}

fn zone() -> impl Strategy<Value = Tz> {
    prop_oneof![
        Just(chrono_tz::Asia::Shanghai),
        Just(chrono_tz::Asia::Urumqi),
        Just(chrono_tz::Europe::London)
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    /// Open intervals are sorted, disjoint and inside the query, and an instant is in one of
    /// them exactly when the rules, read at that instant, say the space is open.
    #[test]
    fn intervals_agree_with_the_rules_at_every_instant(
        windows in proptest::collection::vec(window(), 0..4),
        exceptions in proptest::collection::vec(exception(), 0..5),
        tz in zone(),
        from_q in 0_i64..(7 * 24 * 4),
        len_q in 1_i64..(5 * 24 * 4),
        probes in proptest::collection::vec(0_i64..(12 * 24 * 60), 40),
    ) {
        let schedule = Schedule { windows, exceptions };
        let start = base() + Duration::minutes(from_q * 15);
        let query = Interval { start, end: start + Duration::minutes(len_q * 15) };
        let open = schedule.open_intervals(tz, &query).unwrap_or_default();
        for pair in open.windows(2) {
            prop_assert!(pair[0].end < pair[1].start, "not disjoint and merged: {:?}", pair);
        }
        for piece in &open {
            prop_assert!(query.covers(piece));
        }
        for minute in probes {
            let at = base() + Duration::minutes(minute) + Duration::seconds(7);
            if !query.contains(at) {
                continue;
            }
            let in_interval = open.iter().any(|i| i.contains(at));
            prop_assert_eq!(in_interval, schedule.is_open_at(tz, at), "at {}", at);
        }
    }
}
