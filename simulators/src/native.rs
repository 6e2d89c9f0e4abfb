//! A native-protocol device: encodes frames with `onekey-protocol`, sends them over TCP and reads the
//! server's authenticated replies.

use std::time::Duration;

use onekey_protocol::{
    Alarm, AlarmKind, Cancel, Frame, Header, Heartbeat, Hello, Key, Location, MAX_FRAME_LEN,
    Message,
};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

/// Errors a simulated device can see.
#[derive(Debug, thiserror::Error)]
pub enum DeviceError {
    /// Socket error.
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
    /// The server closed the connection.
    #[error("connection closed by the server")]
    Closed,
    /// No reply in time.
    #[error("no reply within {0:?}")]
    Timeout(Duration),
    /// The reply did not decode or verify.
    #[error("bad reply: {0}")]
    BadReply(String),
}

/// A device's byte stream: TCP, or TLS over TCP.
pub trait DeviceStream: AsyncRead + AsyncWrite + Unpin + Send {}

impl<T: AsyncRead + AsyncWrite + Unpin + Send> DeviceStream for T {}

/// One simulated native device.
pub struct NativeDevice {
    stream: Box<dyn DeviceStream>,
    /// Device id on the wire.
    pub device_id: u64,
    key: Key,
    /// Next sequence number.
    pub seq: u32,
    buf: Vec<u8>,
}

impl NativeDevice {
    /// Connects to the server's native listener.
    pub async fn connect(
        addr: &str,
        device_id: u64,
        key: Key,
    ) -> Result<NativeDevice, DeviceError> {
        let stream = TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        Ok(NativeDevice::over(stream, device_id, key))
    }

    /// A device speaking over an already open `stream` (a TLS session, say).
    pub fn over(stream: impl DeviceStream + 'static, device_id: u64, key: Key) -> NativeDevice {
        NativeDevice {
            stream: Box::new(stream),
            device_id,
            key,
            seq: 1,
            buf: Vec::with_capacity(256),
        }
    }

    /// Encodes `message` with the next sequence number; returns the frame bytes and its sequence.
    pub fn frame(&mut self, message: Message) -> (Vec<u8>, u32) {
        let seq = self.seq;
        self.seq += 1;
        (self.frame_with_seq(message, seq), seq)
    }

    /// Encodes `message` with a given sequence number (for retries and replays).
    pub fn frame_with_seq(&self, message: Message, seq: u32) -> Vec<u8> {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs() as u32)
            .unwrap_or(0);
        let header = Header {
            device_id: self.device_id,
            seq,
            timestamp: now,
        };
        let mut out = [0u8; MAX_FRAME_LEN];
        let n = onekey_protocol::encode(&header, &message, &self.key, &mut out).unwrap_or(0);
        out[..n].to_vec()
    }

    /// Writes raw bytes.
    pub async fn send_raw(&mut self, bytes: &[u8]) -> Result<(), DeviceError> {
        self.stream.write_all(bytes).await?;
        Ok(())
    }

    /// Reads the next server frame and verifies it with the device key.
    pub async fn recv(&mut self, within: Duration) -> Result<Frame, DeviceError> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            match onekey_protocol::decode(&self.buf) {
                Ok((unverified, used)) => {
                    let frame = unverified
                        .verify(&self.key)
                        .map_err(|e| DeviceError::BadReply(e.to_string()));
                    self.buf.drain(..used);
                    return frame;
                }
                Err(onekey_protocol::DecodeError::Incomplete { .. }) => {}
                Err(e) => return Err(DeviceError::BadReply(e.to_string())),
            }
            let mut chunk = [0u8; 256];
            let n = tokio::time::timeout_at(deadline, self.stream.read(&mut chunk))
                .await
                .map_err(|_| DeviceError::Timeout(within))??;
            if n == 0 {
                return Err(DeviceError::Closed);
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }

    /// Sends `message` with the next sequence number and waits for the server's reply to it.
    pub async fn request(
        &mut self,
        message: Message,
        within: Duration,
    ) -> Result<(u32, Frame), DeviceError> {
        let (bytes, seq) = self.frame(message);
        self.send_raw(&bytes).await?;
        Ok((seq, self.recv(within).await?))
    }

    /// Says hello.
    pub async fn hello(&mut self, within: Duration) -> Result<Frame, DeviceError> {
        let hello = Message::Hello(Hello {
            firmware_version: 1,
            model: 1,
            heartbeat_interval_s: 300,
        });
        Ok(self.request(hello, within).await?.1)
    }

    /// Sends an alarm and waits for its ACK.
    pub async fn alarm(
        &mut self,
        kind: AlarmKind,
        location: Option<Location>,
        within: Duration,
    ) -> Result<(u32, Frame), DeviceError> {
        self.request(Message::Alarm(Alarm { kind, location }), within)
            .await
    }

    /// Cancels the alarm sent as `alarm_seq` ("I'm OK") and waits for the ACK.
    pub async fn cancel(&mut self, alarm_seq: u32, within: Duration) -> Result<Frame, DeviceError> {
        Ok(self
            .request(Message::Cancel(Cancel { alarm_seq }), within)
            .await?
            .1)
    }

    /// Sends a heartbeat and waits for its ACK.
    pub async fn heartbeat(&mut self, battery: u8, within: Duration) -> Result<Frame, DeviceError> {
        let hb = Message::Heartbeat(Heartbeat {
            battery_percent: Some(battery),
            mains_power: true,
            signal_percent: Some(80),
            location: None,
        });
        Ok(self.request(hb, within).await?.1)
    }

    /// True when the server has closed the connection (reads EOF or an error within `within`).
    pub async fn is_closed_by_server(&mut self, within: Duration) -> bool {
        let mut chunk = [0u8; 256];
        loop {
            match tokio::time::timeout(within, self.stream.read(&mut chunk)).await {
                Ok(Ok(0)) | Ok(Err(_)) => return true,
                Ok(Ok(_)) => continue,
                Err(_) => return false,
            }
        }
    }
}

/// A 32-byte key derived from a seed, for tests and demos (never for real devices).
pub fn demo_key(seed: u64) -> Key {
    let mut key = [0u8; 32];
    for (i, b) in key.iter_mut().enumerate() {
        *b = (seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add((i as u64).wrapping_mul(1442695040888963407))
            >> 24) as u8;
    }
    key
}
