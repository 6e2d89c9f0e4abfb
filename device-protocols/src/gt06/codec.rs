//! Cutting GT06 frames out of a TCP byte stream.

use bytes::{Buf, Bytes, BytesMut};
use tokio_util::codec::{Decoder, Encoder};

use super::frame::{TRAILER, crc_consistent};

/// Why the stream cannot be framed any further. The connection should be closed.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    /// No frame ends within the configured maximum.
    #[error("no frame ends within {limit} bytes")]
    TooLarge {
        /// The configured maximum frame length.
        limit: usize,
    },
    /// The underlying transport failed.
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// A `tokio_util` codec for GT06: decodes whole frames (`78 78 …` / `79 79 … 0D 0A`) and encodes
/// raw reply bytes, so one `Framed` serves both directions.
///
/// Framing: bytes before a start marker are skipped and counted ([`Gt06Codec::skipped_bytes`]). A
/// frame whose LEN lands on `0D 0A` is cut there. Otherwise (Wi-Fi packets carry an access-point
/// count instead of LEN; some devices miscount) the frame ends at the first `0D 0A` that is
/// followed by another start marker or by the end of what was received — but while LEN says more
/// bytes are still due, a frame ending at the end of the buffer is accepted early only if its CRC
/// checks or it is a login whose LEN overstates it by at most 4 bytes (devices that leave out the
/// serial and CRC, which would otherwise wait for an ACK forever). So a `0D 0A` inside the data of
/// a frame that TCP split in two is not mistaken for its end; a frame with a wrong LEN and no valid
/// CRC is then cut once the next frame (or the end of the stream) shows where it stops.
#[derive(Debug, Clone)]
pub struct Gt06Codec {
    max_frame_len: usize,
    skipped: u64,
}

/// Smallest prefix (marker + LEN + PROTO) worth looking at.
const MIN_PREFIX: usize = 5;
/// How far LEN may overstate a login that ends at the end of the buffer for it to be taken early.
const LEN_SLACK: usize = 4;

impl Default for Gt06Codec {
    fn default() -> Self {
        Self::new(Self::DEFAULT_MAX_FRAME_LEN)
    }
}

impl Gt06Codec {
    /// The maximum frame length [`Gt06Codec::default`] uses. Ordinary GT06 frames are under 300
    /// bytes; extended multimedia frames can be longer.
    pub const DEFAULT_MAX_FRAME_LEN: usize = 4096;

    /// A codec that fails with [`FrameError::TooLarge`] rather than buffer a frame longer than
    /// `max_frame_len` bytes.
    pub fn new(max_frame_len: usize) -> Self {
        Self {
            max_frame_len,
            skipped: 0,
        }
    }

    /// The configured maximum frame length.
    pub fn max_frame_len(&self) -> usize {
        self.max_frame_len
    }

    /// Bytes skipped so far because they were not part of any frame (garbage before a start marker,
    /// an unterminated tail at end of stream). Log it when it grows.
    pub fn skipped_bytes(&self) -> u64 {
        self.skipped
    }

    fn skip(&mut self, src: &mut BytesMut, n: usize) {
        src.advance(n);
        self.skipped = self
            .skipped
            .saturating_add(u64::try_from(n).unwrap_or(u64::MAX));
    }

    /// Drops everything before the first `78 78` / `79 79`, keeping a trailing lone `78`/`79`. In a
    /// run like `78 78 78` the later marker is taken unless the earlier one opens a complete frame.
    fn skip_to_marker(&mut self, src: &mut BytesMut) {
        let start = src.windows(2).position(is_marker).map(|at| {
            let run = src.get(at + 2).is_some() && src.get(at + 2) == src.get(at);
            if run && !declared_frame_complete(src.get(at..).unwrap_or_default()) {
                at + 1
            } else {
                at
            }
        });
        match start {
            Some(0) => {}
            Some(at) => self.skip(src, at),
            None => {
                let keep = usize::from(matches!(src.last(), Some(0x78 | 0x79)));
                let drop = src.len() - keep;
                self.skip(src, drop);
            }
        }
    }

    /// The length of the frame at the start of `src`, if it is complete.
    fn frame_len(&self, src: &BytesMut) -> Result<Option<usize>, FrameError> {
        let declared = declared_len(src);
        if let Some(n) = declared.filter(|&n| src.get(n - 2..n) == Some(&TRAILER[..])) {
            return if n > self.max_frame_len {
                Err(FrameError::TooLarge {
                    limit: self.max_frame_len,
                })
            } else {
                Ok(Some(n))
            };
        }
        let outstanding = declared.filter(|&n| n > src.len());
        if let Some(end) = self.trailer_end(src, outstanding) {
            return Ok(Some(end));
        }
        if src.len() > self.max_frame_len {
            return Err(FrameError::TooLarge {
                limit: self.max_frame_len,
            });
        }
        Ok(None)
    }

    /// The end of the first `0D 0A` that plausibly closes the frame (see the type docs).
    fn trailer_end(&self, src: &BytesMut, outstanding: Option<usize>) -> Option<usize> {
        let from = first_trailer_index(src);
        let limit = src.len().min(self.max_frame_len);
        let window = src.get(from..limit)?;
        window
            .windows(2)
            .enumerate()
            .filter(|(_, w)| *w == TRAILER)
            .find_map(|(i, _)| {
                let end = from + i + 2;
                let rest = src.get(end..).unwrap_or_default();
                let next_is_frame = rest.first().is_some_and(|b| matches!(b, 0x78 | 0x79))
                    && rest.get(..2).is_none_or(is_marker);
                let at_end = rest.is_empty();
                let accept = match outstanding {
                    None => next_is_frame || at_end,
                    Some(declared) => {
                        next_is_frame
                            || (at_end
                                && (crc_consistent(src.get(..end).unwrap_or_default())
                                    || (is_short_login(src) && declared - end <= LEN_SLACK)))
                    }
                };
                accept.then_some(end)
            })
    }
}

/// `78 78 LEN 01`: a short-form login.
fn is_short_login(src: &[u8]) -> bool {
    src.first() == Some(&0x78) && src.get(3) == Some(&0x01)
}

fn is_marker(w: &[u8]) -> bool {
    matches!(w, [0x78, 0x78] | [0x79, 0x79])
}

/// Where a `0D 0A` can first close the frame: after the marker, LEN and PROTO.
fn first_trailer_index(src: &[u8]) -> usize {
    if src.first() == Some(&0x79) {
        MIN_PREFIX
    } else {
        MIN_PREFIX - 1
    }
}

/// True when LEN points at a `0D 0A` already in `src`.
fn declared_frame_complete(src: &[u8]) -> bool {
    declared_len(src).is_some_and(|n| src.get(n - 2..n) == Some(&TRAILER[..]))
}

/// The total length LEN declares: marker + LEN field + LEN + trailer.
fn declared_len(src: &[u8]) -> Option<usize> {
    match src.first()? {
        0x79 => Some(6 + usize::from(u16::from_be_bytes([*src.get(2)?, *src.get(3)?]))),
        _ => Some(5 + usize::from(*src.get(2)?)),
    }
}

impl Decoder for Gt06Codec {
    type Item = BytesMut;
    type Error = FrameError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<BytesMut>, FrameError> {
        self.skip_to_marker(src);
        if src.len() < MIN_PREFIX {
            return Ok(None);
        }
        match self.frame_len(src)? {
            Some(n) => Ok(Some(src.split_to(n))),
            None => {
                if let Some(due) = declared_len(src).filter(|&n| n <= self.max_frame_len) {
                    src.reserve(due.saturating_sub(src.len()));
                }
                Ok(None)
            }
        }
    }

    fn decode_eof(&mut self, src: &mut BytesMut) -> Result<Option<BytesMut>, FrameError> {
        if let Some(frame) = self.decode(src)? {
            return Ok(Some(frame));
        }
        // The stream ended: what is buffered can only be one last frame, up to its first trailer.
        let from = first_trailer_index(src);
        let last = src
            .get(from..src.len().min(self.max_frame_len))
            .and_then(|w| w.windows(2).position(|w| w == TRAILER));
        match last {
            Some(i) if src.len() >= MIN_PREFIX => Ok(Some(src.split_to(from + i + 2))),
            _ => {
                let n = src.len();
                self.skip(src, n);
                Ok(None)
            }
        }
    }
}

impl Encoder<Bytes> for Gt06Codec {
    type Error = FrameError;

    fn encode(&mut self, item: Bytes, dst: &mut BytesMut) -> Result<(), FrameError> {
        dst.extend_from_slice(&item);
        Ok(())
    }
}

impl Encoder<Vec<u8>> for Gt06Codec {
    type Error = FrameError;

    fn encode(&mut self, item: Vec<u8>, dst: &mut BytesMut) -> Result<(), FrameError> {
        dst.extend_from_slice(&item);
        Ok(())
    }
}
