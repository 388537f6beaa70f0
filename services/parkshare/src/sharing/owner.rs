//! Owners (业主) sharing their spaces: weekly windows, one-off openings and blackouts, pausing,
//! their bookings with their history, earnings, and their webhook. An owner sees only their
//! own spaces; anybody else's answers 404.
//!
//! A change that would leave a live booking outside the space's open hours is refused
//! (409 `window_has_bookings`, naming the bookings): bookings are never silently dropped.
//! Pausing stops new bookings at once and keeps the ones already made.

use crate::error::ErrorCode;
use actix_web::{delete, get, post, put, web, HttpResponse};
use chrono::{DateTime, Duration, Utc};
use chrono_tz::Tz;
use parkshare_sharing::window::{parse_local, WINDOWS_PER_SPACE_MAX};
use parkshare_sharing::{Exception, ExceptionKind, Interval, Schedule, WeeklyWindow, WindowError};
use serde::{Deserialize, Serialize};
use sqlx::PgConnection;
use uuid::Uuid;

use crate::auth::{self, Owner, Staff};
use crate::error::ApiError;
use crate::state::AppState;
use crate::store::credentials::{self, Actor, Entry, Kind};
use crate::store::sharing::{self, Booking, SharedSpace};
use crate::webhooks;

/// The owners' sharing routes under `/v1/owner`; the scope itself, with the owners' routes of
/// the other features, is wired in `openapi::api`.
pub fn routes(cfg: &mut utoipa_actix_web::service_config::ServiceConfig) {
    cfg.service(spaces)
        .service(put_windows)
        .service(put_price)
        .service(pause)
        .service(resume)
        .service(list_exceptions)
        .service(add_exception)
        .service(remove_exception)
        .service(open_hours)
        .service(bookings)
        .service(earnings)
        .service(put_webhook);
}

pub fn admin_routes(cfg: &mut utoipa_actix_web::service_config::ServiceConfig) {
    cfg.service(issue_owner_token).service(webhook_deliveries);
}

fn window_error(e: WindowError) -> ApiError {
    let code = match e {
        WindowError::NoDays | WindowError::BadDay(_) => ErrorCode::InvalidWeekdays,
        WindowError::TooMany => ErrorCode::TooManyWindows,
        WindowError::BadTime(_) | WindowError::BadLocalDateTime(_) => ErrorCode::InvalidTime,
        WindowError::Empty => ErrorCode::EmptyRange,
        WindowError::TooLong => ErrorCode::RangeTooLong,
    };
    ApiError::invalid(code, e.to_string())
}

fn zone(space: &SharedSpace) -> Result<Tz, ApiError> {
    space
        .time_zone
        .parse()
        .map_err(|_| ApiError::Internal(anyhow::anyhow!("time zone {}", space.time_zone)))
}

/// The owner's space, made shared if it was not, locked for the change.
async fn my_space(
    tx: &mut PgConnection,
    owner: &Owner,
    space_id: Uuid,
) -> Result<SharedSpace, ApiError> {
    sharing::shared_space_of_owner_for_update(tx, owner.tenant_id, owner.owner_id, space_id)
        .await?
        .ok_or(ApiError::NotFound("space"))
}

/// Refuses the change unless `schedule` still covers every booking of the space live at `now`.
async fn keep_bookings(
    tx: &mut PgConnection,
    space: &SharedSpace,
    schedule: &Schedule,
    now: DateTime<Utc>,
) -> Result<(), ApiError> {
    let tz = zone(space)?;
    let live = sharing::live_bookings_of_space_for_update(tx, space.space_id, now).await?;
    let mut stranded = Vec::new();
    for booking in &live {
        let Some(during) = booking.during() else {
            continue;
        };
        if !schedule.covers(tz, &during).map_err(window_error)? {
            stranded.push(booking.id.to_string());
        }
    }
    if stranded.is_empty() {
        Ok(())
    } else {
        Err(ApiError::conflict(
            ErrorCode::WindowHasBookings,
            format!(
                "the change would leave bookings outside the shared hours: {}",
                stranded.join(", ")
            ),
        ))
    }
}

/// The space's schedule, with the exceptions not over at `now`.
async fn schedule_with(
    tx: &mut PgConnection,
    space: &SharedSpace,
    now: DateTime<Utc>,
) -> Result<Schedule, ApiError> {
    let exceptions = sharing::exceptions(&mut *tx, &[space.space_id], now).await?;
    Ok(sharing::schedule_of(space, &exceptions))
}

/// The owner's spaces and how each is shared.
#[utoipa::path(tag = "owner", operation_id = "owner_spaces", security(("owner_token" = [])), responses((status = 200, description = "Done", body = Vec<sharing::OwnedSpace>)))]
#[get("/spaces")]
async fn spaces(state: web::Data<AppState>, owner: Owner) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok()
        .json(sharing::spaces_of_owner(&state.db, owner.tenant_id, owner.owner_id).await?))
}

/// An ISO weekday, 1 = Monday … 7 = Sunday, as the contract describes `days` (read as a `u8`
/// and checked: 422 `invalid_weekdays`).
struct IsoWeekday;

impl utoipa::PartialSchema for IsoWeekday {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::Integer)
            .minimum(Some(1))
            .maximum(Some(7))
            .description(Some("ISO weekday: 1 = Monday … 7 = Sunday"))
            .into()
    }
}

impl utoipa::ToSchema for IsoWeekday {}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
struct WindowInput {
    /// ISO weekdays, 1 = Monday … 7 = Sunday.
    #[schema(value_type = Vec<IsoWeekday>, min_items = 1, max_items = 7)]
    days: Vec<u8>,
    /// `HH:MM`, local time.
    from: String,
    /// `HH:MM`; not after `from` means the next day; `24:00` is midnight.
    to: String,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
struct WindowsBody {
    windows: Vec<WindowInput>,
}

/// Replace the space's weekly windows.
#[utoipa::path(tag = "owner", operation_id = "put_windows", security(("owner_token" = [])), request_body = WindowsBody, responses((status = 200, description = "Done", body = SpaceWindows)))]
#[put("/spaces/{id}/windows")]
async fn put_windows(
    state: web::Data<AppState>,
    owner: Owner,
    id: web::Path<Uuid>,
    body: crate::input::Json<WindowsBody>,
) -> Result<HttpResponse, ApiError> {
    if body.windows.len() > WINDOWS_PER_SPACE_MAX {
        return Err(window_error(WindowError::TooMany));
    }
    let windows = body
        .windows
        .iter()
        .map(|w| WeeklyWindow::parse(&w.days, &w.from, &w.to))
        .collect::<Result<Vec<_>, _>>()
        .map_err(window_error)?;
    let mut tx = state.db.begin().await?;
    let space = my_space(&mut tx, &owner, *id).await?;
    if !windows.is_empty() {
        crate::allocation::rentals::letting::refuse_if_let(
            &mut tx,
            space.space_id,
            state.clock.now(),
        )
        .await?;
    }
    let mut schedule = schedule_with(&mut tx, &space, state.clock.now()).await?;
    schedule.windows = windows;
    keep_bookings(&mut tx, &space, &schedule, state.clock.now()).await?;
    sharing::set_windows(&mut *tx, space.space_id, &schedule.windows).await?;
    tx.commit().await?;
    Ok(HttpResponse::Ok().json(SpaceWindows {
        space_id: space.space_id,
        windows: schedule.windows,
        paused: space.paused,
    }))
}

/// A shared space's weekly windows.
#[derive(Serialize, utoipa::ToSchema)]
struct SpaceWindows {
    space_id: Uuid,
    windows: Vec<WeeklyWindow>,
    paused: bool,
}

/// A shared space's price.
#[derive(Serialize, utoipa::ToSchema)]
struct SpacePrice {
    space_id: Uuid,
    /// Percent of the compound's filed tariff.
    price_pct: i16,
}

/// Whether a shared space takes new bookings.
#[derive(Serialize, utoipa::ToSchema)]
struct SpacePaused {
    space_id: Uuid,
    paused: bool,
}

/// A one-off opening or blackout just added.
#[derive(Serialize, utoipa::ToSchema)]
struct NewException {
    id: Uuid,
    space_id: Uuid,
    kind: ExceptionKind,
    starts_at: chrono::DateTime<Utc>,
    ends_at: chrono::DateTime<Utc>,
}

/// The hours a space is open to visitors within a range.
#[derive(Serialize, utoipa::ToSchema)]
struct OpenHours {
    space_id: Uuid,
    paused: bool,
    open: Vec<Interval>,
}

/// A booking on one of the owner's spaces, with its history and what it earned the owner.
#[derive(Serialize, utoipa::ToSchema)]
struct OwnerBooking<'a> {
    booking: &'a Booking,
    history: Vec<&'a sharing::BookingEvent>,
    /// Credited to the owner for it, net of refunds (yuan).
    #[schema(example = "8.00")]
    credited: String,
}

/// The owner's webhook, with its signing secret (shown once).
#[derive(Serialize, utoipa::ToSchema)]
struct OwnerWebhook {
    url: String,
    secret: String,
}

/// An owner's credential just issued (shown once).
#[derive(Serialize, utoipa::ToSchema)]
struct NewOwnerToken {
    id: Uuid,
    owner_id: Uuid,
    /// Shown once: the `owner_token`.
    token: String,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
struct PriceBody {
    /// Percent of the compound's filed tariff, 0 (free) to 100 (the tariff itself).
    price_pct: i64,
}

/// Set the space's price as a percentage of the filed tariff: within it by construction (rule
/// 4). Bookings made from now on are charged it; earlier bookings keep the price they were
/// made at.
#[utoipa::path(tag = "owner", operation_id = "put_price", security(("owner_token" = [])), request_body = PriceBody, responses((status = 200, description = "Done", body = SpacePrice)))]
#[put("/spaces/{id}/price")]
async fn put_price(
    state: web::Data<AppState>,
    owner: Owner,
    id: web::Path<Uuid>,
    body: crate::input::Json<PriceBody>,
) -> Result<HttpResponse, ApiError> {
    let pct = i16::try_from(body.price_pct)
        .ok()
        .filter(|p| (0..=100).contains(p))
        .ok_or_else(|| {
            ApiError::invalid(
                ErrorCode::InvalidPricePct,
                "price_pct must be between 0 and 100 (percent of the filed tariff)",
            )
        })?;
    let mut tx = state.db.begin().await?;
    let space = my_space(&mut tx, &owner, *id).await?;
    sharing::set_price_pct(&mut *tx, space.space_id, pct).await?;
    tx.commit().await?;
    Ok(HttpResponse::Ok().json(SpacePrice {
        space_id: space.space_id,
        price_pct: pct,
    }))
}

/// Stop new bookings at once (existing ones stand).
#[utoipa::path(tag = "owner", operation_id = "pause_space", security(("owner_token" = [])), responses((status = 200, description = "Done", body = SpacePaused)))]
#[post("/spaces/{id}/pause")]
async fn pause(
    state: web::Data<AppState>,
    owner: Owner,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    set_paused(&state, &owner, *id, true).await
}

/// Take bookings again.
#[utoipa::path(tag = "owner", operation_id = "resume_space", security(("owner_token" = [])), responses((status = 200, description = "Done", body = SpacePaused)))]
#[post("/spaces/{id}/resume")]
async fn resume(
    state: web::Data<AppState>,
    owner: Owner,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    set_paused(&state, &owner, *id, false).await
}

async fn set_paused(
    state: &AppState,
    owner: &Owner,
    id: Uuid,
    paused: bool,
) -> Result<HttpResponse, ApiError> {
    let mut tx = state.db.begin().await?;
    let space = my_space(&mut tx, owner, id).await?;
    sharing::set_paused(&mut *tx, space.space_id, paused).await?;
    tx.commit().await?;
    Ok(HttpResponse::Ok().json(SpacePaused {
        space_id: space.space_id,
        paused,
    }))
}

/// The space's one-off openings and blackouts still to come.
#[utoipa::path(tag = "owner", operation_id = "list_exceptions", security(("owner_token" = [])), responses((status = 200, description = "Done", body = Vec<sharing::ExceptionRow>)))]
#[get("/spaces/{id}/exceptions")]
async fn list_exceptions(
    state: web::Data<AppState>,
    owner: Owner,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    let mut tx = state.db.begin().await?;
    let space = my_space(&mut tx, &owner, *id).await?;
    let rows = sharing::exceptions(&mut *tx, &[space.space_id], state.clock.now()).await?;
    tx.commit().await?;
    Ok(HttpResponse::Ok().json(rows))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
struct ExceptionBody {
    /// `open` (extra hours) or `blackout` (the owner needs the space).
    kind: String,
    /// Local time, `YYYY-MM-DDTHH:MM`.
    from: String,
    to: String,
}

/// Add a one-off opening or blackout.
#[utoipa::path(tag = "owner", operation_id = "add_exception", security(("owner_token" = [])), request_body = ExceptionBody, responses((status = 201, description = "Created", body = NewException)))]
#[post("/spaces/{id}/exceptions")]
async fn add_exception(
    state: web::Data<AppState>,
    owner: Owner,
    id: web::Path<Uuid>,
    body: crate::input::Json<ExceptionBody>,
) -> Result<HttpResponse, ApiError> {
    let kind = ExceptionKind::parse(&body.kind).ok_or_else(|| {
        ApiError::invalid(
            ErrorCode::InvalidExceptionKind,
            "kind must be 'open' or 'blackout'",
        )
    })?;
    let mut tx = state.db.begin().await?;
    let space = my_space(&mut tx, &owner, *id).await?;
    if kind == ExceptionKind::Open {
        crate::allocation::rentals::letting::refuse_if_let(
            &mut tx,
            space.space_id,
            state.clock.now(),
        )
        .await?;
    }
    let tz = zone(&space)?;
    let from = parse_local(tz, &body.from).map_err(window_error)?;
    let to = parse_local(tz, &body.to).map_err(window_error)?;
    let during = Interval::new(from, to).ok_or(window_error(WindowError::Empty))?;
    if during.duration() > Duration::days(parkshare_sharing::window::QUERY_DAYS_MAX) {
        return Err(window_error(WindowError::TooLong));
    }
    let exception = Exception { kind, during };
    let mut schedule = schedule_with(&mut tx, &space, state.clock.now()).await?;
    schedule.exceptions.push(exception);
    keep_bookings(&mut tx, &space, &schedule, state.clock.now()).await?;
    let exception_id = Uuid::new_v4();
    sharing::insert_exception(&mut *tx, exception_id, space.space_id, &exception).await?;
    tx.commit().await?;
    Ok(HttpResponse::Created().json(NewException {
        id: exception_id,
        space_id: space.space_id,
        kind,
        starts_at: during.start,
        ends_at: during.end,
    }))
}

/// Remove a one-off opening or blackout (refused if it would strand a booking).
#[utoipa::path(tag = "owner", operation_id = "remove_exception", security(("owner_token" = [])), responses((status = 204, description = "Done; no body")))]
#[delete("/spaces/{id}/exceptions/{exception}")]
async fn remove_exception(
    state: web::Data<AppState>,
    owner: Owner,
    path: web::Path<(Uuid, Uuid)>,
) -> Result<HttpResponse, ApiError> {
    let (space_id, exception_id) = path.into_inner();
    let mut tx = state.db.begin().await?;
    let space = my_space(&mut tx, &owner, space_id).await?;
    let rows = sharing::exceptions(&mut *tx, &[space.space_id], state.clock.now()).await?;
    if !rows.iter().any(|r| r.id == exception_id) {
        return Err(ApiError::NotFound("exception"));
    }
    let mut schedule = sharing::schedule_of(&space, &rows);
    schedule.exceptions = rows
        .iter()
        .filter(|r| r.id != exception_id)
        .filter_map(|r| r.exception())
        .collect();
    keep_bookings(&mut tx, &space, &schedule, state.clock.now()).await?;
    sharing::delete_exception(&mut *tx, space.space_id, exception_id).await?;
    tx.commit().await?;
    Ok(HttpResponse::NoContent().finish())
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct RangeQuery {
    from: chrono::DateTime<Utc>,
    to: chrono::DateTime<Utc>,
}

/// The hours the space is open to visitors within `[from, to)`, as visitors will see them.
#[utoipa::path(tag = "owner", operation_id = "open_hours", params(RangeQuery), security(("owner_token" = [])), responses((status = 200, description = "Done", body = OpenHours)))]
#[get("/spaces/{id}/open-hours")]
async fn open_hours(
    state: web::Data<AppState>,
    owner: Owner,
    id: web::Path<Uuid>,
    query: web::Query<RangeQuery>,
) -> Result<HttpResponse, ApiError> {
    let range = Interval::new(query.from, query.to).ok_or(window_error(WindowError::Empty))?;
    let mut tx = state.db.begin().await?;
    let space = my_space(&mut tx, &owner, *id).await?;
    let schedule = schedule_with(&mut tx, &space, state.clock.now()).await?;
    tx.commit().await?;
    let open = schedule
        .open_intervals(zone(&space)?, &range)
        .map_err(window_error)?;
    Ok(HttpResponse::Ok().json(OpenHours {
        space_id: space.space_id,
        paused: space.paused,
        open,
    }))
}

/// Bookings on the owner's spaces, newest first, each with its history (who parked when) and
/// what it earned the owner (credited, net of refunds).
#[utoipa::path(tag = "owner", operation_id = "owner_bookings", security(("owner_token" = [])), responses((status = 200, description = "Done", body = Vec<OwnerBooking>)))]
#[get("/bookings")]
async fn bookings(state: web::Data<AppState>, owner: Owner) -> Result<HttpResponse, ApiError> {
    let bookings = sharing::bookings_of_owner(&state.db, owner.tenant_id, owner.owner_id).await?;
    let ids: Vec<Uuid> = bookings.iter().map(|b| b.id).collect();
    let events = sharing::booking_events(&state.db, &ids).await?;
    let earned = sharing::earnings_by_booking(&state.db, owner.tenant_id, owner.owner_id).await?;
    let listed: Vec<_> = bookings
        .iter()
        .map(|b| {
            let history: Vec<_> = events.iter().filter(|e| e.booking_id == b.id).collect();
            let credited = earned
                .iter()
                .find(|(id, _)| *id == b.id)
                .map(|(_, amount)| *amount)
                .unwrap_or_default();
            OwnerBooking {
                booking: b,
                history,
                credited: crate::store::yuan_text(credited),
            }
        })
        .collect();
    Ok(HttpResponse::Ok().json(listed))
}

/// What the owner is owed and earned per month, from the settlement ledger.
#[utoipa::path(tag = "owner", operation_id = "owner_earnings_self", security(("owner_token" = [])), responses((status = 200, description = "Done", body = crate::settlement::views::Earnings)))]
#[get("/earnings")]
async fn earnings(state: web::Data<AppState>, owner: Owner) -> Result<HttpResponse, ApiError> {
    let body =
        crate::settlement::views::earnings(&state.db, owner.tenant_id, owner.owner_id).await?;
    Ok(HttpResponse::Ok().json(body))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
struct WebhookBody {
    url: String,
}

/// Register (or replace) the owner's webhook; answers the signing secret once.
#[utoipa::path(tag = "owner", operation_id = "put_webhook", security(("owner_token" = [])), request_body = WebhookBody, responses((status = 200, description = "Done", body = OwnerWebhook)))]
#[put("/webhook")]
async fn put_webhook(
    state: web::Data<AppState>,
    owner: Owner,
    body: crate::input::Json<WebhookBody>,
) -> Result<HttpResponse, ApiError> {
    let url = webhooks::parse_url(&body.url, state.webhook_private_hosts)?;
    let secret = auth::new_token();
    sharing::upsert_owner_webhook(&state.db, owner.tenant_id, owner.owner_id, &url, &secret)
        .await?;
    Ok(HttpResponse::Ok().json(OwnerWebhook { url, secret }))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct TokenBody {
    label: Option<String>,
}

/// Staff issue an owner their credential (shown once).
#[utoipa::path(tag = "staff", operation_id = "issue_owner_token", security(("staff_token" = [])), request_body(content = Option<TokenBody>, description = "Optional: an empty body is none"), responses((status = 201, description = "Created", body = NewOwnerToken)))]
#[post("/owners/{id}/tokens")]
async fn issue_owner_token(
    state: web::Data<AppState>,
    staff: Staff,
    id: web::Path<Uuid>,
    body: crate::input::MaybeJson<TokenBody>,
) -> Result<HttpResponse, ApiError> {
    if !crate::store::registry::owner_of_tenant(&state.db, staff.tenant_id, *id).await? {
        return Err(ApiError::NotFound("owner"));
    }
    let token = auth::new_token();
    let label = crate::validate::label_or(body.0.and_then(|b| b.label), "owner app")?;
    let mut tx = state.db.begin().await?;
    let token_id = sharing::insert_owner_token(
        &mut *tx,
        staff.tenant_id,
        *id,
        &auth::digest(&token),
        &label,
    )
    .await?;
    let issued = Entry::issued(
        Some(staff.tenant_id),
        Kind::Owner,
        token_id,
        Actor::Staff(staff.token_id),
    );
    credentials::record(&mut *tx, &issued).await?;
    tx.commit().await?;
    Ok(HttpResponse::Created().json(NewOwnerToken {
        id: token_id,
        owner_id: *id,
        token,
    }))
}

/// The firm's recent webhook deliveries and their outcome.
#[utoipa::path(tag = "staff", operation_id = "webhook_deliveries", security(("staff_token" = [])), responses((status = 200, description = "Done", body = Vec<sharing::Delivery>)))]
#[get("/webhook-deliveries")]
async fn webhook_deliveries(
    state: web::Data<AppState>,
    staff: Staff,
) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(sharing::deliveries(&state.db, staff.tenant_id, 200).await?))
}
