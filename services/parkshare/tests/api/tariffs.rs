//! Filing tariffs against the regulated standard, billing by the version in force at entry,
//! quotes and the public price board.

use chrono::{Duration, Utc};
use serde_json::{json, Value};

use crate::helpers::{ago, spawn_app, str_of, Site, TestApp};

fn hourly(price: &str) -> Value {
    json!({"free": {"kind": "none"},
           "small": {"day": {"steps": [{"kind": "units", "unit_min": 60, "price": price, "until_min": null}]},
                     "caps": [{"kind": "rolling24h", "amount": "20.00"}]}})
}

async fn standard(app: &TestApp, site: &Site) -> String {
    let body = json!({"name": "住宅小区公共车位", "document": "示例发改价格〔2026〕1号", "space_kind": "common",
                      "standard": {"small": {"per_hour": {"kind": "max", "amount": "3.00"},
                                             "per_24h": {"kind": "base_with_float", "base": "20.00", "float_pct": "10"},
                                             "monthly": {"kind": "max", "amount": "150.00"}}}});
    app.create(
        &format!("/v1/admin/compounds/{}/price-standards", site.compound),
        body,
    )
    .await["id"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

async fn file(app: &TestApp, site: &Site, tariff: Value, standard: &str) -> (u16, Value) {
    let body =
        json!({"tariff": tariff, "standard_id": standard, "basis": {"kind": "authority_standard"}});
    app.staff(
        "POST",
        &format!("/v1/admin/lots/{}/tariffs", site.lot),
        Some(body),
    )
    .await
}

#[tokio::test]
async fn a_tariff_above_the_standard_is_refused_with_the_offending_stay() {
    let app = spawn_app().await;
    let site = app.site(10).await;
    let standard = standard(&app, &site).await;
    let (status, body) = file(&app, &site, hourly("4.00"), &standard).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (422, Some("tariff_exceeds_cap")),
        "{body}"
    );
    assert_eq!(body["error"]["violation"]["duration_min"], 1);
    assert_eq!(body["error"]["violation"]["fee"], "4.00");
    assert_eq!(body["error"]["violation"]["limit"], "3.00");

    let (status, filed) = file(&app, &site, hourly("3.00"), &standard).await;
    assert_eq!(status, 201, "{filed}");
    assert!(str_of(&filed, "filing_no").starts_with("PS-"), "{filed}");
    assert_eq!(filed["version"], 1);
    // Filed versions are immutable, in the database itself.
    let update = sqlx::query("update tariff_versions set tariff = '{}'::jsonb")
        .execute(&app.db)
        .await;
    assert!(update.is_err(), "a filed tariff must not change");

    let yesterday = Utc::now() - Duration::days(1);
    let body = json!({"tariff": hourly("2.00"), "standard_id": standard, "basis": {"kind": "authority_standard"},
                      "effective_from": yesterday});
    let (status, body) = app
        .staff(
            "POST",
            &format!("/v1/admin/lots/{}/tariffs", site.lot),
            Some(body),
        )
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (422, Some("retroactive_tariff"))
    );
    let body = json!({"tariff": hourly("2.00"), "standard_id": standard,
                      "basis": {"kind": "assembly_resolution", "number": "业主大会决议〔2026〕3号", "date": "2026-10-01"}});
    let (status, v2) = app
        .staff(
            "POST",
            &format!("/v1/admin/lots/{}/tariffs", site.lot),
            Some(body),
        )
        .await;
    assert_eq!(
        (status, v2["version"].as_i64(), v2["basis"].as_str()),
        (201, Some(2), Some("assembly_resolution"))
    );

    let other = app.new_tenant("别家物业").await;
    let (status, _) = app
        .send(
            "GET",
            &format!("/v1/admin/lots/{}/tariffs", site.lot),
            &other,
            None,
        )
        .await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn each_stay_is_billed_by_the_version_in_force_at_its_entry() {
    let app = spawn_app().await;
    let site = app.site(10).await;
    let standard = standard(&app, &site).await;
    let (_, v1) = file(&app, &site, hourly("2.00"), &standard).await;
    app.advance(Duration::milliseconds(1100));
    let (_, a) = app.read(&site.entries[0], "京A11111", app.now()).await;
    assert_eq!(str_of(&a, "action"), "open");
    let (_, v2) = file(&app, &site, hourly("3.00"), &standard).await;
    app.advance(Duration::milliseconds(1100));
    let (_, b) = app.read(&site.entries[0], "京B22222", app.now()).await;

    let leave = app.now() + Duration::minutes(3);
    // Kiosk quote before driving to the exit: the same figure the exit will ask for.
    let (status, quote) = app
        .send(
            "GET",
            &format!(
                "/v1/public/lots/{}/quote?plate=京A11111&at={}",
                site.lot,
                leave.format("%Y-%m-%dT%H:%M:%SZ")
            ),
            "",
            None,
        )
        .await;
    assert_eq!(
        (status, str_of(&quote, "amount_due")),
        (200, "2.00"),
        "{quote}"
    );
    let (_, exit_a) = app.read(&site.exit, "京A11111", leave).await;
    let (_, exit_b) = app.read(&site.exit, "京B22222", leave).await;
    assert_eq!(
        (str_of(&exit_a, "amount_due"), str_of(&exit_a, "filing_no")),
        ("2.00", str_of(&v1, "filing_no"))
    );
    assert_eq!(
        (str_of(&exit_b, "amount_due"), str_of(&exit_b, "filing_no")),
        ("3.00", str_of(&v2, "filing_no"))
    );

    let session = str_of(&b, "session_id");
    let (status, staff_quote) = app
        .staff("GET", &format!("/v1/admin/sessions/{session}/quote"), None)
        .await;
    assert_eq!(
        (status, str_of(&staff_quote, "filing_no")),
        (200, str_of(&v2, "filing_no"))
    );
    let (status, _) = app
        .send(
            "GET",
            &format!("/v1/public/lots/{}/quote?plate=京C33333", site.lot),
            "",
            None,
        )
        .await;
    assert_eq!(status, 404);
    let (status, body) = app
        .send(
            "GET",
            &format!("/v1/public/lots/{}/quote?plate=nonsense", site.lot),
            "",
            None,
        )
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (422, Some("malformed_plate"))
    );
}

#[tokio::test]
async fn the_price_board_shows_the_filed_tariff_in_words() {
    let app = spawn_app().await;
    let site = app.site(10).await;
    let (status, draft) = app
        .send(
            "GET",
            &format!("/v1/public/lots/{}/price-board", site.lot),
            "",
            None,
        )
        .await;
    assert_eq!((status, draft["status"].as_str()), (200, Some("not_filed")));

    let standard = standard(&app, &site).await;
    let (_, filed) = file(&app, &site, hourly("3.00"), &standard).await;
    let (_, board) = app
        .send(
            "GET",
            &format!("/v1/public/lots/{}/price-board", site.lot),
            "",
            None,
        )
        .await;
    assert_eq!(board["status"], "filed");
    assert_eq!(board["filing_no"], filed["filing_no"]);
    assert_eq!(board["standard_document"], "示例发改价格〔2026〕1号");
    let lines: Vec<&str> = board["lines"]
        .as_array()
        .map(|l| l.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    assert!(
        lines.contains(&"小型车：每1小时3.00元；自入场起每24小时最高20.00元"),
        "{lines:?}"
    );

    let response = app
        .client
        .get(format!(
            "{}/v1/public/lots/{}/price-board.html",
            app.address, site.lot
        ))
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(response.headers()["content-type"]
        .to_str()
        .unwrap_or_default()
        .starts_with("text/html"));
    let html = response.text().await.unwrap_or_default();
    assert!(
        html.contains("明码标价") && html.contains(str_of(&filed, "filing_no")),
        "{html}"
    );
    let (status, _) = app
        .send(
            "GET",
            "/v1/public/lots/00000000-0000-0000-0000-000000000000/price-board",
            "",
            None,
        )
        .await;
    assert_eq!(status, 404);
}

/// Issue 21, item 9 (a): a tariff over the 24-hour maximum from day 2 (¥0.90 an hour for 24
/// hours, then ¥3.00 an hour) was filed with `horizon_days: 1`. The field is refused by name,
/// and without it the tariff is refused for a stay of more than a day.
#[tokio::test]
async fn a_filer_chosen_horizon_is_refused_and_cannot_hide_day_two() {
    let app = spawn_app().await;
    let site = app.site(10).await;
    let standard = standard(&app, &site).await;
    let tariff = json!({"free": {"kind": "none"}, "after_window": "continues_at_unit_price",
        "small": {"day": {"steps": [
            {"kind": "units", "unit_min": 60, "price": "0.90", "until_min": 1440},
            {"kind": "units", "unit_min": 60, "price": "3.00", "until_min": null}]}}});
    let body = json!({"tariff": tariff, "standard_id": standard,
                      "basis": {"kind": "authority_standard"}, "horizon_days": 1});
    let (status, body) = app
        .staff(
            "POST",
            &format!("/v1/admin/lots/{}/tariffs", site.lot),
            Some(body),
        )
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (422, Some("horizon_days_removed")),
        "{body}"
    );
    let (status, body) = file(&app, &site, tariff, &standard).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (422, Some("tariff_exceeds_cap")),
        "{body}"
    );
    assert!(
        body["error"]["violation"]["duration_s"].as_i64() > Some(24 * 3600),
        "{body}"
    );
    let (_, versions) = app
        .staff("GET", &format!("/v1/admin/lots/{}/tariffs", site.lot), None)
        .await;
    assert_eq!(versions.as_array().map(Vec::len), Some(0), "{versions}");
}

/// Issue 21, item 9 (b): day ¥1.00 per started hour, night from 00:40 at ¥0.75 per 25
/// minutes. Every quarter-hour entry stays within ¥3.00 an hour, but entering at 00:38 the
/// first hour costs ¥3.25: the filing is refused, naming such an entry.
#[tokio::test]
async fn a_night_rate_from_00_40_is_refused_at_filing() {
    let app = spawn_app().await;
    let site = app.site(10).await;
    let standard = standard(&app, &site).await;
    let mut tariff = hourly("1.00");
    tariff["small"]["night"] = json!({"start": "00:40", "end": "07:00", "cap": null,
        "rate": {"steps": [{"kind": "units", "unit_min": 25, "price": "0.75", "until_min": null}]}});
    let (status, body) = file(&app, &site, tariff, &standard).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (422, Some("tariff_exceeds_cap")),
        "{body}"
    );
    let violation = &body["error"]["violation"];
    assert_eq!(
        (violation["fee"].as_str(), violation["limit"].as_str()),
        (Some("3.25"), Some("3.00")),
        "{body}"
    );
    let entered = violation["entered_local"].as_str().unwrap_or_default();
    assert!(("00:30:00".."00:40:00").contains(&entered), "{body}");
}

/// Issue 21, item 9: the price board says whether rates start over after 24 hours.
#[tokio::test]
async fn the_price_board_says_whether_rates_start_over() {
    let app = spawn_app().await;
    let site = app.site(10).await;
    let standard = standard(&app, &site).await;
    let mut tariff = hourly("3.00");
    tariff["after_window"] = json!("continues_at_unit_price");
    let (status, filed) = file(&app, &site, tariff, &standard).await;
    assert_eq!(status, 201, "{filed}");
    let (_, board) = app
        .send(
            "GET",
            &format!("/v1/public/lots/{}/price-board", site.lot),
            "",
            None,
        )
        .await;
    let lines: Vec<&str> = board["lines"]
        .as_array()
        .map(|l| l.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    assert!(
        lines.contains(&"超过24小时不重新计费，按续时价格连续计费"),
        "{lines:?}"
    );
}

#[tokio::test]
async fn prices_above_one_amounts_bound_are_refused_and_a_huge_bill_never_answers_500() {
    // Found by an outside tester (issue 21, item 4): a tariff at ¥99,999,999,999.99 an hour
    // was filed and advertised, and every exit and intent of its lot then answered 500.
    let app = spawn_app().await;
    let site = app.site(10).await;
    let lots = format!("/v1/admin/compounds/{}/lots", site.compound);
    let (status, body) = app
        .staff(
            "POST",
            &lots,
            Some(json!({"name": "贵", "visitor_capacity": 5,
                        "simple_tariff": {"free_min": 0, "hourly": "10000000.01"}})),
        )
        .await;
    assert_eq!(
        (status, str_of(&body["error"], "code")),
        (422, "invalid_field"),
        "{body}"
    );
    // A full tariff as a lot's draft: every price of it is bounded, caps included.
    let (_, lot) = app
        .staff("GET", &format!("/v1/admin/lots/{}", site.lot), None)
        .await;
    let tariff = lot["tariff"].clone();
    assert!(tariff.pointer("/small/caps/0/amount").is_some(), "{lot}");
    for (path, price) in [
        ("/small/caps/0/amount", "99999999999.99"),
        ("/small/day/steps/0/price", "10000000.01"),
    ] {
        let mut bad = tariff.clone();
        if let Some(slot) = bad.pointer_mut(path) {
            *slot = json!(price);
        }
        let (status, body) = app
            .staff(
                "PATCH",
                &format!("/v1/admin/lots/{}", site.lot),
                Some(json!({ "tariff": bad })),
            )
            .await;
        assert_eq!(status, 422, "{path}: {body}");
        assert!(
            str_of(&body["error"], "message").contains("10,000,000"),
            "{body}"
        );
    }
    let (status, body) = app
        .staff(
            "PATCH",
            &format!("/v1/admin/lots/{}", site.lot),
            Some(json!({ "tariff": tariff })),
        )
        .await;
    assert_eq!(
        status, 200,
        "the same tariff within the bound is taken: {body}"
    );
    let (status, body) = app
        .staff(
            "POST",
            &format!("/v1/admin/compounds/{}/price-standards", site.compound),
            Some(json!({"name": "天价", "document": "无", "space_kind": "common",
                        "standard": {"small": {"per_hour": {"kind": "max", "amount": "99999999999.99"}}}})),
        )
        .await;
    assert_eq!(status, 422, "{body}");

    // At the bound a price is taken; a stay it makes dearer than any payment can be is
    // refused clearly at the exit and for an intent, never 500.
    let lot = app
        .create(
            &lots,
            json!({"name": "顶格", "visitor_capacity": 5,
                   "simple_tariff": {"free_min": 0, "hourly": "10000000.00"}}),
        )
        .await;
    let lot = str_of(&lot, "id").to_owned();
    let entry = app.gate(&lot, "入口", "entry").await;
    let exit = app.gate(&lot, "出口", "exit").await;
    let (status, body) = app.read(&entry, "京A77777", ago(150)).await;
    assert_eq!((status, str_of(&body, "action")), (200, "open"), "{body}");
    let (status, body) = app.read(&exit, "京A77777", Utc::now()).await;
    assert_eq!(
        (status, str_of(&body["error"], "code")),
        (422, "stay_not_billable"),
        "{body}"
    );
    let (status, body) = app
        .send(
            "POST",
            &format!("/v1/public/lots/{lot}/payment-intents"),
            "",
            Some(json!({"plate": "京A77777"})),
        )
        .await;
    assert_eq!(
        (status, str_of(&body["error"], "code")),
        (422, "stay_not_billable"),
        "{body}"
    );
}

#[tokio::test]
async fn every_reader_takes_the_same_version_in_force_at_each_instant() {
    use chrono::SubsecRound;
    use parkshare::store::tariffs;

    let app = spawn_app().await;
    let site = app.site(10).await;
    let standard = standard(&app, &site).await;
    let (status, filed) = file(&app, &site, hourly("2.00"), &standard).await;
    assert_eq!(status, 201, "{filed}");
    let lot: uuid::Uuid = site.lot.parse().unwrap_or_else(|e| panic!("{e}"));
    // Three versions that took effect in the past, written straight into the table (the API
    // refuses a retroactive one): `first` from `t0`; `second` and `third` both from `t1`,
    // `third` filed later, so superseding `second` from its first instant.
    let t1 = (app.now() - Duration::hours(1)).trunc_subsecs(0);
    let t0 = t1 - Duration::hours(1);
    let mut past = Vec::new();
    for (n, from) in [t0, t1, t1].into_iter().enumerate() {
        let id: uuid::Uuid = sqlx::query_scalar(
            "insert into tariff_versions (id, tenant_id, lot_id, version, tariff, standard_id, basis,
                                          resolution_no, resolution_date, filing_no, effective_from)
             select gen_random_uuid(), tenant_id, lot_id,
                    (select max(version) + 1 from tariff_versions where lot_id = $1), tariff,
                    standard_id, basis, resolution_no, resolution_date, filing_no || '-past-' || $2, $3
               from tariff_versions where id = $4
             returning id",
        )
        .bind(lot)
        .bind(n.to_string())
        .bind(from)
        .bind(str_of(&filed, "id").parse::<uuid::Uuid>().unwrap_or_default())
        .fetch_one(&app.db)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
        past.push(id);
    }
    let (first, third) = (past[0], past[2]);
    let micro = Duration::microseconds(1);
    let cases = [
        (t0 - micro, None),
        (t0, Some(first)),
        (t1 - micro, Some(first)),
        (t1, Some(third)),
        (t1 + micro, Some(third)),
    ];
    for (n, (at, expected)) in cases.into_iter().enumerate() {
        // Bookings and offline replays.
        let by_id = tariffs::version_id_in_force(&app.db, lot, at)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        // Exit fees, quotes, the price board and rentals.
        let by_filed = tariffs::filed_in_force(&app.db, lot, at)
            .await
            .unwrap_or_else(|e| panic!("{e}"))
            .map(|f| f.version_id);
        // A live entry (the plate facts): the version its stay is billed by.
        let (status, entry) = app.read(&site.entries[0], &format!("京A5432{n}"), at).await;
        assert_eq!((status, str_of(&entry, "action")), (200, "open"), "{entry}");
        let by_entry: Option<uuid::Uuid> =
            sqlx::query_scalar("select tariff_version_id from sessions where id = $1")
                .bind(
                    str_of(&entry, "session_id")
                        .parse::<uuid::Uuid>()
                        .unwrap_or_default(),
                )
                .fetch_one(&app.db)
                .await
                .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            (by_id, by_filed, by_entry),
            (expected, expected, expected),
            "at {at} (case {n})"
        );
    }
}
