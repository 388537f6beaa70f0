//! Bill computation for 1-hour, 24-hour and 30-day stays on a busy tariff: 15-minute units,
//! a first-period block, day and night rates, a night cap, 24-hour and 7-day caps.
//! Run: cargo bench -p parkshare-tariff

use chrono::{Duration, TimeZone, Utc};
use criterion::{criterion_group, criterion_main, Criterion};
use parkshare_domain::money::Money;
use parkshare_domain::vehicle::VehicleClass;
use parkshare_tariff::model::{Cap, Night, Rate, Step};
use parkshare_tariff::regulated::{check_filing, Limits, Price, Standard};
use parkshare_tariff::{Stay, Tariff};

fn busy_tariff() -> Tariff {
    let mut t = Tariff::simple(15, Money::from_fen(100), None);
    t.small.day = Rate {
        steps: vec![
            Step::Block {
                minutes: 60,
                price: Money::from_fen(300),
            },
            Step::Units {
                unit_min: 15,
                price: Money::from_fen(100),
                until_min: None,
            },
        ],
    };
    t.small.night = Some(Night {
        start: "21:00".parse().unwrap_or_else(|e| panic!("{e}")),
        end: "07:00".parse().unwrap_or_else(|e| panic!("{e}")),
        rate: Rate::units(15, Money::from_fen(50)),
        cap: Some(Money::from_fen(1000)),
    });
    t.small.caps = vec![
        Cap::rolling24h(Money::from_fen(4000)),
        Cap::MultiDay {
            days: 7,
            amount: Money::from_fen(20000),
        },
    ];
    t
}

fn bench(c: &mut Criterion) {
    let tariff = busy_tariff();
    let tz = chrono_tz::Asia::Shanghai;
    let entered_at = tz
        .with_ymd_and_hms(2026, 11, 23, 8, 13, 0)
        .single()
        .map(|t| t.with_timezone(&Utc))
        .unwrap_or_default();
    for (name, minutes) in [
        ("bill 1 hour", 60),
        ("bill 24 hours", 24 * 60),
        ("bill 30 days", 30 * 24 * 60),
    ] {
        let stay = Stay {
            entered_at,
            exited_at: entered_at + Duration::minutes(minutes),
            class: VehicleClass::Small,
            owner: false,
            extra_free_min: 0,
            time_zone: tz,
        };
        c.bench_function(name, |b| {
            b.iter(|| tariff.bill(std::hint::black_box(&stay)))
        });
    }
    let standard = Standard {
        small: Limits {
            per_hour: Some(Price::Max {
                amount: Money::from_fen(600),
            }),
            per_24h: Some(Price::Max {
                amount: Money::from_fen(4000),
            }),
            monthly: None,
        },
        large: None,
        new_energy: None,
    };
    c.bench_function("filing check, every stay", |b| {
        b.iter(|| check_filing(std::hint::black_box(&tariff), &standard, tz))
    });
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20).measurement_time(std::time::Duration::from_secs(3));
    targets = bench
}
criterion_main!(benches);
