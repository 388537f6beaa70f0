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
/// The field checks live low (`crate::validate`): every feature refuses the same things.
pub use crate::validate;

/// The registry's routes under `/v1/admin`; the scope itself, with the other features' staff
/// routes, is wired in `openapi::api`.
pub fn routes(cfg: &mut utoipa_actix_web::service_config::ServiceConfig) {
    cfg.configure(compounds::routes)
        .configure(lots::routes)
        .configure(devices::routes)
        .configure(people::routes)
        .configure(imports::routes)
        .configure(operations::routes)
        .configure(tariffs::routes);
}
