//! Device ingress: everything that talks to devices.
//!
//! Each protocol is an [`Adapter`]: a codec that cuts frames from the byte stream, a way to read the
//! identity a frame claims, a mapping from frames to [`DeviceEvent`]s, and the replies the protocol
//! expects. Everything else is shared by all protocols and lives in [`connection`]: the first-frame
//! deadline, the idle timeout, the identity check against the [`DeviceRegistry`], handing events to
//! [`Intake`](crate::intake::Intake), and writing the ACK only after the events are committed
//! ([`commit`], which the MQTT uplink shares).

pub mod commit;
pub mod connection;
pub mod deployed;
pub mod frame_io;
pub mod gt06;
pub mod h02;
pub mod limits;
pub mod listener;
pub mod mqtt;
pub mod native;
pub mod registry;
pub mod reject;
pub mod sia;
pub mod watch;

use bytes::Bytes;
use tokio_util::codec::{Decoder, Encoder};

pub use connection::GatewayContext;
pub use listener::serve_listener;
pub use registry::{DeviceAuth, DeviceRegistry};
pub use reject::{Reason, Reject};

use onekey_protocol::SeqClass;

use crate::domain::{DeviceEvent, DeviceStatus, Millis};
use crate::notify::{CommandError, DeviceCommand};
use crate::store::Stored;

/// What an adapter makes of one frame.
#[derive(Debug)]
pub struct Handled<P> {
    /// Events to commit before the reply is sent.
    pub events: Vec<DeviceEvent>,
    /// Heartbeat state, written lazily.
    pub status: Option<DeviceStatus>,
    /// Native sequence number, claimed in the device's replay window before anything is answered.
    pub seq: Option<i64>,
    /// What the adapter needs to build the reply once the events are committed.
    pub pending: P,
}

/// One device protocol.
pub trait Adapter: Send + Sync + 'static {
    /// Protocol name: `native`, `gt06`, `watch`, `h02`, `sia`. Devices are registered under it.
    const PROTOCOL: &'static str;
    /// Frames the codec cuts out, as the bytes that came in.
    type Frame: AsRef<[u8]> + Send + Sync;
    /// The byte-stream codec.
    type Codec: Decoder<Item = Self::Frame, Error: std::fmt::Display + Send + Sync>
        + Encoder<Bytes, Error = std::io::Error>
        + Send
        + Unpin
        + 'static;
    /// Per-connection protocol state.
    type Session: Send + Sync;
    /// Carried from `handle` to `reply`.
    type Pending: Send + Sync;

    /// A codec that refuses frames over `max_frame` bytes.
    fn codec(&self, max_frame: usize) -> Self::Codec;

    /// Fresh per-connection state.
    fn session(&self) -> Self::Session;

    /// The identity the frame claims, or `None` when it belongs to the device the connection
    /// already identified (GT06 frames after login).
    fn identity(
        &self,
        frame: &Self::Frame,
        session: &mut Self::Session,
    ) -> Result<Option<String>, Reject>;

    /// Authenticates and decodes a frame of a registered device.
    fn handle(
        &self,
        frame: &Self::Frame,
        device: &DeviceAuth,
        session: &mut Self::Session,
        now: Millis,
    ) -> Result<Handled<Self::Pending>, Reject>;

    /// Applies the replay window's verdict on the frame's sequence number (protocols that have one):
    /// `TooOld` refuses the frame, `Repeat` marks a retry.
    fn sequenced(
        &self,
        _handled: &mut Handled<Self::Pending>,
        _class: SeqClass,
        _device: &DeviceAuth,
    ) -> Result<(), Reject> {
        Ok(())
    }

    /// The reply, once every event of the frame is committed (`stored` in event order).
    fn reply(
        &self,
        pending: Self::Pending,
        stored: &[Stored],
        device: &DeviceAuth,
        session: &mut Self::Session,
    ) -> Option<Bytes>;

    /// Encodes a server command, when the protocol has it.
    fn command(
        &self,
        command: &DeviceCommand,
        id: u32,
        device: &DeviceAuth,
        session: &mut Self::Session,
    ) -> Result<Bytes, CommandError>;
}
