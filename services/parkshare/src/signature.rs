//! HMAC signatures of request bodies, one scheme both ways: payment providers' notifications
//! coming in (`settlement::provider`) and the webhooks going out to owners (`webhooks`).

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The header carrying `sha256=<hex HMAC of the raw body>`.
pub const SIGNATURE_HEADER: &str = "x-parkshare-signature";

type HmacSha256 = Hmac<Sha256>;

/// `sha256=<hex>` of `body` under `secret`.
pub fn sign(secret: &[u8], body: &[u8]) -> String {
    // HMAC accepts keys of any length, so this cannot fail.
    let mut mac = match HmacSha256::new_from_slice(secret) {
        Ok(mac) => mac,
        Err(_) => return String::new(),
    };
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// Checks a signature header in constant time.
pub fn verify(secret: &[u8], body: &[u8], header: &str) -> bool {
    let Some(hex_sig) = header.strip_prefix("sha256=") else {
        return false;
    };
    let Ok(sig) = hex::decode(hex_sig) else {
        return false;
    };
    match HmacSha256::new_from_slice(secret) {
        Ok(mut mac) => {
            mac.update(body);
            mac.verify_slice(&sig).is_ok()
        }
        Err(_) => false,
    }
}
