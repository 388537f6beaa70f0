//! The world a run drives, created through the real admin API: one property firm (tenant),
//! compounds, lots with two entry lanes and one exit each, and permit holders. Some lots are
//! small "peak" lots that fill up during a run (the morning peak).

use anyhow::{bail, Context};
use rand::SeedableRng;
use serde_json::{json, Value};

use crate::plates;

pub struct SeedConfig {
    pub base_url: String,
    pub operator_token: String,
    pub compounds: usize,
    pub lots_per_compound: usize,
    /// Visitor places of an ordinary lot: enough that it never fills.
    pub capacity: i32,
    /// Lots (of the first compound) with few places, filled at the morning peak.
    pub peak_lots: usize,
    pub peak_capacity: i32,
    /// Permit holders (monthly passes) per compound; user n drives holder n, so as many as
    /// there are users keeps every user in the mix.
    pub permit_holders: usize,
}

impl SeedConfig {
    pub fn small(base_url: &str, operator_token: &str) -> SeedConfig {
        SeedConfig {
            base_url: base_url.trim_end_matches('/').to_owned(),
            operator_token: operator_token.to_owned(),
            compounds: 2,
            lots_per_compound: 2,
            capacity: 100_000,
            peak_lots: 1,
            peak_capacity: 20,
            permit_holders: 10,
        }
    }
}

#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct Lane {
    pub gate_id: String,
    pub secret: String,
}

#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct Lot {
    pub id: String,
    pub capacity: i32,
    pub peak: bool,
    pub entries: Vec<Lane>,
    pub exit: Lane,
    /// Plates with a valid monthly pass at this lot's compound.
    pub permit_plates: Vec<String>,
}

#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct World {
    pub base_url: String,
    pub staff_token: String,
    pub lots: Vec<Lot>,
    /// When each user's permit car last drove into each lot, over every run against this
    /// world: the steps of a search follow each other within seconds (see
    /// `scenario::PERMIT_REST`).
    #[serde(skip)]
    pub permit_trips: PermitTrips,
}

/// Permit trips by (user, lot id), shared by the clones of a world.
pub type PermitTrips = std::sync::Arc<
    std::sync::Mutex<std::collections::BTreeMap<(usize, String), std::time::Instant>>,
>;

impl World {
    pub fn ordinary_lots(&self) -> Vec<&Lot> {
        self.lots.iter().filter(|l| !l.peak).collect()
    }

    pub fn peak_lots(&self) -> Vec<&Lot> {
        self.lots.iter().filter(|l| l.peak).collect()
    }
}

struct Admin {
    http: reqwest::Client,
    base_url: String,
}

impl Admin {
    async fn post(&self, token: &str, path: &str, body: Value) -> anyhow::Result<Value> {
        let response = self
            .http
            .post(format!("{}{path}", self.base_url))
            .bearer_auth(token)
            .json(&body)
            .send()
            .await
            .with_context(|| format!("POST {path}"))?;
        let status = response.status();
        let body: Value = response.json().await.unwrap_or(Value::Null);
        if !status.is_success() {
            bail!("POST {path}: {status} {body}");
        }
        Ok(body)
    }
}

fn text(value: &Value, key: &str) -> anyhow::Result<String> {
    value[key]
        .as_str()
        .map(str::to_owned)
        .with_context(|| format!("no {key} in {value}"))
}

/// Creates the world; each run gets a fresh tenant, so runs never see each other's cars.
pub async fn seed(config: &SeedConfig) -> anyhow::Result<World> {
    let admin = Admin {
        http: reqwest::Client::new(),
        base_url: config.base_url.clone(),
    };
    let run = uuid::Uuid::new_v4().simple().to_string();
    let tenant = admin
        .post(
            &config.operator_token,
            "/v1/operator/tenants",
            json!({"name": format!("压测物业 {run}")}),
        )
        .await?;
    let staff = text(&tenant, "staff_token")?;
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let today = chrono::Utc::now().date_naive();
    let mut lots = Vec::new();
    for c in 0..config.compounds {
        let compound = admin
            .post(
                &staff,
                "/v1/admin/compounds",
                json!({"name": format!("小区{c}-{run}"), "time_zone": "Asia/Shanghai"}),
            )
            .await?;
        let compound_id = text(&compound, "id")?;
        let mut permit_plates = Vec::new();
        for p in 0..config.permit_holders {
            let (plate, _) = plates::any(&mut rng);
            let owner = admin
                .post(
                    &staff,
                    &format!("/v1/admin/compounds/{compound_id}/owners"),
                    json!({"unit": format!("{}-{}-{:03}", c + 1, p / 100 + 1, p % 100 + 101),
                           "name": "业主", "floor_area_m2": "89.50"}),
                )
                .await?;
            let Ok(vehicle) = admin
                .post(
                    &staff,
                    &format!("/v1/admin/compounds/{compound_id}/vehicles"),
                    json!({"plate": plate, "class": "small", "owner_id": owner["id"]}),
                )
                .await
            else {
                continue; // a random plate drawn twice
            };
            admin
                .post(
                    &staff,
                    &format!("/v1/admin/compounds/{compound_id}/permits"),
                    json!({"kind": "monthly", "vehicle_id": vehicle["id"],
                           "valid_from": today - chrono::Duration::days(1),
                           "valid_to": today + chrono::Duration::days(30)}),
                )
                .await?;
            permit_plates.push(plate);
        }
        for l in 0..config.lots_per_compound {
            let peak = c == 0 && l < config.peak_lots;
            let capacity = if peak {
                config.peak_capacity
            } else {
                config.capacity
            };
            let lot = admin
                .post(
                    &staff,
                    &format!("/v1/admin/compounds/{compound_id}/lots"),
                    json!({"name": format!("车库{l}"), "visitor_capacity": capacity,
                           "simple_tariff": {"free_min": 15, "hourly": "3.00", "cap_24h": "30.00"}}),
                )
                .await?;
            let lot_id = text(&lot, "id")?;
            let mut lanes = Vec::new();
            for (name, direction) in [("入口A", "entry"), ("入口B", "entry"), ("出口", "exit")]
            {
                let gate = admin
                    .post(
                        &staff,
                        &format!("/v1/admin/lots/{lot_id}/gates"),
                        json!({"name": name, "direction": direction}),
                    )
                    .await?;
                lanes.push(Lane {
                    gate_id: text(&gate["gate"], "id")?,
                    secret: text(&gate, "device_secret")?,
                });
            }
            let exit = lanes.pop().context("three lanes")?;
            lots.push(Lot {
                id: lot_id,
                capacity,
                peak,
                entries: lanes,
                exit,
                permit_plates: permit_plates.clone(),
            });
        }
    }
    Ok(World {
        base_url: config.base_url.clone(),
        staff_token: staff,
        lots,
        permit_trips: PermitTrips::default(),
    })
}
