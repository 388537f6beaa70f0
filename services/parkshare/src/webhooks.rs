//! Webhooks to owners and visitors: signed JSON events written to an outbox in the same
//! transaction as the change they report, and delivered afterwards by a background worker
//! with reqwest, retried with back-off, every attempt recorded.
//!
//! A delivery is `POST url` with the event as the body and the headers
//! `x-parkshare-event: <event>`, `x-parkshare-delivery: <id>` and
//! `x-parkshare-signature: sha256=<HMAC-SHA256 of the body under the subscriber's secret>`.

use crate::error::ErrorCode;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::{json, Value};
use sqlx::postgres::PgListener;
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use crate::clock::Clock;
use crate::outbound::{self, Guarded, OutboundError, Policy, Refused};
use crate::signature::{sign, SIGNATURE_HEADER};
use crate::store::sharing::{self, Booking, NewDelivery};
use crate::workers::Workers;

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

/// Checks a subscriber's URL when it is registered: http or https, absolute, of sensible
/// length, and not naming `localhost` or a literal address webhooks may not reach (see
/// [`outbound::Policy::webhooks`]; `private_hosts` is `PARKSHARE_WEBHOOK_PRIVATE_HOSTS`). This
/// is the early, clear answer; the guard is at delivery, where a name is judged by the
/// addresses it resolves to then ([`crate::outbound`]).
pub fn parse_url(text: &str, private_hosts: bool) -> Result<String, crate::error::ApiError> {
    let bad = |why: &str| {
        crate::error::ApiError::invalid(ErrorCode::InvalidWebhookUrl, format!("webhook_url {why}"))
    };
    if text.len() > URL_CHARS_MAX {
        return Err(bad("is too long"));
    }
    let url = reqwest::Url::parse(text).map_err(|_| bad("must be an absolute http(s) URL"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(bad("must be an absolute http(s) URL"));
    }
    // A password in the URL would be shown to staff with every delivery; a subscriber
    // authenticates the service by the signature header instead.
    if !url.username().is_empty() || url.password().is_some() {
        return Err(bad(
            "may not carry a user name or password: check the x-parkshare-signature header instead",
        ));
    }
    let policy = Policy::webhooks(private_hosts);
    match url.host() {
        None => return Err(bad("must name a host")),
        Some(url::Host::Domain(name)) if policy == Policy::Public => {
            let name = name.trim_end_matches('.').to_ascii_lowercase();
            if name == "localhost" || name.ends_with(".localhost") {
                return Err(bad(&format!(
                    "may not name {name}: webhooks are sent only to public addresses"
                )));
            }
        }
        Some(_) => {}
    }
    outbound::check_literal(&url, policy).map_err(|refused| {
        bad(&format!(
            "is refused: {refused}, which webhooks may not reach"
        ))
    })?;
    Ok(url.to_string())
}

/// Queues `event`, which occurred at `now` (the service's clock), to `url`, signed with
/// `secret`; due at once.
pub async fn enqueue(
    tx: &mut PgConnection,
    tenant_id: Uuid,
    url: &str,
    secret: &str,
    event: &str,
    data: Value,
    now: DateTime<Utc>,
) -> sqlx::Result<()> {
    let payload = json!({"event": event, "occurred_at": now, "data": data});
    sharing::enqueue_delivery(
        tx,
        &NewDelivery {
            tenant_id,
            url,
            secret,
            event,
            payload: &payload,
            due_at: now,
        },
    )
    .await
}

/// Queues `event`, which occurred at `now`, to the owner's webhook, if they registered one.
pub async fn to_owner(
    tx: &mut PgConnection,
    tenant_id: Uuid,
    owner_id: Uuid,
    event: &str,
    data: Value,
    now: DateTime<Utc>,
) -> sqlx::Result<()> {
    match sharing::owner_webhook(&mut *tx, owner_id).await? {
        Some((url, secret)) => enqueue(tx, tenant_id, &url, &secret, event, data, now).await,
        None => Ok(()),
    }
}

/// Queues `event`, which occurred at `now`, to the visitor's webhook, if the booking gave one.
pub async fn to_visitor(
    tx: &mut PgConnection,
    booking: &Booking,
    event: &str,
    data: Value,
    now: DateTime<Utc>,
) -> sqlx::Result<()> {
    match (&booking.webhook_url, &booking.webhook_secret) {
        (Some(url), Some(secret)) => {
            enqueue(tx, booking.tenant_id, url, secret, event, data, now).await
        }
        _ => Ok(()),
    }
}

/// Queues `event`, which occurred at `now`, to the booking's visitor and to the owner of the
/// space it is on.
pub async fn to_owner_and_visitor(
    tx: &mut PgConnection,
    booking: &Booking,
    event: &str,
    data: Value,
    now: DateTime<Utc>,
) -> sqlx::Result<()> {
    if let Some(space) = sharing::shared_space(&mut *tx, booking.space_id).await? {
        to_owner(
            tx,
            space.tenant_id,
            space.owner_id,
            event,
            data.clone(),
            now,
        )
        .await?;
    }
    to_visitor(tx, booking, event, data, now).await
}

/// A booking as webhook data.
pub fn booking_data(booking: &Booking) -> Result<Value, crate::error::ApiError> {
    serde_json::to_value(booking).map_err(|e| crate::error::ApiError::Internal(e.into()))
}

/// The channel a queued webhook notifies at commit (migration 0015).
const CHANNEL: &str = "parkshare_webhooks";

/// Delivers due webhooks until shutdown: at once when a transaction that queued one commits
/// (in any process), and every [`IDLE_POLL_MS`] for retries and anything missed; due and
/// back-off by `clock`. A pass under way when shutdown comes finishes (its sends recorded).
pub fn spawn_worker(workers: &mut Workers, db: PgPool, http: Guarded, clock: Clock) {
    workers.supervise("webhooks", move |shutdown| {
        let (db, http, clock) = (db.clone(), http.clone(), clock.clone());
        async move {
            let mut listener = None;
            while !shutdown.is_requested() {
                // Listening before the pass: what is queued during it is heard of after it.
                if listener.is_none() {
                    listener = listen(&db).await;
                }
                match deliver_due(&db, &http, &clock).await {
                    Ok(n) if i64::try_from(n).unwrap_or(0) == BATCH_MAX => continue,
                    Ok(_) => {}
                    Err(e) => tracing::warn!(error = %e, "webhook delivery pass failed"),
                }
                let idle = Duration::from_millis(IDLE_POLL_MS);
                match listener.as_mut() {
                    Some(l) => {
                        let heard = shutdown.until(tokio::time::timeout(idle, l.recv())).await;
                        if let Some(Ok(Err(e))) = heard {
                            tracing::warn!(error = %e, "webhook listener lost its connection");
                            listener = None;
                        }
                    }
                    None => {
                        shutdown.until(tokio::time::sleep(idle)).await;
                    }
                }
            }
        }
    });
}

/// A listener on [`CHANNEL`], or `None` (the worker then polls) if Postgres refuses one now.
async fn listen(db: &PgPool) -> Option<PgListener> {
    let mut listener = PgListener::connect_with(db).await.ok()?;
    listener.listen(CHANNEL).await.ok()?;
    Some(listener)
}

/// One pass: sends every delivery due by `clock` once and records the outcome; a retry is due
/// its back-off after the attempt ended. Returns how many it took.
pub async fn deliver_due(db: &PgPool, http: &Guarded, clock: &Clock) -> sqlx::Result<usize> {
    let mut tx = db.begin().await?;
    let due = sharing::due_deliveries(&mut tx, clock.now(), BATCH_MAX).await?;
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
        let (status, outcome, http_status, error) = judge(outcome, attempt);
        crate::metrics::webhook_attempt(outcome);
        if status == "failed" {
            tracing::warn!(delivery_id = %delivery.id, event = %delivery.event, "webhook delivery failed for good");
        }
        sharing::record_attempt(
            &mut *tx,
            delivery.id,
            status,
            http_status,
            error.as_deref(),
            clock.now() + backoff,
        )
        .await?;
    }
    tx.commit().await?;
    Ok(taken)
}

/// What an attempt means for its delivery: its status, the metrics outcome, the receiver's
/// HTTP status and the error recorded.
fn judge(
    outcome: Result<i32, Undelivered>,
    attempt: i32,
) -> (&'static str, &'static str, Option<i32>, Option<String>) {
    match outcome {
        Ok(code) if (200..300).contains(&code) => ("delivered", "delivered", Some(code), None),
        Ok(code) => {
            let status = give_up_after(attempt);
            let error = format!("receiver answered {code}");
            (status, status, Some(code), Some(error))
        }
        // Final at once: where the name points is the subscriber's choice, and asking again
        // would only poll it until it points somewhere allowed.
        Err(Undelivered::Refused(refused)) => {
            let error = format!("not sent: {refused}, which webhooks may not reach");
            ("failed", "refused", None, Some(error))
        }
        Err(Undelivered::Failed(e)) => {
            let status = give_up_after(attempt);
            (status, status, None, Some(e))
        }
    }
}

fn give_up_after(attempt: i32) -> &'static str {
    if attempt >= ATTEMPTS_MAX {
        "failed"
    } else {
        "pending"
    }
}

/// Why an attempt got no answer.
enum Undelivered {
    /// The guard refused the receiver's address: nothing was sent.
    Refused(Refused),
    Failed(String),
}

impl From<OutboundError> for Undelivered {
    fn from(e: OutboundError) -> Undelivered {
        match e {
            OutboundError::Refused(refused) => Undelivered::Refused(refused),
            // The error text names the URL, which is the subscriber's own; never the secret.
            OutboundError::Http(e) => Undelivered::Failed(e.without_url().to_string()),
            e @ OutboundError::InvalidUrl => Undelivered::Failed(e.to_string()),
        }
    }
}

async fn send(http: &Guarded, d: &sharing::DueDelivery) -> Result<i32, Undelivered> {
    let body = serde_json::to_vec(&d.payload).map_err(|e| Undelivered::Failed(e.to_string()))?;
    let request = http
        .request(reqwest::Method::POST, &d.url)?
        .timeout(Duration::from_secs(DELIVERY_TIMEOUT_S))
        .header("content-type", "application/json")
        .header("x-parkshare-event", &d.event)
        .header("x-parkshare-delivery", d.id.to_string())
        .header(SIGNATURE_HEADER, sign(d.secret.as_bytes(), &body))
        .body(body);
    let response = Guarded::send(request).await?;
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
    fn a_webhook_url_carries_no_password() {
        for with_login in [
            "https://u:secret@example.com/hooks",
            "https://u@example.com/hooks",
        ] {
            assert_eq!(
                code(with_login, false),
                "invalid_webhook_url",
                "{with_login}"
            );
        }
        assert_eq!(code("https://example.com/hooks", false), "ok");
    }

    #[test]
    fn webhooks_cannot_point_into_our_own_network() {
        for inside in [
            "http://127.0.0.1:8080/x",
            "http://localhost/x",
            "http://app.localhost./x",
            "http://10.0.0.7/x",
            "http://192.168.1.1/x",
            "http://[::1]/x",
            "http://[::127.0.0.1]/x",
            "http://[fd00::1]/x",
            "http://[::ffff:10.0.0.1]/x",
            "http://0.0.0.0/x",
            "http://100.64.0.1/x",
            "http://198.18.0.1/x",
            "http://192.0.0.8/x",
            "http://224.0.0.1/x",
        ] {
            assert_eq!(code(inside, false), "invalid_webhook_url", "{inside}");
            assert_eq!(
                code(inside, true),
                "ok",
                "{inside} with private hosts allowed"
            );
        }
        // Metadata addresses are refused even where private hosts are allowed.
        for metadata in [
            "http://169.254.169.254/latest/meta-data",
            "http://100.100.100.200/latest/meta-data",
            "http://[64:ff9b::a9fe:a9fe]/latest/meta-data",
        ] {
            assert_eq!(code(metadata, false), "invalid_webhook_url", "{metadata}");
            assert_eq!(code(metadata, true), "invalid_webhook_url", "{metadata}");
        }
        assert_eq!(code("https://hooks.example.com/parkshare", false), "ok");
        assert_eq!(code("http://93.184.216.34/parkshare", false), "ok");
        assert_eq!(code("ftp://example.com/x", true), "invalid_webhook_url");
        assert_eq!(code("not a url", true), "invalid_webhook_url");
    }

    #[test]
    fn a_refused_address_is_named_in_the_answer() {
        let message = match parse_url("http://[::127.0.0.1]/x", false) {
            Ok(_) => String::new(),
            Err(e) => e.to_string(),
        };
        assert!(
            message.contains("[::7f00:1] is a loopback address (it carries 127.0.0.1)"),
            "{message}"
        );
    }
}
