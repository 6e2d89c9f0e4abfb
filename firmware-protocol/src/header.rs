//! The plaintext header every frame starts with, and the limits on a frame's size.
//!
//! ```text
//! offset  size  field
//!      0     2  magic "OK" (0x4F 0x4B)
//!      2     1  version (1)
//!      3     1  message type
//!      4     2  body length, big-endian
//!      6     8  device id, big-endian
//!     14     4  sequence number, big-endian
//!     18     4  timestamp (Unix seconds, 0 = no clock), big-endian
//!     22     n  body
//!   22+n     8  tag = HMAC-SHA256(key, bytes 0 .. 22+n), first 8 bytes
//! ```

use crate::error::DecodeError;
use crate::message::MessageType;
use crate::wire::{Reader, Writer};

/// The two bytes every frame starts with: `"OK"`.
pub const MAGIC: [u8; 2] = *b"OK";
/// The protocol version this code reads and writes.
pub const VERSION: u8 = 1;
/// Bytes before the body: magic, version, type, body length, device id, sequence, timestamp.
pub const HEADER_LEN: usize = 22;
/// Bytes of the truncated authentication tag after the body.
pub const TAG_LEN: usize = 8;
/// The largest frame, tag included. Receivers never buffer more than this for one frame.
pub const MAX_FRAME_LEN: usize = 128;
/// The largest body a frame may carry.
pub const MAX_BODY_LEN: usize = MAX_FRAME_LEN - HEADER_LEN - TAG_LEN;
/// Bytes needed to learn a frame's length: magic, version, type and body length.
pub const PREFIX_LEN: usize = 6;

/// Who sent a frame and when: the header fields that are not derived from the message.
///
/// The message type and body length are written by the encoder from the [`crate::Message`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Header {
    /// The device's id (an IMEI fits). Frames from the server carry the id of the device addressed.
    pub device_id: u64,
    /// The sender's sequence number: per device and direction, increasing (see [`crate::ReplayWindow`]).
    pub seq: u32,
    /// The sender's clock in Unix seconds; `0` means the device has no clock yet.
    pub timestamp: u32,
}

impl Header {
    /// The sender's clock, or `None` if it has none yet (timestamp `0`).
    pub const fn time(&self) -> Option<u32> {
        if self.timestamp == 0 {
            None
        } else {
            Some(self.timestamp)
        }
    }

    /// Reads device id, sequence and timestamp (the bytes after the prefix).
    pub(crate) fn read(r: &mut Reader<'_>) -> Option<Header> {
        Some(Header {
            device_id: r.u64()?,
            seq: r.u32()?,
            timestamp: r.u32()?,
        })
    }

    /// Writes the whole header, prefix included.
    pub(crate) fn write(&self, ty: MessageType, body_len: u16, w: &mut Writer<'_>) -> Option<()> {
        w.put(&MAGIC)?;
        w.u8(VERSION)?;
        w.u8(ty.code())?;
        w.u16(body_len)?;
        w.u64(self.device_id)?;
        w.u32(self.seq)?;
        w.u32(self.timestamp)
    }
}

/// The first [`PREFIX_LEN`] bytes of a frame, checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Prefix {
    pub(crate) message_type: MessageType,
    pub(crate) body_len: usize,
}

impl Prefix {
    /// The whole frame's length.
    pub(crate) const fn frame_len(&self) -> usize {
        HEADER_LEN + self.body_len + TAG_LEN
    }

    /// Checks as much of the prefix as `buf` holds, failing early on the first bad byte so that a
    /// receiver drops garbage without waiting for a whole header.
    pub(crate) fn parse(buf: &[u8]) -> Result<Prefix, DecodeError> {
        for (got, want) in buf.iter().zip(MAGIC) {
            if *got != want {
                return Err(DecodeError::BadMagic);
            }
        }
        if let Some(&version) = buf.get(2) {
            if version != VERSION {
                return Err(DecodeError::UnsupportedVersion { version });
            }
        }
        let message_type = match buf.get(3) {
            Some(&code) => {
                MessageType::from_code(code).ok_or(DecodeError::UnknownMessageType { code })?
            }
            None => return Err(incomplete(buf, PREFIX_LEN)),
        };
        let Some(&[hi, lo]) = buf.get(4..PREFIX_LEN) else {
            return Err(incomplete(buf, PREFIX_LEN));
        };
        let body_len = usize::from(u16::from_be_bytes([hi, lo]));
        if body_len > MAX_BODY_LEN {
            return Err(DecodeError::TooLong { body_len });
        }
        Ok(Prefix {
            message_type,
            body_len,
        })
    }
}

/// `Incomplete` for a buffer that must grow to `want` bytes.
pub(crate) fn incomplete(buf: &[u8], want: usize) -> DecodeError {
    DecodeError::Incomplete {
        needed: want.saturating_sub(buf.len()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_add_up() {
        assert_eq!(MAX_BODY_LEN, 98);
        assert_eq!(HEADER_LEN, 2 + 1 + 1 + 2 + 8 + 4 + 4);
    }

    #[test]
    fn prefix_fails_on_the_first_bad_byte() {
        assert_eq!(Prefix::parse(b"X"), Err(DecodeError::BadMagic));
        assert_eq!(Prefix::parse(b"OX"), Err(DecodeError::BadMagic));
        assert_eq!(
            Prefix::parse(b"OK\x02"),
            Err(DecodeError::UnsupportedVersion { version: 2 })
        );
        assert_eq!(
            Prefix::parse(b"OK\x01\x7f"),
            Err(DecodeError::UnknownMessageType { code: 0x7f })
        );
        assert_eq!(
            Prefix::parse(b"OK\x01\x03\x00\x63"),
            Err(DecodeError::TooLong { body_len: 99 })
        );
        assert_eq!(
            Prefix::parse(b"OK\x01\x03\xff\xff"),
            Err(DecodeError::TooLong { body_len: 0xffff })
        );
    }

    #[test]
    fn prefix_asks_for_the_missing_bytes() {
        assert_eq!(
            Prefix::parse(b""),
            Err(DecodeError::Incomplete { needed: 6 })
        );
        assert_eq!(
            Prefix::parse(b"OK\x01\x03\x00"),
            Err(DecodeError::Incomplete { needed: 1 })
        );
        let p = Prefix::parse(b"OK\x01\x03\x00\x62").unwrap();
        assert_eq!(p.message_type, MessageType::Alarm);
        assert_eq!(p.frame_len(), MAX_FRAME_LEN);
    }

    #[test]
    fn time_zero_means_no_clock() {
        let mut h = Header {
            device_id: 1,
            seq: 1,
            timestamp: 0,
        };
        assert_eq!(h.time(), None);
        h.timestamp = 1_700_000_000;
        assert_eq!(h.time(), Some(1_700_000_000));
    }
}
