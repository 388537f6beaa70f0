//! Devices post only for their own lane; staff see only their own tenant; bad input changes
//! nothing.

use serde_json::json;

use crate::helpers::{ago, spawn_app, str_of};

#[tokio::test]
async fn devices_need_their_own_secret_and_may_only_post_for_their_own_gate() {
    let app = spawn_app().await;
    let site = app.site(10).await;
    let body = json!({"gate_id": site.entries[0].id, "plate": "京A12345", "captured_at": ago(1), "device_event_id": "x"});

    let (status, answer) = app
        .send("POST", "/v1/gate/events", "", Some(body.clone()))
        .await;
    assert_eq!(
        (status, answer["error"]["code"].as_str()),
        (401, Some("unauthenticated"))
    );
    let (status, _) = app
        .send(
            "POST",
            "/v1/gate/events",
            "not-a-secret",
            Some(body.clone()),
        )
        .await;
    assert_eq!(status, 401);
    // The exit gate's device posting as the entry gate.
    let (status, answer) = app
        .send(
            "POST",
            "/v1/gate/events",
            &site.exit.secret,
            Some(body.clone()),
        )
        .await;
    assert_eq!(
        (status, answer["error"]["code"].as_str()),
        (403, Some("gate_not_permitted"))
    );
    // A staff token is not a device credential.
    let (status, _) = app
        .send("POST", "/v1/gate/events", &app.staff_token, Some(body))
        .await;
    assert_eq!(status, 401);
    assert_eq!(app.count("select count(*) from gate_events").await, 0);
    assert_eq!(app.count("select count(*) from sessions").await, 0);
}

#[tokio::test]
async fn another_tenants_objects_answer_404() {
    let app = spawn_app().await;
    let site = app.site(10).await;
    let other = app.new_tenant("别家物业").await;
    let lot = &site.lot;
    let compound = &site.compound;
    for (method, path) in [
        ("GET", format!("/v1/admin/compounds/{compound}")),
        ("GET", format!("/v1/admin/compounds/{compound}/lots")),
        ("GET", format!("/v1/admin/lots/{lot}")),
        ("GET", format!("/v1/admin/lots/{lot}/occupancy")),
        ("GET", format!("/v1/admin/lots/{lot}/sessions")),
        ("POST", format!("/v1/admin/lots/{lot}/occupancy/rebuild")),
    ] {
        let (status, body) = app.send(method, &path, &other, None).await;
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (404, Some("not_found")),
            "{method} {path}"
        );
    }
    let (status, _) = app
        .send(
            "POST",
            &format!("/v1/admin/lots/{lot}/gates"),
            &other,
            Some(json!({"name": "x", "direction": "entry"})),
        )
        .await;
    assert_eq!(status, 404);
    let (_, entry) = app.read(&site.entries[0], "京A12345", ago(30)).await;
    let session = str_of(&entry, "session_id");
    let (status, _) = app
        .send(
            "POST",
            &format!("/v1/admin/sessions/{session}/payments"),
            &other,
            Some(json!({"amount": "1.00", "shift": "早班", "idempotency_key": "k1"})),
        )
        .await;
    assert_eq!(status, 404);
    let (status, list) = app.send("GET", "/v1/admin/compounds", &other, None).await;
    assert_eq!((status, list), (200, json!([])));
    let (status, _) = app.send("GET", "/v1/admin/compounds", "", None).await;
    assert_eq!(status, 401);
}

#[tokio::test]
async fn bad_events_get_a_clear_code_and_change_nothing() {
    let app = spawn_app().await;
    let site = app.site(10).await;
    let gate = &site.entries[0];
    let base = json!({"gate_id": gate.id, "plate": "京A12345", "captured_at": ago(1), "device_event_id": "e-1"});
    let future = chrono::Utc::now() + chrono::Duration::hours(2);
    let cases = [
        ("plate", json!("无牌车"), 422, "malformed_plate"),
        ("plate", json!("京A1234"), 422, "malformed_plate"),
        ("captured_at", json!(future), 422, "capture_time_in_future"),
        (
            "captured_at",
            json!(ago(60 * 24 * 40)),
            422,
            "capture_time_too_old",
        ),
        ("plate_colour", json!("purple"), 422, "unknown_plate_colour"),
        ("vehicle_class", json!("tank"), 422, "unknown_vehicle_class"),
        ("device_event_id", json!(""), 422, "invalid_device_event_id"),
        ("captured_at", json!("yesterday"), 400, "invalid_body"),
        ("gate_id", json!("not-a-uuid"), 400, "invalid_body"),
    ];
    for (field, value, status, code) in cases {
        let mut body = base.clone();
        body[field] = value;
        let (got, answer) = app
            .send("POST", "/v1/gate/events", &gate.secret, Some(body))
            .await;
        assert_eq!(
            (got, answer["error"]["code"].as_str()),
            (status, Some(code)),
            "{field}: {answer}"
        );
        assert!(!answer["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .is_empty());
    }
    assert_eq!(app.count("select count(*) from gate_events").await, 0);
    assert_eq!(app.count("select count(*) from sessions").await, 0);
    assert_eq!(app.occupancy(&site.lot).await["redis_counts"]["visitor"], 0);
}

/// "In the future" is judged by the service's clock, not the machine's: once the clock is two
/// hours on, a read captured then is live, and one captured two hours after that is refused.
#[tokio::test]
async fn a_capture_time_is_judged_by_the_services_clock() {
    let app = spawn_app().await;
    let site = app.site(10).await;
    app.advance(chrono::Duration::hours(2));
    let (status, entry) = app.read(&site.entries[0], "京A12345", app.now()).await;
    assert_eq!((status, str_of(&entry, "action")), (200, "open"), "{entry}");
    let ahead = app.now() + chrono::Duration::hours(2);
    let (status, refused) = app.read(&site.entries[0], "京A54321", ahead).await;
    assert_eq!(
        (status, refused["error"]["code"].as_str()),
        (422, Some("capture_time_in_future")),
        "{refused}"
    );
}

#[tokio::test]
async fn unknown_routes_and_ids_answer_with_the_error_body() {
    let app = spawn_app().await;
    let (status, body) = app.staff("GET", "/v1/admin/lots/not-a-uuid", None).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (404, Some("not_found"))
    );
    let (status, body) = app.staff("GET", "/v1/nothing-here", None).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (404, Some("not_found"))
    );
}

#[tokio::test]
async fn a_server_error_reveals_nothing_internal_and_is_not_a_decision() {
    let app = spawn_app().await;
    let site = app.site(10).await;
    // Break the session insert, which runs after the visitor place was taken in Redis.
    sqlx::query("alter table sessions add constraint refuse_all check (plate = 'none') not valid")
        .execute(&app.db)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let (status, body) = app.read(&site.entries[0], "京A12345", ago(1)).await;
    assert_eq!(status, 500);
    assert_eq!(
        body,
        json!({"error": {"code": "internal", "message": "internal error"}})
    );
    // The place taken in Redis before the failure was given back.
    assert_eq!(app.occupancy(&site.lot).await["redis_counts"]["visitor"], 0);
    assert_eq!(app.count("select count(*) from sessions").await, 0);
}
