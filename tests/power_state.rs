//! Low battery and mains loss from heartbeat state: devices that only report their battery and
//! mains in heartbeats get the same technical incident their own alarm frame would open, once per
//! episode, over the real sockets.

mod common;

use std::time::Duration;

use bytes::BytesMut;
use common::{Db, TestServer};
use onekey_protocol::{Heartbeat, Message};
use onekey_sim::devices::conn::Conn;
use onekey_sim::devices::deployed::Gt06Wire;
use onekey_sim::devices::wire::{Reply, Wire};
use serde_json::Value;

const WAIT: Duration = Duration::from_secs(10);

async fn technical_of(server: &TestServer, elder: i64) -> Vec<Value> {
    server
        .incidents()
        .await
        .into_iter()
        .filter(|i| i["elder_id"] == elder && i["category"] == "technical")
        .collect()
}

/// Waits until `elder` has `n` technical incidents, then a little longer to see no more arrive.
async fn wait_technical(server: &TestServer, elder: i64, n: usize) -> Vec<Value> {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let found = technical_of(server, elder).await;
        if found.len() >= n || tokio::time::Instant::now() > deadline {
            tokio::time::sleep(Duration::from_millis(500)).await;
            return technical_of(server, elder).await;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn heartbeat(battery: u8, mains: bool) -> Message {
    Message::Heartbeat(Heartbeat {
        battery_percent: Some(battery),
        mains_power: mains,
        signal_percent: Some(70),
        location: None,
    })
}

#[tokio::test]
async fn a_home_units_heartbeats_raise_low_battery_and_mains_loss_once_each() {
    let db = Db::sqlite();
    let server = TestServer::start(&db, &[]).await;
    let (elder, _) = server
        .register_native_device(71, &onekey_sim::native::demo_key(71))
        .await;
    let mut device = onekey_sim::native::NativeDevice::connect(
        &server.addr("device_tcp"),
        71,
        onekey_sim::native::demo_key(71),
    )
    .await
    .expect("connect");
    device.hello(WAIT).await.expect("hello");

    device
        .request(heartbeat(80, true), WAIT)
        .await
        .expect("ack");
    // A draining battery: one low-battery incident however many low heartbeats follow.
    for battery in [19, 17, 15] {
        device
            .request(heartbeat(battery, true), WAIT)
            .await
            .expect("heartbeat ACKed");
    }
    let found = wait_technical(&server, elder, 1).await;
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0]["kind"], "low_battery");
    assert_eq!(found[0]["alarm_count"], 1, "{found:?}");

    // Mains off: a power-loss alarm joins the elder's open technical incident, once.
    for _ in 0..3 {
        device
            .request(heartbeat(15, false), WAIT)
            .await
            .expect("heartbeat ACKed");
    }
    let deadline = tokio::time::Instant::now() + WAIT;
    let log = loop {
        let (status, log) = server.get("/api/v1/device-log?limit=100").await;
        assert_eq!(status, 200, "{log}");
        let rows: Vec<Value> = log.as_array().cloned().unwrap_or_default();
        if rows.iter().any(|r| r["raw_code"] == "state:mains=off")
            || tokio::time::Instant::now() > deadline
        {
            tokio::time::sleep(Duration::from_millis(500)).await;
            let (_, log) = server.get("/api/v1/device-log?limit=100").await;
            break log.as_array().cloned().unwrap_or_default();
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let derived: Vec<&str> = log
        .iter()
        .filter_map(|r| r["raw_code"].as_str())
        .filter(|c| c.starts_with("state:"))
        .collect();
    assert_eq!(
        derived,
        ["state:battery=19", "state:mains=off"],
        "one event per episode: {log:?}"
    );
    let found = technical_of(&server, elder).await;
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0]["alarm_count"], 2, "{found:?}");
    server.stop().await;
}

#[tokio::test]
async fn a_watchs_low_battery_is_raised_but_its_charging_bit_is_not_mains_loss() {
    let db = Db::sqlite();
    let server = TestServer::start(&db, &[]).await;
    let (status, elder) = server
        .post(
            "/api/v1/elders",
            serde_json::json!({ "name": "老人 GT06", "address": "吉州区 文山街道 思源社区 2 号",
                                "lat": 27.11, "lon": 114.98, "living": "alone" }),
        )
        .await;
    assert_eq!(status, 201, "{elder}");
    let elder = elder["id"].as_i64().expect("elder id");
    let imei = "356307042441013";
    server
        .register_device("gt06", imei, None, Some(elder))
        .await;
    let mut conn = Conn::tcp(&server.addr("gt06"), WAIT)
        .await
        .expect("connect");
    let mut wire = Gt06Wire::new(imei, 1).expect("imei");
    let mut buf = BytesMut::new();
    let hello = wire.hello(0).expect("login");
    conn.send(&hello.bytes).await.expect("send");
    expect_ack(&mut conn, &mut wire, &mut buf, hello.key).await;
    for battery in [60, 12, 10] {
        let hb = wire.heartbeat(battery, 0).expect("heartbeat");
        conn.send(&hb.bytes).await.expect("send");
        expect_ack(&mut conn, &mut wire, &mut buf, hb.key).await;
    }
    let found = wait_technical(&server, elder, 1).await;
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0]["kind"], "low_battery");
    assert_eq!(
        found[0]["alarm_count"], 1,
        "a watch off its charger is not a power cut: {found:?}"
    );
    server.stop().await;
}

async fn expect_ack(
    conn: &mut Conn,
    wire: &mut Gt06Wire,
    buf: &mut BytesMut,
    key: onekey_sim::devices::wire::AckKey,
) {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        while let Some(reply) = wire.reply(buf) {
            if let Reply::Ack { key: k, ok, .. } = reply
                && k == key
            {
                assert!(ok, "ACK refused");
                return;
            }
        }
        assert!(tokio::time::Instant::now() < deadline, "no ACK for {key:?}");
        tokio::time::timeout(WAIT, conn.recv(buf))
            .await
            .expect("reply in time")
            .expect("read");
    }
}
