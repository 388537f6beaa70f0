//! Settings, from environment variables (or flags) with local defaults, parsed by clap. See
//! docs/configuration.md.

use std::net::SocketAddr;
use std::num::NonZeroU32;

use anyhow::Context;
use secrecy::SecretString;

pub use crate::occupancy::RebuildMode;

/// Every setting, from a `PARKSHARE_*` environment variable or the flag of the same name
/// (`--redis-timeout-ms`), with a local default; checked at start, so that a typo stops the
/// service with the variable's name instead of running on a default. docs/configuration.md
/// lists them.
#[derive(Clone, clap::Args)]
pub struct Settings {
    /// The service's own database; created if missing.
    #[arg(
        long,
        env = "PARKSHARE_DATABASE_URL",
        hide_env_values = true,
        default_value = "postgres://postgres@127.0.0.1:5432/parkshare"
    )]
    pub database_url: String,
    /// The schema owner's connection, used only to create the database, apply migrations and
    /// grant the service's role (the user of `PARKSHARE_DATABASE_URL`) its rights. Unset: the
    /// service migrates as itself, and so owns the ledger's tables (a WARN at start says so;
    /// see docs/security.md).
    #[arg(long, env = "PARKSHARE_MIGRATE_DATABASE_URL", hide_env_values = true)]
    pub migrate_database_url: Option<String>,
    /// Postgres connections per process.
    #[arg(long, env = "PARKSHARE_DB_POOL_MAX", default_value_t = 16)]
    pub db_pool_max: u32,
    /// One Redis, or a Redis Cluster's seed nodes, comma-separated.
    #[arg(
        long,
        env = "PARKSHARE_REDIS_URL",
        hide_env_values = true,
        default_value = "redis://127.0.0.1:6379"
    )]
    pub redis_url: String,
    /// First part of every key, so deployments (and tests) can share one Redis.
    #[arg(long, env = "PARKSHARE_REDIS_PREFIX", default_value = "ps")]
    pub redis_prefix: String,
    /// `on` treats `PARKSHARE_REDIS_URL` as a Redis Cluster's seed nodes.
    #[arg(long, env = "PARKSHARE_REDIS_CLUSTER", value_enum, default_value_t = Switch::Off)]
    pub redis_cluster: Switch,
    /// The longest one Redis call may take, connecting included (10 to 10000 ms). Well below
    /// the lane's decision budget, so that a Redis that hangs leaves time for the fail-open or
    /// fail-closed answer.
    #[arg(long, env = "PARKSHARE_REDIS_TIMEOUT_MS", default_value_t = 300,
          value_parser = clap::value_parser!(u64).range(10..=10_000))]
    pub redis_timeout_ms: u64,
    /// Address and port of the HTTP server.
    #[arg(long, env = "PARKSHARE_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// Enables the platform operator API (creating tenants).
    #[arg(long, env = "PARKSHARE_OPERATOR_TOKEN", hide_env_values = true, value_parser = secret)]
    pub operator_token: Option<SecretString>,
    /// `force` rebuilds every lot's occupancy from Postgres at start; `if_missing` only lots
    /// whose keys Redis has lost (several replicas).
    #[arg(long, env = "PARKSHARE_REBUILD_ON_START", value_enum, default_value_t = RebuildMode::Force)]
    pub rebuild_on_start: RebuildMode,
    /// Log lines as JSON (default) or for a terminal.
    #[arg(long, env = "PARKSHARE_LOG_FORMAT", value_enum, default_value_t = LogFormat::Json)]
    pub log_format: LogFormat,
    /// The key payment notifications are signed with. Unset: a random key per process (fine
    /// for one local process, wrong for several replicas).
    #[arg(long, env = "PARKSHARE_PROVIDER_SECRET", hide_env_values = true, value_parser = secret)]
    pub provider_secret: Option<SecretString>,
    /// The built-in simulated payment provider, whose public "pay" button marks any intent
    /// paid without moving money: a free exit for anyone who finds it. Unset: on only for the
    /// demo.
    #[arg(long, env = "PARKSHARE_SIMULATED_PROVIDER", value_enum)]
    pub simulated_provider: Option<Switch>,
    /// Loads the demo compound at start (the `demo` command; public and fake: never in
    /// production).
    #[arg(long, env = "PARKSHARE_DEMO", hide = true, value_parser = clap::builder::BoolishValueParser::new())]
    pub demo: bool,
    /// Where providers reach this service; default its own listening address.
    #[arg(long, env = "PARKSHARE_CALLBACK_BASE_URL")]
    pub callback_base_url: Option<String>,
    /// The address the public reaches this service at (e.g. `https://park.example.com`), used
    /// in the links it hands out. Never taken from a request's `Host` or `X-Forwarded-Host`,
    /// which anyone can set. Default: its own listening address.
    #[arg(long, env = "PARKSHARE_PUBLIC_BASE_URL", value_parser = public_base_url)]
    pub public_base_url: Option<String>,
    /// `deny` refuses webhook and device URLs naming loopback, private or link-local
    /// addresses, so that nobody can make the service post to the inside of its own network;
    /// `allow` for local runs and tests.
    #[arg(long, env = "PARKSHARE_WEBHOOK_PRIVATE_HOSTS", value_enum, default_value_t = PrivateHosts::Deny)]
    pub webhook_private_hosts: PrivateHosts,
    /// How long a lane waits for a decision (ms) before its fail-open or fail-closed policy
    /// answers instead. Below the cameras' own push timeouts (typically 3 to 5 s).
    #[arg(
        long,
        env = "PARKSHARE_GATE_DECISION_BUDGET_MS",
        default_value_t = 2000
    )]
    pub gate_decision_budget_ms: u64,
    /// How often passages a lane let through on its fail-open policy are recorded (ms), and
    /// manual opens that expired undelivered are undone.
    #[arg(long, env = "PARKSHARE_FAIL_OPEN_DRAIN_MS", default_value_t = 1000)]
    pub fail_open_drain_ms: u64,
    /// How long a manual open waits to reach its barrier (1 to 600 s). Past it the open is
    /// dropped, never fired later when the camera comes back.
    #[arg(long, env = "PARKSHARE_MANUAL_OPEN_TTL_S", default_value_t = 30,
          value_parser = clap::value_parser!(u64).range(1..=600))]
    pub manual_open_ttl_s: u64,
    /// A camera read pushed as live but taken longer ago than this (60 s to 30 days) is
    /// recorded at its time without opening, and listed as `device_clock`.
    #[arg(long, env = "PARKSHARE_LIVE_READ_AGE_MAX_S", default_value_t = 3600,
          value_parser = clap::value_parser!(u64).range(60..=2_592_000))]
    pub live_read_age_max_s: u64,
    /// Where a fail-open passage is written, and fsynced, before the lane opens, until
    /// Postgres has it (`gate::journal`). Must outlive the process: a volume.
    #[arg(
        long,
        env = "PARKSHARE_FAIL_OPEN_JOURNAL_DIR",
        default_value = "fail-open-journal"
    )]
    pub fail_open_journal_dir: std::path::PathBuf,
    /// How many batches of live gate reads are decided at once, one transaction and one
    /// commit each; 0 decides every read on its own.
    #[arg(long, env = "PARKSHARE_GATE_BATCH_WORKERS", default_value_t = 2)]
    pub gate_batch_workers: usize,
    /// The most reads one batch decides.
    #[arg(long, env = "PARKSHARE_GATE_BATCH_MAX", default_value_t = 64,
          value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
    pub gate_batch_max: usize,
    /// How often every lot's Redis counts are compared with Postgres and a lot that differs
    /// is rebuilt (ms, at least 100; `sync::reconcile`).
    #[arg(long, env = "PARKSHARE_OCCUPANCY_RECONCILE_MS", default_value_t = 10_000,
          value_parser = clap::value_parser!(u64).range(100..))]
    pub occupancy_reconcile_ms: u64,
    /// Comma-separated CIDRs (or addresses) of our own reverse proxies; only from them is
    /// `X-Forwarded-For` believed. Default none: the peer address is the client.
    #[arg(long, env = "PARKSHARE_TRUSTED_PROXIES", value_delimiter = ',', value_parser = network)]
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// Requests per minute (and at once) one client address may make to the public routes.
    #[arg(long, env = "PARKSHARE_PUBLIC_RATE_PER_MIN", default_value = "120")]
    pub public_rate_per_min: NonZeroU32,
    /// Booking attempts per minute (and at once) per client address, on top of the public
    /// limit.
    #[arg(long, env = "PARKSHARE_BOOKING_RATE_PER_MIN", default_value = "6")]
    pub booking_rate_per_min: NonZeroU32,
    /// How long an unpaid booking holds its space (1 to 60 min) — long enough to pay on a
    /// phone, short enough that a squatter must pay to hold.
    #[arg(long, env = "PARKSHARE_BOOKING_HOLD_MIN", default_value_t = 10,
          value_parser = clap::value_parser!(i64).range(1..=60))]
    pub booking_hold_min: i64,
    /// The shortest application window of a lottery (hours, at least 1), so that owners see
    /// the commitment and the applicants in time.
    #[arg(long = "lottery-window-min-h", env = "PARKSHARE_LOTTERY_WINDOW_MIN_H",
          default_value = "24", value_parser = hours)]
    pub lottery_window_min: chrono::Duration,
    /// Live bookings (held, paid or in use) one plate may have.
    #[arg(long, env = "PARKSHARE_BOOKINGS_PER_PLATE_MAX", default_value_t = 2,
          value_parser = clap::value_parser!(i64).range(1..))]
    pub bookings_per_plate_max: i64,
    /// Live bookings made from one client address. Raise it where many visitors share one
    /// address (a carrier's NAT).
    #[arg(long, env = "PARKSHARE_BOOKINGS_PER_CLIENT_MAX", default_value_t = 5,
          value_parser = clap::value_parser!(i64).range(1..))]
    pub bookings_per_client_max: i64,
    /// Days after a rental's term ends during which its car is still admitted as a renter, to
    /// renew without being turned away (0 to 31).
    #[arg(long, env = "PARKSHARE_RENTAL_GRACE_DAYS", default_value_t = 3,
          value_parser = clap::value_parser!(i32).range(0..=31))]
    pub rental_grace_days: i32,
    /// How many days before a term ends its renter is reminded to renew (1 to 60).
    #[arg(long, env = "PARKSHARE_RENTAL_REMINDER_DAYS", default_value_t = 7,
          value_parser = clap::value_parser!(i32).range(1..=60))]
    pub rental_reminder_days: i32,
}

/// A setting that is on or off.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Switch {
    On,
    Off,
}

/// How log lines are written.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// One JSON object per line, for a log collector.
    Json,
    /// For a terminal.
    Pretty,
}

/// Whether webhook and device URLs may name private addresses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum PrivateHosts {
    Deny,
    Allow,
}

impl PrivateHosts {
    pub fn allowed(self) -> bool {
        self == PrivateHosts::Allow
    }
}

impl std::fmt::Debug for Settings {
    // Hand-written so that a debug print never shows a secret.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Settings")
            .field("database_url", &redact_url(&self.database_url))
            .field(
                "migrate_database_url",
                &self.migrate_database_url.as_deref().map(redact_url),
            )
            .field("db_pool_max", &self.db_pool_max)
            .field("redis_url", &redact_url(&self.redis_url))
            .field("redis_prefix", &self.redis_prefix)
            .field("redis_cluster", &self.redis_cluster)
            .field("redis_timeout_ms", &self.redis_timeout_ms)
            .field("listen", &self.listen)
            .field("operator_token", &self.operator_token)
            .field("rebuild_on_start", &self.rebuild_on_start)
            .field("provider_secret", &self.provider_secret)
            .field("simulated_provider", &self.simulated_provider)
            .field("demo", &self.demo)
            .field("log_format", &self.log_format)
            .field(
                "callback_base_url",
                &self.callback_base_url.as_deref().map(redact_url),
            )
            .field("public_base_url", &self.public_base_url)
            .field("webhook_private_hosts", &self.webhook_private_hosts)
            .field("gate_decision_budget_ms", &self.gate_decision_budget_ms)
            .field("fail_open_drain_ms", &self.fail_open_drain_ms)
            .field("manual_open_ttl_s", &self.manual_open_ttl_s)
            .field("live_read_age_max_s", &self.live_read_age_max_s)
            .field("fail_open_journal_dir", &self.fail_open_journal_dir)
            .field("gate_batch_workers", &self.gate_batch_workers)
            .field("gate_batch_max", &self.gate_batch_max)
            .field("occupancy_reconcile_ms", &self.occupancy_reconcile_ms)
            .field("trusted_proxies", &self.trusted_proxies)
            .field("public_rate_per_min", &self.public_rate_per_min)
            .field("booking_rate_per_min", &self.booking_rate_per_min)
            .field("booking_hold_min", &self.booking_hold_min)
            .field("lottery_window_min", &self.lottery_window_min)
            .field("bookings_per_plate_max", &self.bookings_per_plate_max)
            .field("bookings_per_client_max", &self.bookings_per_client_max)
            .field("rental_grace_days", &self.rental_grace_days)
            .field("rental_reminder_days", &self.rental_reminder_days)
            .finish()
    }
}

/// `postgres://user:secret@host/db` → `postgres://user:***@host/db`.
pub fn redact_url(url: &str) -> String {
    // A Redis Cluster is a comma-separated list of node URLs: each may carry a password.
    if url.contains(',') {
        return url.split(',').map(redact_url).collect::<Vec<_>>().join(",");
    }
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let credentials = &url[scheme + 3..at];
            match credentials.find(':') {
                Some(colon) => format!(
                    "{}{}:***{}",
                    &url[..scheme + 3],
                    &credentials[..colon],
                    &url[at..]
                ),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

/// An http(s) URL with a host and nothing after it but an optional path, without a trailing
/// slash.
fn public_base_url(text: &str) -> anyhow::Result<String> {
    let text = text.trim();
    let url = url::Url::parse(text).context("PARKSHARE_PUBLIC_BASE_URL must be a URL")?;
    if !matches!(url.scheme(), "http" | "https")
        || url.host_str().is_none()
        || url.query().is_some()
        || url.fragment().is_some()
        || !url.username().is_empty()
    {
        // The value is not echoed: it may carry a password.
        anyhow::bail!("PARKSHARE_PUBLIC_BASE_URL must be http(s)://host[:port][/path]");
    }
    Ok(url.as_str().trim_end_matches('/').to_owned())
}

fn secret(text: &str) -> Result<SecretString, std::convert::Infallible> {
    Ok(SecretString::from(text.to_owned()))
}

fn hours(text: &str) -> anyhow::Result<chrono::Duration> {
    let hours: NonZeroU32 = text
        .trim()
        .parse()
        .context("a whole number of hours, at least 1")?;
    Ok(chrono::Duration::hours(i64::from(hours.get())))
}

/// A CIDR, or an address (the network of that one address).
fn network(text: &str) -> anyhow::Result<ipnet::IpNet> {
    let text = text.trim();
    text.parse::<ipnet::IpNet>()
        .or_else(|_| text.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
        .with_context(|| format!("{text} is not a CIDR or an address"))
}

/// The settings alone, from the environment (the service's commands take them as flags too).
#[derive(clap::Parser)]
struct FromEnv {
    #[command(flatten)]
    settings: Settings,
}

impl Settings {
    /// The settings from the environment alone; an invalid value is an error naming its
    /// variable.
    pub fn from_env() -> anyhow::Result<Settings> {
        use clap::Parser;
        FromEnv::try_parse_from(["parkshare"])
            .map(|parsed| parsed.settings)
            .map_err(|e| anyhow::anyhow!("{}", e.render()))
    }

    /// Whether the simulated payment provider is on: as set, else only for the demo.
    pub fn simulated_provider_on(&self) -> bool {
        self.simulated_provider
            .map_or(self.demo, |s| s == Switch::On)
    }

    pub fn log_json(&self) -> bool {
        self.log_format == LogFormat::Json
    }
}

/// The rental settings (`PARKSHARE_RENTAL_GRACE_DAYS`, `PARKSHARE_RENTAL_REMINDER_DAYS`).
#[derive(Debug, Clone, Copy)]
pub struct RentalSettings {
    /// Days after a term ends during which the car is still admitted as a renter.
    pub grace_days: i32,
    /// How many days before a term ends its renter is reminded to renew.
    pub reminder_days: i32,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_passwords_in_urls() {
        assert_eq!(
            redact_url("postgres://u:pw@h:5432/db"),
            "postgres://u:***@h:5432/db"
        );
        assert_eq!(redact_url("postgres://u@h/db"), "postgres://u@h/db");
        assert_eq!(
            redact_url("redis://127.0.0.1:6379"),
            "redis://127.0.0.1:6379"
        );
        assert_eq!(
            redact_url("redis://:pw1@10.0.0.1:6379,redis://u:pw2@10.0.0.2:6379"),
            "redis://:***@10.0.0.1:6379,redis://u:***@10.0.0.2:6379"
        );
    }

    #[test]
    fn trusted_proxies_are_cidrs_or_addresses() {
        let nets: Option<Vec<ipnet::IpNet>> = " 10.0.0.0/8, 192.0.2.1 ,2001:db8::/32"
            .split(',')
            .map(network)
            .collect::<anyhow::Result<_>>()
            .ok();
        let shown: Option<Vec<String>> = nets.map(|n| n.iter().map(ToString::to_string).collect());
        assert_eq!(
            shown,
            Some(vec![
                "10.0.0.0/8".to_owned(),
                "192.0.2.1/32".to_owned(),
                "2001:db8::/32".to_owned()
            ])
        );
        assert!(network("10.0.0.0/33").is_err());
    }
}
