//! parkshare gate service: barrier entry/exit decisions, real-time occupancy, and the
//! registry admin API of the property firms.
//!
//! Map:
//! - [`gate`]: `POST /v1/gate/events`, the hot path (entry and exit flows), recorded passages
//!   (offline, fail-open, manual), lanes as devices, and the camera adapters (`gate::vendors`);
//! - [`admin`]: the staff API (compounds, lots, gates, spaces, owners, vehicles, permits,
//!   lists, CSV imports, occupancy, sessions, payments, anomalies);
//! - [`operator`]: onboarding tenants; [`public`]: quotes and price boards, no login;
//!   [`ratelimit`]: the per-client abuse limits on every public route;
//! - [`billing`]: which tariff version prices a session, and the regulated guard;
//! - [`settlement`]: payment intents, provider callbacks, cash, refunds and the ledger;
//! - [`disclosure`]: the public disclosure page, the owners' committee and supervisors;
//! - [`allocation`]: spaces serve owners first — the verifiable lottery (摇号), unsold
//!   developer spaces and the two-year rule, rentals (月租) and the owners-first waiting list;
//! - [`sharing`]: owners sharing their spaces, visitors' bookings, walk-ins, overstays, webhooks;
//! - [`occupancy`]: the Redis adapter (Lua scripts); [`sync`]: rebuild and difference;
//! - [`store`]: Postgres statements; [`auth`]: device, staff, owner and operator credentials;
//!   [`contexts`]: gate contexts cached in process, forgotten on registry changes;
//!   [`revocation`]: listing, revoking and rotating every credential, audited;
//! - [`spreadsheet`]: every CSV written, formulas neutralised;
//! - [`input`]: JSON bodies and text checked in one place (control characters, lengths);
//! - [`outbound`]: calls to addresses others chose (webhooks, devices), guarded against SSRF;
//! - [`clock`]: the one source of "now" (a test moves it instead of sleeping);
//! - [`workers`]: background workers, supervised (restarted with back-off);
//! - [`failpoints`]: fault-injection hooks, only with the `failpoints` feature (the fault matrix);
//! - [`startup`], [`settings`], [`telemetry`], [`metrics`], [`openapi`], [`demo`]: wiring.
//!
//! Decisions, tariffs and money live in the pure `parkshare-domain` crate.

pub mod admin;
pub mod allocation;
pub mod auth;
pub mod billing;
pub mod clock;
pub mod contexts;
pub mod demo;
pub mod disclosure;
pub mod error;
pub mod failpoints;
pub mod gate;
pub mod health;
pub mod input;
pub mod metrics;
pub mod occupancy;
pub mod openapi;
pub mod operator;
pub mod outbound;
pub mod public;
pub mod ratelimit;
pub mod revocation;
pub mod settings;
pub mod settlement;
pub mod sharing;
pub mod signature;
pub mod spreadsheet;
pub mod startup;
pub mod state;
pub mod store;
pub mod sync;
pub mod telemetry;
pub mod validate;
pub mod webhooks;
pub mod workers;
