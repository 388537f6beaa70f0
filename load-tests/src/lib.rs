//! The load-test suite of the gate's entry/exit core, built on goose.
//!
//! - [`seed`]: a tenant, compounds, lots and their gates, permit holders, through the real
//!   admin API;
//! - [`attack`]: one goose run at a fixed arrival rate (goose's request throttle, with enough
//!   users that none waits on a slow answer, and its coordinated-omission mitigation on),
//!   cars entering and leaving the real gate API; every gate request is also timed here in
//!   microseconds into an HDR histogram (goose's own figures are whole milliseconds);
//! - [`verify`]: after a run, Redis occupancy equals the open sessions in Postgres, every
//!   acknowledged decision is in Postgres, no lot holds more visitors than its capacity.

pub mod plates;
pub mod report;
pub mod scenario;
pub mod seed;
pub mod verify;

pub use report::Report;
pub use scenario::{attack, AttackConfig, Mix};
pub use seed::{seed, SeedConfig, World};
pub use verify::verify;
