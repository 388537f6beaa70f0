//! Regulated prices (政府指导价) and the filing check (备案).
//!
//! The price authority's standard gives, per vehicle class, a ceiling per hour, per 24 hours
//! and per month: either a maximum price (最高限价) or a base price with a float range
//! (基准价及浮动幅度). A tariff may be filed only if no stay up to a horizon (31 days by
//! default), entering at any quarter hour of the day, is charged above what the standard
//! allows for its length: the per-hour ceiling times the started hours, and the per-24-hour
//! ceiling times the started days, whichever is lower. At billing time the same ceiling is
//! applied again as a guard.

use chrono::{DateTime, Duration, NaiveDate, TimeZone, Utc};
use chrono_tz::Tz;
use parkshare_domain::money::Money;
use parkshare_domain::vehicle::VehicleClass;
use rust_decimal::{Decimal, RoundingStrategy};
use serde::{Deserialize, Serialize};

use crate::engine::{Stay, STAY_DAYS_MAX};
use crate::model::{FreePeriod, Tariff};

/// A base price with a float range becomes a ceiling rounded down to the fen: the driver is
/// never charged a fraction above the authority's figure.
pub const FLOAT_ROUNDING: RoundingStrategy = RoundingStrategy::ToZero;
/// Default filing horizon.
pub const HORIZON_DAYS_DEFAULT: u32 = 31;
/// Entry times checked per day: every quarter hour.
const STARTS_PER_DAY: i64 = 96;
const HOUR_S: i64 = 60 * 60;
const DAY_S: i64 = 24 * HOUR_S;

/// One regulated price.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Price {
    /// 最高限价.
    Max { amount: Money },
    /// 基准价及浮动幅度: at most `base` × (1 + `float_pct`/100).
    BaseWithFloat {
        base: Money,
        #[serde(with = "rust_decimal::serde::str")]
        float_pct: Decimal,
    },
}

impl Price {
    pub fn ceiling(&self) -> Money {
        match self {
            Price::Max { amount } => *amount,
            Price::BaseWithFloat { base, float_pct } => Money::round_fen(
                base.yuan() * (Decimal::ONE_HUNDRED + float_pct) / Decimal::ONE_HUNDRED,
                FLOAT_ROUNDING,
            ),
        }
    }

    fn validate(&self) -> bool {
        match self {
            Price::Max { amount } => amount.yuan() > Decimal::ZERO,
            Price::BaseWithFloat { base, float_pct } => {
                base.yuan() > Decimal::ZERO
                    && *float_pct >= Decimal::ZERO
                    && *float_pct <= Decimal::ONE_HUNDRED
            }
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Limits {
    pub per_hour: Option<Price>,
    pub per_24h: Option<Price>,
    pub monthly: Option<Price>,
}

/// The authority's standard for one kind of space (e.g. outdoor common-area spaces).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Standard {
    pub small: Limits,
    #[serde(default)]
    pub large: Option<Limits>,
    #[serde(default)]
    pub new_energy: Option<Limits>,
}

impl Standard {
    pub fn limits(&self, class: VehicleClass) -> &Limits {
        match class {
            VehicleClass::Small => &self.small,
            VehicleClass::Large => self.large.as_ref().unwrap_or(&self.small),
            VehicleClass::NewEnergy => self.new_energy.as_ref().unwrap_or(&self.small),
        }
    }

    pub fn validate(&self) -> Result<(), String> {
        let all = [
            Some(&self.small),
            self.large.as_ref(),
            self.new_energy.as_ref(),
        ];
        for limits in all.into_iter().flatten() {
            for price in [&limits.per_hour, &limits.per_24h, &limits.monthly]
                .into_iter()
                .flatten()
            {
                if !price.validate() {
                    return Err("every price must be positive and a float range 0–100%".into());
                }
            }
        }
        Ok(())
    }

    /// The most a stay of `duration_s` may cost a vehicle of `class`, if the standard limits
    /// it at all: each full 24 hours at most the 24-hour ceiling (or 24 hourly ceilings), and
    /// the rest at most the hourly ceiling per started hour, but never more than one more
    /// 24-hour ceiling.
    pub fn max_fee(&self, class: VehicleClass, duration_s: i64) -> Option<Money> {
        let limits = self.limits(class);
        let hourly = limits.per_hour.as_ref().map(Price::ceiling);
        let daily = limits.per_24h.as_ref().map(Price::ceiling);
        let cheaper = |a: Option<Money>, b: Option<Money>| match (a, b) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        let duration_s = duration_s.max(1);
        let full_days = u32::try_from(duration_s / DAY_S).unwrap_or(u32::MAX);
        let rest_s = duration_s % DAY_S;
        let rest_hours = u32::try_from((rest_s + HOUR_S - 1) / HOUR_S).unwrap_or(u32::MAX);
        let per_day = cheaper(daily, hourly.map(|h| h.times(24)))?;
        let rest = match rest_s {
            0 => Money::ZERO,
            _ => cheaper(daily, hourly.map(|h| h.times(rest_hours)))?,
        };
        Some(per_day.times(full_days) + rest)
    }
}

/// Why a tariff cannot be filed: the first stay found charged above the standard.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
#[error("{class:?} {rule}: a stay entering at {entered_local} for {duration_min} min costs ¥{fee}, the standard allows ¥{limit}")]
pub struct Violation {
    pub class: VehicleClass,
    /// `per_hour_or_24h`, `monthly` or `no_entry_fee`.
    pub rule: &'static str,
    /// Local time of day of the entry, "HH:MM".
    pub entered_local: String,
    pub duration_min: i64,
    pub fee: Money,
    pub limit: Money,
}

/// Checks that `tariff` never charges above `standard` for stays up to `horizon_days`.
pub fn check_filing(
    tariff: &Tariff,
    standard: &Standard,
    horizon_days: u32,
    tz: Tz,
) -> Result<(), Violation> {
    let horizon_s =
        i64::from(horizon_days.clamp(1, u32::try_from(STAY_DAYS_MAX).unwrap_or(400))) * DAY_S;
    for class in [
        VehicleClass::Small,
        VehicleClass::Large,
        VehicleClass::NewEnergy,
    ] {
        let limits = standard.limits(class);
        if let (Some(price), Some(ceiling)) = (
            tariff.monthly_price(class),
            limits.monthly.as_ref().map(Price::ceiling),
        ) {
            if price > ceiling {
                return Err(Violation {
                    class,
                    rule: "monthly",
                    entered_local: String::new(),
                    duration_min: 0,
                    fee: price,
                    limit: ceiling,
                });
            }
        }
        if let (Some(fee), Some(limit)) = (tariff.no_entry_fee, standard.max_fee(class, DAY_S)) {
            if fee > limit {
                return Err(Violation {
                    class,
                    rule: "no_entry_fee",
                    entered_local: String::new(),
                    duration_min: 0,
                    fee,
                    limit,
                });
            }
        }
        if standard.max_fee(class, 1).is_none() {
            continue;
        }
        for start in 0..STARTS_PER_DAY {
            check_stays_from(
                tariff,
                standard,
                class,
                reference_midnight(tz) + Duration::minutes(start * 15),
                horizon_s,
                tz,
            )?;
        }
    }
    Ok(())
}

/// A fixed local midnight to start the check from (a Monday, away from any DST change).
fn reference_midnight(tz: Tz) -> DateTime<Utc> {
    let date = NaiveDate::from_ymd_opt(2026, 1, 5).unwrap_or_default();
    tz.from_local_datetime(&date.and_time(chrono::NaiveTime::MIN))
        .earliest()
        .map(|t| t.with_timezone(&Utc))
        .unwrap_or_default()
}

fn check_stays_from(
    tariff: &Tariff,
    standard: &Standard,
    class: VehicleClass,
    entered_at: DateTime<Utc>,
    horizon_s: i64,
    tz: Tz,
) -> Result<(), Violation> {
    let stay = Stay {
        entered_at,
        exited_at: entered_at + Duration::seconds(horizon_s),
        class,
        owner: false,
        extra_free_min: 0,
        time_zone: tz,
    };
    // The shortest stay that is charged at all.
    let free_s = match tariff.free {
        FreePeriod::WholeStayWithin { minutes } => i64::from(minutes) * 60,
        _ => 0,
    };
    let violation = |duration_s: i64, fee: Money, limit: Money| Violation {
        class,
        rule: "per_hour_or_24h",
        entered_local: entered_at.with_timezone(&tz).format("%H:%M").to_string(),
        duration_min: (duration_s + 59) / 60,
        fee,
        limit,
    };
    let class_tariff = tariff.class(class);
    if let Some(flat) = &class_tariff.flat_up_to {
        let shortest_s = free_s + 1;
        if let Some(limit) = standard.max_fee(class, shortest_s) {
            if flat.price > limit {
                return Err(violation(shortest_s, flat.price, limit));
            }
        }
    }
    // Every charge is made at the instant its unit or block starts: the fee of every stay
    // ending after that instant includes it, so the shortest such stay is the one to check.
    for (charge_start_s, fee) in tariff.cumulative_fees(&stay) {
        let shortest_s = (charge_start_s + 1).max(free_s + 1);
        if let Some(limit) = standard.max_fee(class, shortest_s) {
            if fee > limit {
                return Err(violation(shortest_s, fee, limit));
            }
        }
    }
    Ok(())
}
