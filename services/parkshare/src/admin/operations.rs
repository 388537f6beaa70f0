//! Running a lot: occupancy (view, difference with Postgres, rebuild), sessions, payments
//! recorded by staff, anomalies.

use crate::error::ErrorCode;
use actix_web::{get, post, web, HttpResponse};
use serde::Deserialize;
use uuid::Uuid;

use super::lots::owned_lot;
use crate::auth::Staff;
use crate::error::ApiError;
use crate::occupancy::RebuildMode;
use crate::state::AppState;
use crate::store::sessions;
use crate::sync;

pub fn routes(cfg: &mut utoipa_actix_web::service_config::ServiceConfig) {
    cfg.service(occupancy)
        .service(rebuild)
        .service(list_sessions)
        .service(quote)
        .service(list_anomalies);
}

/// Occupancy of a lot as Redis holds it, compared with the open sessions in Postgres.
#[utoipa::path(tag = "staff", operation_id = "lot_occupancy", security(("staff_token" = [])), responses((status = 200, description = "Done", body = crate::sync::Difference)))]
#[get("/lots/{id}/occupancy")]
async fn occupancy(
    state: web::Data<AppState>,
    staff: Staff,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    let lot = owned_lot(&state, &staff, *id).await?;
    Ok(HttpResponse::Ok().json(sync::difference(&state, lot.id, lot.visitor_capacity).await?))
}

/// Rebuilds the lot's occupancy from Postgres and reports the result.
#[utoipa::path(tag = "staff", operation_id = "rebuild_occupancy", security(("staff_token" = [])), responses((status = 200, description = "Done", body = crate::sync::Difference)))]
#[post("/lots/{id}/occupancy/rebuild")]
async fn rebuild(
    state: web::Data<AppState>,
    staff: Staff,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    let lot = owned_lot(&state, &staff, *id).await?;
    sync::rebuild_lot(&state, lot.id, RebuildMode::Force).await?;
    Ok(HttpResponse::Ok().json(sync::difference(&state, lot.id, lot.visitor_capacity).await?))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct SessionFilter {
    status: Option<String>,
}

/// The lot's sessions, newest first (?status=open|closed).
#[utoipa::path(tag = "staff", operation_id = "list_sessions", params(SessionFilter), security(("staff_token" = [])), responses((status = 200, description = "Done", body = Vec<crate::store::sessions::Session>)))]
#[get("/lots/{id}/sessions")]
async fn list_sessions(
    state: web::Data<AppState>,
    staff: Staff,
    id: web::Path<Uuid>,
    filter: web::Query<SessionFilter>,
) -> Result<HttpResponse, ApiError> {
    let lot = owned_lot(&state, &staff, *id).await?;
    let status = match filter.status.as_deref() {
        None => None,
        Some(s @ ("open" | "closed")) => Some(s),
        Some(_) => {
            return Err(ApiError::bad_request(
                ErrorCode::InvalidQuery,
                "status must be open or closed",
            ))
        }
    };
    Ok(HttpResponse::Ok()
        .json(sessions::sessions(&state.db, staff.tenant_id, lot.id, status).await?))
}

/// The lot's anomalies, newest first; `?status=open` for those staff have not resolved yet,
/// `?status=resolved` for the others.
#[utoipa::path(tag = "staff", operation_id = "list_anomalies", params(SessionFilter), security(("staff_token" = [])), responses((status = 200, description = "Done", body = Vec<sessions::Anomaly>)))]
#[get("/lots/{id}/anomalies")]
async fn list_anomalies(
    state: web::Data<AppState>,
    staff: Staff,
    id: web::Path<Uuid>,
    filter: web::Query<SessionFilter>,
) -> Result<HttpResponse, ApiError> {
    let lot = owned_lot(&state, &staff, *id).await?;
    let open = match filter.status.as_deref() {
        None => None,
        Some("open") => Some(true),
        Some("resolved") => Some(false),
        Some(_) => {
            return Err(ApiError::bad_request(
                ErrorCode::InvalidQuery,
                "status must be open or resolved",
            ))
        }
    };
    Ok(HttpResponse::Ok()
        .json(sessions::anomalies(&state.db, staff.tenant_id, lot.id, open).await?))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct QuoteQuery {
    at: Option<chrono::DateTime<chrono::Utc>>,
}

/// What the session would cost if it left at `at` (default now).
#[utoipa::path(tag = "staff", operation_id = "session_quote", params(QuoteQuery), security(("staff_token" = [])), responses((status = 200, description = "Done", body = crate::public::Quote)))]
#[get("/sessions/{id}/quote")]
async fn quote(
    state: web::Data<AppState>,
    staff: Staff,
    id: web::Path<Uuid>,
    q: web::Query<QuoteQuery>,
) -> Result<HttpResponse, ApiError> {
    let mut db = state.db.acquire().await?;
    let session = sessions::session(&mut *db, staff.tenant_id, *id)
        .await?
        .ok_or(ApiError::NotFound("session"))?;
    let rules = crate::store::registry::lot_rules(&mut *db, session.lot_id)
        .await?
        .ok_or(ApiError::NotFound("lot"))?;
    let at = q.at.unwrap_or_else(|| state.clock.now());
    Ok(HttpResponse::Ok().json(crate::public::quote_session(&mut db, &rules, &session, at).await?))
}
