//! Alarm load harness: `cargo bench --bench alarm_load`.
//!
//! Starts the server in-process (`onekey::app::serve`, every commit fsynced) on SQLite (a temp file)
//! and on PostgreSQL (a fresh database on 127.0.0.1:5432, `ONEKEY_TEST_PG` to change the admin URL),
//! registers 1,000 native devices from a generated Jizhou dataset, connects them all over loopback and
//! measures:
//! - **(a) throughput**: every device sends alarms back to back, each waiting for its ACK; alarms
//!   ACKed per second over the phase;
//! - **(b) latency**: a fixed offered load of 1,000 alarms/s (each device one alarm per second,
//!   random phase); p50/p99/p99.9 device→ACK latency;
//! - **(c)** the same at 5,000 alarms/s (each device one alarm every 200 ms).
//!
//! Each phase runs `ONEKEY_BENCH_SECS` seconds (default 10); `ONEKEY_BENCH_BACKENDS` (default
//! `sqlite,postgres`) names the stores to run on. Settings come from the environment like
//! the server's (`ONEKEY_INTAKE__LINGER_MS=0` …). Writes a table to stdout and
//! `target/bench-results/alarm_load.csv` (one row per backend and phase, appended) and
//! `target/bench-results/alarm_load_linger<N>.svg` (latency percentiles at 1,000/s).

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

mod support;

use hdrhistogram::Histogram;
use onekey::config::Config;
use onekey_sim::fleet::{self, FleetConfig, FleetStats, Pace};
use tokio_util::sync::CancellationToken;

const DEVICES: usize = 1_000;

struct PhaseResult {
    backend: String,
    phase: &'static str,
    offered: Option<f64>,
    acked_per_s: f64,
    latency: Histogram<u64>,
    retries: u64,
    lost: u64,
}

fn ms(us: u64) -> f64 {
    us as f64 / 1000.0
}

#[tokio::main(flavor = "multi_thread")]
async fn main() -> anyhow::Result<()> {
    let secs = support::env_u64("ONEKEY_BENCH_SECS", 10);
    let base = Config::load(None).map_err(|e| anyhow::anyhow!("configuration: {e}"))?;
    let linger = base.intake.linger_ms;
    let dataset = onekey_sim::dataset::generate(1_300, 20, 7);
    let mut natives = dataset.native_devices();
    anyhow::ensure!(
        natives.len() >= DEVICES,
        "dataset has too few native devices"
    );
    natives.truncate(DEVICES);

    let backends =
        std::env::var("ONEKEY_BENCH_BACKENDS").unwrap_or_else(|_| "sqlite,postgres".into());
    let mut results = Vec::new();
    let tmp = tempfile::tempdir()?;
    let sqlite = format!("sqlite://{}", tmp.path().join("bench.db").display());
    if backends.contains("sqlite") {
        results.extend(run_backend("sqlite", &sqlite, &base, &dataset, &natives, secs).await?);
    }

    if backends.contains("postgres")
        && let Some(pg) = support::TempPostgres::create().await?
    {
        let r = run_backend("postgres", &pg.url, &base, &dataset, &natives, secs).await;
        pg.drop().await;
        results.extend(r?);
    }

    println!();
    println!(
        "alarm_load: {DEVICES} native devices over loopback, fsync on, linger {linger} ms, {secs} s per phase"
    );
    println!(
        "{:<9} {:<20} {:>10} {:>11} {:>9} {:>9} {:>9} {:>9} {:>8} {:>5}",
        "backend",
        "phase",
        "offered/s",
        "acked/s",
        "p50 ms",
        "p99 ms",
        "p99.9 ms",
        "max ms",
        "retries",
        "lost"
    );
    for r in &results {
        println!(
            "{:<9} {:<20} {:>10} {:>11.0} {:>9.2} {:>9.2} {:>9.2} {:>9.2} {:>8} {:>5}",
            r.backend,
            r.phase,
            r.offered.map(|o| format!("{o:.0}")).unwrap_or("max".into()),
            r.acked_per_s,
            ms(r.latency.value_at_quantile(0.5)),
            ms(r.latency.value_at_quantile(0.99)),
            ms(r.latency.value_at_quantile(0.999)),
            ms(r.latency.max()),
            r.retries,
            r.lost
        );
    }

    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/bench-results");
    std::fs::create_dir_all(&dir)?;
    let csv_path = dir.join("alarm_load.csv");
    let new = !csv_path.exists();
    let mut csv = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&csv_path)?;
    if new {
        writeln!(
            csv,
            "unix_time,backend,linger_ms,phase,devices,offered_per_s,acked_per_s,p50_ms,p99_ms,p999_ms,max_ms,retries,lost"
        )?;
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    for r in &results {
        writeln!(
            csv,
            "{now},{},{linger},{},{DEVICES},{},{:.1},{:.3},{:.3},{:.3},{:.3},{},{}",
            r.backend,
            r.phase,
            r.offered.map(|o| format!("{o:.0}")).unwrap_or_default(),
            r.acked_per_s,
            ms(r.latency.value_at_quantile(0.5)),
            ms(r.latency.value_at_quantile(0.99)),
            ms(r.latency.value_at_quantile(0.999)),
            ms(r.latency.max()),
            r.retries,
            r.lost
        )?;
    }
    let svg_path = dir.join(format!("alarm_load_linger{linger}.svg"));
    let fixed: Vec<&PhaseResult> = results.iter().filter(|r| r.offered.is_some()).collect();
    std::fs::write(&svg_path, latency_svg(&fixed, linger))?;
    println!("wrote {} and {}", csv_path.display(), svg_path.display());
    Ok(())
}

async fn run_backend(
    name: &str,
    url: &str,
    base: &Config,
    dataset: &onekey_sim::dataset::Dataset,
    natives: &[(u64, [u8; 32])],
    secs: u64,
) -> anyhow::Result<Vec<PhaseResult>> {
    let mut config = base.clone();
    config.database_url = url.to_string();
    config.secrets_key = Some(onekey::config::Redacted(
        onekey::store::Sealer::generate_key(),
    ));
    config.http_addr = "127.0.0.1:0".into();
    config.device_addr = "127.0.0.1:0".into();
    for addr in [
        &mut config.gt06_addr,
        &mut config.watch_addr,
        &mut config.h02_addr,
        &mut config.sia_addr,
    ] {
        *addr = "off".into();
    }
    let server = support::InProcessServer::start(name, config, dataset).await?;
    let addr = server
        .addrs
        .get("device_tcp")
        .cloned()
        .ok_or_else(|| anyhow::anyhow!("no native device listener"))?;

    let mut out = Vec::new();
    out.push(
        phase(
            name,
            "a: back-to-back",
            &addr,
            natives,
            Pace::BackToBack,
            None,
            1,
            secs,
        )
        .await,
    );
    out.push(
        phase(
            name,
            "b: fixed 1000/s",
            &addr,
            natives,
            Pace::Every {
                period: Duration::from_secs(1),
                poisson: false,
            },
            Some(1000.0),
            // Far above any number phase (a) used.
            100_000_000,
            secs,
        )
        .await,
    );
    out.push(
        phase(
            name,
            "c: fixed 5000/s",
            &addr,
            natives,
            Pace::Every {
                period: Duration::from_millis(200),
                poisson: false,
            },
            Some(5000.0),
            100_000_000,
            secs,
        )
        .await,
    );
    server.stop().await?;
    Ok(out)
}

#[allow(clippy::too_many_arguments)]
async fn phase(
    backend: &str,
    label: &'static str,
    addr: &str,
    natives: &[(u64, [u8; 32])],
    pace: Pace,
    offered: Option<f64>,
    seq_base: u32,
    secs: u64,
) -> PhaseResult {
    let mut config = FleetConfig::new(addr, natives.to_vec());
    config.pace = pace;
    config.heartbeat = Duration::from_secs(3600);
    config.repeat_share = 0.0;
    config.cancel_share = 0.0;
    config.mixed_kinds = false;
    config.seq_base = Some(seq_base);
    config.ack_timeout = Duration::from_secs(5);
    let stats = Arc::new(FleetStats::default());
    let stop = CancellationToken::new();
    let task = tokio::spawn(fleet::run(config, stats.clone(), stop.clone()));
    // Wait until every device is connected, then 1 s of warm-up, then measure.
    let deadline = Instant::now() + Duration::from_secs(60);
    while stats.connected.load(Ordering::Relaxed) < natives.len() as u64
        && Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let (acked0, retries0, lost0) = (
        stats.acked(),
        stats.retries.load(Ordering::Relaxed),
        stats.lost.load(Ordering::Relaxed),
    );
    if let Ok(mut h) = stats.latency.lock() {
        h.reset();
    }
    let t0 = Instant::now();
    tokio::time::sleep(Duration::from_secs(secs)).await;
    let elapsed = t0.elapsed().as_secs_f64();
    let acked = stats.acked() - acked0;
    let latency = stats.latency();
    let retries = stats.retries.load(Ordering::Relaxed) - retries0;
    let lost = stats.lost.load(Ordering::Relaxed) - lost0;
    stop.cancel();
    let _ = task.await;
    eprintln!("{backend} {label}: {}", stats.summary());
    PhaseResult {
        backend: backend.to_string(),
        phase: label,
        offered,
        acked_per_s: acked as f64 / elapsed,
        latency,
        retries,
        lost,
    }
}

/// A hand-written SVG: latency (ms) at each percentile, one line per backend.
fn latency_svg(results: &[&PhaseResult], linger: u64) -> String {
    const QS: &[(f64, &str)] = &[
        (0.50, "p50"),
        (0.75, "p75"),
        (0.90, "p90"),
        (0.95, "p95"),
        (0.99, "p99"),
        (0.995, "p99.5"),
        (0.999, "p99.9"),
        (1.0, "max"),
    ];
    let (w, h, left, right, top, bottom) = (720.0, 420.0, 70.0, 20.0, 40.0, 50.0);
    let max_ms = results
        .iter()
        .flat_map(|r| QS.iter().map(|(q, _)| ms(r.latency.value_at_quantile(*q))))
        .fold(1.0f64, f64::max)
        * 1.1;
    let x = |i: usize| left + (w - left - right) * i as f64 / (QS.len() - 1) as f64;
    let y = |v: f64| top + (h - top - bottom) * (1.0 - v / max_ms);
    let mut s = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" font-family=\"sans-serif\" font-size=\"12\">\n\
         <rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n\
         <text x=\"{left}\" y=\"24\" font-size=\"15\">Device→ACK latency at 1,000 alarms/s, {DEVICES} devices, linger {linger} ms</text>\n"
    );
    for t in 0..=5 {
        let v = max_ms * t as f64 / 5.0;
        s += &format!(
            "<line x1=\"{left}\" x2=\"{}\" y1=\"{y:.1}\" y2=\"{y:.1}\" stroke=\"#ddd\"/><text x=\"{}\" y=\"{:.1}\" text-anchor=\"end\">{v:.1}</text>\n",
            w - right,
            left - 6.0,
            y(v) + 4.0,
            y = y(v)
        );
    }
    for (i, (_, label)) in QS.iter().enumerate() {
        s += &format!(
            "<text x=\"{:.1}\" y=\"{}\" text-anchor=\"middle\">{label}</text>\n",
            x(i),
            h - bottom + 18.0
        );
    }
    s += &format!(
        "<text x=\"16\" y=\"{:.1}\" transform=\"rotate(-90 16 {:.1})\" text-anchor=\"middle\">ms</text>\n",
        h / 2.0,
        h / 2.0
    );
    let colours = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd"];
    for (n, r) in results.iter().enumerate() {
        let colour = colours[n % colours.len()];
        let points: Vec<String> = QS
            .iter()
            .enumerate()
            .map(|(i, (q, _))| format!("{:.1},{:.1}", x(i), y(ms(r.latency.value_at_quantile(*q)))))
            .collect();
        s += &format!(
            "<polyline fill=\"none\" stroke=\"{colour}\" stroke-width=\"2\" points=\"{}\"/>\n\
             <text x=\"{:.1}\" y=\"{:.1}\" fill=\"{colour}\">{} ({:.0} acked/s)</text>\n",
            points.join(" "),
            left + 10.0,
            top + 16.0 + 16.0 * n as f64,
            r.backend,
            r.acked_per_s
        );
    }
    s += "</svg>\n";
    s
}
