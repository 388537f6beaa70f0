//! A camera simulator: speaks each camera vendor's push protocol against a running gate
//! service, so integrators and the test suite can exercise a lane end to end without
//! hardware.
//!
//! - [`vzenith`]: plate results, the heartbeat form in normal and comet mode, an offline
//!   backlog replayed one record per `ContinuePushOffline` (Vzenith HTTP push protocol);
//! - [`dahua`]: `DeviceInfo` registration, `KeepAlive`, `TollgateInfo` (Dahua ITSAPI §5.1–5.3);
//! - [`hikvision`]: ISAPI ANPR alerts (multipart XML, or JSON; with or without `macAddress`);
//! - [`barrier`]: the device side the service calls back — Hikvision's ISAPI barrier and
//!   Dahua's `openStrobe` — checking the HTTP digest login and counting the opens.
//!
//! Every payload is built from the published field lists (sources in each module), with
//! made-up values; none is a capture of a real device.

pub mod barrier;
pub mod dahua;
pub mod hikvision;
pub mod vzenith;

use anyhow::Context;

/// A lane of the service: its base URL and the gate's device secret (the push URL's token).
#[derive(Clone)]
pub struct Lane {
    pub base_url: String,
    pub token: String,
    http: reqwest::Client,
}

/// What the service answered.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    /// The body as JSON, or as a JSON string when it is not JSON (Hikvision's XML).
    pub body: serde_json::Value,
}

/// A camera gives up on a push after this long (cameras' own push timeouts are 3 to 10 s);
/// a held comet heartbeat must be answered within it.
pub const PUSH_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

impl Lane {
    pub fn new(base_url: &str, token: &str) -> anyhow::Result<Lane> {
        Ok(Lane {
            base_url: base_url.trim_end_matches('/').to_owned(),
            token: token.to_owned(),
            http: reqwest::Client::builder()
                .timeout(PUSH_TIMEOUT)
                .build()
                .context("building the HTTP client")?,
        })
    }

    /// `<base>/v1/vendor/<token>/<tail>`.
    pub fn url(&self, tail: &str) -> String {
        format!("{}/v1/vendor/{}/{tail}", self.base_url, self.token)
    }

    /// Posts `body` as `content_type` to `tail`.
    pub async fn post(
        &self,
        tail: &str,
        content_type: &str,
        body: Vec<u8>,
    ) -> anyhow::Result<Reply> {
        let response = self
            .http
            .post(self.url(tail))
            .header(reqwest::header::CONTENT_TYPE, content_type)
            .body(body)
            .send()
            .await
            .with_context(|| format!("posting to {tail}"))?;
        let status = response.status().as_u16();
        let text = response.text().await.unwrap_or_default();
        let body = serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text));
        Ok(Reply { status, body })
    }
}

/// One part of a multipart body: name, file name, content type, bytes.
pub type Part<'a> = (&'a str, Option<&'a str>, Option<&'a str>, &'a [u8]);

/// A `multipart/form-data` body of text fields and files. Returns the content type (with its
/// boundary) and the body.
pub fn multipart(boundary: &str, parts: &[Part<'_>]) -> (String, Vec<u8>) {
    let mut body = Vec::new();
    for (name, file_name, content_type, bytes) in parts {
        body.extend_from_slice(format!("--{boundary}\r\n").as_bytes());
        let file = file_name
            .map(|f| format!("; filename=\"{f}\""))
            .unwrap_or_default();
        body.extend_from_slice(
            format!("Content-Disposition: form-data; name=\"{name}\"{file}\r\n").as_bytes(),
        );
        if let Some(content_type) = content_type {
            body.extend_from_slice(format!("Content-Type: {content_type}\r\n").as_bytes());
        }
        body.extend_from_slice(b"\r\n");
        body.extend_from_slice(bytes);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

/// A stand-in JPEG of `bytes` bytes.
pub fn jpeg(bytes: usize) -> Vec<u8> {
    let mut jpeg = vec![0xFF, 0xD8, 0xFF, 0xE0];
    jpeg.resize(bytes.max(4), 0x5A);
    jpeg
}
