//! Operations: Prometheus metrics, request ids, the API page. (Readiness: admin.rs.)

use crate::helpers::{ago, spawn_app};

#[tokio::test]
async fn metrics_and_request_ids_are_served() {
    let app = spawn_app().await;
    let site = app.site(10).await;
    let (_, entry) = app.read(&site.entries[0], "京A90001", ago(5)).await;
    assert_eq!(entry["reason"], "visitor_admitted");
    let response = app
        .client
        .get(format!("{}/metrics", app.address))
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(response.headers().contains_key("x-request-id"));
    let text = response.text().await.unwrap_or_default();
    for expected in [
        r#"parkshare_gate_decisions_total{direction="entry",reason="visitor_admitted"}"#,
        r#"parkshare_http_requests_duration_seconds_bucket{endpoint="/v1/gate/events""#,
    ] {
        assert!(
            text.contains(expected),
            "/metrics lacks {expected}:\n{text}"
        );
    }
    // An unknown path is counted under one label, not one per path.
    app.send("GET", "/no/such/page-12345", "", None).await;
    let text = app.metrics().await;
    assert!(
        !text.contains("page-12345"),
        "unmatched paths must be masked"
    );
}

#[tokio::test]
async fn the_api_page_describes_every_operation_for_people() {
    let app = spawn_app().await;
    let (status, page) = app.send("GET", "/docs", "", None).await;
    assert_eq!(status, 200);
    let page = page.as_str().unwrap_or_default();
    assert!(
        page.contains("POST /v1/gate/events") && page.contains("422"),
        "{page}"
    );
}

/// Every route the catalogue lists is served (a request reaches it: whatever it answers, it
/// is not the "no such route" 404), and every route in the source is in the catalogue.
#[tokio::test]
async fn the_openapi_catalogue_lists_exactly_the_served_routes() {
    use parkshare_gate::openapi::ROUTES;
    let app = spawn_app().await;
    for route in ROUTES {
        let path = route
            .path
            .replace("{plate}", "%E4%BA%ACA12345")
            .replace("{sheet}", "owners")
            .replace("{token}", "x")
            .split('/')
            .map(|part| {
                if part.starts_with('{') {
                    "00000000-0000-0000-0000-000000000000"
                } else {
                    part
                }
            })
            .collect::<Vec<_>>()
            .join("/");
        let (status, body) = app
            .send(&route.method.to_uppercase(), &path, "", None)
            .await;
        let unrouted = status == 404 && body["error"]["message"] == "route not found";
        assert!(
            !unrouted,
            "{} {} is listed but not served",
            route.method, route.path
        );
    }
    let mut in_source = 0;
    let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut dirs = vec![src];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let text = std::fs::read_to_string(&path).unwrap_or_default();
                in_source += text
                    .lines()
                    .filter(|l| {
                        let l = l.trim_start();
                        [
                            "#[get(\"",
                            "#[post(\"",
                            "#[put(\"",
                            "#[delete(\"",
                            "#[patch(\"",
                        ]
                        .iter()
                        .any(|a| l.starts_with(a))
                    })
                    .count();
            }
        }
    }
    assert_eq!(
        in_source,
        ROUTES.len(),
        "a route was added without a line in openapi::ROUTES"
    );
}
