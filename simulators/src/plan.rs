//! What the simulated world will do, decided in advance from a seed: for every device, the
//! timeline of what it sends; for every person, their parameters. The same seed gives the same
//! plan, so a day can be run again and compared.

use serde::{Deserialize, Serialize};

use crate::clock::Ms;

/// How a simulated device reaches the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum Link {
    /// The native protocol over TCP.
    NativeTcp,
    /// Native binary frames over MQTT (`<prefix>/dev/<id>/up`).
    NativeMqtt,
    /// The JSON uplink over MQTT (`<prefix>/dev/<id>/up/json`).
    MqttJson,
    /// GT06 over TCP.
    Gt06,
    /// 3G watch protocol over TCP.
    Watch,
    /// H02 over TCP.
    H02,
    /// SIA DC-09, unencrypted, over TCP.
    Sia,
    /// SIA DC-09 encrypted with the account's AES key, over TCP.
    SiaAes,
}

impl Link {
    /// Every link, in report order.
    pub const ALL: [Link; 8] = [
        Link::NativeTcp,
        Link::NativeMqtt,
        Link::MqttJson,
        Link::Gt06,
        Link::Watch,
        Link::H02,
        Link::Sia,
        Link::SiaAes,
    ];

    /// Stable name.
    pub fn as_str(self) -> &'static str {
        match self {
            Link::NativeTcp => "native_tcp",
            Link::NativeMqtt => "native_mqtt",
            Link::MqttJson => "mqtt_json",
            Link::Gt06 => "gt06",
            Link::Watch => "watch",
            Link::H02 => "h02",
            Link::Sia => "sia",
            Link::SiaAes => "sia_aes",
        }
    }
}

/// Something a device sends at a planned time (clock ms).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "do")]
pub enum Action {
    /// An alarm of `kind` (`sos`, `fall`, `smoke`, `gas`, `inactivity`, `low_battery`,
    /// `power_loss`, `tamper`, …), as the protocol can express it.
    Alarm {
        /// The alarm kind (the server's vocabulary).
        kind: String,
    },
    /// "I'm OK": cancels the device's last alarm.
    Cancel,
    /// The daily check-in ("报平安").
    CheckIn,
    /// A service request (the green key): `daily_care`, `housekeeping`, `emotional_care`,
    /// `health_consultation`.
    Service {
        /// The service asked for.
        kind: String,
    },
    /// The device stops sending anything (battery dead, unplugged, broken) until the end.
    GoSilent,
}

/// One device's day.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DevicePlan {
    /// The elder's reference in the dataset.
    pub elder: String,
    /// How it connects.
    pub link: Link,
    /// Its identity on the wire (device id, IMEI, watch id, DC-09 account, MQTT id).
    pub ident: String,
    /// Its key (native and MQTT JSON: 32 bytes; DC-09 AES: 16, 24 or 32), hex.
    pub key_hex: Option<String>,
    /// Heartbeat period on the clock, ms.
    pub heartbeat_ms: Ms,
    /// Battery at the start of the day, per cent; it drains with every heartbeat.
    pub battery_start: u8,
    /// What it sends and when, in time order.
    pub actions: Vec<(Ms, Action)>,
}

/// What a device saw of one message it sent (for the report).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Sent {
    /// The device's identity.
    pub ident: String,
    /// Its link.
    pub link: Link,
    /// The action.
    pub action: Action,
    /// Planned time on the clock.
    pub planned_at: Ms,
    /// When the first copy went out (clock ms).
    pub sent_at: Ms,
    /// When the server's ACK for it arrived (clock ms), if it did.
    pub acked_at: Option<Ms>,
    /// Copies sent (1 = no retry).
    pub sends: u32,
    /// Wall-clock frame→ACK latency of the copy that was ACKed, microseconds.
    pub ack_us: Option<u64>,
}
