//! Reconciliation with a provider's settlement file: `POST /v1/admin/reconciliations` with
//! the CSV (`provider_transaction_id,time,amount,fee,refund`) as the body and the period our
//! side is compared over (`?provider=simulated&from=…&to=…`). Every malformed row is reported
//! with its line and nothing is recorded; a good file is matched (the pure
//! `parkshare_ledger::reconcile`), its fees are booked once (provider_fees against the
//! clearing account) and the report kept. Importing the same file again answers the first
//! import.

use crate::error::ErrorCode;
use std::collections::{BTreeMap, HashMap};

use actix_web::{get, post, web, HttpResponse};
use chrono::{DateTime, Utc};
use parkshare_domain::money::Money;
use parkshare_ledger::reconcile::{self, parse_row, Received, RowError, SettlementRow, COLUMNS};
use parkshare_ledger::{Account, AccountKind, Entry, Posting};
use serde::Deserialize;
use serde_json::json;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::store::reconciliation::{self as store, NewReconciliation, Reconciliation};
use crate::auth::Staff;
use crate::error::{is_unique_violation, ApiError};
use crate::state::AppState;
use crate::store::ledger::{self, NewTransaction};

/// Rows in one settlement file: a provider's day for a large firm is well below this.
const ROWS_MAX: usize = 100_000;
/// The providers we can reconcile.
const PROVIDERS: [&str; 1] = ["simulated"];

pub fn admin_routes(cfg: &mut utoipa_actix_web::service_config::ServiceConfig) {
    cfg.service(import).service(list);
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct ImportQuery {
    provider: String,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
}

fn rejected(errors: Vec<RowError>) -> HttpResponse {
    HttpResponse::UnprocessableEntity().json(json!({
        "error": {
            "code": ErrorCode::SettlementFileRejected,
            "message": format!("{} row(s) are invalid; nothing was imported", errors.len()),
            "rows": errors,
        }
    }))
}

fn parse(body: &[u8]) -> Result<Result<Vec<SettlementRow>, Vec<RowError>>, ApiError> {
    let mut reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .from_reader(body);
    let headers = reader.headers().map_err(|e| {
        ApiError::invalid(
            ErrorCode::InvalidSettlementFile,
            format!("unreadable header: {e}"),
        )
    })?;
    if headers.iter().collect::<Vec<_>>() != COLUMNS {
        return Err(ApiError::invalid(
            ErrorCode::InvalidSettlementFile,
            format!("the header must be {}", COLUMNS.join(",")),
        ));
    }
    let mut rows = Vec::new();
    let mut errors = Vec::new();
    for (n, record) in reader.records().enumerate() {
        if n >= ROWS_MAX {
            return Err(ApiError::invalid(
                ErrorCode::TooManyRows,
                format!("at most {ROWS_MAX} rows per file"),
            ));
        }
        let line = n as u64 + 2;
        let parsed = match record {
            Ok(r) if r.len() == COLUMNS.len() => {
                parse_row(line, [&r[0], &r[1], &r[2], &r[3], &r[4]])
            }
            Ok(r) => Err(RowError {
                line,
                field: "row",
                message: format!("{} fields, expected {}", r.len(), COLUMNS.len()),
            }),
            Err(e) => Err(RowError {
                line,
                field: "row",
                message: e.to_string(),
            }),
        };
        match parsed {
            Ok(row) => rows.push(row),
            Err(e) => errors.push(e),
        }
    }
    errors.extend(reconcile::repeated(&rows));
    errors.sort_by_key(|e| e.line);
    Ok(if errors.is_empty() {
        Ok(rows)
    } else {
        Err(errors)
    })
}

/// An imported settlement file and what reconciling it found.
#[derive(serde::Serialize, utoipa::ToSchema)]
struct ReconciliationView {
    id: Uuid,
    provider: String,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    /// Rows in the file.
    rows: i32,
    /// What reconciling found: matched, missing on either side, differing amounts, fees
    /// (stored JSON, answered as stored; yuan as decimal strings).
    #[schema(value_type = Object)]
    report: serde_json::Value,
    /// The fees' journal transactions, one per compound whose payments the rows matched
    /// (`compound_id` null: the firm's part): `{compound_id, amount, transaction_id}`.
    #[schema(value_type = Vec<Object>)]
    fee_transactions: serde_json::Value,
    created_at: DateTime<Utc>,
}

fn view(r: &Reconciliation) -> ReconciliationView {
    let mut report = r.report.0.clone();
    // Imports from before fees were booked per compound name one transaction for the firm.
    let fees = report
        .as_object_mut()
        .and_then(|o| o.remove("fee_transactions"))
        .unwrap_or_else(|| match r.fee_transaction_id {
            Some(id) => {
                json!([{"compound_id": null, "amount": report["fees"], "transaction_id": id}])
            }
            None => json!([]),
        });
    ReconciliationView {
        id: r.id,
        provider: r.provider.clone(),
        from: r.covers_from,
        to: r.covers_to,
        rows: r.rows,
        report,
        fee_transactions: fees,
        created_at: r.created_at,
    }
}

/// The file's fees grouped by the compound whose payment each row matched (`None`: a row that
/// matched none of our payments), so that each compound's period journal carries its own fees.
/// Compounds in order of id, the firm's part last; groups with no fee are left out.
fn fees_by_compound(
    rows: &[SettlementRow],
    compound_of: &HashMap<&str, Uuid>,
) -> Vec<(Option<Uuid>, Money)> {
    let mut grouped: BTreeMap<Option<Uuid>, Money> = BTreeMap::new();
    for row in rows {
        let compound = compound_of
            .get(row.provider_transaction_id.as_str())
            .copied();
        let fee = grouped.entry(compound).or_insert(Money::ZERO);
        *fee = *fee + row.fee;
    }
    let mut fees: Vec<_> = grouped.into_iter().filter(|(_, f)| !f.is_zero()).collect();
    fees.sort_by_key(|(compound, _)| (compound.is_none(), *compound));
    fees
}

/// Books one compound's share of a file's fees (or the firm's, for rows that matched nothing):
/// `provider_fees` against `provider_clearing`, once per file and compound.
async fn post_fees(
    tx: &mut sqlx::PgConnection,
    tenant_id: Uuid,
    query: &ImportQuery,
    file_hex: &str,
    compound_id: Option<Uuid>,
    amount: Money,
) -> Result<Uuid, ApiError> {
    let entry = Entry::new([
        Posting {
            account: Account::new(AccountKind::ProviderFees, tenant_id),
            amount: amount.yuan(),
        },
        Posting {
            account: Account::new(AccountKind::ProviderClearing, tenant_id),
            amount: -amount.yuan(),
        },
    ])
    .map_err(|e| ApiError::Internal(e.into()))?;
    let key = match compound_id {
        Some(c) => format!("recon:{file_hex}:{c}"),
        None => format!("recon:{file_hex}"),
    };
    let memo = format!(
        "支付渠道手续费 {} {}–{}",
        query.provider,
        query.from.date_naive(),
        query.to.date_naive()
    );
    let t = NewTransaction {
        tenant_id,
        idempotency_key: &key,
        kind: "provider_fees",
        session_id: None,
        payment_id: None,
        booking_id: None,
        rental_id: None,
        compound_id,
        memo: &memo,
    };
    Ok(ledger::post(tx, &t, &entry).await?.0)
}

/// Import a provider's settlement file and reconcile it.
#[utoipa::path(
    tag = "staff",
    operation_id = "import_settlement_file",
    security(("staff_token" = [])),
    params(ImportQuery),
    request_body(
        content = String,
        content_type = "text/csv",
        description = "The provider's settlement file for `[from, to)` as CSV, one row per transaction",
    ),
    responses(
        (status = 201, description = "The reconciliation: matched, missing on either side, differing amounts", body = ReconciliationView),
        (status = 200, description = "This file was imported already: its reconciliation", body = ReconciliationView),
        (status = 422, description = "The file is refused whole: `settlement_file_rejected` with its rows' faults, or `invalid_settlement_file`", body = crate::error::ErrorBody),
    )
)]
#[post("/reconciliations")]
async fn import(
    state: web::Data<AppState>,
    staff: Staff,
    query: web::Query<ImportQuery>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    if !PROVIDERS.contains(&query.provider.as_str()) {
        return Err(ApiError::invalid(
            ErrorCode::UnknownProvider,
            format!("provider must be one of {}", PROVIDERS.join(", ")),
        ));
    }
    if query.to <= query.from {
        return Err(ApiError::invalid(
            ErrorCode::EmptyRange,
            "to must be after from",
        ));
    }
    let sha256 = Sha256::digest(&body).to_vec();
    if let Some(earlier) = store::by_file(&state.db, staff.tenant_id, &sha256).await? {
        return Ok(HttpResponse::Ok().json(view(&earlier)));
    }
    let rows = match parse(&body)? {
        Ok(rows) => rows,
        Err(errors) => return Ok(rejected(errors)),
    };
    let named: Vec<String> = rows
        .iter()
        .map(|r| r.provider_transaction_id.clone())
        .collect();
    let mut tx = state.db.begin().await?;
    let received = store::received(
        &mut *tx,
        staff.tenant_id,
        &query.provider,
        &named,
        query.from,
        query.to,
    )
    .await?;
    let ours: Vec<Received> = received
        .iter()
        .map(|r| {
            Ok(Received {
                provider_transaction_id: r.notification_id.clone(),
                amount: Money::total(r.amount)?,
                refunded: Money::total(r.refunded)?,
            })
        })
        .collect::<Result<_, parkshare_domain::money::MoneyError>>()
        .map_err(|e| ApiError::Internal(e.into()))?;
    let report = reconcile::reconcile(&rows, &ours);
    let hex = hex::encode(&sha256);
    let compound_of: HashMap<&str, Uuid> = received
        .iter()
        .filter_map(|r| Some((r.notification_id.as_str(), r.compound_id?)))
        .collect();
    let mut fees = Vec::new();
    for (compound_id, amount) in fees_by_compound(&rows, &compound_of) {
        let transaction_id =
            post_fees(&mut tx, staff.tenant_id, &query, &hex, compound_id, amount).await?;
        fees.push(json!({
            "compound_id": compound_id, "amount": amount.to_string(), "transaction_id": transaction_id,
        }));
    }
    let mut report_json =
        serde_json::to_value(&report).map_err(|e| ApiError::Internal(e.into()))?;
    report_json["fee_transactions"] = serde_json::Value::Array(fees);
    let id = Uuid::new_v4();
    store::insert(
        &mut *tx,
        &NewReconciliation {
            id,
            tenant_id: staff.tenant_id,
            provider: &query.provider,
            sha256: &sha256,
            from: query.from,
            to: query.to,
            rows: i32::try_from(rows.len()).unwrap_or(i32::MAX),
            report: &report_json,
        },
    )
    .await?;
    match tx.commit().await {
        Ok(()) => {}
        // The same file raced in twice: answer the one that landed.
        Err(e) if is_unique_violation(&e, "reconciliations_file_key") => {}
        Err(e) => return Err(e.into()),
    }
    let stored = store::by_file(&state.db, staff.tenant_id, &sha256)
        .await?
        .ok_or_else(|| ApiError::Internal(anyhow::anyhow!("reconciliation vanished")))?;
    let status = if stored.id == id {
        actix_web::http::StatusCode::CREATED
    } else {
        actix_web::http::StatusCode::OK
    };
    Ok(HttpResponse::build(status).json(view(&stored)))
}

/// Earlier reconciliations, newest first.
#[utoipa::path(tag = "staff", operation_id = "list_reconciliations", security(("staff_token" = [])), responses((status = 200, description = "Done", body = Vec<ReconciliationView>)))]
#[get("/reconciliations")]
async fn list(state: web::Data<AppState>, staff: Staff) -> Result<HttpResponse, ApiError> {
    let listed: Vec<_> = store::list(&state.db, staff.tenant_id)
        .await?
        .iter()
        .map(view)
        .collect();
    Ok(HttpResponse::Ok().json(listed))
}
