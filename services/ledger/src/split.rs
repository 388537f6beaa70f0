//! One payment becomes one balanced entry, split by whose space earned it; a refund reverses
//! a share of it. Nothing here is ever updated: a refund is a new entry.

use parkshare_domain::money::Money;
use rust_decimal::{Decimal, RoundingStrategy};
use uuid::Uuid;

use crate::account::{Account, AccountKind};
use crate::allocate::allocate;
use crate::entry::{Entry, EntryError, Posting};
use crate::policy::{PoolLand, RevenuePolicy, SpaceUse, UnsoldBeneficiary};

/// The named rounding point of a percentage share (platform fee, management share): rounded
/// down to the fen, so the party whose income it is taken from never loses a fraction to it.
pub const SHARE_ROUNDING: RoundingStrategy = RoundingStrategy::ToZero;

/// Where the driver's money arrived.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// At a payment provider, to be settled to the property firm.
    Provider,
    /// In cash at a staffed booth of the compound.
    Cash,
}

/// Who the accounts of a payment belong to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Parties {
    pub tenant_id: Uuid,
    pub compound_id: Uuid,
}

impl Parties {
    pub fn source(&self, source: Source) -> Account {
        match source {
            Source::Provider => Account::new(AccountKind::ProviderClearing, self.tenant_id),
            Source::Cash => Account::new(AccountKind::CashOnHand, self.compound_id),
        }
    }

    /// The account of `kind` held by the compound or the firm (not for owner accounts).
    pub fn account(&self, kind: AccountKind) -> Account {
        let holder = match kind.holder() {
            "compound" => self.compound_id,
            _ => self.tenant_id,
        };
        Account::new(kind, holder)
    }
}

fn share(amount: Money, pct: Decimal) -> Money {
    Money::round_fen(amount.yuan() * pct / Decimal::ONE_HUNDRED, SHARE_ROUNDING)
}

/// The entry for `amount` paid by a driver for a stay on `space`.
pub fn payment_entry(
    amount: Money,
    source: Source,
    space: SpaceUse,
    policy: &RevenuePolicy,
    parties: Parties,
) -> Result<Entry, EntryError> {
    let debit = Posting {
        account: parties.source(source),
        amount: amount.yuan(),
    };
    let on_common_land = match space {
        SpaceUse::Common => true,
        SpaceUse::VisitorPool => policy.visitor_pool_land == PoolLand::Common,
        SpaceUse::SharedPrivate { .. } | SpaceUse::DeveloperUnsold => false,
    };
    // The beneficiary, and the percentage share taken from it for someone else.
    let (beneficiary, taken) = match space {
        SpaceUse::SharedPrivate { owner_id } => (
            Account::new(AccountKind::OwnerPayable, owner_id),
            Some((policy.platform_fee_pct, AccountKind::PlatformFeeIncome)),
        ),
        _ if on_common_land => (
            parties.account(AccountKind::CommonRevenue),
            Some((policy.management_share_pct, AccountKind::ManagementIncome)),
        ),
        _ => match policy.unsold_to {
            UnsoldBeneficiary::Developer => (parties.account(AccountKind::DeveloperPayable), None),
            UnsoldBeneficiary::PropertyFirm => {
                (parties.account(AccountKind::FranchiseIncome), None)
            }
        },
    };
    let kept = taken.map_or(Money::ZERO, |(pct, _)| share(amount, pct));
    let mut postings = vec![
        debit,
        Posting {
            account: beneficiary,
            amount: -(amount.yuan() - kept.yuan()),
        },
    ];
    if let Some((_, kind)) = taken {
        postings.push(Posting {
            account: parties.account(kind),
            amount: -kept.yuan(),
        });
    }
    Entry::new(postings)
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RefundError {
    #[error("a refund must be positive")]
    NotPositive,
    #[error("refunds would come to {would_be}, more than the {paid} paid")]
    MoreThanPaid { paid: Money, would_be: Money },
    #[error("the payment's entry credits nobody")]
    NothingCredited,
    #[error(transparent)]
    Entry(#[from] EntryError),
}

/// The entry refunding `refund` of a payment whose entry was `paid_entry`, after `already`
/// was refunded. Each credited account gives back its share in proportion to what it got;
/// shares are computed on the cumulative refund, so refunding everything in any number of
/// steps reverses the payment exactly, fen for fen.
pub fn refund_entry(
    paid_entry: &Entry,
    source: Account,
    already: Money,
    refund: Money,
) -> Result<Entry, RefundError> {
    if refund.is_zero() {
        return Err(RefundError::NotPositive);
    }
    let paid = Money::parse(paid_entry.amount_to(&source)).unwrap_or(Money::ZERO);
    let would_be = already + refund;
    if would_be > paid {
        return Err(RefundError::MoreThanPaid { paid, would_be });
    }
    let credited: Vec<&Posting> = paid_entry
        .postings()
        .iter()
        .filter(|p| p.amount.is_sign_negative())
        .collect();
    let weights: Vec<Decimal> = credited.iter().map(|p| -p.amount).collect();
    let before = allocate(already, &weights).map_err(|_| RefundError::NothingCredited)?;
    let after = allocate(would_be, &weights).map_err(|_| RefundError::NothingCredited)?;
    let mut postings = vec![Posting {
        account: source,
        amount: -refund.yuan(),
    }];
    for ((p, b), a) in credited.iter().zip(before).zip(after) {
        postings.push(Posting {
            account: p.account,
            amount: a.yuan() - b.yuan(),
        });
    }
    Ok(Entry::new(postings)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal::dec;

    fn parties() -> Parties {
        Parties {
            tenant_id: Uuid::from_u128(1),
            compound_id: Uuid::from_u128(2),
        }
    }

    fn amounts(entry: &Entry) -> Vec<(AccountKind, Decimal)> {
        entry
            .postings()
            .iter()
            .map(|p| (p.account.kind, p.amount))
            .collect()
    }

    #[test]
    fn a_shared_private_space_credits_its_owner_less_the_platform_fee() {
        let owner_id = Uuid::from_u128(9);
        let e = payment_entry(
            Money::from_fen(999),
            Source::Provider,
            SpaceUse::SharedPrivate { owner_id },
            &RevenuePolicy::default(),
            parties(),
        );
        // 10 % of 9.99 is 0.999: the fee is rounded down to 0.99, the owner gets 9.00.
        let e = e.unwrap_or_else(|err| panic!("{err}"));
        assert_eq!(
            e.amount_to(&Account::new(AccountKind::OwnerPayable, owner_id)),
            dec!(-9.00)
        );
        assert_eq!(
            e.amount_to(&parties().account(AccountKind::PlatformFeeIncome)),
            dec!(-0.99)
        );
        assert_eq!(e.amount_to(&parties().source(Source::Provider)), dec!(9.99));
    }

    #[test]
    fn common_revenue_keeps_the_firms_share_as_a_separate_posting() {
        let policy = RevenuePolicy {
            management_share_pct: dec!(20),
            ..RevenuePolicy::default()
        };
        let e = payment_entry(
            Money::from_fen(1500),
            Source::Cash,
            SpaceUse::VisitorPool,
            &policy,
            parties(),
        )
        .unwrap_or_else(|err| panic!("{err}"));
        let mut got = amounts(&e);
        got.sort();
        assert_eq!(
            got,
            vec![
                (AccountKind::CashOnHand, dec!(15.00)),
                (AccountKind::CommonRevenue, dec!(-12.00)),
                (AccountKind::ManagementIncome, dec!(-3.00)),
            ]
        );
    }

    #[test]
    fn unsold_spaces_credit_the_developer_or_the_franchised_firm() {
        let e = payment_entry(
            Money::from_fen(500),
            Source::Provider,
            SpaceUse::DeveloperUnsold,
            &RevenuePolicy::default(),
            parties(),
        )
        .unwrap_or_else(|err| panic!("{err}"));
        assert_eq!(
            e.amount_to(&Account::new(
                AccountKind::DeveloperPayable,
                parties().compound_id
            )),
            dec!(-5.00)
        );
        let policy = RevenuePolicy {
            unsold_to: UnsoldBeneficiary::PropertyFirm,
            visitor_pool_land: PoolLand::Developer,
            ..RevenuePolicy::default()
        };
        let e = payment_entry(
            Money::from_fen(500),
            Source::Provider,
            SpaceUse::VisitorPool,
            &policy,
            parties(),
        )
        .unwrap_or_else(|err| panic!("{err}"));
        // The firm's own income, not a share of common revenue (issue 26's tester, F12).
        assert_eq!(
            e.amount_to(&Account::new(
                AccountKind::FranchiseIncome,
                parties().tenant_id
            )),
            dec!(-5.00)
        );
        assert_eq!(
            e.amount_to(&Account::new(
                AccountKind::ManagementIncome,
                parties().tenant_id
            )),
            dec!(0)
        );
    }

    #[test]
    fn refunds_in_steps_reverse_the_payment_exactly_and_never_more() {
        let owner_id = Uuid::from_u128(9);
        let source = parties().source(Source::Provider);
        let paid = payment_entry(
            Money::from_fen(1001),
            Source::Provider,
            SpaceUse::SharedPrivate { owner_id },
            &RevenuePolicy::default(),
            parties(),
        )
        .unwrap_or_else(|err| panic!("{err}"));
        let first = refund_entry(&paid, source, Money::ZERO, Money::from_fen(333))
            .unwrap_or_else(|e| panic!("{e}"));
        let second = refund_entry(&paid, source, Money::from_fen(333), Money::from_fen(668))
            .unwrap_or_else(|e| panic!("{e}"));
        for p in paid.postings() {
            assert_eq!(
                p.amount + first.amount_to(&p.account) + second.amount_to(&p.account),
                Decimal::ZERO,
                "{}",
                p.account
            );
        }
        assert_eq!(
            refund_entry(&paid, source, Money::from_fen(1001), Money::from_fen(1)),
            Err(RefundError::MoreThanPaid {
                paid: Money::from_fen(1001),
                would_be: Money::from_fen(1002)
            })
        );
    }
}
