//! A journal as plain-text double-entry bookkeeping in beancount syntax, for the accountant's
//! usual tools (`bean-check`, Fava). Each account is its kind's place in the chart of accounts
//! plus its holder (`Liabilities:CommonRevenue:C-1A2B3C4D…`, the holder's id in capitals
//! because beancount names start with a capital or digit). Common revenue is a liability: it
//! belongs to the owners, not to the firm that keeps it (rule 6).

use std::collections::BTreeSet;
use std::fmt::Write;

use rust_decimal::Decimal;

use crate::account::{Account, AccountKind};
use crate::entry::Posting;

/// The currency of every amount.
pub const CURRENCY: &str = "CNY";

/// One transaction to render.
#[derive(Debug, Clone)]
pub struct Transaction {
    /// The local date it was booked.
    pub date: chrono::NaiveDate,
    pub id: uuid::Uuid,
    pub narration: String,
    pub postings: Vec<Posting>,
}

fn place(kind: AccountKind) -> &'static str {
    match kind {
        AccountKind::ProviderClearing => "Assets:ProviderClearing",
        AccountKind::CashOnHand => "Assets:CashOnHand",
        AccountKind::OwnerPayable => "Liabilities:OwnerPayable",
        AccountKind::CommonRevenue => "Liabilities:CommonRevenue",
        AccountKind::ManagementIncome => "Income:Management",
        AccountKind::FranchiseIncome => "Income:Franchise",
        AccountKind::PlatformFeeIncome => "Income:PlatformFees",
        AccountKind::DeveloperPayable => "Liabilities:DeveloperPayable",
        AccountKind::MaintenanceFund => "Liabilities:MaintenanceFund",
        AccountKind::RefundsPayable => "Liabilities:RefundsPayable",
        AccountKind::ProviderFees => "Expenses:ProviderFees",
    }
}

/// The beancount name of `account`.
pub fn account_name(account: &Account) -> String {
    let prefix = match account.kind.holder() {
        "owner" => "O",
        "compound" => "C",
        _ => "F",
    };
    let holder = account.holder.simple().to_string().to_uppercase();
    format!("{}:{prefix}-{holder}", place(account.kind))
}

fn quoted(text: &str) -> String {
    text.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace(['\n', '\r'], " ")
}

/// The whole journal: options, an `open` for every account on the first date, then the
/// transactions in the order given.
pub fn render(title: &str, transactions: &[Transaction]) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "option \"title\" \"{}\"", quoted(title));
    let _ = writeln!(out, "option \"operating_currency\" \"{CURRENCY}\"\n");
    let accounts: BTreeSet<Account> = transactions
        .iter()
        .flat_map(|t| t.postings.iter().map(|p| p.account))
        .collect();
    if let Some(first) = transactions.iter().map(|t| t.date).min() {
        for account in &accounts {
            let _ = writeln!(out, "{first} open {} {CURRENCY}", account_name(account));
        }
        out.push('\n');
    }
    for t in transactions {
        let _ = writeln!(out, "{} * \"{}\"", t.date, quoted(&t.narration));
        let _ = writeln!(out, "  id: \"{}\"", t.id);
        for p in &t.postings {
            let mut amount: Decimal = p.amount;
            amount.rescale(2);
            let _ = writeln!(
                out,
                "  {:<60} {amount:>12} {CURRENCY}",
                account_name(&p.account)
            );
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal::dec;
    use uuid::Uuid;

    #[test]
    fn a_transaction_renders_with_its_accounts_opened() {
        let compound = Uuid::from_u128(0xabc);
        let firm = Uuid::from_u128(0xdef);
        let text = render(
            "阳光花园 2026-11",
            &[Transaction {
                date: chrono::NaiveDate::from_ymd_opt(2026, 11, 23).unwrap_or_default(),
                id: Uuid::from_u128(1),
                narration: "停车费 \"京A12345\"".into(),
                postings: vec![
                    Posting {
                        account: Account::new(AccountKind::ProviderClearing, firm),
                        amount: dec!(9),
                    },
                    Posting {
                        account: Account::new(AccountKind::CommonRevenue, compound),
                        amount: dec!(-9),
                    },
                ],
            }],
        );
        assert!(
            text.contains(
                "2026-11-23 open Liabilities:CommonRevenue:C-00000000000000000000000000000ABC CNY"
            ),
            "{text}"
        );
        assert!(
            text.contains("2026-11-23 * \"停车费 \\\"京A12345\\\"\""),
            "{text}"
        );
        assert!(text.contains("        9.00 CNY"), "{text}");
        assert!(text.contains("       -9.00 CNY"), "{text}");
    }
}
