//! MQTT end to end: the real binary, the embedded broker and Mosquitto, real `mosquitto_pub` and
//! `mosquitto_sub` clients. Each test uses its own topic prefix and client ids.

mod common;
mod mqtt_support;

use std::time::Duration;

use common::{Db, TestServer};
use mqtt_support::*;
use onekey_protocol::{Alarm, AlarmKind, Header, Message};

const KEY: [u8; 32] = [0x5a; 32];
const SYSTEM_MOSQUITTO: &str = "127.0.0.1:1883";

/// The server and its database (kept alive as long as the server runs).
async fn server_on(broker_url: Option<&str>, prefix: &str) -> (TestServer, Db) {
    let mut env = vec![
        ("ONEKEY_MQTT_PREFIX", prefix),
        ("ONEKEY_MQTT__BACKOFF_MAX_MS", "1000"),
    ];
    if let Some(url) = broker_url {
        env.push(("ONEKEY_MQTT_URL", url));
    }
    let db = Db::sqlite();
    let server = TestServer::start(&db, &env).await;
    wait_broker_up(&server).await;
    (server, db)
}

/// A JSON alarm from `mosquitto_pub` creates exactly one incident and gets one authenticated ACK on
/// the downlink topic; the device's retry of it gets a `duplicate` ACK and no second incident.
async fn json_alarm_round_trip(server: &TestServer, broker: &str, prefix: &str) {
    let ident = "btn-0001";
    register_json_device(server, ident, &KEY).await;
    let down = format!("{prefix}/dev/{ident}/down");
    let up = format!("{prefix}/dev/{ident}/up/json");

    let sub = Sub::start(broker, &down, &["-C", "2", "-W", "20"]).await;
    let alarm = json_uplink(ident, &KEY, 1, "sos");
    mosquitto_pub(broker, &up, &alarm).await;
    server
        .wait_metric(r#"onekey_intake_events_total{outcome="stored"}"#, 1.0)
        .await;
    mosquitto_pub(broker, &up, &alarm).await; // the device retries
    let lines = messages(&sub.output(Duration::from_secs(20)).await);
    assert_eq!(lines.len(), 2, "two ACKs: {lines:?}\n{}", server.log());
    let first = check_ack(ident, &KEY, &lines[0]);
    let second = check_ack(ident, &KEY, &lines[1]);
    assert_eq!((first.seq, first.status.as_str()), (1, "stored"));
    assert_eq!((second.seq, second.status.as_str()), (1, "duplicate"));
    let incidents = server.incidents().await;
    assert_eq!(incidents.len(), 1, "{incidents:?}");
}

/// A responder subscribed with `mosquitto_sub` receives an operator's message.
async fn push_round_trip(server: &TestServer, broker: &str, prefix: &str) {
    let id = create_responder(server, "志愿者 王").await;
    let topic = format!("{prefix}/responder/{id}/tasks");
    let sub = Sub::start(broker, &topic, &["-C", "1", "-W", "15"]).await;
    let (status, body) = server
        .post(
            &format!("/api/v1/responders/{id}/push"),
            serde_json::json!({ "text": "请到 3 号楼" }),
        )
        .await;
    assert_eq!(status, 202, "{body}");
    let lines = messages(&sub.output(Duration::from_secs(15)).await);
    assert_eq!(lines.len(), 1, "{lines:?}\n{}", server.log());
    let msg: serde_json::Value = serde_json::from_str(&lines[0]).expect("push json");
    assert_eq!(msg["type"], "message");
    assert_eq!(msg["text"], "请到 3 号楼");
    assert_eq!(
        msg["id"], body["id"],
        "the message carries its notification id"
    );
    // Unknown responders and empty messages are refused.
    let (status, _) = server
        .post(
            "/api/v1/responders/999999/push",
            serde_json::json!({ "text": "x" }),
        )
        .await;
    assert_eq!(status, 404);
    let (status, _) = server
        .post(
            &format!("/api/v1/responders/{id}/push"),
            serde_json::json!({ "text": "  " }),
        )
        .await;
    assert_eq!(status, 400);
}

/// An SOS from a JSON device next to an on-duty volunteer: the dispatch engine's offer arrives on
/// the volunteer's task topic (watched by `mosquitto_sub`), and the app's receipt, published on
/// the receipt topic, shows on the incident as received.
async fn a_dispatch_offer_reaches_the_task_topic(server: &TestServer, broker: &str, prefix: &str) {
    let ident = "btn-offer";
    register_json_device(server, ident, &KEY).await;
    let (rid, _token) = server
        .responder_on_duty("志愿者 周", "13800000077", 27.1101, 114.9801)
        .await;
    let topic = format!("{prefix}/responder/{rid}/tasks");
    let sub = Sub::start(broker, &topic, &["-C", "1", "-W", "15"]).await;
    mosquitto_pub(
        broker,
        &format!("{prefix}/dev/{ident}/up/json"),
        &json_uplink(ident, &KEY, 1, "sos"),
    )
    .await;
    let lines = messages(&sub.output(Duration::from_secs(15)).await);
    assert_eq!(lines.len(), 1, "{lines:?}\n{}", server.log());
    let offer: serde_json::Value = serde_json::from_str(&lines[0]).expect("offer json");
    assert_eq!(offer["type"], "offer", "{offer}");
    for field in push_schema_required("offer") {
        assert!(
            !offer[&field].is_null(),
            "the schema's required {field} is missing: {offer}"
        );
    }
    assert_eq!(offer["kind"], "sos");
    assert_eq!(offer["category"], "emergency");
    assert!(
        offer["address"]
            .as_str()
            .is_some_and(|a| a.contains("文山街道")),
        "{offer}"
    );
    let incident = offer["incident_id"].as_i64().expect("incident id");
    let id = offer["id"].as_i64().expect("notification id");
    assert!(
        offer["expires_at"].as_i64() > offer["at"].as_i64(),
        "{offer}"
    );
    // The broker's PUBACK to the server may come after the subscriber has the message.
    server
        .wait_metric(r#"onekey_mqtt_pushes_total{outcome="sent"}"#, 1.0)
        .await;
    // The app confirms receipt; the console sees it.
    mosquitto_pub(
        broker,
        &format!("{prefix}/responder/{rid}/receipt"),
        serde_json::json!({ "ids": [id] }).to_string().as_bytes(),
    )
    .await;
    let received = server
        .wait_events(incident, "offer_received", 1, Duration::from_secs(10))
        .await;
    assert_eq!(received[0]["detail"]["responder_id"], rid);
    let (_, detail) = server.get(&format!("/api/v1/incidents/{incident}")).await;
    let mine = detail["offers"]
        .as_array()
        .and_then(|o| o.iter().find(|o| o["responder_id"] == rid).cloned())
        .expect("offer row");
    assert_eq!(mine["delivery"], "delivered", "{mine}");
    assert_eq!(mine["delivery_channel"], "push");
}

#[tokio::test]
async fn json_alarm_and_push_through_the_embedded_broker() {
    let prefix = unique("emb");
    let (server, _db) = server_on(None, &prefix).await;
    let broker = server.addr("mqtt");
    json_alarm_round_trip(&server, &broker, &prefix).await;
    push_round_trip(&server, &broker, &prefix).await;
    assert_eq!(server.stop().await, 0);
}

#[tokio::test]
async fn json_alarm_and_push_through_the_system_mosquitto() {
    let prefix = unique("sys");
    let (server, _db) = server_on(Some(&format!("mqtt://{SYSTEM_MOSQUITTO}")), &prefix).await;
    assert!(
        !server.addrs.contains_key("mqtt"),
        "no embedded broker with an external one"
    );
    json_alarm_round_trip(&server, SYSTEM_MOSQUITTO, &prefix).await;
    push_round_trip(&server, SYSTEM_MOSQUITTO, &prefix).await;
    assert_eq!(server.stop().await, 0);
}

#[tokio::test]
async fn a_dispatch_offer_reaches_mosquitto_sub_through_the_embedded_broker() {
    let prefix = unique("ofe");
    let (server, _db) = server_on(None, &prefix).await;
    let broker = server.addr("mqtt");
    a_dispatch_offer_reaches_the_task_topic(&server, &broker, &prefix).await;
    assert_eq!(server.stop().await, 0);
}

#[tokio::test]
async fn a_dispatch_offer_reaches_mosquitto_sub_through_the_system_mosquitto() {
    let prefix = unique("ofs");
    let (server, _db) = server_on(Some(&format!("mqtt://{SYSTEM_MOSQUITTO}")), &prefix).await;
    a_dispatch_offer_reaches_the_task_topic(&server, SYSTEM_MOSQUITTO, &prefix).await;
    assert_eq!(server.stop().await, 0);
}

/// A volunteer's app that is offline when the offer is made gets it when it comes back (QoS 1 to
/// its persistent session).
async fn an_offline_app_gets_its_offer_on_reconnect(broker: Option<&str>, prefix: &str) {
    let (server, _db) = server_on(broker.map(|b| format!("mqtt://{b}")).as_deref(), prefix).await;
    let broker = broker.map_or_else(|| server.addr("mqtt"), str::to_string);
    let ident = "btn-away";
    register_json_device(&server, ident, &KEY).await;
    let (rid, _) = server
        .responder_on_duty("志愿者 李", "13800000078", 27.1101, 114.9801)
        .await;
    let topic = format!("{prefix}/responder/{rid}/tasks");
    let app_id = unique("app");
    // The app subscribes once with a persistent session, then goes offline.
    Sub::start(&broker, &topic, &["-c", "-i", &app_id])
        .await
        .stop()
        .await;
    mosquitto_pub(
        &broker,
        &format!("{prefix}/dev/{ident}/up/json"),
        &json_uplink(ident, &KEY, 1, "fall"),
    )
    .await;
    server
        .wait_metric(r#"onekey_mqtt_pushes_total{outcome="sent"}"#, 1.0)
        .await;
    let back = Sub::start(
        &broker,
        &topic,
        &["-c", "-i", &app_id, "-C", "1", "-W", "10"],
    )
    .await;
    let lines = messages(&back.output(Duration::from_secs(10)).await);
    assert_eq!(lines.len(), 1, "{lines:?}\n{}", server.log());
    let offer: serde_json::Value = serde_json::from_str(&lines[0]).expect("json");
    assert_eq!(
        (offer["type"].as_str(), offer["kind"].as_str()),
        (Some("offer"), Some("fall"))
    );
    assert_eq!(server.stop().await, 0);
}

#[tokio::test]
async fn an_offline_app_gets_its_offer_on_reconnect_through_the_system_mosquitto() {
    an_offline_app_gets_its_offer_on_reconnect(Some(SYSTEM_MOSQUITTO), &unique("off")).await;
}

#[tokio::test]
async fn an_offline_app_gets_its_offer_on_reconnect_through_the_embedded_broker() {
    an_offline_app_gets_its_offer_on_reconnect(None, &unique("offe")).await;
}

/// A native device that cannot keep a TCP connection sends its binary frames over MQTT and gets the
/// binary, authenticated ACK on its downlink.
#[tokio::test]
async fn binary_native_frames_over_mqtt_get_binary_acks() {
    let prefix = unique("bin");
    let (server, _db) = server_on(None, &prefix).await;
    let broker = server.addr("mqtt");
    let device_id = 880_001u64;
    server.register_native_device(device_id, &KEY).await;
    let header = Header {
        device_id,
        seq: 5,
        timestamp: u32::try_from(onekey::domain::now_millis() / 1000).unwrap_or(0),
    };
    let mut frame = [0u8; onekey_protocol::MAX_FRAME_LEN];
    let n = onekey_protocol::encode(
        &header,
        &Message::Alarm(Alarm {
            kind: AlarmKind::Fall,
            location: None,
        }),
        &KEY,
        &mut frame,
    )
    .expect("encode");
    let sub = Sub::start(
        &broker,
        &format!("{prefix}/dev/{device_id}/down"),
        &["-C", "1", "-W", "10", "-N"],
    )
    .await;
    mosquitto_pub(
        &broker,
        &format!("{prefix}/dev/{device_id}/up"),
        &frame[..n],
    )
    .await;
    let out = sub.output(Duration::from_secs(10)).await;
    // `-d` trace lines come first; the binary frame starts at the magic "OK".
    let start = out
        .windows(3)
        .position(|w| w[0] == b'O' && w[1] == b'K' && w[2] == onekey_protocol::VERSION)
        .unwrap_or_else(|| {
            panic!(
                "no frame in {:?}\n{}",
                String::from_utf8_lossy(&out),
                server.log()
            )
        });
    let (unverified, _) = onekey_protocol::decode(&out[start..]).expect("decode ACK");
    let ack = unverified.verify(&KEY).expect("ACK verifies");
    match ack.message {
        Message::Ack(a) => {
            assert_eq!(a.acked_seq, 5);
            assert_eq!(a.status, onekey_protocol::AckStatus::Stored);
        }
        other => panic!("expected an ACK, got {other:?}"),
    }
    assert_eq!(server.incidents().await.len(), 1);
}

/// Malformed payloads, unknown devices, wrong MACs and topics that do not match the payload's
/// device are refused, logged and counted; the server keeps serving.
#[tokio::test]
async fn hostile_mqtt_uplinks_are_rejected_and_counted() {
    let prefix = unique("bad");
    let (server, _db) = server_on(None, &prefix).await;
    let broker = server.addr("mqtt");
    register_json_device(&server, "btn-good", &KEY).await;
    let up = |d: &str| format!("{prefix}/dev/{d}/up/json");
    mosquitto_pub(&broker, &up("btn-good"), b"{not json").await;
    mosquitto_pub(&broker, &up("btn-good"), &[0xff, 0x00, 0x13]).await;
    mosquitto_pub(
        &broker,
        &format!("{prefix}/dev/btn-good/up"),
        b"\x00garbage",
    )
    .await;
    mosquitto_pub(
        &broker,
        &up("btn-nobody"),
        &json_uplink("btn-nobody", &KEY, 1, "sos"),
    )
    .await;
    mosquitto_pub(
        &broker,
        &up("btn-good"),
        &json_uplink("btn-good", &[1; 32], 1, "sos"),
    )
    .await;
    mosquitto_pub(
        &broker,
        &up("btn-good"),
        &json_uplink("btn-other", &KEY, 1, "sos"),
    )
    .await;
    mosquitto_pub(&broker, &up("btn-good"), &[b' '; 8000]).await;
    for (reason, n) in [
        ("oversized", 1.0),
        ("malformed", 3.0),
        ("unknown_device", 1.0),
        ("bad_mac", 1.0),
        ("topic_mismatch", 1.0),
    ] {
        server
            .wait_metric(
                &format!(r#"onekey_mqtt_rejected_total{{reason="{reason}"}}"#),
                n,
            )
            .await;
    }
    assert!(server.incidents().await.is_empty());
    let log = server.log();
    assert!(log.contains("MQTT uplink rejected"), "{log}");
    assert!(!log.contains("panicked"), "{log}");
    // Still serving.
    let sub = Sub::start(
        &broker,
        &format!("{prefix}/dev/btn-good/down"),
        &["-C", "1", "-W", "10"],
    )
    .await;
    mosquitto_pub(
        &broker,
        &up("btn-good"),
        &json_uplink("btn-good", &KEY, 2, "fall"),
    )
    .await;
    let lines = messages(&sub.output(Duration::from_secs(10)).await);
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert_eq!(check_ack("btn-good", &KEY, &lines[0]).status, "stored");
    assert_eq!(server.stop().await, 0);
}

/// A broker restart while alarms and pushes flow loses neither: devices retry until their ACK
/// (sent only after the commit), pushes are delivered stop-and-wait and kept in the outbox while
/// the broker is down, and the responder's persistent session holds what arrives while it is away.
#[tokio::test]
async fn a_broker_restart_loses_no_alarm_and_no_push() {
    let broker = PrivateBroker::start(true).await;
    let prefix = unique("rst");
    let (server, _db) = server_on(Some(&format!("mqtt://{}", broker.addr)), &prefix).await;
    let ident = "btn-restart";
    register_json_device(&server, ident, &KEY).await;
    let rid = create_responder(&server, "志愿者 赵").await;
    let app_id = unique("app");
    let topic = format!("{prefix}/responder/{rid}/tasks");
    let app = Sub::start(&broker.addr, &topic, &["-c", "-i", &app_id]).await;

    const ALARMS: u32 = 30;
    const PUSHES: usize = 30;
    let mut device = JsonDevice::connect(&broker.addr, &prefix, ident).await;
    let mut acked = 0;
    let mut restarted = None;
    let mut running = Some(broker);
    for seq in 1..=ALARMS {
        if let Some(mut broker) = running.take_if(|_| seq == 10) {
            // The broker goes away for two seconds while alarms and pushes keep coming.
            broker.stop(false).await;
            restarted = Some(tokio::spawn(async move {
                tokio::time::sleep(Duration::from_secs(2)).await;
                broker.restart().await;
                broker
            }));
        }
        let push = server
            .post(
                &format!("/api/v1/responders/{rid}/push"),
                serde_json::json!({ "text": format!("push {seq}") }),
            )
            .await;
        assert_eq!(push.0, 202, "{}", push.1);
        let ack = device
            .send_until_acked(
                json_uplink(ident, &KEY, seq, "sos"),
                seq,
                Duration::from_millis(700),
                Duration::from_secs(60),
            )
            .await
            .unwrap_or_else(|| panic!("alarm {seq} never ACKed\n{}", server.log()));
        assert!(
            matches!(ack.status.as_str(), "stored" | "duplicate"),
            "{ack:?}"
        );
        acked += 1;
    }
    let mut broker = restarted.expect("restarted").await.expect("restart task");
    assert_eq!(acked, ALARMS);
    // Every alarm is in the store (ACK only after commit), joined into one incident.
    server
        .wait_metric(
            r#"onekey_intake_events_total{outcome="stored"}"#,
            f64::from(ALARMS),
        )
        .await;
    server
        .wait_metric(r#"onekey_mqtt_pushes_total{outcome="sent"}"#, PUSHES as f64)
        .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let out = app.output(Duration::from_millis(500)).await;
    let mut got: Vec<u32> = messages(&out)
        .iter()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter_map(|v| v["text"].as_str()?.strip_prefix("push ")?.parse().ok())
        .collect();
    got.sort_unstable();
    got.dedup();
    assert_eq!(
        got,
        (1..=PUSHES as u32).collect::<Vec<_>>(),
        "responder saw:\n{}",
        String::from_utf8_lossy(&out)
    );
    broker.stop(false).await;
}

/// When the broker forgets everything (killed, no persistence), OneKey resubscribes after the
/// reconnect and uplinks flow again.
#[tokio::test]
async fn uplinks_flow_again_after_the_broker_forgets_the_session() {
    let mut broker = PrivateBroker::start(false).await;
    let prefix = unique("fgt");
    let (server, _db) = server_on(Some(&format!("mqtt://{}", broker.addr)), &prefix).await;
    let ident = "btn-forget";
    register_json_device(&server, ident, &KEY).await;
    let mut device = JsonDevice::connect(&broker.addr, &prefix, ident).await;
    let ack = device
        .send_until_acked(
            json_uplink(ident, &KEY, 1, "sos"),
            1,
            Duration::from_secs(1),
            Duration::from_secs(20),
        )
        .await;
    assert_eq!(ack.map(|a| a.status), Some("stored".to_string()));
    broker.stop(true).await;
    let health = server
        .http
        .get(format!("{}/healthz", server.base()))
        .send()
        .await
        .expect("healthz");
    let _ = health; // may still say up for a moment
    broker.restart().await;
    let ack = device
        .send_until_acked(
            json_uplink(ident, &KEY, 2, "fall"),
            2,
            Duration::from_secs(1),
            Duration::from_secs(30),
        )
        .await;
    assert!(
        ack.is_some(),
        "no ACK after the broker restart\n{}",
        server.log()
    );
    assert!(
        server.metric("onekey_mqtt_connection_errors_total").await >= 1.0,
        "the connection loss was not counted"
    );
    broker.stop(true).await;
}

/// Two instances on one broker with the same prefix split the device uplinks through the shared
/// subscription: every alarm is handled (stored and ACKed) by exactly one of them.
#[tokio::test]
async fn two_instances_split_uplinks_through_a_shared_subscription() {
    let prefix = unique("shr");
    let url = format!("mqtt://{SYSTEM_MOSQUITTO}");
    let (id_a, id_b) = (unique("inst-a"), unique("inst-b"));
    let (db_a, db_b) = (Db::sqlite(), Db::sqlite());
    let env_a = [
        ("ONEKEY_MQTT_URL", url.as_str()),
        ("ONEKEY_MQTT_PREFIX", prefix.as_str()),
        ("ONEKEY_MQTT__CLIENT_ID", id_a.as_str()),
    ];
    let env_b = [
        ("ONEKEY_MQTT_URL", url.as_str()),
        ("ONEKEY_MQTT_PREFIX", prefix.as_str()),
        ("ONEKEY_MQTT__CLIENT_ID", id_b.as_str()),
    ];
    let a = TestServer::start(&db_a, &env_a).await;
    let b = TestServer::start(&db_b, &env_b).await;
    wait_broker_up(&a).await;
    wait_broker_up(&b).await;
    let ident = "btn-shared";
    register_json_device(&a, ident, &KEY).await;
    register_json_device(&b, ident, &KEY).await;
    let mut device = JsonDevice::connect(SYSTEM_MOSQUITTO, &prefix, ident).await;
    const ALARMS: u32 = 20;
    for seq in 1..=ALARMS {
        let ack = device
            .send_until_acked(
                json_uplink(ident, &KEY, seq, "sos"),
                seq,
                Duration::from_secs(10),
                Duration::from_secs(20),
            )
            .await;
        assert_eq!(
            ack.map(|a| a.status),
            Some("stored".to_string()),
            "alarm {seq}"
        );
    }
    let stored = r#"onekey_intake_events_total{outcome="stored"}"#;
    let (na, nb) = (a.metric(stored).await, b.metric(stored).await);
    assert_eq!(na + nb, f64::from(ALARMS), "a {na} + b {nb}");
    assert!(
        na > 0.0 && nb > 0.0,
        "both instances take a share: a {na}, b {nb}"
    );
    assert_eq!(a.stop().await, 0);
    assert_eq!(b.stop().await, 0);
}

/// An operator's command reaches a JSON device on its downlink, signed with its key.
#[tokio::test]
async fn api_commands_reach_mqtt_devices_on_their_downlink() {
    let prefix = unique("cmd");
    let (server, _db) = server_on(None, &prefix).await;
    let broker = server.addr("mqtt");
    let ident = "btn-cmd";
    let row = register_json_device(&server, ident, &KEY).await;
    let down = format!("{prefix}/dev/{ident}/down");
    // Not reachable before it has said anything.
    let (status, _) = server
        .post(
            &format!("/api/v1/devices/{row}/command"),
            serde_json::json!({ "command": "locate" }),
        )
        .await;
    assert_eq!(status, 503);
    let sub = Sub::start(&broker, &down, &["-C", "2", "-W", "10"]).await;
    mosquitto_pub(
        &broker,
        &format!("{prefix}/dev/{ident}/up/json"),
        &json_uplink(ident, &KEY, 1, "heartbeat"),
    )
    .await;
    // Reachable once its uplink is authenticated and answered.
    server
        .wait_metric(r#"onekey_device_ack_seconds_count{protocol="mqtt"}"#, 1.0)
        .await;
    let (status, body) = server
        .post(
            &format!("/api/v1/devices/{row}/command"),
            serde_json::json!({ "command": "locate" }),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let id = body["command_id"].as_u64().expect("command id");
    let lines = messages(&sub.output(Duration::from_secs(10)).await);
    assert_eq!(lines.len(), 2, "heartbeat ACK and command: {lines:?}");
    assert_eq!(check_ack(ident, &KEY, &lines[0]).status, "stored");
    let cmd: serde_json::Value = serde_json::from_str(&lines[1]).expect("command json");
    assert_eq!(cmd["type"], "command");
    assert_eq!(cmd["command"], "locate");
    assert_eq!(cmd["id"].as_u64(), Some(id));
    let mac =
        onekey::ingress::mqtt::json_uplink::mac_hex(&KEY, &format!("v1|cmd|{ident}|{id}|locate|0"));
    assert_eq!(cmd["mac"], mac.as_str());
}

/// Port 1883 is taken (the system Mosquitto): the embedded broker falls back to an ephemeral port,
/// says so, and reports it in the ready file.
#[tokio::test]
async fn the_embedded_broker_falls_back_when_1883_is_taken() {
    assert!(
        std::net::TcpListener::bind(SYSTEM_MOSQUITTO).is_err(),
        "this test expects the system Mosquitto on 1883"
    );
    let prefix = unique("fb");
    let db = Db::sqlite();
    let server = TestServer::start(
        &db,
        &[
            ("ONEKEY_MQTT_LISTEN", SYSTEM_MOSQUITTO),
            ("ONEKEY_MQTT_PREFIX", prefix.as_str()),
        ],
    )
    .await;
    wait_broker_up(&server).await;
    let addr = server.addr("mqtt");
    assert_ne!(addr, SYSTEM_MOSQUITTO);
    assert!(addr.starts_with("127.0.0.1:"), "{addr}");
    assert!(
        server
            .log()
            .contains("address taken; using an ephemeral port")
    );
    assert_eq!(server.stop().await, 0);
}

/// Many devices at once through the embedded broker: uplinks are handled concurrently but
/// PUBACKed in arrival order (rumqttd drops a client that acknowledges out of order), so every
/// alarm is ACKed and the connection never drops.
#[tokio::test]
async fn concurrent_uplinks_through_the_embedded_broker_keep_the_connection() {
    let prefix = unique("conc");
    let (server, _db) = server_on(None, &prefix).await;
    let broker = server.addr("mqtt");
    let mut tasks = Vec::new();
    for d in 0..16 {
        let ident = format!("btn-c{d}");
        register_json_device(&server, &ident, &KEY).await;
        let mut device = JsonDevice::connect(&broker, &prefix, &ident).await;
        tasks.push(tokio::spawn(async move {
            for seq in 1..=10 {
                let ack = device
                    .send_until_acked(
                        json_uplink(&ident, &KEY, seq, "sos"),
                        seq,
                        Duration::from_secs(10),
                        Duration::from_secs(20),
                    )
                    .await;
                assert!(ack.is_some(), "{ident} alarm {seq} not ACKed");
            }
        }));
    }
    for t in tasks {
        t.await.expect("device");
    }
    assert_eq!(
        server.metric("onekey_mqtt_connection_errors_total").await,
        0.0,
        "{}",
        server.log()
    );
    server
        .wait_metric(r#"onekey_intake_events_total{outcome="stored"}"#, 160.0)
        .await;
}
