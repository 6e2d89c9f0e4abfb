//! The MQTT JSON uplink (`firmware-protocol/MQTT.md`): `<prefix>/dev/<id>/up/json`, signed with
//! the device's 32-byte key over the canonical string; the server's JSON ACK on `down` is checked
//! the same way before it stops a retry.
//!
//! Kinds: every alarm kind of the native protocol (others become `sos`), `cancel`, `check_in`,
//! `heartbeat` with the battery. The JSON uplink has no service request: those are unsupported.

use bytes::BytesMut;
use hmac::{Hmac, Mac};
use serde::Deserialize;
use sha2::Sha256;

use super::native::alarm_kind;
use super::wire::{AckKey, Out, Reply, Unsupported, Wire, secs};
use crate::clock::Ms;
use crate::plan::Action;

/// A JSON device.
pub struct JsonWire {
    device_id: String,
    key: [u8; 32],
    seq: u32,
}

#[derive(Deserialize)]
struct JsonAck {
    #[serde(rename = "type")]
    kind: String,
    seq: u32,
    status: String,
    #[serde(default)]
    reason: String,
    server_time: u32,
    mac: String,
}

/// The first 8 bytes of HMAC-SHA256 of `text` under `key`, lowercase hex.
pub fn mac_hex(key: &[u8; 32], text: &str) -> String {
    match <Hmac<Sha256> as Mac>::new_from_slice(key) {
        Ok(mut m) => {
            m.update(text.as_bytes());
            hex::encode(&m.finalize().into_bytes()[..8])
        }
        Err(_) => String::new(),
    }
}

impl JsonWire {
    /// Device `device_id` with `key`, its first sequence number `seq`.
    pub fn new(device_id: &str, key: [u8; 32], seq: u32) -> JsonWire {
        JsonWire {
            device_id: device_id.to_string(),
            key,
            seq,
        }
    }

    /// The signed uplink of `kind` (the next sequence number).
    fn uplink(&mut self, kind: &str, battery: Option<u8>, now: Ms) -> Out {
        let seq = self.seq;
        self.seq = self.seq.wrapping_add(1);
        let ts = u32::try_from(secs(now)).unwrap_or(0);
        let battery_text = battery.map(|b| b.to_string()).unwrap_or_default();
        let canonical = format!("v1|{}|{seq}|{kind}|{ts}|{battery_text}|||", self.device_id);
        let mut body = serde_json::json!({
            "v": 1, "device_id": self.device_id, "seq": seq, "kind": kind, "ts": ts,
            "mac": mac_hex(&self.key, &canonical),
        });
        if let Some(b) = battery {
            body["battery"] = b.into();
        }
        Out {
            bytes: body.to_string().into_bytes(),
            key: AckKey::Seq(seq),
        }
    }
}

impl Wire for JsonWire {
    fn hello(&mut self, _now: Ms) -> Option<Out> {
        None
    }

    fn heartbeat(&mut self, battery: u8, now: Ms) -> Option<Out> {
        Some(self.uplink("heartbeat", Some(battery.min(100)), now))
    }

    fn action(&mut self, action: &Action, battery: u8, now: Ms) -> Result<Out, Unsupported> {
        let kind = match action {
            Action::Alarm { kind } => alarm_kind(kind).as_str(),
            Action::Cancel => "cancel",
            Action::CheckIn => "check_in",
            Action::Service { .. } | Action::GoSilent => return Err(Unsupported),
        };
        Ok(self.uplink(kind, Some(battery.min(100)), now))
    }

    fn reply(&mut self, buf: &mut BytesMut) -> Option<Reply> {
        if buf.is_empty() {
            return None;
        }
        // One MQTT message at a time arrives in the buffer.
        let message = buf.split();
        let Ok(ack) = serde_json::from_slice::<JsonAck>(&message) else {
            return Some(Reply::Other);
        };
        let canonical = format!(
            "v1|ack|{}|{}|{}|{}|{}",
            self.device_id, ack.seq, ack.status, ack.reason, ack.server_time
        );
        if ack.kind != "ack" || mac_hex(&self.key, &canonical) != ack.mac {
            return Some(Reply::Other);
        }
        Some(Reply::Ack {
            key: AckKey::Seq(ack.seq),
            ok: ack.status != "rejected",
            server_s: Some(i64::from(ack.server_time)),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_documented_example_signs_alike() {
        let key: [u8; 32] = core::array::from_fn(|i| i as u8);
        assert_eq!(
            mac_hex(
                &key,
                "v1|btn-0042|17|sos|1764331200|87|27110000|114980000|15"
            ),
            "5712f275e793af46"
        );
        assert_eq!(
            mac_hex(&key, "v1|ack|btn-0042|17|stored||1764331201"),
            "b16d9026a15ccaea"
        );
    }

    #[test]
    fn a_forged_ack_does_not_stop_the_retry() {
        let key = [7u8; 32];
        let mut w = JsonWire::new("btn-1", key, 5);
        let good = format!(
            r#"{{"type":"ack","seq":5,"status":"stored","reason":"","server_time":9,"mac":"{}"}}"#,
            mac_hex(&key, "v1|ack|btn-1|5|stored||9")
        );
        let mut buf = BytesMut::from(good.as_bytes());
        assert!(matches!(
            w.reply(&mut buf),
            Some(Reply::Ack {
                key: AckKey::Seq(5),
                ok: true,
                ..
            })
        ));
        let forged = r#"{"type":"ack","seq":5,"status":"stored","reason":"","server_time":9,"mac":"0000000000000000"}"#;
        let mut buf = BytesMut::from(forged.as_bytes());
        assert_eq!(w.reply(&mut buf), Some(Reply::Other));
    }
}
