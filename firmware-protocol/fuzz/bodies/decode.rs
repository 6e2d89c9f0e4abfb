//! Arbitrary bytes through the receive path: `frame_len`, `decode`, `verify`. Nothing may panic, and
//! the answers must agree with each other.

use onekey_protocol::{DecodeError, Key, MAX_FRAME_LEN, decode, encode, frame_len};

const KEY: Key = [0x5a; 32];

/// One fuzz input.
pub fn run(data: &[u8]) {
    let len = frame_len(data);
    match decode(data) {
        Ok((unverified, used)) => {
            assert_eq!(len, Ok(used));
            assert!(used <= data.len() && used <= MAX_FRAME_LEN);
            let _ = unverified.device_id();
            if let Ok(frame) = unverified.verify(&KEY) {
                // Only reachable with a correct tag; then re-encoding must give the same bytes.
                let mut out = [0u8; MAX_FRAME_LEN];
                let n = encode(&frame.header, &frame.message, &KEY, &mut out).expect("re-encode");
                assert_eq!(&out[..n], &data[..used]);
            }
        }
        Err(DecodeError::Incomplete { needed }) => {
            assert!(needed > 0);
            if let Ok(total) = len {
                assert_eq!(data.len() + needed, total);
            }
        }
        Err(e) => {
            let _ = e.as_str();
            if let Err(prefix_error) = len {
                assert_eq!(prefix_error, e);
            }
        }
    }
}
