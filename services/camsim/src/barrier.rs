//! The device side the service calls back to lift a barrier: Hikvision's
//! `PUT /ISAPI/Parking/channels/1/barrierGate` (`<ctrlMode>open</ctrlMode>`) and Dahua's
//! `GET /cgi-bin/trafficSnap.cgi?action=openStrobe`, both behind HTTP digest
//! authentication (RFC 7616, `qop=auth`) as the devices use it. Opens are counted.

use std::sync::{Arc, Mutex};

use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};

/// A running fake barrier endpoint.
pub struct Barrier {
    /// Where the service calls it (the gate's `device_url`).
    pub url: String,
    opens: Arc<Mutex<Vec<String>>>,
    server: actix_web::dev::ServerHandle,
}

impl Barrier {
    /// The opens taken so far: `PUT <path>` or `GET <path?query>`.
    pub fn opens(&self) -> Vec<String> {
        self.opens.lock().map(|o| o.clone()).unwrap_or_default()
    }

    pub async fn stop(&self) {
        self.server.stop(false).await;
    }
}

const CHALLENGE: &str = r#"Digest qop="auth", realm="IP Camera(C1234)", nonce="4e5749314f5459314f5451364e546b324e7a55344e6a633d", stale="FALSE""#;

fn authorised(req: &HttpRequest, body: &str, user: &str, password: &str) -> bool {
    let method = match req.method().as_str() {
        "PUT" => digest_auth::HttpMethod::PUT,
        _ => digest_auth::HttpMethod::GET,
    };
    req.headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| digest_auth::AuthorizationHeader::parse(v).ok())
        .is_some_and(|header| {
            let mut expected = header.clone();
            let context = digest_auth::AuthContext::new_with_method(
                user,
                password,
                header.uri.as_str(),
                (!body.is_empty()).then_some(body.as_bytes()),
                method,
            );
            expected.digest(&context);
            header.username == user
                && header.uri == req.uri().to_string()
                && expected.response == header.response
        })
}

/// Whether the request names a barrier control resource (checked before the login, as a
/// device does: clients such as curl send their first, unauthenticated try without a body).
fn is_barrier(req: &HttpRequest) -> bool {
    match (req.method().as_str(), req.path()) {
        ("PUT", "/ISAPI/Parking/channels/1/barrierGate") => true,
        ("GET", "/cgi-bin/trafficSnap.cgi") => req.query_string().contains("action=openStrobe"),
        _ => false,
    }
}

/// Whether an authenticated barrier request asks to open.
fn is_open(req: &HttpRequest, body: &str) -> bool {
    req.method() == actix_web::http::Method::GET || body.contains("<ctrlMode>open</ctrlMode>")
}

/// Serves a barrier at `listen` (e.g. `127.0.0.1:0`) taking `user`/`password` by digest.
pub async fn serve(listen: &str, user: &str, password: &str) -> anyhow::Result<Barrier> {
    let opens = Arc::new(Mutex::new(Vec::new()));
    let recorded = opens.clone();
    let (user, password) = (user.to_owned(), password.to_owned());
    let listener = std::net::TcpListener::bind(listen)?;
    let url = format!("http://{}", listener.local_addr()?);
    let server = HttpServer::new(move || {
        let (recorded, user, password) = (recorded.clone(), user.clone(), password.clone());
        App::new().default_service(web::to(move |req: HttpRequest, body: String| {
            let (recorded, user, password) = (recorded.clone(), user.clone(), password.clone());
            async move {
                if !is_barrier(&req) {
                    return HttpResponse::NotFound().finish();
                }
                if !authorised(&req, &body, &user, &password) {
                    return HttpResponse::Unauthorized()
                        .insert_header(("WWW-Authenticate", CHALLENGE))
                        .finish();
                }
                if !is_open(&req, &body) {
                    return HttpResponse::BadRequest().finish();
                }
                if let Ok(mut opens) = recorded.lock() {
                    opens.push(format!("{} {}", req.method(), req.uri()));
                }
                match req.method().as_str() {
                    "GET" => HttpResponse::Ok().body("OK"),
                    _ => HttpResponse::Ok().content_type("application/xml").body(
                        "<ResponseStatus version=\"2.0\"><statusCode>1</statusCode>\
                         <statusString>OK</statusString></ResponseStatus>",
                    ),
                }
            }
        }))
    })
    .workers(1)
    // The embedding program decides when to stop (the CLI on Ctrl-C or SIGTERM's default).
    .disable_signals()
    .listen(listener)?
    .run();
    let handle = server.handle();
    tokio::spawn(server);
    Ok(Barrier {
        url,
        opens,
        server: handle,
    })
}
