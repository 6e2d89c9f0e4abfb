//! The authentication tag: HMAC-SHA256 with the device's 32-byte key over every byte before the tag,
//! truncated to its first [`TAG_LEN`] bytes, compared in constant time.
//!
//! Why 8 bytes: without the key a forger can only guess, online, one frame per guess, and the server
//! drops the connection after a bad tag; at 2^-64 per guess that is out of reach. NIST SP 800-107r1
//! §5.3 allows truncated HMAC tags (32 bits and up) when failed verifications are limited like this;
//! RFC 2104's general advice of 80 bits assumes no such limit. Every byte costs airtime and battery on
//! NB-IoT, so the 24 bytes saved per frame matter.

use hmac::digest::KeyInit;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

use crate::error::AuthError;
use crate::header::TAG_LEN;

/// Length of a device key in bytes.
pub const KEY_LEN: usize = 32;

/// A device's secret key, shared by the device and the server.
pub type Key = [u8; KEY_LEN];

/// SHA-256's block size: HMAC zero-pads shorter keys to it.
const BLOCK_LEN: usize = 64;

/// The truncated tag of `signed` under `key`.
pub(crate) fn tag(key: &Key, signed: &[u8]) -> [u8; TAG_LEN] {
    // RFC 2104 §2: a key shorter than the block is padded with zeros to the block size. Padding it
    // here lets us use the infallible fixed-size constructor.
    let mut block = [0u8; BLOCK_LEN];
    block[..KEY_LEN].copy_from_slice(key);
    let mut mac = <Hmac<Sha256> as KeyInit>::new(&block.into());
    mac.update(signed);
    let full = mac.finalize().into_bytes();
    let mut out = [0u8; TAG_LEN];
    out.copy_from_slice(&full[..TAG_LEN]);
    out
}

/// Checks `received` against the tag of `signed`, in time independent of where they differ.
pub(crate) fn check(key: &Key, signed: &[u8], received: &[u8; TAG_LEN]) -> Result<(), AuthError> {
    if bool::from(tag(key, signed).ct_eq(received)) {
        Ok(())
    } else {
        Err(AuthError::BadTag)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: Key = {
        let mut k = [0u8; KEY_LEN];
        let mut i = 0;
        while i < KEY_LEN {
            k[i] = i as u8;
            i += 1;
        }
        k
    };

    #[test]
    fn matches_an_independent_hmac() {
        // python3: hmac.new(bytes(range(32)), b"OneKey", hashlib.sha256).hexdigest()[:16]
        assert_eq!(tag(&KEY, b"OneKey"), hex_literal("7ff62d94788ed434"));
        // and the crate's own variable-length constructor
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&KEY).unwrap();
        mac.update(b"OneKey");
        assert_eq!(
            tag(&KEY, b"OneKey")[..],
            mac.finalize().into_bytes()[..TAG_LEN]
        );
    }

    #[test]
    fn check_accepts_only_the_right_tag() {
        let t = tag(&KEY, b"frame");
        assert_eq!(check(&KEY, b"frame", &t), Ok(()));
        assert_eq!(check(&KEY, b"frame!", &t), Err(AuthError::BadTag));
        let mut other = KEY;
        other[31] ^= 1;
        assert_eq!(check(&other, b"frame", &t), Err(AuthError::BadTag));
        for i in 0..TAG_LEN {
            let mut flipped = t;
            flipped[i] ^= 0x80;
            assert_eq!(check(&KEY, b"frame", &flipped), Err(AuthError::BadTag));
        }
    }

    fn hex_literal(s: &str) -> [u8; TAG_LEN] {
        let v = hex::decode(s).unwrap();
        v.try_into().unwrap()
    }
}
