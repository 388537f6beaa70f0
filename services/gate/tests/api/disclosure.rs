//! Disclosure: the public page by share link (checked in headless Chromium, screenshots kept),
//! JSON and CSV, the owners' committee's read-only view, supervisors' summaries.

use std::path::PathBuf;

use chrono::Utc;
use rust_decimal::Decimal;
use serde_json::{json, Value};

use crate::helpers::{ago, spawn_app, str_of, Site, TestApp};

/// Two visitors paid 10.00 and 5.01; the period is closed.
async fn closed_period(app: &TestApp) -> (Site, Value) {
    let site = app.site(10).await;
    app.create(
        &format!("/v1/admin/compounds/{}/owners", site.compound),
        json!({"unit": "1-101", "name": "业主", "floor_area_m2": "100.00"}),
    )
    .await;
    for (plate, amount) in [("京A60001", "10.00"), ("京A60002", "5.01")] {
        let (_, entry) = app.read(&site.entries[0], plate, ago(200)).await;
        app.pay(str_of(&entry, "session_id"), amount).await;
    }
    // The compound has been on the platform for six hours, so the period has hours to chart.
    sqlx::query("update compounds set created_at = now() - interval '6 hours' where id = $1::uuid")
        .bind(&site.compound)
        .execute(&app.db)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let path = format!("/v1/admin/compounds/{}/periods/close", site.compound);
    let (status, period) = app
        .staff("POST", &path, Some(json!({"until": Utc::now()})))
        .await;
    assert_eq!(status, 201, "{period}");
    (site, period)
}

fn artifacts() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/test-artifacts");
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{e}"));
    dir
}

/// Runs headless Chromium (Debian's `chromium`; .ci/run installs it) with `args` on `url`.
/// Asynchronously: the service under test shares this runtime and must keep answering.
async fn chromium(args: &[&str], url: &str) -> String {
    let output = tokio::process::Command::new("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
            "--lang=zh-CN",
        ])
        .args(args)
        .arg(url)
        .output()
        .await
        .unwrap_or_else(|e| panic!("chromium is not runnable ({e}); apt-get install chromium"));
    assert!(
        output.status.success(),
        "chromium failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[tokio::test]
async fn anyone_with_the_link_sees_the_disclosure_page_json_and_csv() {
    let app = spawn_app().await;
    let (site, period) = closed_period(&app).await;
    let link = app
        .create(
            &format!("/v1/admin/compounds/{}/disclosure-links", site.compound),
            json!({}),
        )
        .await;
    let path = str_of(&link, "path").to_owned();

    let (status, data) = app
        .send("GET", &format!("{path}/data.json"), "", None)
        .await;
    assert_eq!(status, 200, "{data}");
    let shown = &data["periods"][0];
    assert_eq!(shown["income"]["visitor_pool"], "15.01", "{data}");
    assert_eq!(shown["to_maintenance_fund"], "15.01");
    assert_eq!(
        shown["sessions_by_kind"],
        json!([{"key": "visitor", "count": 2}])
    );
    // Two cars inside for the 3 hours before the close: some hour shows them.
    let busiest = shown["occupancy_by_hour"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|h| h["average"].as_str()?.parse::<f64>().ok())
        .fold(0.0, f64::max);
    assert!(busiest > 0.0, "{shown}");
    assert_eq!(shown["id"], period["id"]);

    let (status, csv_text) = app.send("GET", &format!("{path}/data.csv"), "", None).await;
    assert_eq!(status, 200);
    assert!(
        csv_text
            .as_str()
            .unwrap_or_default()
            .contains("income,visitor_pool,15.01"),
        "{csv_text}"
    );
    let (status, _) = app
        .send("GET", "/v1/public/disclosure/not-a-real-link", "", None)
        .await;
    assert_eq!(status, 404);

    // The page itself, as a phone and a printer see it.
    let url = format!("{}{path}", app.address);
    let dom = chromium(&["--dump-dom"], &url).await;
    for expected in [
        "公共收益及车位使用情况公示",
        "临停车位池收入",
        "¥15.01",
        "转入维修资金",
        "各时段平均在场车辆",
        "临时停车",
    ] {
        assert!(dom.contains(expected), "the page lacks {expected}:\n{dom}");
    }
    assert!(dom.contains("<svg"), "charts are drawn");
    let dir = artifacts();
    for (name, size) in [
        ("disclosure-phone.png", "390,1600"),
        ("disclosure-a4.png", "794,1123"),
    ] {
        let file = dir.join(name);
        let _ = std::fs::remove_file(&file);
        chromium(
            &[
                &format!("--screenshot={}", file.display()),
                &format!("--window-size={size}"),
            ],
            &url,
        )
        .await;
        let bytes = std::fs::metadata(&file).map(|m| m.len()).unwrap_or(0);
        assert!(bytes > 10_000, "{name} is {bytes} bytes");
    }
    let pdf = dir.join("disclosure-a4.pdf");
    chromium(
        &[
            &format!("--print-to-pdf={}", pdf.display()),
            "--no-pdf-header-footer",
        ],
        &url,
    )
    .await;
    assert!(std::fs::metadata(&pdf).map(|m| m.len()).unwrap_or(0) > 5_000);
}

#[tokio::test]
async fn the_committee_reads_its_own_compound_and_cannot_change_anything() {
    let app = spawn_app().await;
    let (site, period) = closed_period(&app).await;
    let (other_site, other_period) = closed_period(&app).await;
    let token = app
        .create(
            &format!("/v1/admin/compounds/{}/committee-tokens", site.compound),
            json!({"label": "第一届业委会"}),
        )
        .await;
    let token = str_of(&token, "token").to_owned();

    let (status, periods) = app.send("GET", "/v1/committee/periods", &token, None).await;
    assert_eq!(
        (status, periods.as_array().map(Vec::len)),
        (200, Some(1)),
        "{periods}"
    );
    let id = str_of(&period, "id");
    let (status, statements) = app
        .send(
            "GET",
            &format!("/v1/committee/periods/{id}/statements"),
            &token,
            None,
        )
        .await;
    assert_eq!(
        (status, statements[0]["credited"].as_str()),
        (200, Some("0.00")),
        "{statements}"
    );
    let (status, journal) = app
        .send(
            "GET",
            &format!("/v1/committee/periods/{id}/journal.csv"),
            &token,
            None,
        )
        .await;
    assert_eq!(status, 200);
    assert!(
        journal
            .as_str()
            .unwrap_or_default()
            .contains("maintenance_fund"),
        "{journal}"
    );

    // Another compound's period is not theirs; staff routes do not know the token.
    let other = str_of(&other_period, "id");
    let (status, _) = app
        .send(
            "GET",
            &format!("/v1/committee/periods/{other}/journal.csv"),
            &token,
            None,
        )
        .await;
    assert_eq!(status, 404);
    let close = format!("/v1/admin/compounds/{}/periods/close", site.compound);
    let (status, _) = app
        .send("POST", &close, &token, Some(json!({"until": Utc::now()})))
        .await;
    assert_eq!(status, 401);
    let _ = other_site;
}

#[tokio::test]
async fn a_supervisor_sees_the_compounds_of_its_area_across_firms() {
    let app = spawn_app().await;
    let (site, _) = closed_period(&app).await;
    let operator = app.settings.operator_token.clone().unwrap_or_default();
    let (status, office) = app
        .send(
            "POST",
            "/v1/operator/supervisors",
            &operator,
            Some(json!({"name": "五华区华山街道办事处", "area": "华山街道"})),
        )
        .await;
    assert_eq!(status, 201, "{office}");
    let office_id = str_of(&office, "id");
    let assign = format!(
        "/v1/operator/supervisors/{office_id}/compounds/{}",
        site.compound
    );
    assert_eq!(app.send("POST", &assign, &operator, None).await.0, 204);
    // A staff token cannot assign.
    assert_eq!(
        app.send("POST", &assign, &app.staff_token, None).await.0,
        401
    );

    let (status, summaries) = app
        .send(
            "GET",
            "/v1/supervisor/compounds",
            str_of(&office, "token"),
            None,
        )
        .await;
    assert_eq!(status, 200, "{summaries}");
    assert_eq!(summaries.as_array().map(Vec::len), Some(1));
    assert_eq!(
        summaries[0]["latest_period"]["income"], "15.01",
        "{summaries}"
    );
    let (_, elsewhere) = app
        .send(
            "POST",
            "/v1/operator/supervisors",
            &operator,
            Some(json!({"name": "别的街道", "area": "别处"})),
        )
        .await;
    let (_, none) = app
        .send(
            "GET",
            "/v1/supervisor/compounds",
            str_of(&elsewhere, "token"),
            None,
        )
        .await;
    assert_eq!(none, json!([]));
}

#[tokio::test]
async fn the_public_account_adds_up_line_by_line() {
    let app = spawn_app().await;
    let site = app.site(10).await;
    // The owners' contract lets the firm keep 20 % of common revenue.
    let (status, body) = app
        .staff(
            "POST",
            &format!("/v1/admin/compounds/{}/revenue-policies", site.compound),
            Some(
                json!({"policy": {"platform_fee_pct": "10", "management_share_pct": "20",
                                   "unsold_to": "developer", "visitor_pool_land": "common"}}),
            ),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let (_, entry) = app.read(&site.entries[0], "京A91001", ago(130)).await;
    let payment = app.pay(str_of(&entry, "session_id"), "9.00").await;
    let (status, refund) = app
        .staff(
            "POST",
            &format!("/v1/admin/payments/{}/refunds", str_of(&payment, "id")),
            Some(json!({"amount": "2.00", "reason": "计费争议", "idempotency_key": "r1"})),
        )
        .await;
    assert_eq!(status, 201, "{refund}");
    let (status, closed) = app
        .staff(
            "POST",
            &format!("/v1/admin/compounds/{}/periods/close", site.compound),
            Some(json!({"until": Utc::now()})),
        )
        .await;
    assert_eq!(status, 201, "{closed}");
    // A camera's offline backlog arrives after the close: an entry an hour before its end.
    let (_, late) = app.read(&site.entries[0], "京A91002", ago(60)).await;
    assert_eq!(late["action"], "open", "{late}");
    let link = app
        .create(
            &format!("/v1/admin/compounds/{}/disclosure-links", site.compound),
            json!({}),
        )
        .await;
    let (_, data) = app
        .send(
            "GET",
            &format!("{}/data.json", str_of(&link, "path")),
            "",
            None,
        )
        .await;
    let p = &data["periods"][0];
    // The published period's use of the spaces is as it was at the close.
    assert_eq!(
        p["sessions_by_kind"],
        json!([{"key": "visitor", "count": 1}]),
        "{p}"
    );
    let figure = |key: &[&str]| -> Decimal {
        let mut v = p;
        for k in key {
            v = &v[*k];
        }
        v.as_str()
            .and_then(|t| t.parse().ok())
            .unwrap_or_else(|| panic!("{key:?}: {p}"))
    };
    // Paid ¥9.00, of which the firm's 20 % is ¥1.80; ¥2.00 refunded, shared alike.
    assert_eq!(figure(&["income", "total"]), Decimal::new(900, 2), "{p}");
    assert_eq!(figure(&["refunds"]), Decimal::new(200, 2), "{p}");
    assert_eq!(figure(&["management_cost"]), Decimal::new(140, 2), "{p}");
    let added_up = figure(&["opening_balance"]) + figure(&["income", "total"])
        - figure(&["refunds"])
        - figure(&["management_cost"])
        - figure(&["to_maintenance_fund"])
        - figure(&["to_owners"]);
    assert_eq!(added_up, figure(&["closing_balance"]), "{p}");
    assert_eq!(
        figure(&["to_maintenance_fund"]),
        Decimal::new(560, 2),
        "{p}"
    );
}
