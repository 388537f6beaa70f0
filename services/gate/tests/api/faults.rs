//! The gate through a Postgres outage (issue 23): a Postgres of the test's own (initdb into a
//! temporary directory, its own port), stopped and started while the service runs. Never the
//! machine's shared server.

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use serde_json::json;

use crate::helpers::{ago, free_port, spawn_with, str_of, test_settings, TestApp};

/// A Postgres cluster in a temporary directory on its own port, stopped when dropped.
struct OwnPostgres {
    dir: PathBuf,
    port: u16,
    bin: PathBuf,
}

impl OwnPostgres {
    fn start() -> OwnPostgres {
        let bin = Command::new("pg_config")
            .arg("--bindir")
            .output()
            .ok()
            .map(|o| PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()))
            .unwrap_or_else(|| PathBuf::from("/usr/lib/postgresql/15/bin"));
        let dir =
            std::env::temp_dir().join(format!("ps-fault-pg-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{e}"));
        let pg = OwnPostgres {
            dir,
            port: free_port(),
            bin,
        };
        // initdb refuses to run as root: the cluster belongs to the postgres user then.
        if is_root() {
            pg.run(
                "chown",
                &["-R", "postgres:postgres", &pg.dir.display().to_string()],
                false,
            );
        }
        let data = pg.data().display().to_string();
        pg.run(
            &pg.bin.join("initdb").display().to_string(),
            &["-D", &data, "-A", "trust", "-U", "postgres", "--no-sync"],
            true,
        );
        pg.ctl("start");
        pg
    }

    fn data(&self) -> PathBuf {
        self.dir.join("data")
    }

    fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}", self.port)
    }

    fn ctl(&self, action: &str) {
        let data = self.data().display().to_string();
        let log = self.dir.join("log").display().to_string();
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off",
            self.port,
            self.dir.display()
        );
        let pg_ctl = self.bin.join("pg_ctl").display().to_string();
        let mut args = vec!["-D", &data, "-l", &log, "-w"];
        match action {
            "start" => args.extend(["-o", &options, "start"]),
            _ => args.extend(["-m", "immediate", "stop"]),
        }
        self.run(&pg_ctl, &args, true);
    }

    fn run(&self, program: &str, args: &[&str], as_postgres: bool) {
        let mut command = if as_postgres && is_root() {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--", program]);
            c
        } else {
            Command::new(program)
        };
        let out = command
            .args(args)
            .output()
            .unwrap_or_else(|e| panic!("{program}: {e}"));
        assert!(
            out.status.success(),
            "{program} {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

impl Drop for OwnPostgres {
    fn drop(&mut self) {
        let _ = std::panic::catch_unwind(|| self.ctl("stop"));
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

async fn set_fail_mode(app: &TestApp, gate: &str, mode: &str) {
    let (status, body) = app
        .staff(
            "PUT",
            &format!("/v1/admin/gates/{gate}/device"),
            Some(json!({"fail_mode": mode})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
}

#[tokio::test]
async fn a_postgres_outage_is_answered_by_each_lanes_policy_never_500() {
    let pg = OwnPostgres::start();
    let mut settings = test_settings();
    let database = settings
        .database_url
        .rsplit('/')
        .next()
        .unwrap_or("ps_fault")
        .to_owned();
    settings.database_url = format!("{}/{database}", pg.url());
    settings.gate_decision_budget_ms = 1_000;
    settings.fail_open_drain_ms = 100;
    let app = spawn_with(settings).await;
    let site = app.site(10).await;
    let (open_lane, closed_lane) = (&site.entries[0], &site.entries[1]);
    set_fail_mode(&app, &open_lane.id, "open").await;
    // Both lanes are known to this process: their contexts are cached.
    for (lane, plate) in [(open_lane, "京D10001"), (closed_lane, "京D10002")] {
        let (status, body) = app.read(lane, plate, ago(5)).await;
        assert_eq!((status, str_of(&body, "action")), (200, "open"), "{body}");
    }

    pg.ctl("stop");
    // The credential cache's listener loses its connection, as it does in every outage.
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    let (status, body) = app.read(open_lane, "京D10003", ago(1)).await;
    assert_eq!(
        (status, str_of(&body, "action"), str_of(&body, "reason")),
        (200, "open", "fail_open"),
        "a fail-open lane opens through the outage: {body}"
    );
    let (status, body) = app.read(closed_lane, "京D10004", ago(1)).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (503, Some("unavailable")),
        "a fail-closed lane stays shut and says so: {body}"
    );
    // An unknown device is still refused, not let in on a stale cache.
    let stranger = crate::helpers::Gate {
        id: open_lane.id.clone(),
        secret: "not-a-secret".into(),
    };
    let (status, _) = app.read(&stranger, "京D10005", ago(1)).await;
    assert!(status == 503 || status == 401, "{status}");

    pg.ctl("start");
    // Once Postgres is back the fail-open passage is recorded: the car has its stay.
    let mut recorded = 0;
    for _ in 0..100 {
        recorded = sqlx::query_scalar::<_, i64>(
            "select count(*) from sessions where plate = '京D10003' and status = 'open'",
        )
        .fetch_one(&app.db)
        .await
        .unwrap_or(0);
        if recorded == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(recorded, 1, "the fail-open entry was not recorded");
}
