//! Faults under load, with the simulated devices of every protocol on the real sockets and the
//! embedded broker, each retrying the way its firmware does (the same frame until it is ACKed,
//! reconnecting with backoff):
//! - a kill -9 of the server while 1,000 devices send alarms: after the restart every alarm is
//!   ACKed and stored exactly once;
//! - PostgreSQL stopped for 30 s under load: no protocol gets an ACK while the store is down, every
//!   protocol's ACK is withheld, `/healthz` says so, and once it returns every alarm is stored once;
//! - the MQTT broker (a private Mosquitto) killed for 5 s under 400 devices: `/healthz` shows it,
//!   the MQTT devices' alarms raised meanwhile are ACKed after it returns, and every alarm is
//!   stored exactly once.

mod common;
mod mqtt_support;

use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use common::pg::PrivatePostgres;
use common::{ADMIN, ADMIN_PASSWORD, Db, TestServer};
use mqtt_support::PrivateBroker;
use onekey_sim::api::ApiClient;
use onekey_sim::clock::{Ms, SimClock};
use onekey_sim::day::{self, report::exactly_once};
use onekey_sim::devices::{self, DeviceReport};
use onekey_sim::plan::{Action, DevicePlan, Link};
use onekey_sim::world::{self, Preset, World};
use tokio_util::sync::CancellationToken;

const MQTT_USER: &str = "simdev";
const MQTT_PASSWORD: &str = "sim-devices-pass";

/// A world of `elders` (one device each), with the first two DC-09 panels given an AES key.
fn world_of(elders: usize, scale: f64) -> World {
    let preset = Preset {
        name: "faults".into(),
        elders,
        responders: 20,
        grids_per_community: None,
        scale,
        heartbeat_min: 10,
    };
    let mut w = world::build(&preset, 13);
    let panels: Vec<usize> = (0..w.devices.len())
        .filter(|&i| matches!(w.devices[i].link, Link::Sia | Link::SiaAes))
        .collect();
    for (n, &i) in panels.iter().enumerate() {
        let key = (n % 2 == 1).then(|| format!("{:032x}", 0xfa17_0000 + n));
        let d = &mut w.devices[i];
        d.link = if key.is_some() {
            Link::SiaAes
        } else {
            Link::Sia
        };
        d.key_hex = key.clone();
        if let Some(rec) = w.dataset.devices.iter_mut().find(|r| r.ident == d.ident) {
            rec.secret_hex = key;
        }
    }
    w
}

/// A free loopback address (for listeners that must keep their port across a restart).
fn free_addr() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").to_string()
}

/// A free address for every device listener (and the embedded broker's, `with_broker`), to be
/// kept across a restart.
fn fixed_listeners(with_broker: bool) -> BTreeMap<&'static str, String> {
    let mut vars = vec![
        "ONEKEY_DEVICE_ADDR",
        "ONEKEY_GT06_ADDR",
        "ONEKEY_WATCH_ADDR",
        "ONEKEY_H02_ADDR",
        "ONEKEY_SIA_ADDR",
    ];
    if with_broker {
        vars.push("ONEKEY_MQTT_LISTEN");
    }
    vars.into_iter().map(|v| (v, free_addr())).collect()
}

/// Waits for the devices to finish by their clock and prints their table.
async fn finished(run: tokio::task::JoinHandle<DeviceReport>, within: Duration) -> DeviceReport {
    let report = tokio::time::timeout(within, run)
        .await
        .expect("the devices finish by their clock")
        .expect("device runner");
    println!("{}", report.table());
    report
}

/// The environment of a server on `w`'s clock, with fixed device listener addresses.
fn server_env(
    w: &World,
    scale: f64,
    addrs: &BTreeMap<&'static str, String>,
) -> Vec<(String, String)> {
    let mut env = vec![
        ("ONEKEY_CLOCK__SCALE".to_string(), scale.to_string()),
        ("ONEKEY_CLOCK__START_MS".to_string(), w.start.to_string()),
        (
            format!("ONEKEY_MQTT__BROKER__USERS__{}", MQTT_USER.to_uppercase()),
            MQTT_PASSWORD.to_string(),
        ),
    ];
    for (var, addr) in addrs {
        env.push(((*var).to_string(), addr.clone()));
    }
    env
}

async fn start(db: &Db, env: &[(String, String)]) -> TestServer {
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    TestServer::start(db, &env).await
}

fn alarm(kind: &str) -> Action {
    Action::Alarm { kind: kind.into() }
}

/// The server's protocol label of a link (the metrics' `protocol`).
fn protocol(link: Link) -> &'static str {
    match link {
        Link::NativeTcp => "native",
        Link::NativeMqtt | Link::MqttJson => "mqtt",
        Link::Gt06 => "gt06",
        Link::Watch => "watch",
        Link::H02 => "h02",
        Link::Sia | Link::SiaAes => "sia",
    }
}

/// What the server holds against what the devices had ACKed: (alarms stored, lost, duplicated).
/// Prints each ACKed alarm the server does not hold, and keeps the server's log under
/// `target/tmp/` for a look after a failure.
async fn on_the_server(
    server: &TestServer,
    name: &str,
    report: &DeviceReport,
    planned: &HashSet<&str>,
) -> (u64, u64, u64) {
    let _ = std::fs::write(
        std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("{name}-server.log")),
        server.log(),
    );
    let admin = ApiClient::new(
        &server.base(),
        ApiClient::http(),
        "operator",
        ADMIN,
        ADMIN_PASSWORD,
    );
    let log = day::read_device_log(&admin).await.expect("device log");
    for s in alarms_of(report) {
        let held = log.get(&s.ident).and_then(|k| k.get("alarm")).copied();
        if s.acked_at.is_some() && held.is_none() {
            println!("ACKed but not stored: {s:?}");
        }
    }
    let once = exactly_once(&report.sent, &log, planned);
    (once.alarms_stored, once.lost, once.duplicated)
}

fn alarms_of(report: &DeviceReport) -> Vec<&onekey_sim::plan::Sent> {
    report
        .sent
        .iter()
        .filter(|s| matches!(s.action, Action::Alarm { .. }))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kill_9_under_1000_devices_of_every_protocol_loses_and_repeats_no_alarm() {
    const NAME: &str = "kill-9";
    const SCALE: f64 = 10.0;
    const DEVICES: usize = 1000;
    let w = world_of(DEVICES, SCALE);
    assert!(w.devices.len() >= DEVICES, "{} devices", w.devices.len());
    let links: HashSet<Link> = w.devices.iter().map(|d| d.link).collect();
    assert_eq!(
        links.len(),
        Link::ALL.len(),
        "every link in the fleet: {links:?}"
    );

    let db = Db::sqlite();
    let addrs = fixed_listeners(true);
    let env = server_env(&w, SCALE, &addrs);
    let server = start(&db, &env).await;
    server.import_dataset(&w.dataset).await;

    // One alarm per device, spread over ten minutes of the clock (a minute of wall time).
    let alarm_kinds = ["sos", "fall", "smoke", "power_loss"];
    let minute = world::MINUTE;
    let plans: Vec<DevicePlan> = w
        .devices
        .iter()
        .take(DEVICES)
        .enumerate()
        .map(|(i, d)| DevicePlan {
            actions: vec![(
                w.start + minute + (i as Ms * 10 * minute) / DEVICES as Ms,
                alarm(alarm_kinds[i % alarm_kinds.len()]),
            )],
            ..d.clone()
        })
        .collect();
    let planned: HashSet<&str> = plans.iter().map(|p| p.ident.as_str()).collect();
    let clock = SimClock::new(w.start, SCALE);
    let until = w.start + 16 * minute;
    let run = tokio::spawn(devices::run(
        plans.clone(),
        server.device_targets((MQTT_USER, MQTT_PASSWORD)),
        clock,
        until,
        None,
        CancellationToken::new(),
    ));

    // Halfway through the alarms: kill -9, and start again on the same file and ports.
    clock.sleep_until(w.start + 6 * minute).await;
    let before = server
        .metric("onekey_intake_events_total{outcome=\"stored\"}")
        .await;
    assert!(
        before > 50.0,
        "alarms were being stored before the crash: {before}"
    );
    server.kill().await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let server = start(&db, &env).await;

    let report = finished(run, Duration::from_secs(150)).await;
    let alarms = alarms_of(&report);
    assert_eq!(alarms.len(), DEVICES);
    assert!(
        report.unacked_alarms().is_empty(),
        "every alarm is ACKed in the end: {:?}",
        report.unacked_alarms().first()
    );
    assert!(
        report.reconnects as usize >= DEVICES / 2,
        "the crash dropped the devices: {} reconnects",
        report.reconnects
    );
    let retried = alarms.iter().filter(|s| s.sends > 1).count();
    let (stored, lost, duplicated) = on_the_server(&server, NAME, &report, &planned).await;
    println!(
        "kill -9: {DEVICES} alarms sent, {DEVICES} ACKed, {stored} stored, {lost} lost, {duplicated} duplicated, {retried} retried"
    );
    assert_eq!((lost, duplicated), (0, 0));
    assert_eq!(stored, DEVICES as u64);
    // After the restart, dispatch picked up where it was: nothing needed repairing.
    assert_eq!(server.metric("onekey_dispatch_repairs_total").await, 0.0);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_30_s_postgres_outage_withholds_every_protocols_ack_until_the_alarm_is_committed() {
    const NAME: &str = "postgres-outage";
    const SCALE: f64 = 10.0;
    let pg = tokio::task::spawn_blocking(PrivatePostgres::start)
        .await
        .expect("private PostgreSQL");
    let db = Db::Url(pg.url());
    let w = world_of(400, SCALE);
    let env = server_env(&w, SCALE, &BTreeMap::new());
    let server = start(&db, &env).await;
    server.import_dataset(&w.dataset).await;

    // Per link: three devices with an alarm before the outage, three during it.
    let minute = world::MINUTE;
    let outage_from = w.start + 3 * minute;
    let outage_for = Duration::from_secs(30);
    let clock = SimClock::new(w.start, SCALE);
    let mut plans = Vec::new();
    for link in Link::ALL {
        let mine: Vec<&DevicePlan> = w
            .devices
            .iter()
            .filter(|d| d.link == link)
            .take(6)
            .collect();
        assert!(mine.len() >= 4, "{link:?}: {} devices", mine.len());
        for (i, d) in mine.iter().enumerate() {
            let at = if i % 2 == 0 {
                w.start + minute + i as Ms * 5_000
            } else {
                outage_from + minute / 2 + i as Ms * 10_000
            };
            plans.push(DevicePlan {
                actions: vec![(at, alarm(if i % 4 < 2 { "sos" } else { "fall" }))],
                ..(*d).clone()
            });
        }
    }
    let planned: HashSet<&str> = plans.iter().map(|p| p.ident.as_str()).collect();
    let until = outage_from + 9 * minute;
    let run = tokio::spawn(devices::run(
        plans.clone(),
        server.device_targets((MQTT_USER, MQTT_PASSWORD)),
        clock,
        until,
        None,
        CancellationToken::new(),
    ));

    // The outage: PostgreSQL stopped for 30 s while alarms arrive on every link.
    let pg = std::sync::Arc::new(pg);
    clock.sleep_until(outage_from).await;
    let halt = pg.clone();
    tokio::task::spawn_blocking(move || halt.halt())
        .await
        .expect("halt");
    let down_at = clock.now();
    tokio::time::sleep(outage_for / 2).await;
    let (status, body) = server.health().await;
    assert_eq!(status, 503, "the outage shows on /healthz");
    assert_eq!(body["store"]["state"], "down", "{body}");
    tokio::time::sleep(outage_for / 2).await;
    // Anything ACKed before this instant was ACKed while the store was down.
    let up_from = clock.now();
    let resume = pg.clone();
    tokio::task::spawn_blocking(move || resume.resume())
        .await
        .expect("resume");

    let report = finished(run, Duration::from_secs(120)).await;
    let alarms = alarms_of(&report);
    assert_eq!(alarms.len(), plans.len());
    assert!(
        report.unacked_alarms().is_empty(),
        "every alarm is ACKed once the store is back: {:?}",
        report.unacked_alarms().first()
    );
    let mut during = 0;
    for s in &alarms {
        let acked = s.acked_at.unwrap_or(0);
        assert!(
            !(down_at..up_from).contains(&acked),
            "{:?} {} ACKed at {acked} while the store was down ({down_at}..{up_from})",
            s.link,
            s.ident
        );
        if (down_at..up_from).contains(&s.planned_at) {
            during += 1;
        }
    }
    assert!(
        during >= 3 * Link::ALL.len(),
        "{during} alarms raised during the outage"
    );
    // The outage left its trace: a frame whose events could not be committed got no ACK
    // (withheld), or a frame of a device that could not be looked up closed its connection.
    // Which protocols' frames fail rather than wait depends on where their events stand in the
    // writer's queue while each attempt waits out the pool's 5 s timeout: those further back
    // commit once the store is back. So the trace is counted over all protocols; that no alarm
    // of any protocol was ACKed while the store was down is asserted above, alarm by alarm.
    let metrics = server.metrics().await;
    let mut traces = 0.0;
    for link in Link::ALL {
        let p = protocol(link);
        let withheld = common::metric_value(
            &metrics,
            &format!("onekey_acks_withheld_total{{protocol=\"{p}\"}}"),
        );
        let refused = if p == "mqtt" {
            common::metric_value(
                &metrics,
                "onekey_mqtt_rejected_total{reason=\"store_unavailable\"}",
            )
        } else {
            common::metric_value(
                &metrics,
                &format!(
                    "onekey_frames_rejected_total{{protocol=\"{p}\",reason=\"store_unavailable\"}}"
                ),
            )
        };
        println!("{p}: {withheld} ACKs withheld, {refused} frames refused as store_unavailable");
        traces += withheld + refused;
    }
    assert!(traces >= 3.0, "the outage left no trace ({traces})");
    let (stored, lost, duplicated) = on_the_server(&server, NAME, &report, &planned).await;
    println!(
        "PostgreSQL outage of {} s: {} alarms sent ({during} raised during the outage), {} ACKed, {stored} stored, {lost} lost, {duplicated} duplicated",
        outage_for.as_secs(),
        alarms.len(),
        alarms.iter().filter(|s| s.acked_at.is_some()).count()
    );
    assert_eq!((lost, duplicated), (0, 0));
    assert_eq!(stored, alarms.len() as u64);
    let (status, _) = server.health().await;
    assert_eq!(status, 200, "healthy again");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_kill_9_under_load_loses_and_repeats_no_alarm() {
    const NAME: &str = "broker-kill";
    const SCALE: f64 = 10.0;
    const DEVICES: usize = 400;
    let w = world_of(DEVICES, SCALE);
    let mut broker = PrivateBroker::start(true).await;
    let prefix = mqtt_support::unique("bkill");
    let db = Db::sqlite();
    let addrs = fixed_listeners(false);
    let mut env = server_env(&w, SCALE, &addrs);
    env.push(("ONEKEY_MQTT_URL".into(), format!("mqtt://{}", broker.addr)));
    env.push(("ONEKEY_MQTT_PREFIX".into(), prefix.clone()));
    env.push(("ONEKEY_MQTT__BACKOFF_MAX_MS".into(), "1000".into()));
    let server = start(&db, &env).await;
    server.import_dataset(&w.dataset).await;

    // One alarm per device over eight minutes of the clock (48 s of wall time), the MQTT
    // devices' between minutes three and six; the broker is killed at minute four and comes
    // back 5 s (50 s of the clock) later, from its last save.
    let minute = world::MINUTE;
    let on_mqtt = |l: Link| matches!(l, Link::NativeMqtt | Link::MqttJson);
    let plans: Vec<DevicePlan> = w
        .devices
        .iter()
        .take(DEVICES)
        .enumerate()
        .map(|(i, d)| {
            let at = if on_mqtt(d.link) {
                w.start + 3 * minute + (i as Ms * 3 * minute) / DEVICES as Ms
            } else {
                w.start + minute + (i as Ms * 8 * minute) / DEVICES as Ms
            };
            DevicePlan {
                actions: vec![(at, alarm(if i % 2 == 0 { "sos" } else { "fall" }))],
                ..d.clone()
            }
        })
        .collect();
    let mqtt_devices = plans.iter().filter(|p| on_mqtt(p.link)).count();
    assert!(mqtt_devices >= 20, "{mqtt_devices} devices on MQTT links");
    let planned: HashSet<&str> = plans.iter().map(|p| p.ident.as_str()).collect();
    let targets = devices::Targets {
        native: server.addr("device_tcp"),
        gt06: server.addr("gt06"),
        watch: server.addr("watch"),
        h02: server.addr("h02"),
        sia: server.addr("sia"),
        mqtt: broker.addr.clone(),
        mqtt_user: None,
        mqtt_prefix: prefix.clone(),
    };
    let clock = SimClock::new(w.start, SCALE);
    let run = tokio::spawn(devices::run(
        plans.clone(),
        targets,
        clock,
        w.start + 12 * minute,
        None,
        CancellationToken::new(),
    ));

    clock.sleep_until(w.start + 4 * minute).await;
    broker.stop(true).await;
    let down_at = clock.now();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (status, body) = server.health().await;
    assert_eq!(status, 503, "the broker outage shows on /healthz");
    assert_eq!(body["broker"]["state"], "down", "{body}");
    assert_eq!(body["store"]["state"], "up", "{body}");
    tokio::time::sleep(Duration::from_secs(3)).await;
    broker.restart().await;
    let up_at = clock.now();

    let report = finished(run, Duration::from_secs(150)).await;
    let alarms = alarms_of(&report);
    assert_eq!(alarms.len(), DEVICES);
    assert!(
        report.unacked_alarms().is_empty(),
        "every alarm is ACKed once the broker is back: {:?}",
        report.unacked_alarms().first()
    );
    // The MQTT devices met the outage: some raised their alarm while the broker was away and
    // were ACKed only after it came back; the TCP devices never noticed.
    let mut during = 0;
    for s in alarms.iter().filter(|s| on_mqtt(s.link)) {
        if (down_at..up_at).contains(&s.planned_at) {
            during += 1;
            assert!(
                s.acked_at.is_some_and(|a| a >= up_at),
                "{} ACKed while the broker was down",
                s.ident
            );
        }
    }
    assert!(during >= 3, "{during} MQTT alarms raised during the outage");
    assert!(
        server.metric("onekey_mqtt_connection_errors_total").await >= 1.0,
        "the server counted the lost broker connection"
    );
    let (stored, lost, duplicated) = on_the_server(&server, NAME, &report, &planned).await;
    println!(
        "broker kill -9 for 5 s: {DEVICES} alarms sent ({mqtt_devices} on MQTT, {during} raised during the outage), {DEVICES} ACKed, {stored} stored, {lost} lost, {duplicated} duplicated, {} reconnects",
        report.reconnects
    );
    assert_eq!((lost, duplicated), (0, 0));
    assert_eq!(stored, DEVICES as u64);
    let (status, _) = server.health().await;
    assert_eq!(status, 200, "healthy again");
    broker.stop(false).await;
    server.stop().await;
}
