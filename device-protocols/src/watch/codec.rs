//! Stream framing for the watch protocol: `[` … matching `]`, with `}`-escapes removed.

use bytes::{Buf, BytesMut};
use tokio_util::codec::{Decoder, Encoder};

use super::header::{Header, StartCheck, check_start};

/// A framing failure. The offending bytes are already consumed, so decoding can go on with the next
/// frame (a `Framed` stream nevertheless ends after yielding an error).
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    /// A frame grew beyond the configured maximum before its closing `]`.
    #[error("watch frame longer than {limit} bytes")]
    TooLarge {
        /// The configured maximum frame length.
        limit: usize,
    },
    /// A `}` was followed by a byte other than `0x01`–`0x05`.
    #[error("invalid watch escape sequence `}}` 0x{byte:02x}")]
    BadEscape {
        /// The byte after `}`.
        byte: u8,
    },
    /// The underlying transport failed.
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// Cuts watch frames out of a TCP byte stream (see the module documentation for the rules).
///
/// Each item is one complete frame, `[` to `]` inclusive, with the `}`-escapes of binary payloads
/// replaced by the bytes they stand for, ready for [`super::parse`].
#[derive(Debug)]
pub struct WatchCodec {
    max_frame_len: usize,
    /// Bytes of the current frame already scanned (0 = not inside a frame).
    scanned: usize,
    depth: usize,
    skipped_pending: u64,
    skipped_total: u64,
    length_mismatches: u64,
}

impl WatchCodec {
    /// A codec that rejects frames longer than `max_frame_len` bytes (on the wire, brackets
    /// included).
    pub fn new(max_frame_len: usize) -> Self {
        Self {
            max_frame_len: max_frame_len.max(2),
            scanned: 0,
            depth: 0,
            skipped_pending: 0,
            skipped_total: 0,
            length_mismatches: 0,
        }
    }

    /// Bytes discarded as garbage (outside any frame, or truncated frames) since the last call.
    pub fn take_skipped(&mut self) -> u64 {
        std::mem::take(&mut self.skipped_pending)
    }

    /// Bytes discarded as garbage since the codec was created.
    pub fn skipped_total(&self) -> u64 {
        self.skipped_total
    }

    /// Frames whose `LLLL` field differed from the number of content bytes on the wire. Such frames
    /// are still delivered; this is a counter for logs and metrics only.
    pub fn length_mismatches(&self) -> u64 {
        self.length_mismatches
    }

    fn skip(&mut self, buf: &mut BytesMut, n: usize) {
        let n = n.min(buf.len());
        buf.advance(n);
        self.skipped_pending += n as u64;
        self.skipped_total += n as u64;
    }

    fn reset(&mut self) {
        self.scanned = 0;
        self.depth = 0;
    }

    /// Drops garbage up to the next plausible frame start. Returns false when none is in the buffer
    /// yet.
    fn seek_start(&mut self, buf: &mut BytesMut) -> bool {
        let mut from = 0;
        while let Some(rel) = buf
            .get(from..)
            .and_then(|s| s.iter().position(|&b| b == b'['))
        {
            let pos = from + rel;
            match check_start(buf.get(pos..).unwrap_or_default()) {
                StartCheck::Yes => {
                    self.skip(buf, pos);
                    self.scanned = 1;
                    self.depth = 1;
                    return true;
                }
                StartCheck::NeedMore => {
                    self.skip(buf, pos);
                    return false;
                }
                StartCheck::No => from = pos + 1,
            }
        }
        let all = buf.len();
        self.skip(buf, all);
        false
    }

    /// Scans the current frame. `Ok(Some(len))` when it is complete.
    fn scan(&mut self, buf: &mut BytesMut) -> Result<Option<usize>, FrameError> {
        while let Some(&b) = buf.get(self.scanned) {
            if self.scanned >= self.max_frame_len {
                self.skip(buf, 1);
                self.reset();
                return Err(FrameError::TooLarge {
                    limit: self.max_frame_len,
                });
            }
            match b {
                b'[' => match check_start(buf.get(self.scanned..).unwrap_or_default()) {
                    StartCheck::Yes => {
                        // A new frame starts inside this one: the current one was truncated.
                        let n = self.scanned;
                        self.skip(buf, n);
                        self.scanned = 1;
                        self.depth = 1;
                        continue;
                    }
                    StartCheck::NeedMore => return Ok(None),
                    StartCheck::No => self.depth += 1,
                },
                b']' => {
                    self.depth -= 1;
                    if self.depth == 0 {
                        let len = self.scanned + 1;
                        self.reset();
                        return Ok(Some(len));
                    }
                }
                _ => {}
            }
            self.scanned += 1;
        }
        Ok(None)
    }
}

impl Default for WatchCodec {
    /// A codec with a 64 KiB frame limit (voice chunks and images are the largest frames).
    fn default() -> Self {
        Self::new(64 * 1024)
    }
}

impl Decoder for WatchCodec {
    type Item = Vec<u8>;
    type Error = FrameError;

    fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Vec<u8>>, FrameError> {
        if self.scanned == 0 && !self.seek_start(buf) {
            return Ok(None);
        }
        let Some(len) = self.scan(buf)? else {
            return Ok(None);
        };
        let wire = buf.split_to(len);
        if Header::parse(&wire).is_some_and(|h| !h.length_matches()) {
            self.length_mismatches += 1;
        }
        unescape(&wire).map(Some)
    }

    fn decode_eof(&mut self, buf: &mut BytesMut) -> Result<Option<Vec<u8>>, FrameError> {
        match self.decode(buf)? {
            Some(frame) => Ok(Some(frame)),
            None => {
                let rest = buf.len();
                self.skip(buf, rest);
                self.reset();
                Ok(None)
            }
        }
    }
}

impl Encoder<Vec<u8>> for WatchCodec {
    type Error = FrameError;

    fn encode(&mut self, item: Vec<u8>, dst: &mut BytesMut) -> Result<(), FrameError> {
        dst.extend_from_slice(&item);
        Ok(())
    }
}

impl Encoder<&[u8]> for WatchCodec {
    type Error = FrameError;

    fn encode(&mut self, item: &[u8], dst: &mut BytesMut) -> Result<(), FrameError> {
        dst.extend_from_slice(item);
        Ok(())
    }
}

/// Replaces `}`+`01..05` with `} [ ] , *`.
pub(crate) fn unescape(wire: &[u8]) -> Result<Vec<u8>, FrameError> {
    let mut out = Vec::with_capacity(wire.len());
    let mut bytes = wire.iter();
    while let Some(&b) = bytes.next() {
        if b != b'}' {
            out.push(b);
            continue;
        }
        let code = bytes.next().copied().unwrap_or(0);
        let plain = match code {
            0x01 => b'}',
            0x02 => b'[',
            0x03 => b']',
            0x04 => b',',
            0x05 => b'*',
            byte => return Err(FrameError::BadEscape { byte }),
        };
        out.push(plain);
    }
    Ok(out)
}
