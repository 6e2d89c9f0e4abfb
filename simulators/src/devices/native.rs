//! The native protocol (`firmware-protocol/PROTOCOL.md`), over TCP or as MQTT payloads on
//! `<prefix>/dev/<id>/up`, encoded and verified with `onekey-protocol`, the server's own codec.
//!
//! Everything maps one to one: alarms by kind (a kind the protocol does not name becomes `sos`),
//! `Cancel` names the last alarm's sequence number, check-ins and service requests are their own
//! messages.

use bytes::{Buf, BytesMut};
use onekey_protocol::{
    AckStatus, Alarm, AlarmKind, Cancel, DecodeError, Header, Heartbeat, Hello, Key, Location,
    MAX_FRAME_LEN, Message, ServiceKind, ServiceRequest,
};

use super::wire::{AckKey, Out, Reply, Unsupported, Wire, secs};
use crate::clock::Ms;
use crate::plan::Action;

/// A native device.
pub struct NativeWire {
    device_id: u64,
    key: Key,
    seq: u32,
    last_alarm: Option<u32>,
    location: Location,
}

impl NativeWire {
    /// Device `device_id` with `key`, its first sequence number `seq`.
    pub fn new(device_id: u64, key: Key, seq: u32) -> NativeWire {
        NativeWire {
            device_id,
            key,
            seq,
            last_alarm: None,
            location: Location {
                lat_e6: 27_110_000 + (device_id % 20_000) as i32,
                lon_e6: 114_980_000 + (device_id % 17_000) as i32,
                accuracy_m: 25,
            },
        }
    }

    fn frame(&mut self, message: Message, now: Ms) -> Out {
        let seq = self.seq;
        self.seq = self.seq.wrapping_add(1);
        let header = Header {
            device_id: self.device_id,
            seq,
            timestamp: u32::try_from(secs(now)).unwrap_or(0),
        };
        let mut buf = [0u8; MAX_FRAME_LEN];
        let n = onekey_protocol::encode(&header, &message, &self.key, &mut buf).unwrap_or(0);
        Out {
            bytes: buf[..n].to_vec(),
            key: AckKey::Seq(seq),
        }
    }
}

/// The alarm kind of a plan's kind name; `sos` for names the protocol does not have.
pub fn alarm_kind(kind: &str) -> AlarmKind {
    AlarmKind::from_name(kind).unwrap_or(AlarmKind::Sos)
}

impl Wire for NativeWire {
    fn hello(&mut self, now: Ms) -> Option<Out> {
        let hello = Message::Hello(Hello {
            firmware_version: 0x01_02_00,
            model: 1,
            heartbeat_interval_s: 1800,
        });
        Some(self.frame(hello, now))
    }

    fn heartbeat(&mut self, battery: u8, now: Ms) -> Option<Out> {
        let hb = Message::Heartbeat(Heartbeat {
            battery_percent: Some(battery.min(100)),
            mains_power: true,
            signal_percent: Some(75),
            location: None,
        });
        Some(self.frame(hb, now))
    }

    fn action(&mut self, action: &Action, _battery: u8, now: Ms) -> Result<Out, Unsupported> {
        let message = match action {
            Action::Alarm { kind } => {
                let kind = alarm_kind(kind);
                let location =
                    matches!(kind, AlarmKind::Fall | AlarmKind::Sos).then_some(self.location);
                Message::Alarm(Alarm { kind, location })
            }
            Action::Cancel => Message::Cancel(Cancel {
                alarm_seq: self.last_alarm.ok_or(Unsupported)?,
            }),
            Action::CheckIn => Message::CheckIn,
            Action::Service { kind } => Message::ServiceRequest(ServiceRequest {
                kind: ServiceKind::from_name(kind).unwrap_or(ServiceKind::DailyCare),
            }),
            Action::GoSilent => return Err(Unsupported),
        };
        let out = self.frame(message, now);
        if let (Action::Alarm { .. }, AckKey::Seq(seq)) = (action, out.key) {
            self.last_alarm = Some(seq);
        }
        Ok(out)
    }

    fn reply(&mut self, buf: &mut BytesMut) -> Option<Reply> {
        loop {
            match onekey_protocol::decode(buf) {
                Ok((unverified, used)) => {
                    let verified = unverified.verify(&self.key);
                    buf.advance(used);
                    return Some(match verified.map(|f| f.message) {
                        Ok(Message::Ack(a)) => Reply::Ack {
                            key: AckKey::Seq(a.acked_seq),
                            ok: a.status != AckStatus::Rejected,
                            server_s: Some(i64::from(a.server_time)),
                        },
                        _ => Reply::Other,
                    });
                }
                Err(DecodeError::Incomplete { .. }) => return None,
                // Garbage: skip a byte and look for the next frame.
                Err(_) if !buf.is_empty() => buf.advance(1),
                Err(_) => return None,
            }
        }
    }
}
