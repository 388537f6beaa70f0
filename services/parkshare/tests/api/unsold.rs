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

async fn developer_space(
    app: &crate::helpers::TestApp,
    site: &crate::helpers::Site,
    code: &str,
) -> String {
    let space = app
        .create(
            &format!("/v1/admin/lots/{}/spaces", site.lot),
            json!({"code": code, "kind": "developer_unsold"}),
        )
        .await;
    str_of(&space, "id").to_owned()
}

async fn rent(
    app: &crate::helpers::TestApp,
    site: &crate::helpers::Site,
    space: &str,
    plate: &str,
) -> (u16, Value) {
    app.staff(
        "POST",
        &format!("/v1/admin/compounds/{}/rentals", site.compound),
        Some(json!({"space_id": space, "plate": plate, "months": 1,
                    "renter": {"name": "租户 张三"}})),
    )
    .await
}

async fn to_metered(app: &crate::helpers::TestApp, space: &str) -> (u16, Value) {
    app.staff(
        "PUT",
        &format!("/v1/admin/spaces/{space}/unsold-offer"),
        Some(json!({"offered_as": "metered", "for_sale_since": "2020-01-01"})),
    )
    .await
}

/// Outside tester of issue 26 (F6): a space a renter holds for the month is not also run as
/// metered visitor parking — refused while its term is held for payment or paid with days
/// left, let once the term is over.
#[tokio::test]
async fn a_rented_developer_space_is_not_switched_to_metered_parking() {
    let app = spawn_app().await;
    let site = app.site(10).await;
    crate::rentals::file_monthly_tariff(&app, &site).await;
    let space = developer_space(&app, &site, "D-11").await;
    let (status, applied) = rent(&app, &site, &space, "云B61001").await;
    assert_eq!(status, 201, "{applied}");
    let rental = str_of(&applied["rental"], "id").to_owned();

    // Held for its payment.
    let (status, body) = to_metered(&app, &space).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (409, Some("space_rented")),
        "{body}"
    );
    // Paid, in force.
    let (status, paid) = app
        .staff(
            "POST",
            &format!("/v1/admin/rentals/{rental}/payments"),
            Some(
                json!({"amount": applied["rental"]["price"], "shift": "早班 王芳",
                        "idempotency_key": format!("cash-{rental}")}),
            ),
        )
        .await;
    assert_eq!(status, 201, "{paid}");
    let (status, body) = to_metered(&app, &space).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (409, Some("space_rented")),
        "{body}"
    );
    let (_, listed) = app
        .staff(
            "GET",
            &format!("/v1/admin/compounds/{}/unsold-spaces", site.compound),
            None,
        )
        .await;
    assert_eq!(listed["spaces"][0]["offered_as"], "sale", "{listed}");

    // Its term over (ended yesterday in the compound): run as metered parking.
    let today = (Utc::now() + Duration::hours(8)).date_naive();
    sqlx::query("update rentals set during = daterange($2, $3) where id = $1::uuid")
        .bind(&rental)
        .bind(today - Duration::days(31))
        .bind(today)
        .execute(&app.db)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let (status, body) = to_metered(&app, &space).await;
    assert_eq!(
        (status, str_of(&body, "offered_as")),
        (200, "metered"),
        "{body}"
    );
}

/// A switch to metered parking and a rental application for the same space sent together:
/// exactly one of them is had, the other refused with its reason.
#[tokio::test]
async fn a_switch_to_metered_parking_racing_a_rental_leaves_one_of_them() {
    let app = spawn_app().await;
    let site = app.site(10).await;
    crate::rentals::file_monthly_tariff(&app, &site).await;
    for round in 0..8 {
        let space = developer_space(&app, &site, &format!("D-2{round}")).await;
        let plate = format!("云B6200{round}");
        let ((switched, switch), (rented, rental)) =
            tokio::join!(to_metered(&app, &space), rent(&app, &site, &space, &plate));
        let outcome = (
            switched,
            switch["error"]["code"].as_str(),
            rented,
            rental["error"]["code"].as_str(),
        );
        assert!(
            outcome == (200, None, 409, Some("space_metered"))
                || outcome == (409, Some("space_rented"), 201, None),
            "round {round}: {switch} / {rental}"
        );
        let terms = app
            .count(&format!(
                "select count(*) from rentals r join spaces s on s.id = r.space_id
                  where s.id = '{space}' and s.offered_as = 'metered'"
            ))
            .await;
        assert_eq!(terms, 0, "round {round}: a term on a metered space");
    }
}
