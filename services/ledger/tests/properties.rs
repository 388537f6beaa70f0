//! Property tests over random payments, policies and refund sequences: every entry balances,
//! what drivers paid is exactly what was credited, and refunding in any steps never reverses
//! more than was paid and, refunded in full, leaves every account where it started.

use std::collections::BTreeMap;

use parkshare_domain::money::Money;
use parkshare_ledger::policy::{PoolLand, UnsoldBeneficiary};
use parkshare_ledger::{
    allocate, payment_entry, refund_entry, Account, Parties, RevenuePolicy, Source, SpaceUse,
};
use proptest::prelude::*;
use rust_decimal::Decimal;
use uuid::Uuid;

fn policy() -> impl Strategy<Value = RevenuePolicy> {
    (0_i64..=10_000, 0_i64..=10_000, any::<bool>(), any::<bool>()).prop_map(
        |(fee, share, dev, land)| RevenuePolicy {
            platform_fee_pct: Decimal::new(fee, 2),
            management_share_pct: Decimal::new(share, 2),
            unsold_to: if dev {
                UnsoldBeneficiary::Developer
            } else {
                UnsoldBeneficiary::PropertyFirm
            },
            visitor_pool_land: if land {
                PoolLand::Common
            } else {
                PoolLand::Developer
            },
            maintenance_fund_pct: Decimal::ONE_HUNDRED,
        },
    )
}

fn space() -> impl Strategy<Value = SpaceUse> {
    prop_oneof![
        (0_u128..5).prop_map(|n| SpaceUse::SharedPrivate {
            owner_id: Uuid::from_u128(100 + n)
        }),
        Just(SpaceUse::Common),
        Just(SpaceUse::VisitorPool),
        Just(SpaceUse::DeveloperUnsold),
    ]
}

const PARTIES: Parties = Parties {
    tenant_id: Uuid::from_u128(1),
    compound_id: Uuid::from_u128(2),
};

proptest! {
    #[test]
    fn payments_balance_and_credit_exactly_what_was_paid(
        payments in prop::collection::vec((1_i64..1_000_000, space(), any::<bool>()), 1..40),
        policy in policy(),
    ) {
        let mut balances: BTreeMap<Account, Decimal> = BTreeMap::new();
        let mut paid = Decimal::ZERO;
        for (fen, space, cash) in payments {
            let source = if cash { Source::Cash } else { Source::Provider };
            let entry = payment_entry(Money::from_fen(fen), source, space, &policy, PARTIES);
            let entry = entry.map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert_eq!(entry.postings().iter().map(|p| p.amount).sum::<Decimal>(), Decimal::ZERO);
            for p in entry.postings() {
                *balances.entry(p.account).or_default() += p.amount;
            }
            paid += Money::from_fen(fen).yuan();
        }
        let received: Decimal = balances.iter().filter(|(a, _)| a.holder == PARTIES.tenant_id && a.kind == parkshare_ledger::AccountKind::ProviderClearing
            || a.kind == parkshare_ledger::AccountKind::CashOnHand).map(|(_, b)| *b).sum();
        let credited: Decimal = balances.values().filter(|b| b.is_sign_negative()).map(|b| -*b).sum();
        prop_assert_eq!(received, paid);
        prop_assert_eq!(credited, paid);
    }

    #[test]
    fn refunds_never_exceed_the_payment_and_in_full_undo_it(
        fen in 1_i64..1_000_000,
        space in space(),
        policy in policy(),
        cuts in prop::collection::vec(1_u32..100, 1..6),
    ) {
        let source = PARTIES.source(Source::Provider);
        let paid = payment_entry(Money::from_fen(fen), Source::Provider, space, &policy, PARTIES)
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        // Cut the payment into refunds of random relative sizes, the last taking the rest.
        let total_cut: u32 = cuts.iter().sum();
        let mut refunded = 0_i64;
        let mut balances: BTreeMap<Account, Decimal> = paid.postings().iter().map(|p| (p.account, p.amount)).collect();
        for (i, cut) in cuts.iter().enumerate() {
            let step = if i + 1 == cuts.len() { fen - refunded } else { fen * i64::from(*cut) / i64::from(total_cut) };
            if step == 0 { continue; }
            let entry = refund_entry(&paid, source, Money::from_fen(refunded), Money::from_fen(step))
                .map_err(|e| TestCaseError::fail(e.to_string()))?;
            for p in entry.postings() {
                *balances.entry(p.account).or_default() += p.amount;
                // No account is ever reversed past zero: nobody gives back more than they got.
                prop_assert!(balances[&p.account].is_sign_negative() == paid.amount_to(&p.account).is_sign_negative()
                    || balances[&p.account].is_zero());
            }
            refunded += step;
        }
        prop_assert!(balances.values().all(|b| b.is_zero()), "{:?}", balances);
        prop_assert!(refund_entry(&paid, source, Money::from_fen(fen), Money::from_fen(1)).is_err());
    }

    #[test]
    fn allocation_never_loses_or_invents_a_fen(
        fen in 0_i64..100_000_000,
        weights in prop::collection::vec(0_i64..100_000, 1..300),
    ) {
        let weights: Vec<Decimal> = weights.into_iter().map(|w| Decimal::new(w, 2)).collect();
        let total_weight: Decimal = weights.iter().sum();
        prop_assume!(!total_weight.is_zero());
        let shares = allocate(Money::from_fen(fen), &weights).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(shares.iter().copied().sum::<Money>(), Money::from_fen(fen));
        for (share, w) in shares.iter().zip(&weights) {
            let exact = Money::from_fen(fen).yuan() * *w / total_weight;
            prop_assert!((share.yuan() - exact).abs() < Decimal::new(1, 2), "{} vs {}", share, exact);
        }
    }

    /// A period close: the fund gets at least its share, owners split the rest exactly, no
    /// share is negative, a larger floor area never gets less, and the entry balances.
    #[test]
    fn a_close_moves_exactly_the_period_revenue(
        fen in 0_i64..10_000_000,
        pct in 0_i64..=10_000,
        areas in prop::collection::vec(1_i64..50_000, 0..200),
    ) {
        use parkshare_ledger::close::{close_entry, split, Share};
        let owners: Vec<Share> = areas
            .iter()
            .enumerate()
            .map(|(i, a)| Share { owner_id: Uuid::from_u128(i as u128 + 1), floor_area_m2: Decimal::new(*a, 2) })
            .collect();
        let pct = Decimal::new(pct, 2);
        let s = split(Money::from_fen(fen), pct, &owners).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let owners_total: Money = s.to_owners.iter().map(|(_, m)| *m).sum();
        prop_assert_eq!(s.to_maintenance_fund + owners_total, Money::from_fen(fen));
        prop_assert!(s.to_owners.iter().all(|(_, m)| m.yuan() >= Decimal::ZERO), "no share is negative");
        prop_assert!(s.to_maintenance_fund.yuan() >= Money::from_fen(fen).yuan() * pct / Decimal::ONE_HUNDRED);
        for (a, b) in owners.iter().zip(&s.to_owners) {
            for (c, d) in owners.iter().zip(&s.to_owners) {
                if a.floor_area_m2 > c.floor_area_m2 {
                    // Largest remainder: a larger area may tie, never fall a whole fen behind.
                    prop_assert!(b.1.yuan() + Decimal::new(1, 2) > d.1.yuan(), "{:?} {:?}", b, d);
                }
            }
        }
        if let Some(entry) = close_entry(Uuid::nil(), &s).map_err(|e| TestCaseError::fail(e.to_string()))? {
            prop_assert!(entry.postings().iter().map(|p| p.amount).sum::<Decimal>().is_zero());
        }
    }
}
