//! Developer spaces left unsold (DOMAIN.md rule 3): a developer-unsold space offered only for
//! sale for more than two years must be offered for rent to owners, or run as metered visitor
//! parking. The property firm records since when each is offered for sale and how it is offered
//! now; the compliance list names every space that breaks the rule, and why.

use chrono::{Months, NaiveDate};
use serde::{Deserialize, Serialize};

/// How long a developer space may be offered for sale only.
pub const SALE_ONLY_MONTHS: u32 = 24;

/// How an unsold developer space is offered now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Offered {
    /// For sale only.
    Sale,
    /// For rent to owners (they may also still buy it).
    RentToOwners,
    /// As metered visitor parking.
    Metered,
}

impl Offered {
    pub fn parse(text: &str) -> Option<Offered> {
        match text {
            "sale" => Some(Offered::Sale),
            "rent_to_owners" => Some(Offered::RentToOwners),
            "metered" => Some(Offered::Metered),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Offered::Sale => "sale",
            Offered::RentToOwners => "rent_to_owners",
            Offered::Metered => "metered",
        }
    }
}

/// Where a space stands against the two-year rule on a given day.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "standing", rename_all = "snake_case")]
pub enum Standing {
    /// Offered for rent or metered: the rule is met whatever its age.
    Offered,
    /// For sale only, within its two years: it must be offered otherwise from `due_on`.
    SaleOnlyUntil { due_on: NaiveDate },
    /// For sale only past its two years: it breaks the rule since `due_on`.
    Overdue { due_on: NaiveDate },
    /// For sale only, and nobody recorded since when: the firm cannot show it meets the rule.
    SinceUnknown,
}

impl Standing {
    pub fn complies(self) -> bool {
        matches!(self, Standing::Offered | Standing::SaleOnlyUntil { .. })
    }

    /// Why a space breaks the rule, for the compliance list; `None` when it complies.
    pub fn reason(self) -> Option<String> {
        match self {
            Standing::Offered | Standing::SaleOnlyUntil { .. } => None,
            Standing::Overdue { due_on } => Some(format!(
                "unsold and offered for sale only for more than two years (since {due_on} it \
                 must be offered for rent to owners or run as metered parking)"
            )),
            Standing::SinceUnknown => Some(
                "offered for sale only, and since when is not recorded: record for_sale_since"
                    .to_owned(),
            ),
        }
    }
}

/// The rule on `today` (the compound's local date) for a space offered as `offered`, for sale
/// since `since`. "More than two years": on the day two calendar years after `since` it is
/// still within them; from the next day it is overdue. A space for sale since 29 February is
/// due on 28 February two years later (chrono clamps to the month's end).
pub fn standing(since: Option<NaiveDate>, offered: Offered, today: NaiveDate) -> Standing {
    if offered != Offered::Sale {
        return Standing::Offered;
    }
    let Some(since) = since else {
        return Standing::SinceUnknown;
    };
    let Some(two_years) = since.checked_add_months(Months::new(SALE_ONLY_MONTHS)) else {
        return Standing::SinceUnknown;
    };
    let due_on = two_years.succ_opt().unwrap_or(two_years);
    if today >= due_on {
        Standing::Overdue { due_on }
    } else {
        Standing::SaleOnlyUntil { due_on }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(text: &str) -> NaiveDate {
        text.parse().unwrap_or_else(|e| panic!("{text}: {e}"))
    }

    #[test]
    fn two_years_for_sale_only_then_overdue_the_next_day() {
        let since = Some(day("2024-03-15"));
        assert_eq!(
            standing(since, Offered::Sale, day("2026-03-15")),
            Standing::SaleOnlyUntil {
                due_on: day("2026-03-16")
            }
        );
        let overdue = standing(since, Offered::Sale, day("2026-03-16"));
        assert_eq!(
            overdue,
            Standing::Overdue {
                due_on: day("2026-03-16")
            }
        );
        assert!(!overdue.complies());
        assert!(overdue.reason().is_some_and(|r| r.contains("2026-03-16")));
    }

    #[test]
    fn a_leap_day_is_due_at_the_end_of_february() {
        assert_eq!(
            standing(Some(day("2024-02-29")), Offered::Sale, day("2026-02-28")),
            Standing::SaleOnlyUntil {
                due_on: day("2026-03-01")
            }
        );
    }

    #[test]
    fn rented_or_metered_spaces_comply_at_any_age_and_unknown_dates_do_not() {
        for offered in [Offered::RentToOwners, Offered::Metered] {
            assert!(standing(Some(day("2001-01-01")), offered, day("2026-12-03")).complies());
            assert!(standing(None, offered, day("2026-12-03")).complies());
        }
        assert_eq!(
            standing(None, Offered::Sale, day("2026-12-03")),
            Standing::SinceUnknown
        );
        assert!(!Standing::SinceUnknown.complies());
    }

    #[test]
    fn offers_read_back_as_written() {
        for offered in [Offered::Sale, Offered::RentToOwners, Offered::Metered] {
            assert_eq!(Offered::parse(offered.as_str()), Some(offered));
        }
        assert_eq!(Offered::parse("lease"), None);
    }
}
