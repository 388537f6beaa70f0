//! The registry admin API: validation, conflicts, and the OpenAPI document.

use serde_json::json;

use crate::helpers::spawn_app;

#[tokio::test]
async fn registry_input_is_validated_with_stable_codes() {
    let app = spawn_app().await;
    let site = app.site(10).await;
    let c = &site.compound;
    let cases = [
        (
            "/v1/admin/compounds".to_owned(),
            json!({"name": "x", "time_zone": "Mars/Base"}),
            422,
            "invalid_field",
        ),
        (
            "/v1/admin/compounds".to_owned(),
            json!({"name": ""}),
            422,
            "invalid_field",
        ),
        (
            format!("/v1/admin/compounds/{c}/lots"),
            json!({"name": "B", "visitor_capacity": -1,
            "simple_tariff": {"free_min": 0, "hourly": "1.00"}}),
            422,
            "invalid_field",
        ),
        (
            format!("/v1/admin/compounds/{c}/lots"),
            json!({"name": "B", "visitor_capacity": 1}),
            422,
            "tariff_required",
        ),
        (
            format!("/v1/admin/compounds/{c}/lots"),
            json!({"name": "B", "visitor_capacity": 1,
            "simple_tariff": {"free_min": 0, "hourly": "1.005"}}),
            422,
            "invalid_field",
        ),
        (
            format!("/v1/admin/compounds/{c}/owners"),
            json!({"unit": "1", "name": "n", "floor_area_m2": "-3"}),
            422,
            "invalid_field",
        ),
        (
            format!("/v1/admin/compounds/{c}/lots"),
            json!({"name": "地库", "visitor_capacity": 1,
            "simple_tariff": {"free_min": 0, "hourly": "1.00"}}),
            409,
            "lot_exists",
        ),
        (
            format!("/v1/admin/lots/{}/spaces", site.lot),
            json!({"code": "A1", "kind": "owned"}),
            422,
            "owner_required",
        ),
    ];
    for (path, body, status, code) in cases {
        let (got, answer) = app.staff("POST", &path, Some(body.clone())).await;
        assert_eq!(
            (got, answer["error"]["code"].as_str()),
            (status, Some(code)),
            "{path} {body}: {answer}"
        );
    }
    let (status, body) =
        app.staff("PUT", &format!("/v1/admin/compounds/{c}/policy"), Some(json!({"owner_free_min": 10,
            "no_entry_record": {"kind": "refuse"}, "reentry": "refuse", "duplicate_window_s": 99999, "exit_grace_min": 5})))
            .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (422, Some("invalid_policy"))
    );
}

#[tokio::test]
async fn owned_space_permits_belong_to_the_space_owner() {
    let app = spawn_app().await;
    let site = app.site(10).await;
    let c = &site.compound;
    let zhang = app
        .create(
            &format!("/v1/admin/compounds/{c}/owners"),
            json!({"unit": "1-101", "name": "张", "floor_area_m2": "90"}),
        )
        .await;
    let li = app
        .create(
            &format!("/v1/admin/compounds/{c}/owners"),
            json!({"unit": "1-102", "name": "李", "floor_area_m2": "95.5"}),
        )
        .await;
    let space = app
        .create(
            &format!("/v1/admin/lots/{}/spaces", site.lot),
            json!({"code": "A-1", "kind": "owned", "owner_id": zhang["id"]}),
        )
        .await;
    let li_car = app
        .create(
            &format!("/v1/admin/compounds/{c}/vehicles"),
            json!({"plate": "云A10001", "class": "small", "owner_id": li["id"]}),
        )
        .await;
    let (status, body) = app
        .staff("POST", &format!("/v1/admin/compounds/{c}/permits"),
            Some(json!({"kind": "owned_space", "vehicle_id": li_car["id"], "space_id": space["id"], "valid_from": "2026-01-01"})))
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (422, Some("not_the_space_owner"))
    );
    let zhang_car = app
        .create(
            &format!("/v1/admin/compounds/{c}/vehicles"),
            json!({"plate": "云A10002", "class": "small", "owner_id": zhang["id"]}),
        )
        .await;
    let permit = app
        .create(&format!("/v1/admin/compounds/{c}/permits"),
            json!({"kind": "owned_space", "vehicle_id": zhang_car["id"], "space_id": space["id"], "valid_from": "2026-01-01"}))
        .await;
    assert_eq!(permit["lot_id"].as_str(), Some(site.lot.as_str()));
}

#[tokio::test]
async fn the_gate_api_openapi_document_is_served() {
    let app = spawn_app().await;
    let (status, doc) = app.send("GET", "/openapi.json", "", None).await;
    assert_eq!(status, 200);
    assert!(doc["paths"]["/v1/gate/events"]["post"].is_object(), "{doc}");
    assert!(doc["components"]["schemas"]["GateDecision"].is_object());
    let (status, ready) = app.send("GET", "/readyz", "", None).await;
    assert_eq!(
        (status, ready),
        (
            200,
            json!({"postgres": true, "redis": true, "migrations": true})
        )
    );
}

/// Outside tester of issue 26: a unit typed another way (full-width digits and dash, from a
/// Chinese input method) is the same household, not a second owner who could apply twice.
#[tokio::test]
async fn a_unit_spelt_another_way_is_the_same_unit() {
    let app = spawn_app().await;
    let site = app.site(10).await;
    let path = format!("/v1/admin/compounds/{}/owners", site.compound);
    let first = app
        .create(
            &path,
            json!({"unit": "３－１２０１", "name": "王", "floor_area_m2": "88"}),
        )
        .await;
    assert_eq!(first["unit"], "3-1201", "{first}");
    let (status, body) = app
        .staff(
            "POST",
            &path,
            Some(json!({"unit": " 3-1201", "name": "王二", "floor_area_m2": "88"})),
        )
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (409, Some("owner_exists")),
        "{body}"
    );
    // Letters are one case: `a-1` is the `A-1` typed full-width before it.
    let block = app
        .create(
            &path,
            json!({"unit": "Ａ-1", "name": "赵", "floor_area_m2": "90"}),
        )
        .await;
    assert_eq!(block["unit"], "A-1", "{block}");
    let (status, body) = app
        .staff(
            "POST",
            &path,
            Some(json!({"unit": "a-1", "name": "赵二", "floor_area_m2": "90"})),
        )
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (409, Some("owner_exists")),
        "{body}"
    );
}
