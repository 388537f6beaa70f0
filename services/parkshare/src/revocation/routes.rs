//! Who may list, revoke and rotate which credentials. Every kind has the same verbs:
//! `GET …` lists (never a secret), `POST …/{id}/revoke` and `POST …/{id}/rotate`.
//!
//! - staff, within their firm: other staff tokens (their own included), owner and committee
//!   tokens, disclosure links, gates' device secrets, bookings' tokens (revoke only: the
//!   holder rotates), and the firm's audit;
//! - the operator: staff tokens of any firm (and a new one, for a firm locked out) and
//!   supervisor tokens;
//! - a booking's holder: rotate or revoke the token they hold.
//!
//! Another firm's credential, or one named through the wrong owner or compound, is 404.

use actix_web::{get, post, web, HttpRequest, HttpResponse};
use uuid::Uuid;

use super::{revoke, rotate};
use crate::auth::{self, Operator, Staff};
use crate::error::ApiError;
use crate::state::AppState;
use crate::store::credentials::{self as store, Actor, Entry, Kind, Target};
use crate::store::{registry, sharing};

/// The most audit lines one read answers.
const AUDIT_ROWS_MAX: i64 = 1_000;

pub fn admin_routes(cfg: &mut utoipa_actix_web::service_config::ServiceConfig) {
    cfg.service(list_staff_tokens)
        .service(revoke_staff_token)
        .service(rotate_staff_token)
        .service(list_owner_tokens)
        .service(revoke_owner_token)
        .service(rotate_owner_token)
        .service(list_committee_tokens)
        .service(revoke_committee_token)
        .service(rotate_committee_token)
        .service(list_disclosure_links)
        .service(revoke_disclosure_link)
        .service(rotate_disclosure_link)
        .service(revoke_device_secret)
        .service(rotate_device_secret)
        .service(revoke_booking_token)
        .service(credential_audit);
}

pub fn public_routes(cfg: &mut utoipa_actix_web::service_config::ServiceConfig) {
    cfg.service(operator_list_staff_tokens)
        .service(operator_issue_staff_token)
        .service(operator_revoke_staff_token)
        .service(operator_rotate_staff_token)
        .service(operator_list_supervisors)
        .service(operator_revoke_supervisor_token)
        .service(operator_rotate_supervisor_token)
        .service(holder_rotate_booking_token)
        .service(holder_revoke_booking_token);
}

/// A credential of the staff member's firm, reached through `parent` if any.
fn of_firm(staff: &Staff, kind: Kind, parent: Option<Uuid>, id: Uuid) -> Target {
    Target {
        kind,
        id,
        tenant_id: Some(staff.tenant_id),
        parent,
    }
}

fn actor(staff: &Staff) -> Actor {
    Actor::Staff(staff.token_id)
}

async fn staff_revokes(
    state: &AppState,
    staff: &Staff,
    target: Target,
) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(revoke(state, &target, actor(staff)).await?))
}

async fn staff_rotates(
    state: &AppState,
    staff: &Staff,
    target: Target,
) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Created().json(rotate(state, &target, actor(staff)).await?))
}

// ---- staff tokens ------------------------------------------------------------------------------

/// The firm's staff tokens; `current` marks the caller's.
#[utoipa::path(tag = "staff", operation_id = "list_staff_tokens", security(("staff_token" = [])), responses((status = 200, description = "Done", body = Vec<StaffTokenListed>)))]
#[get("/staff-tokens")]
async fn list_staff_tokens(
    state: web::Data<AppState>,
    staff: Staff,
) -> Result<HttpResponse, ApiError> {
    let tokens = store::tokens(&state.db, Kind::Staff, staff.tenant_id, None).await?;
    let listed: Vec<_> = tokens
        .into_iter()
        .map(|t| StaffTokenListed {
            current: t.id == staff.token_id,
            token: t,
        })
        .collect();
    Ok(HttpResponse::Ok().json(listed))
}

/// A staff token of the firm, and whether it is the caller's.
#[derive(serde::Serialize, utoipa::ToSchema)]
struct StaffTokenListed {
    #[serde(flatten)]
    token: store::Token,
    /// The token this request was made with.
    current: bool,
}

/// A share link in place of the old one (shown once).
#[derive(serde::Serialize, utoipa::ToSchema)]
struct RotatedLink {
    #[serde(flatten)]
    rotated: crate::revocation::Rotated,
    /// The public page's path, token included.
    path: String,
    /// The same from the service's configured public address.
    url: String,
}

/// A staff token the operator issued (shown once).
#[derive(serde::Serialize, utoipa::ToSchema)]
struct IssuedStaffToken {
    id: Uuid,
    tenant_id: Uuid,
    /// Shown once: the `staff_token`.
    token: String,
}

/// Revoke a staff token of the firm (the caller's own included).
#[utoipa::path(tag = "staff", operation_id = "revoke_staff_token", security(("staff_token" = [])), responses((status = 200, description = "Done", body = crate::revocation::Revoked)))]
#[post("/staff-tokens/{id}/revoke")]
async fn revoke_staff_token(
    state: web::Data<AppState>,
    staff: Staff,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    staff_revokes(&state, &staff, of_firm(&staff, Kind::Staff, None, *id)).await
}

/// Replace a staff token of the firm: the new one shown once, the old one revoked.
#[utoipa::path(tag = "staff", operation_id = "rotate_staff_token", security(("staff_token" = [])), responses((status = 201, description = "Created", body = crate::revocation::Rotated)))]
#[post("/staff-tokens/{id}/rotate")]
async fn rotate_staff_token(
    state: web::Data<AppState>,
    staff: Staff,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    staff_rotates(&state, &staff, of_firm(&staff, Kind::Staff, None, *id)).await
}

// ---- owners' tokens ----------------------------------------------------------------------------

async fn owner_of_firm(state: &AppState, staff: &Staff, owner_id: Uuid) -> Result<(), ApiError> {
    match registry::owner_of_tenant(&state.db, staff.tenant_id, owner_id).await? {
        true => Ok(()),
        false => Err(ApiError::NotFound("owner")),
    }
}

/// The owner's tokens.
#[utoipa::path(tag = "staff", operation_id = "list_owner_tokens", security(("staff_token" = [])), responses((status = 200, description = "Done", body = Vec<crate::store::credentials::Token>)))]
#[get("/owners/{id}/tokens")]
async fn list_owner_tokens(
    state: web::Data<AppState>,
    staff: Staff,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    owner_of_firm(&state, &staff, *id).await?;
    let tokens = store::tokens(&state.db, Kind::Owner, staff.tenant_id, Some(*id)).await?;
    Ok(HttpResponse::Ok().json(tokens))
}

/// Revoke an owner's token.
#[utoipa::path(tag = "staff", operation_id = "revoke_owner_token", security(("staff_token" = [])), responses((status = 200, description = "Done", body = crate::revocation::Revoked)))]
#[post("/owners/{id}/tokens/{token_id}/revoke")]
async fn revoke_owner_token(
    state: web::Data<AppState>,
    staff: Staff,
    path: web::Path<(Uuid, Uuid)>,
) -> Result<HttpResponse, ApiError> {
    let (owner, id) = path.into_inner();
    staff_revokes(
        &state,
        &staff,
        of_firm(&staff, Kind::Owner, Some(owner), id),
    )
    .await
}

/// Replace an owner's token: the new one shown once, the old one revoked.
#[utoipa::path(tag = "staff", operation_id = "rotate_owner_token", security(("staff_token" = [])), responses((status = 201, description = "Created", body = crate::revocation::Rotated)))]
#[post("/owners/{id}/tokens/{token_id}/rotate")]
async fn rotate_owner_token(
    state: web::Data<AppState>,
    staff: Staff,
    path: web::Path<(Uuid, Uuid)>,
) -> Result<HttpResponse, ApiError> {
    let (owner, id) = path.into_inner();
    staff_rotates(
        &state,
        &staff,
        of_firm(&staff, Kind::Owner, Some(owner), id),
    )
    .await
}

// ---- committee tokens and disclosure links -----------------------------------------------------

/// The compound's committee tokens.
#[utoipa::path(tag = "staff", operation_id = "list_committee_tokens", security(("staff_token" = [])), responses((status = 200, description = "Done", body = Vec<crate::store::credentials::Token>)))]
#[get("/compounds/{id}/committee-tokens")]
async fn list_committee_tokens(
    state: web::Data<AppState>,
    staff: Staff,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    crate::auth::owned_compound(&state, &staff, *id).await?;
    let tokens = store::tokens(&state.db, Kind::Committee, staff.tenant_id, Some(*id)).await?;
    Ok(HttpResponse::Ok().json(tokens))
}

/// Revoke a committee token.
#[utoipa::path(tag = "staff", operation_id = "revoke_committee_token", security(("staff_token" = [])), responses((status = 200, description = "Done", body = crate::revocation::Revoked)))]
#[post("/compounds/{id}/committee-tokens/{token_id}/revoke")]
async fn revoke_committee_token(
    state: web::Data<AppState>,
    staff: Staff,
    path: web::Path<(Uuid, Uuid)>,
) -> Result<HttpResponse, ApiError> {
    let (compound, id) = path.into_inner();
    let target = of_firm(&staff, Kind::Committee, Some(compound), id);
    staff_revokes(&state, &staff, target).await
}

/// Replace a committee token: the new one shown once, the old one revoked.
#[utoipa::path(tag = "staff", operation_id = "rotate_committee_token", security(("staff_token" = [])), responses((status = 201, description = "Created", body = crate::revocation::Rotated)))]
#[post("/compounds/{id}/committee-tokens/{token_id}/rotate")]
async fn rotate_committee_token(
    state: web::Data<AppState>,
    staff: Staff,
    path: web::Path<(Uuid, Uuid)>,
) -> Result<HttpResponse, ApiError> {
    let (compound, id) = path.into_inner();
    let target = of_firm(&staff, Kind::Committee, Some(compound), id);
    staff_rotates(&state, &staff, target).await
}

/// The compound's share links (never the link itself: it is the secret).
#[utoipa::path(tag = "staff", operation_id = "list_disclosure_links", security(("staff_token" = [])), responses((status = 200, description = "Done", body = Vec<store::Token>)))]
#[get("/compounds/{id}/disclosure-links")]
async fn list_disclosure_links(
    state: web::Data<AppState>,
    staff: Staff,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    crate::auth::owned_compound(&state, &staff, *id).await?;
    let links = store::tokens(&state.db, Kind::DisclosureLink, staff.tenant_id, Some(*id)).await?;
    Ok(HttpResponse::Ok().json(links))
}

/// Withdraw a share link.
#[utoipa::path(tag = "staff", operation_id = "revoke_disclosure_link", security(("staff_token" = [])), responses((status = 200, description = "Done", body = crate::revocation::Revoked)))]
#[post("/compounds/{id}/disclosure-links/{link_id}/revoke")]
async fn revoke_disclosure_link(
    state: web::Data<AppState>,
    staff: Staff,
    path: web::Path<(Uuid, Uuid)>,
) -> Result<HttpResponse, ApiError> {
    let (compound, id) = path.into_inner();
    let target = of_firm(&staff, Kind::DisclosureLink, Some(compound), id);
    staff_revokes(&state, &staff, target).await
}

/// A new link in place of the old one (which stops at once); answers its path too.
#[utoipa::path(tag = "staff", operation_id = "rotate_disclosure_link", security(("staff_token" = [])), responses((status = 201, description = "Created", body = RotatedLink)))]
#[post("/compounds/{id}/disclosure-links/{link_id}/rotate")]
async fn rotate_disclosure_link(
    state: web::Data<AppState>,
    staff: Staff,
    path: web::Path<(Uuid, Uuid)>,
) -> Result<HttpResponse, ApiError> {
    let (compound, id) = path.into_inner();
    let target = of_firm(&staff, Kind::DisclosureLink, Some(compound), id);
    let rotated = rotate(&state, &target, actor(&staff)).await?;
    let path = format!("/v1/public/disclosure/{}", rotated.token);
    let url = format!("{}{path}", state.public_base_url);
    Ok(HttpResponse::Created().json(RotatedLink { rotated, path, url }))
}

// ---- gates' device secrets and bookings' tokens ------------------------------------------------

/// The gate's device secret stops working: the lane's camera is refused until the secret is
/// rotated. (`GET /lots/{id}/gates` shows `secret_revoked_at`.)
#[utoipa::path(tag = "staff", operation_id = "revoke_device_secret", security(("staff_token" = [])), responses((status = 200, description = "Done", body = crate::revocation::Revoked)))]
#[post("/gates/{id}/device-secret/revoke")]
async fn revoke_device_secret(
    state: web::Data<AppState>,
    staff: Staff,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    staff_revokes(&state, &staff, of_firm(&staff, Kind::Device, None, *id)).await
}

/// A new device secret for the gate, shown once; the old one stops at once.
#[utoipa::path(tag = "staff", operation_id = "rotate_device_secret", security(("staff_token" = [])), responses((status = 201, description = "Created", body = crate::revocation::Rotated)))]
#[post("/gates/{id}/device-secret/rotate")]
async fn rotate_device_secret(
    state: web::Data<AppState>,
    staff: Staff,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    staff_rotates(&state, &staff, of_firm(&staff, Kind::Device, None, *id)).await
}

/// The booking's token stops working (its holder can no longer read or cancel it).
#[utoipa::path(tag = "staff", operation_id = "revoke_booking_token", security(("staff_token" = [])), responses((status = 200, description = "Done", body = crate::revocation::Revoked)))]
#[post("/bookings/{id}/token/revoke")]
async fn revoke_booking_token(
    state: web::Data<AppState>,
    staff: Staff,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    staff_revokes(&state, &staff, of_firm(&staff, Kind::Booking, None, *id)).await
}

/// Who issued, revoked and rotated the firm's credentials, newest first.
#[utoipa::path(tag = "staff", operation_id = "credential_audit", security(("staff_token" = [])), responses((status = 200, description = "Done", body = Vec<store::AuditLine>)))]
#[get("/credential-audit")]
async fn credential_audit(
    state: web::Data<AppState>,
    staff: Staff,
) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(store::audit(&state.db, staff.tenant_id, AUDIT_ROWS_MAX).await?))
}

// ---- the operator --------------------------------------------------------------------------------

async fn tenant_exists(state: &AppState, tenant_id: Uuid) -> Result<(), ApiError> {
    match registry::tenant_exists(&state.db, tenant_id).await? {
        true => Ok(()),
        false => Err(ApiError::NotFound("tenant")),
    }
}

fn staff_token_of(tenant_id: Uuid, id: Uuid) -> Target {
    Target {
        kind: Kind::Staff,
        id,
        tenant_id: Some(tenant_id),
        parent: None,
    }
}

/// A firm's staff tokens.
#[utoipa::path(tag = "operator", operation_id = "operator_list_staff_tokens", security(("operator_token" = [])), responses((status = 200, description = "Done", body = Vec<crate::store::credentials::Token>)))]
#[get("/v1/operator/tenants/{id}/staff-tokens")]
async fn operator_list_staff_tokens(
    state: web::Data<AppState>,
    _operator: Operator,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    tenant_exists(&state, *id).await?;
    Ok(HttpResponse::Ok().json(store::tokens(&state.db, Kind::Staff, *id, None).await?))
}

#[derive(Debug, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct StaffTokenLabel {
    label: Option<String>,
}

/// A new staff token for a firm (e.g. one that revoked all of its own), shown once.
#[utoipa::path(tag = "operator", operation_id = "operator_issue_staff_token", security(("operator_token" = [])), request_body(content = Option<StaffTokenLabel>, description = "Optional: an empty body is none"), responses((status = 201, description = "Created", body = IssuedStaffToken)))]
#[post("/v1/operator/tenants/{id}/staff-tokens")]
async fn operator_issue_staff_token(
    state: web::Data<AppState>,
    _operator: Operator,
    id: web::Path<Uuid>,
    body: crate::input::MaybeJson<StaffTokenLabel>,
) -> Result<HttpResponse, ApiError> {
    tenant_exists(&state, *id).await?;
    let label = crate::validate::label_or(body.0.and_then(|b| b.label), "issued by the operator")?;
    let token = auth::new_token();
    let mut tx = state.db.begin().await?;
    let token_id =
        registry::insert_staff_token(&mut *tx, *id, &auth::digest(&token), &label).await?;
    let entry = Entry::issued(Some(*id), Kind::Staff, token_id, Actor::Operator);
    store::record(&mut *tx, &entry).await?;
    tx.commit().await?;
    Ok(HttpResponse::Created().json(IssuedStaffToken {
        id: token_id,
        tenant_id: *id,
        token,
    }))
}

/// Revoke a firm's staff token.
#[utoipa::path(tag = "operator", operation_id = "operator_revoke_staff_token", security(("operator_token" = [])), responses((status = 200, description = "Done", body = crate::revocation::Revoked)))]
#[post("/v1/operator/tenants/{id}/staff-tokens/{token_id}/revoke")]
async fn operator_revoke_staff_token(
    state: web::Data<AppState>,
    _operator: Operator,
    path: web::Path<(Uuid, Uuid)>,
) -> Result<HttpResponse, ApiError> {
    let (tenant, id) = path.into_inner();
    let revoked = revoke(&state, &staff_token_of(tenant, id), Actor::Operator).await?;
    Ok(HttpResponse::Ok().json(revoked))
}

/// Replace a firm's staff token: the new one shown once, the old one revoked.
#[utoipa::path(tag = "operator", operation_id = "operator_rotate_staff_token", security(("operator_token" = [])), responses((status = 201, description = "Created", body = crate::revocation::Rotated)))]
#[post("/v1/operator/tenants/{id}/staff-tokens/{token_id}/rotate")]
async fn operator_rotate_staff_token(
    state: web::Data<AppState>,
    _operator: Operator,
    path: web::Path<(Uuid, Uuid)>,
) -> Result<HttpResponse, ApiError> {
    let (tenant, id) = path.into_inner();
    let rotated = rotate(&state, &staff_token_of(tenant, id), Actor::Operator).await?;
    Ok(HttpResponse::Created().json(rotated))
}

fn supervisor(id: Uuid) -> Target {
    Target {
        kind: Kind::Supervisor,
        id,
        tenant_id: None,
        parent: None,
    }
}

/// The supervisors and whether their tokens are revoked.
#[utoipa::path(tag = "operator", operation_id = "operator_list_supervisors", security(("operator_token" = [])), responses((status = 200, description = "Done", body = Vec<crate::store::credentials::SupervisorCredential>)))]
#[get("/v1/operator/supervisors")]
async fn operator_list_supervisors(
    state: web::Data<AppState>,
    _operator: Operator,
) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(store::supervisors(&state.db).await?))
}

/// Revoke a supervisor's token.
#[utoipa::path(tag = "operator", operation_id = "operator_revoke_supervisor_token", security(("operator_token" = [])), responses((status = 200, description = "Done", body = crate::revocation::Revoked)))]
#[post("/v1/operator/supervisors/{id}/token/revoke")]
async fn operator_revoke_supervisor_token(
    state: web::Data<AppState>,
    _operator: Operator,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(revoke(&state, &supervisor(*id), Actor::Operator).await?))
}

/// A new token for the supervisor, shown once (also after a revocation).
#[utoipa::path(tag = "operator", operation_id = "operator_rotate_supervisor_token", security(("operator_token" = [])), responses((status = 201, description = "Created", body = crate::revocation::Rotated)))]
#[post("/v1/operator/supervisors/{id}/token/rotate")]
async fn operator_rotate_supervisor_token(
    state: web::Data<AppState>,
    _operator: Operator,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Created().json(rotate(&state, &supervisor(*id), Actor::Operator).await?))
}

// ---- a booking's holder ------------------------------------------------------------------------

/// The booking the request's bearer token opens, locked for the transaction; a wrong token
/// and an unknown booking look the same (404), as for reading the booking.
async fn held_booking(
    tx: &mut sqlx::PgConnection,
    req: &HttpRequest,
    id: Uuid,
) -> Result<Target, ApiError> {
    let token = auth::bearer_digest(req).ok_or(ApiError::Unauthenticated)?;
    let booking = sharing::booking_by_token_for_update(tx, id, &token)
        .await?
        .ok_or(ApiError::NotFound("booking"))?;
    Ok(Target {
        kind: Kind::Booking,
        id: booking.id,
        tenant_id: Some(booking.tenant_id),
        parent: None,
    })
}

/// A new token for the booking, shown once; the one presented stops at once.
#[utoipa::path(tag = "visitor", operation_id = "holder_rotate_booking_token", security(("booking_token" = [])), responses((status = 201, description = "Created", body = crate::revocation::Rotated)))]
#[post("/v1/public/bookings/{id}/token/rotate")]
async fn holder_rotate_booking_token(
    state: web::Data<AppState>,
    req: HttpRequest,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    let mut tx = state.db.begin().await?;
    let target = held_booking(&mut tx, &req, *id).await?;
    let rotated = super::rotate_in(&mut tx, &target, Actor::Visitor).await?;
    tx.commit().await?;
    state.credentials.forget_revoked(target.kind, target.id);
    Ok(HttpResponse::Created().json(rotated))
}

/// The holder gives up the booking's token (the booking itself stands).
#[utoipa::path(tag = "visitor", operation_id = "holder_revoke_booking_token", security(("booking_token" = [])), responses((status = 200, description = "Done", body = crate::revocation::Revoked)))]
#[post("/v1/public/bookings/{id}/token/revoke")]
async fn holder_revoke_booking_token(
    state: web::Data<AppState>,
    req: HttpRequest,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    let mut tx = state.db.begin().await?;
    let target = held_booking(&mut tx, &req, *id).await?;
    let revoked = super::revoke_in(&mut tx, &target, Actor::Visitor).await?;
    tx.commit().await?;
    state.credentials.forget_revoked(target.kind, target.id);
    Ok(HttpResponse::Ok().json(revoked))
}
