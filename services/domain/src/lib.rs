//! The pure domain of parkshare: no I/O, no clock, no database.
//!
//! Map of the crate:
//! - [`plate`]: licence plates (`Plate::parse`), plate colours, and the characters cameras confuse.
//! - [`money`]: `Money`, an exact amount in yuan; rounding to the fen happens only in `Money::round_fen`.
//! - [`vehicle`]: vehicle classes and exempt (emergency) classes.
//! - [`policy`]: per-compound gate policies (humane owner handling, no-entry-record, re-entry, grace).
//! - [`decision`]: what the barrier does, with a stable reason code and the LED text.
//! - [`usage`]: the use of the spaces as disclosed — average cars inside by local hour of the day.
//!
//! Tariffs and billing live in the pure `parkshare-tariff` crate. Services (`parkshare-gate`, …)
//! own the adapters (sqlx, redis, actix) and call into this crate.

pub mod decision;
pub mod money;
pub mod plate;
pub mod policy;
pub mod usage;
pub mod vehicle;
