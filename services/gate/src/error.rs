//! The one API error type. 4xx bodies carry a stable `code` and a human `message`; 5xx bodies
//! are opaque and the cause chain is logged instead.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("missing or invalid credentials")]
    Unauthenticated,
    #[error("{message}")]
    Forbidden { code: &'static str, message: String },
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("{message}")]
    BadRequest { code: &'static str, message: String },
    #[error("{message}")]
    Invalid { code: &'static str, message: String },
    #[error("{message}")]
    Conflict { code: &'static str, message: String },
    /// Over an abuse limit: 429 with `Retry-After`.
    #[error("{message}")]
    TooManyRequests {
        code: &'static str,
        message: String,
        retry_after: std::time::Duration,
    },
    #[error("a backing service is unavailable")]
    Unavailable(#[source] anyhow::Error),
    #[error("internal error")]
    Internal(#[from] anyhow::Error),
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    error: ErrorDetail<'a>,
}

#[derive(Serialize)]
struct ErrorDetail<'a> {
    code: &'a str,
    message: String,
}

impl ApiError {
    /// A fault of ours (a broken invariant, data that should not exist): 500, its cause logged,
    /// never shown.
    pub fn internal(cause: impl std::fmt::Display) -> ApiError {
        ApiError::Internal(anyhow::anyhow!("{cause}"))
    }

    pub fn invalid(code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError::Invalid {
            code,
            message: message.into(),
        }
    }

    pub fn conflict(code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError::Conflict {
            code,
            message: message.into(),
        }
    }

    pub fn rate_limited(
        code: &'static str,
        message: impl Into<String>,
        retry_after: std::time::Duration,
    ) -> ApiError {
        ApiError::TooManyRequests {
            code,
            message: message.into(),
            retry_after,
        }
    }

    pub fn bad_request(code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError::BadRequest {
            code,
            message: message.into(),
        }
    }

    /// Whether this is a Postgres conflict (a deadlock, a serialization failure, a second car
    /// on a space) that running the transaction again may resolve.
    pub fn is_retryable(&self) -> bool {
        match self {
            ApiError::Unavailable(cause) | ApiError::Internal(cause) => cause
                .downcast_ref::<sqlx::Error>()
                .is_some_and(is_retryable),
            _ => false,
        }
    }

    pub fn code(&self) -> &'static str {
        match self {
            ApiError::Unauthenticated => "unauthenticated",
            ApiError::Forbidden { code, .. }
            | ApiError::BadRequest { code, .. }
            | ApiError::Invalid { code, .. }
            | ApiError::Conflict { code, .. }
            | ApiError::TooManyRequests { code, .. } => code,
            ApiError::NotFound(_) => "not_found",
            ApiError::Unavailable(_) => "unavailable",
            ApiError::Internal(_) => "internal",
        }
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            ApiError::Unauthenticated => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden { .. } => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::BadRequest { .. } => StatusCode::BAD_REQUEST,
            ApiError::Invalid { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::Conflict { .. } => StatusCode::CONFLICT,
            ApiError::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let message = match self {
            ApiError::Unavailable(cause) | ApiError::Internal(cause) => {
                tracing::error!(error = ?cause, code = self.code(), "request failed");
                match self {
                    ApiError::Unavailable(_) => "service temporarily unavailable, retry".to_owned(),
                    _ => "internal error".to_owned(),
                }
            }
            other => other.to_string(),
        };
        let mut response = HttpResponse::build(self.status_code());
        if matches!(self, ApiError::Unauthenticated) {
            response.insert_header(("WWW-Authenticate", "Bearer"));
        }
        if let ApiError::TooManyRequests { retry_after, .. } = self {
            // Whole seconds, rounded up: retrying at the time said must pass.
            let seconds = retry_after.as_secs() + u64::from(retry_after.subsec_nanos() > 0);
            response.insert_header(("Retry-After", seconds.max(1).to_string()));
        }
        response.json(ErrorBody {
            error: ErrorDetail {
                code: self.code(),
                message,
            },
        })
    }
}

/// SQLSTATEs of a connection Postgres ended or refused: a connection exception (class 08), or
/// the server shutting down, crashed or still starting (57P01–57P03). Nothing was decided;
/// the caller may retry.
fn connection_lost(code: &str) -> bool {
    code.starts_with("08") || matches!(code, "57P01" | "57P02" | "57P03")
}

/// SQLSTATEs of text Postgres cannot store (NUL, or a character the encoding lacks): input
/// that slipped past [`crate::input`] — a client's mistake, not the service's.
fn unstorable_text(code: &str) -> bool {
    matches!(code, "22021" | "22P05")
}

/// SQLSTATEs of a transaction Postgres aborted to break a deadlock or a serialization
/// conflict: nothing of it was committed, and running it again may well succeed.
fn conflict_aborted(code: &str) -> bool {
    matches!(code, "40001" | "40P01")
}

/// The one-space-one-car index: a car was placed on a space another car still stands on.
/// Nothing was committed; deciding again sees the car and moves on.
pub const ONE_CAR_PER_SPACE: &str = "sessions_one_car_per_space";

/// Whether the transaction that failed with `e` was aborted by a conflict with a concurrent
/// one, so that running it again is the remedy (bounded: see `gate::events::decide`).
pub fn is_retryable(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Database(db) => {
            db.code().as_deref().is_some_and(conflict_aborted)
                || db.constraint() == Some(ONE_CAR_PER_SPACE)
        }
        _ => false,
    }
}

/// Whether `e` means Postgres could not be reached or ended the connection: nothing was
/// decided, and the caller may retry (or fall back, as the credential cache does).
pub fn is_outage(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::PoolTimedOut | sqlx::Error::Io(_) | sqlx::Error::PoolClosed => true,
        sqlx::Error::Database(db) => db.code().as_deref().is_some_and(connection_lost),
        _ => false,
    }
}

impl From<sqlx::Error> for ApiError {
    fn from(e: sqlx::Error) -> ApiError {
        if let sqlx::Error::Database(ref db) = e {
            if db.code().as_deref().is_some_and(unstorable_text) {
                tracing::warn!(error = %e, "text Postgres cannot store reached a statement");
                return ApiError::invalid(
                    "invalid_text",
                    "a text field holds a character that cannot be stored (such as NUL)",
                );
            }
        }
        crate::metrics::backend_error("postgres");
        // A conflict Postgres aborted decided nothing either: 503, retry.
        if is_outage(&e) || is_retryable(&e) {
            ApiError::Unavailable(e.into())
        } else {
            ApiError::Internal(e.into())
        }
    }
}

impl From<redis::RedisError> for ApiError {
    fn from(e: redis::RedisError) -> ApiError {
        crate::metrics::backend_error("redis");
        ApiError::Unavailable(e.into())
    }
}

/// True when `e` is a violation of the named unique or exclusion constraint.
pub fn is_unique_violation(e: &sqlx::Error, constraint: &str) -> bool {
    match e {
        sqlx::Error::Database(db) => db.constraint() == Some(constraint),
        _ => false,
    }
}

/// Turns actix's JSON, path and query extraction failures into our error body.
pub fn json_error(
    err: actix_web::error::JsonPayloadError,
    _: &actix_web::HttpRequest,
) -> actix_web::Error {
    let message = match &err {
        actix_web::error::JsonPayloadError::OverflowKnownLength { .. }
        | actix_web::error::JsonPayloadError::Overflow { .. } => {
            "request body too large".to_owned()
        }
        other => other.to_string(),
    };
    ApiError::bad_request("invalid_body", message).into()
}

/// A path segment that does not parse (e.g. a malformed id) names nothing that exists.
pub fn path_error(_: actix_web::error::PathError, _: &actix_web::HttpRequest) -> actix_web::Error {
    ApiError::NotFound("resource").into()
}

pub fn query_error(
    err: actix_web::error::QueryPayloadError,
    _: &actix_web::HttpRequest,
) -> actix_web::Error {
    ApiError::bad_request("invalid_query", err.to_string()).into()
}
