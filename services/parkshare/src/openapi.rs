//! The OpenAPI document of the service, generated from the handlers' `#[utoipa::path]`
//! annotations as actix registers them (utoipa-actix-web: a route registered through
//! [`ServiceConfig`] is in the document, and a handler without an annotation does not compile
//! there), served at `/openapi.json`, and its page for people at `/docs` (Swagger UI, served
//! from the binary: no outside resource).
//!
//! What every operation shares is added here, once: the bearer security schemes, the error
//! envelope `{"error": {"code", "message"}}` for each error status the operation can answer,
//! with the codes it can carry there (its description and `x-error-codes`: those of the
//! operation's shape, [`GENERIC_CODES`], and its own, [`OPERATION_ERRORS`], generated from the
//! handlers' source by `.ci/operation_errors.py`), and the tags by audience.

use std::sync::OnceLock;

use actix_web::{get, web};
use utoipa::openapi::path::{Operation, ParameterIn};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{ContentBuilder, Ref, RefOr, ResponseBuilder};
use utoipa::{Modify, OpenApi};
use utoipa_actix_web::service_config::ServiceConfig;
use utoipa_actix_web::AppExt;
use utoipa_swagger_ui::SwaggerUi;

use crate::error::{ErrorBody, ErrorCode};

mod errors;
pub use errors::OPERATION_ERRORS;

/// Codes any operation of a shape can answer, whatever its own code: `(status, code, when)`.
/// With [`OPERATION_ERRORS`] (each operation's own), every [`ErrorCode`] is listed somewhere
/// (`contract::every_error_code_is_listed`).
pub const GENERIC_CODES: &[(u16, ErrorCode, &str)] = &[
    (400, ErrorCode::InvalidBody, "body"),
    // A write that takes no body, sent a malformed JSON one (`input::refuse_malformed_json`).
    (400, ErrorCode::InvalidBody, "json"),
    (400, ErrorCode::InvalidQuery, "query"),
    (401, ErrorCode::Unauthenticated, "credential"),
    (404, ErrorCode::NotFound, "path"),
    // Text Postgres cannot store (NUL) that reached a statement.
    (422, ErrorCode::InvalidText, "body"),
    // A string field of a JSON body that is no valid text (`input::Json`).
    (422, ErrorCode::InvalidField, "body"),
    (429, ErrorCode::RateLimited, "public"),
    (503, ErrorCode::Unavailable, "always"),
    // Never answered with its own status: a 5xx is opaque (`internal`, logged), and a camera
    // push whose backend failed answers `backend_unavailable` in the vendor's format.
    (500, ErrorCode::Internal, "always"),
    (503, ErrorCode::BackendUnavailable, "vendor"),
];

/// The codes `operation_id` answers with `status`: the generic ones its shape gives, then
/// its own.
fn codes_of(operation_id: &str, status: u16, shape: &[&str]) -> Vec<ErrorCode> {
    let mut codes: Vec<ErrorCode> = Vec::new();
    let generic = GENERIC_CODES
        .iter()
        .filter(|(s, _, when)| *s == status && shape.contains(when))
        .map(|(_, code, _)| *code);
    let own = OPERATION_ERRORS
        .iter()
        .filter(|(id, _)| *id == operation_id)
        .flat_map(|(_, codes)| codes.iter())
        .filter(|(s, _)| *s == status)
        .map(|(_, code)| *code);
    for code in generic.chain(own) {
        if !codes.contains(&code) {
            codes.push(code);
        }
    }
    codes
}

/// The statuses an operation's own codes add to those its shape gives.
fn own_statuses(operation_id: &str) -> Vec<u16> {
    let mut statuses: Vec<u16> = OPERATION_ERRORS
        .iter()
        .filter(|(id, _)| *id == operation_id)
        .flat_map(|(_, codes)| codes.iter().map(|(s, _)| *s))
        .collect();
    statuses.dedup();
    statuses
}

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

pub use crate::input::AnyJson;

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
    cfg.service(crate::health::healthz)
        .service(crate::health::readyz)
        .service(openapi_json)
        .configure(crate::gate::routes)
        .configure(crate::operator::routes)
        .configure(crate::public::routes)
        .configure(crate::settlement::public_routes)
        .configure(crate::sharing::public_routes)
        .service(
            utoipa_actix_web::scope("/v1/owner")
                .configure(crate::sharing::owner_routes)
                .configure(crate::settlement::close::owner_routes)
                .configure(crate::allocation::owner_routes),
        )
        .configure(crate::disclosure::public_routes)
        .configure(crate::allocation::public_routes)
        .configure(crate::revocation::routes::public_routes)
        .service(
            utoipa_actix_web::scope("/v1/admin")
                .wrap(actix_web::middleware::from_fn(
                    crate::contexts::forget_after_writes,
                ))
                .configure(crate::admin::routes)
                .configure(crate::settlement::admin_routes)
                .configure(crate::sharing::admin_routes)
                .configure(crate::disclosure::admin_routes)
                .configure(crate::allocation::admin_routes)
                .configure(crate::revocation::routes::admin_routes),
        );
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
    let shape = shape_of(method, path, op);
    if ["body", "query", "json"].iter().any(|s| shape.contains(s)) {
        statuses.push(("400", "The body or the query is not readable"));
    }
    if op.security.is_some() {
        statuses.push(("401", "Missing or invalid credentials"));
    }
    if takes_path || op.security.is_some() {
        statuses.push((
            "404",
            "Nothing of that id is yours (or the path does not parse)",
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
    if shape.contains(&"public") {
        statuses.push((
            "429",
            "Over the client's abuse limit: retry after `Retry-After` seconds",
        ));
    }
    statuses.push((
        "503",
        "Postgres or Redis is unavailable; nothing was decided, retry",
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
                if path.starts_with("/v1/vendor/") {
                    // The vendor's own format: the codes are named, the body is not ErrorBody.
                    let id = op.operation_id.clone().unwrap_or_default();
                    for (status, response) in op.responses.responses.iter_mut() {
                        let status: u16 = status.parse().unwrap_or_default();
                        if status >= 400 {
                            name_codes(response, &codes_of(&id, status, &["vendor"]));
                        }
                    }
                    continue;
                }
                if ["/healthz", "/readyz", "/openapi.json"].contains(&path.as_str()) {
                    continue;
                }
                let id = op.operation_id.clone().unwrap_or_default();
                let shape = shape_of(method, path, op);
                let mut statuses: Vec<(String, &str)> = error_statuses(method, path, op)
                    .into_iter()
                    .map(|(status, description)| (status.to_owned(), description))
                    .collect();
                for status in own_statuses(&id) {
                    let status = status.to_string();
                    if !statuses.iter().any(|(s, _)| *s == status) {
                        statuses.push((status, "Refused; nothing was changed"));
                    }
                }
                for (status, description) in statuses {
                    let codes = codes_of(&id, status.parse().unwrap_or_default(), &shape);
                    let response =
                        op.responses
                            .responses
                            .entry(status.clone())
                            .or_insert_with(|| {
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
                                )
                            });
                    name_codes(response, &codes);
                }
            }
        }
    }
}

/// What an operation takes, as [`GENERIC_CODES`] names it.
fn shape_of(method: &str, path: &str, op: &Operation) -> Vec<&'static str> {
    let mut shape = vec!["always"];
    if op.request_body.is_some() {
        shape.push("body");
    }
    // The same rules as the service's: which bodies the JSON check reads, which routes the
    // public abuse limit counts.
    let method = actix_web::http::Method::from_bytes(method.to_uppercase().as_bytes())
        .unwrap_or(actix_web::http::Method::GET);
    if crate::input::checks_json_body(&method, path) {
        shape.push("json");
    }
    if op
        .parameters
        .iter()
        .flatten()
        .any(|p| p.parameter_in == ParameterIn::Query)
    {
        shape.push("query");
    }
    if op.security.is_some() {
        shape.push("credential");
    }
    if path.contains('{') || op.security.is_some() {
        shape.push("path");
    }
    if crate::ratelimit::Route::of(&method, path).is_some() {
        shape.push("public");
    }
    shape
}

/// Names the codes an error answer can carry: in its description, and as `x-error-codes`
/// (a client generator or a test can read them).
fn name_codes(response: &mut RefOr<utoipa::openapi::Response>, codes: &[ErrorCode]) {
    let RefOr::T(response) = response else {
        return;
    };
    if codes.is_empty() {
        return;
    }
    let names: Vec<&str> = codes.iter().map(|c| c.as_str()).collect();
    let listed = names
        .iter()
        .map(|n| format!("`{n}`"))
        .collect::<Vec<_>>()
        .join(", ");
    let said = response.description.trim_end().trim_end_matches('.');
    response.description = format!("{said}. Codes: {listed}.");
    let extensions = response.extensions.get_or_insert_with(Default::default);
    extensions.insert("x-error-codes".to_owned(), serde_json::json!(names));
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
