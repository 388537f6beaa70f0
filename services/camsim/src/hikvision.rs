//! Hikvision ISAPI ANPR cameras in "HTTP listening" mode: each plate is an
//! `EventNotificationAlert` posted as `multipart/form-data` (the XML part and the plate and
//! scene JPEGs), or as JSON with the same field names on firmware that uploads JSON.

use chrono::{DateTime, Utc};
use serde_json::json;

use crate::{jpeg, multipart, Lane, Reply};

/// One ANPR alert.
#[derive(Clone, Debug)]
pub struct Alert {
    /// `macAddress`; optional in the alert.
    pub mac: Option<String>,
    pub plate: String,
    pub captured_at: DateTime<Utc>,
    pub uuid: String,
    /// `isDataRetransmission`: the camera's offline buffer being resent.
    pub retransmission: bool,
    /// Upload as JSON instead of multipart XML.
    pub json: bool,
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

pub fn alert_xml(a: &Alert) -> String {
    let mac = a
        .mac
        .as_deref()
        .map(|m| format!("<macAddress>{}</macAddress>\n", escape(m)))
        .unwrap_or_default();
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<EventNotificationAlert version="2.0" xmlns="http://www.isapi.org/ver20/XMLSchema">
<ipAddress>192.168.1.64</ipAddress>
<portNo>80</portNo>
<protocol>HTTP</protocol>
{mac}<channelID>1</channelID>
<dateTime>{}</dateTime>
<activePostCount>1</activePostCount>
<eventType>ANPR</eventType>
<eventState>active</eventState>
<eventDescription>ANPR</eventDescription>
<isDataRetransmission>{}</isDataRetransmission>
<ANPR>
<licensePlate>{}</licensePlate>
<confidenceLevel>97</confidenceLevel>
<plateType>92TypeCivil</plateType>
<plateColor>blue</plateColor>
</ANPR>
<UUID>{}</UUID>
</EventNotificationAlert>
"#,
        a.captured_at
            .with_timezone(&chrono_tz::Asia::Shanghai)
            .to_rfc3339(),
        a.retransmission,
        escape(&a.plate),
        escape(&a.uuid),
    )
}

pub fn alert_json(a: &Alert) -> String {
    let mut alert = json!({
        "ipAddress": "192.168.1.64", "portNo": 80, "protocol": "HTTP", "channelID": 1,
        "dateTime": a.captured_at.with_timezone(&chrono_tz::Asia::Shanghai).to_rfc3339(),
        "activePostCount": 1, "eventType": "ANPR", "eventState": "active",
        "eventDescription": "ANPR", "isDataRetransmission": a.retransmission,
        "ANPR": {"licensePlate": a.plate, "confidenceLevel": 97, "plateColor": "blue"},
        "UUID": a.uuid,
    });
    if let Some(mac) = &a.mac {
        alert["macAddress"] = json!(mac);
    }
    alert.to_string()
}

pub async fn push(lane: &Lane, alert: &Alert) -> anyhow::Result<Reply> {
    if alert.json {
        return lane
            .post(
                "hikvision",
                "application/json",
                alert_json(alert).into_bytes(),
            )
            .await;
    }
    let xml = alert_xml(alert);
    let (plate_jpeg, scene_jpeg) = (jpeg(20 * 1024), jpeg(120 * 1024));
    let (content_type, body) = multipart(
        "b0undaryHik",
        &[
            (
                "anpr.xml",
                Some("anpr.xml"),
                Some("application/xml"),
                xml.as_bytes(),
            ),
            (
                "licensePlatePicture.jpg",
                Some("licensePlatePicture.jpg"),
                Some("image/jpeg"),
                &plate_jpeg,
            ),
            (
                "detectionPicture.jpg",
                Some("detectionPicture.jpg"),
                Some("image/jpeg"),
                &scene_jpeg,
            ),
        ],
    );
    lane.post("hikvision", &content_type, body).await
}

/// Whether the service acknowledged the alert (`ResponseStatus` `statusCode` 1).
pub fn acknowledged(reply: &Reply) -> bool {
    // An XML alert is answered with ISAPI's XML ResponseStatus, a JSON one with its JSON form.
    reply.status == 200
        && (reply
            .body
            .as_str()
            .is_some_and(|x| x.contains("<statusCode>1</statusCode>"))
            || reply.body["statusCode"] == 1)
}
