//! Closing periods of common revenue: preview and commit, the split to the maintenance fund and
//! the owners by floor area, idempotent re-close, late events in the next period.

use chrono::{Duration, Utc};
use rust_decimal::Decimal;
use serde_json::{json, Value};

use crate::helpers::{ago, spawn_app, str_of, Site, TestApp};

async fn close(app: &TestApp, site: &Site, body: Value) -> (u16, Value) {
    let path = format!("/v1/admin/compounds/{}/periods/close", site.compound);
    app.staff("POST", &path, Some(body)).await
}

async fn parked_and_paid(app: &TestApp, site: &Site, plate: &str, amount: &str) -> String {
    // Five hours: ¥15 owed, more than any amount paid here (a stay is never credited more).
    let (_, entry) = app.read(&site.entries[0], plate, ago(300)).await;
    let session = str_of(&entry, "session_id").to_owned();
    app.pay(&session, amount).await;
    session
}

async fn owners(app: &TestApp, site: &Site) -> Vec<String> {
    let mut ids = Vec::new();
    for (unit, area) in [("1-101", "89.50"), ("1-102", "120.00"), ("1-103", "60.25")] {
        let owner = app
            .create(
                &format!("/v1/admin/compounds/{}/owners", site.compound),
                json!({"unit": unit, "name": "业主", "floor_area_m2": area}),
            )
            .await;
        ids.push(str_of(&owner, "id").to_owned());
    }
    ids
}

#[tokio::test]
async fn a_close_tops_up_the_fund_and_credits_owners_by_floor_area() {
    let app = spawn_app().await;
    let site = app.site(10).await;
    let policy = json!({"platform_fee_pct": "10", "management_share_pct": "0", "unsold_to": "developer",
                        "visitor_pool_land": "common", "maintenance_fund_pct": "50"});
    app.create(
        &format!("/v1/admin/compounds/{}/revenue-policies", site.compound),
        json!({ "policy": policy }),
    )
    .await;
    let owner_ids = owners(&app, &site).await;
    parked_and_paid(&app, &site, "京A30001", "10.00").await;
    parked_and_paid(&app, &site, "京A30002", "5.01").await;
    let until = Utc::now();

    // The preview answers what the close would do and changes nothing.
    let (status, preview) = close(&app, &site, json!({"until": until, "preview": true})).await;
    assert_eq!(status, 200, "{preview}");
    let summary = &preview["summary"];
    assert_eq!(summary["income"]["visitor_pool"], "15.01", "{preview}");
    // 50 % of 15.01 is 7.505: the fund gets at least that, 7.51; the owners 7.50.
    assert_eq!(
        (
            summary["to_maintenance_fund"].as_str(),
            summary["to_owners"].as_str()
        ),
        (Some("7.51"), Some("7.50"))
    );
    assert_eq!(app.balance("common_revenue").await, Decimal::new(-1501, 2));
    let (_, listed) = app
        .staff(
            "GET",
            &format!("/v1/admin/compounds/{}/periods", site.compound),
            None,
        )
        .await;
    assert_eq!(listed, json!([]));

    let (status, closed) = close(&app, &site, json!({"until": until})).await;
    assert_eq!(status, 201, "{closed}");
    assert_eq!(closed["summary"], preview["summary"]);
    assert_eq!(app.balance("common_revenue").await, Decimal::ZERO);
    assert_eq!(app.balance("maintenance_fund").await, Decimal::new(-751, 2));
    let (_, check) = app.staff("GET", "/v1/admin/ledger/check", None).await;
    assert_eq!(check["ok"], true, "{check}");

    let (_, statements) = app
        .staff(
            "GET",
            &format!("/v1/admin/periods/{}/statements", str_of(&closed, "id")),
            None,
        )
        .await;
    let credited: Vec<Decimal> = statements["statements"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| s["credited"].as_str()?.parse().ok())
        .collect();
    // Units 1-101 (89.50 m²), 1-102 (120.00), 1-103 (60.25): exactly 2.488, 3.336, 1.675; the
    // two fen left over go to the largest remainders (1-101, 1-102).
    assert_eq!(
        credited,
        vec![
            Decimal::new(249, 2),
            Decimal::new(334, 2),
            Decimal::new(167, 2)
        ],
        "{statements}"
    );
    let token = app
        .create(
            &format!("/v1/admin/owners/{}/tokens", owner_ids[1]),
            json!({}),
        )
        .await;
    let (_, mine) = app
        .send("GET", "/v1/owner/statements", str_of(&token, "token"), None)
        .await;
    assert_eq!(mine[0]["credited"], "3.34", "{mine}");

    // Closing the same period again answers it; the past is not reopened; the future waits.
    let (status, again) = close(&app, &site, json!({"until": until})).await;
    assert_eq!((status, &again["id"]), (200, &closed["id"]));
    let (status, body) = close(&app, &site, json!({"until": until - Duration::minutes(1)})).await;
    assert_eq!(
        (status, str_of(&body["error"], "code")),
        (409, "period_already_closed")
    );
    let (status, body) = close(
        &app,
        &site,
        json!({"until": Utc::now() + Duration::hours(1)}),
    )
    .await;
    assert_eq!(
        (status, str_of(&body["error"], "code")),
        (422, "period_not_over")
    );
    // Another firm sees no compound.
    let other = app.new_tenant("别家物业").await;
    let (status, _) = app
        .send(
            "POST",
            &format!("/v1/admin/compounds/{}/periods/close", site.compound),
            &other,
            Some(json!({"until": until})),
        )
        .await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn a_late_refund_lands_in_the_next_period_and_never_rewrites_a_closed_one() {
    let app = spawn_app().await;
    let site = app.site(10).await;
    owners(&app, &site).await;
    let (_, entry) = app.read(&site.entries[0], "京A40001", ago(90)).await;
    let session = str_of(&entry, "session_id").to_owned();
    let payment = app.pay(&session, "6.00").await;
    let (_, exit) = app.read(&site.exit, "京A40001", Utc::now()).await;
    assert_eq!(exit["action"], "open", "{exit}");
    let (status, first) = close(&app, &site, json!({"until": Utc::now()})).await;
    assert_eq!(status, 201, "{first}");
    assert_eq!(first["summary"]["allocated"], "6.00");

    // Refunded after the books closed: it lands in the next period, as a late adjustment.
    let (status, refund) = app
        .staff(
            "POST",
            &format!("/v1/admin/payments/{}/refunds", str_of(&payment, "id")),
            Some(json!({"amount": "2.00", "reason": "计费争议", "idempotency_key": "r1"})),
        )
        .await;
    assert_eq!(status, 201, "{refund}");
    let (status, second) = close(&app, &site, json!({"until": Utc::now()})).await;
    assert_eq!(status, 201, "{second}");
    assert_eq!(
        second["starts_at"], first["ends_at"],
        "periods are contiguous"
    );
    let summary = &second["summary"];
    assert_eq!(summary["late_adjustments"], "-2.00", "{second}");
    // Nothing to allocate; the 2.00 owed is carried into the next period.
    assert_eq!(
        (
            summary["allocated"].as_str(),
            summary["closing_unallocated"].as_str()
        ),
        (Some("0.00"), Some("-2.00"))
    );
    let (_, listed) = app
        .staff(
            "GET",
            &format!("/v1/admin/compounds/{}/periods", site.compound),
            None,
        )
        .await;
    assert_eq!(listed[0]["summary"], first["summary"]);

    // The next income first makes up the carried amount.
    let (_, entry) = app.read(&site.entries[0], "京A40002", ago(120)).await;
    app.pay(str_of(&entry, "session_id"), "5.00").await;
    let (_, third) = close(&app, &site, json!({"until": Utc::now()})).await;
    assert_eq!(third["summary"]["allocated"], "3.00", "{third}");
    // The default policy sends it all to the maintenance fund: 6.00 + 3.00.
    assert_eq!(app.balance("maintenance_fund").await, Decimal::new(-900, 2));
    // The database itself refuses to edit a closed period.
    let edited = sqlx::query("update accounting_periods set label = 'x'")
        .execute(&app.db)
        .await;
    assert!(edited.is_err());
}

#[tokio::test]
async fn a_closed_period_exports_a_journal_that_balances_in_beancount() {
    let app = spawn_app().await;
    let site = app.site(10).await;
    owners(&app, &site).await;
    parked_and_paid(&app, &site, "京A50001", "7.00").await;
    parked_and_paid(&app, &site, "京A50002", "4.00").await;
    let (status, closed) = close(&app, &site, json!({"until": Utc::now()})).await;
    assert_eq!(status, 201, "{closed}");
    let id = str_of(&closed, "id");

    let csv_text = app.journal_csv(id).await;
    let mut rows = csv::Reader::from_reader(csv_text.as_bytes());
    let amounts: Vec<Decimal> = rows
        .records()
        .filter_map(|r| r.ok()?.get(7)?.parse().ok())
        .collect();
    // Two payments of two postings each, and the close (common revenue, fund).
    assert_eq!(amounts.len(), 6, "{csv_text}");
    assert_eq!(amounts.iter().sum::<Decimal>(), Decimal::ZERO);

    let text = app
        .client
        .get(format!(
            "{}/v1/admin/periods/{id}/journal.beancount",
            app.address
        ))
        .bearer_auth(&app.staff_token)
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .text()
        .await
        .unwrap_or_default();
    let path = std::env::temp_dir().join(format!("parkshare-{id}.beancount"));
    std::fs::write(&path, &text).unwrap_or_else(|e| panic!("{e}"));
    // bean-check comes from PyPI's beancount; .ci/run installs it.
    let checked = std::process::Command::new("bean-check")
        .arg(&path)
        .output()
        .unwrap_or_else(|e| panic!("bean-check not runnable ({e}); pip install beancount"));
    let _ = std::fs::remove_file(&path);
    assert!(
        checked.status.success(),
        "bean-check refused the journal:\n{}\n{text}",
        String::from_utf8_lossy(&checked.stderr)
    );
    assert!(text.contains("Liabilities:MaintenanceFund"), "{text}");
    // Another firm cannot read it.
    let other = app.new_tenant("别家物业").await;
    let (status, _) = app
        .send(
            "GET",
            &format!("/v1/admin/periods/{id}/journal.csv"),
            &other,
            None,
        )
        .await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn a_period_of_more_than_ten_million_closes_exactly() {
    let app = spawn_app().await;
    let site = app.site(10).await;
    owners(&app, &site).await;
    let session = parked_and_paid(&app, &site, "京A90001", "3.00").await;
    // A big compound's year: the same payment's postings, four million times over (no one
    // payment may exceed ¥10 million, but the books add up past it).
    let mut tx = app.db.begin().await.unwrap_or_else(|e| panic!("{e}"));
    let id = uuid::Uuid::new_v4();
    sqlx::query(
        "insert into journal_transactions (id, tenant_id, idempotency_key, kind, memo)
         select $1, t.tenant_id, 'big-year', 'payment', 'a year of visitors'
           from journal_transactions t where t.session_id = $2::uuid limit 1",
    )
    .bind(id)
    .bind(&session)
    .execute(&mut *tx)
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    sqlx::query(
        "insert into postings (transaction_id, account_kind, account_holder, amount)
         select $1, p.account_kind, p.account_holder, p.amount * 4000000
           from postings p join journal_transactions t on t.id = p.transaction_id
          where t.session_id = $2::uuid",
    )
    .bind(id)
    .bind(&session)
    .execute(&mut *tx)
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    tx.commit().await.unwrap_or_else(|e| panic!("{e}"));

    // The default policy: everything to the maintenance fund.
    let (status, preview) = close(&app, &site, json!({"until": Utc::now(), "preview": true})).await;
    assert_eq!(status, 200, "{preview}");
    let (status, closed) = close(&app, &site, json!({"until": Utc::now()})).await;
    assert_eq!(status, 201, "{closed}");
    assert_eq!(closed["summary"]["allocated"], "12000003.00", "{closed}");
    assert_eq!(
        app.balance("maintenance_fund").await,
        Decimal::new(-1_200_000_300, 2)
    );
    let (_, check) = app.staff("GET", "/v1/admin/ledger/check", None).await;
    assert_eq!(check["ok"], true, "{check}");
}

#[tokio::test]
async fn the_close_summary_adds_up_line_by_line_with_refunds_and_the_firms_share() {
    let app = spawn_app().await;
    let site = app.site(10).await;
    let policy = json!({"platform_fee_pct": "10", "management_share_pct": "20", "unsold_to": "developer",
                        "visitor_pool_land": "common", "maintenance_fund_pct": "100"});
    app.create(
        &format!("/v1/admin/compounds/{}/revenue-policies", site.compound),
        json!({ "policy": policy }),
    )
    .await;
    let session = parked_and_paid(&app, &site, "京A30101", "10.00").await;
    parked_and_paid(&app, &site, "京A30102", "5.00").await;
    let (_, payments) = app
        .staff(
            "GET",
            &format!("/v1/admin/sessions/{session}/payments"),
            None,
        )
        .await;
    let refunds = format!("/v1/admin/payments/{}/refunds", str_of(&payments[0], "id"));
    let (status, refund) = app
        .staff(
            "POST",
            &refunds,
            Some(json!({"amount": "2.50", "reason": "多收", "idempotency_key": "r-30101"})),
        )
        .await;
    assert_eq!(status, 201, "{refund}");

    let (status, closed) = close(&app, &site, json!({"until": Utc::now()})).await;
    assert_eq!(status, 201, "{closed}");
    let s = &closed["summary"];
    let figure = |path: &[&str]| -> Decimal {
        let mut v = s;
        for key in path {
            v = &v[*key];
        }
        v.as_str()
            .and_then(|t| t.parse().ok())
            .unwrap_or_else(|| panic!("{path:?} in {s}"))
    };
    // Gross: what drivers paid for the pool, before the firm's share and refunds.
    assert_eq!(figure(&["income", "total"]), Decimal::new(1500, 2), "{s}");
    assert_eq!(figure(&["refunds_in_period"]), Decimal::new(250, 2), "{s}");
    // The firm's 20 %, net of its part of the refund: 3.00 − 0.50.
    assert_eq!(figure(&["management_cost"]), Decimal::new(250, 2), "{s}");
    let added_up = figure(&["opening_unallocated"]) + figure(&["income", "total"])
        - figure(&["refunds_in_period"])
        - figure(&["management_cost"])
        - figure(&["allocated"]);
    assert_eq!(added_up, figure(&["closing_unallocated"]), "{s}");
    assert_eq!(figure(&["allocated"]), Decimal::new(1000, 2), "{s}");
    // No negative zero anywhere.
    assert!(!s.to_string().contains("-0.00"), "{s}");
}
