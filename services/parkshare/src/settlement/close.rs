//! Closing a compound's accounting period of common revenue (issue 6, rules 6–9).
//!
//! Periods are contiguous, each from the end of the previous one (the first from the
//! compound's creation) to the end the staff name: a calendar month in the compound's time
//! zone (`{"month": "2026-11"}`) or an instant (`{"until": …}`), never in the future. The close
//! takes everything posted before the end that is still in the common-revenue account — so a
//! late payment or refund for a stay of a closed period lands in the next one, shown there as
//! an adjustment, and a closed period is never rewritten — and moves it to the maintenance fund
//! and the owners by the revenue policy in force at the end (the pure
//! `parkshare_ledger::close`). Closing is idempotent (the same end answers the same period) and
//! can be previewed: the same work in a transaction that is rolled back.

use crate::error::ErrorCode;
use actix_web::{get, post, web, HttpResponse};
use chrono::{DateTime, Datelike, NaiveDate, SubsecRound, Utc};
use chrono_tz::Tz;
use parkshare_domain::money::Money;
use parkshare_ledger::close::{close_entry, split, Share};
use rust_decimal::Decimal;
use serde::Deserialize;
use serde_json::json;
use sqlx::PgConnection;
use uuid::Uuid;

use crate::auth::{Owner, Staff};
use crate::error::{is_unique_violation, ApiError};
use crate::state::AppState;
use crate::store::ledger::{self, NewTransaction};
use crate::store::periods::{self, NewPeriod, Period};
use crate::store::yuan_text as yuan;

pub fn admin_routes(cfg: &mut utoipa_actix_web::service_config::ServiceConfig) {
    cfg.service(close_period)
        .service(list_periods)
        .service(period_statements);
}

pub fn owner_routes(cfg: &mut utoipa_actix_web::service_config::ServiceConfig) {
    cfg.service(owner_statements);
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
struct CloseBody {
    /// A calendar month in the compound's time zone, `YYYY-MM`.
    month: Option<String>,
    /// Or an instant to close up to (exclusive).
    until: Option<DateTime<Utc>>,
    /// Compute and answer, change nothing.
    #[serde(default)]
    preview: bool,
}

fn month_end(tz: Tz, month: &str) -> Result<DateTime<Utc>, ApiError> {
    let bad = || {
        ApiError::invalid(
            ErrorCode::InvalidMonth,
            format!("month '{month}' is not YYYY-MM"),
        )
    };
    let first = NaiveDate::parse_from_str(&format!("{month}-01"), "%Y-%m-%d").map_err(|_| bad())?;
    let next = if first.month() == 12 {
        NaiveDate::from_ymd_opt(first.year() + 1, 1, 1)
    } else {
        NaiveDate::from_ymd_opt(first.year(), first.month() + 1, 1)
    }
    .ok_or_else(bad)?;
    Ok(parkshare_sharing::window::local_instant(
        tz,
        next.and_time(chrono::NaiveTime::MIN),
    ))
}

/// Close (or preview closing) the compound's next period.
#[utoipa::path(tag = "staff", operation_id = "close_period", security(("staff_token" = [])), request_body = CloseBody, responses((status = 201, description = "Closed", body = PeriodView), (status = 200, description = "A preview (nothing stored), or the period of that end closed already", body = PeriodView)))]
#[post("/compounds/{id}/periods/close")]
async fn close_period(
    state: web::Data<AppState>,
    staff: Staff,
    id: web::Path<Uuid>,
    body: crate::input::Json<CloseBody>,
) -> Result<HttpResponse, ApiError> {
    let mut tx = state.db.begin().await?;
    let (created_at, tz) = periods::lock_compound(&mut tx, staff.tenant_id, *id)
        .await?
        .ok_or(ApiError::NotFound("compound"))?;
    // Every payment or refund being booked to the compound lands before the close reads.
    ledger::lock_books(&mut tx, *id).await?;
    let tz: Tz = tz
        .parse()
        .map_err(|_| ApiError::Internal(anyhow::anyhow!("time zone {tz}")))?;
    let (until, label) = match (&body.month, body.until) {
        (Some(month), None) => (month_end(tz, month)?, month.clone()),
        // Postgres keeps microseconds: an end given finer would never match itself again.
        (None, Some(until)) => {
            let until = until.trunc_subsecs(6);
            let label = until
                .with_timezone(&tz)
                .format("%Y-%m-%d %H:%M")
                .to_string();
            (until, label)
        }
        _ => {
            return Err(ApiError::invalid(
                ErrorCode::InvalidPeriod,
                "give either month (YYYY-MM) or until",
            ))
        }
    };
    if let Some(closed) = periods::period_ending(&mut *tx, *id, until).await? {
        return Ok(HttpResponse::Ok().json(view(&closed, false)));
    }
    let starts_at = match periods::last_period(&mut *tx, *id).await? {
        Some(last) if last.ends_at > until => {
            return Err(ApiError::conflict(
                ErrorCode::PeriodAlreadyClosed,
                format!(
                    "the books are closed up to {}; a closed period is never rewritten",
                    last.ends_at
                ),
            ))
        }
        Some(last) => last.ends_at,
        None => created_at,
    };
    if until > state.clock.now() {
        return Err(ApiError::invalid(
            ErrorCode::PeriodNotOver,
            "a period can only be closed once it is over",
        ));
    }
    if until <= starts_at {
        return Err(ApiError::invalid(
            ErrorCode::EmptyPeriod,
            "the period would be empty",
        ));
    }
    let period = close(&mut tx, staff.tenant_id, *id, tz, &label, starts_at, until).await?;
    if body.preview {
        tx.rollback().await?;
        return Ok(HttpResponse::Ok().json(view(&period, true)));
    }
    match tx.commit().await {
        Ok(()) => Ok(HttpResponse::Created().json(view(&period, false))),
        // Another close of the same end won the race: answer it.
        Err(e) if is_unique_violation(&e, "accounting_periods_end_key") => {
            let closed = periods::period_ending(&state.db, *id, until)
                .await?
                .ok_or_else(|| ApiError::Internal(anyhow::anyhow!("period vanished")))?;
            Ok(HttpResponse::Ok().json(view(&closed, false)))
        }
        Err(e) => Err(e.into()),
    }
}

/// A closed period (or a preview of closing it) with its account.
#[derive(serde::Serialize, utoipa::ToSchema)]
struct PeriodView {
    id: Uuid,
    compound_id: Uuid,
    label: String,
    starts_at: DateTime<Utc>,
    ends_at: DateTime<Utc>,
    closed_at: DateTime<Utc>,
    /// The close's journal transaction (none when nothing was allocated).
    transaction_id: Option<Uuid>,
    /// A preview: nothing was stored.
    preview: bool,
    /// The account as frozen at the close: income by source, refunds, the split to the
    /// maintenance fund and the owners, balances and the use of the spaces (stored JSON,
    /// answered as stored; yuan as decimal strings).
    #[schema(value_type = Object)]
    summary: serde_json::Value,
}

fn view(period: &Period, preview: bool) -> PeriodView {
    PeriodView {
        id: period.id,
        compound_id: period.compound_id,
        label: period.label.clone(),
        starts_at: period.starts_at,
        ends_at: period.ends_at,
        closed_at: period.closed_at,
        transaction_id: period.transaction_id,
        preview,
        summary: period.summary.0.clone(),
    }
}

/// A closed period and every owner's statement for it.
#[derive(serde::Serialize, utoipa::ToSchema)]
struct PeriodStatements {
    period: PeriodView,
    statements: Vec<periods::Statement>,
}

/// Stays by kind and by kind of space, and cars inside by hour, over `[from, until)`.
async fn usage(
    tx: &mut PgConnection,
    compound_id: Uuid,
    tz: Tz,
    from: DateTime<Utc>,
    until: DateTime<Utc>,
) -> Result<serde_json::Value, ApiError> {
    use crate::store::disclosure;
    // Cars inside by hour, by the rule (`parkshare_domain::usage`) the disclosure page uses for
    // a period closed before its figures were frozen.
    let stays = disclosure::stays_between(&mut *tx, compound_id, from, until).await?;
    let by_hour = parkshare_domain::usage::by_hour(&stays, tz, from, until);
    Ok(json!({
        "occupancy_by_hour": by_hour,
        "sessions_by_kind": disclosure::sessions_by(&mut *tx, compound_id, from, until, false).await?,
        "sessions_by_space_kind": disclosure::sessions_by(&mut *tx, compound_id, from, until, true).await?,
    }))
}

async fn close(
    tx: &mut PgConnection,
    tenant_id: Uuid,
    compound_id: Uuid,
    tz: Tz,
    label: &str,
    starts_at: DateTime<Utc>,
    until: DateTime<Utc>,
) -> Result<Period, ApiError> {
    let unallocated = periods::unallocated_common_revenue(&mut *tx, compound_id, until).await?;
    // Net refunds can leave the account owing: nothing to allocate, carried to the next period.
    let amount =
        Money::total(unallocated.max(Decimal::ZERO)).map_err(|e| ApiError::Internal(e.into()))?;
    let policy = ledger::policy_in_force(&mut *tx, compound_id, until).await?;
    let owners: Vec<Share> = periods::floor_areas(&mut *tx, compound_id)
        .await?
        .into_iter()
        .map(|(owner_id, floor_area_m2)| Share {
            owner_id,
            floor_area_m2,
        })
        .collect();
    let split = split(amount, policy.maintenance_fund_pct, &owners)
        .map_err(|e| ApiError::Internal(e.into()))?;
    let entry = close_entry(compound_id, &split).map_err(|e| ApiError::Internal(e.into()))?;
    let key = format!("close:{compound_id}:{}", until.to_rfc3339());
    let memo = format!("公共收益结转 {label}");
    let transaction_id = match &entry {
        Some(entry) => {
            let t = NewTransaction {
                tenant_id,
                idempotency_key: &key,
                kind: "period_close",
                session_id: None,
                payment_id: None,
                booking_id: None,
                rental_id: None,
                compound_id: Some(compound_id),
                memo: &memo,
            };
            Some(ledger::post(&mut *tx, &t, entry).await?.0)
        }
        None => None,
    };
    let sources = periods::period_sources(&mut *tx, compound_id, starts_at, until).await?;
    let sum_where = |f: &dyn Fn(&periods::SourceLine) -> bool| -> Decimal {
        sources.iter().filter(|l| f(l)).map(|l| l.amount).sum()
    };
    let income_common = sum_where(&|l| l.account_kind == "common_revenue");
    let income = PeriodIncome::of(&sources);
    // Adds up line by line: opening + income.total − refunds − management = what is allocated
    // + closing (each a ledger figure; the income is gross, so nothing is subtracted twice).
    let summary = json!({
        "opening_unallocated": yuan(unallocated - income_common),
        "income": {
            "common_area_parking": yuan(income.common_area_parking),
            "visitor_pool": yuan(income.visitor_pool),
            "other": yuan(income.other),
            "total": yuan(income.gross()),
        },
        "refunds_in_period": yuan(income.refunds),
        "late_adjustments": yuan(sum_where(&|l| l.account_kind == "common_revenue" && l.late)),
        "management_cost": yuan(income.management),
        "shared_space_service_fees": yuan(sum_where(&|l| l.account_kind == "platform_fee_income")),
        "allocated": split.amount.to_string(),
        "maintenance_fund_pct": policy.maintenance_fund_pct.to_string(),
        "to_maintenance_fund": split.to_maintenance_fund.to_string(),
        "to_owners": yuan(split.to_owners.iter().map(|(_, m)| m.yuan()).sum()),
        "owners": split.to_owners.len(),
        "closing_unallocated": yuan(unallocated - split.amount.yuan()),
        "sources": sources,
        // The use of the spaces as it stood at the close: an entry recorded later with an
        // earlier time (a camera's offline backlog) does not rewrite a published period.
        "usage": usage(tx, compound_id, tz, starts_at, until).await?,
    });
    let id = Uuid::new_v4();
    let closed_at = periods::insert_period(
        &mut *tx,
        &NewPeriod {
            id,
            tenant_id,
            compound_id,
            label,
            starts_at,
            ends_at: until,
            summary: &summary,
            transaction_id,
        },
    )
    .await?;
    // Answered as stored.
    let period = Period {
        id,
        compound_id,
        label: label.to_owned(),
        starts_at,
        ends_at: until,
        summary: sqlx::types::Json(summary),
        transaction_id,
        closed_at,
    };
    for (share, (owner_id, credited)) in owners.iter().zip(&split.to_owners) {
        periods::insert_statement(
            &mut *tx,
            period.id,
            tenant_id,
            *owner_id,
            share.floor_area_m2,
            credited.yuan(),
        )
        .await?;
    }
    Ok(period)
}

/// A period's common income as an owner adds it up, from its source lines (ledger figures,
/// credits positive): what drivers paid for the common parts before refunds and the firm's
/// share, by source; the refunds of it; the firm's share net of its part of the refunds. The
/// common revenue the period added is `gross() − refunds − management`.
pub struct PeriodIncome {
    pub common_area_parking: Decimal,
    pub visitor_pool: Decimal,
    pub other: Decimal,
    pub refunds: Decimal,
    pub management: Decimal,
}

impl PeriodIncome {
    pub fn of(lines: &[periods::SourceLine]) -> PeriodIncome {
        let sum = |f: &dyn Fn(&periods::SourceLine) -> bool| -> Decimal {
            lines.iter().filter(|l| f(l)).map(|l| l.amount).sum()
        };
        let income = |l: &periods::SourceLine| {
            matches!(
                l.account_kind.as_str(),
                "common_revenue" | "management_income"
            )
        };
        let paid = |l: &periods::SourceLine| income(l) && l.transaction_kind != "refund";
        PeriodIncome {
            common_area_parking: sum(&|l| paid(l) && l.source == "common"),
            visitor_pool: sum(&|l| paid(l) && l.source == "visitor_pool"),
            other: sum(&|l| paid(l) && l.source != "common" && l.source != "visitor_pool"),
            refunds: -sum(&|l| income(l) && l.transaction_kind == "refund"),
            management: sum(&|l| l.account_kind == "management_income"),
        }
    }

    pub fn gross(&self) -> Decimal {
        self.common_area_parking + self.visitor_pool + self.other
    }
}

/// The compound's closed periods, oldest first.
#[utoipa::path(tag = "staff", operation_id = "list_periods", security(("staff_token" = [])), responses((status = 200, description = "Done", body = Vec<PeriodView>)))]
#[get("/compounds/{id}/periods")]
async fn list_periods(
    state: web::Data<AppState>,
    staff: Staff,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    if crate::store::registry::compound(&state.db, staff.tenant_id, *id)
        .await?
        .is_none()
    {
        return Err(ApiError::NotFound("compound"));
    }
    let listed: Vec<_> = periods::periods(&state.db, staff.tenant_id, *id)
        .await?
        .iter()
        .map(|p| view(p, false))
        .collect();
    Ok(HttpResponse::Ok().json(listed))
}

/// Every owner's statement for a closed period.
#[utoipa::path(tag = "staff", operation_id = "period_statements", security(("staff_token" = [])), responses((status = 200, description = "Done", body = PeriodStatements)))]
#[get("/periods/{id}/statements")]
async fn period_statements(
    state: web::Data<AppState>,
    staff: Staff,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    let period = periods::period(&state.db, staff.tenant_id, *id)
        .await?
        .ok_or(ApiError::NotFound("period"))?;
    let statements = periods::statements_of_period(&state.db, staff.tenant_id, period.id).await?;
    Ok(HttpResponse::Ok().json(PeriodStatements {
        period: view(&period, false),
        statements,
    }))
}

/// The owner's statements, newest first.
#[utoipa::path(tag = "owner", operation_id = "owner_statements", security(("owner_token" = [])), responses((status = 200, description = "Done", body = Vec<periods::Statement>)))]
#[get("/statements")]
async fn owner_statements(
    state: web::Data<AppState>,
    owner: Owner,
) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok()
        .json(periods::statements_of_owner(&state.db, owner.tenant_id, owner.owner_id).await?))
}
