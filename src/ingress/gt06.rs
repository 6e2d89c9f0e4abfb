//! GT06 (Concox) pendants and trackers. The login frame carries the IMEI; later frames belong to it.
//! Frames with a wrong CRC-16/X-25 are still decoded (real devices and anonymised captures send
//! them), logged and counted, so that an alarm is never dropped for a checksum.

use bytes::BytesMut;
use onekey_device_protocols::gt06::{self, CrcStatus, Gt06Codec, Session};
use onekey_device_protocols::{Decoded, ServerCommand};

use super::deployed::DeployedProtocol;

/// GT06 for [`Deployed`](super::deployed::Deployed).
#[derive(Debug, Default, Clone, Copy)]
pub struct Gt06;

impl DeployedProtocol for Gt06 {
    const PROTOCOL: &'static str = "gt06";
    type Frame = BytesMut;
    type Codec = Gt06Codec;
    type Session = Session;

    fn codec(max_frame: usize) -> Gt06Codec {
        Gt06Codec::new(max_frame)
    }

    fn decode(frame: &[u8], session: &mut Session, now_s: i64) -> Result<Decoded, String> {
        let parsed = gt06::parse_at(frame, session, now_s).map_err(|e| e.to_string())?;
        if let CrcStatus::Mismatch { .. } = parsed.crc {
            tracing::warn!(crc = ?parsed.crc, "GT06 frame with a wrong CRC; decoded anyway");
            metrics::counter!("onekey_crc_mismatches_total", "protocol" => Self::PROTOCOL)
                .increment(1);
        }
        Ok(parsed.decoded)
    }

    fn logged_in(session: &Session) -> Option<String> {
        session.imei().map(str::to_owned)
    }

    fn encode(
        command: &ServerCommand,
        id: u32,
        _ident: &str,
        session: &Session,
        _now_s: i64,
    ) -> Option<Vec<u8>> {
        gt06::encode_command(command, session, id)
    }
}
