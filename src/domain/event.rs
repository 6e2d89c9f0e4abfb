use bytes::Bytes;
use serde::{Deserialize, Serialize};

use super::{AlarmKind, Millis, ServiceKind};

/// A WGS-84 position with an optional accuracy.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct GeoPoint {
    /// Degrees north.
    pub lat: f64,
    /// Degrees east.
    pub lon: f64,
    /// Accuracy radius in metres, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accuracy_m: Option<f32>,
}

/// Something a device reported that must be stored durably before the device is answered.
///
/// Every protocol adapter turns its frames into these; from here on the path is the same for all.
#[derive(Debug, Clone, PartialEq)]
pub struct DeviceEvent {
    /// The device's row id.
    pub device_id: i64,
    /// The elder the device belongs to, if assigned.
    pub elder_id: Option<i64>,
    /// Identifies a retry: the same device sending the same key twice is one event. The native
    /// protocol uses its sequence number; other protocols their serial plus a digest of the frame.
    pub dedup_key: String,
    /// The native protocol's sequence number, persisted with the event for the replay window.
    pub seq: Option<i64>,
    /// The device's own timestamp, when it has a clock.
    pub device_time: Option<Millis>,
    /// When the frame was decoded at the socket.
    pub received_at: Millis,
    /// The protocol's own code for what happened (`native:sos`, `gt06:0x01`, `cid:E101`…).
    pub raw_code: String,
    /// The frame's bytes as they came in, when a frame carried the event; kept only if the
    /// store refuses the event for good (quarantine).
    pub raw: Option<Bytes>,
    /// What happened.
    pub body: EventBody,
}

impl DeviceEvent {
    /// Whose incidents this event may open or join: its elder, or (negated) its device when it
    /// has no elder. Writers order themselves by it (`store::Order::Owners`).
    pub fn owner_key(&self) -> i64 {
        self.elder_id.unwrap_or(-self.device_id)
    }
}

/// What a [`DeviceEvent`] says.
#[derive(Debug, Clone, PartialEq)]
pub enum EventBody {
    /// An alarm; opens an incident or joins the elder's open one.
    Alarm {
        /// What raised it.
        kind: AlarmKind,
        /// Where, when known.
        location: Option<GeoPoint>,
    },
    /// "I'm OK" after a press: stops offers, the incident stays for an operator to confirm.
    Cancel,
    /// The daily check-in.
    CheckIn,
    /// A non-emergency service request.
    ServiceRequest {
        /// Which service.
        kind: ServiceKind,
    },
    /// A condition the device reported earlier has cleared.
    Restore,
    /// The device's answer to a server command.
    CommandResult {
        /// The command it answers, when the protocol numbers commands.
        command_id: Option<i64>,
        /// Whether the device carried it out.
        ok: bool,
        /// The device's text or code.
        text: String,
    },
}

impl EventBody {
    /// Short stable name, used in the database and in metrics labels.
    pub fn kind_name(&self) -> &'static str {
        match self {
            EventBody::Alarm { .. } => "alarm",
            EventBody::Cancel => "cancel",
            EventBody::CheckIn => "check_in",
            EventBody::ServiceRequest { .. } => "service_request",
            EventBody::Restore => "restore",
            EventBody::CommandResult { .. } => "command_result",
        }
    }
}

/// A device's latest state from a heartbeat. Not an event: kept in memory and written in batches.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct DeviceStatus {
    /// Battery percent.
    pub battery_pct: Option<u8>,
    /// On mains power / charging.
    pub mains: Option<bool>,
    /// Signal strength 0–100.
    pub signal_pct: Option<u8>,
    /// Last known position.
    pub location: Option<GeoPoint>,
}
