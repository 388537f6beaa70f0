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

/// `/docs` is Swagger UI served from the binary: headless Chromium, which the page's policy
/// lets load nothing from elsewhere, renders every operation of the document from it.
#[tokio::test]
async fn the_api_page_shows_every_operation_from_the_binary_alone() {
    let app = spawn_app().await;
    let (status, page) = app.send("GET", "/docs/", "", None).await;
    assert_eq!(status, 200);
    let page = page.as_str().unwrap_or_default();
    assert!(page.contains("swagger-ui"), "{page}");
    for line in page.lines() {
        assert!(
            !line.contains("src=\"http") && !line.contains("href=\"http"),
            "an outside resource: {line}"
        );
    }
    let dom = crate::disclosure::chromium(
        &["--virtual-time-budget=15000", "--dump-dom"],
        &format!("{}/docs/", app.address),
    )
    .await;
    for expected in [
        "/v1/gate/events",
        "/v1/admin/compounds/{id}/lots",
        "parkshare API",
    ] {
        assert!(
            dom.contains(expected),
            "/docs does not show {expected}: {dom}"
        );
    }
}
