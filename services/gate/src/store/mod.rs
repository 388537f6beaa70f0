//! Postgres storage: one function per statement, grouped by feature.
//! `registry`: tenants, compounds, lots, gates, owners, spaces, vehicles, permits, lists.
//! `sessions`: stays, gate events, payments and anomalies.
//! `tariffs`: price standards and filed tariff versions.
//! `ledger`: accounts, journal transactions, postings, revenue policies.
//! `payments`: payment intents, payments, provider callbacks, refunds.
//! `periods`: accounting periods of common revenue and owners' statements.
//! `reconciliation`: imported provider settlement files.
//! `sharing`: shared spaces, bookings, owners' credentials, the webhook outbox.

pub mod ledger;
pub mod payments;
pub mod periods;
pub mod reconciliation;
pub mod registry;
pub mod sessions;
pub mod sharing;
pub mod tariffs;
