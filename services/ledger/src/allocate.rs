//! Splitting an amount by weights, to the fen, exactly: the largest-remainder method. Every
//! share is the exact proportion rounded down to the fen, and the fen left over go one each to
//! the largest remainders (ties to the earlier weight), so the shares always add up to the
//! amount and no share is more than one fen from its exact proportion.

use parkshare_domain::money::Money;
use rust_decimal::prelude::ToPrimitive;
use rust_decimal::Decimal;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AllocateError {
    #[error("there is nobody to allocate to (no positive weight)")]
    NoWeight,
    #[error("weights must not be negative")]
    NegativeWeight,
}

/// Splits `amount` in proportion to `weights` (e.g. owners' floor areas in m²).
pub fn allocate(amount: Money, weights: &[Decimal]) -> Result<Vec<Money>, AllocateError> {
    if weights.iter().any(|w| w.is_sign_negative() && !w.is_zero()) {
        return Err(AllocateError::NegativeWeight);
    }
    let total_weight: Decimal = weights.iter().sum();
    if total_weight.is_zero() {
        return Err(AllocateError::NoWeight);
    }
    let amount_fen = amount.yuan() * Decimal::ONE_HUNDRED;
    let mut shares: Vec<(Decimal, Decimal)> = weights
        .iter()
        .map(|w| {
            let exact = amount_fen * *w / total_weight;
            let floor = exact.floor();
            (floor, exact - floor)
        })
        .collect();
    let given: Decimal = shares.iter().map(|(floor, _)| *floor).sum();
    // At most one fen per share is left over.
    let left = (amount_fen - given).to_usize().unwrap_or(0);
    let mut order: Vec<usize> = (0..shares.len()).collect();
    order.sort_by(|&a, &b| shares[b].1.cmp(&shares[a].1).then(a.cmp(&b)));
    for &i in order.iter().take(left) {
        shares[i].0 += Decimal::ONE;
    }
    Ok(shares
        .into_iter()
        .map(|(fen, _)| Money::from_fen(fen.to_i64().unwrap_or(0)))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal::dec;

    #[test]
    fn a_fen_that_does_not_divide_goes_to_the_largest_remainder() {
        let shares = allocate(Money::from_fen(100), &[dec!(1), dec!(1), dec!(1)]);
        assert_eq!(
            shares,
            Ok(vec![
                Money::from_fen(34),
                Money::from_fen(33),
                Money::from_fen(33)
            ])
        );
        // 89.50 m² and 120.30 m² sharing ¥10.00: 4.27 (4.2659…) and 5.73 (5.7340…).
        let shares = allocate(Money::from_fen(1000), &[dec!(89.50), dec!(120.30)]);
        assert_eq!(shares, Ok(vec![Money::from_fen(427), Money::from_fen(573)]));
    }

    #[test]
    fn zero_weights_get_nothing_and_no_weight_at_all_is_an_error() {
        let shares = allocate(Money::from_fen(7), &[dec!(0), dec!(2)]);
        assert_eq!(shares, Ok(vec![Money::ZERO, Money::from_fen(7)]));
        assert_eq!(
            allocate(Money::from_fen(7), &[]),
            Err(AllocateError::NoWeight)
        );
        assert_eq!(
            allocate(Money::from_fen(7), &[dec!(-1), dec!(2)]),
            Err(AllocateError::NegativeWeight)
        );
    }
}
