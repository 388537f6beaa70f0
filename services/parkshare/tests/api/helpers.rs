//! `spawn_app()`: the service on a random port with a fresh database and Redis key prefix.

use std::net::TcpListener;

use chrono::{DateTime, Duration, Utc};
use parkshare::clock::TestClock;
use parkshare::occupancy::RebuildMode;
use parkshare::settings::{PrivateHosts, Settings, Switch};
use parkshare::startup;
use serde_json::{json, Value};
use uuid::Uuid;

pub const PG_BASE: &str = "postgres://postgres@127.0.0.1:5432";
pub const REDIS_URL: &str = "redis://127.0.0.1:6379";

pub struct TestApp {
    pub address: String,
    pub client: reqwest::Client,
    pub settings: Settings,
    pub db: sqlx::PgPool,
    pub redis: redis::aio::ConnectionManager,
    pub staff_token: String,
    /// The service's credential cache (to see when a lookup went to Postgres).
    pub credentials: std::sync::Arc<parkshare::contexts::Credentials>,
    /// The service's clock: a test advances it to let a hold lapse or a window close.
    pub clock: TestClock,
}

impl Drop for TestApp {
    /// Removes the test's fail-open journal directory if it is empty (a test that restarts the
    /// service on the same journal, or leaves passages in it, keeps it).
    fn drop(&mut self) {
        let _ = std::fs::remove_dir(&self.settings.fail_open_journal_dir);
    }
}

pub struct Gate {
    pub id: String,
    pub secret: String,
}

/// A compound with one lot, two entry gates and one exit gate.
pub struct Site {
    pub compound: String,
    pub lot: String,
    pub entries: Vec<Gate>,
    pub exit: Gate,
}

pub fn test_settings() -> Settings {
    let id = Uuid::new_v4().simple().to_string();
    let mut settings = Settings::from_env().unwrap_or_else(|e| panic!("settings: {e}"));
    settings.database_url = format!(
        "{}/ps_test_{id}",
        std::env::var("PARKSHARE_TEST_PG").unwrap_or_else(|_| PG_BASE.to_owned())
    );
    settings.migrate_database_url = None;
    settings.redis_url =
        std::env::var("PARKSHARE_TEST_REDIS").unwrap_or_else(|_| REDIS_URL.to_owned());
    settings.redis_prefix = format!("pstest:{id}");
    settings.fail_open_journal_dir = std::env::temp_dir().join(format!("ps-journal-{id}"));
    settings.db_pool_max = 8;
    settings.operator_token = Some(format!("operator-{id}").into());
    settings.rebuild_on_start = RebuildMode::Force;
    settings.provider_secret = Some(format!("provider-{id}").into());
    // Drivers "pay" through the simulated provider in the tests; it is off by default.
    settings.simulated_provider = Some(Switch::On);
    // The tests' webhook receivers listen on loopback.
    settings.webhook_private_hosts = PrivateHosts::Allow;
    // Decisions are never cut short by a loaded test machine; the fail-policy tests set their
    // own budget.
    settings.gate_decision_budget_ms = 60_000;
    // Nor is a Redis call (200 cars at once queue on one connection); the fault tests set a
    // short limit themselves.
    settings.redis_timeout_ms = 10_000;
    // Tests that put Redis out of step look at the difference themselves; the reconciler's own
    // test sets a short interval.
    settings.occupancy_reconcile_ms = 3_600_000;
    // No test is throttled by accident; the abuse-limit tests lower these themselves.
    settings.public_rate_per_min = std::num::NonZeroU32::MAX;
    settings.booking_rate_per_min = std::num::NonZeroU32::MAX;
    // Every test books from 127.0.0.1; the cap tests lower this themselves.
    settings.bookings_per_client_max = 1_000;
    // Lotteries close within seconds in the tests; the window test sets the day back.
    settings.lottery_window_min = chrono::Duration::seconds(1);
    // Camera tests push live reads of cars that "entered hours ago" to bill a stay; the stale
    // read test pushes one older than this.
    settings.live_read_age_max_s = 86_400;
    settings
}

pub async fn spawn_app() -> TestApp {
    spawn_with(test_settings()).await
}

pub async fn spawn_with(settings: Settings) -> TestApp {
    spawn_resolving(settings, None).await
}

/// The service resolving the names of webhooks and devices with `names` (a
/// `parkshare::outbound::StaticResolver`), never with the network.
pub async fn spawn_with_names(
    settings: Settings,
    names: std::sync::Arc<dyn reqwest::dns::Resolve>,
) -> TestApp {
    spawn_resolving(settings, Some(names)).await
}

async fn spawn_resolving(
    settings: Settings,
    names: Option<std::sync::Arc<dyn reqwest::dns::Resolve>>,
) -> TestApp {
    // Logs only when asked for: `TEST_LOG=1 cargo test`.
    if std::env::var_os("TEST_LOG").is_some() {
        parkshare::telemetry::init(false);
    }
    let mut state = startup::connect(&settings)
        .await
        .unwrap_or_else(|e| panic!("connect: {e:?}"));
    if let Some(names) = names {
        state.outbound =
            parkshare::outbound::Clients::new(settings.webhook_private_hosts.allowed(), names)
                .unwrap_or_else(|e| panic!("outbound clients: {e}"));
    }
    let clock = TestClock::new();
    state.clock = clock.clock();
    let db = state.db.clone();
    let credentials = state.credentials.clone();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap_or_else(|e| panic!("bind: {e}"));
    let port = listener.local_addr().map(|a| a.port()).unwrap_or_default();
    let server = startup::run(listener, state, &settings)
        .await
        .unwrap_or_else(|e| panic!("run: {e:?}"));
    tokio::spawn(server.serve());
    // For a cluster, the first seed node (only `wipe_redis` uses this connection).
    let first_node = settings.redis_url.split(',').next().unwrap_or_default();
    let redis = redis::Client::open(first_node)
        .unwrap_or_else(|e| panic!("{e}"))
        .get_connection_manager()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let mut app = TestApp {
        address: format!("http://127.0.0.1:{port}"),
        client: reqwest::Client::new(),
        settings,
        db,
        redis,
        staff_token: String::new(),
        credentials,
        clock,
    };
    app.staff_token = app.new_tenant("测试物业").await;
    app
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or_else(|e| panic!("{e}"))
}

/// The real binary on `port`, against the database and Redis prefix of `settings`, with no
/// other `PARKSHARE_*` setting but `extra_env` (so it runs on the defaults), its log (JSON lines)
/// written to `log` if given.
pub fn start_binary(
    settings: &Settings,
    port: u16,
    extra_env: &[(&str, &str)],
    log: Option<&std::path::Path>,
) -> Served {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_parkshare"));
    for (name, _) in std::env::vars() {
        if name.starts_with("PARKSHARE_") {
            command.env_remove(name);
        }
    }
    command
        .env("PARKSHARE_DATABASE_URL", &settings.database_url)
        .env("PARKSHARE_REDIS_URL", &settings.redis_url)
        .env("PARKSHARE_REDIS_PREFIX", &settings.redis_prefix)
        .env("PARKSHARE_LISTEN", format!("127.0.0.1:{port}"))
        .env(
            "PARKSHARE_FAIL_OPEN_JOURNAL_DIR",
            settings.fail_open_journal_dir.as_os_str(),
        )
        .env("RUST_LOG", "info")
        .envs(extra_env.iter().copied())
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    match log {
        Some(path) => {
            let file = std::fs::File::create(path).unwrap_or_else(|e| panic!("{e}"));
            command.stdout(file);
        }
        None => {
            command.stdout(std::process::Stdio::null());
        }
    }
    Served(
        command
            .spawn()
            .unwrap_or_else(|e| panic!("starting the binary: {e}")),
    )
}

/// The service binary started by a test: killed when the test ends, also when it fails, so
/// that no process outlives its test holding the test's database.
pub struct Served(std::process::Child);

impl std::ops::Deref for Served {
    type Target = std::process::Child;

    fn deref(&self) -> &std::process::Child {
        &self.0
    }
}

impl std::ops::DerefMut for Served {
    fn deref_mut(&mut self) -> &mut std::process::Child {
        &mut self.0
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub async fn wait_ready(client: &reqwest::Client, port: u16) {
    for _ in 0..200 {
        if let Ok(r) = client
            .get(format!("http://127.0.0.1:{port}/readyz"))
            .send()
            .await
        {
            if r.status().is_success() {
                return;
            }
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("the service did not become ready");
}

pub fn ago(minutes: i64) -> DateTime<Utc> {
    Utc::now() - Duration::minutes(minutes)
}

impl TestApp {
    /// The service's time now (the wall clock until the test advances it).
    pub fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    /// Moves the service's clock ahead by `by`: what the test would otherwise sleep for.
    pub fn advance(&self, by: Duration) {
        self.clock.advance(by);
    }

    /// The platform operator's token of this test's service.
    pub fn operator_token(&self) -> String {
        self.settings
            .operator_token
            .as_ref()
            .map(|t| secrecy::ExposeSecret::expose_secret(t).to_owned())
            .unwrap_or_default()
    }

    pub async fn new_tenant(&self, name: &str) -> String {
        let token = self.operator_token();
        let (status, body) = self
            .send(
                "POST",
                "/v1/operator/tenants",
                &token,
                Some(json!({"name": name})),
            )
            .await;
        assert_eq!(status, 201, "{body}");
        body["staff_token"].as_str().unwrap_or_default().to_owned()
    }

    pub async fn send(
        &self,
        method: &str,
        path: &str,
        token: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap_or(reqwest::Method::GET);
        let mut request = self
            .client
            .request(method, format!("{}{path}", self.address));
        if !token.is_empty() {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request
            .send()
            .await
            .unwrap_or_else(|e| panic!("request to {path}: {e}"));
        let status = response.status().as_u16();
        let text = response.text().await.unwrap_or_default();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    pub async fn staff(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        self.send(method, path, &self.staff_token, body).await
    }

    /// POST that must succeed with 201; returns the body.
    pub async fn create(&self, path: &str, body: Value) -> Value {
        let (status, body) = self.staff("POST", path, Some(body)).await;
        assert_eq!(status, 201, "POST {path}: {body}");
        body
    }

    pub async fn site(&self, visitor_capacity: i32) -> Site {
        self.site_with_policy(visitor_capacity, json!(null)).await
    }

    pub async fn site_with_policy(&self, visitor_capacity: i32, policy: Value) -> Site {
        let mut compound = json!({"name": format!("小区{}", Uuid::new_v4().simple()), "time_zone": "Asia/Shanghai"});
        if !policy.is_null() {
            compound["policy"] = policy;
        }
        let compound = self.create("/v1/admin/compounds", compound).await["id"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        let lot = self
            .create(
                &format!("/v1/admin/compounds/{compound}/lots"),
                json!({"name": "地库", "visitor_capacity": visitor_capacity,
                       "simple_tariff": {"free_min": 15, "hourly": "3.00", "cap_24h": "20.00"}}),
            )
            .await["id"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        let mut entries = Vec::new();
        for name in ["入口1", "入口2"] {
            entries.push(self.gate(&lot, name, "entry").await);
        }
        let exit = self.gate(&lot, "出口", "exit").await;
        Site {
            compound,
            lot,
            entries,
            exit,
        }
    }

    pub async fn gate(&self, lot: &str, name: &str, direction: &str) -> Gate {
        let body = self
            .create(
                &format!("/v1/admin/lots/{lot}/gates"),
                json!({"name": name, "direction": direction}),
            )
            .await;
        Gate {
            id: body["gate"]["id"].as_str().unwrap_or_default().to_owned(),
            secret: body["device_secret"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
        }
    }

    /// Posts a plate read; the event id is derived from plate and time unless given.
    pub async fn read(&self, gate: &Gate, plate: &str, at: DateTime<Utc>) -> (u16, Value) {
        let event_id = format!("{plate}-{}", at.timestamp_micros());
        self.read_with_id(gate, plate, at, &event_id).await
    }

    pub async fn read_with_id(
        &self,
        gate: &Gate,
        plate: &str,
        at: DateTime<Utc>,
        event_id: &str,
    ) -> (u16, Value) {
        let body = json!({"gate_id": gate.id, "plate": plate, "captured_at": at, "device_event_id": event_id});
        self.send("POST", "/v1/gate/events", &gate.secret, Some(body))
            .await
    }

    pub async fn occupancy(&self, lot: &str) -> Value {
        let (status, body) = self
            .staff("GET", &format!("/v1/admin/lots/{lot}/occupancy"), None)
            .await;
        assert_eq!(status, 200, "{body}");
        body
    }

    pub async fn open_sessions(&self, lot: &str) -> Vec<Value> {
        let (status, body) = self
            .staff(
                "GET",
                &format!("/v1/admin/lots/{lot}/sessions?status=open"),
                None,
            )
            .await;
        assert_eq!(status, 200, "{body}");
        body.as_array().cloned().unwrap_or_default()
    }

    pub async fn count(&self, sql: &str) -> i64 {
        sqlx::query_scalar(sql)
            .fetch_one(&self.db)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"))
    }

    /// Deletes every Redis key of this app, as if Redis had lost its data.
    pub async fn wipe_redis(&self) {
        let pattern = format!("{}:*", self.settings.redis_prefix);
        let mut con = self.redis.clone();
        let keys: Vec<String> = redis::cmd("KEYS")
            .arg(&pattern)
            .query_async(&mut con)
            .await
            .unwrap_or_default();
        if !keys.is_empty() {
            let _: i64 = redis::cmd("DEL")
                .arg(&keys)
                .query_async(&mut con)
                .await
                .unwrap_or_default();
        }
    }

    /// The summed balance of every ledger account of `kind` the staff can see.
    pub async fn balance(&self, kind: &str) -> rust_decimal::Decimal {
        let (_, accounts) = self.staff("GET", "/v1/admin/ledger/accounts", None).await;
        accounts
            .as_array()
            .into_iter()
            .flatten()
            .filter(|a| a["kind"] == kind)
            .filter_map(|a| a["balance"].as_str()?.parse::<rust_decimal::Decimal>().ok())
            .sum()
    }

    /// Cash at the booth; returns the payment.
    pub async fn pay(&self, session: &str, amount: &str) -> Value {
        self.pay_with_key(session, amount, &Uuid::new_v4().to_string())
            .await
    }

    /// Cash at the booth under the booth's own idempotency key; returns the payment.
    pub async fn pay_with_key(&self, session: &str, amount: &str, key: &str) -> Value {
        let (status, body) = self
            .staff(
                "POST",
                &format!("/v1/admin/sessions/{session}/payments"),
                Some(json!({"amount": amount, "shift": "早班 王芳", "idempotency_key": key})),
            )
            .await;
        assert_eq!(status, 201, "{body}");
        body
    }

    /// A driver's intent to pay for the open stay of `plate` (201).
    pub async fn intent(&self, site: &Site, plate: &str) -> Value {
        let (status, intent) = self
            .send(
                "POST",
                &format!("/v1/public/lots/{}/payment-intents", site.lot),
                "",
                Some(json!({"plate": plate})),
            )
            .await;
        assert_eq!(status, 201, "{intent}");
        intent
    }

    /// A new owner of `compound` at `unit`, with a token: `(owner_id, token)`.
    pub async fn owner_with_token(&self, compound: &str, unit: &str) -> (String, String) {
        let owner = self
            .create(
                &format!("/v1/admin/compounds/{compound}/owners"),
                json!({"unit": unit, "name": "业主", "floor_area_m2": "90.00"}),
            )
            .await;
        let owner_id = str_of(&owner, "id").to_owned();
        let token = self
            .create(
                &format!("/v1/admin/owners/{owner_id}/tokens"),
                json!({"label": "手机"}),
            )
            .await;
        (owner_id, str_of(&token, "token").to_owned())
    }

    /// A closed period's `journal.csv`, as staff read it.
    pub async fn journal_csv(&self, period: &str) -> String {
        self.client
            .get(format!(
                "{}/v1/admin/periods/{period}/journal.csv",
                self.address
            ))
            .bearer_auth(&self.staff_token)
            .send()
            .await
            .unwrap_or_else(|e| panic!("{e}"))
            .error_for_status()
            .unwrap_or_else(|e| panic!("journal.csv of {period}: {e}"))
            .text()
            .await
            .unwrap_or_default()
    }

    /// A closed period's journal summed per account, `(kind, holder)`.
    pub async fn journal_sums(
        &self,
        period: &str,
    ) -> std::collections::BTreeMap<(String, String), rust_decimal::Decimal> {
        let text = self.journal_csv(period).await;
        let mut sums = std::collections::BTreeMap::new();
        for record in csv::Reader::from_reader(text.as_bytes()).records() {
            let record = record.unwrap_or_else(|e| panic!("{e}: {text}"));
            let amount: rust_decimal::Decimal =
                record[7].parse().unwrap_or_else(|e| panic!("{e}: {text}"));
            *sums
                .entry((record[5].to_owned(), record[6].to_owned()))
                .or_default() += amount;
        }
        sums
    }

    /// The text `/metrics` serves (one registry per test process).
    pub async fn metrics(&self) -> String {
        self.client
            .get(format!("{}/metrics", self.address))
            .send()
            .await
            .unwrap_or_else(|e| panic!("{e}"))
            .text()
            .await
            .unwrap_or_default()
    }
}

pub fn str_of<'a>(v: &'a Value, key: &str) -> &'a str {
    v[key].as_str().unwrap_or_default()
}
