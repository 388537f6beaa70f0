//! Who is calling: a gate device, a property firm's staff member, an owner, an owners'
//! committee, a supervisor, or the platform
//! operator. (A visitor holds a token for one booking only; see `sharing::visitor`.)
//!
//! Device and staff credentials are random 256-bit tokens shown once at creation; only their
//! SHA-256 digest is stored (a slow password hash buys nothing for tokens of full entropy).
//! Tokens are never logged: they only ever pass through [`digest`]. A revoked credential is
//! unknown to every lookup here (`revocation`).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use actix_web::{web, FromRequest, HttpRequest};
use rand::RngCore;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::contexts::StaffIdentity;
use crate::error::ApiError;
use crate::state::AppState;
use crate::store::registry::{self, GateContext};

/// A new random token, 64 hex characters.
pub fn new_token() -> String {
    let mut bytes = [0_u8; 32];
    rand::thread_rng().fill_bytes(&mut bytes);
    hex::encode(bytes)
}

pub fn digest(token: &str) -> Vec<u8> {
    Sha256::digest(token.as_bytes()).to_vec()
}

fn bearer(req: &HttpRequest) -> Option<&str> {
    req.headers()
        .get(actix_web::http::header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .split_once(" ")
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token)
        .map(str::trim)
        .filter(|t| !t.is_empty())
}

fn state(req: &HttpRequest) -> Result<web::Data<AppState>, ApiError> {
    req.app_data::<web::Data<AppState>>()
        .cloned()
        .ok_or_else(|| ApiError::Internal(anyhow::anyhow!("application state missing")))
}

/// The future of an extractor that looks the bearer token's digest up with `lookup`; a missing
/// or unknown token is 401.
fn by_token<T, F, Fut>(
    req: &HttpRequest,
    lookup: F,
) -> Pin<Box<dyn Future<Output = Result<T, ApiError>>>>
where
    T: 'static,
    F: FnOnce(web::Data<AppState>, Vec<u8>) -> Fut + 'static,
    Fut: Future<Output = Result<Option<T>, ApiError>> + 'static,
{
    let token = bearer(req).map(digest);
    let state = state(req);
    Box::pin(async move {
        let (token, state) = (token.ok_or(ApiError::Unauthenticated)?, state?);
        lookup(state, token).await?.ok_or(ApiError::Unauthenticated)
    })
}

/// The gate whose credential has this digest, from the process's cache or from Postgres.
pub async fn gate_by_digest(
    state: &AppState,
    digest: &[u8],
) -> anyhow::Result<Option<Arc<GateContext>>> {
    state
        .credentials
        .gates
        .get_or_read(digest, || registry::gate_by_secret(&state.db, digest))
        .await
}

/// An authenticated gate device with everything the hot path needs about its lane.
pub struct Device(pub Arc<GateContext>);

impl FromRequest for Device {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Device, ApiError>>>>;

    fn from_request(req: &HttpRequest, _: &mut actix_web::dev::Payload) -> Self::Future {
        by_token(req, |state, token| async move {
            let gate = gate_by_digest(&state, &token).await.map_err(|e| {
                if crate::contexts::Outage::is_outage(&e) {
                    ApiError::Unavailable(e)
                } else {
                    ApiError::Internal(e)
                }
            })?;
            Ok(gate.map(Device))
        })
    }
}

/// An authenticated staff member of one property firm (tenant). Every admin query is scoped to
/// `tenant_id`; another tenant's objects answer 404.
pub struct Staff {
    /// The token's id: who did it, in the credential audit.
    pub token_id: Uuid,
    pub tenant_id: Uuid,
    /// The label the token was issued under: who did it, in audit records.
    pub label: String,
}

impl FromRequest for Staff {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Staff, ApiError>>>>;

    fn from_request(req: &HttpRequest, _: &mut actix_web::dev::Payload) -> Self::Future {
        by_token(req, |state, token| async move {
            let staff = state
                .credentials
                .staff
                .get_or_read(&token, || async {
                    let row = registry::staff_by_token(&state.db, &token).await?;
                    Ok::<_, sqlx::Error>(row.map(|(token_id, tenant_id, label)| StaffIdentity {
                        token_id,
                        tenant_id,
                        label,
                    }))
                })
                .await?;
            Ok(staff.map(|s| Staff {
                token_id: s.token_id,
                tenant_id: s.tenant_id,
                label: s.label.clone(),
            }))
        })
    }
}

/// The platform operator, who creates tenants. Disabled unless `PARKSHARE_OPERATOR_TOKEN` is set.
pub struct Operator;

impl FromRequest for Operator {
    type Error = ApiError;
    type Future = std::future::Ready<Result<Operator, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut actix_web::dev::Payload) -> Self::Future {
        let allowed = match (bearer(req), state(req)) {
            (Some(token), Ok(state)) => state
                .operator_token_digest
                .as_ref()
                .is_some_and(|expected| *expected == digest(token)),
            _ => false,
        };
        std::future::ready(if allowed {
            Ok(Operator)
        } else {
            Err(ApiError::Unauthenticated)
        })
    }
}

/// An owner (业主) of one property firm's compound, with a token their firm issued. Owners see
/// only their own spaces, bookings and earnings; anything else answers 404.
pub struct Owner {
    pub tenant_id: Uuid,
    pub owner_id: Uuid,
}

impl FromRequest for Owner {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Owner, ApiError>>>>;

    fn from_request(req: &HttpRequest, _: &mut actix_web::dev::Payload) -> Self::Future {
        by_token(req, |state, token| async move {
            let owner = crate::store::sharing::owner_by_token(&state.db, &token).await?;
            Ok(owner.map(|(tenant_id, owner_id)| Owner {
                tenant_id,
                owner_id,
            }))
        })
    }
}

/// The bearer token of a request, digested (a booking's visitor token).
pub fn bearer_digest(req: &HttpRequest) -> Option<Vec<u8>> {
    bearer(req).map(digest)
}

/// The owners' committee (业主委员会) of one compound: read-only over that compound's ledger
/// and disclosure. Tokens are issued by the property firm.
pub struct Committee {
    pub tenant_id: Uuid,
    pub compound_id: Uuid,
}

impl FromRequest for Committee {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Committee, ApiError>>>>;

    fn from_request(req: &HttpRequest, _: &mut actix_web::dev::Payload) -> Self::Future {
        by_token(req, |state, token| async move {
            let committee = crate::store::disclosure::committee(&state.db, &token).await?;
            Ok(committee.map(|(tenant_id, compound_id)| Committee {
                tenant_id,
                compound_id,
            }))
        })
    }
}

/// A supervisor (e.g. a street office, 街道办事处): summaries of the compounds of its area,
/// whichever firm runs them. Created by the platform operator.
pub struct Supervisor {
    pub id: Uuid,
}

impl FromRequest for Supervisor {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Supervisor, ApiError>>>>;

    fn from_request(req: &HttpRequest, _: &mut actix_web::dev::Payload) -> Self::Future {
        by_token(req, |state, token| async move {
            let id = crate::store::disclosure::supervisor_by_token(&state.db, &token).await?;
            Ok(id.map(|id| Supervisor { id }))
        })
    }
}
/// The compound, if it is the caller's; 404 otherwise (also for another tenant's compound).
pub async fn owned_compound(
    state: &crate::state::AppState,
    staff: &Staff,
    id: Uuid,
) -> Result<crate::store::registry::Compound, ApiError> {
    crate::store::registry::compound(&state.db, staff.tenant_id, id)
        .await?
        .ok_or(ApiError::NotFound("compound"))
}
