//! Compounds, their gate policy, exempt vehicles and the blocklist.

use crate::error::ErrorCode;
use crate::input::AnyJson;
use actix_web::{delete, get, post, put, web, HttpResponse};
use parkshare_domain::policy::GatePolicy;
use parkshare_domain::vehicle::ExemptClass;
use serde::Deserialize;
use uuid::Uuid;

use super::validate;
use crate::auth::Staff;
use crate::error::{is_unique_violation, ApiError};
use crate::state::AppState;
use crate::store::registry;

pub fn routes(cfg: &mut utoipa_actix_web::service_config::ServiceConfig) {
    cfg.service(create)
        .service(list)
        .service(show)
        .service(put_policy)
        .service(put_exempt)
        .service(list_exempt)
        .service(put_blocklisted)
        .service(delete_blocklisted)
        .service(list_blocklist);
}

/// The compound, if it is the caller's (the check every feature makes lives in `auth`).
pub use crate::auth::owned_compound;

fn validate_policy(policy: &GatePolicy) -> Result<(), ApiError> {
    policy
        .validate()
        .map_err(|e| ApiError::invalid(ErrorCode::InvalidPolicy, e.to_string()))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[schema(example = json!({"name": "阳光花园", "time_zone": "Asia/Shanghai"}))]
struct NewCompound {
    name: String,
    time_zone: Option<String>,
    /// The gate policy; the default when left out.
    #[schema(value_type = Option<Object>)]
    policy: Option<GatePolicy>,
}

/// Create a compound with its time zone and gate policy.
#[utoipa::path(tag = "staff", operation_id = "create_compound", security(("staff_token" = [])), request_body = NewCompound, responses((status = 201, description = "Created", body = crate::store::registry::Compound)))]
#[post("/compounds")]
async fn create(
    state: web::Data<AppState>,
    staff: Staff,
    body: crate::input::Json<NewCompound>,
) -> Result<HttpResponse, ApiError> {
    let name = validate::text("name", &body.name, 200)?;
    let tz = validate::time_zone(
        "time_zone",
        body.time_zone.as_deref().unwrap_or("Asia/Shanghai"),
    )?;
    let policy = body.policy.clone().unwrap_or_default();
    validate_policy(&policy)?;
    let compound = registry::insert_compound(&state.db, staff.tenant_id, &name, tz.name(), &policy)
        .await
        .map_err(
            |e| match is_unique_violation(&e, "compounds_tenant_id_name_key") {
                true => ApiError::conflict(
                    ErrorCode::CompoundExists,
                    format!("a compound named {name} exists"),
                ),
                false => e.into(),
            },
        )?;
    Ok(HttpResponse::Created().json(compound))
}

/// The firm's compounds.
#[utoipa::path(tag = "staff", operation_id = "list_compounds", security(("staff_token" = [])), responses((status = 200, description = "Done", body = Vec<crate::store::registry::Compound>)))]
#[get("/compounds")]
async fn list(state: web::Data<AppState>, staff: Staff) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(registry::compounds(&state.db, staff.tenant_id).await?))
}

/// A compound.
#[utoipa::path(tag = "staff", operation_id = "show_compound", security(("staff_token" = [])), responses((status = 200, description = "Done", body = crate::store::registry::Compound)))]
#[get("/compounds/{id}")]
async fn show(
    state: web::Data<AppState>,
    staff: Staff,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(owned_compound(&state, &staff, *id).await?))
}

/// Replace the compound's gate policy.
#[utoipa::path(tag = "staff", operation_id = "put_policy", security(("staff_token" = [])), request_body(content = AnyJson, description = "The gate policy (the same object as a compound's `policy`)"), responses((status = 200, description = "Done", body = crate::store::registry::Compound)))]
#[put("/compounds/{id}/policy")]
async fn put_policy(
    state: web::Data<AppState>,
    staff: Staff,
    id: web::Path<Uuid>,
    body: crate::input::Json<GatePolicy>,
) -> Result<HttpResponse, ApiError> {
    validate_policy(&body)?;
    let compound = registry::update_compound_policy(&state.db, staff.tenant_id, *id, &body)
        .await?
        .ok_or(ApiError::NotFound("compound"))?;
    Ok(HttpResponse::Ok().json(compound))
}

#[derive(Deserialize, utoipa::ToSchema)]
struct ExemptBody {
    class: String,
    #[serde(default)]
    note: String,
}

/// Registers an exempt (emergency) vehicle, e.g. the local hospital's ambulance.
#[utoipa::path(tag = "staff", operation_id = "put_exempt", security(("staff_token" = [])), request_body = ExemptBody, responses((status = 200, description = "Done", body = ExemptSet)))]
#[put("/compounds/{id}/exempt-vehicles/{plate}")]
async fn put_exempt(
    state: web::Data<AppState>,
    staff: Staff,
    path: web::Path<(Uuid, String)>,
    body: crate::input::Json<ExemptBody>,
) -> Result<HttpResponse, ApiError> {
    let (id, plate) = path.into_inner();
    let compound = owned_compound(&state, &staff, id).await?;
    let plate = validate::plate("plate", &plate)?;
    let class = ExemptClass::parse(body.class.trim()).ok_or_else(|| {
        ApiError::invalid(
            ErrorCode::InvalidField,
            "class: must be fire, ambulance, police or official_duty",
        )
    })?;
    // Optional, but never cut short behind the sender's back: too long is refused.
    let note = validate::optional_text(
        "note",
        Some(body.note.as_str()).filter(|n| !n.trim().is_empty()),
        500,
    )?
    .unwrap_or_default();
    registry::upsert_exempt_vehicle(
        &state.db,
        staff.tenant_id,
        compound.id,
        plate.as_str(),
        class.as_str(),
        &note,
    )
    .await?;
    Ok(HttpResponse::Ok().json(ExemptSet { plate, class }))
}

/// The compound's exempt (emergency) vehicles.
#[utoipa::path(tag = "staff", operation_id = "list_exempt", security(("staff_token" = [])), responses((status = 200, description = "Each plate with its class as `detail`", body = Vec<registry::ListedPlate>)))]
#[get("/compounds/{id}/exempt-vehicles")]
async fn list_exempt(
    state: web::Data<AppState>,
    staff: Staff,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    let compound = owned_compound(&state, &staff, *id).await?;
    Ok(HttpResponse::Ok()
        .json(registry::exempt_vehicles(&state.db, staff.tenant_id, compound.id).await?))
}

/// An exempt (emergency) vehicle registered.
#[derive(serde::Serialize, utoipa::ToSchema)]
struct ExemptSet {
    plate: parkshare_domain::plate::Plate,
    class: ExemptClass,
}

/// A plate blocklisted.
#[derive(serde::Serialize, utoipa::ToSchema)]
struct Blocklisted {
    plate: parkshare_domain::plate::Plate,
    reason: String,
}

#[derive(Deserialize, utoipa::ToSchema)]
struct BlockBody {
    reason: String,
}

/// Blocklist a plate with a reason.
#[utoipa::path(tag = "staff", operation_id = "put_blocklisted", security(("staff_token" = [])), request_body = BlockBody, responses((status = 200, description = "Done", body = Blocklisted)))]
#[put("/compounds/{id}/blocklist/{plate}")]
async fn put_blocklisted(
    state: web::Data<AppState>,
    staff: Staff,
    path: web::Path<(Uuid, String)>,
    body: crate::input::Json<BlockBody>,
) -> Result<HttpResponse, ApiError> {
    let (id, plate) = path.into_inner();
    let compound = owned_compound(&state, &staff, id).await?;
    let plate = validate::plate("plate", &plate)?;
    let reason = validate::text("reason", &body.reason, 500)?;
    registry::upsert_blocklisted(
        &state.db,
        staff.tenant_id,
        compound.id,
        plate.as_str(),
        &reason,
    )
    .await?;
    Ok(HttpResponse::Ok().json(Blocklisted { plate, reason }))
}

/// Take a plate off the blocklist.
#[utoipa::path(tag = "staff", operation_id = "delete_blocklisted", security(("staff_token" = [])), responses((status = 204, description = "Done; no body")))]
#[delete("/compounds/{id}/blocklist/{plate}")]
async fn delete_blocklisted(
    state: web::Data<AppState>,
    staff: Staff,
    path: web::Path<(Uuid, String)>,
) -> Result<HttpResponse, ApiError> {
    let (id, plate) = path.into_inner();
    let compound = owned_compound(&state, &staff, id).await?;
    let plate = validate::plate("plate", &plate)?;
    match registry::delete_blocklisted(&state.db, staff.tenant_id, compound.id, plate.as_str())
        .await?
    {
        true => Ok(HttpResponse::NoContent().finish()),
        false => Err(ApiError::NotFound("blocklisted plate")),
    }
}

/// The compound's blocklist.
#[utoipa::path(tag = "staff", operation_id = "list_blocklist", security(("staff_token" = [])), responses((status = 200, description = "Each plate with its reason as `detail`", body = Vec<registry::ListedPlate>)))]
#[get("/compounds/{id}/blocklist")]
async fn list_blocklist(
    state: web::Data<AppState>,
    staff: Staff,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    let compound = owned_compound(&state, &staff, *id).await?;
    Ok(
        HttpResponse::Ok()
            .json(registry::blocklist(&state.db, staff.tenant_id, compound.id).await?),
    )
}
