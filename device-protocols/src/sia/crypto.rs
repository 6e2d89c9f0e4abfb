//! AES-CBC with a zero IV and no padding scheme, as DC-09 uses it (reference §6.2). The key length
//! (16, 24 or 32 bytes) selects AES-128/192/256.

use aes::cipher::{BlockDecryptMut, BlockEncryptMut, KeyIvInit, block_padding::NoPadding};

const IV: [u8; 16] = [0; 16];

/// Decrypts `ciphertext` (a whole number of 16-byte blocks); `None` for a bad key or length.
pub(crate) fn decrypt(key: &[u8], ciphertext: &[u8]) -> Option<Vec<u8>> {
    if ciphertext.is_empty() || ciphertext.len() % 16 != 0 {
        return None;
    }
    macro_rules! run {
        ($aes:ty) => {
            cbc::Decryptor::<$aes>::new_from_slices(key, &IV)
                .ok()?
                .decrypt_padded_vec_mut::<NoPadding>(ciphertext)
                .ok()
        };
    }
    match key.len() {
        16 => run!(aes::Aes128),
        24 => run!(aes::Aes192),
        32 => run!(aes::Aes256),
        _ => None,
    }
}

/// Encrypts `plaintext` (a whole number of 16-byte blocks); `None` for a bad key or length.
pub(crate) fn encrypt(key: &[u8], plaintext: &[u8]) -> Option<Vec<u8>> {
    if plaintext.is_empty() || plaintext.len() % 16 != 0 {
        return None;
    }
    let mut out = vec![0; plaintext.len()];
    macro_rules! run {
        ($aes:ty) => {
            cbc::Encryptor::<$aes>::new_from_slices(key, &IV)
                .ok()?
                .encrypt_padded_b2b_mut::<NoPadding>(plaintext, &mut out)
                .ok()?
                .len()
        };
    }
    let len = match key.len() {
        16 => run!(aes::Aes128),
        24 => run!(aes::Aes192),
        32 => run!(aes::Aes256),
        _ => return None,
    };
    out.truncate(len);
    Some(out)
}

/// Whether `key` has an AES key length.
pub(crate) fn key_len_ok(key: &[u8]) -> bool {
    matches!(key.len(), 16 | 24 | 32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_all_key_sizes() {
        let plain = b"0000000000|]_18:24:52,07-05-2020";
        for key in [
            &b"0123456789ABCDEF"[..],
            b"0123456789ABCDEF01234567",
            b"0123456789ABCDEF0123456789ABCDEF",
        ] {
            let c = encrypt(key, plain).unwrap();
            assert_eq!(c.len(), 32);
            assert_eq!(decrypt(key, &c).unwrap(), plain);
        }
        assert_eq!(encrypt(b"short", plain), None);
        assert_eq!(decrypt(b"0123456789ABCDEF", &[0; 15]), None);
    }
}
