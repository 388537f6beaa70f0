//! The tariff engine of parkshare. Pure: no I/O, no clock.
//!
//! Map of the crate:
//! - [`model`]: a tariff as data — free period, rate steps (blocks, tiers of units), partial-unit
//!   rounding, day and night periods, caps per night, per 24 hours, per calendar day, over
//!   several days and per stay, per vehicle class, new-energy free minutes, owner discount, the
//!   no-entry-record fee and monthly permit prices;
//! - [`engine`]: billing a stay into an itemised [`engine::Bill`] whose lines add up to the total;
//! - [`regulated`]: the price authority's standard (maximum price, or base price with a float
//!   range) and the filing check that no stay up to a horizon is charged above it;
//! - [`words`]: the tariff in words a driver understands, for the public price board.
//!
//! Money is `parkshare_domain::money::Money`. The only rounding points are named:
//! [`engine::OWNER_DISCOUNT_ROUNDING`] and [`regulated::FLOAT_ROUNDING`].

pub mod engine;
pub mod model;
pub mod regulated;
pub mod words;

pub use engine::{Bill, BillLine, LineCode, Stay};
pub use model::Tariff;
