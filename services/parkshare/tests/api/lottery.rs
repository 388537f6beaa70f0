//! The lottery (摇号, issue 26): announced with a commitment, applied to by owners in the
//! window, drawn once, offers passed down the list, and recomputed by anyone from what is
//! published — through the HTTP API, the CLI verb, and against tampering.

use chrono::{Duration, Utc};
use serde_json::{json, Value};

use crate::helpers::{spawn_app, str_of, Site, TestApp};

struct Household {
    owner_id: String,
    unit: String,
    token: String,
}

async fn household(app: &TestApp, site: &Site, unit: &str, with_space: bool) -> Household {
    let (owner_id, token) = app.owner_with_token(&site.compound, unit).await;
    if with_space {
        app.create(
            &format!("/v1/admin/lots/{}/spaces", site.lot),
            json!({"code": format!("P-{unit}"), "kind": "owned", "owner_id": owner_id}),
        )
        .await;
    }
    Household {
        owner_id,
        unit: unit.to_owned(),
        token,
    }
}

async fn space(app: &TestApp, site: &Site, code: &str, kind: &str) -> String {
    str_of(
        &app.create(
            &format!("/v1/admin/lots/{}/spaces", site.lot),
            json!({"code": code, "kind": kind}),
        )
        .await,
        "id",
    )
    .to_owned()
}

/// A lottery of `spaces` whose window closes `seconds` from the service's now.
async fn announce(app: &TestApp, site: &Site, spaces: &[String], seconds: i64) -> Value {
    app.create(
        &format!("/v1/admin/compounds/{}/lotteries", site.compound),
        json!({
            "title": "2026年新增车位摇号",
            "space_ids": spaces,
            "applications_close_at": app.now() + Duration::seconds(seconds),
            "offer_minutes": 60,
        }),
    )
    .await
}

async fn apply(app: &TestApp, lottery: &str, who: &Household) -> (u16, Value) {
    app.send(
        "POST",
        &format!("/v1/owner/lotteries/{lottery}/applications"),
        &who.token,
        None,
    )
    .await
}

/// Moves the service's clock just past the lottery's close.
fn until_closed(app: &TestApp, lottery: &Value) {
    let close: chrono::DateTime<Utc> = lottery["applications_close_at"]
        .as_str()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no close in {lottery}"));
    app.advance((close - app.now()).max(Duration::zero()) + Duration::milliseconds(1));
}

async fn public(app: &TestApp, lottery: &str) -> Value {
    let (status, body) = app
        .send("GET", &format!("/v1/public/lotteries/{lottery}"), "", None)
        .await;
    assert_eq!(status, 200, "{body}");
    body
}

fn offer_states(view: &Value) -> Vec<(String, String)> {
    view["offers"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|o| (str_of(o, "unit").to_owned(), str_of(o, "state").to_owned()))
        .collect()
}

#[tokio::test]
async fn a_lottery_is_committed_before_applications_and_drawn_as_anyone_can_recompute() {
    let app = spawn_app().await;
    let site = app.site(10).await;
    let spaces = [
        space(&app, &site, "C-001", "common").await,
        space(&app, &site, "D-001", "developer_unsold").await,
    ];
    let lottery = announce(&app, &site, &spaces, 3).await;
    let id = str_of(&lottery, "id").to_owned();
    let commitment = str_of(&lottery, "commitment").to_owned();
    assert_eq!(commitment.len(), 64, "{lottery}");
    assert_eq!(str_of(&lottery, "stage"), "open");
    assert!(
        !lottery.to_string().contains("\"seed\""),
        "the seed must stay secret before the draw: {lottery}"
    );

    // The compound's disclosure page shows the commitment before anyone has applied, and its
    // link leads to the lottery's public record.
    let link = app
        .create(
            &format!("/v1/admin/compounds/{}/disclosure-links", site.compound),
            json!({}),
        )
        .await;
    let page_path = str_of(&link, "path").to_owned();
    let (status, page) = app.send("GET", &page_path, "", None).await;
    assert_eq!(status, 200);
    let html = page.as_str().unwrap_or_default();
    assert!(html.contains(&commitment), "{html}");
    let href = format!("../lotteries/{id}");
    assert!(html.contains(&href), "{html}");
    let resolved = reqwest::Url::parse(&format!("{}{page_path}", app.address))
        .and_then(|page| page.join(&href))
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(resolved.path(), format!("/v1/public/lotteries/{id}"));

    // Five households; one already has a space of its own and draws after the others.
    let mut households = Vec::new();
    for (unit, with_space) in [
        ("1-1-101", false),
        ("1-1-102", true),
        ("2-3-501", false),
        ("东区-5-1201", false),
        ("3-2-302", false),
    ] {
        households.push(household(&app, &site, unit, with_space).await);
    }
    for who in &households {
        let (status, body) = apply(&app, &id, who).await;
        assert_eq!(status, 201, "{body}");
        assert_eq!(
            body["tier"],
            if who.unit == "1-1-102" { 1 } else { 0 },
            "{body}"
        );
    }
    let (status, body) = apply(&app, &id, &households[0]).await;
    assert_eq!(
        (status, str_of(&body["error"], "code")),
        (409, "already_applied")
    );

    // While the window is open: the applicants are public, the seed is not, no draw.
    let open = public(&app, &id).await;
    assert_eq!(open["applicants"].as_array().map(Vec::len), Some(5));
    assert!(open["published"].is_null(), "{open}");
    assert!(
        !open.to_string().contains("业主"),
        "owners' names never reach the public page: {open}"
    );
    let (status, body) = app
        .staff("POST", &format!("/v1/admin/lotteries/{id}/draw"), None)
        .await;
    assert_eq!(
        (status, str_of(&body["error"], "code")),
        (409, "applications_still_open")
    );

    until_closed(&app, &lottery);
    let late = household(&app, &site, "9-9-909", false).await;
    let (status, body) = apply(&app, &id, &late).await;
    assert_eq!(
        (status, str_of(&body["error"], "code")),
        (409, "applications_closed")
    );

    let (status, drawn) = app
        .staff("POST", &format!("/v1/admin/lotteries/{id}/draw"), None)
        .await;
    assert_eq!(status, 200, "{drawn}");
    let published = drawn["published"].clone();
    let order: Vec<String> = serde_json::from_value(published["order"].clone())
        .unwrap_or_else(|e| panic!("{e}: {drawn}"));
    assert_eq!(order.len(), 5);
    assert_eq!(order[4], "1-1-102", "the household with a space draws last");
    assert_eq!(str_of(&published, "commitment"), commitment);

    // Drawing again answers the same draw; the public page publishes it.
    let (_, again) = app
        .staff("POST", &format!("/v1/admin/lotteries/{id}/draw"), None)
        .await;
    assert_eq!(again["published"], published);
    let page = public(&app, &id).await;
    assert_eq!(page["published"], published);
    assert_eq!(
        offer_states(&page),
        vec![
            (order[0].clone(), "open".to_owned()),
            (order[1].clone(), "open".to_owned())
        ]
    );

    // Anyone recomputes it: over HTTP and offline with the CLI verb.
    let (status, verdict) = app
        .send(
            "POST",
            "/v1/public/lotteries/verify",
            "",
            Some(published.clone()),
        )
        .await;
    assert_eq!(status, 200, "{verdict}");
    assert_eq!(verdict["holds"], true, "{verdict}");
    assert_eq!(verdict["order"], published["order"]);
    assert_eq!(verdict["winners"], json!(order[..2]));
    assert!(cli_verify(&page), "the CLI must accept the published page");
    // A mistyped verb answers with the usage and starts nothing.
    let typo = std::process::Command::new(env!("CARGO_BIN_EXE_parkshare"))
        .arg("lottery-verfy")
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(typo.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&typo.stderr)
        .to_lowercase()
        .contains("usage"));

    // A tampered publication fails both checks.
    let mut swapped = published.clone();
    swapped["order"] = json!([order[4], order[1], order[2], order[3], order[0]]);
    let (_, verdict) = app
        .send(
            "POST",
            "/v1/public/lotteries/verify",
            "",
            Some(swapped.clone()),
        )
        .await;
    assert_eq!(
        (
            verdict["holds"].clone(),
            verdict["commitment_matches"].clone()
        ),
        (json!(false), json!(true))
    );
    assert!(!cli_verify(&swapped));
    // More winners than the lottery committed to, or another applicants digest: refused too.
    let mut more = published.clone();
    more["places"] = json!(5);
    let (_, verdict) = app
        .send("POST", "/v1/public/lotteries/verify", "", Some(more))
        .await;
    assert_eq!(verdict["commitment_matches"], false, "{verdict}");
    let mut digest = published.clone();
    digest["applicants_digest"] = json!("0".repeat(64));
    let (_, verdict) = app
        .send("POST", "/v1/public/lotteries/verify", "", Some(digest))
        .await;
    assert_eq!(
        (verdict["holds"].clone(), verdict["digest_matches"].clone()),
        (json!(false), json!(false)),
        "{verdict}"
    );
    let mut reseeded = published.clone();
    reseeded["seed"] = json!("00".repeat(32));
    let (_, verdict) = app
        .send("POST", "/v1/public/lotteries/verify", "", Some(reseeded))
        .await;
    assert_eq!(verdict["commitment_matches"], false, "{verdict}");
    let mut broken = published;
    broken["seed"] = json!("not hex");
    let (status, body) = app
        .send("POST", "/v1/public/lotteries/verify", "", Some(broken))
        .await;
    assert_eq!(
        (status, str_of(&body["error"], "code")),
        (422, "invalid_lottery")
    );
}

/// Runs `parkshare lottery-verify` on `doc`; whether it exited 0.
fn cli_verify(doc: &Value) -> bool {
    let path = std::env::temp_dir().join(format!("lottery-{}.json", uuid::Uuid::new_v4()));
    std::fs::write(&path, doc.to_string()).unwrap_or_else(|e| panic!("{e}"));
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_parkshare"))
        .arg("lottery-verify")
        .arg(&path)
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    let _ = std::fs::remove_file(&path);
    let printed: Value = serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!(
            "{e}: {} {}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        )
    });
    assert_eq!(
        printed["order_matches"].as_bool().unwrap_or_default()
            && printed["commitment_matches"].as_bool().unwrap_or_default(),
        output.status.success(),
        "{printed}"
    );
    // 1 is a draw that does not hold; 2 is kept for a file with nothing to check.
    assert!(
        matches!(output.status.code(), Some(0 | 1)),
        "{:?}",
        output.status
    );
    output.status.success()
}

#[tokio::test]
async fn offers_pass_down_the_list_when_declined_or_lapsed() {
    let app = spawn_app().await;
    let site = app.site(10).await;
    let spaces = [space(&app, &site, "C-101", "common").await];
    let lottery = announce(&app, &site, &spaces, 2).await;
    let id = str_of(&lottery, "id").to_owned();
    let mut households = Vec::new();
    for unit in ["1-1-101", "1-1-201", "1-1-301", "1-1-401"] {
        let who = household(&app, &site, unit, false).await;
        assert_eq!(apply(&app, &id, &who).await.0, 201);
        households.push(who);
    }
    until_closed(&app, &lottery);
    let (status, drawn) = app
        .staff("POST", &format!("/v1/admin/lotteries/{id}/draw"), None)
        .await;
    assert_eq!(status, 200, "{drawn}");
    let order: Vec<String> =
        serde_json::from_value(drawn["published"]["order"].clone()).unwrap_or_default();
    let by_unit = |unit: &str| {
        households
            .iter()
            .find(|h| h.unit == unit)
            .unwrap_or_else(|| panic!("{unit}"))
    };
    let (first, second, third) = (by_unit(&order[0]), by_unit(&order[1]), by_unit(&order[2]));

    // Only the winner may answer; the others have no offer.
    let (status, body) = app
        .send(
            "POST",
            &format!("/v1/owner/lotteries/{id}/offer/accept"),
            &second.token,
            None,
        )
        .await;
    assert_eq!((status, str_of(&body["error"], "code")), (409, "no_offer"));

    // The winner declines: the next applicant is offered the place at once.
    let (status, body) = app
        .send(
            "POST",
            &format!("/v1/owner/lotteries/{id}/offer/decline"),
            &first.token,
            None,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(str_of(&body["my_offer"], "state"), "declined");
    assert_eq!(
        offer_states(&public(&app, &id).await),
        vec![
            (first.unit.clone(), "declined".to_owned()),
            (second.unit.clone(), "open".to_owned())
        ]
    );

    // The second lets it lapse (its hour passes): the third is offered it at the next read.
    app.advance(Duration::minutes(60) + Duration::seconds(1));
    let (status, body) = app
        .send(
            "POST",
            &format!("/v1/owner/lotteries/{id}/offer/accept"),
            &second.token,
            None,
        )
        .await;
    assert_eq!(
        (status, str_of(&body["error"], "code")),
        (409, "offer_lapsed")
    );
    let (status, mine) = app
        .send("GET", "/v1/owner/lotteries", &third.token, None)
        .await;
    assert_eq!(status, 200, "{mine}");
    assert_eq!(str_of(&mine[0]["my_offer"], "state"), "open", "{mine}");
    assert_eq!(mine[0]["my_position"], 2);

    // The third accepts; a second answer is refused; nothing more is offered.
    let accept = format!("/v1/owner/lotteries/{id}/offer/accept");
    let (status, body) = app.send("POST", &accept, &third.token, None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(str_of(&body["my_offer"], "state"), "accepted");
    let (status, body) = app.send("POST", &accept, &third.token, None).await;
    assert_eq!(
        (status, str_of(&body["error"], "code")),
        (409, "offer_answered")
    );
    let (_, staff_view) = app
        .staff("GET", &format!("/v1/admin/lotteries/{id}"), None)
        .await;
    assert_eq!(
        offer_states(&staff_view),
        vec![
            (first.unit.clone(), "declined".to_owned()),
            (second.unit.clone(), "lapsed".to_owned()),
            (third.unit.clone(), "accepted".to_owned())
        ]
    );
    assert_eq!(
        str_of(&staff_view["offers"][2], "owner_id"),
        third.owner_id,
        "staff see who won, to contract the space"
    );

    // The household that took a space applies behind those without one next time; the space
    // it took is in no new lottery.
    let (status, body) = app
        .staff(
            "POST",
            &format!("/v1/admin/compounds/{}/lotteries", site.compound),
            Some(json!({"title": "再摇", "space_ids": spaces,
                        "applications_close_at": app.now() + Duration::hours(2)})),
        )
        .await;
    assert_eq!(
        (status, str_of(&body["error"], "code")),
        (409, "space_in_another_lottery"),
        "{body}"
    );
    let next = announce(
        &app,
        &site,
        &[space(&app, &site, "C-102", "common").await],
        600,
    )
    .await;
    let (status, body) = apply(&app, str_of(&next, "id"), third).await;
    assert_eq!((status, body["tier"].clone()), (201, json!(1)), "{body}");
    let (status, body) = apply(&app, str_of(&next, "id"), first).await;
    assert_eq!((status, body["tier"].clone()), (201, json!(0)), "{body}");
}

#[tokio::test]
async fn bad_announcements_and_strangers_are_refused_and_change_nothing() {
    let app = spawn_app().await;
    let site = app.site(10).await;
    let common = space(&app, &site, "C-1", "common").await;
    let owner = household(&app, &site, "1-1-101", true).await;
    let owned: String = sqlx::query_scalar("select id::text from spaces where owner_id = $1::uuid")
        .bind(&owner.owner_id)
        .fetch_one(&app.db)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let path = format!("/v1/admin/compounds/{}/lotteries", site.compound);
    let close = Utc::now() + Duration::days(7);
    for (body, code) in [
        (
            json!({"title": "x", "space_ids": [owned], "applications_close_at": close}),
            "space_not_allottable",
        ),
        (
            json!({"title": "x", "space_ids": [uuid::Uuid::new_v4()], "applications_close_at": close}),
            "space_not_allottable",
        ),
        (
            json!({"title": "x", "space_ids": [common, common], "applications_close_at": close}),
            "duplicate_space",
        ),
        (
            json!({"title": "x", "space_ids": [], "applications_close_at": close}),
            "invalid_spaces",
        ),
        (
            json!({"title": " ", "space_ids": [common], "applications_close_at": close}),
            "invalid_title",
        ),
        (
            json!({"title": "x", "space_ids": [common], "applications_close_at": Utc::now() - Duration::hours(1)}),
            "window_empty",
        ),
        (
            json!({"title": "x", "space_ids": [common], "applications_close_at": Utc::now() + Duration::days(120)}),
            "window_too_long",
        ),
        (
            json!({"title": "x", "space_ids": [common], "applications_open_at": Utc::now() - Duration::days(1), "applications_close_at": close}),
            "opening_in_the_past",
        ),
        (
            json!({"title": "x", "space_ids": [common], "applications_close_at": close, "offer_minutes": 0}),
            "invalid_offer_minutes",
        ),
    ] {
        let (status, answer) = app.staff("POST", &path, Some(body.clone())).await;
        assert_eq!(
            (status, str_of(&answer["error"], "code")),
            (422, code),
            "{body} → {answer}"
        );
    }
    assert_eq!(app.count("select count(*) from lotteries").await, 0);

    // Another firm sees nothing of this one's lotteries, and its owners cannot apply.
    let lottery = announce(&app, &site, std::slice::from_ref(&common), 600).await;
    let id = str_of(&lottery, "id");
    let other_staff = app.new_tenant("别的物业").await;
    for (method, path) in [
        ("GET", format!("/v1/admin/lotteries/{id}")),
        ("POST", format!("/v1/admin/lotteries/{id}/draw")),
        (
            "GET",
            format!("/v1/admin/compounds/{}/lotteries", site.compound),
        ),
    ] {
        let (status, body) = app.send(method, &path, &other_staff, None).await;
        assert_eq!(status, 404, "{method} {path}: {body}");
    }
    let other_site = app.site(5).await;
    let neighbour = household(&app, &other_site, "8-8-808", false).await;
    let (status, _) = apply(&app, id, &neighbour).await;
    assert_eq!(status, 404, "an owner of another compound cannot apply");
    let (status, _) = app
        .send(
            "POST",
            &format!("/v1/admin/lotteries/{id}/draw"),
            &owner.token,
            None,
        )
        .await;
    assert_eq!(status, 401, "an owner is not staff");

    // A space runs in one lottery at a time: another announcement of it is refused, and it
    // changes nothing.
    let (status, body) = app
        .staff(
            "POST",
            &path,
            Some(
                json!({"title": "再摇一次", "space_ids": [common], "applications_close_at": close}),
            ),
        )
        .await;
    assert_eq!(
        (status, str_of(&body["error"], "code")),
        (409, "space_in_another_lottery"),
        "{body}"
    );
    assert_eq!(app.count("select count(*) from lotteries").await, 1);

    // A window shorter than the configured minimum (a day by default) is refused: owners must
    // have time to see the commitment and the applicants.
    let mut settings = crate::helpers::test_settings();
    settings.lottery_window_min = Duration::hours(24);
    let strict = crate::helpers::spawn_with(settings).await;
    let strict_site = strict.site(5).await;
    let strict_space = space(&strict, &strict_site, "C-9", "common").await;
    let (status, body) = strict
        .staff(
            "POST",
            &format!("/v1/admin/compounds/{}/lotteries", strict_site.compound),
            Some(json!({"title": "x", "space_ids": [strict_space],
                        "applications_close_at": Utc::now() + Duration::hours(23)})),
        )
        .await;
    assert_eq!(
        (status, str_of(&body["error"], "code")),
        (422, "window_too_short"),
        "{body}"
    );

    // The database itself keeps a lottery as announced and its window shut.
    let rewrite = sqlx::query("update lotteries set seed = repeat('0', 64)")
        .execute(&app.db)
        .await;
    assert!(rewrite.is_err(), "a lottery's seed must never change");
}

#[tokio::test]
async fn applications_racing_the_close_are_all_drawn_or_all_refused() {
    let app = spawn_app().await;
    let site = app.site(10).await;
    let spaces = [space(&app, &site, "C-7", "common").await];
    let mut households = Vec::new();
    for i in 0..12 {
        households.push(household(&app, &site, &format!("7-1-{i:03}"), false).await);
    }
    let lottery = announce(&app, &site, &spaces, 3600).await;
    let id = str_of(&lottery, "id").to_owned();
    // Everyone applies around the close while staff press draw repeatedly: the clock passes
    // the close half way through the applications. (The sleeps only spread the requests.)
    let closes = async {
        tokio::time::sleep(std::time::Duration::from_millis(150)).await;
        until_closed(&app, &lottery);
    };
    let applies = households.iter().enumerate().map(|(i, who)| {
        let app = &app;
        let id = &id;
        async move {
            tokio::time::sleep(std::time::Duration::from_millis(25 * i as u64)).await;
            apply(app, id, who).await.0
        }
    });
    let draws = (0..6).map(|i| {
        let app = &app;
        let id = &id;
        async move {
            tokio::time::sleep(std::time::Duration::from_millis(60 * i)).await;
            app.staff("POST", &format!("/v1/admin/lotteries/{id}/draw"), None)
                .await
                .0
        }
    });
    let (applied, drawn, ()) = tokio::join!(
        futures::future::join_all(applies),
        futures::future::join_all(draws),
        closes
    );
    assert!(
        applied.iter().all(|s| *s == 201 || *s == 409),
        "{applied:?}"
    );
    assert!(drawn.iter().all(|s| *s == 200 || *s == 409), "{drawn:?}");
    let (status, view) = app
        .staff("POST", &format!("/v1/admin/lotteries/{id}/draw"), None)
        .await;
    assert_eq!(status, 200, "{view}");
    // Every application the service accepted is in the draw, and only those.
    let accepted = applied.iter().filter(|s| **s == 201).count();
    let stored = app.count("select count(*) from lottery_applications").await;
    assert_eq!(stored as usize, accepted);
    assert_eq!(
        view["published"]["order"].as_array().map(Vec::len),
        Some(accepted),
        "{view}"
    );

    // And the database itself shuts the window: an application written past the service,
    // dated now, is refused (a household that never applied, so nothing else could refuse it).
    household(&app, &site, "7-9-999", false).await;
    let late = sqlx::query(
        "insert into lottery_applications (lottery_id, tenant_id, owner_id, unit, tier, applied_at)
         select l.id, l.tenant_id, o.id, o.unit, 0, $2 from lotteries l, owners o
          where l.id = $1::uuid and o.unit = '7-9-999'",
    )
    .bind(&id)
    .bind(app.now())
    .execute(&app.db)
    .await;
    assert!(
        late.is_err(),
        "an application after the close must be refused"
    );
}

/// Runs `parkshare lottery-verify` on `path` with backtraces asked for: (exit code,
/// standard error).
fn cli_verify_path(path: &std::path::Path) -> (Option<i32>, String) {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_parkshare"))
        .arg("lottery-verify")
        .arg(path)
        .env("RUST_BACKTRACE", "1")
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn lottery_verify_exits_2_with_one_line_when_there_is_nothing_to_check() {
    let dir = std::env::temp_dir();
    let missing = dir.join(format!("lottery-missing-{}.json", uuid::Uuid::new_v4()));
    let not_json = dir.join(format!("lottery-bad-{}.json", uuid::Uuid::new_v4()));
    std::fs::write(&not_json, "{\"lottery_id\": ").unwrap_or_else(|e| panic!("{e}"));
    let bad_seed = dir.join(format!("lottery-seed-{}.json", uuid::Uuid::new_v4()));
    let doc = json!({"lottery_id": uuid::Uuid::new_v4(), "algorithm": "parkshare-lottery-v1",
        "commitment": "0".repeat(64), "seed": "not hex", "places": 1,
        "applicants": [{"tier": 0, "key": "1-101"}], "order": ["1-101"]});
    std::fs::write(&bad_seed, doc.to_string()).unwrap_or_else(|e| panic!("{e}"));
    for path in [&missing, &not_json, &bad_seed] {
        let (code, stderr) = cli_verify_path(path);
        assert_eq!(code, Some(2), "{}: {stderr}", path.display());
        assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
        assert!(
            stderr.starts_with("lottery-verify: ") && !stderr.contains("backtrace"),
            "{stderr}"
        );
    }
    for path in [&not_json, &bad_seed] {
        let _ = std::fs::remove_file(path);
    }
}
