//! The tariff model. A tariff is data: JSON in the API, JSONB in Postgres.
//!
//! ```json
//! {"free": {"kind": "whole_stay_within", "minutes": 15},
//!  "small": {"day": {"steps": [{"kind": "block", "minutes": 120, "price": "5.00"},
//!                              {"kind": "units", "unit_min": 60, "price": "1.00"}]},
//!            "caps": [{"kind": "rolling24h", "amount": "20.00"}]}}
//! ```

use std::fmt;
use std::str::FromStr;

use chrono::{NaiveTime, Timelike};
use parkshare_domain::money::{Money, MONEY_YUAN_MAX};
use parkshare_domain::vehicle::VehicleClass;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

/// A unit lasts from one minute to one day.
pub const UNIT_MIN_MAX: u32 = 24 * 60;
/// A free period or block longer than a week is not a parking tariff.
pub const PERIOD_MIN_MAX: u32 = 7 * 24 * 60;
/// Steps per rate: real cards have two or three.
pub const STEPS_MAX: usize = 16;
/// Longest multi-day cap window.
pub const CAP_DAYS_MAX: u32 = 366;
/// Most 24-hour windows with a cap of their own before the last one repeats: published cards
/// (airports) list two or three; a month of daily figures is already not a price board.
pub const CAP_SCHEDULE_MAX: usize = 31;

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

/// How a started, unfinished unit at the end of a period (or of the stay) is charged.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum PartialUnit {
    /// A started unit is charged in full.
    #[default]
    RoundUp,
    /// Only complete units are charged.
    RoundDown,
    /// A remainder of at most `minutes` is not charged; a longer one is a full unit.
    IgnoreUpTo { minutes: u32 },
}

/// What happens to the rates when a window ends: do first-period prices apply again?
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum AfterWindow {
    /// Every 24 hours from entry the rates start over: first-period prices apply again.
    #[default]
    StartsOver,
    /// The rates start over at every local midnight ("daily" cards).
    StartsOverEachCalendarDay,
    /// The rates carry on where they were (usually at the subsequent unit price).
    ContinuesAtUnitPrice,
}

/// One step of a rate, in the order they apply as parked time accumulates.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Step {
    /// A block of time at a fixed price, charged in full once entered ("首2小时5元").
    Block { minutes: u32, price: Money },
    /// Units of `unit_min` at `price` each, until `until_min` of parked time under this rate
    /// (measured from the start of the rate), or for ever.
    Units {
        unit_min: u32,
        price: Money,
        until_min: Option<u32>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rate {
    pub steps: Vec<Step>,
}

/// A clock time of day, written "HH:MM".
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ClockTime(pub NaiveTime);

impl TryFrom<String> for ClockTime {
    type Error = String;
    fn try_from(text: String) -> Result<ClockTime, String> {
        NaiveTime::parse_from_str(&text, "%H:%M")
            .map(ClockTime)
            .map_err(|_| format!("'{text}' is not a time of day HH:MM"))
    }
}

impl From<ClockTime> for String {
    fn from(t: ClockTime) -> String {
        t.to_string()
    }
}

impl fmt::Display for ClockTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:02}:{:02}", self.0.hour(), self.0.minute())
    }
}

impl FromStr for ClockTime {
    type Err = String;
    fn from_str(s: &str) -> Result<ClockTime, String> {
        ClockTime::try_from(s.to_owned())
    }
}

/// The night period in the compound's local time, e.g. 21:00–07:00, with its own rate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Night {
    pub start: ClockTime,
    pub end: ClockTime,
    pub rate: Rate,
    /// At most this much per night ("夜间封顶").
    pub cap: Option<Money>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Cap {
    /// At most `amount` per 24 hours counted from entry, partial windows included. With
    /// `later`, `amount` is the cap of the first 24 hours only, `later[0]` of the second,
    /// `later[1]` of the third, …, and the last of `later` of every window after it (an airport
    /// card: 30 for the first 24 hours, 40 for the second, 50 for each later one:
    /// `{"kind": "rolling24h", "amount": "30.00", "later": ["40.00", "50.00"]}`). Tariffs
    /// stored before `later` existed have none: one cap for every window.
    Rolling24h {
        amount: Money,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        later: Vec<Money>,
    },
    /// At most `amount` per calendar day in local time.
    CalendarDay { amount: Money },
    /// At most `amount` per `days` × 24 hours counted from entry (e.g. a 7-day cap).
    MultiDay { days: u32, amount: Money },
    /// At most `amount` for the whole stay.
    PerStay { amount: Money },
}

impl Cap {
    /// One cap for every 24 hours from entry.
    pub fn rolling24h(amount: Money) -> Cap {
        Cap::Rolling24h {
            amount,
            later: Vec::new(),
        }
    }

    /// The cap of the 24-hour window `index` (0 for the first) of a rolling cap.
    pub fn rolling_amount(amount: Money, later: &[Money], index: i64) -> Money {
        match usize::try_from(index) {
            Ok(0) | Err(_) => amount,
            Ok(i) => later.get(i - 1).or(later.last()).copied().unwrap_or(amount),
        }
    }
}

/// A flat price for every stay up to some length ("2小时内5元").
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Flat {
    pub minutes: u32,
    pub price: Money,
}

/// The prices of one vehicle class.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClassTariff {
    #[serde(default)]
    pub flat_up_to: Option<Flat>,
    pub day: Rate,
    #[serde(default)]
    pub night: Option<Night>,
    #[serde(default)]
    pub caps: Vec<Cap>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct MonthlyPrices {
    pub small: Option<Money>,
    pub large: Option<Money>,
    pub new_energy: Option<Money>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tariff {
    pub free: FreePeriod,
    #[serde(default)]
    pub partial_unit: PartialUnit,
    #[serde(default)]
    pub after_window: AfterWindow,
    /// Prices of small vehicles, and of every class without its own.
    pub small: ClassTariff,
    #[serde(default)]
    pub large: Option<ClassTariff>,
    #[serde(default)]
    pub new_energy: Option<ClassTariff>,
    /// New-energy vehicles park free for this many minutes per calendar day of their stay.
    #[serde(default)]
    pub new_energy_free_min_per_day: u32,
    /// Discount for registered owners' cars, in percent (rule 3: 可对小区业主适当优惠).
    #[serde(default, with = "rust_decimal::serde::str")]
    pub owner_discount_pct: Decimal,
    /// Fee for an exit with no entry record; without one, such exits cannot be charged.
    #[serde(default)]
    pub no_entry_fee: Option<Money>,
    #[serde(default)]
    pub monthly: MonthlyPrices,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TariffError {
    #[error("{0}: a unit lasts 1 to {UNIT_MIN_MAX} minutes")]
    UnitLength(String),
    #[error("{0}: must be at most {PERIOD_MIN_MAX} minutes")]
    Period(String),
    #[error(
        "{0}: a rate needs 1 to {STEPS_MAX} steps and its last step must be units without an end"
    )]
    Steps(String),
    #[error("{0}: until_min must be after the step's start and a whole number of units from it")]
    StepEnd(String),
    #[error("the ignored remainder must be shorter than every unit")]
    IgnoredRemainder,
    #[error("{0}: a cap must be positive")]
    ZeroCap(String),
    #[error("{0}: at most {CAP_SCHEDULE_MAX} later 24-hour caps")]
    CapSchedule(String),
    #[error("{0}: a multi-day cap spans 1 to {CAP_DAYS_MAX} days")]
    CapDays(String),
    #[error("night: start and end must differ")]
    NightBounds,
    #[error("owner_discount_pct must be between 0 and 100")]
    Discount,
    #[error("a stay of more than {0} days cannot be billed automatically")]
    StayTooLong(i64),
    #[error("{0}: a price is at most 10,000,000.00 yuan")]
    PriceTooLarge(String),
}

impl Rate {
    pub fn units(unit_min: u32, price: Money) -> Rate {
        Rate {
            steps: vec![Step::Units {
                unit_min,
                price,
                until_min: None,
            }],
        }
    }

    /// Where step `index` starts and ends, in minutes of parked time under this rate (`None`:
    /// it never ends).
    pub fn step_bounds(&self, index: usize) -> (u32, Option<u32>) {
        let mut start = 0_u32;
        for (i, step) in self.steps.iter().enumerate() {
            let end = match step {
                Step::Block { minutes, .. } => Some(start.saturating_add(*minutes)),
                Step::Units { until_min, .. } => *until_min,
            };
            if i == index {
                return (start, end);
            }
            match end {
                Some(end) => start = end,
                None => return (start, None),
            }
        }
        (start, None)
    }

    /// Where the last step (unbounded units) starts, in minutes under this rate.
    pub fn last_step_start_min(&self) -> u32 {
        self.step_bounds(self.steps.len().saturating_sub(1)).0
    }

    fn validate(&self, at: &str, ignore_min: u32) -> Result<(), TariffError> {
        let bad_steps = || TariffError::Steps(at.to_owned());
        if self.steps.is_empty() || self.steps.len() > STEPS_MAX {
            return Err(bad_steps());
        }
        let mut start = 0_u32;
        for (i, step) in self.steps.iter().enumerate() {
            let last = i + 1 == self.steps.len();
            match step {
                Step::Block { minutes, .. } => {
                    if last {
                        return Err(bad_steps());
                    }
                    if *minutes == 0 || *minutes > PERIOD_MIN_MAX {
                        return Err(TariffError::Period(format!("{at}.steps[{i}].minutes")));
                    }
                    start += minutes;
                }
                Step::Units {
                    unit_min,
                    until_min,
                    ..
                } => {
                    if *unit_min == 0 || *unit_min > UNIT_MIN_MAX {
                        return Err(TariffError::UnitLength(format!("{at}.steps[{i}]")));
                    }
                    if ignore_min >= *unit_min {
                        return Err(TariffError::IgnoredRemainder);
                    }
                    match (until_min, last) {
                        (None, true) => {}
                        (None, false) | (Some(_), true) => return Err(bad_steps()),
                        (Some(until), false) => {
                            if *until <= start
                                || !(until - start).is_multiple_of(*unit_min)
                                || *until > PERIOD_MIN_MAX
                            {
                                return Err(TariffError::StepEnd(format!("{at}.steps[{i}]")));
                            }
                            start = *until;
                        }
                    }
                }
            }
        }
        Ok(())
    }
}

impl ClassTariff {
    fn validate(&self, at: &str, ignore_min: u32) -> Result<(), TariffError> {
        self.day.validate(&format!("{at}.day"), ignore_min)?;
        if let Some(flat) = &self.flat_up_to {
            if flat.minutes == 0 || flat.minutes > PERIOD_MIN_MAX {
                return Err(TariffError::Period(format!("{at}.flat_up_to.minutes")));
            }
        }
        if let Some(night) = &self.night {
            if night.start == night.end {
                return Err(TariffError::NightBounds);
            }
            night
                .rate
                .validate(&format!("{at}.night.rate"), ignore_min)?;
            if night.cap.is_some_and(Money::is_zero) {
                return Err(TariffError::ZeroCap(format!("{at}.night.cap")));
            }
        }
        for (i, cap) in self.caps.iter().enumerate() {
            let (amount, days) = match cap {
                Cap::Rolling24h { amount, later } => {
                    if later.len() > CAP_SCHEDULE_MAX {
                        return Err(TariffError::CapSchedule(format!("{at}.caps[{i}].later")));
                    }
                    if later.iter().any(|a| a.is_zero()) {
                        return Err(TariffError::ZeroCap(format!("{at}.caps[{i}].later")));
                    }
                    (amount, 1)
                }
                Cap::CalendarDay { amount } | Cap::PerStay { amount } => (amount, 1),
                Cap::MultiDay { days, amount } => (amount, *days),
            };
            if amount.is_zero() {
                return Err(TariffError::ZeroCap(format!("{at}.caps[{i}]")));
            }
            if days == 0 || days > CAP_DAYS_MAX {
                return Err(TariffError::CapDays(format!("{at}.caps[{i}]")));
            }
        }
        Ok(())
    }
}

impl Tariff {
    /// The gate core's per-lot rule: the whole stay free up to `free_min`, then `hourly` per
    /// started hour, at most `cap_24h` per 24 hours from entry.
    pub fn simple(free_min: u32, hourly: Money, cap_24h: Option<Money>) -> Tariff {
        Tariff {
            free: FreePeriod::WholeStayWithin { minutes: free_min },
            partial_unit: PartialUnit::RoundUp,
            after_window: AfterWindow::StartsOver,
            small: ClassTariff {
                flat_up_to: None,
                day: Rate::units(60, hourly),
                night: None,
                caps: cap_24h.map(Cap::rolling24h).into_iter().collect(),
            },
            large: None,
            new_energy: None,
            new_energy_free_min_per_day: 0,
            owner_discount_pct: Decimal::ZERO,
            no_entry_fee: None,
            monthly: MonthlyPrices::default(),
        }
    }

    /// Checks the tariff's internal consistency; stored tariffs have passed this.
    pub fn validate(&self) -> Result<(), TariffError> {
        let ignore_min = match self.partial_unit {
            PartialUnit::IgnoreUpTo { minutes } => minutes,
            _ => 0,
        };
        match self.free {
            FreePeriod::WholeStayWithin { minutes } | FreePeriod::DeductFirst { minutes }
                if minutes > PERIOD_MIN_MAX =>
            {
                return Err(TariffError::Period("free.minutes".into()))
            }
            _ => {}
        }
        if self.new_energy_free_min_per_day > 24 * 60 {
            return Err(TariffError::Period("new_energy_free_min_per_day".into()));
        }
        if self.owner_discount_pct < Decimal::ZERO || self.owner_discount_pct > Decimal::ONE_HUNDRED
        {
            return Err(TariffError::Discount);
        }
        if let Some((at, _)) = self
            .prices()
            .into_iter()
            .find(|(_, price)| price.yuan() > MONEY_YUAN_MAX)
        {
            return Err(TariffError::PriceTooLarge(at));
        }
        self.small.validate("small", ignore_min)?;
        if let Some(large) = &self.large {
            large.validate("large", ignore_min)?;
        }
        if let Some(nev) = &self.new_energy {
            nev.validate("new_energy", ignore_min)?;
        }
        Ok(())
    }

    /// Every price and cap of the tariff, each with where it is (`small.day.steps[0]`).
    pub fn prices(&self) -> Vec<(String, Money)> {
        fn rate(out: &mut Vec<(String, Money)>, at: &str, rate: &Rate) {
            for (i, step) in rate.steps.iter().enumerate() {
                let (Step::Block { price, .. } | Step::Units { price, .. }) = step;
                out.push((format!("{at}.steps[{i}]"), *price));
            }
        }
        let mut out = Vec::new();
        let classes = [
            ("small", Some(&self.small)),
            ("large", self.large.as_ref()),
            ("new_energy", self.new_energy.as_ref()),
        ];
        for (name, class) in classes {
            let Some(class) = class else { continue };
            rate(&mut out, &format!("{name}.day"), &class.day);
            if let Some(flat) = &class.flat_up_to {
                out.push((format!("{name}.flat_up_to"), flat.price));
            }
            if let Some(night) = &class.night {
                rate(&mut out, &format!("{name}.night.rate"), &night.rate);
                if let Some(cap) = night.cap {
                    out.push((format!("{name}.night.cap"), cap));
                }
            }
            for (i, cap) in class.caps.iter().enumerate() {
                match cap {
                    Cap::Rolling24h { amount, later } => {
                        out.push((format!("{name}.caps[{i}]"), *amount));
                        for (j, amount) in later.iter().enumerate() {
                            out.push((format!("{name}.caps[{i}].later[{j}]"), *amount));
                        }
                    }
                    Cap::CalendarDay { amount }
                    | Cap::PerStay { amount }
                    | Cap::MultiDay { amount, .. } => {
                        out.push((format!("{name}.caps[{i}]"), *amount));
                    }
                }
            }
        }
        if let Some(fee) = self.no_entry_fee {
            out.push(("no_entry_fee".to_owned(), fee));
        }
        for (name, price) in [
            ("monthly.small", self.monthly.small),
            ("monthly.large", self.monthly.large),
            ("monthly.new_energy", self.monthly.new_energy),
        ] {
            if let Some(price) = price {
                out.push((name.to_owned(), price));
            }
        }
        out
    }

    /// The prices for a vehicle class (small prices for a class without its own).
    pub fn class(&self, class: VehicleClass) -> &ClassTariff {
        match class {
            VehicleClass::Small => &self.small,
            VehicleClass::Large => self.large.as_ref().unwrap_or(&self.small),
            VehicleClass::NewEnergy => self.new_energy.as_ref().unwrap_or(&self.small),
        }
    }

    pub fn monthly_price(&self, class: VehicleClass) -> Option<Money> {
        match class {
            VehicleClass::Small => self.monthly.small,
            VehicleClass::Large => self.monthly.large.or(self.monthly.small),
            VehicleClass::NewEnergy => self.monthly.new_energy.or(self.monthly.small),
        }
    }
}
