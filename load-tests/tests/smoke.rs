//! The suite's smoke run, part of CI so that it cannot rot: the real service on a random port
//! (fresh database, own Redis prefix), five seconds of the car mix at a low rate, then the
//! verification. It checks correctness only — never how fast.

use std::net::TcpListener;

use parkshare::settings::Settings;
use parkshare::startup;
use parkshare_load::{attack, seed, verify, AttackConfig, Mix, SeedConfig};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_short_run_of_the_car_mix_is_verified_correct() {
    let id = uuid::Uuid::new_v4().simple().to_string();
    let mut settings = Settings::from_env().unwrap_or_else(|e| panic!("settings: {e}"));
    let pg = std::env::var("PARKSHARE_TEST_PG")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".to_owned());
    settings.database_url = format!("{pg}/ps_load_{id}");
    if let Ok(redis) = std::env::var("PARKSHARE_TEST_REDIS") {
        settings.redis_url = redis;
    }
    settings.redis_prefix = format!("psload:{id}");
    settings.operator_token = Some(format!("operator-{id}").into());
    settings.gate_decision_budget_ms = 60_000;
    // The scenario simulates stays by backdating entries up to hours; in production a live
    // read that old is a wrong camera clock (recorded, not opened).
    settings.live_read_age_max_s = 2 * 86_400;
    let state = startup::connect(&settings)
        .await
        .unwrap_or_else(|e| panic!("connect: {e:?}"));
    let listener = TcpListener::bind("127.0.0.1:0").unwrap_or_else(|e| panic!("bind: {e}"));
    let base_url = format!(
        "http://{}",
        listener.local_addr().unwrap_or_else(|e| panic!("{e}"))
    );
    let server = startup::run(listener, state, &settings)
        .await
        .unwrap_or_else(|e| panic!("run: {e:?}"));
    tokio::spawn(server.serve());

    let world = seed(&SeedConfig {
        // One place: with ~120 cars of which 12 % head for the peak lot, it fills in all but
        // about one run in 10⁵.
        peak_capacity: 1,
        permit_holders: 16,
        ..SeedConfig::small(&base_url, &format!("operator-{id}"))
    })
    .await
    .unwrap_or_else(|e| panic!("seed: {e:?}"));
    let report = attack(
        &world,
        &AttackConfig {
            mix: Mix::Cars,
            rate: 60.0,
            seconds: 5,
            users: 16,
            report_file: None,
            goose_tables: false,
        },
    )
    .await
    .unwrap_or_else(|e| panic!("attack: {e:?}"));

    // The mix really ran: cars came in, left, paid, and the peak lot filled up.
    let seen = |prefix: &str| -> u64 {
        report
            .outcomes
            .iter()
            .filter(|(k, _)| k.starts_with(prefix))
            .map(|(_, n)| n)
            .sum()
    };
    assert!(report.requests >= 150, "{report:?}");
    assert!(seen("entry:visitor_admitted") > 0, "{report:?}");
    assert!(seen("exit:") > 0, "{report:?}");
    assert!(
        seen("entry:lot_full") > 0,
        "the peak lot filled: {report:?}"
    );
    // No error of any kind: no 5xx, no transport failure, no decision the mix did not expect.
    assert!(report.errors.is_empty(), "{:?}", report.errors);

    let verdict = verify(&world, &settings.database_url, &report.acked)
        .await
        .unwrap_or_else(|e| panic!("verify: {e:?}"));
    assert!(verdict.failures.is_empty(), "{verdict:?}");
    assert_eq!(verdict.acknowledged, report.acked.len());
    assert!(verdict.acknowledged > 0 && verdict.lots_checked == world.lots.len());
}
