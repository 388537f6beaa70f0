//! Dahua ITSAPI cameras (§5.1 DeviceInfo, §5.2 KeepAlive, §5.3 TollgateInfo, as modelled
//! field by field in public ITSAPI camera simulators): the camera is given a base URL,
//! `<service>/v1/vendor/<token>/dahua`, and posts to `…/NotificationInfo/<kind>`.

use base64::Engine;
use chrono::{DateTime, Utc};
use serde_json::json;

use crate::{jpeg, Lane, Reply};

/// One plate read.
#[derive(Clone, Debug)]
pub struct Plate {
    pub device_id: String,
    pub plate: String,
    pub captured_at: DateTime<Utc>,
    /// `SnapInfo.Source`: `Video`, `Coil`, `Radar`, or `Offline` for a record uploaded from
    /// the camera's store.
    pub source: String,
    /// `PlateNumber` as hex of its UTF-8 bytes (allowed by §5.3).
    pub hex: bool,
    /// `PlateColor` (Appendix 1.1): `Blue`, `Yellow`, `Green`, ...
    pub colour: String,
}

/// §5.1: the device announcing itself.
pub async fn register(lane: &Lane, device_id: &str) -> anyhow::Result<Reply> {
    let body = json!({
        "DeviceName": "ITC314-PW1B", "DeviceModel": "DHI-ITC314-PW1B-IRZ",
        "DeviceType": "Tollgate", "Manufacturer": "Dahua",
        "IPAddress": "192.168.1.108", "DeviceID": device_id,
    });
    lane.post(
        "dahua/NotificationInfo/DeviceInfo",
        "application/json",
        body.to_string().into_bytes(),
    )
    .await
}

/// §5.2: the heartbeat.
pub async fn keep_alive(lane: &Lane, device_id: &str) -> anyhow::Result<Reply> {
    let body = json!({"Active": "keepAlive", "DeviceID": device_id});
    lane.post(
        "dahua/NotificationInfo/KeepAlive",
        "application/json",
        body.to_string().into_bytes(),
    )
    .await
}

/// §5.3: the plate notification; snap times are the camera's local time (China).
pub fn tollgate_body(p: &Plate) -> String {
    let local = p
        .captured_at
        .with_timezone(&chrono_tz::Asia::Shanghai)
        .naive_local();
    let number = if p.hex {
        hex::encode(p.plate.as_bytes())
    } else {
        p.plate.clone()
    };
    json!({"Picture": {
        "SnapInfo": {
            "DeviceID": p.device_id,
            "Source": p.source,
            "SnapTime": local.format("%Y-%m-%d %H:%M:%S").to_string(),
            "AccurateTime": local.format("%Y-%m-%d %H:%M:%S%.3f").to_string(),
            "TimeZone": 13, "DSTTune": 0, "LanNo": 1, "Direction": "Obverse",
            "OpenStrobe": false, "AllowUser": false, "BlockUser": false,
            "DefenceCode": "0f9d4a1c",
        },
        "Plate": {
            "IsExist": true, "PlateNumber": number, "PlateColor": p.colour,
            "PlateType": "Normal", "Confidence": 96, "BoundingBox": [412, 618, 596, 662],
            "Channel": 0,
        },
        "NormalPic": {"PicName": "normal.jpg",
                      "Content": base64::engine::general_purpose::STANDARD.encode(jpeg(64 * 1024))},
    }})
    .to_string()
}

pub async fn tollgate(lane: &Lane, plate: &Plate) -> anyhow::Result<Reply> {
    lane.post(
        "dahua/NotificationInfo/TollgateInfo",
        "application/json",
        tollgate_body(plate).into_bytes(),
    )
    .await
}

/// Whether a TollgateInfo reply lifts the barrier.
pub fn opens(reply: &Reply) -> bool {
    reply.body["OpenStrobe"] == true
}
