//! The gate API: barrier devices post plate reads and get a decision back.
//!
//! A read's way, top to bottom: `events` (the JSON API) or `vendors` (the camera adapters)
//! check it; `lanes` has it decided within the lane's budget (its fail-open or fail-closed
//! policy when the backend cannot) and keeps device health and barrier commands; `decide`
//! offers it to a batch or runs it alone, and runs it again after a conflict; `pipeline` is
//! the one run that decides every read — a batch, a read alone, a passage that already
//! happened — with `facts` the steps of passages that already happened (offline replays,
//! fail-open, manual opens) and `record` what every step writes and leaves behind; `answer`
//! keeps a lane that gave up waiting (503) and the commit it reports in step. The fail-open
//! `journal` (in `state`) keeps passages on disk until Postgres has them.

pub mod answer;
pub mod decide;
pub mod events;
pub mod facts;
pub mod lanes;
pub mod pipeline;
pub mod record;
pub mod vendors;

/// The fail-open journal is the process's state (`AppState` holds it): it lives in `state`.
pub use crate::state::journal;

pub fn routes(cfg: &mut utoipa_actix_web::service_config::ServiceConfig) {
    cfg.service(events::post_event).configure(vendors::routes);
}
