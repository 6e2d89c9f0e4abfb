//! Pure codecs for the protocols that one-key devices already deployed in elders' homes speak.
//!
//! One module per protocol. Each offers the same three things, and nothing in here does I/O:
//! - a `tokio_util::codec::Decoder` that cuts frames out of a byte stream (partial frames, several
//!   frames in one read, garbage before a frame, a maximum frame size);
//! - `parse`, which turns one frame into a [`Decoded`]: who the device says it is, the
//!   [`Report`]s it carries (login, heartbeat, position, alarm…) and the reply the protocol expects;
//! - encoders for the server's commands.
//!
//! The server decides *when* a reply is sent: a reply that acknowledges an alarm is written only after
//! the alarm is committed to the store. Replies are therefore returned, never written here.
#![forbid(unsafe_code)]

pub mod gt06;
pub mod h02;
pub mod report;
pub mod sia;
pub mod watch;

pub use report::{Decoded, Location, Report, ServerCommand};
