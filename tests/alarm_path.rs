//! The alarm spine end to end, over real sockets against the real binary: a device's SOS is committed,
//! ACKed, opens an incident that the API and the live stream show; retries and repeated presses do
//! not open a second one.

mod common;

use std::time::Duration;

use common::{Db, EventStream, TestServer};
use onekey_protocol::{AckStatus, AlarmKind, Location, Message, RejectReason};
use onekey_sim::native::{NativeDevice, demo_key};

const WAIT: Duration = Duration::from_secs(10);

fn ack_of(frame: &onekey_protocol::Frame) -> onekey_protocol::Ack {
    match frame.message {
        Message::Ack(ack) => ack,
        other => panic!("expected an ACK, got {other:?}"),
    }
}

async fn sos_is_acked_after_commit_and_reaches_api_and_stream(db: Db) {
    let server = TestServer::start(&db, &[]).await;
    let key = demo_key(1);
    let (elder_id, device_row) = server
        .register_native_device(860_000_000_000_001, &key)
        .await;
    let mut stream = EventStream::open(&server, None).await;

    let mut device = NativeDevice::connect(&server.addr("device_tcp"), 860_000_000_000_001, key)
        .await
        .unwrap();
    let hello = device.hello(WAIT).await.unwrap();
    assert_eq!(ack_of(&hello).status, AckStatus::Stored);
    let location = Location {
        lat_e6: 27_113_000,
        lon_e6: 114_981_000,
        accuracy_m: 15,
    };
    let (seq, reply) = device
        .alarm(AlarmKind::Sos, Some(location), WAIT)
        .await
        .unwrap();
    let ack = ack_of(&reply);
    assert_eq!(ack.acked_seq, seq);
    assert_eq!(ack.status, AckStatus::Stored);
    assert_eq!(ack.reason, RejectReason::None);

    // The ACK came after the commit: the incident is there the moment the ACK is.
    let incidents = server.incidents().await;
    assert_eq!(incidents.len(), 1, "{incidents:?}");
    let incident = &incidents[0];
    assert_eq!(incident["elder_id"], elder_id);
    assert_eq!(incident["device_id"], device_row);
    assert_eq!(incident["category"], "emergency");
    assert_eq!(incident["kind"], "sos");
    assert_eq!(incident["status"], "new");
    assert!((incident["location"]["lat"].as_f64().unwrap() - 27.113).abs() < 1e-6);
    assert!(incident["stored_at"].as_i64().unwrap() >= incident["received_at"].as_i64().unwrap());

    let opened = stream
        .next_of_kind("opened", WAIT)
        .await
        .expect("opened event on the live stream");
    assert_eq!(opened.data["incident_id"], incident["id"]);
    assert_eq!(opened.data["detail"]["kind"], "sos");

    // Reaching the console is itself a recorded step.
    let shown = stream
        .next_of_kind("shown", WAIT)
        .await
        .expect("shown event");
    assert_eq!(shown.data["incident_id"], incident["id"]);
    let id = incident["id"].as_i64().unwrap();
    let (_, detail) = server.get(&format!("/api/v1/incidents/{id}")).await;
    assert!(
        detail["incident"]["shown_at"].as_i64().is_some(),
        "{detail}"
    );
    assert_eq!(detail["elder"]["id"], elder_id);
    assert_eq!(detail["device"]["protocol"], "native");

    assert_eq!(server.stop().await, 0, "clean shutdown exits 0");
}

#[tokio::test]
async fn sos_is_acked_after_commit_and_reaches_api_and_stream_sqlite() {
    sos_is_acked_after_commit_and_reaches_api_and_stream(Db::sqlite()).await;
}

#[tokio::test]
async fn sos_is_acked_after_commit_and_reaches_api_and_stream_postgres() {
    sos_is_acked_after_commit_and_reaches_api_and_stream(Db::postgres().await).await;
}

#[tokio::test]
async fn a_retry_is_acked_as_duplicate_and_creates_nothing() {
    let db = Db::sqlite();
    let server = TestServer::start(&db, &[]).await;
    let key = demo_key(2);
    server.register_native_device(2002, &key).await;
    let mut device = NativeDevice::connect(&server.addr("device_tcp"), 2002, key)
        .await
        .unwrap();

    let (bytes, seq) = device.frame(Message::Alarm(onekey_protocol::Alarm {
        kind: AlarmKind::Fall,
        location: None,
    }));
    device.send_raw(&bytes).await.unwrap();
    assert_eq!(
        ack_of(&device.recv(WAIT).await.unwrap()).status,
        AckStatus::Stored
    );

    // The device did not see the ACK (say) and sends the very same frame again, on a new connection.
    let mut again = NativeDevice::connect(&server.addr("device_tcp"), 2002, key)
        .await
        .unwrap();
    again.send_raw(&bytes).await.unwrap();
    let ack = ack_of(&again.recv(WAIT).await.unwrap());
    assert_eq!((ack.acked_seq, ack.status), (seq, AckStatus::Duplicate));

    let incidents = server.incidents().await;
    assert_eq!(incidents.len(), 1);
    assert_eq!(
        incidents[0]["alarm_count"], 1,
        "a retry is not a second alarm"
    );
}

#[tokio::test]
async fn a_repeated_press_joins_the_open_incident_and_a_closed_one_does_not() {
    let db = Db::sqlite();
    let server = TestServer::start(&db, &[]).await;
    let key = demo_key(3);
    server.register_native_device(3003, &key).await;
    let mut device = NativeDevice::connect(&server.addr("device_tcp"), 3003, key)
        .await
        .unwrap();
    for _ in 0..3 {
        let (_, reply) = device.alarm(AlarmKind::Sos, None, WAIT).await.unwrap();
        assert_eq!(ack_of(&reply).status, AckStatus::Stored);
    }
    let incidents = server.incidents().await;
    assert_eq!(incidents.len(), 1, "three presses, one incident");
    assert_eq!(incidents[0]["alarm_count"], 3);
    let id = incidents[0]["id"].as_i64().unwrap();

    // A technical alarm is a different need: its own incident.
    device
        .alarm(AlarmKind::LowBattery, None, WAIT)
        .await
        .unwrap();
    assert_eq!(server.incidents().await.len(), 2);

    // Once closed, the next press opens a new incident.
    let (status, _) = server
        .post(
            &format!("/api/v1/incidents/{id}/ack"),
            serde_json::json!({}),
        )
        .await;
    assert_eq!(status, 200);
    let (status, closed) = server
        .post(
            &format!("/api/v1/incidents/{id}/close"),
            serde_json::json!({"outcome": "resolved", "note": "volunteer visited"}),
        )
        .await;
    assert_eq!(status, 200, "{closed}");
    assert_eq!(closed["status"], "closed");
    device.alarm(AlarmKind::Sos, None, WAIT).await.unwrap();
    let open: Vec<_> = server
        .incidents()
        .await
        .into_iter()
        .filter(|i| i["status"] != "closed")
        .collect();
    assert_eq!(open.len(), 2);
    assert!(open.iter().any(|i| i["kind"] == "sos" && i["id"] != id));
}

#[tokio::test]
async fn the_live_stream_catches_up_after_a_reconnect() {
    let db = Db::sqlite();
    let server = TestServer::start(&db, &[]).await;
    let key = demo_key(4);
    server.register_native_device(4004, &key).await;
    let mut device = NativeDevice::connect(&server.addr("device_tcp"), 4004, key)
        .await
        .unwrap();

    let mut stream = EventStream::open(&server, None).await;
    device.alarm(AlarmKind::Sos, None, WAIT).await.unwrap();
    let first = stream.next_of_kind("opened", WAIT).await.unwrap();
    let last_seen = first.id.expect("SSE id");
    drop(stream);

    // While the console is away: a joined alarm and an operator note.
    device.alarm(AlarmKind::Sos, None, WAIT).await.unwrap();
    let incident_id = first.data["incident_id"].as_i64().unwrap();
    let (status, _) = server
        .post(
            &format!("/api/v1/incidents/{incident_id}/notes"),
            serde_json::json!({"text": "called the daughter"}),
        )
        .await;
    assert_eq!(status, 200);

    let mut resumed = EventStream::open(&server, Some(last_seen)).await;
    let mut kinds = Vec::new();
    let mut ids = Vec::new();
    while let Some(event) = resumed.next(Duration::from_millis(1500)).await {
        kinds.push(event.data["kind"].as_str().unwrap().to_string());
        ids.push(event.id.unwrap());
    }
    assert!(kinds.contains(&"alarm_joined".to_string()), "{kinds:?}");
    assert!(kinds.contains(&"note".to_string()), "{kinds:?}");
    assert!(
        ids.iter().all(|id| *id > last_seen),
        "only events after Last-Event-ID: {ids:?}"
    );
    let mut sorted = ids.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(ids, sorted, "in order, no duplicates");
}

#[tokio::test]
async fn heartbeats_update_device_state_without_incidents() {
    let db = Db::sqlite();
    let server = TestServer::start(&db, &[("ONEKEY_INTAKE__STATUS_FLUSH_MS", "100")]).await;
    let key = demo_key(5);
    let (_, device_row) = server.register_native_device(5005, &key).await;
    let mut device = NativeDevice::connect(&server.addr("device_tcp"), 5005, key)
        .await
        .unwrap();
    let ack = ack_of(&device.heartbeat(37, WAIT).await.unwrap());
    assert_eq!(ack.status, AckStatus::Stored);
    let mut battery = serde_json::Value::Null;
    for _ in 0..100 {
        let (_, d) = server.get(&format!("/api/v1/devices/{device_row}")).await;
        battery = d["battery_pct"].clone();
        if battery == 37 {
            assert_eq!(d["state"], "online");
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(battery, 37);
    assert!(server.incidents().await.is_empty());
}
