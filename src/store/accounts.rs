//! Operator accounts and bearer-token sessions for operators and responders.
//!
//! Passwords are stored as Argon2id hashes, computed on tokio's blocking pool behind a small
//! semaphore, so a login flood queues there instead of taking the runtime's workers from device
//! ACKs. An unknown name costs one verification against a real dummy hash, like a known one. Every
//! attempted name (known or not) is locked for a while after a few failures in a row.
//!
//! A session token is 32 random bytes handed to the client once; only its SHA-256 digest is stored,
//! so a copy of the database does not log anyone in. Sessions slide: each renewal moves the expiry
//! up to `idle` ahead, never past `max` after the login. Disabling an operator, changing a
//! password or logging out ends sessions at once. Live streams use single-use tickets instead of
//! tokens in URLs.

use std::sync::OnceLock;

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use rand::RngCore;
use sha2::{Digest, Sha256};
use sqlx::Row;
use tokio::sync::Semaphore;

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
    /// Stable name.
    pub fn as_str(self) -> &'static str {
        match self {
            SubjectKind::Operator => "operator",
            SubjectKind::Responder => "responder",
        }
    }
}

/// The operator roles.
pub const OPERATOR_ROLES: &[&str] = &["admin", "dispatcher", "viewer"];

/// The authenticated caller of an API request.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct Principal {
    /// Operator or responder.
    pub kind: SubjectKind,
    /// Row id of the operator or responder.
    pub id: i64,
    /// Name, for the event log.
    pub name: String,
    /// `admin`, `dispatcher` or `viewer` for operators, `responder` for responders.
    pub role: String,
    /// The area an operator is limited to (a street or community), if any.
    #[serde(default)]
    pub scope_area_id: Option<i64>,
}

/// Session lifetimes and login limits (`[auth]`).
#[derive(Debug, Clone, Copy, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct AuthSettings {
    /// Seconds a session lives without being renewed.
    pub session_idle_s: u64,
    /// Seconds a session lives at most after the login, renewed or not.
    pub session_max_s: u64,
    /// Failed logins in a row after which a name is locked.
    pub lockout_failures: u32,
    /// Seconds a locked name stays locked.
    pub lockout_s: u64,
    /// Password checks (Argon2) running at once; more wait their turn.
    pub hash_concurrency: usize,
    /// Argon2id memory per new hash, KiB (default 19 456, the OWASP minimum). Lower it only for
    /// drills and simulated days whose thousands of made-up accounts need no protection;
    /// existing hashes keep the cost they were made with.
    pub hash_memory_kib: u32,
    /// Argon2id passes per new hash (default 2).
    pub hash_iterations: u32,
}

impl Default for AuthSettings {
    fn default() -> Self {
        AuthSettings {
            session_idle_s: 8 * 3600,
            session_max_s: 16 * 3600,
            lockout_failures: 5,
            lockout_s: 900,
            hash_concurrency: 2,
            hash_memory_kib: argon2::Params::DEFAULT_M_COST,
            hash_iterations: argon2::Params::DEFAULT_T_COST,
        }
    }
}

/// How a login went.
#[derive(Debug)]
pub enum LoginOutcome {
    /// A new session.
    Ok {
        /// The bearer token (shown once).
        token: String,
        /// Who.
        principal: Principal,
        /// When the session expires unless renewed.
        expires_at: Millis,
    },
    /// Wrong name or password (indistinguishable).
    Invalid,
    /// Too many failures for this name; try again after `until`.
    Locked {
        /// Unix milliseconds.
        until: Millis,
    },
}

const TICKET_MS: Millis = 60_000;

static HASHING: OnceLock<(Semaphore, argon2::Params)> = OnceLock::new();

/// Applies `[auth]`'s hashing settings (concurrency, cost) for the life of the process; call once
/// at start, before the first login. Later calls, and a cost Argon2 refuses, change nothing.
pub fn configure_hashing(settings: &AuthSettings) {
    let params = argon2::Params::new(
        settings.hash_memory_kib,
        settings.hash_iterations,
        argon2::Params::DEFAULT_P_COST,
        None,
    )
    .unwrap_or_else(|e| {
        tracing::warn!(error = %e, "invalid [auth] hash cost; using the default");
        argon2::Params::default()
    });
    let _ = HASHING.set((Semaphore::new(settings.hash_concurrency.max(1)), params));
}

fn hashing() -> &'static (Semaphore, argon2::Params) {
    HASHING.get_or_init(|| {
        (
            Semaphore::new(AuthSettings::default().hash_concurrency),
            argon2::Params::default(),
        )
    })
}

fn hasher() -> Argon2<'static> {
    Argon2::new(
        argon2::Algorithm::Argon2id,
        argon2::Version::V0x13,
        hashing().1.clone(),
    )
}

/// Runs Argon2 work on the blocking pool, a few at a time.
async fn off_runtime<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> StoreResult<T> {
    let _permit = hashing()
        .0
        .acquire()
        .await
        .map_err(|_| StoreError::Invalid("shutting down".into()))?;
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| StoreError::Invalid(format!("password hashing failed: {e}")))
}

/// Hashes a password with Argon2id and a random salt (CPU-heavy: call [`hash_password_async`]
/// from async code).
pub fn hash_password(password: &str) -> StoreResult<String> {
    check_password_rules(password)?;
    let mut salt = [0u8; 16];
    rand::rng().fill_bytes(&mut salt);
    let salt = SaltString::encode_b64(&salt).map_err(|e| StoreError::Invalid(e.to_string()))?;
    hasher()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| StoreError::Invalid(e.to_string()))
}

fn check_password_rules(password: &str) -> StoreResult<()> {
    if password.chars().count() < 8 {
        return Err(StoreError::Invalid(
            "password must be at least 8 characters".into(),
        ));
    }
    if password.len() > 1024 {
        return Err(StoreError::Invalid(
            "password must be at most 1024 bytes".into(),
        ));
    }
    Ok(())
}

/// [`hash_password`] on the blocking pool.
pub async fn hash_password_async(password: &str) -> StoreResult<String> {
    check_password_rules(password)?;
    let password = password.to_string();
    off_runtime(move || hash_password(&password)).await?
}

/// A real Argon2id hash of a random password, with the same parameters as every stored hash: an
/// unknown name is checked against it, so it costs what a known name costs.
pub fn dummy_hash() -> &'static str {
    static DUMMY: OnceLock<String> = OnceLock::new();
    DUMMY.get_or_init(|| {
        let mut secret = [0u8; 24];
        rand::rng().fill_bytes(&mut secret);
        hash_password(&hex::encode(secret)).unwrap_or_default()
    })
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

async fn verify_async(password: &str, hash: Option<String>) -> StoreResult<bool> {
    let password = password.to_string();
    off_runtime(move || {
        let known = hash.is_some();
        let hash = hash.unwrap_or_else(|| dummy_hash().to_string());
        verify_password(&password, &hash) && known
    })
    .await
}

fn token_digest(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

fn random_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    hex::encode(bytes)
}

/// Normalises an operator role; `operator` is the former name of `dispatcher`.
pub fn operator_role(role: &str) -> StoreResult<&'static str> {
    match role {
        "admin" => Ok("admin"),
        "dispatcher" | "operator" => Ok("dispatcher"),
        "viewer" => Ok("viewer"),
        _ => Err(StoreError::Invalid(
            "role must be admin, dispatcher or viewer".into(),
        )),
    }
}

impl Store {
    /// Creates an operator account.
    pub async fn create_operator(
        &self,
        name: &str,
        password: &str,
        role: &str,
        scope_area_id: Option<i64>,
    ) -> StoreResult<i64> {
        let role = operator_role(role)?;
        if name.trim().is_empty() || name.len() > 200 {
            return Err(StoreError::Invalid(
                "name is required (at most 200 bytes)".into(),
            ));
        }
        self.check_scope(scope_area_id).await?;
        let hash = hash_password_async(password).await?;
        let row = sqlx::query(
            "INSERT INTO operators (name, password_hash, role, created_at, scope_area_id) \
             VALUES ($1, $2, $3, $4, $5) RETURNING id",
        )
        .bind(name.trim())
        .bind(hash)
        .bind(role)
        .bind(now_millis())
        .bind(scope_area_id)
        .fetch_one(&self.pool)
        .await?;
        Ok(row.try_get(0)?)
    }

    async fn check_scope(&self, scope_area_id: Option<i64>) -> StoreResult<()> {
        let Some(id) = scope_area_id else {
            return Ok(());
        };
        match self.get_area(id).await? {
            Some(a) if matches!(a.level.as_str(), "district" | "street" | "community") => Ok(()),
            Some(_) => Err(StoreError::Invalid(
                "an operator's scope is a district, street or community".into(),
            )),
            None => Err(StoreError::Invalid("scope area not found".into())),
        }
    }

    /// Changes an operator's role, scope or disabled flag. Disabling ends every session of the
    /// operator at once. Returns false when there is no such operator.
    pub async fn update_operator(
        &self,
        id: i64,
        role: &str,
        disabled: bool,
        scope_area_id: Option<i64>,
    ) -> StoreResult<bool> {
        let role = operator_role(role)?;
        self.check_scope(scope_area_id).await?;
        let mut tx = self.begin_write().await?;
        let r = sqlx::query(
            "UPDATE operators SET role = $2, disabled = $3, scope_area_id = $4 WHERE id = $1",
        )
        .bind(id)
        .bind(role)
        .bind(i64::from(disabled))
        .bind(scope_area_id)
        .execute(&mut *tx)
        .await?;
        if r.rows_affected() == 0 {
            return Ok(false);
        }
        if disabled {
            revoke_sessions(&mut tx, SubjectKind::Operator, id).await?;
        }
        tx.commit().await?;
        Ok(true)
    }

    /// Sets an operator's password (an admin's reset) and ends their sessions.
    pub async fn set_operator_password(&self, id: i64, password: &str) -> StoreResult<bool> {
        let hash = hash_password_async(password).await?;
        let mut tx = self.begin_write().await?;
        let r = sqlx::query("UPDATE operators SET password_hash = $2 WHERE id = $1")
            .bind(id)
            .bind(hash)
            .execute(&mut *tx)
            .await?;
        if r.rows_affected() == 0 {
            return Ok(false);
        }
        revoke_sessions(&mut tx, SubjectKind::Operator, id).await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Sets a responder's app password and ends their sessions.
    pub async fn set_responder_password(
        &self,
        responder_id: i64,
        password: &str,
    ) -> StoreResult<bool> {
        let hash = hash_password_async(password).await?;
        let mut tx = self.begin_write().await?;
        let r = sqlx::query("UPDATE responders SET password_hash = $2 WHERE id = $1")
            .bind(responder_id)
            .bind(hash)
            .execute(&mut *tx)
            .await?;
        revoke_sessions(&mut tx, SubjectKind::Responder, responder_id).await?;
        tx.commit().await?;
        Ok(r.rows_affected() == 1)
    }

    /// Changes the caller's own password after checking the current one. Every other session of
    /// the caller ends; the one making the change goes on. Returns false when `current` is wrong.
    pub async fn change_password(
        &self,
        who: &Principal,
        token: &str,
        current: &str,
        new: &str,
    ) -> StoreResult<bool> {
        check_password_rules(new)?;
        let table = match who.kind {
            SubjectKind::Operator => "operators",
            SubjectKind::Responder => "responders",
        };
        let row = sqlx::query(&format!("SELECT password_hash FROM {table} WHERE id = $1"))
            .bind(who.id)
            .fetch_optional(&self.pool)
            .await?;
        let hash: Option<String> = match row {
            Some(r) => r.try_get(0)?,
            None => None,
        };
        if !verify_async(current, hash).await? {
            return Ok(false);
        }
        let hash = hash_password_async(new).await?;
        let mut tx = self.begin_write().await?;
        sqlx::query(&format!(
            "UPDATE {table} SET password_hash = $2 WHERE id = $1"
        ))
        .bind(who.id)
        .bind(hash)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "DELETE FROM sessions WHERE subject_kind = $1 AND subject_id = $2 AND token_hash <> $3",
        )
        .bind(who.kind.as_str())
        .bind(who.id)
        .bind(token_digest(token))
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(true)
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
        self.create_operator(name, password, "admin", None).await?;
        Ok(true)
    }

    /// Checks a name and password and opens a session.
    pub async fn login(
        &self,
        kind: SubjectKind,
        name: &str,
        password: &str,
        settings: &AuthSettings,
    ) -> StoreResult<LoginOutcome> {
        let now = now_millis();
        let attempted: String = name.trim().chars().take(200).collect();
        let locked =
            sqlx::query("SELECT locked_until FROM login_failures WHERE kind = $1 AND name = $2")
                .bind(kind.as_str())
                .bind(attempted.as_str())
                .fetch_optional(&self.pool)
                .await?;
        if let Some(row) = locked {
            let until: i64 = row.try_get(0)?;
            if until > now {
                return Ok(LoginOutcome::Locked { until });
            }
        }
        let sql = match kind {
            SubjectKind::Operator => {
                "SELECT id, name, password_hash, role, scope_area_id FROM operators \
                 WHERE name = $1 AND disabled = 0"
            }
            SubjectKind::Responder => {
                "SELECT id, name, password_hash, 'responder' AS role, NULL AS scope_area_id \
                 FROM responders WHERE (phone = $1 OR name = $1) AND active = 1"
            }
        };
        let row = sqlx::query(sql)
            .bind(attempted.as_str())
            .fetch_optional(&self.pool)
            .await?;
        let hash: Option<String> = match &row {
            Some(r) => r.try_get("password_hash")?,
            None => None,
        };
        if !verify_async(password, hash).await? {
            return self.failed_login(kind, &attempted, now, settings).await;
        }
        let Some(row) = row else {
            return Ok(LoginOutcome::Invalid);
        };
        sqlx::query("DELETE FROM login_failures WHERE kind = $1 AND name = $2")
            .bind(kind.as_str())
            .bind(attempted.as_str())
            .execute(&self.pool)
            .await?;
        let principal = Principal {
            kind,
            id: row.try_get("id")?,
            name: row.try_get("name")?,
            role: row.try_get("role")?,
            scope_area_id: row.try_get("scope_area_id")?,
        };
        let token = random_token();
        let expires_at = now + secs_ms(settings.session_idle_s.min(settings.session_max_s));
        sqlx::query(
            "INSERT INTO sessions (token_hash, subject_kind, subject_id, subject_name, role, expires_at, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(token_digest(&token))
        .bind(kind.as_str())
        .bind(principal.id)
        .bind(principal.name.as_str())
        .bind(principal.role.as_str())
        .bind(expires_at)
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(LoginOutcome::Ok {
            token,
            principal,
            expires_at,
        })
    }

    async fn failed_login(
        &self,
        kind: SubjectKind,
        name: &str,
        now: Millis,
        settings: &AuthSettings,
    ) -> StoreResult<LoginOutcome> {
        let row = sqlx::query(
            "INSERT INTO login_failures (kind, name, failures, locked_until, updated_at) \
             VALUES ($1, $2, 1, 0, $3) \
             ON CONFLICT (kind, name) DO UPDATE SET failures = login_failures.failures + 1, \
             updated_at = excluded.updated_at RETURNING failures",
        )
        .bind(kind.as_str())
        .bind(name)
        .bind(now)
        .fetch_one(&self.pool)
        .await?;
        let failures: i64 = row.try_get(0)?;
        if failures >= i64::from(settings.lockout_failures.max(1)) {
            let until = now + secs_ms(settings.lockout_s);
            sqlx::query(
                "UPDATE login_failures SET failures = 0, locked_until = $3 WHERE kind = $1 AND name = $2",
            )
            .bind(kind.as_str())
            .bind(name)
            .bind(until)
            .execute(&self.pool)
            .await?;
            return Ok(LoginOutcome::Locked { until });
        }
        Ok(LoginOutcome::Invalid)
    }

    /// The principal of a live session token, with the operator's current role and scope (a
    /// disabled operator has no session).
    pub async fn session(&self, token: &str) -> StoreResult<Option<Principal>> {
        self.session_by_digest(&token_digest(token)).await
    }

    /// Moves a live session's expiry `idle` ahead (never past `max` after its login). Returns the
    /// new expiry, or `None` when the session is gone.
    pub async fn renew_session(
        &self,
        token: &str,
        settings: &AuthSettings,
    ) -> StoreResult<Option<Millis>> {
        let now = now_millis();
        let row = sqlx::query(
            "UPDATE sessions SET expires_at = CASE \
               WHEN created_at + $3 < $2 + $4 THEN created_at + $3 ELSE $2 + $4 END \
             WHERE token_hash = $1 AND expires_at > $2 RETURNING expires_at",
        )
        .bind(token_digest(token))
        .bind(now)
        .bind(secs_ms(settings.session_max_s))
        .bind(secs_ms(settings.session_idle_s))
        .fetch_optional(&self.pool)
        .await?;
        match row {
            Some(r) => Ok(Some(r.try_get(0)?)),
            None => Ok(None),
        }
    }

    /// Ends a session.
    pub async fn logout(&self, token: &str) -> StoreResult<()> {
        sqlx::query("DELETE FROM sessions WHERE token_hash = $1")
            .bind(token_digest(token))
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// A single-use ticket for the live stream at `path`, valid for a minute, on behalf of the
    /// session `token`.
    pub async fn issue_ticket(&self, token: &str, path: &str) -> StoreResult<(String, Millis)> {
        let now = now_millis();
        sqlx::query("DELETE FROM stream_tickets WHERE expires_at <= $1")
            .bind(now)
            .execute(&self.pool)
            .await?;
        let ticket = random_token();
        let expires_at = now + TICKET_MS;
        sqlx::query(
            "INSERT INTO stream_tickets (ticket_hash, token_hash, path, expires_at) VALUES ($1, $2, $3, $4)",
        )
        .bind(token_digest(&ticket))
        .bind(token_digest(token))
        .bind(path)
        .bind(expires_at)
        .execute(&self.pool)
        .await?;
        Ok((ticket, expires_at))
    }

    /// Redeems a stream ticket for `path` once: the principal of its (still live) session and the
    /// session's token digest, for later checks that it is still alive.
    pub async fn redeem_ticket(
        &self,
        ticket: &str,
        path: &str,
    ) -> StoreResult<Option<(Principal, String)>> {
        let row = sqlx::query(
            "DELETE FROM stream_tickets WHERE ticket_hash = $1 AND path = $2 AND expires_at > $3 \
             RETURNING token_hash",
        )
        .bind(token_digest(ticket))
        .bind(path)
        .bind(now_millis())
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else { return Ok(None) };
        let digest: String = row.try_get(0)?;
        Ok(self.session_by_digest(&digest).await?.map(|p| (p, digest)))
    }

    /// Whether the session with this token digest is still live (streams check it periodically).
    pub async fn session_by_digest(&self, digest: &str) -> StoreResult<Option<Principal>> {
        let row = sqlx::query(
            "SELECT s.subject_kind, s.subject_id, s.subject_name, s.role, o.role AS op_role, \
             o.scope_area_id, o.disabled FROM sessions s \
             LEFT JOIN operators o ON s.subject_kind = 'operator' AND o.id = s.subject_id \
             WHERE s.token_hash = $1 AND s.expires_at > $2",
        )
        .bind(digest)
        .bind(now_millis())
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else { return Ok(None) };
        let kind: String = row.try_get("subject_kind")?;
        let op_role: Option<String> = row.try_get("op_role")?;
        let disabled: Option<i64> = row.try_get("disabled")?;
        if kind == "operator" && (op_role.is_none() || disabled.unwrap_or(0) != 0) {
            return Ok(None);
        }
        Ok(Some(Principal {
            kind: if kind == "operator" {
                SubjectKind::Operator
            } else {
                SubjectKind::Responder
            },
            id: row.try_get("subject_id")?,
            name: row.try_get("subject_name")?,
            role: match op_role {
                Some(r) => r,
                None => row.try_get("role")?,
            },
            scope_area_id: row.try_get("scope_area_id")?,
        }))
    }
}

/// The digest under which a token's session is stored.
pub fn session_digest(token: &str) -> String {
    token_digest(token)
}

fn secs_ms(s: u64) -> Millis {
    i64::try_from(s.saturating_mul(1000)).unwrap_or(i64::MAX / 4)
}

async fn revoke_sessions(
    tx: &mut sqlx::AnyConnection,
    kind: SubjectKind,
    id: i64,
) -> StoreResult<()> {
    sqlx::query("DELETE FROM sessions WHERE subject_kind = $1 AND subject_id = $2")
        .bind(kind.as_str())
        .bind(id)
        .execute(&mut *tx)
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_dummy_hash_is_a_real_argon2id_hash_with_the_stored_parameters() {
        let dummy = PasswordHash::new(dummy_hash()).expect("the dummy hash parses");
        let real = hash_password("correct-horse").expect("hash");
        let real = PasswordHash::new(&real).expect("parses");
        assert_eq!(dummy.algorithm, real.algorithm);
        assert_eq!(dummy.params, real.params);
        assert!(!verify_password("anything", dummy_hash()));
    }
}
