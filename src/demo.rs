//! `onekey demo`: everything a newcomer needs in one command.
//!
//! 1. A SQLite database, `./onekey-demo.db` (or a temp file with `--temp`; `ONEKEY_DATABASE_URL`
//!    wins when set), migrated.
//! 2. When it holds no elder yet: a generated Jizhou dataset (`onekey_sim::dataset`) imported.
//! 3. An admin account `admin` with a random password, saved next to the database
//!    (`onekey-demo.db.admin`) so that the next run prints it again.
//! 4. The server with every listener: http on 127.0.0.1:8080 (any free port when that is taken), the
//!    device listeners on their usual ports on 127.0.0.1 (any free port when taken).
//! 5. A simulated fleet of the database's native devices raising a few alarms per minute.
//! 6. The dataset's volunteers on duty at home (so alarms are offered to them), one of them with the
//!    app password `onekey-demo`.
//! 7. The console and app URLs and the credentials printed; runs until Ctrl-C.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use onekey_sim::fleet::{self, FleetConfig, FleetStats, Pace};
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::store::Store;

/// `onekey demo` options.
#[derive(Debug, Clone, clap::Args)]
pub struct DemoOptions {
    /// SQLite file to use (kept between runs).
    #[arg(long, default_value = "onekey-demo.db")]
    pub db: PathBuf,
    /// Use a temporary database instead, deleted on exit.
    #[arg(long)]
    pub temp: bool,
    /// Elders in the generated dataset.
    #[arg(long, default_value_t = 300)]
    pub elders: usize,
    /// Responders in the generated dataset (besides one grid worker per grid).
    #[arg(long, default_value_t = 200)]
    pub responders: usize,
    /// Dataset seed.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Simulated devices (native devices of the dataset).
    #[arg(long, default_value_t = 50)]
    pub devices: usize,
    /// Alarms per minute, all simulated devices together (0 = no fleet).
    #[arg(long, default_value_t = 3.0)]
    pub alarms_per_minute: f64,
}

async fn free_or_any(preferred: &str) -> String {
    match tokio::net::TcpListener::bind(preferred).await {
        Ok(l) => {
            drop(l);
            preferred.to_string()
        }
        Err(_) => {
            let host = preferred
                .rsplit_once(':')
                .map(|h| h.0)
                .unwrap_or("127.0.0.1");
            format!("{host}:0")
        }
    }
}

/// Runs the demo until Ctrl-C.
pub async fn run(mut config: Config, opts: DemoOptions) -> anyhow::Result<()> {
    let temp = if opts.temp {
        Some(tempfile::tempdir().context("cannot create a temp dir")?)
    } else {
        None
    };
    let db_path = match &temp {
        Some(dir) => dir.path().join("onekey-demo.db"),
        None => opts.db.clone(),
    };
    if std::env::var_os("ONEKEY_DATABASE_URL").is_none() {
        config.database_url = format!("sqlite://{}", db_path.display());
    }
    config.http_addr = free_or_any("127.0.0.1:8080").await;
    for (addr, port) in [
        (&mut config.device_addr, 7700),
        (&mut config.gt06_addr, 5023),
        (&mut config.watch_addr, 5093),
        (&mut config.h02_addr, 5013),
        (&mut config.sia_addr, 5074),
    ] {
        if crate::config::listener(addr).is_some() {
            *addr = free_or_any(&format!("127.0.0.1:{port}")).await;
        }
    }

    let store = crate::app::open_store(&config).await?;
    let present = store.list_elders(None, 1).await?;
    if present.is_empty() {
        eprintln!(
            "onekey demo: generating Jizhou (吉州区) with {} elders and {} responders…",
            opts.elders, opts.responders
        );
        let dataset = onekey_sim::dataset::generate(opts.elders, opts.responders, opts.seed);
        let report = crate::import::import_dataset(&store, &dataset).await?;
        eprintln!("onekey demo: imported: {}", report.summary());
    }
    let (admin, password) = admin_credentials(&store, &db_path).await?;
    let natives = native_devices(&store, opts.devices).await?;
    let volunteer = volunteers_on_duty(&store).await?;
    store.close().await;

    let shutdown = CancellationToken::new();
    crate::app::cancel_on_signals(shutdown.clone());
    let ready_dir = tempfile::tempdir().context("cannot create a temp dir")?;
    let ready = ready_dir.path().join("ready.json");
    let server = tokio::spawn(crate::app::serve(
        config.clone(),
        Some(ready.clone()),
        shutdown.clone(),
    ));
    let addrs = loop {
        if server.is_finished() {
            return match server.await {
                Ok(Err(e)) => Err(e),
                Ok(Ok(())) => Ok(()),
                Err(e) => Err(anyhow::anyhow!("server task: {e}")),
            };
        }
        if let Ok(text) = tokio::fs::read_to_string(&ready).await
            && let Ok(map) =
                serde_json::from_str::<std::collections::BTreeMap<String, String>>(&text)
        {
            break map;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let http = addrs.get("http").cloned().unwrap_or_default();
    println!();
    println!("  OneKey demo is running — 吉安 12349 一键通 (simulated Jizhou district)");
    println!("  console:   http://{http}/");
    println!("  API:       http://{http}/api/v1/  (OpenAPI: http://{http}/openapi.json)");
    println!("  log in as: {admin} / {password}");
    if let Some(phone) = &volunteer {
        println!("  app:       http://{http}/app  (a volunteer: {phone} / {VOLUNTEER_PASSWORD})");
    }
    println!("  database:  {}", config.database_url);
    for (name, addr) in &addrs {
        if name != "http" {
            println!("  {name:<10} {addr}");
        }
    }
    let stats = Arc::new(FleetStats::default());
    let fleet_task = match (addrs.get("device_tcp"), opts.alarms_per_minute > 0.0) {
        (Some(device_addr), true) if !natives.is_empty() => {
            let n = natives.len();
            let mut fc = FleetConfig::new(device_addr.clone(), natives);
            fc.pace = Pace::Every {
                period: Duration::from_secs_f64(60.0 * n as f64 / opts.alarms_per_minute),
                poisson: true,
            };
            fc.heartbeat = Duration::from_secs(60);
            println!(
                "  fleet:     {n} simulated devices, about {} alarms per minute",
                opts.alarms_per_minute
            );
            Some(tokio::spawn(fleet::run(
                fc,
                stats.clone(),
                shutdown.child_token(),
            )))
        }
        _ => None,
    };
    println!("  Ctrl-C stops it.");
    println!();

    let mut tick = tokio::time::interval(Duration::from_secs(60));
    tick.tick().await;
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = tick.tick() => {
                if fleet_task.is_some() {
                    eprintln!("onekey demo: fleet: {}", stats.summary());
                }
            }
        }
    }
    if let Some(t) = fleet_task {
        let _ = t.await;
        eprintln!("onekey demo: fleet: {}", stats.summary());
    }
    let result = server
        .await
        .map_err(|e| anyhow::anyhow!("server task: {e}"))?;
    drop(temp);
    result
}

/// Creates the demo admin with a random password on first run, else reads the saved one.
async fn admin_credentials(store: &Store, db_path: &Path) -> anyhow::Result<(String, String)> {
    let name = "admin".to_string();
    let saved = PathBuf::from(format!("{}.admin", db_path.display()));
    let password: String = {
        use rand::Rng;
        let mut rng = rand::rng();
        (0..16)
            .map(|_| {
                let alphabet = b"abcdefghijkmnpqrstuvwxyz23456789";
                char::from(alphabet[rng.random_range(0..alphabet.len())])
            })
            .collect()
    };
    if store.bootstrap_admin(&name, &password).await? {
        let _ = std::fs::write(&saved, &password);
        return Ok((name, password));
    }
    match std::fs::read_to_string(&saved) {
        Ok(p) => Ok((name, p.trim().to_string())),
        Err(_) => Ok((
            name,
            format!(
                "(an admin already exists; its password is not in {})",
                saved.display()
            ),
        )),
    }
}

/// Up to `limit` native devices with their keys, from the database.
async fn native_devices(store: &Store, limit: usize) -> anyhow::Result<Vec<(u64, [u8; 32])>> {
    let mut out = Vec::new();
    for d in store.list_devices(None, 100_000).await? {
        if out.len() >= limit {
            break;
        }
        if d.protocol != "native" || !d.enabled {
            continue;
        }
        let (Ok(id), Some(creds)) = (
            d.ident.parse::<u64>(),
            store.device_credentials("native", &d.ident).await?,
        ) else {
            continue;
        };
        if let Ok(key) = <[u8; 32]>::try_from(creds.secret.as_slice()) {
            out.push((id, key));
        }
    }
    Ok(out)
}

/// The app password of the demo's volunteers.
const VOLUNTEER_PASSWORD: &str = "onekey-demo";

/// Puts the dataset's volunteers on duty at home, with the app password [`VOLUNTEER_PASSWORD`], so
/// that alarms are offered to them; returns the phone of one to log in with on the app page.
async fn volunteers_on_duty(store: &Store) -> anyhow::Result<Option<String>> {
    let volunteers: Vec<_> = store
        .list_responders(10_000)
        .await?
        .into_iter()
        .filter(|r| r.kind == crate::domain::ResponderKind::Volunteer)
        .collect();
    let now = crate::domain::now_millis();
    for r in &volunteers {
        store
            .set_duty(r.id, true, Some((r.home_lat, r.home_lon)), now)
            .await?;
    }
    match volunteers.first() {
        Some(r) => {
            store
                .set_responder_password(r.id, VOLUNTEER_PASSWORD)
                .await?;
            Ok(Some(r.phone.clone()))
        }
        None => Ok(None),
    }
}
