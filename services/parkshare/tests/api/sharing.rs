//! Time-shared private spaces: owners' windows, visitors' bookings, the gate, overstays and
//! webhooks, against the real service, Postgres and Redis.

use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::Duration as StdDuration;

use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use chrono::{DateTime, Datelike, Duration, NaiveTime, TimeZone, Utc};
use chrono_tz::Asia::Shanghai;
use parkshare::outbound::StaticResolver;
use parkshare::settlement::provider::{verify, SIGNATURE_HEADER};
use parkshare::sharing::overstay;
use serde_json::{json, Value};

use crate::helpers::{spawn_app, spawn_with_names, str_of, test_settings, Site, TestApp};

/// An owner with one owned space and their own credential.
pub(crate) struct Sharer {
    pub(crate) owner_id: String,
    pub(crate) token: String,
    pub(crate) space_id: String,
    code: String,
}

pub(crate) async fn sharer(app: &TestApp, site: &Site, unit: &str, code: &str) -> Sharer {
    let (owner_id, token) = app.owner_with_token(&site.compound, unit).await;
    let space = app
        .create(
            &format!("/v1/admin/lots/{}/spaces", site.lot),
            json!({"code": code, "kind": "owned", "owner_id": owner_id}),
        )
        .await;
    Sharer {
        owner_id,
        token,
        space_id: str_of(&space, "id").to_owned(),
        code: code.to_owned(),
    }
}

async fn set_windows(app: &TestApp, sharer: &Sharer, windows: Value) -> (u16, Value) {
    let path = format!("/v1/owner/spaces/{}/windows", sharer.space_id);
    app.send(
        "PUT",
        &path,
        &sharer.token,
        Some(json!({ "windows": windows })),
    )
    .await
}

pub(crate) async fn share_all_day(app: &TestApp, sharer: &Sharer) {
    let (status, body) = set_windows(
        app,
        sharer,
        json!([{"days": [1, 2, 3, 4, 5, 6, 7], "from": "00:00", "to": "24:00"}]),
    )
    .await;
    assert_eq!(status, 200, "{body}");
}

async fn book(
    app: &TestApp,
    site: &Site,
    plate: &str,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    extra: Value,
) -> (u16, Value) {
    let mut body = json!({"plate": plate, "from": from, "to": to});
    if let (Some(body), Some(extra)) = (body.as_object_mut(), extra.as_object()) {
        body.extend(extra.clone());
    }
    app.send(
        "POST",
        &format!("/v1/public/lots/{}/bookings", site.lot),
        "",
        Some(body),
    )
    .await
}

/// Pays a held booking through the simulated provider and waits until the provider's
/// notification confirmed it.
async fn pay_booking(app: &TestApp, booked: &Value) {
    let pay_url = str_of(&booked["payment_intent"], "pay_url");
    assert!(!pay_url.is_empty(), "no intent to pay: {booked}");
    let (status, body) = app.send("POST", pay_url, "", None).await;
    assert_eq!(status, 202, "{body}");
    let path = format!("/v1/public/bookings/{}", str_of(&booked["booking"], "id"));
    for _ in 0..100 {
        let (_, shown) = app.send("GET", &path, str_of(booked, "token"), None).await;
        if shown["status"] == "booked" {
            return;
        }
        tokio::time::sleep(StdDuration::from_millis(50)).await;
    }
    panic!("booking not confirmed after payment: {booked}");
}

/// Books and, when the booking has a price, pays it: a booking that holds its space.
async fn book_paid(
    app: &TestApp,
    site: &Site,
    plate: &str,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    extra: Value,
) -> (u16, Value) {
    let (status, booked) = book(app, site, plate, from, to, extra).await;
    if status == 201 && booked["payment_intent"].is_object() {
        pay_booking(app, &booked).await;
    }
    (status, booked)
}

async fn free_codes(
    app: &TestApp,
    site: &Site,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Vec<String> {
    let query = format!("from={}&to={}", urlencode(from), urlencode(to));
    let (status, body) = app
        .send(
            "GET",
            &format!("/v1/public/lots/{}/availability?{query}", site.lot),
            "",
            None,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    body["spaces"]
        .as_array()
        .map(|a| a.iter().map(|s| str_of(s, "code").to_owned()).collect())
        .unwrap_or_default()
}

fn urlencode(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// `hh:mm` Shanghai time on the next Monday at least two days ahead.
fn next_monday_at(hour: u32, minute: u32) -> DateTime<Utc> {
    let mut date = (Utc::now() + Duration::days(2))
        .with_timezone(&Shanghai)
        .date_naive();
    while date.weekday() != chrono::Weekday::Mon {
        date = date.succ_opt().unwrap_or(date);
    }
    let local = date.and_time(NaiveTime::from_hms_opt(hour, minute, 0).unwrap_or_default());
    Shanghai
        .from_local_datetime(&local)
        .single()
        .map(|t| t.with_timezone(&Utc))
        .unwrap_or_default()
}

fn local(at: DateTime<Utc>) -> String {
    at.with_timezone(&Shanghai)
        .format("%Y-%m-%dT%H:%M")
        .to_string()
}

// ---- a webhook receiver on loopback ----------------------------------------------------------

/// One webhook call: its event header, its signature header and its body.
type Call = (String, String, Vec<u8>);

#[derive(Clone, Default)]
struct Received {
    calls: Arc<Mutex<Vec<Call>>>,
    failures_left: Arc<Mutex<u32>>,
}

impl Received {
    fn events(&self) -> Vec<(String, Value)> {
        self.calls
            .lock()
            .map(|c| {
                c.iter()
                    .map(|(e, _, b)| (e.clone(), serde_json::from_slice(b).unwrap_or(Value::Null)))
                    .collect()
            })
            .unwrap_or_default()
    }

    async fn wait_for(&self, event: &str) -> Value {
        for _ in 0..100 {
            if let Some((_, body)) = self.events().into_iter().find(|(e, _)| e == event) {
                return body;
            }
            tokio::time::sleep(StdDuration::from_millis(100)).await;
        }
        panic!("no {event} webhook arrived; got {:?}", self.events());
    }
}

/// A receiver answering 500 to its first `failures` calls and 200 after.
fn receiver(failures: u32) -> (String, Received) {
    let received = Received::default();
    if let Ok(mut left) = received.failures_left.lock() {
        *left = failures;
    }
    let listener = TcpListener::bind("127.0.0.1:0").unwrap_or_else(|e| panic!("{e}"));
    let url = format!(
        "http://{}/hooks",
        listener.local_addr().unwrap_or_else(|e| panic!("{e}"))
    );
    let shared = received.clone();
    let server = HttpServer::new(move || {
        App::new().app_data(web::Data::new(shared.clone())).route(
            "/hooks",
            web::post().to(
                |req: HttpRequest, body: web::Bytes, seen: web::Data<Received>| async move {
                    let header = |name: &str| {
                        req.headers()
                            .get(name)
                            .and_then(|v| v.to_str().ok())
                            .unwrap_or_default()
                            .to_owned()
                    };
                    if let Ok(mut left) = seen.failures_left.lock() {
                        if *left > 0 {
                            *left -= 1;
                            return HttpResponse::InternalServerError().finish();
                        }
                    }
                    if let Ok(mut calls) = seen.calls.lock() {
                        calls.push((
                            header("x-parkshare-event"),
                            header(SIGNATURE_HEADER),
                            body.to_vec(),
                        ));
                    }
                    HttpResponse::Ok().finish()
                },
            ),
        )
    })
    .workers(1)
    .listen(listener)
    .unwrap_or_else(|e| panic!("{e}"))
    .run();
    tokio::spawn(server);
    (url, received)
}

async fn owner_webhook(app: &TestApp, sharer: &Sharer, url: &str) -> String {
    let (status, body) = app
        .send(
            "PUT",
            "/v1/owner/webhook",
            &sharer.token,
            Some(json!({"url": url})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    str_of(&body, "secret").to_owned()
}

// ---- owners' windows and visitors' bookings ---------------------------------------------------

#[tokio::test]
async fn visitors_can_book_only_inside_the_owners_windows() {
    let app = spawn_app().await;
    let site = app.site(10).await;
    let zhang = sharer(&app, &site, "1-101", "B-101").await;
    // Weekdays in office hours, and Monday night into Tuesday morning.
    let (status, body) = set_windows(
        &app,
        &zhang,
        json!([{"days": [1, 2, 3, 4, 5], "from": "08:00", "to": "18:00"}, {"days": [1], "from": "22:00", "to": "07:00"}]),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let monday = |h, m| next_monday_at(h, m);

    assert_eq!(
        free_codes(&app, &site, monday(9, 0), monday(11, 0)).await,
        vec!["B-101"]
    );
    // Into the evening gap, and on Saturday: not open.
    assert!(free_codes(&app, &site, monday(17, 0), monday(19, 0))
        .await
        .is_empty());
    let saturday = monday(9, 0) + Duration::days(5);
    assert!(
        free_codes(&app, &site, saturday, saturday + Duration::hours(2))
            .await
            .is_empty()
    );
    // Across midnight, inside the overnight window.
    let overnight = (monday(23, 0), monday(6, 0) + Duration::days(1));
    assert_eq!(
        free_codes(&app, &site, overnight.0, overnight.1).await,
        vec!["B-101"]
    );
    let (status, body) =
        book_paid(&app, &site, "粤B12345", overnight.0, overnight.1, json!({})).await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["booking"]["space_code"], "B-101");
    let (status, body) = book_paid(
        &app,
        &site,
        "粤B54321",
        saturday,
        saturday + Duration::hours(2),
        json!({}),
    )
    .await;
    assert_eq!(
        (status, str_of(&body["error"], "code")),
        (409, "no_space_available"),
        "{body}"
    );

    // A one-off blackout removes hours; an opening adds Saturday morning.
    let path = format!("/v1/owner/spaces/{}/exceptions", zhang.space_id);
    let (status, body) = app
        .send("POST", &path, &zhang.token, Some(json!({"kind": "blackout", "from": local(monday(10, 0)), "to": local(monday(12, 0))})))
        .await;
    assert_eq!(status, 201, "{body}");
    assert!(free_codes(&app, &site, monday(9, 0), monday(11, 0))
        .await
        .is_empty());
    assert_eq!(
        free_codes(&app, &site, monday(12, 0), monday(14, 0)).await,
        vec!["B-101"]
    );
    let (status, _) = app
        .send("POST", &path, &zhang.token, Some(json!({"kind": "open", "from": local(saturday), "to": local(saturday + Duration::hours(3))})))
        .await;
    assert_eq!(status, 201);
    assert_eq!(
        free_codes(&app, &site, saturday, saturday + Duration::hours(2)).await,
        vec!["B-101"]
    );

    // Pausing stops new bookings at once; resuming brings the space back.
    let pause = format!("/v1/owner/spaces/{}/pause", zhang.space_id);
    assert_eq!(app.send("POST", &pause, &zhang.token, None).await.0, 200);
    assert!(free_codes(&app, &site, monday(12, 0), monday(14, 0))
        .await
        .is_empty());
    let resume = format!("/v1/owner/spaces/{}/resume", zhang.space_id);
    assert_eq!(app.send("POST", &resume, &zhang.token, None).await.0, 200);
    assert_eq!(
        free_codes(&app, &site, monday(12, 0), monday(14, 0)).await,
        vec!["B-101"]
    );

    // Malformed windows are refused with a reason and change nothing.
    let (status, body) = set_windows(
        &app,
        &zhang,
        json!([{"days": [8], "from": "08:00", "to": "18:00"}]),
    )
    .await;
    assert_eq!(
        (status, str_of(&body["error"], "code")),
        (422, "invalid_weekdays"),
        "{body}"
    );
    assert_eq!(
        free_codes(&app, &site, monday(12, 0), monday(14, 0)).await,
        vec!["B-101"]
    );
}

#[tokio::test]
async fn an_owner_cannot_withdraw_hours_that_are_booked() {
    let app = spawn_app().await;
    let site = app.site(10).await;
    let zhang = sharer(&app, &site, "1-101", "B-101").await;
    share_all_day(&app, &zhang).await;
    let from = next_monday_at(9, 0);
    let (status, booked) = book_paid(
        &app,
        &site,
        "沪A11111",
        from,
        from + Duration::hours(2),
        json!({}),
    )
    .await;
    assert_eq!(status, 201, "{booked}");

    let (status, body) = set_windows(
        &app,
        &zhang,
        json!([{"days": [6, 7], "from": "00:00", "to": "24:00"}]),
    )
    .await;
    assert_eq!(
        (status, str_of(&body["error"], "code")),
        (409, "window_has_bookings"),
        "{body}"
    );
    assert!(
        str_of(&body["error"], "message").contains(str_of(&booked["booking"], "id")),
        "{body}"
    );
    let path = format!("/v1/owner/spaces/{}/exceptions", zhang.space_id);
    let blackout = json!({"kind": "blackout", "from": local(from + Duration::hours(1)), "to": local(from + Duration::hours(5))});
    let (status, _) = app
        .send("POST", &path, &zhang.token, Some(blackout.clone()))
        .await;
    assert_eq!(status, 409);
    // Nothing changed: the booking stands, the hours are still all day.
    let (_, spaces) = app
        .send("GET", "/v1/owner/spaces", &zhang.token, None)
        .await;
    assert_eq!(
        spaces[0]["windows"][0]["days"],
        json!([1, 2, 3, 4, 5, 6, 7]),
        "{spaces}"
    );
    let (_, bookings) = app
        .send("GET", "/v1/owner/bookings", &zhang.token, None)
        .await;
    assert_eq!(bookings[0]["booking"]["status"], "booked");
    assert_eq!(bookings[0]["history"][0]["kind"], "made");

    // Once the visitor cancels, the owner may take the hours back.
    let id = str_of(&booked["booking"], "id");
    let (status, _) = app
        .send(
            "POST",
            &format!("/v1/public/bookings/{id}/cancel"),
            str_of(&booked, "token"),
            None,
        )
        .await;
    assert_eq!(status, 200);
    let (status, _) = app.send("POST", &path, &zhang.token, Some(blackout)).await;
    assert_eq!(status, 201);
}

#[tokio::test]
async fn owners_see_only_their_own_spaces() {
    let app = spawn_app().await;
    let site = app.site(10).await;
    let zhang = sharer(&app, &site, "1-101", "B-101").await;
    let li = sharer(&app, &site, "1-102", "B-102").await;
    let path = format!("/v1/owner/spaces/{}/windows", li.space_id);
    let (status, _) = app
        .send("PUT", &path, &zhang.token, Some(json!({"windows": []})))
        .await;
    assert_eq!(status, 404);
    let (status, _) = app
        .send("PUT", &path, "", Some(json!({"windows": []})))
        .await;
    assert_eq!(status, 401);
    let (status, _) = app
        .send("PUT", &path, &app.staff_token, Some(json!({"windows": []})))
        .await;
    assert_eq!(status, 401, "a staff token is not an owner's");
    let (_, spaces) = app
        .send("GET", "/v1/owner/spaces", &zhang.token, None)
        .await;
    assert_eq!(spaces.as_array().map(Vec::len), Some(1));
    // Another firm cannot issue tokens for this firm's owners.
    let other = app.new_tenant("别家物业").await;
    let (status, _) = app
        .send(
            "POST",
            &format!("/v1/admin/owners/{}/tokens", zhang.owner_id),
            &other,
            Some(json!({})),
        )
        .await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn concurrent_bookings_for_the_last_space_exactly_one_wins() {
    let app = spawn_app().await;
    let site = app.site(10).await;
    let zhang = sharer(&app, &site, "1-101", "B-101").await;
    share_all_day(&app, &zhang).await;
    let from = Utc::now() + Duration::hours(3);
    let attempts = (0..8).map(|i| {
        let (app, site) = (&app, &site);
        async move {
            book_paid(
                app,
                site,
                &format!("浙A{:05}", 10_000 + i),
                from,
                from + Duration::hours(2),
                json!({}),
            )
            .await
        }
    });
    let results = futures::future::join_all(attempts).await;
    let won: Vec<_> = results.iter().filter(|(s, _)| *s == 201).collect();
    let lost: Vec<_> = results
        .iter()
        .filter(|(s, b)| *s == 409 && str_of(&b["error"], "code") == "no_space_available")
        .collect();
    assert_eq!((won.len(), lost.len()), (1, 7), "{results:?}");
    assert_eq!(
        app.count("select count(*) from bookings where status = 'booked'")
            .await,
        1
    );
    // The same plate cannot hold two overlapping bookings either.
    let plate = str_of(&won[0].1["booking"], "plate").to_owned();
    let li = sharer(&app, &site, "1-102", "B-102").await;
    share_all_day(&app, &li).await;
    let (status, body) = book_paid(
        &app,
        &site,
        &plate,
        from + Duration::hours(1),
        from + Duration::hours(3),
        json!({}),
    )
    .await;
    assert_eq!(
        (status, str_of(&body["error"], "code")),
        (409, "plate_already_booked"),
        "{body}"
    );
}

#[tokio::test]
async fn cancelling_is_free_until_the_free_period_then_costs_the_first_hour() {
    let app = spawn_app().await;
    let site = app.site(10).await;
    let zhang = sharer(&app, &site, "1-101", "B-101").await;
    share_all_day(&app, &zhang).await;
    let later = Utc::now() + Duration::days(2);
    let (_, early) = book_paid(
        &app,
        &site,
        "苏E11111",
        later,
        later + Duration::hours(3),
        json!({}),
    )
    .await;
    let soon = Utc::now() + Duration::minutes(30);
    let (_, late) = book_paid(
        &app,
        &site,
        "苏E22222",
        soon,
        soon + Duration::hours(3),
        json!({}),
    )
    .await;
    // The fee was announced at booking: an hour by the lot's tariff (15 free minutes, ¥3/h).
    assert_eq!(str_of(&late, "late_cancellation_fee"), "3.00", "{late}");

    let cancel = |b: &Value| format!("/v1/public/bookings/{}/cancel", str_of(&b["booking"], "id"));
    let (status, body) = app
        .send("POST", &cancel(&early), str_of(&early, "token"), None)
        .await;
    assert_eq!(
        (status, str_of(&body, "cancellation_fee")),
        (200, "0.00"),
        "{body}"
    );
    let (status, body) = app
        .send("POST", &cancel(&late), str_of(&late, "token"), None)
        .await;
    assert_eq!(
        (status, str_of(&body, "cancellation_fee")),
        (200, "3.00"),
        "{body}"
    );
    // Both were paid ahead, ¥9.00 each (three hours at ¥3): the free cancellation gave all of
    // it back, the late one all but the fee, each by a reversing entry. The provider's clearing
    // account keeps the fee alone, the owner their share of it.
    assert_eq!(
        str_of(&early["payment_intent"], "amount"),
        "9.00",
        "{early}"
    );
    assert_eq!(str_of(&body, "refunded"), "6.00", "{body}");
    let (_, early_now) = app
        .send(
            "GET",
            &format!("/v1/public/bookings/{}", str_of(&early["booking"], "id")),
            str_of(&early, "token"),
            None,
        )
        .await;
    assert_eq!(str_of(&early_now, "refunded"), "9.00", "{early_now}");
    assert_eq!(app.balance("provider_clearing").await.to_string(), "3.00");
    let (_, earnings) = app
        .send("GET", "/v1/owner/earnings", &zhang.token, None)
        .await;
    assert_eq!(str_of(&earnings, "balance"), "2.70", "{earnings}");
    // Cancelling again answers the same; another's token finds nothing.
    let (status, again) = app
        .send("POST", &cancel(&late), str_of(&late, "token"), None)
        .await;
    assert_eq!((status, again), (200, body));
    let (status, _) = app
        .send("POST", &cancel(&late), str_of(&early, "token"), None)
        .await;
    assert_eq!(status, 404);
    // The space is free again.
    assert_eq!(
        free_codes(&app, &site, soon, soon + Duration::hours(3)).await,
        vec!["B-101"]
    );
}

// ---- the gate -------------------------------------------------------------------------------

/// A full lot (capacity 1, taken), with Zhang's space shared all day.
async fn full_lot_with_shared_space(app: &TestApp) -> (Site, Sharer) {
    let site = app.site(1).await;
    let zhang = sharer(app, &site, "1-101", "B-101").await;
    share_all_day(app, &zhang).await;
    let (_, entry) = app
        .read(
            &site.entries[0],
            "京A00001",
            Utc::now() - Duration::minutes(30),
        )
        .await;
    assert_eq!(entry["reason"], "visitor_admitted", "{entry}");
    (site, zhang)
}

#[tokio::test]
async fn a_booked_plate_is_admitted_to_a_full_lot_and_its_stay_credits_the_owner() {
    let app = spawn_app().await;
    let (site, zhang) = full_lot_with_shared_space(&app).await;
    let (url, received) = receiver(0);
    owner_webhook(&app, &zhang, &url).await;
    let from = Utc::now() - Duration::minutes(4);
    let (status, booked) = book_paid(
        &app,
        &site,
        "京B12345",
        from,
        from + Duration::hours(2),
        json!({}),
    )
    .await;
    assert_eq!(status, 201, "{booked}");

    // Not the booked plate: the pool is full and the only shared space is booked.
    let (_, refused) = app.read(&site.entries[0], "京C99999", Utc::now()).await;
    assert_eq!(refused["reason"], "lot_full", "{refused}");
    // The booked plate, read 14 minutes before its booking (15 are allowed): in, onto its space.
    let (_, entry) = app
        .read(
            &site.entries[1],
            "京B12345",
            Utc::now() - Duration::minutes(18),
        )
        .await;
    assert_eq!(
        (entry["action"].as_str(), entry["reason"].as_str()),
        (Some("open"), Some("booking_admitted")),
        "{entry}"
    );
    assert!(str_of(&entry, "display").contains("B-101"), "{entry}");
    let session = str_of(&entry, "session_id").to_owned();
    let id = str_of(&booked["booking"], "id");
    let (_, shown) = app
        .send(
            "GET",
            &format!("/v1/public/bookings/{id}"),
            str_of(&booked, "token"),
            None,
        )
        .await;
    assert_eq!(
        (shown["status"].as_str(), shown["session_id"].as_str()),
        (Some("arrived"), Some(session.as_str()))
    );

    // The two booked hours were paid ahead (¥6.00, two hours at ¥3); the 18 minutes stayed
    // cost one hour, ¥3.00, so nothing is due and the car is let out without paying again.
    assert_eq!(
        str_of(&booked["payment_intent"], "amount"),
        "6.00",
        "{booked}"
    );
    let (_, quote) = app
        .staff("GET", &format!("/v1/admin/sessions/{session}/quote"), None)
        .await;
    assert_eq!(
        (
            str_of(&quote["bill"], "total"),
            str_of(&quote, "paid"),
            str_of(&quote, "amount_due")
        ),
        ("3.00", "6.00", "0.00"),
        "{quote}"
    );
    let (_, exit) = app
        .read(&site.exit, "京B12345", Utc::now() + Duration::seconds(5))
        .await;
    assert_eq!(exit["action"], "open", "{exit}");
    // The owner was credited once, when the booking was paid, less the platform fee.
    let (_, earnings) = app
        .send("GET", "/v1/owner/earnings", &zhang.token, None)
        .await;
    assert_eq!(
        str_of(&earnings, "balance"),
        "5.40",
        "10 % fee on ¥6.00: {earnings}"
    );
    let payout = received.wait_for("payout").await;
    let paid = (
        payout["data"]["paid"].as_str(),
        payout["data"]["credited"].as_str(),
    );
    assert_eq!(paid, (Some("6.00"), Some("5.40")), "{payout}");
    let arrived = received.wait_for("booking.arrived").await;
    assert_eq!(
        arrived["data"]["session_id"].as_str(),
        Some(session.as_str())
    );
    let (_, bookings) = app
        .send("GET", "/v1/owner/bookings", &zhang.token, None)
        .await;
    let kinds: Vec<_> = bookings[0]["history"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| e["kind"].clone())
        .collect();
    assert_eq!(
        kinds,
        vec![
            json!("made"),
            json!("confirmed"),
            json!("arrived"),
            json!("completed")
        ],
        "{bookings}"
    );
}

#[tokio::test]
async fn a_walk_in_finds_a_free_shared_space_when_the_pool_is_full() {
    let app = spawn_app().await;
    let (site, _zhang) = full_lot_with_shared_space(&app).await;
    let (_, entry) = app.read(&site.entries[0], "京D22222", Utc::now()).await;
    assert_eq!(entry["reason"], "booking_admitted", "{entry}");
    assert_eq!(
        app.count("select count(*) from bookings where origin = 'walk_in' and status = 'arrived'")
            .await,
        1
    );
    // The shared space is now taken: the next walk-in is refused.
    let (_, refused) = app.read(&site.entries[0], "京D33333", Utc::now()).await;
    assert_eq!(refused["reason"], "lot_full", "{refused}");
}

#[tokio::test]
async fn the_owner_coming_home_early_is_let_in_and_the_case_recorded() {
    let app = spawn_app().await;
    let (site, zhang) = full_lot_with_shared_space(&app).await;
    let (url, received) = receiver(0);
    owner_webhook(&app, &zhang, &url).await;
    let vehicle = app
        .create(
            &format!("/v1/admin/compounds/{}/vehicles", site.compound),
            json!({"plate": "京E66666", "class": "small", "owner_id": zhang.owner_id}),
        )
        .await;
    app.create(
        &format!("/v1/admin/compounds/{}/permits", site.compound),
        json!({"kind": "owned_space", "vehicle_id": vehicle["id"], "space_id": zhang.space_id, "valid_from": "2020-01-01"}),
    )
    .await;
    let from = Utc::now();
    book_paid(
        &app,
        &site,
        "京B12345",
        from,
        from + Duration::hours(4),
        json!({}),
    )
    .await;
    let (_, visitor) = app.read(&site.entries[0], "京B12345", Utc::now()).await;
    assert_eq!(visitor["reason"], "booking_admitted", "{visitor}");

    let (_, owner) = app.read(&site.entries[1], "京E66666", Utc::now()).await;
    assert_eq!(
        (owner["action"].as_str(), owner["reason"].as_str()),
        (Some("open"), Some("permit_holder")),
        "{owner}"
    );
    let (_, anomalies) = app
        .staff(
            "GET",
            &format!("/v1/admin/lots/{}/anomalies", site.lot),
            None,
        )
        .await;
    assert!(
        anomalies
            .as_array()
            .into_iter()
            .flatten()
            .any(|a| a["kind"] == "owner_space_occupied"),
        "{anomalies}"
    );
    let told = received.wait_for("owner.space_occupied").await;
    assert_eq!(told["data"]["space_code"], zhang.code);
}

// ---- overstays --------------------------------------------------------------------------------

/// Moves the service's clock ahead by `by`, then runs the overstay sweep as of then (the
/// service's own runs every minute).
async fn sweep_after(app: &TestApp, by: Duration) -> overstay::SweepReport {
    app.advance(by);
    overstay::sweep(&app.db, app.now())
        .await
        .unwrap_or_else(|e| panic!("{e}"))
}

/// Zhang's space has a visitor who arrived on a one-hour booking, and the next booking after it.
async fn overstay_setup(app: &TestApp) -> (Site, Sharer, Sharer, Value, Received) {
    let site = app.site(10).await;
    let zhang = sharer(app, &site, "1-101", "B-101").await;
    let li = sharer(app, &site, "1-102", "B-102").await;
    share_all_day(app, &zhang).await;
    share_all_day(app, &li).await;
    let (url, received) = receiver(0);
    owner_webhook(app, &zhang, &url).await;
    let now = Utc::now();
    let first = json!({"space_id": zhang.space_id});
    let (status, body) = book_paid(
        app,
        &site,
        "津A11111",
        now,
        now + Duration::hours(1),
        first.clone(),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let (_, entry) = app.read(&site.entries[0], "津A11111", now).await;
    assert_eq!(entry["reason"], "booking_admitted", "{entry}");
    let mut next = first;
    next["webhook_url"] = json!(url);
    let (status, next) = book_paid(
        app,
        &site,
        "津B22222",
        now + Duration::hours(1),
        now + Duration::hours(2),
        next,
    )
    .await;
    assert_eq!(status, 201, "{next}");
    (site, zhang, li, next, received)
}

#[tokio::test]
async fn an_overstay_tells_the_owner_and_moves_the_next_booking() {
    let app = spawn_app().await;
    let (_site, zhang, li, next, received) = overstay_setup(&app).await;
    let report = sweep_after(&app, Duration::minutes(65)).await;
    assert_eq!((report.reported, report.moved, report.cancelled), (1, 1, 0));
    let told = received.wait_for("booking.overstay").await;
    assert_eq!(told["data"]["plate"], "津A11111");
    let moved = received.wait_for("booking.moved").await;
    assert_eq!(
        (
            moved["data"]["space_code"].as_str(),
            moved["data"]["moved_from"].as_str()
        ),
        (Some(li.code.as_str()), Some("B-101"))
    );
    let id = str_of(&next["booking"], "id");
    let (_, shown) = app
        .send(
            "GET",
            &format!("/v1/public/bookings/{id}"),
            str_of(&next, "token"),
            None,
        )
        .await;
    assert_eq!(
        (shown["status"].as_str(), shown["space_id"].as_str()),
        (Some("booked"), Some(li.space_id.as_str()))
    );
    // A second sweep reports nothing new.
    let again = sweep_after(&app, Duration::minutes(1)).await;
    assert_eq!((again.reported, again.moved, again.cancelled), (0, 0, 0));
    assert_eq!(
        app.count("select count(*) from anomalies where kind = 'booking_overstay'")
            .await,
        1
    );
    let _ = zhang;
}

/// A car leaving after its booking ended is an overstay, told at once even when the exit
/// camera's clock runs minutes ahead of the service's: the webhook is due at the service's now,
/// not at the read's time.
#[tokio::test]
async fn an_overstay_noticed_at_a_fast_cameras_exit_is_told_at_once() {
    let app = spawn_app().await;
    let (site, _zhang, _li, _next, received) = overstay_setup(&app).await;
    app.advance(Duration::minutes(65));
    let stay = app
        .open_sessions(&site.lot)
        .await
        .into_iter()
        .find(|s| s["plate"] == "津A11111")
        .unwrap_or_else(|| panic!("no open stay"));
    let session = str_of(&stay, "id").to_owned();
    let (_, quote) = app
        .staff("GET", &format!("/v1/admin/sessions/{session}/quote"), None)
        .await;
    let due = str_of(&quote, "amount_due").to_owned();
    if due != "0.00" {
        app.pay(&session, &due).await;
    }
    let (_, exit) = app
        .read(&site.exit, "津A11111", app.now() + Duration::minutes(4))
        .await;
    assert_eq!(exit["action"], "open", "{exit}");
    let told = received.wait_for("booking.overstay").await;
    assert_eq!(told["data"]["plate"], "津A11111", "{told}");
}

#[tokio::test]
async fn an_overstay_with_nowhere_to_move_cancels_the_next_booking_free() {
    let app = spawn_app().await;
    let (_site, _zhang, li, next, received) = overstay_setup(&app).await;
    assert_eq!(
        app.send(
            "POST",
            &format!("/v1/owner/spaces/{}/pause", li.space_id),
            &li.token,
            None
        )
        .await
        .0,
        200
    );
    let report = sweep_after(&app, Duration::minutes(65)).await;
    assert_eq!((report.reported, report.moved, report.cancelled), (1, 0, 1));
    let cancelled = received.wait_for("booking.cancelled").await;
    assert_eq!(
        (
            cancelled["data"]["refund"].as_str(),
            cancelled["data"]["cancel_reason"].as_str()
        ),
        (Some("full"), Some("displaced_by_overstay"))
    );
    let id = str_of(&next["booking"], "id");
    let (_, shown) = app
        .send(
            "GET",
            &format!("/v1/public/bookings/{id}"),
            str_of(&next, "token"),
            None,
        )
        .await;
    assert_eq!(
        (shown["status"].as_str(), shown["cancellation_fee"].as_str()),
        (Some("cancelled"), Some("0.00"))
    );
}

// ---- webhooks ---------------------------------------------------------------------------------

#[tokio::test]
async fn webhooks_are_signed_retried_and_recorded() {
    let app = spawn_app().await;
    let site = app.site(10).await;
    let zhang = sharer(&app, &site, "1-101", "B-101").await;
    share_all_day(&app, &zhang).await;
    // The receiver fails twice before it answers.
    let (url, received) = receiver(2);
    let secret = owner_webhook(&app, &zhang, &url).await;
    let from = Utc::now() + Duration::hours(1);
    let (_, booked) = book_paid(
        &app,
        &site,
        "鲁A12345",
        from,
        from + Duration::hours(1),
        json!({}),
    )
    .await;

    let made = received.wait_for("booking.made").await;
    assert_eq!(made["data"]["id"], booked["booking"]["id"]);
    let calls = received.calls.lock().map(|c| c.clone()).unwrap_or_default();
    let (_, signature, body) = &calls[0];
    assert!(
        verify(secret.as_bytes(), body, signature),
        "signature {signature} does not verify"
    );
    assert!(!verify(b"another secret", body, signature));
    // The worker records the attempt just after the receiver answered.
    let mut deliveries = Value::Null;
    let all = |d: &Value| d.as_array().cloned().unwrap_or_default();
    for _ in 0..50 {
        deliveries = app
            .staff("GET", "/v1/admin/webhook-deliveries", None)
            .await
            .1;
        if all(&deliveries).iter().all(|d| d["status"] != "pending") {
            break;
        }
        tokio::time::sleep(StdDuration::from_millis(100)).await;
    }
    // Paying the booking queued two events for the owner (`payout`, `booking.made`); the
    // receiver's two failures were retried: four attempts, both delivered.
    let events: Vec<_> = all(&deliveries)
        .iter()
        .map(|d| {
            (
                d["event"].clone(),
                d["status"].clone(),
                d["last_status"].clone(),
            )
        })
        .collect();
    assert_eq!(events.len(), 2, "{deliveries}");
    for event in ["payout", "booking.made"] {
        assert!(
            events.contains(&(json!(event), json!("delivered"), json!(200))),
            "{deliveries}"
        );
    }
    let attempts: i64 = all(&deliveries)
        .iter()
        .filter_map(|d| d["attempts"].as_i64())
        .sum();
    assert_eq!(attempts, 4, "{deliveries}");
    // Another firm sees none of them.
    let other = app.new_tenant("别家物业").await;
    let (_, theirs) = app
        .send("GET", "/v1/admin/webhook-deliveries", &other, None)
        .await;
    assert_eq!(theirs, json!([]));
}

/// Makes the sharer's space free: a booking of it is confirmed (and its webhooks queued) at
/// once, without a payment.
async fn share_free(app: &TestApp, sharer: &Sharer) {
    let price = format!("/v1/owner/spaces/{}/price", sharer.space_id);
    let (status, body) = app
        .send("PUT", &price, &sharer.token, Some(json!({"price_pct": 0})))
        .await;
    assert_eq!(status, 200, "{body}");
}

/// The firm's deliveries once there are `count` and none is pending.
async fn settled_deliveries(app: &TestApp, count: usize) -> Vec<Value> {
    let mut deliveries = Vec::new();
    for _ in 0..50 {
        let (_, list) = app.staff("GET", "/v1/admin/webhook-deliveries", None).await;
        deliveries = list.as_array().cloned().unwrap_or_default();
        if deliveries.len() >= count && deliveries.iter().all(|d| d["status"] != "pending") {
            return deliveries;
        }
        tokio::time::sleep(StdDuration::from_millis(100)).await;
    }
    panic!("deliveries did not settle: {deliveries:?}");
}

/// Issue 22: names that resolve into the service's own network (a name in /etc/hosts,
/// `127.0.0.1.nip.io`) were accepted and the worker posted to them. Here the service resolves
/// test names without the network, and a receiver listens at the address they resolve to.
#[tokio::test]
async fn a_webhook_name_that_resolves_into_our_network_is_never_called() {
    let (url, received) = receiver(0);
    let port = reqwest::Url::parse(&url)
        .ok()
        .and_then(|u| u.port())
        .unwrap_or_else(|| panic!("{url}"));
    let loopback = std::net::IpAddr::from([127, 0, 0, 1]);
    let names = StaticResolver::new([
        ("evil.test", loopback),
        ("127.0.0.1.nip.io", loopback),
        ("meta.test", std::net::IpAddr::from([100, 100, 100, 200])),
    ]);
    let mut settings = test_settings();
    settings.webhook_private_hosts = parkshare::settings::PrivateHosts::Deny;
    let app = spawn_with_names(settings, Arc::new(names)).await;
    let site = app.site(10).await;
    let zhang = sharer(&app, &site, "1-101", "B-101").await;
    share_all_day(&app, &zhang).await;
    // Free bookings: each is confirmed, and its webhooks queued, without a payment.
    share_free(&app, &zhang).await;

    // The receiver's own address is refused when it is registered...
    let (status, body) = app
        .send(
            "PUT",
            "/v1/owner/webhook",
            &zhang.token,
            Some(json!({"url": url})),
        )
        .await;
    assert_eq!(
        (status, str_of(&body["error"], "code")),
        (422, "invalid_webhook_url"),
        "{body}"
    );
    // ...names for it pass registration and are refused at delivery.
    owner_webhook(&app, &zhang, &format!("http://evil.test:{port}/hooks")).await;
    let from = Utc::now() + Duration::hours(1);
    for (hours, hook) in [
        (0, format!("http://127.0.0.1.nip.io:{port}/hooks")),
        (2, "http://meta.test/latest/meta-data".to_owned()),
    ] {
        let at = from + Duration::hours(hours);
        let (status, body) = book(
            &app,
            &site,
            "鲁A12345",
            at,
            at + Duration::hours(1),
            json!({"webhook_url": hook}),
        )
        .await;
        assert_eq!(status, 201, "{body}");
    }

    let deliveries = settled_deliveries(&app, 4).await;
    let mut reasons: Vec<(&str, Option<i64>, String)> = deliveries
        .iter()
        .map(|d| {
            let error = str_of(d, "last_error");
            let host = error.split(' ').nth(2).unwrap_or_default();
            (str_of(d, "status"), d["attempts"].as_i64(), host.to_owned())
        })
        .collect();
    reasons.sort_by(|a, b| a.2.cmp(&b.2));
    assert_eq!(
        reasons,
        vec![
            ("failed", Some(1), "127.0.0.1.nip.io".to_owned()),
            ("failed", Some(1), "evil.test".to_owned()),
            ("failed", Some(1), "evil.test".to_owned()),
            ("failed", Some(1), "meta.test".to_owned()),
        ],
        "{deliveries:?}"
    );
    let errors: Vec<&str> = deliveries.iter().map(|d| str_of(d, "last_error")).collect();
    assert!(
        errors.contains(&"not sent: evil.test resolves to 127.0.0.1, a loopback address, which webhooks may not reach")
            && errors.contains(&"not sent: meta.test resolves to 100.100.100.200, a cloud metadata address, which webhooks may not reach"),
        "{errors:?}"
    );
    tokio::time::sleep(StdDuration::from_millis(300)).await;
    assert_eq!(
        received.events(),
        vec![],
        "the receiver on loopback was called"
    );
}

/// A receiver answering every call with a redirect to `to`.
fn redirector(to: &str) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap_or_else(|e| panic!("{e}"));
    let url = format!(
        "http://{}/hooks",
        listener.local_addr().unwrap_or_else(|e| panic!("{e}"))
    );
    let to = to.to_owned();
    let server = HttpServer::new(move || {
        let to = to.clone();
        App::new().default_service(web::to(move || {
            let to = to.clone();
            async move {
                HttpResponse::TemporaryRedirect()
                    .insert_header(("location", to))
                    .finish()
            }
        }))
    })
    .workers(1)
    .listen(listener)
    .unwrap_or_else(|e| panic!("{e}"))
    .run();
    tokio::spawn(server);
    url
}

/// A redirect is an answer, never followed: followed, it would reach an address the guard
/// never saw (a literal one is not even resolved). Private hosts are allowed here because the
/// redirecting receiver, like every test server, is on loopback; the redirect's target is the
/// loopback receiver, which a followed 307 would reach with the same POST.
#[tokio::test]
async fn a_webhook_redirect_is_not_followed() {
    let app = spawn_app().await;
    let site = app.site(10).await;
    let zhang = sharer(&app, &site, "1-101", "B-101").await;
    share_all_day(&app, &zhang).await;
    share_free(&app, &zhang).await;
    let (target, received) = receiver(0);
    owner_webhook(&app, &zhang, &redirector(&target)).await;
    let from = Utc::now() + Duration::hours(1);
    let (status, body) = book(
        &app,
        &site,
        "鲁A12345",
        from,
        from + Duration::hours(1),
        json!({}),
    )
    .await;
    assert_eq!(status, 201, "{body}");

    let mut delivery = Value::Null;
    for _ in 0..50 {
        let (_, list) = app.staff("GET", "/v1/admin/webhook-deliveries", None).await;
        delivery = list[0].clone();
        if delivery["attempts"].as_i64().unwrap_or(0) >= 2 {
            break;
        }
        tokio::time::sleep(StdDuration::from_millis(100)).await;
    }
    assert_eq!(
        (
            delivery["status"].as_str(),
            delivery["last_status"].as_i64(),
            delivery["last_error"].as_str()
        ),
        (Some("pending"), Some(307), Some("receiver answered 307")),
        "{delivery}"
    );
    assert_eq!(received.events(), vec![], "the redirect was followed");
}

#[tokio::test]
async fn a_stay_is_charged_the_owners_price_agreed_at_booking() {
    let app = spawn_app().await;
    let site = app.site(10).await;
    let zhang = sharer(&app, &site, "1-101", "B-101").await;
    share_all_day(&app, &zhang).await;
    let price = format!("/v1/owner/spaces/{}/price", zhang.space_id);
    let (status, body) = app
        .send("PUT", &price, &zhang.token, Some(json!({"price_pct": 101})))
        .await;
    assert_eq!(
        (status, str_of(&body["error"], "code")),
        (422, "invalid_price_pct")
    );
    let (status, _) = app
        .send("PUT", &price, &zhang.token, Some(json!({"price_pct": 80})))
        .await;
    assert_eq!(status, 200);
    let from = Utc::now() - Duration::minutes(4);
    let (_, booked) = book_paid(
        &app,
        &site,
        "冀A80808",
        from,
        from + Duration::hours(2),
        json!({}),
    )
    .await;
    assert_eq!(booked["booking"]["price_pct"], 80, "{booked}");
    // A later change does not reach a booking already made.
    app.send("PUT", &price, &zhang.token, Some(json!({"price_pct": 50})))
        .await;
    let (_, entry) = app
        .read(
            &site.entries[0],
            "冀A80808",
            Utc::now() - Duration::minutes(18),
        )
        .await;
    let session = str_of(&entry, "session_id").to_owned();
    let (_, quote) = app
        .staff("GET", &format!("/v1/admin/sessions/{session}/quote"), None)
        .await;
    // ¥3.00 by the tariff, 80 % of it; the two booked hours were paid ahead at 80 % (¥4.80).
    assert_eq!(
        str_of(&booked["payment_intent"], "amount"),
        "4.80",
        "{booked}"
    );
    assert_eq!(
        (
            str_of(&quote["bill"], "total"),
            str_of(&quote, "amount_due")
        ),
        ("2.40", "0.00"),
        "{quote}"
    );
    let rate_line = quote["bill"]["lines"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|l| l["code"] == "shared_space_rate")
        .cloned()
        .unwrap_or_default();
    assert_eq!(rate_line["amount"], "-0.60", "{quote}");
    let (_, exit) = app
        .read(&site.exit, "冀A80808", Utc::now() + Duration::seconds(5))
        .await;
    assert_eq!(exit["action"], "open", "{exit}");
    let (_, bookings) = app
        .send("GET", "/v1/owner/bookings", &zhang.token, None)
        .await;
    // 4.80 less the 10 % platform fee.
    assert_eq!(bookings[0]["credited"], "4.32", "{bookings}");
}

#[tokio::test]
async fn a_booking_whose_car_never_came_becomes_a_no_show() {
    let app = spawn_app().await;
    let site = app.site(10).await;
    let zhang = sharer(&app, &site, "1-101", "B-101").await;
    share_all_day(&app, &zhang).await;
    let from = Utc::now() + Duration::hours(1);
    let (_, booked) = book_paid(
        &app,
        &site,
        "晋A12345",
        from,
        from + Duration::hours(1),
        json!({}),
    )
    .await;
    // Its hour passes without the car.
    let report = sweep_after(&app, Duration::hours(2) + Duration::minutes(1)).await;
    assert_eq!(report.no_shows, 1);
    let id = str_of(&booked["booking"], "id");
    let token = str_of(&booked, "token");
    let (_, shown) = app
        .send("GET", &format!("/v1/public/bookings/{id}"), token, None)
        .await;
    assert_eq!(shown["status"], "no_show", "{shown}");
    let (status, body) = app
        .send(
            "POST",
            &format!("/v1/public/bookings/{id}/cancel"),
            token,
            None,
        )
        .await;
    assert_eq!(
        (status, str_of(&body["error"], "code")),
        (409, "booking_completed")
    );
    let (_, bookings) = app
        .send("GET", "/v1/owner/bookings", &zhang.token, None)
        .await;
    assert_eq!(bookings[0]["history"][2]["kind"], "no_show", "{bookings}");
    // The visitor paid for the time and did not come: nothing is given back.
    assert_eq!(
        (
            bookings[0]["booking"]["paid"].as_str(),
            bookings[0]["booking"]["refunded"].as_str()
        ),
        (Some("3.00"), Some("0.00")),
        "{bookings}"
    );
}

// ---- paid holds and caps (issue 22) -----------------------------------------------------------

/// Waits until `n` provider notifications for `intent` were recorded; their outcomes.
async fn callbacks(app: &TestApp, intent: &str, n: usize) -> Vec<String> {
    let sql = format!(
        "select outcome from provider_callbacks where intent_id = '{intent}' order by received_at"
    );
    let mut outcomes = Vec::new();
    for _ in 0..100 {
        outcomes = sqlx::query_scalar(&sql)
            .fetch_all(&app.db)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        if outcomes.len() >= n {
            break;
        }
        tokio::time::sleep(StdDuration::from_millis(50)).await;
    }
    outcomes
}

/// Moves one booking's hold limit just behind the service's clock, as if its minutes had gone
/// by and no other's (advancing the clock would lapse every hold made with it).
async fn lapse_hold(app: &TestApp, booked: &Value) {
    let id = str_of(&booked["booking"], "id");
    sqlx::query("update bookings set hold_expires_at = $2 where id = $1::uuid")
        .bind(id)
        .bind(app.now() - Duration::seconds(1))
        .execute(&app.db)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
}

/// How long an unpaid hold holds (`PARKSHARE_BOOKING_HOLD_MIN`), and a second more.
fn past_the_hold(app: &TestApp) -> Duration {
    Duration::minutes(app.settings.booking_hold_min) + Duration::seconds(1)
}

async fn show_booking(app: &TestApp, booked: &Value) -> Value {
    let path = format!("/v1/public/bookings/{}", str_of(&booked["booking"], "id"));
    app.send("GET", &path, str_of(booked, "token"), None)
        .await
        .1
}

#[tokio::test]
async fn an_unpaid_hold_stops_holding_after_its_limit() {
    let app = spawn_app().await;
    let site = app.site(10).await;
    let zhang = sharer(&app, &site, "1-101", "B-101").await;
    share_all_day(&app, &zhang).await;
    let from = Utc::now() + Duration::hours(3);
    let to = from + Duration::hours(2);

    let (status, squatter) = book(&app, &site, "粤A00001", from, to, json!({})).await;
    assert_eq!(status, 201, "{squatter}");
    assert_eq!(squatter["booking"]["status"], "held", "{squatter}");
    assert_eq!(str_of(&squatter["payment_intent"], "amount"), "6.00");
    let expires = squatter["booking"]["hold_expires_at"]
        .as_str()
        .and_then(|t| t.parse::<DateTime<Utc>>().ok())
        .unwrap_or_default();
    assert!(
        expires > Utc::now() + Duration::minutes(9)
            && expires <= Utc::now() + Duration::minutes(10)
    );
    // While the hold runs, it holds: nobody else can have the space.
    assert!(free_codes(&app, &site, from, to).await.is_empty());
    let (status, body) = book(&app, &site, "粤A00002", from, to, json!({})).await;
    assert_eq!(
        (status, str_of(&body["error"], "code")),
        (409, "no_space_available")
    );

    // Its minutes pass unpaid: the space is free at once, before any sweep.
    app.advance(past_the_hold(&app));
    assert_eq!(free_codes(&app, &site, from, to).await, vec!["B-101"]);
    let (status, driver) = book_paid(&app, &site, "粤A00002", from, to, json!({})).await;
    assert_eq!(status, 201, "{driver}");
    assert_eq!(show_booking(&app, &squatter).await["status"], "expired");
    assert_eq!(show_booking(&app, &driver).await["status"], "booked");

    // Paying the lapsed hold now confirms nothing: the money is booked as owed back.
    let (status, _) = app
        .send(
            "POST",
            str_of(&squatter["payment_intent"], "pay_url"),
            "",
            None,
        )
        .await;
    assert_eq!(status, 202);
    let intent = str_of(&squatter["payment_intent"], "intent_id");
    assert_eq!(callbacks(&app, intent, 1).await, vec!["late"]);
    assert_eq!(show_booking(&app, &squatter).await["status"], "expired");
    assert_eq!(app.balance("refunds_payable").await.to_string(), "-6.00");
    let (status, body) = app
        .send(
            "POST",
            &format!(
                "/v1/public/bookings/{}/cancel",
                str_of(&squatter["booking"], "id")
            ),
            str_of(&squatter, "token"),
            None,
        )
        .await;
    assert_eq!(
        (status, str_of(&body["error"], "code")),
        (409, "booking_expired")
    );

    // The sweep marks lapsed holds nobody ran into.
    let later = from + Duration::days(1);
    let (_, other) = book(
        &app,
        &site,
        "粤A00003",
        later,
        later + Duration::hours(1),
        json!({}),
    )
    .await;
    app.advance(past_the_hold(&app));
    let report = overstay::sweep(&app.db, app.now())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(report.expired, 1);
    assert_eq!(show_booking(&app, &other).await["status"], "expired");
}

#[tokio::test]
async fn a_paid_booking_is_confirmed_and_credited_once_and_refunded_in_full_when_cancelled_free() {
    let app = spawn_app().await;
    let site = app.site(10).await;
    let zhang = sharer(&app, &site, "1-101", "B-101").await;
    share_all_day(&app, &zhang).await;
    let from = Utc::now() + Duration::days(2);
    let (status, booked) = book(
        &app,
        &site,
        "桂A12345",
        from,
        from + Duration::hours(2),
        json!({}),
    )
    .await;
    assert_eq!(status, 201, "{booked}");
    assert_eq!(booked["booking"]["status"], "held");

    // The provider delivers the same notification three times.
    let (status, _) = app
        .send(
            "POST",
            str_of(&booked["payment_intent"], "pay_url"),
            "",
            Some(json!({"copies": 3})),
        )
        .await;
    assert_eq!(status, 202);
    let intent = str_of(&booked["payment_intent"], "intent_id");
    assert_eq!(
        callbacks(&app, intent, 3).await,
        vec!["credited", "duplicate", "duplicate"]
    );
    let shown = show_booking(&app, &booked).await;
    assert_eq!(
        (
            shown["status"].as_str(),
            shown["paid"].as_str(),
            shown["hold_expires_at"].as_null()
        ),
        (Some("booked"), Some("6.00"), Some(())),
        "{shown}"
    );
    let id = str_of(&booked["booking"], "id");
    assert_eq!(
        app.count(&format!(
            "select count(*) from journal_transactions where booking_id = '{id}'"
        ))
        .await,
        1
    );
    assert_eq!(app.balance("provider_clearing").await.to_string(), "6.00");
    let (_, earnings) = app
        .send("GET", "/v1/owner/earnings", &zhang.token, None)
        .await;
    assert_eq!(str_of(&earnings, "balance"), "5.40", "{earnings}");

    // Cancelled in the free period: a reversing entry gives all of it back.
    let (status, cancelled) = app
        .send(
            "POST",
            &format!("/v1/public/bookings/{id}/cancel"),
            str_of(&booked, "token"),
            None,
        )
        .await;
    assert_eq!(status, 200, "{cancelled}");
    assert_eq!(
        (
            str_of(&cancelled, "cancellation_fee"),
            str_of(&cancelled, "refunded")
        ),
        ("0.00", "6.00")
    );
    assert!(app.balance("provider_clearing").await.is_zero());
    let (_, earnings) = app
        .send("GET", "/v1/owner/earnings", &zhang.token, None)
        .await;
    assert_eq!(str_of(&earnings, "balance"), "0.00", "{earnings}");
    let (status, check) = app.staff("GET", "/v1/admin/ledger/check", None).await;
    assert_eq!(status, 200, "{check}");
}

#[tokio::test]
async fn live_bookings_are_capped_per_plate_and_per_client() {
    let mut settings = crate::helpers::test_settings();
    settings.bookings_per_client_max = 3;
    let app = crate::helpers::spawn_with(settings).await;
    let site = app.site(10).await;
    let zhang = sharer(&app, &site, "1-101", "B-101").await;
    share_all_day(&app, &zhang).await;
    let day = |n: i64| Utc::now() + Duration::days(n);
    let hour = Duration::hours(1);

    // A plate may hold two live bookings, here two unpaid holds.
    let (status, first) = book(&app, &site, "云A12345", day(1), day(1) + hour, json!({})).await;
    assert_eq!(status, 201, "{first}");
    let (status, body) = book(&app, &site, "云A12345", day(2), day(2) + hour, json!({})).await;
    assert_eq!(status, 201, "{body}");
    let (status, body) = book(&app, &site, "云A12345", day(3), day(3) + hour, json!({})).await;
    assert_eq!(
        (status, str_of(&body["error"], "code")),
        (409, "plate_booking_limit"),
        "{body}"
    );

    // This address has three live bookings with the next; the fourth is refused until a hold
    // lapses, and says when.
    let (status, body) = book(&app, &site, "云A23456", day(4), day(4) + hour, json!({})).await;
    assert_eq!(status, 201, "{body}");
    let response = app
        .client
        .post(format!(
            "{}/v1/public/lots/{}/bookings",
            app.address, site.lot
        ))
        .json(&json!({"plate": "云A34567", "from": day(5), "to": day(5) + hour}))
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(response.status().as_u16(), 429);
    let retry_after: Option<u64> = response
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok()?.parse().ok());
    assert!(
        retry_after.is_some_and(|s| (500..=600).contains(&s)),
        "{retry_after:?}"
    );
    let body: Value = response.json().await.unwrap_or_default();
    assert_eq!(body["error"]["code"], "client_booking_limit", "{body}");

    // A hold that lapses unpaid stops counting: the plate and the address may book again.
    lapse_hold(&app, &first).await;
    let (status, body) = book(&app, &site, "云A12345", day(3), day(3) + hour, json!({})).await;
    assert_eq!(status, 201, "{body}");
}

/// The SQL every availability query uses says what the pure rule says, for every status and a
/// hold that ran out, runs on, or is missing.
#[tokio::test]
async fn the_sql_of_holding_a_space_is_the_pure_rule() {
    let app = spawn_app().await;
    let sql = format!(
        "select {} from (select $1::text as status, $2::timestamptz as hold_expires_at) as r",
        parkshare::store::sharing::holds_space_sql("r.", "$3")
    );
    let now = Utc::now();
    let statuses = [
        "held",
        "booked",
        "arrived",
        "completed",
        "cancelled",
        "no_show",
        "expired",
    ];
    let ends = [
        None,
        Some(now - Duration::hours(1)),
        Some(now),
        Some(now + Duration::hours(1)),
    ];
    for status in statuses {
        for end in ends {
            let answer: Option<bool> = sqlx::query_scalar(&sql)
                .bind(status)
                .bind(end)
                .bind(now)
                .fetch_one(&app.db)
                .await
                .unwrap_or_else(|e| panic!("{e}"));
            // A held row without its end (which the table refuses) is NULL: false in a WHERE.
            let in_sql = answer.unwrap_or(false);
            let pure = parkshare_sharing::holds_space(status, end, now);
            assert_eq!(in_sql, pure, "{status} {end:?}");
        }
    }
}

/// The SQL by which a gate lets a booked car in (the plate facts, and the booking it enters
/// on) says what the pure rule says: at the edges of the early arrival and of the end, with no
/// early arrival and the largest a policy allows, for a booking by day, one over local
/// midnight and one of the longest.
#[tokio::test]
async fn the_sql_of_admitting_a_booked_car_is_the_pure_rule() {
    let app = spawn_app().await;
    let sql = format!(
        "select {} from (select tstzrange($1, $2, '[)') as during) as b",
        parkshare::store::sharing::booking_admits_sql("b.during", "$3", "$4")
    );
    let local = |d: u32, h: u32, m: u32| {
        Shanghai
            .with_ymd_and_hms(2026, 12, d, h, m, 0)
            .single()
            .unwrap_or_else(|| panic!("no such local time"))
    };
    let bookings = [
        (local(3, 10, 0), local(3, 12, 0)),
        (local(3, 23, 30), local(4, 1, 30)),
        (
            local(3, 8, 0),
            local(3, 8, 0) + Duration::days(parkshare_sharing::booking::BOOKING_DAYS_MAX),
        ),
    ];
    let micro = Duration::microseconds(1);
    let mut cases = 0;
    for (start, end) in bookings {
        let (start, end) = (start.with_timezone(&Utc), end.with_timezone(&Utc));
        let booked =
            parkshare_sharing::Interval::new(start, end).unwrap_or_else(|| panic!("empty booking"));
        for early_min in [
            0,
            1,
            15,
            parkshare_domain::policy::BOOKING_EARLY_ARRIVAL_MIN_MAX,
        ] {
            let earliest = start - Duration::minutes(i64::from(early_min));
            let instants = [
                earliest - Duration::days(1),
                earliest - micro,
                earliest,
                earliest + micro,
                start - micro,
                start,
                start + (end - start) / 2,
                end - micro,
                end,
                end + micro,
            ];
            for at in instants {
                let in_sql: bool = sqlx::query_scalar(&sql)
                    .bind(start)
                    .bind(end)
                    .bind(at)
                    .bind(i32::try_from(early_min).unwrap_or_else(|e| panic!("{e}")))
                    .fetch_one(&app.db)
                    .await
                    .unwrap_or_else(|e| panic!("{e}"));
                let limits = parkshare_sharing::BookingLimits {
                    early_arrival_min: early_min,
                    ..Default::default()
                };
                let pure = limits.admits(&booked, at);
                assert_eq!(
                    in_sql, pure,
                    "{start}..{end}, {early_min} min early, at {at}"
                );
                cases += 1;
            }
        }
    }
    assert_eq!(cases, 3 * 4 * 10);
}

#[tokio::test]
async fn a_booking_that_costs_nothing_is_confirmed_at_once() {
    let app = spawn_app().await;
    let site = app.site(10).await;
    let zhang = sharer(&app, &site, "1-101", "B-101").await;
    share_all_day(&app, &zhang).await;
    let price = format!("/v1/owner/spaces/{}/price", zhang.space_id);
    let (status, _) = app
        .send("PUT", &price, &zhang.token, Some(json!({"price_pct": 0})))
        .await;
    assert_eq!(status, 200);
    let from = Utc::now() + Duration::hours(2);
    let (status, booked) = book(
        &app,
        &site,
        "琼A12345",
        from,
        from + Duration::hours(2),
        json!({}),
    )
    .await;
    assert_eq!(status, 201, "{booked}");
    assert_eq!(
        (
            booked["booking"]["status"].as_str(),
            booked["booking"]["price"].as_str(),
            booked["booking"]["hold_expires_at"].as_null(),
            booked["payment_intent"].as_null()
        ),
        (Some("booked"), Some("0.00"), Some(()), Some(())),
        "{booked}"
    );
    // Nothing to pay, nothing to lapse: the sweep leaves it booked.
    let report = sweep_after(&app, Duration::minutes(30)).await;
    assert_eq!(report.expired, 0);
    assert_eq!(show_booking(&app, &booked).await["status"], "booked");
}

#[tokio::test]
async fn an_overstay_also_displaces_an_unpaid_hold_on_the_space() {
    let app = spawn_app().await;
    let site = app.site(10).await;
    let zhang = sharer(&app, &site, "1-101", "B-101").await;
    share_all_day(&app, &zhang).await;
    let now = Utc::now();
    let on_zhang = json!({"space_id": zhang.space_id});
    let (status, first) = book_paid(
        &app,
        &site,
        "津A11111",
        now,
        now + Duration::hours(1),
        on_zhang.clone(),
    )
    .await;
    assert_eq!(status, 201, "{first}");
    let (_, entry) = app.read(&site.entries[0], "津A11111", now).await;
    assert_eq!(entry["reason"], "booking_admitted", "{entry}");
    // 55 minutes on, the next visitor books an hour from 20 minutes later (far enough ahead
    // that the car standing there does not keep them off) and has not paid yet; there is no
    // other shared space to move them to.
    app.advance(Duration::minutes(55));
    let next_from = app.now() + Duration::minutes(20);
    let (status, next) = book(
        &app,
        &site,
        "津B22222",
        next_from,
        next_from + Duration::hours(1),
        on_zhang,
    )
    .await;
    assert_eq!(
        (status, next["booking"]["status"].as_str()),
        (201, Some("held"))
    );

    // Six minutes later the first car is still on the space; the hold still runs.
    let report = sweep_after(&app, Duration::minutes(6)).await;
    assert_eq!((report.reported, report.cancelled), (1, 1));
    assert_eq!(show_booking(&app, &next).await["status"], "cancelled");
    // Its intent can no longer be paid into a booking: paying it is booked as owed back.
    let intent = str_of(&next["payment_intent"], "intent_id");
    let (_, shown) = app
        .send(
            "GET",
            &format!("/v1/public/payment-intents/{intent}"),
            "",
            None,
        )
        .await;
    assert_eq!(shown["status"], "cancelled", "{shown}");
}

#[tokio::test]
async fn a_stranger_booking_a_drivers_plate_blocks_it_only_while_the_hold_runs() {
    let app = spawn_app().await;
    let site = app.site(10).await;
    let zhang = sharer(&app, &site, "1-101", "B-101").await;
    let li = sharer(&app, &site, "1-102", "B-102").await;
    share_all_day(&app, &zhang).await;
    share_all_day(&app, &li).await;
    let from = Utc::now() + Duration::hours(4);
    let to = from + Duration::hours(3);
    // Someone else books the driver's plate and never pays.
    let (status, stranger) = book(&app, &site, "陕A12345", from, to, json!({})).await;
    assert_eq!(status, 201, "{stranger}");
    let (status, body) = book(&app, &site, "陕A12345", from, to, json!({})).await;
    assert_eq!(
        (status, str_of(&body["error"], "code")),
        (409, "plate_already_booked")
    );
    // Minutes later the hold has lapsed: the driver books, pays, and holds a space.
    lapse_hold(&app, &stranger).await;
    let (status, driver) = book_paid(&app, &site, "陕A12345", from, to, json!({})).await;
    assert_eq!(status, 201, "{driver}");
    assert_eq!(show_booking(&app, &driver).await["status"], "booked");
}

/// A booking made from `client` (behind a trusted proxy on loopback).
async fn book_from(
    app: &TestApp,
    site: &Site,
    client: &str,
    plate: &str,
    from: DateTime<Utc>,
) -> (u16, Value) {
    let response = app
        .client
        .post(format!(
            "{}/v1/public/lots/{}/bookings",
            app.address, site.lot
        ))
        .header("x-forwarded-for", client)
        .json(&json!({"plate": plate, "from": from, "to": from + Duration::hours(1)}))
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn a_strangers_unpaid_holds_do_not_lock_a_driver_out_of_their_plate() {
    let mut settings = test_settings();
    settings.trusted_proxies = vec!["127.0.0.0/8".parse().unwrap_or_else(|e| panic!("{e}"))];
    let app = crate::helpers::spawn_with(settings).await;
    let site = app.site(10).await;
    for (unit, code) in [("1-101", "B-101"), ("1-102", "B-102"), ("1-103", "B-103")] {
        let owner = sharer(&app, &site, unit, code).await;
        share_all_day(&app, &owner).await;
    }
    let from = Utc::now() + Duration::hours(2);
    // A stranger holds the driver's plate twice, unpaid: the per-plate cap's worth.
    let mut stranger = Vec::new();
    for hours in [0, 3] {
        let (status, body) = book_from(
            &app,
            &site,
            "203.0.113.7",
            "京N55555",
            from + Duration::hours(hours),
        )
        .await;
        assert_eq!(status, 201, "{body}");
        stranger.push(body);
    }
    // The driver, from their own address, books the same plate for the same time and pays.
    let (status, mine) = book_from(&app, &site, "198.51.100.20", "京N55555", from).await;
    assert_eq!(status, 201, "the driver was locked out: {mine}");
    pay_booking(&app, &mine).await;
    // The stranger paying now is too late for that time: not confirmed, the money owed back.
    let stranger_first = &stranger[0];
    let pay_url = str_of(&stranger_first["payment_intent"], "pay_url");
    let (status, body) = app.send("POST", pay_url, "", None).await;
    assert_eq!(status, 202, "{body}");
    let intent = str_of(&stranger_first["payment_intent"], "intent_id").to_owned();
    let mut outcome = String::new();
    for _ in 0..100 {
        outcome =
            sqlx::query_scalar("select outcome from provider_callbacks where intent_id = $1::uuid")
                .bind(&intent)
                .fetch_optional(&app.db)
                .await
                .ok()
                .flatten()
                .unwrap_or_default();
        if !outcome.is_empty() {
            break;
        }
        tokio::time::sleep(StdDuration::from_millis(50)).await;
    }
    assert_eq!(outcome, "late", "{stranger_first}");
    assert!(app.balance("refunds_payable").await < rust_decimal::Decimal::ZERO);
    let held: Vec<(String, String)> = sqlx::query_as(
        "select status, host(client_addr) from bookings where plate = '京N55555' order by lower(during), created_at",
    )
    .fetch_all(&app.db)
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        held.iter().filter(|(s, _)| s == "booked").count(),
        1,
        "{held:?}"
    );
    assert!(
        held.iter()
            .any(|(s, c)| s == "booked" && c == "198.51.100.20"),
        "{held:?}"
    );
}
