//! What people see of the ledger: the property firm's accounts, journal and balance check;
//! an owner's earnings; a compound's revenue policies (recorded forward only).

use crate::error::ErrorCode;
use actix_web::{get, post, web, HttpResponse};
use chrono::{DateTime, Duration, NaiveDate, Utc};
use parkshare_ledger::{Account, AccountKind, RevenuePolicy};
use serde::Deserialize;
use uuid::Uuid;

use crate::auth::owned_compound;
use crate::auth::Staff;
use crate::error::ApiError;
use crate::state::AppState;
use crate::store::ledger::{self, JournalFilter};
use crate::store::payments;

/// A policy may take effect this much before "now" (clock skew), never earlier: a policy
/// never re-splits money already received.
const EFFECTIVE_SKEW_S: i64 = 60;

/// The firm's ledger accounts and balances.
#[utoipa::path(tag = "staff", operation_id = "ledger_accounts", security(("staff_token" = [])), responses((status = 200, description = "Done", body = Vec<ledger::AccountBalance>)))]
#[get("/ledger/accounts")]
async fn accounts(state: web::Data<AppState>, staff: Staff) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(ledger::accounts(&state.db, staff.tenant_id).await?))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct JournalQuery {
    session_id: Option<Uuid>,
    account_kind: Option<String>,
    account_holder: Option<Uuid>,
    /// A calendar day, `YYYY-MM-DD`, in `time_zone`.
    day: Option<NaiveDate>,
    /// The zone of `day` (IANA); default: the zone of the firm's compounds.
    time_zone: Option<String>,
    /// Where the previous page ended (its `next_cursor`).
    cursor: Option<String>,
    /// Transactions per page, 1 to [`ledger::JOURNAL_TRANSACTIONS_MAX`] (the default).
    limit: Option<i64>,
}

/// `<created_at in µs since the epoch>.<transaction id>`: opaque to clients. Also the cursor of
/// the refunds owed (`super::owed`), ordered the same way.
pub(crate) fn cursor_text((at, id): ledger::JournalCursor) -> String {
    format!("{}.{id}", at.timestamp_micros())
}

pub(crate) fn parse_cursor(text: &str) -> Result<ledger::JournalCursor, ApiError> {
    let bad = || {
        ApiError::invalid(
            ErrorCode::InvalidCursor,
            "cursor: not a cursor this journal gave",
        )
    };
    let (micros, id) = text.split_once('.').ok_or_else(bad)?;
    let at = micros
        .parse::<i64>()
        .ok()
        .and_then(chrono::DateTime::from_timestamp_micros)
        .ok_or_else(bad)?;
    Ok((at, id.parse().map_err(|_| bad())?))
}

/// A list read a page at a time, oldest first, by `(instant, id)`: how many to answer and
/// after which row. `limit` is 1 to `max` (`max` when absent).
pub(crate) struct Page {
    pub limit: i64,
    pub after: Option<ledger::JournalCursor>,
}

impl Page {
    pub(crate) fn of(limit: Option<i64>, cursor: Option<&str>, max: i64) -> Result<Page, ApiError> {
        let limit = limit.unwrap_or(max);
        if !(1..=max).contains(&limit) {
            return Err(ApiError::invalid(
                ErrorCode::InvalidLimit,
                format!("limit must be 1 to {max}"),
            ));
        }
        Ok(Page {
            limit,
            after: cursor.map(parse_cursor).transpose()?,
        })
    }

    /// The answer for `rows`, read with `limit + 1`: at most `limit` items, whether more
    /// follow, and the cursor to ask for them with (`null` at the end).
    pub(crate) fn answer<T: serde::Serialize>(
        &self,
        mut rows: Vec<T>,
        key: impl Fn(&T) -> ledger::JournalCursor,
    ) -> Paged<T> {
        let truncated = rows.len() as i64 > self.limit;
        rows.truncate(usize::try_from(self.limit).unwrap_or(0));
        let next_cursor = truncated
            .then(|| rows.last().map(|last| cursor_text(key(last))))
            .flatten();
        Paged {
            items: rows,
            truncated,
            next_cursor,
        }
    }
}

/// A page of a list, oldest first.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub(crate) struct Paged<T> {
    pub items: Vec<T>,
    /// More follow: ask again with `cursor=<next_cursor>`.
    pub truncated: bool,
    pub next_cursor: Option<String>,
}

/// `[start, end)` of `day` in `zone`, or the firm's compounds' zone when there is one.
async fn day_range(
    state: &AppState,
    tenant_id: Uuid,
    day: NaiveDate,
    zone: Option<&str>,
) -> Result<(chrono::DateTime<Utc>, chrono::DateTime<Utc>), ApiError> {
    let zone: chrono_tz::Tz = match zone {
        Some(zone) => crate::validate::time_zone("time_zone", zone)?,
        None => match ledger::firm_time_zones(&state.db, tenant_id).await?.as_slice() {
            [] => chrono_tz::UTC,
            [one] => crate::validate::time_zone("time_zone", one)?,
            _ => {
                return Err(ApiError::invalid(
                    ErrorCode::TimeZoneRequired,
                    "the firm's compounds are in several time zones: say which day is meant with time_zone",
                ))
            }
        },
    };
    let start = |d: NaiveDate| {
        d.and_hms_opt(0, 0, 0)
            .and_then(|t| t.and_local_timezone(zone).earliest())
            .map(|t| t.with_timezone(&Utc))
    };
    match (start(day), day.succ_opt().and_then(start)) {
        (Some(from), Some(to)) => Ok((from, to)),
        _ => Err(ApiError::invalid(
            ErrorCode::InvalidQuery,
            "day: no such day",
        )),
    }
}

/// The journal by session, by account or by day, a page of whole transactions at a time:
/// `{"lines", "next_cursor", "truncated"}`; ask again with `cursor=<next_cursor>` while
/// `truncated` is true.
#[utoipa::path(tag = "staff", operation_id = "ledger_journal", params(JournalQuery), security(("staff_token" = [])), responses((status = 200, description = "Done", body = JournalPage)))]
#[get("/ledger/journal")]
async fn journal(
    state: web::Data<AppState>,
    staff: Staff,
    q: web::Query<JournalQuery>,
) -> Result<HttpResponse, ApiError> {
    let account = match (&q.account_kind, q.account_holder) {
        (Some(kind), Some(holder)) => Some(Account::new(
            AccountKind::parse(kind).ok_or_else(|| {
                ApiError::invalid(
                    ErrorCode::UnknownAccountKind,
                    format!("no account kind {kind}"),
                )
            })?,
            holder,
        )),
        (None, None) => None,
        _ => {
            return Err(ApiError::invalid(
                ErrorCode::InvalidQuery,
                "account_kind and account_holder go together",
            ))
        }
    };
    let limit = q.limit.unwrap_or(ledger::JOURNAL_TRANSACTIONS_MAX);
    if !(1..=ledger::JOURNAL_TRANSACTIONS_MAX).contains(&limit) {
        return Err(ApiError::invalid(
            ErrorCode::InvalidQuery,
            format!("limit: 1 to {}", ledger::JOURNAL_TRANSACTIONS_MAX),
        ));
    }
    let after = q.cursor.as_deref().map(parse_cursor).transpose()?;
    let created = match q.day {
        Some(day) => Some(day_range(&state, staff.tenant_id, day, q.time_zone.as_deref()).await?),
        None => None,
    };
    let filter = JournalFilter {
        session_id: q.session_id,
        account,
        created,
    };
    // One snapshot for both statements of the page.
    let mut tx = state.db.begin().await?;
    sqlx::query("set transaction isolation level repeatable read, read only")
        .execute(&mut *tx)
        .await?;
    let (lines, next) =
        ledger::journal_page(&mut tx, staff.tenant_id, &filter, after, limit).await?;
    tx.commit().await?;
    Ok(HttpResponse::Ok().json(JournalPage {
        lines,
        truncated: next.is_some(),
        next_cursor: next.map(cursor_text),
    }))
}

/// A page of the journal: whole transactions, oldest first.
#[derive(serde::Serialize, utoipa::ToSchema)]
struct JournalPage {
    lines: Vec<ledger::JournalLine>,
    /// More follow: ask again with `cursor=<next_cursor>`.
    truncated: bool,
    next_cursor: Option<String>,
}

/// What recomputing the ledger from its postings found.
#[derive(serde::Serialize, utoipa::ToSchema)]
struct LedgerCheck {
    /// None of the lists below has an entry.
    ok: bool,
    balance_differences: Vec<ledger::BalanceDifference>,
    unbalanced_transactions: Vec<Uuid>,
    transactions_without_postings: Vec<Uuid>,
}

/// Recomputes every balance from the postings and reports any account whose cached balance
/// differs, any transaction that does not balance and any with no postings. `ok` is true when
/// there is none of them.
#[utoipa::path(tag = "staff", operation_id = "check_ledger", security(("staff_token" = [])), responses((status = 200, description = "Done", body = LedgerCheck)))]
#[get("/ledger/check")]
async fn check(state: web::Data<AppState>, staff: Staff) -> Result<HttpResponse, ApiError> {
    let differences = ledger::balance_differences(&state.db, staff.tenant_id).await?;
    let unbalanced = ledger::unbalanced_transactions(&state.db, staff.tenant_id).await?;
    let empty = ledger::transactions_without_postings(&state.db, staff.tenant_id).await?;
    Ok(HttpResponse::Ok().json(LedgerCheck {
        ok: differences.is_empty() && unbalanced.is_empty() && empty.is_empty(),
        balance_differences: differences,
        unbalanced_transactions: unbalanced,
        transactions_without_postings: empty,
    }))
}

/// An owner's payable balance and earnings per month; staff read it here, owners at
/// `GET /v1/owner/earnings`.
#[utoipa::path(tag = "staff", operation_id = "owner_earnings", security(("staff_token" = [])), responses((status = 200, description = "Done", body = Earnings)))]
#[get("/owners/{id}/earnings")]
async fn owner_earnings(
    state: web::Data<AppState>,
    staff: Staff,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    if !crate::store::registry::owner_of_tenant(&state.db, staff.tenant_id, *id).await? {
        return Err(ApiError::NotFound("owner"));
    }
    Ok(HttpResponse::Ok().json(earnings(&state.db, staff.tenant_id, *id).await?))
}

/// An owner's balance owed and credited earnings per month.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct Earnings {
    owner_id: Uuid,
    /// What the owner is owed now (yuan).
    #[schema(example = "120.00")]
    balance: String,
    months: Vec<payments::MonthlyEarnings>,
}

/// The owner's balance owed and credited earnings per month.
pub async fn earnings(
    db: &sqlx::PgPool,
    tenant_id: Uuid,
    owner_id: Uuid,
) -> Result<Earnings, ApiError> {
    let account = Account::new(AccountKind::OwnerPayable, owner_id);
    let balance = ledger::balance(db, tenant_id, &account).await?;
    Ok(Earnings {
        owner_id,
        // A payable balance is a credit: shown as what the owner is owed.
        balance: crate::store::yuan_text(-balance),
        months: payments::owner_earnings(db, owner_id).await?,
    })
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct PolicyBody {
    /// How the compound's common revenue is split (shares of the owners and the firm).
    #[schema(value_type = Object)]
    policy: RevenuePolicy,
    effective_from: Option<DateTime<Utc>>,
}

/// Add a revenue policy, effective now or later.
#[utoipa::path(tag = "staff", operation_id = "create_policy", security(("staff_token" = [])), request_body = PolicyBody, responses((status = 201, description = "Created", body = ledger::StoredPolicy)))]
#[post("/compounds/{id}/revenue-policies")]
async fn create_policy(
    state: web::Data<AppState>,
    staff: Staff,
    id: web::Path<Uuid>,
    body: crate::input::Json<PolicyBody>,
) -> Result<HttpResponse, ApiError> {
    let compound = owned_compound(&state, &staff, *id).await?;
    body.policy
        .validate()
        .map_err(|e| ApiError::invalid(ErrorCode::InvalidPolicy, e.to_string()))?;
    let now = state.clock.now();
    let effective_from = body.effective_from.unwrap_or(now);
    if effective_from < now - Duration::seconds(EFFECTIVE_SKEW_S) {
        return Err(ApiError::invalid(
            ErrorCode::RetroactivePolicy,
            "effective_from must not be in the past",
        ));
    }
    let stored = ledger::insert_policy(
        &state.db,
        staff.tenant_id,
        compound.id,
        &body.policy,
        effective_from,
    )
    .await
    .map_err(|e| {
        match crate::error::is_unique_violation(
            &e,
            "revenue_policies_compound_id_effective_from_key",
        ) {
            true => ApiError::conflict(
                ErrorCode::PolicyExists,
                "a policy already takes effect at that instant",
            ),
            false => e.into(),
        }
    })?;
    Ok(HttpResponse::Created().json(stored))
}

/// The compound's revenue policies, by effective date.
#[utoipa::path(tag = "staff", operation_id = "list_policies", security(("staff_token" = [])), responses((status = 200, description = "Done", body = Vec<ledger::StoredPolicy>)))]
#[get("/compounds/{id}/revenue-policies")]
async fn list_policies(
    state: web::Data<AppState>,
    staff: Staff,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    let compound = owned_compound(&state, &staff, *id).await?;
    Ok(HttpResponse::Ok().json(ledger::policies(&state.db, staff.tenant_id, compound.id).await?))
}

pub fn admin_routes(cfg: &mut utoipa_actix_web::service_config::ServiceConfig) {
    cfg.service(accounts)
        .service(journal)
        .service(check)
        .service(owner_earnings)
        .service(create_policy)
        .service(list_policies);
}
