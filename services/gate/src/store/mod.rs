//! Postgres storage: one function per statement, grouped by feature.
//! `registry`: tenants, compounds, lots, gates, owners, spaces, vehicles, permits, lists.
//! `sessions`: stays, gate events, payments and anomalies.

pub mod registry;
pub mod sessions;
