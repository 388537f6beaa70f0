//! Cameras on real devices (issue 25): each vendor's documented protocol, item by item —
//! the Vzenith heartbeat form, offline replay and comet polling, camera clocks reset to 1970,
//! Hikvision alerts without a MAC or as JSON, and manual opens that expire and merge.
//! Fixture sources: tests/fixtures/vendors/README.md.

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde_json::{json, Value};

use crate::helpers::{ago, spawn_app, spawn_with, str_of, test_settings, TestApp};
use crate::vendors::{
    anomaly_kinds, fake_hikvision, fill, push, set_device, vzenith, vzenith_heartbeat_form,
    HIKVISION_ANPR,
};

/// Older Vzenith firmware's JSON heartbeat, still read.
const VZENITH_HEARTBEAT_JSON: &str = include_str!("../fixtures/vendors/vzenith_heartbeat.json");

async fn last_seen(app: &TestApp, gate_id: &str) -> Option<DateTime<Utc>> {
    sqlx::query_scalar("select last_seen_at from gates where id = $1::uuid")
        .bind(gate_id)
        .fetch_one(&app.db)
        .await
        .unwrap_or_else(|e| panic!("{e}"))
}

async fn heartbeat(app: &TestApp, url: &str, serial: &str) -> Value {
    let (content_type, body) = vzenith_heartbeat_form(serial);
    let (status, reply) = push(app, url, &content_type, body).await;
    assert_eq!(status, 200, "{reply}");
    reply
}

/// Issue 25 item 1: the documented heartbeat keeps the camera online and carries manual opens.
#[tokio::test]
async fn the_vzenith_heartbeat_form_keeps_the_camera_online_and_carries_a_manual_open() {
    let app = spawn_app().await;
    let site = app.site(10).await;
    let entry = &site.entries[0];
    set_device(
        &app,
        entry,
        json!({"vendor": "vzenith", "device_serial": "d85b1269-8f942256"}),
    )
    .await;
    let url = format!("/v1/vendor/{}/vzenith", entry.secret);
    let reply = heartbeat(&app, &url, "d85b1269-8f942256").await;
    assert_eq!(reply["Response_AlarmInfoPlate"]["info"], "no", "{reply}");
    assert!(last_seen(&app, &entry.id).await.is_some(), "heard from");

    // Another camera's form on this lane: refused.
    let (content_type, body) = vzenith_heartbeat_form("someone-else");
    let (status, _) = push(&app, &url, &content_type, body).await;
    assert_eq!(status, 403);

    // A manual open goes out in the next heartbeat reply, once.
    let (status, body) = app
        .staff(
            "POST",
            &format!("/v1/admin/gates/{}/manual-open", entry.id),
            Some(json!({"reason": "equipment_fault"})),
        )
        .await;
    assert_eq!((status, str_of(&body, "delivery")), (201, "next_heartbeat"));
    tokio::time::sleep(Duration::from_millis(1_200)).await;
    let reply = heartbeat(&app, &url, "d85b1269-8f942256").await;
    assert_eq!(reply["Response_AlarmInfoPlate"]["info"], "ok", "{reply}");
    tokio::time::sleep(Duration::from_millis(1_200)).await;
    let reply = heartbeat(&app, &url, "d85b1269-8f942256").await;
    assert_eq!(reply["Response_AlarmInfoPlate"]["info"], "no", "{reply}");

    // Older firmware's JSON heartbeat is still read.
    let (status, reply) = push(
        &app,
        &url,
        "application/json",
        fill(
            VZENITH_HEARTBEAT_JSON,
            &[("SERIAL", "d85b1269-8f942256".into())],
        )
        .into_bytes(),
    )
    .await;
    assert_eq!(status, 200, "{reply}");
}

/// Issue 25 items 4: offline records of any age are recorded; a clock reset to 1970 is a
/// device fault that does not shut the lane.
#[tokio::test]
async fn old_offline_records_are_recorded_and_a_1970_clock_is_a_device_fault() {
    let app = spawn_app().await;
    let site = app.site(10).await;
    let (entry, exit) = (&site.entries[0], &site.exit);
    set_device(&app, entry, json!({"vendor": "vzenith"})).await;
    set_device(&app, exit, json!({"vendor": "vzenith"})).await;
    let entry_url = format!("/v1/vendor/{}/vzenith", entry.secret);
    let exit_url = format!("/v1/vendor/{}/vzenith", exit.secret);

    // A backlog record 90 days old: recorded, never opening, and the camera asked for more.
    let (status, reply) = push(
        &app,
        &entry_url,
        "application/json",
        vzenith("-", "晋A90000", 3001, ago(90 * 24 * 60), true).into_bytes(),
    )
    .await;
    assert_eq!(
        (status, reply),
        (
            200,
            json!({"Response_AlarmInfoPlate": {"ContinuePushOffline": {"plateid": 3001, "continue": 1}}})
        )
    );
    assert_eq!(
        app.count("select count(*) from gate_events where offline and plate = '晋A90000'")
            .await,
        1
    );

    // An offline record whose plate was not read (`_无_`): passed over, the replay goes on.
    let (status, reply) = push(
        &app,
        &entry_url,
        "application/json",
        vzenith("-", "_无_", 3002, ago(60), true).into_bytes(),
    )
    .await;
    assert_eq!(
        (
            status,
            &reply["Response_AlarmInfoPlate"]["ContinuePushOffline"]["continue"]
        ),
        (200, &json!(1)),
        "{reply}"
    );

    // A live read with the clock at 1970: decided at the time it arrived, the lane keeps
    // working, and the fault is listed.
    let epoch = DateTime::<Utc>::from_timestamp(120, 0).unwrap_or_default();
    let (status, reply) = push(
        &app,
        &entry_url,
        "application/json",
        vzenith("-", "晋A19700", 3003, epoch, false).into_bytes(),
    )
    .await;
    assert_eq!(
        (status, &reply["Response_AlarmInfoPlate"]["info"]),
        (200, &json!("ok")),
        "{reply}"
    );
    let entered: Option<DateTime<Utc>> = sqlx::query_scalar(
        "select entered_at from sessions where plate = '晋A19700' and status = 'open'",
    )
    .fetch_one(&app.db)
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        entered.is_some_and(|at| (Utc::now() - at).num_seconds().abs() < 60),
        "{entered:?}"
    );
    // An offline record at 1970: when the car passed is unknown, so nothing is recorded; it
    // is listed and the camera moves on.
    let (status, reply) = push(
        &app,
        &exit_url,
        "application/json",
        vzenith("-", "晋A19701", 3004, epoch, true).into_bytes(),
    )
    .await;
    assert_eq!(
        (
            status,
            &reply["Response_AlarmInfoPlate"]["ContinuePushOffline"]["plateid"]
        ),
        (200, &json!(3004))
    );
    assert_eq!(
        app.count("select count(*) from gate_events where plate = '晋A19701'")
            .await,
        0
    );
    assert_eq!(
        app.count("select count(*) from anomalies where kind = 'device_clock'")
            .await,
        2
    );
    assert!(anomaly_kinds(&app, &site.lot, "open")
        .await
        .contains(&"device_clock".to_owned()));
}

/// Issue 25 item 6: a camera in comet mode is held the documented interval, liveness is
/// written at most every few seconds, and a manual open still goes out at once.
#[tokio::test]
async fn a_comet_camera_is_held_between_heartbeats_and_gets_a_manual_open_at_once() {
    let app = spawn_app().await;
    let site = app.site(10).await;
    let entry = &site.entries[0];
    set_device(&app, entry, json!({"vendor": "vzenith"})).await;
    let url = format!("/v1/vendor/{}/vzenith", entry.secret);

    // Normal mode, 1.5 s apart: answered at once, liveness written once.
    let started = Instant::now();
    heartbeat(&app, &url, "-").await;
    let first_seen = last_seen(&app, &entry.id).await;
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    heartbeat(&app, &url, "-").await;
    assert!(started.elapsed() < Duration::from_secs(3));
    assert_eq!(
        last_seen(&app, &entry.id).await,
        first_seen,
        "a heartbeat 1.5 s after the last one does not write"
    );

    // Comet mode: the next heartbeat as soon as one is answered, for 6 seconds.
    let started = Instant::now();
    let mut beats = 0;
    while started.elapsed() < Duration::from_secs(6) {
        heartbeat(&app, &url, "-").await;
        beats += 1;
    }
    assert!(beats <= 3, "{beats} heartbeats in 6 s");

    // A manual open while a heartbeat is held: answered within a second.
    let held = {
        let (app_address, client) = (app.address.clone(), app.client.clone());
        let (content_type, body) = vzenith_heartbeat_form("-");
        let url = format!("{app_address}{url}");
        tokio::spawn(async move {
            let sent = Instant::now();
            let reply: Value = client
                .post(url)
                .header("content-type", content_type)
                .body(body)
                .send()
                .await
                .unwrap_or_else(|e| panic!("{e}"))
                .json()
                .await
                .unwrap_or_default();
            (sent.elapsed(), reply)
        })
    };
    tokio::time::sleep(Duration::from_millis(500)).await;
    let pressed = Instant::now();
    let (status, _) = app
        .staff(
            "POST",
            &format!("/v1/admin/gates/{}/manual-open", entry.id),
            Some(json!({"reason": "staff_verified"})),
        )
        .await;
    assert_eq!(status, 201);
    let (_, reply) = held.await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(reply["Response_AlarmInfoPlate"]["info"], "ok", "{reply}");
    assert!(pressed.elapsed() < Duration::from_secs(2));
}

/// Issue 25 item 10: a manual open that cannot reach its barrier in time is dropped, and
/// repeated presses are one open.
#[tokio::test]
async fn manual_opens_expire_and_repeated_presses_merge() {
    let mut settings = test_settings();
    settings.manual_open_ttl_s = 2;
    let app = spawn_with(settings).await;
    let site = app.site(10).await;
    let entry = &site.entries[0];
    set_device(&app, entry, json!({"vendor": "vzenith"})).await;
    let url = format!("/v1/vendor/{}/vzenith", entry.secret);
    let press = || async {
        let (status, body) = app
            .staff(
                "POST",
                &format!("/v1/admin/gates/{}/manual-open", entry.id),
                Some(json!({"reason": "staff_verified"})),
            )
            .await;
        assert_eq!(status, 201, "{body}");
        body
    };

    // The camera is away for longer than the open may wait: it never fires.
    press().await;
    app.advance(chrono::Duration::milliseconds(2_500));
    let reply = heartbeat(&app, &url, "-").await;
    assert_eq!(reply["Response_AlarmInfoPlate"]["info"], "no", "{reply}");
    assert_eq!(
        app.count("select count(*) from device_commands where status = 'expired'")
            .await,
        1
    );

    // Three presses while the camera is away: each audited, one open.
    let first = press().await;
    let second = press().await;
    let third = press().await;
    assert_eq!(
        (&first["merged"], &second["merged"], &third["merged"]),
        (&json!(false), &json!(true), &json!(true))
    );
    tokio::time::sleep(Duration::from_millis(1_200)).await;
    let reply = heartbeat(&app, &url, "-").await;
    assert_eq!(reply["Response_AlarmInfoPlate"]["info"], "ok", "{reply}");
    tokio::time::sleep(Duration::from_millis(1_200)).await;
    let reply = heartbeat(&app, &url, "-").await;
    assert_eq!(reply["Response_AlarmInfoPlate"]["info"], "no", "{reply}");
    assert_eq!(app.count("select count(*) from manual_opens").await, 4);
}

/// Issue 25 item 10: a gate made long before its camera was fitted is not silent from the
/// moment the camera is set up.
#[tokio::test]
async fn a_devices_silence_counts_from_when_it_was_set_up() {
    let app = spawn_app().await;
    let site = app.site(10).await;
    let entry = &site.entries[0];
    sqlx::query("update gates set created_at = now() - interval '30 days' where id = $1::uuid")
        .bind(&entry.id)
        .execute(&app.db)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    set_device(
        &app,
        entry,
        json!({"vendor": "vzenith", "heartbeat_window_s": 60}),
    )
    .await;
    parkshare::store::devices::flag_silent_devices(&app.db, app.now())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(!anomaly_kinds(&app, &site.lot, "open")
        .await
        .contains(&"device_silent".to_owned()));

    // Two minutes on, never heard from: silent.
    app.advance(chrono::Duration::minutes(2));
    parkshare::store::devices::flag_silent_devices(&app.db, app.now())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(anomaly_kinds(&app, &site.lot, "open")
        .await
        .contains(&"device_silent".to_owned()));
}

/// Issue 25 item 9: `macAddress` is optional; the JSON alert is read; a lane whose barrier
/// needs a device call is not accepted without the device's address and login.
#[tokio::test]
async fn hikvision_alerts_without_a_mac_or_as_json_are_read_and_a_lane_needs_its_login() {
    let app = spawn_app().await;
    let camera = fake_hikvision("admin", "Hik12345").await;
    let site = app.site(10).await;
    let entry = &site.entries[0];

    let (status, body) = app
        .staff(
            "PUT",
            &format!("/v1/admin/gates/{}/device", entry.id),
            Some(json!({"vendor": "hikvision", "device_serial": "a4:14:37:00:00:01"})),
        )
        .await;
    assert_eq!(
        (status, str_of(&body["error"], "code")),
        (422, "device_login_required")
    );
    set_device(
        &app,
        entry,
        json!({"vendor": "hikvision", "device_serial": "a4:14:37:00:00:01",
               "device_url": camera.url, "device_username": "admin", "device_password": "Hik12345"}),
    )
    .await;
    let url = format!("/v1/vendor/{}/hikvision", entry.secret);

    // The XML alert with no macAddress: the lane's push URL names the device.
    let xml = fill(
        HIKVISION_ANPR,
        &[
            ("SERIAL", "-".into()),
            ("TIME", ago(1).to_rfc3339()),
            ("OFFLINE", "false".into()),
            ("PLATE", "京N11111".into()),
            ("COLOUR", "blue".into()),
            ("UUID", "hik-1".into()),
        ],
    )
    .replace("<macAddress>-</macAddress>\n", "");
    assert!(!xml.contains("macAddress"));
    let (status, reply) = push(&app, &url, "application/xml", xml.into_bytes()).await;
    assert_eq!(status, 200, "{reply}");
    assert!(reply
        .as_str()
        .is_some_and(|r| r.contains("<subStatusCode>ok</subStatusCode>")));

    // A MAC that is not the lane's is still refused.
    let other = fill(
        HIKVISION_ANPR,
        &[
            ("SERIAL", "a4:14:37:99:99:99".into()),
            ("TIME", ago(1).to_rfc3339()),
            ("OFFLINE", "false".into()),
            ("PLATE", "京N22222".into()),
            ("COLOUR", "blue".into()),
            ("UUID", "hik-2".into()),
        ],
    );
    let (status, _) = push(&app, &url, "application/xml", other.into_bytes()).await;
    assert_eq!(status, 403);

    // The JSON alert (same field names as the XML one).
    let alert = json!({
        "ipAddress": "192.168.1.64", "portNo": 80, "protocol": "HTTP",
        "macAddress": "a4:14:37:00:00:01", "channelID": 1,
        "dateTime": ago(1).to_rfc3339(), "activePostCount": 1,
        "eventType": "ANPR", "eventState": "active", "eventDescription": "ANPR",
        "ANPR": {"licensePlate": "京N33333", "plateColor": "blue", "confidenceLevel": 97},
        "UUID": "hik-3"
    });
    let (status, reply) = push(
        &app,
        &url,
        "application/json",
        alert.to_string().into_bytes(),
    )
    .await;
    assert_eq!(status, 200, "{reply}");
    // Answered in its own format: ISAPI's JSON ResponseStatus, not XML.
    assert_eq!(
        (
            reply["statusCode"].as_i64(),
            reply["subStatusCode"].as_str()
        ),
        (Some(1), Some("ok")),
        "{reply}"
    );
    assert_eq!(app.open_sessions(&site.lot).await.len(), 2);
    assert!(!anomaly_kinds(&app, &site.lot, "open")
        .await
        .contains(&"barrier_unreachable".to_owned()));

    // The camera's password changed and nobody told us: the call is refused, the barrier
    // stays shut, and staff are told at once (an outside tester found it only in a log).
    set_device(
        &app,
        entry,
        json!({"vendor": "hikvision", "device_serial": "a4:14:37:00:00:01",
               "device_url": camera.url, "device_username": "admin", "device_password": "changed"}),
    )
    .await;
    let stale = fill(
        HIKVISION_ANPR,
        &[
            ("SERIAL", "a4:14:37:00:00:01".into()),
            ("TIME", ago(1).to_rfc3339()),
            ("OFFLINE", "false".into()),
            ("PLATE", "京N55555".into()),
            ("COLOUR", "blue".into()),
            ("UUID", "hik-5".into()),
        ],
    );
    let (status, _) = push(&app, &url, "application/xml", stale.into_bytes()).await;
    assert_eq!(status, 200);
    let mut listed = false;
    for _ in 0..100 {
        listed = anomaly_kinds(&app, &site.lot, "open")
            .await
            .contains(&"barrier_unreachable".to_owned());
        if listed {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(listed, "a refused barrier call must be listed for staff");
    let resolved: Vec<String> = sqlx::query_scalar(
        "select id::text from anomalies where kind = 'barrier_unreachable' and resolved_at is null",
    )
    .fetch_all(&app.db)
    .await
    .unwrap_or_default();
    for id in resolved {
        let (status, _) = app
            .staff(
                "POST",
                &format!("/v1/admin/anomalies/{id}/resolve"),
                Some(json!({"note": "password updated on the camera"})),
            )
            .await;
        assert_eq!(status, 204);
    }

    // A lane set up before a login was required (written straight to the database): its
    // open decisions cannot reach the barrier, and staff are told at once.
    let legacy = &site.entries[1];
    sqlx::query(
        "update gates set vendor = 'hikvision', device_configured_at = now() where id = $1::uuid",
    )
    .bind(&legacy.id)
    .execute(&app.db)
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    let xml = fill(
        HIKVISION_ANPR,
        &[
            ("SERIAL", "a4:14:37:00:00:02".into()),
            ("TIME", ago(1).to_rfc3339()),
            ("OFFLINE", "false".into()),
            ("PLATE", "京N44444".into()),
            ("COLOUR", "blue".into()),
            ("UUID", "hik-4".into()),
        ],
    );
    let (status, _) = push(
        &app,
        &format!("/v1/vendor/{}/hikvision", legacy.secret),
        "application/xml",
        xml.into_bytes(),
    )
    .await;
    assert_eq!(status, 200);
    assert!(anomaly_kinds(&app, &site.lot, "open")
        .await
        .contains(&"barrier_unreachable".to_owned()));
    camera.server.stop(false).await;
}

/// Issue 25 item 5: the display protocol is a per-lane setting; the voice prompt goes the
/// documented way (the camera's own voice command, or inside the board's frame).
#[tokio::test]
async fn a_lanes_display_takes_raw_text_or_the_framed_board_protocol() {
    use base64::Engine;
    use parkshare::gate::vendors::display::led_board_data;
    let app = spawn_app().await;
    let site = app.site(10).await;
    let entry = &site.entries[0];
    let (status, body) = app
        .staff(
            "PUT",
            &format!("/v1/admin/gates/{}/device", entry.id),
            Some(json!({"vendor": "vzenith", "display_protocol": "rs485_magic"})),
        )
        .await;
    assert_eq!(
        (status, str_of(&body["error"], "code")),
        (422, "invalid_field")
    );
    let gate = set_device(
        &app,
        entry,
        json!({"vendor": "vzenith", "display_protocol": "led_board"}),
    )
    .await;
    assert_eq!(gate["display_protocol"], "led_board");
    let url = format!("/v1/vendor/{}/vzenith", entry.secret);
    let (status, reply) = push(
        &app,
        &url,
        "application/json",
        vzenith("-", "鲁B24680", 55, ago(1), false).into_bytes(),
    )
    .await;
    assert_eq!(status, 200, "{reply}");
    let answer = &reply["Response_AlarmInfoPlate"];
    let frame = base64::engine::general_purpose::STANDARD
        .decode(answer["serialData"][0]["data"].as_str().unwrap_or_default())
        .unwrap_or_default();
    assert_eq!(
        answer["serialData"][0]["dataLen"].as_u64(),
        Some(frame.len() as u64)
    );
    let data = led_board_data(&frame).unwrap_or_else(|| panic!("not a board frame: {frame:x?}"));
    let shown = encoding_rs::GBK
        .encode(str_of(answer, "content"))
        .0
        .into_owned();
    assert_eq!(&data[4..4 + shown.len()], &shown[..]);
    assert!(
        answer.get("playserver_json_request").is_none(),
        "the board says the prompt, not the camera too: {reply}"
    );

    // Back to raw text: GBK on the port, the prompt by the camera's voice command.
    set_device(&app, entry, json!({"vendor": "vzenith"})).await;
    let (_, reply) = push(
        &app,
        &url,
        "application/json",
        vzenith("-", "鲁B13579", 56, ago(1), false).into_bytes(),
    )
    .await;
    let answer = &reply["Response_AlarmInfoPlate"];
    assert_eq!(
        crate::vendors::gbk_base64_text(&answer["serialData"][0]["data"]),
        str_of(answer, "content")
    );
    assert_eq!(answer["playserver_json_request"]["type"], "ps_voice_play");
}

/// The display protocol is part of a gate's cached context: changed by hand in SQL (or by
/// another replica), it is seen without a restart.
#[tokio::test]
async fn a_display_protocol_changed_in_the_database_is_seen_by_the_next_pushes() {
    use base64::Engine;
    use parkshare::gate::vendors::display::led_board_data;
    let app = spawn_app().await;
    let site = app.site(50).await;
    let entry = &site.entries[0];
    set_device(&app, entry, json!({"vendor": "vzenith"})).await;
    let url = format!("/v1/vendor/{}/vzenith", entry.secret);
    let frame_of = |reply: &Value| {
        base64::engine::general_purpose::STANDARD
            .decode(
                reply["Response_AlarmInfoPlate"]["serialData"][0]["data"]
                    .as_str()
                    .unwrap_or_default(),
            )
            .unwrap_or_default()
    };
    let (_, reply) = push(
        &app,
        &url,
        "application/json",
        vzenith("-", "鲁C00001", 1, ago(1), false).into_bytes(),
    )
    .await;
    assert!(
        led_board_data(&frame_of(&reply)).is_none(),
        "raw text first"
    );

    sqlx::query("update gates set display_protocol = 'led_board' where id = $1::uuid")
        .bind(&entry.id)
        .execute(&app.db)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let mut framed = false;
    for n in 2..40u32 {
        let (_, reply) = push(
            &app,
            &url,
            "application/json",
            vzenith("-", &format!("鲁C{n:05}"), n, ago(1), false).into_bytes(),
        )
        .await;
        if led_board_data(&frame_of(&reply)).is_some() {
            framed = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(framed, "the change was never seen");
}

/// Outside tester of issue 25 (F2): presses on a lane whose barrier is called (Hikvision),
/// and presses right after a polling camera took an open, are one open, not one each.
#[tokio::test]
async fn presses_merge_on_a_called_barrier_and_after_a_polled_open() {
    let app = spawn_app().await;
    let camera = fake_hikvision("admin", "Hik12345").await;
    let site = app.site(10).await;
    let (hik, vz) = (&site.entries[0], &site.entries[1]);
    set_device(
        &app,
        hik,
        json!({"vendor": "hikvision", "device_serial": "a4:14:37:00:00:01",
               "device_url": camera.url, "device_username": "admin", "device_password": "Hik12345"}),
    )
    .await;
    set_device(&app, vz, json!({"vendor": "vzenith"})).await;
    let press = |gate: String| {
        let app = &app;
        async move {
            let (status, body) = app
                .staff(
                    "POST",
                    &format!("/v1/admin/gates/{gate}/manual-open"),
                    Some(json!({"reason": "staff_verified"})),
                )
                .await;
            assert_eq!(status, 201, "{body}");
            body["merged"].as_bool()
        }
    };

    // Three presses at once, and one more after the barrier was called: one call.
    let merged = futures_util::future::join_all((0..3).map(|_| press(hik.id.clone()))).await;
    let opens = camera.opens.clone();
    crate::vendors::until("the barrier call", || {
        opens.lock().map(|o| o.len() == 1).unwrap_or(false)
    })
    .await;
    assert_eq!(press(hik.id.clone()).await, Some(true));
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(opens.lock().map(|o| o.len()).unwrap_or(0), 1);
    let mut merged: Vec<_> = merged.into_iter().map(Option::unwrap_or_default).collect();
    merged.sort();
    assert_eq!(merged, vec![false, true, true]);

    // A polling camera takes the open; a press 20 ms later is the same open.
    let url = format!("/v1/vendor/{}/vzenith", vz.secret);
    assert_eq!(press(vz.id.clone()).await, Some(false));
    let reply = heartbeat(&app, &url, "-").await;
    assert_eq!(reply["Response_AlarmInfoPlate"]["info"], "ok", "{reply}");
    app.advance(chrono::Duration::milliseconds(20));
    assert_eq!(press(vz.id.clone()).await, Some(true));
    let reply = heartbeat(&app, &url, "-").await;
    assert_eq!(reply["Response_AlarmInfoPlate"]["info"], "no", "{reply}");
    assert_eq!(
        app.count("select count(*) from device_commands where cause = 'manual_open'")
            .await,
        2
    );
    camera.server.stop(false).await;
}

/// Outside tester of issue 25 (F3): a manual open naming a car records its passage; when the
/// open expires before the camera took it, the barrier never rose and the passage is undone —
/// an entry's stay closed without a fee and its place given back, an exit's stay open again.
#[tokio::test]
async fn an_expired_manual_open_undoes_the_passage_it_recorded() {
    let mut settings = test_settings();
    settings.manual_open_ttl_s = 1;
    let app = spawn_with(settings).await;
    let site = app.site(10).await;
    let (entry, exit) = (&site.entries[0], &site.exit);
    set_device(&app, entry, json!({"vendor": "vzenith"})).await;
    set_device(&app, exit, json!({"vendor": "vzenith"})).await;
    let press = |gate: &str, plate: &str| {
        let (app, path) = (&app, format!("/v1/admin/gates/{gate}/manual-open"));
        let body = json!({"reason": "plate_unreadable", "plate": plate});
        async move {
            let (status, body) = app.staff("POST", &path, Some(body)).await;
            assert_eq!(status, 201, "{body}");
            body
        }
    };

    // In by hand, but the camera never polled: no car went in.
    let let_in = press(&entry.id, "京M10001").await;
    assert!(let_in["session_id"].is_string(), "{let_in}");
    // A car that came in by its camera is let out by hand; that open expires too.
    let (status, reply) = push(
        &app,
        &format!("/v1/vendor/{}/vzenith", entry.secret),
        "application/json",
        vzenith("-", "京M10002", 41, ago(60), false).into_bytes(),
    )
    .await;
    assert_eq!(
        (status, &reply["Response_AlarmInfoPlate"]["info"]),
        (200, &json!("ok"))
    );
    let let_out = press(&exit.id, "京M10002").await;
    assert!(let_out["session_id"].is_string(), "{let_out}");
    assert_eq!(app.open_sessions(&site.lot).await.len(), 1);

    // The lane worker finds both expired and undoes them.
    crate::vendors::count_becomes(&app, "select count(*) from manual_open_undone", 2).await;
    let open = app.open_sessions(&site.lot).await;
    assert_eq!(open.len(), 1, "{open:?}");
    let voided: (String, Option<rust_decimal::Decimal>, Option<String>) =
        sqlx::query_as("select status, fee, anomaly from sessions where plate = '京M10001'")
            .fetch_one(&app.db)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        voided,
        (
            "closed".into(),
            Some(rust_decimal::Decimal::ZERO),
            Some("manual_open_not_delivered".into())
        )
    );
    let kinds = anomaly_kinds(&app, &site.lot, "open").await;
    assert_eq!(
        kinds
            .iter()
            .filter(|k| *k == "manual_open_not_delivered")
            .count(),
        2,
        "{kinds:?}"
    );
    // Redis agrees with Postgres: one car inside, the let-in one's place given back.
    let mut occupancy = Value::Null;
    for _ in 0..50 {
        occupancy = app
            .staff(
                "GET",
                &format!("/v1/admin/lots/{}/occupancy", site.lot),
                None,
            )
            .await
            .1;
        if occupancy["in_sync"] == json!(true) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        (&occupancy["in_sync"], &occupancy["redis_counts"]["visitor"]),
        (&json!(true), &json!(1)),
        "{occupancy}"
    );
    // The car still at the exit is read there and decided on its stay, not as entry-less.
    let (status, reply) = push(
        &app,
        &format!("/v1/vendor/{}/vzenith", exit.secret),
        "application/json",
        vzenith("-", "京M10002", 42, ago(1), false).into_bytes(),
    )
    .await;
    assert_eq!(status, 200, "{reply}");
    assert!(!anomaly_kinds(&app, &site.lot, "open")
        .await
        .contains(&"no_entry_record".to_owned()));
}

/// Outside tester of issue 25 (F4): a Dahua record days old pushed as live (no `Source`
/// saying offline) is not decided live: recorded at its time, the barrier stays shut, and
/// staff see why (a backlog, or a wrong camera clock or time zone).
#[tokio::test]
async fn a_days_old_record_pushed_as_live_is_recorded_not_opened() {
    let app = spawn_app().await;
    let site = app.site(10).await;
    let entry = &site.entries[0];
    set_device(
        &app,
        entry,
        json!({"vendor": "dahua", "device_serial": "DH-ITC-01"}),
    )
    .await;
    let url = format!(
        "/v1/vendor/{}/dahua/NotificationInfo/TollgateInfo",
        entry.secret
    );
    let taken = Utc::now() - chrono::Duration::days(3);
    let (status, reply) = push(
        &app,
        &url,
        "application/json",
        crate::vendors::dahua_tollgate("DH-ITC-01", "苏E66666", taken, "Normal"),
    )
    .await;
    assert_eq!(status, 200, "{reply}");
    assert_eq!(reply["OpenStrobe"], json!(false), "{reply}");
    let entered: DateTime<Utc> =
        sqlx::query_scalar("select entered_at from sessions where plate = '苏E66666'")
            .fetch_one(&app.db)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
    assert!((entered - taken).num_seconds().abs() <= 1, "{entered}");
    assert!(anomaly_kinds(&app, &site.lot, "open")
        .await
        .contains(&"device_clock".to_owned()));
    // A fresh read on the same lane still opens.
    let (_, reply) = push(
        &app,
        &url,
        "application/json",
        crate::vendors::dahua_tollgate("DH-ITC-01", "苏E77777", ago(2), "Normal"),
    )
    .await;
    assert_eq!(reply["OpenStrobe"], json!(true), "{reply}");
}

/// Outside tester of issue 25 (F5, F6): a Vzenith `plateid` the camera reuses after a counter
/// reset, with another car, is a new read (its reply still echoes the plateid); an offline
/// record without a plateid is recorded, and one that cannot be read is passed over, so the
/// camera's replay goes on.
#[tokio::test]
async fn vzenith_record_numbers_are_echoed_but_not_trusted_alone() {
    let app = spawn_app().await;
    let site = app.site(10).await;
    let entry = &site.entries[0];
    set_device(&app, entry, json!({"vendor": "vzenith"})).await;
    let url = format!("/v1/vendor/{}/vzenith", entry.secret);
    let send = |body: String| {
        let (app, url) = (&app, url.clone());
        async move { push(app, &url, "application/json", body.into_bytes()).await }
    };

    let (_, first) = send(vzenith("-", "浙A10001", 7, ago(30), false)).await;
    let (_, again) = send(vzenith("-", "浙A10001", 7, ago(30), false)).await;
    let (_, reused) = send(vzenith("-", "浙A10002", 7, ago(5), false)).await;
    for reply in [&first, &again, &reused] {
        assert_eq!(reply["Response_AlarmInfoPlate"]["info"], "ok", "{reply}");
        assert_eq!(reply["Response_AlarmInfoPlate"]["plateid"], 7, "{reply}");
    }
    let inside = app.open_sessions(&site.lot).await;
    assert_eq!(inside.len(), 2, "{inside:?}");

    // Offline, without a plateid: recorded, and the camera is told to go on.
    let without_id = serde_json::from_str::<Value>(&vzenith("-", "浙A10003", 8, ago(900), true))
        .map(|mut v| {
            if let Some(result) = v["AlarmInfoPlate"]["result"]["PlateResult"].as_object_mut() {
                result.remove("plateid");
            }
            v.to_string()
        })
        .unwrap_or_else(|e| panic!("{e}"));
    let (status, reply) = send(without_id).await;
    assert_eq!(status, 200, "{reply}");
    assert_eq!(
        reply["Response_AlarmInfoPlate"]["ContinuePushOffline"]["continue"], 1,
        "{reply}"
    );
    assert_eq!(app.open_sessions(&site.lot).await.len(), 3);

    // Offline and unreadable (no time): passed over, with its plateid echoed.
    let unreadable = serde_json::from_str::<Value>(&vzenith("-", "浙A10004", 9, ago(800), true))
        .map(|mut v| {
            if let Some(result) = v["AlarmInfoPlate"]["result"]["PlateResult"].as_object_mut() {
                result.remove("timeStamp");
            }
            v.to_string()
        })
        .unwrap_or_else(|e| panic!("{e}"));
    let (status, reply) = send(unreadable).await;
    assert_eq!(status, 200, "{reply}");
    assert_eq!(
        reply["Response_AlarmInfoPlate"]["ContinuePushOffline"],
        json!({"plateid": 9, "continue": 1}),
        "{reply}"
    );
    assert_eq!(app.open_sessions(&site.lot).await.len(), 3);
}

/// Outside tester of issue 25 (F8): a Dahua KeepAlive that is refused is answered in the
/// KeepAlive's shape (`Active`), not as a plate read's (`OpenStrobe`).
#[tokio::test]
async fn a_refused_dahua_keepalive_is_answered_as_a_keepalive() {
    let app = spawn_app().await;
    let site = app.site(10).await;
    let entry = &site.entries[0];
    set_device(
        &app,
        entry,
        json!({"vendor": "dahua", "device_serial": "DH-ITC-01"}),
    )
    .await;
    let base = format!("/v1/vendor/{}/dahua/NotificationInfo", entry.secret);
    let body = json!({"Active": "keepAlive", "DeviceID": "DH-OTHER"})
        .to_string()
        .into_bytes();
    let (status, reply) = push(&app, &format!("{base}/KeepAlive"), "application/json", body).await;
    assert_eq!(status, 403, "{reply}");
    assert_eq!(
        (
            &reply["Active"],
            reply.get("OpenStrobe"),
            str_of(&reply["error"], "code")
        ),
        (&json!(false), None, "device_mismatch"),
        "{reply}"
    );
    let (status, reply) = push(
        &app,
        &format!("{base}/DeviceInfo"),
        "application/json",
        b"{not json".to_vec(),
    )
    .await;
    assert_eq!(status, 400, "{reply}");
    assert_eq!(
        (&reply["Result"], reply.get("OpenStrobe")),
        (&json!(false), None),
        "{reply}"
    );
}

/// Outside tester of issue 25 (second round): each Dahua URL takes its own kind of message,
/// an XML body that is no ISAPI alert is refused, a Hikvision MAC matches however it is
/// written, `isDataRetransmission` may come as a JSON string, and a NUL in a Vzenith plate is
/// a bad plate.
#[tokio::test]
async fn each_url_takes_its_own_messages_and_devices_are_named_loosely() {
    let app = spawn_app().await;
    let camera = fake_hikvision("admin", "Hik12345").await;
    let site = app.site(10).await;
    let (dahua, hik, vz) = (&site.entries[0], &site.entries[1], &site.exit);
    set_device(
        &app,
        dahua,
        json!({"vendor": "dahua", "device_serial": "DH-ITC-01"}),
    )
    .await;
    set_device(
        &app,
        hik,
        json!({"vendor": "hikvision", "device_serial": "a4:14:37:00:00:01",
               "device_url": camera.url, "device_username": "admin", "device_password": "Hik12345"}),
    )
    .await;
    set_device(&app, vz, json!({"vendor": "vzenith"})).await;
    let base = format!("/v1/vendor/{}/dahua/NotificationInfo", dahua.secret);
    let plate_read = crate::vendors::dahua_tollgate("DH-ITC-01", "苏E88888", ago(1), "Normal");

    // A plate read posted to KeepAlive or DeviceInfo decides nothing.
    for kind in ["KeepAlive", "DeviceInfo"] {
        let (status, reply) = push(
            &app,
            &format!("{base}/{kind}"),
            "application/json",
            plate_read.clone(),
        )
        .await;
        assert_eq!(
            (status, str_of(&reply["error"], "code")),
            (400, "malformed_push"),
            "{kind}: {reply}"
        );
    }
    assert!(app.open_sessions(&site.lot).await.is_empty());
    // A bare DeviceID at DeviceInfo is a registration, answered as one.
    let (status, reply) = push(
        &app,
        &format!("{base}/DeviceInfo"),
        "application/json",
        json!({"DeviceID": "DH-ITC-01"}).to_string().into_bytes(),
    )
    .await;
    assert_eq!(
        (status, reply),
        (200, json!({"Result": true, "Message": ""}))
    );
    // A KeepAlive that is not one.
    let (status, _) = push(
        &app,
        &format!("{base}/KeepAlive"),
        "application/json",
        json!({"Active": "foo", "DeviceID": "DH-ITC-01"})
            .to_string()
            .into_bytes(),
    )
    .await;
    assert_eq!(status, 400);

    // Hikvision: any XML is not an alert; a MAC with dashes is the registered one; a string
    // flag is read.
    let hik_url = format!("/v1/vendor/{}/hikvision", hik.secret);
    let (status, _) = push(
        &app,
        &hik_url,
        "application/xml",
        b"<foo><bar/></foo>".to_vec(),
    )
    .await;
    assert_eq!(status, 400);
    let alert = json!({
        "macAddress": "A4-14-37-00-00-01", "dateTime": ago(1).to_rfc3339(),
        "eventType": "ANPR", "isDataRetransmission": "false",
        "ANPR": {"licensePlate": "京N66666", "plateColor": "blue"}, "UUID": "hik-dash"
    });
    let (status, reply) = push(
        &app,
        &hik_url,
        "application/json",
        alert.to_string().into_bytes(),
    )
    .await;
    assert_eq!(
        (status, reply["subStatusCode"].as_str()),
        (200, Some("ok")),
        "{reply}"
    );

    // Vzenith: a NUL inside a live plate is a bad plate.
    let (status, reply) = push(
        &app,
        &format!("/v1/vendor/{}/vzenith", vz.secret),
        "application/json",
        vzenith("-", "京T1\\u00000", 5, ago(1), false).into_bytes(),
    )
    .await;
    assert_eq!(
        (status, str_of(&reply["error"], "code")),
        (422, "malformed_plate"),
        "{reply}"
    );
}
