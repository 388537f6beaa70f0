//! A tariff in words a driver understands, for the public price board (明码标价).

use parkshare_domain::money::Money;
use parkshare_domain::vehicle::VehicleClass;

use crate::model::{AfterWindow, Cap, ClassTariff, FreePeriod, PartialUnit, Rate, Step, Tariff};

/// The parked time a step of `rate` covers, counted under that rate: "首2小时" for the first
/// step, "第3至4小时" (one hour: "第3小时"; or "第121至150分钟") for a later one — never "首"
/// for a step that does not start at the first minute. The price board and the bill's lines both say it this way.
pub(crate) fn step_span(rate: &Rate, index: usize) -> String {
    let (start, end) = rate.step_bounds(index);
    match (start, end) {
        (0, Some(end)) => format!("首{}", duration(end)),
        // One whole hour is "第3小时", not "第3至3小时".
        (start, Some(end)) if start % 60 == 0 && end == start + 60 => {
            format!("第{}小时", start / 60 + 1)
        }
        (start, Some(end)) if start % 60 == 0 && end % 60 == 0 => {
            format!("第{}至{}小时", start / 60 + 1, end / 60)
        }
        (start, Some(end)) => format!("第{}至{}分钟", start + 1, end),
        (start, None) => format!("第{}分钟起", start + 1),
    }
}

fn rate_words(rate: &Rate) -> String {
    let mut parts = Vec::new();
    for (i, step) in rate.steps.iter().enumerate() {
        let lead = if i == 0 { "" } else { "之后" };
        parts.push(match step {
            Step::Block { price, .. } => format!("{lead}{}{price}元", step_span(rate, i)),
            Step::Units {
                unit_min,
                price,
                until_min,
            } => {
                let until = until_min
                    .map(|u| format!("（至第{}）", duration(u)))
                    .unwrap_or_default();
                format!("{lead}每{}{}元{until}", duration(*unit_min), price)
            }
        });
    }
    parts.join("，")
}

fn duration(minutes: u32) -> String {
    if minutes.is_multiple_of(60) {
        format!("{}小时", minutes / 60)
    } else {
        format!("{minutes}分钟")
    }
}

fn class_words(name: &str, class: &ClassTariff) -> String {
    let mut parts = Vec::new();
    if let Some(flat) = &class.flat_up_to {
        parts.push(format!("{}内{}元", duration(flat.minutes), flat.price));
    }
    match &class.night {
        Some(night) => {
            parts.push(format!(
                "白天（{}–{}）{}",
                night.end,
                night.start,
                rate_words(&class.day)
            ));
            let cap = night
                .cap
                .map(|c| format!("，每晚最高{c}元"))
                .unwrap_or_default();
            parts.push(format!(
                "夜间（{}–{}）{}{cap}",
                night.start,
                night.end,
                rate_words(&night.rate)
            ));
        }
        None => parts.push(rate_words(&class.day)),
    }
    for cap in &class.caps {
        parts.push(match cap {
            Cap::Rolling24h { amount, later } => rolling_cap_words(*amount, later),
            Cap::CalendarDay { amount } => format!("每自然日最高{amount}元"),
            Cap::MultiDay { days, amount } => format!("每{days}天最高{amount}元"),
            Cap::PerStay { amount } => format!("单次停车最高{amount}元"),
        });
    }
    format!("{name}：{}", parts.join("；"))
}

/// "自入场起每24小时最高20.00元", or for a schedule "自入场起第1个24小时最高30.00元，第2个24小时
/// 最高40.00元，之后每24小时最高50.00元".
fn rolling_cap_words(first: Money, later: &[Money]) -> String {
    let Some((last, between)) = later.split_last() else {
        return format!("自入场起每24小时最高{first}元");
    };
    let mut parts = vec![format!("自入场起第1个24小时最高{first}元")];
    for (i, amount) in between.iter().enumerate() {
        parts.push(format!("第{}个24小时最高{amount}元", i + 2));
    }
    parts.push(format!("之后每24小时最高{last}元"));
    parts.join("，")
}

/// Whether the first-period prices apply again after 24 hours: three tariffs that differ only
/// in this bill a stay of 24 hours and a minute differently, so the board must say it.
fn after_window_words(after: AfterWindow) -> &'static str {
    match after {
        AfterWindow::StartsOver => "自入场起每满24小时重新按首段价格计费",
        AfterWindow::StartsOverEachCalendarDay => "每日0点起重新按首段价格计费",
        AfterWindow::ContinuesAtUnitPrice => "超过24小时不重新计费，按续时价格连续计费",
    }
}

/// The tariff as lines of plain Chinese, in the order a price board shows them.
pub fn describe(tariff: &Tariff) -> Vec<String> {
    let mut lines = Vec::new();
    match tariff.free {
        FreePeriod::None => {}
        FreePeriod::WholeStayWithin { minutes } => {
            lines.push(format!("停车{}以内免费", duration(minutes)))
        }
        FreePeriod::DeductFirst { minutes } => {
            lines.push(format!("每次停车前{}免费", duration(minutes)))
        }
    }
    lines.push(class_words("小型车", &tariff.small));
    if let Some(large) = &tariff.large {
        lines.push(class_words("大型车", large));
    }
    if let Some(nev) = &tariff.new_energy {
        lines.push(class_words("新能源车", nev));
    }
    if tariff.new_energy_free_min_per_day > 0 {
        lines.push(format!(
            "新能源车每日前{}免费",
            duration(tariff.new_energy_free_min_per_day)
        ));
    }
    lines.push(after_window_words(tariff.after_window).to_owned());
    lines.push(match tariff.partial_unit {
        PartialUnit::RoundUp => "不足一个计费单位按一个单位计".to_owned(),
        PartialUnit::RoundDown => "不足一个计费单位不收费".to_owned(),
        PartialUnit::IgnoreUpTo { minutes } => format!("超出部分不足{minutes}分钟不收费"),
    });
    if !tariff.owner_discount_pct.is_zero() {
        lines.push(format!(
            "本小区业主车辆临时停车优惠{}%",
            tariff.owner_discount_pct.normalize()
        ));
    }
    if let Some(fee) = tariff.no_entry_fee {
        lines.push(format!("无入场记录车辆出场收费{fee}元"));
    }
    for (class, name) in [
        (VehicleClass::Small, "小型车"),
        (VehicleClass::Large, "大型车"),
        (VehicleClass::NewEnergy, "新能源车"),
    ] {
        let own = match class {
            VehicleClass::Small => tariff.monthly.small,
            VehicleClass::Large => tariff.monthly.large,
            VehicleClass::NewEnergy => tariff.monthly.new_energy,
        };
        if let Some(price) = own {
            lines.push(format!("月租（{name}）{price}元/月"));
        }
    }
    lines
}

#[cfg(test)]
mod step_words {
    use parkshare_domain::money::Money;

    use super::step_span;
    use crate::model::{Rate, Step};

    #[test]
    fn a_later_block_of_one_hour_is_that_hour_not_a_range_of_one() {
        let price = Money::from_fen(200);
        let rate = Rate {
            steps: vec![
                Step::Block {
                    minutes: 120,
                    price,
                },
                Step::Block { minutes: 60, price },
                Step::Block {
                    minutes: 120,
                    price,
                },
                Step::Units {
                    unit_min: 60,
                    price,
                    until_min: None,
                },
            ],
        };
        assert_eq!(step_span(&rate, 0), "首2小时");
        assert_eq!(step_span(&rate, 1), "第3小时");
        assert_eq!(step_span(&rate, 2), "第4至5小时");
        assert_eq!(step_span(&rate, 3), "第301分钟起");
    }
}
