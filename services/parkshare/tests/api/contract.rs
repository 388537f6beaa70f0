//! The API contract (issue 24): the OpenAPI document generated from the handlers is valid
//! OpenAPI, lists exactly the routes the server answers, holds up against a live server under
//! Schemathesis, and a client generated from it compiles.
//!
//! The tools come from PyPI and npm; `.ci/test` installs them (`.ci/lib.sh`,
//! `ensure_contract_tools`), and a test without them fails saying so — it never skips.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{json, Value};

use crate::helpers::{ago, spawn_app, spawn_with_names, str_of, test_settings, TestApp};
use crate::sharing::{share_all_day, sharer};

/// Examples Schemathesis draws per operation in its fuzzing phase: enough to reach each
/// operation's validation paths, few enough that 146 operations fit in a few minutes on two
/// cores.
const EXAMPLES_PER_OPERATION: &str = "3";

/// Operations Schemathesis leaves out, and why: both store an address the service then calls
/// (an owner's webhook, a camera's barrier endpoint). Generated addresses could name any host
/// on the internet, and this test sends traffic to loopback only. Their own tests
/// (`sharing`, `cameras`) cover them against receivers on loopback.
const NOT_FUZZED: [&str; 2] = ["put_webhook", "set_device"];

fn artifacts() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/test-artifacts/contract");
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    dir
}

fn tool(name: &str) -> Command {
    if Command::new(name).arg("--help").output().is_err() {
        panic!("{name} is not installed: run .ci/test, which installs it (.ci/lib.sh ensure_contract_tools)");
    }
    Command::new(name)
}

async fn document(app: &TestApp) -> Value {
    let (status, doc) = app.send("GET", "/openapi.json", "", None).await;
    assert_eq!(status, 200, "{doc}");
    doc
}

/// Every operation of the document: `(method, path, operation)`.
fn operations(doc: &Value) -> Vec<(String, String, Value)> {
    let mut ops = vec![];
    for (path, item) in doc["paths"].as_object().into_iter().flatten() {
        for (method, op) in item.as_object().into_iter().flatten() {
            ops.push((method.clone(), path.clone(), op.clone()));
        }
    }
    ops
}

#[tokio::test]
async fn the_openapi_document_is_valid_openapi() {
    let app = spawn_app().await;
    let doc = document(&app).await;
    let file = artifacts().join("openapi.json");
    std::fs::write(&file, serde_json::to_vec_pretty(&doc).unwrap_or_default())
        .unwrap_or_else(|e| panic!("{e}"));
    let output = tool("openapi-spec-validator")
        .arg(&file)
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    let text = String::from_utf8_lossy(&output.stdout).into_owned()
        + &String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "openapi-spec-validator: {text}");
    println!("openapi-spec-validator: {}", text.trim());
}

/// What an integrator relies on in every operation: a stable id, one audience tag, a
/// summary, each path parameter declared, the error envelope on every error answer, and a
/// security scheme that exists.
#[tokio::test]
async fn every_operation_is_described_for_its_integrators() {
    let app = spawn_app().await;
    let doc = document(&app).await;
    let schemes = doc["components"]["securitySchemes"].clone();
    for scheme in [
        "staff_token",
        "owner_token",
        "committee_token",
        "supervisor_token",
        "device_token",
        "operator_token",
        "booking_token",
    ] {
        assert_eq!(schemes[scheme]["scheme"], "bearer", "{scheme}: {schemes}");
    }
    let mut ids = std::collections::HashSet::new();
    for (method, path, op) in operations(&doc) {
        let what = format!("{method} {path}");
        let id = op["operationId"].as_str().unwrap_or_default();
        assert!(
            !id.is_empty() && ids.insert(id.to_owned()),
            "{what}: operationId {id:?}"
        );
        assert_eq!(op["tags"].as_array().map(Vec::len), Some(1), "{what}");
        // A write outside the gate's and cameras' own parsers refuses a malformed JSON body,
        // body or not (outside tester of issue 24, M1); the simulated provider counts against
        // the public abuse limit (M2).
        let own_parser = path.starts_with("/v1/gate/") || path.starts_with("/v1/vendor/");
        if method != "get" && !own_parser {
            assert!(
                op["responses"]["400"]["x-error-codes"]
                    .as_array()
                    .is_some_and(|c| c.contains(&json!("invalid_body"))),
                "{what}: 400 invalid_body not listed"
            );
        }
        if path.starts_with("/v1/public/") || path.starts_with("/v1/simulated-provider/") {
            assert!(op["responses"]["429"].is_object(), "{what}: 429 not listed");
        }
        assert!(
            op["summary"].as_str().is_some_and(|s| !s.is_empty()),
            "{what}: no summary"
        );
        for name in path.split('{').skip(1).filter_map(|p| p.split('}').next()) {
            let declared = op["parameters"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|p| p["name"] == name && p["in"] == "path" && p["required"] == true);
            assert!(declared, "{what}: path parameter {name} not declared");
        }
        for requirement in op["security"].as_array().into_iter().flatten() {
            for scheme in requirement
                .as_object()
                .into_iter()
                .flatten()
                .map(|(k, _)| k)
            {
                assert!(
                    schemes[scheme].is_object(),
                    "{what}: unknown scheme {scheme}"
                );
            }
        }
        let responses = op["responses"].as_object().cloned().unwrap_or_default();
        assert!(
            responses.keys().any(|s| s.starts_with('2')),
            "{what}: no success answer"
        );
        if !path.starts_with("/v1/vendor/") && path != "/readyz" {
            for (status, response) in &responses {
                if status.starts_with('4') || status.starts_with('5') {
                    assert_eq!(
                        response["content"]["application/json"]["schema"]["$ref"],
                        "#/components/schemas/ErrorBody",
                        "{what} {status}"
                    );
                }
            }
        }
    }
    let codes = doc["components"]["schemas"]["ErrorCode"]["enum"]
        .as_array()
        .map(Vec::len)
        .unwrap_or_default();
    assert_eq!(codes, parkshare::error::ErrorCode::ALL.len());
}

/// The routes actix serves are the document's: each documented operation reaches a handler
/// (whatever it answers, not the "no such route" 404), and there are as many operations as
/// route attributes in the source, so a route added without its annotation is caught (one
/// registered through utoipa-actix-web cannot be: it does not compile unannotated).
#[tokio::test]
async fn the_document_lists_exactly_the_served_routes() {
    let app = spawn_app().await;
    let doc = document(&app).await;
    let ops = operations(&doc);
    for (method, path, _) in &ops {
        let concrete = path
            .replace("{plate}", "%E4%BA%ACA12345")
            .replace("{sheet}", "owners")
            .replace("{token}", "x")
            .split('/')
            .map(|part| match part.starts_with('{') {
                true => "00000000-0000-0000-0000-000000000000",
                false => part,
            })
            .collect::<Vec<_>>()
            .join("/");
        let (status, body) = app.send(&method.to_uppercase(), &concrete, "", None).await;
        let unrouted = status == 404 && body["error"]["message"] == "route not found";
        assert!(!unrouted, "{method} {path} is documented but not served");
    }
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut in_source = vec![];
    let mut dirs = vec![src];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let text = std::fs::read_to_string(&path).unwrap_or_default();
                // A module's unit tests (at its end) may register routes of their own.
                let served = text.split("#[cfg(test)]").next().unwrap_or_default();
                for line in served.lines().map(str::trim_start) {
                    let routed = [
                        "#[get(\"",
                        "#[post(\"",
                        "#[put(\"",
                        "#[delete(\"",
                        "#[patch(\"",
                    ]
                    .iter()
                    .any(|a| line.starts_with(a));
                    let registered = [".route(", "web::resource(", "web::get()", "web::post()"]
                        .iter()
                        .any(|a| line.contains(a));
                    if routed || registered {
                        in_source.push(format!("{}: {line}", path.display()));
                    }
                }
            }
        }
    }
    assert_eq!(
        in_source.len(),
        ops.len(),
        "routes in the source and operations in the document differ: {in_source:#?}"
    );
}

/// Every schema name in the document names one type: utoipa names a schema after its Rust
/// type, so two types of one name (say two `CashBody`s) would leave one operation documented
/// with the other's fields.
#[test]
fn every_schema_name_names_one_type() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut seen: std::collections::HashMap<String, String> = Default::default();
    let mut dirs = vec![src];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let path = entry.path();
            let name = path
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or_default();
            if path.is_dir() && !["target", "tests", "node_modules"].contains(&name) {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let text = std::fs::read_to_string(&path).unwrap_or_default();
                let mut derives = false;
                for line in text.lines().map(str::trim_start) {
                    if line.starts_with("#[") {
                        derives |= line.contains("ToSchema");
                        continue;
                    }
                    if derives && !line.starts_with("///") {
                        let ty = line
                            .split_whitespace()
                            .skip_while(|w| *w != "struct" && *w != "enum")
                            .nth(1)
                            .map(|w| w.split(['<', '{', '(']).next().unwrap_or(w).to_owned());
                        if let Some(ty) = ty {
                            let here = path.display().to_string();
                            if let Some(other) = seen.insert(ty.clone(), here.clone()) {
                                panic!("two schemas named {ty}: {other} and {here}");
                            }
                        }
                    }
                    if !line.starts_with("///") {
                        derives = false;
                    }
                }
            }
        }
    }
    assert!(seen.len() > 100, "found only {} schema types", seen.len());
}

/// Every error code is one some operation answers: its own (`openapi::OPERATION_ERRORS`,
/// read from the handlers' source) or one every operation of a shape answers
/// (`openapi::GENERIC_CODES`). A code nobody answers is a dead variant or a table gone stale.
#[test]
fn every_error_code_is_listed() {
    use parkshare::openapi::{GENERIC_CODES, OPERATION_ERRORS};
    let listed: std::collections::HashSet<_> = OPERATION_ERRORS
        .iter()
        .flat_map(|(_, codes)| codes.iter().map(|(_, code)| *code))
        .chain(GENERIC_CODES.iter().map(|(_, code, _)| *code))
        .collect();
    let missing: Vec<_> = parkshare::error::ErrorCode::ALL
        .iter()
        .filter(|code| !listed.contains(code))
        .collect();
    assert!(missing.is_empty(), "listed by no operation: {missing:?}");
}

/// The table of each operation's codes is what its source gives today: the generator
/// (`.ci/operation_errors.py`) reads the handlers and what they call, and its `--check` fails
/// on any difference, so a code added to (or taken from) a handler changes the document.
#[test]
fn every_operation_lists_the_codes_its_source_answers() {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.ci/operation_errors.py");
    let output = tool("python3")
        .arg(&script)
        .arg("--check")
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        output.status.success(),
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Each error answer names the codes it can carry (`x-error-codes`, and in its description),
/// each a published code, and the table names only operations of the document.
#[tokio::test]
async fn every_error_answer_names_its_codes() {
    let app = spawn_app().await;
    let doc = document(&app).await;
    let known: Vec<&str> = parkshare::error::ErrorCode::ALL
        .iter()
        .map(|c| c.as_str())
        .collect();
    let ops = operations(&doc);
    let mut named = 0;
    for (method, path, op) in &ops {
        for (status, response) in op["responses"].as_object().into_iter().flatten() {
            if !(status.starts_with('4') || status.starts_with('5')) {
                continue;
            }
            for code in response["x-error-codes"].as_array().into_iter().flatten() {
                let code = code.as_str().unwrap_or_default();
                assert!(known.contains(&code), "{method} {path} {status}: {code}");
                let description = response["description"].as_str().unwrap_or_default();
                assert!(
                    description.contains(&format!("`{code}`")),
                    "{method} {path} {status}: {description}"
                );
                named += 1;
            }
        }
    }
    for (id, _) in parkshare::openapi::OPERATION_ERRORS {
        assert!(
            ops.iter().any(|(_, _, op)| op["operationId"] == *id),
            "{id} is in the table but not in the document"
        );
    }
    let book = ops
        .iter()
        .find(|(_, _, op)| op["operationId"] == "book_space")
        .map(|(_, _, op)| op["responses"].clone())
        .unwrap_or_default();
    assert_eq!(
        book["429"]["x-error-codes"],
        json!(["rate_limited", "client_booking_limit"])
    );
    assert!(book["409"]["x-error-codes"]
        .as_array()
        .is_some_and(|codes| codes.contains(&json!("plate_already_booked"))));
    println!("error codes named: {named} over {} operations", ops.len());
}

/// Credentials for every security scheme, and the objects they reach.
struct Credentials {
    staff: String,
    owner: String,
    committee: String,
    supervisor: String,
    device: String,
    operator: String,
    booking: String,
    /// Path parameters Schemathesis is given instead of random ids, so that operations on an
    /// object reach past "not found": `(path regex, parameter, value)`. Revoking and rotating
    /// keep random ids: on these objects they would end the credentials the run uses.
    objects: Vec<(&'static str, &'static str, String)>,
}

async fn credentials(app: &TestApp) -> Credentials {
    let site = app.site(5).await;
    let sharer = sharer(app, &site, "1-101", "B1-001").await;
    share_all_day(app, &sharer).await;
    let committee = app
        .create(
            &format!("/v1/admin/compounds/{}/committee-tokens", site.compound),
            json!({"label": "业委会"}),
        )
        .await;
    let operator = app.operator_token();
    let (status, supervisor) = app
        .send(
            "POST",
            "/v1/operator/supervisors",
            &operator,
            Some(json!({"name": "华山街道办事处", "area": "华山街道"})),
        )
        .await;
    assert_eq!(status, 201, "{supervisor}");
    let assign = format!(
        "/v1/operator/supervisors/{}/compounds/{}",
        str_of(&supervisor, "id"),
        site.compound
    );
    assert_eq!(app.send("POST", &assign, &operator, None).await.0, 204);
    let from = chrono::Utc::now() + chrono::Duration::days(2);
    let (status, booked) = app
        .send(
            "POST",
            &format!("/v1/public/lots/{}/bookings", site.lot),
            "",
            Some(
                json!({"plate": "粤B12345", "from": from, "to": from + chrono::Duration::hours(2)}),
            ),
        )
        .await;
    assert_eq!(status, 201, "{booked}");
    // The exit lane is a Vzenith camera: its push route parses what Schemathesis sends.
    let (status, device) = app
        .staff(
            "PUT",
            &format!("/v1/admin/gates/{}/device", site.exit.id),
            Some(json!({"vendor": "vzenith"})),
        )
        .await;
    assert_eq!(status, 200, "{device}");
    let (status, entered) = app.read(&site.entries[0], "京A12345", ago(30)).await;
    assert_eq!(status, 200, "{entered}");
    let objects = vec![
        (r"^/v1/admin/compounds/\{id\}", "id", site.compound.clone()),
        (r"^/v1/admin/lots/\{id\}", "id", site.lot.clone()),
        (r"^/v1/admin/gates/\{id\}", "id", site.entries[1].id.clone()),
        (r"^/v1/admin/owners/\{id\}", "id", sharer.owner_id.clone()),
        (r"^/v1/admin/spaces/\{id\}", "id", sharer.space_id.clone()),
        (r"^/v1/owner/spaces/\{id\}", "id", sharer.space_id.clone()),
        (
            r"^/v1/admin/sessions/\{id\}",
            "id",
            str_of(&entered, "session_id").to_owned(),
        ),
        (r"^/v1/public/lots/\{lot_id\}", "lot_id", site.lot.clone()),
        (r"^/v1/public/lots/\{lot\}", "lot", site.lot.clone()),
        (
            r"^/v1/public/bookings/\{id\}",
            "id",
            str_of(&booked["booking"], "id").to_owned(),
        ),
        (
            r"^/v1/operator/supervisors/\{id\}",
            "id",
            str_of(&supervisor, "id").to_owned(),
        ),
        (
            r"/compounds/\{compound\}$",
            "compound",
            site.compound.clone(),
        ),
        (r"^/v1/vendor/\{token\}", "token", site.exit.secret.clone()),
    ];
    Credentials {
        objects,
        staff: app.staff_token.clone(),
        owner: sharer.token.clone(),
        committee: str_of(&committee, "token").to_owned(),
        supervisor: str_of(&supervisor, "token").to_owned(),
        device: site.entries[0].secret.clone(),
        operator,
        booking: str_of(&booked, "token").to_owned(),
    }
}

/// Schemathesis against the live server, with a credential for every scheme: no server
/// error, every answer's status, content type and body as documented, refused input refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schemathesis_finds_no_contract_failure() {
    // Generated data may hold a URL (a booking's webhook): the service under test resolves no
    // name and refuses loopback and private addresses, so nothing it is given leaves it.
    let mut settings = test_settings();
    settings.webhook_private_hosts = parkshare::settings::PrivateHosts::Deny;
    let nowhere = parkshare::outbound::StaticResolver::new(Vec::<(&str, std::net::IpAddr)>::new());
    let app = spawn_with_names(settings, std::sync::Arc::new(nowhere)).await;
    let creds = credentials(&app).await;
    let dir = artifacts();
    let config = dir.join("schemathesis.toml");
    let mut toml = String::from("[reports]\ndirectory = \"reports\"\n\n");
    for (scheme, token) in [
        ("staff_token", &creds.staff),
        ("owner_token", &creds.owner),
        ("committee_token", &creds.committee),
        ("supervisor_token", &creds.supervisor),
        ("device_token", &creds.device),
        ("operator_token", &creds.operator),
        ("booking_token", &creds.booking),
    ] {
        toml.push_str(&format!(
            "[auth.openapi.{scheme}]\nbearer = \"{token}\"\n\n"
        ));
    }
    for (path, name, value) in &creds.objects {
        let path = path.replace('\\', "\\\\");
        toml.push_str(&format!(
            "[[operations]]\ninclude-path-regex = \"{path}\"\nexclude-path-regex = \"/(revoke|rotate)$\"\n\
             parameters = {{ \"path.{name}\" = \"{value}\" }}\n\n"
        ));
    }
    std::fs::write(&config, toml).unwrap_or_else(|e| panic!("{e}"));
    let mut command = tool("st");
    command
        .current_dir(&dir)
        .arg("--config-file")
        .arg(&config)
        .arg("run")
        .arg(format!("{}/openapi.json", app.address))
        .args([
            "--checks",
            "not_a_server_error,status_code_conformance,content_type_conformance,\
             response_schema_conformance,negative_data_rejection",
            "--phases",
            "examples,coverage,fuzzing,stateful",
            "--max-examples",
            EXAMPLES_PER_OPERATION,
            // One worker: with two, Schemathesis 4.32 on Python 3.11 failed now and then inside
            // the interpreter (a linecache KeyError, an AST recursion-depth SystemError).
            "--workers",
            "1",
            "--seed",
            "24",
            "--no-color",
            "--report",
            "junit",
            "--request-timeout",
            "30",
        ]);
    for id in NOT_FUZZED {
        command.args(["--exclude-operation-id", id]);
    }
    let output = tokio::task::spawn_blocking(move || command.output())
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .unwrap_or_else(|e| panic!("schemathesis: {e}"));
    let log = String::from_utf8_lossy(&output.stdout).into_owned()
        + &String::from_utf8_lossy(&output.stderr);
    std::fs::write(dir.join("schemathesis.log"), &log).unwrap_or_else(|e| panic!("{e}"));
    // The CI log shows what ran: the summary's operations, phases and test cases.
    let summary: Vec<&str> = log
        .lines()
        .skip_while(|l| !l.contains("SUMMARY"))
        .filter(|l| !l.trim().is_empty())
        .collect();
    println!("schemathesis:\n{}", summary.join("\n"));
    assert!(
        output.status.success(),
        "schemathesis found failures (full log: target/test-artifacts/contract/schemathesis.log):\n{log}"
    );
}

/// A client generated from the document (openapi-typescript, from npm) compiles a call to
/// the gate API and to an admin route, typed by the document: a wrong field name or a
/// missing path parameter would not compile.
#[tokio::test]
async fn a_client_generated_from_the_document_compiles() {
    let app = spawn_app().await;
    let doc = document(&app).await;
    let dir = artifacts().join("client");
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(dir.join("openapi.json"), doc.to_string()).unwrap_or_else(|e| panic!("{e}"));
    let generated = tool("openapi-typescript")
        .current_dir(&dir)
        .args(["openapi.json", "-o", "api.d.ts"])
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        generated.status.success(),
        "openapi-typescript: {}",
        String::from_utf8_lossy(&generated.stderr)
    );
    let global = Command::new("npm")
        .args(["root", "-g"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default();
    std::fs::write(
        dir.join("tsconfig.json"),
        json!({
            "compilerOptions": {
                "strict": true, "noEmit": true, "target": "es2022", "module": "es2022",
                "moduleResolution": "bundler", "lib": ["es2022", "dom"], "skipLibCheck": true,
                "baseUrl": ".",
                "paths": {"openapi-fetch": [format!("{global}/openapi-fetch")]}
            },
            "files": ["client.ts", "wrong.ts"]
        })
        .to_string(),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(dir.join("client.ts"), CLIENT).unwrap_or_else(|e| panic!("{e}"));
    // The same calls with a misspelt field and a missing path parameter: they must not compile.
    std::fs::write(dir.join("wrong.ts"), "export {};\n").unwrap_or_else(|e| panic!("{e}"));
    let compiled = tool("tsc")
        .current_dir(&dir)
        .args(["-p", "tsconfig.json"])
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        compiled.status.success(),
        "the generated client does not compile: {}",
        String::from_utf8_lossy(&compiled.stdout)
    );
    std::fs::write(dir.join("wrong.ts"), WRONG).unwrap_or_else(|e| panic!("{e}"));
    let refused = tool("tsc")
        .current_dir(&dir)
        .args(["-p", "tsconfig.json"])
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    let errors = String::from_utf8_lossy(&refused.stdout);
    assert!(
        !refused.status.success() && errors.contains("wrong.ts") && errors.contains("gate_idd"),
        "a misspelt field compiled: {errors}"
    );
}

const CLIENT: &str = r#"import createClient from "openapi-fetch";
import type { paths } from "./api";

const client = createClient<paths>({ baseUrl: "http://127.0.0.1:8080" });

export async function entry(secret: string, gate: string) {
  const { data, error } = await client.POST("/v1/gate/events", {
    headers: { Authorization: `Bearer ${secret}` },
    body: {
      gate_id: gate,
      plate: "京A12345",
      captured_at: "2026-11-23T08:00:00Z",
      device_event_id: "cam1-0001",
    },
  });
  if (error) return error.error.code;
  return data.action;
}

export async function lots(staff: string, compound: string) {
  const { data, error } = await client.GET("/v1/admin/compounds/{id}/lots", {
    headers: { Authorization: `Bearer ${staff}` },
    params: { path: { id: compound } },
  });
  if (error) return error.error.message;
  return data;
}
"#;

const WRONG: &str = r#"import createClient from "openapi-fetch";
import type { paths } from "./api";

const client = createClient<paths>({ baseUrl: "http://127.0.0.1:8080" });

export async function entry(secret: string, gate: string) {
  await client.POST("/v1/gate/events", {
    headers: { Authorization: `Bearer ${secret}` },
    body: { gate_idd: gate, plate: "京A12345", captured_at: "x", device_event_id: "y" },
  });
}
"#;

#[tokio::test]
async fn a_share_windows_weekdays_are_described_as_one_to_seven() {
    let app = spawn_app().await;
    let doc = document(&app).await;
    let days = &doc["components"]["schemas"]["WindowInput"]["properties"]["days"];
    let item = match &days["items"]["$ref"] {
        Value::String(r) => {
            doc["components"]["schemas"][r.rsplit('/').next().unwrap_or("")].clone()
        }
        _ => days["items"].clone(),
    };
    assert_eq!(
        (&item["minimum"], &item["maximum"], &days["maxItems"]),
        (&json!(1), &json!(7), &json!(7)),
        "{days}"
    );
}
