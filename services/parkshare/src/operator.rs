//! The platform operator's API: onboarding a property firm (tenant) with its first staff token,
//! and the money providers reported that no firm's ledger could take.

use actix_web::{get, post, web, HttpResponse};
use serde::Deserialize;
use uuid::Uuid;

use crate::auth::{self, Operator};
use crate::error::ApiError;
use crate::state::AppState;
use crate::store::credentials::{self, Actor, Entry, Kind};
use crate::store::registry;
use crate::validate;

pub fn routes(cfg: &mut utoipa_actix_web::service_config::ServiceConfig) {
    cfg.service(create_tenant).service(unbooked_receipts);
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct UnbookedQuery {
    /// Where the previous page ended (its `next_cursor`).
    cursor: Option<String>,
    /// Notifications per page, 1 to 500 (the default).
    limit: Option<i64>,
}

/// A provider's notification of money no firm's ledger could take.
#[derive(serde::Serialize, sqlx::FromRow, utoipa::ToSchema)]
struct Unbooked {
    id: Uuid,
    provider: String,
    notification_id: String,
    intent_id: Option<Uuid>,
    /// `unknown_intent` (no intent of ours has its id) or `foreign_currency`.
    outcome: String,
    #[serde(with = "rust_decimal::serde::str_option")]
    amount: Option<rust_decimal::Decimal>,
    currency: Option<String>,
    received_at: chrono::DateTime<chrono::Utc>,
}

/// Money a provider reported that no firm's ledger could take: notifications naming no intent
/// we know, or in another currency than yuan. The platform settles them with the provider
/// (refund or reassign); oldest first, a page at a time.
#[utoipa::path(tag = "operator", operation_id = "unbooked_receipts", params(UnbookedQuery), security(("operator_token" = [])), responses((status = 200, description = "Done", body = crate::settlement::views::Paged<Unbooked>)))]
#[get("/v1/operator/unbooked-receipts")]
async fn unbooked_receipts(
    state: web::Data<AppState>,
    _operator: Operator,
    query: web::Query<UnbookedQuery>,
) -> Result<HttpResponse, ApiError> {
    let page = crate::settlement::views::Page::of(query.limit, query.cursor.as_deref(), 500)?;
    let items: Vec<Unbooked> = sqlx::query_as(
        "select id, provider, notification_id, intent_id, outcome, amount,
                body ->> 'currency' as currency, received_at
           from provider_callbacks
          where outcome in ('unknown_intent', 'foreign_currency')
            and ($1::timestamptz is null or (received_at, id) > ($1, $2))
          order by received_at, id limit $3",
    )
    .bind(page.after.map(|(at, _)| at))
    .bind(page.after.map(|(_, id)| id))
    .bind(page.limit + 1)
    .fetch_all(&state.db)
    .await?;
    Ok(HttpResponse::Ok().json(page.answer(items, |row| (row.received_at, row.id))))
}

#[derive(Deserialize, utoipa::ToSchema)]
struct NewTenant {
    name: String,
}

/// Creates a tenant and returns its first staff token, shown this once only.
#[utoipa::path(tag = "operator", operation_id = "create_tenant", security(("operator_token" = [])), request_body = NewTenant, responses((status = 201, description = "Created", body = NewTenantAnswer)))]
#[post("/v1/operator/tenants")]
async fn create_tenant(
    state: web::Data<AppState>,
    _operator: Operator,
    body: crate::input::Json<NewTenant>,
) -> Result<HttpResponse, ApiError> {
    let name = validate::text("name", &body.name, 200)?;
    let (tenant_id, token) = create(&state, &name).await?;
    Ok(HttpResponse::Created().json(NewTenantAnswer {
        tenant_id,
        staff_token: token,
    }))
}

/// A firm just created, with its first staff token (shown once).
#[derive(serde::Serialize, utoipa::ToSchema)]
struct NewTenantAnswer {
    tenant_id: Uuid,
    /// Shown once: the firm's first `staff_token`.
    staff_token: String,
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
