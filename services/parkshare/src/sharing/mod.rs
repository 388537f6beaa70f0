//! Time-shared private spaces (issue 4, rule 5 of the domain brief).
//!
//! - `owner`: owners' windows, exceptions, pause, bookings, earnings, webhook (`/v1/owner`);
//!   staff issue owners their tokens;
//! - `visitor`: availability, booking and cancellation without login (`/v1/public`);
//! - `availability`: which shared spaces are free, and holding one (the database's exclusion
//!   constraint decides races);
//! - `gate`: booked plates, walk-ins placed on shared spaces, owners coming home, exits;
//! - `overstay`: the sweep that reports overstays and moves the next bookings;
//! - `webhooks` (in `crate::webhooks`, shared): the signed outbox and its delivery worker.
//!
//! The rules themselves (windows, limits, cancellation terms) are the pure `parkshare-sharing`
//! crate.

pub mod availability;
pub mod gate;
pub mod overstay;
pub mod owner;
pub mod visitor;
/// The owners' webhooks are shared by every feature that tells an owner something: they live low.
pub use crate::webhooks;

pub fn public_routes(cfg: &mut utoipa_actix_web::service_config::ServiceConfig) {
    visitor::routes(cfg);
}

/// Under `/v1/owner` (`openapi::api` wires the scope).
pub fn owner_routes(cfg: &mut utoipa_actix_web::service_config::ServiceConfig) {
    owner::routes(cfg);
}

pub fn admin_routes(cfg: &mut utoipa_actix_web::service_config::ServiceConfig) {
    owner::admin_routes(cfg);
}
