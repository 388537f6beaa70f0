//! The OpenAPI document of the gate API, served at `/openapi.json`, and its page for people
//! at `/docs`.

use actix_web::{get, web, HttpResponse};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::gate::events;

#[derive(OpenApi)]
#[openapi(
    info(title = "parkshare gate API", description = "Barrier-gate entry and exit decisions."),
    paths(events::post_event),
    components(schemas(events::GateEventRequest, events::GateDecision)),
    modifiers(&DeviceToken)
)]
pub struct GateApi;

struct DeviceToken;

impl Modify for DeviceToken {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "device_token",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "The gate's device secret, issued when the gate is registered.",
                    ))
                    .build(),
            ),
        );
    }
}

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(openapi_json).service(docs);
}

/// The API page for people: every operation of the OpenAPI document with its description,
/// request and answers, rendered on the server (no script, no outside resource).
#[get("/docs")]
async fn docs() -> HttpResponse {
    let doc = serde_json::to_value(GateApi::openapi()).unwrap_or_default();
    let esc = crate::disclosure::page::escape;
    let text = |v: &serde_json::Value| esc(v.as_str().unwrap_or_default());
    let mut body = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>{title}</title><style>body{{font-family:sans-serif;max-width:60rem;margin:auto;padding:1rem}}code{{background:#eee;padding:0 .2rem}}table{{border-collapse:collapse}}td,th{{border:1px solid #bbb;padding:.2rem .5rem;text-align:left}}</style></head><body><h1>{title}</h1><p>{desc}</p><p>Machine-readable: <a href=\"/openapi.json\">/openapi.json</a>. The staff, owner, visitor, committee and supervisor APIs are described in the README.</p>",
        title = text(&doc["info"]["title"]),
        desc = text(&doc["info"]["description"]),
    );
    if let Some(paths) = doc["paths"].as_object() {
        for (path, item) in paths {
            let Some(ops) = item.as_object() else {
                continue;
            };
            for (method, op) in ops {
                body.push_str(&format!(
                    "<h2><code>{} {}</code></h2><p>{}</p><table><tr><th>status</th><th>meaning</th></tr>",
                    esc(&method.to_uppercase()),
                    esc(path),
                    text(&op["description"]).replace('\n', "<br>")
                ));
                if let Some(responses) = op["responses"].as_object() {
                    for (code, response) in responses {
                        body.push_str(&format!(
                            "<tr><td>{}</td><td>{}</td></tr>",
                            esc(code),
                            text(&response["description"])
                        ));
                    }
                }
                body.push_str("</table>");
            }
        }
    }
    body.push_str("</body></html>");
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .body(body)
}

#[get("/openapi.json")]
async fn openapi_json() -> HttpResponse {
    HttpResponse::Ok().json(GateApi::openapi())
}
