//! An owner's consent to let their own space by the month (月租) through the property office.
//! The office holds the letting agreement and enters the terms; the owner says yes or no with
//! their owner token, and every change is kept (`letting_consents`). Without a consent in
//! force the office cannot let the space (409 `owner_consent_required`); a consent withdrawn
//! leaves the paid terms standing but stops new ones and renewals, and expires the terms still
//! held for their payment (a payment arriving for one later is owed back).
//!
//! A space is let by the month or shared by the hour, never both: consent is refused while the
//! space is shared (weekly windows, a one-off opening ahead, or a booking not over: 409
//! `space_shared`), and sharing is refused while it is let (consent in force, or a term held or
//! paid with days ahead: 409 `space_let_monthly`). Both sides decide with the space's row
//! locked, so a consent and a window sent together cannot both pass.

use actix_web::{get, put, web, HttpResponse};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::{PgConnection, PgExecutor};
use uuid::Uuid;

use crate::auth::Owner;
use crate::error::{ApiError, ErrorCode};
use crate::state::AppState;

/// Under `/v1/owner`.
pub fn owner_routes(cfg: &mut utoipa_actix_web::service_config::ServiceConfig) {
    cfg.service(set_consent).service(read_consent);
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct ConsentBody {
    /// `true` to let the space by the month through the office; `false` to withdraw.
    consent: bool,
}

/// Where an owner's space stands for monthly letting.
#[derive(Serialize, utoipa::ToSchema)]
struct Consent {
    space_id: Uuid,
    consent: bool,
    /// Since when the consent is in force; absent without one.
    consented_at: Option<DateTime<Utc>>,
}

/// Give or withdraw consent to let one's own space by the month through the property office.
/// Withdrawing leaves running terms standing, but no term is entered or renewed.
#[utoipa::path(tag = "owner", operation_id = "set_letting_consent", security(("owner_token" = [])), request_body = ConsentBody, responses((status = 200, description = "Done", body = Consent)))]
#[put("/spaces/{id}/letting-consent")]
async fn set_consent(
    state: web::Data<AppState>,
    owner: Owner,
    id: web::Path<Uuid>,
    body: crate::input::Json<ConsentBody>,
) -> Result<HttpResponse, ApiError> {
    let now = state.clock.now();
    let mut tx = state.db.begin().await?;
    let current = consent_of_owner(&mut *tx, owner.tenant_id, owner.owner_id, *id, true)
        .await?
        .ok_or(ApiError::NotFound("space"))?;
    // Saying again what is in force changes nothing (a retried request keeps its date).
    let consented_at = match (body.consent, current) {
        (true, Some(since)) => Some(since),
        (false, None) => None,
        (true, None) => {
            if shared(&mut *tx, *id, now).await? {
                return Err(ApiError::conflict(
                    ErrorCode::SpaceShared,
                    "this space is shared by the hour: remove its weekly windows and one-off \
                     openings and let its bookings end before letting it by the month",
                ));
            }
            record(&mut tx, *id, owner.owner_id, Some(now), now).await?;
            Some(now)
        }
        (false, Some(_)) => {
            record(&mut tx, *id, owner.owner_id, None, now).await?;
            expire_held_terms(&mut *tx, *id, now).await?;
            None
        }
    };
    tx.commit().await?;
    Ok(HttpResponse::Ok().json(Consent {
        space_id: *id,
        consent: consented_at.is_some(),
        consented_at,
    }))
}

/// Where the owner's space stands for monthly letting.
#[utoipa::path(tag = "owner", operation_id = "read_letting_consent", security(("owner_token" = [])), responses((status = 200, description = "Done", body = Consent)))]
#[get("/spaces/{id}/letting-consent")]
async fn read_consent(
    state: web::Data<AppState>,
    owner: Owner,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    let consented_at = consent_of_owner(&state.db, owner.tenant_id, owner.owner_id, *id, false)
        .await?
        .ok_or(ApiError::NotFound("space"))?;
    Ok(HttpResponse::Ok().json(Consent {
        space_id: *id,
        consent: consented_at.is_some(),
        consented_at,
    }))
}

/// The consent on the owner's own space, locked: `None` if the space is not theirs; `Some(None)`
/// without a consent in force.
async fn consent_of_owner(
    db: impl PgExecutor<'_>,
    tenant_id: Uuid,
    owner_id: Uuid,
    space_id: Uuid,
    lock: bool,
) -> sqlx::Result<Option<Option<DateTime<Utc>>>> {
    sqlx::query_scalar(if lock {
        "select letting_consented_at from spaces
          where tenant_id = $1 and owner_id = $2 and id = $3 and kind = 'owned' for update"
    } else {
        "select letting_consented_at from spaces
          where tenant_id = $1 and owner_id = $2 and id = $3 and kind = 'owned'"
    })
    .bind(tenant_id)
    .bind(owner_id)
    .bind(space_id)
    .fetch_optional(db)
    .await
}

async fn record(
    tx: &mut PgConnection,
    space_id: Uuid,
    owner_id: Uuid,
    consented_at: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> sqlx::Result<()> {
    sqlx::query("update spaces set letting_consented_at = $2 where id = $1")
        .bind(space_id)
        .bind(consented_at)
        .execute(&mut *tx)
        .await?;
    sqlx::query(
        "insert into letting_consents (space_id, owner_id, consented, at) values ($1, $2, $3, $4)",
    )
    .bind(space_id)
    .bind(owner_id)
    .bind(consented_at.is_some())
    .bind(now)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// Whether the space is shared by the hour at `now`: weekly windows, a one-off opening not
/// over, or a booking held, booked or arrived.
async fn shared(db: impl PgExecutor<'_>, space_id: Uuid, now: DateTime<Utc>) -> sqlx::Result<bool> {
    sqlx::query_scalar(
        "select exists (select 1 from shared_spaces
                          where space_id = $1 and jsonb_array_length(windows) > 0)
             or exists (select 1 from share_exceptions
                          where space_id = $1 and kind = 'open' and upper(during) > $2)
             or exists (select 1 from bookings
                          where space_id = $1 and status in ('held', 'booked', 'arrived'))",
    )
    .bind(space_id)
    .bind(now)
    .fetch_one(db)
    .await
}

/// Terms of the space still held for their payment end with the consent: expired, as a hold
/// that ran out is (a payment that arrives for one later is owed back).
async fn expire_held_terms(
    db: impl PgExecutor<'_>,
    space_id: Uuid,
    now: DateTime<Utc>,
) -> sqlx::Result<u64> {
    Ok(sqlx::query(
        "update rentals set status = 'expired', hold_expires_at = least(hold_expires_at, $2)
          where space_id = $1 and status = 'awaiting_payment'",
    )
    .bind(space_id)
    .bind(now)
    .execute(db)
    .await?
    .rows_affected())
}

/// Refuses sharing the owner's space by the hour while it is let by the month: its consent in
/// force, or a term of it held or paid with days from the compound's today on. Locks the
/// space's row first (as a consent change does).
pub(crate) async fn refuse_if_let(
    conn: &mut PgConnection,
    space_id: Uuid,
    now: DateTime<Utc>,
) -> Result<(), ApiError> {
    let let_monthly: Option<bool> = sqlx::query_scalar(
        "select s.letting_consented_at is not null
             or exists (select 1 from rentals r
                         where r.space_id = s.id
                           and (r.status = 'paid'
                                or (r.status = 'awaiting_payment' and r.hold_expires_at > $2))
                           and upper(r.during) > ($2 at time zone c.time_zone)::date)
           from spaces s join lots l on l.id = s.lot_id join compounds c on c.id = l.compound_id
          where s.id = $1 for update of s",
    )
    .bind(space_id)
    .bind(now)
    .fetch_optional(&mut *conn)
    .await?;
    if let_monthly == Some(true) {
        return Err(ApiError::conflict(
            ErrorCode::SpaceLetMonthly,
            "this space is let by the month through the property office: it is not shared by \
             the hour while its consent stands or a term of it runs",
        ));
    }
    Ok(())
}

/// Refuses letting an owner's space that its owner has not consented to (or withdrew from).
pub(crate) async fn require_consent(
    db: impl PgExecutor<'_>,
    space_id: Uuid,
) -> Result<(), ApiError> {
    let consented: Option<DateTime<Utc>> =
        // Shared with the withdrawal's lock: a term held for the payment while the owner
        // withdraws is seen by the withdrawal and expired with the others (round 2, N2).
        sqlx::query_scalar("select letting_consented_at from spaces where id = $1 for share")
            .bind(space_id)
            .fetch_optional(db)
            .await?
            .flatten();
    if consented.is_none() {
        return Err(ApiError::conflict(
            ErrorCode::OwnerConsentRequired,
            "the owner of this space has not consented to letting it by the month (they give \
             it with PUT /v1/owner/spaces/{id}/letting-consent)",
        ));
    }
    Ok(())
}
