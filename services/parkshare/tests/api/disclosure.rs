//! Disclosure: the public page by share link (checked in headless Chromium, screenshots kept),
//! JSON and CSV, the owners' committee's read-only view, supervisors' summaries.

use std::path::PathBuf;

use chrono::{DateTime, TimeZone, Utc};
use chrono_tz::Asia::Shanghai;
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
pub(crate) async fn chromium(args: &[&str], url: &str) -> String {
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
    // Nothing was refunded: zero, not "-0.00".
    assert_eq!(shown["refunds"], "0.00", "{shown}");
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
    let operator = app.operator_token();
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

/// Files the compound's revenue policy: a 10 % platform fee, 20 % of common revenue to the
/// firm, unsold spaces and the visitor pool's land as given.
async fn file_policy(app: &TestApp, site: &Site, unsold_to: &str, pool_land: &str) {
    let (status, body) = app
        .staff(
            "POST",
            &format!("/v1/admin/compounds/{}/revenue-policies", site.compound),
            Some(
                json!({"policy": {"platform_fee_pct": "10", "management_share_pct": "20",
                                   "unsold_to": unsold_to, "visitor_pool_land": pool_land}}),
            ),
        )
        .await;
    assert_eq!(status, 201, "{body}");
}

/// The compound's disclosure as anyone with a new link reads it (`data.json`).
async fn disclosed(app: &TestApp, site: &Site) -> Value {
    let link = app
        .create(
            &format!("/v1/admin/compounds/{}/disclosure-links", site.compound),
            json!({}),
        )
        .await;
    let (status, data) = app
        .send(
            "GET",
            &format!("{}/data.json", str_of(&link, "path")),
            "",
            None,
        )
        .await;
    assert_eq!(status, 200, "{data}");
    data
}

#[tokio::test]
async fn the_public_account_adds_up_line_by_line() {
    let app = spawn_app().await;
    let site = app.site(10).await;
    // The owners' contract lets the firm keep 20 % of common revenue.
    file_policy(&app, &site, "developer", "common").await;
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
    let data = disclosed(&app, &site).await;
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

#[tokio::test]
async fn the_firms_own_franchise_income_is_neither_common_income_nor_its_cost() {
    let app = spawn_app().await;
    let site = app.site(10).await;
    // The visitor pool stands on the developer's land, and the firm holds its franchise: what
    // visitors pay is the firm's own income, not the owners'.
    file_policy(&app, &site, "property_firm", "developer").await;
    let (_, entry) = app.read(&site.entries[0], "京A92001", ago(130)).await;
    app.pay(str_of(&entry, "session_id"), "9.00").await;
    assert_eq!(app.balance("franchise_income").await, Decimal::new(-900, 2));
    assert_eq!(app.balance("management_income").await, Decimal::ZERO);
    assert_eq!(app.balance("common_revenue").await, Decimal::ZERO);
    let (status, closed) = app
        .staff(
            "POST",
            &format!("/v1/admin/compounds/{}/periods/close", site.compound),
            Some(json!({"until": app.now()})),
        )
        .await;
    assert_eq!(status, 201, "{closed}");
    let data = disclosed(&app, &site).await;
    let p = &data["periods"][0];
    // Wave 1 showed the ¥9.00 as common income and again as the firm's management cost
    // (issue 26's outside tester, F12).
    assert_eq!(
        (
            p["income"]["total"].as_str(),
            p["management_cost"].as_str(),
            p["closing_balance"].as_str()
        ),
        (Some("0.00"), Some("0.00"), Some("0.00")),
        "{p}"
    );
}

/// `hour:minute` local time in Shanghai, `days` days before today.
fn shanghai(days: i64, hour: u32, minute: u32) -> DateTime<Utc> {
    let today = Utc::now().with_timezone(&Shanghai).date_naive();
    let day = today - chrono::Duration::days(days);
    Shanghai
        .from_local_datetime(&day.and_hms_opt(hour, minute, 0).unwrap_or_default())
        .single()
        .map(|t| t.with_timezone(&Utc))
        .unwrap_or_else(|| panic!("{day} {hour}:{minute}"))
}

/// A unit with a car on a monthly permit (so that it leaves without paying).
async fn permit_holder(app: &TestApp, compound: &str, unit: &str, plate: &str) {
    let owner = app
        .create(
            &format!("/v1/admin/compounds/{compound}/owners"),
            json!({"unit": unit, "name": "业主", "floor_area_m2": "90.00"}),
        )
        .await;
    let vehicle = app
        .create(
            &format!("/v1/admin/compounds/{compound}/vehicles"),
            json!({"plate": plate, "class": "small", "owner_id": owner["id"]}),
        )
        .await;
    let today = Utc::now().date_naive();
    app.create(
        &format!("/v1/admin/compounds/{compound}/permits"),
        json!({"kind": "monthly", "vehicle_id": vehicle["id"],
               "valid_from": today - chrono::Duration::days(10),
               "valid_to": today + chrono::Duration::days(30)}),
    )
    .await;
}

/// The bars of the page's chart of cars inside by hour: `(hour, height)`.
fn bars(html: &str) -> Vec<(u32, Decimal)> {
    html.split(r#"<rect class="bar" data-hour=""#)
        .skip(1)
        .filter_map(|rect| {
            let hour = rect.split('"').next()?.parse().ok()?;
            let height = rect.split(r#"height=""#).nth(1)?.split('"').next()?;
            Some((hour, height.parse().ok()?))
        })
        .collect()
}

#[tokio::test]
async fn the_hour_chart_is_the_time_weighted_average_of_the_recorded_stays() {
    // The stays are days old, read as live: live reads that old count as live here.
    let mut settings = crate::helpers::test_settings();
    settings.live_read_age_max_s = 7 * 86_400;
    let app = crate::helpers::spawn_with(settings).await;
    let site = app.site(10).await;
    let (entry, exit) = (&site.entries[0], &site.exit);
    // A two-day period, local midnight to local midnight: day 1 is four days ago, day 2 three.
    let stays = [
        // A: 08:30–10:00 on day 1.
        (
            "1-101",
            "云A50001",
            shanghai(4, 8, 30),
            Some(shanghai(4, 10, 0)),
        ),
        // E: 09:00–09:20 on day 2.
        (
            "1-102",
            "云A50002",
            shanghai(3, 9, 0),
            Some(shanghai(3, 9, 20)),
        ),
        // B: overnight, 22:00 on day 1 to 07:15 on day 2.
        (
            "1-103",
            "云A50003",
            shanghai(4, 22, 0),
            Some(shanghai(3, 7, 15)),
        ),
        // C: 20:00 on day 2, still inside.
        ("1-104", "云A50004", shanghai(3, 20, 0), None),
        // D: came the evening before the period, left at 00:45 on day 1.
        (
            "1-105",
            "云A50005",
            shanghai(5, 23, 30),
            Some(shanghai(4, 0, 45)),
        ),
    ];
    for (unit, plate, _, _) in &stays {
        permit_holder(&app, &site.compound, unit, plate).await;
    }
    for (_, plate, entered, exited) in &stays {
        let (status, read) = app.read(entry, plate, *entered).await;
        assert_eq!((status, str_of(&read, "action")), (200, "open"), "{read}");
        if let Some(exited) = exited {
            let (status, read) = app.read(exit, plate, *exited).await;
            assert_eq!((status, str_of(&read, "action")), (200, "open"), "{read}");
        }
    }
    sqlx::query("update compounds set created_at = $2 where id = $1::uuid")
        .bind(&site.compound)
        .bind(shanghai(4, 0, 0))
        .execute(&app.db)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let (status, period) = app
        .staff(
            "POST",
            &format!("/v1/admin/compounds/{}/periods/close", site.compound),
            Some(json!({"until": shanghai(2, 0, 0)})),
        )
        .await;
    assert_eq!(status, 201, "{period}");
    // A camera's backlog after the close: a car from 12:00 on day 2, still inside. A
    // published period does not change.
    app.read(entry, "云A50006", shanghai(3, 12, 0)).await;

    let link = app
        .create(
            &format!("/v1/admin/compounds/{}/disclosure-links", site.compound),
            json!({}),
        )
        .await;
    let path = str_of(&link, "path").to_owned();
    let (_, data) = app
        .send("GET", &format!("{path}/data.json"), "", None)
        .await;
    // By hand: car-hours inside during each hour of the two days, divided by the two hours.
    // 00: D 0.75 + B 1 = 1.75 → 0.875 → 0.88; 01–06: B 1 → 0.50; 07: B 0.25 → 0.125 → 0.13;
    // 08: A 0.5 → 0.25; 09: A 1 + E ⅓ → 0.666… → 0.67; 20, 21: C 1 → 0.50;
    // 22, 23: B 1 + C 1 → 1.00; the rest nobody.
    let mut expected = vec!["0.00"; 24];
    expected[0] = "0.88";
    expected[1..=6].fill("0.50");
    expected[7] = "0.13";
    expected[8] = "0.25";
    expected[9] = "0.67";
    (expected[20], expected[21]) = ("0.50", "0.50");
    (expected[22], expected[23]) = ("1.00", "1.00");
    let expected: Vec<Value> = expected
        .iter()
        .enumerate()
        .map(|(hour, average)| json!({"hour": hour, "average": average}))
        .collect();
    assert_eq!(
        data["periods"][0]["occupancy_by_hour"],
        json!(expected),
        "{data}"
    );

    // The chart draws a bar wherever cars were inside, none where nobody was.
    let (status, page) = app.send("GET", &path, "", None).await;
    assert_eq!(status, 200);
    let bars = bars(page.as_str().unwrap_or_default());
    assert_eq!(bars.len(), 24, "{page}");
    for (hour, height) in bars {
        let average = expected[hour as usize]["average"]
            .as_str()
            .unwrap_or_default();
        assert_eq!(
            height > Decimal::ZERO,
            average != "0.00",
            "hour {hour}: height {height}, average {average}"
        );
    }
}

/// A month-like period of a compound with `units` owners (floor areas from 60 to 150 m²):
/// visitors who paid, one refund, permit holders and owners' cars, the firm's 20 % share, half
/// to the fund and half to the owners. Answers the site and the page's path.
async fn realistic_period(app: &TestApp, units: usize) -> (Site, String) {
    let site = app.site(50).await;
    let c = &site.compound;
    let policy = json!({"platform_fee_pct": "10", "management_share_pct": "20", "unsold_to": "developer",
                        "visitor_pool_land": "common", "maintenance_fund_pct": "50"});
    app.create(
        &format!("/v1/admin/compounds/{c}/revenue-policies"),
        json!({ "policy": policy }),
    )
    .await;
    for i in 0..units {
        let unit = format!("{}-{}-{}", i / 40 + 1, i / 10 % 4 + 1, 101 + i % 10);
        let area = Decimal::new(6000 + (i as i64 * 2371) % 9000, 2);
        app.create(
            &format!("/v1/admin/compounds/{c}/owners"),
            json!({"unit": unit, "name": format!("业主{i}"), "floor_area_m2": area.to_string()}),
        )
        .await;
    }
    permit_holder(app, c, "9-9-901", "云A70001").await;
    permit_holder(app, c, "9-9-902", "云A70002").await;
    for plate in ["云A70001", "云A70002"] {
        app.read(&site.entries[1], plate, ago(300)).await;
    }
    let mut payments = Vec::new();
    for (i, amount) in [
        "12.00", "9.00", "6.00", "8.50", "3.00", "6.00", "6.00", "5.50",
    ]
    .iter()
    .enumerate()
    {
        let (_, entry) = app
            .read(
                &site.entries[0],
                &format!("京B7{i:04}"),
                ago(240 - 20 * i as i64),
            )
            .await;
        payments.push(app.pay(str_of(&entry, "session_id"), amount).await);
    }
    let (status, refund) = app
        .staff(
            "POST",
            &format!("/v1/admin/payments/{}/refunds", str_of(&payments[1], "id")),
            Some(json!({"amount": "3.00", "reason": "计费争议", "idempotency_key": format!("r-{c}")})),
        )
        .await;
    assert_eq!(status, 201, "{refund}");
    sqlx::query("update compounds set created_at = now() - interval '2 days' where id = $1::uuid")
        .bind(c)
        .execute(&app.db)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let (status, period) = app
        .staff(
            "POST",
            &format!("/v1/admin/compounds/{c}/periods/close"),
            Some(json!({"until": Utc::now()})),
        )
        .await;
    assert_eq!(status, 201, "{period}");
    assert_eq!(
        period["summary"]["owners"].as_u64(),
        Some(units as u64 + 2),
        "{period}"
    );
    let link = app
        .create(
            &format!("/v1/admin/compounds/{c}/disclosure-links"),
            json!({}),
        )
        .await;
    (site, str_of(&link, "path").to_owned())
}

/// Pages of a PDF: its `/Type /Page` objects (not the `/Pages` tree nodes).
fn pdf_pages(pdf: &[u8]) -> usize {
    let text = String::from_utf8_lossy(pdf);
    text.match_indices("/Type")
        .filter(|(at, _)| {
            let rest = text[at + 5..].trim_start();
            rest.starts_with("/Page") && !rest.starts_with("/Pages")
        })
        .count()
}

/// The PDF object number of `pdf`'s first page: the first kid of its page tree's root.
fn pdf_first_page(pdf: &str) -> Option<&str> {
    let root = pdf
        .match_indices("/Type /Pages")
        .map(|(at, _)| &pdf[at..pdf[at..].find(">>").map_or(pdf.len(), |end| at + end)])
        .find(|node| !node.contains("/Parent"))?;
    root.split("/Kids [").nth(1)?.split(' ').next()
}

/// The PDF object number of the page where the heading that begins with `heading` is, from
/// the document outline Chromium writes for the page's headings (titles in UTF-16BE).
fn pdf_page_of_heading<'a>(pdf: &'a str, heading: &str) -> Option<&'a str> {
    let hex: String = heading
        .encode_utf16()
        .map(|unit| format!("{unit:04X}"))
        .collect();
    let at = pdf.find(&format!("/Title <FEFF{hex}"))?;
    pdf[at..].split("/Dest [").nth(1)?.split(' ').next()
}

/// Prints the page at `url` to `name`.pdf among the test artifacts (with an outline of its
/// headings, to tell on which page each is), and answers its bytes.
async fn print_to_pdf(url: &str, name: &str) -> Vec<u8> {
    let pdf = artifacts().join(format!("{name}.pdf"));
    let _ = std::fs::remove_file(&pdf);
    chromium(
        &[
            &format!("--print-to-pdf={}", pdf.display()),
            "--no-pdf-header-footer",
            "--generate-pdf-document-outline",
        ],
        url,
    )
    .await;
    std::fs::read(&pdf).unwrap_or_else(|e| panic!("{}: {e}", pdf.display()))
}

/// The period's page printed on A4: at most two sheets, and the first holds the account (and
/// the chart after it), not the title alone.
async fn assert_prints_on_two_pages(app: &TestApp, path: &str, name: &str) {
    let pdf = print_to_pdf(&format!("{}{path}", app.address), name).await;
    let pages = pdf_pages(&pdf);
    assert!((1..=2).contains(&pages), "{name}: {pages} pages");
    let text = String::from_utf8_lossy(&pdf);
    let first = pdf_first_page(&text);
    assert!(first.is_some(), "{name}: no page tree");
    for heading in ["公共收益收支", "车位使用情况"] {
        assert_eq!(
            pdf_page_of_heading(&text, heading),
            first,
            "{name}: {heading} is not on the first page"
        );
    }
}

#[tokio::test]
async fn a_period_with_forty_owners_prints_on_two_a4_pages_at_most() {
    let app = spawn_app().await;
    let (_, path) = realistic_period(&app, 40).await;
    let (_, page) = app.send("GET", &path, "", None).await;
    let html = page.as_str().unwrap_or_default();
    std::fs::write(artifacts().join("disclosure-40.html"), html).unwrap_or_else(|e| panic!("{e}"));
    assert!(html.contains("42 户"), "{html}");
    // Every unit's line: 40 owners and the two permit holders.
    assert_eq!(html.matches("<li><span>").count(), 42, "{html}");
    assert_prints_on_two_pages(&app, &path, "disclosure-40").await;
}

#[tokio::test]
async fn past_the_owners_a_page_holds_the_page_links_the_csv_and_still_prints_on_two_pages() {
    let app = spawn_app().await;
    let most = parkshare::disclosure::page::OWNER_LINES_ON_PAGE_MAX;
    // As many units as the page lists (the two permit holders are owners too): all listed,
    // and still two sheets.
    let (_, path) = realistic_period(&app, most - 2).await;
    let (_, page) = app.send("GET", &path, "", None).await;
    let html = page.as_str().unwrap_or_default();
    assert_eq!(html.matches("<li><span>").count(), most, "{html}");
    assert_prints_on_two_pages(&app, &path, "disclosure-most").await;

    // One more: the page gives the count and the total and links the CSV, which has them all.
    let (_, path) = realistic_period(&app, most - 1).await;
    let (_, page) = app.send("GET", &path, "", None).await;
    let html = page.as_str().unwrap_or_default();
    assert_eq!(html.matches("<li><span>").count(), 0, "{html}");
    assert!(html.contains(&format!("{} 户", most + 1)), "{html}");
    let token = path.rsplit('/').next().unwrap_or_default();
    assert!(
        html.contains(&format!(r#"<a href="{token}/data.csv">"#)),
        "{html}"
    );
    let (status, csv_text) = app.send("GET", &format!("{path}/data.csv"), "", None).await;
    assert_eq!(status, 200);
    let csv_text = csv_text.as_str().unwrap_or_default();
    assert_eq!(
        csv_text.matches(",owner_shares,").count(),
        most + 1,
        "{csv_text}"
    );
    assert_prints_on_two_pages(&app, &path, "disclosure-over").await;
}
