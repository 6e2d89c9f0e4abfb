//! The native OneKey protocol (`firmware-protocol/PROTOCOL.md`): authenticated binary frames.
//!
//! Every frame carries the device id in clear, so the connection can look up the device's key; the
//! adapter then checks the HMAC tag, and the connection claims the sequence number in the device's
//! durable replay window (the store's, shared by every instance). A retry of a recent frame (same
//! sequence number) is handled again: the store recognises the event and the device gets an ACK
//! marked `duplicate`; a repeated heartbeat changes nothing. A sequence number older than the window
//! is refused with a `rejected/replay` ACK and the connection closes.

use bytes::{Buf, Bytes, BytesMut};
use tokio_util::codec::{Decoder, Encoder};

use onekey_protocol::{
    Ack, AckStatus, CommandKind, DecodeError, Header, Key, MAX_FRAME_LEN, Message, RejectReason,
    SeqClass,
};

use super::{Adapter, DeviceAuth, Handled, Reason, Reject};
use crate::domain::{DeviceEvent, DeviceStatus, EventBody, GeoPoint, Millis};
use crate::notify::{CommandError, DeviceCommand};
use crate::store::{StoreOutcome, Stored};

/// The native protocol adapter.
#[derive(Debug, Default, Clone, Copy)]
pub struct Native;

/// Cuts native frames out of a byte stream using the length in their header.
#[derive(Debug)]
pub struct NativeCodec {
    max: usize,
}

impl Decoder for NativeCodec {
    type Item = Bytes;
    type Error = std::io::Error;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Bytes>, std::io::Error> {
        if src.is_empty() {
            return Ok(None);
        }
        match onekey_protocol::frame_len(src) {
            Ok(len) if len > self.max => Err(invalid(format!(
                "frame of {len} bytes exceeds {}",
                self.max
            ))),
            Ok(len) if src.len() >= len => Ok(Some(src.split_to(len).freeze())),
            Ok(len) => {
                src.reserve(len - src.len());
                Ok(None)
            }
            Err(DecodeError::Incomplete { .. }) => Ok(None),
            Err(e) => Err(invalid(format!("{}: {e}", e.as_str()))),
        }
    }
}

impl Encoder<Bytes> for NativeCodec {
    type Error = std::io::Error;

    fn encode(&mut self, item: Bytes, dst: &mut BytesMut) -> Result<(), std::io::Error> {
        dst.extend_from_slice(item.chunk());
        Ok(())
    }
}

fn invalid(msg: String) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, msg)
}

/// What the reply needs: the sequence number to echo, or a fixed status.
#[derive(Debug)]
pub struct PendingAck {
    seq: u32,
    fixed: Option<AckStatus>,
    heartbeat: bool,
}

fn key_of(device: &DeviceAuth) -> Result<Key, Reject> {
    Key::try_from(device.secret.as_slice())
        .map_err(|_| Reject::new(Reason::NoKey, "device has no 32-byte key registered"))
}

fn geo(l: onekey_protocol::Location) -> GeoPoint {
    GeoPoint {
        lat: l.lat(),
        lon: l.lon(),
        accuracy_m: (l.accuracy_m > 0).then_some(f32::from(l.accuracy_m)),
    }
}

/// Encodes a server frame to `device`.
fn encode_downlink(device: &DeviceAuth, message: &Message) -> Option<Bytes> {
    let key = Key::try_from(device.secret.as_slice()).ok()?;
    let device_id = device.ident.parse().ok()?;
    let now = u32::try_from(crate::domain::now_millis() / 1000).unwrap_or(0);
    let seq = device
        .downlink_seq
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let header = Header {
        device_id,
        seq,
        timestamp: now,
    };
    let mut buf = [0u8; MAX_FRAME_LEN];
    let n = onekey_protocol::encode(&header, message, &key, &mut buf).ok()?;
    Some(Bytes::copy_from_slice(&buf[..n]))
}

fn ack(device: &DeviceAuth, seq: u32, status: AckStatus, reason: RejectReason) -> Option<Bytes> {
    let server_time = u32::try_from(crate::domain::now_millis() / 1000).unwrap_or(0);
    encode_downlink(
        device,
        &Message::Ack(Ack {
            acked_seq: seq,
            status,
            reason,
            server_time,
        }),
    )
}

impl Adapter for Native {
    const PROTOCOL: &'static str = "native";
    type Frame = Bytes;
    type Codec = NativeCodec;
    type Session = ();
    type Pending = PendingAck;

    fn codec(&self, max_frame: usize) -> NativeCodec {
        NativeCodec {
            max: max_frame.min(MAX_FRAME_LEN),
        }
    }

    fn session(&self) {}

    fn identity(&self, frame: &Bytes, _: &mut ()) -> Result<Option<String>, Reject> {
        let (unverified, _) = onekey_protocol::decode(frame)
            .map_err(|e| Reject::new(Reason::Malformed, e.to_string()))?;
        Ok(Some(unverified.device_id().to_string()))
    }

    fn handle(
        &self,
        frame: &Bytes,
        device: &DeviceAuth,
        _: &mut (),
        now: Millis,
    ) -> Result<Handled<PendingAck>, Reject> {
        let (unverified, _) = onekey_protocol::decode(frame)
            .map_err(|e| Reject::new(Reason::Malformed, e.to_string()))?;
        let verified = unverified
            .verify(&key_of(device)?)
            .map_err(|e| Reject::new(Reason::BadMac, e.to_string()))?;
        let Header { seq, .. } = verified.header;
        let device_time = verified.header.time().map(|t| i64::from(t) * 1000);
        let event = |body: EventBody, code: &str| DeviceEvent {
            device_id: device.device_id,
            elder_id: device.elder_id,
            dedup_key: format!("seq:{seq}"),
            seq: Some(i64::from(seq)),
            device_time,
            received_at: now,
            raw_code: format!("native:{code}"),
            raw: None,
            body,
        };
        let mut handled = Handled {
            events: Vec::new(),
            status: None,
            seq: Some(i64::from(seq)),
            pending: PendingAck {
                seq,
                fixed: None,
                heartbeat: false,
            },
        };
        match verified.message {
            Message::Hello(_) => handled.pending.fixed = Some(AckStatus::Stored),
            Message::Heartbeat(h) => {
                handled.status = Some(DeviceStatus {
                    battery_pct: h.battery_percent,
                    mains: Some(h.mains_power),
                    signal_pct: h.signal_percent,
                    location: h.location.map(geo),
                });
                handled.pending.fixed = Some(AckStatus::Stored);
                handled.pending.heartbeat = true;
            }
            Message::Alarm(a) => handled.events.push(event(
                EventBody::Alarm {
                    kind: a.kind,
                    location: a.location.map(geo),
                },
                a.kind.as_str(),
            )),
            Message::Cancel(_) => handled.events.push(event(EventBody::Cancel, "cancel")),
            Message::CheckIn => handled.events.push(event(EventBody::CheckIn, "check_in")),
            Message::ServiceRequest(s) => handled.events.push(event(
                EventBody::ServiceRequest { kind: s.kind },
                s.kind.as_str(),
            )),
            Message::CommandResult(r) => handled.events.push(event(
                EventBody::CommandResult {
                    command_id: Some(i64::from(r.command_id)),
                    ok: r.outcome == onekey_protocol::CommandOutcome::Ok,
                    text: r.outcome.as_str().to_string(),
                },
                "command_result",
            )),
            Message::Ack(_) | Message::Command(_) => {
                return Err(Reject::new(
                    Reason::Malformed,
                    "a server-to-device message sent by a device",
                ));
            }
        }
        Ok(handled)
    }

    fn sequenced(
        &self,
        handled: &mut Handled<PendingAck>,
        class: SeqClass,
        device: &DeviceAuth,
    ) -> Result<(), Reject> {
        let seq = handled.pending.seq;
        match class {
            SeqClass::TooOld => Err(Reject::new(
                Reason::Replay,
                format!("sequence {seq} is older than the replay window"),
            )
            .with_reply(ack(device, seq, AckStatus::Rejected, RejectReason::Replay))),
            SeqClass::Repeat => {
                // A retry of a frame already seen: ACK it again, but a replayed heartbeat must not
                // make a silent device look alive.
                handled.status = None;
                if handled.pending.heartbeat {
                    handled.pending.fixed = Some(AckStatus::Duplicate);
                }
                Ok(())
            }
            SeqClass::Fresh | SeqClass::InWindowUnseen => Ok(()),
        }
    }

    fn reply(
        &self,
        pending: PendingAck,
        stored: &[Stored],
        device: &DeviceAuth,
        _: &mut (),
    ) -> Option<Bytes> {
        let status = pending.fixed.unwrap_or_else(|| {
            if stored.iter().all(|s| s.outcome == StoreOutcome::Duplicate) {
                AckStatus::Duplicate
            } else {
                AckStatus::Stored
            }
        });
        ack(device, pending.seq, status, RejectReason::None)
    }

    fn command(
        &self,
        command: &DeviceCommand,
        id: u32,
        device: &DeviceAuth,
        _: &mut (),
    ) -> Result<Bytes, CommandError> {
        let (kind, argument) = match command {
            DeviceCommand::Native { kind, arg } => (*kind, *arg),
            DeviceCommand::Locate => (CommandKind::Locate, 0),
            _ => return Err(CommandError::Unsupported),
        };
        let message = Message::Command(onekey_protocol::Command {
            command_id: id,
            kind,
            argument,
        });
        encode_downlink(device, &message).ok_or(CommandError::Unsupported)
    }
}
