//! Following a log in the store (the incident events, the push notifications) and fanning it out
//! to every live stream of this instance, in the log's order (`store/log_order.rs`).
//!
//! One tail task per log reads what became final since its last position, whenever it is woken
//! (a commit on this instance, a `NOTIFY` from another, or once a second), and broadcasts each
//! row with the position before it. A [`Follower`] (one per open stream) takes rows from the
//! broadcast while they join on to what it has delivered, and reads the store itself when they
//! do not: after a reconnect, when it lagged, or when it started behind. So every stream on every
//! instance sees the same rows in the same order, none skipped and none twice.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use futures_util::future::BoxFuture;
use tokio::sync::{Notify, broadcast, watch};
use tokio_util::sync::CancellationToken;

use crate::store::{LogPage, LogPosition, StoreResult};

/// Reads up to `limit` rows after a position.
pub type Reader<T> =
    Arc<dyn Fn(LogPosition, i64) -> BoxFuture<'static, StoreResult<LogPage<T>>> + Send + Sync>;

/// A row as broadcast: its position, the position of the row before it, and the row.
#[derive(Debug)]
pub struct Tailed<T> {
    /// The row before this one in the log (what a follower must have passed to take this one).
    pub prev: LogPosition,
    /// This row's position.
    pub at: LogPosition,
    /// The row.
    pub item: Arc<T>,
}

const PAGE: i64 = 500;
const SAFETY_POLL: Duration = Duration::from_secs(1);
const HELD_BACK_FIRST: Duration = Duration::from_millis(1);
const HELD_BACK_MAX: Duration = Duration::from_millis(50);

/// The tail of one log: wake it after a commit, follow it from a stream.
pub struct LogTail<T> {
    tx: broadcast::Sender<Arc<Tailed<T>>>,
    wake: Arc<Notify>,
    head: watch::Receiver<LogPosition>,
}

impl<T> Clone for LogTail<T> {
    fn clone(&self) -> Self {
        LogTail {
            tx: self.tx.clone(),
            wake: self.wake.clone(),
            head: self.head.clone(),
        }
    }
}

impl<T: Send + Sync + 'static> LogTail<T> {
    /// Starts tailing `read` from `end` (the log's last final position now), buffering up to
    /// `capacity` rows per follower; the task ends at `shutdown`. `on_row` is called for each row
    /// broadcast (metrics).
    pub fn start(
        log: &'static str,
        read: Reader<T>,
        end: LogPosition,
        capacity: usize,
        on_row: fn(&T),
        shutdown: CancellationToken,
    ) -> LogTail<T> {
        let (tx, _) = broadcast::channel(capacity);
        let wake = Arc::new(Notify::new());
        let (head_tx, head) = watch::channel(end);
        let tail = LogTail {
            tx: tx.clone(),
            wake: wake.clone(),
            head,
        };
        tokio::spawn(async move {
            let mut at = end;
            let mut retry: Option<Duration> = None;
            loop {
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = wake.notified() => {}
                    _ = tokio::time::sleep(retry.unwrap_or(SAFETY_POLL)) => {}
                }
                loop {
                    let page = match read(at, PAGE).await {
                        Ok(page) => page,
                        Err(e) => {
                            tracing::warn!(log, error = %e, "cannot read the log's tail; retrying");
                            retry = Some(SAFETY_POLL);
                            break;
                        }
                    };
                    let full = page.rows.len() as i64 == PAGE;
                    for (position, item) in page.rows {
                        on_row(&item);
                        let _ = tx.send(Arc::new(Tailed {
                            prev: at,
                            at: position,
                            item: Arc::new(item),
                        }));
                        at = position;
                    }
                    head_tx.send_replace(at);
                    if full {
                        continue;
                    }
                    // Rows committed behind a transaction still running: read again soon.
                    retry = page.held_back.then(|| {
                        retry
                            .filter(|r| *r < SAFETY_POLL)
                            .map_or(HELD_BACK_FIRST, |r| (r * 2).min(HELD_BACK_MAX))
                    });
                    break;
                }
            }
        });
        tail
    }

    /// Says the log grew (a commit here, or another instance's `NOTIFY`): the tail reads on.
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// A follower that starts after `from` (`None`: from now on), reading the store with `read`
    /// when it falls behind and passing on the rows `keep` accepts.
    pub fn follow(
        &self,
        from: Option<LogPosition>,
        read: Reader<T>,
        keep: impl Fn(&T) -> bool + Send + Sync + 'static,
    ) -> Follower<T> {
        // Subscribe before reading the head: every row after it is then received.
        let live = self.tx.subscribe();
        let head = *self.head.borrow();
        Follower {
            live,
            head: self.head.clone(),
            covered: from.unwrap_or(head),
            backlog: VecDeque::new(),
            catch_up: from.is_some_and(|from| from < head),
            read,
            keep: Box::new(keep),
        }
    }

    /// Open followers.
    pub fn followers(&self) -> usize {
        self.tx.receiver_count()
    }
}

/// One stream's place in a log.
pub struct Follower<T> {
    live: broadcast::Receiver<Arc<Tailed<T>>>,
    head: watch::Receiver<LogPosition>,
    /// Every row up to here was delivered (or was not this stream's).
    covered: LogPosition,
    /// Rows read from the store; `None` only moves `covered` on.
    backlog: VecDeque<(LogPosition, Option<T>)>,
    catch_up: bool,
    read: Reader<T>,
    keep: Box<dyn Fn(&T) -> bool + Send + Sync>,
}

impl<T: Send + Sync + 'static> Follower<T> {
    /// The next row, or `None` when `stop` is cancelled or the tail is gone.
    pub async fn next(&mut self, stop: &CancellationToken) -> Option<Arc<T>> {
        loop {
            if let Some((position, item)) = self.backlog.pop_front() {
                if position <= self.covered {
                    continue;
                }
                self.covered = position;
                match item {
                    Some(item) if (self.keep)(&item) => return Some(Arc::new(item)),
                    _ => continue,
                }
            }
            if self.catch_up {
                // What the tail had broadcast before this read is in the store by now.
                let head = *self.head.borrow();
                match (self.read)(self.covered, PAGE).await {
                    Ok(page) => {
                        self.catch_up = page.rows.len() as i64 == PAGE;
                        self.backlog
                            .extend(page.rows.into_iter().map(|(p, item)| (p, Some(item))));
                        if !self.catch_up {
                            // The rest up to the head was not this stream's (`read` filters).
                            self.backlog.push_back((head, None));
                        }
                        continue;
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "a stream's catch-up failed; retrying");
                        tokio::select! {
                            _ = stop.cancelled() => return None,
                            _ = tokio::time::sleep(SAFETY_POLL) => {}
                        }
                        continue;
                    }
                }
            }
            let received = tokio::select! {
                _ = stop.cancelled() => return None,
                received = self.live.recv() => received,
            };
            match received {
                Ok(row) if row.at <= self.covered => continue,
                Ok(row) if row.prev <= self.covered => {
                    self.covered = row.at;
                    if (self.keep)(&row.item) {
                        return Some(row.item.clone());
                    }
                }
                // A gap (this stream started behind the broadcast) or a lag: read the store.
                Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => self.catch_up = true,
                Err(broadcast::error::RecvError::Closed) => return None,
            }
        }
    }
}
