//! The use of the spaces as disclosed (车位车库使用情况, rule 7): average cars inside by hour
//! of the day — the disclosure page's chart — from the recorded stays.
//!
//! For each hour of the day `H` in the compound's time zone, over a period `[from, until)`:
//!
//! ```text
//! average(H) = time cars were inside during the period's H o'clock hours
//!            / length of the period's H o'clock hours
//! ```
//!
//! A car inside for 30 minutes of an hour counts 0.5 for that hour; a month closed at local
//! midnight divides by its 30 or 31 H o'clock hours. A stay counts from its entry (or the
//! period's start) to its exit (or the period's end, if the car is still inside). Times are
//! added up as whole microseconds (Postgres's resolution), so nothing is lost before the one
//! division, which is rounded at [`AVERAGE_DP`] places, half away from zero — as an owner
//! checking by hand rounds (四舍五入).
//!
//! Done as a sweep over entries and exits in time order, so that the work is
//! `O(stays · log stays + hours of the period)` however long the stays are.

use chrono::{DateTime, Duration, Timelike, Utc};
use chrono_tz::Tz;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

/// Decimal places of a published average (cars, to a hundredth).
pub const AVERAGE_DP: u32 = 2;

const HOURS: usize = 24;
const HOUR_US: i64 = 3_600_000_000;

/// One recorded stay.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stay {
    pub entered_at: DateTime<Utc>,
    /// `None`: still inside.
    pub exited_at: Option<DateTime<Utc>>,
}

/// One bar of the chart.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct HourOccupancy {
    /// Hour of the day, local time (0–23).
    pub hour: i32,
    /// Cars inside during that hour, on average over the period's days (time-weighted).
    #[serde(with = "rust_decimal::serde::str")]
    pub average: Decimal,
}

/// Car-time and length of the period's hours, by local hour of the day, in microseconds.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Totals {
    pub inside_us: [i128; HOURS],
    pub covered_us: [i128; HOURS],
}

/// The chart's bars: one per hour of the day the period covers, in hour order.
pub fn by_hour(
    stays: &[Stay],
    tz: Tz,
    from: DateTime<Utc>,
    until: DateTime<Utc>,
) -> Vec<HourOccupancy> {
    let totals = totals(stays, tz, from, until);
    (0..HOURS)
        .filter(|&h| totals.covered_us[h] > 0)
        .map(|h| HourOccupancy {
            hour: i32::try_from(h).unwrap_or_default(),
            average: average(totals.inside_us[h], totals.covered_us[h]),
        })
        .collect()
}

/// `inside / covered`, rounded half away from zero at [`AVERAGE_DP`] places, in integers.
fn average(inside_us: i128, covered_us: i128) -> Decimal {
    let scaled = inside_us * 10_i128.pow(AVERAGE_DP);
    let (quotient, remainder) = (scaled / covered_us, scaled % covered_us);
    let rounded = quotient + i128::from(2 * remainder >= covered_us);
    Decimal::new(i64::try_from(rounded).unwrap_or(i64::MAX), AVERAGE_DP)
}

/// Adds up, for each local hour of the day, how long cars were inside and how long the period
/// lasted during it.
pub fn totals(stays: &[Stay], tz: Tz, from: DateTime<Utc>, until: DateTime<Utc>) -> Totals {
    // +1 at each entry, −1 at each exit, both clipped to the period.
    let mut changes: Vec<(i64, i128)> = stays
        .iter()
        .filter_map(|s| {
            let start = s.entered_at.max(from);
            let end = s.exited_at.unwrap_or(until).min(until);
            (start < end).then_some([(start.timestamp_micros(), 1), (end.timestamp_micros(), -1)])
        })
        .flatten()
        .collect();
    changes.sort_unstable();
    let mut totals = Totals::default();
    let (mut inside, mut next) = (0_i128, 0_usize);
    let mut slot_start = from;
    while slot_start < until {
        let slot_end = next_local_hour(tz, slot_start).min(until);
        let hour =
            usize::try_from(slot_start.with_timezone(&tz).hour()).unwrap_or_default() % HOURS;
        let (start_us, end_us) = (slot_start.timestamp_micros(), slot_end.timestamp_micros());
        let mut at = start_us;
        while let Some(&(change_at, delta)) = changes.get(next).filter(|c| c.0 < end_us) {
            totals.inside_us[hour] += inside * i128::from(change_at - at);
            (at, inside, next) = (change_at, inside + delta, next + 1);
        }
        totals.inside_us[hour] += inside * i128::from(end_us - at);
        totals.covered_us[hour] += i128::from(end_us - start_us);
        slot_start = slot_end;
    }
    totals
}

/// The next instant after `at` that begins a local hour (minute 0, second 0). Stepping by the
/// zone's own clock keeps hours right for offsets that are not whole hours (e.g. +05:30), and
/// across a change to or from summer time (the repeated hour is counted twice, the skipped
/// one not at all).
fn next_local_hour(tz: Tz, at: DateTime<Utc>) -> DateTime<Utc> {
    let local = at.with_timezone(&tz);
    let into_hour_us = i64::from(local.minute() * 60 + local.second()) * 1_000_000
        + i64::from(local.nanosecond() % 1_000_000_000) / 1_000;
    at + Duration::microseconds(HOUR_US - into_hour_us)
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;
    use proptest::prelude::*;

    use super::*;

    const SHANGHAI: Tz = chrono_tz::Asia::Shanghai;

    fn local(day: u32, hour: u32, minute: u32) -> DateTime<Utc> {
        SHANGHAI
            .with_ymd_and_hms(2026, 11, day, hour, minute, 0)
            .single()
            .map(|t| t.with_timezone(&Utc))
            .unwrap_or_else(|| panic!("{day} {hour}:{minute}"))
    }

    fn stay(from: DateTime<Utc>, to: Option<DateTime<Utc>>) -> Stay {
        Stay {
            entered_at: from,
            exited_at: to,
        }
    }

    fn averages(bars: &[HourOccupancy]) -> Vec<(i32, String)> {
        bars.iter()
            .map(|b| (b.hour, b.average.to_string()))
            .collect()
    }

    #[test]
    fn half_an_hour_inside_counts_half_a_car_for_that_hour() {
        // One day; one car from 08:30 to 10:00.
        let bars = by_hour(
            &[stay(local(2, 8, 30), Some(local(2, 10, 0)))],
            SHANGHAI,
            local(2, 0, 0),
            local(3, 0, 0),
        );
        assert_eq!(bars.len(), 24);
        assert_eq!(bars[8].average, Decimal::new(50, 2));
        assert_eq!(bars[9].average, Decimal::new(100, 2));
        assert_eq!(bars[10].average, Decimal::ZERO);
    }

    #[test]
    fn overnight_and_still_inside_stays_count_in_each_hour_they_span() {
        // Two days. B overnight 22:00–07:15; C came at 20:00 on the 3rd and is still inside
        // when the period ends; D came before the period and left at 00:45.
        let stays = [
            stay(local(2, 22, 0), Some(local(3, 7, 15))),
            stay(local(3, 20, 0), None),
            stay(local(1, 23, 30), Some(local(2, 0, 45))),
        ];
        let bars = by_hour(&stays, SHANGHAI, local(2, 0, 0), local(4, 0, 0));
        let got = averages(&bars);
        // 00: (0.75 + 1) / 2 = 0.875 → 0.88; 07: 0.25 / 2 = 0.125 → 0.13 (half away from zero).
        assert_eq!(got[0], (0, "0.88".into()));
        assert_eq!(got[3], (3, "0.50".into()));
        assert_eq!(got[7], (7, "0.13".into()));
        assert_eq!(got[20], (20, "0.50".into()));
        assert_eq!(got[22], (22, "1.00".into()));
        assert_eq!(got[12], (12, "0.00".into()));
    }

    #[test]
    fn hours_are_the_compounds_own_not_utc() {
        // 08:00–09:00 in Shanghai is 00:00–01:00 UTC.
        let bars = by_hour(
            &[stay(local(2, 8, 0), Some(local(2, 9, 0)))],
            SHANGHAI,
            local(2, 0, 0),
            local(3, 0, 0),
        );
        assert_eq!(bars[8].average, Decimal::ONE.round_dp(AVERAGE_DP));
        assert_eq!(bars[0].average, Decimal::ZERO);
        // In Kolkata (+05:30) the local hours start at half past the UTC hour.
        let kolkata = chrono_tz::Asia::Kolkata;
        let start = Utc.with_ymd_and_hms(2026, 11, 1, 18, 30, 0).single();
        let start = start.unwrap_or_else(|| panic!("instant"));
        let bars = by_hour(
            &[stay(start, Some(start + Duration::minutes(60)))],
            kolkata,
            start,
            start + Duration::days(1),
        );
        assert_eq!(bars[0].average, Decimal::new(100, 2), "{bars:?}");
        assert_eq!(bars[1].average, Decimal::ZERO);
    }

    #[test]
    fn a_period_shorter_than_a_day_shows_only_the_hours_it_covers() {
        let bars = by_hour(
            &[stay(local(2, 8, 0), None)],
            SHANGHAI,
            local(2, 8, 30),
            local(2, 10, 0),
        );
        assert_eq!(
            averages(&bars),
            vec![(8, "1.00".into()), (9, "1.00".into())]
        );
    }

    #[test]
    fn a_stay_with_its_exit_before_its_entry_counts_nothing() {
        let bars = by_hour(
            &[stay(local(2, 9, 0), Some(local(2, 8, 0)))],
            SHANGHAI,
            local(2, 0, 0),
            local(3, 0, 0),
        );
        assert!(bars.iter().all(|b| b.average.is_zero()), "{bars:?}");
    }

    proptest! {
        /// No car-time is lost or invented: the hours add up to the stays' time inside the
        /// period, and the covered hours to the period's length.
        #[test]
        fn the_hours_add_up_to_the_stays_and_the_period(
            raw in proptest::collection::vec((0_i64..400_000, 0_i64..200_000, any::<bool>()), 0..40),
            from_s in 0_i64..100_000,
            length_s in 1_i64..400_000,
        ) {
            let base = local(1, 0, 0);
            let from = base + Duration::seconds(from_s);
            let until = from + Duration::seconds(length_s);
            let stays: Vec<Stay> = raw
                .iter()
                .map(|&(at, len, inside)| {
                    let entered_at = base + Duration::seconds(at);
                    stay(entered_at, (!inside).then(|| entered_at + Duration::seconds(len)))
                })
                .collect();
            let t = totals(&stays, SHANGHAI, from, until);
            let expected: i128 = stays
                .iter()
                .map(|s| {
                    let start = s.entered_at.max(from);
                    let end = s.exited_at.unwrap_or(until).min(until);
                    i128::from((end - start).num_microseconds().unwrap_or(0).max(0))
                })
                .sum();
            prop_assert_eq!(t.inside_us.iter().sum::<i128>(), expected);
            prop_assert_eq!(
                t.covered_us.iter().sum::<i128>(),
                i128::from((until - from).num_microseconds().unwrap_or(0))
            );
        }
    }
}
