//! The gate API: barrier devices post plate reads and get a decision back.
//!
//! `events`: the `POST /v1/gate/events` handler and the entry and exit flows.

pub mod events;

use actix_web::web;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(events::post_event);
}
