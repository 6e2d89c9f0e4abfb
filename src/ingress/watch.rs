//! "3G watch" text protocol (`[3G*ID*LEN*CONTENT]`, also SG/CS/ZJ): elderly 4G watches. Every frame
//! carries the watch id.

use bytes::Bytes;
use onekey_device_protocols::Decoded;
use onekey_device_protocols::watch::{self, WatchCodec};

use super::deployed::{self, RawReplies};
use super::{Adapter, DeviceAuth, Handled, Reject};
use crate::domain::Millis;
use crate::notify::{CommandError, DeviceCommand};
use crate::store::Stored;

/// The watch adapter.
#[derive(Debug, Default, Clone, Copy)]
pub struct Watch;

/// Per-connection state.
#[derive(Default)]
pub struct WatchSession {
    codec: watch::Session,
    decoded: Option<Decoded>,
}

impl Adapter for Watch {
    const PROTOCOL: &'static str = "watch";
    type Frame = Vec<u8>;
    type Codec = RawReplies<WatchCodec>;
    type Session = WatchSession;
    type Pending = Option<Bytes>;

    fn codec(&self, max_frame: usize) -> Self::Codec {
        RawReplies::new(WatchCodec::new(max_frame), Self::PROTOCOL)
    }

    fn session(&self) -> WatchSession {
        WatchSession::default()
    }

    fn identity(&self, frame: &Vec<u8>, s: &mut WatchSession) -> Result<Option<String>, Reject> {
        let decoded = watch::parse(frame, &mut s.codec)
            .map_err(|e| Reject::new("malformed", e.to_string()))?;
        let identity = decoded.identity.clone();
        s.decoded = Some(decoded);
        Ok(identity)
    }

    fn handle(
        &self,
        frame: Vec<u8>,
        device: &DeviceAuth,
        s: &mut WatchSession,
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
        _: &mut WatchSession,
    ) -> Option<Bytes> {
        deployed::reply(pending, stored)
    }

    fn command(
        &self,
        command: &DeviceCommand,
        _id: u32,
        device: &DeviceAuth,
        s: &mut WatchSession,
    ) -> Result<Bytes, CommandError> {
        let command = deployed::server_command(command)?;
        watch::encode_command(&command, &device.ident, &s.codec)
            .map(Bytes::from)
            .ok_or(CommandError::Unsupported)
    }
}
