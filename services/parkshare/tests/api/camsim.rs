//! The camera simulator (`parkshare-camsim`) against a running service: each vendor's
//! protocol end to end, as a real device would speak it (issue 25).

use std::time::Duration;

use chrono::Utc;
use serde_json::json;

use parkshare_camsim::{barrier, dahua, hikvision, vzenith, Lane};

use crate::helpers::{ago, spawn_app, spawn_with, str_of, test_settings, TestApp};
use crate::vendors::set_device;

fn lane(app: &TestApp, secret: &str) -> Lane {
    Lane::new(&app.address, secret).unwrap_or_else(|e| panic!("{e}"))
}

#[tokio::test]
async fn a_simulated_vzenith_camera_replays_its_backlog_to_the_end_and_polls_once_per_interval() {
    let app = spawn_app().await;
    let site = app.site(50).await;
    let entry = &site.entries[0];
    set_device(
        &app,
        entry,
        json!({"vendor": "vzenith", "device_serial": "fe71e106-57263272"}),
    )
    .await;
    let camera = lane(&app, &entry.secret);
    let serial = "fe71e106-57263272";

    // A backlog of 12 records, the oldest 60 days back: replayed to the end, each recorded.
    let backlog: Vec<_> = (0..12u32)
        .map(|n| vzenith::Plate {
            serial: serial.into(),
            plate: format!("京B{:05}", 10 + n),
            plateid: 5000 + u64::from(n),
            captured_at: ago(60 * 24 * 60 - i64::from(n) * 600),
            offline: true,
            colour: 1,
            image_bytes: 0,
        })
        .collect();
    let replay = vzenith::replay_backlog(&camera, &backlog)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!((replay.acknowledged, replay.stalled.as_deref()), (12, None));
    assert_eq!(
        app.count("select count(*) from gate_events where offline and source = 'vzenith'")
            .await,
        12
    );

    // A live record: decided, its plateid echoed.
    let live = vzenith::Plate {
        serial: serial.into(),
        plate: "京B99999".into(),
        plateid: 6001,
        captured_at: Utc::now(),
        offline: false,
        colour: 5,
        image_bytes: 300 * 1024,
    };
    let reply = vzenith::push_plate(&camera, &live)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(vzenith::opens(&reply), "{:?}", reply);
    assert_eq!(reply.body["Response_AlarmInfoPlate"]["plateid"], 6001);

    // Comet polling for 6 s: held between heartbeats, not hundreds a second.
    let run = vzenith::comet(&camera, serial, Duration::from_secs(6))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        (1..=3).contains(&run.heartbeats),
        "{} heartbeats",
        run.heartbeats
    );
    assert_eq!(run.opens, 0);
}

#[tokio::test]
async fn a_simulated_dahua_camera_registers_keeps_alive_and_is_answered_by_the_spec() {
    let app = spawn_app().await;
    let site = app.site(10).await;
    let entry = &site.entries[0];
    let device = "5J0A1B2PAG00077";
    set_device(
        &app,
        entry,
        json!({"vendor": "dahua", "device_serial": device}),
    )
    .await;
    let camera = lane(&app, &entry.secret);

    let reply = dahua::register(&camera, device)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        (reply.status, reply.body),
        (200, json!({"Result": true, "Message": ""}))
    );
    let reply = dahua::keep_alive(&camera, device)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        (reply.status, reply.body),
        (200, json!({"Active": true, "DeviceID": device}))
    );
    let plate = |number: &str, source: &str, hex: bool| dahua::Plate {
        device_id: device.into(),
        plate: number.into(),
        captured_at: Utc::now(),
        source: source.into(),
        hex,
        colour: "Blue".into(),
    };
    let reply = dahua::tollgate(&camera, &plate("浙A55555", "Video", true))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        reply.body,
        json!({"Result": true, "DeviceID": device, "OpenStrobe": true})
    );
    let reply = dahua::tollgate(&camera, &plate("浙A66666", "Offline", false))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(!dahua::opens(&reply), "{:?}", reply);
    assert_eq!(
        app.count("select count(*) from gate_events where offline")
            .await,
        1
    );
}

#[tokio::test]
async fn a_simulated_hikvision_camera_is_opened_through_its_digest_barrier() {
    let app = spawn_app().await;
    let barrier = barrier::serve("127.0.0.1:0", "admin", "Hik54321")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let site = app.site(10).await;
    let entry = &site.entries[0];
    set_device(
        &app,
        entry,
        json!({"vendor": "hikvision", "device_serial": "a4:14:37:00:00:09",
               "device_url": barrier.url, "device_username": "admin",
               "device_password": "Hik54321"}),
    )
    .await;
    let camera = lane(&app, &entry.secret);
    let alert = |plate: &str, mac: Option<&str>, json: bool| hikvision::Alert {
        mac: mac.map(str::to_owned),
        plate: plate.into(),
        captured_at: Utc::now(),
        uuid: format!("sim-{plate}"),
        retransmission: false,
        json,
    };

    // A multipart XML alert without macAddress: acknowledged, the barrier called once.
    let reply = hikvision::push(&camera, &alert("京C10001", None, false))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(hikvision::acknowledged(&reply), "{:?}", reply);
    // The JSON alert naming the lane's MAC.
    let reply = hikvision::push(&camera, &alert("京C10002", Some("a4:14:37:00:00:09"), true))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(hikvision::acknowledged(&reply), "{:?}", reply);
    // A staff member's open: one more call.
    let (status, body) = app
        .staff(
            "POST",
            &format!("/v1/admin/gates/{}/manual-open", entry.id),
            Some(json!({"reason": "emergency_vehicle"})),
        )
        .await;
    assert_eq!((status, str_of(&body, "delivery")), (201, "device_call"));
    for _ in 0..100 {
        if barrier.opens().len() >= 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let opens = barrier.opens();
    assert_eq!(opens.len(), 3, "{opens:?}");
    assert!(opens
        .iter()
        .all(|o| o == "PUT /ISAPI/Parking/channels/1/barrierGate"));
    barrier.stop().await;
}

#[tokio::test]
async fn a_simulated_vzenith_camera_gets_one_open_for_three_presses_and_none_once_expired() {
    let mut settings = test_settings();
    settings.manual_open_ttl_s = 3;
    let app = spawn_with(settings).await;
    let site = app.site(10).await;
    let entry = &site.entries[0];
    set_device(
        &app,
        entry,
        json!({"vendor": "vzenith", "display_protocol": "led_board"}),
    )
    .await;
    let camera = lane(&app, &entry.secret);
    let press = || async {
        let (status, body) = app
            .staff(
                "POST",
                &format!("/v1/admin/gates/{}/manual-open", entry.id),
                Some(json!({"reason": "payment_system_down"})),
            )
            .await;
        assert_eq!(status, 201, "{body}");
    };

    // Three presses while the camera is away, then it polls: one open.
    for _ in 0..3 {
        press().await;
    }
    let run = vzenith::comet(&camera, "-", Duration::from_secs(2))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(run.opens, 1, "{run:?}");

    // A press the camera cannot collect in time: never fired. (The wait is the camera's own
    // pace, wall time: out of comet mode, so that its next heartbeat is answered at once.)
    press().await;
    app.advance(chrono::Duration::milliseconds(3_500));
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    let run = vzenith::normal(&camera, "-", Duration::from_millis(1_500), 2)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(run.opens, 0, "{run:?}");

    // The lane's board takes the framed protocol, checked as the board would check it.
    let reply = vzenith::push_plate(
        &camera,
        &vzenith::Plate {
            serial: "-".into(),
            plate: "京D24680".into(),
            plateid: 77,
            captured_at: Utc::now(),
            offline: false,
            colour: 1,
            image_bytes: 0,
        },
    )
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    let frame = {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD
            .decode(
                reply.body["Response_AlarmInfoPlate"]["serialData"][0]["data"]
                    .as_str()
                    .unwrap_or_default(),
            )
            .unwrap_or_default()
    };
    assert!(
        parkshare::gate::vendors::display::led_board_data(&frame).is_some(),
        "{:?}",
        reply
    );
}
