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
        let route = request.match_pattern().unwrap_or_default();
        let target = redacted_target(request.path(), &route, request.query_string());
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

    fn on_request_end<B: actix_web::body::MessageBody>(
        span: tracing::Span,
        outcome: &Result<actix_web::dev::ServiceResponse<B>, actix_web::Error>,
    ) {
        tracing_actix_web::DefaultRootSpanBuilder::on_request_end(span, outcome);
    }
}

/// The path parameter that holds a credential wherever a route has one.
const SECRET_SEGMENT: &str = "{token}";

/// The path and query as logged, the segment where the route pattern has `{token}` replaced.
/// (The middleware runs before routing, so the pattern, not the matched parameters, says
/// which segment it is. No route takes a credential in its query.)
fn redacted_target(path: &str, pattern: &str, query: &str) -> String {
    let secret_at: Vec<usize> = pattern
        .split('/')
        .enumerate()
        .filter(|(_, segment)| *segment == SECRET_SEGMENT)
        .map(|(i, _)| i)
        .collect();
    let path = path
        .split('/')
        .enumerate()
        .map(|(i, segment)| {
            if secret_at.contains(&i) {
                "<redacted>"
            } else {
                segment
            }
        })
        .collect::<Vec<_>>()
        .join("/");
    if query.is_empty() {
        path
    } else {
        format!("{path}?{query}")
    }
}

#[cfg(test)]
mod tests {
    use super::redacted_target;

    #[test]
    fn secret_segments_and_queries_are_not_logged() {
        assert_eq!(
            redacted_target(
                "/v1/vendor/abc123/vzenith",
                "/v1/vendor/{token}/vzenith",
                ""
            ),
            "/v1/vendor/<redacted>/vzenith"
        );
        assert_eq!(
            redacted_target(
                "/v1/public/disclosure/abc123/data.csv",
                "/v1/public/disclosure/{token}/data.csv",
                "year=2026"
            ),
            "/v1/public/disclosure/<redacted>/data.csv?year=2026"
        );
        assert_eq!(redacted_target("/healthz", "/healthz", ""), "/healthz");
        // An unmatched path is logged as it came.
        assert_eq!(redacted_target("/nowhere/x", "", ""), "/nowhere/x");
    }
}
