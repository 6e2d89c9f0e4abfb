//! Secrets at rest: device keys, key-safe codes and webhook signing secrets are stored *sealed*
//! (XChaCha20-Poly1305 with the server's secrets key, a fresh random nonce per value, the column's
//! name as associated data so a sealed value cannot be moved to another column). A stolen database
//! file or backup then yields no device key and no way into an elder's home.
//!
//! A sealed value reads `v1:` followed by hex (nonce, then ciphertext and tag). The key comes from
//! configuration (`secrets_key` or `secrets_key_file`); [`Store::with_sealer`] checks it against
//! the value sealed in `secrets_check` when the database was first sealed, and seals any value
//! still in clear (a database from before sealing, or rows written by an older binary).

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use rand::RngCore;
use sqlx::Row;

use super::{Store, StoreError, StoreResult};

const PREFIX: &str = "v1:";
const NONCE_LEN: usize = 24;
const CHECK: &str = "secrets_check";
const CHECK_TEXT: &str = "onekey secrets key";

/// A device's key (associated data of its sealed value: the column's name).
pub(super) const DEVICE_SECRET: &str = "devices.secret_hex";
/// An elder's key-safe code.
pub(super) const KEY_SAFE_CODE: &str = "elders.key_safe_code";
/// A webhook subscription's signing secret.
pub(super) const WEBHOOK_SECRET: &str = "webhook_subscriptions.secret";

/// The columns that hold secrets: (table, column, the name they are sealed for).
const SEALED_COLUMNS: &[(&str, &str, &str)] = &[
    ("devices", "secret_hex", DEVICE_SECRET),
    ("elders", "key_safe_code", KEY_SAFE_CODE),
    ("webhook_subscriptions", "secret", WEBHOOK_SECRET),
];

/// Seals and opens secrets with one key. Its `Debug` never shows the key.
#[derive(Clone)]
pub struct Sealer {
    cipher: XChaCha20Poly1305,
}

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sealer(…)")
    }
}

/// A secrets key that is not 32 bytes of hex.
#[derive(Debug, thiserror::Error)]
#[error("a secrets key is 32 bytes written as 64 hex digits")]
pub struct BadKey;

impl Sealer {
    /// A sealer for a key of 64 hex digits (surrounding whitespace ignored).
    pub fn from_hex(key: &str) -> Result<Sealer, BadKey> {
        let bytes = hex::decode(key.trim()).map_err(|_| BadKey)?;
        let cipher = XChaCha20Poly1305::new_from_slice(&bytes).map_err(|_| BadKey)?;
        Ok(Sealer { cipher })
    }

    /// A new random key, as 64 hex digits.
    pub fn generate_key() -> String {
        let mut key = [0u8; 32];
        rand::rng().fill_bytes(&mut key);
        hex::encode(key)
    }

    /// Whether a stored value is sealed.
    pub fn is_sealed(stored: &str) -> bool {
        stored.starts_with(PREFIX)
    }

    /// `plaintext` sealed for `column`.
    pub fn seal(&self, column: &str, plaintext: &str) -> String {
        let mut nonce = [0u8; NONCE_LEN];
        rand::rng().fill_bytes(&mut nonce);
        let payload = Payload {
            msg: plaintext.as_bytes(),
            aad: column.as_bytes(),
        };
        // Encryption fails only for messages beyond the cipher's limit (256 GiB).
        let sealed = self
            .cipher
            .encrypt(XNonce::from_slice(&nonce), payload)
            .unwrap_or_default();
        let mut out = String::with_capacity(PREFIX.len() + 2 * (NONCE_LEN + sealed.len()));
        out.push_str(PREFIX);
        out.push_str(&hex::encode(nonce));
        out.push_str(&hex::encode(sealed));
        out
    }

    /// The plaintext of a value sealed for `column`; `None` when it is not sealed, was sealed with
    /// another key or for another column, or was tampered with.
    pub fn open(&self, column: &str, stored: &str) -> Option<String> {
        let bytes = hex::decode(stored.strip_prefix(PREFIX)?).ok()?;
        if bytes.len() < NONCE_LEN {
            return None;
        }
        let (nonce, sealed) = bytes.split_at(NONCE_LEN);
        let payload = Payload {
            msg: sealed,
            aad: column.as_bytes(),
        };
        let plain = self
            .cipher
            .decrypt(XNonce::from_slice(nonce), payload)
            .ok()?;
        String::from_utf8(plain).ok()
    }
}

impl Store {
    /// The same store, sealing secrets with `sealer` from now on. Refuses a key other than the one
    /// the database was first sealed with, and seals the values still in clear.
    pub async fn with_sealer(mut self, sealer: Sealer) -> StoreResult<Store> {
        let mut tx = self.begin_write().await?;
        let check: Option<String> = sqlx::query_scalar("SELECT sealed FROM secrets_check")
            .fetch_optional(&mut *tx)
            .await?;
        match check {
            Some(sealed) if sealer.open(CHECK, &sealed).as_deref() == Some(CHECK_TEXT) => {}
            Some(_) => return Err(StoreError::WrongSecretsKey),
            None => {
                // Two instances starting on a fresh database at once: the first one's key wins,
                // and the other is checked against it.
                sqlx::query(
                    "INSERT INTO secrets_check (id, sealed) VALUES (1, $1) ON CONFLICT (id) DO NOTHING",
                )
                .bind(sealer.seal(CHECK, CHECK_TEXT))
                .execute(&mut *tx)
                .await?;
                let sealed: String = sqlx::query_scalar("SELECT sealed FROM secrets_check")
                    .fetch_one(&mut *tx)
                    .await?;
                if sealer.open(CHECK, &sealed).as_deref() != Some(CHECK_TEXT) {
                    return Err(StoreError::WrongSecretsKey);
                }
            }
        }
        let mut sealed_now = 0u64;
        for (table, column, name) in SEALED_COLUMNS {
            let rows = sqlx::query(&format!(
                "SELECT id, {column} FROM {table} WHERE {column} IS NOT NULL AND {column} NOT LIKE '{PREFIX}%'"
            ))
            .fetch_all(&mut *tx)
            .await?;
            for row in rows {
                let id: i64 = row.try_get(0)?;
                let value: String = row.try_get(1)?;
                sqlx::query(&format!("UPDATE {table} SET {column} = $1 WHERE id = $2"))
                    .bind(sealer.seal(name, &value))
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
                sealed_now += 1;
            }
        }
        tx.commit().await?;
        if sealed_now > 0 && self.backend == super::Backend::Sqlite {
            // The clear values are still in the database file until the WAL is checkpointed into
            // it: do that now, not whenever the last connection closes.
            sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
                .execute(&self.pool)
                .await?;
        }
        if sealed_now > 0 {
            tracing::info!(
                values = sealed_now,
                "sealed secrets that were stored in clear"
            );
        }
        self.sealer = Some(std::sync::Arc::new(sealer));
        Ok(self)
    }

    /// A secret as it is to be stored in `column`: sealed when the store has a key.
    pub(super) fn seal(&self, column: &str, value: Option<&str>) -> Option<String> {
        let value = value?;
        Some(match &self.sealer {
            Some(s) => s.seal(column, value),
            None => value.to_string(),
        })
    }

    /// A secret as read from `column`. A sealed value the store cannot open (no key, or a row
    /// sealed with another one) is an error, never passed on as if it were the secret.
    pub(super) fn unseal(
        &self,
        column: &'static str,
        stored: Option<String>,
    ) -> StoreResult<Option<String>> {
        let Some(stored) = stored else {
            return Ok(None);
        };
        match &self.sealer {
            Some(s) => s
                .open(column, &stored)
                .map(Some)
                .ok_or(StoreError::Unsealable(column)),
            None if Sealer::is_sealed(&stored) => Err(StoreError::Unsealable(column)),
            None => Ok(Some(stored)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sealed_value_opens_only_with_its_key_and_column() {
        let key = Sealer::generate_key();
        let s = Sealer::from_hex(&key).unwrap();
        let sealed = s.seal("elders.key_safe_code", "4711");
        assert!(Sealer::is_sealed(&sealed));
        assert!(!sealed.contains("4711"));
        assert_ne!(
            sealed,
            s.seal("elders.key_safe_code", "4711"),
            "fresh nonce"
        );
        assert_eq!(
            s.open("elders.key_safe_code", &sealed).as_deref(),
            Some("4711")
        );
        assert_eq!(s.open("devices.secret_hex", &sealed), None);
        let other = Sealer::from_hex(&Sealer::generate_key()).unwrap();
        assert_eq!(other.open("elders.key_safe_code", &sealed), None);
        let mut tampered = sealed.clone();
        let last = tampered.pop().unwrap();
        tampered.push(if last == '0' { '1' } else { '0' });
        assert_eq!(s.open("elders.key_safe_code", &tampered), None);
        assert_eq!(s.open("elders.key_safe_code", "4711"), None);
        assert!(Sealer::from_hex("abcd").is_err());
        assert_eq!(format!("{s:?}"), "Sealer(…)");
    }
}
