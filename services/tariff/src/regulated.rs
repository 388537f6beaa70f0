//! Regulated prices (政府指导价) and the filing check (备案).
//!
//! The price authority's standard gives, per vehicle class, a ceiling per hour, per 24 hours
//! and per month: either a maximum price (最高限价) or a base price with a float range
//! (基准价及浮动幅度). A tariff may be filed only if no stay it can bill — entering at any
//! second, lasting any number of seconds up to [`STAY_DAYS_MAX`] days — is charged above what
//! the standard allows for its length ([`Standard::max_fee`]). [`check_filing`] proves it
//! from a finite set of stays derived from the tariff itself; its doc comment says why that
//! set suffices. At billing time the same ceiling is applied again as a guard.

use chrono::{DateTime, Duration, NaiveDate, NaiveTime, Offset, TimeZone, Utc};
use chrono_tz::Tz;
use parkshare_domain::money::{Money, MONEY_YUAN_MAX};
use parkshare_domain::vehicle::VehicleClass;
use rust_decimal::{Decimal, RoundingStrategy};
use serde::{Deserialize, Serialize};

use crate::engine::{Stay, STAY_DAYS_MAX};
use crate::model::{AfterWindow, Cap, ClassTariff, FreePeriod, PartialUnit, Rate, Step, Tariff};

/// A base price with a float range becomes a ceiling rounded down to the fen: the driver is
/// never charged a fraction above the authority's figure.
pub const FLOAT_ROUNDING: RoundingStrategy = RoundingStrategy::ToZero;
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
            Price::Max { amount } => {
                amount.yuan() > Decimal::ZERO && amount.yuan() <= MONEY_YUAN_MAX
            }
            Price::BaseWithFloat { base, float_pct } => {
                base.yuan() > Decimal::ZERO
                    && base.yuan() <= MONEY_YUAN_MAX
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
                    return Err(
                        "every price must be positive, at most 10,000,000.00, and a float range 0–100%"
                            .into(),
                    );
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

/// Why a tariff cannot be filed: the first stay found charged above the standard, or a price
/// that is not a stay's (the monthly price, the no-entry fee) above its limit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
#[error("{}", self.describe())]
pub struct Violation {
    pub class: VehicleClass,
    /// `per_hour_or_24h`, `monthly` or `no_entry_fee`.
    pub rule: &'static str,
    /// Local time of day of the entry, "HH:MM:SS".
    pub entered_local: String,
    /// The stay's length in seconds.
    pub duration_s: i64,
    /// The stay's length in started minutes.
    pub duration_min: i64,
    pub fee: Money,
    pub limit: Money,
}

impl Violation {
    /// The violation in words: a stay's for a stay, the price's own terms for the others.
    fn describe(&self) -> String {
        let (class, fee, limit) = (self.class, self.fee, self.limit);
        match self.rule {
            "monthly" => format!(
                "{class:?} monthly: the monthly price ¥{fee} is above the standard's monthly \
                 maximum ¥{limit}"
            ),
            "no_entry_fee" => format!(
                "{class:?} no_entry_fee: the fee for a car with no entry on record, ¥{fee}, is \
                 above the standard's most for a day, ¥{limit}"
            ),
            rule => format!(
                "{class:?} {rule}: a stay entering at {} for {} s ({} min) costs ¥{fee}, the \
                 standard allows ¥{limit}",
                self.entered_local, self.duration_s, self.duration_min
            ),
        }
    }

    fn price(class: VehicleClass, rule: &'static str, fee: Money, limit: Money) -> Violation {
        Violation {
            class,
            rule,
            entered_local: String::new(),
            duration_s: 0,
            duration_min: 0,
            fee,
            limit,
        }
    }
}

/// Checks that `tariff` charges no stay it can bill above `standard`, in the compound's zone.
///
/// There is no horizon to choose: the check covers every entry instant (to the second, as
/// billing counts whole seconds) and every duration up to [`STAY_DAYS_MAX`] days, the longest
/// stay billed at all. It does so exactly, from a finite set of stays, for these reasons.
///
/// **Durations.** For one entry, the fee is a step function of the duration `d`: zero within
/// a whole-stay free period, the flat price within the flat length, and beyond those the sum
/// of the charges (blocks and units, caps applied) that a stay of length `d` pays. A shorter
/// stay pays a prefix of a longer one's charges (see `Tariff::fee_steps`), so that sum only
/// rises, at one known duration per charge. The ceiling [`Standard::max_fee`] is a
/// non-decreasing step function of `d` too. Between two rises of the fee, fee − ceiling is
/// therefore largest at the left end: checking the first duration of each fee step (and the
/// first second after the free and flat lengths) checks every duration.
///
/// **How long.** The fee pattern repeats, because everything a tariff can say repeats: day
/// and night, calendar days and new-energy free minutes every local day; rate restarts and
/// 24-hour caps every 24 hours from entry; a multi-day cap every `days`; continuing units
/// without a night every `lcm(unit, 24 h)`. Once the lead-in is over — the free, deducted and
/// flat minutes, the tiers of continuing rates, a cap schedule's first windows, and one
/// longest cap window for the caps' budgets to forget it — the fee over `d + P` is the fee
/// over `d` plus a fixed increase `s` per period `P` (the lcm of those periods), while the
/// ceiling rises by exactly `P / 24 h` 24-hour ceilings. If `s` is no more than that, no
/// stay longer than lead-in + `P` is worse than the one a period shorter, and the walk of
/// lead-in + `P` suffices. If `s` is more, the fees outgrow the ceiling and the worst stay is
/// the longest billable one of each phase, which is computed rather than walked. A per-stay
/// cap `A` is outside this pattern; it is applied on top, as `min(fee, A)` — exactly what
/// spending its budget charge by charge does. When the pattern's period would make the walk
/// longer than [`STAY_DAYS_MAX`], the walk is simply every billable duration.
///
/// **Entries.** Everything the fee depends on is anchored either at the entry (units,
/// blocks, tiers, 24-hour windows and restarts, the deducted minutes) or at a local clock
/// time (night start and end, midnight) — every one a whole number of minutes, and every
/// one a multiple of `g`, the gcd of all the tariff's lengths and clock times (and of
/// 24 h). As the entry moves between two instants of local time that are multiples of `g`,
/// no entry-anchored edge crosses a clock-anchored one, so the same charges are made at the
/// same prices against the same cap windows; only where the clock-anchored charges fall
/// moves, and the later the entry, the sooner after it they come, so the lower the ceiling
/// they are measured against. The worst entry of each such interval is its last second,
/// and the grid points themselves (where a unit may exactly fit) are their own case. So the
/// entries checked are each grid point `p` of a local day and `p` − 1 s. A tariff without
/// night rates, calendar-day caps or restarts, or new-energy daily free minutes does not
/// depend on the entry at all and is checked from one. In a zone with daylight saving, the
/// days around each change of the reference year are checked as well, with `g` also
/// dividing the change; the repeating pattern beyond the walk assumes days of 24 hours.
///
/// A billed stay may still be lowered at billing by an owner discount, owner free minutes
/// (the lot's policy, unknown at filing) or a shared-space rate; the regulated guard at
/// billing stays as a second line of defence.
pub fn check_filing(tariff: &Tariff, standard: &Standard, tz: Tz) -> Result<(), Violation> {
    let mut checked: Vec<(&ClassTariff, &Limits, bool)> = Vec::new();
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
                return Err(Violation::price(class, "monthly", price, ceiling));
            }
        }
        if let (Some(fee), Some(limit)) = (tariff.no_entry_fee, standard.max_fee(class, DAY_S)) {
            if fee > limit {
                return Err(Violation::price(class, "no_entry_fee", fee, limit));
            }
        }
        let Some(per_day) = standard.max_fee(class, DAY_S) else {
            continue;
        };
        let prices = tariff.class(class);
        let new_energy_free =
            class == VehicleClass::NewEnergy && tariff.new_energy_free_min_per_day > 0;
        // Classes without prices or limits of their own are billed and bounded alike.
        if checked.contains(&(prices, limits, new_energy_free)) {
            continue;
        }
        checked.push((prices, limits, new_energy_free));
        ClassCheck::new(tariff, standard, class, tz, per_day).run()?;
    }
    Ok(())
}

/// The filing check of one vehicle class.
struct ClassCheck<'a> {
    tariff: &'a Tariff,
    standard: &'a Standard,
    class: VehicleClass,
    tz: Tz,
    /// The class's prices without per-stay caps, which are applied as `min(fee, stay_cap)`.
    rates: ClassTariff,
    stay_cap: Option<Money>,
    /// The ceiling of 24 hours.
    per_day: Money,
    /// Stays up to this long are free.
    free_s: i64,
    /// Stays up to this long (and longer than `free_s`) cost the flat price.
    flat: Option<(i64, Money)>,
    /// How long a stay is walked.
    horizon_s: i64,
    /// From `.0` on, the fee repeats every `.1` plus a fixed increase.
    period: Option<(i64, i64)>,
}

impl<'a> ClassCheck<'a> {
    fn new(
        tariff: &'a Tariff,
        standard: &'a Standard,
        class: VehicleClass,
        tz: Tz,
        per_day: Money,
    ) -> ClassCheck<'a> {
        let mut rates = tariff.class(class).clone();
        let stay_cap = rates
            .caps
            .iter()
            .filter_map(|cap| match cap {
                Cap::PerStay { amount } => Some(*amount),
                _ => None,
            })
            .min();
        rates.caps.retain(|cap| !matches!(cap, Cap::PerStay { .. }));
        let free_s = match tariff.free {
            FreePeriod::WholeStayWithin { minutes } => i64::from(minutes) * 60,
            _ => 0,
        };
        let flat = rates
            .flat_up_to
            .as_ref()
            .map(|flat| (i64::from(flat.minutes) * 60, flat.price))
            .filter(|(flat_s, _)| *flat_s > free_s);
        let (horizon_s, period) = match pattern_days(tariff, &rates) {
            Some((lead_days, period_days)) if lead_days + period_days < STAY_DAYS_MAX => (
                (lead_days + period_days) * DAY_S,
                Some((lead_days * DAY_S, period_days * DAY_S)),
            ),
            _ => (STAY_DAYS_MAX * DAY_S, None),
        };
        ClassCheck {
            tariff,
            standard,
            class,
            tz,
            rates,
            stay_cap,
            per_day,
            free_s,
            flat,
            horizon_s,
            period,
        }
    }

    fn run(&self) -> Result<(), Violation> {
        for entered_at in entry_instants(self.tariff, &self.rates, self.class, self.tz) {
            self.check_entry(entered_at)?;
        }
        Ok(())
    }

    /// Every stay entering at `entered_at`.
    fn check_entry(&self, entered_at: DateTime<Utc>) -> Result<(), Violation> {
        if let Some((_, price)) = self.flat {
            self.judge(entered_at, self.free_s + 1, price)?;
        }
        let stay = Stay {
            entered_at,
            exited_at: entered_at + Duration::seconds(self.horizon_s),
            class: self.class,
            owner: false,
            extra_free_min: 0,
            time_zone: self.tz,
        };
        let steps = self.tariff.fee_steps(&self.rates, &stay);
        let fee_at = |duration_s: i64| {
            let paid = steps.partition_point(|(shortest_s, _)| *shortest_s <= duration_s);
            paid.checked_sub(1)
                .and_then(|i| steps.get(i))
                .map_or(Money::ZERO, |(_, fee)| *fee)
        };
        // Stays longer than the free and flat lengths pay the rates.
        let first_s = self.free_s.max(self.flat.map_or(0, |(flat_s, _)| flat_s)) + 1;
        self.judge(entered_at, first_s, self.capped(fee_at(first_s)))?;
        for (shortest_s, fee) in &steps {
            if *shortest_s > first_s {
                self.judge(entered_at, *shortest_s, self.capped(*fee))?;
            }
        }
        let Some((lead_s, period_s)) = self.period else {
            return Ok(());
        };
        let rise = fee_at(lead_s + period_s).saturating_sub(fee_at(lead_s));
        let days_per_period = u32::try_from(period_s / DAY_S).unwrap_or(u32::MAX);
        if rise <= self.per_day.times(days_per_period) {
            return Ok(());
        }
        // The fees outgrow the ceiling: in each phase of the period, the worst stays are the
        // longest billable ones (or, under a per-stay cap, those where the cap is reached).
        let phases = std::iter::once(lead_s + 1).chain(
            steps
                .iter()
                .map(|(shortest_s, _)| *shortest_s)
                .filter(|s| *s > lead_s + 1 && *s <= lead_s + period_s),
        );
        // Report the shortest such stay, whichever phase it is in.
        let mut shortest: Option<Violation> = None;
        for duration_s in phases {
            let fee = fee_at(duration_s);
            for n in self.worst_periods(duration_s, period_s, fee, rise) {
                let fee = self.capped(fee + rise.times(n));
                if let Err(v) = self.judge(entered_at, duration_s + i64::from(n) * period_s, fee) {
                    if shortest
                        .as_ref()
                        .is_none_or(|s| v.duration_s < s.duration_s)
                    {
                        shortest = Some(v);
                    }
                    break;
                }
            }
        }
        shortest.map_or(Ok(()), Err)
    }

    /// How many periods to add to a stay of `duration_s` (fee `fee`, rising by `rise` per
    /// period) for the worst billable stays of its phase.
    fn worst_periods(&self, duration_s: i64, period_s: i64, fee: Money, rise: Money) -> Vec<u32> {
        let most = u32::try_from((STAY_DAYS_MAX * DAY_S - duration_s) / period_s).unwrap_or(0);
        let whole = |x: Decimal| rust_decimal::prelude::ToPrimitive::to_u32(&x.floor());
        // The first period at which the fee passes the ceiling, if no cap stops it first.
        let ceiling = self
            .standard
            .max_fee(self.class, duration_s)
            .unwrap_or(Money::ZERO);
        let gain = rise.yuan() - self.per_day.yuan() * Decimal::from(period_s / DAY_S);
        let first = whole((ceiling.yuan() - fee.yuan()) / gain).map_or(0, |n| n.saturating_add(1));
        let mut periods = vec![first, most];
        if let Some(cap) = self.stay_cap {
            let to_cap = whole((cap.yuan() - fee.yuan()) / rise.yuan()).unwrap_or(0);
            periods.extend([to_cap, to_cap.saturating_add(1)]);
        }
        periods.retain(|n| (1..=most).contains(n));
        periods.sort_unstable();
        periods
    }

    fn capped(&self, fee: Money) -> Money {
        self.stay_cap.map_or(fee, |cap| fee.min(cap))
    }

    fn judge(
        &self,
        entered_at: DateTime<Utc>,
        duration_s: i64,
        fee: Money,
    ) -> Result<(), Violation> {
        match self.standard.max_fee(self.class, duration_s) {
            Some(limit) if fee > limit => Err(Violation {
                class: self.class,
                rule: "per_hour_or_24h",
                entered_local: entered_at
                    .with_timezone(&self.tz)
                    .format("%H:%M:%S")
                    .to_string(),
                duration_s,
                duration_min: (duration_s + 59) / 60,
                fee,
                limit,
            }),
            _ => Ok(()),
        }
    }
}

/// When the fee pattern of `rates` starts repeating (its lead-in) and its period, in days —
/// see [`check_filing`]. `None` if the period is too long to be worth computing.
fn pattern_days(tariff: &Tariff, rates: &ClassTariff) -> Option<(i64, i64)> {
    let days = |minutes: u32| i64::from(minutes).div_euclid(24 * 60) + 1;
    let deduct_min = match tariff.free {
        FreePeriod::DeductFirst { minutes } => minutes,
        _ => 0,
    };
    let free_min = match tariff.free {
        FreePeriod::WholeStayWithin { minutes } => minutes,
        _ => 0,
    };
    let flat_min = rates.flat_up_to.as_ref().map_or(0, |flat| flat.minutes);
    let lead_in = days(deduct_min.max(free_min).max(flat_min));
    // Rates that start over do so within a day; continuing ones once every tier is passed.
    let tiers = match tariff.after_window {
        AfterWindow::StartsOver | AfterWindow::StartsOverEachCalendarDay => 1,
        AfterWindow::ContinuesAtUnitPrice => tiers_days(rates, deduct_min),
    };
    let mut schedule = 1;
    let mut longest_window = 1;
    let mut period: i64 = 1;
    for cap in &rates.caps {
        match cap {
            Cap::Rolling24h { later, .. } => {
                schedule = schedule.max(i64::try_from(later.len()).ok()? + 1);
            }
            Cap::MultiDay { days, .. } => {
                longest_window = longest_window.max(i64::from(*days));
                period = lcm(period, i64::from(*days));
            }
            Cap::CalendarDay { .. } | Cap::PerStay { .. } => {}
        }
    }
    if tariff.after_window == AfterWindow::ContinuesAtUnitPrice && rates.night.is_none() {
        // Units that never restart fall on the same clock times every lcm(unit, 24 h).
        let unit_min = last_unit_min(&rates.day);
        period = lcm(
            period,
            i64::from(unit_min) / gcd(i64::from(unit_min), 24 * 60),
        );
    }
    if period >= STAY_DAYS_MAX {
        return None;
    }
    // The charges repeat once the lead-in and the tiers are over, the caps once the schedule
    // is; one longest cap window more, for the budgets of the windows open then to be those
    // of the repeating pattern, and a day of margin for a night across midnight.
    Some((
        lead_in.max(tiers).max(schedule) + longest_window + 1,
        period,
    ))
}

/// Days until every continuing rate has reached its last, unbounded step.
fn tiers_days(rates: &ClassTariff, deduct_min: u32) -> i64 {
    let day_tiers_min = i64::from(rates.day.last_step_start_min());
    match &rates.night {
        None => (i64::from(deduct_min) + day_tiers_min).div_euclid(24 * 60) + 1,
        Some(night) => {
            // The day rate runs from night end to night start, the night rate the rest.
            let minute = |t: crate::model::ClockTime| {
                i64::from(chrono::Timelike::hour(&t.0)) * 60
                    + i64::from(chrono::Timelike::minute(&t.0))
            };
            let day_min = (minute(night.start) - minute(night.end)).rem_euclid(24 * 60);
            let night_min = 24 * 60 - day_min;
            let night_tiers_min = i64::from(night.rate.last_step_start_min());
            let day_days = day_tiers_min / day_min.max(1) + 1;
            let night_days = night_tiers_min / night_min.max(1) + 1;
            day_days.max(night_days) + i64::from(deduct_min).div_euclid(24 * 60) + 1
        }
    }
}

fn last_unit_min(rate: &Rate) -> u32 {
    match rate.steps.last() {
        Some(Step::Units { unit_min, .. }) => *unit_min,
        _ => 24 * 60,
    }
}

fn gcd(a: i64, b: i64) -> i64 {
    if b == 0 {
        a.abs()
    } else {
        gcd(b, a % b)
    }
}

fn lcm(a: i64, b: i64) -> i64 {
    match gcd(a, b) {
        0 => 0,
        g => (a / g).saturating_mul(b),
    }
}

/// The entries to check (see [`check_filing`]): one if the fee does not depend on the entry,
/// otherwise each multiple `p` of the tariff's grid in a local day, and `p` − 1 s, on a
/// reference day and on the days around each daylight-saving change.
fn entry_instants(
    tariff: &Tariff,
    rates: &ClassTariff,
    class: VehicleClass,
    tz: Tz,
) -> Vec<DateTime<Utc>> {
    let new_energy_free =
        class == VehicleClass::NewEnergy && tariff.new_energy_free_min_per_day > 0;
    let local = rates.night.is_some()
        || new_energy_free
        || tariff.after_window == AfterWindow::StartsOverEachCalendarDay
        || rates
            .caps
            .iter()
            .any(|cap| matches!(cap, Cap::CalendarDay { .. }));
    let reference = reference_day();
    if !local {
        return local_instant(tz, reference, NaiveTime::MIN)
            .into_iter()
            .collect();
    }
    let (changes, shift_min) = daylight_saving_changes(tz);
    let grid_min = gcd(grid_min(tariff, rates), shift_min);
    let mut days = vec![reference];
    for change in changes {
        days.extend(change.pred_opt());
        days.push(change);
    }
    let step_min = u32::try_from(grid_min.max(1)).unwrap_or(1);
    let mut entries = Vec::new();
    for day in days {
        for minute in (0..24 * 60).step_by(usize::try_from(step_min).unwrap_or(1)) {
            let time = NaiveTime::from_num_seconds_from_midnight_opt(minute * 60, 0)
                .unwrap_or(NaiveTime::MIN);
            for at in local_instant(tz, day, time) {
                entries.push(at);
                entries.push(at - Duration::seconds(1));
            }
        }
    }
    entries
}

/// The gcd, in minutes, of every length and clock time of the tariff that can place an edge
/// of the fee pattern, and of 24 hours.
fn grid_min(tariff: &Tariff, rates: &ClassTariff) -> i64 {
    let mut lengths: Vec<u32> = vec![24 * 60, tariff.new_energy_free_min_per_day];
    match tariff.free {
        FreePeriod::DeductFirst { minutes } | FreePeriod::WholeStayWithin { minutes } => {
            lengths.push(minutes)
        }
        FreePeriod::None => {}
    }
    if let PartialUnit::IgnoreUpTo { minutes } = tariff.partial_unit {
        lengths.push(minutes);
    }
    let mut rate_list = vec![&rates.day];
    if let Some(night) = &rates.night {
        rate_list.push(&night.rate);
        for t in [night.start, night.end] {
            lengths.push(chrono::Timelike::hour(&t.0) * 60 + chrono::Timelike::minute(&t.0));
        }
    }
    for rate in rate_list {
        for step in &rate.steps {
            match step {
                Step::Block { minutes, .. } => lengths.push(*minutes),
                Step::Units {
                    unit_min,
                    until_min,
                    ..
                } => {
                    lengths.push(*unit_min);
                    lengths.extend(until_min);
                }
            }
        }
    }
    lengths
        .into_iter()
        .fold(0, |g, minutes| gcd(g, i64::from(minutes)))
}

/// A fixed day to check from (a Monday, away from any daylight-saving change).
fn reference_day() -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 1, 5).unwrap_or_default()
}

/// The instants at which the local time on `day` is `time`: none in a gap, two in an overlap.
fn local_instant(tz: Tz, day: NaiveDate, time: NaiveTime) -> Vec<DateTime<Utc>> {
    let local = tz.from_local_datetime(&day.and_time(time));
    let mut instants: Vec<DateTime<Utc>> = local
        .earliest()
        .into_iter()
        .chain(local.latest())
        .map(|t| t.with_timezone(&Utc))
        .collect();
    instants.dedup();
    instants
}

/// The days of the reference year on which the zone's offset changes, and the gcd of the
/// changes in minutes (24 h if there are none).
fn daylight_saving_changes(tz: Tz) -> (Vec<NaiveDate>, i64) {
    let offset_min = |day: NaiveDate| {
        local_instant(
            tz,
            day,
            NaiveTime::from_hms_opt(12, 0, 0).unwrap_or(NaiveTime::MIN),
        )
        .first()
        .map_or(0, |t| {
            i64::from(
                tz.offset_from_utc_datetime(&t.naive_utc())
                    .fix()
                    .local_minus_utc(),
            ) / 60
        })
    };
    let start = reference_day();
    let mut changes = Vec::new();
    let mut shift_min = 24 * 60;
    let mut previous = offset_min(start);
    for day in start.iter_days().skip(1).take(366) {
        let offset = offset_min(day);
        if offset != previous {
            changes.push(day);
            shift_min = gcd(shift_min, offset - previous);
        }
        previous = offset;
    }
    (changes, shift_min)
}
