//! The device runner against the real server: every link's alarms are ACKed through the real
//! sockets and the embedded broker, and each exists exactly once on the server.

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use onekey_sim::clock::SimClock;
use onekey_sim::devices::{self, Targets};
use onekey_sim::plan::{Action, DevicePlan, Link};
use onekey_sim::world::{self, MINUTE, Preset};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

const SCALE: f64 = 600.0;
const MQTT_USER: &str = "simdev";
const MQTT_PASSWORD: &str = "sim-devices-pass";

/// `target/<profile>/onekey`, built first when missing.
fn server_binary() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable");
    let profile_dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target/<profile>/deps")
        .to_path_buf();
    let bin = profile_dir.join(format!("onekey{}", std::env::consts::EXE_SUFFIX));
    if !bin.exists() {
        let target_dir = profile_dir.parent().expect("target dir");
        let mut cmd = std::process::Command::new(env!("CARGO"));
        cmd.args(["build", "-p", "onekey", "--bin", "onekey"])
            .env("CARGO_TARGET_DIR", target_dir)
            .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/.."));
        if profile_dir.file_name().is_some_and(|n| n == "release") {
            cmd.arg("--release");
        }
        let status = cmd.status().expect("cargo build -p onekey");
        assert!(status.success(), "cannot build the onekey binary");
    }
    bin
}

struct Server {
    _child: tokio::process::Child,
    _dir: tempfile::TempDir,
    addrs: HashMap<String, String>,
    http: reqwest::Client,
    token: String,
}

impl Server {
    async fn start(start_ms: i64) -> Server {
        let dir = tempfile::tempdir().expect("tempdir");
        let ready = dir.path().join("ready.json");
        let log = std::fs::File::create(dir.path().join("server.log")).expect("log");
        let mut cmd = tokio::process::Command::new(server_binary());
        cmd.arg("serve")
            .arg("--ready-file")
            .arg(&ready)
            .current_dir(dir.path())
            .env(
                "ONEKEY_DATABASE_URL",
                format!("sqlite://{}", dir.path().join("onekey.db").display()),
            )
            .env("ONEKEY_HTTP_ADDR", "127.0.0.1:0")
            .env("ONEKEY_DEVICE_ADDR", "127.0.0.1:0")
            .env("ONEKEY_GT06_ADDR", "127.0.0.1:0")
            .env("ONEKEY_WATCH_ADDR", "127.0.0.1:0")
            .env("ONEKEY_H02_ADDR", "127.0.0.1:0")
            .env("ONEKEY_SIA_ADDR", "127.0.0.1:0")
            .env("ONEKEY_MQTT_LISTEN", "127.0.0.1:0")
            .env("ONEKEY_BOOTSTRAP_ADMIN", "admin:correct-horse-battery")
            .env("ONEKEY_LOG", "info,sqlx=warn,tower_http=warn")
            .env(
                format!("ONEKEY_MQTT__BROKER__USERS__{}", MQTT_USER.to_uppercase()),
                MQTT_PASSWORD,
            )
            .env("ONEKEY_CLOCK__SCALE", SCALE.to_string())
            .env("ONEKEY_CLOCK__START_MS", start_ms.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .kill_on_drop(true);
        let mut child = cmd.spawn().expect("spawn onekey");
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        let addrs: HashMap<String, String> = loop {
            if let Some(map) = std::fs::read_to_string(&ready)
                .ok()
                .and_then(|t| serde_json::from_str(&t).ok())
            {
                break map;
            }
            if let Ok(Some(status)) = child.try_wait() {
                let log =
                    std::fs::read_to_string(dir.path().join("server.log")).unwrap_or_default();
                panic!("onekey exited with {status}:\n{log}");
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "onekey not ready in 30 s"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        let http = reqwest::Client::new();
        let res: Value = http
            .post(format!("http://{}/api/v1/auth/login", addrs["http"]))
            .json(
                &json!({"kind": "operator", "name": "admin", "password": "correct-horse-battery"}),
            )
            .send()
            .await
            .expect("login")
            .json()
            .await
            .expect("login json");
        let token = res["token"].as_str().expect("token").to_string();
        Server {
            _child: child,
            _dir: dir,
            addrs,
            http,
            token,
        }
    }

    fn addr(&self, name: &str) -> String {
        self.addrs
            .get(name)
            .unwrap_or_else(|| panic!("no {name} in {:?}", self.addrs))
            .clone()
    }

    async fn get(&self, path: &str) -> Value {
        let res = self
            .http
            .get(format!("http://{}/api/v1{path}", self.addrs["http"]))
            .bearer_auth(&self.token)
            .send()
            .await
            .expect("GET");
        assert_eq!(res.status(), 200, "GET {path}");
        res.json().await.expect("json")
    }

    async fn import(&self, body: String) {
        let res = self
            .http
            .post(format!("http://{}/api/v1/import", self.addrs["http"]))
            .bearer_auth(&self.token)
            .body(body)
            .send()
            .await
            .expect("import");
        let status = res.status();
        let text = res.text().await.unwrap_or_default();
        assert_eq!(status, 200, "import: {text}");
    }
}

fn alarm(kind: &str) -> Action {
    Action::Alarm { kind: kind.into() }
}

/// Per link: the alarms of two devices and what the server must call them, plus extra actions.
fn script(link: Link) -> [(Vec<Action>, &'static str); 2] {
    let service = Action::Service {
        kind: "housekeeping".into(),
    };
    match link {
        Link::NativeTcp => [
            (vec![alarm("sos"), Action::Cancel, Action::CheckIn], "sos"),
            (vec![alarm("fall"), service], "fall"),
        ],
        Link::NativeMqtt => [
            (vec![alarm("smoke"), Action::Cancel], "smoke"),
            (vec![alarm("gas"), service], "gas"),
        ],
        Link::MqttJson => [
            (vec![alarm("sos"), Action::Cancel, Action::CheckIn], "sos"),
            (vec![alarm("fall"), service], "fall"),
        ],
        Link::Gt06 => [
            (vec![alarm("sos"), Action::Cancel], "sos"),
            (vec![alarm("power_loss")], "power_loss"),
        ],
        Link::Watch => [
            (vec![alarm("sos")], "sos"),
            (vec![alarm("fall"), Action::CheckIn], "fall"),
        ],
        Link::H02 => [
            (vec![alarm("sos")], "sos"),
            (vec![alarm("power_loss")], "power_loss"),
        ],
        Link::Sia => [
            (vec![alarm("smoke")], "smoke"),
            (vec![alarm("medical"), Action::Cancel], "medical"),
        ],
        Link::SiaAes => [
            (vec![alarm("sos")], "sos"),
            (
                vec![
                    alarm("gas"),
                    Action::Service {
                        kind: "daily_care".into(),
                    },
                ],
                "gas",
            ),
        ],
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_link_gets_its_alarms_acked_and_each_is_one_incident() {
    let preset = Preset {
        name: "tiny".into(),
        elders: 400,
        responders: 10,
        grids_per_community: None,
        scale: SCALE,
        heartbeat_min: 10,
    };
    let mut w = world::build(&preset, 7);
    // DC-09 panels: the first two in clear, the next two with an AES-128 key.
    let panels: Vec<usize> = (0..w.devices.len())
        .filter(|&i| matches!(w.devices[i].link, Link::Sia | Link::SiaAes))
        .collect();
    assert!(panels.len() >= 4, "{} DC-09 panels", panels.len());
    for (n, &i) in panels.iter().take(4).enumerate() {
        let key = (n >= 2).then(|| format!("{:032x}", 0x5eed_0000 + n));
        let d = &mut w.devices[i];
        d.link = if key.is_some() {
            Link::SiaAes
        } else {
            Link::Sia
        };
        d.key_hex = key.clone();
        let rec = w
            .dataset
            .devices
            .iter_mut()
            .find(|r| r.ident == d.ident)
            .expect("panel in the dataset");
        rec.secret_hex = key;
    }
    let server = Server::start(w.start).await;
    server
        .import(serde_json::to_string(&w.dataset).expect("dataset json"))
        .await;

    // Two devices of every link, each with its own elder, on a hand-written day.
    let mut plans = Vec::new();
    let mut expected = Vec::new();
    for link in Link::ALL {
        let mine: Vec<&DevicePlan> = w.devices.iter().filter(|d| d.link == link).collect();
        assert!(
            mine.len() >= 2,
            "{link:?}: {} devices in the world",
            mine.len()
        );
        for (i, (actions, kind)) in script(link).into_iter().enumerate() {
            let d = mine[i];
            let at = w.start + (3 + 2 * i as i64) * MINUTE;
            let timeline = actions
                .into_iter()
                .enumerate()
                .map(|(j, a)| (at + j as i64 * MINUTE, a))
                .collect();
            expected.push((d.ident.clone(), link, kind));
            plans.push(DevicePlan {
                actions: timeline,
                ..d.clone()
            });
        }
    }
    let targets = Targets {
        native: server.addr("device_tcp"),
        gt06: server.addr("gt06"),
        watch: server.addr("watch"),
        h02: server.addr("h02"),
        sia: server.addr("sia"),
        mqtt: server.addr("mqtt"),
        mqtt_user: Some((MQTT_USER.into(), MQTT_PASSWORD.into())),
        mqtt_prefix: "onekey".into(),
    };
    // The simulation's clock starts later than the server's: the devices learn the difference.
    let clock = SimClock::new(w.start, SCALE);
    let until = w.start + 30 * MINUTE;
    let report = tokio::time::timeout(
        Duration::from_secs(40),
        devices::run(plans, targets, clock, until, None, CancellationToken::new()),
    )
    .await
    .expect("the run ends at its clock time");
    println!("{}", report.table());

    // Every link: its alarms ACKed, frame→ACK latencies measured.
    for link in Link::ALL {
        let alarms: Vec<_> = report
            .sent
            .iter()
            .filter(|s| s.link == link && matches!(s.action, Action::Alarm { .. }))
            .collect();
        assert_eq!(alarms.len(), 2, "{link:?}: {:?}", report.sent);
        for s in &alarms {
            assert!(s.acked_at.is_some(), "{link:?} alarm not ACKed: {s:?}");
            assert!(s.sends >= 1 && s.ack_us.is_some_and(|us| us > 0), "{s:?}");
            assert!(s.sent_at >= s.planned_at, "{s:?}");
        }
        let h = &report.latency_us[&link];
        assert!(h.len() >= 2, "{link:?}: {} latencies", h.len());
    }
    assert!(report.unacked_alarms().is_empty());
    // The server's clock started before the simulation's: the devices learned by how much.
    assert!(report.clock_offset_ms > 0, "{}", report.clock_offset_ms);
    // What the deployed protocols cannot say was not sent but counted.
    assert_eq!(report.unsupported.get(&Link::Gt06), Some(&1), "GT06 cancel");
    assert_eq!(
        report.unsupported.get(&Link::Watch),
        Some(&1),
        "watch check-in"
    );
    assert_eq!(
        report.unsupported.get(&Link::MqttJson),
        Some(&1),
        "JSON service"
    );
    assert_eq!(
        report.unsupported.get(&Link::SiaAes),
        Some(&1),
        "DC-09 service"
    );
    for s in &report.sent {
        if matches!(s.link, Link::NativeTcp | Link::NativeMqtt | Link::MqttJson) {
            assert!(s.acked_at.is_some(), "native/JSON action not ACKed: {s:?}");
        }
    }

    // On the server: each alarm is exactly one incident of its device, of the right kind.
    let devices = server.get("/devices?limit=10000").await;
    let row_of: HashMap<String, i64> = devices
        .as_array()
        .expect("devices")
        .iter()
        .map(|d| {
            (
                d["ident"].as_str().unwrap_or_default().to_string(),
                d["id"].as_i64().unwrap_or(0),
            )
        })
        .collect();
    let incidents = server.get("/incidents?limit=1000").await;
    let incidents = incidents.as_array().expect("incidents");
    for (ident, link, kind) in &expected {
        let row = row_of[ident];
        let mine: Vec<&Value> = incidents
            .iter()
            .filter(|i| i["device_id"].as_i64() == Some(row) && i["category"] != "service")
            .collect();
        assert_eq!(mine.len(), 1, "{link:?} {ident}: {mine:?}");
        assert_eq!(mine[0]["kind"], *kind, "{link:?} {ident}");
        assert_eq!(
            mine[0]["alarm_count"], 1,
            "{link:?} {ident}: one alarm, no duplicate"
        );
        let detail = server
            .get(&format!(
                "/incidents/{}",
                mine[0]["id"].as_i64().unwrap_or(0)
            ))
            .await;
        assert_eq!(detail["device"]["ident"], ident.as_str());
    }
    // The native and JSON cancels marked their alarms; the native service requests opened one.
    for link in [Link::NativeTcp, Link::NativeMqtt, Link::MqttJson] {
        let (ident, _, _) = expected.iter().find(|e| e.1 == link).expect("device");
        let cancelled = incidents
            .iter()
            .find(|i| i["device_id"].as_i64() == Some(row_of[ident]))
            .expect("incident");
        assert_eq!(cancelled["probable_false_alarm"], true, "{link:?} cancel");
    }
    for link in [Link::NativeTcp, Link::NativeMqtt] {
        let (ident, _, _) = expected
            .iter()
            .filter(|e| e.1 == link)
            .nth(1)
            .expect("device");
        let services: Vec<_> = incidents
            .iter()
            .filter(|i| {
                i["device_id"].as_i64() == Some(row_of[ident]) && i["category"] == "service"
            })
            .collect();
        assert_eq!(services.len(), 1, "{link:?} service request");
        assert_eq!(services[0]["kind"], "housekeeping");
    }
}

/// A native listener that drops the connection on an alarm's first copy and ACKs the next.
async fn flaky_native_server(
    listener: tokio::net::TcpListener,
    key: onekey_protocol::Key,
    seen: std::sync::Arc<std::sync::Mutex<Vec<u32>>>,
) {
    use onekey_protocol::{Ack, AckStatus, Header, MAX_FRAME_LEN, Message, RejectReason};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    while let Ok((mut s, _)) = listener.accept().await {
        let mut buf = Vec::new();
        'conn: loop {
            let mut chunk = [0u8; 256];
            match s.read(&mut chunk).await {
                Ok(0) | Err(_) => break,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
            while let Ok((frame, used)) = onekey_protocol::decode(&buf) {
                let frame = frame.verify(&key).expect("the device's MAC");
                buf.drain(..used);
                if let Message::Alarm(_) = frame.message {
                    let mut seen = seen.lock().expect("seen");
                    seen.push(frame.header.seq);
                    if seen.len() == 1 {
                        break 'conn; // the first copy is lost with the connection
                    }
                }
                let ack = Message::Ack(Ack {
                    acked_seq: frame.header.seq,
                    status: AckStatus::Stored,
                    reason: RejectReason::None,
                    server_time: 0,
                });
                let header = Header {
                    device_id: frame.header.device_id,
                    seq: 1,
                    timestamp: 0,
                };
                let mut out = [0u8; MAX_FRAME_LEN];
                let n = onekey_protocol::encode(&header, &ack, &key, &mut out).expect("encode");
                if s.write_all(&out[..n]).await.is_err() {
                    break;
                }
            }
        }
    }
}

#[tokio::test]
async fn an_unacked_alarm_is_resent_with_the_same_sequence_after_a_reconnect() {
    let key = [0x42u8; 32];
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr").to_string();
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    tokio::spawn(flaky_native_server(listener, key, seen.clone()));
    let start = world::DAY_START;
    let plan = DevicePlan {
        elder: "E1".into(),
        link: Link::NativeTcp,
        ident: "860100000000001".into(),
        key_hex: Some(hex::encode(key)),
        heartbeat_ms: 24 * 60 * MINUTE,
        battery_start: 80,
        actions: vec![(start + MINUTE, alarm("sos"))],
    };
    let targets = Targets {
        native: addr,
        ..Targets::default()
    };
    let clock = SimClock::new(start, SCALE);
    let report = devices::run(
        vec![plan],
        targets,
        clock,
        start + 20 * MINUTE,
        None,
        CancellationToken::new(),
    )
    .await;
    let s = &report.sent[0];
    assert!(s.acked_at.is_some(), "{s:?}");
    assert_eq!(s.sends, 2, "{s:?}");
    assert_eq!(report.reconnects, 1);
    let seen = seen.lock().expect("seen").clone();
    assert_eq!(seen.len(), 2);
    assert_eq!(seen[0], seen[1], "the retry keeps its sequence number");
}
