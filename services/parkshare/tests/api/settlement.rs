//! Payments and the settlement ledger against the real database: prepaying through the
//! simulated provider (which calls back over HTTP), duplicate, concurrent, late and forged
//! callbacks, cash with its shift, refunds by reversing entries, the split by space kind and
//! revenue policy, and the database's own refusal of unbalanced or edited postings.

use std::time::Duration as StdDuration;

use chrono::{Duration, Utc};
use parkshare::settlement::provider::{sign, Notification, SIGNATURE_HEADER};
use parkshare::store::payments;
use rust_decimal::Decimal;
use serde_json::{json, Value};
use uuid::Uuid;

use crate::helpers::{ago, spawn_app, str_of, Site, TestApp};

/// A car that entered 130 minutes ago: 3 started hours at ¥3 = ¥9.00 owed.
async fn parked(app: &TestApp, plate: &str) -> (Site, String) {
    let site = app.site(10).await;
    let (_, entry) = app.read(&site.entries[0], plate, ago(130)).await;
    assert_eq!(str_of(&entry, "action"), "open", "{entry}");
    (site, str_of(&entry, "session_id").to_owned())
}

async fn new_intent(app: &TestApp, site: &Site, plate: &str) -> Value {
    app.intent(site, plate).await
}

pub(crate) async fn ledger_is_consistent(app: &TestApp) {
    let (status, check) = app.staff("GET", "/v1/admin/ledger/check", None).await;
    assert_eq!((status, &check["ok"]), (200, &json!(true)), "{check}");
}

/// Posts a notification signed with the test's provider secret (or `secret` if given).
pub(crate) async fn notify(app: &TestApp, n: &Notification, secret: Option<&str>) -> (u16, Value) {
    let body = serde_json::to_vec(n).unwrap_or_default();
    let key = secret
        .map(str::to_owned)
        .or(app
            .settings
            .provider_secret
            .as_ref()
            .map(|s| secrecy::ExposeSecret::expose_secret(s).to_owned()))
        .unwrap_or_default();
    let response = app
        .client
        .post(format!("{}/v1/payments/callbacks/simulated", app.address))
        .header(SIGNATURE_HEADER, sign(key.as_bytes(), &body))
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap_or_else(|e| panic!("callback: {e}"));
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

pub(crate) fn notification(intent: &Value, amount: &str) -> Notification {
    Notification {
        notification_id: format!("n-{}", Uuid::new_v4().simple()),
        intent_id: str_of(intent, "intent_id").parse().unwrap_or_default(),
        amount: amount.parse().unwrap_or_default(),
        currency: "CNY".into(),
        paid_at: Utc::now(),
    }
}

async fn callbacks(app: &TestApp, intent: &Value) -> Vec<String> {
    sqlx::query_scalar(
        "select outcome from provider_callbacks where intent_id = $1 order by received_at",
    )
    .bind(
        str_of(intent, "intent_id")
            .parse::<Uuid>()
            .unwrap_or_default(),
    )
    .fetch_all(&app.db)
    .await
    .unwrap_or_default()
}

#[tokio::test]
async fn a_stay_prepaid_through_the_provider_opens_the_exit_and_is_credited_once() {
    let app = spawn_app().await;
    let (site, _) = parked(&app, "京A10001").await;
    let intent = new_intent(&app, &site, "京A10001").await;
    assert_eq!(str_of(&intent, "amount"), "9.00");
    assert_eq!(intent["bill"]["total"], "9.00");
    // Asking again for the same amount is the same intent.
    let (status, again) = app
        .send(
            "POST",
            &format!("/v1/public/lots/{}/payment-intents", site.lot),
            "",
            Some(json!({"plate": "京A10001"})),
        )
        .await;
    assert_eq!(
        (status, str_of(&again, "intent_id")),
        (200, str_of(&intent, "intent_id"))
    );

    // The provider delivers the same notification twice, as real ones sometimes do.
    let (status, _) = app
        .send(
            "POST",
            str_of(&intent, "pay_url"),
            "",
            Some(json!({"copies": 2})),
        )
        .await;
    assert_eq!(status, 202);
    let mut outcomes = Vec::new();
    for _ in 0..100 {
        outcomes = callbacks(&app, &intent).await;
        if outcomes.len() == 2 {
            break;
        }
        tokio::time::sleep(StdDuration::from_millis(50)).await;
    }
    assert_eq!(outcomes, ["credited", "duplicate"]);

    let (_, exit) = app.read(&site.exit, "京A10001", Utc::now()).await;
    assert_eq!(
        (str_of(&exit, "action"), str_of(&exit, "reason")),
        ("open", "exit_paid"),
        "{exit}"
    );
    let (_, receipt) = app
        .send(
            "GET",
            &format!(
                "/v1/public/payment-intents/{}",
                str_of(&intent, "intent_id")
            ),
            "",
            None,
        )
        .await;
    assert_eq!(
        (str_of(&receipt, "status"), &receipt["bill"]["total"]),
        ("paid", &json!("9.00"))
    );
    // Visitor pool on common land, no share for the firm: all of it is common revenue.
    assert_eq!(app.balance("provider_clearing").await, Decimal::new(900, 2));
    assert_eq!(app.balance("common_revenue").await, Decimal::new(-900, 2));
    ledger_is_consistent(&app).await;
}

#[tokio::test]
async fn a_paid_quote_opens_the_exit_even_if_a_price_step_began_before_the_payment() {
    let app = spawn_app().await;
    let site = app.site(10).await;
    // In for 2 h 55 min when the driver asks to pay: 3 started hours, ¥9.00.
    let (_, entry) = app.read(&site.entries[0], "京A10009", ago(175)).await;
    let session = str_of(&entry, "session_id").to_owned();
    let intent = new_intent(&app, &site, "京A10009").await;
    assert_eq!(str_of(&intent, "amount"), "9.00");
    // The driver pays ten minutes after the quote: move the stay and the quote back by ten
    // minutes, so the payment lands in the stay's fourth hour (¥12.00 if billed to it).
    for statement in [
        "update sessions set entered_at = entered_at - interval '10 minutes' where id = $1::uuid",
        "update payment_intents set priced_at = priced_at - interval '10 minutes',
                created_at = created_at - interval '10 minutes' where session_id = $1::uuid",
    ] {
        sqlx::query(statement)
            .bind(&session)
            .execute(&app.db)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
    }
    let (status, result) = notify(&app, &notification(&intent, "9.00"), None).await;
    assert_eq!((status, &result["result"]), (200, &json!("credited")));

    // Read again at the barrier: the quote paid covers the stay up to the quote's instant.
    let (_, exit) = app.read(&site.exit, "京A10009", Utc::now()).await;
    assert_eq!(
        (
            str_of(&exit, "action"),
            str_of(&exit, "reason"),
            str_of(&exit, "amount_due")
        ),
        ("open", "exit_paid", "0.00"),
        "{exit}"
    );
    let priced_at: Vec<bool> = sqlx::query_scalar(
        "select p.priced_at = i.priced_at from session_payments p
           join payment_intents i on i.id = p.intent_id where p.session_id = $1::uuid",
    )
    .bind(&session)
    .fetch_all(&app.db)
    .await
    .unwrap_or_default();
    assert_eq!(priced_at, [true], "the payment keeps the quote's instant");
    ledger_is_consistent(&app).await;
}

#[tokio::test]
async fn cash_for_an_exit_read_pays_the_amount_read_and_a_stale_quote_is_refused() {
    let app = spawn_app().await;
    let site = app.site(10).await;
    let (_, entry) = app.read(&site.entries[0], "京A10010", ago(185)).await;
    let session = str_of(&entry, "session_id").to_owned();
    // The exit camera read the plate ten minutes ago, in the stay's third hour: ¥9.00.
    let read_at = Utc::now() - Duration::minutes(10);
    let (_, exit) = app.read(&site.exit, "京A10010", read_at).await;
    assert_eq!(str_of(&exit, "amount_due"), "9.00", "{exit}");
    let path = format!("/v1/admin/sessions/{session}/payments");
    let cash = |key: &str, quoted_at: chrono::DateTime<Utc>| {
        json!({"amount": "9.00", "shift": "早班 王芳", "idempotency_key": key,
               "quoted_at": quoted_at})
    };
    let (status, refused) = app
        .staff(
            "POST",
            &path,
            Some(cash("c-1", Utc::now() - Duration::minutes(16))),
        )
        .await;
    assert_eq!(
        (status, &refused["error"]["code"]),
        (422, &json!("invalid_quoted_at"))
    );
    assert_eq!(app.balance("cash_on_hand").await, Decimal::ZERO);

    // Now in the fourth hour (¥12.00), the cash pays the amount of the read it answers.
    let (status, _) = app.staff("POST", &path, Some(cash("c-2", read_at))).await;
    assert_eq!(status, 201);
    let (_, again) = app.read(&site.exit, "京A10010", Utc::now()).await;
    assert_eq!(
        (str_of(&again, "action"), str_of(&again, "reason")),
        ("open", "exit_paid"),
        "{again}"
    );
    ledger_is_consistent(&app).await;
}

#[tokio::test]
async fn concurrent_duplicate_callbacks_credit_once() {
    let app = spawn_app().await;
    let (site, session) = parked(&app, "京A10002").await;
    let intent = new_intent(&app, &site, "京A10002").await;
    let n = notification(&intent, "9.00");
    let results = futures::future::join_all((0..8).map(|_| notify(&app, &n, None))).await;
    let credited = results
        .iter()
        .filter(|(status, body)| *status == 200 && body["result"] == "credited")
        .count();
    assert_eq!(credited, 1, "{results:?}");
    assert!(results.iter().all(|(status, _)| *status == 200));
    let (_, payments) = app
        .staff(
            "GET",
            &format!("/v1/admin/sessions/{session}/payments"),
            None,
        )
        .await;
    assert_eq!(payments.as_array().map(Vec::len), Some(1), "{payments}");
    assert_eq!(app.balance("common_revenue").await, Decimal::new(-900, 2));
    ledger_is_consistent(&app).await;
}

#[tokio::test]
async fn a_forged_callback_is_refused_and_changes_nothing() {
    let app = spawn_app().await;
    let (site, _) = parked(&app, "京A10003").await;
    let intent = new_intent(&app, &site, "京A10003").await;
    let (status, body) = notify(&app, &notification(&intent, "9.00"), Some("not-the-secret")).await;
    assert_eq!(
        (status, &body["error"]["code"]),
        (403, &json!("bad_signature"))
    );
    assert_eq!(
        app.count("select count(*) from provider_callbacks").await,
        0
    );
    assert_eq!(
        app.count("select count(*) from journal_transactions").await,
        0
    );
    let (_, exit) = app.read(&site.exit, "京A10003", Utc::now()).await;
    assert_eq!(str_of(&exit, "reason"), "payment_required");
}

#[tokio::test]
async fn late_or_wrong_amount_payments_are_owed_back_not_credited() {
    let app = spawn_app().await;
    let (site, _) = parked(&app, "京A10004").await;
    let intent = new_intent(&app, &site, "京A10004").await;
    // Paid the wrong amount: recorded, owed back, the stay still unpaid.
    let (status, body) = notify(&app, &notification(&intent, "5.00"), None).await;
    assert_eq!((status, &body["result"]), (200, &json!("amount_mismatch")));
    let (_, exit) = app.read(&site.exit, "京A10004", Utc::now()).await;
    assert_eq!(str_of(&exit, "reason"), "payment_required");
    // The bad notification does not void the intent (issue 21, item 3): it is still the one
    // to pay, and the right payment opens the barrier.
    let (status, again) = app
        .send(
            "POST",
            &format!("/v1/public/lots/{}/payment-intents", site.lot),
            "",
            Some(json!({"plate": "京A10004"})),
        )
        .await;
    assert_eq!(status, 200, "{again}");
    assert_eq!(
        (&again["intent_id"], &again["status"]),
        (&intent["intent_id"], &json!("pending")),
        "{again}"
    );
    let (_, body) = notify(&app, &notification(&intent, "9.00"), None).await;
    assert_eq!(body["result"], "credited", "{body}");
    let (_, exit) = app.read(&site.exit, "京A10004", Utc::now()).await;
    assert_eq!(str_of(&exit, "action"), "open", "{exit}");

    // Another stay's intent, paid after it expired.
    let (_, entry) = app.read(&site.entries[0], "京A10014", ago(130)).await;
    assert_eq!(str_of(&entry, "action"), "open", "{entry}");
    let intent = new_intent(&app, &site, "京A10014").await;
    sqlx::query(
        "update payment_intents set expires_at = now() - interval '1 second' where id = $1::uuid",
    )
    .bind(str_of(&intent, "intent_id"))
    .execute(&app.db)
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    let late = notification(&intent, "9.00");
    let (_, body) = notify(&app, &late, None).await;
    assert_eq!(body["result"], "late");
    // The same late notification again is a retry: not owed back twice.
    let (_, body) = notify(&app, &late, None).await;
    assert_eq!(body["result"], "duplicate");
    assert_eq!(app.balance("refunds_payable").await, Decimal::new(-1400, 2));
    assert_eq!(app.balance("common_revenue").await, Decimal::new(-900, 2));
    ledger_is_consistent(&app).await;
}

#[tokio::test]
async fn a_provider_clock_running_fast_neither_makes_a_payment_late_nor_voids_the_intent() {
    // Found by an outside tester: a right-amount notification stamped after `expires_at` by a
    // fast provider clock was booked late, voided the intent 15 minutes early, and the
    // driver's correct payment after it was late too.
    let app = spawn_app().await;
    let (site, session) = parked(&app, "京A10024").await;
    let intent = new_intent(&app, &site, "京A10024").await;
    let expires_at: chrono::DateTime<Utc> = str_of(&intent, "expires_at")
        .parse()
        .unwrap_or_else(|e| panic!("{e}: {intent}"));
    let mut fast = notification(&intent, str_of(&intent, "amount"));
    fast.paid_at = expires_at + Duration::seconds(1);
    let (_, body) = notify(&app, &fast, None).await;
    assert_eq!(body["result"], "credited", "{body}");
    let (_, exit) = app.read(&site.exit, "京A10024", Utc::now()).await;
    assert_eq!(str_of(&exit, "action"), "open", "{exit}");
    // Booked when we heard of it, not in 2030 nor before the stay.
    let booked_at: chrono::DateTime<Utc> =
        sqlx::query_scalar("select recorded_at from session_payments where session_id = $1::uuid")
            .bind(&session)
            .fetch_one(&app.db)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        booked_at <= Utc::now() && booked_at < expires_at,
        "{booked_at}"
    );

    // Another stay: a notification dated years before the intent existed is booked at the
    // intent's creation, never in a long-closed period.
    let (_, entry) = app.read(&site.entries[0], "京A10025", ago(130)).await;
    assert_eq!(str_of(&entry, "action"), "open", "{entry}");
    let intent = new_intent(&app, &site, "京A10025").await;
    let mut ancient = notification(&intent, str_of(&intent, "amount"));
    ancient.paid_at = "2020-01-01T00:00:00Z".parse().unwrap_or_default();
    let (_, body) = notify(&app, &ancient, None).await;
    assert_eq!(body["result"], "credited", "{body}");
    let booked_at: chrono::DateTime<Utc> =
        sqlx::query_scalar("select recorded_at from session_payments where intent_id = $1::uuid")
            .bind(str_of(&intent, "intent_id"))
            .fetch_one(&app.db)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
    assert!(booked_at > Utc::now() - Duration::minutes(5), "{booked_at}");
    ledger_is_consistent(&app).await;
}

#[tokio::test]
async fn a_stay_is_never_credited_more_than_its_fee() {
    let app = spawn_app().await;
    let (site, session) = parked(&app, "京A10034").await;
    // The driver asks to pay by phone, then pays ¥9.00 cash at the booth, which withdraws the
    // phone's intent; the phone payment arrives after: the stay is paid, so all of it is owed
    // back (issue 21, item 2).
    let intent = new_intent(&app, &site, "京A10034").await;
    app.pay(&session, "9.00").await;
    let (_, body) = notify(&app, &notification(&intent, "9.00"), None).await;
    assert_eq!(body["result"], "late", "{body}");
    assert_eq!(app.balance("common_revenue").await, Decimal::new(-900, 2));
    assert_eq!(app.balance("refunds_payable").await, Decimal::new(-900, 2));
    // More cash on a paid stay is refused and changes nothing.
    let path = format!("/v1/admin/sessions/{session}/payments");
    let (status, body) = app
        .staff(
            "POST",
            &path,
            Some(json!({"amount": "5.00", "shift": "早班", "idempotency_key": "again"})),
        )
        .await;
    assert_eq!(
        (status, str_of(&body["error"], "code")),
        (422, "nothing_due"),
        "{body}"
    );

    // Another stay (¥9.00): ten million in cash is refused with what is owed...
    let (_, entry) = app.read(&site.entries[0], "京A10044", ago(130)).await;
    let path = format!(
        "/v1/admin/sessions/{}/payments",
        str_of(&entry, "session_id")
    );
    let (status, body) = app
        .staff(
            "POST",
            &path,
            Some(json!({"amount": "10000000.00", "shift": "早班", "idempotency_key": "big"})),
        )
        .await;
    assert_eq!(
        (status, str_of(&body["error"], "code")),
        (422, "amount_exceeds_due"),
        "{body}"
    );
    assert!(str_of(&body["error"], "message").contains("9.00"), "{body}");
    // ...and ¥20 handed over with change given records the ¥9.00 owed.
    let (status, body) = app
        .staff(
            "POST",
            &path,
            Some(
                json!({"amount": "20.00", "shift": "早班", "idempotency_key": "change",
                        "change_given": true}),
            ),
        )
        .await;
    assert_eq!((status, str_of(&body, "amount")), (201, "9.00"), "{body}");
    assert_eq!(app.balance("cash_on_hand").await, Decimal::new(1800, 2));
    assert_eq!(app.balance("common_revenue").await, Decimal::new(-1800, 2));
    ledger_is_consistent(&app).await;
}

#[tokio::test]
async fn a_second_charge_for_a_paid_intent_is_owed_back_not_lost() {
    let app = spawn_app().await;
    let (site, _) = parked(&app, "京A10024").await;
    let intent = new_intent(&app, &site, "京A10024").await;
    let first = notification(&intent, "9.00");
    let (_, body) = notify(&app, &first, None).await;
    assert_eq!(body["result"], "credited");
    // The provider's retry of that notification moves nothing...
    let (_, body) = notify(&app, &first, None).await;
    assert_eq!(body["result"], "duplicate");
    assert_eq!(app.balance("refunds_payable").await, Decimal::ZERO);
    // ...but a second charge (the driver paid twice: a new provider transaction) is money
    // received, owed back, in the ledger (issue 21, item 1).
    let (_, body) = notify(&app, &notification(&intent, "9.00"), None).await;
    assert_eq!(body["result"], "second_charge", "{body}");
    assert_eq!(app.balance("refunds_payable").await, Decimal::new(-900, 2));
    assert_eq!(
        app.balance("provider_clearing").await,
        Decimal::new(1800, 2)
    );
    assert_eq!(app.balance("common_revenue").await, Decimal::new(-900, 2));
    assert_eq!(
        callbacks(&app, &intent).await,
        ["credited", "duplicate", "second_charge"]
    );
    ledger_is_consistent(&app).await;
    // The provider's settlement file lists both charges: both are ours.
    let second: Vec<String> = sqlx::query_scalar(
        "select notification_id from provider_callbacks where outcome = 'second_charge'",
    )
    .fetch_all(&app.db)
    .await
    .unwrap_or_default();
    let file = format!(
        "provider_transaction_id,time,amount,fee,refund\n{},2026-11-23T08:00:00Z,9.00,0,0\n{},2026-11-23T08:01:00Z,9.00,0,0\n",
        first.notification_id, second[0]
    );
    let (status, imported) = import_settlement(&app, &app.staff_token, &file).await;
    assert_eq!(status, 201, "{imported}");
    assert_eq!(imported["report"]["missing_ours"], json!([]), "{imported}");
    assert_eq!(
        imported["report"]["matched"].as_array().map(Vec::len),
        Some(2),
        "{imported}"
    );
}

#[tokio::test]
async fn money_owed_back_is_listed_and_paid_back_once() {
    let app = spawn_app().await;
    let (site, _) = parked(&app, "京A10025").await;
    let intent = new_intent(&app, &site, "京A10025").await;
    let (_, body) = notify(&app, &notification(&intent, "9.00"), None).await;
    assert_eq!(body["result"], "credited");
    let (_, body) = notify(&app, &notification(&intent, "9.00"), None).await;
    assert_eq!(body["result"], "second_charge", "{body}");

    // Staff see the refund to make: the amount, the plate, why.
    let (status, owed) = app.staff("GET", "/v1/admin/refunds-owed", None).await;
    assert_eq!(status, 200, "{owed}");
    let items = owed["items"].as_array().cloned().unwrap_or_default();
    assert_eq!(items.len(), 1, "{owed}");
    assert_eq!(
        (
            &items[0]["amount"],
            &items[0]["plate"],
            &items[0]["compound_id"]
        ),
        (&json!("9.00"), &json!("京A10025"), &json!(site.compound)),
        "{owed}"
    );
    let id = str_of(&items[0], "id").to_owned();
    let path = format!("/v1/admin/refunds-owed/{id}/payouts");

    // Paid back through the provider: the liability is gone, and so is the money held.
    let payout = json!({"method": "provider", "reference": "refund-42"});
    let (status, paid) = app.staff("POST", &path, Some(payout.clone())).await;
    assert_eq!(status, 201, "{paid}");
    assert_eq!(paid["paid_back_from"], "provider_clearing", "{paid}");
    assert_eq!(app.balance("refunds_payable").await, Decimal::ZERO);
    assert_eq!(app.balance("provider_clearing").await, Decimal::new(900, 2));
    // A retry answers the same payout; paying it again another way is refused.
    let (status, again) = app.staff("POST", &path, Some(payout)).await;
    assert_eq!((status, &again), (200, &paid));
    let (status, body) = app
        .staff(
            "POST",
            &path,
            Some(json!({"method": "cash", "reference": "booth-1"})),
        )
        .await;
    assert_eq!(
        (status, str_of(&body["error"], "code")),
        (409, "already_paid_back")
    );
    assert_eq!(app.balance("refunds_payable").await, Decimal::ZERO);
    let (_, owed) = app.staff("GET", "/v1/admin/refunds-owed", None).await;
    assert_eq!(owed["items"], json!([]), "{owed}");
    let (_, done) = app
        .staff("GET", "/v1/admin/refunds-owed?status=paid_back", None)
        .await;
    assert_eq!(
        done["items"][0]["paid_back_reference"], "refund-42",
        "{done}"
    );
    ledger_is_consistent(&app).await;

    // Bad input changes nothing; another firm's receipt is not found.
    let (status, body) = app
        .staff("GET", "/v1/admin/refunds-owed?status=maybe", None)
        .await;
    assert_eq!(
        (status, str_of(&body["error"], "code")),
        (422, "invalid_status")
    );
    let other = app.new_tenant("别家物业").await;
    let (status, _) = app
        .send(
            "POST",
            &path,
            &other,
            Some(json!({"method": "provider", "reference": "x"})),
        )
        .await;
    assert_eq!(status, 404);
    let (status, _) = app
        .staff(
            "POST",
            &format!("/v1/admin/refunds-owed/{}/payouts", Uuid::new_v4()),
            Some(json!({"method": "provider", "reference": "x"})),
        )
        .await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn cash_refunds_reverse_every_share_and_never_exceed_the_payment() {
    let app = spawn_app().await;
    let (site, session) = parked(&app, "京A10005").await;
    // The owners' contract lets the firm keep 20 % of common revenue.
    let (status, _) = app
        .staff("POST", &format!("/v1/admin/compounds/{}/revenue-policies", site.compound), Some(json!({
            "policy": {"platform_fee_pct": "10", "management_share_pct": "20", "unsold_to": "developer", "visitor_pool_land": "common"}
        })))
        .await;
    assert_eq!(status, 201);
    let payment = app.pay(&session, "9.00").await;
    assert_eq!(
        (str_of(&payment, "method"), str_of(&payment, "shift")),
        ("cash", "早班 王芳")
    );
    assert_eq!(app.balance("cash_on_hand").await, Decimal::new(900, 2));
    assert_eq!(app.balance("common_revenue").await, Decimal::new(-720, 2));
    assert_eq!(
        app.balance("management_income").await,
        Decimal::new(-180, 2)
    );

    let refund = |amount: &'static str, key: &'static str| {
        let path = format!("/v1/admin/payments/{}/refunds", str_of(&payment, "id"));
        let app = &app;
        async move {
            app.staff(
                "POST",
                &path,
                Some(json!({"amount": amount, "reason": "重复收费", "idempotency_key": key})),
            )
            .await
        }
    };
    let (status, first) = refund("3.33", "r1").await;
    assert_eq!(
        (status, str_of(&first, "refunded_total")),
        (201, "3.33"),
        "{first}"
    );
    // A retried request is the same refund, not a second one.
    let (status, again) = refund("3.33", "r1").await;
    assert_eq!((status, str_of(&again, "id")), (200, str_of(&first, "id")));
    let (status, too_much) = refund("5.68", "r2").await;
    assert_eq!(
        (status, &too_much["error"]["code"]),
        (422, &json!("refund_exceeds_payment"))
    );
    let (status, _) = refund("5.67", "r3").await;
    assert_eq!(status, 201);
    for kind in ["cash_on_hand", "common_revenue", "management_income"] {
        assert_eq!(app.balance(kind).await, Decimal::ZERO, "{kind}");
    }
    // The ledger kept every entry: one payment, two refunds, seven postings.
    let (_, journal) = app
        .staff(
            "GET",
            &format!("/v1/admin/ledger/journal?session_id={session}"),
            None,
        )
        .await;
    assert_eq!(
        journal["lines"].as_array().map(Vec::len),
        Some(9),
        "{journal}"
    );
    assert_eq!(journal["truncated"], false, "{journal}");
    ledger_is_consistent(&app).await;
}

#[tokio::test]
async fn a_shared_private_space_credits_its_owner_less_the_platform_fee() {
    let app = spawn_app().await;
    let (site, session) = parked(&app, "京A10006").await;
    let owner = app
        .create(
            &format!("/v1/admin/compounds/{}/owners", site.compound),
            json!({"unit": "1-101", "name": "张伟", "floor_area_m2": "89.50"}),
        )
        .await;
    let space = app
        .create(
            &format!("/v1/admin/lots/{}/spaces", site.lot),
            json!({"code": "A-001", "kind": "owned", "owner_id": owner["id"]}),
        )
        .await;
    // Placing a visitor on a shared space is issue 4's booking; here the stay is put there directly.
    sqlx::query("update sessions set space_id = $1 where id = $2")
        .bind(str_of(&space, "id").parse::<Uuid>().unwrap_or_default())
        .bind(session.parse::<Uuid>().unwrap_or_default())
        .execute(&app.db)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    app.pay(&session, "9.00").await;
    let (_, earnings) = app
        .staff(
            "GET",
            &format!("/v1/admin/owners/{}/earnings", str_of(&owner, "id")),
            None,
        )
        .await;
    // 10 % of 9.00 is the platform's 0.90; the owner is owed 8.10.
    assert_eq!(str_of(&earnings, "balance"), "8.10", "{earnings}");
    assert_eq!(earnings["months"][0]["stays"], 1);
    assert_eq!(
        app.balance("platform_fee_income").await,
        Decimal::new(-90, 2)
    );
    assert_eq!(app.balance("common_revenue").await, Decimal::ZERO);

    // Another firm's staff cannot see the owner or refund the payment.
    let other = app.new_tenant("别家物业").await;
    let (status, _) = app
        .send(
            "GET",
            &format!("/v1/admin/owners/{}/earnings", str_of(&owner, "id")),
            &other,
            None,
        )
        .await;
    assert_eq!(status, 404);
    let (_, payments) = app
        .staff(
            "GET",
            &format!("/v1/admin/sessions/{session}/payments"),
            None,
        )
        .await;
    let (status, _) = app
        .send(
            "POST",
            &format!("/v1/admin/payments/{}/refunds", str_of(&payments[0], "id")),
            &other,
            Some(json!({"amount": "1.00", "reason": "x", "idempotency_key": "k"})),
        )
        .await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn the_database_refuses_unbalanced_or_edited_postings() {
    let app = spawn_app().await;
    let (_, session) = parked(&app, "京A10007").await;
    app.pay(&session, "9.00").await;

    // An unbalanced transaction is refused at commit.
    let mut tx = app.db.begin().await.unwrap_or_else(|e| panic!("{e}"));
    let id = Uuid::new_v4();
    sqlx::query("insert into journal_transactions (id, tenant_id, idempotency_key, kind, memo) values ($1, $2, 'x', 'payment', 'x')")
        .bind(id)
        .bind(Uuid::new_v4())
        .execute(&mut *tx)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    sqlx::query(
        "insert into postings (transaction_id, account_kind, account_holder, amount)
                 select $1, kind, holder_id, 1.00 from ledger_accounts limit 1",
    )
    .bind(id)
    .execute(&mut *tx)
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    let committed = tx.commit().await;
    assert!(committed.is_err_and(|e| e.to_string().contains("does not balance")));

    for sql in [
        "update postings set amount = amount * 2",
        "delete from postings",
        "delete from journal_transactions",
        "truncate postings cascade",
        "truncate journal_transactions cascade",
        "truncate credential_audit",
    ] {
        let result = sqlx::query(sql).execute(&app.db).await;
        assert!(
            result.is_err_and(|e| e.to_string().contains("immutable")),
            "{sql}"
        );
    }
    assert_eq!(app.balance("cash_on_hand").await, Decimal::new(900, 2));
    ledger_is_consistent(&app).await;

    // With the triggers switched off (a superuser can), every posting is deleted: the check
    // names the payment's transaction, left without postings (issue 21, item 7).
    let mut tampering = app.db.acquire().await.unwrap_or_else(|e| panic!("{e}"));
    for sql in [
        "set session_replication_role = replica",
        "delete from postings",
        "set session_replication_role = origin",
    ] {
        sqlx::query(sql)
            .execute(&mut *tampering)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
    }
    drop(tampering);
    let (_, check) = app.staff("GET", "/v1/admin/ledger/check", None).await;
    assert_eq!(check["ok"], false, "{check}");
    let payment_transaction: Uuid =
        sqlx::query_scalar("select transaction_id from session_payments limit 1")
            .fetch_one(&app.db)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        check["transactions_without_postings"],
        json!([payment_transaction]),
        "{check}"
    );
}

#[tokio::test]
async fn revenue_policies_apply_forward_only() {
    let app = spawn_app().await;
    let (site, session) = parked(&app, "京A10008").await;
    let path = format!("/v1/admin/compounds/{}/revenue-policies", site.compound);
    let policy = json!({"platform_fee_pct": "10", "management_share_pct": "50", "unsold_to": "developer", "visitor_pool_land": "common"});
    let (status, body) = app
        .staff("POST", &path, Some(json!({"policy": policy, "effective_from": (Utc::now() - Duration::days(1)).to_rfc3339()})))
        .await;
    assert_eq!(
        (status, &body["error"]["code"]),
        (422, &json!("retroactive_policy"))
    );
    let (status, _) = app
        .staff("POST", &path, Some(json!({"policy": policy, "effective_from": (Utc::now() + Duration::days(1)).to_rfc3339()})))
        .await;
    assert_eq!(status, 201);
    let mut bad = policy.clone();
    bad["management_share_pct"] = json!("120");
    let (status, body) = app.staff("POST", &path, Some(json!({"policy": bad}))).await;
    assert_eq!(
        (status, &body["error"]["code"]),
        (422, &json!("invalid_policy"))
    );
    // Paid today: tomorrow's 50 % share does not apply yet.
    app.pay(&session, "9.00").await;
    assert_eq!(app.balance("common_revenue").await, Decimal::new(-900, 2));
    assert_eq!(app.balance("management_income").await, Decimal::ZERO);
}

#[tokio::test]
async fn a_retried_cash_payment_is_recorded_once() {
    let app = spawn_app().await;
    let (_, session) = parked(&app, "京A10009").await;
    let body = json!({"amount": "9.00", "shift": "晚班 李强", "idempotency_key": "booth-1-0001"});
    let path = format!("/v1/admin/sessions/{session}/payments");
    let results =
        futures::future::join_all((0..4).map(|_| app.staff("POST", &path, Some(body.clone()))))
            .await;
    let created = results.iter().filter(|(status, _)| *status == 201).count();
    assert_eq!(created, 1, "{results:?}");
    // Every retry answers with the very payment the first recorded, linked to its journal
    // transaction.
    let first = &results[0].1;
    assert!(first["transaction_id"].is_string(), "{first}");
    assert!(
        results
            .iter()
            .all(|(status, b)| (*status == 200 || *status == 201) && b == first),
        "{results:?}"
    );
    assert_eq!(app.balance("cash_on_hand").await, Decimal::new(900, 2));
    let (status, body) = app
        .staff(
            "POST",
            &path,
            Some(json!({"amount": "-1", "shift": "x", "idempotency_key": "k"})),
        )
        .await;
    assert_eq!(
        (status, &body["error"]["code"]),
        (422, &json!("invalid_amount"))
    );
}

#[tokio::test]
async fn an_idempotency_key_reused_for_another_request_is_refused() {
    let app = spawn_app().await;
    let (site, session) = parked(&app, "京A10019").await;
    let path = format!("/v1/admin/sessions/{session}/payments");
    let first = json!({"amount": "4.00", "shift": "早班", "idempotency_key": "booth-7"});
    let (status, paid) = app.staff("POST", &path, Some(first.clone())).await;
    assert_eq!(status, 201, "{paid}");
    // The same request again is a retry: the first payment.
    let (status, again) = app.staff("POST", &path, Some(first)).await;
    assert_eq!((status, &again), (200, &paid));
    // The same key with another amount, shift or stay is not: 409, and nothing is booked.
    let (_, other_stay) = app.read(&site.entries[0], "京A10029", ago(130)).await;
    let other_path = format!(
        "/v1/admin/sessions/{}/payments",
        str_of(&other_stay, "session_id")
    );
    for (path, body) in [
        (
            &path,
            json!({"amount": "5.00", "shift": "早班", "idempotency_key": "booth-7"}),
        ),
        (
            &path,
            json!({"amount": "4.00", "shift": "晚班", "idempotency_key": "booth-7"}),
        ),
        (
            &other_path,
            json!({"amount": "4.00", "shift": "早班", "idempotency_key": "booth-7"}),
        ),
    ] {
        let (status, body) = app.staff("POST", path, Some(body)).await;
        assert_eq!(
            (status, str_of(&body["error"], "code")),
            (409, "idempotency_key_reused"),
            "{body}"
        );
    }
    assert_eq!(app.balance("cash_on_hand").await, Decimal::new(400, 2));

    // Refunds alike.
    let refunds = format!("/v1/admin/payments/{}/refunds", str_of(&paid, "id"));
    let refund = json!({"amount": "1.00", "reason": "多收", "idempotency_key": "r-1"});
    let (status, first) = app.staff("POST", &refunds, Some(refund.clone())).await;
    assert_eq!(status, 201, "{first}");
    let (status, again) = app.staff("POST", &refunds, Some(refund)).await;
    assert_eq!((status, &again), (200, &first));
    let (status, body) = app
        .staff(
            "POST",
            &refunds,
            Some(json!({"amount": "2.00", "reason": "多收", "idempotency_key": "r-1"})),
        )
        .await;
    assert_eq!(
        (status, str_of(&body["error"], "code")),
        (409, "idempotency_key_reused")
    );
    assert_eq!(app.balance("cash_on_hand").await, Decimal::new(300, 2));
    ledger_is_consistent(&app).await;
}

#[tokio::test]
async fn money_above_one_amounts_bound_is_refused_clearly_or_owed_back() {
    let app = spawn_app().await;
    let (site, session) = parked(&app, "京A10039").await;
    // Typed in at the booth: refused, saying why.
    let path = format!("/v1/admin/sessions/{session}/payments");
    let (status, body) = app
        .staff(
            "POST",
            &path,
            Some(json!({"amount": "10000000.01", "shift": "早班", "idempotency_key": "big"})),
        )
        .await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(str_of(&body["error"], "code"), "invalid_amount");
    assert!(
        str_of(&body["error"], "message").contains("10,000,000"),
        "{body}"
    );
    // Received through the provider: money that arrived is booked, and owed back.
    let intent = new_intent(&app, &site, "京A10039").await;
    let (status, body) = notify(&app, &notification(&intent, "20000000.00"), None).await;
    assert_eq!(
        (status, &body["result"]),
        (200, &json!("amount_mismatch")),
        "{body}"
    );
    assert_eq!(
        app.balance("refunds_payable").await,
        Decimal::new(-2_000_000_000, 2)
    );
    assert_eq!(
        app.balance("provider_clearing").await,
        Decimal::new(2_000_000_000, 2)
    );
    // Beyond what any payment can be stored as, it is not a payment.
    let (status, body) = notify(&app, &notification(&intent, "10000000000.00"), None).await;
    assert_eq!(status, 400, "{body}");
    ledger_is_consistent(&app).await;
}

/// Load benchmark, run by hand (`cargo test --release -p parkshare --test api --
/// --ignored ledger_throughput --nocapture`): cash payments posted through the API by 16
/// concurrent clients, each one a payment row, a session update and a balanced transaction.
/// The figure is written down in services/ledger/README.md; CI never gates on it.
#[tokio::test]
#[ignore]
async fn ledger_throughput() {
    const PAYMENTS: usize = 2000;
    const CLIENTS: usize = 16;
    let app = spawn_app().await;
    let site = app.site(PAYMENTS as i32).await;
    let mut sessions = Vec::new();
    for i in 0..CLIENTS {
        let (_, entry) = app
            .read(&site.entries[0], &format!("京B{:05}", 10_000 + i), ago(130))
            .await;
        sessions.push(str_of(&entry, "session_id").to_owned());
    }
    let started = std::time::Instant::now();
    futures::future::join_all(sessions.iter().map(|session| {
        let app = &app;
        async move {
            for _ in 0..PAYMENTS / CLIENTS {
                let body = json!({"amount": "0.01", "shift": "压测", "idempotency_key": Uuid::new_v4().to_string()});
                let (status, body) = app.staff("POST", &format!("/v1/admin/sessions/{session}/payments"), Some(body)).await;
                assert_eq!(status, 201, "{body}");
            }
        }
    }))
    .await;
    let elapsed = started.elapsed();
    println!(
        "{PAYMENTS} payments by {CLIENTS} clients in {:.2} s: {:.0} payments/s ({:.0} postings/s)",
        elapsed.as_secs_f64(),
        PAYMENTS as f64 / elapsed.as_secs_f64(),
        2.0 * PAYMENTS as f64 / elapsed.as_secs_f64()
    );
    assert_eq!(
        app.balance("cash_on_hand").await,
        Decimal::new(PAYMENTS as i64, 2)
    );
    ledger_is_consistent(&app).await;
}

/// One request of a settlement workload, kept so that the whole stream can be sent again.
enum Request {
    Callback(Notification),
    Cash { session: String, body: Value },
    Refund { payment: String, body: Value },
}

async fn send_request(app: &TestApp, request: &Request) -> (u16, Value) {
    match request {
        Request::Callback(n) => notify(app, n, None).await,
        Request::Cash { session, body } => {
            app.staff(
                "POST",
                &format!("/v1/admin/sessions/{session}/payments"),
                Some(body.clone()),
            )
            .await
        }
        Request::Refund { payment, body } => {
            app.staff(
                "POST",
                &format!("/v1/admin/payments/{payment}/refunds"),
                Some(body.clone()),
            )
            .await
        }
    }
}

async fn ledger_snapshot(app: &TestApp) -> (Value, i64, i64) {
    let (_, accounts) = app.staff("GET", "/v1/admin/ledger/accounts", None).await;
    (
        accounts,
        app.count("select count(*) from journal_transactions").await,
        app.count("select count(*) from session_payments").await,
    )
}

#[tokio::test]
async fn a_random_workload_settles_to_the_fen_and_replaying_it_changes_nothing() {
    use rand::{Rng, SeedableRng};
    let mut rng = rand::rngs::StdRng::seed_from_u64(20261123);
    let app = spawn_app().await;
    let site = app.site(50).await;
    let mut requests = Vec::new();
    let mut received_fen = 0_i64; // what drivers handed over, once per payment
    let mut refunded_fen = 0_i64;
    for car in 0..16 {
        let plate = format!("京C{:05}", 20_000 + car);
        let (_, entry) = app
            .read(&site.entries[car % 2], &plate, ago(rng.gen_range(20..3000)))
            .await;
        let session = str_of(&entry, "session_id").to_owned();
        let intent = new_intent(&app, &site, &plate).await;
        let due_fen = (str_of(&intent, "amount")
            .parse::<Decimal>()
            .unwrap_or_default()
            * Decimal::ONE_HUNDRED)
            .try_into()
            .unwrap_or(0_i64);
        match rng.gen_range(0..4) {
            // Prepaid, the notification delivered once to three times, maybe late.
            0 | 1 => {
                let mut n = notification(&intent, str_of(&intent, "amount"));
                if rng.gen_bool(0.2) {
                    // A provider clock far off: the payment counts when it was heard of.
                    n.paid_at = Utc::now() + Duration::hours(1);
                }
                for _ in 0..rng.gen_range(1..=3) {
                    requests.push(Request::Callback(n.clone()));
                }
                received_fen += due_fen;
            }
            // Cash at the booth, then maybe one or two partial refunds.
            _ => {
                let key = format!("cash-{car}");
                let body = json!({"amount": str_of(&intent, "amount"), "shift": "早班", "idempotency_key": key});
                let (status, payment) = send_request(
                    &app,
                    &Request::Cash {
                        session: session.clone(),
                        body: body.clone(),
                    },
                )
                .await;
                assert_eq!(status, 201, "{payment}");
                requests.push(Request::Cash { session, body });
                received_fen += due_fen;
                let mut left = due_fen;
                for r in 0..rng.gen_range(0..=2) {
                    if left == 0 {
                        break;
                    }
                    let amount = rng.gen_range(1..=left);
                    let body = json!({"amount": Decimal::new(amount, 2).to_string(), "reason": "调价退款", "idempotency_key": format!("refund-{car}-{r}")});
                    requests.push(Request::Refund {
                        payment: str_of(&payment, "id").to_owned(),
                        body,
                    });
                    refunded_fen += amount;
                    left -= amount;
                }
            }
        }
    }
    for request in &requests {
        let (status, body) = send_request(&app, request).await;
        assert!(status == 200 || status == 201, "{status} {body}");
    }
    let first = ledger_snapshot(&app).await;
    let received = app.balance("provider_clearing").await + app.balance("cash_on_hand").await;
    assert_eq!(received, Decimal::new(received_fen - refunded_fen, 2));
    // Everything received is credited to somebody: owners, common revenue, fees, refunds owed.
    let mut credited = Decimal::ZERO;
    for kind in [
        "common_revenue",
        "management_income",
        "platform_fee_income",
        "owner_payable",
        "developer_payable",
        "refunds_payable",
    ] {
        credited += app.balance(kind).await;
    }
    assert_eq!(-credited, received);
    ledger_is_consistent(&app).await;

    // The same stream again, as a provider and a flaky booth would resend it: nothing changes.
    for request in &requests {
        let (status, body) = send_request(&app, request).await;
        assert!(status == 200 || status == 201, "{status} {body}");
    }
    assert_eq!(ledger_snapshot(&app).await, first);
}

async fn import_settlement(app: &TestApp, token: &str, csv_text: &str) -> (u16, Value) {
    let from = (Utc::now() - Duration::days(1)).to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let to = (Utc::now() + Duration::hours(1)).to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    // RFC 3339 in UTC ('Z') needs no escaping in a query string.
    let response = app
        .client
        .post(format!(
            "{}/v1/admin/reconciliations?provider=simulated&from={from}&to={to}",
            app.address
        ))
        .bearer_auth(token)
        .header("content-type", "text/csv")
        .body(csv_text.to_owned())
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn a_settlement_file_is_reconciled_and_its_fees_booked_once() {
    let app = spawn_app().await;
    let site = app.site(10).await;
    let mut ids = Vec::new();
    for plate in ["京A70001", "京A70002", "京A70003"] {
        let (_, entry) = app.read(&site.entries[0], plate, ago(130)).await;
        assert_eq!(entry["action"], "open", "{entry}");
        let intent = new_intent(&app, &site, plate).await;
        let n = notification(&intent, str_of(&intent, "amount"));
        let (status, body) = notify(&app, &n, None).await;
        assert_eq!(status, 200, "{body}");
        ids.push(n.notification_id);
    }
    // Theirs: the first agrees, the second says another amount, an unknown third, and our
    // third payment is missing from it.
    let file = format!(
        "provider_transaction_id,time,amount,fee,refund\n{},2026-11-23T08:00:00Z,9.00,0.05,0\n{},2026-11-23T08:01:00Z,8.00,0.05,0\nzz-unknown,2026-11-23T08:02:00Z,1.00,0.01,0\n",
        ids[0], ids[1]
    );
    let (status, imported) = import_settlement(&app, &app.staff_token, &file).await;
    assert_eq!(status, 201, "{imported}");
    let report = &imported["report"];
    assert_eq!(report["matched"], json!([ids[0]]), "{imported}");
    assert_eq!(report["missing_ours"], json!(["zz-unknown"]));
    assert_eq!(report["missing_theirs"], json!([ids[2]]));
    assert_eq!(
        (
            report["mismatches"][0]["provider_transaction_id"].as_str(),
            report["mismatches"][0]["field"].as_str(),
            report["mismatches"][0]["ours"].as_str()
        ),
        (Some(ids[1].as_str()), Some("amount"), Some("9.00"))
    );
    assert_eq!(report["fees"], "0.11");
    assert_eq!(app.balance("provider_fees").await, Decimal::new(11, 2));
    // The fee of the row matching none of our payments belongs to no compound: it is in the
    // firm's own journal, so that exports still sum to the ledger (an outside tester found
    // it in no export at all).
    let (from, to) = (
        Utc::now() - Duration::hours(1),
        Utc::now() + Duration::hours(1),
    );
    let url = reqwest::Url::parse_with_params(
        &format!("{}/v1/admin/ledger/firm-journal.csv", app.address),
        &[("from", from.to_rfc3339()), ("to", to.to_rfc3339())],
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let firm = app
        .client
        .get(url)
        .bearer_auth(&app.staff_token)
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(firm.status(), 200);
    let text = firm.text().await.unwrap_or_default();
    let mut fees = Decimal::ZERO;
    for record in csv::Reader::from_reader(text.as_bytes()).records() {
        let record = record.unwrap_or_else(|e| panic!("{e}: {text}"));
        if &record[5] == "provider_fees" {
            fees += record[7].parse::<Decimal>().unwrap_or_default();
        }
    }
    assert_eq!(fees, Decimal::new(1, 2), "{text}");
    ledger_is_consistent(&app).await;

    // The same file again answers the first import and books nothing more.
    let (status, again) = import_settlement(&app, &app.staff_token, &file).await;
    assert_eq!((status, &again["id"]), (200, &imported["id"]));
    assert_eq!(app.balance("provider_fees").await, Decimal::new(11, 2));

    // A malformed file names its bad lines and records nothing.
    let bad = format!(
        "provider_transaction_id,time,amount,fee,refund\n{},2026-11-23T08:00:00Z,9.00,0.05,0\n{},2026-11-23T08:00:00Z,nine,0.05,0\n{},2026-11-23T08:00:00Z,9.00,0.05,0\n",
        ids[2], ids[1], ids[2]
    );
    let (status, body) = import_settlement(&app, &app.staff_token, &bad).await;
    assert_eq!(
        (status, str_of(&body["error"], "code")),
        (422, "settlement_file_rejected"),
        "{body}"
    );
    let lines: Vec<_> = body["error"]["rows"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|r| r["line"].clone())
        .collect();
    assert_eq!(lines, vec![json!(3), json!(4)], "{body}");
    let (_, listed) = app.staff("GET", "/v1/admin/reconciliations", None).await;
    assert_eq!(listed.as_array().map(Vec::len), Some(1));
    // Another firm sees none of it.
    let other = app.new_tenant("别家物业").await;
    let (_, theirs) = app
        .send("GET", "/v1/admin/reconciliations", &other, None)
        .await;
    assert_eq!(theirs, json!([]));
}

/// The sum of a period's `journal.csv` per account kind.
async fn journal_csv_sums(
    app: &TestApp,
    period: &str,
) -> std::collections::BTreeMap<String, Decimal> {
    let mut sums = std::collections::BTreeMap::new();
    for ((kind, _), amount) in app.journal_sums(period).await {
        *sums.entry(kind).or_insert(Decimal::ZERO) += amount;
    }
    sums
}

#[tokio::test]
async fn a_periods_journal_carries_the_provider_fees_of_its_compound() {
    let app = spawn_app().await;
    let site = app.site(10).await;
    let mut ids = Vec::new();
    for plate in ["京A71001", "京A71002"] {
        let (_, entry) = app.read(&site.entries[0], plate, ago(130)).await;
        assert_eq!(entry["action"], "open", "{entry}");
        let intent = new_intent(&app, &site, plate).await;
        let n = notification(&intent, str_of(&intent, "amount"));
        let (status, body) = notify(&app, &n, None).await;
        assert_eq!(status, 200, "{body}");
        ids.push(n.notification_id);
    }
    // Two of our payments, and a row the provider has that matches none of ours.
    let file = format!(
        "provider_transaction_id,time,amount,fee,refund\n{},2026-11-23T08:00:00Z,9.00,0.05,0\n{},2026-11-23T08:01:00Z,9.00,0.04,0\nzz-unknown,2026-11-23T08:02:00Z,1.00,0.01,0\n",
        ids[0], ids[1]
    );
    let (status, imported) = import_settlement(&app, &app.staff_token, &file).await;
    assert_eq!(status, 201, "{imported}");
    // The compound's rows' fees are its own; the unknown row's stays with the firm.
    let fees: Vec<_> = imported["fee_transactions"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|f| (f["compound_id"].clone(), f["amount"].clone()))
        .collect();
    assert_eq!(
        fees,
        vec![
            (json!(site.compound), json!("0.09")),
            (Value::Null, json!("0.01"))
        ],
        "{imported}"
    );
    assert_eq!(app.balance("provider_fees").await, Decimal::new(10, 2));

    let path = format!("/v1/admin/compounds/{}/periods/close", site.compound);
    let (status, closed) = app
        .staff("POST", &path, Some(json!({"until": Utc::now()})))
        .await;
    assert_eq!(status, 201, "{closed}");
    let sums = journal_csv_sums(&app, str_of(&closed, "id")).await;
    // Everything the ledger holds is in the period's journal but the firm's 0.01 of fees.
    assert_eq!(
        sums.get("provider_fees"),
        Some(&Decimal::new(9, 2)),
        "{sums:?}"
    );
    for kind in [
        "provider_clearing",
        "common_revenue",
        "management_income",
        "maintenance_fund",
    ] {
        let firm_only = if kind == "provider_clearing" {
            Decimal::new(-1, 2)
        } else {
            Decimal::ZERO
        };
        assert_eq!(
            sums.get(kind).copied().unwrap_or_default() + firm_only,
            app.balance(kind).await,
            "{kind}: {sums:?}"
        );
    }
    assert_eq!(sums.values().sum::<Decimal>(), Decimal::ZERO);
}

/// Payment rows this connection has read, as far as its own statistics know (they reach the
/// shared statistics later, so only a difference within one transaction is exact).
async fn payment_rows_read(tx: &mut sqlx::PgConnection) -> i64 {
    sqlx::query_scalar(
        "select seq_tup_read + coalesce(idx_tup_fetch, 0)
           from pg_stat_xact_user_tables where relname = 'session_payments'",
    )
    .fetch_one(tx)
    .await
    .unwrap_or_else(|e| panic!("{e}"))
}

/// A payment is read back — after its commit, for a retry, or in a session's list — by an
/// index, not by reading every payment stored: the booth's answer costs the same on the
/// thousandth payment of the day as on the first.
#[tokio::test]
async fn a_payment_is_read_back_without_reading_every_payment() {
    let app = spawn_app().await;
    let (_, busy) = parked(&app, "京A10011").await;
    for _ in 0..30 {
        app.pay(&busy, "0.01").await;
    }
    let (_, session) = parked(&app, "京A10012").await;
    let key = Uuid::new_v4().to_string();
    let paid = app.pay_with_key(&session, "9.00", &key).await;
    let session_id: Uuid = session.parse().unwrap_or_else(|e| panic!("{e}"));
    let tenant_id: Uuid = sqlx::query_scalar("select tenant_id from sessions where id = $1")
        .bind(session_id)
        .fetch_one(&app.db)
        .await
        .unwrap_or_else(|e| panic!("{e}"));

    let mut tx = app.db.begin().await.unwrap_or_else(|e| panic!("{e}"));
    // Whether an index can serve each lookup, not whether Postgres prefers a scan of a table
    // this small.
    sqlx::query("set local enable_seqscan = off")
        .execute(&mut *tx)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let before = payment_rows_read(&mut tx).await;
    let by_key = payments::payment_by_key(&mut *tx, tenant_id, &format!("cash:{key}"))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        by_key.map(|p| p.id.to_string()),
        paid["id"].as_str().map(str::to_owned)
    );
    let listed = payments::payments_of_session(&mut *tx, session_id)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(listed.len(), 1);
    let read = payment_rows_read(&mut tx).await - before;
    assert_eq!(
        read, 2,
        "payment rows read to find one payment twice, among 31"
    );
}

#[tokio::test]
async fn the_journal_pages_whole_transactions_and_reads_days_in_the_compounds_zone() {
    let app = spawn_app().await;
    let site = app.site(10).await;
    for plate in ["京A81001", "京A81002", "京A81003"] {
        let (_, entry) = app.read(&site.entries[0], plate, ago(130)).await;
        app.pay(str_of(&entry, "session_id"), "9.00").await;
    }
    // One transaction a page: every page holds all of its transaction's postings.
    let mut seen = Vec::new();
    let mut path = "/v1/admin/ledger/journal?limit=1".to_owned();
    for _ in 0..10 {
        let (status, page) = app.staff("GET", &path, None).await;
        assert_eq!(status, 200, "{page}");
        let lines = page["lines"].as_array().cloned().unwrap_or_default();
        let ids: std::collections::BTreeSet<&str> =
            lines.iter().map(|l| str_of(l, "transaction_id")).collect();
        assert_eq!(ids.len(), 1, "{page}");
        let sum: Decimal = lines
            .iter()
            .filter_map(|l| l["amount"].as_str()?.parse::<Decimal>().ok())
            .sum();
        assert_eq!(sum, Decimal::ZERO, "a page cut a transaction: {page}");
        seen.extend(ids.into_iter().map(str::to_owned));
        if page["truncated"] == false {
            assert_eq!(page["next_cursor"], Value::Null);
            break;
        }
        path = format!(
            "/v1/admin/ledger/journal?limit=1&cursor={}",
            str_of(&page, "next_cursor")
        );
    }
    assert_eq!(seen.len(), 3, "{seen:?}");
    // `day` is the compound's calendar day (Asia/Shanghai), not UTC's.
    let today = Utc::now()
        .with_timezone(&chrono_tz::Asia::Shanghai)
        .date_naive();
    let (_, page) = app
        .staff(
            "GET",
            &format!("/v1/admin/ledger/journal?day={today}"),
            None,
        )
        .await;
    assert_eq!(
        page["lines"].as_array().map(Vec::len).map(|n| n > 0),
        Some(true),
        "{page}"
    );
    let tomorrow = today.succ_opt().unwrap_or(today);
    let (_, page) = app
        .staff(
            "GET",
            &format!("/v1/admin/ledger/journal?day={tomorrow}"),
            None,
        )
        .await;
    assert_eq!(page["lines"], json!([]), "{page}");
    let (status, page) = app
        .staff("GET", "/v1/admin/ledger/journal?cursor=nonsense", None)
        .await;
    assert_eq!(
        (status, str_of(&page["error"], "code")),
        (422, "invalid_cursor")
    );
}

#[tokio::test]
async fn a_stay_paid_more_than_ten_million_in_total_still_leaves() {
    let app = spawn_app().await;
    let (site, session) = parked(&app, "京A10054").await;
    // Several payments on a very dear stay add up past the bound on one amount (found by an
    // outside tester: the quote, the intent and the exit then answered 500).
    sqlx::query("update sessions set paid = 10000000.01 where id = $1::uuid")
        .bind(&session)
        .execute(&app.db)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let (status, quote) = app
        .send(
            "GET",
            &format!("/v1/public/lots/{}/quote?plate=%E4%BA%ACA10054", site.lot),
            "",
            None,
        )
        .await;
    assert_eq!(status, 200, "{quote}");
    let (status, exit) = app.read(&site.exit, "京A10054", Utc::now()).await;
    assert_eq!((status, str_of(&exit, "action")), (200, "open"), "{exit}");
}

#[tokio::test]
async fn books_past_a_trillion_still_take_payments_and_close() {
    // Found by an outside tester (issue 21, item 4): a firm's provider clearing topped out at
    // ¥999,999,999,999.99; every later notification of the firm answered 500 and a compound
    // whose fund reached it could never close again.
    use parkshare::store::ledger::{post, NewTransaction};
    use parkshare_ledger::{Account, AccountKind, Entry, Posting};
    let app = spawn_app().await;
    let (site, _) = parked(&app, "京A10031").await;
    let (tenant, compound): (uuid::Uuid, uuid::Uuid) =
        sqlx::query_as("select tenant_id, id from compounds where id = $1::uuid")
            .bind(&site.compound)
            .fetch_one(&app.db)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
    // Years of a very large firm's takings, booked as the service books them.
    let huge = rust_decimal::dec!(2_000_000_000_000.00);
    let entry = Entry::new([
        Posting {
            account: Account::new(AccountKind::ProviderClearing, tenant),
            amount: huge,
        },
        Posting {
            account: Account::new(AccountKind::CommonRevenue, compound),
            amount: -huge,
        },
    ])
    .unwrap_or_else(|e| panic!("{e}"));
    let mut tx = app.db.begin().await.unwrap_or_else(|e| panic!("{e}"));
    post(
        &mut tx,
        &NewTransaction {
            tenant_id: tenant,
            idempotency_key: "years-of-takings",
            kind: "payment",
            session_id: None,
            payment_id: None,
            booking_id: None,
            rental_id: None,
            compound_id: Some(compound),
            memo: "多年收入",
        },
        &entry,
    )
    .await
    .unwrap_or_else(|e| panic!("a ledger must take a balance past a trillion: {e}"));
    tx.commit().await.unwrap_or_else(|e| panic!("{e}"));

    let intent = new_intent(&app, &site, "京A10031").await;
    let (status, body) = notify(
        &app,
        &notification(&intent, str_of(&intent, "amount")),
        None,
    )
    .await;
    assert_eq!(
        (status, &body["result"]),
        (200, &json!("credited")),
        "{body}"
    );
    let (status, closed) = app
        .staff(
            "POST",
            &format!("/v1/admin/compounds/{}/periods/close", site.compound),
            Some(json!({"until": Utc::now()})),
        )
        .await;
    assert_eq!(status, 201, "{closed}");
    ledger_is_consistent(&app).await;
}

#[tokio::test]
async fn refunds_owed_are_paged_whole_and_one_payout_reference_settles_one_receipt() {
    // Found by an outside tester: past 500 receipts the list stopped without a way on, and
    // one provider refund id could record the payout of two receipts.
    let app = spawn_app().await;
    let (site, _) = parked(&app, "京A10041").await;
    let intent = new_intent(&app, &site, "京A10041").await;
    let (_, body) = notify(&app, &notification(&intent, "9.00"), None).await;
    assert_eq!(body["result"], "credited");
    for _ in 0..5 {
        let (_, body) = notify(&app, &notification(&intent, "9.00"), None).await;
        assert_eq!(body["result"], "second_charge", "{body}");
    }
    let mut seen = Vec::new();
    let mut path = "/v1/admin/refunds-owed?limit=2".to_owned();
    loop {
        let (status, page) = app.staff("GET", &path, None).await;
        assert_eq!(status, 200, "{page}");
        for item in page["items"].as_array().cloned().unwrap_or_default() {
            seen.push((
                str_of(&item, "received_at").to_owned(),
                str_of(&item, "id").to_owned(),
            ));
        }
        match page["next_cursor"].as_str() {
            Some(cursor) => path = format!("/v1/admin/refunds-owed?limit=2&cursor={cursor}"),
            None => {
                assert_eq!(page["truncated"], false, "{page}");
                break;
            }
        }
    }
    assert_eq!(seen.len(), 5, "every receipt once: {seen:?}");
    let mut sorted = seen.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(sorted.len(), 5, "no receipt twice: {seen:?}");
    for (query, code) in [
        ("limit=0", "invalid_limit"),
        ("cursor=nonsense", "invalid_cursor"),
    ] {
        let (status, body) = app
            .staff("GET", &format!("/v1/admin/refunds-owed?{query}"), None)
            .await;
        assert_eq!(
            (status, str_of(&body["error"], "code")),
            (422, code),
            "{body}"
        );
    }

    // One provider refund pays back one receipt; the same reference for another is refused.
    let payout = json!({"method": "provider", "reference": "refund-7"});
    let first = format!("/v1/admin/refunds-owed/{}/payouts", seen[0].1);
    let (status, body) = app.staff("POST", &first, Some(payout.clone())).await;
    assert_eq!(status, 201, "{body}");
    let second = format!("/v1/admin/refunds-owed/{}/payouts", seen[1].1);
    let (status, body) = app.staff("POST", &second, Some(payout)).await;
    assert_eq!(
        (status, str_of(&body["error"], "code")),
        (409, "reference_already_used"),
        "{body}"
    );
    assert_eq!(app.balance("refunds_payable").await, Decimal::new(-3600, 2));
    ledger_is_consistent(&app).await;
}

#[tokio::test]
async fn money_no_ledger_can_take_is_listed_for_the_operator() {
    // Found by an outside tester: a signed notification for an unknown intent was answered and
    // kept nowhere anyone looks; one in dollars was booked as yuan owed back.
    let app = spawn_app().await;
    let (site, _) = parked(&app, "京A10051").await;
    let intent = new_intent(&app, &site, "京A10051").await;
    let mut stranger = notification(&intent, "6.00");
    stranger.intent_id = Uuid::new_v4();
    let (_, body) = notify(&app, &stranger, None).await;
    assert_eq!(body["result"], "unknown_intent", "{body}");
    let mut dollars = notification(&intent, str_of(&intent, "amount"));
    dollars.currency = "USD".into();
    let (_, body) = notify(&app, &dollars, None).await;
    assert_eq!(body["result"], "foreign_currency", "{body}");
    assert_eq!(app.balance("refunds_payable").await, Decimal::ZERO);
    ledger_is_consistent(&app).await;

    let operator = app.operator_token();
    let (status, page) = app
        .send(
            "GET",
            "/v1/operator/unbooked-receipts?limit=1",
            &operator,
            None,
        )
        .await;
    assert_eq!(status, 200, "{page}");
    assert_eq!(page["items"][0]["outcome"], "unknown_intent", "{page}");
    assert_eq!(page["items"][0]["amount"], "6.00", "{page}");
    let cursor = str_of(&page, "next_cursor").to_owned();
    let (_, page) = app
        .send(
            "GET",
            &format!("/v1/operator/unbooked-receipts?limit=1&cursor={cursor}"),
            &operator,
            None,
        )
        .await;
    assert_eq!(
        (
            &page["items"][0]["outcome"],
            &page["items"][0]["currency"],
            &page["next_cursor"]
        ),
        (&json!("foreign_currency"), &json!("USD"), &Value::Null),
        "{page}"
    );
    let (status, _) = app
        .staff("GET", "/v1/operator/unbooked-receipts", None)
        .await;
    assert_eq!(status, 401, "staff are not the operator");
}

#[tokio::test]
async fn a_receipt_says_what_is_owed_back_and_cash_in_full_withdraws_the_phone_intent() {
    // Found by an outside tester: after cash then the phone, the phone's receipt said only
    // "paid" although the money was owed back; and cash in full left the intent payable.
    let app = spawn_app().await;
    let (site, session) = parked(&app, "京A10061").await;
    let intent = new_intent(&app, &site, "京A10061").await;
    let receipt_path = format!(
        "/v1/public/payment-intents/{}",
        str_of(&intent, "intent_id")
    );
    let (_, before) = app.send("GET", &receipt_path, "", None).await;
    assert_eq!(before["owed_back"], "0.00", "{before}");
    // The phone pays; then the same notification's twin charges again: owed back.
    let (_, body) = notify(&app, &notification(&intent, "9.00"), None).await;
    assert_eq!(body["result"], "credited");
    let (_, body) = notify(&app, &notification(&intent, "9.00"), None).await;
    assert_eq!(body["result"], "second_charge");
    let (_, receipt) = app.send("GET", &receipt_path, "", None).await;
    assert_eq!(
        (str_of(&receipt, "status"), str_of(&receipt, "owed_back")),
        ("paid", "9.00"),
        "{receipt}"
    );

    // Another stay paid in full at the booth: its pending phone intent is withdrawn.
    let (_, entry) = app.read(&site.entries[0], "京A10062", ago(130)).await;
    let other = str_of(&entry, "session_id").to_owned();
    let pending = new_intent(&app, &site, "京A10062").await;
    let paid = app.pay(&other, str_of(&pending, "amount")).await;
    // Every amount with two decimals, nothing refunded included (it read "0").
    assert_eq!(paid["refunded"], "0.00", "{paid}");
    let (_, withdrawn) = app
        .send(
            "GET",
            &format!(
                "/v1/public/payment-intents/{}",
                str_of(&pending, "intent_id")
            ),
            "",
            None,
        )
        .await;
    assert_eq!(withdrawn["status"], "cancelled", "{withdrawn}");
    let _ = session;
    ledger_is_consistent(&app).await;
}
