//! Whole frames: find their length in a stream, decode them, check their tag, encode them.

use crate::error::{AuthError, DecodeError, EncodeError};
use crate::header::{HEADER_LEN, Header, PREFIX_LEN, Prefix, TAG_LEN, incomplete};
use crate::mac::{self, Key};
use crate::message::{Message, MessageType};
use crate::wire::{Reader, Writer};

/// An authenticated frame: who sent it and what it says. Owns its data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Frame {
    /// Device id, sequence number and timestamp.
    pub header: Header,
    /// The message.
    pub message: Message,
}

impl Frame {
    /// Encodes this frame into `out`; see [`encode`].
    pub fn encode(&self, key: &Key, out: &mut [u8]) -> Result<usize, EncodeError> {
        encode(&self.header, &self.message, key, out)
    }
}

/// A frame that parsed but whose tag has not been checked yet. Read the device id, look up that
/// device's key, then [`verify`](Self::verify). The message is only handed out after verification.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Unverified<'a> {
    header: Header,
    message: Message,
    signed: &'a [u8],
    tag: [u8; TAG_LEN],
}

impl Unverified<'_> {
    /// The header as received (not yet authenticated).
    pub const fn header(&self) -> &Header {
        &self.header
    }

    /// The claimed device id, for looking up the key.
    pub const fn device_id(&self) -> u64 {
        self.header.device_id
    }

    /// The message type as received (not yet authenticated), e.g. for metrics.
    pub const fn message_type(&self) -> MessageType {
        self.message.message_type()
    }

    /// Checks the tag with the device's key (constant-time compare) and returns the frame.
    pub fn verify(&self, key: &Key) -> Result<Frame, AuthError> {
        mac::check(key, self.signed, &self.tag)?;
        Ok(Frame {
            header: self.header,
            message: self.message,
        })
    }
}

/// The length of the frame at the start of `buf`, from its first [`PREFIX_LEN`] bytes. No MAC work.
///
/// `Ok(n)` does not mean `n` bytes are buffered yet. `Incomplete { needed }` until the prefix is;
/// `BadMagic`, `UnsupportedVersion`, `UnknownMessageType` or `TooLong` as soon as a byte shows it.
pub fn frame_len(buf: &[u8]) -> Result<usize, DecodeError> {
    Prefix::parse(buf).map(|p| p.frame_len())
}

/// Parses the frame at the start of `buf` without the key, returning it and the bytes it used.
///
/// `Incomplete` while part of the frame is missing; any other error means the bytes are not a valid
/// frame. Never panics, whatever the input.
pub fn decode(buf: &[u8]) -> Result<(Unverified<'_>, usize), DecodeError> {
    let prefix = Prefix::parse(buf)?;
    let len = prefix.frame_len();
    let Some(frame) = buf.get(..len) else {
        return Err(incomplete(buf, len));
    };
    let Some((signed, tag)) = frame.split_last_chunk::<TAG_LEN>() else {
        return Err(incomplete(buf, len));
    };
    let (head, body) = signed
        .split_at_checked(HEADER_LEN)
        .ok_or(incomplete(buf, len))?;
    let mut r = Reader::new(head.get(PREFIX_LEN..).unwrap_or_default());
    let header = Header::read(&mut r).ok_or(incomplete(buf, len))?;
    let message = Message::read_body(prefix.message_type, body)?;
    let unverified = Unverified {
        header,
        message,
        signed,
        tag: *tag,
    };
    Ok((unverified, len))
}

/// The length of the frame that carries `message`.
pub const fn encoded_len(message: &Message) -> usize {
    HEADER_LEN + message.body_len() + TAG_LEN
}

/// Encodes and signs a frame into the front of `out`, returning its length.
///
/// `InvalidField` if the message holds a value the protocol cannot carry; `BufferTooSmall` if `out` is
/// shorter than [`encoded_len`] (a [`crate::MAX_FRAME_LEN`] buffer always fits).
pub fn encode(
    header: &Header,
    message: &Message,
    key: &Key,
    out: &mut [u8],
) -> Result<usize, EncodeError> {
    if let Some(field) = message.invalid_field() {
        return Err(EncodeError::InvalidField { field });
    }
    let len = encoded_len(message);
    let too_small = EncodeError::BufferTooSmall { needed: len };
    let frame = out.get_mut(..len).ok_or(too_small)?;
    let (signed, tag_out) = frame.split_last_chunk_mut::<TAG_LEN>().ok_or(too_small)?;
    let body_len = u16::try_from(message.body_len()).map_err(|_| too_small)?;
    let mut w = Writer::new(signed);
    header
        .write(message.message_type(), body_len, &mut w)
        .ok_or(too_small)?;
    message.write_body(&mut w).ok_or(too_small)?;
    debug_assert_eq!(w.position(), len - TAG_LEN);
    *tag_out = mac::tag(key, signed);
    Ok(len)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kinds::AlarmKind;
    use crate::message::Alarm;

    const KEY: Key = [7; 32];
    const HEADER: Header = Header {
        device_id: 860_123_456_789_012,
        seq: 42,
        timestamp: 1_700_000_000,
    };
    const SOS: Message = Message::Alarm(Alarm {
        kind: AlarmKind::Sos,
        location: None,
    });

    #[test]
    fn encode_then_decode_gives_the_frame_back() {
        let mut buf = [0u8; 64];
        let n = encode(&HEADER, &SOS, &KEY, &mut buf).unwrap();
        assert_eq!(n, HEADER_LEN + 2 + TAG_LEN);
        assert_eq!(frame_len(&buf[..PREFIX_LEN]), Ok(n));
        let (u, used) = decode(&buf).unwrap();
        assert_eq!(used, n);
        assert_eq!(u.device_id(), HEADER.device_id);
        assert_eq!(u.message_type(), MessageType::Alarm);
        let frame = u.verify(&KEY).unwrap();
        assert_eq!(
            frame,
            Frame {
                header: HEADER,
                message: SOS
            }
        );
    }

    #[test]
    fn buffer_too_small_names_the_size_and_writes_nothing_useful() {
        let mut buf = [0u8; 31];
        assert_eq!(
            encode(&HEADER, &SOS, &KEY, &mut buf),
            Err(EncodeError::BufferTooSmall { needed: 32 })
        );
        let mut exact = [0u8; 32];
        assert_eq!(encode(&HEADER, &SOS, &KEY, &mut exact), Ok(32));
    }
}
