//! The real binary killed with SIGKILL and started again: every acknowledged session is still
//! there and occupancy is rebuilt from Postgres. And Postgres ending the service's idle
//! connections: none of them is handed to a request.

use crate::helpers::{ago, free_port, spawn_with, start_binary, str_of, test_settings, wait_ready};

#[tokio::test]
async fn a_killed_service_loses_no_acknowledged_session() {
    // Set up the registry through an in-process app sharing the database and prefix.
    let settings = test_settings();
    let app = spawn_with(settings.clone()).await;
    let site = app.site(10).await;

    let port = free_port();
    let mut child = start_binary(&settings, port, &[], None);
    wait_ready(&app.client, port).await;
    let mut acknowledged = Vec::new();
    for n in 0..5 {
        let body = serde_json::json!({"gate_id": site.entries[0].id, "plate": format!("沪C{n:05}"),
                                      "captured_at": ago(5), "device_event_id": format!("k-{n}")});
        let response = app
            .client
            .post(format!("http://127.0.0.1:{port}/v1/gate/events"))
            .bearer_auth(&site.entries[0].secret)
            .json(&body)
            .send()
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let answer: serde_json::Value = response.json().await.unwrap_or_default();
        assert_eq!(str_of(&answer, "action"), "open", "{answer}");
        acknowledged.push(str_of(&answer, "session_id").to_owned());
    }
    child.kill().unwrap_or_else(|e| panic!("{e}"));
    let _ = child.wait();
    app.wipe_redis().await;

    let mut child = start_binary(&settings, port, &[], None);
    wait_ready(&app.client, port).await;
    let open: Vec<String> = app
        .open_sessions(&site.lot)
        .await
        .iter()
        .map(|s| str_of(s, "id").to_owned())
        .collect();
    for session in &acknowledged {
        assert!(
            open.contains(session),
            "acknowledged session {session} lost"
        );
    }
    let occupancy = app.occupancy(&site.lot).await;
    assert_eq!(occupancy["in_sync"], true, "{occupancy}");
    assert_eq!(occupancy["redis_counts"]["visitor"], 5);
    let _ = child.kill();
    let _ = child.wait();
}

#[tokio::test]
async fn the_pool_hands_out_no_connection_postgres_ended_while_it_was_idle() {
    let state = parkshare::startup::connect(&test_settings())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    // Eight connections at once, then all idle in the pool.
    let acquired = futures::future::join_all((0..8).map(|_| state.db.acquire())).await;
    let held: Vec<_> = acquired
        .into_iter()
        .map(|c| c.unwrap_or_else(|e| panic!("{e}")))
        .collect();
    drop(held);
    // A Postgres restart, or a firewall forgetting idle links: every connection but the
    // one asking ends.
    let ended: i64 = sqlx::query_scalar(
        "select count(pg_terminate_backend(pid)) from pg_stat_activity
          where datname = current_database() and pid <> pg_backend_pid()",
    )
    .fetch_one(&state.db)
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    assert!(ended >= 7, "only {ended} connections ended");
    // After a quiet spell, eight at once again: every one the pool hands out answers.
    tokio::time::sleep(std::time::Duration::from_millis(1_200)).await;
    let acquired = futures::future::join_all((0..8).map(|_| state.db.acquire())).await;
    for (n, connection) in acquired.into_iter().enumerate() {
        let mut connection = connection.unwrap_or_else(|e| panic!("{e}"));
        let one: Result<i32, _> = sqlx::query_scalar("select 1")
            .fetch_one(&mut *connection)
            .await;
        assert_eq!(one.ok(), Some(1), "connection {n} was handed out dead");
    }
}

/// Every background worker the service starts (`startup::start_workers`), in that order.
const WORKERS: [&str; 8] = [
    "webhooks",
    "overstay_sweep",
    "rental_sweep",
    "occupancy_metrics",
    "credential_listener",
    "occupancy_reconciler",
    "rate_limit_pruner",
    "lanes",
];

#[tokio::test]
async fn sigterm_stops_the_server_then_every_background_worker_in_time() {
    let settings = test_settings();
    let port = free_port();
    let log = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("sigterm-{}.log", uuid::Uuid::new_v4().simple()));
    let mut child = start_binary(&settings, port, &[], Some(&log));
    {
        let client = reqwest::Client::new();
        wait_ready(&client, port).await;
    }

    let signalled = std::time::Instant::now();
    let kill = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap_or_else(|e| panic!("kill: {e}"));
    assert!(kill.success());
    let status = loop {
        if let Some(status) = child.try_wait().unwrap_or_else(|e| panic!("{e}")) {
            break status;
        }
        if signalled.elapsed() > std::time::Duration::from_secs(30) {
            let _ = child.kill();
            panic!("still running 30 s after SIGTERM");
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    assert!(status.success(), "exited with {status}");

    let logged = std::fs::read_to_string(&log).unwrap_or_else(|e| panic!("{e}"));
    let stopped = logged
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .find(|line| line["fields"]["message"] == "background workers stopped")
        .unwrap_or_else(|| panic!("no worker shutdown logged:\n{logged}"));
    assert_eq!(
        stopped["fields"]["stopped"],
        format!("{WORKERS:?}"),
        "{stopped}"
    );
    assert_eq!(stopped["fields"]["aborted"], "[]", "{stopped}");
}
