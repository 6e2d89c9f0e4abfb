//! Arbitrary bytes as a JSON uplink on MQTT: whatever parses must verify or be refused without a
//! panic, sign and verify alike, survive a re-encoding unchanged, and make at most one event.

use std::sync::atomic::AtomicU32;

use onekey::ingress::DeviceAuth;
use onekey::ingress::mqtt::json_uplink::JsonUplink;
use tokio_util::sync::CancellationToken;

const KEY: [u8; 32] = [7; 32];

/// One fuzz input.
pub fn run(data: &[u8]) {
    let Ok(up) = JsonUplink::parse(data) else {
        return;
    };
    let _ = up.verify(&KEY);
    let _ = up.verify(&[]);
    let mut signed = up.clone();
    signed.sign(&KEY);
    assert!(signed.verify(&KEY).is_ok(), "a signed uplink verifies");
    let again = serde_json::to_vec(&signed).expect("an uplink serialises");
    let reparsed = JsonUplink::parse(&again).expect("a re-encoded uplink parses");
    assert_eq!(reparsed.canonical(), signed.canonical());
    assert!(reparsed.verify(&KEY).is_ok());
    let device = DeviceAuth {
        device_id: 1,
        protocol: "mqtt",
        ident: up.device_id.clone(),
        elder_id: Some(1),
        grid_id: None,
        secret: KEY.to_vec(),
        enabled: true,
        heartbeat_s: 60,
        downlink_seq: AtomicU32::new(0),
        changed: CancellationToken::new(),
    };
    let _ = up.status();
    let event = up.event(&device, 0);
    assert_eq!(event.is_none(), up.kind == "heartbeat");
}
