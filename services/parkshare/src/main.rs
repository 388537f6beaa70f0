//! The service's commands: `serve` (the default), `demo` (serve with the demo compound),
//! `migrate` (create and migrate the database, then exit: the Kubernetes Job) and
//! `lottery-verify FILE` (draw a published lottery again, offline: docs/lottery.md). Settings
//! come from `PARKSHARE_*` variables or flags (docs/configuration.md).

use std::net::TcpListener;

use anyhow::Context;
use clap::{Parser, Subcommand};
use parkshare::{demo, settings::Settings, startup, telemetry};

#[derive(Parser)]
#[command(name = "parkshare", version, args_conflicts_with_subcommands = true)]
/// Time-shared residential parking: barrier gates, shared spaces, regulated tariffs and the
/// settlement ledger.
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    /// Settings when no command is named (`serve`).
    #[command(flatten)]
    settings: Settings,
    /// The `migrate` command, as older deployment files name it.
    #[arg(long, hide = true)]
    migrate: bool,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the API (the default).
    Serve(Settings),
    /// Serve the API with the demo compound loaded (public and fake: never in production).
    Demo(Settings),
    /// Create the database and apply the migrations, then exit.
    Migrate(Settings),
    /// Draw a published lottery again from its JSON (a file, or - for stdin) and say whether
    /// the published result holds (exit 0) or not (exit 1); exit 2, with one line on standard
    /// error, when the file cannot be read or is not a published lottery. Reads no database or
    /// network.
    LotteryVerify {
        /// The lottery as published (`GET /public/lotteries/{id}`).
        file: String,
    },
}

fn main() -> anyhow::Result<()> {
    // An empty variable is an unset one (a deployment file's `PARKSHARE_X: ""`), as clap
    // would otherwise take it for a value. Done before any thread exists.
    for (name, value) in std::env::vars_os() {
        if value.is_empty() && name.to_string_lossy().starts_with("PARKSHARE_") {
            std::env::remove_var(name);
        }
    }
    let cli = Cli::parse();
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?
        .block_on(run(cli))
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let (settings, migrate_only) = match cli.command {
        Some(Command::LotteryVerify { file }) => {
            // 0 holds, 1 does not hold, 2 nothing to check: a script tells a tampered draw
            // from a file it could not read, and no backtrace is printed for either.
            let code = match parkshare::allocation::lottery::verify_file(&file) {
                Ok(true) => 0,
                Ok(false) => 1,
                Err(e) => {
                    eprintln!("lottery-verify: {e:#}");
                    2
                }
            };
            std::process::exit(code);
        }
        Some(Command::Migrate(settings)) => (settings, true),
        Some(Command::Demo(mut settings)) => {
            settings.demo = true;
            (settings, false)
        }
        Some(Command::Serve(settings)) => (settings, false),
        None => (cli.settings, cli.migrate),
    };
    telemetry::init(settings.log_json());
    tracing::info!(settings = ?settings, "starting parkshare");
    if migrate_only {
        startup::migrate(&settings).await?;
        tracing::info!("migrations applied");
        return Ok(());
    }
    let state = startup::connect(&settings).await?;
    if settings.demo {
        demo::load(&state)
            .await
            .map_err(|e| anyhow::anyhow!("loading the demo compound: {e:?}"))?;
    }
    let listener = TcpListener::bind(settings.listen)
        .with_context(|| format!("binding {}", settings.listen))?;
    tracing::info!(listen = %settings.listen, "serving");
    // Returns once the server has stopped and the background workers after it.
    startup::run(listener, state, &settings)
        .await?
        .serve()
        .await?;
    Ok(())
}
