//! Revoking and rotating credentials, audited (issue 22, item 7).
//!
//! Every kind of credential — staff, owner, committee and supervisor tokens, disclosure links,
//! gates' device secrets, bookings' tokens — can be listed without its secret, revoked
//! (idempotent: revoking a revoked one answers when it was revoked and records nothing) and
//! rotated (a new secret shown once; the old one stops at once, in the same transaction).
//! Each issue, revocation and rotation is a line of `credential_audit`, written in the
//! transaction that made the change.
//!
//! A revoked credential is refused by the next request to this process (its cache is
//! forgotten after the commit) and, within milliseconds, by every other replica: the
//! credential tables notify `parkshare_gate_contexts` on any change (migrations 0013, 0017,
//! 0019), which each process listens to (`contexts`).
//!
//! - here: revoke and rotate, the same for every kind;
//! - `routes`: who may do it to what — staff within their firm, the operator over staff and
//!   supervisor tokens, a booking's holder over its token.

pub mod routes;

use crate::error::ErrorCode;
use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::PgConnection;
use uuid::Uuid;

use crate::auth;
use crate::error::ApiError;
use crate::state::AppState;
use crate::store::credentials::{self as store, Action, Actor, Entry, Target};

/// A credential revoked, now or before.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Revoked {
    pub id: Uuid,
    pub revoked_at: DateTime<Utc>,
}

/// A credential rotated: its new secret, shown this once only.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Rotated {
    /// The credential's id: a new one for tokens kept one per row, the object's own for
    /// device, supervisor and booking secrets.
    pub id: Uuid,
    /// The credential it replaces (the same id for secrets kept one per object).
    pub replaces: Uuid,
    pub token: String,
}

/// Revokes the target within one transaction, then drops the credential from this process's cache.
pub async fn revoke(state: &AppState, target: &Target, actor: Actor) -> Result<Revoked, ApiError> {
    let mut tx = state.db.begin().await?;
    let revoked = revoke_in(&mut tx, target, actor).await?;
    tx.commit().await?;
    state.credentials.forget_revoked(target.kind, target.id);
    Ok(revoked)
}

/// Rotates the target within one transaction, then drops the credential from this process's cache.
pub async fn rotate(state: &AppState, target: &Target, actor: Actor) -> Result<Rotated, ApiError> {
    let mut tx = state.db.begin().await?;
    let rotated = rotate_in(&mut tx, target, actor).await?;
    tx.commit().await?;
    state.credentials.forget_revoked(target.kind, target.id);
    Ok(rotated)
}

pub async fn revoke_in(
    tx: &mut PgConnection,
    target: &Target,
    actor: Actor,
) -> Result<Revoked, ApiError> {
    let standing = store::lock(&mut *tx, target)
        .await?
        .ok_or(ApiError::NotFound(target.kind.noun()))?;
    let revoked_at = match standing.revoked_at {
        Some(at) => at,
        None => {
            let at = store::revoke(&mut *tx, target.kind, target.id).await?;
            let entry = Entry {
                action: Action::Revoked,
                ..Entry::issued(standing.tenant_id, target.kind, target.id, actor)
            };
            store::record(&mut *tx, &entry).await?;
            at
        }
    };
    Ok(Revoked {
        id: target.id,
        revoked_at,
    })
}

/// A token kept one per row gets a successor and is revoked; a revoked one cannot be rotated
/// (issue a new one instead). A secret kept one per object is replaced in place, which also
/// brings a revoked device or supervisor back with a new secret.
pub async fn rotate_in(
    tx: &mut PgConnection,
    target: &Target,
    actor: Actor,
) -> Result<Rotated, ApiError> {
    let kind = target.kind;
    let standing = store::lock(&mut *tx, target)
        .await?
        .ok_or(ApiError::NotFound(kind.noun()))?;
    let token = auth::new_token();
    let digest = auth::digest(&token);
    let id = if kind.one_per_row() {
        if standing.revoked_at.is_some() {
            return Err(ApiError::conflict(
                ErrorCode::CredentialRevoked,
                "a revoked token cannot be rotated; issue a new one",
            ));
        }
        let id = Uuid::new_v4();
        store::revoke(&mut *tx, kind, target.id).await?;
        store::insert_successor(&mut *tx, kind, target.id, id, &digest).await?;
        store::record(
            &mut *tx,
            &Entry::issued(standing.tenant_id, kind, id, actor),
        )
        .await?;
        id
    } else {
        store::replace_secret(&mut *tx, kind, target.id, &digest).await?;
        target.id
    };
    let entry = Entry {
        action: Action::Rotated,
        replaced_by: (id != target.id).then_some(id),
        ..Entry::issued(standing.tenant_id, kind, target.id, actor)
    };
    store::record(&mut *tx, &entry).await?;
    Ok(Rotated {
        id,
        replaces: target.id,
        token,
    })
}
