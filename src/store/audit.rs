//! The audit log: who read an elder's record, and who changed the directory, keys and accounts —
//! when, and from which address. Append-only (triggers refuse UPDATE and DELETE).

use sqlx::Row;

use super::{Store, StoreResult};
use crate::domain::{Millis, now_millis};

/// One audit entry.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct AuditEntry {
    /// Row id, increasing.
    pub id: i64,
    /// When (Unix ms).
    pub at: Millis,
    /// Who: `operator:<name>` or `responder:<id>`.
    pub actor: String,
    /// From where (`ip:port`).
    pub peer: String,
    /// What: `elder_read`, `elder_created`, `device_updated`, `operator_updated`…
    pub action: String,
    /// On what: `elder:<id>`, `device:<id>`, `operator:<id>`…
    pub target: String,
    /// Details (changed fields; never a secret).
    pub detail: serde_json::Value,
}

impl Store {
    /// Appends an entry.
    pub async fn append_audit(
        &self,
        actor: &str,
        peer: &str,
        action: &str,
        target: &str,
        detail: &serde_json::Value,
    ) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO audit_log (at, actor, peer, action, target, detail) VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(now_millis())
        .bind(actor)
        .bind(peer)
        .bind(action)
        .bind(target)
        .bind(detail.to_string())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Entries, newest first, optionally of one target.
    pub async fn list_audit(
        &self,
        target: Option<&str>,
        limit: i64,
    ) -> StoreResult<Vec<AuditEntry>> {
        let rows = sqlx::query(
            "SELECT id, at, actor, peer, action, target, detail FROM audit_log \
             WHERE ($1 IS NULL OR target = $1) ORDER BY id DESC LIMIT $2",
        )
        .bind(target)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                let detail: String = r.try_get(6)?;
                Ok(AuditEntry {
                    id: r.try_get(0)?,
                    at: r.try_get(1)?,
                    actor: r.try_get(2)?,
                    peer: r.try_get(3)?,
                    action: r.try_get(4)?,
                    target: r.try_get(5)?,
                    detail: serde_json::from_str(&detail).unwrap_or(serde_json::Value::Null),
                })
            })
            .collect::<sqlx::Result<_>>()
            .map_err(Into::into)
    }
}
