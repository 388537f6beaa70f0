//! Closing a compound's accounting period (rules 6 and 9): the common revenue the period
//! brought is moved out of the common-revenue account — at least the policy's share into the
//! maintenance fund, the rest credited to the owners in proportion to their exclusive floor
//! area — as one balanced entry.
//!
//! Two named roundings: the fund's share is rounded **up** to the fen ([`FUND_ROUNDING`]) so
//! that it is never below the policy's "at least"; the owners' shares are the largest-remainder
//! split of what is left ([`crate::allocate`]), so they add up to it exactly.

use parkshare_domain::money::Money;
use rust_decimal::{Decimal, RoundingStrategy};
use serde::Serialize;
use uuid::Uuid;

use crate::account::{Account, AccountKind};
use crate::allocate::allocate;
use crate::entry::{Entry, EntryError, Posting};

pub const FUND_ROUNDING: RoundingStrategy = RoundingStrategy::AwayFromZero;

/// An owner's claim on common revenue: their exclusive floor area.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Share {
    pub owner_id: Uuid,
    pub floor_area_m2: Decimal,
}

/// How a period's common revenue is split.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CloseSplit {
    pub amount: Money,
    pub to_maintenance_fund: Money,
    /// `(owner, credited)`, in the order the shares were given; owners whose share rounds to
    /// nothing are listed with zero.
    pub to_owners: Vec<(Uuid, Money)>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CloseError {
    #[error("maintenance_fund_pct must be between 0 and 100")]
    Percent,
    #[error(transparent)]
    Entry(#[from] EntryError),
}

/// Splits `amount` of common revenue by `fund_pct` and the owners' floor areas. With no owner
/// (or no floor area) everything goes to the fund.
pub fn split(amount: Money, fund_pct: Decimal, owners: &[Share]) -> Result<CloseSplit, CloseError> {
    if fund_pct < Decimal::ZERO || fund_pct > Decimal::ONE_HUNDRED {
        return Err(CloseError::Percent);
    }
    let fund =
        (amount.yuan() * fund_pct / Decimal::ONE_HUNDRED).round_dp_with_strategy(2, FUND_ROUNDING);
    // A share of a total is a total: not bounded like one amount (a fund share over ¥10
    // million once fell back to the whole amount).
    let fund = Money::total(fund.min(amount.yuan())).unwrap_or(amount);
    let rest = amount.saturating_sub(fund);
    let areas: Vec<Decimal> = owners.iter().map(|o| o.floor_area_m2).collect();
    match allocate(rest, &areas) {
        Ok(shares) => Ok(CloseSplit {
            amount,
            to_maintenance_fund: fund,
            to_owners: owners.iter().map(|o| o.owner_id).zip(shares).collect(),
        }),
        // Nobody to credit: the whole goes to the fund.
        Err(_) => Ok(CloseSplit {
            amount,
            to_maintenance_fund: amount,
            to_owners: owners.iter().map(|o| (o.owner_id, Money::ZERO)).collect(),
        }),
    }
}

/// The balanced entry of a close: the common-revenue account of `compound_id` is debited the
/// whole amount. `None` when there is nothing to close (a zero amount).
pub fn close_entry(compound_id: Uuid, split: &CloseSplit) -> Result<Option<Entry>, CloseError> {
    if split.amount.is_zero() {
        return Ok(None);
    }
    let mut postings = vec![
        Posting {
            account: Account::new(AccountKind::CommonRevenue, compound_id),
            amount: split.amount.yuan(),
        },
        Posting {
            account: Account::new(AccountKind::MaintenanceFund, compound_id),
            amount: -split.to_maintenance_fund.yuan(),
        },
    ];
    postings.extend(split.to_owners.iter().map(|(owner_id, share)| Posting {
        account: Account::new(AccountKind::OwnerPayable, *owner_id),
        amount: -share.yuan(),
    }));
    Ok(Some(Entry::new(postings)?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal::dec;

    fn owner(n: u128, area: Decimal) -> Share {
        Share {
            owner_id: Uuid::from_u128(n),
            floor_area_m2: area,
        }
    }

    #[test]
    fn the_fund_gets_at_least_its_share_and_owners_split_the_rest_by_area() {
        let owners = [
            owner(1, dec!(89.50)),
            owner(2, dec!(120.00)),
            owner(3, dec!(60.25)),
        ];
        let s =
            split(Money::from_fen(100_001), dec!(50), &owners).unwrap_or_else(|e| panic!("{e}"));
        // 50 % of 1000.01 is 500.005: the fund gets 500.01.
        assert_eq!(s.to_maintenance_fund, Money::from_fen(50_001));
        let owners_total: Money = s.to_owners.iter().map(|(_, m)| *m).sum();
        assert_eq!(owners_total, Money::from_fen(50_000));
        assert!(s.to_owners[1].1 > s.to_owners[0].1 && s.to_owners[0].1 > s.to_owners[2].1);
        // Past ¥10 million the split is still exact: ¥12 million at 50 % to the fund.
        let big = split(Money::from_fen(1_200_000_000), dec!(50), &owners)
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(big.to_maintenance_fund, Money::from_fen(600_000_000));
        let owners_total: Money = big.to_owners.iter().map(|(_, m)| *m).sum();
        assert_eq!(owners_total, Money::from_fen(600_000_000));
        let entry = close_entry(Uuid::from_u128(9), &s).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(entry.map(|e| e.postings().len()), Some(5));
    }

    #[test]
    fn with_nobody_to_credit_the_whole_tops_up_the_fund() {
        let s = split(Money::from_fen(999), dec!(30), &[]).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(s.to_maintenance_fund, Money::from_fen(999));
        assert_eq!(
            close_entry(
                Uuid::nil(),
                &split(Money::ZERO, dec!(30), &[]).unwrap_or_else(|e| panic!("{e}"))
            ),
            Ok(None)
        );
    }
}
