//! Arbitrary bytes through the DC-09 codec (in input-chosen chunks) and `parse`, with a keyed,
//! a plain and an unknown account, in lenient and strict mode.

use bytes::BytesMut;
use onekey_device_protocols::sia::{self, Account, Integrity, Session, SiaCodec};
use tokio_util::codec::Decoder;

fn session(strict: bool) -> Session {
    let s = Session::new(|account| match account.len() % 3 {
        0 => Some(Account::Aes(b"AAAAAAAAAAAAAAAA".to_vec())),
        1 => Some(Account::Plain),
        _ => None,
    });
    if strict {
        s.with_integrity(Integrity::Strict)
    } else {
        s
    }
}

/// One fuzz input.
pub fn run(data: &[u8]) {
    let Some((&chunk, stream)) = data.split_first() else {
        return;
    };
    let now = 1_600_000_000 + i64::from(chunk) * 1_000_000;
    let mut codec = SiaCodec::new(1024);
    let mut session = session(chunk % 2 == 0);
    let mut buf = BytesMut::new();
    for piece in stream.chunks(usize::from(chunk).max(1)) {
        buf.extend_from_slice(piece);
        while let Ok(Some(frame)) = codec.decode(&mut buf) {
            assert!(frame.len() <= 1024);
            let _ = sia::parse(&frame, &mut session, now);
        }
    }
    while let Ok(Some(frame)) = codec.decode_eof(&mut buf) {
        let _ = sia::parse(&frame, &mut session, now);
    }
    let _ = sia::parse(stream, &mut session, now);
}
