//! Devices already in homes, end to end over TCP: each protocol's simulated device identifies itself,
//! raises an SOS and gets the protocol's byte-exact ACK only once the incident exists; a retry of the
//! same alarm creates nothing new; an unregistered identity is refused.

mod common;

use std::time::Duration;

use common::{Db, TestServer};
use onekey_sim::deployed::{self as sim, RawDevice};

const WAIT: Duration = Duration::from_secs(10);

/// gt06.tsv row 26: a real GT06 0x16 alarm frame asserting `alarm=sos`.
const GT06_SOS: &str =
    "787826161709130f3a2dcc02c55f2a089f9af9005c210901360481fe066d9b03413e420102035f92fe0d0a";
/// watch.tsv row 1: a real `AL_LTE` alarm asserting `alarm=sos`.
const WATCH_SOS: &str =
    "[3G*6907919734*003e*AL_LTE,170525,214118,V,0,N,0,E,0,0,0,0,0,22,0,0,00010000,0,0,0]";

async fn one_incident(server: &TestServer, kind: &str) -> serde_json::Value {
    let incidents = server.incidents().await;
    assert_eq!(incidents.len(), 1, "exactly one incident: {incidents:?}");
    assert_eq!(incidents[0]["kind"], kind);
    assert_eq!(incidents[0]["alarm_count"], 1);
    incidents[0].clone()
}

async fn elder(server: &TestServer) -> i64 {
    let (status, e) = server
        .post("/api/v1/elders", serde_json::json!({"name": "刘奶奶", "address": "北门街道 北门社区", "lat": 27.12, "lon": 114.98, "living": "empty_nest"}))
        .await;
    assert_eq!(status, 201);
    e["id"].as_i64().unwrap()
}

#[tokio::test]
async fn gt06_pendant_logs_in_and_its_sos_is_acked_after_commit() {
    let db = Db::sqlite();
    let server = TestServer::start(&db, &[]).await;
    let elder = elder(&server).await;
    let device_row = server
        .register_device("gt06", "864717003283581", None, Some(elder))
        .await;
    let mut device = RawDevice::connect(&server.addr("gt06")).await.unwrap();

    device
        .send(&sim::gt06_login("864717003283581", 9))
        .await
        .unwrap();
    let ack = device
        .read_until(&[0x0D, 0x0A], WAIT)
        .await
        .expect("login ACK");
    assert_eq!(ack, sim::gt06_ack(0x01, 9));

    let alarm = hex::decode(GT06_SOS).unwrap();
    let (proto, serial) = sim::gt06_proto_and_serial(&alarm).unwrap();
    device.send(&alarm).await.unwrap();
    let ack = device
        .read_until(&[0x0D, 0x0A], WAIT)
        .await
        .expect("alarm ACK");
    assert_eq!(
        ack,
        sim::gt06_ack(proto, serial),
        "byte-exact short-form ACK echoing 0x16 and the serial"
    );
    let incident = one_incident(&server, "sos").await;
    assert_eq!(incident["device_id"], device_row);
    assert_eq!(incident["elder_id"], elder);

    // The pendant missed the ACK and sends the same frame again.
    device.send(&alarm).await.unwrap();
    assert_eq!(
        device.read_until(&[0x0D, 0x0A], WAIT).await.unwrap(),
        sim::gt06_ack(proto, serial)
    );
    one_incident(&server, "sos").await;
}

#[tokio::test]
async fn a_gt06_frame_before_login_and_an_unknown_imei_are_refused() {
    let db = Db::sqlite();
    let server = TestServer::start(&db, &[]).await;
    let mut early = RawDevice::connect(&server.addr("gt06")).await.unwrap();
    early.send(&hex::decode(GT06_SOS).unwrap()).await.unwrap();
    assert!(early.is_closed_by_server(WAIT).await);

    let mut stranger = RawDevice::connect(&server.addr("gt06")).await.unwrap();
    stranger
        .send(&sim::gt06_login("123456789012345", 1))
        .await
        .unwrap();
    assert!(
        stranger.is_closed_by_server(WAIT).await,
        "no ACK, connection closed"
    );
    server
        .wait_metric(
            "onekey_frames_rejected_total{protocol=\"gt06\",reason=\"unknown_device\"}",
            1.0,
        )
        .await;
    assert!(server.incidents().await.is_empty());
}

#[tokio::test]
async fn watch_sos_is_acked_after_commit_and_a_retry_creates_nothing() {
    let db = Db::sqlite();
    let server = TestServer::start(&db, &[]).await;
    let elder = elder(&server).await;
    server
        .register_device("watch", "6907919734", None, Some(elder))
        .await;
    let mut watch = RawDevice::connect(&server.addr("watch")).await.unwrap();

    watch
        .send(&sim::watch_frame("3G", "6907919734", "LK,0,0,85"))
        .await
        .unwrap();
    assert_eq!(
        watch.read_until(b"]", WAIT).await.unwrap(),
        b"[3G*6907919734*0002*LK]"
    );

    watch.send(WATCH_SOS.as_bytes()).await.unwrap();
    assert_eq!(
        watch.read_until(b"]", WAIT).await.unwrap(),
        b"[3G*6907919734*0002*AL]"
    );
    one_incident(&server, "sos").await;

    watch.send(WATCH_SOS.as_bytes()).await.unwrap();
    assert_eq!(
        watch.read_until(b"]", WAIT).await.unwrap(),
        b"[3G*6907919734*0002*AL]"
    );
    one_incident(&server, "sos").await;
}

#[tokio::test]
async fn h02_tracker_sos_status_opens_one_incident_and_is_answered() {
    let db = Db::sqlite();
    let server = TestServer::start(&db, &[]).await;
    let elder = elder(&server).await;
    server
        .register_device("h02", "4106011660", None, Some(elder))
        .await;
    let mut tracker = RawDevice::connect(&server.addr("h02")).await.unwrap();
    let frame = sim::h02_v1("4106011660", sim::H02_STATUS_SOS, "124552", "281126");
    tracker.send(&frame).await.unwrap();
    let reply = String::from_utf8(tracker.read_until(b"#", WAIT).await.expect("V1 reply")).unwrap();
    // REFERENCE 3.5: `*HQ,<id>,V4,V1,<yyyyMMddHHmmss>#`.
    let stamp = reply
        .strip_prefix("*HQ,4106011660,V4,V1,")
        .and_then(|r| r.strip_suffix('#'))
        .unwrap_or_else(|| panic!("{reply}"));
    assert!(
        stamp.len() == 14 && stamp.bytes().all(|b| b.is_ascii_digit()),
        "{reply}"
    );
    let incident = one_incident(&server, "sos").await;
    assert!((incident["location"]["lat"].as_f64().unwrap() - 27.113).abs() < 1e-3);

    // The same frame again: H02 status bits are levels; the same bytes are the same alarm.
    tracker.send(&frame).await.unwrap();
    tracker.read_until(b"#", WAIT).await.unwrap();
    one_incident(&server, "sos").await;
}

#[tokio::test]
async fn dc09_personal_emergency_is_acked_with_echoed_sequence_and_account() {
    let db = Db::sqlite();
    let server = TestServer::start(&db, &[]).await;
    let elder = elder(&server).await;
    server
        .register_device("sia", "5A21", None, Some(elder))
        .await;
    let mut panel = RawDevice::connect(&server.addr("sia")).await.unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    // Contact ID 101: personal emergency.
    let frame = sim::dc09(
        "ADM-CID",
        42,
        "5A21",
        "#5A21|1101 01 001",
        &sim::dc09_timestamp(now),
    );
    panel.send(&frame).await.unwrap();
    let reply = panel.read_until(b"\r", WAIT).await.expect("DC-09 reply");
    let text = String::from_utf8(reply).unwrap();
    assert!(text.starts_with('\n') && text.ends_with('\r'), "{text:?}");
    assert!(
        text.contains(&sim::dc09_ack_body(42, "5A21")),
        "ACK echoes sequence, line and account: {text:?}"
    );
    one_incident(&server, "sos").await;

    panel.send(&frame).await.unwrap();
    panel.read_until(b"\r", WAIT).await.unwrap();
    one_incident(&server, "sos").await;

    // An unknown account gets no ACK.
    let mut stranger = RawDevice::connect(&server.addr("sia")).await.unwrap();
    stranger
        .send(&sim::dc09(
            "ADM-CID",
            1,
            "9999",
            "#9999|1101 01 001",
            &sim::dc09_timestamp(now),
        ))
        .await
        .unwrap();
    let reply = stranger.read_until(b"\r", Duration::from_secs(3)).await;
    assert!(
        reply
            .as_deref()
            .is_none_or(|r| !String::from_utf8_lossy(r).contains("\"ACK\"")),
        "{reply:?}"
    );
    assert!(stranger.is_closed_by_server(WAIT).await);
}

/// "I'm OK" at a DC-09 panel (Contact ID 406, cancel) after its personal emergency: ACKed after
/// commit, and the incident becomes a probable false alarm, as a native device's cancel makes it.
#[tokio::test]
async fn a_dc09_cancel_after_an_emergency_makes_it_a_probable_false_alarm() {
    let db = Db::sqlite();
    let server = TestServer::start(&db, &[]).await;
    let elder = elder(&server).await;
    server
        .register_device("sia", "5A22", None, Some(elder))
        .await;
    let mut panel = RawDevice::connect(&server.addr("sia")).await.unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    for (seq, data) in [(7, "#5A22|1101 01 001"), (8, "#5A22|1406 01 001")] {
        let frame = sim::dc09("ADM-CID", seq, "5A22", data, &sim::dc09_timestamp(now));
        panel.send(&frame).await.unwrap();
        let reply = panel.read_until(b"\r", WAIT).await.expect("DC-09 reply");
        let text = String::from_utf8(reply).unwrap();
        assert!(
            text.contains(&sim::dc09_ack_body(seq, "5A22")),
            "{data} ACKed: {text:?}"
        );
    }
    let incident = one_incident(&server, "sos").await;
    assert_eq!(incident["probable_false_alarm"], true, "{incident}");
    let id = incident["id"].as_i64().unwrap();
    let events = server.events_of(id, "device_cancelled").await;
    assert_eq!(events.len(), 1, "{events:?}");
}
