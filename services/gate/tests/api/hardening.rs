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
    let (status, intent) = app
        .send(
            "POST",
            &format!("/v1/public/lots/{}/payment-intents", site.lot),
            "",
            Some(json!({"plate": plate})),
        )
        .await;
    assert_eq!(status, 201, "{intent}");
    intent
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
        logged.contains("/v1/vendor/<redacted>/nosuchvendor"),
        "{logged}"
    );
    assert!(
        logged.contains("/v1/public/disclosure/<redacted>/nosuchpage"),
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

fn url_encode(text: &str) -> String {
    url::form_urlencoded::byte_serialize(text.as_bytes()).collect()
}
