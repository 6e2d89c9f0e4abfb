//! Stream framing for DC-09: `<LF>` + CRC (4 hex or 2 binary bytes) + `0LLL` + `"…` + `<CR>`.

use bytes::{Buf, BytesMut};
use tokio_util::codec::{Decoder, Encoder};

/// A framing failure. The offending bytes are already consumed.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    /// No `<CR>` within the configured maximum frame length.
    #[error("DC-09 frame longer than {limit} bytes")]
    TooLarge {
        /// The configured maximum frame length.
        limit: usize,
    },
    /// The underlying transport failed.
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// What the bytes at an `<LF>` are.
#[derive(Debug, PartialEq, Eq)]
enum Start {
    /// A header; the body's `"` is at this offset from the `<LF>`.
    Quote(usize),
    NeedMore,
    No,
}

fn is_hex(b: &u8) -> bool {
    b.is_ascii_hexdigit()
}

/// Checks `s` (starting at an `<LF>`) for `<LF>` + 4 hex CRC + 4 hex length + `"` or
/// `<LF>` + 2 CRC bytes + 4 hex length + `"`.
fn check_start(s: &[u8]) -> Start {
    let binary = s.get(3..7).map(|l| l.iter().all(is_hex));
    if binary == Some(true) && s.get(7) == Some(&b'"') {
        return Start::Quote(7);
    }
    let hex_prefix = s.get(1..9.min(s.len())).unwrap_or_default();
    if hex_prefix.iter().all(is_hex) {
        match s.get(9) {
            Some(b'"') => return Start::Quote(9),
            None => return Start::NeedMore,
            Some(_) => {}
        }
    }
    let binary_pending = s.len() < 8 && s.get(3..).unwrap_or_default().iter().take(4).all(is_hex);
    if binary_pending {
        Start::NeedMore
    } else {
        Start::No
    }
}

/// Cuts DC-09 frames out of a TCP byte stream.
///
/// Each item is one frame from `<LF>` to `<CR>` inclusive, ready for [`super::parse`]. Bytes before
/// an `<LF>` that starts a valid header are skipped (and counted), as is a frame whose `<CR>` never
/// came before the next valid header.
#[derive(Debug)]
pub struct SiaCodec {
    max_frame_len: usize,
    /// Offset of the body's `"` once a header was recognised at the start of the buffer.
    quote: Option<usize>,
    /// How far the `<CR>` search got.
    scanned: usize,
    skipped_pending: u64,
    skipped_total: u64,
}

impl SiaCodec {
    /// A codec that rejects frames longer than `max_frame_len` bytes (`<LF>` and `<CR>` included).
    pub fn new(max_frame_len: usize) -> Self {
        Self {
            max_frame_len: max_frame_len.max(11),
            quote: None,
            scanned: 0,
            skipped_pending: 0,
            skipped_total: 0,
        }
    }

    /// Bytes discarded as garbage since the last call.
    pub fn take_skipped(&mut self) -> u64 {
        std::mem::take(&mut self.skipped_pending)
    }

    /// Bytes discarded as garbage since the codec was created.
    pub fn skipped_total(&self) -> u64 {
        self.skipped_total
    }

    fn skip(&mut self, buf: &mut BytesMut, n: usize) {
        let n = n.min(buf.len());
        buf.advance(n);
        self.skipped_pending += n as u64;
        self.skipped_total += n as u64;
    }

    /// Drops garbage up to the next header; `Some(quote offset)` once one is at the buffer start.
    fn seek_start(&mut self, buf: &mut BytesMut) -> Option<usize> {
        let mut from = 0;
        while let Some(rel) = buf
            .get(from..)
            .and_then(|s| s.iter().position(|&b| b == b'\n'))
        {
            let pos = from + rel;
            match check_start(buf.get(pos..).unwrap_or_default()) {
                Start::Quote(q) => {
                    self.skip(buf, pos);
                    self.scanned = q + 1;
                    return Some(q);
                }
                Start::NeedMore => {
                    self.skip(buf, pos);
                    return None;
                }
                Start::No => from = pos + 1,
            }
        }
        let all = buf.len();
        self.skip(buf, all);
        None
    }

    /// Looks for the `<CR>`; `Ok(Some(len))` when the frame is complete.
    fn scan(&mut self, buf: &mut BytesMut) -> Result<Option<usize>, FrameError> {
        while let Some(&b) = buf.get(self.scanned) {
            if self.scanned >= self.max_frame_len {
                self.skip(buf, 1);
                self.quote = None;
                return Err(FrameError::TooLarge {
                    limit: self.max_frame_len,
                });
            }
            match b {
                b'\r' => {
                    self.quote = None;
                    return Ok(Some(self.scanned + 1));
                }
                b'\n' => match check_start(buf.get(self.scanned..).unwrap_or_default()) {
                    Start::Quote(q) => {
                        // A new frame starts before this one ended: this one was truncated.
                        let n = self.scanned;
                        self.skip(buf, n);
                        self.quote = Some(q);
                        self.scanned = q + 1;
                        continue;
                    }
                    Start::NeedMore => return Ok(None),
                    Start::No => {}
                },
                _ => {}
            }
            self.scanned += 1;
        }
        Ok(None)
    }
}

impl Default for SiaCodec {
    /// A codec with a 4 KiB frame limit (DC-09 messages are a few hundred bytes).
    fn default() -> Self {
        Self::new(4096)
    }
}

impl Decoder for SiaCodec {
    type Item = Vec<u8>;
    type Error = FrameError;

    fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Vec<u8>>, FrameError> {
        if self.quote.is_none() {
            self.quote = self.seek_start(buf);
            if self.quote.is_none() {
                return Ok(None);
            }
        }
        match self.scan(buf)? {
            Some(len) => Ok(Some(buf.split_to(len).to_vec())),
            None => Ok(None),
        }
    }

    fn decode_eof(&mut self, buf: &mut BytesMut) -> Result<Option<Vec<u8>>, FrameError> {
        match self.decode(buf)? {
            Some(frame) => Ok(Some(frame)),
            None => {
                let rest = buf.len();
                self.skip(buf, rest);
                self.quote = None;
                Ok(None)
            }
        }
    }
}

impl Encoder<Vec<u8>> for SiaCodec {
    type Error = FrameError;

    fn encode(&mut self, item: Vec<u8>, dst: &mut BytesMut) -> Result<(), FrameError> {
        dst.extend_from_slice(&item);
        Ok(())
    }
}

impl Encoder<&[u8]> for SiaCodec {
    type Error = FrameError;

    fn encode(&mut self, item: &[u8], dst: &mut BytesMut) -> Result<(), FrameError> {
        dst.extend_from_slice(item);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn start_detection() {
        assert_eq!(check_start(b"\n9618004D\"SIA"), Start::Quote(9));
        assert_eq!(check_start(b"\n\x12\x340047\"SIA"), Start::Quote(7));
        assert_eq!(check_start(b"\n9618"), Start::NeedMore);
        assert_eq!(check_start(b"\n"), Start::NeedMore);
        assert_eq!(check_start(b"\nhello world"), Start::No);
        assert_eq!(check_start(b"\n9618004DX"), Start::No);
    }
}
