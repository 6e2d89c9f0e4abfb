//! Bad input gets a clear error and nothing is lost: each bad frame is logged and counted, closes
//! only its own connection, and a well-behaved device on another connection keeps being served.

mod common;

use std::time::Duration;

use common::{Db, TestServer};
use onekey_protocol::{AckStatus, AlarmKind, Message, RejectReason};
use onekey_sim::native::{NativeDevice, demo_key};
use tokio::io::AsyncWriteExt;

const WAIT: Duration = Duration::from_secs(10);

fn rejected(reason: &str) -> String {
    format!("onekey_frames_rejected_total{{protocol=\"native\",reason=\"{reason}\"}}")
}

/// A healthy device that must keep working while others misbehave.
async fn healthy_device_still_served(server: &TestServer, device: &mut NativeDevice) {
    let (_, reply) = device
        .alarm(AlarmKind::Sos, None, WAIT)
        .await
        .expect("healthy device answered");
    match reply.message {
        Message::Ack(ack) => assert!(matches!(
            ack.status,
            AckStatus::Stored | AckStatus::Duplicate
        )),
        other => panic!("expected ACK, got {other:?}"),
    }
    let (status, _) = server.get("/api/v1/incidents").await;
    assert_eq!(status, 200);
}

async fn start() -> (TestServer, NativeDevice, Db) {
    let db = Db::sqlite();
    let server = TestServer::start(&db, &[("ONEKEY_GATEWAY__FIRST_FRAME_SECS", "1")]).await;
    let key = demo_key(100);
    server.register_native_device(100, &key).await;
    let mut healthy = NativeDevice::connect(&server.addr("device_tcp"), 100, key)
        .await
        .unwrap();
    // Identify at once, inside the 1 s first-frame deadline the tests run with.
    healthy.hello(WAIT).await.unwrap();
    (server, healthy, db)
}

#[tokio::test]
async fn malformed_bytes_close_only_that_connection() {
    let (server, mut healthy, _db) = start().await;
    let mut bad = tokio::net::TcpStream::connect(server.addr("device_tcp"))
        .await
        .unwrap();
    bad.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    server.wait_metric(&rejected("malformed"), 1.0).await;
    let mut buf = [0u8; 16];
    let n = tokio::time::timeout(WAIT, tokio::io::AsyncReadExt::read(&mut bad, &mut buf))
        .await
        .unwrap()
        .unwrap_or(0);
    assert_eq!(n, 0, "the server closed the bad connection");
    assert!(
        server.log().contains("frame rejected"),
        "a log line names the rejection"
    );
    healthy_device_still_served(&server, &mut healthy).await;
}

#[tokio::test]
async fn an_oversized_frame_is_refused() {
    let (server, mut healthy, _db) = start().await;
    let mut bad = tokio::net::TcpStream::connect(server.addr("device_tcp"))
        .await
        .unwrap();
    // A valid-looking header announcing a 60 000-byte body.
    let mut header = vec![b'O', b'K', 1, 0x03, 0xEA, 0x60];
    header.extend_from_slice(&[0u8; 16]);
    bad.write_all(&header).await.unwrap();
    server.wait_metric(&rejected("malformed"), 1.0).await;
    healthy_device_still_served(&server, &mut healthy).await;
}

#[tokio::test]
async fn a_wrong_key_is_refused_without_an_ack() {
    let (server, mut healthy, _db) = start().await;
    let key = demo_key(200);
    server.register_native_device(200, &key).await;
    let mut impostor = NativeDevice::connect(&server.addr("device_tcp"), 200, demo_key(999))
        .await
        .unwrap();
    let (bytes, _) = impostor.frame(Message::Alarm(onekey_protocol::Alarm {
        kind: AlarmKind::Sos,
        location: None,
    }));
    impostor.send_raw(&bytes).await.unwrap();
    assert!(
        impostor.is_closed_by_server(WAIT).await,
        "closed without an ACK"
    );
    assert_eq!(server.metric(&rejected("bad_mac")).await, 1.0);
    assert!(
        server.incidents().await.is_empty(),
        "nothing stored from a forged frame"
    );
    assert!(server.log().contains("bad_mac"));
    healthy_device_still_served(&server, &mut healthy).await;
}

#[tokio::test]
async fn an_unknown_device_is_refused() {
    let (server, mut healthy, _db) = start().await;
    let mut stranger = NativeDevice::connect(&server.addr("device_tcp"), 777_777, demo_key(7))
        .await
        .unwrap();
    let (bytes, _) = stranger.frame(Message::Alarm(onekey_protocol::Alarm {
        kind: AlarmKind::Sos,
        location: None,
    }));
    stranger.send_raw(&bytes).await.unwrap();
    assert!(stranger.is_closed_by_server(WAIT).await);
    assert_eq!(server.metric(&rejected("unknown_device")).await, 1.0);
    assert!(server.log().contains("777777 is not registered"));
    healthy_device_still_served(&server, &mut healthy).await;
}

#[tokio::test]
async fn a_replayed_old_frame_is_rejected_with_reason() {
    let (server, mut healthy, _db) = start().await;
    let key = demo_key(300);
    server.register_native_device(300, &key).await;
    let mut device = NativeDevice::connect(&server.addr("device_tcp"), 300, key)
        .await
        .unwrap();
    let old = device.frame_with_seq(Message::CheckIn, 1);
    device.send_raw(&old).await.unwrap();
    device.recv(WAIT).await.unwrap();
    // Far beyond the 64-frame window.
    device.seq = 500;
    device.heartbeat(90, WAIT).await.unwrap();
    device.send_raw(&old).await.unwrap();
    let reply = device.recv(WAIT).await.unwrap();
    match reply.message {
        Message::Ack(ack) => {
            assert_eq!(ack.status, AckStatus::Rejected);
            assert_eq!(ack.reason, RejectReason::Replay);
            assert_eq!(ack.acked_seq, 1);
        }
        other => panic!("expected a rejection, got {other:?}"),
    }
    assert!(device.is_closed_by_server(WAIT).await);
    assert_eq!(server.metric(&rejected("replay")).await, 1.0);
    healthy_device_still_served(&server, &mut healthy).await;
}

#[tokio::test]
async fn a_silent_connection_is_closed_at_the_first_frame_deadline() {
    let (server, mut healthy, _db) = start().await;
    let mut silent = tokio::net::TcpStream::connect(server.addr("device_tcp"))
        .await
        .unwrap();
    let mut buf = [0u8; 8];
    let n = tokio::time::timeout(
        Duration::from_secs(5),
        tokio::io::AsyncReadExt::read(&mut silent, &mut buf),
    )
    .await
    .expect("closed within the 1 s deadline plus margin")
    .unwrap_or(0);
    assert_eq!(n, 0);
    assert!(server.metric(&rejected("first_frame_timeout")).await >= 1.0);
    healthy_device_still_served(&server, &mut healthy).await;
}

#[tokio::test]
async fn a_reconnecting_device_replaces_its_older_connection() {
    let (server, _healthy, _db) = start().await;
    let key = demo_key(400);
    server.register_native_device(400, &key).await;
    let mut first = NativeDevice::connect(&server.addr("device_tcp"), 400, key)
        .await
        .unwrap();
    first.hello(WAIT).await.unwrap();
    let mut second = NativeDevice::connect(&server.addr("device_tcp"), 400, key)
        .await
        .unwrap();
    second.seq = 100;
    second.hello(WAIT).await.unwrap();
    assert!(
        first.is_closed_by_server(WAIT).await,
        "the older connection is closed"
    );
    server
        .wait_metric("onekey_connections_replaced_total", 1.0)
        .await;
    second.alarm(AlarmKind::Fall, None, WAIT).await.unwrap();
}

#[tokio::test]
async fn a_disabled_device_is_refused() {
    let (server, _healthy, _db) = start().await;
    let key = demo_key(500);
    let (elder, row) = server.register_native_device(500, &key).await;
    let res = server
        .http
        .put(format!("{}/api/v1/devices/{row}", server.base()))
        .bearer_auth(&server.token)
        .json(&serde_json::json!({"protocol": "native", "ident": "500", "elder_id": elder, "enabled": false, "heartbeat_s": 60}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let mut device = NativeDevice::connect(&server.addr("device_tcp"), 500, key)
        .await
        .unwrap();
    let (bytes, _) = device.frame(Message::CheckIn);
    device.send_raw(&bytes).await.unwrap();
    assert!(device.is_closed_by_server(WAIT).await);
    assert_eq!(server.metric(&rejected("disabled")).await, 1.0);
}

#[tokio::test]
async fn api_errors_are_json_with_stable_codes() {
    let (server, _healthy, _db) = start().await;
    let anonymous = server
        .http
        .get(format!("{}/api/v1/incidents", server.base()))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), 401);
    let body: serde_json::Value = anonymous.json().await.unwrap();
    assert_eq!(body["error"]["code"], "unauthorized");

    let bad_json = server
        .http
        .post(format!("{}/api/v1/elders", server.base()))
        .bearer_auth(&server.token)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(bad_json.status(), 400);
    let body: serde_json::Value = bad_json.json().await.unwrap();
    assert_eq!(body["error"]["code"], "bad_request");
    assert!(body["error"]["message"].as_str().unwrap().contains("JSON"));

    let (status, body) = server.post("/api/v1/elders", serde_json::json!({"name": "x", "address": "y", "lat": 95.0, "lon": 0.0, "living": "alone"})).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (400, Some("bad_request"))
    );
    let (status, body) = server.get("/api/v1/incidents/999999").await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (404, Some("not_found"))
    );
    let (status, body) = server.post("/api/v1/devices", serde_json::json!({"protocol": "native", "ident": "100", "secret_hex": hex::encode([1u8; 32])})).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (422, Some("taken")),
        "{body}"
    );

    // A client announcing a 2 MiB body is refused before the server reads it.
    let mut raw = tokio::net::TcpStream::connect(&server.addrs["http"])
        .await
        .unwrap();
    let head = format!(
        "POST /api/v1/elders HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\nContent-Type: application/json\r\nContent-Length: 2097152\r\n\r\n",
        server.token
    );
    raw.write_all(head.as_bytes()).await.unwrap();
    let mut response = vec![0u8; 512];
    let n = tokio::time::timeout(WAIT, tokio::io::AsyncReadExt::read(&mut raw, &mut response))
        .await
        .unwrap()
        .unwrap();
    let response = String::from_utf8_lossy(&response[..n]);
    assert!(
        response.starts_with("HTTP/1.1 413"),
        "oversized bodies are refused: {response}"
    );
}
