//! Rentals (月租), the pure rules: a term of whole calendar months, its price at the lot's filed
//! monthly price (the owner discount taken off, never above the filed price), the refund of the
//! unused whole days when a rental ends early, and the owners-first waiting list — who may rent
//! a kind of space while owners wait for one, and in which order they are served.

use chrono::{Months, NaiveDate};
use parkshare_domain::money::Money;
use rust_decimal::{Decimal, RoundingStrategy};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// The longest term one payment buys: a year. Longer prepayments outlive a filed tariff and
/// are refunds waiting to happen.
pub const TERM_MONTHS_MAX: u32 = 12;

/// The named rounding point of the owner discount: the discounted monthly price is rounded
/// down to the fen, so a renter never pays a fraction above the discounted (and so never above
/// the filed) price.
pub const DISCOUNT_ROUNDING: RoundingStrategy = RoundingStrategy::ToZero;

/// The named rounding point of an early end's refund: the unused days' share of what was paid,
/// rounded down to the fen, so the ledger never gives back a fraction of a fen it did not
/// receive.
pub const REFUND_ROUNDING: RoundingStrategy = RoundingStrategy::ToZero;

/// The days a rental term covers, both ends included.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Term {
    pub starts_on: NaiveDate,
    pub ends_on: NaiveDate,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TermError {
    #[error("a term lasts 1 to {TERM_MONTHS_MAX} whole months")]
    Months,
    #[error("the term's dates are out of range")]
    OutOfRange,
}

impl Term {
    /// `months` whole calendar months from `starts_on`: 15 January for one month runs to
    /// 14 February (the day before the same day of the next month; a month-end start runs to
    /// the day before the next month's last day of that number, as chrono adds months).
    pub fn of_months(starts_on: NaiveDate, months: u32) -> Result<Term, TermError> {
        if !(1..=TERM_MONTHS_MAX).contains(&months) {
            return Err(TermError::Months);
        }
        let end_exclusive = starts_on
            .checked_add_months(Months::new(months))
            .ok_or(TermError::OutOfRange)?;
        let ends_on = end_exclusive.pred_opt().ok_or(TermError::OutOfRange)?;
        Ok(Term { starts_on, ends_on })
    }

    /// The term after this one, of `months`, starting the day after it ends (a renewal).
    pub fn next(&self, months: u32) -> Result<Term, TermError> {
        let starts_on = self.ends_on.succ_opt().ok_or(TermError::OutOfRange)?;
        Term::of_months(starts_on, months)
    }

    pub fn days(&self) -> i64 {
        (self.ends_on - self.starts_on).num_days() + 1
    }

    pub fn covers(&self, day: NaiveDate) -> bool {
        self.starts_on <= day && day <= self.ends_on
    }
}

/// The price of `months` at `monthly` (the filed monthly price of the vehicle class), with
/// the owner discount in percent taken off each month for an owner's car.
pub fn price(monthly: Money, months: u32, owner_discount_pct: Option<Decimal>) -> Money {
    let per_month = match owner_discount_pct {
        Some(pct) if pct > Decimal::ZERO && pct <= Decimal::ONE_HUNDRED => Money::round_fen(
            monthly.yuan() * (Decimal::ONE_HUNDRED - pct) / Decimal::ONE_HUNDRED,
            DISCOUNT_ROUNDING,
        ),
        _ => monthly,
    };
    per_month.times(months)
}

/// What an early end gives back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct EarlyEnd {
    /// Whole days of the term after its last day of use.
    pub unused_days: i64,
    pub refund: Money,
}

/// Ending `term`, for which `paid` was received, after `last_day` (the last day the renter may
/// still use it): the whole days after it are refunded at their share of what was paid. A last
/// day before the term starts refunds everything; one on or after its end, nothing.
pub fn early_end(term: Term, paid: Money, last_day: NaiveDate) -> EarlyEnd {
    let days = term.days();
    let unused_days = (term.ends_on - last_day).num_days().clamp(0, days);
    let refund = if unused_days == days {
        paid
    } else {
        Money::round_fen(
            paid.yuan() * Decimal::from(unused_days) / Decimal::from(days),
            REFUND_ROUNDING,
        )
    };
    EarlyEnd {
        unused_days,
        refund,
    }
}

/// The order in which owners waiting for a kind of space are served; chosen per compound.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum WaitingOrder {
    /// First come, first served.
    #[default]
    FirstCome,
    /// Households without any space (owned or rented) first, then first come.
    WithoutSpaceFirst,
    /// Households with fewer spaces first — one space per household before a second — then
    /// first come.
    FewestSpacesFirst,
}

impl WaitingOrder {
    pub fn parse(text: &str) -> Option<WaitingOrder> {
        match text {
            "first_come" => Some(WaitingOrder::FirstCome),
            "without_space_first" => Some(WaitingOrder::WithoutSpaceFirst),
            "fewest_spaces_first" => Some(WaitingOrder::FewestSpacesFirst),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            WaitingOrder::FirstCome => "first_come",
            WaitingOrder::WithoutSpaceFirst => "without_space_first",
            WaitingOrder::FewestSpacesFirst => "fewest_spaces_first",
        }
    }
}

/// An owner waiting for a kind of space.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Waiting {
    pub entry_id: Uuid,
    pub owner_id: Uuid,
    /// When they joined the list; ties broken by `entry_id`.
    pub joined_at: chrono::DateTime<chrono::Utc>,
    /// Spaces the household holds now: owned, and rented (paid, in force).
    pub spaces_held: u32,
}

/// `waiting` in the order they are served.
pub fn ordered(mut waiting: Vec<Waiting>, order: WaitingOrder) -> Vec<Waiting> {
    waiting.sort_by(|a, b| {
        let rank = |w: &Waiting| match order {
            WaitingOrder::FirstCome => 0,
            WaitingOrder::WithoutSpaceFirst => u32::from(w.spaces_held > 0),
            WaitingOrder::FewestSpacesFirst => w.spaces_held,
        };
        (rank(a), a.joined_at, a.entry_id).cmp(&(rank(b), b.joined_at, b.entry_id))
    });
    waiting
}

/// Who applies for a rental.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applicant {
    /// An owner (a household) of the compound.
    Owner(Uuid),
    /// Anyone else: a tenant of a flat, a neighbour, a business.
    NonOwner,
}

/// Why a rental is refused under owners first.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// A non-owner asked while owners wait for this kind of space.
    #[error(
        "{waiting} owner(s) of the compound wait for this kind of space; owners are served first"
    )]
    OwnersWaiting { waiting: usize },
    /// An owner asked while other owners are ahead of them on the waiting list.
    #[error("{ahead} owner(s) are ahead on the waiting list for this kind of space")]
    OwnersAhead { ahead: usize },
}

/// Whether `applicant` may rent a kind of space for which `waiting` (in any order) wait: a
/// non-owner only when no owner waits; an owner only when nobody is ahead of them in `order`
/// (an owner not on the list is behind everyone on it).
pub fn may_rent(
    applicant: Applicant,
    waiting: Vec<Waiting>,
    order: WaitingOrder,
) -> Result<(), Refusal> {
    match applicant {
        Applicant::NonOwner if waiting.is_empty() => Ok(()),
        Applicant::NonOwner => Err(Refusal::OwnersWaiting {
            waiting: waiting.len(),
        }),
        Applicant::Owner(owner_id) => {
            let queue = ordered(waiting, order);
            let ahead = queue
                .iter()
                .position(|w| w.owner_id == owner_id)
                .unwrap_or(queue.len());
            match ahead {
                0 => Ok(()),
                ahead => Err(Refusal::OwnersAhead { ahead }),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{TimeZone, Utc};
    use proptest::prelude::*;
    use rust_decimal::dec;

    fn day(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap_or_default()
    }

    #[test]
    fn a_term_is_whole_calendar_months() {
        let term = Term::of_months(day(2026, 1, 15), 1).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(term.ends_on, day(2026, 2, 14));
        assert_eq!(term.days(), 31);
        let year = Term::of_months(day(2026, 12, 1), 12).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(year.ends_on, day(2027, 11, 30));
        let next = year.next(1).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            (next.starts_on, next.ends_on),
            (day(2027, 12, 1), day(2027, 12, 31))
        );
        assert_eq!(Term::of_months(day(2026, 1, 1), 0), Err(TermError::Months));
        assert_eq!(Term::of_months(day(2026, 1, 1), 13), Err(TermError::Months));
    }

    #[test]
    fn the_owner_discount_rounds_down_and_never_raises_the_price() {
        let monthly = Money::from_fen(15_000);
        assert_eq!(price(monthly, 3, None), Money::from_fen(45_000));
        // 150 × 0.67 = 100.50 exactly; 99.99 × 0.9 = 89.991 → 89.99.
        assert_eq!(price(monthly, 1, Some(dec!(33))), Money::from_fen(10_050));
        assert_eq!(
            price(Money::from_fen(9_999), 2, Some(dec!(10))),
            Money::from_fen(17_998)
        );
        assert_eq!(price(monthly, 1, Some(dec!(0))), monthly);
    }

    #[test]
    fn an_early_end_refunds_the_unused_whole_days() {
        let term = Term::of_months(day(2026, 12, 1), 1).unwrap_or_else(|e| panic!("{e}"));
        let paid = Money::from_fen(15_000);
        // Used 1–10 December: 21 of 31 days unused; 150 × 21 / 31 = 101.6129… → 101.61.
        let end = early_end(term, paid, day(2026, 12, 10));
        assert_eq!(end.unused_days, 21);
        assert_eq!(end.refund, Money::from_fen(10_161));
        assert_eq!(early_end(term, paid, day(2026, 11, 30)).refund, paid);
        assert_eq!(early_end(term, paid, day(2026, 12, 31)).refund, Money::ZERO);
    }

    fn waiting(n: u128, joined_min: i64, spaces_held: u32) -> Waiting {
        Waiting {
            entry_id: Uuid::from_u128(n),
            owner_id: Uuid::from_u128(1000 + n),
            joined_at: Utc
                .timestamp_opt(1_800_000_000 + joined_min * 60, 0)
                .single()
                .unwrap_or_default(),
            spaces_held,
        }
    }

    #[test]
    fn owners_are_served_in_the_compounds_order() {
        let list = vec![
            waiting(1, 0, 1),
            waiting(2, 5, 0),
            waiting(3, 10, 2),
            waiting(4, 20, 1),
        ];
        let ids = |order| -> Vec<u128> {
            ordered(list.clone(), order)
                .iter()
                .map(|w| w.entry_id.as_u128())
                .collect()
        };
        assert_eq!(ids(WaitingOrder::FirstCome), [1, 2, 3, 4]);
        assert_eq!(ids(WaitingOrder::WithoutSpaceFirst), [2, 1, 3, 4]);
        assert_eq!(ids(WaitingOrder::FewestSpacesFirst), [2, 1, 4, 3]);
    }

    #[test]
    fn non_owners_wait_for_every_owner_and_owners_for_those_ahead() {
        let list = vec![waiting(1, 0, 1), waiting(2, 5, 0)];
        assert_eq!(
            may_rent(Applicant::NonOwner, list.clone(), WaitingOrder::FirstCome),
            Err(Refusal::OwnersWaiting { waiting: 2 })
        );
        assert_eq!(
            may_rent(Applicant::NonOwner, vec![], WaitingOrder::FirstCome),
            Ok(())
        );
        let second = Applicant::Owner(Uuid::from_u128(1002));
        assert_eq!(
            may_rent(second, list.clone(), WaitingOrder::FirstCome),
            Err(Refusal::OwnersAhead { ahead: 1 })
        );
        assert_eq!(
            may_rent(second, list.clone(), WaitingOrder::WithoutSpaceFirst),
            Ok(())
        );
        let stranger = Applicant::Owner(Uuid::from_u128(77));
        assert_eq!(
            may_rent(stranger, list, WaitingOrder::FirstCome),
            Err(Refusal::OwnersAhead { ahead: 2 })
        );
    }

    proptest! {
        /// Whatever the day of ending, the refund is whole fen, never more than was paid, and
        /// the days kept and refunded together make the term.
        #[test]
        fn an_early_end_never_refunds_more_than_was_paid(
            start in 0i64..3000, months in 1u32..=12, fen in 1i64..10_000_000, offset in -40i64..400,
        ) {
            let starts_on = day(2024, 1, 1) + chrono::Duration::days(start);
            let term = Term::of_months(starts_on, months).unwrap_or_else(|e| panic!("{e}"));
            let paid = Money::from_fen(fen);
            let end = early_end(term, paid, starts_on + chrono::Duration::days(offset));
            prop_assert!(end.refund <= paid);
            prop_assert!(end.unused_days >= 0 && end.unused_days <= term.days());
            prop_assert_eq!(end.refund.yuan().round_dp(2), end.refund.yuan());
            prop_assert_eq!(end.refund.is_zero() && fen >= term.days(), end.unused_days == 0);
        }
    }
}
