//! The staff admin API, scoped to the caller's property firm (tenant).
//!
//! - `compounds`: compounds, their gate policy, exempt vehicles and the blocklist;
//! - `lots`: lots, gates (device credentials), spaces;
//! - `people`: owners, vehicles, permits;
//! - `tariffs`: price standards and tariff filing;
//! - `imports`: CSV imports of owners, spaces and vehicles, all or nothing;
//! - `operations`: occupancy (view, difference, rebuild), sessions, payments, anomalies;
//! - credentials of the firm (list, revoke, rotate, audit): `crate::revocation::routes`.

pub mod compounds;
pub mod devices;
pub mod imports;
pub mod lots;
pub mod operations;
pub mod people;
pub mod tariffs;
pub mod validate;

pub fn routes(cfg: &mut utoipa_actix_web::service_config::ServiceConfig) {
    cfg.service(
        utoipa_actix_web::scope("/v1/admin")
            .wrap(actix_web::middleware::from_fn(
                crate::contexts::forget_after_writes,
            ))
            .configure(compounds::routes)
            .configure(lots::routes)
            .configure(devices::routes)
            .configure(people::routes)
            .configure(imports::routes)
            .configure(operations::routes)
            .configure(tariffs::routes)
            .configure(crate::settlement::admin_routes)
            .configure(crate::sharing::admin_routes)
            .configure(crate::disclosure::admin_routes)
            .configure(crate::allocation::admin_routes)
            .configure(crate::revocation::routes::admin_routes),
    );
}
