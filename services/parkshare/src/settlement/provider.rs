//! Payment providers behind one interface: a provider tells us, in a signed notification, that
//! an intent was paid. Only the built-in simulated provider ships; it behaves like the real
//! ones — it calls back over HTTP, retries with back-off when we do not answer 2xx, and can be
//! told to deliver the same notification twice or late — so that local runs and tests exercise
//! the same callback path production uses.

use std::time::Duration;

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

pub use crate::signature::{sign, verify, SIGNATURE_HEADER};

/// Attempts to deliver one notification before the simulated provider gives up.
pub const DELIVERY_ATTEMPTS_MAX: u32 = 6;
/// First back-off between attempts; it doubles each time (0.2 s, 0.4 s, … 6.4 s).
const BACKOFF_FIRST_MS: u64 = 200;
/// How long one delivery attempt may take.
const DELIVERY_TIMEOUT_S: u64 = 5;

/// What a provider says about a payment. Amounts are decimal strings, never floats.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Notification {
    /// The provider's id of this notification; a redelivery repeats it.
    pub notification_id: String,
    pub intent_id: Uuid,
    #[serde(with = "rust_decimal::serde::str")]
    pub amount: Decimal,
    pub currency: String,
    /// When the driver paid, by the provider's clock.
    pub paid_at: DateTime<Utc>,
}

/// How the simulated provider should behave for one payment (local runs and tests).
#[derive(Debug, Clone, Copy)]
pub struct Delivery {
    /// How many times the same notification is sent (1 to 3).
    pub copies: u32,
    /// Wait before the first copy is sent.
    pub delay: Duration,
}

/// The simulated provider's sender: delivers `notification` to `callback_url`, signed, each
/// copy retried with doubling back-off until it is answered 2xx or the attempts run out.
pub fn deliver(
    http: reqwest::Client,
    secret: Vec<u8>,
    callback_url: String,
    notification: Notification,
    delivery: Delivery,
) {
    tokio::spawn(async move {
        tokio::time::sleep(delivery.delay).await;
        let body = match serde_json::to_vec(&notification) {
            Ok(body) => body,
            Err(e) => {
                tracing::error!(error = %e, "simulated provider: cannot encode notification");
                return;
            }
        };
        let signature = sign(&secret, &body);
        for copy in 0..delivery.copies {
            let mut backoff_ms = BACKOFF_FIRST_MS;
            for attempt in 1..=DELIVERY_ATTEMPTS_MAX {
                let sent = http
                    .post(&callback_url)
                    .header(SIGNATURE_HEADER, &signature)
                    .header("content-type", "application/json")
                    .timeout(Duration::from_secs(DELIVERY_TIMEOUT_S))
                    .body(body.clone())
                    .send()
                    .await;
                match sent {
                    Ok(r) if r.status().is_success() => break,
                    outcome => {
                        let status = outcome.map(|r| r.status().as_u16()).unwrap_or(0);
                        tracing::warn!(intent_id = %notification.intent_id, copy, attempt, status,
                            "simulated provider: callback not accepted; retrying");
                        if attempt == DELIVERY_ATTEMPTS_MAX {
                            tracing::error!(intent_id = %notification.intent_id, "simulated provider: gave up");
                        } else {
                            tokio::time::sleep(Duration::from_millis(backoff_ms)).await;
                            backoff_ms *= 2;
                        }
                    }
                }
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signature_verifies_only_for_its_body_and_secret() {
        let sig = sign(b"secret", b"{\"a\":1}");
        assert!(verify(b"secret", b"{\"a\":1}", &sig));
        assert!(!verify(b"secret", b"{\"a\":2}", &sig));
        assert!(!verify(b"other", b"{\"a\":1}", &sig));
        assert!(!verify(b"secret", b"{\"a\":1}", "sha256=zz"));
        assert!(!verify(
            b"secret",
            b"{\"a\":1}",
            &sig.replace("sha256=", "")
        ));
    }
}
