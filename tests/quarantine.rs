//! An alarm the store refuses every time (here: a trigger the database raises for it, as a broken
//! constraint would) is neither lost nor retried for ever: after three refusals of the same frame
//! it is kept aside with the refusal, its elder's incident is opened with an operator called to it
//! (`attention: unstorable_event`, seen on the console's queue), and the device is ACKed; a late
//! retry is a duplicate, and the device's other alarms are stored as usual.

mod common;

use std::time::Duration;

use common::{Db, TestServer};
use onekey_protocol::{AckStatus, Alarm, AlarmKind, Message};
use onekey_sim::native::{DeviceError, NativeDevice, demo_key};
use sqlx::Connection;

const WAIT: Duration = Duration::from_secs(10);

fn acked(frame: &onekey_protocol::Frame) -> Option<(u32, AckStatus)> {
    match frame.message {
        Message::Ack(a) => Some((a.acked_seq, a.status)),
        _ => None,
    }
}

fn alarm(kind: AlarmKind) -> Message {
    Message::Alarm(Alarm {
        kind,
        location: None,
    })
}

#[tokio::test]
async fn an_alarm_sqlite_always_refuses_reaches_an_operator_and_is_acked() {
    let db = Db::sqlite();
    let mut conn = sqlx::SqliteConnection::connect(&format!("{}?mode=rwc", db.url()))
        .await
        .expect("open the test's database");
    let server = TestServer::start(&db, &[]).await;
    // The database refuses every fall, and only those.
    sqlx::query(
        "CREATE TRIGGER refuse_falls BEFORE INSERT ON device_events \
         WHEN NEW.raw_code = 'native:fall' \
         BEGIN SELECT RAISE(ABORT, 'falls are refused by this test'); END",
    )
    .execute(&mut conn)
    .await
    .expect("trigger");
    conn.close().await.expect("close");
    refused_fall_reaches_an_operator(&server).await;
    server.stop().await;
}

#[tokio::test]
async fn an_alarm_postgres_always_refuses_reaches_an_operator_and_is_acked() {
    let db = Db::postgres().await;
    let server = TestServer::start(&db, &[]).await;
    let mut conn = sqlx::PgConnection::connect(&db.url())
        .await
        .expect("open the test's database");
    // A check the data breaks (SQLSTATE 23514), raised for every fall.
    for sql in [
        "CREATE FUNCTION refuse_falls() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN \
         IF NEW.raw_code = 'native:fall' THEN \
         RAISE EXCEPTION 'falls are refused by this test' USING ERRCODE = '23514'; END IF; \
         RETURN NEW; END $$",
        "CREATE TRIGGER refuse_falls BEFORE INSERT ON device_events \
         FOR EACH ROW EXECUTE FUNCTION refuse_falls()",
    ] {
        sqlx::query(sql).execute(&mut conn).await.expect("trigger");
    }
    conn.close().await.expect("close");
    refused_fall_reaches_an_operator(&server).await;
    server.stop().await;
}

async fn refused_fall_reaches_an_operator(server: &TestServer) {
    let key = demo_key(41);
    let (elder_id, _) = server.register_native_device(41, &key).await;

    let mut device = NativeDevice::connect(&server.addr("device_tcp"), 41, key)
        .await
        .expect("connect");
    device.hello(WAIT).await.expect("hello");

    // Firmware-like: the same frame until it is ACKed.
    let (frame, seq) = device.frame(alarm(AlarmKind::Fall));
    let mut sends = 0;
    let reply = loop {
        assert!(sends < 10, "the refused alarm was never ACKed");
        device.send_raw(&frame).await.expect("send");
        sends += 1;
        match device.recv(Duration::from_secs(2)).await {
            Ok(reply) => break reply,
            Err(DeviceError::Timeout(_)) => continue,
            Err(e) => panic!("the connection must stay up: {e:?}"),
        }
    };
    assert_eq!(acked(&reply), Some((seq, AckStatus::Stored)), "{reply:?}");
    assert_eq!(sends, 3, "withheld twice, kept aside on the third refusal");
    assert_eq!(server.metric("onekey_events_quarantined_total").await, 1.0);
    assert_eq!(
        server
            .metric("onekey_acks_withheld_total{protocol=\"native\"}")
            .await,
        2.0
    );

    // On the console's queue: the elder's emergency, with an operator called to it.
    let (status, queue) = server.get("/api/v1/queue").await;
    assert_eq!(status, 200, "{queue}");
    let row = queue
        .as_array()
        .expect("queue rows")
        .iter()
        .find(|r| r["incident"]["elder_id"] == elder_id)
        .cloned()
        .unwrap_or_else(|| panic!("the elder's incident is on the queue: {queue}"));
    let inc = &row["incident"];
    assert_eq!(inc["kind"], "fall", "{inc}");
    assert_eq!(inc["category"], "emergency", "{inc}");
    // An operator is called to it. Dispatch runs on the incident as for any alarm and may
    // already have raised its own reason (`no_responder`: this test has no volunteers); the
    // quarantine's reason is in the log either way (below).
    assert!(
        inc["attention"] == "unstorable_event" || inc["attention"] == "no_responder",
        "{inc}"
    );
    let id = inc["id"].as_i64().expect("id");
    let (status, detail) = server.get(&format!("/api/v1/incidents/{id}")).await;
    assert_eq!(status, 200, "{detail}");
    let events = detail["events"].as_array().expect("events");
    let opened = events
        .iter()
        .find(|e| e["kind"] == "opened")
        .expect("opened");
    assert_eq!(opened["detail"]["raw_code"], "native:fall", "{opened}");
    assert_eq!(
        opened["detail"]["raw_frame"],
        hex::encode(&frame),
        "the frame's bytes are kept as they came in: {opened}"
    );
    assert!(
        opened["detail"]["error"]
            .as_str()
            .is_some_and(|e| e.contains("falls are refused by this test")),
        "the refusal is kept: {opened}"
    );
    assert_eq!(opened["detail"]["attempts"], 3, "{opened}");
    assert!(
        events
            .iter()
            .any(|e| e["kind"] == "attention_raised" && e["detail"]["reason"] == "unstorable_event"),
        "{events:?}"
    );

    // A late retry of the same frame is a duplicate, answered at once.
    device.send_raw(&frame).await.expect("late retry");
    let again = device.recv(WAIT).await.expect("ACK of the retry");
    assert_eq!(acked(&again), Some((seq, AckStatus::Duplicate)));
    assert_eq!(server.metric("onekey_events_quarantined_total").await, 1.0);

    // The device's other alarms are stored as usual, into the same incident.
    let (_, reply) = device
        .request(alarm(AlarmKind::Sos), WAIT)
        .await
        .expect("an SOS");
    assert_eq!(acked(&reply).map(|a| a.1), Some(AckStatus::Stored));
    let (_, log) = server.get("/api/v1/device-log?limit=100").await;
    let alarms: Vec<&str> = log
        .as_array()
        .expect("rows")
        .iter()
        .filter(|r| r["kind"] == "alarm")
        .filter_map(|r| r["raw_code"].as_str())
        .collect();
    assert_eq!(alarms, vec!["native:sos"], "{log}");
}
