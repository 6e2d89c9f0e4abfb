//! Byte layout of each message body (big-endian, no padding). `PROTOCOL.md` holds the same tables.
//!
//! An optional location is a presence byte (`0` absent, `1` present) followed, when present, by the
//! 10 bytes of a [`Location`]. A body must be exactly as long as its fields: no trailing bytes.

use crate::error::DecodeError;
use crate::kinds::{AckStatus, AlarmKind, CommandKind, CommandOutcome, RejectReason, ServiceKind};
use crate::location::Location;
use crate::message::{
    Ack, Alarm, Cancel, Command, CommandResult, Heartbeat, Hello, Message, MessageType,
    ServiceRequest,
};
use crate::wire::{Reader, Writer};

/// Wire value of an unknown percentage.
const UNKNOWN_PERCENT: u8 = 0xFF;

impl Message {
    /// The body's length in bytes.
    pub(crate) const fn body_len(&self) -> usize {
        match self {
            Message::Hello(_) => 10,
            Message::Heartbeat(h) => 3 + location_len(&h.location),
            Message::Alarm(a) => 1 + location_len(&a.location),
            Message::Cancel(_) => 4,
            Message::CheckIn => 0,
            Message::ServiceRequest(_) => 1,
            Message::CommandResult(_) => 5,
            Message::Ack(_) => 10,
            Message::Command(_) => 9,
        }
    }

    /// Writes the body; `None` if `w` runs out of room.
    pub(crate) fn write_body(&self, w: &mut Writer<'_>) -> Option<()> {
        match self {
            Message::Hello(h) => {
                w.u32(h.firmware_version)?;
                w.u16(h.model)?;
                w.u32(h.heartbeat_interval_s)
            }
            Message::Heartbeat(h) => {
                w.u8(h.battery_percent.unwrap_or(UNKNOWN_PERCENT))?;
                w.u8(u8::from(h.mains_power))?;
                w.u8(h.signal_percent.unwrap_or(UNKNOWN_PERCENT))?;
                write_location(&h.location, w)
            }
            Message::Alarm(a) => {
                w.u8(a.kind.code())?;
                write_location(&a.location, w)
            }
            Message::Cancel(c) => w.u32(c.alarm_seq),
            Message::CheckIn => Some(()),
            Message::ServiceRequest(s) => w.u8(s.kind.code()),
            Message::CommandResult(r) => {
                w.u32(r.command_id)?;
                w.u8(r.outcome.code())
            }
            Message::Ack(a) => {
                w.u32(a.acked_seq)?;
                w.u8(a.status.code())?;
                w.u8(a.reason.code())?;
                w.u32(a.server_time)
            }
            Message::Command(c) => {
                w.u32(c.command_id)?;
                w.u8(c.kind.code())?;
                w.u32(c.argument)
            }
        }
    }

    /// Reads a body of type `ty`, which must be exactly `body.len()` bytes long.
    pub(crate) fn read_body(ty: MessageType, body: &[u8]) -> Result<Message, DecodeError> {
        let mut r = BodyReader {
            r: Reader::new(body),
            ty,
            len: body.len(),
        };
        let message = match ty {
            MessageType::Hello => Message::Hello(Hello {
                firmware_version: r.u32()?,
                model: r.u16()?,
                heartbeat_interval_s: r.u32()?,
            }),
            MessageType::Heartbeat => Message::Heartbeat(Heartbeat {
                battery_percent: r.percent("battery_percent")?,
                mains_power: r.flag("mains_power")?,
                signal_percent: r.percent("signal_percent")?,
                location: r.location()?,
            }),
            MessageType::Alarm => Message::Alarm(Alarm {
                kind: r.code("alarm_kind", AlarmKind::from_code)?,
                location: r.location()?,
            }),
            MessageType::Cancel => Message::Cancel(Cancel {
                alarm_seq: r.u32()?,
            }),
            MessageType::CheckIn => Message::CheckIn,
            MessageType::ServiceRequest => Message::ServiceRequest(ServiceRequest {
                kind: r.code("service_kind", ServiceKind::from_code)?,
            }),
            MessageType::CommandResult => Message::CommandResult(CommandResult {
                command_id: r.u32()?,
                outcome: r.code("outcome", CommandOutcome::from_code)?,
            }),
            MessageType::Ack => Message::Ack(Ack {
                acked_seq: r.u32()?,
                status: r.code("ack_status", AckStatus::from_code)?,
                reason: r.code("reject_reason", RejectReason::from_code)?,
                server_time: r.u32()?,
            }),
            MessageType::Command => Message::Command(Command {
                command_id: r.u32()?,
                kind: r.code("command_kind", CommandKind::from_code)?,
                argument: r.u32()?,
            }),
        };
        if !r.r.is_empty() {
            return Err(r.bad_length());
        }
        if let Some(field) = message.invalid_field() {
            return Err(DecodeError::BadField { field });
        }
        Ok(message)
    }
}

const fn location_len(l: &Option<Location>) -> usize {
    match l {
        Some(_) => 1 + Location::WIRE_LEN,
        None => 1,
    }
}

fn write_location(l: &Option<Location>, w: &mut Writer<'_>) -> Option<()> {
    match l {
        None => w.u8(0),
        Some(l) => {
            w.u8(1)?;
            w.i32(l.lat_e6)?;
            w.i32(l.lon_e6)?;
            w.u16(l.accuracy_m)
        }
    }
}

/// A [`Reader`] that turns running short into [`DecodeError::BadLength`] and bad codes into
/// [`DecodeError::BadField`].
struct BodyReader<'a> {
    r: Reader<'a>,
    ty: MessageType,
    len: usize,
}

impl BodyReader<'_> {
    fn bad_length(&self) -> DecodeError {
        DecodeError::BadLength {
            message_type: self.ty,
            body_len: self.len,
        }
    }

    fn u8(&mut self) -> Result<u8, DecodeError> {
        self.r.u8().ok_or_else(|| self.bad_length())
    }

    fn u16(&mut self) -> Result<u16, DecodeError> {
        self.r.u16().ok_or_else(|| self.bad_length())
    }

    fn u32(&mut self) -> Result<u32, DecodeError> {
        self.r.u32().ok_or_else(|| self.bad_length())
    }

    fn i32(&mut self) -> Result<i32, DecodeError> {
        self.r.i32().ok_or_else(|| self.bad_length())
    }

    /// A one-byte code looked up with `from_code`.
    fn code<T>(
        &mut self,
        field: &'static str,
        from_code: fn(u8) -> Option<T>,
    ) -> Result<T, DecodeError> {
        from_code(self.u8()?).ok_or(DecodeError::BadField { field })
    }

    /// A boolean byte: `0` or `1`, nothing else.
    fn flag(&mut self, field: &'static str) -> Result<bool, DecodeError> {
        match self.u8()? {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(DecodeError::BadField { field }),
        }
    }

    /// A percentage with `0xFF` for unknown (the range is checked with the other field rules).
    fn percent(&mut self, field: &'static str) -> Result<Option<u8>, DecodeError> {
        match self.u8()? {
            UNKNOWN_PERCENT => Ok(None),
            v if v <= 100 => Ok(Some(v)),
            _ => Err(DecodeError::BadField { field }),
        }
    }

    fn location(&mut self) -> Result<Option<Location>, DecodeError> {
        if !self.flag("has_location")? {
            return Ok(None);
        }
        Ok(Some(Location {
            lat_e6: self.i32()?,
            lon_e6: self.i32()?,
            accuracy_m: self.u16()?,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bad(ty: MessageType, body: &[u8]) -> DecodeError {
        Message::read_body(ty, body).unwrap_err()
    }

    #[test]
    fn reads_a_located_alarm() {
        let body = [
            0x02, 0x01, 0x01, 0x9D, 0xAA, 0x70, 0x06, 0xDA, 0x7F, 0x00, 0x00, 0x0F,
        ];
        let m = Message::read_body(MessageType::Alarm, &body).unwrap();
        let want = Message::Alarm(Alarm {
            kind: AlarmKind::Fall,
            location: Some(Location {
                lat_e6: 27_110_000,
                lon_e6: 114_982_656,
                accuracy_m: 15,
            }),
        });
        assert_eq!(m, want);
        assert_eq!(want.body_len(), body.len());
    }

    #[test]
    fn wrong_lengths_are_bad_length() {
        let short = DecodeError::BadLength {
            message_type: MessageType::Cancel,
            body_len: 3,
        };
        assert_eq!(bad(MessageType::Cancel, &[0, 0, 1]), short);
        let long = DecodeError::BadLength {
            message_type: MessageType::CheckIn,
            body_len: 1,
        };
        assert_eq!(bad(MessageType::CheckIn, &[0]), long);
        // A location announced but missing.
        assert!(matches!(
            bad(MessageType::Alarm, &[0x01, 0x01]),
            DecodeError::BadLength { .. }
        ));
        // A location given but not announced.
        assert!(matches!(
            bad(
                MessageType::Alarm,
                &[0x01, 0x00, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]
            ),
            DecodeError::BadLength { .. }
        ));
    }

    #[test]
    fn bad_codes_name_their_field() {
        let field = |ty, body: &[u8]| match bad(ty, body) {
            DecodeError::BadField { field } => field,
            other => panic!("{other:?}"),
        };
        assert_eq!(field(MessageType::Alarm, &[0x00, 0x00]), "alarm_kind");
        assert_eq!(field(MessageType::Alarm, &[0x01, 0x02]), "has_location");
        assert_eq!(field(MessageType::ServiceRequest, &[0x09]), "service_kind");
        assert_eq!(
            field(MessageType::Heartbeat, &[101, 0, 0, 0]),
            "battery_percent"
        );
        assert_eq!(field(MessageType::Heartbeat, &[50, 2, 0, 0]), "mains_power");
        assert_eq!(
            field(MessageType::Heartbeat, &[50, 1, 0xFE, 0]),
            "signal_percent"
        );
        assert_eq!(
            field(MessageType::CommandResult, &[0, 0, 0, 1, 9]),
            "outcome"
        );
        assert_eq!(
            field(MessageType::Command, &[0, 0, 0, 1, 0, 0, 0, 0, 0]),
            "command_kind"
        );
        assert_eq!(
            field(MessageType::Ack, &[0, 0, 0, 1, 3, 0, 0, 0, 0, 0]),
            "ack_status"
        );
        assert_eq!(
            field(MessageType::Ack, &[0, 0, 0, 1, 2, 9, 0, 0, 0, 0]),
            "reject_reason"
        );
        assert_eq!(
            field(MessageType::Ack, &[0, 0, 0, 1, 0, 1, 0, 0, 0, 0]),
            "reject_reason"
        );
        assert_eq!(
            field(MessageType::Hello, &[0, 1, 0, 0, 0, 7, 0, 0, 0, 0]),
            "heartbeat_interval"
        );
        let north_of_the_pole = [0x01, 0x01, 0x05, 0x5D, 0x4A, 0x81, 0, 0, 0, 0, 0, 0];
        assert_eq!(field(MessageType::Alarm, &north_of_the_pole), "latitude");
    }

    #[test]
    fn unknown_percent_is_none() {
        let m = Message::read_body(MessageType::Heartbeat, &[0xFF, 1, 0xFF, 0]).unwrap();
        let Message::Heartbeat(h) = m else {
            panic!("{m:?}")
        };
        assert_eq!(h.battery_percent, None);
        assert_eq!(h.signal_percent, None);
        assert!(h.mains_power);
    }
}
