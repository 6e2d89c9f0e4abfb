//! H02 (Sinotrack "HQ") trackers: text `*HQ,…#` and binary `$…` frames, each carrying the device id.

use bytes::BytesMut;
use onekey_device_protocols::h02::{self, H02Codec, Session};
use onekey_device_protocols::{Decoded, ServerCommand};

use super::deployed::DeployedProtocol;

/// H02 for [`Deployed`](super::deployed::Deployed).
#[derive(Debug, Default, Clone, Copy)]
pub struct H02;

impl DeployedProtocol for H02 {
    const PROTOCOL: &'static str = "h02";
    type Frame = BytesMut;
    type Codec = H02Codec;
    type Session = Session;

    fn codec(max_frame: usize) -> H02Codec {
        H02Codec::new(max_frame)
    }

    fn decode(frame: &[u8], session: &mut Session, now_s: i64) -> Result<Decoded, String> {
        h02::parse_at(frame, session, now_s).map_err(|e| e.to_string())
    }

    fn encode(
        command: &ServerCommand,
        _id: u32,
        ident: &str,
        _session: &Session,
        now_s: i64,
    ) -> Option<Vec<u8>> {
        h02::encode_command_at(command, ident, now_s)
    }
}
