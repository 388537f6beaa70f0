//! Pricing a session: the tariff version in force at its entry (or, for a lot that has never
//! filed one, the lot's draft tariff), the humane and owner rules of its kind, the exit grace,
//! the owner's rate when the stay is on a shared space (a percentage of the tariff, never
//! above it), and the regulated guard: a bill above the standard the version was filed against is
//! lowered to it, and the clamp is reported so that it is recorded.

use crate::error::ErrorCode;
use chrono::{DateTime, TimeZone, Utc};
use parkshare_domain::decision::{billing_instant, SessionKind};
use parkshare_domain::money::Money;
use parkshare_tariff::engine::LineCode;
use parkshare_tariff::{Bill, Stay};
use sqlx::PgConnection;
use uuid::Uuid;

use crate::error::ApiError;
use crate::store::sessions::Session;
use crate::store::tariffs;

/// What billing needs to know about a lot (read with the lot's row: `store::registry`).
pub use crate::store::registry::LotRules;

/// A session priced at some instant.
#[derive(Debug, Clone)]
pub struct Priced {
    pub bill: Bill,
    /// The filing number of the tariff used; `None` for a lot's unfiled draft tariff.
    pub filing_no: Option<String>,
    /// The regulated guard lowered the bill.
    pub clamped: bool,
}

/// Prices `session` as if it left at `at`.
pub async fn price(
    tx: &mut PgConnection,
    rules: &LotRules,
    session: &Session,
    at: DateTime<Utc>,
) -> Result<Priced, ApiError> {
    let filed = match session.tariff_version_id {
        Some(id) => tariffs::filed(&mut *tx, id).await?,
        None => None,
    };
    let filing_no = filed.as_ref().map(|f| f.filing_no.clone());
    let Some(entered_at) = session.entered_at else {
        // Opened at an exit with no entry record: its fee is the whole bill.
        let fee = Money::total(session.fee.unwrap_or_default()).map_err(ApiError::internal)?;
        let bill = Bill::flat(LineCode::NoEntryFee, fee, "无入场记录");
        return Ok(Priced {
            bill,
            filing_no,
            clamped: false,
        });
    };
    let (kind, class) = (session.kind, session.vehicle_class);
    // From when the stay is charged: its entry, or, for a renter's stay that outlasted the
    // rental, the local midnight the rental lapsed (the car is a visitor from then on).
    let mut charged_from = entered_at;
    let owner = match kind {
        SessionKind::Exempt => return Ok(free(entered_at, at, "应急车辆免费", filing_no)),
        SessionKind::Permit => {
            let local = |t: DateTime<Utc>| t.with_timezone(&rules.time_zone).date_naive();
            let lapsed = crate::store::registry::lapsed_during_stay(
                &mut *tx,
                rules.lot_id,
                &session.plate,
                (local(entered_at), local(at)),
            )
            .await?;
            let midnight = lapsed
                .and_then(|day| day.and_hms_opt(0, 0, 0))
                .and_then(|t| rules.time_zone.from_local_datetime(&t).earliest());
            match midnight {
                Some(midnight) if midnight < at => {
                    charged_from = midnight.with_timezone(&Utc).max(entered_at);
                    false
                }
                _ => return Ok(free(entered_at, at, "月卡/产权车位免费", filing_no)),
            }
        }
        SessionKind::Owner => true,
        SessionKind::Visitor => false,
    };
    let tariff = filed
        .as_ref()
        .map(|f| &f.tariff)
        .unwrap_or(&rules.draft_tariff);
    let stay = Stay {
        entered_at: charged_from,
        exited_at: billing_instant(at, session.last_payment(), rules.policy.exit_grace_min),
        class,
        owner,
        extra_free_min: if owner {
            rules.policy.owner_free_min
        } else {
            0
        },
        time_zone: rules.time_zone,
    };
    let mut bill = tariff.bill(&stay).map_err(|e| {
        ApiError::invalid(
            ErrorCode::StayNotBillable,
            format!("{e}; handle this exit at the booth"),
        )
    })?;
    if session.space_id.is_some() {
        if let Some(pct) = crate::store::sharing::booked_price_pct(&mut *tx, session.id).await? {
            let pct = u8::try_from(pct).unwrap_or(100);
            bill.apply_rate_pct(pct, format!("业主共享车位定价 {pct}%"));
        }
    }
    let clamped = match &filed {
        Some(filed) => match filed.standard.max_fee(class, bill.duration_s) {
            Some(limit) => bill.clamp(
                limit,
                format!("按政府指导价封顶（{}）", filed.standard_document),
            ),
            None => false,
        },
        None => false,
    };
    if bill.total.yuan() > parkshare_domain::money::MONEY_YUAN_MAX {
        // No fee can be paid or stored above one amount's bound (a tariff stored before prices
        // were bounded, or a very long stay at a high price): staff settle it, never a 500.
        return Err(ApiError::invalid(
            ErrorCode::StayNotBillable,
            "the bill exceeds 10,000,000.00 yuan; handle this exit at the booth",
        ));
    }
    Ok(Priced {
        bill,
        filing_no,
        clamped,
    })
}

fn free(
    entered_at: DateTime<Utc>,
    at: DateTime<Utc>,
    description: &str,
    filing_no: Option<String>,
) -> Priced {
    Priced {
        bill: Bill::free(entered_at, at, description),
        filing_no,
        clamped: false,
    }
}

/// The no-entry-record fee of the tariff in force at `at`, if it has one.
pub async fn no_entry_fee(
    tx: &mut PgConnection,
    rules: &LotRules,
    at: DateTime<Utc>,
) -> Result<(Option<Money>, Option<Uuid>), ApiError> {
    match tariffs::filed_in_force(&mut *tx, rules.lot_id, at).await? {
        Some(filed) => Ok((filed.tariff.no_entry_fee, Some(filed.version_id))),
        None => Ok((rules.draft_tariff.no_entry_fee, None)),
    }
}
