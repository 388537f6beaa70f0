//! Vzenith/臻识 IVS cameras, as the vendor's "HTTP 推送协议" document describes them:
//! plate results (§2.1.1), offline records and their replay (§2.1.2 断线重传), and the
//! heartbeat form in normal (§2.5.1) and comet mode (§2.5.2).

use std::time::{Duration, Instant};

use base64::Engine;
use chrono::{DateTime, Datelike, Timelike, Utc};
use serde_json::json;

use crate::{jpeg, multipart, Lane, Reply};

/// One plate result.
#[derive(Clone, Debug)]
pub struct Plate {
    pub serial: String,
    pub plate: String,
    /// The camera's record id.
    pub plateid: u64,
    pub captured_at: DateTime<Utc>,
    /// A record kept while the camera could not reach the server.
    pub offline: bool,
    /// `colorType`: 1 blue, 2 yellow, 3 white, 4 black, 5 green.
    pub colour: u8,
    /// Size of the inline scene image, in bytes (0: none).
    pub image_bytes: usize,
}

/// The `AlarmInfoPlate` push of §2.1.1, with the fields §2.1.2 adds (`plateid`,
/// `isoffline`, `gioouts`).
pub fn plate_body(p: &Plate) -> String {
    let image = if p.image_bytes > 0 {
        base64::engine::general_purpose::STANDARD.encode(jpeg(p.image_bytes))
    } else {
        String::new()
    };
    let local = p.captured_at.with_timezone(&chrono_tz::Asia::Shanghai);
    json!({"AlarmInfoPlate": {
        "channel": 0,
        "deviceName": "IVS",
        "ipaddr": "192.168.1.100",
        "serialno": p.serial,
        "user_data": "",
        "result": {"PlateResult": {
            "bright": 0, "carBright": 0, "carColor": 255,
            "colorType": p.colour, "colorValue": 0, "confidence": 96, "direction": 0,
            "imageFile": image, "imageFileLen": if p.image_bytes > 0 { p.image_bytes } else { 0 },
            "imageFragmentFile": "", "imageFragmentFileLen": 0,
            "is_fake_plate": 0,
            "isoffline": u8::from(p.offline),
            "license": p.plate,
            "location": {"RECT": {"bottom": 674, "left": 1002, "right": 1263, "top": 565}},
            "plateid": p.plateid,
            "gioouts": [{"ctrltype": 0, "ionum": "0"}],
            "timeStamp": {"Timeval": {
                "decyear": local.year(), "decmon": local.month(), "decday": local.day(),
                "dechour": local.hour(), "decmin": local.minute(), "decsec": local.second(),
                "sec": p.captured_at.timestamp(), "usec": 0,
            }},
            "timeUsed": 31, "triggerType": 4, "type": 1,
        }},
    }})
    .to_string()
}

/// The heartbeat form of §2.5.1 (the same in comet mode, §2.5.2).
pub fn heartbeat_form(serial: &str) -> (String, Vec<u8>) {
    let fields = [
        ("device_name", "IVS"),
        ("ipaddr", "192.168.1.100"),
        ("port", "80"),
        ("user_name", "admin"),
        ("pass_wd", "admin"),
        ("serialno", serial),
        ("channel_num", "1"),
    ];
    let parts: Vec<_> = fields
        .iter()
        .map(|(name, value)| (*name, None, None, value.as_bytes()))
        .collect();
    multipart("--------------------------caa771fe4a61f3d9", &parts)
}

pub async fn push_plate(lane: &Lane, plate: &Plate) -> anyhow::Result<Reply> {
    lane.post(
        "vzenith",
        "application/json",
        plate_body(plate).into_bytes(),
    )
    .await
}

pub async fn heartbeat(lane: &Lane, serial: &str) -> anyhow::Result<Reply> {
    let (content_type, body) = heartbeat_form(serial);
    lane.post("vzenith", &content_type, body).await
}

/// Whether a reply lifts the barrier (§2.6.1).
pub fn opens(reply: &Reply) -> bool {
    reply.body["Response_AlarmInfoPlate"]["info"] == "ok"
}

/// What a run of comet polling saw.
#[derive(Debug, Default)]
pub struct CometRun {
    pub heartbeats: u32,
    /// Heartbeat replies that lifted the barrier (manual opens).
    pub opens: u32,
}

/// Comet mode (§2.5.2): the next heartbeat as soon as the last one is answered, for `run`.
pub async fn comet(lane: &Lane, serial: &str, run: Duration) -> anyhow::Result<CometRun> {
    let started = Instant::now();
    let mut seen = CometRun::default();
    while started.elapsed() < run {
        let reply = heartbeat(lane, serial).await?;
        anyhow::ensure!(
            reply.status == 200,
            "heartbeat answered {}: {}",
            reply.status,
            reply.body
        );
        seen.heartbeats += 1;
        seen.opens += u32::from(opens(&reply));
    }
    Ok(seen)
}

/// Normal mode (§2.5.1): a heartbeat every `every` (5 s with offline checking, else 30 s),
/// `count` times.
pub async fn normal(
    lane: &Lane,
    serial: &str,
    every: Duration,
    count: u32,
) -> anyhow::Result<CometRun> {
    let mut seen = CometRun::default();
    for n in 0..count {
        if n > 0 {
            tokio::time::sleep(every).await;
        }
        let reply = heartbeat(lane, serial).await?;
        seen.heartbeats += 1;
        seen.opens += u32::from(opens(&reply));
    }
    Ok(seen)
}

/// How far a backlog replay went.
#[derive(Debug, Default)]
pub struct Backlog {
    /// Records the server asked for the next one after.
    pub acknowledged: usize,
    /// Why the replay stopped early, if it did.
    pub stalled: Option<String>,
}

/// Replays offline records as the camera does (§2.1.2): each one is sent only after the
/// previous one was answered `ContinuePushOffline` with its `plateid` and `continue: 1`.
pub async fn replay_backlog(lane: &Lane, records: &[Plate]) -> anyhow::Result<Backlog> {
    let mut backlog = Backlog::default();
    for record in records {
        let reply = push_plate(lane, record).await?;
        let cont = &reply.body["Response_AlarmInfoPlate"]["ContinuePushOffline"];
        let asked_on = cont["continue"] == 1 && cont["plateid"] == record.plateid;
        if reply.status != 200 || !asked_on {
            backlog.stalled = Some(format!(
                "record {} answered {}: {}",
                record.plateid, reply.status, reply.body
            ));
            break;
        }
        backlog.acknowledged += 1;
    }
    Ok(backlog)
}
