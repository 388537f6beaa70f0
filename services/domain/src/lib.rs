//! The pure domain of parkshare: no I/O, no clock, no database.
//!
//! Map of the crate:
//! - [`plate`]: licence plates (`Plate::parse`), plate colours, and the characters cameras confuse.
//! - [`money`]: `Money`, an exact amount in yuan; rounding to the fen happens only in `Money::round_fen`.
//! - [`vehicle`]: vehicle classes and exempt (emergency) classes.
//! - [`policy`]: per-compound gate policies (humane owner handling, no-entry-record, re-entry, grace).
//! - [`decision`]: what the barrier does, with a stable reason code and the LED text.
//! - [`plan`]: the whole plan of one gate read: [`plan::next`] says what to learn or decide next.
//! - [`usage`]: the use of the spaces as disclosed — average cars inside by local hour of the day.
//!
//! Tariffs and billing live in the pure `parkshare-tariff` crate. Services (`parkshare`, …)
//! own the adapters (sqlx, redis, actix) and call into this crate.

/// A stored word (a column's text, a setting) that names none of a type's values.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("'{text}' is not a {what}")]
pub struct UnknownWord {
    pub what: &'static str,
    pub text: String,
}

/// `TryFrom<String>` by the type's `parse`, so that a row decodes straight into the type
/// (sqlx's `#[sqlx(try_from = "String")]`) and a word no value has is an error, not a default.
macro_rules! stored_words {
    ($($type:ty => $what:literal),* $(,)?) => {$(
        impl TryFrom<String> for $type {
            type Error = $crate::UnknownWord;

            fn try_from(text: String) -> Result<Self, $crate::UnknownWord> {
                <$type>::parse(&text).ok_or($crate::UnknownWord { what: $what, text })
            }
        }
    )*};
}

pub mod decision;
pub mod money;
pub mod plan;
pub mod plate;
pub mod policy;
pub mod usage;
pub mod vehicle;
