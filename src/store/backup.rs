//! `onekey backup <file>`: an online, consistent copy of a SQLite database while the server runs
//! (`VACUUM INTO`: one read transaction, so writers go on; the copy is fsynced before the command
//! reports success). PostgreSQL is backed up with its own tools (`pg_basebackup` with WAL
//! archiving, or `pg_dump`); see `docs/deploy.md`.

use std::path::Path;

use super::{Backend, Store, StoreError, StoreResult};

impl Store {
    /// Writes a consistent copy of the database to `file`, which must not exist yet. Secrets stay
    /// sealed in the copy: restoring it needs the same secrets key.
    pub async fn backup_to(&self, file: &Path) -> StoreResult<u64> {
        if self.backend != Backend::Sqlite {
            return Err(StoreError::Invalid(
                "PostgreSQL is backed up with pg_basebackup (and WAL archiving) or pg_dump; \
                 see docs/deploy.md"
                    .into(),
            ));
        }
        if file.exists() {
            return Err(StoreError::Invalid(format!(
                "{} exists; a backup never overwrites a file",
                file.display()
            )));
        }
        let target = file
            .to_str()
            .ok_or_else(|| StoreError::Invalid("the backup path is not UTF-8".into()))?;
        sqlx::query("VACUUM INTO $1")
            .bind(target)
            .execute(&self.pool)
            .await?;
        let synced = std::fs::File::open(file).and_then(|f| {
            f.sync_all()?;
            f.metadata()
        });
        let meta = synced.map_err(|e| StoreError::Invalid(format!("cannot sync the copy: {e}")))?;
        if let Some(dir) = file.parent().filter(|d| !d.as_os_str().is_empty()) {
            let _ = std::fs::File::open(dir).and_then(|d| d.sync_all());
        }
        Ok(meta.len())
    }
}
