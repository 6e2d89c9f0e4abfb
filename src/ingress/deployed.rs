//! What the adapters of already-deployed protocols (GT06, watch, H02, SIA DC-09) share: a codec
//! wrapper, the one mapping from a codec's [`Decoded`] frame to stored events, and [`Deployed`], the
//! one [`Adapter`] for the protocols that differ only in their codec ([`DeployedProtocol`]: GT06, H02,
//! watch).
//!
//! These protocols carry no authentication: a frame is accepted only from a registered identity
//! (IMEI, watch id, DC-09 account), and the connection loop refuses the rest. Their alarms have no
//! sequence number the device increments reliably, so a retry is recognised by the frame's serial and
//! a digest of its bytes within the same hour: a device resending an unacknowledged alarm sends the
//! same bytes. A retry that crosses an hour boundary is stored again and joins the open incident, so it
//! can never open a second one.

use bytes::{Bytes, BytesMut};
use sha2::{Digest, Sha256};
use tokio_util::codec::{Decoder, Encoder};

use onekey_device_protocols::{Decoded, Location, Report, ServerCommand};

use super::{Adapter, DeviceAuth, Handled, Reason, Reject};
use crate::domain::{DeviceEvent, DeviceStatus, EventBody, GeoPoint, Millis, now_millis};
use crate::notify::{CommandError, DeviceCommand};
use crate::store::Stored;

/// Wraps a protocol codec: counts bytes skipped before a frame, writes replies as raw bytes.
pub struct RawReplies<C> {
    inner: C,
    protocol: &'static str,
}

impl<C> RawReplies<C> {
    /// Wraps `inner`.
    pub fn new(inner: C, protocol: &'static str) -> Self {
        RawReplies { inner, protocol }
    }
}

impl<C> Decoder for RawReplies<C>
where
    C: Decoder,
    C::Item: AsRef<[u8]>,
{
    type Item = C::Item;
    type Error = C::Error;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<C::Item>, C::Error> {
        let before = src.len();
        let frame = self.inner.decode(src)?;
        let consumed = before - src.len();
        let framed = frame.as_ref().map_or(0, |f| f.as_ref().len());
        if consumed > framed {
            let skipped = consumed - framed;
            tracing::debug!(skipped, "bytes skipped before a frame");
            metrics::counter!("onekey_garbage_bytes_total", "protocol" => self.protocol)
                .increment(skipped as u64);
        }
        Ok(frame)
    }
}

impl<C> Encoder<Bytes> for RawReplies<C> {
    type Error = std::io::Error;

    fn encode(&mut self, item: Bytes, dst: &mut BytesMut) -> Result<(), std::io::Error> {
        dst.extend_from_slice(&item);
        Ok(())
    }
}

fn geo(l: &Location) -> GeoPoint {
    GeoPoint {
        lat: l.lat,
        lon: l.lon,
        accuracy_m: l.accuracy_m,
    }
}

/// Maps a decoded frame to events, heartbeat state and the reply to send after the commit.
/// `fingerprint` is what a retry of the frame repeats: its bytes, or for DC-09 its content without
/// the timestamp (a panel's retry keeps the sequence number and refreshes the time).
pub fn handled(
    protocol: &'static str,
    decoded: Decoded,
    fingerprint: &[u8],
    device: &DeviceAuth,
    now: Millis,
) -> Handled<Option<Bytes>> {
    let mut status = DeviceStatus::default();
    let mut has_status = false;
    let mut events = Vec::new();
    let digest = Sha256::digest(fingerprint);
    let hour = now / 3_600_000;
    let serial = decoded
        .serial
        .map_or_else(|| "-".to_string(), |s| s.to_string());
    for report in decoded.reports {
        let body = match report {
            Report::Login => continue,
            Report::LinkTest => {
                metrics::counter!("onekey_link_tests_total", "protocol" => protocol).increment(1);
                continue;
            }
            Report::Heartbeat {
                battery_pct,
                mains,
                signal_pct,
            } => {
                status.battery_pct = battery_pct.or(status.battery_pct);
                status.mains = mains.or(status.mains);
                status.signal_pct = signal_pct.or(status.signal_pct);
                has_status = true;
                continue;
            }
            Report::Position(location) => {
                status.location = Some(geo(&location));
                has_status = true;
                continue;
            }
            Report::Alarm {
                kind,
                location,
                raw_code,
            } => {
                if let Some(l) = &location {
                    status.location = Some(geo(l));
                    has_status = true;
                }
                (
                    EventBody::Alarm {
                        kind,
                        location: location.as_ref().map(geo),
                    },
                    raw_code,
                )
            }
            Report::Restore { raw_code } => (EventBody::Restore, raw_code),
            Report::Cancel { raw_code } => (EventBody::Cancel, raw_code),
            Report::CommandResult { text } => (
                EventBody::CommandResult {
                    command_id: None,
                    ok: true,
                    text,
                },
                format!("{protocol}:command_result"),
            ),
        };
        let (body, raw_code) = body;
        events.push(DeviceEvent {
            device_id: device.device_id,
            elder_id: device.elder_id,
            dedup_key: format!(
                "{serial}:{}:{hour}:{}",
                hex::encode(&digest[..8]),
                events.len()
            ),
            seq: None,
            device_time: None,
            received_at: now,
            raw_code,
            raw: None,
            body,
        });
    }
    Handled {
        events,
        status: has_status.then_some(status),
        seq: None,
        pending: decoded.reply.map(Bytes::from),
    }
}

/// The reply of a deployed protocol does not depend on whether the events were new or retries.
pub fn reply(pending: Option<Bytes>, _stored: &[Stored]) -> Option<Bytes> {
    pending
}

/// Maps an API command onto the deployed protocols' command vocabulary.
pub fn server_command(command: &DeviceCommand) -> Result<ServerCommand, CommandError> {
    Ok(match command {
        DeviceCommand::Locate => ServerCommand::Locate,
        DeviceCommand::Reset => ServerCommand::Reset,
        DeviceCommand::SetSosNumbers(numbers) => ServerCommand::SetSosNumbers(numbers.clone()),
        DeviceCommand::Text(text) => ServerCommand::Text(text.clone()),
        DeviceCommand::Native {
            kind: onekey_protocol::CommandKind::Locate,
            ..
        } => ServerCommand::Locate,
        DeviceCommand::Native { .. } => return Err(CommandError::Unsupported),
    })
}

/// What one deployed protocol brings to [`Deployed`]: its codec, its decoder and its commands.
pub trait DeployedProtocol: Send + Sync + 'static {
    /// Protocol name devices are registered under.
    const PROTOCOL: &'static str;
    /// Frames the codec cuts out.
    type Frame: AsRef<[u8]> + Send + Sync;
    /// The protocol's byte-stream codec.
    type Codec: Decoder<Item = Self::Frame, Error: std::fmt::Display + Send + Sync>
        + Send
        + Unpin
        + 'static;
    /// The codec's per-connection state.
    type Session: Default + Send + Sync;

    /// A codec that refuses frames over `max_frame` bytes.
    fn codec(max_frame: usize) -> Self::Codec;

    /// Decodes one frame at `now_s` (Unix seconds); the error is the log's detail.
    fn decode(frame: &[u8], session: &mut Self::Session, now_s: i64) -> Result<Decoded, String>;

    /// The identity the connection logged in with, for frames that carry none (GT06 after login).
    fn logged_in(_session: &Self::Session) -> Option<String> {
        None
    }

    /// Encodes a server command for device `ident`, when the protocol has it.
    fn encode(
        command: &ServerCommand,
        id: u32,
        ident: &str,
        session: &Self::Session,
        now_s: i64,
    ) -> Option<Vec<u8>>;
}

/// The adapter of a [`DeployedProtocol`]: frames are decoded while identifying them (the identity
/// is inside), mapped by [`handled`], and answered with the protocol's reply after the commit.
#[derive(Debug, Default, Clone, Copy)]
pub struct Deployed<P>(pub P);

/// Per-connection state: the codec's session and the frame decoded while identifying it.
pub struct DeployedSession<S> {
    codec: S,
    decoded: Option<Decoded>,
}

impl<P: DeployedProtocol> Adapter for Deployed<P> {
    const PROTOCOL: &'static str = P::PROTOCOL;
    type Frame = P::Frame;
    type Codec = RawReplies<P::Codec>;
    type Session = DeployedSession<P::Session>;
    type Pending = Option<Bytes>;

    fn codec(&self, max_frame: usize) -> Self::Codec {
        RawReplies::new(P::codec(max_frame), P::PROTOCOL)
    }

    fn session(&self) -> Self::Session {
        DeployedSession {
            codec: P::Session::default(),
            decoded: None,
        }
    }

    fn identity(&self, frame: &P::Frame, s: &mut Self::Session) -> Result<Option<String>, Reject> {
        let decoded = P::decode(frame.as_ref(), &mut s.codec, now_millis() / 1000)
            .map_err(|e| Reject::new(Reason::Malformed, e))?;
        let identity = decoded.identity.clone().or_else(|| P::logged_in(&s.codec));
        s.decoded = Some(decoded);
        Ok(identity)
    }

    fn handle(
        &self,
        frame: &P::Frame,
        device: &DeviceAuth,
        s: &mut Self::Session,
        now: Millis,
    ) -> Result<Handled<Option<Bytes>>, Reject> {
        let decoded = s
            .decoded
            .take()
            .ok_or_else(|| Reject::new(Reason::Malformed, "frame not decoded"))?;
        Ok(handled(P::PROTOCOL, decoded, frame.as_ref(), device, now))
    }

    fn reply(
        &self,
        pending: Option<Bytes>,
        stored: &[Stored],
        _: &DeviceAuth,
        _: &mut Self::Session,
    ) -> Option<Bytes> {
        reply(pending, stored)
    }

    fn command(
        &self,
        command: &DeviceCommand,
        id: u32,
        device: &DeviceAuth,
        s: &mut Self::Session,
    ) -> Result<Bytes, CommandError> {
        let command = server_command(command)?;
        P::encode(&command, id, &device.ident, &s.codec, now_millis() / 1000)
            .map(Bytes::from)
            .ok_or(CommandError::Unsupported)
    }
}
