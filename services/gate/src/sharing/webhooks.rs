//! Webhooks to owners and visitors: signed JSON events written to an outbox in the same
//! transaction as the change they report, and delivered afterwards by a background worker
//! with reqwest, retried with back-off, every attempt recorded.
//!
//! A delivery is `POST url` with the event as the body and the headers
//! `x-parkshare-event: <event>`, `x-parkshare-delivery: <id>` and
//! `x-parkshare-signature: sha256=<HMAC-SHA256 of the body under the subscriber's secret>`.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use serde_json::{json, Value};
use sqlx::{PgConnection, PgPool};
use tokio::sync::Notify;
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

/// Checks a subscriber's URL: http or https, absolute, of sensible length.
pub fn parse_url(text: &str) -> Result<String, crate::error::ApiError> {
    let bad = || {
        crate::error::ApiError::invalid(
            "invalid_webhook_url",
            "webhook_url must be an absolute http(s) URL",
        )
    };
    if text.len() > URL_CHARS_MAX {
        return Err(bad());
    }
    let url = reqwest::Url::parse(text).map_err(|_| bad())?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(bad());
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

/// Wakes the worker and runs it until the process ends.
pub fn spawn_worker(
    db: PgPool,
    http: reqwest::Client,
    wake: Arc<Notify>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            match deliver_due(&db, &http).await {
                Ok(n) if i64::try_from(n).unwrap_or(0) == BATCH_MAX => continue,
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "webhook delivery pass failed"),
            }
            let _ =
                tokio::time::timeout(Duration::from_millis(IDLE_POLL_MS), wake.notified()).await;
        }
    })
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
