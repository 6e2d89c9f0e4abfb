//! Arbitrary bytes through the watch codec (in input-chosen chunks) and `parse`.

use bytes::BytesMut;
use onekey_device_protocols::watch::{self, Session, WatchCodec};
use tokio_util::codec::Decoder;

/// One fuzz input.
pub fn run(data: &[u8]) {
    let Some((&chunk, stream)) = data.split_first() else {
        return;
    };
    let mut codec = WatchCodec::new(512);
    let mut session = Session::new();
    let mut buf = BytesMut::new();
    for piece in stream.chunks(usize::from(chunk).max(1)) {
        buf.extend_from_slice(piece);
        while let Ok(Some(frame)) = codec.decode(&mut buf) {
            assert!(frame.len() <= 512);
            let _ = watch::parse(&frame, &mut session);
        }
    }
    while let Ok(Some(frame)) = codec.decode_eof(&mut buf) {
        let _ = watch::parse(&frame, &mut session);
    }
    let _ = watch::parse(stream, &mut session);
}
