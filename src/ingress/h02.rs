//! H02 (Sinotrack "HQ") trackers: text `*HQ,…#` and binary `$…` frames, each carrying the device id.

use bytes::{Bytes, BytesMut};
use onekey_device_protocols::Decoded;
use onekey_device_protocols::h02::{self, H02Codec};

use super::deployed::{self, RawReplies};
use super::{Adapter, DeviceAuth, Handled, Reject};
use crate::domain::Millis;
use crate::notify::{CommandError, DeviceCommand};
use crate::store::Stored;

/// The H02 adapter.
#[derive(Debug, Default, Clone, Copy)]
pub struct H02;

/// Per-connection state.
#[derive(Default)]
pub struct H02Session {
    codec: h02::Session,
    decoded: Option<Decoded>,
}

impl Adapter for H02 {
    const PROTOCOL: &'static str = "h02";
    type Frame = BytesMut;
    type Codec = RawReplies<H02Codec>;
    type Session = H02Session;
    type Pending = Option<Bytes>;

    fn codec(&self, max_frame: usize) -> Self::Codec {
        RawReplies::new(H02Codec::new(max_frame), Self::PROTOCOL)
    }

    fn session(&self) -> H02Session {
        H02Session::default()
    }

    fn identity(&self, frame: &BytesMut, s: &mut H02Session) -> Result<Option<String>, Reject> {
        let now = crate::domain::now_millis() / 1000;
        let decoded = h02::parse_at(frame, &mut s.codec, now)
            .map_err(|e| Reject::new("malformed", e.to_string()))?;
        let identity = decoded.identity.clone();
        s.decoded = Some(decoded);
        Ok(identity)
    }

    fn handle(
        &self,
        frame: BytesMut,
        device: &DeviceAuth,
        s: &mut H02Session,
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
        _: &mut H02Session,
    ) -> Option<Bytes> {
        deployed::reply(pending, stored)
    }

    fn command(
        &self,
        command: &DeviceCommand,
        _id: u32,
        device: &DeviceAuth,
        _: &mut H02Session,
    ) -> Result<Bytes, CommandError> {
        let command = deployed::server_command(command)?;
        let now = crate::domain::now_millis() / 1000;
        h02::encode_command_at(&command, &device.ident, now)
            .map(Bytes::from)
            .ok_or(CommandError::Unsupported)
    }
}
