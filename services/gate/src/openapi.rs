//! The OpenAPI document of the gate API, served at `/openapi.json`.

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
    cfg.service(openapi_json);
}

#[get("/openapi.json")]
async fn openapi_json() -> HttpResponse {
    HttpResponse::Ok().json(GateApi::openapi())
}
