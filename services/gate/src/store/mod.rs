//! Postgres storage: one function per statement, grouped by feature.
//! `registry`: tenants, compounds, lots, gates, owners, spaces, vehicles, permits, lists.
//! `sessions`: stays, gate events, payments and anomalies.
//! `tariffs`: price standards and filed tariff versions.
//! `disclosure`: share links, committee and supervisor credentials, usage figures.
//! `ledger`: accounts, journal transactions, postings, revenue policies.
//! `payments`: payment intents, payments, provider callbacks, refunds.
//! `periods`: accounting periods of common revenue and owners' statements.
//! `reconciliation`: imported provider settlement files.
//! `sharing`: shared spaces, bookings, owners' credentials, the webhook outbox.

pub mod disclosure;
pub mod ledger;
pub mod payments;
pub mod periods;
pub mod reconciliation;
pub mod registry;
pub mod sessions;
pub mod sharing;
pub mod tariffs;

/// Serialises money as a string with exactly two decimals: Postgres hands a zero `numeric`
/// back without its scale, and "0" is not how a receipt shows nothing.
pub fn yuan<S: serde::Serializer>(
    amount: &rust_decimal::Decimal,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    let mut amount = *amount;
    amount.rescale(2);
    serializer.serialize_str(&amount.to_string())
}
