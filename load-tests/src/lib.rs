//! The load-test suite of the gate's entry/exit core, built on goose.
//!
//! - [`seed`]: a tenant, compounds, lots and their gates, permit holders, through the real
//!   admin API;
//! - [`attack`]: one goose run at a fixed arrival rate, open loop: every request has a
//!   scheduled slot, and its latency is timed from that slot in microseconds into an HDR
//!   histogram (goose's own figures are whole milliseconds and its throttle is closed-loop),
//!   cars entering and leaving through the real gate API;
//! - [`verify`]: after a run, Redis occupancy equals the open sessions in Postgres, every
//!   acknowledged decision is in Postgres, no lot holds more visitors than its capacity;
//! - [`faults`]: the fault matrix — two replicas on a Postgres and a Redis of the run's own,
//!   one fault per scenario, verified (`load-tests/faults.sh`, docs/faults.md).

pub mod faults;
pub mod plates;
pub mod report;
pub mod scenario;
pub mod seed;
pub mod verify;

pub use report::Report;
pub use scenario::{attack, AttackConfig, Mix};
pub use seed::{seed, SeedConfig, World};
pub use verify::verify;
