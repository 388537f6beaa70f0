//! Owners first (DOMAIN.md rule 3): a waiting list per compound of owners waiting for a kind
//! of space (`pool`, `common`, `developer_unsold`, `owned`). A non-owner may rent a kind only
//! while no owner waits for it; an owner only when nobody is ahead of them in the compound's
//! order (`parkshare_allocation::rental::WaitingOrder`). Every refusal has its code and says
//! how many wait, or are ahead.

use actix_web::{delete, get, post, put, web, HttpResponse};
use chrono::NaiveDate;
use parkshare_allocation::rental::{self, Applicant, Waiting, WaitingOrder};
use serde::{Deserialize, Serialize};
use sqlx::PgConnection;
use std::collections::BTreeMap;
use uuid::Uuid;

use super::store::{self, WaitingRow};
use crate::auth::{Owner, Staff};
use crate::error::{is_unique_violation, ApiError, ErrorCode};
use crate::state::AppState;

pub fn admin_routes(cfg: &mut utoipa_actix_web::service_config::ServiceConfig) {
    cfg.service(staff_list)
        .service(staff_join)
        .service(staff_withdraw)
        .service(put_order);
}

pub fn owner_routes(cfg: &mut utoipa_actix_web::service_config::ServiceConfig) {
    cfg.service(owner_list)
        .service(owner_join)
        .service(owner_withdraw);
}

const KINDS: [&str; 4] = ["pool", "common", "developer_unsold", "owned"];

fn kind(text: &str) -> Result<&'static str, ApiError> {
    KINDS.into_iter().find(|k| *k == text).ok_or_else(|| {
        ApiError::invalid(
            ErrorCode::InvalidSpaceKind,
            "space_kind must be pool, common, developer_unsold or owned",
        )
    })
}

fn order_of(text: &str) -> Result<WaitingOrder, ApiError> {
    WaitingOrder::parse(text).ok_or_else(|| ApiError::internal(format!("waiting order {text}")))
}

fn as_waiting(row: &WaitingRow) -> Waiting {
    Waiting {
        entry_id: row.id,
        owner_id: row.owner_id,
        joined_at: row.joined_at,
        spaces_held: u32::try_from(row.spaces_held).unwrap_or(u32::MAX),
    }
}

/// Refuses `applicant` a rental of `space_kind` in the compound when owners first says so
/// (409 `owners_waiting` or `owners_ahead`). Holds the kind's list locked until the
/// transaction ends, so that an owner joining meanwhile is seen by the next application.
pub async fn check_owners_first(
    tx: &mut PgConnection,
    compound_id: Uuid,
    space_kind: &str,
    applicant: Applicant,
    today: NaiveDate,
) -> Result<(), ApiError> {
    store::lock_waiting(&mut *tx, compound_id, space_kind).await?;
    let rows = store::waiting(&mut *tx, compound_id, Some(space_kind), today).await?;
    let order = order_of(&store::waiting_order(&mut *tx, compound_id).await?)?;
    rental::may_rent(applicant, rows.iter().map(as_waiting).collect(), order)
        .map_err(|refusal| ApiError::conflict((&refusal).into(), refusal.to_string()))
}

/// The compound's waiting list, per kind in the order owners are served, with positions.
async fn ordered_list(state: &AppState, compound_id: Uuid) -> Result<WaitingList, ApiError> {
    let today = super::local_today(state, compound_id).await?;
    let rows = store::waiting(&state.db, compound_id, None, today).await?;
    let order = order_of(&store::waiting_order(&state.db, compound_id).await?)?;
    let mut kinds = BTreeMap::new();
    for k in KINDS {
        let of_kind: Vec<&WaitingRow> = rows.iter().filter(|r| r.space_kind == k).collect();
        let queue = rental::ordered(of_kind.iter().map(|r| as_waiting(r)).collect(), order);
        let entries: Vec<WaitingPlace> = queue
            .iter()
            .enumerate()
            .filter_map(|(i, w)| {
                let row = of_kind.iter().find(|r| r.id == w.entry_id)?;
                Some(WaitingPlace {
                    entry: (*row).clone(),
                    position: i + 1,
                })
            })
            .collect();
        kinds.insert(k, entries);
    }
    Ok(WaitingList {
        order: order.as_str(),
        kinds,
    })
}

/// A compound's waiting list: per kind of space, the entries in serving order.
#[derive(Serialize, utoipa::ToSchema)]
struct WaitingList {
    /// `first_come`, `without_space_first` or `fewest_spaces_first`.
    order: &'static str,
    /// Per kind of space (`pool`, `common`, `developer_unsold`, `owned`), the entries in the
    /// order they are served.
    kinds: BTreeMap<&'static str, Vec<WaitingPlace>>,
}

/// An entry of the waiting list and its place in its queue.
#[derive(Serialize, utoipa::ToSchema)]
struct WaitingPlace {
    #[serde(flatten)]
    entry: WaitingRow,
    /// 1 is served first.
    position: usize,
}

/// One of the owner's own entries and its place in its queue.
#[derive(Serialize, utoipa::ToSchema)]
struct OwnWaitingPlace {
    id: Uuid,
    space_kind: String,
    joined_at: chrono::DateTime<chrono::Utc>,
    /// 1 is served first.
    position: usize,
}

/// An entry just put on the waiting list.
#[derive(Serialize, utoipa::ToSchema)]
struct Joined<'a> {
    id: Uuid,
    owner_id: Uuid,
    space_kind: &'a str,
    /// `waiting`.
    status: &'static str,
}

/// The order a compound's waiting owners are served in.
#[derive(Serialize, utoipa::ToSchema)]
struct OrderSet {
    /// `first_come`, `without_space_first` or `fewest_spaces_first`.
    order: &'static str,
}

/// The compound's waiting list per kind of space, in the order owners are served.
#[utoipa::path(tag = "staff", operation_id = "waiting_list", security(("staff_token" = [])), responses((status = 200, description = "The waiting list per kind of space, in serving order", body = WaitingList)))]
#[get("/compounds/{id}/waiting-list")]
async fn staff_list(
    state: web::Data<AppState>,
    staff: Staff,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    let compound = crate::auth::owned_compound(&state, &staff, *id).await?;
    Ok(HttpResponse::Ok().json(ordered_list(&state, compound.id).await?))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct JoinBody {
    space_kind: String,
    /// Staff only: the owner joining.
    owner_id: Option<Uuid>,
}

async fn join(
    state: &AppState,
    tenant_id: Uuid,
    compound_id: Uuid,
    owner_id: Uuid,
    space_kind: &str,
) -> Result<HttpResponse, ApiError> {
    let mut tx = state.db.begin().await?;
    store::lock_waiting(&mut *tx, compound_id, space_kind).await?;
    let id = store::join_waiting(&mut *tx, tenant_id, compound_id, owner_id, space_kind)
        .await
        .map_err(|e| match is_unique_violation(&e, "waiting_list_once") {
            true => ApiError::conflict(
                ErrorCode::AlreadyWaiting,
                "this owner already waits for this kind of space",
            ),
            false => e.into(),
        })?;
    tx.commit().await?;
    Ok(HttpResponse::Created().json(Joined {
        id,
        owner_id,
        space_kind,
        status: "waiting",
    }))
}

/// Staff put an owner on the compound's waiting list.
#[utoipa::path(tag = "staff", operation_id = "join_waiting_list", security(("staff_token" = [])), request_body = JoinBody, responses((status = 201, description = "Created: the entry", body = Joined)))]
#[post("/compounds/{id}/waiting-list")]
async fn staff_join(
    state: web::Data<AppState>,
    staff: Staff,
    id: web::Path<Uuid>,
    body: crate::input::Json<JoinBody>,
) -> Result<HttpResponse, ApiError> {
    let compound = crate::auth::owned_compound(&state, &staff, *id).await?;
    let space_kind = kind(&body.space_kind)?;
    let owner_id = body
        .owner_id
        .ok_or_else(|| ApiError::invalid(ErrorCode::InvalidField, "owner_id is required"))?;
    if !crate::store::registry::owner_in_compound(&state.db, staff.tenant_id, compound.id, owner_id)
        .await?
    {
        return Err(ApiError::NotFound("owner"));
    }
    join(&state, staff.tenant_id, compound.id, owner_id, space_kind).await
}

/// Staff take an entry off the waiting list.
#[utoipa::path(tag = "staff", operation_id = "withdraw_from_waiting_list", security(("staff_token" = [])), responses((status = 204, description = "Withdrawn; no body")))]
#[delete("/waiting-list/{id}")]
async fn staff_withdraw(
    state: web::Data<AppState>,
    staff: Staff,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    match store::withdraw_waiting(&state.db, staff.tenant_id, None, *id).await? {
        true => Ok(HttpResponse::NoContent().finish()),
        false => Err(ApiError::NotFound("waiting entry")),
    }
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct OrderBody {
    order: String,
}

/// Sets the order in which the compound's waiting owners are served.
#[utoipa::path(tag = "staff", operation_id = "put_waiting_order", security(("staff_token" = [])), request_body = OrderBody, responses((status = 200, description = "The order set", body = OrderSet)))]
#[put("/compounds/{id}/waiting-order")]
async fn put_order(
    state: web::Data<AppState>,
    staff: Staff,
    id: web::Path<Uuid>,
    body: crate::input::Json<OrderBody>,
) -> Result<HttpResponse, ApiError> {
    let order = WaitingOrder::parse(&body.order).ok_or_else(|| {
        ApiError::invalid(
            ErrorCode::InvalidOrder,
            "order must be first_come, without_space_first or fewest_spaces_first",
        )
    })?;
    if !store::set_waiting_order(&state.db, staff.tenant_id, *id, order.as_str()).await? {
        return Err(ApiError::NotFound("compound"));
    }
    Ok(HttpResponse::Ok().json(OrderSet {
        order: order.as_str(),
    }))
}

/// The owner's own entries, each with its position in its kind's queue.
#[utoipa::path(tag = "owner", operation_id = "own_waiting_entries", security(("owner_token" = [])), responses((status = 200, description = "The owner's entries and their positions", body = Vec<OwnWaitingPlace>)))]
#[get("/waiting-list")]
async fn owner_list(state: web::Data<AppState>, owner: Owner) -> Result<HttpResponse, ApiError> {
    let compound = store::owner_compound(&state.db, owner.tenant_id, owner.owner_id)
        .await?
        .ok_or(ApiError::Unauthenticated)?;
    let list = ordered_list(&state, compound).await?;
    let mine: Vec<OwnWaitingPlace> = list
        .kinds
        .into_values()
        .flatten()
        .filter(|e| e.entry.owner_id == owner.owner_id)
        .map(|e| OwnWaitingPlace {
            id: e.entry.id,
            space_kind: e.entry.space_kind,
            joined_at: e.entry.joined_at,
            position: e.position,
        })
        .collect();
    Ok(HttpResponse::Ok().json(mine))
}

/// An owner joins the compound's waiting list for a kind of space.
#[utoipa::path(tag = "owner", operation_id = "join_waiting_list_as_owner", security(("owner_token" = [])), request_body = JoinBody, responses((status = 201, description = "Created: the entry", body = Joined)))]
#[post("/waiting-list")]
async fn owner_join(
    state: web::Data<AppState>,
    owner: Owner,
    body: crate::input::Json<JoinBody>,
) -> Result<HttpResponse, ApiError> {
    if body.owner_id.is_some() {
        return Err(ApiError::invalid(
            ErrorCode::InvalidField,
            "owner_id is for staff; an owner joins for themselves",
        ));
    }
    let space_kind = kind(&body.space_kind)?;
    let compound = store::owner_compound(&state.db, owner.tenant_id, owner.owner_id)
        .await?
        .ok_or(ApiError::Unauthenticated)?;
    join(
        &state,
        owner.tenant_id,
        compound,
        owner.owner_id,
        space_kind,
    )
    .await
}

/// An owner withdraws their own entry from the waiting list.
#[utoipa::path(tag = "owner", operation_id = "withdraw_own_waiting_entry", security(("owner_token" = [])), responses((status = 204, description = "Withdrawn; no body")))]
#[delete("/waiting-list/{id}")]
async fn owner_withdraw(
    state: web::Data<AppState>,
    owner: Owner,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    match store::withdraw_waiting(&state.db, owner.tenant_id, Some(owner.owner_id), *id).await? {
        true => Ok(HttpResponse::NoContent().finish()),
        false => Err(ApiError::NotFound("waiting entry")),
    }
}
