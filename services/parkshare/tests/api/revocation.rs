//! Revoking and rotating every kind of credential: refused at once (although cached), in
//! every replica within a second, another firm's answers 404, and each change is audited.

use std::time::{Duration, Instant};

use chrono::Utc;
use serde_json::json;

use crate::helpers::{ago, spawn_app, spawn_with, str_of, Gate, TestApp};

fn operator(app: &TestApp) -> String {
    app.operator_token()
}

async fn tenant_of(app: &TestApp, staff_token: &str) -> String {
    let id: uuid::Uuid =
        sqlx::query_scalar("select tenant_id from staff_tokens where token_sha256 = $1")
            .bind(parkshare::auth::digest(staff_token))
            .fetch_one(&app.db)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
    id.to_string()
}

/// A second staff token of the app's firm, issued by the operator: `(id, token)`.
async fn second_staff_token(app: &TestApp) -> (String, String) {
    let tenant = tenant_of(app, &app.staff_token).await;
    let (status, body) = app
        .send(
            "POST",
            &format!("/v1/operator/tenants/{tenant}/staff-tokens"),
            &operator(app),
            Some(json!({"label": "夜班 李强"})),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    (
        str_of(&body, "id").to_owned(),
        str_of(&body, "token").to_owned(),
    )
}

/// The actions the firm's audit records for a credential, oldest first, with who did them.
async fn audited(app: &TestApp, staff_token: &str, credential_id: &str) -> Vec<(String, String)> {
    let (status, lines) = app
        .send("GET", "/v1/admin/credential-audit", staff_token, None)
        .await;
    assert_eq!(status, 200, "{lines}");
    let mut found: Vec<_> = lines
        .as_array()
        .into_iter()
        .flatten()
        .filter(|l| l["credential_id"] == credential_id)
        .map(|l| {
            (
                str_of(l, "action").to_owned(),
                str_of(l, "actor_kind").to_owned(),
            )
        })
        .collect();
    found.reverse();
    found
}

fn pairs(expected: &[(&str, &str)]) -> Vec<(String, String)> {
    expected
        .iter()
        .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
        .collect()
}

/// Calls `call` (which must succeed) until one call is answered without a lookup in Postgres
/// (`misses` unchanged): the credential is then cached. The notification of an earlier change
/// (the gates just created) may empty the cache once in between.
async fn until_cached<F, Fut>(misses: impl Fn() -> u64, mut call: F)
where
    F: FnMut(u32) -> Fut,
    Fut: std::future::Future<Output = u16>,
{
    for attempt in 0..50 {
        let before = misses();
        assert_eq!(call(attempt).await, 200);
        if misses() == before {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("never answered from the cache");
}

async fn status_of(app: &TestApp, method: &str, path: &str, token: &str) -> u16 {
    app.send(method, path, token, None).await.0
}

#[tokio::test]
async fn a_revoked_staff_token_is_refused_at_once_although_it_was_cached() {
    let app = spawn_app().await;
    let (id, token) = second_staff_token(&app).await;
    until_cached(
        || app.credentials.staff.misses(),
        |_| status_of(&app, "GET", "/v1/admin/compounds", &token),
    )
    .await;

    // Another firm's staff cannot name it.
    let other = app.new_tenant("另一家物业").await;
    let revoke = format!("/v1/admin/staff-tokens/{id}/revoke");
    let (status, body) = app.send("POST", &revoke, &other, None).await;
    assert_eq!(
        (status, &body["error"]["code"]),
        (404, &json!("not_found")),
        "{body}"
    );
    assert_eq!(
        status_of(&app, "GET", "/v1/admin/compounds", &token).await,
        200
    );

    let (status, revoked) = app.staff("POST", &revoke, None).await;
    assert_eq!(status, 200, "{revoked}");
    let (status, body) = app.send("GET", "/v1/admin/compounds", &token, None).await;
    assert_eq!(
        (status, &body["error"]["code"]),
        (401, &json!("unauthenticated"))
    );

    // Revoking again changes nothing and says when it was revoked.
    let (status, again) = app.staff("POST", &revoke, None).await;
    assert_eq!(
        (status, &again["revoked_at"]),
        (200, &revoked["revoked_at"])
    );

    let (_, listed) = app.staff("GET", "/v1/admin/staff-tokens", None).await;
    let listed = listed.as_array().cloned().unwrap_or_default();
    assert_eq!(listed.len(), 2, "{listed:?}");
    let revoked_one = listed.iter().find(|t| t["id"] == id.as_str());
    assert_eq!(
        revoked_one.map(|t| &t["revoked_at"]),
        Some(&revoked["revoked_at"])
    );
    assert!(listed
        .iter()
        .all(|t| t.get("token").is_none() && t.get("token_sha256").is_none()));
    assert!(listed
        .iter()
        .any(|t| t["current"] == true && t["revoked_at"].is_null()));
    assert_eq!(
        status_of(&app, "GET", "/v1/admin/compounds", &app.staff_token).await,
        200
    );
    assert_eq!(
        audited(&app, &app.staff_token, &id).await,
        pairs(&[("issued", "operator"), ("revoked", "staff")])
    );
    // The other firm's audit shows none of it.
    assert!(audited(&app, &other, &id).await.is_empty());
}

#[tokio::test]
async fn staff_rotate_their_own_token_and_may_revoke_it() {
    let app = spawn_app().await;
    let (_, listed) = app.staff("GET", "/v1/admin/staff-tokens", None).await;
    let own = str_of(&listed[0], "id").to_owned();
    let (status, rotated) = app
        .staff(
            "POST",
            &format!("/v1/admin/staff-tokens/{own}/rotate"),
            None,
        )
        .await;
    assert_eq!(status, 201, "{rotated}");
    let new = str_of(&rotated, "token").to_owned();
    let new_id = str_of(&rotated, "id").to_owned();
    assert_ne!(new_id, own);
    assert_eq!(
        status_of(&app, "GET", "/v1/admin/compounds", &app.staff_token).await,
        401
    );
    assert_eq!(
        status_of(&app, "GET", "/v1/admin/compounds", &new).await,
        200
    );
    // A revoked token is not rotated back to life.
    let (status, body) = app
        .send(
            "POST",
            &format!("/v1/admin/staff-tokens/{own}/rotate"),
            &new,
            None,
        )
        .await;
    assert_eq!(
        (status, &body["error"]["code"]),
        (409, &json!("credential_revoked"))
    );

    let revoke_own = format!("/v1/admin/staff-tokens/{new_id}/revoke");
    assert_eq!(status_of(&app, "POST", &revoke_own, &new).await, 200);
    assert_eq!(
        status_of(&app, "GET", "/v1/admin/compounds", &new).await,
        401
    );
    let (_, tokens) = app
        .send(
            "GET",
            &format!(
                "/v1/operator/tenants/{}/staff-tokens",
                tenant_of(&app, &new).await
            ),
            &operator(&app),
            None,
        )
        .await;
    assert_eq!(
        tokens
            .as_array()
            .map(|t| t.iter().filter(|t| t["revoked_at"].is_null()).count()),
        Some(0),
        "{tokens}"
    );
}

#[tokio::test]
async fn the_operator_revokes_and_rotates_staff_tokens_of_any_firm() {
    let app = spawn_app().await;
    let other = app.new_tenant("另一家物业").await;
    let tenant = tenant_of(&app, &app.staff_token).await;
    let other_tenant = tenant_of(&app, &other).await;
    let (id, token) = second_staff_token(&app).await;
    assert_eq!(
        status_of(&app, "GET", "/v1/admin/compounds", &token).await,
        200
    );

    // Staff are not the operator; the token is not the other firm's.
    let rotate = format!("/v1/operator/tenants/{tenant}/staff-tokens/{id}/rotate");
    assert_eq!(
        status_of(&app, "POST", &rotate, &app.staff_token).await,
        401
    );
    let wrong = format!("/v1/operator/tenants/{other_tenant}/staff-tokens/{id}/revoke");
    assert_eq!(status_of(&app, "POST", &wrong, &operator(&app)).await, 404);

    // Cached, yet refused as soon as the operator's rotation is answered (the operator's
    // routes are outside the staff API, whose writes also forget the cache).
    let (status, rotated) = app.send("POST", &rotate, &operator(&app), None).await;
    assert_eq!(status, 201, "{rotated}");
    assert_eq!(
        status_of(&app, "GET", "/v1/admin/compounds", &token).await,
        401
    );
    let new = str_of(&rotated, "token");
    assert_eq!(
        status_of(&app, "GET", "/v1/admin/compounds", new).await,
        200
    );
    let new_id = str_of(&rotated, "id").to_owned();
    let revoke = format!("/v1/operator/tenants/{tenant}/staff-tokens/{new_id}/revoke");
    assert_eq!(status_of(&app, "POST", &revoke, &operator(&app)).await, 200);
    assert_eq!(
        status_of(&app, "GET", "/v1/admin/compounds", new).await,
        401
    );
    assert_eq!(
        audited(&app, &app.staff_token, &id).await,
        pairs(&[("issued", "operator"), ("rotated", "operator")])
    );
    assert_eq!(
        audited(&app, &app.staff_token, &new_id).await,
        pairs(&[("issued", "operator"), ("revoked", "operator")])
    );
}

/// An owner of the app's firm with a token: `(owner_id, token_id, token)`.
async fn owner_with_token(app: &TestApp, compound: &str) -> (String, String, String) {
    let owner = app
        .create(
            &format!("/v1/admin/compounds/{compound}/owners"),
            json!({"unit": "1-1-101", "name": "张伟", "floor_area_m2": "90.00"}),
        )
        .await;
    let owner_id = str_of(&owner, "id").to_owned();
    let token = app
        .create(
            &format!("/v1/admin/owners/{owner_id}/tokens"),
            json!({"label": "手机"}),
        )
        .await;
    (
        owner_id,
        str_of(&token, "id").to_owned(),
        str_of(&token, "token").to_owned(),
    )
}

#[tokio::test]
async fn owner_tokens_are_listed_revoked_and_rotated_by_their_firm_only() {
    let app = spawn_app().await;
    let site = app.site(5).await;
    let (owner, id, token) = owner_with_token(&app, &site.compound).await;
    assert_eq!(
        status_of(&app, "GET", "/v1/owner/spaces", &token).await,
        200
    );

    let other = app.new_tenant("另一家物业").await;
    let revoke = format!("/v1/admin/owners/{owner}/tokens/{id}/revoke");
    assert_eq!(status_of(&app, "POST", &revoke, &other).await, 404);
    assert_eq!(
        status_of(
            &app,
            "GET",
            &format!("/v1/admin/owners/{owner}/tokens"),
            &other
        )
        .await,
        404
    );
    // Named through another owner, it is not found either.
    let stranger = app
        .create(
            &format!("/v1/admin/compounds/{}/owners", site.compound),
            json!({"unit": "2-1-101", "name": "李娜", "floor_area_m2": "80.00"}),
        )
        .await;
    let stranger = str_of(&stranger, "id");
    let through_stranger = format!("/v1/admin/owners/{stranger}/tokens/{id}/revoke");
    assert_eq!(
        status_of(&app, "POST", &through_stranger, &app.staff_token).await,
        404
    );
    assert_eq!(
        status_of(&app, "GET", "/v1/owner/spaces", &token).await,
        200
    );

    let (status, rotated) = app
        .staff(
            "POST",
            &format!("/v1/admin/owners/{owner}/tokens/{id}/rotate"),
            None,
        )
        .await;
    assert_eq!(status, 201, "{rotated}");
    let new = str_of(&rotated, "token").to_owned();
    let new_id = str_of(&rotated, "id").to_owned();
    assert_eq!(
        status_of(&app, "GET", "/v1/owner/spaces", &token).await,
        401
    );
    assert_eq!(status_of(&app, "GET", "/v1/owner/spaces", &new).await, 200);

    let (status, _) = app
        .staff(
            "POST",
            &format!("/v1/admin/owners/{owner}/tokens/{new_id}/revoke"),
            None,
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(status_of(&app, "GET", "/v1/owner/spaces", &new).await, 401);

    let (status, listed) = app
        .staff("GET", &format!("/v1/admin/owners/{owner}/tokens"), None)
        .await;
    assert_eq!(status, 200);
    let listed = listed.as_array().cloned().unwrap_or_default();
    assert_eq!(listed.len(), 2);
    assert!(listed
        .iter()
        .all(|t| !t["revoked_at"].is_null() && t["label"] == "手机"));
    assert_eq!(
        audited(&app, &app.staff_token, &id).await,
        pairs(&[("issued", "staff"), ("rotated", "staff")])
    );
    assert_eq!(
        audited(&app, &app.staff_token, &new_id).await,
        pairs(&[("issued", "staff"), ("revoked", "staff")])
    );
}

#[tokio::test]
async fn committee_tokens_are_revoked_and_rotated_within_their_compound() {
    let app = spawn_app().await;
    let site = app.site(5).await;
    let other_site = app.site(5).await;
    let issued = app
        .create(
            &format!("/v1/admin/compounds/{}/committee-tokens", site.compound),
            json!({"label": "第一届业委会"}),
        )
        .await;
    let (id, token) = (
        str_of(&issued, "id").to_owned(),
        str_of(&issued, "token").to_owned(),
    );
    assert_eq!(
        status_of(&app, "GET", "/v1/committee/periods", &token).await,
        200
    );

    let other = app.new_tenant("另一家物业").await;
    let path = |compound: &str, verb: &str| {
        format!("/v1/admin/compounds/{compound}/committee-tokens/{id}/{verb}")
    };
    assert_eq!(
        status_of(&app, "POST", &path(&site.compound, "rotate"), &other).await,
        404
    );
    assert_eq!(
        status_of(
            &app,
            "POST",
            &path(&other_site.compound, "revoke"),
            &app.staff_token
        )
        .await,
        404
    );

    let (status, rotated) = app
        .staff("POST", &path(&site.compound, "rotate"), None)
        .await;
    assert_eq!(status, 201, "{rotated}");
    let new = str_of(&rotated, "token").to_owned();
    assert_eq!(
        status_of(&app, "GET", "/v1/committee/periods", &token).await,
        401
    );
    assert_eq!(
        status_of(&app, "GET", "/v1/committee/periods", &new).await,
        200
    );
    let new_id = str_of(&rotated, "id").to_owned();
    let revoke = format!(
        "/v1/admin/compounds/{}/committee-tokens/{new_id}/revoke",
        site.compound
    );
    assert_eq!(
        status_of(&app, "POST", &revoke, &app.staff_token).await,
        200
    );
    assert_eq!(
        status_of(&app, "GET", "/v1/committee/periods", &new).await,
        401
    );

    let (_, listed) = app
        .staff(
            "GET",
            &format!("/v1/admin/compounds/{}/committee-tokens", site.compound),
            None,
        )
        .await;
    assert_eq!(listed.as_array().map(Vec::len), Some(2), "{listed}");
    assert_eq!(
        audited(&app, &app.staff_token, &new_id).await,
        pairs(&[("issued", "staff"), ("revoked", "staff")])
    );
}

#[tokio::test]
async fn a_withdrawn_disclosure_link_opens_nothing_and_a_rotated_one_opens_the_page() {
    let app = spawn_app().await;
    let site = app.site(5).await;
    let links = format!("/v1/admin/compounds/{}/disclosure-links", site.compound);
    let link = app.create(&links, json!({})).await;
    let (id, path) = (
        str_of(&link, "id").to_owned(),
        str_of(&link, "path").to_owned(),
    );
    assert_eq!(
        status_of(&app, "GET", &format!("{path}/data.json"), "").await,
        200
    );

    let other = app.new_tenant("另一家物业").await;
    assert_eq!(
        status_of(&app, "POST", &format!("{links}/{id}/revoke"), &other).await,
        404
    );
    assert_eq!(status_of(&app, "GET", &links, &other).await, 404);

    let (status, rotated) = app
        .staff("POST", &format!("{links}/{id}/rotate"), None)
        .await;
    assert_eq!(status, 201, "{rotated}");
    let new_path = str_of(&rotated, "path").to_owned();
    assert_eq!(
        status_of(&app, "GET", &format!("{path}/data.json"), "").await,
        404
    );
    assert_eq!(
        status_of(&app, "GET", &format!("{new_path}/data.json"), "").await,
        200
    );

    let new_id = str_of(&rotated, "id");
    assert_eq!(
        status_of(
            &app,
            "POST",
            &format!("{links}/{new_id}/revoke"),
            &app.staff_token
        )
        .await,
        200
    );
    assert_eq!(status_of(&app, "GET", &new_path, "").await, 404);
    let (_, listed) = app.staff("GET", &links, None).await;
    let listed = listed.as_array().cloned().unwrap_or_default();
    assert_eq!(listed.len(), 2);
    assert!(listed
        .iter()
        .all(|l| l.get("token").is_none() && !l["revoked_at"].is_null()));
    assert_eq!(
        audited(&app, &app.staff_token, &id).await,
        pairs(&[("issued", "staff"), ("rotated", "staff")])
    );
}

#[tokio::test]
async fn a_revoked_device_secret_is_refused_at_once_and_a_rotated_one_works() {
    let app = spawn_app().await;
    let site = app.site(5).await;
    let gate = &site.entries[0];
    until_cached(
        || app.credentials.gates.misses(),
        |attempt| {
            let (app, plate) = (&app, format!("京A{:05}", 10_100 + attempt));
            async move { app.read(gate, &plate, ago(5)).await.0 }
        },
    )
    .await;

    let other = app.new_tenant("另一家物业").await;
    let revoke = format!("/v1/admin/gates/{}/device-secret/revoke", gate.id);
    let rotate = format!("/v1/admin/gates/{}/device-secret/rotate", gate.id);
    assert_eq!(status_of(&app, "POST", &revoke, &other).await, 404);
    assert_eq!(status_of(&app, "POST", &rotate, &other).await, 404);

    let (status, revoked) = app.staff("POST", &revoke, None).await;
    assert_eq!(status, 200, "{revoked}");
    let (status, _) = app.read(gate, "京A10003", ago(3)).await;
    assert_eq!(status, 401);
    let (_, gates) = app
        .staff("GET", &format!("/v1/admin/lots/{}/gates", site.lot), None)
        .await;
    let listed = gates
        .as_array()
        .into_iter()
        .flatten()
        .find(|g| g["id"] == gate.id.as_str());
    assert_eq!(
        listed.map(|g| &g["secret_revoked_at"]),
        Some(&revoked["revoked_at"])
    );

    // Rotating brings the lane back with a new secret only.
    let (status, rotated) = app.staff("POST", &rotate, None).await;
    assert_eq!(status, 201, "{rotated}");
    assert_eq!(rotated["id"], gate.id.as_str());
    let renewed = Gate {
        id: gate.id.clone(),
        secret: str_of(&rotated, "token").to_owned(),
    };
    assert_eq!(app.read(&renewed, "京A10004", ago(2)).await.0, 200);
    assert_eq!(app.read(gate, "京A10005", ago(1)).await.0, 401);
    // The other lanes were not touched.
    assert_eq!(app.read(&site.entries[1], "京A10006", ago(1)).await.0, 200);
    assert_eq!(
        audited(&app, &app.staff_token, &gate.id).await,
        pairs(&[
            ("issued", "staff"),
            ("revoked", "staff"),
            ("rotated", "staff")
        ])
    );
}

#[tokio::test]
async fn the_operator_revokes_and_rotates_supervisor_tokens() {
    let app = spawn_app().await;
    let (status, supervisor) = app
        .send(
            "POST",
            "/v1/operator/supervisors",
            &operator(&app),
            Some(json!({"name": "翠湖街道办事处", "area": "五华区翠湖街道"})),
        )
        .await;
    assert_eq!(status, 201, "{supervisor}");
    let (id, token) = (
        str_of(&supervisor, "id").to_owned(),
        str_of(&supervisor, "token").to_owned(),
    );
    assert_eq!(
        status_of(&app, "GET", "/v1/supervisor/compounds", &token).await,
        200
    );

    let revoke = format!("/v1/operator/supervisors/{id}/token/revoke");
    let rotate = format!("/v1/operator/supervisors/{id}/token/rotate");
    assert_eq!(
        status_of(&app, "POST", &revoke, &app.staff_token).await,
        401
    );
    let unknown = format!(
        "/v1/operator/supervisors/{}/token/revoke",
        uuid::Uuid::new_v4()
    );
    assert_eq!(
        status_of(&app, "POST", &unknown, &operator(&app)).await,
        404
    );

    assert_eq!(status_of(&app, "POST", &revoke, &operator(&app)).await, 200);
    assert_eq!(
        status_of(&app, "GET", "/v1/supervisor/compounds", &token).await,
        401
    );
    let (_, listed) = app
        .send("GET", "/v1/operator/supervisors", &operator(&app), None)
        .await;
    assert!(!listed[0]["token_revoked_at"].is_null(), "{listed}");

    let (status, rotated) = app.send("POST", &rotate, &operator(&app), None).await;
    assert_eq!(status, 201, "{rotated}");
    let new = str_of(&rotated, "token");
    assert_eq!(
        status_of(&app, "GET", "/v1/supervisor/compounds", new).await,
        200
    );
    assert_eq!(
        status_of(&app, "GET", "/v1/supervisor/compounds", &token).await,
        401
    );
    let actions: Vec<String> = sqlx::query_scalar(
        "select action || ':' || actor_kind from credential_audit where credential_id = $1::uuid order by id",
    )
    .bind(&id)
    .fetch_all(&app.db)
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        actions,
        ["issued:operator", "revoked:operator", "rotated:operator"]
    );
}

/// A booked shared space: `(booking id, token)`.
async fn booking(app: &TestApp) -> (String, String) {
    let site = app.site(5).await;
    let (owner, _, owner_token) = owner_with_token(app, &site.compound).await;
    app.create(
        &format!("/v1/admin/lots/{}/spaces", site.lot),
        json!({"code": "B-101", "kind": "owned", "owner_id": owner}),
    )
    .await;
    let (_, spaces) = app
        .send("GET", "/v1/owner/spaces", &owner_token, None)
        .await;
    let space = str_of(&spaces[0], "space_id").to_owned();
    let windows =
        json!({"windows": [{"days": [1, 2, 3, 4, 5, 6, 7], "from": "00:00", "to": "24:00"}]});
    let (status, body) = app
        .send(
            "PUT",
            &format!("/v1/owner/spaces/{space}/windows"),
            &owner_token,
            Some(windows),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let from = Utc::now() + chrono::Duration::hours(3);
    let (status, booked) = app
        .send(
            "POST",
            &format!("/v1/public/lots/{}/bookings", site.lot),
            "",
            Some(
                json!({"plate": "沪A11111", "from": from, "to": from + chrono::Duration::hours(2)}),
            ),
        )
        .await;
    assert_eq!(status, 201, "{booked}");
    (
        str_of(&booked["booking"], "id").to_owned(),
        str_of(&booked, "token").to_owned(),
    )
}

#[tokio::test]
async fn a_booking_holder_rotates_its_token_and_staff_revoke_it() {
    let app = spawn_app().await;
    let (id, token) = booking(&app).await;
    let show = format!("/v1/public/bookings/{id}");
    assert_eq!(status_of(&app, "GET", &show, &token).await, 200);

    let rotate = format!("/v1/public/bookings/{id}/token/rotate");
    assert_eq!(status_of(&app, "POST", &rotate, "").await, 401);
    assert_eq!(status_of(&app, "POST", &rotate, "not-the-token").await, 404);
    let (status, rotated) = app.send("POST", &rotate, &token, None).await;
    assert_eq!(status, 201, "{rotated}");
    let new = str_of(&rotated, "token").to_owned();
    // A wrong token and an unknown booking look the same to a visitor: 404.
    assert_eq!(status_of(&app, "GET", &show, &token).await, 404);
    assert_eq!(status_of(&app, "POST", &rotate, &token).await, 404);
    assert_eq!(status_of(&app, "GET", &show, &new).await, 200);

    let revoke = format!("/v1/admin/bookings/{id}/token/revoke");
    let other = app.new_tenant("另一家物业").await;
    assert_eq!(status_of(&app, "POST", &revoke, &other).await, 404);
    assert_eq!(status_of(&app, "GET", &show, &new).await, 200);
    assert_eq!(
        status_of(&app, "POST", &revoke, &app.staff_token).await,
        200
    );
    assert_eq!(status_of(&app, "GET", &show, &new).await, 404);
    assert_eq!(
        status_of(
            &app,
            "POST",
            &format!("/v1/public/bookings/{id}/cancel"),
            &new
        )
        .await,
        404
    );
    assert_eq!(status_of(&app, "POST", &rotate, &new).await, 404);
    assert_eq!(
        audited(&app, &app.staff_token, &id).await,
        pairs(&[
            ("issued", "visitor"),
            ("rotated", "visitor"),
            ("revoked", "staff")
        ])
    );
}

#[tokio::test]
async fn a_booking_holder_may_give_up_its_token() {
    let app = spawn_app().await;
    let (id, token) = booking(&app).await;
    let revoke = format!("/v1/public/bookings/{id}/token/revoke");
    assert_eq!(status_of(&app, "POST", &revoke, &token).await, 200);
    assert_eq!(
        status_of(&app, "GET", &format!("/v1/public/bookings/{id}"), &token).await,
        404
    );
    assert_eq!(
        audited(&app, &app.staff_token, &id).await,
        pairs(&[("issued", "visitor"), ("revoked", "visitor")])
    );
}

/// Polls `refused` until it answers true; how long that took after `since`.
async fn refused_within<F, Fut>(since: Instant, mut refused: F) -> Duration
where
    F: FnMut(u32) -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let mut attempt = 0;
    loop {
        if refused(attempt).await {
            return since.elapsed();
        }
        assert!(
            since.elapsed() < Duration::from_secs(5),
            "still accepted after 5 s"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
        attempt += 1;
    }
}

/// Two replicas on one database: a credential cached by the second is refused there within a
/// second of its revocation through the first.
#[tokio::test]
async fn another_replica_refuses_a_revoked_credential_within_a_second() {
    let first = spawn_app().await;
    let second = spawn_with(first.settings.clone()).await;
    let site = first.site(5).await;
    let (id, token) = second_staff_token(&first).await;
    let gate = &site.entries[0];

    // The staff token is cached by the second replica, then revoked through the first.
    until_cached(
        || second.credentials.staff.misses(),
        |_| async {
            second
                .send("GET", "/v1/admin/compounds", &token, None)
                .await
                .0
        },
    )
    .await;

    let (status, _) = first
        .staff("POST", &format!("/v1/admin/staff-tokens/{id}/revoke"), None)
        .await;
    assert_eq!(status, 200);
    let revoked = Instant::now();
    let (replica, token) = (&second, token.as_str());
    let took = refused_within(revoked, move |_| async move {
        replica
            .send("GET", "/v1/admin/compounds", token, None)
            .await
            .0
            == 401
    })
    .await;
    assert!(
        took < Duration::from_secs(1),
        "staff token refused only after {took:?}"
    );
    eprintln!("staff token refused by the other replica after {took:?}");

    // The same for a gate's device secret. (Cached only now: the staff token's revocation
    // has just emptied the second replica's whole cache.)
    until_cached(
        || second.credentials.gates.misses(),
        |attempt| async move {
            let plate = format!("京A{:05}", 20_000 + attempt);
            replica.read(gate, &plate, ago(5)).await.0
        },
    )
    .await;

    let (status, _) = first
        .staff(
            "POST",
            &format!("/v1/admin/gates/{}/device-secret/revoke", gate.id),
            None,
        )
        .await;
    assert_eq!(status, 200);
    let revoked = Instant::now();
    let took = refused_within(revoked, move |attempt| {
        let plate = format!("京A{:05}", 30_000 + attempt);
        async move { replica.read(gate, &plate, ago(3)).await.0 == 401 }
    })
    .await;
    assert!(
        took < Duration::from_secs(1),
        "device secret refused only after {took:?}"
    );
    eprintln!("device secret refused by the other replica after {took:?}");
}

#[tokio::test]
async fn the_credential_audit_cannot_be_changed() {
    let app = spawn_app().await;
    let rows = app.count("select count(*) from credential_audit").await;
    assert!(rows > 0, "the first staff token's issue is audited");
    for sql in [
        "update credential_audit set actor_kind = 'operator'",
        "delete from credential_audit",
    ] {
        let refused = sqlx::query(sql).execute(&app.db).await;
        assert!(refused.is_err(), "{sql} was allowed");
    }
    assert_eq!(
        app.count("select count(*) from credential_audit").await,
        rows
    );
}
