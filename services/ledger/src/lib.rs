//! The settlement ledger's pure core (rules 4 and 6 of the domain brief).
//!
//! - [`account`]: the accounts money can be in, each with its holder (an owner, a compound, a
//!   property firm, the platform);
//! - [`entry`]: a journal entry, postings that sum to zero (debits positive, credits negative);
//! - [`policy`]: a compound's revenue policy and the kind of space a stay used;
//! - [`split`]: one payment becomes one balanced entry, split by whose space earned it;
//!   refunds reverse it proportionally;
//! - [`allocate`]: splitting an amount by weights (floor area, shares) to the fen, exactly;
//! - [`beancount`]: a journal as plain-text double-entry for the accountant's tools;
//! - [`reconcile`]: a provider's settlement file against our payments;
//! - [`close`]: a period's common revenue into the maintenance fund and to the owners.
//!
//! Storage (append-only tables, the balance check in the database) lives in the services.

pub mod account;
pub mod allocate;
pub mod beancount;
pub mod close;
pub mod entry;
pub mod policy;
pub mod reconcile;
pub mod split;

pub use account::{Account, AccountKind};
pub use allocate::allocate;
pub use entry::{Entry, EntryError, Posting};
pub use policy::{RevenuePolicy, SpaceUse};
pub use split::{payment_entry, refund_entry, Parties, RefundError, Source};
