//! Never ACK what is not stored, and never lose what was ACKed: a database outage withholds ACKs
//! until the device's retry can be committed; a crash loses no ACKed alarm.

mod common;

use std::time::Duration;

use common::pg::PrivatePostgres;
use common::{Db, TestServer};
use onekey_protocol::{AckStatus, AlarmKind, Message};
use onekey_sim::native::{DeviceError, NativeDevice, demo_key};

const WAIT: Duration = Duration::from_secs(10);

fn status(frame: &onekey_protocol::Frame) -> AckStatus {
    match frame.message {
        Message::Ack(ack) => ack.status,
        other => panic!("expected an ACK, got {other:?}"),
    }
}

#[tokio::test]
async fn an_alarm_during_a_database_outage_is_not_acked_until_its_retry_is_stored() {
    let pg = tokio::task::spawn_blocking(PrivatePostgres::start)
        .await
        .unwrap();
    let db = Db::Url(pg.url());
    let server = TestServer::start(&db, &[]).await;
    let key = demo_key(11);
    server.register_native_device(11, &key).await;
    let mut device = NativeDevice::connect(&server.addr("device_tcp"), 11, key)
        .await
        .unwrap();
    device.hello(WAIT).await.unwrap();

    pg.halt();
    let (frame, seq) = device.frame(Message::Alarm(onekey_protocol::Alarm {
        kind: AlarmKind::Sos,
        location: None,
    }));
    device.send_raw(&frame).await.unwrap();
    match device.recv(Duration::from_secs(4)).await {
        Err(DeviceError::Timeout(_)) => {}
        other => panic!("no ACK may be sent while the store is down, got {other:?}"),
    }
    server
        .wait_metric("onekey_acks_withheld_total{protocol=\"native\"}", 1.0)
        .await;
    assert!(server.log().contains("withholding the ACK"));
    let health = server
        .http
        .get(format!("{}/healthz", server.base()))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 503);
    let body: serde_json::Value = health.json().await.unwrap();
    assert_eq!(body["store"]["state"], "down");

    pg.resume();
    // The device retries the same frame; now it is stored, and only once.
    let mut acked = None;
    for _ in 0..20 {
        device.send_raw(&frame).await.unwrap();
        if let Ok(reply) = device.recv(Duration::from_secs(2)).await {
            acked = Some(reply);
            break;
        }
    }
    let reply = acked.expect("the retry is ACKed once the store is back");
    assert_eq!(
        status(&reply),
        AckStatus::Stored,
        "the first copy was never stored, so this one is new"
    );
    match reply.message {
        Message::Ack(a) => assert_eq!(a.acked_seq, seq),
        _ => unreachable!(),
    }
    let incidents = server.incidents().await;
    assert_eq!(incidents.len(), 1);
    assert_eq!(incidents[0]["alarm_count"], 1);
    let health = server
        .http
        .get(format!("{}/healthz", server.base()))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
    server.stop().await;
}

#[tokio::test]
async fn every_acked_alarm_survives_a_crash() {
    let db = Db::sqlite();
    let server = TestServer::start(&db, &[]).await;
    let mut acked = 0;
    let mut tasks = Vec::new();
    for i in 0..20u64 {
        let key = demo_key(1000 + i);
        server.register_native_device(1000 + i, &key).await;
        let addr = server.addr("device_tcp");
        tasks.push(tokio::spawn(async move {
            let mut device = NativeDevice::connect(&addr, 1000 + i, key).await.unwrap();
            let (_, reply) = device.alarm(AlarmKind::Fall, None, WAIT).await.unwrap();
            status(&reply)
        }));
    }
    for t in tasks {
        if t.await.unwrap() == AckStatus::Stored {
            acked += 1;
        }
    }
    assert_eq!(acked, 20);
    server.kill().await; // SIGKILL: no shutdown, no flush

    let server = TestServer::start(&db, &[]).await;
    let incidents = server.incidents().await;
    assert_eq!(
        incidents.len(),
        20,
        "every ACKed alarm is in the store after a crash"
    );
}

#[tokio::test]
async fn sigterm_drains_and_exits_zero() {
    let db = Db::sqlite();
    let server = TestServer::start(&db, &[]).await;
    let key = demo_key(12);
    server.register_native_device(12, &key).await;
    let mut device = NativeDevice::connect(&server.addr("device_tcp"), 12, key)
        .await
        .unwrap();
    device.alarm(AlarmKind::Sos, None, WAIT).await.unwrap();
    let (code, log) = server.stop_with_log().await;
    assert_eq!(code, 0);
    assert!(
        log.contains("intake writer stopped") && log.contains("stopped"),
        "{log}"
    );
    assert!(
        device.is_closed_by_server(WAIT).await,
        "device connections are closed on shutdown"
    );
}

/// The store's durability settings are read back from the database and shown on `/healthz`; on
/// SQLite they are the ones the server sets (WAL, `synchronous=FULL`).
#[tokio::test]
async fn healthz_shows_the_durability_settings_in_force() {
    let db = Db::sqlite();
    let server = TestServer::start(&db, &[]).await;
    let (status, health) = server.get("/healthz").await;
    assert_eq!(status, 200, "{health}");
    let d = &health["durability"];
    assert_eq!(d["settings"]["synchronous"], "2", "{health}");
    assert_eq!(d["settings"]["journal_mode"], "wal", "{health}");
    assert_eq!(d["unsafe_settings"], serde_json::json!([]), "{health}");
    server.stop().await;
}

/// A PostgreSQL database that acknowledges commits before they are durable
/// (`synchronous_commit=off`) is refused at start; allowed explicitly, the server starts and
/// `/healthz` names the unsafe setting.
#[tokio::test]
async fn a_database_that_can_lose_commits_is_refused_unless_allowed() {
    use sqlx::Connection;
    let db = Db::postgres().await;
    let url = db.url();
    let name = url.rsplit('/').next().expect("database name").to_string();
    let mut conn = sqlx::PgConnection::connect(&url).await.expect("connect");
    sqlx::query(&format!(
        "ALTER DATABASE {name} SET synchronous_commit = off"
    ))
    .execute(&mut conn)
    .await
    .expect("alter database");
    conn.close().await.ok();

    let dir = tempfile::tempdir().expect("tempdir");
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_onekey"))
        .arg("serve")
        .current_dir(dir.path())
        .env("ONEKEY_DATABASE_URL", &url)
        .env("ONEKEY_HTTP_ADDR", "127.0.0.1:0")
        .env("ONEKEY_DEVICE_ADDR", "127.0.0.1:0")
        .env("ONEKEY_GT06_ADDR", "off")
        .env("ONEKEY_WATCH_ADDR", "off")
        .env("ONEKEY_H02_ADDR", "off")
        .env("ONEKEY_SIA_ADDR", "off")
        .env("ONEKEY_MQTT_LISTEN", "127.0.0.1:0")
        .output();
    let out = tokio::time::timeout(WAIT, out)
        .await
        .expect("refused in time")
        .expect("run onekey");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success(),
        "started on unsafe settings: {stderr}"
    );
    assert!(
        stderr.contains("synchronous_commit=off"),
        "the refusal names the setting: {stderr}"
    );

    let server = TestServer::start(&db, &[("ONEKEY_ALLOW_UNSAFE_DURABILITY", "true")]).await;
    let (_, health) = server.get("/healthz").await;
    assert_eq!(
        health["durability"]["unsafe_settings"],
        serde_json::json!(["synchronous_commit=off"]),
        "{health}"
    );
    server.stop().await;
}

#[tokio::test]
async fn an_online_backup_holds_every_alarm_acked_before_it_and_restores_with_the_key() {
    let db = Db::sqlite();
    let server = TestServer::start(&db, &[]).await;
    let mut elders = Vec::new();
    for id in 1..=20u64 {
        elders.push(
            server
                .register_native_device(8000 + id, &demo_key(8000 + id))
                .await
                .0,
        );
    }
    let sos = |id: u64| {
        let addr = server.addr("device_tcp");
        async move {
            let mut d = NativeDevice::connect(&addr, 8000 + id, demo_key(8000 + id))
                .await
                .expect("connect");
            let (_, reply) = d.alarm(AlarmKind::Sos, None, WAIT).await.expect("ACK");
            assert!(matches!(reply.message, Message::Ack(a) if a.status == AckStatus::Stored));
        }
    };
    for id in 1..=10 {
        sos(id).await;
    }
    // The backup runs beside the server while ten more elders call.
    let copy = db_dir(&db).join("backup.db");
    let backup = tokio::process::Command::new(env!("CARGO_BIN_EXE_onekey"))
        .arg("backup")
        .arg(&copy)
        .current_dir(server.path())
        .env("ONEKEY_DATABASE_URL", db.url())
        .env("ONEKEY_LOG", "warn")
        .output();
    let during = async {
        for id in 11..=20 {
            sos(id).await;
        }
    };
    let (out, ()) = tokio::join!(backup, during);
    let out = out.expect("run onekey backup");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("backed up to"));
    // A second backup to the same file is refused rather than overwriting it.
    let again = tokio::process::Command::new(env!("CARGO_BIN_EXE_onekey"))
        .arg("backup")
        .arg(&copy)
        .env("ONEKEY_DATABASE_URL", db.url())
        .output()
        .await
        .expect("run onekey backup");
    assert!(!again.status.success());
    server.stop().await;

    // Restored with the original key: the first ten alarms are there, and devices log in.
    let key_file = db_dir(&db).join("onekey.db.key").display().to_string();
    let restored = TestServer::start(
        &Db::Url(format!("sqlite://{}", copy.display())),
        &[("ONEKEY_SECRETS_KEY_FILE", key_file.as_str())],
    )
    .await;
    let incidents = restored.incidents().await;
    for elder in &elders[..10] {
        assert!(
            incidents.iter().any(|i| i["elder_id"] == *elder),
            "elder {elder}'s ACKed alarm is missing from the backup"
        );
    }
    let mut d = NativeDevice::connect(&restored.addr("device_tcp"), 8001, demo_key(8001))
        .await
        .expect("connect");
    d.hello(WAIT)
        .await
        .expect("the sealed device key opens with the same key");
    restored.stop().await;
}

fn db_dir(db: &Db) -> std::path::PathBuf {
    match db {
        Db::Sqlite(dir) => dir.path().to_path_buf(),
        _ => panic!("a SQLite database"),
    }
}
