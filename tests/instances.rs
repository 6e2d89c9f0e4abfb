//! Several instances on one PostgreSQL database, seen from outside: what one instance commits
//! reaches the consoles and apps connected to another (PostgreSQL `NOTIFY` wakes them; the store
//! is read in id order).

mod common;

use std::time::{Duration, Instant};

use common::{Db, EventStream, TestServer};
use onekey_protocol::AlarmKind;
use onekey_sim::native::{NativeDevice, demo_key};

const WAIT: Duration = Duration::from_secs(10);

#[tokio::test]
async fn an_alarm_committed_on_one_instance_reaches_the_console_and_app_on_another() {
    let db = Db::postgres().await;
    // A dispatches; B does not, and commits nothing of its own, so whatever its streams show
    // came from A's commits.
    let a = TestServer::start(&db, &[("ONEKEY_DISPATCH__RESPONDER_REFRESH_MS", "200")]).await;
    let b = TestServer::start(&db, &[("ONEKEY_DISPATCH__ENABLED", "false")]).await;
    let mut console_b = EventStream::open(&b, None).await;

    // An elder with no volunteer about: A opens the incident (and escalates it to operators).
    let key = demo_key(901);
    let (_, _) = a.register_native_device(901, &key).await;
    let mut pendant = NativeDevice::connect(&a.addr("device_tcp"), 901, key)
        .await
        .unwrap();
    pendant
        .alarm(AlarmKind::Sos, None, WAIT)
        .await
        .expect("ACK");
    let acked = Instant::now();
    let Some(opened) = console_b.next_of_kind("opened", WAIT).await else {
        panic!(
            "B's console does not show the incident A opened; B's log:\n{}",
            b.log()
        );
    };
    let first_latency = acked.elapsed();
    let incident = opened.data["incident_id"].as_i64().expect("incident");
    let (_, events) = a.get(&format!("/api/v1/incidents/{incident}")).await;
    let stored: Vec<i64> = events["events"]
        .as_array()
        .expect("events")
        .iter()
        .filter_map(|e| e["id"].as_i64())
        .collect();

    // Every event of the incident, in id order, none twice.
    let mut seen = vec![opened.id.expect("id")];
    while seen.len() < stored.len() {
        let e = console_b
            .next(WAIT)
            .await
            .expect("the incident's next event on B");
        seen.push(e.id.expect("id"));
    }
    assert_eq!(seen, stored, "B's console: every event, in order");

    // A volunteer whose app is connected to B is offered the next alarm, which A dispatches.
    let (_, token) = b
        .responder_on_duty("跨实例志愿者", "13900009001", 27.11, 114.98)
        .await;
    let mut app_b = b
        .http
        .get(format!("{}/api/v1/responder/stream", b.base()))
        .bearer_auth(&token)
        .send()
        .await
        .expect("app stream");
    assert_eq!(app_b.status(), 200);
    tokio::time::sleep(Duration::from_millis(800)).await; // A's responder refresh
    let key2 = demo_key(902);
    a.register_native_device(902, &key2).await;
    let mut pendant2 = NativeDevice::connect(&a.addr("device_tcp"), 902, key2)
        .await
        .unwrap();
    pendant2
        .alarm(AlarmKind::Sos, None, WAIT)
        .await
        .expect("ACK");
    let acked = Instant::now();
    let mut text = String::new();
    let offer_latency = loop {
        let chunk = tokio::time::timeout(WAIT, app_b.chunk())
            .await
            .expect("a push on B's app stream in time")
            .expect("stream")
            .expect("stream open");
        text.push_str(&String::from_utf8_lossy(&chunk));
        if text.contains("event: offer") {
            break acked.elapsed();
        }
    };
    println!(
        "A → B: console {:.1} ms, app offer {:.1} ms",
        first_latency.as_secs_f64() * 1e3,
        offer_latency.as_secs_f64() * 1e3
    );
    b.stop().await;
    a.stop().await;
}

#[tokio::test]
async fn a_command_given_on_one_instance_reaches_a_device_connected_to_another() {
    let db = Db::postgres().await;
    let a = TestServer::start(&db, &[]).await;
    let b = TestServer::start(&db, &[]).await;
    let key = demo_key(911);
    let (_, device_row) = a.register_native_device(911, &key).await;
    let mut pendant = NativeDevice::connect(&a.addr("device_tcp"), 911, key)
        .await
        .unwrap();
    pendant.hello(WAIT).await.expect("hello");

    let asked = Instant::now();
    let (status, body) = b
        .post(
            &format!("/api/v1/devices/{device_row}/command"),
            serde_json::json!({"command": "locate"}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let command = pendant.recv(WAIT).await.expect("the command, through A");
    let took = asked.elapsed();
    match command.message {
        onekey_protocol::Message::Command(c) => {
            assert_eq!(c.kind, onekey_protocol::CommandKind::Locate);
            assert_eq!(Some(u64::from(c.command_id)), body["command_id"].as_u64());
        }
        other => panic!("expected a command, got {other:?}"),
    }
    println!(
        "command on B → device on A: {:.1} ms",
        took.as_secs_f64() * 1e3
    );

    // A device connected nowhere: B says so.
    let (_, other_row) = a.register_native_device(912, &demo_key(912)).await;
    let (status, body) = b
        .post(
            &format!("/api/v1/devices/{other_row}/command"),
            serde_json::json!({"command": "locate"}),
        )
        .await;
    assert_eq!(status, 503, "{body}");
    b.stop().await;
    a.stop().await;
}
