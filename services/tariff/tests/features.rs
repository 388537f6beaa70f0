//! One feature at a time: night caps, new-energy free minutes, owner discount, multi-day caps,
//! continuing rates, flat short stays, base-with-float ceilings, the price board's words.

use chrono::{DateTime, Duration, TimeZone, Utc};
use parkshare_domain::money::Money;
use parkshare_domain::vehicle::VehicleClass;
use parkshare_tariff::model::{AfterWindow, Cap, Flat, Night, Rate, Step};
use parkshare_tariff::regulated::{Limits, Price, Standard};
use parkshare_tariff::{words, LineCode, Stay, Tariff};
use rust_decimal::Decimal;

const TZ: chrono_tz::Tz = chrono_tz::Asia::Shanghai;

fn local(d: u32, h: u32, m: u32) -> DateTime<Utc> {
    TZ.with_ymd_and_hms(2026, 11, d, h, m, 0)
        .single()
        .map(|t| t.with_timezone(&Utc))
        .unwrap_or_default()
}

fn bill(
    tariff: &Tariff,
    from: DateTime<Utc>,
    minutes: i64,
    class: VehicleClass,
    owner: bool,
) -> parkshare_tariff::Bill {
    let stay = Stay {
        entered_at: from,
        exited_at: from + Duration::minutes(minutes),
        class,
        owner,
        extra_free_min: 0,
        time_zone: TZ,
    };
    tariff.bill(&stay).unwrap_or_else(|e| panic!("{e}"))
}

fn small(tariff: &Tariff, from: DateTime<Utc>, minutes: i64) -> String {
    bill(tariff, from, minutes, VehicleClass::Small, false)
        .total
        .to_string()
}

fn night_tariff() -> Tariff {
    // Day ¥3/h; night 21:00–07:00 ¥1/h, at most ¥5 a night.
    let mut t = Tariff::simple(0, Money::from_fen(300), None);
    t.small.night = Some(Night {
        start: "21:00".parse().unwrap_or_else(|e| panic!("{e}")),
        end: "07:00".parse().unwrap_or_else(|e| panic!("{e}")),
        rate: Rate::units(60, Money::from_fen(100)),
        cap: Some(Money::from_fen(500)),
    });
    t
}

#[test]
fn night_hours_have_their_own_rate_and_cap() {
    let t = night_tariff();
    // 19:00–23:00: 2 day hours (¥6) and 2 night hours (¥2).
    assert_eq!(small(&t, local(23, 19, 0), 240), "8.00");
    // 20:00–08:00: 1 day hour, 10 night hours capped at ¥5, 1 day hour.
    let b = bill(&t, local(23, 20, 0), 12 * 60, VehicleClass::Small, false);
    assert_eq!(b.total.to_string(), "11.00");
    assert!(b
        .lines
        .iter()
        .any(|l| l.code == LineCode::NightCap && l.amount.to_string() == "-5.00"));
    // A day unit cut by the start of the night is a started unit: 20:30–21:00 costs ¥3.
    assert_eq!(small(&t, local(23, 20, 30), 30), "3.00");
}

#[test]
fn new_energy_vehicles_park_their_daily_free_minutes_free() {
    let mut t = Tariff::simple(0, Money::from_fen(300), None);
    t.new_energy_free_min_per_day = 120;
    assert_eq!(
        bill(&t, local(23, 9, 0), 180, VehicleClass::NewEnergy, false)
            .total
            .to_string(),
        "3.00"
    );
    assert_eq!(
        bill(&t, local(23, 9, 0), 180, VehicleClass::Small, false)
            .total
            .to_string(),
        "9.00"
    );
    // Over two days: 2 free hours each day. 22:00 → next day 03:00 = 2 h day 1 + 3 h day 2, 2 of them free.
    let b = bill(&t, local(23, 22, 0), 300, VehicleClass::NewEnergy, false);
    assert_eq!(b.total.to_string(), "3.00");
    assert!(b
        .lines
        .iter()
        .any(|l| l.code == LineCode::NewEnergyFree && l.amount.to_string() == "-12.00"));
}

#[test]
fn owners_get_the_discount_rounded_down_to_the_fen() {
    let mut t = Tariff::simple(0, Money::from_fen(333), None);
    t.owner_discount_pct = Decimal::from(15);
    // ¥9.99 × 85% = ¥8.4915 → ¥8.49; the discount line is −¥1.50.
    let b = bill(&t, local(23, 9, 0), 180, VehicleClass::Small, true);
    assert_eq!(b.total.to_string(), "8.49");
    assert_eq!(
        b.lines.last().map(|l| (l.code, l.amount.to_string())),
        Some((LineCode::OwnerDiscount, "-1.50".into()))
    );
    assert_eq!(
        bill(&t, local(23, 9, 0), 180, VehicleClass::Small, false)
            .total
            .to_string(),
        "9.99"
    );
}

#[test]
fn a_seven_day_cap_limits_long_stays() {
    let mut t = Tariff::simple(0, Money::from_fen(300), Some(Money::from_fen(2000)));
    t.small.caps.push(Cap::MultiDay {
        days: 7,
        amount: Money::from_fen(10000),
    });
    // 10 days: the first 7 at most ¥100 (not ¥140), then 3 days at ¥20.
    assert_eq!(small(&t, local(1, 8, 0), 10 * 24 * 60), "160.00");
}

#[test]
fn continuing_rates_do_not_restart_the_first_period_after_24_hours() {
    let mut t = Tariff::simple(0, Money::from_fen(100), Some(Money::from_fen(2000)));
    t.small.day = Rate {
        steps: vec![
            Step::Block {
                minutes: 120,
                price: Money::from_fen(500),
            },
            Step::Units {
                unit_min: 60,
                price: Money::from_fen(100),
                until_min: None,
            },
        ],
    };
    // 25 h: first window ¥5 + 22 × ¥1 = ¥27 → capped ¥20; then one more hour.
    t.after_window = AfterWindow::StartsOver;
    assert_eq!(small(&t, local(23, 8, 0), 25 * 60), "25.00");
    t.after_window = AfterWindow::ContinuesAtUnitPrice;
    assert_eq!(small(&t, local(23, 8, 0), 25 * 60), "21.00");
}

#[test]
fn flat_price_for_short_stays() {
    let mut t = Tariff::simple(0, Money::from_fen(300), None);
    t.small.flat_up_to = Some(Flat {
        minutes: 120,
        price: Money::from_fen(500),
    });
    assert_eq!(small(&t, local(23, 8, 0), 30), "5.00");
    assert_eq!(small(&t, local(23, 8, 0), 120), "5.00");
    assert_eq!(small(&t, local(23, 8, 0), 121), "9.00");
}

#[test]
fn large_vehicles_use_their_own_prices() {
    let mut t = Tariff::simple(0, Money::from_fen(300), None);
    let mut large = t.small.clone();
    large.day = Rate::units(60, Money::from_fen(600));
    t.large = Some(large);
    assert_eq!(
        bill(&t, local(23, 8, 0), 60, VehicleClass::Large, false)
            .total
            .to_string(),
        "6.00"
    );
    assert_eq!(
        bill(&t, local(23, 8, 0), 60, VehicleClass::NewEnergy, false)
            .total
            .to_string(),
        "3.00"
    );
}

#[test]
fn a_base_price_with_float_becomes_a_ceiling_rounded_down() {
    let price = Price::BaseWithFloat {
        base: Money::from_fen(333),
        float_pct: Decimal::from(15),
    };
    // 3.33 × 1.15 = 3.8295 → 3.82.
    assert_eq!(price.ceiling(), Money::from_fen(382));
    let standard = Standard {
        small: Limits {
            per_hour: Some(price),
            per_24h: Some(Price::Max {
                amount: Money::from_fen(2000),
            }),
            monthly: None,
        },
        large: None,
        new_energy: None,
    };
    assert_eq!(
        standard.max_fee(VehicleClass::Small, 1),
        Some(Money::from_fen(382))
    );
    assert_eq!(
        standard.max_fee(VehicleClass::Small, 3 * 3600 + 1),
        Some(Money::from_fen(1528))
    );
    assert_eq!(
        standard.max_fee(VehicleClass::Small, 24 * 3600),
        Some(Money::from_fen(2000))
    );
    assert_eq!(
        standard.max_fee(VehicleClass::Small, 24 * 3600 + 1),
        Some(Money::from_fen(2382))
    );
}

#[test]
fn the_price_board_says_it_in_words() {
    let mut t = night_tariff();
    t.free = parkshare_tariff::model::FreePeriod::WholeStayWithin { minutes: 15 };
    t.small.caps.push(Cap::rolling24h(Money::from_fen(2000)));
    t.monthly.small = Some(Money::from_fen(15000));
    let lines = words::describe(&t);
    assert_eq!(lines[0], "停车15分钟以内免费");
    assert_eq!(lines[1], "小型车：白天（07:00–21:00）每1小时3.00元；夜间（21:00–07:00）每1小时1.00元，每晚最高5.00元；自入场起每24小时最高20.00元");
    assert!(lines.contains(&"月租（小型车）150.00元/月".to_owned()));
}

#[test]
fn camera_timestamps_with_fractions_of_a_second_are_billed_in_whole_seconds() {
    // Cameras stamp events to the microsecond; a stay ending 0.4 s into a new unit used to
    // leave the engine stepping zero-second spans for ever.
    let t = night_tariff();
    let entered_at = local(23, 10, 0) + Duration::microseconds(250_000);
    let stay = Stay {
        entered_at,
        exited_at: entered_at + Duration::minutes(61) + Duration::microseconds(400_000),
        class: VehicleClass::Small,
        owner: false,
        extra_free_min: 0,
        time_zone: TZ,
    };
    let b = t.bill(&stay).unwrap_or_else(|e| panic!("{e}"));
    // Two started hours at ¥3; the bill reports the whole seconds parked.
    assert_eq!(
        (b.total.to_string(), b.duration_s),
        ("6.00".to_string(), 61 * 60)
    );
}

#[test]
fn a_shared_space_rate_lowers_the_bill_to_the_fen_and_never_raises_it() {
    let bill_of = |total: &str| {
        parkshare_tariff::Bill::flat(
            LineCode::Flat,
            Money::parse(total.parse().unwrap_or_default()).unwrap_or(Money::ZERO),
            "停车费",
        )
    };
    let mut bill = bill_of("3.33");
    // 85 % of 3.33 is 2.8305: the driver pays 2.83.
    assert!(bill.apply_rate_pct(85, "业主定价 85%".into()));
    assert_eq!(bill.total.to_string(), "2.83");
    let sum: Decimal = bill.lines.iter().map(|l| l.amount).sum();
    assert_eq!(sum, bill.total.yuan(), "the lines add up to the total");
    assert_eq!(
        bill.lines.last().map(|l| l.code),
        Some(LineCode::SharedSpaceRate)
    );
    let mut full = bill_of("3.33");
    assert!(!full.apply_rate_pct(100, "业主定价 100%".into()));
    assert_eq!(
        (full.total.to_string(), full.lines.len()),
        ("3.33".to_owned(), 1)
    );
    let mut free = bill_of("3.33");
    assert!(free.apply_rate_pct(0, "业主免费共享".into()));
    assert_eq!(free.total, Money::ZERO);
}
