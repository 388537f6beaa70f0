//! Webhooks to owners and visitors: signed JSON events written to an outbox in the same
//! transaction as the change they report, and delivered afterwards by a background worker
//! with reqwest, retried with back-off, every attempt recorded.
//!
//! A delivery is `POST url` with the event as the body and the headers
//! `x-parkshare-event: <event>`, `x-parkshare-delivery: <id>` and
//! `x-parkshare-signature: sha256=<HMAC-SHA256 of the body under the subscriber's secret>`.

use std::time::Duration;

use chrono::Utc;
use serde_json::{json, Value};
use sqlx::postgres::PgListener;
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use crate::settlement::provider::{sign, SIGNATURE_HEADER};
use crate::store::sharing::{self, Booking, NewDelivery};

/// Attempts before a delivery is given up as failed (the last waits about 51 s).
pub const ATTEMPTS_MAX: i32 = 9;
/// First wait before a retry; it doubles each attempt.
const BACKOFF_FIRST_MS: i64 = 200;
/// Deliveries taken per pass of the worker.
const BATCH_MAX: i64 = 32;
/// How often the worker looks for due retries when nothing wakes it.
const IDLE_POLL_MS: u64 = 500;
/// Longest a receiver may take to answer.
const DELIVERY_TIMEOUT_S: u64 = 5;
/// A webhook URL longer than this is a mistake.
pub const URL_CHARS_MAX: usize = 2000;

/// Checks a subscriber's URL: http or https, absolute, of sensible length, and — unless
/// `private_hosts` allows it — not naming a loopback, private, link-local or unspecified
/// address (or `localhost`), so that a booking cannot make the service post into its own
/// network. (A public name that resolves to a private address is not caught here; run the
/// worker behind an egress proxy for that.)
pub fn parse_url(text: &str, private_hosts: bool) -> Result<String, crate::error::ApiError> {
    let bad = |why: &str| {
        crate::error::ApiError::invalid("invalid_webhook_url", format!("webhook_url {why}"))
    };
    if text.len() > URL_CHARS_MAX {
        return Err(bad("is too long"));
    }
    let url = reqwest::Url::parse(text).map_err(|_| bad("must be an absolute http(s) URL"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(bad("must be an absolute http(s) URL"));
    }
    let internal = match url.host() {
        None => return Err(bad("must name a host")),
        Some(url::Host::Domain(name)) => {
            let name = name.trim_end_matches('.').to_ascii_lowercase();
            name == "localhost" || name.ends_with(".localhost")
        }
        Some(url::Host::Ipv4(ip)) => {
            ip.is_loopback()
                || ip.is_private()
                || ip.is_link_local()
                || ip.is_unspecified()
                || ip.is_broadcast()
        }
        Some(url::Host::Ipv6(ip)) => {
            let mapped = ip.to_ipv4_mapped();
            ip.is_loopback()
                || ip.is_unspecified()
                || (ip.segments()[0] & 0xfe00) == 0xfc00 // unique local
                || (ip.segments()[0] & 0xffc0) == 0xfe80 // link local
                || mapped.is_some_and(|v4| v4.is_loopback() || v4.is_private() || v4.is_link_local())
        }
    };
    if internal && !private_hosts {
        return Err(bad(
            "may not name a loopback, private or link-local address",
        ));
    }
    Ok(url.to_string())
}

/// Queues `event` to `url`, signed with `secret`.
pub async fn enqueue(
    tx: &mut PgConnection,
    tenant_id: Uuid,
    url: &str,
    secret: &str,
    event: &str,
    data: Value,
) -> sqlx::Result<()> {
    let payload = json!({"event": event, "occurred_at": Utc::now(), "data": data});
    sharing::enqueue_delivery(
        tx,
        &NewDelivery {
            tenant_id,
            url,
            secret,
            event,
            payload: &payload,
        },
    )
    .await
}

/// Queues `event` to the owner's webhook, if they registered one.
pub async fn to_owner(
    tx: &mut PgConnection,
    tenant_id: Uuid,
    owner_id: Uuid,
    event: &str,
    data: Value,
) -> sqlx::Result<()> {
    match sharing::owner_webhook(&mut *tx, owner_id).await? {
        Some((url, secret)) => enqueue(tx, tenant_id, &url, &secret, event, data).await,
        None => Ok(()),
    }
}

/// Queues `event` to the visitor's webhook, if the booking gave one.
pub async fn to_visitor(
    tx: &mut PgConnection,
    booking: &Booking,
    event: &str,
    data: Value,
) -> sqlx::Result<()> {
    match (&booking.webhook_url, &booking.webhook_secret) {
        (Some(url), Some(secret)) => enqueue(tx, booking.tenant_id, url, secret, event, data).await,
        _ => Ok(()),
    }
}

/// Queues `event` to the booking's visitor and to the owner of the space it is on.
pub async fn to_owner_and_visitor(
    tx: &mut PgConnection,
    booking: &Booking,
    event: &str,
    data: Value,
) -> sqlx::Result<()> {
    if let Some(space) = sharing::shared_space(&mut *tx, booking.space_id).await? {
        to_owner(tx, space.tenant_id, space.owner_id, event, data.clone()).await?;
    }
    to_visitor(tx, booking, event, data).await
}

/// A booking as webhook data.
pub fn booking_data(booking: &Booking) -> Result<Value, crate::error::ApiError> {
    serde_json::to_value(booking).map_err(|e| crate::error::ApiError::Internal(e.into()))
}

/// The channel a queued webhook notifies at commit (migration 0015).
const CHANNEL: &str = "parkshare_webhooks";

/// Delivers due webhooks until the process ends: at once when a transaction that queued one
/// commits (in any process), and every [`IDLE_POLL_MS`] for retries and anything missed.
pub fn spawn_worker(db: PgPool, http: reqwest::Client) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut listener = None;
        loop {
            // Listening before the pass: what is queued during it is heard of after it.
            if listener.is_none() {
                listener = listen(&db).await;
            }
            match deliver_due(&db, &http).await {
                Ok(n) if i64::try_from(n).unwrap_or(0) == BATCH_MAX => continue,
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "webhook delivery pass failed"),
            }
            let idle = Duration::from_millis(IDLE_POLL_MS);
            match listener.as_mut() {
                Some(l) => {
                    if let Ok(Err(e)) = tokio::time::timeout(idle, l.recv()).await {
                        tracing::warn!(error = %e, "webhook listener lost its connection");
                        listener = None;
                    }
                }
                None => tokio::time::sleep(idle).await,
            }
        }
    })
}

/// A listener on [`CHANNEL`], or `None` (the worker then polls) if Postgres refuses one now.
async fn listen(db: &PgPool) -> Option<PgListener> {
    let mut listener = PgListener::connect_with(db).await.ok()?;
    listener.listen(CHANNEL).await.ok()?;
    Some(listener)
}

/// One pass: sends every due delivery once and records the outcome. Returns how many it took.
pub async fn deliver_due(db: &PgPool, http: &reqwest::Client) -> sqlx::Result<usize> {
    let mut tx = db.begin().await?;
    let due = sharing::due_deliveries(&mut tx, Utc::now(), BATCH_MAX).await?;
    let taken = due.len();
    // Concurrently, so that one slow receiver does not hold up the others' row locks.
    let mut sends = tokio::task::JoinSet::new();
    for delivery in due {
        let http = http.clone();
        sends.spawn(async move {
            let outcome = send(&http, &delivery).await;
            (delivery, outcome)
        });
    }
    while let Some(joined) = sends.join_next().await {
        let Ok((delivery, outcome)) = joined else {
            continue; // a panicked send stays pending and is retried on the next pass
        };
        let attempt = delivery.attempts + 1;
        let backoff =
            chrono::Duration::milliseconds(BACKOFF_FIRST_MS << (attempt - 1).clamp(0, 20));
        let (status, http_status, error) = match outcome {
            Ok(code) if (200..300).contains(&code) => ("delivered", Some(code), None),
            Ok(code) => (
                give_up_after(attempt),
                Some(code),
                Some(format!("receiver answered {code}")),
            ),
            Err(e) => (give_up_after(attempt), None, Some(e)),
        };
        crate::metrics::webhook_attempt(status);
        if status == "failed" {
            tracing::warn!(delivery_id = %delivery.id, event = %delivery.event, "webhook delivery failed for good");
        }
        sharing::record_attempt(
            &mut *tx,
            delivery.id,
            status,
            http_status,
            error.as_deref(),
            Utc::now() + backoff,
        )
        .await?;
    }
    tx.commit().await?;
    Ok(taken)
}

fn give_up_after(attempt: i32) -> &'static str {
    if attempt >= ATTEMPTS_MAX {
        "failed"
    } else {
        "pending"
    }
}

async fn send(http: &reqwest::Client, d: &sharing::DueDelivery) -> Result<i32, String> {
    let body = serde_json::to_vec(&d.payload).map_err(|e| e.to_string())?;
    let response = http
        .post(&d.url)
        .timeout(Duration::from_secs(DELIVERY_TIMEOUT_S))
        .header("content-type", "application/json")
        .header("x-parkshare-event", &d.event)
        .header("x-parkshare-delivery", d.id.to_string())
        .header(SIGNATURE_HEADER, sign(d.secret.as_bytes(), &body))
        .body(body)
        .send()
        .await
        // The error text names the URL, which is the subscriber's own; never the secret.
        .map_err(|e| e.without_url().to_string())?;
    Ok(i32::from(response.status().as_u16()))
}

#[cfg(test)]
mod tests {
    use super::parse_url;

    fn code(text: &str, private_hosts: bool) -> &'static str {
        match parse_url(text, private_hosts) {
            Ok(_) => "ok",
            Err(e) => e.code(),
        }
    }

    #[test]
    fn webhooks_cannot_point_into_our_own_network() {
        for inside in [
            "http://127.0.0.1:8080/x",
            "http://localhost/x",
            "http://10.0.0.7/x",
            "http://192.168.1.1/x",
            "http://169.254.169.254/latest/meta-data",
            "http://[::1]/x",
            "http://[fd00::1]/x",
            "http://[::ffff:10.0.0.1]/x",
            "http://0.0.0.0/x",
        ] {
            assert_eq!(code(inside, false), "invalid_webhook_url", "{inside}");
            assert_eq!(
                code(inside, true),
                "ok",
                "{inside} with private hosts allowed"
            );
        }
        assert_eq!(code("https://hooks.example.com/parkshare", false), "ok");
        assert_eq!(code("ftp://example.com/x", true), "invalid_webhook_url");
        assert_eq!(code("not a url", true), "invalid_webhook_url");
    }
}
