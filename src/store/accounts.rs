//! Operator accounts and bearer-token sessions for operators and responders.
//!
//! Passwords are stored as Argon2id hashes. A session token is 32 random bytes handed to the client
//! once; only its SHA-256 digest is stored, so a copy of the database does not log anyone in.

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use rand::RngCore;
use sha2::{Digest, Sha256};
use sqlx::Row;

use super::{Store, StoreError, StoreResult};
use crate::domain::{Millis, now_millis};

/// Who a session belongs to.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum SubjectKind {
    /// A dispatch operator (console).
    Operator,
    /// A responder (volunteer app).
    Responder,
}

impl SubjectKind {
    fn as_str(self) -> &'static str {
        match self {
            SubjectKind::Operator => "operator",
            SubjectKind::Responder => "responder",
        }
    }
}

/// The authenticated caller of an API request.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct Principal {
    /// Operator or responder.
    pub kind: SubjectKind,
    /// Row id of the operator or responder.
    pub id: i64,
    /// Name, for the event log.
    pub name: String,
    /// `admin` or `operator` for operators, `responder` for responders.
    pub role: String,
}

/// How long a session lasts: one long night shift plus margin.
const SESSION_MS: Millis = 16 * 3600 * 1000;

/// Hashes a password with Argon2id and a random salt.
pub fn hash_password(password: &str) -> StoreResult<String> {
    if password.len() < 8 {
        return Err(StoreError::Invalid(
            "password must be at least 8 characters".into(),
        ));
    }
    let mut salt = [0u8; 16];
    rand::rng().fill_bytes(&mut salt);
    let salt = SaltString::encode_b64(&salt).map_err(|e| StoreError::Invalid(e.to_string()))?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| StoreError::Invalid(e.to_string()))
}

fn verify_password(password: &str, hash: &str) -> bool {
    PasswordHash::new(hash)
        .map(|h| {
            Argon2::default()
                .verify_password(password.as_bytes(), &h)
                .is_ok()
        })
        .unwrap_or(false)
}

fn token_digest(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

impl Store {
    /// Creates an operator account.
    pub async fn create_operator(
        &self,
        name: &str,
        password: &str,
        role: &str,
    ) -> StoreResult<i64> {
        if !matches!(role, "admin" | "operator") {
            return Err(StoreError::Invalid("role must be admin or operator".into()));
        }
        if name.trim().is_empty() {
            return Err(StoreError::Invalid("name is required".into()));
        }
        let hash = hash_password(password)?;
        let row = sqlx::query(
            "INSERT INTO operators (name, password_hash, role, created_at) VALUES ($1, $2, $3, $4) RETURNING id",
        )
        .bind(name.trim())
        .bind(hash)
        .bind(role)
        .bind(now_millis())
        .fetch_one(&self.pool)
        .await?;
        Ok(row.try_get(0)?)
    }

    /// Sets a responder's app password.
    pub async fn set_responder_password(
        &self,
        responder_id: i64,
        password: &str,
    ) -> StoreResult<bool> {
        let hash = hash_password(password)?;
        let r = sqlx::query("UPDATE responders SET password_hash = $2 WHERE id = $1")
            .bind(responder_id)
            .bind(hash)
            .execute(&self.pool)
            .await?;
        Ok(r.rows_affected() == 1)
    }

    /// Creates the admin named in `ONEKEY_BOOTSTRAP_ADMIN` when no admin exists yet. Returns whether
    /// one was created.
    pub async fn bootstrap_admin(&self, name: &str, password: &str) -> StoreResult<bool> {
        let row = sqlx::query("SELECT COUNT(*) FROM operators WHERE role = 'admin'")
            .fetch_one(&self.pool)
            .await?;
        if row.try_get::<i64, _>(0)? > 0 {
            return Ok(false);
        }
        self.create_operator(name, password, "admin").await?;
        Ok(true)
    }

    /// Checks a name and password and opens a session. Returns the token and who it is for.
    pub async fn login(
        &self,
        kind: SubjectKind,
        name: &str,
        password: &str,
    ) -> StoreResult<Option<(String, Principal)>> {
        let sql = match kind {
            SubjectKind::Operator => {
                "SELECT id, name, password_hash, role FROM operators WHERE name = $1"
            }
            SubjectKind::Responder => {
                "SELECT id, name, password_hash, 'responder' AS role FROM responders WHERE phone = $1 OR name = $1"
            }
        };
        let row = sqlx::query(sql)
            .bind(name)
            .fetch_optional(&self.pool)
            .await?;
        let Some(row) = row else {
            // Spend the same effort as a real check so that timing does not reveal valid names.
            verify_password(
                password,
                "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0$Zm9v",
            );
            return Ok(None);
        };
        let hash: Option<String> = row.try_get("password_hash")?;
        if !hash.is_some_and(|h| verify_password(password, &h)) {
            return Ok(None);
        }
        let principal = Principal {
            kind,
            id: row.try_get("id")?,
            name: row.try_get("name")?,
            role: row.try_get("role")?,
        };
        let mut bytes = [0u8; 32];
        rand::rng().fill_bytes(&mut bytes);
        let token = hex::encode(bytes);
        sqlx::query(
            "INSERT INTO sessions (token_hash, subject_kind, subject_id, subject_name, role, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(token_digest(&token))
        .bind(kind.as_str())
        .bind(principal.id)
        .bind(principal.name.as_str())
        .bind(principal.role.as_str())
        .bind(now_millis() + SESSION_MS)
        .execute(&self.pool)
        .await?;
        Ok(Some((token, principal)))
    }

    /// The principal of a live session token.
    pub async fn session(&self, token: &str) -> StoreResult<Option<Principal>> {
        let row = sqlx::query(
            "SELECT subject_kind, subject_id, subject_name, role FROM sessions \
             WHERE token_hash = $1 AND expires_at > $2",
        )
        .bind(token_digest(token))
        .bind(now_millis())
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else { return Ok(None) };
        let kind: String = row.try_get("subject_kind")?;
        Ok(Some(Principal {
            kind: if kind == "operator" {
                SubjectKind::Operator
            } else {
                SubjectKind::Responder
            },
            id: row.try_get("subject_id")?,
            name: row.try_get("subject_name")?,
            role: row.try_get("role")?,
        }))
    }

    /// Ends a session.
    pub async fn logout(&self, token: &str) -> StoreResult<()> {
        sqlx::query("DELETE FROM sessions WHERE token_hash = $1")
            .bind(token_digest(token))
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}
