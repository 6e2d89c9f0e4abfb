//! The real `onekey` binary, started for a simulated day: its own SQLite file (or the database
//! given), the embedded broker with an account for the simulated devices and apps, every listener
//! on a free loopback port, SMS to the simulated SMS centre, and the compressed clock.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::Context;
use tokio::process::{Child, Command};

use crate::clock::Ms;

/// The day's admin account.
pub const ADMIN: (&str, &str) = ("admin", "day-admin-pass");
/// The embedded broker's account for the simulated devices and apps.
pub const BROKER_USER: (&str, &str) = ("sim", "sim-broker-pass");

/// Sessions last two days of the clock: a day's people sign in once.
const SESSION_S: i64 = 172_800;

/// How to start the server.
#[derive(Debug, Clone)]
pub struct ServerOptions {
    /// The `onekey` binary.
    pub binary: PathBuf,
    /// A folder for its database, ready file and log.
    pub dir: PathBuf,
    /// A database URL instead of a fresh SQLite file in `dir`.
    pub database: Option<String>,
    /// Clock compression.
    pub scale: f64,
    /// The clock's reading at start.
    pub start_ms: Ms,
    /// `host:port` of the SMS centre.
    pub smsc: String,
    /// The web listener (default: any free loopback port).
    pub http_addr: Option<String>,
}

/// A running server.
pub struct Server {
    child: Child,
    /// Listener name → `host:port`, from its ready file.
    pub addrs: HashMap<String, String>,
    /// Its log file.
    pub log: PathBuf,
}

/// The `onekey` binary next to this one (both are built into the same target folder).
pub fn sibling_binary() -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    let mut dir = exe.parent()?.to_path_buf();
    for _ in 0..2 {
        let candidate = dir.join(format!("onekey{}", std::env::consts::EXE_SUFFIX));
        if candidate.is_file() {
            return Some(candidate);
        }
        // From a test executable in `target/<profile>/deps/`.
        dir = dir.parent()?.to_path_buf();
    }
    None
}

/// The `onekey` binary to run: `explicit`, else the one next to this one; when `onekey-sim` runs
/// under `cargo run` and there is none yet, it is built first (same profile).
pub fn locate(explicit: Option<PathBuf>) -> anyhow::Result<PathBuf> {
    if let Some(p) = explicit {
        return Ok(p);
    }
    if let Some(p) = sibling_binary() {
        return Ok(p);
    }
    let cargo = std::env::var_os("CARGO")
        .context("no onekey binary next to onekey-sim; build it (cargo build --bin onekey) or pass --server PATH")?;
    let release = std::env::current_exe()
        .map(|p| p.components().any(|c| c.as_os_str() == "release"))
        .unwrap_or(false);
    eprintln!("onekey-sim: building the onekey server first");
    let mut build = std::process::Command::new(cargo);
    build.args(["build", "-p", "onekey", "--bin", "onekey"]);
    if release {
        build.arg("--release");
    }
    anyhow::ensure!(build.status()?.success(), "building onekey failed");
    sibling_binary().context("onekey was built but is not next to onekey-sim")
}

impl Server {
    /// Starts the server and waits for its ready file.
    pub async fn start(o: &ServerOptions) -> anyhow::Result<Server> {
        std::fs::create_dir_all(&o.dir)?;
        let ready = o.dir.join("ready.json");
        let _ = std::fs::remove_file(&ready);
        let log = o.dir.join("server.log");
        let database = o
            .database
            .clone()
            .unwrap_or_else(|| format!("sqlite://{}", o.dir.join("day.db").display()));
        let env: Vec<(&str, String)> = vec![
            ("ONEKEY_DATABASE_URL", database),
            (
                "ONEKEY_SECRETS_KEY_FILE",
                o.dir.join("secrets.key").display().to_string(),
            ),
            (
                "ONEKEY_HTTP_ADDR",
                o.http_addr.clone().unwrap_or_else(|| "127.0.0.1:0".into()),
            ),
            ("ONEKEY_DEVICE_ADDR", "127.0.0.1:0".into()),
            ("ONEKEY_GT06_ADDR", "127.0.0.1:0".into()),
            ("ONEKEY_WATCH_ADDR", "127.0.0.1:0".into()),
            ("ONEKEY_H02_ADDR", "127.0.0.1:0".into()),
            ("ONEKEY_SIA_ADDR", "127.0.0.1:0".into()),
            ("ONEKEY_MQTT_LISTEN", "127.0.0.1:0".into()),
            ("ONEKEY_BOOTSTRAP_ADMIN", format!("{}:{}", ADMIN.0, ADMIN.1)),
            (
                "ONEKEY_LOG",
                "info,sqlx=warn,tower_http=warn,rumqttd=warn".into(),
            ),
            ("ONEKEY_MQTT__BROKER__USERS__SIM", BROKER_USER.1.into()),
            // The day's clock: every policy duration, timer and SLA runs on it.
            ("ONEKEY_CLOCK__SCALE", o.scale.to_string()),
            ("ONEKEY_CLOCK__START_MS", o.start_ms.to_string()),
            // Wall-clock cadences short enough for a compressed day.
            ("ONEKEY_DISPATCH__TIMER_POLL_MS", "20".into()),
            // Shifts start and end on the hour: a reload every five minutes of the clock.
            (
                "ONEKEY_DISPATCH__RESPONDER_REFRESH_MS",
                ((300_000.0 / o.scale).max(1000.0) as u64).to_string(),
            ),
            ("ONEKEY_DISPATCH__SILENCE_CHECK_MS", "1000".into()),
            ("ONEKEY_DISPATCH__RECONCILE_MS", "2000".into()),
            ("ONEKEY_DISPATCH__RECONCILE_GRACE_MS", "3000".into()),
            // Sessions for a whole day and thousands of made-up accounts: no need for full cost.
            ("ONEKEY_AUTH__SESSION_IDLE_S", SESSION_S.to_string()),
            ("ONEKEY_AUTH__SESSION_MAX_S", SESSION_S.to_string()),
            ("ONEKEY_AUTH__HASH_MEMORY_KIB", "1024".into()),
            ("ONEKEY_AUTH__HASH_ITERATIONS", "1".into()),
            ("ONEKEY_LOGIN_BURST", "100000".into()),
            ("ONEKEY_LOGIN_EVERY_MS", "1".into()),
            // Family texts and SMS offers to the simulated SMS centre.
            ("ONEKEY_NOTIFY__SMS__PROVIDER", "smpp".into()),
            ("ONEKEY_NOTIFY__SMS__SMPP__ADDR", o.smsc.clone()),
            ("ONEKEY_NOTIFY__SMS__SMPP__SYSTEM_ID", "onekey".into()),
            ("ONEKEY_NOTIFY__SMS__SMPP__PASSWORD", "sim-smsc".into()),
        ];
        let mut cmd = Command::new(&o.binary);
        cmd.arg("serve")
            .arg("--ready-file")
            .arg(&ready)
            .current_dir(&o.dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log)?)
            .kill_on_drop(true);
        // Its own process group: a Ctrl-C at the terminal ends the day (which then reads the
        // server's records), not the server under it.
        #[cfg(unix)]
        cmd.process_group(0);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd
            .spawn()
            .with_context(|| format!("cannot start {}", o.binary.display()))?;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        let addrs = loop {
            if let Some(map) = read_ready(&ready) {
                break map;
            }
            if let Some(status) = child.try_wait()? {
                anyhow::bail!(
                    "onekey exited with {status} before it was ready; its log: {}",
                    tail(&log)
                );
            }
            if tokio::time::Instant::now() > deadline {
                anyhow::bail!("onekey was not ready within 60 s; its log: {}", tail(&log));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        Ok(Server { child, addrs, log })
    }

    /// The server's clock now, read from a fresh admin session's expiry (sessions last
    /// `ONEKEY_AUTH__SESSION_MAX_S` of its clock), so that the simulation's clock can be set to it.
    pub async fn clock_now(&self, http: &reqwest::Client) -> anyhow::Result<Ms> {
        let base = format!("http://{}", self.addr("http")?);
        let body: serde_json::Value = http
            .post(format!("{base}/api/v1/auth/login"))
            .json(&serde_json::json!({ "name": ADMIN.0, "password": ADMIN.1 }))
            .send()
            .await?
            .json()
            .await?;
        let expires = body["expires_at"]
            .as_i64()
            .with_context(|| format!("no session expiry in the login answer: {body}"))?;
        Ok(expires - SESSION_S * 1000)
    }

    /// The address of listener `name`.
    pub fn addr(&self, name: &str) -> anyhow::Result<String> {
        self.addrs
            .get(name)
            .cloned()
            .ok_or_else(|| anyhow::anyhow!("the server has no {name} listener"))
    }

    /// Stops the server (SIGKILL is not needed: it drains on SIGTERM, but the day is over).
    pub async fn stop(mut self) {
        let _ = self.child.start_kill();
        let _ = self.child.wait().await;
    }
}

fn read_ready(path: &Path) -> Option<HashMap<String, String>> {
    let text = std::fs::read_to_string(path).ok()?;
    let value: serde_json::Value = serde_json::from_str(&text).ok()?;
    let map = value.as_object()?;
    Some(
        map.iter()
            .filter_map(|(k, v)| v.as_str().map(|s| (k.clone(), s.to_string())))
            .collect(),
    )
}

fn tail(log: &Path) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let start = text.len().saturating_sub(4000);
    text.get(start..).unwrap_or("").to_string()
}
