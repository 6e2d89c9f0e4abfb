//! GT06 (Concox) pendants and trackers. The login frame carries the IMEI; later frames belong to it.
//! Frames with a wrong CRC-16/X-25 are still decoded (real devices and anonymised captures send
//! them), logged and counted, so that an alarm is never dropped for a checksum.

use bytes::{Bytes, BytesMut};
use onekey_device_protocols::Decoded;
use onekey_device_protocols::gt06::{self, CrcStatus, Gt06Codec};

use super::deployed::{self, RawReplies};
use super::{Adapter, DeviceAuth, Handled, Reject};
use crate::domain::Millis;
use crate::notify::{CommandError, DeviceCommand};
use crate::store::Stored;

/// The GT06 adapter.
#[derive(Debug, Default, Clone, Copy)]
pub struct Gt06;

/// Per-connection state: the codec's session and the frame decoded while identifying it.
#[derive(Default)]
pub struct Gt06Session {
    codec: gt06::Session,
    decoded: Option<Decoded>,
}

impl Adapter for Gt06 {
    const PROTOCOL: &'static str = "gt06";
    type Frame = BytesMut;
    type Codec = RawReplies<Gt06Codec>;
    type Session = Gt06Session;
    type Pending = Option<Bytes>;

    fn codec(&self, max_frame: usize) -> Self::Codec {
        RawReplies::new(Gt06Codec::new(max_frame), Self::PROTOCOL)
    }

    fn session(&self) -> Gt06Session {
        Gt06Session::default()
    }

    fn identity(&self, frame: &BytesMut, s: &mut Gt06Session) -> Result<Option<String>, Reject> {
        let now = crate::domain::now_millis() / 1000;
        let parsed = gt06::parse_at(frame, &mut s.codec, now)
            .map_err(|e| Reject::new("malformed", e.to_string()))?;
        if let CrcStatus::Mismatch { .. } = parsed.crc {
            tracing::warn!(crc = ?parsed.crc, "GT06 frame with a wrong CRC; decoded anyway");
            metrics::counter!("onekey_crc_mismatches_total", "protocol" => Self::PROTOCOL)
                .increment(1);
        }
        let identity = parsed
            .decoded
            .identity
            .clone()
            .or_else(|| s.codec.imei().map(str::to_owned));
        s.decoded = Some(parsed.decoded);
        Ok(identity)
    }

    fn handle(
        &self,
        frame: BytesMut,
        device: &DeviceAuth,
        s: &mut Gt06Session,
        now: Millis,
    ) -> Result<Handled<Option<Bytes>>, Reject> {
        let decoded = s
            .decoded
            .take()
            .ok_or_else(|| Reject::new("malformed", "frame not decoded"))?;
        Ok(deployed::handled(
            Self::PROTOCOL,
            decoded,
            &frame,
            device,
            now,
        ))
    }

    fn reply(
        &self,
        pending: Option<Bytes>,
        stored: &[Stored],
        _: &DeviceAuth,
        _: &mut Gt06Session,
    ) -> Option<Bytes> {
        deployed::reply(pending, stored)
    }

    fn command(
        &self,
        command: &DeviceCommand,
        id: u32,
        _: &DeviceAuth,
        s: &mut Gt06Session,
    ) -> Result<Bytes, CommandError> {
        let command = deployed::server_command(command)?;
        gt06::encode_command(&command, &s.codec, id)
            .map(Bytes::from)
            .ok_or(CommandError::Unsupported)
    }
}
