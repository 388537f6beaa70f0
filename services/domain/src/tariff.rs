//! The tariff model and the billing of one stay.
//!
//! A tariff is data: a free period, a unit rate, how a partial unit is rounded, and caps. The
//! per-lot "simple rule" of the gate core (free minutes, hourly price, 24-hour cap) is
//! [`Tariff::simple`], one point in this model, billed by the same [`Tariff::bill`].
//!
//! Billing works in whole seconds of the stay `[entered_at, exited_at)`:
//! 1. the free period either makes a short stay free or deducts its first minutes;
//! 2. the stay is cut into 24-hour windows counted from entry; in each window the chargeable
//!    seconds become units (rounded as the tariff says) at the unit price, and the
//!    `Rolling24h` cap applies to every window, the last partial one included;
//! 3. the `PerStay` cap applies to the total.
//!
//! Amounts stay exact: a unit price is already whole fen, and only whole units are charged, so
//! no rounding is needed anywhere in billing.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::money::Money;

const SECONDS_PER_MINUTE: i64 = 60;
const WINDOW_24H_S: i64 = 24 * 60 * 60;

/// A unit may last from one minute to one day.
pub const UNIT_MIN_MAX: u32 = 24 * 60;
/// A free period longer than a day is a configuration error, not a tariff.
pub const FREE_MIN_MAX: u32 = 24 * 60;
/// Bills list at most this many windows one by one; a longer stay (over a year) is refused as
/// implausible rather than producing a bill nobody can read.
pub const WINDOWS_MAX: i64 = 400;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum FreePeriod {
    None,
    /// The whole stay is free if it lasts at most `minutes`; otherwise it is billed in full.
    WholeStayWithin {
        minutes: u32,
    },
    /// The first `minutes` of every stay are free; the rest is billed.
    DeductFirst {
        minutes: u32,
    },
}

/// How a started but unfinished unit is charged.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum PartialUnit {
    /// A started unit is charged in full.
    RoundUp,
    /// Only complete units are charged.
    RoundDown,
    /// A remainder of at most `minutes` is not charged; a longer one is a full unit.
    IgnoreUpTo { minutes: u32 },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Cap {
    /// At most `amount` per 24 hours counted from entry, partial windows included.
    Rolling24h { amount: Money },
    /// At most `amount` for the whole stay.
    PerStay { amount: Money },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnitRate {
    pub unit_min: u32,
    pub price: Money,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tariff {
    pub free: FreePeriod,
    pub rate: UnitRate,
    pub partial_unit: PartialUnit,
    #[serde(default)]
    pub caps: Vec<Cap>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TariffError {
    #[error("unit length must be between 1 and {UNIT_MIN_MAX} minutes")]
    UnitLength,
    #[error("free period must be at most {FREE_MIN_MAX} minutes")]
    FreePeriod,
    #[error("ignored remainder must be shorter than the unit")]
    IgnoredRemainder,
    #[error("a cap must be positive")]
    ZeroCap,
    #[error("stay of more than {WINDOWS_MAX} days cannot be billed automatically")]
    StayTooLong,
}

/// One line of an itemised bill. `amount` is what this line adds to the total (negative for a
/// cap reduction), so the lines always add up to the total.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BillLine {
    pub code: BillLineCode,
    pub description: String,
    #[serde(with = "signed_money")]
    pub amount: rust_decimal::Decimal,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BillLineCode {
    FreePeriod,
    Units,
    Cap24h,
    CapStay,
    FlatFee,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Bill {
    pub duration_s: i64,
    pub lines: Vec<BillLine>,
    pub total: Money,
}

mod signed_money {
    use rust_decimal::Decimal;
    use serde::{Deserializer, Serializer};

    pub fn serialize<S: Serializer>(value: &Decimal, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format!("{value:.2}"))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Decimal, D::Error> {
        rust_decimal::serde::str::deserialize(d)
    }
}

impl Bill {
    /// A bill of one flat fee, e.g. for an exit with no entry record.
    pub fn flat(fee: Money, description: &str) -> Bill {
        Bill {
            duration_s: 0,
            lines: vec![BillLine {
                code: BillLineCode::FlatFee,
                description: description.to_owned(),
                amount: fee.yuan(),
            }],
            total: fee,
        }
    }

    pub fn free(duration_s: i64, description: &str) -> Bill {
        Bill {
            duration_s,
            lines: vec![BillLine {
                code: BillLineCode::FreePeriod,
                description: description.to_owned(),
                amount: rust_decimal::Decimal::ZERO,
            }],
            total: Money::ZERO,
        }
    }
}

impl Tariff {
    /// The gate core's per-lot rule: the whole stay free up to `free_min`, then `hourly` per
    /// started hour, at most `cap_24h` per 24 hours from entry.
    pub fn simple(free_min: u32, hourly: Money, cap_24h: Option<Money>) -> Tariff {
        Tariff {
            free: FreePeriod::WholeStayWithin { minutes: free_min },
            rate: UnitRate {
                unit_min: 60,
                price: hourly,
            },
            partial_unit: PartialUnit::RoundUp,
            caps: cap_24h
                .map(|amount| Cap::Rolling24h { amount })
                .into_iter()
                .collect(),
        }
    }

    /// Checks the tariff's internal consistency; stored tariffs have passed this.
    pub fn validate(&self) -> Result<(), TariffError> {
        if self.rate.unit_min == 0 || self.rate.unit_min > UNIT_MIN_MAX {
            return Err(TariffError::UnitLength);
        }
        match self.free {
            FreePeriod::WholeStayWithin { minutes } | FreePeriod::DeductFirst { minutes }
                if minutes > FREE_MIN_MAX =>
            {
                return Err(TariffError::FreePeriod)
            }
            _ => {}
        }
        if let PartialUnit::IgnoreUpTo { minutes } = self.partial_unit {
            if minutes >= self.rate.unit_min {
                return Err(TariffError::IgnoredRemainder);
            }
        }
        let zero_cap = self.caps.iter().any(|cap| match cap {
            Cap::Rolling24h { amount } | Cap::PerStay { amount } => amount.is_zero(),
        });
        if zero_cap {
            return Err(TariffError::ZeroCap);
        }
        Ok(())
    }

    /// The same tariff with its free period replaced by "the first `minutes` are free", used
    /// for the humane handling of owners without a space. Never worse than the tariff's own
    /// free period for a short stay.
    pub fn with_owner_free_minutes(&self, minutes: u32) -> Tariff {
        let own = match self.free {
            FreePeriod::None => 0,
            FreePeriod::WholeStayWithin { minutes } | FreePeriod::DeductFirst { minutes } => {
                minutes
            }
        };
        Tariff {
            free: FreePeriod::DeductFirst {
                minutes: minutes.max(own),
            },
            ..self.clone()
        }
    }

    /// Bills the stay from `entered_at` to `exited_at`. An exit before the entry (clock skew
    /// between cameras) is billed as a stay of zero seconds.
    pub fn bill(
        &self,
        entered_at: DateTime<Utc>,
        exited_at: DateTime<Utc>,
    ) -> Result<Bill, TariffError> {
        let duration_s = (exited_at - entered_at).num_seconds().max(0);
        if duration_s > WINDOWS_MAX * WINDOW_24H_S {
            return Err(TariffError::StayTooLong);
        }
        let mut lines = Vec::new();
        let deducted_s = match self.free {
            FreePeriod::None => 0,
            FreePeriod::WholeStayWithin { minutes } => {
                if duration_s <= i64::from(minutes) * SECONDS_PER_MINUTE {
                    return Ok(Bill::free(duration_s, &format!("{minutes}分钟内免费")));
                }
                0
            }
            FreePeriod::DeductFirst { minutes } => {
                let free_s = i64::from(minutes) * SECONDS_PER_MINUTE;
                if free_s > 0 {
                    lines.push(BillLine {
                        code: BillLineCode::FreePeriod,
                        description: format!("前{minutes}分钟免费"),
                        amount: rust_decimal::Decimal::ZERO,
                    });
                }
                free_s
            }
        };
        let cap_24h = self.caps.iter().find_map(|cap| match cap {
            Cap::Rolling24h { amount } => Some(*amount),
            Cap::PerStay { .. } => None,
        });
        let mut total = Money::ZERO;
        let mut window_start_s = 0;
        let mut window = 0;
        while window_start_s < duration_s {
            window += 1;
            let window_end_s = (window_start_s + WINDOW_24H_S).min(duration_s);
            let chargeable_s = (window_end_s - window_start_s.max(deducted_s)).max(0);
            let units = self.units(chargeable_s);
            let charge = self.rate.price.times(units);
            if units > 0 {
                lines.push(BillLine {
                    code: BillLineCode::Units,
                    description: format!(
                        "第{window}个24小时: {units} × {}分钟 × ¥{}",
                        self.rate.unit_min, self.rate.price
                    ),
                    amount: charge.yuan(),
                });
            }
            let charged = match cap_24h {
                Some(cap) if charge > cap => {
                    lines.push(BillLine {
                        code: BillLineCode::Cap24h,
                        description: format!("第{window}个24小时封顶 ¥{cap}"),
                        amount: cap.yuan() - charge.yuan(),
                    });
                    cap
                }
                _ => charge,
            };
            total = total + charged;
            window_start_s = window_end_s;
        }
        for cap in &self.caps {
            if let Cap::PerStay { amount } = cap {
                if total > *amount {
                    lines.push(BillLine {
                        code: BillLineCode::CapStay,
                        description: format!("单次停车封顶 ¥{amount}"),
                        amount: amount.yuan() - total.yuan(),
                    });
                    total = *amount;
                }
            }
        }
        Ok(Bill {
            duration_s,
            lines,
            total,
        })
    }

    fn units(&self, chargeable_s: i64) -> u32 {
        let unit_s = i64::from(self.rate.unit_min) * SECONDS_PER_MINUTE;
        let whole = chargeable_s / unit_s;
        let remainder_s = chargeable_s % unit_s;
        let partial = match self.partial_unit {
            PartialUnit::RoundUp => remainder_s > 0,
            PartialUnit::RoundDown => false,
            PartialUnit::IgnoreUpTo { minutes } => {
                remainder_s > i64::from(minutes) * SECONDS_PER_MINUTE
            }
        };
        // A window is at most 24 h and a unit at least one minute: at most 1,440 units.
        u32::try_from(whole + i64::from(partial)).unwrap_or(u32::MAX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{Duration, TimeZone};
    use proptest::prelude::*;

    fn t0() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 23, 8, 0, 0)
            .single()
            .unwrap_or_default()
    }

    fn simple() -> Tariff {
        Tariff::simple(15, Money::from_fen(300), Some(Money::from_fen(2000)))
    }

    fn bill(tariff: &Tariff, minutes: i64) -> Bill {
        tariff
            .bill(t0(), t0() + Duration::minutes(minutes))
            .unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn short_stay_within_free_period_is_free() {
        let b = bill(&simple(), 15);
        assert_eq!(b.total, Money::ZERO);
        assert_eq!(b.lines[0].code, BillLineCode::FreePeriod);
    }

    #[test]
    fn a_stay_past_the_free_period_is_billed_from_entry_per_started_hour() {
        assert_eq!(bill(&simple(), 16).total, Money::from_fen(300));
        assert_eq!(bill(&simple(), 61).total, Money::from_fen(600));
        assert_eq!(bill(&simple(), 180).total, Money::from_fen(900));
    }

    #[test]
    fn the_24h_cap_applies_to_a_partial_day() {
        // 23 hours at ¥3/h would be ¥69; the cap is ¥20 — the peers' bug was charging ¥69.
        let b = bill(&simple(), 23 * 60);
        assert_eq!(b.total, Money::from_fen(2000));
        assert!(b.lines.iter().any(|l| l.code == BillLineCode::Cap24h));
    }

    #[test]
    fn a_second_day_starts_a_new_window() {
        // 24 h capped at ¥20, then 2 started hours of the second window at ¥3.
        assert_eq!(bill(&simple(), 24 * 60 + 61).total, Money::from_fen(2600));
        assert_eq!(bill(&simple(), 3 * 24 * 60).total, Money::from_fen(6000));
    }

    #[test]
    fn owner_free_minutes_are_deducted() {
        let owner = simple().with_owner_free_minutes(120);
        assert_eq!(bill(&owner, 119).total, Money::ZERO);
        assert_eq!(bill(&owner, 121).total, Money::from_fen(300));
        assert_eq!(bill(&owner, 240).total, Money::from_fen(600));
    }

    #[test]
    fn rounding_rules_for_partial_units() {
        let mut t = Tariff::simple(0, Money::from_fen(100), None);
        t.rate.unit_min = 30;
        t.partial_unit = PartialUnit::RoundDown;
        assert_eq!(bill(&t, 59).total, Money::from_fen(100));
        t.partial_unit = PartialUnit::IgnoreUpTo { minutes: 5 };
        assert_eq!(bill(&t, 35).total, Money::from_fen(100));
        assert_eq!(bill(&t, 36).total, Money::from_fen(200));
    }

    #[test]
    fn per_stay_cap_limits_the_total() {
        let mut t = simple();
        t.caps.push(Cap::PerStay {
            amount: Money::from_fen(3000),
        });
        assert_eq!(bill(&t, 3 * 24 * 60).total, Money::from_fen(3000));
    }

    #[test]
    fn exit_before_entry_is_a_zero_stay() {
        let b = simple().bill(t0(), t0() - Duration::minutes(5));
        assert_eq!(b.map(|b| b.total), Ok(Money::ZERO));
    }

    #[test]
    fn validate_rejects_inconsistent_tariffs() {
        let mut t = simple();
        t.rate.unit_min = 0;
        assert_eq!(t.validate(), Err(TariffError::UnitLength));
        let mut t = simple();
        t.partial_unit = PartialUnit::IgnoreUpTo { minutes: 60 };
        assert_eq!(t.validate(), Err(TariffError::IgnoredRemainder));
        assert_eq!(simple().validate(), Ok(()));
    }

    #[test]
    fn tariff_round_trips_through_json() {
        let json = serde_json::to_value(simple()).unwrap_or_default();
        assert_eq!(json["caps"][0]["kind"], "rolling24h");
        assert_eq!(json["rate"]["price"], "3.00");
        let back: Tariff = serde_json::from_value(json).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(back, simple());
    }

    proptest! {
        #[test]
        fn bills_are_consistent(
            free in 0u32..120, hourly_fen in 0i64..5000, cap_fen in 1i64..20000,
            minutes in 0i64..(10 * 24 * 60), extra in 0i64..600,
        ) {
            let t = Tariff::simple(free, Money::from_fen(hourly_fen), Some(Money::from_fen(cap_fen)));
            let a = bill(&t, minutes);
            let b = bill(&t, minutes + extra);
            // Lines add up to the total.
            let sum: rust_decimal::Decimal = a.lines.iter().map(|l| l.amount).sum();
            prop_assert_eq!(sum, a.total.yuan());
            // Never above the cap for each started 24-hour window.
            let windows = (minutes + 24 * 60 - 1) / (24 * 60);
            prop_assert!(a.total.yuan() <= Money::from_fen(cap_fen).yuan() * rust_decimal::Decimal::from(windows.max(1)));
            // Staying longer never costs less.
            prop_assert!(b.total >= a.total);
            prop_assert!(a.total >= Money::ZERO);
        }
    }
}
