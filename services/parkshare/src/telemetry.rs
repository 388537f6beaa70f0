//! Structured logs: JSON lines by default, `RUST_LOG` filters (default `info`).

use actix_web::HttpMessage;
use tracing_subscriber::EnvFilter;

pub fn init(json: bool) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    // A second init (tests start several apps in one process) is harmless: keep the first.
    let _ = if json {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}

/// The request span of every HTTP request: tracing-actix-web's default fields, but the logged
/// path has its secret path segments blanked. Share links and camera push URLs carry their
/// credential in the path (`{token}`: a camera cannot send a header), and the path must not
/// put it into the logs.
pub struct RedactedRootSpan;

impl tracing_actix_web::RootSpanBuilder for RedactedRootSpan {
    fn on_request_start(request: &actix_web::dev::ServiceRequest) -> tracing::Span {
        let request_id = request
            .extensions()
            .get::<tracing_actix_web::RequestId>()
            .map(ToString::to_string)
            .unwrap_or_default();
        // Not routed yet: actix answers the first pattern the path matches, whatever the
        // method (`POST …/lotteries/verify` reads as `…/lotteries/{id}`). Good enough for what
        // is logged during the request; `on_request_end` records the route that answered.
        let route = request.match_pattern().unwrap_or_default();
        let target = redacted_target(request.path(), request.query_string());
        let user_agent = request
            .headers()
            .get(actix_web::http::header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned();
        let client_ip = request
            .connection_info()
            .realip_remote_addr()
            .unwrap_or("")
            .to_owned();
        tracing::info_span!(
            "HTTP request",
            http.method = %request.method(),
            http.route = %route,
            http.target = %target,
            http.client_ip = %client_ip,
            http.user_agent = %user_agent,
            http.status_code = tracing::field::Empty,
            otel.status_code = tracing::field::Empty,
            request_id = %request_id,
            exception.message = tracing::field::Empty,
            exception.details = tracing::field::Empty,
        )
    }

    /// A server error is logged with its cause (tracing-actix-web's default). A client error
    /// is logged by its stable code only: its message may repeat what the client sent (a
    /// malformed plate, a name), which is the client's and need not be in our logs.
    fn on_request_end<B: actix_web::body::MessageBody>(
        span: tracing::Span,
        outcome: &Result<actix_web::dev::ServiceResponse<B>, actix_web::Error>,
    ) {
        let Ok(response) = outcome else {
            return tracing_actix_web::DefaultRootSpanBuilder::on_request_end(span, outcome);
        };
        // Once routed, the pattern is the resource's that served the request, method and all.
        if let Some(route) = response.request().match_pattern() {
            span.record("http.route", route);
        }
        let status = response.response().status();
        let Some(error) = response.response().error() else {
            return tracing_actix_web::DefaultRootSpanBuilder::on_request_end(span, outcome);
        };
        if status.is_server_error() {
            return tracing_actix_web::DefaultRootSpanBuilder::on_request_end(span, outcome);
        }
        let code = error
            .as_error::<crate::error::ApiError>()
            .map_or("client_error", crate::error::ApiError::code);
        span.record("http.status_code", status.as_u16());
        span.record("otel.status_code", "OK");
        span.record("exception.message", code);
        span.in_scope(|| tracing::warn!(code, status = status.as_u16(), "request refused"));
    }
}

/// Path segments (in any case) after which a credential comes: a camera cannot send a header,
/// so its device secret is in the push URL (`/v1/vendor/<secret>/…`), and a disclosure share
/// link is its own credential (`/v1/public/disclosure/<token>/…`).
const SECRET_AFTER: [&str; 2] = ["vendor", "disclosure"];

/// The words of the routes under a [`SECRET_AFTER`] segment: only these are logged after it.
const ROUTE_WORDS_AFTER_SECRET: [&str; 8] = [
    "vzenith",
    "hikvision",
    "dahua",
    "notificationinfo",
    "tollgateinfo",
    "keepalive",
    "data.json",
    "data.csv",
];

/// Query parameters whose values are logged; every other value is blanked. Plates (`quote?
/// plate=`) are personal data and tokens are secrets: only what names a range or a kind of
/// record is let through.
const QUERY_KEYS_LOGGED: [&str; 9] = [
    "from",
    "to",
    "day",
    "month",
    "provider",
    "status",
    "account_kind",
    "limit",
    "preview",
];

const REDACTED: &str = "<redacted>";

/// The path and query as logged. The path is logged as segments, percent-decoded, split at
/// `/`, `\\` and `;`, with empty and `.` segments dropped and `..` applied — whatever
/// spelling came in. After a [`SECRET_AFTER`] segment only the route's own words
/// ([`ROUTE_WORDS_AFTER_SECRET`]) are logged, every other segment `<redacted>`, whether or not
/// a route matched: no spelling of a path hides its secret. A segment that is a plate, or the
/// value of a `key=value` segment, is `<redacted>` too (personal data), and so is every query
/// value not in [`QUERY_KEYS_LOGGED`].
fn redacted_target(path: &str, query: &str) -> String {
    let decoded = percent_encoding::percent_decode_str(path).decode_utf8_lossy();
    let mut segments: Vec<&str> = Vec::new();
    for segment in decoded.split(['/', '\\', ';']) {
        match segment {
            "" | "." => {}
            ".." => {
                segments.pop();
            }
            segment => segments.push(segment),
        }
    }
    let mut after_secret = false;
    let mut logged: Vec<String> = Vec::with_capacity(segments.len());
    let is_one_of =
        |words: &[&str], segment: &str| words.iter().any(|w| w.eq_ignore_ascii_case(segment));
    for segment in segments {
        let secret = after_secret && !is_one_of(&ROUTE_WORDS_AFTER_SECRET, segment);
        // A plate begins with its province's character: an ASCII segment (every segment of
        // the gate's own paths) is never one, and is not parsed.
        let plate = !segment.is_ascii() && parkshare_domain::plate::Plate::parse(segment).is_ok();
        let shown = if secret || plate {
            REDACTED.to_owned()
        } else if let Some((key, _)) = segment.split_once('=') {
            format!("{key}={REDACTED}")
        } else {
            segment.to_owned()
        };
        after_secret |= is_one_of(&SECRET_AFTER, segment);
        logged.push(shown);
    }
    let logged = format!("/{}", logged.join("/"));
    if query.is_empty() {
        return logged;
    }
    let query = query
        .split('&')
        .map(|pair| match pair.split_once('=') {
            Some((key, value)) if QUERY_KEYS_LOGGED.contains(&key) => format!("{key}={value}"),
            Some((key, _)) => format!("{key}={REDACTED}"),
            None => REDACTED.to_owned(),
        })
        .collect::<Vec<_>>()
        .join("&");
    format!("{logged}?{query}")
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use actix_web::test::{call_service, init_service, TestRequest};
    use actix_web::{get, post, App, HttpResponse};
    use tracing_subscriber::layer::{Context, SubscriberExt};
    use tracing_subscriber::Layer;

    use super::{redacted_target, RedactedRootSpan};

    /// Keeps the last `http.route` any span was given, at its start or recorded later.
    #[derive(Clone, Default)]
    struct LastRoute(Arc<Mutex<Option<String>>>);

    impl tracing::field::Visit for LastRoute {
        fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
            if field.name() == "http.route" {
                if let Ok(mut last) = self.0.lock() {
                    *last = Some(format!("{value:?}"));
                }
            }
        }

        fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
            self.record_debug(field, &format_args!("{value}"));
        }
    }

    impl<S: tracing::Subscriber> Layer<S> for LastRoute {
        fn on_new_span(
            &self,
            attrs: &tracing::span::Attributes<'_>,
            _: &tracing::span::Id,
            _: Context<'_, S>,
        ) {
            attrs.record(&mut self.clone());
        }

        fn on_record(
            &self,
            _: &tracing::span::Id,
            values: &tracing::span::Record<'_>,
            _: Context<'_, S>,
        ) {
            values.record(&mut self.clone());
        }
    }

    #[get("/v1/public/lotteries/{id}")]
    async fn read_published() -> HttpResponse {
        HttpResponse::Ok().finish()
    }

    #[post("/v1/public/lotteries/verify")]
    async fn verify_published() -> HttpResponse {
        HttpResponse::UnprocessableEntity().finish()
    }

    /// Registered as the lottery routes are, the `{id}` pattern first: the verifier is logged
    /// under its own route, not under the one its path also matches.
    #[actix_web::test]
    async fn a_request_is_logged_under_the_route_that_served_it() {
        let last = LastRoute::default();
        let subscriber = tracing_subscriber::registry().with(last.clone());
        let _guard = tracing::subscriber::set_default(subscriber);
        let app = init_service(
            App::new()
                .wrap(tracing_actix_web::TracingLogger::<RedactedRootSpan>::new())
                .service(read_published)
                .service(verify_published),
        )
        .await;
        for (method, path, route) in [
            (
                actix_web::http::Method::POST,
                "/v1/public/lotteries/verify",
                "/v1/public/lotteries/verify",
            ),
            (
                actix_web::http::Method::GET,
                "/v1/public/lotteries/0b7d",
                "/v1/public/lotteries/{id}",
            ),
        ] {
            let request = TestRequest::default()
                .method(method.clone())
                .uri(path)
                .to_request();
            call_service(&app, request).await;
            let logged = last.0.lock().map(|l| l.clone()).unwrap_or_default();
            assert_eq!(logged.as_deref(), Some(route), "{method} {path}");
        }
    }

    #[test]
    fn secret_segments_and_personal_query_values_are_not_logged() {
        for (path, query, logged) in [
            (
                "/v1/vendor/abc123/vzenith",
                "",
                "/v1/vendor/<redacted>/vzenith",
            ),
            // No route matches these: the secret is blanked all the same.
            (
                "/v1/vendor/abc123/hikvision/",
                "",
                "/v1/vendor/<redacted>/hikvision",
            ),
            (
                "/v1/vendor/abc123/nosuchvendor",
                "",
                "/v1/vendor/<redacted>/<redacted>",
            ),
            ("/v1/vendor/abc123", "", "/v1/vendor/<redacted>"),
            (
                "/v1/public/disclosure/abc123/data.csv",
                "month=2026-11",
                "/v1/public/disclosure/<redacted>/data.csv?month=2026-11",
            ),
            (
                "/v1/public/disclosure/abc123/whatever/else",
                "",
                "/v1/public/disclosure/<redacted>/<redacted>/<redacted>",
            ),
            (
                "/v1/public/lots/x/quote",
                "plate=%E4%BA%ACA12345&at=now",
                "/v1/public/lots/x/quote?plate=<redacted>&at=<redacted>",
            ),
            (
                "/v1/public/lots/x/availability",
                "from=2026-12-01T08:00:00Z&to=2026-12-01T09:00:00Z",
                "/v1/public/lots/x/availability?from=2026-12-01T08:00:00Z&to=2026-12-01T09:00:00Z",
            ),
            ("/healthz", "", "/healthz"),
            ("/nowhere/x", "", "/nowhere/x"),
            // Spellings the router accepts, or a camera misconfigured, all blanked.
            (
                "/v1/%76endor/abc123/vzenith",
                "",
                "/v1/vendor/<redacted>/vzenith",
            ),
            (
                "/v1/public/%64isclosure/abc123",
                "",
                "/v1/public/disclosure/<redacted>",
            ),
            (
                "//v1/vendor/abc123/x",
                "",
                "/v1/vendor/<redacted>/<redacted>",
            ),
            ("/v1//vendor//abc123", "", "/v1/vendor/<redacted>"),
            ("/V1/Vendor/abc123", "", "/V1/Vendor/<redacted>"),
            (
                "/v1/public/disclosure;abc123",
                "",
                "/v1/public/disclosure/<redacted>",
            ),
            // A plate in a path is personal data.
            (
                "/v1/admin/compounds/c1/blocklist/%E4%BA%ACC33333",
                "",
                "/v1/admin/compounds/c1/blocklist/<redacted>",
            ),
            (
                "/v1/admin/compounds/c1/exempt-vehicles/云A12010",
                "",
                "/v1/admin/compounds/c1/exempt-vehicles/<redacted>",
            ),
        ] {
            assert_eq!(redacted_target(path, query), logged, "{path}?{query}");
        }
    }
}
