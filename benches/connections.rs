//! Connections held: how much server memory one idle GT06 connection costs, and how fast an SOS is
//! ACKed while they are held.
//!
//! Starts the `onekey` binary (SQLite), registers `CONNECTIONS` GT06 trackers (default 10,000; this
//! machine allows a process 20,000 open files, so at most ~19,000 here), logs every one in over
//! its own connection and sends one heartbeat each, then reads the server's resident memory
//! (`VmRSS`) and sends `SOS` alarms one after another from one more tracker. Cost per connection =
//! (RSS held − RSS before) / connections. Loopback only; bounded by the count.
//!
//!   cargo bench --bench connections
//!   CONNECTIONS=19000 cargo bench --bench connections
//!
//! Writes `target/bench-results/connections.json`.

#[path = "../tests/common/mod.rs"]
mod common;

use std::time::{Duration, Instant};

use common::{Db, TestServer};
use onekey_sim::deployed::{self as sim, RawDevice};

const WAIT: Duration = Duration::from_secs(30);
const SOS: usize = 200;

fn imei(i: usize) -> String {
    format!("86{:013}", 1_000_000 + i)
}

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

async fn login(addr: &str, i: usize) -> RawDevice {
    let mut d = RawDevice::connect(addr).await.expect("connect");
    d.send(&sim::gt06_login(&imei(i), 1)).await.expect("login");
    d.read_until(b"\r\n", WAIT).await.expect("login ACK");
    d
}

#[tokio::main]
async fn main() {
    let n: usize = std::env::var("CONNECTIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000)
        .min(19_000);
    let db = Db::sqlite();
    // `CONNECTIONS_WRAPPER="heaptrack -o /tmp/conn"` runs the server under a profiler (the RSS
    // figures are then the wrapper's, not the server's).
    let wrapper = std::env::var("CONNECTIONS_WRAPPER").unwrap_or_default();
    let wrapper: Vec<&str> = wrapper.split_whitespace().collect();
    let server = TestServer::start_wrapped(&db, &[("ONEKEY_LOG", "warn")], &wrapper).await;
    let mut csv = String::from("protocol,ident\n");
    for i in 0..=n {
        csv.push_str(&format!("gt06,{}\n", imei(i)));
    }
    server.import_csv(csv).await;
    let addr = server.addr("gt06");
    let pid = server.pid();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let before = rss_kib(pid);

    let started = Instant::now();
    let mut held = Vec::with_capacity(n);
    for chunk in (1..=n).collect::<Vec<_>>().chunks(500) {
        let logins = chunk.iter().map(|&i| login(&addr, i));
        held.extend(futures_util::future::join_all(logins).await);
        eprintln!("[connections] {} / {n} logged in", held.len());
    }
    let opened_in = started.elapsed();
    for (i, d) in held.iter_mut().enumerate() {
        d.send(&sim::gt06_status(0x44, 6, 4, 2 + (i % 100) as u16))
            .await
            .expect("heartbeat");
    }
    for d in held.iter_mut() {
        d.read_until(b"\r\n", WAIT).await.expect("heartbeat ACK");
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let after = rss_kib(pid);

    let mut caller = login(&addr, 0).await;
    let mut acks = hdrhistogram::Histogram::<u64>::new(3).expect("histogram");
    for k in 0..SOS {
        let t = Instant::now();
        caller
            .send(&sim::gt06_sos(100 + k as u16))
            .await
            .expect("SOS");
        caller.read_until(b"\r\n", WAIT).await.expect("SOS ACK");
        acks.record(t.elapsed().as_micros() as u64).ok();
    }
    let per_connection = (after.saturating_sub(before)) as f64 / n as f64;
    let ms = |q: f64| acks.value_at_quantile(q) as f64 / 1000.0;
    println!(
        "| connections held | server RSS before / held | per connection | SOS ACK p50 / p99 / max while held | opened in |"
    );
    println!("|---|---|---|---|---|");
    println!(
        "| {n} | {:.1} / {:.1} MiB | {per_connection:.2} KiB | {:.2} / {:.2} / {:.2} ms | {:.1} s |",
        before as f64 / 1024.0,
        after as f64 / 1024.0,
        ms(0.5),
        ms(0.99),
        acks.max() as f64 / 1000.0,
        opened_in.as_secs_f64()
    );
    let json = serde_json::json!({
        "connections": n,
        "rss_before_kib": before,
        "rss_held_kib": after,
        "kib_per_connection": per_connection,
        "sos_ack_ms": {"p50": ms(0.5), "p99": ms(0.99), "max": acks.max() as f64 / 1000.0},
        "opened_s": opened_in.as_secs_f64(),
    });
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/bench-results");
    std::fs::create_dir_all(&dir).ok();
    std::fs::write(
        dir.join("connections.json"),
        serde_json::to_vec_pretty(&json).unwrap_or_default(),
    )
    .ok();
    drop(held);
    server.stop().await;
}
