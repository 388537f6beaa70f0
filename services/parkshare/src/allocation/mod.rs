//! Spaces serve owners first (DOMAIN.md rule 3; pure rules in `parkshare_allocation`):
//!
//! - [`lottery`]: the lottery (摇号) for new or released spaces;
//! - [`unsold`]: developer spaces left unsold — since when they are for sale, how they are
//!   offered now, and the list of those that break the two-year rule;
//! - [`rentals`]: rentals (月租) of a lot's pool or one space, paid, renewed, ended early,
//!   admitted at the gate; the owners-first waiting list;
//! - [`allotment`]: whether a lottery is allotting a space and to whom, asked by the lottery,
//!   the rentals and the unsold spaces alike (below them all).

mod allotment;
pub mod lottery;
pub mod rentals;
pub mod unsold;

/// Under `/v1/admin`.
pub fn admin_routes(cfg: &mut utoipa_actix_web::service_config::ServiceConfig) {
    lottery::admin_routes(cfg);
    rentals::admin_routes(cfg);
    unsold::admin_routes(cfg);
}

/// Under `/v1/owner`.
pub fn owner_routes(cfg: &mut utoipa_actix_web::service_config::ServiceConfig) {
    lottery::owner_routes(cfg);
    rentals::owner_routes(cfg);
}

pub fn public_routes(cfg: &mut utoipa_actix_web::service_config::ServiceConfig) {
    lottery::public_routes(cfg);
}
