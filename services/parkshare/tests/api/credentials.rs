//! The process keeps gate contexts and staff identities by credential: what is kept, and when
//! it is forgotten.

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::helpers::{ago, spawn_app, str_of};

/// A compound policy that differs only in what a re-entry does.
fn policy(reentry: &str) -> Value {
    json!({"owner_free_min": 0, "no_entry_record": {"kind": "refuse"}, "reentry": reentry,
           "duplicate_window_s": 10, "exit_grace_min": 15})
}

/// A busy booth takes payments all the time; none of them may send the next read of every
/// gate back to Postgres for its context — but a policy change must still be seen at once.
#[tokio::test]
async fn a_booth_payment_keeps_the_gates_cached_and_a_policy_change_does_not() {
    let app = spawn_app().await;
    let site = app.site_with_policy(10, policy("close_and_reopen")).await;
    let (_, entry) = app.read(&site.entries[0], "京A12345", ago(180)).await;
    let session = str_of(&entry, "session_id").to_owned();
    let (_, exit) = app.read(&site.exit, "京A12345", ago(0)).await;
    assert_eq!(str_of(&exit, "reason"), "payment_required");

    let misses = app.credentials.gates.misses();
    app.pay(&session, str_of(&exit, "amount_due")).await;
    let (_, exit) = app.read(&site.exit, "京A12345", chrono::Utc::now()).await;
    assert_eq!(str_of(&exit, "reason"), "exit_paid");
    assert_eq!(
        app.credentials.gates.misses(),
        misses,
        "the exit's context was read again after a payment"
    );

    // A re-entry closes the old stay; the policy now refuses it, and the very next read obeys.
    let (status, _) = app
        .staff(
            "PUT",
            &format!("/v1/admin/compounds/{}/policy", site.compound),
            Some(policy("refuse")),
        )
        .await;
    assert_eq!(status, 200);
    app.read(&site.entries[0], "京B54321", ago(30)).await;
    let (_, again) = app.read(&site.entries[1], "京B54321", ago(1)).await;
    assert_eq!(
        (str_of(&again, "action"), str_of(&again, "reason")),
        ("refuse", "already_inside")
    );
}

/// A staff token is looked up once, then answered from memory; deleting it (by hand, in SQL)
/// reaches the cache through Postgres' notification, and the token is refused from then on.
#[tokio::test]
async fn a_revoked_staff_token_is_refused_although_it_was_cached() {
    let app = spawn_app().await;
    let other = app.new_tenant("另一家物业").await;
    let (status, _) = app.staff("GET", "/v1/admin/compounds", None).await;
    assert_eq!(status, 200);
    let misses = app.credentials.staff.misses();
    for _ in 0..3 {
        let (status, _) = app.staff("GET", "/v1/admin/compounds", None).await;
        assert_eq!(status, 200);
    }
    assert_eq!(app.credentials.staff.misses(), misses, "looked up again");

    // Each token still sees only its own firm.
    app.site(5).await;
    let (_, mine) = app.staff("GET", "/v1/admin/compounds", None).await;
    let (_, theirs) = app.send("GET", "/v1/admin/compounds", &other, None).await;
    assert_eq!(mine.as_array().map(Vec::len), Some(1), "{mine}");
    assert_eq!(theirs.as_array().map(Vec::len), Some(0), "{theirs}");

    let digest = parkshare::auth::digest(&app.staff_token);
    sqlx::query("delete from staff_tokens where token_sha256 = $1")
        .bind(digest)
        .execute(&app.db)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    // Not a timing target: the notification is asynchronous, and a loaded machine may take a
    // moment to deliver it.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (status, body) = app.staff("GET", "/v1/admin/compounds", None).await;
        if status == 401 {
            assert_eq!(body["error"]["code"], "unauthenticated");
            break;
        }
        assert_eq!(status, 200, "{body}");
        assert!(Instant::now() < deadline, "the revoked token still works");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (status, _) = app.send("GET", "/v1/admin/compounds", &other, None).await;
    assert_eq!(status, 200, "the other firm's token was revoked too");
}
