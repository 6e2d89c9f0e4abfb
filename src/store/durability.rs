//! Whether a commit survives a power cut: the database's own durability settings, read back from
//! it (SQLite `synchronous` and `journal_mode`; PostgreSQL `fsync`, `synchronous_commit`,
//! `full_page_writes`). The server refuses to start on unsafe ones unless told to
//! (`allow_unsafe_durability`), and `/healthz` shows them.

use std::collections::BTreeMap;

use sqlx::Row;

use super::{Backend, Store, StoreResult};

/// The settings in force, and which of them put an ACKed alarm at risk.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Durability {
    /// Setting → value, as the database reports it.
    pub settings: BTreeMap<String, String>,
    /// The settings under which a committed event can be lost on power loss.
    pub unsafe_settings: Vec<String>,
}

impl Durability {
    /// No setting puts a commit at risk.
    pub fn is_safe(&self) -> bool {
        self.unsafe_settings.is_empty()
    }
}

/// Whether `value` of `setting` is unsafe.
fn risky(backend: Backend, setting: &str, value: &str) -> bool {
    let v = value.to_ascii_lowercase();
    match (backend, setting) {
        // 0 OFF, 1 NORMAL (in WAL mode a power cut may lose the last commits), 2 FULL, 3 EXTRA.
        (Backend::Sqlite, "synchronous") => !matches!(v.as_str(), "2" | "3"),
        (Backend::Sqlite, "journal_mode") => matches!(v.as_str(), "off" | "memory"),
        (Backend::Postgres, "fsync") | (Backend::Postgres, "full_page_writes") => v != "on",
        (Backend::Postgres, "synchronous_commit") => v == "off",
        _ => false,
    }
}

impl Store {
    /// Reads the durability settings on one of the pool's connections.
    pub async fn durability(&self) -> StoreResult<Durability> {
        let queries: &[(&str, &str)] = match self.backend {
            Backend::Sqlite => &[
                ("synchronous", "PRAGMA synchronous"),
                ("journal_mode", "PRAGMA journal_mode"),
            ],
            Backend::Postgres => &[
                ("fsync", "SHOW fsync"),
                ("synchronous_commit", "SHOW synchronous_commit"),
                ("full_page_writes", "SHOW full_page_writes"),
            ],
        };
        let mut conn = self.pool.acquire().await?;
        let mut settings = BTreeMap::new();
        for (name, query) in queries {
            let row = sqlx::query(query).fetch_one(&mut *conn).await?;
            let value = row
                .try_get::<String, _>(0)
                .or_else(|_| row.try_get::<i64, _>(0).map(|n| n.to_string()))?;
            settings.insert(name.to_string(), value);
        }
        let unsafe_settings = settings
            .iter()
            .filter(|(k, v)| risky(self.backend, k, v))
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        Ok(Durability {
            settings,
            unsafe_settings,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_that_lose_commits_on_power_loss_are_unsafe() {
        assert!(risky(Backend::Sqlite, "synchronous", "0"));
        assert!(risky(Backend::Sqlite, "synchronous", "1"));
        assert!(!risky(Backend::Sqlite, "synchronous", "2"));
        assert!(risky(Backend::Sqlite, "journal_mode", "memory"));
        assert!(!risky(Backend::Sqlite, "journal_mode", "wal"));
        assert!(risky(Backend::Postgres, "fsync", "off"));
        assert!(risky(Backend::Postgres, "synchronous_commit", "off"));
        assert!(!risky(Backend::Postgres, "synchronous_commit", "local"));
        assert!(risky(Backend::Postgres, "full_page_writes", "off"));
    }
}
