//! An owner's consent to let their own space by the month (月租) through the property office.
//! The office holds the letting agreement and enters the terms; the owner says yes or no with
//! their owner token, and every change is kept (`letting_consents`). Without a consent in
//! force the office cannot let the space (409 `owner_consent_required`); a consent withdrawn
//! leaves the running terms standing but stops new ones and renewals.

use actix_web::{put, web, HttpResponse};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::{PgConnection, PgExecutor};
use uuid::Uuid;

use crate::auth::Owner;
use crate::error::{ApiError, ErrorCode};
use crate::state::AppState;

/// Under `/v1/owner`.
pub fn owner_routes(cfg: &mut utoipa_actix_web::service_config::ServiceConfig) {
    cfg.service(set_consent);
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
    let current = consent_of_owner(&mut *tx, owner.tenant_id, owner.owner_id, *id)
        .await?
        .ok_or(ApiError::NotFound("space"))?;
    // Saying again what is in force changes nothing (a retried request keeps its date).
    let consented_at = match (body.consent, current) {
        (true, Some(since)) => Some(since),
        (false, None) => None,
        (consent, _) => {
            let at = consent.then_some(now);
            record(&mut tx, *id, owner.owner_id, at, now).await?;
            at
        }
    };
    tx.commit().await?;
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
) -> sqlx::Result<Option<Option<DateTime<Utc>>>> {
    sqlx::query_scalar(
        "select letting_consented_at from spaces
          where tenant_id = $1 and owner_id = $2 and id = $3 and kind = 'owned' for update",
    )
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

/// Refuses letting an owner's space that its owner has not consented to (or withdrew from).
pub(crate) async fn require_consent(
    db: impl PgExecutor<'_>,
    space_id: Uuid,
) -> Result<(), ApiError> {
    let consented: Option<DateTime<Utc>> =
        sqlx::query_scalar("select letting_consented_at from spaces where id = $1")
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
