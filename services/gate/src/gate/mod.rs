//! The gate API: barrier devices post plate reads and get a decision back.
//!
//! `events`: the `POST /v1/gate/events` handler and the entry and exit flows; `batch`: live
//! reads decided together, one transaction and one commit per batch; `facts`:
//! passages that already happened (offline replays, fail-open, manual opens); `lanes`: device
//! health, the fail-open/closed policy, barrier commands; `journal` (in `state`): fail-open
//! passages on disk until Postgres has them; `vendors`: the camera adapters;
//! `answer`: a lane that gave up waiting (503) and the commit it reported kept in step.

pub mod answer;
pub mod batch;
pub mod events;
pub mod facts;
pub mod lanes;
pub mod vendors;

/// The fail-open journal is the process's state (`AppState` holds it): it lives in `state`.
pub use crate::state::journal;

pub fn routes(cfg: &mut utoipa_actix_web::service_config::ServiceConfig) {
    cfg.service(events::post_event).configure(vendors::routes);
}
