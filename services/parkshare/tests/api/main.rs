//! Integration tests of the gate service against the real Postgres and Redis.
//! Each test gets its own database and its own Redis key prefix, so they run in parallel.

mod abuse;
mod admin;
mod batches;
mod cameras;
mod camsim;
mod cluster;
mod contract;
mod credentials;
mod disclosure;
mod faults;
mod gate_rules;
mod hardening;
mod helpers;
mod imports;
mod lottery;
mod modules;
mod occupancy;
mod operations;
mod periods;
mod rentals;
mod restart;
mod revocation;
mod security;
mod settlement;
mod sharing;
mod tariffs;
mod unsold;
mod vendors;
mod walk_ins;
mod workload;
