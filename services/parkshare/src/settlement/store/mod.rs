//! Settlement's own Postgres statements, one function per statement: `reconciliation`
//! (imported provider settlement files) and `owed` (money received and owed back). What
//! settlement shares with other features — payments, the ledger, the periods disclosure
//! publishes, the registry — stays in the crate's `store`.

pub mod owed;
pub mod reconciliation;
