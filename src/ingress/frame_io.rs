//! A connection's frames: bytes from the socket through the protocol's codec, and replies back.
//!
//! In place of tokio-util's `Framed`, which keeps (and, at the first read, fills) an 8 KiB buffer
//! each way for every connection: a device's frames are tens to a few hundred bytes and most
//! connections sit idle between heartbeats, so the read buffer is taken at [`READ_CHUNK`] when a
//! read begins, grows only for a longer frame (the codec bounds it at `max_frame_bytes`) and is let
//! go once every byte read has become a frame; a reply is encoded into a buffer that lives only
//! while it is written. `next` is cancel-safe like `Framed`'s: bytes read stay in the buffer.

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_util::codec::{Decoder, Encoder};

use super::connection::DeviceIo;

/// Bytes asked of the socket per read.
pub const READ_CHUNK: usize = 256;

/// A device connection's stream of frames.
pub struct FrameIo<C> {
    io: Box<dyn DeviceIo>,
    codec: C,
    read: BytesMut,
    eof: bool,
}

impl<C> FrameIo<C>
where
    C: Decoder + Encoder<Bytes, Error = std::io::Error>,
{
    /// Frames of `io`, cut by `codec`.
    pub fn new(io: Box<dyn DeviceIo>, codec: C) -> FrameIo<C> {
        FrameIo {
            io,
            codec,
            read: BytesMut::new(),
            eof: false,
        }
    }

    /// The next frame; `None` once the peer has closed and nothing is left.
    pub async fn next(&mut self) -> Option<Result<C::Item, <C as Decoder>::Error>> {
        loop {
            if self.eof {
                return self.codec.decode_eof(&mut self.read).transpose();
            }
            match self.codec.decode(&mut self.read) {
                Ok(Some(frame)) => {
                    if self.read.is_empty() {
                        // Nothing left over: let the frame take the chunk with it rather than
                        // keep it for a connection that may now sleep until its next heartbeat.
                        self.read = BytesMut::new();
                    }
                    return Some(Ok(frame));
                }
                Ok(None) => {}
                Err(e) => return Some(Err(e)),
            }
            if self.read.capacity() - self.read.len() < READ_CHUNK / 4 {
                self.read.reserve(READ_CHUNK);
            }
            match self.io.read_buf(&mut self.read).await {
                Ok(0) => self.eof = true,
                Ok(_) => {}
                Err(e) => return Some(Err(e.into())),
            }
        }
    }

    /// Encodes `reply` and writes it out.
    pub async fn send(&mut self, reply: Bytes) -> std::io::Result<()> {
        let mut out = BytesMut::with_capacity(reply.len() + 16);
        self.codec.encode(reply, &mut out)?;
        self.io.write_all(&out).await?;
        self.io.flush().await
    }
}
