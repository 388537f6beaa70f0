//! The platform operator's API: onboarding a property firm (tenant) with its first staff token.

use actix_web::{post, web, HttpResponse};
use serde::Deserialize;
use uuid::Uuid;

use crate::admin::validate;
use crate::auth::{self, Operator};
use crate::error::ApiError;
use crate::startup::AppState;
use crate::store::credentials::{self, Actor, Entry, Kind};
use crate::store::registry;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(create_tenant);
}

#[derive(Deserialize)]
struct NewTenant {
    name: String,
}

/// Creates a tenant and returns its first staff token, shown this once only.
#[post("/v1/operator/tenants")]
async fn create_tenant(
    state: web::Data<AppState>,
    _operator: Operator,
    body: crate::input::Json<NewTenant>,
) -> Result<HttpResponse, ApiError> {
    let name = validate::text("name", &body.name, 200)?;
    let (tenant_id, token) = create(&state, &name).await?;
    Ok(HttpResponse::Created()
        .json(serde_json::json!({"tenant_id": tenant_id, "staff_token": token})))
}

/// Creates a tenant with a fresh staff token.
pub async fn create(state: &AppState, name: &str) -> Result<(Uuid, String), ApiError> {
    let token = auth::new_token();
    let tenant_id = Uuid::new_v4();
    create_with_token(state, tenant_id, name, &token).await?;
    Ok((tenant_id, token))
}

pub async fn create_with_token(
    state: &AppState,
    tenant_id: Uuid,
    name: &str,
    token: &str,
) -> Result<(), ApiError> {
    let mut tx = state.db.begin().await?;
    registry::insert_tenant(&mut *tx, tenant_id, name).await?;
    let token_id = registry::insert_staff_token(
        &mut *tx,
        tenant_id,
        &auth::digest(token),
        "first staff token",
    )
    .await?;
    let issued = Entry::issued(Some(tenant_id), Kind::Staff, token_id, Actor::Operator);
    credentials::record(&mut *tx, &issued).await?;
    tx.commit().await?;
    Ok(())
}
