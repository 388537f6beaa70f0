//! `parkshare-load`: drives a running gate service. See load-tests/README.md.

use clap::{Parser, Subcommand, ValueEnum};
use parkshare_load::{attack, seed, verify, AttackConfig, Mix, Report, SeedConfig, World};

#[derive(Parser)]
#[command(about = "Load tests of the parkshare gate's entry/exit core")]
struct Cli {
    /// The running gate service.
    #[arg(long, default_value = "http://127.0.0.1:8080", global = true)]
    host: String,
    /// Its operator token (creates the run's tenant).
    #[arg(
        long,
        env = "PARKSHARE_OPERATOR_TOKEN",
        global = true,
        default_value = ""
    )]
    operator_token: String,
    /// Its database, for the post-run verification.
    #[arg(
        long,
        env = "PARKSHARE_DATABASE_URL",
        global = true,
        default_value = "postgres://postgres@127.0.0.1:5432/parkshare"
    )]
    database_url: String,
    /// Goose users standing ready (open loop: enough that a slot rarely waits for one).
    #[arg(long, default_value_t = 256, global = true)]
    users: usize,
    #[arg(long, default_value_t = 4, global = true)]
    compounds: usize,
    #[arg(long, default_value_t = 3, global = true)]
    lots_per_compound: usize,
    /// Goose's HTML report of the (last) run.
    #[arg(long, global = true)]
    report_file: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, ValueEnum)]
enum MixArg {
    Cars,
    FreeStays,
    Trivial,
}

impl From<MixArg> for Mix {
    fn from(m: MixArg) -> Mix {
        match m {
            MixArg::Cars => Mix::Cars,
            MixArg::FreeStays => Mix::FreeStays,
            MixArg::Trivial => Mix::Trivial,
        }
    }
}

#[derive(Subcommand)]
enum Command {
    /// One run at a fixed arrival rate, then the verification.
    Run {
        #[arg(long, default_value_t = 500.0)]
        rate: f64,
        #[arg(long, default_value_t = 30)]
        seconds: usize,
        #[arg(long, value_enum, default_value = "cars")]
        mix: MixArg,
    },
    /// Raises the rate step by step until the service falls behind; prints the maximum.
    FindMax {
        #[arg(long, value_enum, default_value = "cars")]
        mix: MixArg,
        #[arg(long, default_value_t = 200.0)]
        start: f64,
        #[arg(long, default_value_t = 10)]
        step_seconds: usize,
        /// A step fails above this p99: past the maximum, an open-loop queue grows without
        /// bound and its p99 with it.
        #[arg(long, default_value_t = 250.0)]
        p99_limit_ms: f64,
    },
    /// The fault matrix (docs/faults.md): starts its own Postgres, Redis and two replicas of
    /// `--gate-bin` (built with the `failpoints` feature), injects one fault per scenario
    /// under load, verifies, prints the table; fails if any scenario failed.
    Faults {
        #[arg(long)]
        gate_bin: std::path::PathBuf,
        #[arg(long, default_value_t = 48)]
        cars: usize,
        #[arg(long, default_value_t = 4)]
        calm_seconds: u64,
        /// Only the scenarios whose name contains this (repeatable).
        #[arg(long)]
        only: Vec<String>,
        /// Keep the temporary directory (replica logs, data) even when every scenario passed.
        #[arg(long)]
        keep: bool,
        /// The replicas' reconciler interval; Redis must equal Postgres within two of them
        /// (plus 5 s) after the load.
        #[arg(long, default_value_t = 10_000)]
        reconcile_ms: u64,
    },
    /// The whole measurement: ceiling, maximum, a run at 70 % of it, verification.
    Profile {
        #[arg(long, default_value_t = 30)]
        seconds: usize,
        #[arg(long, default_value_t = 10)]
        step_seconds: usize,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let seed_config = SeedConfig {
        compounds: cli.compounds,
        lots_per_compound: cli.lots_per_compound,
        permit_holders: cli.users,
        ..SeedConfig::small(&cli.host, &cli.operator_token)
    };
    let run = |mix: Mix, rate: f64, seconds: usize| AttackConfig {
        mix,
        rate,
        seconds,
        users: cli.users,
        report_file: cli.report_file.clone(),
        goose_tables: false,
    };
    match cli.command {
        Command::Faults {
            gate_bin,
            cars,
            calm_seconds,
            only,
            keep,
            reconcile_ms,
        } => {
            let config = parkshare_load::faults::MatrixConfig {
                gate_bin,
                cars,
                calm_seconds,
                only,
                keep,
                reconcile_ms,
            };
            let rows = parkshare_load::faults::run_matrix(&config).await?;
            println!("{}", parkshare_load::faults::table(&rows));
            for row in &rows {
                println!(
                    "{}: {} posts, {} fail-open answers, {} reads never answered, slowest answer of a lane that opens anyway {} ms",
                    row.scenario,
                    row.attempts,
                    row.fail_open,
                    row.unanswered,
                    row.max_fail_open.as_millis()
                );
                for note in &row.notes {
                    println!("  {note}");
                }
            }
            if rows.iter().any(|r| !r.failures.is_empty()) {
                anyhow::bail!("the fault matrix failed");
            }
        }
        Command::Run { rate, seconds, mix } => {
            let world = seed(&seed_config).await?;
            let report = attack(&world, &run(mix.into(), rate, seconds)).await?;
            finish(&world, &cli.database_url, &report).await?;
        }
        Command::FindMax {
            mix,
            start,
            step_seconds,
            p99_limit_ms,
        } => {
            let world = seed(&seed_config).await?;
            let best =
                find_max(&world, mix.into(), start, step_seconds, p99_limit_ms, &run).await?;
            println!("maximum: {}", best.line());
        }
        Command::Profile {
            seconds,
            step_seconds,
        } => {
            let world = seed(&seed_config).await?;
            println!("# ceiling: GET /healthz");
            let ceiling = find_max(&world, Mix::Trivial, 2000.0, step_seconds, 250.0, &run).await?;
            println!("# maximum: entry/exit events");
            let max = find_max(&world, Mix::Cars, 100.0, step_seconds, 250.0, &run).await?;
            let at70 = 0.7 * max.achieved_rate;
            println!("# {seconds} s at 70 % of the maximum ({at70:.0}/s)");
            let report = attack(&world, &run(Mix::Cars, at70, seconds)).await?;
            println!("{}", report.line());
            println!(
                "ceiling {:.0}/s, maximum {:.0}/s ({:.1} % of the ceiling), p99 at 70 %: {:.2} ms",
                ceiling.achieved_rate,
                max.achieved_rate,
                100.0 * max.achieved_rate / ceiling.achieved_rate.max(1.0),
                report.p99_ms
            );
            finish(&world, &cli.database_url, &report).await?;
        }
    }
    Ok(())
}

/// Steps up by a quarter until a step has errors, misses its rate by more than 5 % or its
/// p99 passes the limit; returns the last step that held.
async fn find_max(
    world: &World,
    mix: Mix,
    start: f64,
    step_seconds: usize,
    p99_limit_ms: f64,
    run: &impl Fn(Mix, f64, usize) -> AttackConfig,
) -> anyhow::Result<Report> {
    let mut rate = start;
    let mut best: Option<Report> = None;
    loop {
        let report = attack(world, &run(mix, rate, step_seconds)).await?;
        let held = report.error_count() == 0
            && report.achieved_rate >= 0.95 * rate
            && report.p99_ms <= p99_limit_ms;
        println!(
            "{} {}",
            report.line(),
            if held { "held" } else { "fell behind" }
        );
        if !held {
            break;
        }
        best = Some(report);
        rate *= 1.25;
    }
    best.ok_or_else(|| anyhow::anyhow!("even {start}/s was too much; lower --start"))
}

async fn finish(world: &World, database_url: &str, report: &Report) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(report)?);
    let verdict = verify(world, database_url, &report.acked).await?;
    println!("{}", serde_json::to_string_pretty(&verdict)?);
    if !verdict.failures.is_empty() {
        anyhow::bail!("verification failed");
    }
    Ok(())
}
