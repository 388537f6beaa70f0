//! Journal entries. A posting moves money into (debit, positive) or out of (credit, negative) an
//! account; the postings of one entry always sum to zero. The database checks the same
//! invariant again when the entry is stored.

use std::collections::BTreeMap;

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::account::Account;

/// Most postings one entry may have: a payment has at most three, a period close one per owner
/// of a large compound (issue 6) — a few thousand.
pub const POSTINGS_MAX: usize = 20_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Posting {
    pub account: Account,
    /// Debit positive, credit negative; whole fen, never zero.
    #[serde(with = "rust_decimal::serde::str")]
    pub amount: Decimal,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EntryError {
    #[error("the postings sum to {0}, not zero")]
    Unbalanced(Decimal),
    #[error("an entry needs at least two postings")]
    TooFewPostings,
    #[error("an entry may have at most {POSTINGS_MAX} postings")]
    TooManyPostings,
    #[error("posting amounts are whole fen and never zero")]
    BadAmount,
}

/// A balanced set of postings. Built only through [`Entry::new`], so every `Entry` balances.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Entry {
    postings: Vec<Posting>,
}

impl Entry {
    /// Merges postings to the same account, drops the ones that come to zero, and checks the
    /// rest balance.
    pub fn new(postings: impl IntoIterator<Item = Posting>) -> Result<Entry, EntryError> {
        let mut merged: BTreeMap<Account, Decimal> = BTreeMap::new();
        for p in postings {
            if p.amount.normalize().scale() > 2 {
                return Err(EntryError::BadAmount);
            }
            *merged.entry(p.account).or_default() += p.amount;
        }
        let postings: Vec<Posting> = merged
            .into_iter()
            .filter(|(_, amount)| !amount.is_zero())
            .map(|(account, amount)| Posting { account, amount })
            .collect();
        let sum: Decimal = postings.iter().map(|p| p.amount).sum();
        if !sum.is_zero() {
            return Err(EntryError::Unbalanced(sum));
        }
        if postings.len() < 2 {
            return Err(EntryError::TooFewPostings);
        }
        if postings.len() > POSTINGS_MAX {
            return Err(EntryError::TooManyPostings);
        }
        Ok(Entry { postings })
    }

    pub fn postings(&self) -> &[Posting] {
        &self.postings
    }

    /// The amount posted to `account` (zero if none).
    pub fn amount_to(&self, account: &Account) -> Decimal {
        self.postings
            .iter()
            .filter(|p| p.account == *account)
            .map(|p| p.amount)
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::account::AccountKind;
    use rust_decimal::dec;
    use uuid::Uuid;

    fn posting(kind: AccountKind, amount: Decimal) -> Posting {
        Posting {
            account: Account::new(kind, Uuid::nil()),
            amount,
        }
    }

    #[test]
    fn an_entry_balances_or_is_refused() {
        let ok = Entry::new([
            posting(AccountKind::ProviderClearing, dec!(10.00)),
            posting(AccountKind::CommonRevenue, dec!(-10.00)),
        ]);
        assert_eq!(ok.map(|e| e.postings().len()), Ok(2));
        let unbalanced = Entry::new([
            posting(AccountKind::ProviderClearing, dec!(10.00)),
            posting(AccountKind::CommonRevenue, dec!(-9.99)),
        ]);
        assert_eq!(unbalanced, Err(EntryError::Unbalanced(dec!(0.01))));
        let finer = Entry::new([
            posting(AccountKind::ProviderClearing, dec!(0.001)),
            posting(AccountKind::CommonRevenue, dec!(-0.001)),
        ]);
        assert_eq!(finer, Err(EntryError::BadAmount));
        let nothing = Entry::new([
            posting(AccountKind::ProviderClearing, dec!(1)),
            posting(AccountKind::ProviderClearing, dec!(-1)),
        ]);
        assert_eq!(nothing, Err(EntryError::TooFewPostings));
    }
}
