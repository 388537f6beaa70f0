//! The OpenAPI document of the service, generated from the handlers' `#[utoipa::path]`
//! annotations as actix registers them (utoipa-actix-web: a route registered through
//! [`ServiceConfig`] is in the document, and a handler without an annotation does not compile
//! there), served at `/openapi.json`, and its page for people at `/docs` (Swagger UI, served
//! from the binary: no outside resource).
//!
//! What every operation shares is added here, once: the bearer security schemes, the error
//! envelope `{"error": {"code", "message"}}` for each error status the operation can answer,
//! and the tags by audience.

use std::sync::OnceLock;

use actix_web::{get, web};
use utoipa::openapi::path::{Operation, ParameterIn};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{ContentBuilder, Ref, RefOr, ResponseBuilder};
use utoipa::{Modify, OpenApi, PartialSchema, ToSchema};
use utoipa_actix_web::service_config::ServiceConfig;
use utoipa_actix_web::AppExt;
use utoipa_swagger_ui::SwaggerUi;

use crate::error::ErrorBody;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "parkshare API",
        description = "Barrier-gate decisions, time-shared parking, regulated tariffs and the \
                       settlement ledger of residential compounds. Every error answer is \
                       `{\"error\": {\"code\", \"message\"}}` with a stable `code` (the \
                       `ErrorCode` schema lists them all); nothing was changed by a request \
                       answered with an error.",
    ),
    tags(
        (name = "gate", description = "Barrier-gate devices: plate reads in, decisions out (device secret, or the vendor's push URL)"),
        (name = "staff", description = "A property firm's staff: the admin API (staff token)"),
        (name = "owner", description = "Owners: their spaces, sharing, earnings, lotteries (owner token)"),
        (name = "visitor", description = "A visitor's booking (the booking's token)"),
        (name = "public", description = "No credential: price boards, quotes, payments, availability, bookings, disclosure links"),
        (name = "committee", description = "The owners' committee's read-only view (committee token)"),
        (name = "supervisor", description = "Supervising authorities (supervisor token)"),
        (name = "operator", description = "The platform operator (operator token)"),
        (name = "provider", description = "Payment providers' notifications and the simulated provider"),
        (name = "operations", description = "Health and readiness"),
    ),
    components(schemas(ErrorBody, crate::error::ErrorCode, AnyJson))
)]
struct ApiDoc;

/// Any JSON value: an answer whose fields the operation's description names.
pub struct AnyJson;

impl PartialSchema for AnyJson {
    fn schema() -> RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::schema::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::SchemaType::AnyValue)
            .description(Some(
                "JSON; its fields are named in the operation's description",
            ))
            .into()
    }
}

impl ToSchema for AnyJson {}

/// The credentials: one bearer scheme each.
pub const CREDENTIALS: [(&str, &str); 7] = [
    (
        "device_token",
        "The gate's device secret, issued when the gate is registered.",
    ),
    (
        "staff_token",
        "A property firm's staff token (tenant-scoped; other firms' objects answer 404).",
    ),
    (
        "owner_token",
        "An owner's token, issued by their property firm.",
    ),
    (
        "booking_token",
        "The visitor's token answered when the booking was made.",
    ),
    (
        "committee_token",
        "The owners' committee's read-only token for one compound.",
    ),
    (
        "supervisor_token",
        "A supervisor's (street office's) token, issued by the operator.",
    ),
    (
        "operator_token",
        "The platform operator's token (PARKSHARE_OPERATOR_TOKEN).",
    ),
];

/// Every route of the API, as the server registers them (`startup::run`) and as the document
/// lists them.
pub fn api(cfg: &mut ServiceConfig) {
    cfg.service(crate::startup::healthz)
        .service(crate::startup::readyz)
        .service(openapi_json)
        .configure(crate::gate::routes)
        .configure(crate::operator::routes)
        .configure(crate::public::routes)
        .configure(crate::settlement::public_routes)
        .configure(crate::sharing::public_routes)
        .configure(crate::disclosure::public_routes)
        .configure(crate::allocation::public_routes)
        .configure(crate::revocation::routes::public_routes)
        .configure(crate::admin::routes);
}

/// The document, generated once.
pub fn document() -> &'static utoipa::openapi::OpenApi {
    static DOCUMENT: OnceLock<utoipa::openapi::OpenApi> = OnceLock::new();
    DOCUMENT.get_or_init(|| {
        let (_, mut doc) = actix_web::App::new()
            .into_utoipa_app()
            .openapi(ApiDoc::openapi())
            .configure(api)
            .split_for_parts();
        Contract.modify(&mut doc);
        doc
    })
}

/// The document as served: utoipa 5 writes a link's fields in snake_case
/// (`operation_id`); OpenAPI's are camelCase (`operationId`), which the validator holds it to.
pub fn document_json() -> &'static serde_json::Value {
    static JSON: OnceLock<serde_json::Value> = OnceLock::new();
    JSON.get_or_init(|| {
        let mut doc = serde_json::to_value(document()).unwrap_or_default();
        for item in doc["paths"]
            .as_object_mut()
            .into_iter()
            .flat_map(|p| p.values_mut())
        {
            for op in item
                .as_object_mut()
                .into_iter()
                .flat_map(|o| o.values_mut())
            {
                let responses = op["responses"].as_object_mut();
                for response in responses.into_iter().flat_map(|r| r.values_mut()) {
                    let links = response.get_mut("links").and_then(|l| l.as_object_mut());
                    for link in links.into_iter().flat_map(|l| l.values_mut()) {
                        let Some(link) = link.as_object_mut() else {
                            continue;
                        };
                        for (from, to) in [
                            ("operation_id", "operationId"),
                            ("operation_ref", "operationRef"),
                            ("request_body", "requestBody"),
                        ] {
                            if let Some(value) = link.remove(from) {
                                link.insert(to.to_owned(), value);
                            }
                        }
                    }
                }
            }
        }
        doc
    })
}

/// This document: every operation of the API.
#[utoipa::path(
    tag = "operations",
    operation_id = "openapi_json",
    responses((status = 200, description = "The OpenAPI document (OpenAPI 3.1)", body = AnyJson))
)]
#[get("/openapi.json")]
pub(crate) async fn openapi_json() -> actix_web::HttpResponse {
    actix_web::HttpResponse::Ok().json(document_json())
}

/// `/docs`: Swagger UI, reading `/openapi.json`.
pub fn routes(cfg: &mut web::ServiceConfig) {
    // No validator badge: Swagger UI would send the document to an outside validator.
    let config = utoipa_swagger_ui::Config::from("/openapi.json").validator_url("none");
    cfg.service(SwaggerUi::new("/docs/{_:.*}").config(config))
        .service(web::redirect("/docs", "/docs/"));
}

/// What every operation shares: security schemes, the error envelope for each error status
/// it can answer, and the version.
struct Contract;

/// The error statuses an operation can answer, by what it takes: a credential (401; 403 for
/// a credential of the wrong kind is 401 too), a path naming something (404), a body or a
/// query (400 unreadable, 422 a value refused), a change (409), a public route's abuse limit
/// (429), and a backing service down (503: nothing was decided, retry).
fn error_statuses(method: &str, path: &str, op: &Operation) -> Vec<(&'static str, &'static str)> {
    let mut statuses = vec![];
    let takes_query = op
        .parameters
        .iter()
        .flatten()
        .any(|p| p.parameter_in == ParameterIn::Query);
    let takes_path = path.contains('{');
    if op.request_body.is_some() || takes_query {
        statuses.push((
            "400",
            "The body or the query is not readable: `invalid_body`, `invalid_query`",
        ));
    }
    if op.security.is_some() {
        statuses.push(("401", "Missing or invalid credentials: `unauthenticated`"));
    }
    if takes_path || op.security.is_some() {
        statuses.push((
            "404",
            "Nothing of that id is yours (or the path does not parse): `not_found`",
        ));
    }
    if method != "get" {
        statuses.push((
            "409",
            "The change conflicts with the current state; nothing was changed",
        ));
    }
    if op.request_body.is_some() || takes_query || takes_path {
        statuses.push((
            "422",
            "A value is refused (its code says which rule); nothing was changed",
        ));
    }
    if path.starts_with("/v1/public/") {
        statuses.push((
            "429",
            "Over the client's abuse limit: retry after `Retry-After` seconds: `rate_limited`",
        ));
    }
    statuses.push((
        "503",
        "Postgres or Redis is unavailable; nothing was decided, retry: `unavailable`",
    ));
    statuses
}

impl Modify for Contract {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        openapi.info.version = env!("CARGO_PKG_VERSION").to_owned();
        let components = openapi.components.get_or_insert_with(Default::default);
        for (name, description) in CREDENTIALS {
            components.add_security_scheme(
                name,
                SecurityScheme::Http(
                    HttpBuilder::new()
                        .scheme(HttpAuthScheme::Bearer)
                        .description(Some(description))
                        .build(),
                ),
            );
        }
        add_links(openapi);
        for (path, item) in openapi.paths.paths.iter_mut() {
            let operations = [
                ("get", &mut item.get),
                ("post", &mut item.post),
                ("put", &mut item.put),
                ("patch", &mut item.patch),
                ("delete", &mut item.delete),
            ];
            for (method, op) in operations {
                let Some(op) = op else { continue };
                if path.starts_with("/v1/vendor/")
                    || ["/healthz", "/readyz", "/openapi.json"].contains(&path.as_str())
                {
                    continue;
                }
                for (status, description) in error_statuses(method, path, op) {
                    if op.responses.responses.contains_key(status) {
                        continue;
                    }
                    op.responses.responses.insert(
                        status.to_owned(),
                        RefOr::T(
                            ResponseBuilder::new()
                                .description(description)
                                .content(
                                    "application/json",
                                    ContentBuilder::new()
                                        .schema(Some(Ref::from_schema_name("ErrorBody")))
                                        .build(),
                                )
                                .build(),
                        ),
                    );
                }
            }
        }
    }
}

/// Links from each create to the read of what it created (a client, and Schemathesis's
/// stateful phase, follow them): `POST …/{collection}` answering 201 with an `id` links to
/// every `GET …/{collection}/{param}`, e.g. `create_lot` to `show_lot`.
fn add_links(openapi: &mut utoipa::openapi::OpenApi) {
    let reads: Vec<(String, String, String)> = openapi
        .paths
        .paths
        .iter()
        .filter_map(|(path, item)| {
            let op = item.get.as_ref()?;
            let (rest, last) = path.rsplit_once('/')?;
            let param = last.strip_prefix('{')?.strip_suffix('}')?;
            let collection = rest.rsplit('/').next()?;
            if rest.contains('{') {
                return None;
            }
            Some((
                collection.to_owned(),
                param.to_owned(),
                op.operation_id.clone()?,
            ))
        })
        .collect();
    for (path, item) in openapi.paths.paths.iter_mut() {
        let Some(create) = item.post.as_mut() else {
            continue;
        };
        let collection = path.rsplit('/').next().unwrap_or_default().to_owned();
        let Some(RefOr::T(created)) = create.responses.responses.get_mut("201") else {
            continue;
        };
        for (read_collection, param, read) in &reads {
            if *read_collection != collection {
                continue;
            }
            let link = utoipa::openapi::link::LinkBuilder::new()
                .operation_id(read.clone())
                .parameter(param.clone(), "$response.body#/id")
                .description(format!("The {collection} item just created"))
                .build();
            created.links.insert(read.clone(), RefOr::T(link));
        }
    }
}
