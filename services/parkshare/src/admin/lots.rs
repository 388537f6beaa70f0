//! Lots (with their visitor capacity and tariff), gates and spaces.

use crate::error::ErrorCode;
use actix_web::{get, patch, post, web, HttpResponse};
use chrono::{DateTime, Utc};
use parkshare_domain::decision::Direction;
use parkshare_domain::money::Money;
use parkshare_tariff::Tariff;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use sqlx::PgConnection;
use uuid::Uuid;

use super::compounds::owned_compound;
use super::validate;
use crate::auth::{self, Staff};
use crate::error::{is_unique_violation, ApiError};
use crate::state::AppState;
use crate::store::credentials::{self, Actor, Entry, Kind};
use crate::store::registry::{self, Lot};

/// Largest visitor capacity of one lot: the biggest compounds have a few thousand spaces.
const VISITOR_CAPACITY_MAX: i32 = 100_000;
/// Most places of one lot reserved for pool passes (the migration's check says the same).
const PASS_PLACES_MAX: i32 = 10_000;

pub fn routes(cfg: &mut utoipa_actix_web::service_config::ServiceConfig) {
    cfg.service(create_lot)
        .service(list_lots)
        .service(show_lot)
        .service(update_lot)
        .service(create_gate)
        .service(list_gates)
        .service(create_space)
        .service(list_spaces);
}

pub async fn owned_lot(state: &AppState, staff: &Staff, id: Uuid) -> Result<Lot, ApiError> {
    registry::lot(&state.db, staff.tenant_id, id)
        .await?
        .ok_or(ApiError::NotFound("lot"))
}

/// The gate core's per-lot rule; stored as the equivalent [`Tariff`].
#[derive(Deserialize, utoipa::ToSchema)]
struct SimpleTariff {
    free_min: u32,
    hourly: Decimal,
    cap_24h: Option<Decimal>,
}

fn money(field: &str, value: Decimal) -> Result<Money, ApiError> {
    Money::parse(value)
        .map_err(|e| ApiError::invalid(ErrorCode::InvalidField, format!("{field}: {e}")))
}

fn tariff(
    tariff: Option<Tariff>,
    simple: Option<&SimpleTariff>,
) -> Result<Option<Tariff>, ApiError> {
    let tariff = match (tariff, simple) {
        (Some(_), Some(_)) => {
            return Err(ApiError::invalid(
                ErrorCode::TariffAmbiguous,
                "give either tariff or simple_tariff, not both",
            ))
        }
        (Some(t), None) => t,
        (None, Some(s)) => Tariff::simple(
            s.free_min,
            money("simple_tariff.hourly", s.hourly)?,
            s.cap_24h
                .map(|c| money("simple_tariff.cap_24h", c))
                .transpose()?,
        ),
        (None, None) => return Ok(None),
    };
    tariff
        .validate()
        .map_err(|e| ApiError::invalid(ErrorCode::InvalidTariff, e.to_string()))?;
    Ok(Some(tariff))
}

/// A count of places, 0 to `max`: the lot's visitor capacity or its pass places.
fn places(field: &str, value: i32, max: i32) -> Result<i32, ApiError> {
    if !(0..=max).contains(&value) {
        return Err(ApiError::invalid(
            ErrorCode::InvalidField,
            format!("{field}: must be 0 to {max}"),
        ));
    }
    Ok(value)
}

fn capacity(value: i32) -> Result<i32, ApiError> {
    places("visitor_capacity", value, VISITOR_CAPACITY_MAX)
}

fn pass_places(value: i32) -> Result<i32, ApiError> {
    places("pass_places", value, PASS_PLACES_MAX)
}

#[derive(Deserialize, utoipa::ToSchema)]
#[schema(example = json!({"name": "地库", "visitor_capacity": 20, "simple_tariff": {"free_min": 15, "hourly": "3.00", "cap_24h": "20.00"}}))]
struct NewLot {
    name: String,
    visitor_capacity: i32,
    /// Places reserved for pool passes (月租 of the lot's pool): no more passes are sold for
    /// any day. 0 to 10,000; 0 (the default) sells none.
    pass_places: Option<i32>,
    /// A full tariff (periods, caps, night rates); give it or `simple_tariff`.
    #[schema(value_type = Option<Object>)]
    tariff: Option<Tariff>,
    simple_tariff: Option<SimpleTariff>,
}

/// Create a lot with its visitor capacity and draft tariff.
#[utoipa::path(tag = "staff", operation_id = "create_lot", security(("staff_token" = [])), request_body = NewLot, responses((status = 201, description = "Created", body = crate::store::registry::Lot)))]
#[post("/compounds/{id}/lots")]
async fn create_lot(
    state: web::Data<AppState>,
    staff: Staff,
    id: web::Path<Uuid>,
    body: crate::input::Json<NewLot>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let compound = owned_compound(&state, &staff, *id).await?;
    let name = validate::text("name", &body.name, 200)?;
    let visitor_capacity = capacity(body.visitor_capacity)?;
    let pass_places = pass_places(body.pass_places.unwrap_or(0))?;
    let tariff = tariff(body.tariff, body.simple_tariff.as_ref())?.ok_or_else(|| {
        ApiError::invalid(
            ErrorCode::TariffRequired,
            "give the lot a tariff or a simple_tariff",
        )
    })?;
    let lot = registry::insert_lot(
        &state.db,
        staff.tenant_id,
        compound.id,
        &name,
        (visitor_capacity, pass_places),
        &tariff,
    )
    .await
    .map_err(
        |e| match is_unique_violation(&e, "lots_compound_id_name_key") {
            true => ApiError::conflict(
                ErrorCode::LotExists,
                format!("the compound already has a lot named {name}"),
            ),
            false => e.into(),
        },
    )?;
    crate::sync::rebuild_lot(&state, lot.id, crate::occupancy::RebuildMode::Force).await?;
    Ok(HttpResponse::Created().json(lot))
}

/// The compound's lots.
#[utoipa::path(tag = "staff", operation_id = "list_lots", security(("staff_token" = [])), responses((status = 200, description = "Done", body = Vec<crate::store::registry::Lot>)))]
#[get("/compounds/{id}/lots")]
async fn list_lots(
    state: web::Data<AppState>,
    staff: Staff,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    let compound = owned_compound(&state, &staff, *id).await?;
    Ok(HttpResponse::Ok().json(registry::lots(&state.db, staff.tenant_id, compound.id).await?))
}

/// A lot.
/// A lot as staff see it alone: with the pool passes it has sold.
#[derive(Serialize, utoipa::ToSchema)]
struct LotView {
    #[serde(flatten)]
    lot: Lot,
    /// The most pool passes in force (paid, or held and not run out) on any one day from the
    /// compound's today on: `pass_places` may not go below it.
    passes_sold: i64,
}

async fn lot_view(
    conn: &mut PgConnection,
    lot: Lot,
    now: DateTime<Utc>,
) -> Result<LotView, ApiError> {
    let passes_sold =
        crate::allocation::rentals::passes_sold(conn, (lot.compound_id, lot.id), now).await?;
    Ok(LotView { lot, passes_sold })
}

/// A lot, with the pool passes it has sold.
#[utoipa::path(tag = "staff", operation_id = "show_lot", security(("staff_token" = [])), responses((status = 200, description = "Done", body = LotView)))]
#[get("/lots/{id}")]
async fn show_lot(
    state: web::Data<AppState>,
    staff: Staff,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    let lot = owned_lot(&state, &staff, *id).await?;
    let mut conn = state.db.acquire().await?;
    Ok(HttpResponse::Ok().json(lot_view(&mut conn, lot, state.clock.now()).await?))
}

#[derive(Deserialize, utoipa::ToSchema)]
struct LotChange {
    visitor_capacity: Option<i32>,
    /// Places reserved for pool passes, 0 to 10,000, and never below the passes sold (the
    /// lot's `passes_sold`): lowered to that, the lot sells no more.
    pass_places: Option<i32>,
    /// A full tariff (periods, caps, night rates); give it or `simple_tariff`.
    #[schema(value_type = Option<Object>)]
    tariff: Option<Tariff>,
    simple_tariff: Option<SimpleTariff>,
}

/// Change a lot's capacity, its places for pool passes or its draft tariff.
#[utoipa::path(tag = "staff", operation_id = "update_lot", security(("staff_token" = [])), request_body = LotChange, responses((status = 200, description = "Done", body = LotView)))]
#[patch("/lots/{id}")]
async fn update_lot(
    state: web::Data<AppState>,
    staff: Staff,
    id: web::Path<Uuid>,
    body: crate::input::Json<LotChange>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let visitor_capacity = body.visitor_capacity.map(capacity).transpose()?;
    let pass_places = body.pass_places.map(pass_places).transpose()?;
    let tariff = tariff(body.tariff, body.simple_tariff.as_ref())?;
    let now = state.clock.now();
    let mut tx = state.db.begin().await?;
    // Locked as a pass sale locks it: no pass is sold between the count and the change.
    let lot = registry::lot_for_update(&mut *tx, staff.tenant_id, *id)
        .await?
        .ok_or(ApiError::NotFound("lot"))?;
    if let Some(places) = pass_places {
        let sold = crate::allocation::rentals::passes_sold(&mut tx, (lot.compound_id, lot.id), now)
            .await?;
        if i64::from(places) < sold {
            return Err(ApiError::conflict(
                ErrorCode::PassPlacesBelowSold,
                format!(
                    "{sold} pool passes are sold for some day from today: pass_places may not \
                     go below {sold} until they end (set it to {sold} to sell no more)"
                ),
            ));
        }
    }
    let lot = registry::update_lot(
        &mut *tx,
        staff.tenant_id,
        lot.id,
        (visitor_capacity, pass_places),
        tariff.as_ref(),
    )
    .await?
    .ok_or(ApiError::NotFound("lot"))?;
    let view = lot_view(&mut tx, lot, now).await?;
    tx.commit().await?;
    if visitor_capacity.is_some() {
        state
            .occupancy
            .set_capacity(view.lot.id, view.lot.visitor_capacity)
            .await?;
    }
    Ok(HttpResponse::Ok().json(view))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[schema(example = json!({"name": "东门入口", "direction": "entry"}))]
struct NewGate {
    name: String,
    direction: String,
}

/// Registers a gate (lane) and returns its device secret, shown this once only.
#[utoipa::path(tag = "staff", operation_id = "create_gate", security(("staff_token" = [])), request_body = NewGate, responses((status = 201, description = "Created", body = NewGateAnswer)))]
#[post("/lots/{id}/gates")]
async fn create_gate(
    state: web::Data<AppState>,
    staff: Staff,
    id: web::Path<Uuid>,
    body: crate::input::Json<NewGate>,
) -> Result<HttpResponse, ApiError> {
    let lot = owned_lot(&state, &staff, *id).await?;
    let name = validate::text("name", &body.name, 200)?;
    let direction = Direction::parse(body.direction.trim()).ok_or_else(|| {
        ApiError::invalid(ErrorCode::InvalidField, "direction: must be entry or exit")
    })?;
    let secret = auth::new_token();
    let mut tx = state.db.begin().await?;
    let gate = registry::insert_gate(
        &mut *tx,
        staff.tenant_id,
        lot.id,
        &name,
        direction,
        &auth::digest(&secret),
    )
    .await
    .map_err(|e| match is_unique_violation(&e, "gates_lot_id_name_key") {
        true => ApiError::conflict(
            ErrorCode::GateExists,
            format!("the lot already has a gate named {name}"),
        ),
        false => e.into(),
    })?;
    let issued = Entry::issued(
        Some(staff.tenant_id),
        Kind::Device,
        gate.id,
        Actor::Staff(staff.token_id),
    );
    credentials::record(&mut *tx, &issued).await?;
    tx.commit().await?;
    Ok(HttpResponse::Created().json(NewGateAnswer {
        gate,
        device_secret: secret,
    }))
}

/// A gate just registered, with its device secret (shown once).
#[derive(serde::Serialize, utoipa::ToSchema)]
struct NewGateAnswer {
    gate: registry::Gate,
    /// Shown once: the `device_token`, also the camera's push URL's secret.
    device_secret: String,
}

/// The lot's gates (no secrets).
#[utoipa::path(tag = "staff", operation_id = "list_gates", security(("staff_token" = [])), responses((status = 200, description = "Done", body = Vec<crate::store::registry::Gate>)))]
#[get("/lots/{id}/gates")]
async fn list_gates(
    state: web::Data<AppState>,
    staff: Staff,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    let lot = owned_lot(&state, &staff, *id).await?;
    Ok(HttpResponse::Ok()
        .json(registry::gates(&state.db, staff.tenant_id, lot.id, state.clock.now()).await?))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[schema(example = json!({"code": "B1-001", "kind": "owned", "owner_id": "0190c3b2-7c1e-7d2a-9f00-3a5e8c1d2b47"}))]
struct NewSpace {
    code: String,
    kind: String,
    owner_id: Option<Uuid>,
}

/// Create a space: owned, common or developer_unsold.
#[utoipa::path(tag = "staff", operation_id = "create_space", security(("staff_token" = [])), request_body = NewSpace, responses((status = 201, description = "Created", body = crate::store::registry::Space)))]
#[post("/lots/{id}/spaces")]
async fn create_space(
    state: web::Data<AppState>,
    staff: Staff,
    id: web::Path<Uuid>,
    body: crate::input::Json<NewSpace>,
) -> Result<HttpResponse, ApiError> {
    let lot = owned_lot(&state, &staff, *id).await?;
    let code = validate::text("code", &body.code, 50)?;
    let kind = validate::space_kind("kind", &body.kind)?;
    match (kind, body.owner_id) {
        ("owned", None) => {
            return Err(ApiError::invalid(
                ErrorCode::OwnerRequired,
                "an owned space needs its owner_id",
            ))
        }
        ("owned", Some(owner)) => {
            if !registry::owner_in_compound(&state.db, staff.tenant_id, lot.compound_id, owner)
                .await?
            {
                return Err(ApiError::NotFound("owner"));
            }
        }
        (_, Some(_)) => {
            return Err(ApiError::invalid(
                ErrorCode::OwnerNotAllowed,
                "only an owned space has an owner",
            ));
        }
        (_, None) => {}
    }
    let space = registry::insert_space(
        &state.db,
        staff.tenant_id,
        lot.id,
        &code,
        kind,
        body.owner_id,
    )
    .await
    .map_err(|e| match is_unique_violation(&e, "spaces_lot_code_key") {
        true => ApiError::conflict(
            ErrorCode::SpaceExists,
            format!("the lot already has a space {code}"),
        ),
        false => e.into(),
    })?;
    Ok(HttpResponse::Created().json(space))
}

/// The lot's spaces.
#[utoipa::path(tag = "staff", operation_id = "list_spaces", security(("staff_token" = [])), responses((status = 200, description = "Done", body = Vec<crate::store::registry::Space>)))]
#[get("/lots/{id}/spaces")]
async fn list_spaces(
    state: web::Data<AppState>,
    staff: Staff,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    let lot = owned_lot(&state, &staff, *id).await?;
    Ok(HttpResponse::Ok().json(registry::spaces(&state.db, staff.tenant_id, lot.id).await?))
}
