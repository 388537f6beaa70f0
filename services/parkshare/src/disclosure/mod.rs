//! Disclosure (公示, rules 6–8): each compound's common revenue and use of spaces, per closed
//! period, as JSON, CSV and a public page reachable by an unguessable share link; the owners'
//! committee's read-only view of the compound's ledger; supervisors' summaries of their area.
//!
//! - `data`: what is disclosed, from the closed periods and the sessions;
//! - `page`: the HTML page (inline SVG charts, phone and A4 print);
//! - here: the routes — public by link, staff, committee, supervisor, operator.

pub mod data;
pub mod page;

use actix_web::{get, post, web, HttpResponse};
use serde::Deserialize;
use uuid::Uuid;

use crate::auth::{self, Committee, Operator, Staff, Supervisor};
use crate::error::ApiError;
use crate::settlement::exports::{self, Reader};
use crate::state::AppState;
use crate::store::credentials::{self, Actor, Entry, Kind};
use crate::store::disclosure as store;
use crate::store::{periods, registry};

pub fn public_routes(cfg: &mut utoipa_actix_web::service_config::ServiceConfig) {
    cfg.service(public_page)
        .service(public_json)
        .service(public_csv)
        .service(committee_disclosure)
        .service(committee_periods)
        .service(committee_statements)
        .service(committee_journal_csv)
        .service(committee_journal_beancount)
        .service(supervisor_summaries)
        .service(create_supervisor)
        .service(assign_compound);
}

pub fn admin_routes(cfg: &mut utoipa_actix_web::service_config::ServiceConfig) {
    cfg.service(create_link)
        .service(create_committee_token)
        .service(staff_disclosure);
}

async fn by_link(state: &AppState, token: &str) -> Result<data::Disclosure, ApiError> {
    // A wrong link and a withdrawn compound look the same.
    let (tenant_id, compound_id) = store::link(&state.db, &auth::digest(token))
        .await?
        .ok_or(ApiError::NotFound("disclosure"))?;
    data::build(&state.db, tenant_id, compound_id, state.clock.now()).await
}

/// The public disclosure page: no login, an unguessable link.
#[utoipa::path(tag = "public", operation_id = "public_page", responses((status = 200, description = "The page (HTML, no script, no outside resource)", body = String, content_type = "text/html; charset=utf-8")))]
#[get("/v1/public/disclosure/{token}")]
async fn public_page(
    state: web::Data<AppState>,
    token: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let disclosure = by_link(&state, &token).await?;
    // Relative to /v1/public/disclosure/{token}: the page names no host and no other path.
    let csv_href = format!("{}/data.csv", token.as_str());
    Ok(HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .insert_header(("Referrer-Policy", "no-referrer"))
        .body(page::render(&disclosure, &csv_href)))
}

/// The disclosure's figures as JSON.
#[utoipa::path(tag = "public", operation_id = "public_json", responses((status = 200, description = "Done", body = data::Disclosure)))]
#[get("/v1/public/disclosure/{token}/data.json")]
async fn public_json(
    state: web::Data<AppState>,
    token: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(by_link(&state, &token).await?))
}

/// The disclosure's figures as CSV.
#[utoipa::path(tag = "public", operation_id = "public_csv", responses((status = 200, description = "The figures as CSV", body = String, content_type = "text/csv; charset=utf-8")))]
#[get("/v1/public/disclosure/{token}/data.csv")]
async fn public_csv(
    state: web::Data<AppState>,
    token: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let disclosure = by_link(&state, &token).await?;
    let body = data::csv(&disclosure).map_err(|e| ApiError::Internal(e.into()))?;
    Ok(HttpResponse::Ok()
        .content_type("text/csv; charset=utf-8")
        .body(body))
}

async fn staff_compound(state: &AppState, staff: &Staff, id: Uuid) -> Result<(), ApiError> {
    registry::compound(&state.db, staff.tenant_id, id)
        .await?
        .map(drop)
        .ok_or(ApiError::NotFound("compound"))
}

/// A new share link for the compound's disclosure (shown once; post it on the notice board).
#[utoipa::path(tag = "staff", operation_id = "create_link", security(("staff_token" = [])), request_body(content = Option<LabelBody>, description = "Optional: an empty body is none"), responses((status = 201, description = "Created", body = NewLink)))]
#[post("/compounds/{id}/disclosure-links")]
async fn create_link(
    state: web::Data<AppState>,
    staff: Staff,
    id: web::Path<Uuid>,
    body: crate::input::MaybeJson<LabelBody>,
) -> Result<HttpResponse, ApiError> {
    staff_compound(&state, &staff, *id).await?;
    // Where the link is posted, e.g. "东门公告栏", so that staff know which one to revoke.
    let label = crate::validate::label_or(body.0.and_then(|b| b.label), "")?;
    let token = auth::new_token();
    let mut tx = state.db.begin().await?;
    let link_id = store::insert_link(
        &mut *tx,
        &auth::digest(&token),
        staff.tenant_id,
        *id,
        &label,
    )
    .await?;
    let issued = Entry::issued(
        Some(staff.tenant_id),
        Kind::DisclosureLink,
        link_id,
        Actor::Staff(staff.token_id),
    );
    credentials::record(&mut *tx, &issued).await?;
    tx.commit().await?;
    let path = format!("/v1/public/disclosure/{token}");
    // From the configured base, never from the request's Host or X-Forwarded-Host: a forged
    // header would otherwise put an attacker's site on the notice board.
    let url = format!("{}{path}", state.public_base_url);
    Ok(HttpResponse::Created().json(NewLink {
        id: link_id,
        token,
        path,
        url,
    }))
}

/// A share link just made (its token shown once).
#[derive(serde::Serialize, utoipa::ToSchema)]
struct NewLink {
    id: Uuid,
    token: String,
    /// The public page's path, token included.
    path: String,
    /// The same from the service's configured public address: post it on the notice board.
    url: String,
}

/// A credential just issued (shown once).
#[derive(serde::Serialize, utoipa::ToSchema)]
struct NewCommitteeToken {
    id: Uuid,
    compound_id: Uuid,
    /// Shown once: the `committee_token`.
    token: String,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct LabelBody {
    label: Option<String>,
}

/// A read-only credential for the compound's owners' committee (shown once).
#[utoipa::path(tag = "staff", operation_id = "create_committee_token", security(("staff_token" = [])), request_body(content = Option<LabelBody>, description = "Optional: an empty body is none"), responses((status = 201, description = "Created", body = NewCommitteeToken)))]
#[post("/compounds/{id}/committee-tokens")]
async fn create_committee_token(
    state: web::Data<AppState>,
    staff: Staff,
    id: web::Path<Uuid>,
    body: crate::input::MaybeJson<LabelBody>,
) -> Result<HttpResponse, ApiError> {
    staff_compound(&state, &staff, *id).await?;
    let token = auth::new_token();
    let label = crate::validate::label_or(body.0.and_then(|b| b.label), "业主委员会")?;
    let mut tx = state.db.begin().await?;
    let token_id = store::insert_committee_token(
        &mut *tx,
        &auth::digest(&token),
        staff.tenant_id,
        *id,
        &label,
    )
    .await?;
    let issued = Entry::issued(
        Some(staff.tenant_id),
        Kind::Committee,
        token_id,
        Actor::Staff(staff.token_id),
    );
    credentials::record(&mut *tx, &issued).await?;
    tx.commit().await?;
    Ok(HttpResponse::Created().json(NewCommitteeToken {
        id: token_id,
        compound_id: *id,
        token,
    }))
}

/// The compound's disclosure.
#[utoipa::path(tag = "staff", operation_id = "staff_disclosure", security(("staff_token" = [])), responses((status = 200, description = "Done", body = data::Disclosure)))]
#[get("/compounds/{id}/disclosure")]
async fn staff_disclosure(
    state: web::Data<AppState>,
    staff: Staff,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok()
        .json(data::build(&state.db, staff.tenant_id, *id, state.clock.now()).await?))
}

// ---- the owners' committee: read-only, one compound ----------------------------------------

fn reader(committee: &Committee) -> Reader {
    Reader {
        tenant_id: committee.tenant_id,
        compound_id: Some(committee.compound_id),
    }
}

/// The compound's disclosure, as on its public page.
#[utoipa::path(tag = "committee", operation_id = "committee_disclosure", security(("committee_token" = [])), responses((status = 200, description = "Done", body = data::Disclosure)))]
#[get("/v1/committee/disclosure")]
async fn committee_disclosure(
    state: web::Data<AppState>,
    committee: Committee,
) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(
        data::build(
            &state.db,
            committee.tenant_id,
            committee.compound_id,
            state.clock.now(),
        )
        .await?,
    ))
}

/// The compound's closed periods.
#[utoipa::path(tag = "committee", operation_id = "committee_periods", security(("committee_token" = [])), responses((status = 200, description = "Done", body = Vec<periods::Period>)))]
#[get("/v1/committee/periods")]
async fn committee_periods(
    state: web::Data<AppState>,
    committee: Committee,
) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok()
        .json(periods::periods(&state.db, committee.tenant_id, committee.compound_id).await?))
}

async fn committee_period(
    state: &AppState,
    committee: &Committee,
    id: Uuid,
) -> Result<periods::Period, ApiError> {
    periods::period(&state.db, committee.tenant_id, id)
        .await?
        .filter(|p| p.compound_id == committee.compound_id)
        .ok_or(ApiError::NotFound("period"))
}

/// Every owner's statement for a closed period.
#[utoipa::path(tag = "committee", operation_id = "committee_statements", security(("committee_token" = [])), responses((status = 200, description = "Done", body = Vec<periods::Statement>)))]
#[get("/v1/committee/periods/{id}/statements")]
async fn committee_statements(
    state: web::Data<AppState>,
    committee: Committee,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    let period = committee_period(&state, &committee, *id).await?;
    Ok(HttpResponse::Ok()
        .json(periods::statements_of_period(&state.db, committee.tenant_id, period.id).await?))
}

/// A closed period's postings as CSV.
#[utoipa::path(tag = "committee", operation_id = "committee_journal_csv", security(("committee_token" = [])), responses((status = 200, description = "The postings as CSV, one row each", body = String, content_type = "text/csv; charset=utf-8")))]
#[get("/v1/committee/periods/{id}/journal.csv")]
async fn committee_journal_csv(
    state: web::Data<AppState>,
    committee: Committee,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    exports::csv_of(&state, &reader(&committee), *id).await
}

/// A closed period's journal in beancount syntax.
#[utoipa::path(tag = "committee", operation_id = "committee_journal_beancount", security(("committee_token" = [])), responses((status = 200, description = "The journal in beancount syntax", body = String, content_type = "text/plain; charset=utf-8")))]
#[get("/v1/committee/periods/{id}/journal.beancount")]
async fn committee_journal_beancount(
    state: web::Data<AppState>,
    committee: Committee,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    exports::beancount_of(&state, &reader(&committee), *id).await
}

// ---- supervisors ------------------------------------------------------------------------------

/// Each supervised compound with the totals of its latest closed period.
#[utoipa::path(tag = "supervisor", operation_id = "supervisor_summaries", security(("supervisor_token" = [])), responses((status = 200, description = "Done", body = Vec<Supervised>)))]
#[get("/v1/supervisor/compounds")]
async fn supervisor_summaries(
    state: web::Data<AppState>,
    supervisor: Supervisor,
) -> Result<HttpResponse, ApiError> {
    let mut out = Vec::new();
    for (compound_id, _tenant_id, name) in store::supervised(&state.db, supervisor.id).await? {
        let latest = periods::last_period(&state.db, compound_id).await?;
        let summary = latest.as_ref().map(|p| {
            let s = &p.summary.0;
            PeriodTotals {
                period: p.label.clone(),
                starts_at: p.starts_at,
                ends_at: p.ends_at,
                income: s["income"]["total"].clone(),
                refunds: s["refunds_in_period"].clone(),
                management_cost: s["management_cost"].clone(),
                to_maintenance_fund: s["to_maintenance_fund"].clone(),
                to_owners: s["to_owners"].clone(),
            }
        });
        out.push(Supervised {
            compound_id,
            compound: name,
            latest_period: summary,
        });
    }
    Ok(HttpResponse::Ok().json(out))
}

/// A supervised compound and the totals of its latest closed period.
#[derive(serde::Serialize, utoipa::ToSchema)]
struct Supervised {
    compound_id: Uuid,
    compound: String,
    /// None before the compound's first close.
    latest_period: Option<PeriodTotals>,
}

/// A closed period's totals as its summary froze them (yuan as decimal strings; null where
/// the summary, closed by an older version, lacks the figure).
#[derive(serde::Serialize, utoipa::ToSchema)]
struct PeriodTotals {
    period: String,
    starts_at: chrono::DateTime<chrono::Utc>,
    ends_at: chrono::DateTime<chrono::Utc>,
    #[schema(value_type = Option<String>, example = "1200.00")]
    income: serde_json::Value,
    #[schema(value_type = Option<String>)]
    refunds: serde_json::Value,
    #[schema(value_type = Option<String>)]
    management_cost: serde_json::Value,
    #[schema(value_type = Option<String>)]
    to_maintenance_fund: serde_json::Value,
    #[schema(value_type = Option<String>)]
    to_owners: serde_json::Value,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
struct NewSupervisor {
    name: String,
    area: String,
}

/// The operator creates a supervisor (e.g. a street office) and its token (shown once).
#[utoipa::path(tag = "operator", operation_id = "create_supervisor", security(("operator_token" = [])), request_body = NewSupervisor, responses((status = 201, description = "Created", body = NewSupervisorAnswer)))]
#[post("/v1/operator/supervisors")]
async fn create_supervisor(
    state: web::Data<AppState>,
    _operator: Operator,
    body: crate::input::Json<NewSupervisor>,
) -> Result<HttpResponse, ApiError> {
    let name = crate::validate::text("name", &body.name, 200)?;
    let area = crate::validate::text("area", &body.area, 200)?;
    let id = Uuid::new_v4();
    let token = auth::new_token();
    let mut tx = state.db.begin().await?;
    store::insert_supervisor(&mut *tx, id, &name, &area, &auth::digest(&token)).await?;
    let issued = Entry::issued(None, Kind::Supervisor, id, Actor::Operator);
    credentials::record(&mut *tx, &issued).await?;
    tx.commit().await?;
    Ok(HttpResponse::Created().json(NewSupervisorAnswer {
        id,
        name,
        area,
        token,
    }))
}

/// A supervisor just created, with its credential (shown once).
#[derive(serde::Serialize, utoipa::ToSchema)]
struct NewSupervisorAnswer {
    id: Uuid,
    name: String,
    area: String,
    /// Shown once: the `supervisor_token`.
    token: String,
}

/// The operator puts a compound in a supervisor's area.
#[utoipa::path(tag = "operator", operation_id = "assign_compound", security(("operator_token" = [])), responses((status = 204, description = "Done; no body")))]
#[post("/v1/operator/supervisors/{id}/compounds/{compound}")]
async fn assign_compound(
    state: web::Data<AppState>,
    _operator: Operator,
    path: web::Path<(Uuid, Uuid)>,
) -> Result<HttpResponse, ApiError> {
    let (supervisor_id, compound_id) = path.into_inner();
    if !store::assign(&state.db, supervisor_id, compound_id).await? {
        return Err(ApiError::NotFound("supervisor or compound"));
    }
    Ok(HttpResponse::NoContent().finish())
}
