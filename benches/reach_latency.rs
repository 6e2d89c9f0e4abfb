//! How fast an alarm reaches people, end to end on the real binary: from the moment a native
//! device sends its SOS to (0) its ACK and to the incident's `opened` event on an operator's
//! console stream (`/api/v1/stream`, read as the console reads it), and from the moment the SOS is
//! ACKed to (1) the first offer arriving at a `mosquitto_sub` subscribed to the volunteers' task
//! topics and (2) the family's SMS arriving at the SMS centre as `submit_sm`.
//!
//! `cargo bench --bench reach_latency` (`ONEKEY_BENCH_ALARMS`, default 200; `ONEKEY_BENCH_BROKER`
//! = `host:port` of the broker, default a private Mosquitto with `set_tcp_nodelay true`). The
//! alarms come one after another from different elders, each opening its own incident. Writes
//! `target/bench-results/reach_latency.json`.

#[path = "../tests/common/mod.rs"]
mod common;
#[path = "../tests/mqtt_support/mod.rs"]
mod mqtt_support;

use std::collections::HashMap;
use std::process::Stdio;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::peers::Smsc;
use common::{Db, EventStream, TestServer};
use hdrhistogram::Histogram;
use onekey_protocol::AlarmKind;
use onekey_sim::native::{NativeDevice, demo_key};
use serde_json::json;
use tokio::io::{AsyncBufReadExt, BufReader};

fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0)
}

fn summary(name: &str, h: &Histogram<u64>) -> serde_json::Value {
    let ms = |q: f64| h.value_at_quantile(q) as f64 / 1000.0;
    println!(
        "{name:<34} n={:>4}  p50 {:>7.2} ms  p90 {:>7.2} ms  p99 {:>7.2} ms  max {:>7.2} ms",
        h.len(),
        ms(0.5),
        ms(0.9),
        ms(0.99),
        h.max() as f64 / 1000.0
    );
    json!({ "n": h.len(), "p50_ms": ms(0.5), "p90_ms": ms(0.9), "p99_ms": ms(0.99),
            "max_ms": h.max() as f64 / 1000.0 })
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let alarms = std::env::var("ONEKEY_BENCH_ALARMS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200u64);
    let mut private = None;
    let broker = match std::env::var("ONEKEY_BENCH_BROKER") {
        Ok(b) => b,
        Err(_) => {
            let b = mqtt_support::PrivateBroker::start_with(false, "set_tcp_nodelay true\n").await;
            let addr = b.addr.clone();
            private = Some(b);
            addr
        }
    };
    let smsc = Smsc::start(0).await;
    let prefix = mqtt_support::unique("bench");
    let db = Db::sqlite();
    let mut env = smsc.env();
    env.extend([
        ("ONEKEY_MQTT_URL", format!("mqtt://{broker}")),
        ("ONEKEY_MQTT_PREFIX", prefix.clone()),
        ("ONEKEY_NOTIFY__DELIVERY__RECEIPT_TIMEOUT_S", "3600".into()),
        ("ONEKEY_LOG", "warn".into()),
    ]);
    let env_ref: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let server = TestServer::start(&db, &env_ref).await;
    mqtt_support::wait_broker_up(&server).await;
    smsc.wait_bound(Duration::from_secs(20)).await;
    for i in 0..5 {
        server
            .responder_on_duty(
                &format!("志愿者{i}"),
                &format!("1390000{i:04}"),
                27.1101,
                114.9801,
            )
            .await;
    }
    let (host, port) = broker.rsplit_once(':').expect("host:port");
    let mut sub = tokio::process::Command::new("mosquitto_sub")
        .args(["-h", host, "-p", port, "-q", "1", "-F", "%U %p"])
        .args(["-t", &format!("{prefix}/responder/+/tasks")])
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()?;
    let mut lines = BufReader::new(sub.stdout.take().expect("stdout")).lines();
    tokio::time::sleep(Duration::from_millis(500)).await;

    // The console stream, read on a task of its own so that each event is stamped as it arrives.
    let (opened_tx, mut opened) = tokio::sync::mpsc::unbounded_channel();
    let mut stream = EventStream::open(&server, None).await;
    tokio::spawn(async move {
        while let Some(event) = stream.next(Duration::from_secs(3600)).await {
            if event.data["kind"] == "opened" && opened_tx.send(now_us()).is_err() {
                break;
            }
        }
    });
    let mut ack = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3)?;
    let mut console = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3)?;
    let mut offer = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3)?;
    let mut sms = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3)?;
    let mut acked_at: HashMap<String, u64> = HashMap::new();
    for i in 0..alarms {
        let name = format!("老人{i:05}");
        let phone = format!("1380{i:07}");
        let (status, elder) = server
            .post(
                "/api/v1/elders",
                json!({ "name": name, "address": "吉州区 文山街道 1 号", "lat": 27.11,
                        "lon": 114.98, "living": "alone",
                        "contacts": [{ "name": "家属", "phone": phone }] }),
            )
            .await;
        anyhow::ensure!(status == 201, "{elder}");
        let id = 870_000_000_000_000 + i;
        let key = demo_key(id);
        server
            .register_device(
                "native",
                &id.to_string(),
                Some(&hex::encode(key)),
                elder["id"].as_i64(),
            )
            .await;
        let mut device = NativeDevice::connect(&server.addr("device_tcp"), id, key).await?;
        device.hello(Duration::from_secs(10)).await?;
        let sent = now_us();
        device
            .alarm(AlarmKind::Sos, None, Duration::from_secs(10))
            .await?;
        let acked = now_us();
        ack.record(acked.saturating_sub(sent).max(1))?;
        // Alarms come one at a time, each opening its own incident: the next `opened` is this one.
        let shown = tokio::time::timeout(Duration::from_secs(10), opened.recv())
            .await
            .map_err(|_| anyhow::anyhow!("no opened event on the console for {name}"))?
            .ok_or_else(|| anyhow::anyhow!("the console stream ended"))?;
        console.record(shown.saturating_sub(sent).max(1))?;
        acked_at.insert(phone, acked);
        // The first offer for this elder.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let line = tokio::time::timeout_at(deadline, lines.next_line())
                .await
                .map_err(|_| anyhow::anyhow!("no offer for {name} within 10 s"))??
                .ok_or_else(|| anyhow::anyhow!("mosquitto_sub ended"))?;
            let Some((ts, payload)) = line.split_once(' ') else {
                continue;
            };
            let v: serde_json::Value = serde_json::from_str(payload).unwrap_or_default();
            if v["type"] == "offer" && v["elder"] == name.as_str() {
                let at = (ts.parse::<f64>().unwrap_or(0.0) * 1e6) as u64;
                offer.record(at.saturating_sub(acked).max(1))?;
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let got = smsc
        .wait_messages(alarms as usize, Duration::from_secs(60))
        .await;
    for m in got {
        if let (Some(to), Some(at)) = (m["to"].as_str(), m["at"].as_u64())
            && let Some(acked) = acked_at.get(to)
        {
            sms.record((at * 1000).saturating_sub(*acked).max(1))?;
        }
    }
    println!("\nSOS sent → …  ({alarms} alarms, broker {broker})");
    let ack = summary("its ACK", &ack);
    let console = summary("opened on the console stream", &console);
    println!("SOS ACK → …");
    let result = json!({
        "alarms": alarms,
        "broker": broker,
        "sos_to_ack": ack,
        "sos_to_console": console,
        "offer_at_mosquitto_sub": summary("first offer at mosquitto_sub", &offer),
        "submit_sm_at_smsc": summary("family SMS at the SMSC (submit_sm)", &sms),
    });
    std::fs::create_dir_all("target/bench-results")?;
    std::fs::write(
        "target/bench-results/reach_latency.json",
        serde_json::to_vec_pretty(&result)?,
    )?;
    server.stop().await;
    if let Some(mut b) = private {
        b.stop(false).await;
    }
    Ok(())
}
