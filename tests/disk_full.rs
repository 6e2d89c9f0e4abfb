//! The SQLite store's disk fills up under a running server: alarms that cannot be committed get no
//! ACK, the device's retry is stored once space is back, and nothing ACKed is missing.
//!
//! The database lives on a 24 MiB tmpfs mounted in the server's own mount namespace
//! (`unshare -rm`, no privileges needed); the test fills it through `/proc/<pid>/root`.

mod common;

use std::io::Write;
use std::time::Duration;

use common::{Db, TestServer};
use onekey_protocol::{AckStatus, Alarm, AlarmKind, Message};
use onekey_sim::native::{DeviceError, NativeDevice, demo_key};

const WAIT: Duration = Duration::from_secs(10);

fn acked(frame: &onekey_protocol::Frame) -> Option<(u32, AckStatus)> {
    match frame.message {
        Message::Ack(a) => Some((a.acked_seq, a.status)),
        _ => None,
    }
}

#[tokio::test]
async fn a_full_disk_withholds_acks_and_loses_nothing_once_space_is_back() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db_dir = dir.path().join("db");
    std::fs::create_dir_all(&db_dir).expect("db dir");
    let db_dir_s = db_dir.to_str().expect("utf-8 path").to_string();
    let db = Db::Url(format!("sqlite://{db_dir_s}/onekey.db"));
    let server = TestServer::start_wrapped(
        &db,
        &[],
        &[
            "unshare",
            "-rm",
            "sh",
            "-c",
            "mount -t tmpfs -o size=24m onekey-test \"$0\" && exec \"$@\"",
            &db_dir_s,
        ],
    )
    .await;
    let key = demo_key(31);
    server.register_native_device(31, &key).await;
    let mut device = NativeDevice::connect(&server.addr("device_tcp"), 31, key)
        .await
        .expect("connect");
    device.hello(WAIT).await.expect("hello");
    let sos = Message::Alarm(Alarm {
        kind: AlarmKind::Sos,
        location: None,
    });
    let (_, first) = device.request(sos, WAIT).await.expect("first alarm");
    assert_eq!(acked(&first).map(|a| a.1), Some(AckStatus::Stored));

    // Fill the server's filesystem, as the server sees it.
    let seen = std::path::PathBuf::from(format!("/proc/{}/root{db_dir_s}", server.pid()));
    assert!(
        seen.join("onekey.db").exists(),
        "the database is on the server's tmpfs"
    );
    let filler_path = seen.join("filler");
    let mut filler = std::fs::File::create(&filler_path).expect("filler");
    let chunk = vec![0u8; 1 << 20];
    let mut written = 0usize;
    while filler.write_all(&chunk).is_ok() {
        written += 1;
        assert!(written < 64, "the tmpfs never filled up");
    }
    let _ = filler.flush();
    drop(filler);

    // Alarms now: whatever is ACKed was committed (SQLite may still have room in its WAL); the
    // first one that cannot be committed gets no ACK.
    let mut acked_during = 0;
    let mut withheld = None;
    for _ in 0..40 {
        let (frame, seq) = device.frame(Message::Alarm(Alarm {
            kind: AlarmKind::Fall,
            location: None,
        }));
        device.send_raw(&frame).await.expect("send");
        match device.recv(Duration::from_secs(3)).await {
            Ok(reply) => {
                assert_eq!(acked(&reply), Some((seq, AckStatus::Stored)), "{reply:?}");
                acked_during += 1;
            }
            Err(DeviceError::Timeout(_)) => {
                withheld = Some((frame, seq));
                break;
            }
            Err(e) => panic!("the connection must stay up: {e:?}"),
        }
    }
    let (frame, seq) = withheld.expect("an alarm was refused by the full disk");
    server
        .wait_metric("onekey_acks_withheld_total{protocol=\"native\"}", 1.0)
        .await;
    assert!(server.log().contains("withholding the ACK"));

    // Space is back: the device's retry of the same frame is stored, once.
    std::fs::remove_file(&filler_path).expect("free the space");
    let mut reply = None;
    for _ in 0..20 {
        device.send_raw(&frame).await.expect("retry");
        if let Ok(r) = device.recv(Duration::from_secs(2)).await {
            reply = Some(r);
            break;
        }
    }
    let reply = reply.expect("the retry is ACKed once there is space");
    assert_eq!(acked(&reply), Some((seq, AckStatus::Stored)));
    device.send_raw(&frame).await.expect("a late duplicate");
    let again = device.recv(WAIT).await;
    // Kept for a look after a failure.
    let _ = std::fs::write(
        std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("disk-full-server.log"),
        server.log(),
    );
    let again = again.expect("ACK of the duplicate");
    assert_eq!(acked(&again), Some((seq, AckStatus::Duplicate)));

    let (status, log) = server.get("/api/v1/device-log?limit=1000").await;
    assert_eq!(status, 200, "{log}");
    let alarms = log
        .as_array()
        .expect("rows")
        .iter()
        .filter(|r| r["kind"] == "alarm")
        .count();
    println!(
        "disk full after {written} MiB: {acked_during} alarms still ACKed, 1 withheld, {alarms} stored in all"
    );
    assert_eq!(
        alarms,
        2 + acked_during,
        "every ACKed alarm once, and the retried one"
    );
    server.stop().await;
}
