//! Capacity of 1, 2 and 3 instances on one PostgreSQL database: `cargo bench --bench instances`.
//!
//! For each instance count N, on a fresh database of its own on the PostgreSQL of `ONEKEY_TEST_PG`
//! (default 127.0.0.1:5432), starts N `onekey` processes (the binary this bench profile builds),
//! imports a generated Jizhou dataset, and spreads the devices round-robin over the instances'
//! own listeners (no load balancer in the path: HAProxy would take a share of the same two cores):
//! - **alarms**: `ONEKEY_BENCH_DEVICES` native devices (default 1,000, the same for every N) send
//!   SOS alarms back to back, each waiting for its ACK (closed loop); alarms ACKed per second over
//!   `ONEKEY_BENCH_SECS` (default 10) after a 2 s warm-up, and frame→ACK p50/p99;
//! - **connections**: then `ONEKEY_BENCH_CONNECTIONS` GT06 trackers per instance (default 3,000;
//!   a process may open 20,000 files here) log in over their own connections and send a
//!   heartbeat; after 3 s every one heartbeats again, and a connection counts as held when that
//!   second heartbeat is answered. Server memory per connection = (RSS held − RSS before) /
//!   connections held, per instance (`VmRSS`); the first instance, which imported the dataset,
//!   is shown apart (its allocator reuses memory the import freed).
//!
//! Runs it all `ONEKEY_BENCH_RUNS` times (default 3); loopback only, bounded by the counts and
//! the phase length. Prints a table (min–max over the runs) and writes every run to
//! `target/bench-results/instances.json`.

#[path = "../tests/common/mod.rs"]
mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{Db, TestServer};
use onekey_sim::deployed::{self as sim, RawDevice};
use onekey_sim::fleet::{self, FleetConfig, FleetStats, Pace};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

const WAIT: Duration = Duration::from_secs(30);

fn env_u64(key: &str, default: u64) -> u64 {
    std::env::var(key)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
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

fn imei(i: usize) -> String {
    format!("86{:013}", 2_000_000 + i)
}

/// One measurement of N instances.
struct Run {
    instances: usize,
    devices: usize,
    acked_per_s: f64,
    p50_ms: f64,
    p99_ms: f64,
    retries: u64,
    lost: u64,
    connections_per_instance: usize,
    held: usize,
    rss_before_kib: Vec<u64>,
    rss_held_kib: Vec<u64>,
    /// Per instance: its RSS growth over the connections it holds.
    kib_per_connection: Vec<f64>,
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let secs = env_u64("ONEKEY_BENCH_SECS", 10);
    let devices = env_u64("ONEKEY_BENCH_DEVICES", 1_000) as usize;
    let connections = (env_u64("ONEKEY_BENCH_CONNECTIONS", 3_000) as usize).min(6_000);
    let runs = env_u64("ONEKEY_BENCH_RUNS", 3).max(1);
    let counts: Vec<usize> = std::env::var("ONEKEY_BENCH_INSTANCES")
        .unwrap_or_else(|_| "1,2,3".into())
        .split(',')
        .filter_map(|n| n.trim().parse().ok())
        .filter(|n| (1..=3).contains(n))
        .collect();
    let dataset = onekey_sim::dataset::generate(1_300, 20, 7);
    let mut natives = dataset.native_devices();
    assert!(natives.len() >= devices, "the dataset has too few devices");
    natives.truncate(devices);

    let mut all = Vec::new();
    for run in 1..=runs {
        for &n in &counts {
            eprintln!("[instances] run {run}/{runs}: {n} instance(s)");
            all.push(measure(n, &dataset, &natives, connections, secs).await);
        }
    }

    println!();
    println!(
        "instances: {devices} native devices back to back (closed loop), {secs} s per phase, \
         {connections} GT06 connections per instance, {runs} run(s), {} cores, loopback",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    println!(
        "| instances | alarms ACKed/s | frame→ACK p50 | frame→ACK p99 | retries / lost | connections held | RSS per connection, first instance | RSS per connection, the others | RSS per instance, held |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    let range = |v: Vec<f64>, digits: usize| {
        let lo = v.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        if (hi - lo).abs() < 10f64.powi(-(digits as i32)) {
            format!("{lo:.digits$}")
        } else {
            format!("{lo:.digits$}–{hi:.digits$}")
        }
    };
    let mut summary = Vec::new();
    for &n in &counts {
        let of: Vec<&Run> = all.iter().filter(|r| r.instances == n).collect();
        let get = |f: fn(&Run) -> f64| of.iter().map(|r| f(r)).collect::<Vec<f64>>();
        println!(
            "| {n} | {} | {} ms | {} ms | {} / {} | {} of {} | {} KiB | {} | {} MiB |",
            range(get(|r| r.acked_per_s), 0),
            range(get(|r| r.p50_ms), 1),
            range(get(|r| r.p99_ms), 1),
            range(get(|r| r.retries as f64), 0),
            range(get(|r| r.lost as f64), 0),
            range(get(|r| r.held as f64), 0),
            n * connections,
            range(get(|r| r.kib_per_connection[0]), 1),
            if n > 1 {
                let others = of
                    .iter()
                    .flat_map(|r| r.kib_per_connection[1..].to_vec())
                    .collect();
                format!("{} KiB", range(others, 1))
            } else {
                "–".into()
            },
            range(
                of.iter()
                    .flat_map(|r| r.rss_held_kib.iter().map(|k| *k as f64 / 1024.0))
                    .collect(),
                0,
            ),
        );
        summary.push(json!({
            "instances": n,
            "acked_per_s": get(|r| r.acked_per_s),
            "p99_ms": get(|r| r.p99_ms),
        }));
    }
    let json = json!({
        "machine": {
            "cores": std::thread::available_parallelism().map_or(0, |n| n.get()),
            "network": "loopback; load generator, instances and PostgreSQL on the same machine",
        },
        "devices": devices,
        "secs": secs,
        "connections_per_instance": connections,
        "spread": "round-robin over the instances' own listeners",
        "runs": all.iter().map(|r| json!({
            "instances": r.instances,
            "devices": r.devices,
            "acked_per_s": r.acked_per_s,
            "p50_ms": r.p50_ms,
            "p99_ms": r.p99_ms,
            "retries": r.retries,
            "lost": r.lost,
            "connections_per_instance": r.connections_per_instance,
            "connections_held": r.held,
            "rss_before_kib": r.rss_before_kib,
            "rss_held_kib": r.rss_held_kib,
            "kib_per_connection": r.kib_per_connection,
        })).collect::<Vec<Value>>(),
        "summary": summary,
    });
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/bench-results");
    std::fs::create_dir_all(&dir).expect("target/bench-results");
    let path = dir.join("instances.json");
    std::fs::write(
        &path,
        serde_json::to_vec_pretty(&json).expect("results as JSON"),
    )
    .expect("write the results");
    println!("wrote {}", path.display());
}

async fn measure(
    n: usize,
    dataset: &onekey_sim::dataset::Dataset,
    natives: &[(u64, [u8; 32])],
    connections: usize,
    secs: u64,
) -> Run {
    let db = Db::postgres().await;
    let quiet = [("ONEKEY_LOG", "warn")];
    let first = TestServer::start(&db, &quiet).await;
    first.import_dataset(dataset).await;
    let mut csv = String::from("protocol,ident\n");
    for i in 0..n * connections {
        csv.push_str(&format!("gt06,{}\n", imei(i)));
    }
    first.import_csv(csv).await;
    let mut servers = vec![first];
    for _ in 1..n {
        servers.push(TestServer::start(&db, &quiet).await);
    }

    // Alarms: the devices dealt round-robin, one fleet per instance, counted together.
    let stats = Arc::new(FleetStats::default());
    let stop = CancellationToken::new();
    let mut fleets = Vec::new();
    for (k, server) in servers.iter().enumerate() {
        let mine: Vec<(u64, [u8; 32])> = natives.iter().skip(k).step_by(n).copied().collect();
        let mut config = FleetConfig::new(server.addr("device_tcp"), mine);
        config.pace = Pace::BackToBack;
        config.heartbeat = Duration::from_secs(3600);
        config.repeat_share = 0.0;
        config.cancel_share = 0.0;
        config.mixed_kinds = false;
        config.seq_base = Some(1);
        config.ack_timeout = Duration::from_secs(5);
        fleets.push(tokio::spawn(fleet::run(
            config,
            stats.clone(),
            stop.clone(),
        )));
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    while stats.connected.load(std::sync::atomic::Ordering::Relaxed) < natives.len() as u64 {
        assert!(Instant::now() < deadline, "devices not connected in 60 s");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let counters = |s: &FleetStats| {
        (
            s.acked(),
            s.retries.load(std::sync::atomic::Ordering::Relaxed),
            s.lost.load(std::sync::atomic::Ordering::Relaxed),
        )
    };
    let (acked0, retries0, lost0) = counters(&stats);
    if let Ok(mut h) = stats.latency.lock() {
        h.reset();
    }
    let t0 = Instant::now();
    tokio::time::sleep(Duration::from_secs(secs)).await;
    let elapsed = t0.elapsed().as_secs_f64();
    let (acked1, retries1, lost1) = counters(&stats);
    let latency = stats.latency();
    stop.cancel();
    for f in fleets {
        let _ = f.await;
    }
    eprintln!("[instances] {n}: {}", stats.summary());

    // Connections: GT06 trackers logged in and heartbeating on every instance.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let rss_before: Vec<u64> = servers.iter().map(|s| rss_kib(s.pid())).collect();
    let mut held = Vec::with_capacity(n * connections);
    let indices: Vec<usize> = (0..n * connections).collect();
    for chunk in indices.chunks(500) {
        let logins = chunk.iter().map(|&i| {
            let addr = servers[i % n].addr("gt06");
            async move {
                let mut d = RawDevice::connect(&addr).await.ok()?;
                d.send(&sim::gt06_login(&imei(i), 1)).await.ok()?;
                d.read_until(b"\r\n", WAIT).await?;
                Some((i % n, d))
            }
        });
        held.extend(
            futures_util::future::join_all(logins)
                .await
                .into_iter()
                .flatten(),
        );
    }
    for serial in [2u16, 3] {
        let beats = held.iter_mut().enumerate().map(|(i, (_, d))| async move {
            d.send(&sim::gt06_status(0x44, 6, 4, serial + (i % 100) as u16 * 2))
                .await
                .ok()?;
            d.read_until(b"\r\n", WAIT).await
        });
        let answered = futures_util::future::join_all(beats).await;
        let mut kept = Vec::with_capacity(held.len());
        for (d, ok) in held.into_iter().zip(answered) {
            if ok.is_some() {
                kept.push(d);
            }
        }
        held = kept;
        tokio::time::sleep(Duration::from_secs(3)).await;
    }
    let rss_held: Vec<u64> = servers.iter().map(|s| rss_kib(s.pid())).collect();
    let count = held.len();
    let per_instance: Vec<f64> = (0..n)
        .map(|k| {
            let on_k = held.iter().filter(|(at, _)| *at == k).count().max(1);
            rss_held[k].saturating_sub(rss_before[k]) as f64 / on_k as f64
        })
        .collect();
    drop(held);
    for s in servers {
        s.stop().await;
    }
    let ms = |q: f64| latency.value_at_quantile(q) as f64 / 1000.0;
    Run {
        instances: n,
        devices: natives.len(),
        acked_per_s: (acked1 - acked0) as f64 / elapsed,
        p50_ms: ms(0.5),
        p99_ms: ms(0.99),
        retries: retries1 - retries0,
        lost: lost1 - lost0,
        connections_per_instance: connections,
        held: count,
        rss_before_kib: rss_before,
        rss_held_kib: rss_held,
        kib_per_connection: per_instance,
    }
}
