//! "3G watch" text protocol (`[3G*ID*LEN*CONTENT]`, also SG/CS/ZJ): elderly 4G watches. Every frame
//! carries the watch id.

use onekey_device_protocols::watch::{self, Session, WatchCodec};
use onekey_device_protocols::{Decoded, ServerCommand};

use super::deployed::DeployedProtocol;

/// The watch protocol for [`Deployed`](super::deployed::Deployed).
#[derive(Debug, Default, Clone, Copy)]
pub struct Watch;

impl DeployedProtocol for Watch {
    const PROTOCOL: &'static str = "watch";
    type Frame = Vec<u8>;
    type Codec = WatchCodec;
    type Session = Session;

    fn codec(max_frame: usize) -> WatchCodec {
        WatchCodec::new(max_frame)
    }

    fn decode(frame: &[u8], session: &mut Session, _now_s: i64) -> Result<Decoded, String> {
        watch::parse(frame, session).map_err(|e| e.to_string())
    }

    fn encode(
        command: &ServerCommand,
        _id: u32,
        ident: &str,
        session: &Session,
        _now_s: i64,
    ) -> Option<Vec<u8>> {
        watch::encode_command(command, ident, session)
    }
}
