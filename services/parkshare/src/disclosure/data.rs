//! What a compound discloses: per closed period, income by source, spending, the maintenance
//! fund's part, opening and closing balance, and the use of its spaces.

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use parkshare_domain::usage::{self, HourOccupancy};
use serde::Serialize;
use sqlx::{PgExecutor, PgPool};
use uuid::Uuid;

use crate::error::ApiError;
use crate::settlement::close::PeriodIncome;
use crate::store::disclosure::{self, Count};
use crate::store::yuan_text as yuan;
use crate::store::{periods, registry};

/// Periods shown at once, newest first: a year of monthly closes.
pub const PERIODS_MAX: usize = 12;

/// Income before refunds and the firm's share, by source: what drivers paid for common parts.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Income {
    pub common_area_parking: String,
    pub visitor_pool: String,
    pub other: String,
    pub total: String,
    /// The platform's fees on owners' shared spaces (not common revenue; shown for openness).
    pub shared_space_service_fees: String,
}

/// One closed period of the compound's common revenue; money in yuan, as decimal strings.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct PeriodDisclosure {
    pub id: Uuid,
    pub label: String,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    /// Gross income. The account adds up line by line, each figure from the ledger:
    /// `opening_balance + income.total − refunds − management_cost − to_maintenance_fund −
    /// to_owners = closing_balance`.
    pub income: Income,
    /// Paid back to drivers (of common revenue and of the firm's share alike).
    pub refunds: String,
    /// Of the above, what arrived after its stay's period had closed (informational).
    pub late_adjustments: String,
    /// The property firm's contractual share, net of its part of refunds (the only spending
    /// the platform records).
    pub management_cost: String,
    pub to_maintenance_fund: String,
    pub to_owners: String,
    pub opening_balance: String,
    pub closing_balance: String,
    pub occupancy_by_hour: Vec<HourOccupancy>,
    pub sessions_by_kind: Vec<Count>,
    pub sessions_by_space_kind: Vec<Count>,
    /// `to_owners` by unit, as credited at the close (by floor area; no names, the page is
    /// public).
    pub owner_shares: Vec<OwnerShare>,
}

/// One unit's share of the period's common revenue.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct OwnerShare {
    pub unit: String,
    pub floor_area_m2: String,
    pub credited: String,
}

/// A compound's disclosure (公示): its latest closed periods and lotteries.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Disclosure {
    pub compound_id: Uuid,
    pub compound: String,
    pub time_zone: String,
    pub generated_at: DateTime<Utc>,
    pub periods: Vec<PeriodDisclosure>,
    /// The latest lotteries (摇号) of the compound, each with its commitment.
    pub lotteries: Vec<crate::allocation::lottery::Notice>,
}

/// The use of the spaces in a period, as frozen in its summary at the close.
#[derive(serde::Deserialize)]
struct Usage {
    occupancy_by_hour: Vec<HourOccupancy>,
    sessions_by_kind: Vec<Count>,
    sessions_by_space_kind: Vec<Count>,
}

/// The period's income from its summary's source lines, as the close adds it up.
fn account(summary: &serde_json::Value) -> PeriodIncome {
    let lines: Vec<periods::SourceLine> = summary
        .get("sources")
        .cloned()
        .and_then(|v| serde_json::from_value(v).ok())
        .unwrap_or_default();
    PeriodIncome::of(&lines)
}

fn text(summary: &serde_json::Value, path: &[&str]) -> String {
    let mut v = summary;
    for key in path {
        v = &v[*key];
    }
    v.as_str().unwrap_or("0.00").to_owned()
}

/// Average cars inside by local hour of the day over `[from, until)`, from the recorded stays
/// (the rule: `parkshare_domain::usage`). Stored in a period's summary at its close.
pub async fn occupancy_by_hour(
    db: impl PgExecutor<'_>,
    compound_id: Uuid,
    tz: Tz,
    from: DateTime<Utc>,
    until: DateTime<Utc>,
) -> Result<Vec<HourOccupancy>, ApiError> {
    let stays = disclosure::stays_between(db, compound_id, from, until).await?;
    Ok(usage::by_hour(&stays, tz, from, until))
}

/// The use of the spaces in a period as frozen at its close; read now for a period closed
/// before it was frozen.
async fn usage_of(
    db: &PgPool,
    compound_id: Uuid,
    tz: Tz,
    p: &periods::Period,
) -> Result<Usage, ApiError> {
    if let Ok(frozen) = serde_json::from_value::<Usage>(p.summary.0["usage"].clone()) {
        return Ok(frozen);
    }
    let (from, until) = (p.starts_at, p.ends_at);
    Ok(Usage {
        occupancy_by_hour: occupancy_by_hour(db, compound_id, tz, from, until).await?,
        sessions_by_kind: disclosure::sessions_by(db, compound_id, from, until, false).await?,
        sessions_by_space_kind: disclosure::sessions_by(db, compound_id, from, until, true).await?,
    })
}

/// One closed period as disclosed.
async fn period(
    db: &PgPool,
    tenant_id: Uuid,
    compound_id: Uuid,
    tz: Tz,
    p: periods::Period,
) -> Result<PeriodDisclosure, ApiError> {
    let s = &p.summary.0;
    let a = account(s);
    let usage = usage_of(db, compound_id, tz, &p).await?;
    let owner_shares = periods::statements_of_period(db, tenant_id, p.id)
        .await?
        .into_iter()
        .map(|st| OwnerShare {
            unit: st.unit,
            floor_area_m2: st.floor_area_m2.to_string(),
            credited: yuan(st.credited),
        })
        .collect();
    Ok(PeriodDisclosure {
        id: p.id,
        label: p.label.clone(),
        starts_at: p.starts_at,
        ends_at: p.ends_at,
        income: Income {
            common_area_parking: yuan(a.common_area_parking),
            visitor_pool: yuan(a.visitor_pool),
            other: yuan(a.other),
            total: yuan(a.gross()),
            shared_space_service_fees: text(s, &["shared_space_service_fees"]),
        },
        refunds: yuan(a.refunds),
        late_adjustments: text(s, &["late_adjustments"]),
        management_cost: yuan(a.management),
        to_maintenance_fund: text(s, &["to_maintenance_fund"]),
        to_owners: text(s, &["to_owners"]),
        opening_balance: text(s, &["opening_unallocated"]),
        closing_balance: text(s, &["closing_unallocated"]),
        occupancy_by_hour: usage.occupancy_by_hour,
        sessions_by_kind: usage.sessions_by_kind,
        sessions_by_space_kind: usage.sessions_by_space_kind,
        owner_shares,
    })
}

/// The compound's disclosure, newest period first, generated at `now` (the service's clock).
pub async fn build(
    db: &PgPool,
    tenant_id: Uuid,
    compound_id: Uuid,
    now: DateTime<Utc>,
) -> Result<Disclosure, ApiError> {
    let compound = registry::compound(db, tenant_id, compound_id)
        .await?
        .ok_or(ApiError::NotFound("compound"))?;
    let tz = compound.zone()?;
    let mut closed = periods::periods(db, tenant_id, compound_id).await?;
    closed.reverse();
    closed.truncate(PERIODS_MAX);
    let mut shown = Vec::with_capacity(closed.len());
    for p in closed {
        shown.push(period(db, tenant_id, compound_id, tz, p).await?);
    }
    Ok(Disclosure {
        compound_id,
        compound: compound.name,
        time_zone: compound.time_zone,
        generated_at: now,
        periods: shown,
        lotteries: crate::allocation::lottery::notices(db, tenant_id, compound_id).await?,
    })
}

/// One CSV row per figure: `period,section,item,value`.
pub fn csv(d: &Disclosure) -> Result<Vec<u8>, csv::Error> {
    let mut out = crate::spreadsheet::SpreadsheetCsv::default();
    out.write_record(["period", "section", "item", "value"])?;
    for p in &d.periods {
        let mut row = |section: &str, item: &str, value: &str| {
            out.write_record([p.label.as_str(), section, item, value])
        };
        row(
            "income",
            "common_area_parking",
            &p.income.common_area_parking,
        )?;
        row("income", "visitor_pool", &p.income.visitor_pool)?;
        row("income", "other", &p.income.other)?;
        row("income", "total", &p.income.total)?;
        row(
            "income",
            "shared_space_service_fees",
            &p.income.shared_space_service_fees,
        )?;
        row("adjustments", "refunds", &p.refunds)?;
        row("adjustments", "late", &p.late_adjustments)?;
        row("spending", "management_cost", &p.management_cost)?;
        row("allocation", "maintenance_fund", &p.to_maintenance_fund)?;
        row("allocation", "owners", &p.to_owners)?;
        row("balance", "opening", &p.opening_balance)?;
        row("balance", "closing", &p.closing_balance)?;
        for h in &p.occupancy_by_hour {
            row(
                "occupancy_by_hour",
                &format!("{:02}:00", h.hour),
                &h.average.to_string(),
            )?;
        }
        for c in &p.sessions_by_kind {
            row("sessions_by_kind", &c.key, &c.count.to_string())?;
        }
        for c in &p.sessions_by_space_kind {
            row("sessions_by_space_kind", &c.key, &c.count.to_string())?;
        }
        for o in &p.owner_shares {
            row("owner_shares", &o.unit, &o.credited)?;
            row("owner_floor_areas_m2", &o.unit, &o.floor_area_m2)?;
        }
    }
    out.into_bytes()
}
