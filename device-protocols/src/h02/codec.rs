//! Cutting H02 frames out of a TCP byte stream.

use bytes::{Buf, Bytes, BytesMut};
use tokio_util::codec::{Decoder, Encoder};

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

/// Short binary frame length.
const BINARY_SHORT: usize = 32;
/// Long binary frame length (some devices append cell data).
const BINARY_LONG: usize = 45;

/// A `tokio_util` codec for H02: decodes text sentences (`*` … `#`, trailing CR/LF dropped) and
/// binary `$` (32 or 45 bytes) / `X` (32 bytes) frames, and encodes raw reply bytes.
///
/// Bytes before a marker are skipped and counted ([`H02Codec::skipped_bytes`]); CR/LF between
/// frames are not counted. The binary length is decided once per connection: 45 when the first `$`
/// frame is exactly 45 bytes long or followed by another frame at byte 45 (but not at byte 32),
/// otherwise 32. A lone 32-byte frame is cut at 32 without fixing the choice, so a 45-byte device
/// whose first frame arrives split after byte 32 costs one truncated frame, not the connection.
#[derive(Debug, Clone)]
pub struct H02Codec {
    max_frame_len: usize,
    binary_len: Option<usize>,
    skipped: u64,
}

impl Default for H02Codec {
    fn default() -> Self {
        Self::new(Self::DEFAULT_MAX_FRAME_LEN)
    }
}

fn is_marker(b: u8) -> bool {
    matches!(b, b'*' | b'$' | b'X')
}

impl H02Codec {
    /// The maximum frame length [`H02Codec::default`] uses (text sentences with many cells or an
    /// SMS body are a few hundred bytes).
    pub const DEFAULT_MAX_FRAME_LEN: usize = 2048;

    /// A codec that fails with [`FrameError::TooLarge`] rather than buffer a frame longer than
    /// `max_frame_len` bytes; the binary length is detected.
    pub fn new(max_frame_len: usize) -> Self {
        Self {
            max_frame_len,
            binary_len: None,
            skipped: 0,
        }
    }

    /// A codec with a fixed binary `$` frame length (traccar's `h02.messageLength`).
    pub fn with_binary_len(max_frame_len: usize, binary_len: usize) -> Self {
        Self {
            max_frame_len,
            binary_len: Some(binary_len),
            skipped: 0,
        }
    }

    /// The binary frame length in use, once known.
    pub fn binary_len(&self) -> Option<usize> {
        self.binary_len
    }

    /// Bytes skipped so far because they were not part of any frame.
    pub fn skipped_bytes(&self) -> u64 {
        self.skipped
    }

    fn skip_to_marker(&mut self, src: &mut BytesMut) {
        let at = src.iter().position(|&b| is_marker(b)).unwrap_or(src.len());
        let noise = src
            .get(..at)
            .unwrap_or_default()
            .iter()
            .filter(|&&b| b != b'\r' && b != b'\n')
            .count();
        self.skipped = self
            .skipped
            .saturating_add(u64::try_from(noise).unwrap_or(u64::MAX));
        src.advance(at);
    }

    /// The `$` frame length, or `None` while it cannot be told yet.
    fn binary_frame_len(&mut self, src: &[u8]) -> Option<usize> {
        if let Some(n) = self.binary_len {
            return Some(n);
        }
        let at = |i: usize| src.get(i).copied();
        if src.len() == BINARY_SHORT {
            return Some(BINARY_SHORT);
        }
        let decided = if at(BINARY_SHORT).is_some_and(is_marker) {
            BINARY_SHORT
        } else if src.len() < BINARY_LONG {
            return None;
        } else if src.len() == BINARY_LONG || at(BINARY_LONG).is_some_and(is_marker) {
            BINARY_LONG
        } else {
            BINARY_SHORT
        };
        self.binary_len = Some(decided);
        Some(decided)
    }

    fn fixed(&self, src: &mut BytesMut, n: usize) -> Result<Option<BytesMut>, FrameError> {
        if n > self.max_frame_len {
            return Err(FrameError::TooLarge {
                limit: self.max_frame_len,
            });
        }
        if src.len() >= n {
            Ok(Some(src.split_to(n)))
        } else {
            src.reserve(n - src.len());
            Ok(None)
        }
    }
}

impl Decoder for H02Codec {
    type Item = BytesMut;
    type Error = FrameError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<BytesMut>, FrameError> {
        self.skip_to_marker(src);
        match src.first() {
            Some(b'*') => {
                let window = src
                    .get(..src.len().min(self.max_frame_len))
                    .unwrap_or_default();
                match window.iter().position(|&b| b == b'#') {
                    Some(end) => {
                        let frame = src.split_to(end + 1);
                        let crlf = src
                            .iter()
                            .take_while(|&&b| b == b'\r' || b == b'\n')
                            .count();
                        src.advance(crlf);
                        Ok(Some(frame))
                    }
                    None if src.len() >= self.max_frame_len => Err(FrameError::TooLarge {
                        limit: self.max_frame_len,
                    }),
                    None => Ok(None),
                }
            }
            Some(b'$') if src.len() >= BINARY_SHORT => match self.binary_frame_len(src) {
                Some(n) => self.fixed(src, n),
                None => Ok(None),
            },
            Some(b'X') => self.fixed(src, BINARY_SHORT),
            _ => Ok(None),
        }
    }

    fn decode_eof(&mut self, src: &mut BytesMut) -> Result<Option<BytesMut>, FrameError> {
        if let Some(frame) = self.decode(src)? {
            return Ok(Some(frame));
        }
        // A `$` frame whose length could not be told yet: the stream ended, so it is a short one.
        if src.first() == Some(&b'$') && src.len() >= BINARY_SHORT {
            return Ok(Some(src.split_to(BINARY_SHORT)));
        }
        let n = src.len();
        self.skipped = self
            .skipped
            .saturating_add(u64::try_from(n).unwrap_or(u64::MAX));
        src.clear();
        Ok(None)
    }
}

impl Encoder<Bytes> for H02Codec {
    type Error = FrameError;

    fn encode(&mut self, item: Bytes, dst: &mut BytesMut) -> Result<(), FrameError> {
        dst.extend_from_slice(&item);
        Ok(())
    }
}

impl Encoder<Vec<u8>> for H02Codec {
    type Error = FrameError;

    fn encode(&mut self, item: Vec<u8>, dst: &mut BytesMut) -> Result<(), FrameError> {
        dst.extend_from_slice(&item);
        Ok(())
    }
}
