//! Whose turn it is to write a SQLite database.
//!
//! SQLite has one writer at a time. When two connections of the pool want to write, the second
//! finds the database locked and SQLite's busy handler puts it to sleep: 1, 2, 5, 10, 15, 20, 25,
//! 25, 25, 50, 50, 100 ms and so on, whenever the first actually finishes. Under load that ladder,
//! not the work, was the tail of an alarm's ACK. So the store's writers (its write transactions
//! and its autocommit writes on the outbox, timers and heartbeat state) take turns in the process
//! first, in the order they asked (fair tokio mutexes), the intake's batch ahead of every other
//! writer waiting, and each finds the database free when its turn comes; the busy timeout is left
//! for writers outside the process. A writer never asks for a turn while it holds one.
//!
//! On PostgreSQL there is no turn: writers run side by side.

use std::ops::{Deref, DerefMut};
use std::sync::Arc;

use sqlx::{Any, AnyConnection, Transaction};
use tokio::sync::{Mutex, OwnedMutexGuard};

use super::{Backend, Store, StoreResult};

/// The turn of a store's SQLite writers, shared by the clones of one [`Store`]: `writer` is the
/// turn itself; every writer but the intake first queues on `others`, so at most one of them waits
/// for `writer` and an alarm's batch is never more than one transaction behind.
#[derive(Clone, Default)]
pub(crate) struct WriteTurns {
    writer: Arc<Mutex<()>>,
    others: Arc<Mutex<()>>,
}

/// This writer's turn (and its place ahead of the other non-intake writers); `None` on PostgreSQL.
pub(crate) type Turn = Option<(Option<OwnedMutexGuard<()>>, OwnedMutexGuard<()>)>;

/// A write transaction, holding its turn until it commits or is dropped.
pub(crate) struct WriteTx {
    tx: Transaction<'static, Any>,
    _turn: Turn,
}

impl WriteTx {
    /// Commits, then gives the turn to the next writer.
    pub(crate) async fn commit(self) -> Result<(), sqlx::Error> {
        self.tx.commit().await
    }
}

impl Deref for WriteTx {
    type Target = AnyConnection;

    fn deref(&self) -> &AnyConnection {
        &self.tx
    }
}

impl DerefMut for WriteTx {
    fn deref_mut(&mut self) -> &mut AnyConnection {
        &mut self.tx
    }
}

impl Store {
    /// Waits for this process's turn to write (SQLite; at once on PostgreSQL). Taken before a
    /// connection, so a writer waiting its turn holds none of the pool's.
    pub(crate) async fn write_turn(&self) -> Turn {
        self.turn(false).await
    }

    async fn turn(&self, intake: bool) -> Turn {
        if self.backend != Backend::Sqlite {
            return None;
        }
        let ahead = match intake {
            true => None,
            false => Some(self.turns.others.clone().lock_owned().await),
        };
        Some((ahead, self.turns.writer.clone().lock_owned().await))
    }

    /// A write transaction in its turn.
    pub(crate) async fn begin_write(&self) -> StoreResult<WriteTx> {
        self.begin_in_turn(false).await
    }

    /// The intake's write transaction: in its turn, ahead of every other writer waiting.
    pub(crate) async fn begin_intake_write(&self) -> StoreResult<WriteTx> {
        self.begin_in_turn(true).await
    }

    async fn begin_in_turn(&self, intake: bool) -> StoreResult<WriteTx> {
        let turn = self.turn(intake).await;
        Ok(WriteTx {
            tx: self.pool.begin().await?,
            _turn: turn,
        })
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex as StdMutex;
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn the_intake_waits_behind_at_most_one_other_writer() {
        let dir = tempfile::tempdir().expect("tempdir");
        let url = format!("sqlite://{}", dir.path().join("turns.db").display());
        let store = Store::connect(&url).await.expect("store");
        let order = Arc::new(StdMutex::new(Vec::new()));
        let held = store.write_turn().await;
        let mut writers = Vec::new();
        for (name, intake) in [
            ("dispatch", false),
            ("outbox", false),
            ("timers", false),
            ("intake", true),
        ] {
            let (store, order) = (store.clone(), order.clone());
            writers.push(tokio::spawn(async move {
                let _turn = store.turn(intake).await;
                order.lock().unwrap_or_else(|e| e.into_inner()).push(name);
                tokio::time::sleep(Duration::from_millis(5)).await;
            }));
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(
            order.lock().unwrap_or_else(|e| e.into_inner()).is_empty(),
            "nobody writes while a turn is held"
        );
        drop(held);
        for w in writers {
            w.await.expect("writer");
        }
        let order = order.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let intake = order.iter().position(|n| *n == "intake");
        assert!(
            intake.is_some_and(|i| i <= 1),
            "the intake came last of those waiting: {order:?}"
        );
        let others: Vec<_> = order.iter().filter(|n| **n != "intake").collect();
        assert_eq!(
            others,
            [&"dispatch", &"outbox", &"timers"],
            "the others keep their order"
        );
    }
}
