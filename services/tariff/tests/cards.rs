//! Real published tariff cards, end to end, with hand-checked amounts.

use chrono::{DateTime, Duration, NaiveDate, TimeZone, Utc};
use chrono_tz::Tz;
use parkshare_domain::money::Money;
use parkshare_domain::vehicle::VehicleClass;
use parkshare_tariff::model::{
    AfterWindow, Cap, ClassTariff, ClockTime, FreePeriod, Night, Rate, Step,
};
use parkshare_tariff::regulated::{check_filing, Limits, Price, Standard};
use parkshare_tariff::{LineCode, Stay, Tariff};

fn yuan(text: &str) -> Money {
    Money::parse(text.parse().unwrap_or_default()).unwrap_or_default()
}

fn at(tz: Tz, y: i32, m: u32, d: u32, h: u32, min: u32) -> DateTime<Utc> {
    let date = NaiveDate::from_ymd_opt(y, m, d)
        .and_then(|d| d.and_hms_opt(h, min, 0))
        .unwrap_or_default();
    tz.from_local_datetime(&date)
        .earliest()
        .map(|t| t.with_timezone(&Utc))
        .unwrap_or_default()
}

fn fee(tariff: &Tariff, tz: Tz, entered_at: DateTime<Utc>, minutes: i64) -> String {
    let stay = Stay {
        entered_at,
        exited_at: entered_at + Duration::minutes(minutes),
        class: VehicleClass::Small,
        owner: false,
        extra_free_min: 0,
        time_zone: tz,
    };
    let bill = tariff.bill(&stay).unwrap_or_else(|e| panic!("{e}"));
    let sum: rust_decimal::Decimal = bill.lines.iter().map(|l| l.amount).sum();
    assert_eq!(sum, bill.total.yuan(), "lines must add up: {bill:?}");
    bill.total.to_string()
}

fn units(unit_min: u32, price: &str, until_min: Option<u32>) -> Step {
    Step::Units {
        unit_min,
        price: yuan(price),
        until_min,
    }
}

/// Card A. A municipal standard for residential compounds, as quoted by 强安智云科技,
/// "停车场收费标准" (2023-08-15, http://www.186177.com/index.php/news/detail/id/918.html):
/// "临时社会车辆首小时内不收费，超过1小时按2元/小时收费（不足1小时按1小时收费），
/// 每天（24小时内）最高收取10元" and ground spaces at most 70 yuan per month.
fn card_a() -> Tariff {
    let mut tariff = Tariff::simple(60, yuan("2.00"), Some(yuan("10.00")));
    tariff.monthly.small = Some(yuan("70.00"));
    tariff
}

#[test]
fn card_a_residential_first_hour_free_two_yuan_per_hour_ten_per_day() {
    let tz = chrono_tz::Asia::Shanghai;
    let t0 = at(tz, 2026, 11, 23, 8, 0);
    let tariff = card_a();
    for (minutes, expected) in [
        (59, "0.00"),
        (60, "0.00"),
        // Over the free hour the whole stay is billed: 2 started hours.
        (61, "4.00"),
        (180, "6.00"),
        (270, "10.00"),
        (8 * 60, "10.00"),
        // The 24-hour ceiling applies to a partial day too.
        (23 * 60, "10.00"),
        (24 * 60, "10.00"),
        (25 * 60, "12.00"),
        (49 * 60, "22.00"),
    ] {
        assert_eq!(fee(&tariff, tz, t0, minutes), expected, "{minutes} min");
    }
}

#[test]
fn card_a_is_fileable_under_its_own_standard_and_a_dearer_card_is_not() {
    let tz = chrono_tz::Asia::Shanghai;
    let standard = Standard {
        small: Limits {
            per_hour: Some(Price::Max {
                amount: yuan("2.00"),
            }),
            per_24h: Some(Price::Max {
                amount: yuan("10.00"),
            }),
            monthly: Some(Price::Max {
                amount: yuan("70.00"),
            }),
        },
        large: None,
        new_energy: None,
    };
    assert_eq!(check_filing(&card_a(), &standard, tz), Ok(()));

    let dearer = Tariff::simple(60, yuan("3.00"), Some(yuan("10.00")));
    let violation = check_filing(&dearer, &standard, tz)
        .err()
        .unwrap_or_else(|| panic!("must be refused"));
    // The first stay charged: 61 minutes, two started hours at ¥3 = ¥6 > 2 × ¥2.
    assert_eq!(
        (violation.duration_min, violation.fee, violation.limit),
        (61, yuan("6.00"), yuan("4.00"))
    );

    let mut dear_month = card_a();
    dear_month.monthly.small = Some(yuan("80.00"));
    assert_eq!(
        check_filing(&dear_month, &standard, tz).map_err(|v| v.rule),
        Err("monthly")
    );
}

/// Card B. Shanghai Minhang district, temporary parking in residential areas, as reported by
/// "上海小区停车费怎么算" (http://m.114262.cn/ss/2021/1222/20945.html): "一小时以内免费停车。
/// 超过1小时但不超过8小时的车辆每次收费5元。超过8小时但不超过24小时的车辆每10元收费一次。
/// 如果超过24小时，将按上述方法重新估价。"
fn card_b() -> Tariff {
    let mut tariff = Tariff::simple(60, yuan("5.00"), None);
    tariff.small.day = Rate {
        steps: vec![
            Step::Block {
                minutes: 8 * 60,
                price: yuan("5.00"),
            },
            units(16 * 60, "5.00", None),
        ],
    };
    tariff.after_window = AfterWindow::StartsOver;
    tariff
}

#[test]
fn card_b_minhang_five_yuan_up_to_eight_hours_ten_up_to_a_day_then_over_again() {
    let tz = chrono_tz::Asia::Shanghai;
    let t0 = at(tz, 2026, 11, 23, 7, 30);
    for (minutes, expected) in [
        (60, "0.00"),
        (61, "5.00"),
        (8 * 60, "5.00"),
        (8 * 60 + 1, "10.00"),
        (24 * 60, "10.00"),
        // Past 24 hours the card starts over: the next 8 hours cost ¥5 again.
        (24 * 60 + 30, "15.00"),
        (33 * 60, "20.00"),
    ] {
        assert_eq!(fee(&card_b(), tz, t0, minutes), expected, "{minutes} min");
    }
}

/// Card C. St George's Hospital, London, car parking charges
/// (https://www.stgeorges.nhs.uk/contact-and-find-us/find-us/car-parking-charges/):
/// £2.50 per started hour up to eight hours (£20.00), over eight hours the daily fixed rate
/// of £25.00, parking free between 22:00 and 06:00. Amounts are pounds here: the engine does
/// not care about the currency. Dates are in January (no summer time).
fn card_c() -> Tariff {
    let mut tariff = Tariff::simple(0, yuan("2.50"), None);
    tariff.free = FreePeriod::None;
    tariff.after_window = AfterWindow::StartsOverEachCalendarDay;
    tariff.small = ClassTariff {
        flat_up_to: None,
        day: Rate {
            steps: vec![
                units(60, "2.50", Some(8 * 60)),
                units(16 * 60, "5.00", None),
            ],
        },
        night: Some(Night {
            start: "22:00".parse().unwrap_or(ClockTime(chrono::NaiveTime::MIN)),
            end: "06:00".parse().unwrap_or(ClockTime(chrono::NaiveTime::MIN)),
            rate: Rate::units(60, Money::ZERO),
            cap: None,
        }),
        caps: vec![Cap::CalendarDay {
            amount: yuan("25.00"),
        }],
    };
    tariff
}

#[test]
fn card_c_hospital_hourly_then_daily_rate_free_at_night() {
    let tz = chrono_tz::Europe::London;
    let morning = at(tz, 2026, 1, 14, 9, 0);
    for (minutes, expected) in [
        (40, "2.50"),
        (4 * 60, "10.00"),
        (8 * 60, "20.00"),
        (8 * 60 + 1, "25.00"),
        (12 * 60, "25.00"),
    ] {
        assert_eq!(
            fee(&card_c(), tz, morning, minutes),
            expected,
            "{minutes} min from 09:00"
        );
    }
    // 21:00–23:00: one hour before the free night.
    assert_eq!(fee(&card_c(), tz, at(tz, 2026, 1, 14, 21, 0), 120), "2.50");
    // 09:00 to 09:00 the next day: the daily £25, a free night, then 06:00–09:00 at £2.50/h.
    assert_eq!(fee(&card_c(), tz, morning, 24 * 60), "32.50");
}

#[test]
fn bills_are_itemised_with_time_ranges_and_caps() {
    let tz = chrono_tz::Asia::Shanghai;
    let t0 = at(tz, 2026, 11, 23, 8, 0);
    let stay = Stay {
        entered_at: t0,
        exited_at: t0 + Duration::hours(25),
        class: VehicleClass::Small,
        owner: false,
        extra_free_min: 0,
        time_zone: tz,
    };
    let bill = card_a().bill(&stay).unwrap_or_else(|e| panic!("{e}"));
    let codes: Vec<LineCode> = bill.lines.iter().map(|l| l.code).collect();
    assert_eq!(
        codes,
        vec![LineCode::Units, LineCode::Units, LineCode::Cap24h]
    );
    assert_eq!(
        bill.lines[0].description,
        "11-23 08:00–11-24 08:00 24×60分钟×¥2.00"
    );
    assert_eq!(bill.lines[0].amount.to_string(), "48.00");
    assert_eq!(
        bill.lines[1].description,
        "11-24 08:00–09:00 1×60分钟×¥2.00"
    );
    assert_eq!(bill.lines[2].description, "第1个24小时封顶");
    assert_eq!(bill.lines[2].amount.to_string(), "-38.00");
    assert_eq!(bill.total, yuan("12.00"));
}
