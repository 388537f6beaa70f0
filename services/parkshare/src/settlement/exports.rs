//! A closed period's journal for the accountant: CSV, and beancount plain-text double entry
//! (the pure `parkshare_ledger::beancount`).

use crate::error::ErrorCode;
use actix_web::{get, web, HttpResponse};
use chrono_tz::Tz;
use parkshare_ledger::beancount::{self, Transaction};
use parkshare_ledger::{Account, AccountKind, Posting};
use uuid::Uuid;

use crate::auth::Staff;
use crate::error::ApiError;
use crate::state::AppState;
use crate::store::periods::{self, JournalLine, Period};
use crate::store::registry;

pub fn admin_routes(cfg: &mut utoipa_actix_web::service_config::ServiceConfig) {
    cfg.service(journal_csv)
        .service(journal_beancount)
        .service(firm_journal_csv);
}

#[derive(serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct FirmJournalQuery {
    from: chrono::DateTime<chrono::Utc>,
    to: chrono::DateTime<chrono::Utc>,
}

/// The longest span one firm journal export covers.
const FIRM_JOURNAL_DAYS_MAX: i64 = 366;

/// The firm's own transactions, of no compound (a settlement file's fee for a row that matches
/// none of our payments), booked in `[from, to)`, as CSV like a period's journal: with the
/// periods' journals of its compounds it sums to the ledger.
#[utoipa::path(tag = "staff", operation_id = "firm_journal_csv", params(FirmJournalQuery), security(("staff_token" = [])), responses((status = 200, description = "The transactions as CSV", body = String, content_type = "text/csv; charset=utf-8")))]
#[get("/ledger/firm-journal.csv")]
async fn firm_journal_csv(
    state: web::Data<AppState>,
    staff: Staff,
    query: web::Query<FirmJournalQuery>,
) -> Result<HttpResponse, ApiError> {
    if query.to <= query.from
        || query.to - query.from > chrono::Duration::days(FIRM_JOURNAL_DAYS_MAX)
    {
        return Err(ApiError::invalid(
            ErrorCode::InvalidRange,
            format!("to must be after from, by at most {FIRM_JOURNAL_DAYS_MAX} days"),
        ));
    }
    let lines = periods::firm_journal(&state.db, staff.tenant_id, query.from, query.to).await?;
    journal_csv_response(&lines, "firm-journal.csv")
}

/// Journal lines as a CSV attachment, one row per posting.
fn journal_csv_response(lines: &[JournalLine], filename: &str) -> Result<HttpResponse, ApiError> {
    let mut out = crate::spreadsheet::SpreadsheetCsv::default();
    for line in lines {
        out.serialize(line).map_err(ApiError::internal)?;
    }
    let body = out.into_bytes().map_err(ApiError::internal)?;
    Ok(HttpResponse::Ok()
        .content_type("text/csv; charset=utf-8")
        .insert_header((
            "Content-Disposition",
            format!("attachment; filename=\"{filename}\""),
        ))
        .body(body))
}

/// Whose period it may be: the firm's (staff) or, for a committee, one compound's only.
pub struct Reader {
    pub tenant_id: Uuid,
    pub compound_id: Option<Uuid>,
}

impl From<&Staff> for Reader {
    fn from(staff: &Staff) -> Reader {
        Reader {
            tenant_id: staff.tenant_id,
            compound_id: None,
        }
    }
}

async fn lines(
    state: &AppState,
    reader: &Reader,
    id: Uuid,
) -> Result<(Period, String, Tz, Vec<JournalLine>), ApiError> {
    let period = periods::period(&state.db, reader.tenant_id, id)
        .await?
        .filter(|p| reader.compound_id.is_none_or(|c| c == p.compound_id))
        .ok_or(ApiError::NotFound("period"))?;
    let compound = registry::compound(&state.db, reader.tenant_id, period.compound_id)
        .await?
        .ok_or(ApiError::NotFound("period"))?;
    let tz = compound.zone()?;
    let lines = periods::period_journal(
        &state.db,
        reader.tenant_id,
        period.compound_id,
        period.starts_at,
        period.ends_at,
        period.transaction_id,
    )
    .await?;
    Ok((period, compound.name, tz, lines))
}

/// The period's postings, one row each.
#[utoipa::path(tag = "staff", operation_id = "journal_csv", security(("staff_token" = [])), responses((status = 200, description = "The postings as CSV, one row each", body = String, content_type = "text/csv; charset=utf-8")))]
#[get("/periods/{id}/journal.csv")]
async fn journal_csv(
    state: web::Data<AppState>,
    staff: Staff,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    csv_of(&state, &Reader::from(&staff), *id).await
}

/// The period's postings as CSV, for whoever may read the period.
pub async fn csv_of(state: &AppState, reader: &Reader, id: Uuid) -> Result<HttpResponse, ApiError> {
    let (period, _, _, lines) = lines(state, reader, id).await?;
    journal_csv_response(&lines, &format!("journal-{}.csv", period.label))
}

/// The period's journal in beancount syntax; it balances and opens in bean-check and Fava.
#[utoipa::path(tag = "staff", operation_id = "journal_beancount", security(("staff_token" = [])), responses((status = 200, description = "The journal in beancount syntax", body = String, content_type = "text/plain; charset=utf-8")))]
#[get("/periods/{id}/journal.beancount")]
async fn journal_beancount(
    state: web::Data<AppState>,
    staff: Staff,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    beancount_of(&state, &Reader::from(&staff), *id).await
}

/// The period's journal in beancount syntax, for whoever may read the period.
pub async fn beancount_of(
    state: &AppState,
    reader: &Reader,
    id: Uuid,
) -> Result<HttpResponse, ApiError> {
    let (period, compound, tz, lines) = lines(state, reader, id).await?;
    let mut transactions: Vec<Transaction> = Vec::new();
    for line in &lines {
        let kind = AccountKind::parse(&line.account_kind)
            .ok_or_else(|| ApiError::internal(format!("account kind {}", line.account_kind)))?;
        let posting = Posting {
            account: Account::new(kind, line.account_holder),
            amount: line.amount,
        };
        match transactions.last_mut() {
            Some(t) if t.id == line.transaction_id => t.postings.push(posting),
            _ => transactions.push(Transaction {
                date: line.created_at.with_timezone(&tz).date_naive(),
                id: line.transaction_id,
                narration: format!("{} {}", line.kind, line.memo),
                postings: vec![posting],
            }),
        }
    }
    let text = beancount::render(&format!("{compound} {}", period.label), &transactions);
    Ok(HttpResponse::Ok()
        .content_type("text/plain; charset=utf-8")
        .body(text))
}
