//! Walk-ins racing for shared spaces (issue 21 item 5): with the visitor pool full, many cars
//! entering at once get either a shared space or a documented refusal — never a 500, never a
//! 503 that left something behind, and never two cars on one space.

use std::time::Duration as StdDuration;

use chrono::{DateTime, Duration, Utc};
use serde_json::Value;

use crate::helpers::{spawn_with, str_of, test_settings, Gate, Site, TestApp};
use crate::sharing::{share_all_day, sharer};

/// Shared spaces in the race.
const SPACES: usize = 3;
/// Cars entering at once: more than there are spaces.
const CARS: usize = 8;

/// An app deciding reads in batches (`workers` > 0) or each alone (0).
async fn app_with_workers(workers: usize) -> TestApp {
    let mut settings = test_settings();
    settings.gate_batch_workers = workers;
    spawn_with(settings).await
}

/// A lot whose one visitor place is taken, with `spaces` owners sharing their space all day.
async fn full_lot_sharing(app: &TestApp, spaces: usize) -> Site {
    let site = app.site(1).await;
    for i in 0..spaces {
        let owner = sharer(app, &site, &format!("2-{i:03}"), &format!("C-{i:03}")).await;
        share_all_day(app, &owner).await;
    }
    let (_, entry) = app
        .read(
            &site.entries[0],
            "京A00001",
            Utc::now() - Duration::minutes(30),
        )
        .await;
    assert_eq!(entry["reason"], "visitor_admitted", "{entry}");
    site
}

struct Read {
    gate: usize,
    plate: String,
    at: DateTime<Utc>,
    status: u16,
    answer: Value,
}

impl Read {
    fn event_id(&self) -> String {
        format!("{}-{}", self.plate, self.at.timestamp_micros())
    }
}

/// `plates` read at once, alternating between the two entry lanes.
async fn enter_at_once(app: &TestApp, site: &Site, plates: &[String]) -> Vec<Read> {
    let now = Utc::now();
    let reads = plates.iter().enumerate().map(|(i, plate)| {
        let gate = i % 2;
        let at = now - Duration::milliseconds(i64::try_from(i).unwrap_or(0));
        let lane: &Gate = &site.entries[gate];
        async move {
            let (status, answer) = app.read(lane, plate, at).await;
            Read {
                gate,
                plate: plate.clone(),
                at,
                status,
                answer,
            }
        }
    });
    futures::future::join_all(reads).await
}

/// Nothing of a read answered 503 stayed: no stay, no booking, no stored answer.
async fn left_nothing(app: &TestApp, plate: &str) {
    for table in ["sessions", "bookings", "gate_events"] {
        let left = app
            .count(&format!(
                "select count(*) from {table} where plate = '{plate}'"
            ))
            .await;
        assert_eq!(left, 0, "a read answered 503 left {left} rows in {table}");
    }
}

/// No shared space holds two cars: neither two live bookings overlapping in time nor two
/// stays inside.
async fn one_car_per_space(app: &TestApp) {
    let doubly_booked = app
        .count(
            "select count(*) from bookings a join bookings b
                on a.space_id = b.space_id and a.id < b.id and a.during && b.during
             where a.status in ('held', 'booked', 'arrived') and b.status in ('held', 'booked', 'arrived')",
        )
        .await;
    let doubly_parked = app
        .count(
            "select count(*) from (select space_id from sessions
                where status = 'open' and space_id is not null
                group by space_id having count(*) > 1) d",
        )
        .await;
    assert_eq!(
        (doubly_booked, doubly_parked),
        (0, 0),
        "two cars on one space"
    );
}

async fn race(workers: usize) {
    let app = app_with_workers(workers).await;
    let site = full_lot_sharing(&app, SPACES).await;
    let plates: Vec<String> = (0..CARS).map(|i| format!("苏E{:05}", 20_000 + i)).collect();
    let reads = enter_at_once(&app, &site, &plates).await;

    let summary: Vec<String> = reads
        .iter()
        .map(|r| format!("{} {} {}", r.plate, r.status, r.answer))
        .collect();
    assert!(
        reads.iter().all(|r| r.status == 200 || r.status == 503),
        "only documented answers: {summary:#?}"
    );
    let admitted = reads
        .iter()
        .filter(|r| r.status == 200 && r.answer["reason"] == "booking_admitted")
        .count();
    for read in reads.iter().filter(|r| r.status == 200) {
        let reason = str_of(&read.answer, "reason");
        assert!(
            reason == "booking_admitted" || reason == "lot_full",
            "{summary:#?}"
        );
    }
    one_car_per_space(&app).await;

    // Every 503 promised that nothing was decided: nothing is left, and its retry is decided
    // afresh, not replayed.
    let mut admitted_on_retry = 0;
    for read in reads.iter().filter(|r| r.status == 503) {
        left_nothing(&app, &read.plate).await;
        let (status, retry) = app
            .read_with_id(
                &site.entries[read.gate],
                &read.plate,
                read.at,
                &read.event_id(),
            )
            .await;
        assert_eq!(status, 200, "{retry}");
        assert_eq!(
            retry["duplicate"], false,
            "a 503 was decided after all: {retry}"
        );
        admitted_on_retry += usize::from(retry["reason"] == "booking_admitted");
    }
    assert_eq!(
        admitted + admitted_on_retry,
        SPACES.min(CARS),
        "{summary:#?}"
    );
    assert_eq!(
        app.count("select count(*) from sessions where status = 'open' and space_id is not null")
            .await,
        i64::try_from(SPACES.min(CARS)).unwrap_or(0)
    );
    one_car_per_space(&app).await;
    let occupancy = app.occupancy(&site.lot).await;
    assert_eq!(occupancy["in_sync"], true, "{occupancy}");
}

#[tokio::test]
async fn concurrent_walk_ins_alone_get_one_shared_space_each_or_lot_full() {
    race(0).await;
}

#[tokio::test]
async fn concurrent_walk_ins_in_batches_get_one_shared_space_each_or_lot_full() {
    race(2).await;
}

#[tokio::test]
async fn a_walk_in_is_not_placed_where_an_overstaying_walk_in_still_stands() {
    let app = app_with_workers(2).await;
    let site = full_lot_sharing(&app, 1).await;
    // Placed on the only shared space 150 minutes ago: its 120-minute hold has run out, and
    // the car is still there.
    let (_, first) = app
        .read(
            &site.entries[0],
            "苏E30000",
            Utc::now() - Duration::minutes(150),
        )
        .await;
    assert_eq!(first["reason"], "booking_admitted", "{first}");
    let plates: Vec<String> = (1..5).map(|i| format!("苏E{:05}", 30_000 + i)).collect();
    for read in enter_at_once(&app, &site, &plates).await {
        assert_eq!(
            (read.status, str_of(&read.answer, "reason")),
            (200, "lot_full"),
            "{}",
            read.answer
        );
    }
    one_car_per_space(&app).await;
    // Once it has left, the space takes the next walk-in.
    let (_, exit) = app.read(&site.exit, "苏E30000", Utc::now()).await;
    let session = str_of(&exit, "session_id").to_owned();
    if exit["action"] != "open" {
        app.pay(&session, str_of(&exit, "amount_due")).await;
        let (_, exit) = app
            .read(&site.exit, "苏E30000", Utc::now() + Duration::seconds(1))
            .await;
        assert_eq!(exit["action"], "open", "{exit}");
    }
    let (_, next) = app.read(&site.entries[1], "苏E30009", Utc::now()).await;
    assert_eq!(next["reason"], "booking_admitted", "{next}");
    one_car_per_space(&app).await;
}

/// A lane that gave up waiting (503) must not find the car admitted later: the decision that
/// outlived its answer is rolled back, its place given back.
#[tokio::test]
async fn a_walk_in_answered_503_is_not_admitted_after_all() {
    let mut settings = test_settings();
    settings.gate_decision_budget_ms = 500;
    let app = spawn_with(settings).await;
    let site = full_lot_sharing(&app, 1).await;
    // Hold every booking insert up for longer than the lane's budget.
    let mut blocker = app.db.begin().await.unwrap_or_else(|e| panic!("{e}"));
    sqlx::query("lock table bookings in share row exclusive mode")
        .execute(&mut *blocker)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let at = Utc::now();
    let plate = "苏E40000";
    let event_id = format!("{plate}-late");
    let (status, body) = app
        .read_with_id(&site.entries[0], plate, at, &event_id)
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (503, Some("unavailable")),
        "{body}"
    );
    // The decision goes on once the lock is gone, and must not commit.
    tokio::time::sleep(StdDuration::from_millis(300)).await;
    blocker.commit().await.unwrap_or_else(|e| panic!("{e}"));
    tokio::time::sleep(StdDuration::from_millis(1_000)).await;
    left_nothing(&app, plate).await;
    let occupancy = app.occupancy(&site.lot).await;
    assert_eq!(occupancy["in_sync"], true, "{occupancy}");
    // Its retry is decided afresh and takes the space.
    let (status, retry) = app
        .read_with_id(&site.entries[0], plate, at, &event_id)
        .await;
    assert_eq!(status, 200, "{retry}");
    assert_eq!(
        (retry["duplicate"].as_bool(), retry["reason"].as_str()),
        (Some(false), Some("booking_admitted")),
        "{retry}"
    );
    one_car_per_space(&app).await;
}
