//! A real three-node broker cluster on this machine, a node killed while alarms flow.
//!
//! **Which broker.** NATS 2.9 (`nats-server`, Debian package `nats-server`) with JetStream and its
//! MQTT listener, three nodes. NATS keeps an MQTT session (its subscriptions, the QoS 1 messages
//! held for it) in JetStream streams replicated to all three nodes, so a client whose node dies
//! reconnects to another with the same client id and finds its session there. JetStream is Raft:
//! two nodes of three keep a majority, two of two would not, hence three. A node starts in well
//! under a second, and the cluster has no join step. RabbitMQ 3.10's MQTT plugin was the other
//! candidate: its client-id tracking is Raft too (three nodes again), a node took about 17 s to
//! listen here, each needs `join_cluster` after it, and its QoS 1 subscription queues are classic
//! queues on one node unless `mqtt.durable_queue_type = quorum`.
//!
//! **What differs from EMQX** (`deploy/emqx/emqx.conf`), and so what this test configures:
//! - No shared subscriptions in NATS 2.9's MQTT: `$share/<group>/…` is taken as a plain topic, the
//!   SUBACK grants it, and nothing ever arrives. The instances run with `[mqtt] share_group = ""`:
//!   each subscribes to every uplink, each handles it, and the store's unique
//!   `(device_id, dedup_key)` makes it one event and one incident (the second instance answers
//!   `duplicate`; the device takes either ACK). It costs each instance every uplink's work.
//! - MQTT 3.1.1 only (EMQX: 5 as well). OneKey and the devices speak 3.1.1.
//! - Sessions and QoS 1 queues are replicated by the cluster (EMQX 5 keeps a session on the node
//!   the client was connected to, unless its durable sessions are on). During the re-election that
//!   follows a node's death (a few seconds) publishes may get no PUBACK: devices and the push
//!   outbox send again, as they would for any lost packet.
//! - No load balancer: every client has the three nodes' addresses. OneKey takes them as a
//!   comma-separated `mqtt_url` and moves to the next node after each connection error; the test's
//!   devices and app do the same (a device firmware would use a DNS name with several addresses, or
//!   a TCP load balancer in front of the nodes).
//!
//! The test: two OneKey instances on one PostgreSQL database, A first on node 1, B on node 2; JSON
//! buttons from the simulator crate spread over the three nodes, each sending one SOS with QoS 1
//! and resending it until the authenticated ACK; node 1 is SIGKILLed a third of the way in. Every
//! alarm is ACKed, every elder has exactly one incident, the store holds each event once, A
//! reconnects and takes uplinks again, and a volunteer's app that was on node 1 gets the offer for
//! an alarm raised after the kill.

mod common;
mod mqtt_support;

use std::process::Stdio;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use common::{Db, TestServer};
use mqtt_support::wait_broker_up;
use onekey_sim::devices::conn::{Conn, MqttTarget};
use onekey_sim::devices::json::JsonWire;
use onekey_sim::devices::wire::{Reply, Wire};
use onekey_sim::plan::Action;
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use serde_json::{Value, json};
use tokio::process::{Child, Command};
use tokio::sync::mpsc;

const PREFIX: &str = "onekey";
/// Buttons, one SOS each (one elder each, so one incident each).
const BUTTONS: u64 = 60;
/// Between two buttons' first sends.
const STAGGER: Duration = Duration::from_millis(40);
/// How long one button may take to get its ACK, retries included.
const ALARM_DEADLINE: Duration = Duration::from_secs(40);
/// The volunteer and the last elder, here; the other elders 20 km north, beyond every ring.
const NEAR: (f64, f64) = (27.1101, 114.9801);
const FAR: (f64, f64) = (27.30, 114.98);

/// One `nats-server` of the cluster.
struct Node {
    child: Option<Child>,
    /// MQTT listener, `127.0.0.1:port`.
    mqtt: String,
}

/// `n` free loopback ports, all different: their listeners are held until all are chosen.
fn distinct_ports(n: usize) -> Vec<u16> {
    let held: Vec<std::net::TcpListener> = (0..n)
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0").expect("bind a free port"))
        .collect();
    held.iter()
        .map(|l| l.local_addr().expect("local addr").port())
        .collect()
}

/// Three NATS nodes with JetStream and MQTT, in a temp dir; killed on drop.
struct NatsCluster {
    nodes: Vec<Node>,
    dir: tempfile::TempDir,
}

impl NatsCluster {
    async fn start() -> NatsCluster {
        let dir = tempfile::tempdir().expect("tempdir");
        // Nine distinct ports: one at a time, the kernel may hand the same free port out twice
        // (a node then fails to bind its route port).
        let ports = distinct_ports(9);
        let (client, rest) = ports.split_at(3);
        let (cluster, mqtt) = rest.split_at(3);
        let routes = cluster
            .iter()
            .map(|p| format!("nats-route://127.0.0.1:{p}"))
            .collect::<Vec<_>>()
            .join(", ");
        let mut nodes = Vec::new();
        for i in 0..3 {
            let store = dir.path().join(format!("n{i}"));
            let conf = dir.path().join(format!("n{i}.conf"));
            std::fs::write(
                &conf,
                format!(
                    "server_name: n{i}\nlisten: 127.0.0.1:{}\n\
                     jetstream {{ store_dir: \"{}\", max_memory_store: 64MB, max_file_store: 1GB }}\n\
                     cluster {{ name: onekey-test, listen: 127.0.0.1:{}, routes: [{routes}] }}\n\
                     mqtt {{ listen: 127.0.0.1:{} }}\n",
                    client[i],
                    store.display(),
                    cluster[i],
                    mqtt[i]
                ),
            )
            .expect("config");
            let log = std::fs::File::create(dir.path().join(format!("n{i}.log"))).expect("log");
            let child = Command::new("nats-server")
                .arg("-c")
                .arg(&conf)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(log)
                .kill_on_drop(true)
                .spawn()
                .expect(
                    "run nats-server (Debian package nats-server; scripts/test.sh installs it)",
                );
            nodes.push(Node {
                child: Some(child),
                mqtt: format!("127.0.0.1:{}", mqtt[i]),
            });
        }
        let cluster = NatsCluster { nodes, dir };
        for node in &cluster.nodes {
            cluster.wait_stores(&node.mqtt).await;
        }
        cluster
    }

    /// Waits until `node` takes a QoS 1 publish (the MQTT streams exist and have a leader).
    async fn wait_stores(&self, node: &str) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if probe(node).await {
                return;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        panic!(
            "NATS node {node} never stored a QoS 1 message\n{}",
            self.logs()
        );
    }

    /// Every node's MQTT address, starting with node `first`, as an `mqtt_url` list.
    fn url_from(&self, first: usize) -> String {
        (0..3)
            .map(|k| format!("mqtt://{}", self.nodes[(first + k) % 3].mqtt))
            .collect::<Vec<_>>()
            .join(",")
    }

    fn addrs(&self) -> Vec<String> {
        self.nodes.iter().map(|n| n.mqtt.clone()).collect()
    }

    /// SIGKILL, no goodbye to its peers or clients.
    async fn kill(&mut self, i: usize) {
        if let Some(mut child) = self.nodes[i].child.take() {
            child.kill().await.expect("kill nats-server");
        }
    }

    fn logs(&self) -> String {
        (0..3)
            .map(|i| {
                let text = std::fs::read_to_string(self.dir.path().join(format!("n{i}.log")))
                    .unwrap_or_default();
                let tail: Vec<&str> = text.lines().rev().take(15).collect();
                format!(
                    "--- n{i}\n{}",
                    tail.into_iter().rev().collect::<Vec<_>>().join("\n")
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// One QoS 1 publish through `node`; true on its PUBACK.
async fn probe(node: &str) -> bool {
    let (host, port) = mqtt_support::host_port(node);
    let (client, mut events) = AsyncClient::new(
        MqttOptions::new(mqtt_support::unique("probe"), host, port),
        4,
    );
    if client
        .try_publish("probe/ready", QoS::AtLeastOnce, false, "x")
        .is_err()
    {
        return false;
    }
    let acked = async {
        loop {
            match events.poll().await {
                Ok(Event::Incoming(Packet::PubAck(_))) => return true,
                Ok(_) => {}
                Err(_) => return false,
            }
        }
    };
    let ok = tokio::time::timeout(Duration::from_secs(5), acked)
        .await
        .unwrap_or(false);
    let _ = client.try_disconnect();
    let _ = tokio::time::timeout(Duration::from_millis(100), events.poll()).await;
    ok
}

/// A JSON button (the simulator's wire and connection) that knows every node: it starts on one
/// and moves to the next whenever its connection fails.
struct Button {
    ident: String,
    wire: JsonWire,
    nodes: Vec<String>,
    at: usize,
    conn: Option<Conn>,
    /// Connections that failed or were lost.
    reconnects: u32,
}

/// What one alarm came to.
struct Sent {
    acked: bool,
    attempts: u32,
    reconnects: u32,
}

impl Button {
    fn new(ident: &str, key: [u8; 32], nodes: Vec<String>, first: usize) -> Button {
        Button {
            ident: ident.to_string(),
            wire: JsonWire::new(ident, key, 1),
            nodes,
            at: first,
            conn: None,
            reconnects: 0,
        }
    }

    fn lost(&mut self) {
        self.conn = None;
        self.reconnects += 1;
        self.at = (self.at + 1) % self.nodes.len();
    }

    /// Connected and subscribed to its downlink, on whichever node answers.
    async fn connect(&mut self) {
        while self.conn.is_none() {
            let target = MqttTarget {
                broker: self.nodes[self.at].clone(),
                user: None,
                up: format!("{PREFIX}/dev/{}/up/json", self.ident),
                down: format!("{PREFIX}/dev/{}/down", self.ident),
                client_id: format!("sim-{}", self.ident),
            };
            match Conn::mqtt(&target, Duration::from_secs(3)).await {
                Ok(c) => self.conn = Some(c),
                Err(_) => {
                    self.lost();
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            }
        }
    }

    /// Sends an SOS, and the same uplink again every 2 s without its ACK, until the ACK.
    async fn sos(&mut self, within: Duration) -> Sent {
        let end = Instant::now() + within;
        let now = onekey::domain::now_millis;
        let out = self
            .wire
            .action(&Action::Alarm { kind: "sos".into() }, 90, now())
            .expect("JSON has SOS");
        let mut attempts = 0;
        while Instant::now() < end {
            self.connect().await;
            let Some(conn) = self.conn.as_mut() else {
                continue;
            };
            attempts += 1;
            let bytes = self.wire.again(&out, now());
            if conn.send(&bytes).await.is_err() {
                self.lost();
                continue;
            }
            let wait_until = tokio::time::Instant::now() + Duration::from_secs(2);
            let mut buf = BytesMut::new();
            loop {
                match tokio::time::timeout_at(wait_until, conn.recv(&mut buf)).await {
                    Ok(Ok(())) => {
                        if let Some(Reply::Ack { key, ok, .. }) = self.wire.reply(&mut buf)
                            && key == out.key
                        {
                            return Sent {
                                acked: ok,
                                attempts,
                                reconnects: self.reconnects,
                            };
                        }
                    }
                    Ok(Err(_)) => {
                        self.lost();
                        break;
                    }
                    Err(_) => break, // no ACK in time: send it again
                }
            }
        }
        Sent {
            acked: false,
            attempts,
            reconnects: self.reconnects,
        }
    }
}

/// A volunteer's app: persistent session (fixed client id, clean session off) on the task topic,
/// moving to the next node when its connection fails. Messages arrive on the channel; returns once
/// the first node granted the subscription.
async fn volunteer_app(
    nodes: Vec<String>,
    client_id: String,
    topic: String,
) -> (
    AsyncClient,
    mpsc::UnboundedReceiver<Value>,
    tokio::task::JoinHandle<()>,
) {
    let options = move |addr: &str| {
        let (host, port) = mqtt_support::host_port(addr);
        let mut o = MqttOptions::new(client_id.clone(), host, port);
        o.set_clean_session(false)
            .set_keep_alive(Duration::from_secs(5));
        o
    };
    let (client, mut events) = AsyncClient::new(options(&nodes[0]), 64);
    let (tx, rx) = mpsc::unbounded_channel();
    let (subscribed_tx, mut subscribed) = mpsc::unbounded_channel();
    let c = client.clone();
    let task = tokio::spawn(async move {
        let mut at = 0;
        loop {
            match events.poll().await {
                Ok(Event::Incoming(Packet::ConnAck(_))) => {
                    let _ = c.try_subscribe(topic.clone(), QoS::AtLeastOnce);
                }
                Ok(Event::Incoming(Packet::SubAck(_))) => {
                    let _ = subscribed_tx.send(());
                }
                Ok(Event::Incoming(Packet::Publish(p))) => {
                    if let Ok(v) = serde_json::from_slice::<Value>(&p.payload) {
                        let _ = tx.send(v);
                    }
                }
                Ok(_) => {}
                Err(_) => {
                    at = (at + 1) % nodes.len();
                    events.mqtt_options = options(&nodes[at]);
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            }
        }
    });
    tokio::time::timeout(Duration::from_secs(15), subscribed.recv())
        .await
        .expect("the app subscribed");
    (client, rx, task)
}

/// An elder at `at` with a JSON button `ident`; returns the elder's id.
async fn elder_with_button(
    server: &TestServer,
    ident: &str,
    key: &[u8; 32],
    at: (f64, f64),
) -> i64 {
    let (status, elder) = server
        .post(
            "/api/v1/elders",
            json!({ "name": format!("老人 {ident}"), "address": "吉州区 文山街道 1 号",
                    "lat": at.0, "lon": at.1, "living": "alone" }),
        )
        .await;
    assert_eq!(status, 201, "create elder: {elder}");
    let id = elder["id"].as_i64().expect("elder id");
    server
        .register_device("mqtt", ident, Some(&hex::encode(key)), Some(id))
        .await;
    id
}

fn borrowed<'a>(env: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    env.iter().map(|(k, v)| (*k, v.as_str())).collect()
}

fn key_of(i: u64) -> [u8; 32] {
    onekey_sim::native::demo_key(7_000 + i)
}

#[tokio::test]
async fn a_broker_node_killed_while_alarms_flow_loses_nothing_and_handles_nothing_twice() {
    let started = Instant::now();
    let mut cluster = NatsCluster::start().await;
    let cluster_up = started.elapsed();
    let db = Db::postgres().await;
    let (url_a, url_b) = (cluster.url_from(0), cluster.url_from(1));
    let env = |url: &str, id: &str| {
        [
            ("ONEKEY_MQTT_PREFIX", PREFIX.to_string()),
            ("ONEKEY_MQTT__SHARE_GROUP", String::new()),
            ("ONEKEY_MQTT__BACKOFF_MAX_MS", "1000".into()),
            ("ONEKEY_DISPATCH__RESPONDER_REFRESH_MS", "500".into()),
            ("ONEKEY_MQTT_URL", url.to_string()),
            ("ONEKEY_MQTT__CLIENT_ID", id.to_string()),
        ]
    };
    let (env_a, env_b) = (env(&url_a, "onekey-a"), env(&url_b, "onekey-b"));
    let a = TestServer::start(&db, &borrowed(&env_a)).await;
    let b = TestServer::start(&db, &borrowed(&env_b)).await;
    wait_broker_up(&a).await;
    wait_broker_up(&b).await;
    for (server, node) in [(&a, &cluster.nodes[0].mqtt), (&b, &cluster.nodes[1].mqtt)] {
        let log = server.log();
        assert!(
            log.contains(node.as_str()) && log.contains("MQTT subscribed"),
            "each instance starts on its first node\n{log}"
        );
        assert!(
            !log.contains("$share"),
            "plain subscriptions on NATS\n{log}"
        );
    }

    // The elders far away, their buttons spread over the three nodes; a volunteer here, whose app
    // has its session on node 1.
    let nodes = cluster.addrs();
    let mut elders = Vec::new();
    let mut buttons = Vec::new();
    for i in 0..BUTTONS {
        let ident = format!("btn-{i:03}");
        elders.push(elder_with_button(&a, &ident, &key_of(i), FAR).await);
        buttons.push(Button::new(
            &ident,
            key_of(i),
            nodes.clone(),
            (i % 3) as usize,
        ));
    }
    let (rid, _) = a
        .responder_on_duty("志愿者 钱", "13800000091", NEAR.0, NEAR.1)
        .await;
    let (app, mut offers, app_task) = volunteer_app(
        nodes.clone(),
        format!("app-{rid}"),
        format!("{PREFIX}/responder/{rid}/tasks"),
    )
    .await;
    // They connect at once, as a district's buttons do after a power cut.
    let connecting = Instant::now();
    let connects: Vec<_> = buttons
        .into_iter()
        .map(|mut b| {
            tokio::spawn(async move {
                b.connect().await;
                b
            })
        })
        .collect();
    let mut buttons = Vec::new();
    for c in connects {
        buttons.push(c.await.expect("connect task"));
    }
    let connected_in = connecting.elapsed();

    // Every button presses once, 40 ms apart; node 1 dies a third of the way in.
    let flood = Instant::now();
    let tasks: Vec<_> = buttons
        .into_iter()
        .enumerate()
        .map(|(i, mut b)| {
            tokio::spawn(async move {
                tokio::time::sleep(STAGGER * i as u32).await;
                b.sos(ALARM_DEADLINE).await
            })
        })
        .collect();
    tokio::time::sleep(STAGGER * (BUTTONS / 3) as u32).await;
    let json_up = r#"onekey_mqtt_messages_total{uplink="json"}"#;
    let a_before = a.metric(json_up).await;
    let errors = "onekey_mqtt_connection_errors_total";
    let a_errors_before = a.metric(errors).await;
    let a_log_before = a.log().len();
    cluster.kill(0).await;
    let killed = Instant::now();
    let killed_at = flood.elapsed();

    // A was on node 1: it finds another node and subscribes again.
    let a_back = loop {
        // Its state goes down before the error is counted, so counted and up means up again.
        let lost = a.metric(errors).await > a_errors_before;
        let (_, health) = a.health().await;
        if lost && health["broker"]["state"] == "up" {
            break killed.elapsed();
        }
        assert!(
            killed.elapsed() < Duration::from_secs(30),
            "A never reconnected\n{}\n{}",
            a.log(),
            cluster.logs()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };

    let (mut acked, mut retried, mut moved) = (0, 0, 0);
    for (i, t) in tasks.into_iter().enumerate() {
        let sent = t.await.expect("button task");
        assert!(
            sent.acked,
            "button {i}: no ACK after {} sends\nA:\n{}\nB:\n{}\n{}",
            sent.attempts,
            a.log(),
            b.log(),
            cluster.logs()
        );
        acked += 1;
        retried += u32::from(sent.attempts > 1);
        moved += u32::from(sent.reconnects > 0);
    }
    let all_acked = flood.elapsed();

    // After the kill: the volunteer's app (its session was on node 1) is offered the SOS of the
    // elder next door, whose button starts on the dead node.
    let last = elder_with_button(&b, "btn-near", &key_of(999), NEAR).await;
    let mut near = Button::new("btn-near", key_of(999), nodes.clone(), 0);
    let sent = near.sos(ALARM_DEADLINE).await;
    assert!(sent.acked, "the last alarm was not ACKed\n{}", b.log());
    assert!(
        sent.reconnects > 0,
        "the last button started on the dead node"
    );
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let offer = loop {
        let Ok(Some(msg)) = tokio::time::timeout_at(deadline, offers.recv()).await else {
            panic!(
                "no offer on the app\nA:\n{}\nB:\n{}\n{}",
                a.log(),
                b.log(),
                cluster.logs()
            );
        };
        if msg["type"] == "offer" {
            break msg;
        }
    };
    let incident = offer["incident_id"].as_i64().expect("incident id");
    let (_, detail) = b.get(&format!("/api/v1/incidents/{incident}")).await;
    assert_eq!(
        detail["incident"]["elder_id"].as_i64(),
        Some(last),
        "{detail}"
    );
    // The app's receipt, through a surviving node, reaches an instance.
    app.publish(
        format!("{PREFIX}/responder/{rid}/receipt"),
        QoS::AtLeastOnce,
        false,
        json!({ "ids": [offer["id"]] }).to_string(),
    )
    .await
    .expect("receipt queued");
    b.wait_events(incident, "offer_received", 1, Duration::from_secs(15))
        .await;
    app_task.abort();

    // Exactly one incident per elder, each event stored once although both instances handled it.
    let incidents = a.incidents().await;
    let mut per_elder = std::collections::HashMap::new();
    for i in &incidents {
        *per_elder
            .entry(i["elder_id"].as_i64().unwrap_or(0))
            .or_insert(0) += 1;
    }
    for elder in elders.iter().chain([&last]) {
        assert_eq!(
            per_elder.get(elder),
            Some(&1),
            "elder {elder}: {per_elder:?}"
        );
    }
    assert_eq!(incidents.len(), elders.len() + 1, "{per_elder:?}");
    let stored = r#"onekey_intake_events_total{outcome="stored"}"#;
    let duplicate = r#"onekey_intake_events_total{outcome="duplicate"}"#;
    let (stored_a, stored_b) = (a.metric(stored).await, b.metric(stored).await);
    let dup = a.metric(duplicate).await + b.metric(duplicate).await;
    assert_eq!(
        stored_a + stored_b,
        (BUTTONS + 1) as f64,
        "each alarm stored once: A {stored_a}, B {stored_b}"
    );
    assert!(
        dup >= 1.0,
        "both instances handle every uplink: {dup} duplicates"
    );
    // A takes uplinks again from its new node.
    let a_after = a.metric(json_up).await;
    assert!(
        a_after > a_before,
        "A handled no uplink after the kill ({a_before} → {a_after})"
    );
    let since_kill = a.log().split_off(a_log_before);
    assert!(
        since_kill.lines().any(|l| l.contains("MQTT connected")
            && (l.contains(nodes[1].as_str()) || l.contains(nodes[2].as_str()))),
        "A connected to a surviving node\n{since_kill}"
    );

    println!(
        "NATS 2.9 three-node cluster up in {:.2} s; {BUTTONS} buttons connected in {:.2} s; \
         node 1 SIGKILLed at {:.2} s: A back on another node {:.2} s later; {acked}/{BUTTONS} \
         alarms ACKed by {:.2} s ({retried} sent more than once, {moved} reconnected); incidents \
         {} for {} elders; events stored A {stored_a} + B {stored_b}, {dup} duplicates answered; \
         the app's offer after the kill arrived and its receipt was recorded",
        cluster_up.as_secs_f64(),
        connected_in.as_secs_f64(),
        killed_at.as_secs_f64(),
        a_back.as_secs_f64(),
        all_acked.as_secs_f64(),
        incidents.len(),
        elders.len() + 1,
    );
    assert_eq!(b.stop().await, 0);
    assert_eq!(a.stop().await, 0);
}
