//! End-to-end alarms per second for each deployed protocol: `cargo bench --bench deployed_load`.
//!
//! Starts the server in-process (`onekey::app::serve`, every commit fsynced) on SQLite (a temp file)
//! and on PostgreSQL (a fresh database on 127.0.0.1:5432, `ONEKEY_TEST_PG` to change the admin URL),
//! imports a generated Jizhou dataset and, for GT06, 3G watch, H02 and SIA DC-09 in turn, connects
//! up to `ONEKEY_BENCH_DEVICES` (default 100) of its devices over loopback. Each device sends SOS
//! alarms back to back (a new serial, time or sequence each time, so that every one is a new alarm)
//! and waits for the protocol's reply, which the server writes only after the alarm is committed.
//!
//! Reported per protocol: alarms ACKed per second over `ONEKEY_BENCH_SECS` (default 10) after a
//! 1 s warm-up, device→ACK latency percentiles, and a check that the store holds at least as many
//! alarm events of that protocol as replies were received (an ACK without a stored alarm would
//! break it). Writes a table to stdout, `target/bench-results/deployed_load.csv` (appended) and
//! `target/bench-results/deployed_load.svg` (alarms/s per protocol and backend).

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

mod support;

use hdrhistogram::Histogram;
use onekey::config::Config;
use onekey_sim::dataset::Dataset;
use onekey_sim::deployed::{self as sim, RawDevice};
use sqlx::{Connection, Row};
use tokio_util::sync::CancellationToken;

const PROTOCOLS: [&str; 4] = ["gt06", "watch", "h02", "sia"];

struct Outcome {
    backend: &'static str,
    protocol: &'static str,
    devices: usize,
    acked_per_s: f64,
    latency: Histogram<u64>,
    acked_total: u64,
    stored_alarms: i64,
    timeouts: u64,
}

#[tokio::main(flavor = "multi_thread")]
async fn main() -> anyhow::Result<()> {
    let secs = support::env_u64("ONEKEY_BENCH_SECS", 10);
    let per_protocol = support::env_u64("ONEKEY_BENCH_DEVICES", 100) as usize;
    let base = Config::load(None).map_err(|e| anyhow::anyhow!("configuration: {e}"))?;
    let mut dataset = onekey_sim::dataset::generate(3_500, 30, 11);
    // The bench measures the plaintext DC-09 path (the simulator does not encrypt).
    for d in dataset.devices.iter_mut().filter(|d| d.protocol == "sia") {
        d.secret_hex = None;
    }

    let mut outcomes = Vec::new();
    let tmp = tempfile::tempdir()?;
    let sqlite = format!("sqlite://{}", tmp.path().join("bench.db").display());
    outcomes.extend(run_backend("sqlite", &sqlite, &base, &dataset, per_protocol, secs).await?);

    if let Some(pg) = support::TempPostgres::create().await? {
        let r = run_backend("postgres", &pg.url, &base, &dataset, per_protocol, secs).await;
        pg.drop().await;
        outcomes.extend(r?);
    }

    println!();
    println!(
        "deployed_load: back-to-back SOS alarms per device over loopback, fsync on, {secs} s per protocol"
    );
    println!(
        "{:<9} {:<6} {:>7} {:>9} {:>8} {:>8} {:>8} {:>8} {:>9} {:>9}",
        "backend",
        "proto",
        "devices",
        "acked/s",
        "p50 ms",
        "p99 ms",
        "max ms",
        "timeouts",
        "acked",
        "stored"
    );
    for o in &outcomes {
        println!(
            "{:<9} {:<6} {:>7} {:>9.0} {:>8.2} {:>8.2} {:>8.2} {:>8} {:>9} {:>9}",
            o.backend,
            o.protocol,
            o.devices,
            o.acked_per_s,
            ms(o.latency.value_at_quantile(0.5)),
            ms(o.latency.value_at_quantile(0.99)),
            ms(o.latency.max()),
            o.timeouts,
            o.acked_total,
            o.stored_alarms
        );
    }
    let broken: Vec<String> = outcomes
        .iter()
        .filter(|o| o.stored_alarms < o.acked_total as i64)
        .map(|o| format!("{} {}", o.backend, o.protocol))
        .collect();

    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/bench-results");
    std::fs::create_dir_all(&dir)?;
    let csv_path = dir.join("deployed_load.csv");
    let new = !csv_path.exists();
    let mut csv = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&csv_path)?;
    if new {
        writeln!(
            csv,
            "unix_time,backend,protocol,devices,secs,acked_per_s,p50_ms,p99_ms,max_ms,timeouts,acked,stored_alarms"
        )?;
    }
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    for o in &outcomes {
        writeln!(
            csv,
            "{now},{},{},{},{secs},{:.1},{:.3},{:.3},{:.3},{},{},{}",
            o.backend,
            o.protocol,
            o.devices,
            o.acked_per_s,
            ms(o.latency.value_at_quantile(0.5)),
            ms(o.latency.value_at_quantile(0.99)),
            ms(o.latency.max()),
            o.timeouts,
            o.acked_total,
            o.stored_alarms
        )?;
    }
    let svg_path = dir.join("deployed_load.svg");
    std::fs::write(&svg_path, bars_svg(&outcomes))?;
    println!("wrote {} and {}", csv_path.display(), svg_path.display());
    anyhow::ensure!(
        broken.is_empty(),
        "replies without a stored alarm: {broken:?}"
    );
    Ok(())
}

fn ms(us: u64) -> f64 {
    us as f64 / 1000.0
}

async fn run_backend(
    backend: &'static str,
    url: &str,
    base: &Config,
    dataset: &Dataset,
    per_protocol: usize,
    secs: u64,
) -> anyhow::Result<Vec<Outcome>> {
    let mut config = base.clone();
    config.database_url = url.to_string();
    config.secrets_key = Some(onekey::config::Redacted(
        onekey::store::Sealer::generate_key(),
    ));
    config.http_addr = "127.0.0.1:0".into();
    config.device_addr = "off".into();
    config.gt06_addr = "127.0.0.1:0".into();
    config.watch_addr = "127.0.0.1:0".into();
    config.h02_addr = "127.0.0.1:0".into();
    config.sia_addr = "127.0.0.1:0".into();
    config.dispatch.enabled = false;
    let server = support::InProcessServer::start(backend, config, dataset).await?;

    let mut out = Vec::new();
    for protocol in PROTOCOLS {
        let idents: Vec<String> = dataset
            .devices
            .iter()
            .filter(|d| d.protocol == protocol)
            .take(per_protocol)
            .map(|d| d.ident.clone())
            .collect();
        anyhow::ensure!(!idents.is_empty(), "no {protocol} devices in the dataset");
        let addr = server
            .addrs
            .get(protocol)
            .cloned()
            .ok_or_else(|| anyhow::anyhow!("no {protocol} listener"))?;
        let mut o = phase(backend, protocol, &addr, &idents, secs).await;
        o.stored_alarms = stored_alarms(url, protocol).await?;
        eprintln!(
            "{backend} {protocol}: {:.0} alarms/s, {} replies, {} alarms stored",
            o.acked_per_s, o.acked_total, o.stored_alarms
        );
        out.push(o);
    }
    server.stop().await?;
    Ok(out)
}

/// Alarm events of one protocol in the store.
async fn stored_alarms(url: &str, protocol: &str) -> anyhow::Result<i64> {
    let sql = format!(
        "SELECT COUNT(*) FROM device_events e JOIN devices d ON d.id = e.device_id \
         WHERE d.protocol = '{protocol}' AND e.kind = 'alarm'"
    );
    let n = if url.starts_with("sqlite:") {
        let mut c = sqlx::SqliteConnection::connect(url).await?;
        sqlx::query(&sql).fetch_one(&mut c).await?.try_get(0)?
    } else {
        let mut c = sqlx::PgConnection::connect(url).await?;
        sqlx::query(&sql).fetch_one(&mut c).await?.try_get(0)?
    };
    Ok(n)
}

/// The `n`th alarm of a device and the byte that ends the server's reply to it.
fn alarm(protocol: &str, ident: &str, n: u32) -> (Vec<u8>, &'static [u8]) {
    let t = n % 86_400;
    let hhmmss = format!("{:02}{:02}{:02}", t / 3600, t / 60 % 60, t % 60);
    match protocol {
        "gt06" => (sim::gt06_sos(n as u16), b"\r\n"),
        "watch" => (sim::watch_sos(ident, &hhmmss), b"]"),
        "h02" => (
            sim::h02_v1(ident, sim::H02_STATUS_SOS, &hhmmss, "281126"),
            b"#",
        ),
        _ => {
            let unix = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_secs() as i64)
                .unwrap_or(0);
            let frame = sim::dc09(
                "ADM-CID",
                (n % 9_999 + 1) as u16,
                ident,
                &format!("#{ident}|1101 01 001"),
                &sim::dc09_timestamp(unix),
            );
            (frame, b"\r")
        }
    }
}

async fn phase(
    backend: &'static str,
    protocol: &'static str,
    addr: &str,
    idents: &[String],
    secs: u64,
) -> Outcome {
    let measuring = Arc::new(AtomicBool::new(false));
    let acked = Arc::new(AtomicU64::new(0));
    let acked_total = Arc::new(AtomicU64::new(0));
    let timeouts = Arc::new(AtomicU64::new(0));
    let stop = CancellationToken::new();
    let mut tasks = Vec::new();
    for ident in idents {
        let (addr, ident) = (addr.to_string(), ident.clone());
        let (measuring, acked, acked_total, timeouts, stop) = (
            measuring.clone(),
            acked.clone(),
            acked_total.clone(),
            timeouts.clone(),
            stop.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let mut hist = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).ok()?;
            let mut device = RawDevice::connect(&addr).await.ok()?;
            if protocol == "gt06" {
                device.send(&sim::gt06_login(&ident, 0)).await.ok()?;
                device.read_until(b"\r\n", Duration::from_secs(10)).await?;
            }
            let mut n = 1u32;
            while !stop.is_cancelled() {
                let (frame, end) = alarm(protocol, &ident, n);
                n += 1;
                let t0 = Instant::now();
                device.send(&frame).await.ok()?;
                match device.read_until(end, Duration::from_secs(10)).await {
                    Some(_) => {
                        acked_total.fetch_add(1, Ordering::Relaxed);
                        if measuring.load(Ordering::Relaxed) {
                            acked.fetch_add(1, Ordering::Relaxed);
                            let _ = hist.record(t0.elapsed().as_micros() as u64);
                        }
                    }
                    None => {
                        timeouts.fetch_add(1, Ordering::Relaxed);
                        return Some(hist);
                    }
                }
            }
            Some(hist)
        }));
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    measuring.store(true, Ordering::Relaxed);
    let t0 = Instant::now();
    tokio::time::sleep(Duration::from_secs(secs)).await;
    measuring.store(false, Ordering::Relaxed);
    let elapsed = t0.elapsed().as_secs_f64();
    stop.cancel();
    let mut latency = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).expect("bounds");
    let mut connected = 0;
    for t in tasks {
        if let Ok(Some(h)) = t.await {
            connected += 1;
            let _ = latency.add(&h);
        }
    }
    if connected < idents.len() {
        eprintln!(
            "{backend} {protocol}: {} of {} devices failed to connect or log in",
            idents.len() - connected,
            idents.len()
        );
    }
    Outcome {
        backend,
        protocol,
        devices: idents.len(),
        acked_per_s: acked.load(Ordering::Relaxed) as f64 / elapsed,
        latency,
        acked_total: acked_total.load(Ordering::Relaxed),
        stored_alarms: 0,
        timeouts: timeouts.load(Ordering::Relaxed),
    }
}

/// A hand-written SVG bar chart: alarms ACKed per second, per protocol and backend.
fn bars_svg(outcomes: &[Outcome]) -> String {
    let (w, h, left, top, bottom) = (720.0, 380.0, 70.0, 50.0, 50.0);
    let max = outcomes
        .iter()
        .map(|o| o.acked_per_s)
        .fold(1.0f64, f64::max)
        * 1.15;
    let slot = (w - left - 20.0) / PROTOCOLS.len() as f64;
    let y = |v: f64| top + (h - top - bottom) * (1.0 - v / max);
    let mut s = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" font-family=\"sans-serif\" font-size=\"12\">\n\
         <rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n\
         <text x=\"{left}\" y=\"24\" font-size=\"15\">SOS alarms ACKed after commit per second, per protocol (back to back)</text>\n\
         <text x=\"{left}\" y=\"40\" fill=\"#1f77b4\">■ SQLite</text><text x=\"{}\" y=\"40\" fill=\"#d62728\">■ PostgreSQL</text>\n",
        left + 80.0
    );
    for t in 0..=4 {
        let v = max * t as f64 / 4.0;
        s += &format!(
            "<line x1=\"{left}\" x2=\"{}\" y1=\"{y:.1}\" y2=\"{y:.1}\" stroke=\"#ddd\"/><text x=\"{}\" y=\"{:.1}\" text-anchor=\"end\">{v:.0}</text>\n",
            w - 20.0,
            left - 6.0,
            y(v) + 4.0,
            y = y(v)
        );
    }
    for (i, p) in PROTOCOLS.iter().enumerate() {
        let x0 = left + slot * i as f64;
        s += &format!(
            "<text x=\"{:.1}\" y=\"{}\" text-anchor=\"middle\">{p}</text>\n",
            x0 + slot / 2.0,
            h - bottom + 18.0
        );
        for (j, (backend, colour)) in [("sqlite", "#1f77b4"), ("postgres", "#d62728")]
            .iter()
            .enumerate()
        {
            if let Some(o) = outcomes
                .iter()
                .find(|o| o.protocol == *p && o.backend == *backend)
            {
                let bx = x0 + slot * 0.15 + j as f64 * slot * 0.35;
                s += &format!(
                    "<rect x=\"{bx:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{:.1}\" fill=\"{colour}\"/>\
                     <text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{:.0}</text>\n",
                    y(o.acked_per_s),
                    slot * 0.3,
                    h - bottom - y(o.acked_per_s),
                    bx + slot * 0.15,
                    y(o.acked_per_s) - 4.0,
                    o.acked_per_s
                );
            }
        }
    }
    s += "</svg>\n";
    s
}
