//! MQTT load: alarms/s and latency end to end (device publish → broker → OneKey → commit → ACK on
//! the downlink → device), beside the same broker's own publish → subscribe round trip measured in
//! the same run with the same concurrency. Loopback only; bounded count and time.
//!
//! `cargo bench --bench mqtt_load` (system Mosquitto at 127.0.0.1:1883). Environment:
//! `MQTT_LOAD_BROKER=embedded` for the embedded broker (or `host:port` of another), `MQTT_LOAD_DEVICES` (32) concurrent devices,
//! `MQTT_LOAD_COUNT` (6000) alarms at most, `MQTT_LOAD_SECS` (20) seconds at most per path,
//! `MQTT_LOAD_DB=postgres` for a fresh database on the local PostgreSQL instead of SQLite.

#[path = "../tests/common/mod.rs"]
mod common;
#[path = "../tests/mqtt_support/mod.rs"]
mod mqtt_support;

use std::time::{Duration, Instant};

use common::{Db, TestServer};
use hdrhistogram::Histogram;
use mqtt_support::*;
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};

const KEY: [u8; 32] = [0x42; 32];

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

struct Run {
    count: u64,
    elapsed: Duration,
    hist: Histogram<u64>,
    lost: u64,
}

/// `devices` closed loops, each sending one alarm and waiting for its ACK, until `count` alarms or
/// `secs` seconds.
async fn alarms(
    broker: &str,
    prefix: &str,
    server: &TestServer,
    devices: u64,
    count: u64,
    secs: u64,
) -> Run {
    let mut handles = Vec::new();
    let per_device = count.div_ceil(devices);
    let deadline = Instant::now() + Duration::from_secs(secs);
    let start_gate = std::sync::Arc::new(tokio::sync::Barrier::new(devices as usize));
    for d in 0..devices {
        let ident = format!("load-{d}");
        register_json_device(server, &ident, &KEY).await;
        let mut device = JsonDevice::connect(broker, prefix, &ident).await;
        let gate = start_gate.clone();
        handles.push(tokio::spawn(async move {
            let mut hist = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).expect("histogram");
            let mut lost = 0;
            gate.wait().await;
            for seq in 1..=per_device as u32 {
                if Instant::now() > deadline {
                    break;
                }
                let sent = Instant::now();
                match device
                    .send_until_acked(
                        json_uplink(&ident, &KEY, seq, "sos"),
                        seq,
                        Duration::from_secs(5),
                        Duration::from_secs(15),
                    )
                    .await
                {
                    Some(_) => {
                        let _ = hist.record(sent.elapsed().as_micros() as u64);
                    }
                    None => lost += 1,
                }
            }
            (hist, lost)
        }));
    }
    let started = Instant::now();
    let mut hist = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).expect("histogram");
    let mut lost = 0;
    for h in handles {
        let (h, l) = h.await.expect("device task");
        hist.add(&h).expect("merge");
        lost += l;
    }
    Run {
        count: hist.len(),
        elapsed: started.elapsed(),
        hist,
        lost,
    }
}

/// The broker alone: `clients` closed loops, each publishing QoS 1 to its own topic and waiting to
/// receive it on its own subscription.
async fn broker_echo(broker: &str, prefix: &str, clients: u64, count: u64, secs: u64) -> Run {
    let (host, port) = host_port(broker);
    let per_client = count.div_ceil(clients);
    let deadline = Instant::now() + Duration::from_secs(secs);
    let gate = std::sync::Arc::new(tokio::sync::Barrier::new(clients as usize));
    let mut handles = Vec::new();
    for c in 0..clients {
        let topic = format!("{prefix}/bench/echo/{c}");
        let mut o = MqttOptions::new(unique("echo"), host.clone(), port);
        o.set_credentials(mqtt_support::BROKER_USER, mqtt_support::BROKER_PASSWORD);
        o.set_keep_alive(Duration::from_secs(10));
        let (client, mut eventloop) = AsyncClient::new(o, 64);
        eventloop.set_network_options(onekey::mqtt::network_options());
        client
            .subscribe(topic.clone(), QoS::AtLeastOnce)
            .await
            .expect("subscribe");
        loop {
            if let Ok(Event::Incoming(Packet::SubAck(_))) = eventloop.poll().await {
                break;
            }
        }
        let gate = gate.clone();
        handles.push(tokio::spawn(async move {
            let mut hist = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).expect("histogram");
            gate.wait().await;
            for i in 0..per_client {
                if Instant::now() > deadline {
                    break;
                }
                let sent = Instant::now();
                let _ = client.try_publish(
                    topic.clone(),
                    QoS::AtLeastOnce,
                    false,
                    i.to_be_bytes().to_vec(),
                );
                loop {
                    match tokio::time::timeout(Duration::from_secs(5), eventloop.poll()).await {
                        Ok(Ok(Event::Incoming(Packet::Publish(p))))
                            if p.payload.as_ref() == i.to_be_bytes() =>
                        {
                            break;
                        }
                        Ok(_) => {}
                        Err(_) => break,
                    }
                }
                let _ = hist.record(sent.elapsed().as_micros() as u64);
            }
            hist
        }));
    }
    let started = Instant::now();
    let mut hist = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).expect("histogram");
    for h in handles {
        hist.add(h.await.expect("echo task")).expect("merge");
    }
    Run {
        count: hist.len(),
        elapsed: started.elapsed(),
        hist,
        lost: 0,
    }
}

fn row(name: &str, r: &Run) {
    let ms = |q: f64| r.hist.value_at_quantile(q) as f64 / 1000.0;
    println!(
        "| {name:<44} | {:>6} | {:>9.0} | {:>8.2} | {:>8.2} | {:>8.2} | {:>4} |",
        r.count,
        r.count as f64 / r.elapsed.as_secs_f64(),
        ms(0.5),
        ms(0.99),
        r.hist.max() as f64 / 1000.0,
        r.lost
    );
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let devices = env_or("MQTT_LOAD_DEVICES", 32).max(1);
    let count = env_or("MQTT_LOAD_COUNT", 6000).max(1);
    let secs = env_or("MQTT_LOAD_SECS", 20).max(1);
    let choice = std::env::var("MQTT_LOAD_BROKER").unwrap_or_else(|_| "127.0.0.1:1883".into());
    let embedded = choice == "embedded";
    let url = format!("mqtt://{choice}");
    let prefix = unique("load");
    let postgres = std::env::var("MQTT_LOAD_DB").is_ok_and(|d| d == "postgres");
    let db = if postgres {
        Db::postgres().await
    } else {
        Db::sqlite()
    };
    let mut env = vec![
        ("ONEKEY_MQTT_PREFIX", prefix.as_str()),
        ("ONEKEY_LOG", "warn"),
    ];
    if !embedded {
        env.push(("ONEKEY_MQTT_URL", url.as_str()));
    }
    let server = TestServer::start(&db, &env).await;
    wait_broker_up(&server).await;
    let broker = if embedded {
        server.addr("mqtt")
    } else {
        choice.clone()
    };
    let which = if embedded {
        "embedded rumqttd"
    } else {
        "Mosquitto"
    };
    println!(
        "\nMQTT load: {which} at {broker}, {devices} concurrent devices, ≤{count} alarms, ≤{secs} s, {} store\n",
        if postgres { "PostgreSQL" } else { "SQLite" }
    );
    let echo = broker_echo(&broker, &prefix, devices, count, secs).await;
    let run = alarms(&broker, &prefix, &server, devices, count, secs).await;
    println!(
        "| path                                         |  count |   msgs/s  | p50 ms   | p99 ms   | max ms   | lost |"
    );
    println!(
        "|----------------------------------------------|--------|-----------|----------|----------|----------|------|"
    );
    row("broker only: publish → subscribe (QoS 1)", &echo);
    row("alarm: publish → commit → downlink ACK", &run);
    let stored = server
        .metric(r#"onekey_intake_events_total{outcome="stored"}"#)
        .await;
    let mut means = Vec::new();
    for name in ["onekey_intake_commit_seconds", "onekey_intake_batch_size"] {
        let sum = server.metric(&format!("{name}_sum")).await;
        let n = server.metric(&format!("{name}_count")).await;
        means.push(if n > 0.0 { sum / n } else { 0.0 });
    }
    println!(
        "\nevents stored by the server: {stored}; group commits: mean {:.1} ms, mean batch {:.1} events",
        means[0] * 1000.0,
        means[1]
    );
    let _ = server.stop().await;
}
