//! The messages a device and the server exchange. All are `Copy` and own their data, so a decoded
//! message outlives the receive buffer. Their byte layouts live in `body.rs` and `PROTOCOL.md`.

use crate::kinds::{AckStatus, AlarmKind, CommandKind, CommandOutcome, RejectReason, ServiceKind};
use crate::location::Location;

crate::kinds::wire_enum! {
    /// The message type byte. Codes below `0x80` travel device → server, `0x80` and up server → device.
    MessageType {
        /// [`Hello`]: device → server.
        Hello = 0x01, "hello";
        /// [`Heartbeat`]: device → server.
        Heartbeat = 0x02, "heartbeat";
        /// [`Alarm`]: device → server.
        Alarm = 0x03, "alarm";
        /// [`Cancel`]: device → server.
        Cancel = 0x04, "cancel";
        /// [`Message::CheckIn`]: device → server.
        CheckIn = 0x05, "check_in";
        /// [`ServiceRequest`]: device → server.
        ServiceRequest = 0x06, "service_request";
        /// [`CommandResult`]: device → server.
        CommandResult = 0x07, "command_result";
        /// [`Ack`]: server → device.
        Ack = 0x81, "ack";
        /// [`Command`]: server → device.
        Command = 0x82, "command";
    }
}

impl MessageType {
    /// Which way this type travels, read from the code's top bit.
    pub const fn direction(self) -> Direction {
        if self.code() & 0x80 == 0 {
            Direction::Uplink
        } else {
            Direction::Downlink
        }
    }
}

/// Which way a message travels. A receiver must drop frames of the other direction: both directions
/// share the device's key, and the type byte (inside the MAC) is what stops a frame being reflected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    /// Device → server.
    Uplink,
    /// Server → device.
    Downlink,
}

/// A device introduces itself after boot or reconnecting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Hello {
    /// Firmware version, opaque to the protocol; by convention `major << 16 | minor << 8 | patch`.
    pub firmware_version: u32,
    /// The vendor's model code.
    pub model: u16,
    /// The device's configured heartbeat interval in seconds (at least 1).
    pub heartbeat_interval_s: u32,
}

/// The periodic "still alive" report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Heartbeat {
    /// Battery charge 0–100 %, `None` if unknown or there is no battery (wire `0xFF`).
    pub battery_percent: Option<u8>,
    /// True while the device runs on mains power.
    pub mains_power: bool,
    /// Radio signal quality 0–100 %, `None` if unknown (wire `0xFF`).
    pub signal_percent: Option<u8>,
    /// The last position fix, if the device has one.
    pub location: Option<Location>,
}

/// Something happened that needs a person: a button press, a detector, a fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Alarm {
    /// What raised the alarm.
    pub kind: AlarmKind,
    /// Where, if the device knows.
    pub location: Option<Location>,
}

/// "I'm OK": the elder cancels an alarm raised by mistake.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Cancel {
    /// The sequence number of the alarm frame being cancelled.
    pub alarm_seq: u32,
}

/// The elder asks for a non-emergency service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ServiceRequest {
    /// The service asked for.
    pub kind: ServiceKind,
}

/// The device's answer to a [`Command`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CommandResult {
    /// The `command_id` of the command answered.
    pub command_id: u32,
    /// What came of it.
    pub outcome: CommandOutcome,
}

/// The server's answer to every authenticated device frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Ack {
    /// The sequence number of the device frame answered.
    pub acked_seq: u32,
    /// Stored, duplicate or rejected.
    pub status: AckStatus,
    /// Why it was rejected: `None` exactly when `status` is not `Rejected`.
    pub reason: RejectReason,
    /// The server's clock in Unix seconds, so that a device without a clock can set it.
    pub server_time: u32,
}

/// The server asks the device to do something.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Command {
    /// Chosen by the server, unique per device; retransmissions keep it, so a device runs it once.
    pub command_id: u32,
    /// What to do.
    pub kind: CommandKind,
    /// Kind-specific argument (heartbeat seconds for `set_heartbeat`), `0` when unused.
    pub argument: u32,
}

/// One message: the body of a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Message {
    /// Device introduces itself.
    Hello(Hello),
    /// Periodic status.
    Heartbeat(Heartbeat),
    /// An alarm.
    Alarm(Alarm),
    /// "I'm OK" after a press.
    Cancel(Cancel),
    /// The daily "I'm OK" press; no body.
    CheckIn,
    /// A non-emergency service request.
    ServiceRequest(ServiceRequest),
    /// The answer to a command.
    CommandResult(CommandResult),
    /// Server → device: acknowledgement of a device frame.
    Ack(Ack),
    /// Server → device: a command.
    Command(Command),
}

impl Message {
    /// The type byte this message is sent with.
    pub const fn message_type(&self) -> MessageType {
        match self {
            Message::Hello(_) => MessageType::Hello,
            Message::Heartbeat(_) => MessageType::Heartbeat,
            Message::Alarm(_) => MessageType::Alarm,
            Message::Cancel(_) => MessageType::Cancel,
            Message::CheckIn => MessageType::CheckIn,
            Message::ServiceRequest(_) => MessageType::ServiceRequest,
            Message::CommandResult(_) => MessageType::CommandResult,
            Message::Ack(_) => MessageType::Ack,
            Message::Command(_) => MessageType::Command,
        }
    }

    /// Which way this message travels.
    pub const fn direction(&self) -> Direction {
        self.message_type().direction()
    }

    /// The name of the first field holding a value the protocol cannot carry, if any. Both the
    /// encoder and the decoder apply these rules.
    pub(crate) const fn invalid_field(&self) -> Option<&'static str> {
        match self {
            Message::Hello(h) if h.heartbeat_interval_s == 0 => Some("heartbeat_interval"),
            Message::Heartbeat(h) => {
                if !percent_ok(h.battery_percent) {
                    Some("battery_percent")
                } else if !percent_ok(h.signal_percent) {
                    Some("signal_percent")
                } else {
                    location_invalid(&h.location)
                }
            }
            Message::Alarm(a) => location_invalid(&a.location),
            Message::Ack(a) => {
                let rejected = matches!(a.status, AckStatus::Rejected);
                let has_reason = !matches!(a.reason, RejectReason::None);
                if rejected != has_reason {
                    Some("reject_reason")
                } else {
                    None
                }
            }
            _ => None,
        }
    }
}

const fn percent_ok(p: Option<u8>) -> bool {
    match p {
        Some(v) => v <= 100,
        None => true,
    }
}

const fn location_invalid(l: &Option<Location>) -> Option<&'static str> {
    match l {
        Some(l) => l.invalid_field(),
        None => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn direction_follows_the_top_bit() {
        for ty in MessageType::ALL {
            let down = matches!(ty, MessageType::Ack | MessageType::Command);
            assert_eq!(ty.direction() == Direction::Downlink, down, "{ty}");
        }
        assert_eq!(Message::CheckIn.direction(), Direction::Uplink);
    }

    #[test]
    fn ack_reason_must_match_status() {
        let ack = |status, reason| {
            Message::Ack(Ack {
                acked_seq: 1,
                status,
                reason,
                server_time: 0,
            })
            .invalid_field()
        };
        assert_eq!(ack(AckStatus::Stored, RejectReason::None), None);
        assert_eq!(ack(AckStatus::Duplicate, RejectReason::None), None);
        assert_eq!(ack(AckStatus::Rejected, RejectReason::Replay), None);
        assert_eq!(
            ack(AckStatus::Rejected, RejectReason::None),
            Some("reject_reason")
        );
        assert_eq!(
            ack(AckStatus::Stored, RejectReason::Invalid),
            Some("reject_reason")
        );
    }

    #[test]
    fn heartbeat_ranges() {
        let hb = Heartbeat {
            battery_percent: Some(100),
            mains_power: false,
            signal_percent: None,
            location: None,
        };
        assert_eq!(Message::Heartbeat(hb).invalid_field(), None);
        let battery = Heartbeat {
            battery_percent: Some(101),
            ..hb
        };
        assert_eq!(
            Message::Heartbeat(battery).invalid_field(),
            Some("battery_percent")
        );
        let signal = Heartbeat {
            signal_percent: Some(200),
            ..hb
        };
        assert_eq!(
            Message::Heartbeat(signal).invalid_field(),
            Some("signal_percent")
        );
        let hello = Hello {
            firmware_version: 1,
            model: 1,
            heartbeat_interval_s: 0,
        };
        assert_eq!(
            Message::Hello(hello).invalid_field(),
            Some("heartbeat_interval")
        );
    }
}
