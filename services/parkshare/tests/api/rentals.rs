//! Rentals (月租): applied for, priced at the filed monthly price, paid through the provider or
//! in cash, credited by the kind of space, admitted at the gate through the term and its grace,
//! renewed, reminded, ended early with a refund, and owners first.

use std::time::Duration as StdDuration;

use chrono::{Duration, NaiveDate, Utc};
use chrono_tz::Asia::Shanghai;
use rust_decimal::Decimal;
use serde_json::{json, Value};

use crate::helpers::{ago, spawn_app, str_of, Site, TestApp};

fn dec(text: &str) -> Decimal {
    text.parse().unwrap_or_else(|e| panic!("{text}: {e}"))
}

fn today() -> NaiveDate {
    Utc::now().with_timezone(&Shanghai).date_naive()
}

/// Files the lot's tariff with monthly prices (small ¥150, large ¥200) and a 10 % owner
/// discount, against a standard whose monthly maximum is ¥200; answers the standard's id.
pub(crate) async fn file_monthly_tariff(app: &TestApp, site: &Site) -> String {
    let standard = json!({"name": "住宅小区车位", "document": "示例发改价格〔2026〕2号", "space_kind": "common",
        "standard": {"small": {"per_hour": {"kind": "max", "amount": "3.00"},
                               "per_24h": {"kind": "max", "amount": "20.00"},
                               "monthly": {"kind": "max", "amount": "200.00"}}}});
    let standard = app
        .create(
            &format!("/v1/admin/compounds/{}/price-standards", site.compound),
            standard,
        )
        .await;
    let tariff = json!({"free": {"kind": "none"},
        "small": {"day": {"steps": [{"kind": "units", "unit_min": 60, "price": "3.00", "until_min": null}]},
                  "caps": [{"kind": "rolling24h", "amount": "20.00"}]},
        "owner_discount_pct": "10",
        "monthly": {"small": "150.00", "large": "200.00"}});
    let body = json!({"tariff": tariff, "standard_id": standard["id"], "basis": {"kind": "authority_standard"}});
    let (status, filed) = app
        .staff(
            "POST",
            &format!("/v1/admin/lots/{}/tariffs", site.lot),
            Some(body),
        )
        .await;
    assert_eq!(status, 201, "{filed}");
    str_of(&standard, "id").to_owned()
}

/// Reserves `places` of the site's lot for pool passes (none are sold until the office does).
async fn reserve_pass_places(app: &TestApp, site: &Site, places: i32) {
    let (status, lot) = app
        .staff(
            "PATCH",
            &format!("/v1/admin/lots/{}", site.lot),
            Some(json!({"pass_places": places})),
        )
        .await;
    assert_eq!(
        (status, lot["pass_places"].as_i64()),
        (200, Some(i64::from(places))),
        "{lot}"
    );
}

async fn space(app: &TestApp, site: &Site, code: &str, kind: &str, owner: Option<&str>) -> String {
    let mut body = json!({"code": code, "kind": kind});
    if let Some(owner) = owner {
        body["owner_id"] = json!(owner);
    }
    let space = app
        .create(&format!("/v1/admin/lots/{}/spaces", site.lot), body)
        .await;
    str_of(&space, "id").to_owned()
}

/// An owner with a token and a registered small car: `(owner_id, token)`.
async fn owner_with_car(app: &TestApp, site: &Site, unit: &str, plate: &str) -> (String, String) {
    let (owner, token) = app.owner_with_token(&site.compound, unit).await;
    app.create(
        &format!("/v1/admin/compounds/{}/vehicles", site.compound),
        json!({"plate": plate, "class": "small", "owner_id": owner}),
    )
    .await;
    (owner, token)
}

async fn owner_applies(app: &TestApp, token: &str, body: Value) -> (u16, Value) {
    app.send("POST", "/v1/owner/rentals", token, Some(body))
        .await
}

async fn rental(app: &TestApp, id: &str) -> Value {
    let (status, body) = app
        .staff("GET", &format!("/v1/admin/rentals/{id}"), None)
        .await;
    assert_eq!(status, 200, "{body}");
    body
}

/// Pays a held term through the simulated provider (`copies` notifications of one payment)
/// and waits until it is paid.
async fn pay_online(app: &TestApp, applied: &Value, copies: u32) {
    let pay_url = str_of(&applied["payment_intent"], "pay_url");
    let (status, body) = app
        .send("POST", pay_url, "", Some(json!({"copies": copies})))
        .await;
    assert_eq!(status, 202, "{body}");
    let id = str_of(&applied["rental"], "id");
    for _ in 0..100 {
        if rental(app, id).await["status"] == "paid" {
            return;
        }
        tokio::time::sleep(StdDuration::from_millis(50)).await;
    }
    panic!("rental not paid after the provider's notification: {applied}");
}

async fn pay_cash(app: &TestApp, applied: &Value) -> Value {
    let id = str_of(&applied["rental"], "id");
    let (status, body) = app
        .staff(
            "POST",
            &format!("/v1/admin/rentals/{id}/payments"),
            Some(
                json!({"amount": applied["rental"]["price"], "shift": "早班 王芳",
                        "idempotency_key": format!("cash-{id}")}),
            ),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    body
}

/// Moves a term as if it had been bought earlier: it now runs `[from, to]` (local dates).
async fn move_term(app: &TestApp, id: &str, from: NaiveDate, to: NaiveDate) {
    sqlx::query("update rentals set during = daterange($2, $3 + 1) where id = $1::uuid")
        .bind(id)
        .bind(from)
        .bind(to)
        .execute(&app.db)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
}

async fn staff_rents_to_non_owner(
    app: &TestApp,
    site: &Site,
    target: Value,
    plate: &str,
) -> (u16, Value) {
    let mut body = json!({"plate": plate, "months": 1,
                          "renter": {"name": "租户 张三", "phone": "13800000000"}});
    if let (Some(b), Some(t)) = (body.as_object_mut(), target.as_object()) {
        b.extend(t.clone());
    }
    app.staff(
        "POST",
        &format!("/v1/admin/compounds/{}/rentals", site.compound),
        Some(body),
    )
    .await
}

#[tokio::test]
async fn an_owner_rents_a_common_space_at_the_filed_price_less_the_owner_discount() {
    let app = spawn_app().await;
    let site = app.site(5).await;
    file_monthly_tariff(&app, &site).await;
    let policy = json!({"policy": {"platform_fee_pct": "10", "management_share_pct": "20",
                                   "unsold_to": "developer", "visitor_pool_land": "common"}});
    let (status, _) = app
        .staff(
            "POST",
            &format!("/v1/admin/compounds/{}/revenue-policies", site.compound),
            Some(policy),
        )
        .await;
    assert_eq!(status, 201);
    let common = space(&app, &site, "C-001", "common", None).await;
    let (_, token) = owner_with_car(&app, &site, "1-1-101", "云A10001").await;

    let (status, applied) = owner_applies(
        &app,
        &token,
        json!({"space_id": common, "plate": "云A10001", "months": 2}),
    )
    .await;
    assert_eq!(status, 201, "{applied}");
    // ¥150 a month, 10 % off for an owner: ¥135 × 2; the term is two whole months from today.
    let term = &applied["rental"];
    assert_eq!(
        (
            term["price"].as_str(),
            term["monthly_price"].as_str(),
            term["status"].as_str()
        ),
        (Some("270.00"), Some("150.00"), Some("awaiting_payment"))
    );
    let starts = today();
    let ends = starts
        .checked_add_months(chrono::Months::new(2))
        .and_then(|d| d.pred_opt())
        .unwrap_or_default();
    assert_eq!(term["starts_on"], json!(starts));
    assert_eq!(term["ends_on"], json!(ends));
    assert_eq!(applied["payment_intent"]["amount"], "270.00");
    assert!(applied["payment_intent"]["filing_no"]
        .as_str()
        .is_some_and(|f| f.starts_with("PS-")));

    // The provider notifies twice for one payment: credited once.
    pay_online(&app, &applied, 2).await;
    let paid = rental(&app, str_of(term, "id")).await;
    assert_eq!(
        (
            paid["standing"].as_str(),
            paid["paid"].as_str(),
            paid["payment_method"].as_str()
        ),
        (Some("active"), Some("270.00"), Some("provider"))
    );
    // Common-area space: common revenue less the firm's 20 % share.
    assert_eq!(app.balance("common_revenue").await, dec("-216.00"));
    assert_eq!(app.balance("management_income").await, dec("-54.00"));
    assert_eq!(app.balance("provider_clearing").await, dec("270.00"));

    // A second charge of the paid intent is owed back to the renter, naming the plate.
    let pay_url = str_of(&applied["payment_intent"], "pay_url");
    let (status, _) = app.send("POST", pay_url, "", None).await;
    assert_eq!(status, 202);
    let mut owed = Value::Null;
    for _ in 0..100 {
        let (_, list) = app.staff("GET", "/v1/admin/refunds-owed", None).await;
        owed = list["items"][0].clone();
        if owed.is_object() {
            break;
        }
        tokio::time::sleep(StdDuration::from_millis(50)).await;
    }
    assert_eq!(
        (owed["amount"].as_str(), owed["plate"].as_str()),
        (Some("270.00"), Some("云A10001")),
        "{owed}"
    );
    assert_eq!(app.balance("common_revenue").await, dec("-216.00"));
    let (_, check) = app.staff("GET", "/v1/admin/ledger/check", None).await;
    assert_eq!(check["ok"], true, "{check}");

    // The same space is not rented twice for overlapping days.
    let (_, other) = owner_with_car(&app, &site, "1-1-102", "云A10002").await;
    let (status, refused) = owner_applies(
        &app,
        &other,
        json!({"space_id": common, "plate": "云A10002", "months": 1}),
    )
    .await;
    assert_eq!(
        (status, refused["error"]["code"].as_str()),
        (409, Some("space_rented")),
        "{refused}"
    );
}

/// The owner's consent to let their space by the month, given or withdrawn: the answer.
async fn consent_to_letting(app: &TestApp, token: &str, space: &str, consent: bool) -> Value {
    let (status, body) = app
        .send(
            "PUT",
            &format!("/v1/owner/spaces/{space}/letting-consent"),
            token,
            Some(json!({"consent": consent})),
        )
        .await;
    assert_eq!(
        (status, body["consent"].as_bool()),
        (200, Some(consent)),
        "{body}"
    );
    body
}

#[tokio::test]
async fn an_owners_space_is_let_only_while_its_owner_consents() {
    let app = spawn_app().await;
    let site = app.site(5).await;
    file_monthly_tariff(&app, &site).await;
    let (landlord, token) = owner_with_car(&app, &site, "2-2-101", "云A22001").await;
    let (_, neighbour) = owner_with_car(&app, &site, "2-2-102", "云A22002").await;
    let owned = space(&app, &site, "P-201", "owned", Some(&landlord)).await;
    let common = space(&app, &site, "C-201", "common", None).await;

    // Without the owner's consent the office cannot let the space, and nothing is written.
    let (status, body) =
        staff_rents_to_non_owner(&app, &site, json!({"space_id": owned}), "云B22001").await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (409, Some("owner_consent_required")),
        "{body}"
    );
    assert_eq!(app.count("select count(*) from rentals").await, 0);
    // Only the space's owner consents: a neighbour's or a common space is not theirs.
    for (who, space) in [(&neighbour, &owned), (&token, &common)] {
        let (status, body) = app
            .send(
                "PUT",
                &format!("/v1/owner/spaces/{space}/letting-consent"),
                who,
                Some(json!({"consent": true})),
            )
            .await;
        assert_eq!(status, 404, "{body}");
    }
    // Consent given; said again (a retry), it keeps its date.
    let given = consent_to_letting(&app, &token, &owned, true).await;
    app.advance(Duration::seconds(5));
    let again = consent_to_letting(&app, &token, &owned, true).await;
    assert_eq!(given["consented_at"], again["consented_at"]);
    let (status, applied) =
        staff_rents_to_non_owner(&app, &site, json!({"space_id": owned}), "云B22001").await;
    assert_eq!(status, 201, "{applied}");
    pay_cash(&app, &applied).await;
    let id = str_of(&applied["rental"], "id");
    let (status, renewal) = app
        .staff(
            "POST",
            &format!("/v1/admin/rentals/{id}/renewal"),
            Some(json!({"months": 1})),
        )
        .await;
    assert_eq!(status, 201, "{renewal}");
    // While it is let, its owner cannot also share it by the hour (issue 26's tester, F7).
    let windows =
        json!({"windows": [{"days": [1, 2, 3, 4, 5, 6, 7], "from": "00:00", "to": "24:00"}]});
    let (status, body) = app
        .send(
            "PUT",
            &format!("/v1/owner/spaces/{owned}/windows"),
            &token,
            Some(windows.clone()),
        )
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (409, Some("space_let_monthly")),
        "{body}"
    );

    // Withdrawn: the paid term stands, but it is not renewed and no new term is entered; the
    // renewal held for its payment is withdrawn with it and can no longer be paid (F1).
    consent_to_letting(&app, &token, &owned, false).await;
    let (status, read) = app
        .send(
            "GET",
            &format!("/v1/owner/spaces/{owned}/letting-consent"),
            &token,
            None,
        )
        .await;
    assert_eq!((status, &read["consent"]), (200, &json!(false)), "{read}");
    assert_eq!(rental(&app, id).await["status"], "paid");
    let renewal_id = str_of(&renewal["rental"], "id");
    assert_eq!(rental(&app, renewal_id).await["status"], "expired");
    let (status, body) = app
        .staff(
            "POST",
            &format!("/v1/admin/rentals/{renewal_id}/payments"),
            Some(
                json!({"amount": renewal["rental"]["price"], "shift": "早班",
                        "idempotency_key": format!("cash-{renewal_id}")}),
            ),
        )
        .await;
    assert_eq!(status, 409, "{body}");
    // The paid term still runs: the space is not shared over it.
    let (status, body) = app
        .send(
            "PUT",
            &format!("/v1/owner/spaces/{owned}/windows"),
            &token,
            Some(windows),
        )
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (409, Some("space_let_monthly")),
        "{body}"
    );
    let (status, body) = app
        .staff(
            "POST",
            &format!("/v1/admin/rentals/{id}/renewal"),
            Some(json!({"months": 1})),
        )
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (409, Some("owner_consent_required")),
        "{body}"
    );
    assert_eq!(
        app.count("select count(*) from letting_consents where consented")
            .await,
        1
    );
    assert_eq!(
        app.count("select count(*) from letting_consents where not consented")
            .await,
        1
    );
}

#[tokio::test]
async fn a_renewal_racing_the_owners_withdrawal_is_never_left_to_be_paid() {
    let app = spawn_app().await;
    let site = app.site(5).await;
    file_monthly_tariff(&app, &site).await;
    for round in 0..5 {
        let (owner, token) = owner_with_car(
            &app,
            &site,
            &format!("2-4-{round}01"),
            &format!("云A24{round}01"),
        )
        .await;
        let owned = space(&app, &site, &format!("P-4{round}1"), "owned", Some(&owner)).await;
        consent_to_letting(&app, &token, &owned, true).await;
        let (status, applied) = staff_rents_to_non_owner(
            &app,
            &site,
            json!({"space_id": owned}),
            &format!("云B24{round}01"),
        )
        .await;
        assert_eq!(status, 201, "{applied}");
        pay_cash(&app, &applied).await;
        let id = str_of(&applied["rental"], "id");
        let (path, withdraw) = (
            format!("/v1/admin/rentals/{id}/renewal"),
            format!("/v1/owner/spaces/{owned}/letting-consent"),
        );
        let ((renewed, renewal), (withdrawn, _)) = futures_util::future::join(
            app.staff("POST", &path, Some(json!({"months": 1}))),
            app.send("PUT", &withdraw, &token, Some(json!({"consent": false}))),
        )
        .await;
        assert_eq!(withdrawn, 200);
        if renewed == 201 {
            let renewal_id = str_of(&renewal["rental"], "id");
            assert_eq!(
                rental(&app, renewal_id).await["status"],
                "expired",
                "round {round}: a renewal held when consent was withdrawn is withdrawn with it \
                 (issue 26's tester, round 2, N2)"
            );
        }
    }
}

#[tokio::test]
async fn an_acceptance_and_the_office_contracting_another_winner_never_deadlock() {
    let app = spawn_app().await;
    let site = app.site(5).await;
    file_monthly_tariff(&app, &site).await;
    for round in 0..4 {
        let spaces = [
            space(&app, &site, &format!("C-8{round}1"), "common", None).await,
            space(&app, &site, &format!("C-8{round}2"), "common", None).await,
        ];
        let (first, second) = (format!("9-8-{round}01"), format!("9-8-{round}02"));
        let (plate_a, plate_b) = (format!("云A98{round}01"), format!("云A98{round}02"));
        let (id, ranked) = drawn_lottery(
            &app,
            &site,
            &[&spaces[0], &spaces[1]],
            &[(&first, &plate_a), (&second, &plate_b)],
        )
        .await;
        let accept = format!("/v1/owner/lotteries/{id}/offer/accept");
        let (status, body) = app.send("POST", &accept, &ranked[1].token, None).await;
        assert_eq!(status, 200, "{body}");
        // The first winner accepts with a car while the office contracts the second's place.
        let contract = format!("/v1/admin/compounds/{}/rentals", site.compound);
        let ((accepted, a), (contracted, c)) = futures_util::future::join(
            app.send(
                "POST",
                &accept,
                &ranked[0].token,
                Some(json!({"plate": ranked[0].plate})),
            ),
            app.staff(
                "POST",
                &contract,
                Some(
                    json!({"space_id": spaces[1], "plate": ranked[1].plate, "months": 1,
                            "owner_id": ranked[1].owner_id}),
                ),
            ),
        )
        .await;
        // Never a deadlock's 503 (issue 26's tester, round 2, N1); the two may meet on one
        // space, and then one of them is told so.
        assert!(accepted != 503 && contracted != 503, "{a} {c}");
        assert!(accepted == 200 || contracted == 201, "{a} {c}");
    }
}

#[tokio::test]
async fn a_space_shared_by_the_hour_is_not_let_by_the_month() {
    let app = spawn_app().await;
    let site = app.site(5).await;
    file_monthly_tariff(&app, &site).await;
    let (owner, token) = owner_with_car(&app, &site, "2-3-101", "云A23001").await;
    let owned = space(&app, &site, "P-301", "owned", Some(&owner)).await;
    let windows =
        json!({"windows": [{"days": [1, 2, 3, 4, 5, 6, 7], "from": "00:00", "to": "24:00"}]});
    let (status, body) = app
        .send(
            "PUT",
            &format!("/v1/owner/spaces/{owned}/windows"),
            &token,
            Some(windows),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = app
        .send(
            "PUT",
            &format!("/v1/owner/spaces/{owned}/letting-consent"),
            &token,
            Some(json!({"consent": true})),
        )
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (409, Some("space_shared")),
        "{body}"
    );
    // Sharing stopped (no windows, no booking), the consent is given.
    let (status, body) = app
        .send(
            "PUT",
            &format!("/v1/owner/spaces/{owned}/windows"),
            &token,
            Some(json!({"windows": []})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    consent_to_letting(&app, &token, &owned, true).await;
}

#[tokio::test]
async fn each_kind_of_space_credits_its_own_beneficiary() {
    let app = spawn_app().await;
    let site = app.site(5).await;
    file_monthly_tariff(&app, &site).await;
    reserve_pass_places(&app, &site, 10).await;
    let (landlord, landlord_token) = owner_with_car(&app, &site, "2-1-101", "云A20001").await;
    let owned = space(&app, &site, "P-001", "owned", Some(&landlord)).await;
    let unsold = space(&app, &site, "D-001", "developer_unsold", None).await;
    consent_to_letting(&app, &landlord_token, &owned, true).await;

    // A non-owner pays the full filed price: ¥150 for the owner's space let long-term.
    let (status, on_owned) =
        staff_rents_to_non_owner(&app, &site, json!({"space_id": owned}), "云B30001").await;
    assert_eq!(status, 201, "{on_owned}");
    assert_eq!(on_owned["rental"]["price"], "150.00");
    pay_cash(&app, &on_owned).await;
    // The space's owner, less the 10 % platform fee.
    assert_eq!(app.balance("owner_payable").await, dec("-135.00"));
    assert_eq!(app.balance("platform_fee_income").await, dec("-15.00"));
    assert_eq!(app.balance("cash_on_hand").await, dec("150.00"));

    let (status, on_unsold) =
        staff_rents_to_non_owner(&app, &site, json!({"space_id": unsold}), "云B30002").await;
    assert_eq!(status, 201, "{on_unsold}");
    pay_online(&app, &on_unsold, 1).await;
    assert_eq!(app.balance("developer_payable").await, dec("-150.00"));

    // A pool pass: the visitor pool, on common land by default.
    let (status, pass) =
        staff_rents_to_non_owner(&app, &site, json!({"lot_id": site.lot}), "云B30003").await;
    assert_eq!(status, 201, "{pass}");
    assert_eq!(pass["rental"]["space_kind"], "pool");
    pay_cash(&app, &pass).await;
    assert_eq!(app.balance("common_revenue").await, dec("-150.00"));

    // A cash retry with the same key answers the paid term, and books nothing more.
    let id = str_of(&pass["rental"], "id");
    let (status, again) = app
        .staff(
            "POST",
            &format!("/v1/admin/rentals/{id}/payments"),
            Some(json!({"amount": "150.00", "shift": "早班 王芳", "idempotency_key": format!("cash-{id}")})),
        )
        .await;
    assert_eq!(
        (status, again["status"].as_str()),
        (200, Some("paid")),
        "{again}"
    );
    // The key with another amount or shift is another request, not the one recorded.
    for (amount, shift) in [("149.99", "早班 王芳"), ("150.00", "晚班 李强")] {
        let (status, body) = app
            .staff(
                "POST",
                &format!("/v1/admin/rentals/{id}/payments"),
                Some(json!({"amount": amount, "shift": shift, "idempotency_key": format!("cash-{id}")})),
            )
            .await;
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (409, Some("idempotency_key_reused")),
            "{amount} {shift}: {body}"
        );
    }
    assert_eq!(app.balance("cash_on_hand").await, dec("300.00"));

    // The books balance, every rental's entry with them.
    let (_, check) = app.staff("GET", "/v1/admin/ledger/check", None).await;
    assert_eq!(check["ok"], true, "{check}");
}

#[tokio::test]
async fn rentals_are_refused_with_a_reason_where_they_may_not_be_had() {
    let app = spawn_app().await;
    let site = app.site(5).await;
    let (owner, token) = owner_with_car(&app, &site, "3-1-101", "云A30001").await;
    let common = space(&app, &site, "C-001", "common", None).await;
    // No filed tariff: nothing is charged off the published list.
    let (status, body) = owner_applies(
        &app,
        &token,
        json!({"space_id": common, "plate": "云A30001", "months": 1}),
    )
    .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (409, Some("no_filed_tariff")),
        "{body}"
    );
    file_monthly_tariff(&app, &site).await;

    let cases = [
        (
            json!({"space_id": common, "plate": "云A39999", "months": 1}),
            422,
            "not_your_vehicle",
        ),
        (
            json!({"space_id": common, "plate": "云A30001", "months": 13}),
            422,
            "invalid_months",
        ),
        (
            json!({"space_id": common, "lot_id": site.lot, "plate": "云A30001", "months": 1}),
            422,
            "invalid_target",
        ),
        (
            json!({"plate": "云A30001", "months": 1}),
            422,
            "invalid_target",
        ),
        (
            json!({"space_id": common, "plate": "云A30001", "months": 1,
                "starts_on": today() - Duration::days(1)}),
            422,
            "start_in_past",
        ),
    ];
    for (body, want_status, code) in cases {
        let (status, answer) = owner_applies(&app, &token, body.clone()).await;
        assert_eq!(
            (status, answer["error"]["code"].as_str()),
            (want_status, Some(code)),
            "{body}: {answer}"
        );
        if code == "invalid_target" {
            assert!(
                str_of(&answer["error"], "message").starts_with("name exactly one of lot_id"),
                "{answer}"
            );
        }
    }
    let own = space(&app, &site, "P-001", "owned", Some(&owner)).await;
    let (status, body) = owner_applies(
        &app,
        &token,
        json!({"space_id": own, "plate": "云A30001", "months": 1}),
    )
    .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (422, Some("owned_space_through_staff"))
    );
    let metered = space(&app, &site, "D-001", "developer_unsold", None).await;
    let (status, _) = app
        .staff(
            "PUT",
            &format!("/v1/admin/spaces/{metered}/unsold-offer"),
            Some(json!({"offered_as": "metered", "for_sale_since": "2020-01-01"})),
        )
        .await;
    assert_eq!(status, 200);
    let (status, body) = owner_applies(
        &app,
        &token,
        json!({"space_id": metered, "plate": "云A30001", "months": 1}),
    )
    .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (409, Some("space_metered")),
        "{body}"
    );
    // Staff may not rent an owner's car as a stranger's.
    let (status, body) =
        staff_rents_to_non_owner(&app, &site, json!({"space_id": common}), "云A30001").await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (422, Some("plate_of_an_owner")),
        "{body}"
    );
    // Another firm's staff see nothing.
    let other = app.new_tenant("别家物业").await;
    let (status, _) = app
        .send(
            "GET",
            &format!("/v1/admin/compounds/{}/rentals", site.compound),
            &other,
            None,
        )
        .await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn concurrent_applications_for_one_space_leave_exactly_one_rental() {
    let app = spawn_app().await;
    let site = app.site(5).await;
    file_monthly_tariff(&app, &site).await;
    let common = space(&app, &site, "C-001", "common", None).await;
    let mut tokens = Vec::new();
    for i in 0..8 {
        let plate = format!("云A4000{i}");
        let (_, token) = owner_with_car(&app, &site, &format!("4-1-10{i}"), &plate).await;
        tokens.push((plate, token));
    }
    let answers = futures_util::future::join_all(tokens.iter().map(|(plate, token)| {
        owner_applies(
            &app,
            token,
            json!({"space_id": common, "plate": plate, "months": 1}),
        )
    }))
    .await;
    let created = answers.iter().filter(|(s, _)| *s == 201).count();
    let refused = answers
        .iter()
        .filter(|(s, b)| *s == 409 && b["error"]["code"] == "space_rented")
        .count();
    assert_eq!((created, refused), (1, 7), "{answers:?}");
    assert_eq!(
        app.count(&format!(
            "select count(*) from rentals where space_id = '{common}'"
        ))
        .await,
        1
    );
}

#[tokio::test]
async fn a_renter_passes_a_full_lot_onto_its_space_free_until_the_rental_lapses() {
    let app = spawn_app().await;
    let site = app.site(1).await;
    file_monthly_tariff(&app, &site).await;
    let common = space(&app, &site, "C-009", "common", None).await;
    let (status, applied) =
        staff_rents_to_non_owner(&app, &site, json!({"space_id": common}), "云B50001").await;
    assert_eq!(status, 201, "{applied}");
    // Unpaid, the renter is a visitor like any other.
    app.read(&site.entries[0], "京A11111", ago(120)).await;
    let (_, unpaid) = app.read(&site.entries[0], "云B50001", ago(100)).await;
    assert_eq!(str_of(&unpaid, "reason"), "lot_full", "{unpaid}");
    pay_cash(&app, &applied).await;
    // The term began yesterday: the reads below, up to 90 minutes back, fall inside it also in
    // the first hours of a Shanghai day (this failed when run just after local midnight).
    let id = str_of(&applied["rental"], "id");
    move_term(
        &app,
        id,
        today() - Duration::days(1),
        today() + Duration::days(29),
    )
    .await;

    let (_, entry) = app.read(&site.entries[0], "云B50001", ago(90)).await;
    assert_eq!(
        (str_of(&entry, "action"), str_of(&entry, "reason")),
        ("open", "permit_holder"),
        "{entry}"
    );
    let stays = app.open_sessions(&site.lot).await;
    let stay = stays
        .iter()
        .find(|s| s["plate"] == "云B50001")
        .unwrap_or_else(|| panic!("{stays:?}"));
    assert_eq!(
        (stay["space_id"].as_str(), stay["kind"].as_str()),
        (Some(common.as_str()), Some("permit"))
    );
    let (_, exit) = app.read(&site.exit, "云B50001", ago(10)).await;
    assert_eq!(
        (str_of(&exit, "action"), str_of(&exit, "amount_due")),
        ("open", "0.00"),
        "{exit}"
    );
    // The stay is the common-area space's use (what the disclosure counts by kind of space).
    assert_eq!(
        app.count(
            "select count(*) from sessions s join spaces sp on sp.id = s.space_id
              where sp.kind = 'common' and s.plate = '云B50001'"
        )
        .await,
        1
    );

    // In its grace after the term ended, still a renter; past it, a visitor again.
    move_term(
        &app,
        id,
        today() - Duration::days(31),
        today() - Duration::days(2),
    )
    .await;
    assert_eq!(rental(&app, id).await["standing"], "in_grace");
    let (_, in_grace) = app.read(&site.entries[0], "云B50001", ago(5)).await;
    assert_eq!(str_of(&in_grace, "reason"), "permit_holder", "{in_grace}");
    let (_, out) = app.read(&site.exit, "云B50001", ago(4)).await;
    assert_eq!(str_of(&out, "action"), "open", "{out}");
    move_term(
        &app,
        id,
        today() - Duration::days(40),
        today() - Duration::days(10),
    )
    .await;
    assert_eq!(rental(&app, id).await["standing"], "lapsed");
    let (_, lapsed) = app.read(&site.entries[0], "云B50001", ago(2)).await;
    assert_eq!(str_of(&lapsed, "reason"), "lot_full", "{lapsed}");
}

#[tokio::test]
async fn a_term_is_reminded_renewed_for_the_next_whole_months_and_lapses_without_renewal() {
    let app = spawn_app().await;
    let site = app.site(5).await;
    file_monthly_tariff(&app, &site).await;
    reserve_pass_places(&app, &site, 10).await;
    let (_, token) = owner_with_car(&app, &site, "5-1-101", "云A50001").await;
    let (status, _) = app
        .send(
            "PUT",
            "/v1/owner/webhook",
            &token,
            Some(json!({"url": "http://127.0.0.1:9/hooks"})),
        )
        .await;
    assert_eq!(status, 200);
    let (status, applied) = owner_applies(
        &app,
        &token,
        json!({"lot_id": site.lot, "plate": "云A50001", "months": 1}),
    )
    .await;
    assert_eq!(status, 201, "{applied}");
    pay_online(&app, &applied, 1).await;
    let id = str_of(&applied["rental"], "id").to_owned();
    // As if bought a month ago: it ends in three days.
    let ends = today() + Duration::days(3);
    move_term(&app, &id, ends - Duration::days(29), ends).await;

    // The sweep (run here; the service's own runs every minute too) reminds once per term.
    let mut reminded = 0;
    for _ in 0..2 {
        let report = parkshare::allocation::rentals::term::sweep(&app.db, app.now(), 7)
            .await
            .unwrap_or_else(|e| panic!("{e:?}"));
        reminded += report.reminded;
    }
    assert!(reminded <= 1, "one reminder per term, not {reminded}");
    let (_, deliveries) = app.staff("GET", "/v1/admin/webhook-deliveries", None).await;
    let reminders: Vec<&Value> = deliveries
        .as_array()
        .into_iter()
        .flatten()
        .filter(|d| d["event"] == "rental.expiring")
        .collect();
    assert_eq!(reminders.len(), 1, "{deliveries}");
    let reminder = reminders[0];
    assert_eq!(reminder["payload"]["data"]["ends_on"], json!(ends));
    let path = format!(
        "/v1/admin/compounds/{}/rentals?expiring_within_days=7",
        site.compound
    );
    let (_, expiring) = app.staff("GET", &path, None).await;
    assert_eq!(expiring.as_array().map(Vec::len), Some(1), "{expiring}");

    // Renewed: the next whole month from the day after the end, at the owner's price.
    let (status, renewed) = app
        .send(
            "POST",
            &format!("/v1/owner/rentals/{id}/renewal"),
            &token,
            Some(json!({"months": 1})),
        )
        .await;
    assert_eq!(status, 201, "{renewed}");
    let next_start = ends + Duration::days(1);
    assert_eq!(renewed["rental"]["starts_on"], json!(next_start));
    assert_eq!(renewed["rental"]["price"], "135.00");
    assert_eq!(renewed["rental"]["renews_id"], json!(id));
    let (status, twice) = app
        .send(
            "POST",
            &format!("/v1/owner/rentals/{id}/renewal"),
            &token,
            Some(json!({"months": 1})),
        )
        .await;
    assert_eq!(
        (status, twice["error"]["code"].as_str()),
        (409, Some("already_renewed")),
        "{twice}"
    );
    pay_online(&app, &renewed, 1).await;
    let (_, expiring) = app.staff("GET", &path, None).await;
    assert_eq!(expiring.as_array().map(Vec::len), Some(0), "{expiring}");

    // Ending a term with a renewal is refused; the renewal, not yet begun, ends whole.
    let (status, body) = app
        .staff(
            "POST",
            &format!("/v1/admin/rentals/{id}/end"),
            Some(json!({"reason": "退租"})),
        )
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (409, Some("renewed")),
        "{body}"
    );
    let renewal_id = str_of(&renewed["rental"], "id").to_owned();
    let (status, body) = app
        .staff(
            "POST",
            &format!("/v1/admin/rentals/{renewal_id}/end"),
            Some(json!({"reason": "退租"})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        (body["refund"].as_str(), body["rental"]["status"].as_str()),
        (Some("135.00"), Some("cancelled"))
    );
    // Cancelled, it no longer counts as the renewal: the term may be renewed again.
    let (status, renewed) = app
        .send(
            "POST",
            &format!("/v1/owner/rentals/{id}/renewal"),
            &token,
            Some(json!({"months": 1})),
        )
        .await;
    assert_eq!(status, 201, "{renewed}");
    pay_online(&app, &renewed, 1).await;

    // A term that lapsed (past its grace) is not renewed: apply anew.
    let renewal_id = str_of(&renewed["rental"], "id").to_owned();
    move_term(
        &app,
        &id,
        today() - Duration::days(80),
        today() - Duration::days(50),
    )
    .await;
    move_term(
        &app,
        &renewal_id,
        today() - Duration::days(40),
        today() - Duration::days(10),
    )
    .await;
    assert_eq!(rental(&app, &id).await["standing"], "renewed");
    assert_eq!(rental(&app, &renewal_id).await["standing"], "lapsed");
    let (status, lapsed) = app
        .send(
            "POST",
            &format!("/v1/owner/rentals/{renewal_id}/renewal"),
            &token,
            Some(json!({"months": 1})),
        )
        .await;
    assert_eq!(
        (status, lapsed["error"]["code"].as_str()),
        (409, Some("rental_lapsed")),
        "{lapsed}"
    );
}

#[tokio::test]
async fn only_a_paid_renewal_renews_and_concurrent_renewals_are_already_renewed() {
    let app = spawn_app().await;
    let site = app.site(5).await;
    file_monthly_tariff(&app, &site).await;
    let common = space(&app, &site, "C-601", "common", None).await;
    let (_, applied) =
        staff_rents_to_non_owner(&app, &site, json!({"space_id": common}), "云B61001").await;
    pay_cash(&app, &applied).await;
    let id = str_of(&applied["rental"], "id").to_owned();
    // Bought a month ago: it ends in three days.
    let ends = today() + Duration::days(3);
    move_term(&app, &id, ends - Duration::days(29), ends).await;

    // Five renewals at once: one is held, the others are told it was renewed.
    let renew = format!("/v1/admin/rentals/{id}/renewal");
    let answers = futures_util::future::join_all(
        (0..5).map(|_| app.staff("POST", &renew, Some(json!({"months": 1})))),
    )
    .await;
    let codes: Vec<(u16, Option<&str>)> = answers
        .iter()
        .map(|(s, b)| (*s, b["error"]["code"].as_str()))
        .collect();
    assert_eq!(
        codes.iter().filter(|c| c.0 == 201).count(),
        1,
        "{answers:?}"
    );
    assert_eq!(
        codes
            .iter()
            .filter(|c| **c == (409, Some("already_renewed")))
            .count(),
        4,
        "{answers:?}"
    );

    // Unpaid, the renewal renews nothing yet: the term is still to chase and is reminded.
    let path = format!(
        "/v1/admin/compounds/{}/rentals?expiring_within_days=7",
        site.compound
    );
    let (_, expiring) = app.staff("GET", &path, None).await;
    assert_eq!(expiring[0]["id"], json!(id), "{expiring}");
    let report = parkshare::allocation::rentals::term::sweep(&app.db, Utc::now(), 7)
        .await
        .unwrap_or_else(|e| panic!("{e:?}"));
    assert_eq!(report.reminded, 1);
    // In its grace with the renewal unpaid, it stands in its grace, not renewed.
    move_term(
        &app,
        &id,
        today() - Duration::days(31),
        today() - Duration::days(2),
    )
    .await;
    assert_eq!(rental(&app, &id).await["standing"], "in_grace");
    // In its grace nothing is left to end early; an unpaid term is not ended either.
    let (status, body) = app
        .staff(
            "POST",
            &format!("/v1/admin/rentals/{id}/end"),
            Some(json!({"reason": "退租"})),
        )
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (409, Some("not_in_force")),
        "{body}"
    );
    let pending = answers
        .iter()
        .find(|(s, _)| *s == 201)
        .map(|(_, b)| str_of(&b["rental"], "id").to_owned())
        .unwrap_or_default();
    let (status, body) = app
        .staff(
            "POST",
            &format!("/v1/admin/rentals/{pending}/end"),
            Some(json!({"reason": "退租"})),
        )
        .await;
    assert_eq!(
        (status, str_of(&body["error"], "message")),
        (409, "an awaiting_payment term is not ended early"),
        "{body}"
    );
    move_term(&app, &id, ends - Duration::days(29), ends).await;

    // It can be ended early; the unpaid renewal is withdrawn with it.
    let (status, ended) = app
        .staff(
            "POST",
            &format!("/v1/admin/rentals/{id}/end"),
            Some(json!({"reason": "退租"})),
        )
        .await;
    assert_eq!(status, 200, "{ended}");
    let renewal = answers
        .iter()
        .find(|(s, _)| *s == 201)
        .map(|(_, b)| str_of(&b["rental"], "id").to_owned())
        .unwrap_or_default();
    assert_eq!(rental(&app, &renewal).await["status"], "cancelled");
}

#[tokio::test]
async fn an_early_end_refunds_the_unused_whole_days_owed_back_by_reversed_entries() {
    let app = spawn_app().await;
    let site = app.site(5).await;
    file_monthly_tariff(&app, &site).await;
    let common = space(&app, &site, "C-001", "common", None).await;
    let (status, applied) =
        staff_rents_to_non_owner(&app, &site, json!({"space_id": common}), "云B60001").await;
    assert_eq!(status, 201, "{applied}");
    pay_online(&app, &applied, 1).await;
    let id = str_of(&applied["rental"], "id");
    let term = rental(&app, id).await;
    let starts: NaiveDate = serde_json::from_value(term["starts_on"].clone()).unwrap_or_default();
    let ends: NaiveDate = serde_json::from_value(term["ends_on"].clone()).unwrap_or_default();
    let days = (ends - starts).num_days() + 1;
    let last_day = today() + Duration::days(4);
    let unused = (ends - last_day).num_days();
    // ¥150 × unused / days, rounded down to the fen.
    let expected = (dec("150.00") * Decimal::from(unused) / Decimal::from(days))
        .round_dp_with_strategy(2, rust_decimal::RoundingStrategy::ToZero);

    let (status, ended) = app
        .staff(
            "POST",
            &format!("/v1/admin/rentals/{id}/end"),
            Some(json!({"last_day": last_day, "reason": "搬家"})),
        )
        .await;
    assert_eq!(status, 200, "{ended}");
    assert_eq!(ended["unused_days"], unused);
    assert_eq!(dec(str_of(&ended, "refund")), expected);
    assert_eq!(ended["rental"]["ends_on"], json!(last_day));
    assert_eq!(ended["rental"]["status"], "ended");
    // The reversal comes out of common revenue; the renter is owed it.
    assert_eq!(
        app.balance("common_revenue").await,
        -(dec("150.00") - expected)
    );
    assert_eq!(app.balance("refunds_payable").await, -expected);
    let (_, owed) = app.staff("GET", "/v1/admin/refunds-owed", None).await;
    let item = &owed["items"][0];
    assert_eq!(
        (dec(str_of(item, "amount")), item["plate"].as_str()),
        (expected, Some("云B60001")),
        "{owed}"
    );
    // Paid out at the booth, the debt is settled.
    let (status, paid_back) = app
        .staff(
            "POST",
            &format!("/v1/admin/refunds-owed/{}/payouts", str_of(item, "id")),
            Some(json!({"method": "cash", "reference": "退租-0001"})),
        )
        .await;
    assert_eq!(status, 201, "{paid_back}");
    assert_eq!(app.balance("refunds_payable").await, Decimal::ZERO);
    let (_, check) = app.staff("GET", "/v1/admin/ledger/check", None).await;
    assert_eq!(check["ok"], true, "{check}");

    // Once: an ended term is not ended again; its space is free after its last day.
    let (status, again) = app
        .staff(
            "POST",
            &format!("/v1/admin/rentals/{id}/end"),
            Some(json!({"reason": "再来"})),
        )
        .await;
    assert_eq!(
        (status, again["error"]["code"].as_str()),
        (409, Some("not_in_force"))
    );
    assert!(
        str_of(&again["error"], "message").starts_with("an ended term"),
        "{again}"
    );
    let (status, next) = staff_rents_to_non_owner(
        &app,
        &site,
        json!({"space_id": common, "starts_on": last_day + Duration::days(1)}),
        "云B60002",
    )
    .await;
    assert_eq!(status, 201, "{next}");
}

#[tokio::test]
async fn owners_are_served_first_in_the_compounds_order_and_refusals_say_why() {
    let app = spawn_app().await;
    let site = app.site(5).await;
    file_monthly_tariff(&app, &site).await;
    reserve_pass_places(&app, &site, 10).await;
    let c1 = space(&app, &site, "C-001", "common", None).await;
    let c2 = space(&app, &site, "C-002", "common", None).await;
    let (holder, holder_token) = owner_with_car(&app, &site, "6-1-101", "云A60001").await;
    space(&app, &site, "P-001", "owned", Some(&holder)).await;
    let (_, spaceless_token) = owner_with_car(&app, &site, "6-1-102", "云A60002").await;
    let (_, latecomer_token) = owner_with_car(&app, &site, "6-1-103", "云A60003").await;

    // The owner who holds a space joins first; the household without one after.
    for token in [&holder_token, &spaceless_token] {
        let (status, body) = app
            .send(
                "POST",
                "/v1/owner/waiting-list",
                token,
                Some(json!({"space_kind": "common"})),
            )
            .await;
        assert_eq!(status, 201, "{body}");
    }
    let (status, body) = app
        .send(
            "POST",
            "/v1/owner/waiting-list",
            &holder_token,
            Some(json!({"space_kind": "common"})),
        )
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (409, Some("already_waiting"))
    );

    // A non-owner waits for every owner; the refusal says how many wait.
    let (status, body) =
        staff_rents_to_non_owner(&app, &site, json!({"space_id": c1}), "云B60009").await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (409, Some("owners_waiting")),
        "{body}"
    );
    assert!(str_of(&body["error"], "message").starts_with('2'), "{body}");
    // An owner not on the list is behind everyone on it.
    let (status, body) = owner_applies(
        &app,
        &latecomer_token,
        json!({"space_id": c1, "plate": "云A60003", "months": 1}),
    )
    .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (409, Some("owners_ahead")),
        "{body}"
    );

    // Households without a space first: the second to join is served first.
    let (status, _) = app
        .staff(
            "PUT",
            &format!("/v1/admin/compounds/{}/waiting-order", site.compound),
            Some(json!({"order": "without_space_first"})),
        )
        .await;
    assert_eq!(status, 200);
    let (_, list) = app
        .staff(
            "GET",
            &format!("/v1/admin/compounds/{}/waiting-list", site.compound),
            None,
        )
        .await;
    let units: Vec<&str> = list["kinds"]["common"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| e["unit"].as_str())
        .collect();
    assert_eq!(units, ["6-1-102", "6-1-101"], "{list}");
    let (status, body) = owner_applies(
        &app,
        &holder_token,
        json!({"space_id": c1, "plate": "云A60001", "months": 1}),
    )
    .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (409, Some("owners_ahead")),
        "{body}"
    );
    let (status, first) = owner_applies(
        &app,
        &spaceless_token,
        json!({"space_id": c1, "plate": "云A60002", "months": 1}),
    )
    .await;
    assert_eq!(status, 201, "{first}");
    pay_cash(&app, &first).await;
    // Served, the household leaves the list; the next is served, then a non-owner may rent.
    let (_, mine) = app
        .send("GET", "/v1/owner/waiting-list", &spaceless_token, None)
        .await;
    assert_eq!(mine.as_array().map(Vec::len), Some(0), "{mine}");
    let (status, second) = owner_applies(
        &app,
        &holder_token,
        json!({"space_id": c2, "plate": "云A60001", "months": 1}),
    )
    .await;
    assert_eq!(status, 201, "{second}");
    pay_online(&app, &second, 1).await;
    let c3 = space(&app, &site, "C-003", "common", None).await;
    let (status, body) =
        staff_rents_to_non_owner(&app, &site, json!({"space_id": c3}), "云B60009").await;
    assert_eq!(status, 201, "{body}");
    // Other kinds were never waited for.
    let (status, body) =
        staff_rents_to_non_owner(&app, &site, json!({"lot_id": site.lot}), "云B60008").await;
    assert_eq!(status, 201, "{body}");
}

#[tokio::test]
async fn a_lottery_winner_accepting_with_a_car_rents_the_won_space() {
    let app = spawn_app().await;
    let site = app.site(5).await;
    file_monthly_tariff(&app, &site).await;
    let won = space(&app, &site, "C-101", "common", None).await;
    let lottery = app
        .create(
            &format!("/v1/admin/compounds/{}/lotteries", site.compound),
            json!({"title": "新增车位摇号", "space_ids": [won],
                   "applications_close_at": app.now() + Duration::seconds(2), "offer_minutes": 60}),
        )
        .await;
    let id = str_of(&lottery, "id").to_owned();
    // While the lottery allots it, the space is not rented past it: not to an outsider, not
    // to an owner who did not win it (outside tester of issue 26, F0).
    let (status, body) =
        staff_rents_to_non_owner(&app, &site, json!({"space_id": won}), "云V12345").await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (409, Some("space_in_lottery")),
        "{body}"
    );
    let (_, outsider_owner) = owner_with_car(&app, &site, "7-1-199", "云A70099").await;
    let (status, body) = owner_applies(
        &app,
        &outsider_owner,
        json!({"space_id": won, "plate": "云A70099", "months": 1}),
    )
    .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (409, Some("space_in_lottery")),
        "{body}"
    );
    let mut households = Vec::new();
    for (unit, plate) in [("7-1-101", "云A70001"), ("7-1-102", "云A70002")] {
        let (_, token) = owner_with_car(&app, &site, unit, plate).await;
        let (status, body) = app
            .send(
                "POST",
                &format!("/v1/owner/lotteries/{id}/applications"),
                &token,
                None,
            )
            .await;
        assert_eq!(status, 201, "{body}");
        households.push((plate, token));
    }
    app.advance(Duration::milliseconds(2_200));
    let (status, drawn) = app
        .staff("POST", &format!("/v1/admin/lotteries/{id}/draw"), None)
        .await;
    assert_eq!(status, 200, "{drawn}");
    let mut winner = None;
    for (plate, token) in &households {
        let (_, mine) = app.send("GET", "/v1/owner/lotteries", token, None).await;
        if mine[0]["my_offer"]["state"] == "open" {
            winner = Some((*plate, token.clone()));
        }
    }
    let (plate, token) = winner.unwrap_or_else(|| panic!("no open offer"));
    let accept = format!("/v1/owner/lotteries/{id}/offer/accept");

    // A car not the household's is refused, and the offer stays open.
    let (status, body) = app
        .send("POST", &accept, &token, Some(json!({"plate": "云A79999"})))
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (422, Some("not_your_vehicle")),
        "{body}"
    );
    let (status, accepted) = app
        .send(
            "POST",
            &accept,
            &token,
            Some(json!({"plate": plate, "months": 3})),
        )
        .await;
    assert_eq!(status, 200, "{accepted}");
    assert_eq!(str_of(&accepted["my_offer"], "state"), "accepted");
    let term = &accepted["rental"]["rental"];
    assert_eq!(
        (
            term["space_id"].as_str(),
            term["applied_by"].as_str(),
            term["price"].as_str()
        ),
        (Some(won.as_str()), Some("lottery"), Some("405.00")),
        "{accepted}"
    );
    pay_online(&app, &accepted["rental"], 1).await;
    assert_eq!(app.balance("common_revenue").await, dec("-405.00"));
}

#[tokio::test]
async fn a_won_space_left_unpaid_passes_to_the_next_applicant() {
    let app = spawn_app().await;
    let site = app.site(5).await;
    file_monthly_tariff(&app, &site).await;
    let won = space(&app, &site, "C-201", "common", None).await;
    let (id, ranked) = drawn_lottery(
        &app,
        &site,
        &[&won],
        &[("8-1-101", "云A80001"), ("8-1-102", "云A80002")],
    )
    .await;
    let (winner, next) = (&ranked[0], &ranked[1]);
    let accept = format!("/v1/owner/lotteries/{id}/offer/accept");
    let (status, accepted) = app
        .send(
            "POST",
            &accept,
            &winner.token,
            Some(json!({"plate": winner.plate})),
        )
        .await;
    assert_eq!(status, 200, "{accepted}");

    // The winner never pays: the sweep, a quarter of an hour on, expires the hold, and the
    // offer lapses with it as if it had not been answered.
    let report =
        parkshare::allocation::rentals::term::sweep(&app.db, app.now() + Duration::minutes(16), 7)
            .await
            .unwrap_or_else(|e| panic!("{e:?}"));
    assert_eq!(report.expired, 1);
    let (_, mine) = app
        .send("GET", "/v1/owner/lotteries", &winner.token, None)
        .await;
    assert_eq!(mine[0]["my_offer"]["state"], "lapsed", "{mine}");
    let (status, again) = app
        .send(
            "POST",
            &accept,
            &winner.token,
            Some(json!({"plate": winner.plate})),
        )
        .await;
    assert_eq!(
        (status, again["error"]["code"].as_str()),
        (409, Some("offer_lapsed")),
        "{again}"
    );

    // The next applicant is offered the space, and rents it.
    let (_, theirs) = app
        .send("GET", "/v1/owner/lotteries", &next.token, None)
        .await;
    assert_eq!(theirs[0]["my_offer"]["state"], "open", "{theirs}");
    let (status, taken) = app
        .send(
            "POST",
            &accept,
            &next.token,
            Some(json!({"plate": next.plate})),
        )
        .await;
    assert_eq!(status, 200, "{taken}");
    assert_eq!(taken["rental"]["rental"]["space_id"], json!(won), "{taken}");
    pay_online(&app, &taken["rental"], 1).await;
}

/// A household of a drawn lottery.
struct Drawn {
    owner_id: String,
    plate: String,
    token: String,
}

/// A lottery of `spaces` applied to by one household with a car per `(unit, plate)`, drawn:
/// its id and the households in the drawn order.
async fn drawn_lottery(
    app: &TestApp,
    site: &Site,
    spaces: &[&str],
    households: &[(&str, &str)],
) -> (String, Vec<Drawn>) {
    let lottery = app
        .create(
            &format!("/v1/admin/compounds/{}/lotteries", site.compound),
            json!({"title": "新增车位摇号", "space_ids": spaces,
                   "applications_close_at": app.now() + Duration::seconds(2), "offer_minutes": 60}),
        )
        .await;
    let id = str_of(&lottery, "id").to_owned();
    let mut applied = Vec::new();
    for (unit, plate) in households {
        let (owner_id, token) = owner_with_car(app, site, unit, plate).await;
        let (status, body) = app
            .send(
                "POST",
                &format!("/v1/owner/lotteries/{id}/applications"),
                &token,
                None,
            )
            .await;
        assert_eq!(status, 201, "{body}");
        applied.push((*unit, owner_id, plate.to_string(), token));
    }
    app.advance(Duration::seconds(3));
    let (status, drawn) = app
        .staff("POST", &format!("/v1/admin/lotteries/{id}/draw"), None)
        .await;
    assert_eq!(status, 200, "{drawn}");
    let order = drawn["published"]["order"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let ranked = order
        .iter()
        .map(|unit| {
            let (_, owner_id, plate, token) = applied
                .iter()
                .find(|(u, ..)| Some(*u) == unit.as_str())
                .unwrap_or_else(|| panic!("{unit}: {drawn}"));
            Drawn {
                owner_id: owner_id.clone(),
                plate: plate.clone(),
                token: token.clone(),
            }
        })
        .collect();
    (id, ranked)
}

async fn lottery_stage(app: &TestApp, id: &str) -> String {
    let (status, body) = app
        .send("GET", &format!("/v1/public/lotteries/{id}"), "", None)
        .await;
    assert_eq!(status, 200, "{body}");
    str_of(&body, "stage").to_owned()
}

#[tokio::test]
async fn a_lottery_settles_once_its_places_are_paid_for_and_frees_its_spaces() {
    let app = spawn_app().await;
    let site = app.site(5).await;
    file_monthly_tariff(&app, &site).await;
    let first = space(&app, &site, "C-401", "common", None).await;
    let second = space(&app, &site, "C-402", "common", None).await;
    // Two places, three households: one of them is never reached.
    let (id, ranked) = drawn_lottery(
        &app,
        &site,
        &[&first, &second],
        &[
            ("9-1-101", "云A90001"),
            ("9-1-102", "云A90002"),
            ("9-1-103", "云A90003"),
        ],
    )
    .await;
    let accept = format!("/v1/owner/lotteries/{id}/offer/accept");

    // The first winner accepts with a car and pays; the second accepts without one.
    let (status, won) = app
        .send(
            "POST",
            &accept,
            &ranked[0].token,
            Some(json!({"plate": ranked[0].plate})),
        )
        .await;
    assert_eq!(status, 200, "{won}");
    pay_cash(&app, &won["rental"]).await;
    let won_space = str_of(&won["rental"]["rental"], "space_id").to_owned();
    let other_space = if won_space == first { &second } else { &first };
    let (status, body) = app.send("POST", &accept, &ranked[1].token, None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        lottery_stage(&app, &id).await,
        "drawn",
        "a place is not paid for"
    );

    // The other space is the second winner's: a stranger cannot rent it past the lottery, the
    // office can for the winner — and that rental is the one the offer became.
    let (status, body) =
        staff_rents_to_non_owner(&app, &site, json!({"space_id": other_space}), "云B40001").await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (409, Some("space_in_lottery")),
        "{body}"
    );
    let (status, contracted) = app
        .staff(
            "POST",
            &format!("/v1/admin/compounds/{}/rentals", site.compound),
            Some(
                json!({"space_id": other_space, "plate": ranked[1].plate, "months": 1,
                        "owner_id": ranked[1].owner_id}),
            ),
        )
        .await;
    assert_eq!(status, 201, "{contracted}");
    // Contracted once: a second contract for the household says so (issue 26's tester, F3).
    let (status, body) = app
        .staff(
            "POST",
            &format!("/v1/admin/compounds/{}/rentals", site.compound),
            Some(
                json!({"space_id": other_space, "plate": ranked[1].plate, "months": 1,
                        "owner_id": ranked[1].owner_id}),
            ),
        )
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (409, Some("offer_answered")),
        "{body}"
    );
    assert_eq!(
        lottery_stage(&app, &id).await,
        "drawn",
        "its hold is unpaid"
    );
    pay_cash(&app, &contracted).await;

    // Both places are paid for: the lottery is over though the third household was never
    // reached (wave 1 kept it running for good), and it offers nothing more.
    assert_eq!(lottery_stage(&app, &id).await, "settled");
    let (_, mine) = app
        .send("GET", "/v1/owner/lotteries", &ranked[2].token, None)
        .await;
    assert_eq!(mine[0]["my_offer"], Value::Null, "{mine}");

    // The first winner moves out: the space is free of the old lottery and goes into a new one.
    let (status, ended) = app
        .staff(
            "POST",
            &format!(
                "/v1/admin/rentals/{}/end",
                str_of(&won["rental"]["rental"], "id")
            ),
            Some(json!({"last_day": today(), "reason": "搬家"})),
        )
        .await;
    assert_eq!(status, 200, "{ended}");
    app.advance(Duration::days(1));
    let (status, again) = app
        .staff(
            "POST",
            &format!("/v1/admin/compounds/{}/lotteries", site.compound),
            Some(json!({"title": "释放车位摇号", "space_ids": [won_space],
                        "applications_close_at": app.now() + Duration::hours(2)})),
        )
        .await;
    assert_eq!(status, 201, "{again}");
    // The space still rented is not put in it.
    let (status, body) = app
        .staff(
            "POST",
            &format!("/v1/admin/compounds/{}/lotteries", site.compound),
            Some(json!({"title": "再摇", "space_ids": [other_space],
                        "applications_close_at": app.now() + Duration::hours(2)})),
        )
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (409, Some("space_rented")),
        "{body}"
    );
}

#[tokio::test]
async fn a_lottery_with_more_places_than_applicants_frees_the_places_nobody_took() {
    let app = spawn_app().await;
    let site = app.site(5).await;
    file_monthly_tariff(&app, &site).await;
    let spaces = [
        space(&app, &site, "C-501", "common", None).await,
        space(&app, &site, "C-502", "common", None).await,
    ];
    let (id, ranked) = drawn_lottery(
        &app,
        &site,
        &[&spaces[0], &spaces[1]],
        &[("9-2-101", "云A92001")],
    )
    .await;
    let (status, won) = app
        .send(
            "POST",
            &format!("/v1/owner/lotteries/{id}/offer/accept"),
            &ranked[0].token,
            Some(json!({"plate": ranked[0].plate})),
        )
        .await;
    assert_eq!(status, 200, "{won}");
    // Unpaid, the only winner's place may still lapse: the lottery runs, its spaces with it.
    let free = if str_of(&won["rental"]["rental"], "space_id") == spaces[0] {
        &spaces[1]
    } else {
        &spaces[0]
    };
    let (status, body) =
        staff_rents_to_non_owner(&app, &site, json!({"space_id": free}), "云B50001").await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (409, Some("space_in_lottery")),
        "{body}"
    );
    pay_cash(&app, &won["rental"]).await;
    // Paid: nobody is left to offer the other place to, so it is the office's to rent again.
    assert_eq!(lottery_stage(&app, &id).await, "settled");
    let (status, body) =
        staff_rents_to_non_owner(&app, &site, json!({"space_id": free}), "云B50001").await;
    assert_eq!(status, 201, "{body}");
}

#[tokio::test]
async fn a_place_accepted_without_a_car_and_never_contracted_passes_down_the_list() {
    let app = spawn_app().await;
    let site = app.site(5).await;
    file_monthly_tariff(&app, &site).await;
    let won = space(&app, &site, "C-601", "common", None).await;
    let (id, ranked) = drawn_lottery(
        &app,
        &site,
        &[&won],
        &[("9-3-101", "云A93001"), ("9-3-102", "云A93002")],
    )
    .await;
    let (status, body) = app
        .send(
            "POST",
            &format!("/v1/owner/lotteries/{id}/offer/accept"),
            &ranked[0].token,
            None,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    // The office has the offer's hour from the acceptance to contract it; it lets it pass.
    app.advance(Duration::minutes(60) + Duration::seconds(1));
    let (_, staff_view) = app
        .staff("GET", &format!("/v1/admin/lotteries/{id}"), None)
        .await;
    assert_eq!(
        (
            str_of(&staff_view["offers"][0], "state"),
            staff_view["offers"][0]["lapsed_at"].is_string(),
            str_of(&staff_view["offers"][1], "state"),
        ),
        ("lapsed", true, "open"),
        "wave 2 held the place for good (issue 26's tester, F2): {staff_view}"
    );
    // Too late to contract for the first household; the next one has the place.
    let (status, body) = app
        .staff(
            "POST",
            &format!("/v1/admin/compounds/{}/rentals", site.compound),
            Some(
                json!({"space_id": won, "plate": ranked[0].plate, "months": 1,
                        "owner_id": ranked[0].owner_id}),
            ),
        )
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (409, Some("space_in_lottery")),
        "{body}"
    );
}

#[tokio::test]
async fn a_lottery_and_a_rental_of_its_space_sent_together_never_both_take_it() {
    let app = spawn_app().await;
    let site = app.site(5).await;
    file_monthly_tariff(&app, &site).await;
    for round in 0..6 {
        let contested = space(&app, &site, &format!("C-7{round:02}"), "common", None).await;
        let (path, plate) = (
            format!("/v1/admin/compounds/{}/lotteries", site.compound),
            format!("云B7{round:02}01"),
        );
        let lottery = app.staff(
            "POST",
            &path,
            Some(json!({"title": "摇号", "space_ids": [contested],
                        "applications_close_at": app.now() + Duration::hours(2)})),
        );
        let rental = staff_rents_to_non_owner(&app, &site, json!({"space_id": contested}), &plate);
        let ((announced, a), (rented, r)) = futures_util::future::join(lottery, rental).await;
        assert!(
            (announced == 201) != (rented == 201),
            "round {round}: exactly one takes the space (issue 26's tester, F5): {a} {r}"
        );
    }
}

#[tokio::test]
async fn a_lottery_allots_only_spaces_neither_rented_nor_metered() {
    let app = spawn_app().await;
    let site = app.site(5).await;
    file_monthly_tariff(&app, &site).await;
    let announce = |spaces: Vec<String>| {
        let app = &app;
        let path = format!("/v1/admin/compounds/{}/lotteries", site.compound);
        async move {
            app.staff(
                "POST",
                &path,
                Some(json!({"title": "摇号", "space_ids": spaces,
                            "applications_close_at": Utc::now() + Duration::hours(2)})),
            )
            .await
        }
    };
    // Rented and paid, in force: its winner could never have it.
    let rented = space(&app, &site, "C-301", "common", None).await;
    let (_, applied) =
        staff_rents_to_non_owner(&app, &site, json!({"space_id": rented}), "云B31001").await;
    pay_cash(&app, &applied).await;
    // Held for a term that begins in ten days.
    let upcoming = space(&app, &site, "C-302", "common", None).await;
    let (status, held) = staff_rents_to_non_owner(
        &app,
        &site,
        json!({"space_id": upcoming, "starts_on": today() + Duration::days(10)}),
        "云B31002",
    )
    .await;
    assert_eq!(status, 201, "{held}");
    let free = space(&app, &site, "C-303", "common", None).await;
    for taken in [&rented, &upcoming] {
        let (status, body) = announce(vec![free.clone(), taken.clone()]).await;
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (409, Some("space_rented")),
            "{body}"
        );
    }
    // Run as metered parking: not allotted.
    let metered = space(&app, &site, "D-301", "developer_unsold", None).await;
    let offer = |space: &str, how: &str| {
        let app = &app;
        let path = format!("/v1/admin/spaces/{space}/unsold-offer");
        let body = json!({"offered_as": how, "for_sale_since": "2020-01-01"});
        async move { app.staff("PUT", &path, Some(body)).await }
    };
    assert_eq!(offer(&metered, "metered").await.0, 200);
    let (status, body) = announce(vec![metered.clone()]).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (409, Some("space_metered")),
        "{body}"
    );
    // A space in a running lottery is not switched to metered parking; offered for rent, it is.
    let unsold = space(&app, &site, "D-302", "developer_unsold", None).await;
    let (status, body) = announce(vec![unsold.clone(), free.clone()]).await;
    assert_eq!(status, 201, "{body}");
    let (status, body) = offer(&unsold, "metered").await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (409, Some("space_in_lottery")),
        "{body}"
    );
    assert_eq!(offer(&unsold, "rent_to_owners").await.0, 200);
}

#[tokio::test]
async fn a_term_is_priced_by_the_version_in_force_when_it_begins() {
    let app = spawn_app().await;
    let site = app.site(5).await;
    let standard = file_monthly_tariff(&app, &site).await;
    // A cheaper version filed today, in force from the local midnight ten days on.
    let from_day = today() + Duration::days(10);
    let effective_from = from_day
        .and_hms_opt(0, 0, 0)
        .and_then(|t| t.and_local_timezone(Shanghai).single())
        .unwrap_or_else(|| panic!("no midnight"))
        .with_timezone(&Utc);
    let tariff = json!({"free": {"kind": "none"},
        "small": {"day": {"steps": [{"kind": "units", "unit_min": 60, "price": "3.00", "until_min": null}]},
                  "caps": [{"kind": "rolling24h", "amount": "20.00"}]},
        "monthly": {"small": "120.00"}});
    let (status, filed) = app
        .staff(
            "POST",
            &format!("/v1/admin/lots/{}/tariffs", site.lot),
            Some(json!({"tariff": tariff, "standard_id": standard,
                        "basis": {"kind": "authority_standard"}, "effective_from": effective_from})),
        )
        .await;
    assert_eq!(status, 201, "{filed}");
    let mut priced = Vec::new();
    for (i, starts_on) in [
        today(),
        from_day - Duration::days(1),
        from_day,
        from_day + Duration::days(20),
    ]
    .into_iter()
    .enumerate()
    {
        let common = space(&app, &site, &format!("C-40{i}"), "common", None).await;
        let (status, applied) = staff_rents_to_non_owner(
            &app,
            &site,
            json!({"space_id": common, "starts_on": starts_on}),
            &format!("云B4100{i}"),
        )
        .await;
        assert_eq!(status, 201, "{applied}");
        let term = &applied["rental"];
        priced.push((
            term["price"].as_str().unwrap_or_default().to_owned(),
            term["filing_no"]
                .as_str()
                .is_some_and(|f| f.ends_with("-V2")),
        ));
        assert_eq!(
            applied["payment_intent"]["amount"], term["price"],
            "{applied}"
        );
    }
    // Terms that begin before the filing keep the price in force then, even those that run
    // into it; those that begin on its day or later are priced by it.
    assert_eq!(
        priced,
        [
            ("150.00".to_owned(), false),
            ("150.00".to_owned(), false),
            ("120.00".to_owned(), true),
            ("120.00".to_owned(), true)
        ]
    );
}

#[tokio::test]
async fn a_bad_acceptance_is_told_so_even_when_no_space_is_free() {
    let app = spawn_app().await;
    let site = app.site(5).await;
    file_monthly_tariff(&app, &site).await;
    let won = space(&app, &site, "C-501", "common", None).await;
    let lottery = app
        .create(
            &format!("/v1/admin/compounds/{}/lotteries", site.compound),
            json!({"title": "新增车位摇号", "space_ids": [won],
                   "applications_close_at": Utc::now() + Duration::seconds(2), "offer_minutes": 60}),
        )
        .await;
    let id = str_of(&lottery, "id").to_owned();
    let (_, token) = owner_with_car(&app, &site, "9-1-101", "云A90001").await;
    let (status, body) = app
        .send(
            "POST",
            &format!("/v1/owner/lotteries/{id}/applications"),
            &token,
            None,
        )
        .await;
    assert_eq!(status, 201, "{body}");
    tokio::time::sleep(StdDuration::from_millis(2_200)).await;
    let (status, drawn) = app
        .staff("POST", &format!("/v1/admin/lotteries/{id}/draw"), None)
        .await;
    assert_eq!(status, 200, "{drawn}");
    // The won space is taken meanwhile (a term moved onto it, as one rented outside the
    // lottery would be).
    let other = space(&app, &site, "C-502", "common", None).await;
    let (_, applied) =
        staff_rents_to_non_owner(&app, &site, json!({"space_id": other}), "云B50009").await;
    pay_cash(&app, &applied).await;
    sqlx::query("update rentals set space_id = $2::uuid where id = $1::uuid")
        .bind(str_of(&applied["rental"], "id"))
        .bind(&won)
        .execute(&app.db)
        .await
        .unwrap_or_else(|e| panic!("{e}"));

    let accept = format!("/v1/owner/lotteries/{id}/offer/accept");
    for (body, code) in [
        (json!({"plate": "云A99999"}), "not_your_vehicle"),
        (json!({"plate": "云A90001", "months": 13}), "invalid_months"),
    ] {
        let (status, answer) = app.send("POST", &accept, &token, Some(body)).await;
        assert_eq!(
            (status, answer["error"]["code"].as_str()),
            (422, Some(code)),
            "{answer}"
        );
    }
    let (status, answer) = app
        .send("POST", &accept, &token, Some(json!({"plate": "云A90001"})))
        .await;
    assert_eq!(
        (status, answer["error"]["code"].as_str()),
        (409, Some("no_space_left")),
        "{answer}"
    );
    // Refused, the offer stays open for the office to contract.
    let (_, mine) = app.send("GET", "/v1/owner/lotteries", &token, None).await;
    assert_eq!(mine[0]["my_offer"]["state"], "open", "{mine}");
}

#[tokio::test]
async fn a_payment_after_the_hold_lapsed_is_owed_back_and_the_space_stays_free() {
    let app = spawn_app().await;
    let site = app.site(5).await;
    file_monthly_tariff(&app, &site).await;
    let common = space(&app, &site, "C-001", "common", None).await;
    let (status, applied) =
        staff_rents_to_non_owner(&app, &site, json!({"space_id": common}), "云B80001").await;
    assert_eq!(status, 201, "{applied}");
    // A quarter of an hour on, the sweep finds the hold ran out.
    app.advance(Duration::minutes(16));
    let report = parkshare::allocation::rentals::term::sweep(&app.db, app.now(), 7)
        .await
        .unwrap_or_else(|e| panic!("{e:?}"));
    assert_eq!(report.expired, 1);
    let id = str_of(&applied["rental"], "id");
    assert_eq!(rental(&app, id).await["standing"], "expired");
    // Cash at the booth for it is refused as documented: apply again.
    let (status, body) = app
        .staff(
            "POST",
            &format!("/v1/admin/rentals/{id}/payments"),
            Some(json!({"amount": "150.00", "shift": "早班", "idempotency_key": "late-cash"})),
        )
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (409, Some("hold_expired")),
        "{body}"
    );
    // Paid anyway: the money is owed back, nothing is credited, the term stays expired.
    let (status, _) = app
        .send(
            "POST",
            str_of(&applied["payment_intent"], "pay_url"),
            "",
            None,
        )
        .await;
    assert_eq!(status, 202);
    let mut owed = Value::Null;
    for _ in 0..100 {
        let (_, list) = app.staff("GET", "/v1/admin/refunds-owed", None).await;
        owed = list["items"][0].clone();
        if owed.is_object() {
            break;
        }
        tokio::time::sleep(StdDuration::from_millis(50)).await;
    }
    assert_eq!(
        (
            owed["amount"].as_str(),
            owed["rental_id"].as_str(),
            owed["compound_id"].as_str()
        ),
        (Some("150.00"), Some(id), Some(site.compound.as_str())),
        "{owed}"
    );
    assert_eq!(rental(&app, id).await["status"], "expired");
    assert_eq!(app.balance("common_revenue").await, Decimal::ZERO);
    // The space is free for the next application; the renter is a visitor at the gate.
    let (status, next) =
        staff_rents_to_non_owner(&app, &site, json!({"space_id": common}), "云B80002").await;
    assert_eq!(status, 201, "{next}");
    let (_, entry) = app.read(&site.entries[0], "云B80001", ago(1)).await;
    assert_eq!(str_of(&entry, "reason"), "visitor_admitted", "{entry}");
}

#[tokio::test]
async fn rentals_flow_into_the_period_close_by_the_kind_of_space_rented() {
    let app = spawn_app().await;
    let site = app.site(5).await;
    file_monthly_tariff(&app, &site).await;
    reserve_pass_places(&app, &site, 10).await;
    let common = space(&app, &site, "C-001", "common", None).await;
    let (_, on_space) =
        staff_rents_to_non_owner(&app, &site, json!({"space_id": common}), "云B90001").await;
    pay_cash(&app, &on_space).await;
    let (_, pass) =
        staff_rents_to_non_owner(&app, &site, json!({"lot_id": site.lot}), "云B90002").await;
    pay_online(&app, &pass, 1).await;
    let until = Utc::now();
    let path = format!("/v1/admin/compounds/{}/periods/close", site.compound);
    let (status, preview) = app
        .staff(
            "POST",
            &path,
            Some(json!({"until": until, "preview": true})),
        )
        .await;
    assert_eq!(status, 200, "{preview}");
    let income = &preview["summary"]["income"];
    assert_eq!(
        (
            income["common_area_parking"].as_str(),
            income["visitor_pool"].as_str()
        ),
        (Some("150.00"), Some("150.00")),
        "{preview}"
    );
    let (status, closed) = app
        .staff("POST", &path, Some(json!({"until": until})))
        .await;
    assert_eq!(status, 201, "{closed}");
    // The default policy: all common revenue to the maintenance fund.
    assert_eq!(app.balance("common_revenue").await, Decimal::ZERO);
    assert_eq!(app.balance("maintenance_fund").await, dec("-300.00"));
}

#[tokio::test]
async fn a_renters_stay_that_outlasts_the_rental_is_charged_from_the_lapse() {
    let app = spawn_app().await;
    let site = app.site(5).await;
    file_monthly_tariff(&app, &site).await;
    reserve_pass_places(&app, &site, 10).await;
    let (_, pass) =
        staff_rents_to_non_owner(&app, &site, json!({"lot_id": site.lot}), "云B95001").await;
    pay_cash(&app, &pass).await;
    // The term began yesterday: an entry 100 minutes back falls inside it also in the first
    // hours of a Shanghai day (this failed when run just after local midnight).
    let id = str_of(&pass["rental"], "id");
    move_term(
        &app,
        id,
        today() - Duration::days(1),
        today() + Duration::days(29),
    )
    .await;
    let (_, entry) = app.read(&site.entries[0], "云B95001", ago(100)).await;
    assert_eq!(str_of(&entry, "reason"), "permit_holder", "{entry}");
    // Inside the term the exit is free: quoted at nothing.
    let (_, quote) = app
        .send(
            "GET",
            &format!("/v1/public/lots/{}/quote?plate=%E4%BA%91B95001", site.lot),
            "",
            None,
        )
        .await;
    assert_eq!(quote["amount_due"], "0.00", "{quote}");
    // The term (and its grace) ended before this stay began: the whole stay is a visitor's,
    // 90 minutes at ¥3 per started hour.
    move_term(
        &app,
        id,
        today() - Duration::days(40),
        today() - Duration::days(10),
    )
    .await;
    let (_, exit) = app.read(&site.exit, "云B95001", ago(10)).await;
    assert_eq!(
        (
            str_of(&exit, "action"),
            str_of(&exit, "reason"),
            str_of(&exit, "amount_due")
        ),
        ("refuse", "payment_required", "6.00"),
        "{exit}"
    );
    app.pay(str_of(&exit, "session_id"), "6.00").await;
    let (_, paid) = app.read(&site.exit, "云B95001", ago(9)).await;
    assert_eq!(
        (str_of(&paid, "action"), str_of(&paid, "reason")),
        ("open", "exit_paid"),
        "{paid}"
    );
}

#[tokio::test]
async fn cash_and_a_provider_payment_racing_for_one_term_credit_it_once() {
    let app = spawn_app().await;
    let site = app.site(5).await;
    file_monthly_tariff(&app, &site).await;
    let mut cash_taken = 0;
    for i in 0..4 {
        let common = space(&app, &site, &format!("C-00{i}"), "common", None).await;
        let (_, applied) = staff_rents_to_non_owner(
            &app,
            &site,
            json!({"space_id": common}),
            &format!("云B9700{i}"),
        )
        .await;
        let id = str_of(&applied["rental"], "id").to_owned();
        let online = app.send(
            "POST",
            str_of(&applied["payment_intent"], "pay_url"),
            "",
            None,
        );
        let cash_path = format!("/v1/admin/rentals/{id}/payments");
        let cash = app.staff(
            "POST",
            &cash_path,
            Some(json!({"amount": "150.00", "shift": "早班", "idempotency_key": format!("race-{i}")})),
        );
        let ((online_status, _), (cash_status, cash_body)) = tokio::join!(online, cash);
        assert_eq!(online_status, 202);
        match cash_status {
            201 => cash_taken += 1,
            409 => assert_eq!(
                cash_body["error"]["code"], "not_awaiting_payment",
                "{cash_body}"
            ),
            other => panic!("cash answered {other}: {cash_body}"),
        }
        // Wait until the provider's notification has been handled, whichever way.
        for _ in 0..100 {
            let handled = app
                .count(&format!(
                    "select count(*) from provider_callbacks c join payment_intents i on i.id = c.intent_id
                      where i.rental_id = '{id}'"
                ))
                .await;
            if handled == 1 {
                break;
            }
            tokio::time::sleep(StdDuration::from_millis(50)).await;
        }
        assert_eq!(rental(&app, &id).await["status"], "paid");
    }
    // Each term credited once; a notification beaten by the booth's cash is owed back whole.
    assert_eq!(app.balance("common_revenue").await, dec("-600.00"));
    let owed = Decimal::from(150 * cash_taken);
    assert_eq!(app.balance("refunds_payable").await, -owed);
    let (_, check) = app.staff("GET", "/v1/admin/ledger/check", None).await;
    assert_eq!(check["ok"], true, "{check}");
}

#[tokio::test]
async fn pool_passes_are_sold_only_up_to_the_places_the_lot_reserves_for_them() {
    let app = spawn_app().await;
    let site = app.site(1).await;
    file_monthly_tariff(&app, &site).await;
    // A lot sells no pool passes until the office says how many places it reserves for them.
    let (_, lot) = app
        .staff("GET", &format!("/v1/admin/lots/{}", site.lot), None)
        .await;
    assert_eq!(lot["pass_places"], 0, "{lot}");
    let (status, body) =
        staff_rents_to_non_owner(&app, &site, json!({"lot_id": site.lot}), "云B70000").await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (409, Some("no_pass_places")),
        "{body}"
    );
    for places in [-1, 10_001] {
        let (status, body) = app
            .staff(
                "PATCH",
                &format!("/v1/admin/lots/{}", site.lot),
                Some(json!({"pass_places": places})),
            )
            .await;
        assert_eq!(status, 422, "{places}: {body}");
    }
    let created = app
        .create(
            &format!("/v1/admin/compounds/{}/lots", site.compound),
            json!({"name": "地面", "visitor_capacity": 5, "pass_places": 40,
                   "simple_tariff": {"free_min": 15, "hourly": "3.00"}}),
        )
        .await;
    assert_eq!(created["pass_places"], 40, "{created}");
    reserve_pass_places(&app, &site, 3).await;

    // Eight passes applied for at once for three places: three are sold, none more.
    let answers = futures_util::future::join_all((0..8).map(|i| {
        let site = &site;
        let app = &app;
        async move {
            staff_rents_to_non_owner(
                app,
                site,
                json!({"lot_id": site.lot}),
                &format!("云B7100{i}"),
            )
            .await
        }
    }))
    .await;
    let sold = answers.iter().filter(|(s, _)| *s == 201).count();
    let refused = answers
        .iter()
        .filter(|(s, b)| *s == 409 && b["error"]["code"] == "passes_sold_out")
        .count();
    assert_eq!((sold, refused), (3, 5), "{answers:?}");
    // Paid or held, the three stand; a pass for days after they end is sold.
    let held: Vec<&Value> = answers
        .iter()
        .filter(|(s, _)| *s == 201)
        .map(|(_, b)| b)
        .collect();
    pay_cash(&app, held[0]).await;
    let (status, body) =
        staff_rents_to_non_owner(&app, &site, json!({"lot_id": site.lot}), "云B72000").await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (409, Some("passes_sold_out")),
        "{body}"
    );
    let later = today() + Duration::days(40);
    let (status, body) = staff_rents_to_non_owner(
        &app,
        &site,
        json!({"lot_id": site.lot, "starts_on": later}),
        "云B72000",
    )
    .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(
        app.count(&format!(
            "select count(*) from rentals where lot_id = '{}' and space_id is null",
            site.lot
        ))
        .await,
        4
    );

    // Two holds run out: the next pass takes a place at once (they are expired by it, not at
    // the next sweep), and a payment that comes late for one of them is owed back — never a
    // fourth pass in three places (issue 26's outside tester, round 2, N2 and N4).
    app.advance(Duration::minutes(16));
    let (status, body) =
        staff_rents_to_non_owner(&app, &site, json!({"lot_id": site.lot}), "云B73000").await;
    assert_eq!(status, 201, "{body}");
    let lapsed = str_of(&held[1]["rental"], "id").to_owned();
    assert_eq!(rental(&app, &lapsed).await["status"], "expired");
    let (status, _) = app
        .send(
            "POST",
            str_of(&held[1]["payment_intent"], "pay_url"),
            "",
            None,
        )
        .await;
    assert_eq!(status, 202);
    let mut owed = false;
    for _ in 0..100 {
        let (_, list) = app.staff("GET", "/v1/admin/refunds-owed", None).await;
        owed = list["items"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|item| item["rental_id"] == lapsed.as_str());
        if owed {
            break;
        }
        tokio::time::sleep(StdDuration::from_millis(50)).await;
    }
    assert!(owed, "the late payment for the lapsed hold is owed back");
    assert_eq!(rental(&app, &lapsed).await["status"], "expired");
    // Today as the compound counts days (Asia/Shanghai, by the service's clock): Postgres's
    // `current_date` is UTC's, a day behind for the last eight hours of a Shanghai day, and the
    // clock was moved on (this failed when run in the 16 minutes before Shanghai's midnight).
    let today = app.now().with_timezone(&Shanghai).date_naive();
    assert_eq!(
        app.count(&format!(
            "select count(*) from rentals where lot_id = '{}' and space_id is null
                and status in ('paid', 'awaiting_payment') and during @> '{today}'::date",
            site.lot
        ))
        .await,
        2,
        "the paid pass and the new hold stand in the lot's three places"
    );

    // The office sees how many passes are sold and cannot reserve fewer places than they
    // need; reserving just that many stops the sales (issue 26's outside tester, N3).
    let lot_path = format!("/v1/admin/lots/{}", site.lot);
    let (_, lot) = app.staff("GET", &lot_path, None).await;
    assert_eq!(
        (lot["pass_places"].as_i64(), lot["passes_sold"].as_i64()),
        (Some(3), Some(2)),
        "{lot}"
    );
    let (status, body) = app
        .staff(
            "PATCH",
            &lot_path,
            Some(json!({"pass_places": 1, "visitor_capacity": 9})),
        )
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (409, Some("pass_places_below_sold")),
        "{body}"
    );
    let (_, after) = app.staff("GET", &lot_path, None).await;
    assert_eq!(
        (&after["pass_places"], &after["visitor_capacity"]),
        (&lot["pass_places"], &lot["visitor_capacity"]),
        "a refused change changes nothing: {after}"
    );
    let (status, lot) = app
        .staff("PATCH", &lot_path, Some(json!({"pass_places": 2})))
        .await;
    assert_eq!(
        (
            status,
            lot["pass_places"].as_i64(),
            lot["passes_sold"].as_i64()
        ),
        (200, Some(2), Some(2)),
        "{lot}"
    );
    let (status, body) =
        staff_rents_to_non_owner(&app, &site, json!({"lot_id": site.lot}), "云B74000").await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (409, Some("passes_sold_out")),
        "{body}"
    );
}

#[tokio::test]
async fn a_monthly_price_above_the_standard_is_refused_in_monthly_terms() {
    let app = spawn_app().await;
    let site = app.site(5).await;
    let standard = file_monthly_tariff(&app, &site).await;
    let tariff = json!({"free": {"kind": "none"},
        "small": {"day": {"steps": [{"kind": "units", "unit_min": 60, "price": "3.00", "until_min": null}]},
                  "caps": [{"kind": "rolling24h", "amount": "20.00"}]},
        "monthly": {"small": "250.00"}});
    let (status, body) = app
        .staff(
            "POST",
            &format!("/v1/admin/lots/{}/tariffs", site.lot),
            Some(json!({"tariff": tariff, "standard_id": standard,
                        "basis": {"kind": "authority_standard"}})),
        )
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (422, Some("tariff_exceeds_cap")),
        "{body}"
    );
    let message = str_of(&body["error"], "message");
    assert!(
        message
            .contains("the monthly price ¥250.00 is above the standard's monthly maximum ¥200.00")
            && !message.contains(" 0 s"),
        "{message}"
    );
}
