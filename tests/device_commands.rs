//! Commands from the console reach the connected device in its own protocol, and its answer is stored.

mod common;

use std::time::Duration;

use common::{Db, TestServer};
use onekey_protocol::{AlarmKind, CommandKind, CommandOutcome, CommandResult, Message};
use onekey_sim::deployed::{self as sim, RawDevice};
use onekey_sim::native::{NativeDevice, demo_key};

const WAIT: Duration = Duration::from_secs(10);

#[tokio::test]
async fn help_coming_reaches_a_native_device_and_its_result_is_stored() {
    let db = Db::sqlite();
    let server = TestServer::start(&db, &[]).await;
    let key = demo_key(21);
    server.register_native_device(21, &key).await;
    let mut device = NativeDevice::connect(&server.addr("device_tcp"), 21, key)
        .await
        .unwrap();
    device.alarm(AlarmKind::Sos, None, WAIT).await.unwrap();
    let incident = server.incidents().await[0]["id"].as_i64().unwrap();

    let (status, sent) = server
        .post(
            &format!("/api/v1/incidents/{incident}/command"),
            serde_json::json!({"command": "help_coming"}),
        )
        .await;
    assert_eq!(status, 200, "{sent}");
    let frame = device.recv(WAIT).await.unwrap();
    let command = match frame.message {
        Message::Command(c) => c,
        other => panic!("expected a command, got {other:?}"),
    };
    assert_eq!(command.kind, CommandKind::HelpComing);
    assert_eq!(
        i64::from(command.command_id),
        sent["command_id"].as_i64().unwrap()
    );
    assert_eq!(sent["event"]["kind"], "command_sent");

    let result = Message::CommandResult(CommandResult {
        command_id: command.command_id,
        outcome: CommandOutcome::Ok,
    });
    let (_, ack) = device.request(result, WAIT).await.unwrap();
    assert!(
        matches!(ack.message, Message::Ack(_)),
        "the result is ACKed after it is stored"
    );
    let (_, detail) = server.get(&format!("/api/v1/incidents/{incident}")).await;
    let result = detail["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["kind"] == "command_result")
        .expect("result on the timeline");
    assert_eq!(result["detail"]["ok"], true);
    assert_eq!(
        result["detail"]["command_id"],
        i64::from(command.command_id)
    );

    // A device that is not connected cannot be commanded: 503 with a clear code.
    device.send_raw(&[]).await.unwrap();
    drop(device);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let (status, body) = server
        .post(
            &format!("/api/v1/incidents/{incident}/command"),
            serde_json::json!({"command": "locate"}),
        )
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (503, Some("unavailable")),
        "{body}"
    );
}

#[tokio::test]
async fn locate_reaches_a_watch_in_its_text_protocol() {
    let db = Db::sqlite();
    let server = TestServer::start(&db, &[]).await;
    let device_row = server
        .register_device("watch", "6907919734", None, None)
        .await;
    let mut watch = RawDevice::connect(&server.addr("watch")).await.unwrap();
    watch
        .send(&sim::watch_frame("3G", "6907919734", "LK"))
        .await
        .unwrap();
    watch.read_until(b"]", WAIT).await.unwrap();

    let (status, body) = server
        .post(
            &format!("/api/v1/devices/{device_row}/command"),
            serde_json::json!({"command": "locate"}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    // REFERENCE 2.2: `CR` is locate-now; a device seen as `3G` is answered as `SG`.
    assert_eq!(
        watch.read_until(b"]", WAIT).await.unwrap(),
        b"[SG*6907919734*0002*CR]"
    );

    let (status, body) = server
        .post(
            &format!("/api/v1/devices/{device_row}/command"),
            serde_json::json!({"command": "ring"}),
        )
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (400, Some("bad_request")),
        "ring is not a watch command: {body}"
    );
}
