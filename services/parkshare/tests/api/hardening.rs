//! The service as an attacker meets it (issue 22): the binary's defaults, what its log keeps,
//! text that Postgres cannot store, formulas in exports, loose inputs and the headers of its
//! pages.

use std::path::PathBuf;

use serde_json::{json, Value};

use crate::helpers::{ago, free_port, spawn_app, start_binary, str_of, wait_ready, TestApp};

fn artifact(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("hardening");
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{e}"));
    dir.join(format!("{name}-{}.log", uuid::Uuid::new_v4().simple()))
}

/// An open stay of `plate` on `site` with an intent to pay for it.
async fn intent_for_a_stay(app: &TestApp, site: &crate::helpers::Site, plate: &str) -> Value {
    let (_, entry) = app.read(&site.entries[0], plate, ago(130)).await;
    assert_eq!(str_of(&entry, "action"), "open", "{entry}");
    app.intent(site, plate).await
}

#[tokio::test]
async fn the_binary_on_its_defaults_has_no_simulated_provider() {
    // The registry is set up through an in-process app (which has the simulated provider on,
    // as every test does) sharing the binary's database.
    let app = spawn_app().await;
    let site = app.site(10).await;
    let intent = intent_for_a_stay(&app, &site, "京A12345").await;
    let pay = format!(
        "/v1/simulated-provider/intents/{}/pay",
        str_of(&intent, "intent_id")
    );

    let port = free_port();
    let log = artifact("defaults");
    let mut child = start_binary(&app.settings, port, &[], Some(&log));
    wait_ready(&app.client, port).await;
    let binary = format!("http://127.0.0.1:{port}");
    let response = app
        .client
        .post(format!("{binary}{pay}"))
        .json(&json!({}))
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let status = response.status().as_u16();
    let shown = app
        .client
        .get(format!(
            "{binary}/v1/public/payment-intents/{}",
            str_of(&intent, "intent_id")
        ))
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .json::<Value>()
        .await
        .unwrap_or_default();
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(status, 404, "the simulated provider's pay button answered");
    assert_eq!(shown["pay_url"], Value::Null, "{shown}");
    assert_eq!(shown["status"], "pending", "{shown}");
    let logged = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(
        !logged.contains("SIMULATED PAYMENT PROVIDER IS ON"),
        "{logged}"
    );

    // A demo run turns it on, and says so loudly.
    let port = free_port();
    let log = artifact("demo");
    let mut child = start_binary(&app.settings, port, &[("PARKSHARE_DEMO", "1")], Some(&log));
    wait_ready(&app.client, port).await;
    let status = app
        .client
        .post(format!("http://127.0.0.1:{port}{pay}"))
        .json(&json!({}))
        .send()
        .await
        .map(|r| r.status().as_u16())
        .unwrap_or_default();
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(status, 202);
    let logged = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(
        logged
            .lines()
            .any(|l| l.contains("WARN") && l.contains("SIMULATED PAYMENT PROVIDER IS ON")),
        "{logged}"
    );
}

#[tokio::test]
async fn secrets_and_plates_in_paths_never_reach_the_log() {
    let app = spawn_app().await;
    let site = app.site(10).await;
    let link = app
        .create(
            &format!("/v1/admin/compounds/{}/disclosure-links", site.compound),
            json!({}),
        )
        .await;
    let link_path = str_of(&link, "path").to_owned();
    let link_token = link_path.rsplit('/').next().unwrap_or_default().to_owned();
    let device_secret = site.entries[0].secret.clone();
    let plate = "京A54321";

    let port = free_port();
    let log = artifact("secrets");
    let mut child = start_binary(&app.settings, port, &[], Some(&log));
    wait_ready(&app.client, port).await;
    let binary = format!("http://127.0.0.1:{port}");
    let quote = format!(
        "/v1/public/lots/{}/quote?plate={}",
        site.lot,
        url_encode(plate)
    );
    let mut statuses = Vec::new();
    for (method, path) in [
        // Routes that match, and paths that carry the secret but match no route.
        ("POST", format!("/v1/vendor/{device_secret}/vzenith")),
        ("POST", format!("/v1/vendor/{device_secret}/hikvision/")),
        ("POST", format!("/v1/vendor/{device_secret}/nosuchvendor")),
        ("GET", format!("{link_path}/data.json")),
        ("GET", format!("{link_path}/nosuchpage")),
        ("GET", quote.clone()),
        // Spellings the router reads as the same path, or a camera misconfigured.
        ("POST", format!("/v1/%76endor/{device_secret}/vzenith")),
        ("POST", format!("//v1/vendor/{device_secret}/dahua")),
        (
            "GET",
            format!("/v1/public/%64isclosure/{link_token}/nothing"),
        ),
        // A plate in a path.
        (
            "PUT",
            format!(
                "/v1/admin/compounds/{}/blocklist/{}",
                site.compound,
                url_encode(plate)
            ),
        ),
    ] {
        let request = if method == "POST" {
            app.client.post(format!("{binary}{path}")).body("{}")
        } else {
            app.client.get(format!("{binary}{path}"))
        };
        let status = request.send().await.map(|r| r.status().as_u16());
        statuses.push((path, status.unwrap_or_default()));
    }
    let _ = child.kill();
    let _ = child.wait();
    assert!(statuses.iter().all(|(_, s)| *s > 0), "{statuses:?}");
    let logged = std::fs::read_to_string(&log).unwrap_or_default();
    // The requests were logged: the test would see a leak.
    assert!(
        logged.contains("/v1/vendor/<redacted>/<redacted>"),
        "{logged}"
    );
    assert!(
        logged.contains("/v1/public/disclosure/<redacted>/<redacted>"),
        "{logged}"
    );
    assert!(logged.contains("quote?plate=<redacted>"), "{logged}");
    for secret in [
        device_secret.as_str(),
        link_token.as_str(),
        plate,
        &url_encode(plate),
    ] {
        assert!(
            !logged.contains(secret),
            "the log holds {secret:?}: {}",
            log.display()
        );
    }
}

/// A staff POST of `body` as it is, declared JSON (or no body at all).
async fn post_raw(app: &TestApp, path: &str, body: Option<&'static str>) -> (u16, Value) {
    let mut request = app
        .client
        .post(format!("{}{path}", app.address))
        .bearer_auth(&app.staff_token);
    if let Some(body) = body {
        request = request
            .header("content-type", "application/json")
            .body(body);
    }
    let response = request.send().await.unwrap_or_else(|e| panic!("{e}"));
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or_default())
}

fn url_encode(text: &str) -> String {
    url::form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

/// `(status, error code, message)` of a staff request.
async fn refused(app: &TestApp, method: &str, path: &str, body: Value) -> (u16, String, String) {
    let (status, answer) = app.staff(method, path, Some(body)).await;
    (
        status,
        answer["error"]["code"]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
        answer["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
    )
}

#[tokio::test]
async fn control_characters_in_text_are_refused_naming_the_field_and_change_nothing() {
    let app = spawn_app().await;
    let site = app.site(10).await;
    let compound = &site.compound;
    let before = app.count("select count(*) from owners").await;
    for (method, path, body, field) in [
        (
            "POST",
            "/v1/admin/compounds".to_owned(),
            json!({"name": "a\u{0}b"}),
            "name:",
        ),
        (
            "POST",
            format!("/v1/admin/compounds/{compound}/owners"),
            json!({"unit": "1-101", "name": "张三\u{0}", "floor_area_m2": "90.00"}),
            "name:",
        ),
        (
            "POST",
            format!("/v1/admin/compounds/{compound}/owners"),
            json!({"unit": "1-101", "name": "张三", "floor_area_m2": "90.00", "phone": "138\n0000"}),
            "phone:",
        ),
        (
            "POST",
            format!("/v1/admin/lots/{}/gates", site.lot),
            json!({"name": "东门\u{7}", "direction": "entry"}),
            "name:",
        ),
        (
            "PUT",
            format!("/v1/admin/compounds/{compound}/exempt-vehicles/云A12010"),
            json!({"class": "ambulance", "note": "医院\u{0}"}),
            "note:",
        ),
        (
            "POST",
            format!("/v1/admin/compounds/{compound}/committee-tokens"),
            json!({"label": "委员会\u{1b}[31m"}),
            "label:",
        ),
    ] {
        let (status, code, message) = refused(&app, method, &path, body.clone()).await;
        assert_eq!(
            (status, code.as_str()),
            (422, "invalid_field"),
            "{path} {body}: {message}"
        );
        assert!(message.starts_with(field), "{path}: {message}");
    }
    // Whitespace alone is no name.
    let (status, code, message) = refused(
        &app,
        "POST",
        &format!("/v1/admin/compounds/{compound}/owners"),
        json!({"unit": "1-101", "name": "   ", "floor_area_m2": "90.00"}),
    )
    .await;
    assert_eq!((status, code.as_str()), (422, "invalid_field"), "{message}");
    // The operator's routes too.
    let token = app.operator_token();
    for (path, body) in [
        ("/v1/operator/tenants", json!({"name": "物业\u{0}"})),
        (
            "/v1/operator/supervisors",
            json!({"name": "街道办", "area": "\u{0}"}),
        ),
    ] {
        let (status, answer) = app.send("POST", path, &token, Some(body)).await;
        assert_eq!(
            (status, answer["error"]["code"].as_str()),
            (422, Some("invalid_field")),
            "{path}: {answer}"
        );
    }
    // A CSV cell: the row is named, nothing is imported.
    let sheet = "unit,name,floor_area_m2,phone\n1-101,张三,90.00,\n1-102,李\u{0}四,80.00,\n";
    let response = app
        .client
        .post(format!(
            "{}/v1/admin/compounds/{compound}/imports/owners",
            app.address
        ))
        .bearer_auth(&app.staff_token)
        .header("content-type", "text/csv")
        .body(sheet)
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(response.status().as_u16(), 422);
    let answer: Value = response.json().await.unwrap_or_default();
    assert_eq!(answer["error"]["code"], "import_rejected", "{answer}");
    assert_eq!(answer["error"]["rows"][0]["line"], 3, "{answer}");
    assert_eq!(answer["error"]["rows"][0]["field"], "name", "{answer}");
    assert_eq!(app.count("select count(*) from owners").await, before);
    assert_eq!(app.count("select count(*) from committee_tokens").await, 0);
}

#[tokio::test]
async fn a_formula_typed_into_a_refund_reason_is_text_in_the_exported_journal() {
    let app = spawn_app().await;
    let site = app.site(10).await;
    let (_, entry) = app.read(&site.entries[0], "京A77001", ago(60)).await;
    let payment = app.pay(str_of(&entry, "session_id"), "3.00").await;
    let formula = r#"=HYPERLINK("http://evil.example/x","点此领取")"#;
    let (status, refund) = app
        .staff(
            "POST",
            &format!("/v1/admin/payments/{}/refunds", str_of(&payment, "id")),
            Some(json!({"amount": "1.00", "reason": formula, "idempotency_key": "r1"})),
        )
        .await;
    assert_eq!(status, 201, "{refund}");
    let (status, closed) = app
        .staff(
            "POST",
            &format!("/v1/admin/compounds/{}/periods/close", site.compound),
            Some(json!({"until": chrono::Utc::now()})),
        )
        .await;
    assert_eq!(status, 201, "{closed}");
    let text = app.journal_csv(str_of(&closed, "id")).await;
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    let cells: Vec<String> = reader
        .records()
        .flatten()
        .flat_map(|r| r.iter().map(str::to_owned).collect::<Vec<_>>())
        .collect();
    assert!(
        cells.iter().any(|c| c.contains("HYPERLINK")),
        "the reason is not in the journal: {text}"
    );
    for cell in &cells {
        let formula_like = cell.starts_with(['=', '+', '@', '\t', '\r'])
            || (cell.starts_with('-') && cell.parse::<rust_decimal::Decimal>().is_err());
        assert!(!formula_like, "a cell a spreadsheet would run: {cell:?}");
    }
    // Amounts stay numbers: the refund's reversal is a negative figure.
    assert!(
        cells
            .iter()
            .any(|c| c.starts_with('-') && c.parse::<rust_decimal::Decimal>().is_ok()),
        "{text}"
    );
}

#[tokio::test]
async fn pages_say_what_a_browser_may_load_and_links_ignore_forged_hosts() {
    let app = spawn_app().await;
    let site = app.site(10).await;
    let response = app
        .client
        .get(format!(
            "{}/v1/public/lots/{}/price-board.html",
            app.address, site.lot
        ))
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let headers = response.headers();
    let csp = headers
        .get("content-security-policy")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    assert!(csp.contains("default-src 'none'"), "{csp}");
    assert!(!csp.contains("script-src"), "{csp}");
    assert_eq!(
        headers.get("x-content-type-options").map(|v| v.as_bytes()),
        Some(b"nosniff".as_slice())
    );
    assert_eq!(
        headers.get("referrer-policy").map(|v| v.as_bytes()),
        Some(b"no-referrer".as_slice())
    );

    let link: Value = app
        .client
        .post(format!(
            "{}/v1/admin/compounds/{}/disclosure-links",
            app.address, site.compound
        ))
        .bearer_auth(&app.staff_token)
        .header("x-forwarded-host", "evil.example")
        .header("forwarded", "host=evil.example;proto=https")
        .header("content-type", "application/json")
        .body("{}")
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .json()
        .await
        .unwrap_or_default();
    let url = str_of(&link, "url");
    assert_eq!(
        url,
        format!("{}{}", app.address, str_of(&link, "path")),
        "{link}"
    );
}

#[tokio::test]
async fn loose_inputs_are_refused_and_change_nothing() {
    let app = spawn_app().await;
    let site = app.site(10).await;
    let compound = &site.compound;
    // A price standard with a negative maximum.
    let (status, answer) = app
        .staff(
            "POST",
            &format!("/v1/admin/compounds/{compound}/price-standards"),
            Some(
                json!({"name": "标准", "document": "云发改〔2026〕1号", "space_kind": "common",
                        "standard": {"small": {"per_hour": {"kind": "max", "amount": "-3.00"}}}}),
            ),
        )
        .await;
    assert_eq!(status / 100, 4, "{answer}");
    assert!(answer["error"]["code"].is_string(), "{answer}");
    assert_eq!(app.count("select count(*) from price_standards").await, 0);

    // A malformed optional body is refused, not read as "no body"; so is one sent to a route
    // that takes none, rather than the route acting as if none came.
    let malformed = r#"{"label": 5, "junk": ["#;
    let links = app.count("select count(*) from disclosure_links").await;
    for route in ["committee-tokens", "disclosure-links"] {
        let path = format!("/v1/admin/compounds/{compound}/{route}");
        let (status, answer) = post_raw(&app, &path, Some(malformed)).await;
        assert_eq!(status, 400, "{route}: {answer}");
        assert_eq!(answer["error"]["code"], "invalid_body", "{route}: {answer}");
    }
    assert_eq!(app.count("select count(*) from committee_tokens").await, 0);
    assert_eq!(
        app.count("select count(*) from disclosure_links").await,
        links
    );
    // An empty one is still "no label"; an unknown field is refused, not dropped.
    let path = format!("/v1/admin/compounds/{compound}/committee-tokens");
    let (status, answer) = post_raw(&app, &path, None).await;
    assert_eq!(status, 201, "{answer}");
    let links_path = format!("/v1/admin/compounds/{compound}/disclosure-links");
    let (status, answer) = post_raw(&app, &links_path, Some(r#"{"lable": "东门公告栏"}"#)).await;
    assert_eq!(
        (status, &answer["error"]["code"]),
        (400, &json!("invalid_body")),
        "{answer}"
    );
    let (status, answer) = post_raw(&app, &links_path, Some(r#"{"label": "东门公告栏"}"#)).await;
    assert_eq!(status, 201, "{answer}");
    let (_, listed) = app.staff("GET", &links_path, None).await;
    assert!(
        listed.to_string().contains("东门公告栏"),
        "the link's label is not listed: {listed}"
    );

    // An overlong exemption note is refused, not cut short.
    let (status, answer) = app
        .staff(
            "PUT",
            &format!("/v1/admin/compounds/{compound}/exempt-vehicles/云A12010"),
            Some(json!({"class": "ambulance", "note": "长".repeat(501)})),
        )
        .await;
    assert_eq!(
        (status, answer["error"]["code"].as_str()),
        (422, Some("invalid_field")),
        "{answer}"
    );
    assert_eq!(app.count("select count(*) from exempt_vehicles").await, 0);

    // The authorization scheme is case-insensitive (RFC 7235).
    for scheme in ["bearer", "BEARER", "Bearer"] {
        let status = app
            .client
            .get(format!("{}/v1/admin/compounds", app.address))
            .header("authorization", format!("{scheme} {}", app.staff_token))
            .send()
            .await
            .map(|r| r.status().as_u16())
            .unwrap_or_default();
        assert_eq!(status, 200, "{scheme}");
    }
}

/// The SQLSTATE of what `sql` answers, or "ok".
async fn sqlstate(db: &sqlx::PgPool, sql: &str) -> String {
    match sqlx::query(sql).execute(db).await {
        Ok(_) => "ok".to_owned(),
        Err(sqlx::Error::Database(e)) => e.code().unwrap_or_default().into_owned(),
        Err(e) => format!("{e}"),
    }
}

#[tokio::test]
async fn the_service_role_can_run_the_service_but_never_rewrite_the_ledger() {
    use crate::helpers::{test_settings, PG_BASE};
    // A login role of our own: roles are the cluster's, so it is named for this test only.
    let role = format!(
        "ps_test_app_{}",
        &uuid::Uuid::new_v4().simple().to_string()[..12]
    );
    let cluster = sqlx::PgPool::connect(&format!("{PG_BASE}/postgres"))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    sqlx::query(&format!("create role {role} login"))
        .execute(&cluster)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    // The owner migrates and grants; the service connects as the role.
    let mut settings = test_settings();
    let owner_url = settings.database_url.clone();
    settings.database_url = owner_url.replacen("postgres@", &format!("{role}@"), 1);
    settings.migrate_database_url = Some(owner_url.clone());
    let app = crate::helpers::spawn_with(settings).await;
    // A replica started after the migration, with the service's role only, finds the schema
    // current and needs no owner's rights.
    let mut replica = app.settings.clone();
    replica.migrate_database_url = None;
    let state = parkshare::startup::connect(&replica)
        .await
        .unwrap_or_else(|e| panic!("a replica as the service's role: {e:?}"));
    state.db.close().await;

    // Everything a day at the gate and the booth does works with those rights.
    let site = app.site(10).await;
    let (_, entry) = app.read(&site.entries[0], "京A77001", ago(130)).await;
    assert_eq!(entry["action"], "open", "{entry}");
    let paid = app.pay(str_of(&entry, "session_id"), "9.00").await;
    assert!(paid["id"].is_string(), "{paid}");
    let (_, exit) = app.read(&site.exit, "京A77001", ago(0)).await;
    assert_eq!(exit["action"], "open", "{exit}");
    let path = format!("/v1/admin/compounds/{}/periods/close", site.compound);
    let (status, closed) = app
        .staff("POST", &path, Some(json!({"until": chrono::Utc::now()})))
        .await;
    assert_eq!(status, 201, "{closed}");
    let (status, check) = app.staff("GET", "/v1/admin/ledger/check", None).await;
    assert_eq!((status, &check["ok"]), (200, &json!(true)), "{check}");

    // What a stolen service credential cannot do: 42501 is insufficient_privilege.
    let attempts = [
        "truncate postings cascade",
        "truncate journal_transactions cascade",
        "alter table postings disable trigger all",
        "alter table journal_transactions disable trigger journal_transactions_append_only",
        "drop trigger postings_append_only on postings",
        "update postings set amount = amount * 2",
        "delete from journal_transactions",
        "delete from accounting_periods",
        "delete from _sqlx_migrations",
    ];
    for sql in attempts {
        assert_eq!(sqlstate(&app.db, sql).await, "42501", "{sql}");
    }
    let owner = sqlx::PgPool::connect(&owner_url)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let postings: i64 = sqlx::query_scalar("select count(*) from postings")
        .fetch_one(&owner)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(postings >= 4, "{postings}");

    // The role's grants go with the test database; then the role itself.
    app.db.close().await;
    let _ = sqlx::query(&format!("drop owned by {role}"))
        .execute(&owner)
        .await;
    owner.close().await;
    let _ = sqlx::query(&format!("drop role {role}"))
        .execute(&cluster)
        .await;
}
