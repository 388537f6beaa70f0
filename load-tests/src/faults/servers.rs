//! The fault matrix's own servers: a Postgres cluster initialised into a temporary directory on
//! its own port, a Redis on its own port without persistence, and the gate service's replicas.
//! Every process is started and stopped by its PID; never the machine's shared servers.

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

/// How old a live read the replicas decide live: the scenario backdates entries (two days).
const LIVE_READ_AGE_MAX_S: &str = "172800";

/// A free TCP port on loopback (bound, then released).
pub fn free_port() -> anyhow::Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(listener.local_addr()?.port())
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

fn listening(port: u16) -> bool {
    TcpStream::connect_timeout(
        &std::net::SocketAddr::from(([127, 0, 0, 1], port)),
        Duration::from_millis(200),
    )
    .is_ok()
}

/// Sends `signal` (`KILL`, `TERM`, `STOP`, `CONT`) to `pid`.
pub fn signal(pid: u32, signal: &str) {
    let _ = Command::new("kill")
        .args([format!("-{signal}"), pid.to_string()])
        .stderr(Stdio::null())
        .status();
}

/// A Postgres cluster of the run's own: `initdb` into `dir`, served on `port`.
pub struct OwnPostgres {
    dir: PathBuf,
    pub port: u16,
    bin: PathBuf,
}

impl OwnPostgres {
    pub fn start(root: &Path) -> anyhow::Result<OwnPostgres> {
        let bin = Command::new("pg_config")
            .arg("--bindir")
            .output()
            .ok()
            .map(|o| PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()))
            .filter(|p| p.join("initdb").exists())
            .unwrap_or_else(|| PathBuf::from("/usr/lib/postgresql/15/bin"));
        let dir = root.join("pg");
        std::fs::create_dir_all(&dir)?;
        let pg = OwnPostgres {
            dir,
            port: free_port()?,
            bin,
        };
        // initdb refuses to run as root: the cluster belongs to the postgres user then.
        if is_root() {
            pg.run(
                "chown",
                &["-R", "postgres:postgres", &root.display().to_string()],
                false,
            )?;
        }
        let data = pg.data().display().to_string();
        pg.run(
            &pg.bin.join("initdb").display().to_string(),
            &["-D", &data, "-A", "trust", "-U", "postgres", "--no-sync"],
            true,
        )?;
        pg.ctl("start", None)?;
        Ok(pg)
    }

    fn data(&self) -> PathBuf {
        self.dir.join("data")
    }

    /// The server's URL, without a database.
    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}", self.port)
    }

    pub fn start_again(&self) -> anyhow::Result<()> {
        self.ctl("start", None)
    }

    /// `fast` (a clean shutdown: sessions are ended, a checkpoint is written) or `immediate`
    /// (every process quits at once, as in a crash: recovery runs at the next start).
    pub fn stop(&self, mode: &str) -> anyhow::Result<()> {
        self.ctl("stop", Some(mode))
    }

    fn ctl(&self, action: &str, mode: Option<&str>) -> anyhow::Result<()> {
        let data = self.data().display().to_string();
        let log = self.dir.join("log").display().to_string();
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200",
            self.port,
            self.dir.display()
        );
        let pg_ctl = self.bin.join("pg_ctl").display().to_string();
        let mut args = vec!["-D", &data, "-l", &log, "-w", "-t", "60"];
        match action {
            "start" => args.extend(["-o", &options, "start"]),
            _ => args.extend(["-m", mode.unwrap_or("immediate"), "stop"]),
        }
        self.run(&pg_ctl, &args, true)
    }

    fn run(&self, program: &str, args: &[&str], as_postgres: bool) -> anyhow::Result<()> {
        let mut command = if as_postgres && is_root() {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--", program]);
            c
        } else {
            Command::new(program)
        };
        let out = command
            .args(args)
            .stdin(Stdio::null())
            .output()
            .with_context(|| format!("running {program}"))?;
        if !out.status.success() {
            bail!(
                "{program} {args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(())
    }

    /// Ends every client connection to the service's database (`pg_terminate_backend`).
    pub fn terminate_backends(&self, database: &str) {
        let sql = format!(
            "select count(pg_terminate_backend(pid)) from pg_stat_activity \
             where datname = '{database}' and pid <> pg_backend_pid()"
        );
        let _ = Command::new("psql")
            .args([
                "-h",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-U",
                "postgres",
            ])
            .args(["-d", "postgres", "-qAtc", &sql])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

impl Drop for OwnPostgres {
    fn drop(&mut self) {
        let _ = self.stop("immediate");
    }
}

/// A Redis of the run's own on `port`, without persistence: what it holds is lost when it dies.
pub struct OwnRedis {
    child: Option<Child>,
    pub port: u16,
}

impl OwnRedis {
    pub fn start() -> anyhow::Result<OwnRedis> {
        let mut redis = OwnRedis {
            child: None,
            port: free_port()?,
        };
        redis.start_again()?;
        Ok(redis)
    }

    /// Starts an empty Redis on the same port (after [`OwnRedis::kill`]).
    pub fn start_again(&mut self) -> anyhow::Result<()> {
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("redis-server")?;
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if listening(self.port) {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        bail!("redis-server did not listen on {}", self.port)
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Every call hangs: the process stops without closing its sockets.
    pub fn hang(&self) {
        if let Some(pid) = self.pid() {
            signal(pid, "STOP");
        }
    }

    pub fn resume(&self) {
        if let Some(pid) = self.pid() {
            signal(pid, "CONT");
        }
    }

    /// kill -9: everything it held is gone.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            signal(child.id(), "CONT");
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    pub fn cli(&self, args: &[&str]) {
        let _ = Command::new("redis-cli")
            .args(["-h", "127.0.0.1", "-p", &self.port.to_string()])
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

impl Drop for OwnRedis {
    fn drop(&mut self) {
        self.kill();
    }
}

/// One process of the gate service.
pub struct Replica {
    pub name: &'static str,
    pub port: u16,
    bin: PathBuf,
    env: Vec<(String, String)>,
    log: PathBuf,
    child: Option<Child>,
    /// Starts so far (a restart appends to the same log).
    pub starts: u32,
}

impl Replica {
    pub fn new(
        name: &'static str,
        bin: &Path,
        env: Vec<(String, String)>,
        log: PathBuf,
    ) -> anyhow::Result<Replica> {
        Ok(Replica {
            name,
            port: free_port()?,
            bin: bin.to_owned(),
            env,
            log,
            child: None,
            starts: 0,
        })
    }

    pub fn base_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Starts the process (`failpoint`: kill itself after that many exits' commits) and waits
    /// until it is ready.
    pub async fn start(&mut self, failpoint: Option<u64>) -> anyhow::Result<()> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)?;
        let mut command = Command::new(&self.bin);
        for (name, _) in std::env::vars() {
            if name.starts_with("PARKSHARE_") {
                command.env_remove(name);
            }
        }
        command
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .env("PARKSHARE_LISTEN", format!("127.0.0.1:{}", self.port))
            // The scenario simulates stays by backdating entries up to hours: live reads that
            // old are a wrong camera clock in production (recorded, not opened).
            .env("PARKSHARE_LIVE_READ_AGE_MAX_S", LIVE_READ_AGE_MAX_S)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log);
        if let Some(n) = failpoint {
            command.env("PARKSHARE_FAILPOINT_KILL_BEFORE_EXIT_COMMIT", n.to_string());
        }
        self.child = Some(command.spawn().context("starting the gate service")?);
        self.starts += 1;
        let http = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            let ready = http
                .get(format!("{}/readyz", self.base_url()))
                .timeout(Duration::from_secs(1))
                .send()
                .await
                .is_ok_and(|r| r.status().is_success());
            if ready {
                return Ok(());
            }
            if !self.alive() {
                bail!(
                    "replica {} exited at start (log {})",
                    self.name,
                    self.log.display()
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        bail!("replica {} was not ready within 60 s", self.name)
    }

    pub fn alive(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }

    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// SIGTERM, and waits (up to 30 s, then SIGKILL) for the graceful shutdown.
    pub async fn terminate(&mut self) -> Duration {
        let started = Instant::now();
        if let Some(mut child) = self.child.take() {
            signal(child.id(), "TERM");
            while started.elapsed() < Duration::from_secs(30) {
                if !matches!(child.try_wait(), Ok(None)) {
                    return started.elapsed();
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        started.elapsed()
    }

    /// Forgets a process that ended by itself (reaps it).
    pub fn reap(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.wait();
        }
    }
}

impl Drop for Replica {
    fn drop(&mut self) {
        self.kill();
    }
}
