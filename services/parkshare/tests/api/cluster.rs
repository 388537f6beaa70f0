//! The occupancy core on a real Redis Cluster: three masters started on loopback ports for
//! this test, then the gate's capacity race run against them.

use std::collections::HashMap;
use std::net::TcpListener;
use std::time::Duration;

use tokio::process::{Child, Command};

use crate::helpers::{ago, spawn_with, str_of, test_settings};

/// Three cluster masters; killed when dropped.
struct Cluster {
    _nodes: Vec<Child>,
    dir: std::path::PathBuf,
    ports: Vec<u16>,
}

impl Drop for Cluster {
    fn drop(&mut self) {
        // `kill_on_drop` stops the servers; their files go too.
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A port free for the node and for its cluster bus (port + 10000).
fn free_port() -> u16 {
    loop {
        let Ok(listener) = TcpListener::bind("127.0.0.1:0") else {
            continue;
        };
        let port = listener.local_addr().map(|a| a.port()).unwrap_or(0);
        if (1024..55_000).contains(&port) && TcpListener::bind(("127.0.0.1", port + 10_000)).is_ok()
        {
            return port;
        }
    }
}

async fn redis_cli(args: &[String]) -> (bool, String) {
    let out = Command::new("redis-cli")
        .args(args)
        .output()
        .await
        .unwrap_or_else(|e| panic!("redis-cli: {e}"));
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

async fn start_cluster() -> Cluster {
    let dir = std::env::temp_dir().join(format!(
        "parkshare-cluster-{}",
        uuid::Uuid::new_v4().simple()
    ));
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{e}"));
    let ports: Vec<u16> = (0..3).map(|_| free_port()).collect();
    let mut nodes = Vec::new();
    for port in &ports {
        let child = Command::new("redis-server")
            .args([
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--cluster-enabled",
                "yes",
            ])
            .args([
                "--cluster-config-file",
                &format!("nodes-{port}.conf"),
                "--cluster-node-timeout",
                "2000",
            ])
            .args(["--save", "", "--appendonly", "no", "--dir"])
            .arg(&dir)
            .stdout(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("redis-server: {e}"));
        nodes.push(child);
    }
    for port in &ports {
        for _ in 0..100 {
            if redis_cli(&["-p".into(), port.to_string(), "ping".into()])
                .await
                .1
                .contains("PONG")
            {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    let mut create: Vec<String> = vec!["--cluster".into(), "create".into()];
    create.extend(ports.iter().map(|p| format!("127.0.0.1:{p}")));
    create.extend([
        "--cluster-replicas".into(),
        "0".into(),
        "--cluster-yes".into(),
    ]);
    let (ok, out) = redis_cli(&create).await;
    assert!(ok, "cluster create failed: {out}");
    for _ in 0..200 {
        let (_, info) = redis_cli(&[
            "-p".into(),
            ports[0].to_string(),
            "cluster".into(),
            "info".into(),
        ])
        .await;
        if info.contains("cluster_state:ok") {
            return Cluster {
                _nodes: nodes,
                dir,
                ports,
            };
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the cluster did not become ready");
}

#[tokio::test]
async fn the_capacity_race_holds_on_a_three_master_redis_cluster() {
    let cluster = start_cluster().await;
    let mut settings = test_settings();
    settings.redis_cluster = parkshare::settings::Switch::On;
    settings.redis_url = cluster
        .ports
        .iter()
        .map(|p| format!("redis://127.0.0.1:{p}"))
        .collect::<Vec<_>>()
        .join(",");
    let app = spawn_with(settings).await;
    // Ten lots, so that their slots spread over the masters (all on one: 3 in 59,049).
    let mut sites = Vec::new();
    for _ in 0..10 {
        sites.push(app.site(10).await);
    }
    let at = ago(10);
    let reads = sites.iter().enumerate().flat_map(|(s, site)| {
        let app = &app;
        (0..30).map(move |n| async move {
            let gate = &site.entries[n % site.entries.len()];
            let (status, answer) = app
                .read_with_id(gate, &format!("京C{s}{n:04}"), at, &format!("race-{s}-{n}"))
                .await;
            (s, status, str_of(&answer, "reason").to_owned())
        })
    });
    let answers = futures::future::join_all(reads).await;
    let mut by_site: HashMap<(usize, String), usize> = HashMap::new();
    for (s, status, reason) in answers {
        assert_eq!(status, 200, "{reason}");
        *by_site.entry((s, reason)).or_default() += 1;
    }
    for (s, site) in sites.iter().enumerate() {
        assert_eq!(
            by_site.get(&(s, "visitor_admitted".into())),
            Some(&10),
            "{by_site:?}"
        );
        assert_eq!(
            by_site.get(&(s, "lot_full".into())),
            Some(&20),
            "{by_site:?}"
        );
        let occupancy = app.occupancy(&site.lot).await;
        assert_eq!(occupancy["in_sync"], true, "{occupancy}");
        assert_eq!(occupancy["redis_counts"]["visitor"], 10);
    }
    // The lots' keys really are spread over more than one master.
    let mut masters_with_keys = 0;
    for port in &cluster.ports {
        let (_, size) = redis_cli(&["-p".into(), port.to_string(), "dbsize".into()]).await;
        if size.trim().parse::<i64>().unwrap_or(0) > 0 {
            masters_with_keys += 1;
        }
    }
    assert!(masters_with_keys >= 2, "all keys on one master");
}
