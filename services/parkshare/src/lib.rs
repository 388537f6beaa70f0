//! The parkshare service: the gate (barrier entry/exit decisions, real-time occupancy, the
//! camera adapters), the property firms' staff API, settlement and the ledger, shared spaces,
//! allocation (lottery, rentals), disclosure, and the operator API — one crate, one binary
//! (docs/architecture.md, "One service crate, not several").
//!
//! Map, by layer (a module imports only its own layer and those below it; no loops:
//! `.ci/modules-acyclic` checks it, docs/architecture.md "Layers" draws it):
//!
//! - wiring — [`startup`] (connects, builds the state, runs the server), [`openapi`] (every
//!   route, the `/v1/admin` and `/v1/owner` scopes, the document), [`demo`]; nothing imports
//!   them;
//! - features — [`admin`]: the staff API (compounds, lots, gates, spaces, owners, vehicles,
//!   permits, lists, CSV imports, occupancy, sessions, payments, anomalies);
//!   [`gate`]: `POST /v1/gate/events` and the camera adapters (`gate::vendors`), lanes as
//!   devices, and the one pipeline that decides every read (`gate::pipeline`: batches, reads
//!   alone, recorded passages — offline, fail-open, manual);
//!   [`disclosure`]: the public disclosure page, the owners' committee and supervisors;
//!   [`sharing`]: owners sharing their spaces, visitors' bookings, walk-ins, overstays;
//!   [`allocation`]: spaces serve owners first — the verifiable lottery (摇号), unsold
//!   developer spaces and the two-year rule, rentals (月租) and the owners-first waiting list;
//!   [`operator`]: onboarding tenants; [`settlement`]: payment intents, provider callbacks,
//!   cash, refunds and the ledger; [`revocation`]: listing, revoking and rotating every
//!   credential, audited; [`public`]: quotes and price boards, no login; [`health`];
//! - shared — [`auth`]: device, staff, owner and operator credentials; [`sync`]: occupancy
//!   rebuild and difference; [`billing`]: which tariff version prices a session, and the
//!   regulated guard; [`webhooks`]: the signed outbox to owners and visitors;
//!   [`ratelimit`]: the per-client abuse limits on every public route;
//! - [`state`]: `AppState`, and the data of the gate's lanes it holds;
//! - stores — [`contexts`]: gate contexts cached in process, forgotten on registry changes;
//!   [`store`]: Postgres statements;
//! - foundation — [`validate`]: field checks; [`spreadsheet`]: every CSV written, formulas
//!   neutralised; [`input`]: JSON bodies and text checked in one place; [`settings`],
//!   [`telemetry`], [`error`], [`metrics`]; [`workers`]: background workers, supervised;
//!   [`occupancy`]: the Redis adapter (Lua scripts); [`clock`]: the one source of "now";
//!   [`outbound`]: calls to addresses others chose, guarded against SSRF; [`signature`]: the
//!   HMAC body signature; [`failpoints`]: fault-injection hooks (the `failpoints` feature).
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
