//! Owners, their vehicles, and permits.

use crate::error::ErrorCode;
use actix_web::{get, post, web, HttpResponse};
use chrono::NaiveDate;
use rust_decimal::Decimal;
use serde::Deserialize;
use uuid::Uuid;

use super::compounds::owned_compound;
use super::validate;
use crate::auth::Staff;
use crate::error::{is_unique_violation, ApiError};
use crate::state::AppState;
use crate::store::registry::{self, NewOwner, NewPermit};

pub fn routes(cfg: &mut utoipa_actix_web::service_config::ServiceConfig) {
    cfg.service(create_owner)
        .service(list_owners)
        .service(create_vehicle)
        .service(list_vehicles)
        .service(create_permit)
        .service(list_permits);
}

#[derive(Deserialize, utoipa::ToSchema)]
#[schema(example = json!({"unit": "3-2-1101", "name": "张三", "floor_area_m2": "89.50", "phone": "13800000000"}))]
struct OwnerBody {
    unit: String,
    name: String,
    floor_area_m2: Decimal,
    phone: Option<String>,
}

/// Register an owner with their floor area.
#[utoipa::path(tag = "staff", operation_id = "create_owner", security(("staff_token" = [])), request_body = OwnerBody, responses((status = 201, description = "Created", body = crate::store::registry::Owner)))]
#[post("/compounds/{id}/owners")]
async fn create_owner(
    state: web::Data<AppState>,
    staff: Staff,
    id: web::Path<Uuid>,
    body: crate::input::Json<OwnerBody>,
) -> Result<HttpResponse, ApiError> {
    let compound = owned_compound(&state, &staff, *id).await?;
    let unit = validate::unit("unit", &body.unit)?;
    let name = validate::text("name", &body.name, 200)?;
    let floor_area_m2 = validate::floor_area("floor_area_m2", body.floor_area_m2)?;
    let phone = body
        .phone
        .as_deref()
        .map(|p| validate::text("phone", p, 40))
        .transpose()?;
    let owner = NewOwner {
        unit: &unit,
        name: &name,
        floor_area_m2,
        phone: phone.as_deref(),
    };
    let owner = registry::insert_owner(&state.db, staff.tenant_id, compound.id, &owner)
        .await
        .map_err(
            |e| match is_unique_violation(&e, "owners_compound_id_unit_key") {
                true => ApiError::conflict(
                    ErrorCode::OwnerExists,
                    format!("unit {unit} already has an owner"),
                ),
                false => e.into(),
            },
        )?;
    Ok(HttpResponse::Created().json(owner))
}

/// The compound's owners.
#[utoipa::path(tag = "staff", operation_id = "list_owners", security(("staff_token" = [])), responses((status = 200, description = "Done", body = Vec<crate::store::registry::Owner>)))]
#[get("/compounds/{id}/owners")]
async fn list_owners(
    state: web::Data<AppState>,
    staff: Staff,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    let compound = owned_compound(&state, &staff, *id).await?;
    Ok(HttpResponse::Ok().json(registry::owners(&state.db, staff.tenant_id, compound.id).await?))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[schema(example = json!({"plate": "云A12345", "class": "small", "owner_id": "0190c3b2-7c1e-7d2a-9f00-3a5e8c1d2b47"}))]
struct VehicleBody {
    plate: String,
    class: String,
    owner_id: Uuid,
}

/// Register an owner's vehicle.
#[utoipa::path(tag = "staff", operation_id = "create_vehicle", security(("staff_token" = [])), request_body = VehicleBody, responses((status = 201, description = "Created", body = crate::store::registry::Vehicle)))]
#[post("/compounds/{id}/vehicles")]
async fn create_vehicle(
    state: web::Data<AppState>,
    staff: Staff,
    id: web::Path<Uuid>,
    body: crate::input::Json<VehicleBody>,
) -> Result<HttpResponse, ApiError> {
    let compound = owned_compound(&state, &staff, *id).await?;
    let plate = validate::plate("plate", &body.plate)?;
    let class = validate::vehicle_class("class", &body.class)?;
    if !registry::owner_in_compound(&state.db, staff.tenant_id, compound.id, body.owner_id).await? {
        return Err(ApiError::NotFound("owner"));
    }
    let vehicle = registry::insert_vehicle(
        &state.db,
        staff.tenant_id,
        compound.id,
        plate.as_str(),
        class.as_str(),
        body.owner_id,
    )
    .await
    .map_err(
        |e| match is_unique_violation(&e, "vehicles_compound_plate_key") {
            true => ApiError::conflict(
                ErrorCode::VehicleExists,
                format!("{plate} is already registered"),
            ),
            false => e.into(),
        },
    )?;
    Ok(HttpResponse::Created().json(vehicle))
}

/// The compound's registered vehicles.
#[utoipa::path(tag = "staff", operation_id = "list_vehicles", security(("staff_token" = [])), responses((status = 200, description = "Done", body = Vec<crate::store::registry::Vehicle>)))]
#[get("/compounds/{id}/vehicles")]
async fn list_vehicles(
    state: web::Data<AppState>,
    staff: Staff,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    let compound = owned_compound(&state, &staff, *id).await?;
    Ok(HttpResponse::Ok().json(registry::vehicles(&state.db, staff.tenant_id, compound.id).await?))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
enum PermitBody {
    /// A monthly pass (月租), optionally for one lot only.
    Monthly {
        vehicle_id: Uuid,
        lot_id: Option<Uuid>,
        valid_from: NaiveDate,
        valid_to: NaiveDate,
    },
    /// The right of an owned space's owner to park there.
    OwnedSpace {
        vehicle_id: Uuid,
        space_id: Uuid,
        valid_from: NaiveDate,
        valid_to: Option<NaiveDate>,
    },
}

/// Grant a monthly or owned-space permit.
#[utoipa::path(tag = "staff", operation_id = "create_permit", security(("staff_token" = [])), request_body = PermitBody, responses((status = 201, description = "Created", body = crate::store::registry::Permit)))]
#[post("/compounds/{id}/permits")]
async fn create_permit(
    state: web::Data<AppState>,
    staff: Staff,
    id: web::Path<Uuid>,
    body: crate::input::Json<PermitBody>,
) -> Result<HttpResponse, ApiError> {
    let compound = owned_compound(&state, &staff, *id).await?;
    let vehicle_id = match &*body {
        PermitBody::Monthly { vehicle_id, .. } | PermitBody::OwnedSpace { vehicle_id, .. } => {
            *vehicle_id
        }
    };
    let vehicle = registry::vehicle(&state.db, staff.tenant_id, vehicle_id)
        .await?
        .filter(|v| v.compound_id == compound.id)
        .ok_or(ApiError::NotFound("vehicle"))?;
    let permit = match body.into_inner() {
        PermitBody::Monthly {
            lot_id,
            valid_from,
            valid_to,
            ..
        } => {
            if let Some(lot_id) = lot_id {
                registry::lot(&state.db, staff.tenant_id, lot_id)
                    .await?
                    .filter(|l| l.compound_id == compound.id)
                    .ok_or(ApiError::NotFound("lot"))?;
            }
            NewPermit {
                vehicle_id,
                kind: "monthly",
                lot_id,
                space_id: None,
                valid_from,
                valid_to: Some(valid_to),
            }
        }
        PermitBody::OwnedSpace {
            space_id,
            valid_from,
            valid_to,
            ..
        } => {
            let space = registry::space(&state.db, staff.tenant_id, space_id)
                .await?
                .ok_or(ApiError::NotFound("space"))?;
            if space.owner_id != Some(vehicle.owner_id) {
                return Err(ApiError::invalid(
                    ErrorCode::NotTheSpaceOwner,
                    "an owned-space permit is for a vehicle of the space's owner",
                ));
            }
            NewPermit {
                vehicle_id,
                kind: "owned_space",
                lot_id: Some(space.lot_id),
                space_id: Some(space_id),
                valid_from,
                valid_to,
            }
        }
    };
    if permit.valid_to.is_some_and(|to| to < permit.valid_from) {
        return Err(ApiError::invalid(
            ErrorCode::InvalidValidity,
            "valid_to is before valid_from",
        ));
    }
    let permit = registry::insert_permit(&state.db, staff.tenant_id, compound.id, &permit).await?;
    Ok(HttpResponse::Created().json(permit))
}

/// The compound's permits.
#[utoipa::path(tag = "staff", operation_id = "list_permits", security(("staff_token" = [])), responses((status = 200, description = "Done", body = Vec<crate::store::registry::Permit>)))]
#[get("/compounds/{id}/permits")]
async fn list_permits(
    state: web::Data<AppState>,
    staff: Staff,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    let compound = owned_compound(&state, &staff, *id).await?;
    Ok(HttpResponse::Ok().json(registry::permits(&state.db, staff.tenant_id, compound.id).await?))
}
