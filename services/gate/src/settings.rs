//! Settings, all from environment variables with local defaults. See docs/configuration.md.

use std::net::SocketAddr;
use std::num::NonZeroU32;

use anyhow::Context;

pub use crate::occupancy::RebuildMode;

#[derive(Clone)]
pub struct Settings {
    /// `PARKSHARE_DATABASE_URL`: the service's own database; created if missing.
    pub database_url: String,
    /// `PARKSHARE_MIGRATE_DATABASE_URL`: the schema owner's connection, used only to create the
    /// database, apply migrations and grant the service's role (the user of
    /// `PARKSHARE_DATABASE_URL`) its rights. Unset: the service migrates as itself, and so owns
    /// the ledger's tables (a WARN at start says so; see docs/security.md).
    pub migrate_database_url: Option<String>,
    /// `PARKSHARE_DB_POOL_MAX`: Postgres connections per process.
    pub db_pool_max: u32,
    /// `PARKSHARE_REDIS_URL`.
    pub redis_url: String,
    /// `PARKSHARE_REDIS_PREFIX`: first part of every key, so deployments (and tests) can share
    /// one Redis.
    pub redis_prefix: String,
    /// `PARKSHARE_REDIS_CLUSTER`: `on` treats `PARKSHARE_REDIS_URL` as a comma-separated list
    /// of a Redis Cluster's seed nodes; `off` (default) as one Redis.
    pub redis_cluster: bool,
    /// `PARKSHARE_REDIS_TIMEOUT_MS` (default 300, 10 to 10000): the longest one Redis call may
    /// take, connecting included. Well below the lane's decision budget, so that a Redis that
    /// hangs leaves time for the fail-open or fail-closed answer.
    pub redis_timeout_ms: u64,
    /// `PARKSHARE_LISTEN`: address and port of the HTTP server.
    pub listen: SocketAddr,
    /// `PARKSHARE_OPERATOR_TOKEN`: enables the platform operator API (creating tenants).
    pub operator_token: Option<String>,
    /// `PARKSHARE_REBUILD_ON_START`: `force` rebuilds every lot's occupancy from Postgres at
    /// start; `if_missing` only lots whose keys Redis has lost.
    pub rebuild_on_start: RebuildMode,
    /// `PARKSHARE_LOG_FORMAT`: `json` (default) or `pretty`.
    pub log_json: bool,
    /// `PARKSHARE_PROVIDER_SECRET`: the key payment notifications are signed with. Unset: a
    /// random key per process (fine for one local process, wrong for several replicas).
    pub provider_secret: Option<String>,
    /// `PARKSHARE_SIMULATED_PROVIDER`: `on` enables the built-in simulated payment provider,
    /// whose public "pay" button marks any intent paid without moving money: a free exit for
    /// anyone who finds it. Off unless set `on`, or the demo is loaded and it is not set `off`.
    pub simulated_provider: bool,
    /// `PARKSHARE_CALLBACK_BASE_URL`: where providers reach this service; default its own
    /// listening address.
    pub callback_base_url: Option<String>,
    /// `PARKSHARE_PUBLIC_BASE_URL`: the address the public reaches this service at (e.g.
    /// `https://park.example.com`), used in the links it hands out (a disclosure share link).
    /// Never taken from a request's `Host` or `X-Forwarded-Host`, which anyone can set.
    /// Default: its own listening address.
    pub public_base_url: Option<String>,
    /// `PARKSHARE_WEBHOOK_PRIVATE_HOSTS`: `deny` (default) refuses webhook URLs naming
    /// loopback, private or link-local addresses, so that nobody can make the service post to
    /// the inside of its own network; `allow` for local runs and tests.
    pub webhook_private_hosts: bool,
    /// `PARKSHARE_GATE_DECISION_BUDGET_MS` (default 2000): how long a lane waits for a
    /// decision before its fail-open or fail-closed policy answers instead. Below the cameras'
    /// own push timeouts (typically 3 to 5 s).
    pub gate_decision_budget_ms: u64,
    /// `PARKSHARE_FAIL_OPEN_DRAIN_MS` (default 1000): how often passages a lane let through
    /// on its fail-open policy are recorded.
    pub fail_open_drain_ms: u64,
    /// `PARKSHARE_MANUAL_OPEN_TTL_S` (default 30, 1 to 600): how long a manual open waits to
    /// reach its barrier (a Vzenith camera's next heartbeat, a device call). Past it the open
    /// is dropped, never fired later when the camera comes back; presses within it merge.
    pub manual_open_ttl_s: u64,
    /// `PARKSHARE_FAIL_OPEN_JOURNAL_DIR` (default `fail-open-journal`, relative to the working
    /// directory): where a fail-open passage is written, and fsynced, before the lane opens,
    /// until Postgres has it (`gate::journal`). Must outlive the process: a volume.
    pub fail_open_journal_dir: std::path::PathBuf,
    /// `PARKSHARE_GATE_BATCH_WORKERS` (default 2): how many batches of live gate reads are
    /// decided at once, one transaction and one commit each; 0 decides every read on its own.
    pub gate_batch_workers: usize,
    /// `PARKSHARE_GATE_BATCH_MAX` (default 64): the most reads one batch decides.
    pub gate_batch_max: usize,
    /// `PARKSHARE_OCCUPANCY_RECONCILE_MS` (default 10000): how often every lot's Redis counts
    /// are compared with Postgres and a lot that differs is rebuilt (`sync::reconcile`).
    pub occupancy_reconcile_ms: u64,
    /// `PARKSHARE_TRUSTED_PROXIES`: comma-separated CIDRs (or addresses) of our own reverse
    /// proxies; only from them is `X-Forwarded-For` believed. Default none: the peer address
    /// is the client.
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// `PARKSHARE_PUBLIC_RATE_PER_MIN` (default 120): requests per minute (and at once) one
    /// client address may make to the public routes. A visitor's page makes a handful.
    pub public_rate_per_min: NonZeroU32,
    /// `PARKSHARE_BOOKING_RATE_PER_MIN` (default 6): booking attempts per minute (and at
    /// once) per client address, on top of the public limit.
    pub booking_rate_per_min: NonZeroU32,
    /// `PARKSHARE_BOOKING_HOLD_MIN` (default 10, 1 to 60): how long an unpaid booking holds its
    /// space — long enough to pay on a phone, short enough that a squatter must pay to hold.
    pub booking_hold_min: i64,
    /// `PARKSHARE_LOTTERY_WINDOW_MIN_H` (default 24, at least 1): the shortest application
    /// window of a lottery, so that owners see the commitment and the applicants in time.
    pub lottery_window_min: chrono::Duration,
    /// `PARKSHARE_BOOKINGS_PER_PLATE_MAX` (default 2): live bookings (held, paid or in use)
    /// one plate may have.
    pub bookings_per_plate_max: i64,
    /// `PARKSHARE_RENTAL_GRACE_DAYS` (default 3, 0 to 31): days after a rental's term ends
    /// during which its car is still admitted as a renter, to renew without being turned away.
    pub rental_grace_days: i32,
    /// `PARKSHARE_RENTAL_REMINDER_DAYS` (default 7, 1 to 60): how many days before a term
    /// ends its renter is reminded to renew.
    pub rental_reminder_days: i32,
    /// `PARKSHARE_BOOKINGS_PER_CLIENT_MAX` (default 5): live bookings made from one client
    /// address. Raise it where many visitors share one address (a carrier's NAT).
    pub bookings_per_client_max: i64,
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
            .field(
                "operator_token",
                &self.operator_token.as_ref().map(|_| "<set>"),
            )
            .field("rebuild_on_start", &self.rebuild_on_start)
            .field(
                "provider_secret",
                &self.provider_secret.as_ref().map(|_| "<set>"),
            )
            .field("simulated_provider", &self.simulated_provider)
            .field(
                "callback_base_url",
                &self.callback_base_url.as_deref().map(redact_url),
            )
            .field("public_base_url", &self.public_base_url)
            .field("webhook_private_hosts", &self.webhook_private_hosts)
            .field("gate_decision_budget_ms", &self.gate_decision_budget_ms)
            .field("fail_open_drain_ms", &self.fail_open_drain_ms)
            .field("manual_open_ttl_s", &self.manual_open_ttl_s)
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

fn var(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_owned())
}

/// An http(s) URL with a host and nothing after it but an optional path, without a trailing
/// slash.
fn public_base_url(text: &str) -> anyhow::Result<String> {
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

/// `--demo` on the command line or `PARKSHARE_DEMO=1`: load the demo compound.
pub fn demo_requested() -> bool {
    std::env::args().any(|a| a == "--demo")
        || std::env::var("PARKSHARE_DEMO").is_ok_and(|v| v == "1")
}

fn positive(name: &str, default: &str) -> anyhow::Result<NonZeroU32> {
    var(name, default)
        .parse()
        .with_context(|| format!("{name} must be a whole number, at least 1"))
}

/// Comma-separated CIDRs; a bare address is the network of that one address.
pub fn parse_networks(list: &str) -> anyhow::Result<Vec<ipnet::IpNet>> {
    list.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.parse::<ipnet::IpNet>()
                .or_else(|_| s.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
                .with_context(|| format!("{s} is not a CIDR or an address"))
        })
        .collect()
}

impl Settings {
    pub fn from_env() -> anyhow::Result<Settings> {
        let rebuild_on_start = match var("PARKSHARE_REBUILD_ON_START", "force").as_str() {
            "force" => RebuildMode::Force,
            "if_missing" => RebuildMode::IfMissing,
            other => {
                anyhow::bail!("PARKSHARE_REBUILD_ON_START must be force or if_missing, not {other}")
            }
        };
        Ok(Settings {
            database_url: var(
                "PARKSHARE_DATABASE_URL",
                "postgres://postgres@127.0.0.1:5432/parkshare",
            ),
            migrate_database_url: std::env::var("PARKSHARE_MIGRATE_DATABASE_URL")
                .ok()
                .filter(|u| !u.is_empty()),
            db_pool_max: var("PARKSHARE_DB_POOL_MAX", "16")
                .parse()
                .context("PARKSHARE_DB_POOL_MAX must be a number")?,
            redis_url: var("PARKSHARE_REDIS_URL", "redis://127.0.0.1:6379"),
            redis_prefix: var("PARKSHARE_REDIS_PREFIX", "ps"),
            redis_cluster: match var("PARKSHARE_REDIS_CLUSTER", "off").as_str() {
                "on" => true,
                "off" => false,
                other => anyhow::bail!("PARKSHARE_REDIS_CLUSTER must be on or off, not {other}"),
            },
            redis_timeout_ms: match var("PARKSHARE_REDIS_TIMEOUT_MS", "300").parse() {
                Ok(ms) if (10..=10_000).contains(&ms) => ms,
                _ => anyhow::bail!(
                    "PARKSHARE_REDIS_TIMEOUT_MS must be a number of milliseconds, 10 to 10000"
                ),
            },
            listen: var("PARKSHARE_LISTEN", "127.0.0.1:8080")
                .parse()
                .context("PARKSHARE_LISTEN must be host:port")?,
            operator_token: std::env::var("PARKSHARE_OPERATOR_TOKEN")
                .ok()
                .filter(|t| !t.is_empty()),
            rebuild_on_start,
            log_json: var("PARKSHARE_LOG_FORMAT", "json") != "pretty",
            provider_secret: std::env::var("PARKSHARE_PROVIDER_SECRET")
                .ok()
                .filter(|s| !s.is_empty()),
            simulated_provider: match std::env::var("PARKSHARE_SIMULATED_PROVIDER")
                .unwrap_or_default()
                .as_str()
            {
                "on" => true,
                "off" => false,
                // Unset: only a demo run, which is public and fake anyway, turns it on.
                "" => demo_requested(),
                other => {
                    anyhow::bail!("PARKSHARE_SIMULATED_PROVIDER must be on or off, not {other}")
                }
            },
            callback_base_url: std::env::var("PARKSHARE_CALLBACK_BASE_URL")
                .ok()
                .filter(|s| !s.is_empty()),
            public_base_url: match std::env::var("PARKSHARE_PUBLIC_BASE_URL") {
                Ok(url) if !url.is_empty() => Some(public_base_url(&url)?),
                _ => None,
            },
            webhook_private_hosts: match var("PARKSHARE_WEBHOOK_PRIVATE_HOSTS", "deny").as_str() {
                "allow" => true,
                "deny" => false,
                other => {
                    anyhow::bail!(
                        "PARKSHARE_WEBHOOK_PRIVATE_HOSTS must be allow or deny, not {other}"
                    )
                }
            },
            gate_decision_budget_ms: var("PARKSHARE_GATE_DECISION_BUDGET_MS", "2000")
                .parse()
                .context("PARKSHARE_GATE_DECISION_BUDGET_MS must be a number of milliseconds")?,
            fail_open_drain_ms: var("PARKSHARE_FAIL_OPEN_DRAIN_MS", "1000")
                .parse()
                .context("PARKSHARE_FAIL_OPEN_DRAIN_MS must be a number of milliseconds")?,
            manual_open_ttl_s: match var("PARKSHARE_MANUAL_OPEN_TTL_S", "30").parse() {
                Ok(s) if (1..=600).contains(&s) => s,
                _ => anyhow::bail!(
                    "PARKSHARE_MANUAL_OPEN_TTL_S must be a number of seconds from 1 to 600"
                ),
            },
            fail_open_journal_dir: var("PARKSHARE_FAIL_OPEN_JOURNAL_DIR", "fail-open-journal")
                .into(),
            gate_batch_workers: var("PARKSHARE_GATE_BATCH_WORKERS", "2")
                .parse()
                .context("PARKSHARE_GATE_BATCH_WORKERS must be a number of workers")?,
            occupancy_reconcile_ms: match var("PARKSHARE_OCCUPANCY_RECONCILE_MS", "10000").parse() {
                Ok(ms) if ms >= 100 => ms,
                _ => anyhow::bail!(
                    "PARKSHARE_OCCUPANCY_RECONCILE_MS must be a number of milliseconds, at least 100"
                ),
            },
            gate_batch_max: match var("PARKSHARE_GATE_BATCH_MAX", "64").parse() {
                Ok(n) if n >= 1 => n,
                _ => {
                    anyhow::bail!("PARKSHARE_GATE_BATCH_MAX must be a number of reads, at least 1")
                }
            },
            trusted_proxies: parse_networks(&var("PARKSHARE_TRUSTED_PROXIES", ""))
                .context("PARKSHARE_TRUSTED_PROXIES")?,
            public_rate_per_min: positive("PARKSHARE_PUBLIC_RATE_PER_MIN", "120")?,
            booking_rate_per_min: positive("PARKSHARE_BOOKING_RATE_PER_MIN", "6")?,
            booking_hold_min: match var("PARKSHARE_BOOKING_HOLD_MIN", "10").parse() {
                Ok(n) if (1..=60).contains(&n) => n,
                _ => anyhow::bail!("PARKSHARE_BOOKING_HOLD_MIN must be 1 to 60 minutes"),
            },
            lottery_window_min: chrono::Duration::hours(i64::from(
                positive("PARKSHARE_LOTTERY_WINDOW_MIN_H", "24")?.get(),
            )),
            bookings_per_plate_max: i64::from(
                positive("PARKSHARE_BOOKINGS_PER_PLATE_MAX", "2")?.get(),
            ),
            bookings_per_client_max: i64::from(
                positive("PARKSHARE_BOOKINGS_PER_CLIENT_MAX", "5")?.get(),
            ),
            rental_grace_days: match var("PARKSHARE_RENTAL_GRACE_DAYS", "3").parse() {
                Ok(n) if (0..=31).contains(&n) => n,
                _ => anyhow::bail!("PARKSHARE_RENTAL_GRACE_DAYS must be 0 to 31 days"),
            },
            rental_reminder_days: match var("PARKSHARE_RENTAL_REMINDER_DAYS", "7").parse() {
                Ok(n) if (1..=60).contains(&n) => n,
                _ => anyhow::bail!("PARKSHARE_RENTAL_REMINDER_DAYS must be 1 to 60 days"),
            },
        })
    }
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
        let nets = parse_networks(" 10.0.0.0/8, 192.0.2.1 ,2001:db8::/32").ok();
        let shown: Option<Vec<String>> = nets.map(|n| n.iter().map(ToString::to_string).collect());
        assert_eq!(
            shown,
            Some(vec![
                "10.0.0.0/8".to_owned(),
                "192.0.2.1/32".to_owned(),
                "2001:db8::/32".to_owned()
            ])
        );
        assert!(parse_networks("").is_ok_and(|n| n.is_empty()));
        assert!(parse_networks("10.0.0.0/33").is_err());
    }
}
