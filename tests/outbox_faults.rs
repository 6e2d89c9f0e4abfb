//! The outbox under faults, on the real binary with real peers: a crash between the dispatch
//! commit and the first delivery, a broker outage while offers go unconfirmed, two instances on
//! one PostgreSQL, and an incident whose timers were lost. Each asserts that every message is
//! delivered, and exactly once.

mod common;
mod mqtt_support;

use std::collections::HashMap;
use std::time::Duration;

use common::peers::{App, Smsc};
use common::{Db, TestServer};
use mqtt_support::{PrivateBroker, unique};
use onekey_protocol::{AlarmKind, Location};
use onekey_sim::native::{NativeDevice, demo_key};
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(20);

async fn start(db: &Db, env: &[(&str, String)]) -> TestServer {
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    TestServer::start(db, &env).await
}

/// An elder at the volunteers' doorstep with a native device (not yet connected).
async fn elder(server: &TestServer, device_id: u64, contacts: Value) -> [u8; 32] {
    let (status, elder) = server
        .post(
            "/api/v1/elders",
            json!({ "name": "周奶奶", "address": "吉州区 白塘街道 2 号", "lat": 27.11,
                    "lon": 114.98, "living": "alone", "contacts": contacts }),
        )
        .await;
    assert_eq!(status, 201, "{elder}");
    let key = demo_key(device_id);
    server
        .register_device(
            "native",
            &device_id.to_string(),
            Some(&hex::encode(key)),
            elder["id"].as_i64(),
        )
        .await;
    key
}

async fn sos(server: &TestServer, device_id: u64, key: [u8; 32]) {
    let mut device = NativeDevice::connect(&server.addr("device_tcp"), device_id, key)
        .await
        .expect("connect");
    device.hello(WAIT).await.expect("hello");
    let at = Location {
        lat_e6: 27_110_000,
        lon_e6: 114_980_000,
        accuracy_m: 10,
    };
    device
        .alarm(AlarmKind::Sos, Some(at), WAIT)
        .await
        .expect("ACK");
}

fn offers(app: &mut App) -> Vec<Value> {
    app.messages()
        .into_iter()
        .filter(|m| m["type"] == "offer")
        .collect()
}

/// The broker is down when the SOS comes, so the offers are committed but not yet pushed; the
/// server is killed (SIGKILL) right then. After the broker and the server are back, each
/// volunteer's app gets its offer exactly once.
#[tokio::test]
async fn a_crash_between_the_dispatch_commit_and_the_first_push_delivers_each_offer_once() {
    let mut broker = PrivateBroker::start(true).await;
    let prefix = unique("crash");
    let db = Db::sqlite();
    let env = vec![
        ("ONEKEY_MQTT_URL", format!("mqtt://{}", broker.addr)),
        ("ONEKEY_MQTT_PREFIX", prefix.clone()),
        ("ONEKEY_MQTT__BACKOFF_MAX_MS", "500".to_string()),
        ("ONEKEY_NOTIFY__RELAY__LEASE_MS", "1000".to_string()),
        ("ONEKEY_NOTIFY__RELAY__RETRY_MAX_MS", "500".to_string()),
    ];
    let server = start(&db, &env).await;
    let (a, _) = server
        .responder_on_duty("志愿者 甲", "13900000041", 27.1101, 114.9801)
        .await;
    let (b, _) = server
        .responder_on_duty("志愿者 乙", "13900000042", 27.1102, 114.9802)
        .await;
    let id = 860_000_000_000_201u64;
    let key = elder(&server, id, json!([])).await;
    broker.stop(false).await;
    sos(&server, id, key).await;
    let incident = server.first_incident(WAIT).await;
    server.wait_events(incident, "offer_sent", 2, WAIT).await;
    assert_eq!(
        server
            .metric(r#"onekey_mqtt_pushes_total{outcome="sent"}"#)
            .await,
        0.0,
        "nothing could be pushed yet"
    );
    server.kill().await;

    broker.restart().await;
    let mut apps = [
        App::start(&broker.addr, &prefix, a, &unique("app-a"), true).await,
        App::start(&broker.addr, &prefix, b, &unique("app-b"), true).await,
    ];
    let server = start(&db, &env).await;
    for app in &mut apps {
        app.wait_kind("offer", 1, WAIT).await;
    }
    server
        .wait_events(incident, "offer_received", 2, WAIT)
        .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    for (app, r) in apps.iter_mut().zip([a, b]) {
        let got = offers(app);
        assert_eq!(got.len(), 1, "responder {r} got {got:?}");
        assert_eq!(got[0]["incident_id"], incident);
    }
    assert_eq!(server.stop().await, 0);
    broker.stop(false).await;
}

/// The broker goes away while an offer waits: the app cannot confirm it, so after the receipt
/// timeout the offer goes to the volunteer's phone by SMS; when the broker is back the push is
/// delivered too (the app reconnects by itself), once.
#[tokio::test]
async fn a_broker_outage_sends_the_unconfirmed_offer_by_sms_and_the_push_after_it() {
    let mut broker = PrivateBroker::start(true).await;
    let smsc = Smsc::start(0).await;
    let prefix = unique("outage");
    let db = Db::sqlite();
    let mut env = smsc.env();
    env.extend([
        ("ONEKEY_MQTT_URL", format!("mqtt://{}", broker.addr)),
        ("ONEKEY_MQTT_PREFIX", prefix.clone()),
        ("ONEKEY_MQTT__BACKOFF_MAX_MS", "500".to_string()),
        (
            "ONEKEY_NOTIFY__DELIVERY__RECEIPT_TIMEOUT_S",
            "2".to_string(),
        ),
        ("ONEKEY_NOTIFY__RELAY__RETRY_MAX_MS", "500".to_string()),
        ("ONEKEY_NOTIFY__RELAY__POLL_MS", "100".to_string()),
    ]);
    let server = start(&db, &env).await;
    smsc.wait_bound(WAIT).await;
    let (r, _) = server
        .responder_on_duty("志愿者 丙", "13900000043", 27.1101, 114.9801)
        .await;
    let mut app = App::start(&broker.addr, &prefix, r, &unique("app"), true).await;
    let id = 860_000_000_000_202u64;
    let key = elder(&server, id, json!([])).await;
    broker.stop(false).await;
    sos(&server, id, key).await;
    let incident = server.first_incident(WAIT).await;
    let sms = smsc.wait_messages(1, WAIT).await;
    assert_eq!(sms[0]["to"], "13900000043");
    assert!(offers(&mut app).is_empty(), "the broker is down");

    broker.restart().await;
    app.wait_ready(2, WAIT).await;
    let got = app.wait_kind("offer", 1, WAIT).await;
    assert_eq!(got[0]["incident_id"], incident);
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(offers(&mut app).len(), 1, "once");
    assert_eq!(smsc.messages().await.len(), 1, "one SMS");
    assert_eq!(server.stop().await, 0);
    broker.stop(false).await;
}

/// Two instances share one PostgreSQL database, one broker and one SMS centre; their relays claim
/// the same outbox. Every push and every SMS is delivered exactly once.
#[tokio::test]
async fn two_instances_on_one_postgres_deliver_each_notification_once() {
    let mut broker = PrivateBroker::start(false).await;
    let smsc = Smsc::start(0).await;
    let prefix = unique("two");
    let db = Db::postgres().await;
    let env = |name: &str| {
        let mut e = smsc.env();
        e.extend([
            ("ONEKEY_MQTT_URL", format!("mqtt://{}", broker.addr)),
            ("ONEKEY_MQTT_PREFIX", prefix.clone()),
            ("ONEKEY_MQTT__CLIENT_ID", format!("{prefix}-{name}")),
            ("ONEKEY_NOTIFY__RELAY__POLL_MS", "50".to_string()),
            ("ONEKEY_DISPATCH__RESPONDER_REFRESH_MS", "200".to_string()),
        ]);
        e
    };
    let one = start(&db, &env("one")).await;
    let two = start(&db, &env("two")).await;
    let mut apps = Vec::new();
    let mut volunteers = Vec::new();
    for i in 0..4 {
        let (r, _) = one
            .responder_on_duty(
                &format!("志愿者 {i}"),
                &format!("1390000005{i}"),
                27.1101,
                114.9801,
            )
            .await;
        volunteers.push(r);
        apps.push(App::start(&broker.addr, &prefix, r, &unique("app"), true).await);
    }
    // Both instances learn who is on duty (each keeps its own index, refreshed often here).
    tokio::time::sleep(Duration::from_millis(500)).await;
    let contacts = json!([
        { "name": "家属一", "phone": "13800000061" },
        { "name": "家属二", "phone": "13800000062", "key_holder": true }
    ]);
    let mut incidents = Vec::new();
    for k in 0..3u64 {
        let id = 860_000_000_000_210 + k;
        let key = elder(&one, id, contacts.clone()).await;
        // The devices of each elder connect to one instance or the other.
        let server = if k % 2 == 0 { &one } else { &two };
        sos(server, id, key).await;
    }
    for i in one.incidents().await {
        incidents.push(i["id"].as_i64().expect("id"));
    }
    assert_eq!(incidents.len(), 3);
    // 3 incidents × 2 contacts.
    let sms = smsc.wait_messages(6, WAIT).await;
    let mut per_number: HashMap<String, usize> = HashMap::new();
    for m in &sms {
        *per_number
            .entry(m["to"].as_str().unwrap_or_default().to_string())
            .or_default() += 1;
    }
    assert_eq!(per_number.get("13800000061"), Some(&3), "{per_number:?}");
    assert_eq!(per_number.get("13800000062"), Some(&3), "{per_number:?}");
    for &incident in &incidents {
        one.wait_events(incident, "offer_received", 4, WAIT).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(smsc.messages().await.len(), 6, "no SMS twice");
    for (app, r) in apps.iter_mut().zip(&volunteers) {
        let mut ids: Vec<i64> = offers(app)
            .iter()
            .filter_map(|m| m["id"].as_i64())
            .collect();
        let n = ids.len();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(
            (n, ids.len()),
            (3, 3),
            "responder {r}: one offer per incident, none twice"
        );
    }
    let sent = one
        .metric(r#"onekey_mqtt_pushes_total{outcome="sent"}"#)
        .await
        + two
            .metric(r#"onekey_mqtt_pushes_total{outcome="sent"}"#)
            .await;
    assert_eq!(
        sent, 12.0,
        "4 offers × 3 incidents, each sent by one instance"
    );
    assert_eq!(one.stop().await, 0);
    assert_eq!(two.stop().await, 0);
    broker.stop(false).await;
}

/// An incident whose pending timers were lost (here: deleted behind the server's back) is found
/// by the reconciler, stepped again, and has its timers back; the repair is counted.
#[tokio::test]
async fn the_reconciler_repairs_an_incident_that_lost_its_timers() {
    let db = Db::sqlite();
    let env = vec![
        ("ONEKEY_DISPATCH__RECONCILE_MS", "200".to_string()),
        ("ONEKEY_DISPATCH__RECONCILE_GRACE_MS", "500".to_string()),
    ];
    let server = start(&db, &env).await;
    server
        .responder_on_duty("志愿者 丁", "13900000044", 27.1101, 114.9801)
        .await;
    let id = 860_000_000_000_203u64;
    let key = elder(&server, id, json!([])).await;
    sos(&server, id, key).await;
    let incident = server.first_incident(WAIT).await;
    server.wait_events(incident, "offer_sent", 1, WAIT).await;
    assert_eq!(server.metric("onekey_dispatch_repairs_total").await, 0.0);
    let store = onekey::store::Store::connect(&db.url())
        .await
        .expect("store");
    let before = store.pending_timers().await.expect("timers");
    let mine: Vec<_> = before
        .iter()
        .filter(|t| t.incident_id == Some(incident))
        .cloned()
        .collect();
    assert!(mine.len() >= 4, "SLA clocks and the round: {mine:?}");
    sqlx::query("DELETE FROM dispatch_timers WHERE incident_id = $1")
        .bind(incident)
        .execute(store.pool())
        .await
        .expect("lose the timers");
    server
        .wait_metric("onekey_dispatch_repairs_total", 1.0)
        .await;
    let after: Vec<_> = store
        .pending_timers()
        .await
        .expect("timers")
        .into_iter()
        .filter(|t| t.incident_id == Some(incident))
        .collect();
    let names = |v: &[onekey::store::DueTimer]| {
        let mut n: Vec<(String, i64)> = v.iter().map(|t| (t.name.clone(), t.due_at)).collect();
        n.sort();
        n
    };
    assert_eq!(
        names(&after),
        names(&mine),
        "the same timers at the same times"
    );
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(
        server.metric("onekey_dispatch_repairs_total").await,
        1.0,
        "repaired once"
    );
    assert_eq!(server.stop().await, 0);
}
