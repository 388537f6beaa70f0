//! Public pages, no login: what a session costs now (kiosks, mini-programs) and each lot's
//! price board (明码标价). A lot is addressed by its id, which is not guessable.

use crate::error::ErrorCode;
use actix_web::{get, web, HttpResponse};
use chrono::{DateTime, Utc};
use parkshare_domain::plate::Plate;
use parkshare_tariff::words;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::billing::{self, LotRules, Priced};
use crate::error::ApiError;
use crate::state::AppState;
use crate::store::sessions::Session;
use crate::store::{registry, sessions, tariffs};

pub fn routes(cfg: &mut utoipa_actix_web::service_config::ServiceConfig) {
    cfg.service(quote)
        .service(price_board)
        .service(price_board_html);
}

/// What a session would cost if it left at `at`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Quote {
    pub session_id: Uuid,
    pub plate: String,
    pub entered_at: Option<DateTime<Utc>>,
    pub at: DateTime<Utc>,
    pub fee: String,
    pub paid: String,
    pub amount_due: String,
    pub filing_no: Option<String>,
    /// The itemised bill: each charged period, the caps applied, the total.
    #[schema(value_type = Object)]
    pub bill: parkshare_tariff::Bill,
}

pub async fn quote_session(
    db: &mut sqlx::PgConnection,
    rules: &LotRules,
    session: &Session,
    at: DateTime<Utc>,
) -> Result<Quote, ApiError> {
    // Reads only, no transaction: a quote is a price at `at`, not a promise.
    let Priced {
        bill, filing_no, ..
    } = billing::price(db, rules, session, at).await?;
    let paid = parkshare_domain::money::Money::total(session.paid)
        .map_err(|e| ApiError::Internal(e.into()))?;
    Ok(Quote {
        session_id: session.id,
        plate: session.plate.clone(),
        entered_at: session.entered_at,
        at,
        fee: bill.total.to_string(),
        paid: paid.to_string(),
        amount_due: bill.total.saturating_sub(paid).to_string(),
        filing_no,
        bill,
    })
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct QuoteQuery {
    plate: String,
    at: Option<DateTime<Utc>>,
}

/// What a plate's stay costs now, itemised.
#[utoipa::path(tag = "public", operation_id = "public_quote", params(QuoteQuery), responses((status = 200, description = "Done", body = Quote)))]
#[get("/v1/public/lots/{lot_id}/quote")]
async fn quote(
    state: web::Data<AppState>,
    lot_id: web::Path<Uuid>,
    q: web::Query<QuoteQuery>,
) -> Result<HttpResponse, ApiError> {
    let plate = Plate::parse(&q.plate)
        .map_err(|e| ApiError::invalid(ErrorCode::MalformedPlate, e.to_string()))?;
    let mut db = state.db.acquire().await?;
    let rules = registry::lot_rules(&mut *db, *lot_id)
        .await?
        .ok_or(ApiError::NotFound("lot"))?;
    let session = sessions::open_session(&mut *db, rules.lot_id, plate.as_str())
        .await?
        .ok_or(ApiError::NotFound("parking session"))?;
    let at = q.at.unwrap_or_else(|| state.clock.now());
    Ok(HttpResponse::Ok().json(quote_session(&mut db, &rules, &session, at).await?))
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
struct PriceBoard {
    compound: String,
    lot: String,
    /// `filed` or `not_filed` (a draft tariff no driver should be charged by).
    status: &'static str,
    filing_no: Option<String>,
    effective_from: Option<DateTime<Utc>>,
    basis: Option<String>,
    resolution_no: Option<String>,
    standard: Option<String>,
    standard_document: Option<String>,
    lines: Vec<String>,
    #[schema(value_type = Object)]
    tariff: parkshare_tariff::Tariff,
}

async fn board(state: &AppState, lot_id: Uuid) -> Result<PriceBoard, ApiError> {
    let (compound, lot) = registry::lot_names(&state.db, lot_id)
        .await?
        .ok_or(ApiError::NotFound("lot"))?;
    let rules = registry::lot_rules(&state.db, lot_id)
        .await?
        .ok_or(ApiError::NotFound("lot"))?;
    Ok(
        match tariffs::filed_in_force(&state.db, lot_id, state.clock.now()).await? {
            Some(f) => PriceBoard {
                compound,
                lot,
                status: "filed",
                lines: words::describe(&f.tariff),
                filing_no: Some(f.filing_no),
                effective_from: Some(f.effective_from),
                basis: Some(f.basis),
                resolution_no: f.resolution_no,
                standard: Some(f.standard_name),
                standard_document: Some(f.standard_document),
                tariff: f.tariff,
            },
            None => PriceBoard {
                compound,
                lot,
                status: "not_filed",
                lines: words::describe(&rules.draft_tariff),
                filing_no: None,
                effective_from: None,
                basis: None,
                resolution_no: None,
                standard: None,
                standard_document: None,
                tariff: rules.draft_tariff,
            },
        },
    )
}

/// The lot's filed tariff in words, its filing number and standard (明码标价).
#[utoipa::path(tag = "public", operation_id = "price_board", responses((status = 200, description = "Done", body = PriceBoard)))]
#[get("/v1/public/lots/{lot_id}/price-board")]
async fn price_board(
    state: web::Data<AppState>,
    lot_id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(board(&state, *lot_id).await?))
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The price board as a page.
#[utoipa::path(tag = "public", operation_id = "price_board_html", responses((status = 200, description = "The page (HTML, no script, no outside resource)", body = String, content_type = "text/html; charset=utf-8")))]
#[get("/v1/public/lots/{lot_id}/price-board.html")]
async fn price_board_html(
    state: web::Data<AppState>,
    lot_id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    let b = board(&state, *lot_id).await?;
    let items: String = b
        .lines
        .iter()
        .map(|l| format!("<li>{}</li>", escape(l)))
        .collect();
    let filing = match (&b.filing_no, &b.standard_document) {
        (Some(no), Some(doc)) => format!(
            "<p>备案号：{}</p><p>执行标准：{}（{}）</p>",
            escape(no),
            escape(b.standard.as_deref().unwrap_or("")),
            escape(doc)
        ),
        _ => "<p class=\"warn\">本收费标准尚未备案</p>".to_owned(),
    };
    let html = format!(
        "<!doctype html><html lang=\"zh-CN\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{compound} {lot} 停车收费公示</title>\
         <style>body{{font-family:sans-serif;max-width:40em;margin:1em auto;padding:0 1em;line-height:1.6}}\
         h1{{font-size:1.4em}}.warn{{color:#b00}}@media print{{body{{max-width:none}}}}</style></head>\
         <body><h1>{compound} {lot}<br>停车收费明码标价</h1><ul>{items}</ul>{filing}\
         <p>如对收费有异议，可向价格主管部门反映。</p></body></html>",
        compound = escape(&b.compound),
        lot = escape(&b.lot),
    );
    Ok(HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .body(html))
}
