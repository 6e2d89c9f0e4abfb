//! Device authentication tried from outside as an attacker would: forged and replayed frames over
//! the real sockets are refused, an impostor cannot push the real device off the line, and changes
//! to a device in the directory reach its open connection at once.

mod common;

use std::time::Duration;

use common::{Db, TestServer};
use onekey_protocol::{AckStatus, AlarmKind, Heartbeat, Message, RejectReason};
use onekey_sim::deployed::{self as sim, RawDevice};
use onekey_sim::native::{NativeDevice, demo_key};
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(10);

fn now_unix() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs() as i64
}

fn rejected(protocol: &str, reason: &str) -> String {
    format!("onekey_frames_rejected_total{{protocol=\"{protocol}\",reason=\"{reason}\"}}")
}

async fn put(server: &TestServer, path: &str, body: Value) -> (u16, Value) {
    let res = server
        .http
        .put(format!("{}{path}", server.base()))
        .bearer_auth(&server.token)
        .json(&body)
        .send()
        .await
        .expect("PUT");
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(Value::Null))
}

async fn elder(server: &TestServer, name: &str) -> i64 {
    let (status, e) = server
        .post(
            "/api/v1/elders",
            json!({"name": name, "address": "白塘街道 1 号", "lat": 27.1, "lon": 114.9, "living": "alone"}),
        )
        .await;
    assert_eq!(status, 201, "{e}");
    e["id"].as_i64().expect("id")
}

/// The DC-09 reply's kind: `"ACK"`, `"*ACK"`, `"NAK"` or `"DUH"`.
fn reply_kind(reply: &[u8]) -> String {
    let text = String::from_utf8_lossy(reply);
    let start = text.find('"').unwrap_or(0);
    let end = text[start + 1..]
        .find('"')
        .map_or(text.len(), |e| start + e + 2);
    text[start..end].to_string()
}

async fn dc09_exchange(server: &TestServer, frame: &[u8]) -> (String, bool) {
    let mut panel = RawDevice::connect(&server.addr("sia"))
        .await
        .expect("connect");
    panel.send(frame).await.expect("send");
    let reply = panel.read_until(b"\r", WAIT).await.unwrap_or_default();
    let kind = reply_kind(&reply);
    let closed = kind == "\"NAK\"" && panel.is_closed_by_server(WAIT).await;
    (kind, closed)
}

const AES_KEY: &[u8; 16] = b"0123456789abcdef";

#[tokio::test]
async fn dc09_plaintext_to_an_account_with_an_aes_key_is_refused() {
    let db = Db::sqlite();
    let server = TestServer::start(&db, &[]).await;
    let elder = elder(&server, "谢奶奶").await;
    server
        .register_device("sia", "7A01", Some(&hex::encode(AES_KEY)), Some(elder))
        .await;
    let ts = sim::dc09_timestamp(now_unix());

    // Anyone who knows the account number tries to raise its alarm in clear.
    let forged = sim::dc09("ADM-CID", 11, "7A01", "#7A01|1101 01 001", &ts);
    let (kind, closed) = dc09_exchange(&server, &forged).await;
    assert_eq!(kind, "\"NAK\"", "plaintext to a keyed account is refused");
    assert!(closed, "and its connection closed");
    assert!(server.incidents().await.is_empty(), "nothing stored");
    assert_eq!(server.metric(&rejected("sia", "unencrypted")).await, 1.0);

    // The panel itself, encrypting with its key, is served.
    let genuine = sim::dc09_encrypted("ADM-CID", 12, "7A01", "#7A01|1101 01 001", &ts, AES_KEY);
    let (kind, _) = dc09_exchange(&server, &genuine).await;
    assert_eq!(kind, "\"*ACK\"");
    let incidents = server.incidents().await;
    assert_eq!(incidents.len(), 1);
    assert_eq!(incidents[0]["elder_id"], elder);
}

#[tokio::test]
async fn dc09_unencrypted_messages_outside_the_timestamp_window_are_refused() {
    let db = Db::sqlite();
    let server = TestServer::start(&db, &[]).await;
    let elder = elder(&server, "罗爷爷").await;
    server
        .register_device("sia", "7A02", None, Some(elder))
        .await;
    let now = now_unix();
    for (seq, at) in [(1, now - 300), (2, now - 30 * 86_400), (3, now + 3_600)] {
        let frame = sim::dc09(
            "ADM-CID",
            seq,
            "7A02",
            "#7A02|1101 01 001",
            &sim::dc09_timestamp(at),
        );
        let (kind, closed) = dc09_exchange(&server, &frame).await;
        assert_eq!(kind, "\"NAK\"", "timestamp {} s from now", at - now);
        assert!(closed);
    }
    assert!(
        server.incidents().await.is_empty(),
        "no replayed alarm stored"
    );
    assert_eq!(
        server.metric(&rejected("sia", "stale_timestamp")).await,
        3.0
    );

    let on_time = sim::dc09(
        "ADM-CID",
        4,
        "7A02",
        "#7A02|1101 01 001",
        &sim::dc09_timestamp(now),
    );
    assert_eq!(dc09_exchange(&server, &on_time).await.0, "\"ACK\"");
    assert_eq!(server.incidents().await.len(), 1);
}

#[tokio::test]
async fn a_dc09_retry_with_the_same_sequence_and_a_newer_timestamp_is_a_duplicate() {
    let db = Db::sqlite();
    let server = TestServer::start(&db, &[]).await;
    let elder = elder(&server, "钟奶奶").await;
    server
        .register_device("sia", "7A03", None, Some(elder))
        .await;
    let now = now_unix();
    let first = sim::dc09(
        "ADM-CID",
        21,
        "7A03",
        "#7A03|1101 01 001",
        &sim::dc09_timestamp(now - 10),
    );
    let retry = sim::dc09(
        "ADM-CID",
        21,
        "7A03",
        "#7A03|1101 01 001",
        &sim::dc09_timestamp(now),
    );
    assert_ne!(first, retry, "the retry's bytes differ (its timestamp)");
    assert_eq!(dc09_exchange(&server, &first).await.0, "\"ACK\"");
    assert_eq!(dc09_exchange(&server, &retry).await.0, "\"ACK\"");
    let incidents = server.incidents().await;
    assert_eq!(incidents.len(), 1);
    assert_eq!(
        incidents[0]["alarm_count"], 1,
        "the retry is not a new alarm"
    );

    // A new message (next sequence number) is a new alarm, joining the open incident.
    let next = sim::dc09(
        "ADM-CID",
        22,
        "7A03",
        "#7A03|1101 01 001",
        &sim::dc09_timestamp(now),
    );
    assert_eq!(dc09_exchange(&server, &next).await.0, "\"ACK\"");
    assert_eq!(server.incidents().await[0]["alarm_count"], 2);

    // The same holds for encrypted retries, whose padding changes too.
    let keyed = elder_with_keyed_panel(&server, "7A04").await;
    let a = sim::dc09_encrypted(
        "ADM-CID",
        5,
        "7A04",
        "#7A04|1101 01 001",
        &sim::dc09_timestamp(now - 10),
        AES_KEY,
    );
    let b = sim::dc09_encrypted(
        "ADM-CID",
        5,
        "7A04",
        "#7A04|1101 01 001",
        &sim::dc09_timestamp(now),
        AES_KEY,
    );
    assert_eq!(dc09_exchange(&server, &a).await.0, "\"*ACK\"");
    assert_eq!(dc09_exchange(&server, &b).await.0, "\"*ACK\"");
    let of_keyed: Vec<Value> = server
        .incidents()
        .await
        .into_iter()
        .filter(|i| i["elder_id"] == keyed)
        .collect();
    assert_eq!(of_keyed.len(), 1);
    assert_eq!(of_keyed[0]["alarm_count"], 1);
}

async fn elder_with_keyed_panel(server: &TestServer, account: &str) -> i64 {
    let elder = elder(server, "曾爷爷").await;
    server
        .register_device("sia", account, Some(&hex::encode(AES_KEY)), Some(elder))
        .await;
    elder
}

fn sos() -> Message {
    Message::Alarm(onekey_protocol::Alarm {
        kind: AlarmKind::Sos,
        location: None,
    })
}

fn heartbeat() -> Message {
    Message::Heartbeat(Heartbeat {
        battery_percent: Some(90),
        mains_power: true,
        signal_percent: Some(70),
        location: None,
    })
}

fn ack_of(frame: &onekey_protocol::Frame) -> onekey_protocol::Ack {
    match &frame.message {
        Message::Ack(a) => *a,
        other => panic!("expected an ACK, got {other:?}"),
    }
}

#[tokio::test]
async fn a_frame_with_a_bad_mac_does_not_displace_the_real_devices_connection() {
    let db = Db::sqlite();
    let server = TestServer::start(&db, &[]).await;
    let key = demo_key(301);
    let (_, device_row) = server.register_native_device(301, &key).await;
    let mut real = NativeDevice::connect(&server.addr("device_tcp"), 301, key)
        .await
        .unwrap();
    real.hello(WAIT).await.expect("hello");

    // Someone who knows the device id, but not its key.
    for _ in 0..3 {
        let mut impostor = NativeDevice::connect(&server.addr("device_tcp"), 301, demo_key(9))
            .await
            .unwrap();
        let (bytes, _) = impostor.frame(sos());
        impostor.send_raw(&bytes).await.unwrap();
        assert!(impostor.is_closed_by_server(WAIT).await);
    }
    assert_eq!(server.metric(&rejected("native", "bad_mac")).await, 3.0);

    // The real device's connection is still the device's: a command reaches it, and it is served.
    let (status, body) = server
        .post(
            &format!("/api/v1/devices/{device_row}/command"),
            json!({"command": "locate"}),
        )
        .await;
    assert_eq!(status, 200, "the device is still connected: {body}");
    let command = real
        .recv(WAIT)
        .await
        .expect("command on the real connection");
    assert!(matches!(command.message, Message::Command(_)));
    let (_, reply) = real
        .alarm(AlarmKind::Sos, None, WAIT)
        .await
        .expect("served");
    assert_eq!(ack_of(&reply).status, AckStatus::Stored);
    assert_eq!(
        server.metric("onekey_connections_replaced_total").await,
        0.0
    );
}

#[tokio::test]
async fn disabling_a_device_closes_its_open_connection() {
    let db = Db::sqlite();
    let server = TestServer::start(&db, &[]).await;
    let key = demo_key(302);
    let (elder, device_row) = server.register_native_device(302, &key).await;
    let mut device = NativeDevice::connect(&server.addr("device_tcp"), 302, key)
        .await
        .unwrap();
    device.hello(WAIT).await.unwrap();
    let (status, _) = put(
        &server,
        &format!("/api/v1/devices/{device_row}"),
        json!({"protocol": "native", "ident": "302", "elder_id": elder, "enabled": false}),
    )
    .await;
    assert_eq!(status, 200);
    assert!(
        device.is_closed_by_server(WAIT).await,
        "the open connection ends without the device sending anything"
    );
    assert_eq!(server.metric(&rejected("native", "revoked")).await, 1.0);
    let mut again = NativeDevice::connect(&server.addr("device_tcp"), 302, key)
        .await
        .unwrap();
    let (bytes, _) = again.frame(sos());
    again.send_raw(&bytes).await.unwrap();
    assert!(
        again.is_closed_by_server(WAIT).await,
        "and it cannot come back"
    );
    assert!(server.incidents().await.is_empty());
}

#[tokio::test]
async fn re_keying_a_device_closes_the_connection_that_used_the_old_key() {
    let db = Db::sqlite();
    let server = TestServer::start(&db, &[]).await;
    let old = demo_key(303);
    let new = demo_key(304);
    let (elder, device_row) = server.register_native_device(303, &old).await;
    let mut device = NativeDevice::connect(&server.addr("device_tcp"), 303, old)
        .await
        .unwrap();
    device.hello(WAIT).await.unwrap();
    let (status, _) = put(
        &server,
        &format!("/api/v1/devices/{device_row}"),
        json!({"protocol": "native", "ident": "303", "elder_id": elder, "secret_hex": hex::encode(new)}),
    )
    .await;
    assert_eq!(status, 200);
    assert!(device.is_closed_by_server(WAIT).await);
    let mut rekeyed = NativeDevice::connect(&server.addr("device_tcp"), 303, new)
        .await
        .unwrap();
    rekeyed.seq = 100;
    let (_, reply) = rekeyed.alarm(AlarmKind::Sos, None, WAIT).await.unwrap();
    assert_eq!(ack_of(&reply).status, AckStatus::Stored);
}

#[tokio::test]
async fn moving_a_device_to_another_elder_reaches_its_open_connection() {
    let db = Db::sqlite();
    let server = TestServer::start(&db, &[]).await;
    let key = demo_key(305);
    let (_, device_row) = server.register_native_device(305, &key).await;
    let other = elder(&server, "新主人").await;
    let mut device = NativeDevice::connect(&server.addr("device_tcp"), 305, key)
        .await
        .unwrap();
    device.hello(WAIT).await.unwrap();
    let (status, _) = put(
        &server,
        &format!("/api/v1/devices/{device_row}"),
        json!({"protocol": "native", "ident": "305", "elder_id": other}),
    )
    .await;
    assert_eq!(status, 200);
    let (_, reply) = device
        .alarm(AlarmKind::Sos, None, WAIT)
        .await
        .expect("the connection goes on");
    assert_eq!(ack_of(&reply).status, AckStatus::Stored);
    let incidents = server.incidents().await;
    assert_eq!(incidents.len(), 1);
    assert_eq!(
        incidents[0]["elder_id"], other,
        "the alarm is the new elder's"
    );
}

/// Two instances share one PostgreSQL database. Heartbeat state is written lazily (here: once a
/// minute), so only a window kept in the store can tell instance B what instance A accepted.
#[tokio::test]
async fn native_replay_windows_are_shared_through_the_store() {
    let db = Db::postgres().await;
    let env = [("ONEKEY_INTAKE__STATUS_FLUSH_MS", "60000")];
    let a = TestServer::start(&db, &env).await;
    let b = TestServer::start(&db, &env).await;
    let key = demo_key(306);
    a.register_native_device(306, &key).await;

    let mut device = NativeDevice::connect(&a.addr("device_tcp"), 306, key)
        .await
        .unwrap();
    let mut captured = Vec::new();
    for _ in 0..70 {
        let (bytes, _) = device.frame(heartbeat());
        device.send_raw(&bytes).await.unwrap();
        let reply = device.recv(WAIT).await.unwrap();
        assert_eq!(ack_of(&reply).status, AckStatus::Stored);
        captured.push(bytes);
    }

    // Replaying the first heartbeat (older than the 64-frame window) on the other instance.
    let mut attacker = NativeDevice::connect(&b.addr("device_tcp"), 306, key)
        .await
        .unwrap();
    attacker.send_raw(&captured[0]).await.unwrap();
    let reply = attacker.recv(WAIT).await.expect("a replay NAK");
    let ack = ack_of(&reply);
    assert_eq!(ack.status, AckStatus::Rejected);
    assert_eq!(ack.reason, RejectReason::Replay);
    assert!(attacker.is_closed_by_server(WAIT).await);
    assert_eq!(b.metric(&rejected("native", "replay")).await, 1.0);

    // Replaying the latest one there is answered `duplicate` and changes nothing.
    let mut attacker = NativeDevice::connect(&b.addr("device_tcp"), 306, key)
        .await
        .unwrap();
    attacker.send_raw(&captured[69]).await.unwrap();
    let reply = attacker.recv(WAIT).await.expect("an ACK");
    assert_eq!(ack_of(&reply).status, AckStatus::Duplicate);
}

/// Connects to the MQTT broker at `addr` and returns the CONNACK's verdict.
async fn mqtt_connect(addr: &str, credentials: Option<(&str, &str)>) -> Result<(), String> {
    let (host, port) = addr.rsplit_once(':').expect("host:port");
    let mut o = rumqttc::MqttOptions::new(
        format!("auth-probe-{}", rand::random::<u32>()),
        host,
        port.parse::<u16>().expect("port"),
    );
    if let Some((user, password)) = credentials {
        o.set_credentials(user, password);
    }
    let (_client, mut eventloop) = rumqttc::AsyncClient::new(o, 8);
    loop {
        match tokio::time::timeout(WAIT, eventloop.poll()).await {
            Ok(Ok(rumqttc::Event::Incoming(rumqttc::Packet::ConnAck(ack)))) => {
                return if ack.code == rumqttc::ConnectReturnCode::Success {
                    Ok(())
                } else {
                    Err(format!("{:?}", ack.code))
                };
            }
            Ok(Ok(_)) => continue,
            Ok(Err(e)) => return Err(e.to_string()),
            Err(_) => return Err("no CONNACK".into()),
        }
    }
}

#[tokio::test]
async fn the_embedded_broker_refuses_anonymous_clients_and_wrong_passwords() {
    let db = Db::sqlite();
    let server = TestServer::start(&db, &[]).await;
    let broker = server.addr("mqtt");
    assert!(mqtt_connect(&broker, None).await.is_err(), "anonymous");
    assert!(
        mqtt_connect(&broker, Some(("tester", "wrong-password")))
            .await
            .is_err(),
        "wrong password"
    );
    assert!(
        mqtt_connect(&broker, Some(("onekey-server", "guess")))
            .await
            .is_err(),
        "the server's own account has a random password"
    );
    assert_eq!(
        mqtt_connect(&broker, Some(("tester", "tester-pass-1"))).await,
        Ok(()),
        "a configured account connects"
    );
    // The server's own clients are connected (they got in with the start-up account).
    let (status, health) = server.get("/healthz").await;
    assert_eq!((status, &health["broker"]["state"]), (200, &json!("up")));
}

/// Every file of a SQLite database (the file, its WAL and shared memory) as one byte string.
fn database_bytes(db: &Db) -> Vec<u8> {
    let Db::Sqlite(dir) = db else {
        panic!("a SQLite database")
    };
    let mut all = Vec::new();
    for name in ["onekey.db", "onekey.db-wal", "onekey.db-shm"] {
        all.extend(std::fs::read(dir.path().join(name)).unwrap_or_default());
    }
    all
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

#[tokio::test]
async fn device_keys_key_safe_codes_and_webhook_secrets_are_sealed_at_rest() {
    let db = Db::sqlite();
    let server = TestServer::start(&db, &[]).await;
    let key = demo_key(311);
    let key_hex = hex::encode(key);
    let (elder, _) = server.register_native_device(311, &key).await;
    let code = "KEYSAFE-4711-2580";
    let (status, body) = put(
        &server,
        &format!("/api/v1/elders/{elder}"),
        json!({"name": "老人 311", "address": "吉州区 文山街道 思源社区 1 号", "lat": 27.11,
               "lon": 114.98, "living": "alone", "key_safe_code": code}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let hook_secret = "hook-secret-0123456789abcdef";
    let (status, body) = server
        .post(
            "/api/v1/webhooks",
            json!({"name": "city", "url": "http://127.0.0.1:9/hook", "secret": hook_secret}),
        )
        .await;
    assert_eq!(status, 201, "{body}");

    // The device logs in with the key it was registered with, and its alarm is stored.
    let mut device = NativeDevice::connect(&server.addr("device_tcp"), 311, key)
        .await
        .unwrap();
    device.hello(WAIT).await.expect("hello");
    let (_, reply) = device.alarm(AlarmKind::Sos, None, WAIT).await.expect("ACK");
    assert_eq!(ack_of(&reply).status, AckStatus::Stored);
    let (_, e) = server.get(&format!("/api/v1/elders/{elder}")).await;
    assert_eq!(e["key_safe_code"], code, "the console still reads the code");

    // The key lives in a file beside the database, readable by the server's user only.
    let Db::Sqlite(dir) = &db else { unreachable!() };
    let key_file = dir.path().join("onekey.db.key");
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(&key_file)
            .expect("key file")
            .permissions(),
    );
    assert_eq!(mode & 0o077, 0, "key file mode {mode:o}");

    let (code_status, log) = server.stop_with_log().await;
    assert_eq!(code_status, 0);
    // Neither the database's files nor the log hold any of the three secrets.
    let bytes = database_bytes(&db);
    assert!(
        contains(&bytes, "老人 311"),
        "the test reads the right files"
    );
    for secret in [key_hex.as_str(), code, hook_secret] {
        assert!(!contains(&bytes, secret), "{secret} is stored in clear");
        assert!(!log.contains(secret), "{secret} is in the log");
    }
    let stored_key_file = std::fs::read_to_string(&key_file).expect("key");
    assert!(
        !log.contains(stored_key_file.trim()),
        "the secrets key is in the log"
    );

    // A secret written in clear by an older server is sealed at the next start.
    {
        let url = format!("{}?mode=rw", db.url());
        let mut conn = <sqlx::SqliteConnection as sqlx::Connection>::connect(&url)
            .await
            .expect("open the database");
        sqlx::query("UPDATE elders SET key_safe_code = 'OLD-CLEAR-CODE-99' WHERE id = ?")
            .bind(elder)
            .execute(&mut conn)
            .await
            .expect("write a code in clear");
        sqlx::Connection::close(conn).await.ok();
    }

    // Another key does not open this database: the server refuses to start and says why.
    let dir2 = tempfile::tempdir().unwrap();
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_onekey"))
        .arg("migrate")
        .current_dir(dir2.path())
        .env("ONEKEY_DATABASE_URL", db.url())
        .env("ONEKEY_SECRETS_KEY", onekey::store::Sealer::generate_key())
        .output()
        .await
        .expect("run onekey");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("not the one this database's secrets were sealed with"),
        "{stderr}"
    );

    let server = TestServer::start(&db, &[]).await;
    let (_, e) = server.get(&format!("/api/v1/elders/{elder}")).await;
    assert_eq!(e["key_safe_code"], "OLD-CLEAR-CODE-99");
    let mut device = NativeDevice::connect(&server.addr("device_tcp"), 311, key)
        .await
        .unwrap();
    device.hello(WAIT).await.expect("hello after restart");
    server.stop().await;
    assert!(!contains(&database_bytes(&db), "OLD-CLEAR-CODE-99"));
}
