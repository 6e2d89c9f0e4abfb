//! `onekey-sim`: command-line front end of the simulators.
//!
//! - `onekey-sim dataset --elders 300 --responders 200 --seed 42 -o jizhou.json`: a synthetic Jizhou
//!   district for `onekey import`.
//! - `onekey-sim fleet --addr 127.0.0.1:7700 --dataset jizhou.json --devices 100 --rate 60 --duration 60`:
//!   the dataset's native devices connect and raise about `rate` alarms per minute in all.
//! - `onekey-sim day --preset small|jizhou --report day.json --chart day.html`: a whole day of the
//!   district on the real server (see `onekey_sim::day`); fails when a promise was broken.
//! - `onekey-sim demo`: the README's demo (a district's day from 07:00 at 30×, console URL printed).
//! - `onekey-sim responders --preset small --api http://127.0.0.1:8080 --admin admin:… --mqtt …`:
//!   the world's volunteers' apps and operators at work on a running server.
//! - `onekey-sim devices --preset small --seed 42 --native 127.0.0.1:7700 … --hours 2`: the devices
//!   of a simulated world (`world::build`) run their planned day against a running server, which
//!   must have that world's dataset imported (`--write-dataset world.json` writes it; the `day`
//!   command imports it itself) and run on the preset's compressed clock (`ONEKEY_CLOCK__SCALE`,
//!   `ONEKEY_CLOCK__START_MS` = the day's start); prints a per-link table and fails when an alarm
//!   stayed unACKed.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand};
use onekey_sim::api::ApiClient;
use onekey_sim::clock::SimClock;
use onekey_sim::dataset;
use onekey_sim::day::{self, DayOptions};
use onekey_sim::devices::{self, Targets};
use onekey_sim::fleet::{self, FleetConfig, FleetStats, Pace};
use onekey_sim::people::crowd::{self, CrowdSettings};
use onekey_sim::world::{self, HOUR, Preset};
use tokio_util::sync::CancellationToken;

#[derive(Parser)]
#[command(
    name = "onekey-sim",
    about = "Simulated datasets and device fleets for OneKey"
)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Write a synthetic Jizhou dataset (JSON, `onekey-dataset/1`).
    Dataset {
        /// Elders (one device each).
        #[arg(long, default_value_t = 300)]
        elders: usize,
        /// Responders besides one grid worker per grid.
        #[arg(long, default_value_t = 200)]
        responders: usize,
        /// Seed: the same seed gives the same dataset.
        #[arg(long, default_value_t = 42)]
        seed: u64,
        /// Output file (`-` for stdout).
        #[arg(short = 'o', long, default_value = "-")]
        output: String,
    },
    /// Run the dataset's native devices against a server.
    Fleet {
        /// The server's native listener.
        #[arg(long, default_value = "127.0.0.1:7700")]
        addr: String,
        /// Dataset the devices come from (imported into the server beforehand).
        #[arg(long)]
        dataset: PathBuf,
        /// How many of its native devices to run (default all).
        #[arg(long)]
        devices: Option<usize>,
        /// Alarms per minute, all devices together; 0 = back to back.
        #[arg(long, default_value_t = 60.0)]
        rate: f64,
        /// Seconds to run (default until Ctrl-C).
        #[arg(long)]
        duration: Option<u64>,
        /// Heartbeat period, seconds.
        #[arg(long, default_value_t = 60)]
        heartbeat: u64,
    },
    /// Run a simulated world's devices through their planned day against a server that has the
    /// world's dataset imported and runs on the preset's clock.
    Devices(DevicesArgs),
    /// A whole day of a district on the real server: starts `onekey` (built beside this binary) on
    /// the preset's compressed clock, with the simulated SMS centre, imports the world, lets its
    /// devices, volunteers, operators and families live the day, and reports what the server kept.
    Day(DayArgs),
    /// The README's demo: a smaller district's day from 07:00 at 30× on a fresh SQLite database
    /// and the embedded broker, with the console URL and logins printed; Ctrl-C ends it.
    Demo(DemoArgs),
    /// A world's people (volunteers' apps, grid workers, operators) at work on a running server
    /// whose directory holds the world (`devices --write-dataset`, then `onekey import`).
    Responders(RespondersArgs),
}

#[derive(clap::Args)]
struct DayArgs {
    /// World preset: `small` (a few hundred elders, about two minutes) or `jizhou` (10,000).
    #[arg(long, default_value = "small")]
    preset: String,
    /// World seed.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// The onekey binary (default: next to this one).
    #[arg(long)]
    server: Option<PathBuf>,
    /// Working folder for the database and the server's log (default: a temporary one).
    #[arg(long)]
    dir: Option<PathBuf>,
    /// A database URL instead of a fresh SQLite file (e.g. `postgres://…/day`).
    #[arg(long)]
    database: Option<String>,
    /// Clock speed instead of the preset's.
    #[arg(long)]
    scale: Option<f64>,
    /// Operators at their desks.
    #[arg(long)]
    operators: Option<usize>,
    /// Write the report as JSON here.
    #[arg(long)]
    report: Option<PathBuf>,
    /// Write the day's chart (HTML with SVG) here.
    #[arg(long)]
    chart: Option<PathBuf>,
    /// No progress bars.
    #[arg(long)]
    quiet: bool,
}

#[derive(clap::Args)]
struct DemoArgs {
    /// World seed.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Elders (one device each).
    #[arg(long, default_value_t = 1000)]
    elders: usize,
    /// Clock speed (30: an hour in two minutes).
    #[arg(long, default_value_t = 30.0)]
    scale: f64,
    /// The console's address (another free port when taken).
    #[arg(long, default_value = "127.0.0.1:8080")]
    http: String,
    /// The onekey binary (default: next to this one, built first under `cargo run`).
    #[arg(long)]
    server: Option<PathBuf>,
}

fn temp_dir(tag: &str) -> PathBuf {
    std::env::temp_dir().join(format!("onekey-{tag}-{}", std::process::id()))
}

fn stop_on_ctrl_c() -> CancellationToken {
    let stop = CancellationToken::new();
    let s = stop.clone();
    tokio::spawn(async move {
        let _ = tokio::signal::ctrl_c().await;
        s.cancel();
    });
    stop
}

async fn run_day(a: DayArgs) -> anyhow::Result<()> {
    let mut preset = Preset::named(&a.preset)
        .with_context(|| format!("unknown preset {:?} (small, jizhou)", a.preset))?;
    if let Some(scale) = a.scale {
        preset.scale = scale;
    }
    let dir = a.dir.clone().unwrap_or_else(|| temp_dir("day"));
    let mut o = DayOptions::new(preset, a.seed, dir.clone());
    o.server = a.server;
    o.database = a.database;
    o.progress = !a.quiet;
    if let Some(n) = a.operators {
        o.operators = n;
    }
    let (report, page) = day::run(&o, stop_on_ctrl_c()).await?;
    print!("{}", day::report::table(&report));
    if let Some(path) = &a.report {
        std::fs::write(path, serde_json::to_string_pretty(&report)?)
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    if let Some(path) = &a.chart {
        std::fs::write(path, page).with_context(|| format!("cannot write {}", path.display()))?;
    }
    if a.dir.is_none() && report.failures.is_empty() {
        let _ = std::fs::remove_dir_all(&dir);
    }
    anyhow::ensure!(
        report.failures.is_empty(),
        "the day broke a promise: {} (server log in {})",
        report.failures.join("; "),
        dir.display()
    );
    Ok(())
}

async fn run_demo(a: DemoArgs) -> anyhow::Result<()> {
    let mut preset = Preset::named("demo").context("demo preset")?;
    preset.elders = a.elders.max(10);
    preset.responders = a.elders.max(10);
    preset.scale = a.scale.max(1.0);
    let dir = temp_dir("demo");
    let http = match tokio::net::TcpListener::bind(&a.http).await {
        Ok(_) => a.http.clone(),
        Err(_) => "127.0.0.1:0".into(),
    };
    let mut o = DayOptions::new(preset, a.seed, dir.clone());
    o.server = a.server;
    o.from_hour = 7;
    o.http_addr = Some(http);
    o.banner = true;
    o.operators = 2;
    o.drain = 0;
    let (report, page) = day::run(&o, stop_on_ctrl_c()).await?;
    print!("{}", day::report::table(&report));
    let chart = dir.join("day.html");
    if std::fs::write(&chart, page).is_ok() {
        println!("  the day's chart: {}", chart.display());
    }
    Ok(())
}

#[derive(clap::Args)]
struct DevicesArgs {
    /// World preset: `small` or `jizhou`.
    #[arg(long, default_value = "small")]
    preset: String,
    /// World seed.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Native protocol listener.
    #[arg(long, default_value = "127.0.0.1:7700")]
    native: String,
    /// GT06 listener.
    #[arg(long, default_value = "127.0.0.1:5023")]
    gt06: String,
    /// 3G watch listener.
    #[arg(long, default_value = "127.0.0.1:5093")]
    watch: String,
    /// H02 listener.
    #[arg(long, default_value = "127.0.0.1:5013")]
    h02: String,
    /// SIA DC-09 listener.
    #[arg(long, default_value = "127.0.0.1:5074")]
    sia: String,
    /// MQTT broker `host:port`.
    #[arg(long, default_value = "127.0.0.1:1883")]
    mqtt: String,
    /// MQTT account.
    #[arg(long, requires = "mqtt_password")]
    mqtt_user: Option<String>,
    /// Its password.
    #[arg(long, requires = "mqtt_user")]
    mqtt_password: Option<String>,
    /// MQTT topic prefix.
    #[arg(long, default_value = "onekey")]
    prefix: String,
    /// Hours of the clock to run, from the day's start.
    #[arg(long, default_value_t = 24.0)]
    hours: f64,
    /// Clock speed instead of the preset's.
    #[arg(long)]
    scale: Option<f64>,
    /// Write the world's dataset (JSON, for `POST /api/v1/import` or `onekey import`) to this
    /// file and exit without running.
    #[arg(long)]
    write_dataset: Option<PathBuf>,
    /// After the run, check through this server's API (`http://host:port`) that every message a
    /// device had ACKed is stored exactly once (needs `--admin`).
    #[arg(long, requires = "admin")]
    api: Option<String>,
    /// An admin account, `name:password`.
    #[arg(long)]
    admin: Option<String>,
}

#[derive(clap::Args)]
struct RespondersArgs {
    /// World preset: `small`, `demo` or `jizhou`.
    #[arg(long, default_value = "small")]
    preset: String,
    /// World seed.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// The server's API, `http://host:port`.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    api: String,
    /// An admin account, `name:password`.
    #[arg(long)]
    admin: String,
    /// MQTT broker `host:port`.
    #[arg(long, default_value = "127.0.0.1:1883")]
    mqtt: String,
    /// MQTT account.
    #[arg(long, requires = "mqtt_password")]
    mqtt_user: Option<String>,
    /// Its password.
    #[arg(long, requires = "mqtt_user")]
    mqtt_password: Option<String>,
    /// MQTT topic prefix.
    #[arg(long, default_value = "onekey")]
    prefix: String,
    /// Operators at their desks.
    #[arg(long, default_value_t = 3)]
    operators: usize,
    /// Clock speed instead of the preset's (the server's `[clock] scale` must match).
    #[arg(long)]
    scale: Option<f64>,
    /// Hours of the clock to work.
    #[arg(long, default_value_t = 24.0)]
    hours: f64,
}

fn account(text: &str) -> anyhow::Result<(String, String)> {
    let (n, p) = text
        .split_once(':')
        .context("an account is name:password")?;
    Ok((n.to_string(), p.to_string()))
}

/// The people of a world at work on a running server whose directory holds the world.
async fn run_responders(a: RespondersArgs) -> anyhow::Result<()> {
    let mut preset = Preset::named(&a.preset)
        .with_context(|| format!("unknown preset {:?} (small, demo, jizhou)", a.preset))?;
    if let Some(scale) = a.scale {
        preset.scale = scale;
    }
    let w = world::build(&preset, a.seed);
    let admin = account(&a.admin)?;
    let stop = stop_on_ctrl_c();
    // Delays are measured on the preset's clock from now; the server's clock sets the times.
    let clock = SimClock::new(w.start, preset.scale);
    let crowd = crowd::start(
        &CrowdSettings {
            api: a.api.trim_end_matches('/').to_string(),
            admin,
            broker: a.mqtt,
            broker_user: a.mqtt_user.zip(a.mqtt_password),
            prefix: a.prefix,
            operators: a.operators,
            seed: a.seed,
        },
        &w,
        clock,
        stop.clone(),
    )
    .await?;
    eprintln!(
        "{} responders' apps and {} operators at work for {:.1} h of the clock ({:.0} s); Ctrl-C stops",
        w.people.len(),
        a.operators,
        a.hours,
        clock.real((a.hours * HOUR as f64) as i64).as_secs_f64()
    );
    tokio::select! {
        _ = stop.cancelled() => {}
        _ = clock.sleep((a.hours.max(0.0) * HOUR as f64) as i64) => {}
    }
    for (k, v) in crowd.stats() {
        println!("  {k:<24} {v}");
    }
    crowd.stop();
    Ok(())
}

async fn run_devices(a: DevicesArgs) -> anyhow::Result<()> {
    let mut preset = Preset::named(&a.preset)
        .with_context(|| format!("unknown preset {:?} (small, jizhou)", a.preset))?;
    if let Some(scale) = a.scale {
        preset.scale = scale;
    }
    let w = world::build(&preset, a.seed);
    if let Some(path) = &a.write_dataset {
        let text = serde_json::to_string(&w.dataset)?;
        std::fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))?;
        eprintln!(
            "wrote {}: {} elders, {} devices; day starts at {} ms",
            path.display(),
            w.dataset.elders.len(),
            w.dataset.devices.len(),
            w.start
        );
        return Ok(());
    }
    let targets = Targets {
        native: a.native,
        gt06: a.gt06,
        watch: a.watch,
        h02: a.h02,
        sia: a.sia,
        mqtt: a.mqtt,
        mqtt_user: a.mqtt_user.zip(a.mqtt_password),
        mqtt_prefix: a.prefix,
    };
    let clock = SimClock::new(w.start, preset.scale);
    let until = w.start + (a.hours.max(0.0) * HOUR as f64) as i64;
    eprintln!(
        "{} devices, {:.1} h of the clock at {}× ({:.0} s)",
        w.devices.len(),
        a.hours,
        preset.scale,
        clock.real(until - w.start).as_secs_f64()
    );
    let stop = CancellationToken::new();
    {
        let stop = stop.clone();
        tokio::spawn(async move {
            let _ = tokio::signal::ctrl_c().await;
            stop.cancel();
        });
    }
    let bar = indicatif::ProgressBar::new(1000);
    bar.set_style(
        indicatif::ProgressStyle::with_template("{spinner} [{elapsed_precise}] {bar:30} {msg}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let planned: std::collections::HashSet<String> =
        w.devices.iter().map(|d| d.ident.clone()).collect();
    let report = devices::run(w.devices, targets, clock, until, Some(bar.clone()), stop).await;
    bar.finish_and_clear();
    print!("{}", report.table());
    if let (Some(api), Some(admin)) = (&a.api, &a.admin) {
        let (name, password) = account(admin)?;
        let client = ApiClient::new(api, ApiClient::http(), "operator", &name, &password);
        let log = day::read_device_log(&client).await?;
        let planned: std::collections::HashSet<&str> = planned.iter().map(String::as_str).collect();
        let once = day::report::exactly_once(&report.sent, &log, &planned);
        println!(
            "  on the server: {} alarms stored, {} ACKed messages missing, {} stored twice",
            once.alarms_stored, once.lost, once.duplicated
        );
        anyhow::ensure!(
            once.lost == 0 && once.duplicated == 0,
            "not exactly once: {once:?}"
        );
    }
    let unacked = report.unacked_alarms();
    anyhow::ensure!(
        unacked.is_empty(),
        "{} alarm(s) never ACKed, first: {:?}",
        unacked.len(),
        unacked.first()
    );
    Ok(())
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    match run(Cli::parse()).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("onekey-sim: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Cmd::Devices(a) => run_devices(a).await,
        Cmd::Day(a) => run_day(a).await,
        Cmd::Demo(a) => run_demo(a).await,
        Cmd::Responders(a) => run_responders(a).await,
        Cmd::Dataset {
            elders,
            responders,
            seed,
            output,
        } => {
            let d = dataset::generate(elders, responders, seed);
            let text = serde_json::to_string_pretty(&d)?;
            if output == "-" {
                println!("{text}");
            } else {
                std::fs::write(&output, text).with_context(|| format!("cannot write {output}"))?;
                eprintln!(
                    "wrote {output}: {} areas, {} responders, {} elders, {} devices",
                    d.areas.len(),
                    d.responders.len(),
                    d.elders.len(),
                    d.devices.len()
                );
            }
            Ok(())
        }
        Cmd::Fleet {
            addr,
            dataset,
            devices,
            rate,
            duration,
            heartbeat,
        } => {
            let text = std::fs::read_to_string(&dataset)
                .with_context(|| format!("cannot read {}", dataset.display()))?;
            let d: dataset::Dataset = serde_json::from_str(&text)
                .with_context(|| format!("{} is not a dataset", dataset.display()))?;
            let mut natives = d.native_devices();
            if let Some(n) = devices {
                natives.truncate(n);
            }
            anyhow::ensure!(!natives.is_empty(), "the dataset has no native devices");
            let n = natives.len();
            let mut config = FleetConfig::new(addr, natives);
            config.heartbeat = Duration::from_secs(heartbeat.max(1));
            config.pace = if rate <= 0.0 {
                Pace::BackToBack
            } else {
                Pace::Every {
                    period: Duration::from_secs_f64(60.0 * n as f64 / rate),
                    poisson: true,
                }
            };
            let stats = Arc::new(FleetStats::default());
            let stop = CancellationToken::new();
            {
                let stop = stop.clone();
                tokio::spawn(async move {
                    let _ = tokio::signal::ctrl_c().await;
                    stop.cancel();
                });
            }
            if let Some(secs) = duration {
                let stop = stop.clone();
                tokio::spawn(async move {
                    tokio::time::sleep(Duration::from_secs(secs)).await;
                    stop.cancel();
                });
            }
            let bar = match duration {
                Some(secs) => indicatif::ProgressBar::new(secs),
                None => indicatif::ProgressBar::new_spinner(),
            };
            bar.set_style(
                indicatif::ProgressStyle::with_template(
                    "{spinner} [{elapsed_precise}] {bar:30} {msg}",
                )
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
            );
            let runner = tokio::spawn(fleet::run(config, stats.clone(), stop.clone()));
            let started = std::time::Instant::now();
            while !runner.is_finished() {
                bar.set_position(started.elapsed().as_secs());
                bar.set_message(format!(
                    "{}/{n} connected · {} alarms · {} acked · {} retries",
                    stats.connected.load(Ordering::Relaxed).min(n as u64),
                    stats.alarms.load(Ordering::Relaxed),
                    stats.acked(),
                    stats.retries.load(Ordering::Relaxed)
                ));
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
            bar.finish_and_clear();
            runner.await?;
            println!("{}", stats.summary());
            Ok(())
        }
    }
}
