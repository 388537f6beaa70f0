//! Developer spaces left unsold and the two-year rule (issue 26; DOMAIN.md rule 3).

use chrono::{Duration, Utc};
use serde_json::{json, Value};

use crate::helpers::{spawn_app, str_of};

#[tokio::test]
async fn spaces_for_sale_only_past_two_years_are_listed_until_offered_for_rent() {
    let app = spawn_app().await;
    let site = app.site(10).await;
    let mut ids = Vec::new();
    for code in ["D-01", "D-02", "D-03", "D-04"] {
        let space = app
            .create(
                &format!("/v1/admin/lots/{}/spaces", site.lot),
                json!({"code": code, "kind": "developer_unsold"}),
            )
            .await;
        ids.push(str_of(&space, "id").to_owned());
    }
    let common = app
        .create(
            &format!("/v1/admin/lots/{}/spaces", site.lot),
            json!({"code": "C-01", "kind": "common"}),
        )
        .await;
    // Shanghai's date, as the service reckons "today" for this compound.
    let today = (Utc::now() + Duration::hours(8)).date_naive();
    let offer = |id: &str, body: Value| {
        let app = &app;
        let path = format!("/v1/admin/spaces/{id}/unsold-offer");
        async move { app.staff("PUT", &path, Some(body)).await }
    };
    // D-01 for sale for three years; D-02 for one; D-03 for three but now rented to owners;
    // D-04 never dated.
    let three_years = today - Duration::days(3 * 366);
    let (status, body) = offer(
        &ids[0],
        json!({"offered_as": "sale", "for_sale_since": three_years}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        (body["standing"].clone(), body["complies"].clone()),
        (json!("overdue"), json!(false))
    );
    let (status, body) = offer(
        &ids[1],
        json!({"offered_as": "sale", "for_sale_since": today - Duration::days(365)}),
    )
    .await;
    assert_eq!(
        (status, str_of(&body, "standing")),
        (200, "sale_only_until"),
        "{body}"
    );
    let (status, _) = offer(
        &ids[2],
        json!({"offered_as": "sale", "for_sale_since": three_years}),
    )
    .await;
    assert_eq!(status, 200);

    let before = list(&app, &site.compound).await;
    assert_eq!(before["breaking_the_rule"], 3, "{before}");
    assert_eq!(
        before["spaces"].as_array().map(Vec::len),
        Some(4),
        "common spaces are not listed"
    );
    let d04 = &before["spaces"][3];
    assert_eq!(
        (str_of(d04, "code"), str_of(d04, "standing")),
        ("D-04", "since_unknown")
    );
    assert!(str_of(d04, "reason").contains("for_sale_since"), "{d04}");

    // Offered for rent to owners (date kept), and D-04 run as metered parking: compliant.
    let (status, body) = offer(&ids[2], json!({"offered_as": "rent_to_owners"})).await;
    assert_eq!(
        (status, str_of(&body, "standing")),
        (200, "offered"),
        "{body}"
    );
    assert_eq!(
        body["for_sale_since"],
        json!(three_years),
        "the date is kept"
    );
    offer(&ids[3], json!({"offered_as": "metered"})).await;
    let after = list(&app, &site.compound).await;
    assert_eq!(after["breaking_the_rule"], 1, "{after}");
    assert_eq!(str_of(&after["spaces"][0], "code"), "D-01");

    // Bad input is refused and changes nothing.
    for (id, body, status, code) in [
        (
            str_of(&common, "id"),
            json!({"offered_as": "metered"}),
            422,
            "not_developer_unsold",
        ),
        (
            ids[0].as_str(),
            json!({"offered_as": "lease"}),
            422,
            "invalid_offer",
        ),
        (
            ids[0].as_str(),
            json!({"offered_as": "sale", "for_sale_since": today + Duration::days(2)}),
            422,
            "for_sale_since_in_future",
        ),
        (
            ids[0].as_str(),
            json!({"offered_as": "sale", "for_sale_since": "2024-02-30"}),
            400,
            "invalid_body",
        ),
        // An overdue space's date moved later would restart its two years.
        (
            ids[0].as_str(),
            json!({"offered_as": "sale", "for_sale_since": today - Duration::days(30)}),
            422,
            "for_sale_since_moved_later",
        ),
        (
            ids[0].as_str(),
            json!({"offered_as": "sale", "for_sale_since": "0001-01-01"}),
            422,
            "implausible_for_sale_since",
        ),
    ] {
        let (got, answer) = offer(id, body.clone()).await;
        assert_eq!(
            (got, str_of(&answer["error"], "code")),
            (status, code),
            "{body}: {answer}"
        );
    }
    assert_eq!(list(&app, &site.compound).await, after);

    // Another firm sees none of it.
    let stranger = app.new_tenant("别的物业").await;
    let (status, _) = app
        .send(
            "PUT",
            &format!("/v1/admin/spaces/{}/unsold-offer", ids[0]),
            &stranger,
            Some(json!({"offered_as": "metered"})),
        )
        .await;
    assert_eq!(status, 404);
    let (status, _) = app
        .send(
            "GET",
            &format!("/v1/admin/compounds/{}/unsold-spaces", site.compound),
            &stranger,
            None,
        )
        .await;
    assert_eq!(status, 404);
}

async fn list(app: &crate::helpers::TestApp, compound: &str) -> Value {
    let (status, body) = app
        .staff(
            "GET",
            &format!("/v1/admin/compounds/{compound}/unsold-spaces"),
            None,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    body
}
