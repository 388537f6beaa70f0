//! Postgres storage shared by several features: one function per statement, grouped by
//! aggregate. A feature's own statements live in its folder (`settlement::store`,
//! `allocation::lottery::store`, `allocation::rentals::store`).
//!
//! `registry`: tenants, compounds, lots, gates, owners, spaces, vehicles, permits, lists.
//! `sessions`: stays, gate events, payments and anomalies; `answers`: a gate event's stored answer.
//! `tariffs`: price standards and filed tariff versions.
//! `credentials`: listing, revoking and rotating every kind of credential; their audit.
//! `disclosure`: share links, committee and supervisor credentials, usage figures.
//! `ledger`: accounts, journal transactions, postings, revenue policies.
//! `payments`: payment intents, payments, provider callbacks, refunds.
//! `periods`: accounting periods of common revenue and owners' statements (settlement closes
//! them, disclosure publishes them).
//! `sharing`: shared spaces, bookings, owners' credentials, the webhook outbox.

pub mod answers;
pub mod credentials;
pub mod devices;
pub mod disclosure;
pub mod ledger;
pub mod payments;
pub mod periods;
pub mod registry;
pub mod sessions;
pub mod sharing;
pub mod tariffs;

/// A stored word decoded into its domain type by the type's `TryFrom<String>` (the domain's
/// `stored_words!`), for a column that may be null: `Option<Word<T>>`. A word no value has is a
/// decode error, never a default.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Word<T>(pub T);

impl<T> sqlx::Type<sqlx::Postgres> for Word<T> {
    fn type_info() -> sqlx::postgres::PgTypeInfo {
        <String as sqlx::Type<sqlx::Postgres>>::type_info()
    }

    fn compatible(ty: &sqlx::postgres::PgTypeInfo) -> bool {
        <String as sqlx::Type<sqlx::Postgres>>::compatible(ty)
    }
}

impl<'r, T> sqlx::Decode<'r, sqlx::Postgres> for Word<T>
where
    T: TryFrom<String, Error = parkshare_domain::UnknownWord>,
{
    fn decode(value: sqlx::postgres::PgValueRef<'r>) -> Result<Self, sqlx::error::BoxDynError> {
        let text = <String as sqlx::Decode<sqlx::Postgres>>::decode(value)?;
        Ok(Word(T::try_from(text)?))
    }
}

/// The migrations this build carries.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// The database's schema is this build's: its newest migration applied.
pub async fn schema_is_current(db: &sqlx::PgPool) -> bool {
    let expected = MIGRATOR.iter().map(|m| m.version).max().unwrap_or(0);
    let applied: Option<i64> =
        sqlx::query_scalar("select max(version) from _sqlx_migrations where success")
            .fetch_one(db)
            .await
            .unwrap_or(None);
    applied == Some(expected)
}

/// Money as text with exactly two decimals, the one way amounts read from Postgres are shown:
/// Postgres hands a zero `numeric` back without its scale ("0"), and a negative zero would
/// read "-0.00".
pub fn yuan_text(amount: rust_decimal::Decimal) -> String {
    let mut amount = if amount.is_zero() {
        rust_decimal::Decimal::ZERO
    } else {
        amount
    };
    amount.rescale(2);
    amount.to_string()
}

/// Serialises money with [`yuan_text`].
pub fn yuan<S: serde::Serializer>(
    amount: &rust_decimal::Decimal,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(&yuan_text(*amount))
}

/// Serialises optional money with [`yuan_text`].
pub fn yuan_option<S: serde::Serializer>(
    amount: &Option<rust_decimal::Decimal>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    match amount {
        Some(amount) => serializer.serialize_str(&yuan_text(*amount)),
        None => serializer.serialize_none(),
    }
}
