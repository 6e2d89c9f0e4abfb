//! The native protocol's replay windows, kept with each device (`devices.replay_high`,
//! `devices.replay_seen`: the highest sequence number seen and the bitmap of the 64 at and below
//! it, [`ReplayWindow::to_parts`]). A sequence number is claimed with a compare-and-set, so two
//! server instances sharing the database, or a restarted one, never both accept the same frame.

use onekey_protocol::{ReplayWindow, SeqClass};
use sqlx::{AnyConnection, Row};

use super::{Store, StoreError, StoreResult};

impl Store {
    /// Classifies `seq` against the device's window and marks it seen when it is new.
    pub async fn claim_sequence(&self, device_id: i64, seq: u32) -> StoreResult<SeqClass> {
        let mut conn = self.pool.acquire().await?;
        claim_in(&mut conn, device_id, seq).await
    }

    /// The device's window as stored (tests and diagnostics).
    pub async fn replay_window(&self, device_id: i64) -> StoreResult<ReplayWindow> {
        let mut conn = self.pool.acquire().await?;
        Ok(read(&mut conn, device_id).await?.0)
    }
}

async fn read(conn: &mut AnyConnection, device_id: i64) -> StoreResult<(ReplayWindow, i64, i64)> {
    let row = sqlx::query("SELECT replay_high, replay_seen FROM devices WHERE id = $1")
        .bind(device_id)
        .fetch_optional(&mut *conn)
        .await?
        .ok_or_else(|| StoreError::Invalid(format!("device {device_id} not found")))?;
    let high: i64 = row.try_get(0)?;
    let seen: i64 = row.try_get(1)?;
    let window = ReplayWindow::from_parts(
        u32::try_from(high).unwrap_or(0),
        u64::from_ne_bytes(seen.to_ne_bytes()),
    );
    Ok((window, high, seen))
}

/// [`Store::claim_sequence`] on a connection or inside a transaction.
pub(crate) async fn claim_in(
    conn: &mut AnyConnection,
    device_id: i64,
    seq: u32,
) -> StoreResult<SeqClass> {
    loop {
        let (mut window, high, seen) = read(conn, device_id).await?;
        let class = window.classify(seq);
        if !class.is_new() {
            return Ok(class);
        }
        window.mark_seen(seq);
        let (new_high, new_seen) = window.to_parts();
        let updated = sqlx::query(
            "UPDATE devices SET replay_high = $2, replay_seen = $3 \
             WHERE id = $1 AND replay_high = $4 AND replay_seen = $5",
        )
        .bind(device_id)
        .bind(i64::from(new_high))
        .bind(i64::from_ne_bytes(new_seen.to_ne_bytes()))
        .bind(high)
        .bind(seen)
        .execute(&mut *conn)
        .await?;
        if updated.rows_affected() == 1 {
            return Ok(class);
        }
        // Another frame of the same device was claimed in between: classify again.
    }
}
