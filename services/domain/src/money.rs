//! Exact money. An amount is a `rust_decimal::Decimal` in yuan; a fen is 0.01 yuan.
//!
//! Rounding to the fen happens at one named point, [`Money::round_fen`], with an explicit
//! strategy. Arithmetic never rounds silently.
//!
//! Nor does it go negative unnoticed: `Money` adds, but has no `-`. A difference is either
//! [`Money::saturating_sub`] (what is still due, never below zero — its name says so at every
//! call) or computed on [`Money::yuan`] and brought back through [`Money::total`], which refuses
//! a negative amount.

use std::fmt;
use std::iter::Sum;
use std::ops::Add;

use rust_decimal::{Decimal, RoundingStrategy};
use serde::{Deserialize, Serialize};

/// Largest amount one bill, tariff price or payment may carry: ¥10 million.
/// A bigger figure is certainly a typo or an attack, not a parking fee.
pub const MONEY_YUAN_MAX: Decimal = rust_decimal::dec!(10_000_000);

/// An amount in yuan (CNY). Serialised as a decimal string with exactly two decimals such as
/// `"12.50"` so that no JSON client ever turns it into a float, and zero is `"0.00"` like every
/// other amount (a `Decimal` zero, or `"3"` read from JSON, keeps its scale of 0 and was written
/// `"0"`, `"3"`). Never negative, also when read from JSON (a price standard with a negative
/// maximum was accepted).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Money(Decimal);

impl Serialize for Money {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

/// In the OpenAPI document: a string of yuan with two decimals.
#[cfg(feature = "openapi")]
impl utoipa::PartialSchema for Money {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::schema::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .description(Some("Yuan (CNY) with two decimals, as a string"))
            .examples(["12.50"])
            .into()
    }
}

#[cfg(feature = "openapi")]
impl utoipa::ToSchema for Money {}

impl<'de> Deserialize<'de> for Money {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Money, D::Error> {
        let yuan: Decimal = rust_decimal::serde::str::deserialize(deserializer)?;
        // A total's checks (sign, fen), not one input amount's bound: sums read back from
        // storage may exceed it.
        Money::total(yuan).map_err(serde::de::Error::custom)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MoneyError {
    #[error("amount must not be negative")]
    Negative,
    #[error("amount has more than two decimals (finer than one fen)")]
    FinerThanFen,
    #[error("amount exceeds the limit of 10,000,000 yuan")]
    TooLarge,
}

impl Money {
    pub const ZERO: Money = Money(Decimal::ZERO);

    /// Parses a price or payment: non-negative, at most two decimals, at most ¥10 million.
    pub fn parse(yuan: Decimal) -> Result<Money, MoneyError> {
        let money = Money::total(yuan)?;
        if money.0 > MONEY_YUAN_MAX {
            return Err(MoneyError::TooLarge);
        }
        Ok(money)
    }

    /// A total of amounts (a period's income, an account's balance): non-negative and in whole
    /// fen like any amount, but without the bound on one amount of input — a large compound's
    /// books add up past ¥10 million, and must still close.
    pub fn total(yuan: Decimal) -> Result<Money, MoneyError> {
        if yuan.is_sign_negative() && !yuan.is_zero() {
            return Err(MoneyError::Negative);
        }
        if yuan.normalize().scale() > 2 {
            return Err(MoneyError::FinerThanFen);
        }
        Ok(Money(yuan.round_dp(2)))
    }

    /// Builds an amount from a whole number of fen.
    pub fn from_fen(fen: i64) -> Money {
        Money(Decimal::new(fen, 2))
    }

    pub fn yuan(self) -> Decimal {
        self.0
    }

    /// The one rounding point: to whole fen with the given strategy.
    pub fn round_fen(amount: Decimal, strategy: RoundingStrategy) -> Money {
        Money(amount.round_dp_with_strategy(2, strategy))
    }

    pub fn times(self, count: u32) -> Money {
        Money(self.0 * Decimal::from(count))
    }

    /// `self - other`, never below zero.
    pub fn saturating_sub(self, other: Money) -> Money {
        if other >= self {
            Money::ZERO
        } else {
            Money(self.0 - other.0)
        }
    }

    pub fn is_zero(self) -> bool {
        self.0.is_zero()
    }
}

impl Add for Money {
    type Output = Money;
    fn add(self, rhs: Money) -> Money {
        Money(self.0 + rhs.0)
    }
}

impl Sum for Money {
    fn sum<I: Iterator<Item = Money>>(iter: I) -> Money {
        iter.fold(Money::ZERO, Add::add)
    }
}

impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:.2}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal::dec;

    #[test]
    fn parse_accepts_fen_and_rejects_finer_or_negative() {
        assert_eq!(
            Money::parse(dec!(12.5)).map(|m| m.to_string()),
            Ok("12.50".into())
        );
        assert_eq!(Money::parse(dec!(0.001)), Err(MoneyError::FinerThanFen));
        assert_eq!(Money::parse(dec!(-1)), Err(MoneyError::Negative));
        assert_eq!(Money::parse(dec!(10000000.01)), Err(MoneyError::TooLarge));
        assert_eq!(Money::parse(dec!(1.500)), Ok(Money::from_fen(150)));
    }

    #[test]
    fn a_total_is_not_bounded_like_one_amount() {
        assert_eq!(
            Money::total(dec!(12000000.00)).map(|m| m.to_string()),
            Ok("12000000.00".into())
        );
        assert_eq!(Money::total(dec!(-1)), Err(MoneyError::Negative));
        assert_eq!(Money::total(dec!(0.001)), Err(MoneyError::FinerThanFen));
    }

    #[test]
    fn a_negative_amount_does_not_deserialise() {
        assert!(serde_json::from_str::<Money>(r#""-3.00""#).is_err());
        assert!(serde_json::from_str::<Money>(r#"-3"#).is_err());
        assert_eq!(
            serde_json::from_str::<Money>(r#""3.00""#).ok(),
            Some(Money::from_fen(300))
        );
        assert_eq!(
            serde_json::from_str::<Money>(r#""-0""#).ok(),
            Some(Money::default())
        );
    }

    #[test]
    fn serialises_as_string() {
        let json = serde_json::to_string(&Money::from_fen(1205)).unwrap_or_default();
        assert_eq!(json, "\"12.05\"");
    }

    /// Issue 21, item 9: a zero bill's total was `"0"` beside `"0.00"` everywhere else.
    #[test]
    fn zero_and_whole_amounts_serialise_with_two_decimals() {
        let json = |m: Money| serde_json::to_string(&m).unwrap_or_default();
        assert_eq!(json(Money::ZERO), "\"0.00\"");
        assert_eq!(json(Money::default()), "\"0.00\"");
        let read: Money = serde_json::from_str("\"3\"").unwrap_or_default();
        assert_eq!(json(read), "\"3.00\"");
        assert_eq!(
            json(Money::parse(dec!(12.5)).unwrap_or_default()),
            "\"12.50\""
        );
    }

    #[test]
    fn round_fen_uses_the_given_strategy() {
        assert_eq!(
            Money::round_fen(dec!(1.005), RoundingStrategy::MidpointNearestEven),
            Money::from_fen(100)
        );
        assert_eq!(
            Money::round_fen(dec!(1.001), RoundingStrategy::AwayFromZero),
            Money::from_fen(101)
        );
    }
}
