//! MQTT test helpers shared by `tests/mqtt.rs` and `benches/mqtt_load.rs`: real `mosquitto_pub`/
//! `mosquitto_sub`, a private Mosquitto, and a JSON device on rumqttc.
#![allow(dead_code)]

use std::process::Stdio;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use onekey::ingress::mqtt::json_uplink::{JsonAck, JsonLocation, JsonUplink, mac_hex};
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use tokio::io::AsyncReadExt;
use tokio::process::{Child, Command};
use tokio::sync::mpsc;

use super::common::TestServer;

/// A topic prefix and client-id stem no other test uses.
pub fn unique(stem: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!(
        "{stem}-{}-{}-{nanos}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// `(host, port)` of a `host:port`.
pub fn host_port(addr: &str) -> (String, u16) {
    let (h, p) = addr.rsplit_once(':').expect("host:port");
    (h.to_string(), p.parse().expect("port"))
}

/// A free loopback port.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

/// The account test clients use on the embedded broker (the harness configures it; the system
/// Mosquitto accepts any).
pub const BROKER_USER: &str = "tester";
/// Its password.
pub const BROKER_PASSWORD: &str = "tester-pass-1";

/// Publishes with `mosquitto_pub` (QoS 1); `payload` goes through stdin so binary works.
pub async fn mosquitto_pub(addr: &str, topic: &str, payload: &[u8]) {
    let (host, port) = host_port(addr);
    let mut child = Command::new("mosquitto_pub")
        .args([
            "-h",
            &host,
            "-p",
            &port.to_string(),
            "-q",
            "1",
            "-t",
            topic,
            "-s",
        ])
        .args(["-i", &unique("pub")])
        .args(["-u", BROKER_USER, "-P", BROKER_PASSWORD])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("mosquitto_pub");
    {
        use tokio::io::AsyncWriteExt;
        let mut stdin = child.stdin.take().expect("stdin");
        stdin.write_all(payload).await.expect("write payload");
    }
    let out = child.wait_with_output().await.expect("mosquitto_pub");
    assert!(
        out.status.success(),
        "mosquitto_pub failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A running `mosquitto_sub`.
pub struct Sub {
    child: Child,
    early: Vec<u8>,
}

impl Sub {
    /// Subscribes to `topic` with QoS 1 and waits until the broker confirmed the subscription
    /// (mosquitto_sub's `-d` debug line `SUBACK`). `extra` adds options (`-c -i ID` for a persistent
    /// session, `-N` for raw binary output, `-C n` to stop after n messages).
    pub async fn start(addr: &str, topic: &str, extra: &[&str]) -> Sub {
        let (host, port) = host_port(addr);
        // stdbuf: mosquitto_sub block-buffers stdout into a pipe.
        let mut child = Command::new("stdbuf")
            .args(["-o0", "mosquitto_sub"])
            .args([
                "-h",
                &host,
                "-p",
                &port.to_string(),
                "-q",
                "1",
                "-t",
                topic,
                "-d",
            ])
            .args(["-u", BROKER_USER, "-P", BROKER_PASSWORD])
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("mosquitto_sub");
        let mut stdout = child.stdout.take().expect("stdout");
        // `-d` prints the protocol trace on stdout; wait for the SUBACK.
        let mut seen = Vec::new();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while !String::from_utf8_lossy(&seen).contains("SUBACK") {
            let mut buf = [0u8; 512];
            let n = tokio::time::timeout_at(deadline, stdout.read(&mut buf))
                .await
                .expect("mosquitto_sub did not get a SUBACK within 10 s")
                .expect("read");
            if n == 0 {
                // It exited already (`-C n` satisfied by messages a persistent session held).
                break;
            }
            seen.extend_from_slice(&buf[..n]);
        }
        assert!(
            String::from_utf8_lossy(&seen).contains("SUBSCRIBE"),
            "mosquitto_sub failed: {}",
            String::from_utf8_lossy(&seen)
        );
        child.stdout = Some(stdout);
        Sub { child, early: seen }
    }

    /// Reads everything it printed until it exits (use `-C n` / `-W secs`) or `within` passes.
    pub async fn output(mut self, within: Duration) -> Vec<u8> {
        let mut out = std::mem::take(&mut self.early);
        if let Some(mut stdout) = self.child.stdout.take() {
            let _ = tokio::time::timeout(within, stdout.read_to_end(&mut out)).await;
        }
        let _ = self.child.start_kill();
        out
    }

    /// Kills it (its persistent session stays on the broker).
    pub async fn stop(mut self) {
        let _ = self.child.kill().await;
    }
}

/// Message lines of `mosquitto_sub -d` output (protocol trace lines dropped).
pub fn messages(out: &[u8]) -> Vec<String> {
    String::from_utf8_lossy(out)
        .lines()
        .filter(|l| {
            !l.starts_with("Client ") && !l.starts_with("Subscribed (mid") && !l.trim().is_empty()
        })
        .map(str::to_string)
        .collect()
}

/// A private Mosquitto on a free port (killed on drop).
pub struct PrivateBroker {
    child: Option<Child>,
    /// `127.0.0.1:port`.
    pub addr: String,
    port: u16,
    dir: tempfile::TempDir,
    persistent: bool,
    extra: String,
}

impl PrivateBroker {
    /// Starts `mosquitto -c <conf>`; `persistent` keeps sessions and queued messages across a
    /// graceful restart.
    pub async fn start(persistent: bool) -> PrivateBroker {
        PrivateBroker::start_with(persistent, "").await
    }

    /// Like [`PrivateBroker::start`], with `extra` lines of configuration.
    pub async fn start_with(persistent: bool, extra: &str) -> PrivateBroker {
        let port = free_port();
        let mut b = PrivateBroker {
            child: None,
            addr: format!("127.0.0.1:{port}"),
            port,
            dir: tempfile::tempdir().expect("tempdir"),
            persistent,
            extra: extra.to_string(),
        };
        b.spawn().await;
        b
    }

    async fn spawn(&mut self) {
        let conf = self.dir.path().join("mosquitto.conf");
        let mut text = format!(
            "listener {} 127.0.0.1\nallow_anonymous true\nmax_queued_messages 100000\n{}",
            self.port, self.extra
        );
        if self.persistent {
            // Mosquitto started as root drops to the `mosquitto` user: let it write its database.
            {
                use std::os::unix::fs::PermissionsExt;
                let _ = std::fs::set_permissions(
                    self.dir.path(),
                    std::fs::Permissions::from_mode(0o777),
                );
            }
            text.push_str(&format!(
                "persistence true\npersistence_location {}/\n",
                self.dir.path().display()
            ));
        }
        std::fs::write(&conf, text).expect("conf");
        let child = Command::new("mosquitto")
            .arg("-c")
            .arg(&conf)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("mosquitto");
        self.child = Some(child);
        for _ in 0..100 {
            if tokio::net::TcpStream::connect(&self.addr).await.is_ok() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("private mosquitto did not listen on {}", self.addr);
    }

    /// Stops it (SIGTERM: a persistent broker saves its state; `kill`: SIGKILL).
    pub async fn stop(&mut self, kill: bool) {
        if let Some(mut child) = self.child.take() {
            if kill {
                let _ = child.kill().await;
            } else {
                if let Some(pid) = child.id() {
                    let _ = std::process::Command::new("kill")
                        .arg("-TERM")
                        .arg(pid.to_string())
                        .status();
                }
                let _ = tokio::time::timeout(Duration::from_secs(10), child.wait()).await;
            }
        }
    }

    /// Starts it again on the same port.
    pub async fn restart(&mut self) {
        self.spawn().await;
    }
}

/// Creates an elder and registers a JSON MQTT device for it.
pub async fn register_json_device(server: &TestServer, ident: &str, key: &[u8; 32]) -> i64 {
    let (status, elder) = server
        .post(
            "/api/v1/elders",
            serde_json::json!({ "name": format!("老人 {ident}"), "address": "吉州区 文山街道 1 号",
                    "lat": 27.11, "lon": 114.98, "living": "alone" }),
        )
        .await;
    assert_eq!(status, 201, "create elder: {elder}\n{}", server.log());
    let elder_id = elder["id"].as_i64().expect("elder id");
    server
        .register_device("mqtt", ident, Some(&hex::encode(key)), Some(elder_id))
        .await
}

/// A signed JSON uplink.
pub fn json_uplink(ident: &str, key: &[u8; 32], seq: u32, kind: &str) -> Vec<u8> {
    let mut up = JsonUplink {
        v: 1,
        device_id: ident.into(),
        seq,
        kind: kind.into(),
        ts: u32::try_from(onekey::domain::now_millis() / 1000).unwrap_or(0),
        battery: Some(80),
        loc: Some(JsonLocation {
            lat_e6: 27_110_000,
            lon_e6: 114_980_000,
            acc_m: 20,
        }),
        mac: String::new(),
    };
    up.sign(key);
    serde_json::to_vec(&up).expect("json")
}

/// Parses and authenticates a JSON ACK.
pub fn check_ack(ident: &str, key: &[u8; 32], text: &str) -> JsonAck {
    let ack: JsonAck = serde_json::from_str(text).unwrap_or_else(|e| panic!("ACK {text:?}: {e}"));
    assert_eq!(ack.mac, mac_hex(key, &ack.canonical(ident)), "ACK MAC");
    ack
}

/// A JSON device on rumqttc: publishes uplinks, receives its downlink, resubscribes after every
/// reconnect.
pub struct JsonDevice {
    client: AsyncClient,
    acks: mpsc::UnboundedReceiver<JsonAck>,
    task: tokio::task::JoinHandle<()>,
    /// Up topic.
    pub up: String,
}

impl JsonDevice {
    /// Connects `ident` under `prefix` to the broker at `addr`.
    pub async fn connect(addr: &str, prefix: &str, ident: &str) -> JsonDevice {
        let (host, port) = host_port(addr);
        let mut o = MqttOptions::new(unique("dev"), host, port);
        o.set_keep_alive(Duration::from_secs(5));
        o.set_credentials(BROKER_USER, BROKER_PASSWORD);
        let (client, mut eventloop) = AsyncClient::new(o, 1024);
        eventloop.set_network_options(onekey::mqtt::network_options());
        let (tx, acks) = mpsc::unbounded_channel();
        let down = format!("{prefix}/dev/{ident}/down");
        let (subscribed_tx, mut subscribed) = mpsc::unbounded_channel();
        let c = client.clone();
        let task = tokio::spawn(async move {
            loop {
                match eventloop.poll().await {
                    Ok(Event::Incoming(Packet::ConnAck(_))) => {
                        let _ = c.try_subscribe(down.clone(), QoS::AtLeastOnce);
                    }
                    Ok(Event::Incoming(Packet::SubAck(_))) => {
                        let _ = subscribed_tx.send(());
                    }
                    Ok(Event::Incoming(Packet::Publish(p))) => {
                        if let Ok(ack) = serde_json::from_slice::<JsonAck>(&p.payload) {
                            let _ = tx.send(ack);
                        }
                    }
                    Ok(_) => {}
                    Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
                }
            }
        });
        tokio::time::timeout(Duration::from_secs(10), subscribed.recv())
            .await
            .expect("device subscribed");
        JsonDevice {
            client,
            acks,
            task,
            up: format!("{prefix}/dev/{ident}/up/json"),
        }
    }

    /// Publishes raw bytes on its up topic.
    pub async fn publish(&self, payload: Vec<u8>) {
        self.client
            .publish(self.up.clone(), QoS::AtLeastOnce, false, payload)
            .await
            .expect("queue publish");
    }

    /// The next ACK within `within`.
    pub async fn ack(&mut self, within: Duration) -> Option<JsonAck> {
        tokio::time::timeout(within, self.acks.recv()).await.ok()?
    }

    /// Sends `payload` (sequence `seq`) until its ACK arrives, retrying every `retry`; gives up
    /// after `deadline`. Returns the ACK.
    pub async fn send_until_acked(
        &mut self,
        payload: Vec<u8>,
        seq: u32,
        retry: Duration,
        deadline: Duration,
    ) -> Option<JsonAck> {
        let end = tokio::time::Instant::now() + deadline;
        while tokio::time::Instant::now() < end {
            let _ =
                self.client
                    .try_publish(self.up.clone(), QoS::AtLeastOnce, false, payload.clone());
            let until = tokio::time::Instant::now() + retry;
            while let Ok(Some(ack)) = tokio::time::timeout_at(until, self.acks.recv()).await {
                if ack.seq == seq {
                    return Some(ack);
                }
            }
        }
        None
    }
}

impl Drop for JsonDevice {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Waits until `/healthz` reports the broker `up`.
pub async fn wait_broker_up(server: &TestServer) {
    for _ in 0..200 {
        let res = server
            .http
            .get(format!("{}/healthz", server.base()))
            .send()
            .await
            .expect("healthz");
        let body: serde_json::Value = res.json().await.unwrap_or_default();
        if body["broker"]["state"] == "up" {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("broker never up; log:\n{}", server.log());
}

/// Creates a responder; returns its id.
pub async fn create_responder(server: &TestServer, name: &str) -> i64 {
    let (status, responder) = server
        .post(
            "/api/v1/responders",
            serde_json::json!({ "name": name, "phone": "13800000000", "kind": "volunteer",
                                "home_lat": 27.11, "home_lon": 114.98 }),
        )
        .await;
    assert_eq!(
        status,
        201,
        "create responder: {responder}\n{}",
        server.log()
    );
    responder["id"].as_i64().expect("responder id")
}

/// The fields `firmware-protocol/schemas/responder-push.json` requires of a message of `kind`.
pub fn push_schema_required(kind: &str) -> Vec<String> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("firmware-protocol/schemas/responder-push.json");
    let schema: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).expect("schema")).expect("json");
    let names = |v: &serde_json::Value| -> Vec<String> {
        v.as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|s| s.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    };
    let mut required = names(&schema["required"]);
    let branch = schema["oneOf"]
        .as_array()
        .and_then(|b| {
            b.iter()
                .find(|b| b["properties"]["type"]["const"] == kind)
                .cloned()
        })
        .unwrap_or_else(|| panic!("the schema has no branch for {kind}"));
    required.extend(names(&branch["required"]));
    required
}
