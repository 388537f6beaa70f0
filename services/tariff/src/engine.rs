//! Billing one stay.
//!
//! 1. A stay within a whole-stay free period is free; the deducted free minutes (and an
//!    owner's humane free minutes) move the start of billing.
//! 2. A stay within the class's flat length costs the flat price.
//! 3. Otherwise the billed time is cut into segments at day/night boundaries (local time) and
//!    where the rates start over. In each segment the period's rate is walked step by step:
//!    a block is charged once when entered; units are charged as they start, and a unit cut
//!    short (by the end of the stay, a period boundary or a tier boundary) follows the
//!    partial-unit rule. Each rate has its own clock of parked time, so tiers count time
//!    under that rate.
//! 4. New-energy free minutes make the first charges of each local day free.
//! 5. Caps are budgets: each charge is reduced to what every window containing its start
//!    (its night, its 24 hours from entry, its calendar day, its multi-day window, the stay)
//!    still allows. So no window is ever charged above its cap, partial windows included.
//! 6. The owner discount, then the regulated guard (see [`crate::regulated`]).
//!
//! Every line of the bill is exact and they add up to the total.

use std::collections::HashMap;

use chrono::{DateTime, Datelike, Duration, NaiveDate, SubsecRound, TimeZone, Utc};
use chrono_tz::Tz;
use parkshare_domain::money::Money;
use parkshare_domain::vehicle::VehicleClass;
use rust_decimal::{Decimal, RoundingStrategy};
use serde::{Deserialize, Serialize};

use crate::model::{
    AfterWindow, Cap, ClassTariff, FreePeriod, Night, PartialUnit, Rate, Step, Tariff, TariffError,
};

const DAY_S: i64 = 24 * 60 * 60;
/// Longest stay billed automatically: a car parked for over a year is a case for staff.
pub const STAY_DAYS_MAX: i64 = 400;
/// The owner-discounted price is rounded down to the fen: the driver never pays a fraction
/// more than the discount promises.
pub const OWNER_DISCOUNT_ROUNDING: RoundingStrategy = RoundingStrategy::ToZero;

/// The stay to bill.
#[derive(Debug, Clone)]
pub struct Stay {
    pub entered_at: DateTime<Utc>,
    pub exited_at: DateTime<Utc>,
    pub class: VehicleClass,
    /// A registered owner's car: the tariff's owner discount applies.
    pub owner: bool,
    /// Humane free minutes deducted from the start (owners without a space).
    pub extra_free_min: u32,
    /// The compound's time zone, for night periods and calendar days.
    pub time_zone: Tz,
}

impl Stay {
    /// Billing counts whole seconds: camera timestamps carry fractions, and the engine steps
    /// through the stay second by second at most. Both ends are truncated, so a stay is never
    /// longer than the driver actually parked.
    fn in_whole_seconds(&self) -> Stay {
        Stay {
            entered_at: self.entered_at.trunc_subsecs(0),
            exited_at: self.exited_at.trunc_subsecs(0),
            ..self.clone()
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LineCode {
    FreePeriod,
    Flat,
    Block,
    Units,
    NightCap,
    Cap24h,
    CapCalendarDay,
    CapMultiDay,
    CapStay,
    NewEnergyFree,
    OwnerDiscount,
    /// A shared private space whose owner asks less than the filed tariff.
    SharedSpaceRate,
    RegulatedCap,
    NoEntryFee,
}

/// One line of an itemised bill (结算清单). `amount` is what the line adds to the total:
/// negative for caps and discounts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BillLine {
    pub code: LineCode,
    pub description: String,
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
    #[serde(with = "signed_money")]
    pub amount: Decimal,
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

/// The one rounding of a percentage rate: down to the fen, never above the exact share.
pub const RATE_ROUNDING: rust_decimal::RoundingStrategy = rust_decimal::RoundingStrategy::ToZero;

impl BillLine {
    fn over(self, from: Option<DateTime<Utc>>, to: Option<DateTime<Utc>>) -> BillLine {
        BillLine { from, to, ..self }
    }
}

impl Bill {
    fn line(code: LineCode, description: String, amount: Decimal) -> BillLine {
        BillLine {
            code,
            description,
            from: None,
            to: None,
            amount,
        }
    }

    /// A bill of one fee, e.g. the no-entry-record fee.
    pub fn flat(code: LineCode, fee: Money, description: &str) -> Bill {
        Bill {
            duration_s: 0,
            lines: vec![Bill::line(code, description.to_owned(), fee.yuan())],
            total: fee,
        }
    }

    /// A free stay from `from` to `to`: one zero line over the whole stay.
    pub fn free(from: DateTime<Utc>, to: DateTime<Utc>, description: &str) -> Bill {
        let to = to.max(from);
        Bill {
            duration_s: (to - from).num_seconds(),
            lines: vec![
                Bill::line(LineCode::FreePeriod, description.to_owned(), Decimal::ZERO)
                    .over(Some(from), Some(to)),
            ],
            total: Money::ZERO,
        }
    }

    /// The time the bill's lines cover: from the earliest start to the latest end. Lines that
    /// apply to the whole bill (discounts, the regulated guard) carry this range.
    pub fn range(&self) -> (Option<DateTime<Utc>>, Option<DateTime<Utc>>) {
        let from = self.lines.iter().filter_map(|l| l.from).min();
        let to = self.lines.iter().filter_map(|l| l.to).max();
        (from, to)
    }

    /// Charges `pct` percent of the total (an owner sharing their space below the filed
    /// tariff), rounded down to the fen in the driver's favour ([`RATE_ROUNDING`]), with a line
    /// saying so. 100 % or more changes nothing: a rate never raises a bill.
    pub fn apply_rate_pct(&mut self, pct: u8, description: String) -> bool {
        if pct >= 100 {
            return false;
        }
        let charged = (self.total.yuan() * Decimal::from(pct) / Decimal::ONE_HUNDRED)
            .round_dp_with_strategy(2, RATE_ROUNDING);
        let Ok(charged) = Money::parse(charged) else {
            return false;
        };
        if charged == self.total {
            return false;
        }
        let (from, to) = self.range();
        self.lines.push(
            Bill::line(
                LineCode::SharedSpaceRate,
                description,
                charged.yuan() - self.total.yuan(),
            )
            .over(from, to),
        );
        self.total = charged;
        true
    }

    /// Lowers the total to `limit` if it is above, with a line saying why. Returns whether it
    /// did.
    pub fn clamp(&mut self, limit: Money, description: String) -> bool {
        if self.total <= limit {
            return false;
        }
        let (from, to) = self.range();
        self.lines.push(
            Bill::line(
                LineCode::RegulatedCap,
                description,
                limit.yuan() - self.total.yuan(),
            )
            .over(from, to),
        );
        self.total = limit;
        true
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Period {
    Day,
    Night,
}

/// One charge before caps: a block or a unit.
#[derive(Debug, Clone)]
pub(crate) struct Charge {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    period: Period,
    step: usize,
    /// The 24-hour window from entry: bill lines do not run across windows.
    window: i64,
    /// Counts nights: charges of one night share its cap.
    night_no: u32,
    pub price: Money,
    new_energy_free: bool,
}

/// A stretch of billed time under one rate.
#[derive(Debug, Clone, Copy)]
struct Segment {
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    period: Period,
    window: i64,
    night_no: u32,
}

/// The clock of one rate: parked time under it, and the last block already charged.
#[derive(Debug, Clone, Copy, Default)]
struct Clock {
    pos_s: i64,
    last_block: Option<usize>,
}

impl Tariff {
    /// Bills a stay.
    pub fn bill(&self, stay: &Stay) -> Result<Bill, TariffError> {
        let stay = &stay.in_whole_seconds();
        let duration_s = (stay.exited_at - stay.entered_at).num_seconds().max(0);
        if duration_s > STAY_DAYS_MAX * DAY_S {
            return Err(TariffError::StayTooLong(STAY_DAYS_MAX));
        }
        if let FreePeriod::WholeStayWithin { minutes } = self.free {
            if duration_s <= i64::from(minutes) * 60 {
                return Ok(Bill::free(
                    stay.entered_at,
                    stay.exited_at,
                    &format!("{minutes}分钟内免费"),
                ));
            }
        }
        let class = self.class(stay.class);
        let charges = match &class.flat_up_to {
            Some(flat) if duration_s <= i64::from(flat.minutes) * 60 => vec![Charge {
                from: stay.entered_at,
                to: stay.exited_at.max(stay.entered_at),
                period: Period::Day,
                step: usize::MAX,
                window: 0,
                night_no: 0,
                price: flat.price,
                new_energy_free: false,
            }],
            _ => self.stay_charges(class, stay),
        };
        let mut bill = self.itemise(class, stay, duration_s, &charges);
        if stay.owner && self.owner_discount_pct > Decimal::ZERO {
            let kept = Decimal::ONE_HUNDRED - self.owner_discount_pct;
            let payable = Money::round_fen(
                bill.total.yuan() * kept / Decimal::ONE_HUNDRED,
                OWNER_DISCOUNT_ROUNDING,
            );
            let discount = bill.total.yuan() - payable.yuan();
            if !discount.is_zero() {
                let (from, to) = bill.range();
                bill.lines.push(
                    Bill::line(
                        LineCode::OwnerDiscount,
                        format!("业主优惠{}%", self.owner_discount_pct.normalize()),
                        -discount,
                    )
                    .over(from, to),
                );
                bill.total = payable;
            }
        }
        Ok(bill)
    }

    /// The charges of a stay billed by its rates (no flat price), before caps, with the
    /// new-energy free minutes marked.
    fn stay_charges(&self, class: &ClassTariff, stay: &Stay) -> Vec<Charge> {
        let deduct_min = match self.free {
            FreePeriod::DeductFirst { minutes } => minutes,
            _ => 0,
        }
        .max(stay.extra_free_min);
        let start = stay.entered_at + Duration::minutes(i64::from(deduct_min));
        let mut charges = self.charges(
            class,
            stay.entered_at,
            start,
            stay.exited_at,
            stay.time_zone,
        );
        if stay.class == VehicleClass::NewEnergy && self.new_energy_free_min_per_day > 0 {
            mark_new_energy_free(
                &mut charges,
                self.new_energy_free_min_per_day,
                stay.time_zone,
            );
        }
        charges
    }

    /// For the filing check: the fee by the rates of `class` (caps applied, no whole-stay free
    /// period, flat price or owner discount — the check adds those itself) of every stay that
    /// enters when `stay` does and ends no later. One pair per charge of `stay`: the shortest
    /// duration in seconds of a stay that pays that charge, and the fee of every stay from that
    /// duration to the next pair's.
    ///
    /// Why this describes every shorter stay exactly: a shorter stay is cut into the same
    /// segments and walks the same steps, so its charges are the long stay's up to where it
    /// ends, except that its last unit may be cut short by the exit — and whether a cut unit is
    /// charged depends only on its length (the partial-unit rule). Caps are spent charge by
    /// charge in the same order, and new-energy free minutes are marked in the same order, so
    /// every charge but the last costs the same in both.
    pub(crate) fn fee_steps(&self, class: &ClassTariff, stay: &Stay) -> Vec<(i64, Money)> {
        let stay = &stay.in_whole_seconds();
        let charges = self.stay_charges(class, stay);
        let mut budgets = Budgets::new(class, stay);
        let mut fee = Money::ZERO;
        charges
            .iter()
            .map(|charge| {
                let nominal = match charge.new_energy_free {
                    true => Money::ZERO,
                    false => charge.price,
                };
                fee = fee + budgets.charge(charge, nominal);
                let from_s = (charge.from - stay.entered_at).num_seconds();
                let span_s = (charge.to - charge.from).num_seconds();
                let shortest_s = match (step_of(class, charge), &self.partial_unit) {
                    (Some(Step::Block { .. }), _) | (_, PartialUnit::RoundUp) => from_s + 1,
                    (_, PartialUnit::RoundDown) => from_s + span_s,
                    (_, PartialUnit::IgnoreUpTo { minutes }) => {
                        from_s + span_s.min(i64::from(*minutes) * 60 + 1)
                    }
                };
                (shortest_s, fee)
            })
            .collect()
    }

    /// The charges of billed time `[start, end)` of a stay entered at `entered_at`, before caps.
    pub(crate) fn charges(
        &self,
        class: &ClassTariff,
        entered_at: DateTime<Utc>,
        start: DateTime<Utc>,
        end: DateTime<Utc>,
        tz: Tz,
    ) -> Vec<Charge> {
        let mut charges = Vec::new();
        let mut clocks = [Clock::default(); 2];
        let mut t = start;
        let mut epoch = self.epoch(entered_at, t, tz);
        let mut night_no = 0_u32;
        let mut last_period = None;
        while t < end {
            let period = period_at(class.night.as_ref(), t, tz);
            if period == Period::Night && last_period != Some(Period::Night) {
                night_no += 1;
            }
            last_period = Some(period);
            let now_epoch = self.epoch(entered_at, t, tz);
            if now_epoch != epoch {
                epoch = now_epoch;
                clocks = [Clock::default(); 2];
            }
            let segment_end = end
                .min(next_period_boundary(class.night.as_ref(), t, tz))
                .min(self.next_restart(entered_at, t, tz));
            let (rate, clock) = match (period, &class.night) {
                (Period::Night, Some(night)) => (&night.rate, &mut clocks[1]),
                _ => (&class.day, &mut clocks[0]),
            };
            let window = (t - entered_at).num_seconds().div_euclid(DAY_S);
            let segment = Segment {
                from: t,
                to: segment_end,
                period,
                window,
                night_no,
            };
            self.walk(rate, clock, &segment, &mut charges);
            t = segment_end;
        }
        charges
    }

    /// Which "start over" window `t` is in.
    fn epoch(&self, entered_at: DateTime<Utc>, t: DateTime<Utc>, tz: Tz) -> i64 {
        match self.after_window {
            AfterWindow::StartsOver => (t - entered_at).num_seconds().div_euclid(DAY_S),
            AfterWindow::StartsOverEachCalendarDay => {
                t.with_timezone(&tz).date_naive().num_days_from_ce().into()
            }
            AfterWindow::ContinuesAtUnitPrice => 0,
        }
    }

    fn next_restart(&self, entered_at: DateTime<Utc>, t: DateTime<Utc>, tz: Tz) -> DateTime<Utc> {
        match self.after_window {
            AfterWindow::StartsOver => {
                entered_at
                    + Duration::seconds(
                        ((t - entered_at).num_seconds().div_euclid(DAY_S) + 1) * DAY_S,
                    )
            }
            AfterWindow::StartsOverEachCalendarDay => next_local_midnight(t, tz),
            AfterWindow::ContinuesAtUnitPrice => DateTime::<Utc>::MAX_UTC,
        }
    }

    /// Walks `rate` over the segment, appending charges.
    fn walk(&self, rate: &Rate, clock: &mut Clock, segment: &Segment, charges: &mut Vec<Charge>) {
        let Segment {
            from,
            to,
            period,
            window,
            night_no,
        } = *segment;
        let mut t = from;
        while t < to {
            let left_s = (to - t).num_seconds();
            let (index, step, step_end_s) = step_at(rate, clock.pos_s);
            let span_s = match step {
                Step::Block { price, .. } => {
                    let span_s = left_s.min(step_end_s - clock.pos_s);
                    if clock.last_block.is_none_or(|last| last < index) {
                        clock.last_block = Some(index);
                        charges.push(Charge {
                            from: t,
                            to: t + Duration::seconds(step_end_s - clock.pos_s).min(to - t),
                            period,
                            step: index,
                            window,
                            night_no,
                            price: *price,
                            new_energy_free: false,
                        });
                    }
                    span_s
                }
                Step::Units {
                    unit_min, price, ..
                } => {
                    let unit_s = i64::from(*unit_min) * 60;
                    let span_s = unit_s.min(left_s).min(step_end_s - clock.pos_s);
                    if self.charges_unit(span_s, unit_s) {
                        charges.push(Charge {
                            from: t,
                            to: t + Duration::seconds(span_s),
                            period,
                            step: index,
                            window,
                            night_no,
                            price: *price,
                            new_energy_free: false,
                        });
                    }
                    span_s
                }
            };
            t += Duration::seconds(span_s);
            clock.pos_s += span_s;
        }
    }

    fn charges_unit(&self, span_s: i64, unit_s: i64) -> bool {
        match self.partial_unit {
            PartialUnit::RoundUp => span_s > 0,
            PartialUnit::RoundDown => span_s == unit_s,
            PartialUnit::IgnoreUpTo { minutes } => {
                span_s == unit_s || span_s > i64::from(minutes) * 60
            }
        }
    }

    /// Applies caps and the new-energy benefit and writes the lines.
    fn itemise(
        &self,
        class: &ClassTariff,
        stay: &Stay,
        duration_s: i64,
        charges: &[Charge],
    ) -> Bill {
        let mut lines: Vec<BillLine> = self.free_line(stay).into_iter().collect();
        let mut budgets = Budgets::new(class, stay);
        let mut total = Money::ZERO;
        let mut new_energy_free = Decimal::ZERO;
        let mut new_energy_range = (None, None);
        let mut group_start = 0;
        for (i, charge) in charges.iter().enumerate() {
            let nominal = if charge.new_energy_free {
                Money::ZERO
            } else {
                charge.price
            };
            if charge.new_energy_free {
                new_energy_free += charge.price.yuan();
                new_energy_range = (new_energy_range.0.or(Some(charge.from)), Some(charge.to));
            }
            total = total + budgets.charge(charge, nominal);
            let group_ends = charges
                .get(i + 1)
                .is_none_or(|next| !same_group(charge, next));
            if group_ends {
                let group = &charges[group_start..=i];
                lines.push(BillLine {
                    code: match charge.step {
                        usize::MAX => LineCode::Flat,
                        _ if matches!(step_of(class, charge), Some(Step::Block { .. })) => {
                            LineCode::Block
                        }
                        _ => LineCode::Units,
                    },
                    description: describe(class, group, stay.time_zone),
                    from: Some(group[0].from),
                    to: Some(charge.to),
                    amount: group.iter().map(|c| c.price.yuan()).sum(),
                });
                group_start = i + 1;
            }
        }
        if !new_energy_free.is_zero() {
            lines.push(
                Bill::line(
                    LineCode::NewEnergyFree,
                    format!("新能源车每日前{}分钟免费", self.new_energy_free_min_per_day),
                    -new_energy_free,
                )
                .over(new_energy_range.0, new_energy_range.1),
            );
        }
        lines.extend(budgets.reduction_lines());
        Bill {
            duration_s,
            lines,
            total,
        }
    }

    /// The line of the free minutes deducted from the start, over the time they cover.
    fn free_line(&self, stay: &Stay) -> Option<BillLine> {
        let (minutes, description) = match self.free {
            FreePeriod::DeductFirst { minutes } => {
                let minutes = minutes.max(stay.extra_free_min);
                (minutes, format!("前{minutes}分钟免费"))
            }
            _ if stay.extra_free_min > 0 => (
                stay.extra_free_min,
                format!("业主前{}分钟免费", stay.extra_free_min),
            ),
            _ => return None,
        };
        let to = (stay.entered_at + Duration::minutes(i64::from(minutes))).min(stay.exited_at);
        Some(
            Bill::line(LineCode::FreePeriod, description, Decimal::ZERO)
                .over(Some(stay.entered_at), Some(to.max(stay.entered_at))),
        )
    }
}

/// The step of `rate` at clock position `pos_s`, and where it ends (in clock seconds).
fn step_at(rate: &Rate, pos_s: i64) -> (usize, &Step, i64) {
    let mut start_s = 0_i64;
    for (index, step) in rate.steps.iter().enumerate() {
        let end_s = match step {
            Step::Block { minutes, .. } => start_s + i64::from(*minutes) * 60,
            Step::Units {
                until_min: Some(until),
                ..
            } => i64::from(*until) * 60,
            Step::Units {
                until_min: None, ..
            } => i64::MAX,
        };
        if pos_s < end_s {
            return (index, step, end_s);
        }
        start_s = end_s;
    }
    // Validation guarantees the last step never ends; stay on it regardless.
    let last = rate.steps.len().saturating_sub(1);
    (last, &rate.steps[last], i64::MAX)
}

fn step_of<'a>(class: &'a ClassTariff, charge: &Charge) -> Option<&'a Step> {
    let rate = match (charge.period, &class.night) {
        (Period::Night, Some(night)) => &night.rate,
        _ => &class.day,
    };
    rate.steps.get(charge.step)
}

fn same_group(a: &Charge, b: &Charge) -> bool {
    a.period == b.period
        && a.step == b.step
        && a.window == b.window
        && a.price == b.price
        && a.to == b.from
        && a.new_energy_free == b.new_energy_free
        && a.step != usize::MAX
}

fn describe(class: &ClassTariff, group: &[Charge], tz: Tz) -> String {
    let (Some(first), Some(last)) = (group.first(), group.last()) else {
        return String::new();
    };
    let (from, to) = (first.from.with_timezone(&tz), last.to.with_timezone(&tz));
    let to = if to.date_naive() == from.date_naive() {
        to.format("%H:%M")
    } else {
        to.format("%m-%d %H:%M")
    };
    let from = from.format("%m-%d %H:%M");
    let period = match first.period {
        Period::Day if class.night.is_some() => "白天 ",
        Period::Day => "",
        Period::Night => "夜间 ",
    };
    let free = if first.new_energy_free {
        "（新能源免费）"
    } else {
        ""
    };
    match step_of(class, first) {
        _ if first.step == usize::MAX => format!("{from}–{to} 短时停车 ¥{}", first.price),
        Some(Step::Block { price, .. }) => {
            let rate = match (first.period, &class.night) {
                (Period::Night, Some(night)) => &night.rate,
                _ => &class.day,
            };
            let step = crate::words::step_span(rate, first.step);
            format!("{period}{from}–{to} {step} ¥{price}{free}")
        }
        Some(Step::Units {
            unit_min, price, ..
        }) => {
            format!(
                "{period}{from}–{to} {}×{unit_min}分钟×¥{price}{free}",
                group.len()
            )
        }
        None => String::new(),
    }
}

fn in_night(night: &Night, t: DateTime<Utc>, tz: Tz) -> bool {
    let time = t.with_timezone(&tz).time();
    let (start, end) = (night.start.0, night.end.0);
    if start < end {
        start <= time && time < end
    } else {
        time >= start || time < end
    }
}

fn period_at(night: Option<&Night>, t: DateTime<Utc>, tz: Tz) -> Period {
    match night {
        Some(night) if in_night(night, t, tz) => Period::Night,
        _ => Period::Day,
    }
}

/// The first instant after `t` at which the local time is `clock` (skipping a time that a
/// DST change makes not exist).
fn next_local(clock: chrono::NaiveTime, t: DateTime<Utc>, tz: Tz) -> DateTime<Utc> {
    let date = t.with_timezone(&tz).date_naive();
    (0..3)
        .filter_map(|d| date.checked_add_signed(Duration::days(d)))
        .filter_map(|d| tz.from_local_datetime(&d.and_time(clock)).earliest())
        .map(|local| local.with_timezone(&Utc))
        .find(|candidate| *candidate > t)
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
}

fn next_period_boundary(night: Option<&Night>, t: DateTime<Utc>, tz: Tz) -> DateTime<Utc> {
    match night {
        Some(night) => next_local(night.start.0, t, tz).min(next_local(night.end.0, t, tz)),
        None => DateTime::<Utc>::MAX_UTC,
    }
}

fn next_local_midnight(t: DateTime<Utc>, tz: Tz) -> DateTime<Utc> {
    next_local(chrono::NaiveTime::MIN, t, tz)
}

fn mark_new_energy_free(charges: &mut [Charge], free_min: u32, tz: Tz) {
    let mut used_s: HashMap<NaiveDate, i64> = HashMap::new();
    for charge in charges {
        let day = charge.from.with_timezone(&tz).date_naive();
        let used = used_s.entry(day).or_default();
        if *used < i64::from(free_min) * 60 {
            charge.new_energy_free = true;
            *used += (charge.to - charge.from).num_seconds();
        }
    }
}

/// A cap window: which cap, and which window of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Window {
    Night(u32),
    Rolling { cap: usize, index: i64 },
    Calendar { cap: usize, day: NaiveDate },
    MultiDay { cap: usize, index: i64 },
    Stay { cap: usize },
}

/// What every cap window may still charge, and how much each took off.
struct Budgets<'a> {
    class: &'a ClassTariff,
    stay: &'a Stay,
    /// Per cap (the night cap last): its current window and what that may still charge.
    /// Charges come in time order and a window once left is never entered again, so the
    /// current window is all there is to remember — no map, no allocation per charge.
    open: Vec<Option<(Window, Money)>>,
    /// The windows of the charge at hand: (slot in `open`, window, cap).
    scratch: Vec<(usize, Window, Money)>,
    reductions: Vec<(Window, Decimal)>,
    /// The billed time of each night (by night number − 1), for the night cap's line.
    nights: Vec<(DateTime<Utc>, DateTime<Utc>)>,
}

impl<'a> Budgets<'a> {
    fn new(class: &'a ClassTariff, stay: &'a Stay) -> Budgets<'a> {
        Budgets {
            class,
            stay,
            open: vec![None; class.caps.len() + 1],
            scratch: Vec::with_capacity(class.caps.len() + 1),
            reductions: Vec::new(),
            nights: Vec::new(),
        }
    }

    /// The windows containing `charge`, with their caps, into `windows`.
    fn windows(&self, charge: &Charge, windows: &mut Vec<(usize, Window, Money)>) {
        windows.clear();
        if let (Period::Night, Some(Night { cap: Some(cap), .. })) =
            (charge.period, &self.class.night)
        {
            windows.push((self.class.caps.len(), Window::Night(charge.night_no), *cap));
        }
        let since_entry_s = (charge.from - self.stay.entered_at).num_seconds().max(0);
        for (i, cap) in self.class.caps.iter().enumerate() {
            let (window, amount) = match cap {
                Cap::Rolling24h { amount, later } => {
                    let index = since_entry_s / DAY_S;
                    (
                        Window::Rolling { cap: i, index },
                        Cap::rolling_amount(*amount, later, index),
                    )
                }
                Cap::CalendarDay { amount } => {
                    let day = charge.from.with_timezone(&self.stay.time_zone).date_naive();
                    (Window::Calendar { cap: i, day }, *amount)
                }
                Cap::MultiDay { days, amount } => (
                    Window::MultiDay {
                        cap: i,
                        index: since_entry_s / (i64::from(*days) * DAY_S),
                    },
                    *amount,
                ),
                Cap::PerStay { amount } => (Window::Stay { cap: i }, *amount),
            };
            windows.push((i, window, amount));
        }
    }

    /// What `window` (in `slot`) may still charge.
    fn left(&self, slot: usize, window: &Window, cap: Money) -> Money {
        match self.open.get(slot) {
            Some(Some((open, left))) if open == window => *left,
            _ => cap,
        }
    }

    /// Charges at most `nominal`, as far as every window allows; returns what was charged.
    fn charge(&mut self, charge: &Charge, nominal: Money) -> Money {
        if charge.period == Period::Night {
            let index = usize::try_from(charge.night_no.saturating_sub(1)).unwrap_or(usize::MAX);
            match self.nights.get_mut(index) {
                Some(night) => night.1 = charge.to,
                None => self.nights.push((charge.from, charge.to)),
            }
        }
        let mut windows = std::mem::take(&mut self.scratch);
        self.windows(charge, &mut windows);
        let mut charged = nominal;
        let mut binding = None;
        for (slot, window, cap) in &windows {
            let left = self.left(*slot, window, *cap);
            if left < charged {
                charged = left;
                binding = Some(*window);
            }
        }
        for (slot, window, cap) in &windows {
            let left = self.left(*slot, window, *cap).saturating_sub(charged);
            if let Some(open) = self.open.get_mut(*slot) {
                *open = Some((*window, left));
            }
        }
        self.scratch = windows;
        if let Some(window) = binding {
            let cut = nominal.yuan() - charged.yuan();
            match self.reductions.iter_mut().find(|(w, _)| *w == window) {
                Some((_, total)) => *total += cut,
                None => self.reductions.push((window, cut)),
            }
        }
        charged
    }

    fn reduction_lines(&self) -> Vec<BillLine> {
        self.reductions
            .iter()
            .filter(|(_, cut)| !cut.is_zero())
            .map(|(window, cut)| {
                let (code, description) = match window {
                    Window::Night(n) => (LineCode::NightCap, format!("第{n}晚夜间封顶")),
                    Window::Rolling { index, .. } => {
                        (LineCode::Cap24h, format!("第{}个24小时封顶", index + 1))
                    }
                    Window::Calendar { day, .. } => (
                        LineCode::CapCalendarDay,
                        format!("{}当日封顶", day.format("%m-%d")),
                    ),
                    Window::MultiDay { index, .. } => (
                        LineCode::CapMultiDay,
                        format!("第{}个{}天封顶", index + 1, self.multi_days(window)),
                    ),
                    Window::Stay { .. } => (LineCode::CapStay, "单次停车封顶".to_owned()),
                };
                let (from, to) = self.range(window);
                Bill::line(code, description, -*cut).over(Some(from), Some(to))
            })
            .collect()
    }

    fn multi_days(&self, window: &Window) -> u32 {
        match window {
            Window::MultiDay { cap, .. } => match self.class.caps.get(*cap) {
                Some(Cap::MultiDay { days, .. }) => *days,
                _ => 1,
            },
            _ => 1,
        }
    }

    /// The time a cap window covers within the stay: its 24 hours, calendar day or days, the
    /// whole stay, or the billed time of its night.
    fn range(&self, window: &Window) -> (DateTime<Utc>, DateTime<Utc>) {
        let (entered, exited) = (self.stay.entered_at, self.stay.exited_at);
        let from_entry = |index: i64, days: i64| {
            let from = entered + Duration::seconds(index * days * DAY_S);
            (from, (from + Duration::seconds(days * DAY_S)).min(exited))
        };
        match window {
            Window::Night(n) => {
                let index = usize::try_from(n.saturating_sub(1)).unwrap_or(usize::MAX);
                self.nights.get(index).copied().unwrap_or((entered, exited))
            }
            Window::Rolling { index, .. } => from_entry(*index, 1),
            Window::MultiDay { index, .. } => {
                from_entry(*index, i64::from(self.multi_days(window)))
            }
            Window::Calendar { day, .. } => {
                let tz = self.stay.time_zone;
                let midnight = tz
                    .from_local_datetime(&day.and_time(chrono::NaiveTime::MIN))
                    .earliest()
                    .map_or(entered, |t| t.with_timezone(&Utc));
                (
                    midnight.max(entered),
                    next_local_midnight(midnight, tz).min(exited),
                )
            }
            Window::Stay { .. } => (entered, exited),
        }
    }
}
