//! Settlement (issue 5): payments and the double-entry ledger.
//!
//! - `payments`: payment intents, provider callbacks, cash at the booth, refunds;
//! - `provider`: the provider interface (signed notifications) and the simulated provider;
//! - `posting`: payments and unmatched receipts as journal transactions (the split itself is
//!   the pure `parkshare-ledger` crate);
//! - `close`: closing accounting periods of common revenue, owners' statements;
//! - `exports`: a closed period's journal as CSV and beancount;
//! - `reconcile`: providers' settlement files against our payments, fees booked;
//! - `owed`: money owed back to drivers, and its payouts;
//! - `views`: accounts, journal, balance check, owners' earnings, revenue policies.
//!
//! It shares the gate's database today: a payment must credit the session the exit reads in
//! the same transaction. It is a folder of its own so it can become its own service.

pub mod close;
pub mod exports;
pub mod owed;
pub mod payments;
pub mod posting;
pub mod provider;
pub mod reconcile;
pub mod store;
pub mod views;

pub fn public_routes(cfg: &mut utoipa_actix_web::service_config::ServiceConfig) {
    payments::public_routes(cfg);
}

pub fn admin_routes(cfg: &mut utoipa_actix_web::service_config::ServiceConfig) {
    payments::admin_routes(cfg);
    views::admin_routes(cfg);
    close::admin_routes(cfg);
    exports::admin_routes(cfg);
    reconcile::admin_routes(cfg);
    owed::admin_routes(cfg);
}
