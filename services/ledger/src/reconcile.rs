//! Reconciling what a payment provider says it settled against what we recorded: the rows of
//! its settlement file are parsed (every bad row reported with its line), then matched by the
//! provider's transaction id against the payments we received through it.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Utc};
use parkshare_domain::money::Money;
use rust_decimal::Decimal;
use serde::Serialize;

/// The columns of a settlement file, in this order.
pub const COLUMNS: [&str; 5] = ["provider_transaction_id", "time", "amount", "fee", "refund"];
/// A provider transaction id longer than this is not one.
pub const ID_CHARS_MAX: usize = 128;

/// One row of the provider's settlement file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SettlementRow {
    pub line: u64,
    pub provider_transaction_id: String,
    pub time: DateTime<Utc>,
    pub amount: Money,
    pub fee: Money,
    pub refund: Money,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RowError {
    pub line: u64,
    pub field: &'static str,
    pub message: String,
}

fn money(line: u64, field: &'static str, text: &str) -> Result<Money, RowError> {
    let bad = |message: String| RowError {
        line,
        field,
        message,
    };
    let value: Decimal = text
        .trim()
        .parse()
        .map_err(|_| bad(format!("'{text}' is not an amount in yuan")))?;
    Money::parse(value).map_err(|e| bad(e.to_string()))
}

/// Parses the five fields of line `line`.
pub fn parse_row(line: u64, fields: [&str; 5]) -> Result<SettlementRow, RowError> {
    let [id, time, amount, fee, refund] = fields;
    let id = id.trim();
    if id.is_empty() || id.chars().count() > ID_CHARS_MAX || id.chars().any(char::is_control) {
        return Err(RowError {
            line,
            field: "provider_transaction_id",
            message: format!("must be 1 to {ID_CHARS_MAX} printable characters"),
        });
    }
    let time = DateTime::parse_from_rfc3339(time.trim())
        .map_err(|_| RowError {
            line,
            field: "time",
            message: format!("'{time}' is not an RFC 3339 time"),
        })?
        .with_timezone(&Utc);
    Ok(SettlementRow {
        line,
        provider_transaction_id: id.to_owned(),
        time,
        amount: money(line, "amount", amount)?,
        fee: money(line, "fee", fee)?,
        refund: money(line, "refund", refund)?,
    })
}

/// A payment we received through the provider.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received {
    pub provider_transaction_id: String,
    pub amount: Money,
    pub refunded: Money,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Mismatch {
    pub provider_transaction_id: String,
    /// `amount` or `refund`.
    pub field: &'static str,
    pub ours: String,
    pub theirs: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Report {
    pub matched: Vec<String>,
    /// In their file, not in our records.
    pub missing_ours: Vec<String>,
    /// In our records (for the period compared), not in their file.
    pub missing_theirs: Vec<String>,
    pub mismatches: Vec<Mismatch>,
    /// The provider's fees over every row of the file.
    pub fees: Money,
}

/// Rows repeating an earlier row's transaction id, as errors.
pub fn repeated(rows: &[SettlementRow]) -> Vec<RowError> {
    let mut first: HashMap<&str, u64> = HashMap::new();
    let mut errors = Vec::new();
    for row in rows {
        if let Some(line) = first.insert(&row.provider_transaction_id, row.line) {
            errors.push(RowError {
                line: row.line,
                field: "provider_transaction_id",
                message: format!("repeats line {line}"),
            });
        }
    }
    errors
}

/// Matches their rows against ours. Lists are sorted by transaction id.
pub fn reconcile(rows: &[SettlementRow], ours: &[Received]) -> Report {
    let ours: BTreeMap<&str, &Received> = ours
        .iter()
        .map(|r| (r.provider_transaction_id.as_str(), r))
        .collect();
    let mut report = Report {
        fees: rows.iter().map(|r| r.fee).sum(),
        ..Report::default()
    };
    for row in rows {
        let id = row.provider_transaction_id.clone();
        let Some(our) = ours.get(id.as_str()) else {
            report.missing_ours.push(id);
            continue;
        };
        let mut agrees = true;
        for (field, mine, theirs) in [
            ("amount", our.amount, row.amount),
            ("refund", our.refunded, row.refund),
        ] {
            if mine != theirs {
                agrees = false;
                report.mismatches.push(Mismatch {
                    provider_transaction_id: id.clone(),
                    field,
                    ours: mine.to_string(),
                    theirs: theirs.to_string(),
                });
            }
        }
        if agrees {
            report.matched.push(id);
        }
    }
    let theirs: std::collections::HashSet<&str> = rows
        .iter()
        .map(|r| r.provider_transaction_id.as_str())
        .collect();
    report.missing_theirs = ours
        .keys()
        .filter(|id| !theirs.contains(*id))
        .map(|id| (*id).to_owned())
        .collect();
    report.matched.sort();
    report.missing_ours.sort();
    report
        .mismatches
        .sort_by(|a, b| a.provider_transaction_id.cmp(&b.provider_transaction_id));
    report
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(line: u64, id: &str, amount: &str, fee: &str, refund: &str) -> SettlementRow {
        parse_row(line, [id, "2026-11-23T08:00:00Z", amount, fee, refund])
            .unwrap_or_else(|e| panic!("{e:?}"))
    }

    fn ours(id: &str, amount: i64, refunded: i64) -> Received {
        Received {
            provider_transaction_id: id.into(),
            amount: Money::from_fen(amount),
            refunded: Money::from_fen(refunded),
        }
    }

    #[test]
    fn every_kind_of_difference_is_reported() {
        let rows = [
            row(2, "t1", "9.00", "0.05", "0"),
            row(3, "t2", "6.00", "0.04", "0"),
            row(4, "t3", "3.00", "0.02", "1.00"),
            row(5, "t9", "1.00", "0.01", "0"),
        ];
        let mine = [
            ours("t1", 900, 0),
            ours("t2", 600, 0),
            ours("t3", 300, 0),
            ours("t4", 500, 0),
        ];
        let mut mine = mine.to_vec();
        mine[1].amount = Money::from_fen(500);
        let report = reconcile(&rows, &mine);
        assert_eq!(report.matched, vec!["t1"]);
        assert_eq!(report.missing_ours, vec!["t9"]);
        assert_eq!(report.missing_theirs, vec!["t4"]);
        let fields: Vec<_> = report
            .mismatches
            .iter()
            .map(|m| (m.provider_transaction_id.as_str(), m.field))
            .collect();
        assert_eq!(fields, vec![("t2", "amount"), ("t3", "refund")]);
        assert_eq!(report.fees, Money::from_fen(12));
    }

    #[test]
    fn bad_rows_say_which_field_is_wrong() {
        let err = |fields| parse_row(7, fields).err().map(|e| (e.line, e.field));
        assert_eq!(
            err(["", "2026-11-23T08:00:00Z", "1", "0", "0"]),
            Some((7, "provider_transaction_id"))
        );
        assert_eq!(err(["t", "yesterday", "1", "0", "0"]), Some((7, "time")));
        assert_eq!(
            err(["t", "2026-11-23T08:00:00Z", "-1", "0", "0"]),
            Some((7, "amount"))
        );
        assert_eq!(
            err(["t", "2026-11-23T08:00:00Z", "1", "0.001", "0"]),
            Some((7, "fee"))
        );
        let rows = [row(2, "t1", "1", "0", "0"), row(3, "t1", "1", "0", "0")];
        assert_eq!(repeated(&rows).first().map(|e| e.line), Some(3));
    }
}
