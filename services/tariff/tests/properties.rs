//! Properties of billing over generated tariffs and stays.

use chrono::{DateTime, Duration, NaiveTime, TimeZone, Timelike, Utc};
use parkshare_domain::money::Money;
use parkshare_domain::vehicle::VehicleClass;
use parkshare_tariff::engine::STAY_DAYS_MAX;
use parkshare_tariff::model::{
    AfterWindow, Cap, ClassTariff, ClockTime, FreePeriod, Night, PartialUnit, Rate, Step,
};
use parkshare_tariff::regulated::{check_filing, Limits, Price, Standard};
use parkshare_tariff::{Stay, Tariff};
use proptest::prelude::*;
use rust_decimal::Decimal;

const TZ: chrono_tz::Tz = chrono_tz::Asia::Shanghai;

fn fen(n: i64) -> Money {
    Money::from_fen(n)
}

fn unit_len() -> impl Strategy<Value = u32> {
    prop::sample::select(vec![15_u32, 30, 60, 120])
}

fn rate() -> impl Strategy<Value = Rate> {
    (
        prop::option::of((
            prop::sample::select(vec![30_u32, 60, 120, 480]),
            0_i64..1000,
        )),
        prop::option::of((unit_len(), 1_u32..6, 0_i64..800)),
        unit_len(),
        0_i64..800,
    )
        .prop_map(|(block, tier, unit_min, price)| {
            let mut steps = Vec::new();
            let mut start = 0;
            if let Some((minutes, price)) = block {
                steps.push(Step::Block {
                    minutes,
                    price: fen(price),
                });
                start += minutes;
            }
            if let Some((tier_unit, count, tier_price)) = tier {
                start += tier_unit * count;
                steps.push(Step::Units {
                    unit_min: tier_unit,
                    price: fen(tier_price),
                    until_min: Some(start),
                });
            }
            steps.push(Step::Units {
                unit_min,
                price: fen(price),
                until_min: None,
            });
            Rate { steps }
        })
}

fn cap() -> impl Strategy<Value = Cap> {
    prop_oneof![
        (100_i64..10_000).prop_map(|a| Cap::rolling24h(fen(a))),
        (100_i64..10_000).prop_map(|a| Cap::CalendarDay { amount: fen(a) }),
        (2_u32..8, 100_i64..30_000).prop_map(|(days, a)| Cap::MultiDay {
            days,
            amount: fen(a)
        }),
        (100_i64..50_000).prop_map(|a| Cap::PerStay { amount: fen(a) }),
    ]
}

fn quarter_hour() -> impl Strategy<Value = ClockTime> {
    (0_u32..24, prop::sample::select(vec![0_u32, 15, 30, 45]))
        .prop_map(|(h, m)| ClockTime(NaiveTime::from_hms_opt(h, m, 0).unwrap_or(NaiveTime::MIN)))
}

fn class_tariff() -> impl Strategy<Value = ClassTariff> {
    (
        rate(),
        prop::option::of((
            quarter_hour(),
            quarter_hour(),
            rate(),
            prop::option::of(100_i64..2000),
        )),
        prop::collection::vec(cap(), 0..3),
    )
        .prop_map(|(day, night, caps)| ClassTariff {
            flat_up_to: None,
            day,
            night: night
                .filter(|(s, e, _, _)| s != e)
                .map(|(start, end, rate, cap)| Night {
                    start,
                    end,
                    rate,
                    cap: cap.map(fen),
                }),
            caps,
        })
}

prop_compose! {
    fn tariff()(
        free in prop_oneof![
            Just(FreePeriod::None),
            (0_u32..120).prop_map(|minutes| FreePeriod::WholeStayWithin { minutes }),
            (0_u32..120).prop_map(|minutes| FreePeriod::DeductFirst { minutes }),
        ],
        partial in prop_oneof![
            Just(PartialUnit::RoundUp),
            Just(PartialUnit::RoundDown),
            (1_u32..14).prop_map(|minutes| PartialUnit::IgnoreUpTo { minutes }),
        ],
        after in prop_oneof![
            Just(AfterWindow::StartsOver),
            Just(AfterWindow::StartsOverEachCalendarDay),
            Just(AfterWindow::ContinuesAtUnitPrice),
        ],
        small in class_tariff(),
        nev_free in prop::sample::select(vec![0_u32, 60, 120]),
        owner_pct in 0_i64..=30,
    ) -> Tariff {
        let mut t = Tariff::simple(0, Money::ZERO, None);
        t.free = free;
        t.partial_unit = partial;
        t.after_window = after;
        t.small = small;
        t.new_energy_free_min_per_day = nev_free;
        t.owner_discount_pct = Decimal::from(owner_pct);
        t
    }
}

fn instant(minute_of_month: i64) -> DateTime<Utc> {
    TZ.with_ymd_and_hms(2026, 3, 1, 0, 0, 0)
        .single()
        .map(|t| t.with_timezone(&Utc))
        .unwrap_or_default()
        + Duration::minutes(minute_of_month)
}

fn stay(entered_at: DateTime<Utc>, minutes: i64, class: VehicleClass, owner: bool) -> Stay {
    Stay {
        entered_at,
        exited_at: entered_at + Duration::minutes(minutes),
        class,
        owner,
        extra_free_min: 0,
        time_zone: TZ,
    }
}

fn total(tariff: &Tariff, stay: &Stay) -> Money {
    tariff
        .bill(stay)
        .map(|b| b.total)
        .unwrap_or_else(|e| panic!("{e}"))
}

fn class() -> impl Strategy<Value = VehicleClass> {
    prop::sample::select(vec![VehicleClass::Small, VehicleClass::NewEnergy])
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn generated_tariffs_are_valid(tariff in tariff()) {
        prop_assert_eq!(tariff.validate(), Ok(()));
    }

    #[test]
    fn a_longer_stay_never_costs_less(
        tariff in tariff(), entry in 0_i64..(24 * 60), minutes in 0_i64..(5 * 24 * 60), more in 0_i64..(2 * 24 * 60),
        class in class(), owner in any::<bool>(),
    ) {
        let entered_at = instant(entry);
        let shorter = total(&tariff, &stay(entered_at, minutes, class, owner));
        let longer = total(&tariff, &stay(entered_at, minutes + more, class, owner));
        prop_assert!(longer >= shorter, "{} min: {}, {} min: {}", minutes, shorter, minutes + more, longer);
    }

    #[test]
    fn lines_add_up_to_the_total_and_caps_hold(
        tariff in tariff(), entry in 0_i64..(24 * 60), minutes in 0_i64..(9 * 24 * 60), class in class(),
    ) {
        let bill = tariff.bill(&stay(instant(entry), minutes, class, false)).unwrap_or_else(|e| panic!("{e}"));
        let sum: Decimal = bill.lines.iter().map(|l| l.amount).sum();
        prop_assert_eq!(sum, bill.total.yuan());
        prop_assert!(bill.total >= Money::ZERO);
        let windows_24h = u32::try_from((minutes.max(1) + 24 * 60 - 1) / (24 * 60)).unwrap_or(u32::MAX);
        for cap in &tariff.small.caps {
            match cap {
                Cap::Rolling24h { amount, .. } => prop_assert!(bill.total <= amount.times(windows_24h)),
                Cap::PerStay { amount } => prop_assert!(bill.total <= *amount),
                Cap::MultiDay { days, amount } => {
                    let windows = u32::try_from((minutes.max(1) + i64::from(*days) * 1440 - 1) / (i64::from(*days) * 1440)).unwrap_or(u32::MAX);
                    prop_assert!(bill.total <= amount.times(windows));
                }
                // A stay touches at most (started days + 1) calendar days.
                Cap::CalendarDay { amount } => prop_assert!(bill.total <= amount.times(windows_24h + 1)),
            }
        }
    }

    /// The bill does not depend on which days the stay falls on: the same stay a whole number
    /// of days later costs the same, however its days are cut by midnight and by 24-hour windows.
    #[test]
    fn the_same_stay_on_other_days_costs_the_same(
        tariff in tariff(), entry in 0_i64..(24 * 60), minutes in 0_i64..(4 * 24 * 60), days in 1_i64..20,
        class in class(),
    ) {
        let a = total(&tariff, &stay(instant(entry), minutes, class, false));
        let b = total(&tariff, &stay(instant(entry + days * 24 * 60), minutes, class, false));
        prop_assert_eq!(a, b);
    }

}

fn standard(hourly: i64, daily: i64) -> Standard {
    Standard {
        small: Limits {
            per_hour: Some(Price::Max {
                amount: fen(hourly),
            }),
            per_24h: Some(Price::BaseWithFloat {
                base: fen(daily),
                float_pct: Decimal::from(10),
            }),
            monthly: None,
        },
        large: None,
        new_energy: None,
    }
}

fn stay_s(entered_at: DateTime<Utc>, duration_s: i64, class: VehicleClass) -> Stay {
    Stay {
        entered_at,
        exited_at: entered_at + Duration::seconds(duration_s),
        class,
        owner: false,
        extra_free_min: 0,
        time_zone: TZ,
    }
}

const DAY_S: i64 = 24 * 60 * 60;

proptest! {
    // Each case files a generated tariff: every entry on its minute grid, stays of up to
    // weeks — about a second each in a debug build, so fewer cases than above.
    #![proptest_config(ProptestConfig::with_cases(40))]

    /// Issue 21, item 9: a tariff the filing check accepts never bills above the standard,
    /// for any entry second and any duration in seconds — short ones, where hourly ceilings
    /// bind, and long ones up to the longest billable stay.
    #[test]
    fn a_filed_tariff_never_charges_above_the_standard(
        tariff in tariff(), hourly in 100_i64..3000, daily in 500_i64..20_000,
        entry_s in 0_i64..DAY_S, short_s in 1_i64..(3 * DAY_S),
        long_s in 1_i64..(STAY_DAYS_MAX * DAY_S), class in class(),
    ) {
        let standard = standard(hourly, daily);
        if check_filing(&tariff, &standard, TZ).is_ok() {
            for duration_s in [short_s, long_s] {
                let s = stay_s(instant(0) + Duration::seconds(entry_s), duration_s, class);
                let limit = standard.max_fee(class, duration_s).unwrap_or(Money::ZERO);
                let fee = total(&tariff, &s);
                prop_assert!(fee <= limit, "{} s from {} costs {}, limit {}", duration_s, entry_s, fee, limit);
            }
        }
    }

    /// The other half of exactness: a refused tariff is refused for a stay that really costs
    /// more than the standard allows, on any day.
    #[test]
    fn a_refused_tariff_is_refused_for_a_real_stay(
        tariff in tariff(), hourly in 100_i64..3000, daily in 500_i64..20_000, day in 0_i64..30,
    ) {
        let standard = standard(hourly, daily);
        if let Err(v) = check_filing(&tariff, &standard, TZ) {
            let time = NaiveTime::parse_from_str(&v.entered_local, "%H:%M:%S").unwrap_or_else(|e| panic!("{e}"));
            let entered_at = instant(day * 24 * 60) + Duration::seconds(i64::from(time.num_seconds_from_midnight()));
            let fee = total(&tariff, &stay_s(entered_at, v.duration_s, v.class));
            prop_assert_eq!(fee, v.fee);
            prop_assert!(fee > v.limit);
        }
    }
}
