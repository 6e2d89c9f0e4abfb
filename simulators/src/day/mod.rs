//! `onekey-sim day`: a whole simulated day of a district on the real server. It starts the
//! `onekey` binary on the compressed clock (`[clock] scale`: one setting that scales every policy
//! duration, timer and SLA clock of the server, so that its decisions are the ones it takes at
//! 1×), the simulated SMS centre, imports the world's directory, and lets the world live: devices
//! on every protocol, responders' apps on the broker, operators at the API, families at the SMS
//! centre. At the end it reads back from the API what was stored and answered and reports it.

pub mod chart;
pub mod report;
pub mod server;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use crate::api::ApiClient;
use crate::clock::{Ms, SimClock};
use crate::devices::{self, Targets};
use crate::people::crowd::{self, CrowdSettings};
use crate::people::families::Families;
use crate::smsc;
use crate::world::{self, HOUR, MINUTE, Preset, World};
use report::{DayReport, ServerView};
use server::{ADMIN, BROKER_USER, Server, ServerOptions};

/// How to run a day.
#[derive(Debug, Clone)]
pub struct DayOptions {
    /// The world's size and speed.
    pub preset: Preset,
    /// Its seed.
    pub seed: u64,
    /// The `onekey` binary (default: the one next to this one).
    pub server: Option<PathBuf>,
    /// Working folder (database, server log, report).
    pub dir: PathBuf,
    /// A database URL instead of a fresh SQLite file.
    pub database: Option<String>,
    /// Operators at the desks.
    pub operators: usize,
    /// Hours of the day to run (default 24).
    pub hours: i64,
    /// Clock time after the day for the last incidents to be finished and closed.
    pub drain: Ms,
    /// Show progress bars.
    pub progress: bool,
    /// The hour of the day the world starts living (the demo starts in the morning).
    pub from_hour: i64,
    /// The web listener (default: any free loopback port).
    pub http_addr: Option<String>,
    /// Print how to sign in to the console and the app once the world is set up (the demo).
    pub banner: bool,
}

impl DayOptions {
    /// A day of `preset` from `seed` in `dir`, with the defaults CI and the closing figures use.
    pub fn new(preset: Preset, seed: u64, dir: PathBuf) -> DayOptions {
        let big = preset.elders > 1000;
        DayOptions {
            operators: if big { 8 } else { 3 },
            preset,
            seed,
            server: None,
            dir,
            database: None,
            hours: 24,
            // A big district's day must fit in 20 minutes of a 2-core machine.
            drain: if big { HOUR } else { 2 * HOUR },
            progress: true,
            from_hour: 0,
            http_addr: None,
            banner: false,
        }
    }
}

/// Runs the day and returns its report (with the pages and the rows the chart needs).
/// `stop` ends it early (Ctrl-C); the report then covers what happened so far.
pub async fn run(o: &DayOptions, stop: CancellationToken) -> anyhow::Result<(DayReport, String)> {
    let wall = Instant::now();
    let world = world::build(&o.preset, o.seed);
    // The server's clock starts a while before the day (or the demo's hour), so that setup
    // (the import: about 3.5 ms per elder with their device, contacts and responders) is done
    // by then.
    let setup_wall_s = 5.0 + world.dataset.elders.len() as f64 * 0.004;
    let lead = ((setup_wall_s * 1000.0 * o.preset.scale) as Ms).max(10 * MINUTE);
    let first = world.start + o.from_hour.clamp(0, 23) * HOUR;
    let boot_clock = SimClock::new(first - lead, o.preset.scale);
    let families = Arc::new(Families::new(world.families.clone()));
    let sms_centre = smsc::start("127.0.0.1:0", boot_clock, families, stop.clone()).await?;
    let binary = server::locate(o.server.clone())?;
    let server = Server::start(&ServerOptions {
        binary,
        dir: o.dir.clone(),
        database: o.database.clone(),
        scale: o.preset.scale,
        start_ms: first - lead,
        smsc: sms_centre.addr.to_string(),
        http_addr: o.http_addr.clone(),
    })
    .await?;
    // The simulation's clock reads what the server's reads (it started a moment earlier).
    let clock = match server.clock_now(&ApiClient::http()).await {
        Ok(now) => SimClock::new(now, o.preset.scale),
        Err(e) => {
            server.stop().await;
            return Err(e);
        }
    };
    let outcome = live(o, &world, &server, clock, first, &sms_centre, &stop).await;
    stop.cancel();
    let log = server.log.clone();
    server.stop().await;
    let (mut report, page) = outcome.with_context(|| format!("server log: {}", log.display()))?;
    report.wall_s = wall.elapsed().as_secs_f64();
    Ok((report, page))
}

async fn live(
    o: &DayOptions,
    world: &World,
    server: &Server,
    clock: SimClock,
    first: Ms,
    sms_centre: &smsc::Smsc,
    stop: &CancellationToken,
) -> anyhow::Result<(DayReport, String)> {
    let base = format!("http://{}", server.addr("http")?);
    let http = ApiClient::http();
    let admin = ApiClient::new(&base, http.clone(), "operator", ADMIN.0, ADMIN.1);

    // The directory.
    let spinner = bar(o.progress, None, "importing the directory");
    let body = serde_json::to_string(&world.dataset)?;
    let res = reqwest::Client::builder()
        .timeout(Duration::from_secs(900))
        .build()?
        .post(format!("{base}/api/v1/import"))
        .bearer_auth(admin_token(&admin).await?)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await?;
    let status = res.status();
    let answer: Value = res.json().await.unwrap_or(Value::Null);
    anyhow::ensure!(status.is_success(), "import refused: {status} {answer}");
    spinner.finish_and_clear();

    // The people.
    let crowd = crowd::start(
        &CrowdSettings {
            api: base.clone(),
            admin: (ADMIN.0.into(), ADMIN.1.into()),
            broker: server.addr("mqtt")?,
            broker_user: Some((BROKER_USER.0.into(), BROKER_USER.1.into())),
            prefix: "onekey".into(),
            operators: o.operators,
            seed: o.seed,
        },
        world,
        clock,
        stop.clone(),
    )
    .await?;

    // The day.
    let end = world.start + o.hours.clamp(1, 24) * HOUR;
    let targets = Targets {
        native: server.addr("device_tcp")?,
        gt06: server.addr("gt06")?,
        watch: server.addr("watch")?,
        h02: server.addr("h02")?,
        sia: server.addr("sia")?,
        mqtt: server.addr("mqtt")?,
        mqtt_user: Some((BROKER_USER.0.into(), BROKER_USER.1.into())),
        mqtt_prefix: "onekey".into(),
    };
    if o.banner {
        banner(&base, world, server);
    }
    let day_bar = bar(
        o.progress,
        Some(((end + o.drain - first) / MINUTE) as u64),
        "the day",
    );
    let ticker = {
        let day_bar = day_bar.clone();
        let admin = ApiClient::new(&base, http.clone(), "operator", ADMIN.0, ADMIN.1);
        let stop = stop.clone();
        let start = world.start;
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = stop.cancelled() => break,
                    _ = tokio::time::sleep(Duration::from_millis(500)) => {}
                }
                let now = clock.now();
                day_bar.set_position(((now - first).max(0) / MINUTE) as u64);
                if let Ok((200, Value::Array(rows))) = admin.get("/queue").await {
                    let hh = (now - start).rem_euclid(24 * HOUR) / HOUR;
                    let mm = (now - start).rem_euclid(HOUR) / MINUTE;
                    day_bar.set_message(format!("{hh:02}:{mm:02}  open incidents {}", rows.len()));
                }
            }
        })
    };
    clock.sleep_until(first).await;
    let plans: Vec<_> = world
        .devices
        .iter()
        .cloned()
        .map(|mut d| {
            d.actions.retain(|(t, _)| (first..end).contains(t));
            d
        })
        .collect();
    // After the day's last action the devices keep their heartbeats going while the last
    // incidents are finished and closed (unless stopped early).
    let device_report = devices::run(
        plans,
        targets,
        clock,
        end + o.drain,
        None,
        stop.child_token(),
    )
    .await;
    day_bar.finish_and_clear();
    ticker.abort();

    // What the server holds.
    let view = read_server(&admin).await?;
    let mut report = report::build(
        world,
        o.seed,
        clock.now(),
        &device_report.sent,
        &device_report.latency_us,
        &view,
    );
    report.sms = sms_centre.messages().len() as u64;
    report.people = crowd.stats();
    for (k, v) in [
        ("device_connects", device_report.connects),
        ("device_reconnects", device_report.reconnects),
        ("device_errors", device_report.errors),
    ] {
        report.people.insert(k.to_string(), v);
    }
    let page = chart::html(
        &report,
        &device_report.sent,
        &view.incidents,
        world.start,
        o.hours.clamp(1, 24),
    );
    stop.cancel();
    crowd.stop();
    Ok((report, page))
}

fn banner(base: &str, world: &World, server: &Server) {
    let volunteer = world
        .people
        .iter()
        .find(|p| p.kind == "volunteer")
        .map(|p| p.phone.clone())
        .unwrap_or_default();
    println!();
    println!("  OneKey demo — 吉安 12349 一键通, a simulated day of Jizhou (吉州区)");
    println!(
        "  console:   {base}/console   sign in as {} / {}",
        ADMIN.0, ADMIN.1
    );
    println!(
        "  app:       {base}/app       a volunteer: {volunteer} / {}",
        world::APP_PASSWORD
    );
    println!("  API:       {base}/api/v1/   (OpenAPI: {base}/openapi.json)");
    for (name, addr) in &server.addrs {
        if name != "http" {
            println!("  {name:<10} {addr}");
        }
    }
    println!(
        "  {} elders, {} responders; simulated volunteers, families and operators answer; the clock runs {}× (an hour in {:.0} s)",
        world.dataset.elders.len(),
        world.dataset.responders.len(),
        world.preset.scale,
        3600.0 / world.preset.scale
    );
    println!("  Ctrl-C ends the day early and prints its report.");
    println!();
}

async fn admin_token(admin: &ApiClient) -> anyhow::Result<String> {
    // A call signs in; the token is then reused for the raw import request.
    admin.get("/auth/me").await?;
    admin.token_now().context("the admin could not sign in")
}

async fn read_server(admin: &ApiClient) -> anyhow::Result<ServerView> {
    // Every incident, in id order (the queue shows at most 2,000).
    let mut incidents = Vec::new();
    let mut after = 0i64;
    loop {
        let (status, page) = admin
            .get(&format!("/incidents?after={after}&limit=1000"))
            .await?;
        anyhow::ensure!(status == 200, "incidents: {status} {page}");
        let rows = page.as_array().cloned().unwrap_or_default();
        let Some(last) = rows.last().and_then(|r| r["id"].as_i64()) else {
            break;
        };
        after = last;
        incidents.extend(rows.into_iter().map(|i| json!({ "incident": i })));
    }
    let devices = admin
        .table_rows("devices")
        .await?
        .iter()
        .map(|row| &row["device"])
        .filter_map(|d| {
            Some((
                d["ident"].as_str()?.to_string(),
                (d["id"].as_i64()?, d["elder_id"].as_i64()),
            ))
        })
        .collect();
    // Service orders not finished: were they escalated to an operator?
    let mut escalated = std::collections::HashSet::new();
    for row in &incidents {
        let inc = &row["incident"];
        if inc["category"] == "service" && inc["status"] != "closed" {
            let id = inc["id"].as_i64().unwrap_or(0);
            let (_, detail) = admin.get(&format!("/incidents/{id}")).await?;
            let events = detail["events"]
                .as_array()
                .map(Vec::as_slice)
                .unwrap_or_default();
            if events.iter().any(|e| e["kind"] == "escalated") {
                escalated.insert(id);
            }
        }
    }
    let log = read_device_log(admin).await?;
    Ok(ServerView {
        incidents,
        devices,
        log,
        escalated,
    })
}

/// The server's device log, ident → kind → count (`GET /api/v1/device-log`, admins): what the
/// devices sent, without the alarms the server raised from their heartbeat state.
pub async fn read_device_log(
    admin: &ApiClient,
) -> anyhow::Result<HashMap<String, HashMap<String, u64>>> {
    let mut log: HashMap<String, HashMap<String, u64>> = HashMap::new();
    let mut after = 0i64;
    loop {
        let (status, page) = admin
            .get(&format!("/device-log?after={after}&limit=10000"))
            .await?;
        anyhow::ensure!(status == 200, "device log: {status} {page}");
        let rows = page.as_array().cloned().unwrap_or_default();
        let Some(last) = rows.last().and_then(|r| r["id"].as_i64()) else {
            break;
        };
        for r in &rows {
            // Alarms the server raised from heartbeat state are not messages the device sent.
            if r["raw_code"]
                .as_str()
                .is_some_and(|c| c.starts_with("state:"))
            {
                continue;
            }
            if let (Some(ident), Some(kind)) = (r["ident"].as_str(), r["kind"].as_str()) {
                *log.entry(ident.to_string())
                    .or_default()
                    .entry(kind.to_string())
                    .or_default() += 1;
            }
        }
        after = last;
    }
    Ok(log)
}

fn bar(show: bool, len: Option<u64>, what: &str) -> ProgressBar {
    if !show {
        return ProgressBar::hidden();
    }
    match len {
        Some(n) => {
            let b = ProgressBar::new(n);
            b.set_style(
                ProgressStyle::with_template("{prefix} [{bar:40}] {pos}/{len} min  {msg}")
                    .unwrap_or_else(|_| ProgressStyle::default_bar())
                    .progress_chars("=> "),
            );
            b.set_prefix(what.to_string());
            b
        }
        None => {
            let b = ProgressBar::new_spinner();
            b.set_message(what.to_string());
            b.enable_steady_tick(Duration::from_millis(120));
            b
        }
    }
}
