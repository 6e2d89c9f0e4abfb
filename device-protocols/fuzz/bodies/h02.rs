//! Arbitrary bytes through the H02 codec (in input-chosen chunks) and `parse`.

use bytes::BytesMut;
use onekey_device_protocols::h02::{self, H02Codec, Session};
use tokio_util::codec::Decoder;

/// One fuzz input.
pub fn run(data: &[u8]) {
    let Some((&chunk, stream)) = data.split_first() else {
        return;
    };
    let mut codec = H02Codec::new(512);
    let mut session = Session::new();
    session.set_ack(chunk & 1 == 1);
    let mut buf = BytesMut::new();
    for piece in stream.chunks(usize::from(chunk).max(1)) {
        buf.extend_from_slice(piece);
        while let Ok(Some(frame)) = codec.decode(&mut buf) {
            assert!(frame.len() <= 512);
            let _ = h02::parse(&frame, &mut session);
        }
    }
    while let Ok(Some(frame)) = codec.decode_eof(&mut buf) {
        let _ = h02::parse(&frame, &mut session);
    }
    let _ = h02::parse(stream, &mut session);
}
