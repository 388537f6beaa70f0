//! Who gets a space, the pure core (DOMAIN.md rule 3: new spaces go to owners first, possibly
//! by lottery, 摇号). No I/O: the service stores lotteries and applications and calls these
//! functions; anyone can call them again on what was published and get the same answer.
//!
//! - [`lottery`]: the commitment to a secret seed, the deterministic draw, and its check;
//! - [`unsold`]: the two-year rule for developer spaces left unsold;
//! - [`rental`]: rentals (月租) — terms of whole months, prices, early ends' refunds — and the
//!   owners-first waiting list.

pub mod lottery;
pub mod rental;
pub mod unsold;
