//! The OneKey device protocol: what a one-key call device and the server say to each other.
//!
//! `#![no_std]` and allocation-free so that the same code runs in a device's firmware with a few KiB of
//! RAM and in the server. Frames are decoded from `&[u8]` and encoded into `&mut [u8]`; no frame is
//! longer than [`MAX_FRAME_LEN`] (128) bytes. The byte-exact description, with examples, is
//! `PROTOCOL.md` next to this crate's `Cargo.toml`.
//!
//! [`kinds`] holds the vocabulary (alarm kinds, service kinds, ACK statuses, commands) that every
//! protocol adapter in the server maps onto, so that a GT06 SOS and a native SOS are the same event.
//!
//! # A frame
//!
//! A plaintext [`Header`] (magic `"OK"`, version, message type, body length, device id, sequence
//! number, timestamp), a [`Message`] body, and an 8-byte tag: HMAC-SHA256 with the device's 32-byte
//! [`Key`] over everything before the tag. The header is readable without the key, so the receiver
//! learns the device id, looks up the key, then verifies.
//!
//! # Receiving (the server's side)
//!
//! 1. [`frame_len`] on the buffered bytes: the frame's length once 6 bytes are in, `Incomplete` before,
//!    an error on garbage. Cheap; made for a `tokio_util` codec.
//! 2. [`decode`] the whole frame: an [`Unverified`] and the bytes consumed.
//! 3. [`Unverified::device_id`] → look up the key → [`Unverified::verify`] → a [`Frame`] that owns
//!    its data. Drop frames whose [`Message::direction`] is not [`Direction::Uplink`].
//! 4. [`ReplayWindow::classify`] the sequence number; store new frames durably, then
//!    [`ReplayWindow::mark_seen`], then answer with an [`Ack`].
//!
//! ```
//! use onekey_protocol::*;
//!
//! # let key: Key = [0x11; 32];
//! # let alarm = Message::Alarm(Alarm { kind: AlarmKind::Sos, location: None });
//! # let mut buf = [0u8; MAX_FRAME_LEN];
//! # let n = encode(&Header { device_id: 860123456789012, seq: 7, timestamp: 0 }, &alarm, &key, &mut buf)
//! #     .map_err(|e| e.as_str())?;
//! # let bytes = &buf[..n];
//! # let mut window = ReplayWindow::new();
//! # let server_now = 1_700_000_000;
//! # let next_downlink_seq = 1;
//! let (unverified, used) = decode(bytes).map_err(|e| e.as_str())?; // Incomplete → read more
//! let key: Key = /* look up */ key; let _ = unverified.device_id();
//! let frame = unverified.verify(&key).map_err(|e| e.as_str())?;
//! assert_eq!(frame.message.direction(), Direction::Uplink);
//! let status = match window.classify(frame.header.seq) {
//!     SeqClass::Fresh | SeqClass::InWindowUnseen => {
//!         /* store durably first */
//!         window.mark_seen(frame.header.seq);
//!         AckStatus::Stored
//!     }
//!     SeqClass::Repeat => AckStatus::Duplicate,
//!     SeqClass::TooOld => AckStatus::Rejected,
//! };
//! let reason = if status == AckStatus::Rejected { RejectReason::Replay } else { RejectReason::None };
//! let ack = Message::Ack(Ack { acked_seq: frame.header.seq, status, reason, server_time: server_now });
//! let reply = Header { device_id: frame.header.device_id, seq: next_downlink_seq, timestamp: server_now };
//! let mut out = [0u8; MAX_FRAME_LEN];
//! let n = encode(&reply, &ack, &key, &mut out).map_err(|e| e.as_str())?;
//! # assert_eq!(used, bytes.len());
//! # assert_eq!(frame.message, alarm);
//! # assert_eq!(n, 40);
//! # Ok::<(), &'static str>(())
//! ```
//!
//! # Sending (the device's side)
//!
//! [`encode`] (or [`Frame::encode`]) into a [`MAX_FRAME_LEN`] buffer. Keep the encoded bytes of an
//! unacknowledged frame and resend them unchanged (same sequence number) until an [`Ack`] echoes it.
//!
//! # Sequence numbers
//!
//! Each direction has its own counter per device. A device's counter never goes backwards, across
//! reboots too (see [`replay`]). The server keeps its own persisted per-device downlink counter for the
//! frames it sends; a device matches an `Ack` by its `acked_seq`, and runs a [`ReplayWindow`] over the
//! server's sequence numbers to refuse replayed commands.
//!
//! # Errors
//!
//! [`DecodeError`], [`AuthError`] and [`EncodeError`] implement `Display` and have a stable `as_str()`
//! name for metrics labels; with the `std` feature they implement `std::error::Error`.
#![no_std]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

#[cfg(feature = "std")]
extern crate std;

mod body;
pub mod error;
pub mod frame;
pub mod header;
pub mod kinds;
pub mod location;
pub mod mac;
pub mod message;
pub mod replay;
mod wire;

pub use error::{AuthError, DecodeError, EncodeError};
pub use frame::{Frame, Unverified, decode, encode, encoded_len, frame_len};
pub use header::{
    HEADER_LEN, Header, MAGIC, MAX_BODY_LEN, MAX_FRAME_LEN, PREFIX_LEN, TAG_LEN, VERSION,
};
pub use kinds::{AckStatus, AlarmKind, CommandKind, CommandOutcome, RejectReason, ServiceKind};
pub use location::Location;
pub use mac::{KEY_LEN, Key};
pub use message::{
    Ack, Alarm, Cancel, Command, CommandResult, Direction, Heartbeat, Hello, Message, MessageType,
    ServiceRequest,
};
pub use replay::{ReplayWindow, SeqClass, WINDOW_SIZE};
