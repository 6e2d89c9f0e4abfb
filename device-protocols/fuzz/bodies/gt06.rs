//! Arbitrary bytes through the GT06 codec (in input-chosen chunks) and `parse`, before and after a
//! login so that every packet decoder is reached.

use bytes::BytesMut;
use onekey_device_protocols::gt06::{self, Gt06Codec, Session};
use tokio_util::codec::Decoder;

/// A valid login (IMEI 864717003283581, serial 9).
const LOGIN: &[u8] = &[
    0x78, 0x78, 0x0D, 0x01, 0x08, 0x64, 0x71, 0x70, 0x03, 0x28, 0x35, 0x81, 0x00, 0x09, 0x3F, 0x04,
    0x0D, 0x0A,
];

/// One fuzz input.
pub fn run(data: &[u8]) {
    let Some((&chunk, stream)) = data.split_first() else {
        return;
    };
    let mut codec = Gt06Codec::new(512);
    let mut fresh = Session::new();
    let mut session = Session::with_model(
        ["", "LW4G", "SEEWORLD", "R11", "XT40", "QH302R"][usize::from(chunk % 6)],
    );
    let _ = gt06::parse(LOGIN, &mut session);
    let mut buf = BytesMut::new();
    for piece in stream.chunks(usize::from(chunk).max(1)) {
        buf.extend_from_slice(piece);
        while let Ok(Some(frame)) = codec.decode(&mut buf) {
            assert!(frame.len() <= 512);
            let _ = gt06::parse(&frame, &mut fresh);
            let _ = gt06::parse(&frame, &mut session);
        }
    }
    while let Ok(Some(frame)) = codec.decode_eof(&mut buf) {
        let _ = gt06::parse(&frame, &mut session);
    }
    let _ = gt06::parse(stream, &mut session);
}
