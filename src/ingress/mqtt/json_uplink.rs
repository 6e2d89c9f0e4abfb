//! The JSON uplink for devices that cannot build binary frames, and its authenticated JSON ACK.
//!
//! The MAC is HMAC-SHA256 with the device's 32-byte key over the canonical string (below), its first
//! 8 bytes in lowercase hex (16 characters), like the binary frame's truncated tag. The canonical
//! string joins, with `|` and no spaces, the version tag `v1` and the fields in this order, integers
//! in plain decimal, absent optional fields as the empty string:
//!
//! `v1|<device_id>|<seq>|<kind>|<ts>|<battery>|<lat_e6>|<lon_e6>|<acc_m>`
//!
//! e.g. `v1|btn-0042|17|sos|1764331200|87|27110000|114980000|15`. The ACK carries its own MAC over
//! `v1|ack|<device_id>|<seq>|<status>|<reason>|<server_time>`.

use hmac::{Hmac, Mac};
use onekey_protocol::AlarmKind;
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use crate::domain::{DeviceEvent, DeviceStatus, EventBody, GeoPoint, Millis};
use crate::ingress::{DeviceAuth, Reason, Reject};

/// Largest JSON uplink accepted, in bytes.
pub const MAX_JSON_LEN: usize = 1024;
/// Bytes of the HMAC kept (hex: twice as many characters).
pub const MAC_LEN: usize = 8;

/// A position in microdegrees, as in the binary protocol.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
pub struct JsonLocation {
    /// Latitude × 10⁶, −90 000 000 ..= 90 000 000.
    pub lat_e6: i32,
    /// Longitude × 10⁶, −180 000 000 ..= 180 000 000.
    pub lon_e6: i32,
    /// Accuracy radius in metres, 0 = unknown.
    pub acc_m: u16,
}

/// One JSON uplink (`schemas/uplink.json`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct JsonUplink {
    /// Format version, 1.
    pub v: u8,
    /// The id the device is registered under (protocol `mqtt`); must match the topic.
    pub device_id: String,
    /// Sequence number, increasing per message, checked against the replay window.
    pub seq: u32,
    /// An alarm kind (`sos`, `fall`, …) or `heartbeat`, `cancel`, `check_in`.
    pub kind: String,
    /// Device time, Unix seconds; 0 = unknown.
    pub ts: u32,
    /// Battery percentage.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub battery: Option<u8>,
    /// Position, if known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub loc: Option<JsonLocation>,
    /// Hex MAC over the canonical string.
    pub mac: String,
}

/// The JSON ACK on the device's downlink topic (`schemas/ack.json`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct JsonAck {
    /// Always `ack`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The acknowledged sequence number.
    pub seq: u32,
    /// `stored`, `duplicate` or `rejected`.
    pub status: String,
    /// Why it was rejected (`replay`), else empty.
    pub reason: String,
    /// Server time, Unix seconds.
    pub server_time: u32,
    /// Hex MAC over the ACK's canonical string.
    pub mac: String,
}

fn hmac_of(key: &[u8], text: &str) -> Option<Hmac<Sha256>> {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key).ok()?;
    mac.update(text.as_bytes());
    Some(mac)
}

/// The truncated hex MAC of `text` under `key` (empty when the key is unusable).
pub fn mac_hex(key: &[u8], text: &str) -> String {
    hmac_of(key, text)
        .map(|m| hex::encode(&m.finalize().into_bytes()[..MAC_LEN]))
        .unwrap_or_default()
}

fn opt<T: ToString>(v: Option<T>) -> String {
    v.map(|v| v.to_string()).unwrap_or_default()
}

impl JsonUplink {
    /// Parses and range-checks a payload (the MAC is checked by [`JsonUplink::verify`]).
    pub fn parse(payload: &[u8]) -> Result<JsonUplink, Reject> {
        if payload.len() > MAX_JSON_LEN {
            return Err(Reject::new(
                Reason::Oversized,
                format!("{} bytes > {MAX_JSON_LEN}", payload.len()),
            ));
        }
        let up: JsonUplink = serde_json::from_slice(payload)
            .map_err(|e| Reject::new(Reason::Malformed, format!("JSON uplink: {e}")))?;
        if up.v != 1 {
            return Err(Reject::new(
                Reason::Malformed,
                format!("unknown version {}", up.v),
            ));
        }
        if !super::topics::valid_id(&up.device_id) {
            return Err(Reject::new(
                Reason::Malformed,
                "device_id is not a valid id",
            ));
        }
        if up.battery.is_some_and(|b| b > 100) {
            return Err(Reject::new(Reason::Malformed, "battery over 100"));
        }
        if let Some(l) = up.loc
            && (l.lat_e6.unsigned_abs() > 90_000_000 || l.lon_e6.unsigned_abs() > 180_000_000)
        {
            return Err(Reject::new(Reason::Malformed, "location out of range"));
        }
        if !matches!(up.kind.as_str(), "heartbeat" | "cancel" | "check_in")
            && AlarmKind::from_name(&up.kind).is_none()
        {
            return Err(Reject::new(
                Reason::Malformed,
                format!(
                    "unknown kind {:?}",
                    up.kind.chars().take(32).collect::<String>()
                ),
            ));
        }
        Ok(up)
    }

    /// The canonical string the MAC covers.
    pub fn canonical(&self) -> String {
        format!(
            "v1|{}|{}|{}|{}|{}|{}|{}|{}",
            self.device_id,
            self.seq,
            self.kind,
            self.ts,
            opt(self.battery),
            opt(self.loc.map(|l| l.lat_e6)),
            opt(self.loc.map(|l| l.lon_e6)),
            opt(self.loc.map(|l| l.acc_m)),
        )
    }

    /// Sets `mac` from `key` (devices and tests).
    pub fn sign(&mut self, key: &[u8]) {
        self.mac = mac_hex(key, &self.canonical());
    }

    /// Checks the MAC in constant time.
    pub fn verify(&self, key: &[u8]) -> Result<(), Reject> {
        if key.len() != 32 {
            return Err(Reject::new(
                Reason::NoKey,
                "device has no 32-byte key registered",
            ));
        }
        let tag = hex::decode(&self.mac)
            .ok()
            .filter(|t| t.len() == MAC_LEN)
            .ok_or_else(|| Reject::new(Reason::BadMac, "mac is not 16 hex characters"))?;
        let mac = hmac_of(key, &self.canonical())
            .ok_or_else(|| Reject::new(Reason::NoKey, "unusable key"))?;
        mac.verify_truncated_left(&tag)
            .map_err(|_| Reject::new(Reason::BadMac, "MAC does not match"))
    }

    /// Heartbeat state, for `heartbeat` (and the battery/location any message reports).
    pub fn status(&self) -> DeviceStatus {
        DeviceStatus {
            battery_pct: self.battery,
            mains: None,
            signal_pct: None,
            location: self.loc.map(geo),
        }
    }

    /// The event to commit, or `None` for a heartbeat.
    pub fn event(&self, device: &DeviceAuth, now: Millis) -> Option<DeviceEvent> {
        let body = match self.kind.as_str() {
            "heartbeat" => return None,
            "cancel" => EventBody::Cancel,
            "check_in" => EventBody::CheckIn,
            other => EventBody::Alarm {
                kind: AlarmKind::from_name(other)?,
                location: self.loc.map(geo),
            },
        };
        Some(DeviceEvent {
            device_id: device.device_id,
            elder_id: device.elder_id,
            dedup_key: format!("seq:{}", self.seq),
            seq: Some(i64::from(self.seq)),
            device_time: (self.ts > 0).then(|| i64::from(self.ts) * 1000),
            received_at: now,
            raw_code: format!("mqtt:{}", self.kind),
            raw: None,
            body,
        })
    }
}

fn geo(l: JsonLocation) -> GeoPoint {
    GeoPoint {
        lat: f64::from(l.lat_e6) / 1e6,
        lon: f64::from(l.lon_e6) / 1e6,
        accuracy_m: (l.acc_m > 0).then_some(f32::from(l.acc_m)),
    }
}

impl JsonAck {
    /// The canonical string of an ACK to `device_id`.
    pub fn canonical(&self, device_id: &str) -> String {
        format!(
            "v1|ack|{device_id}|{}|{}|{}|{}",
            self.seq, self.status, self.reason, self.server_time
        )
    }

    /// A signed ACK.
    pub fn new(device_id: &str, key: &[u8], seq: u32, status: &str, reason: &str) -> JsonAck {
        let server_time = u32::try_from(crate::domain::now_millis() / 1000).unwrap_or(0);
        let mut ack = JsonAck {
            kind: "ack".into(),
            seq,
            status: status.into(),
            reason: reason.into(),
            server_time,
            mac: String::new(),
        };
        ack.mac = mac_hex(key, &ack.canonical(device_id));
        ack
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: [u8; 32] = [7; 32];

    fn sample() -> JsonUplink {
        let mut up = JsonUplink {
            v: 1,
            device_id: "btn-0042".into(),
            seq: 17,
            kind: "sos".into(),
            ts: 1_764_331_200,
            battery: Some(87),
            loc: Some(JsonLocation {
                lat_e6: 27_110_000,
                lon_e6: 114_980_000,
                acc_m: 15,
            }),
            mac: String::new(),
        };
        up.sign(&KEY);
        up
    }

    #[test]
    fn canonical_string_and_mac() {
        let up = sample();
        assert_eq!(
            up.canonical(),
            "v1|btn-0042|17|sos|1764331200|87|27110000|114980000|15"
        );
        assert_eq!(up.mac.len(), 16);
        up.verify(&KEY).expect("verifies");
        let bytes = serde_json::to_vec(&up).expect("json");
        let parsed = JsonUplink::parse(&bytes).expect("parses");
        parsed.verify(&KEY).expect("round trip verifies");
        let mut tampered = parsed.clone();
        tampered.seq = 18;
        assert_eq!(
            tampered.verify(&KEY).map_err(|r| r.reason),
            Err(Reason::BadMac)
        );
        assert_eq!(
            up.verify(&[8; 32]).map_err(|r| r.reason),
            Err(Reason::BadMac)
        );
    }

    #[test]
    fn optional_fields_are_empty_in_the_canonical_string() {
        let mut up = sample();
        up.battery = None;
        up.loc = None;
        up.kind = "heartbeat".into();
        assert_eq!(up.canonical(), "v1|btn-0042|17|heartbeat|1764331200||||");
    }

    #[test]
    fn bad_payloads_are_refused() {
        for bad in [
            &b"not json"[..],
            br#"{"v":2,"device_id":"a","seq":1,"kind":"sos","ts":0,"mac":"00"}"#,
            br#"{"v":1,"device_id":"a/b","seq":1,"kind":"sos","ts":0,"mac":"00"}"#,
            br#"{"v":1,"device_id":"a","seq":1,"kind":"party","ts":0,"mac":"00"}"#,
            br#"{"v":1,"device_id":"a","seq":-1,"kind":"sos","ts":0,"mac":"00"}"#,
            br#"{"v":1,"device_id":"a","seq":1,"kind":"sos","ts":0,"battery":101,"mac":"00"}"#,
        ] {
            assert_eq!(
                JsonUplink::parse(bad).map(|_| ()).map_err(|r| r.reason),
                Err(Reason::Malformed),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
        assert_eq!(
            JsonUplink::parse(&[b' '; 2000])
                .map(|_| ())
                .map_err(|r| r.reason),
            Err(Reason::Oversized)
        );
    }

    #[test]
    fn ack_mac() {
        let ack = JsonAck::new("btn-0042", &KEY, 17, "stored", "");
        assert_eq!(
            ack.mac,
            mac_hex(
                &KEY,
                &format!("v1|ack|btn-0042|17|stored||{}", ack.server_time)
            )
        );
    }

    /// Keeps the examples of `firmware-protocol/MQTT.md` true.
    #[test]
    fn the_documented_examples_verify() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("firmware-protocol");
        let doc = std::fs::read_to_string(root.join("MQTT.md")).expect("MQTT.md");
        let blocks: Vec<String> = doc
            .split("```json\n")
            .skip(1)
            .filter_map(|b| b.split("```").next())
            .map(|b| b.replace('\n', ""))
            .collect();
        let key: Vec<u8> = (0u8..32).collect();
        let up = JsonUplink::parse(blocks[0].as_bytes()).expect("uplink example parses");
        up.verify(&key).expect("uplink example MAC");
        assert!(doc.contains(&format!("canonical: {}", up.canonical())));
        let ack: JsonAck = serde_json::from_str(&blocks[1]).expect("ACK example");
        assert_eq!(ack.mac, mac_hex(&key, &ack.canonical(&up.device_id)));
        let push: serde_json::Value = serde_json::from_str(&blocks[2]).expect("push example");
        assert_eq!(push["type"], "offer");
        for schema in [
            "uplink.json",
            "ack.json",
            "responder-push.json",
            "receipt.json",
            "command.json",
        ] {
            let text = std::fs::read_to_string(root.join("schemas").join(schema)).expect("schema");
            let v: serde_json::Value = serde_json::from_str(&text).expect("schema is JSON");
            assert!(v["required"].is_array(), "{schema}");
        }
        let mut heartbeat = up.clone();
        heartbeat.seq = 18;
        heartbeat.kind = "heartbeat".into();
        heartbeat.battery = None;
        heartbeat.loc = None;
        assert!(doc.contains(&format!("signs `{}`", heartbeat.canonical())));
    }
}
