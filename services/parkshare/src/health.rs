//! The operations routes: `/healthz` (the process is alive) and `/readyz` (Postgres and Redis
//! answer, and the schema is this build's).

use actix_web::{get, web, HttpResponse};

use crate::state::AppState;

/// The process is alive.
#[utoipa::path(tag = "operations", operation_id = "healthz", responses((status = 200, description = "Done", body = Health)))]
#[get("/healthz")]
pub(crate) async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(Health { status: "ok" })
}

/// The process answers.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub(crate) struct Health {
    /// `ok`.
    status: &'static str,
}

/// What readiness needs, each reachable or current.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub(crate) struct Readiness {
    postgres: bool,
    redis: bool,
    /// The database's schema is this build's.
    migrations: bool,
}

/// Postgres and Redis are reachable and the schema is this build's.
#[utoipa::path(tag = "operations", operation_id = "readyz", responses((status = 200, description = "Done", body = Readiness), (status = 503, description = "Not ready: what is not", body = Readiness)))]
#[get("/readyz")]
pub(crate) async fn readyz(state: web::Data<AppState>) -> HttpResponse {
    let postgres = sqlx::query("select 1").execute(&state.db).await.is_ok();
    let redis = state.occupancy.ping().await.is_ok();
    let migrations = crate::store::schema_is_current(&state.db).await;
    let body = Readiness {
        postgres,
        redis,
        migrations,
    };
    if postgres && redis && migrations {
        HttpResponse::Ok().json(body)
    } else {
        HttpResponse::ServiceUnavailable().json(body)
    }
}
