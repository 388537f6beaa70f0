//! `parkshare-camsim`: plays a licence-plate camera against a running gate service.
//!
//! ```text
//! parkshare-camsim --url http://127.0.0.1:8080 --token <device secret> vzenith plate --plate 京A12345
//! parkshare-camsim --url … --token … vzenith heartbeat --mode comet --seconds 30
//! parkshare-camsim --url … --token … vzenith backlog --records 50
//! parkshare-camsim --url … --token … dahua register --device-id 5J0A1B2PAG00001
//! parkshare-camsim --url … --token … hikvision plate --plate 京A12345 --json
//! parkshare-camsim barrier --listen 0.0.0.0:8000 --user admin --password …
//! ```
//!
//! Each answer is printed as one JSON line: `{"status", "body"}`.

use std::time::Duration;

use chrono::Utc;
use clap::{Parser, Subcommand, ValueEnum};
use parkshare_camsim::{barrier, dahua, hikvision, vzenith, Lane, Reply};

#[derive(Parser)]
#[command(
    version,
    about = "Plays a licence-plate camera against a running gate service"
)]
struct Cli {
    /// The service's base URL.
    #[arg(long, env = "CAMSIM_URL", default_value = "http://127.0.0.1:8080")]
    url: String,
    /// The gate's device secret: the token of its push URL.
    #[arg(long, env = "CAMSIM_TOKEN", default_value = "")]
    token: String,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// A Vzenith/臻识 IVS camera.
    #[command(subcommand)]
    Vzenith(Vz),
    /// A Dahua ITSAPI camera.
    #[command(subcommand)]
    Dahua(Dh),
    /// A Hikvision ISAPI ANPR camera.
    #[command(subcommand)]
    Hikvision(Hik),
    /// Serve a camera's barrier endpoint (Hikvision ISAPI and Dahua openStrobe, digest login)
    /// until interrupted, printing each open.
    Barrier {
        #[arg(long, default_value = "127.0.0.1:8000")]
        listen: String,
        #[arg(long, default_value = "admin")]
        user: String,
        #[arg(long)]
        password: String,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum Mode {
    Normal,
    Comet,
}

#[derive(Subcommand)]
enum Vz {
    /// Push one plate result.
    Plate {
        #[arg(long, default_value = "-")]
        serial: String,
        #[arg(long)]
        plate: String,
        #[arg(long, default_value_t = 1)]
        plateid: u64,
        /// A record kept while the camera was offline.
        #[arg(long)]
        offline: bool,
        /// When the car passed, in minutes before now.
        #[arg(long, default_value_t = 0)]
        minutes_ago: i64,
    },
    /// Heartbeat in normal mode (every `--every-s`) or comet mode (back to back).
    Heartbeat {
        #[arg(long, default_value = "-")]
        serial: String,
        #[arg(long, value_enum, default_value = "normal")]
        mode: Mode,
        /// How long to keep heartbeating.
        #[arg(long, default_value_t = 30)]
        seconds: u64,
        /// Normal mode's interval (5 s with offline checking, 30 s without).
        #[arg(long, default_value_t = 5)]
        every_s: u64,
    },
    /// Replay an offline backlog of `--records` records, one per ContinuePushOffline.
    Backlog {
        #[arg(long, default_value = "-")]
        serial: String,
        #[arg(long, default_value_t = 20)]
        records: u32,
        #[arg(long, default_value_t = 1000)]
        first_plateid: u64,
    },
}

#[derive(Subcommand)]
enum Dh {
    /// Register (DeviceInfo).
    Register {
        #[arg(long)]
        device_id: String,
    },
    /// One KeepAlive.
    Keepalive {
        #[arg(long)]
        device_id: String,
    },
    /// Push one plate (TollgateInfo).
    Plate {
        #[arg(long)]
        device_id: String,
        #[arg(long)]
        plate: String,
        /// SnapInfo.Source: Video, Coil, Radar, or Offline.
        #[arg(long, default_value = "Video")]
        source: String,
        /// Send PlateNumber as hex.
        #[arg(long)]
        hex: bool,
        #[arg(long, default_value_t = 0)]
        minutes_ago: i64,
    },
}

#[derive(Subcommand)]
enum Hik {
    /// Push one ANPR alert.
    Plate {
        #[arg(long)]
        plate: String,
        /// macAddress (left out when not given).
        #[arg(long)]
        mac: Option<String>,
        #[arg(long)]
        uuid: Option<String>,
        /// JSON upload instead of multipart XML.
        #[arg(long)]
        json: bool,
        #[arg(long)]
        retransmission: bool,
        #[arg(long, default_value_t = 0)]
        minutes_ago: i64,
    },
}

fn print(reply: &Reply) {
    println!(
        "{}",
        serde_json::json!({"status": reply.status, "body": reply.body})
    );
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let lane = Lane::new(&cli.url, &cli.token)?;
    let ago = |minutes: i64| Utc::now() - chrono::Duration::minutes(minutes);
    match cli.command {
        Command::Vzenith(command) => vzenith_command(&lane, command, ago).await?,
        Command::Dahua(Dh::Register { device_id }) => {
            print(&dahua::register(&lane, &device_id).await?)
        }
        Command::Dahua(Dh::Keepalive { device_id }) => {
            print(&dahua::keep_alive(&lane, &device_id).await?)
        }
        Command::Dahua(Dh::Plate {
            device_id,
            plate,
            source,
            hex,
            minutes_ago,
        }) => {
            let plate = dahua::Plate {
                device_id,
                plate,
                captured_at: ago(minutes_ago),
                source,
                hex,
                colour: "Blue".into(),
            };
            print(&dahua::tollgate(&lane, &plate).await?);
        }
        Command::Hikvision(Hik::Plate {
            plate,
            mac,
            uuid,
            json,
            retransmission,
            minutes_ago,
        }) => {
            let alert = hikvision::Alert {
                uuid: uuid.unwrap_or_else(|| format!("camsim-{}", Utc::now().timestamp_micros())),
                mac,
                plate,
                captured_at: ago(minutes_ago),
                retransmission,
                json,
            };
            print(&hikvision::push(&lane, &alert).await?);
        }
        Command::Barrier {
            listen,
            user,
            password,
        } => {
            let barrier = barrier::serve(&listen, &user, &password).await?;
            eprintln!("barrier at {} (digest login {user})", barrier.url);
            let mut seen = 0;
            loop {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => break,
                    _ = tokio::time::sleep(Duration::from_millis(200)) => {}
                }
                let opens = barrier.opens();
                for open in &opens[seen..] {
                    println!("{}", serde_json::json!({"open": open, "at": Utc::now()}));
                }
                seen = opens.len();
            }
            barrier.stop().await;
        }
    }
    Ok(())
}

async fn vzenith_command(
    lane: &Lane,
    command: Vz,
    ago: impl Fn(i64) -> chrono::DateTime<Utc>,
) -> anyhow::Result<()> {
    match command {
        Vz::Plate {
            serial,
            plate,
            plateid,
            offline,
            minutes_ago,
        } => {
            let plate = vzenith::Plate {
                serial,
                plate,
                plateid,
                captured_at: ago(minutes_ago),
                offline,
                colour: 1,
                image_bytes: 200 * 1024,
            };
            print(&vzenith::push_plate(lane, &plate).await?);
        }
        Vz::Heartbeat {
            serial,
            mode,
            seconds,
            every_s,
        } => {
            let run = match mode {
                Mode::Comet => vzenith::comet(lane, &serial, Duration::from_secs(seconds)).await?,
                Mode::Normal => {
                    let count = u32::try_from(seconds / every_s.max(1))
                        .unwrap_or(u32::MAX)
                        .max(1);
                    vzenith::normal(lane, &serial, Duration::from_secs(every_s), count).await?
                }
            };
            println!(
                "{}",
                serde_json::json!({"heartbeats": run.heartbeats, "opens": run.opens})
            );
        }
        Vz::Backlog {
            serial,
            records,
            first_plateid,
        } => {
            let backlog: Vec<_> = (0..records)
                .map(|n| vzenith::Plate {
                    serial: serial.clone(),
                    plate: format!("京A{:05}", n % 100_000),
                    plateid: first_plateid + u64::from(n),
                    captured_at: ago(i64::from(records - n) * 10),
                    offline: true,
                    colour: 1,
                    image_bytes: 0,
                })
                .collect();
            let replay = vzenith::replay_backlog(lane, &backlog).await?;
            println!(
                "{}",
                serde_json::json!({"records": records, "acknowledged": replay.acknowledged,
                                   "stalled": replay.stalled})
            );
        }
    }
    Ok(())
}
