//! The process's shared state, [`AppState`]: low in the crate so that every feature, and the
//! shared modules under them, can take it without importing the wiring (`startup` builds it and
//! nothing imports `startup`). It imports only the foundation modules (`clock`, `occupancy`,
//! `outbound`, `settings`), the store's row types and `contexts`'s cache — never a feature.
//!
//! `lanes`: the data of the gate's lanes that lives as long as the process (budgets,
//! heartbeats, the fail-open journal, the queue of live reads to batch); what the gate does with
//! it is the gate's (`gate::lanes`, `gate::decide`, `gate::answer`). `journal`: fail-open
//! passages on local disk until Postgres has them.

pub mod journal;
pub mod lanes;

/// What every request and worker of the process shares: connections, the clock, settings
/// read at start, and the in-process state of the gate's lanes and the credential cache.
pub struct AppState {
    pub db: sqlx::PgPool,
    /// What time it is for every rule (`Clock::system()`; tests move their own).
    pub clock: crate::clock::Clock,
    pub occupancy: crate::occupancy::Occupancy,
    pub operator_token_digest: Option<Vec<u8>>,
    pub payments: PaymentsConfig,
    /// Outgoing HTTP to this service's own settings' addresses (the simulated provider's
    /// callbacks).
    pub http: reqwest::Client,
    /// Where the public reaches this service (`PARKSHARE_PUBLIC_BASE_URL`, else the listening
    /// address): the start of every link it hands out.
    pub public_base_url: String,
    /// Outgoing HTTP to addresses others chose (webhooks, devices), guarded against SSRF.
    pub outbound: crate::outbound::Clients,
    /// Webhook URLs may name loopback and private addresses (local runs and tests only).
    pub webhook_private_hosts: bool,
    /// Lanes as devices: decision budget, last heard from, fail-open passages.
    pub lanes: lanes::Lanes,
    /// Gate contexts and staff identities by credential, kept in process.
    pub credentials: std::sync::Arc<crate::contexts::Credentials>,
    /// The workers deciding live gate reads in batches.
    pub batches: lanes::Batches,
    /// How long unpaid bookings hold, and how many live bookings a plate and a client may have.
    pub booking_caps: parkshare_sharing::BookingCaps,
    /// The shortest application window of a lottery.
    pub lottery_window_min: chrono::Duration,
    /// Rentals' grace period and reminder.
    pub rentals: crate::settings::RentalSettings,
}

/// How payments are taken (`PARKSHARE_PROVIDER_SECRET`, `PARKSHARE_SIMULATED_PROVIDER`).
pub struct PaymentsConfig {
    /// The key provider notifications are signed with.
    pub provider_secret: Vec<u8>,
    /// The built-in simulated provider is enabled.
    pub simulated: bool,
    /// Where the simulated provider calls back, e.g. `http://127.0.0.1:8080`.
    pub callback_base_url: String,
    /// What confirms a paid intent's booking or rental term.
    pub paid_intents: PaidIntents,
}

/// Confirms what a paid intent pays for, in the transaction that records the payment: true if
/// it still could be (false: its hold lapsed meanwhile, and the payment is late).
pub type ConfirmPaid =
    for<'a> fn(
        &'a mut sqlx::PgConnection,
        &'a crate::store::payments::Intent,
        uuid::Uuid,
        parkshare_domain::money::Money,
        chrono::DateTime<chrono::Utc>,
        chrono::DateTime<chrono::Utc>,
    ) -> futures_util::future::BoxFuture<'a, Result<bool, crate::error::ApiError>>;

/// The features that own what an intent pays for, called by settlement when a provider says an
/// intent is paid. Settlement sits below them (they post their payments through it), so it
/// cannot import them: `startup` wires them here instead.
pub struct PaidIntents {
    /// A visitor's booking (`sharing::visitor::confirm_paid`).
    pub booking: ConfirmPaid,
    /// A rental's term (`allocation::rentals::confirm_paid`).
    pub rental: ConfirmPaid,
}
