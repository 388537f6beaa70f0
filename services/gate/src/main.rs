//! Loads settings, starts telemetry, wires the app. `--demo` loads the demo compound;
//! `--migrate` only creates and migrates the database, then exits (the Kubernetes Job);
//! `lottery-verify FILE` draws a published lottery again, offline (docs/lottery.md).

use std::net::TcpListener;

use anyhow::Context;
use parkshare_gate::{demo, settings::Settings, startup, telemetry};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    const USAGE: &str = "usage: parkshare-gate [--demo] | --migrate | lottery-verify FILE\n\
        Serves the API (settings from PARKSHARE_* variables, docs/configuration.md); --demo loads \
        the demo compound; --migrate applies the migrations and exits; lottery-verify draws a \
        published lottery again, offline (docs/lottery.md).";
    let verb = args.get(1).map(String::as_str);
    match verb {
        Some("--help" | "-h") => {
            println!("{USAGE}");
            return Ok(());
        }
        None | Some("--demo" | "--migrate") if args.len() <= 2 => {}
        Some("lottery-verify") if args.len() <= 3 => {}
        // An unknown word must not start a server with default settings.
        _ => {
            eprintln!("{USAGE}");
            std::process::exit(2);
        }
    }
    if verb == Some("lottery-verify") {
        // Offline: needs no settings, database or network (docs/lottery.md).
        let Some(path) = args.get(2) else {
            anyhow::bail!("usage: parkshare-gate lottery-verify FILE (a published lottery as JSON, - for stdin)");
        };
        let holds = parkshare_gate::allocation::lottery::verify_file(path)?;
        std::process::exit(if holds { 0 } else { 1 });
    }
    let settings = Settings::from_env()?;
    telemetry::init(settings.log_json);
    tracing::info!(settings = ?settings, "starting parkshare-gate");
    if std::env::args().any(|a| a == "--migrate") {
        startup::migrate(&settings).await?;
        tracing::info!("migrations applied");
        return Ok(());
    }
    let state = startup::connect(&settings).await?;
    if parkshare_gate::settings::demo_requested() {
        demo::load(&state)
            .await
            .map_err(|e| anyhow::anyhow!("loading the demo compound: {e:?}"))?;
    }
    let listener = TcpListener::bind(settings.listen)
        .with_context(|| format!("binding {}", settings.listen))?;
    tracing::info!(listen = %settings.listen, "serving");
    startup::run(listener, state, &settings).await?.await?;
    Ok(())
}
