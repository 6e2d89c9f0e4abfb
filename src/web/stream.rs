//! The console's live feed: Server-Sent Events of every committed incident event.
//!
//! Each SSE event's `id` is the incident event's id, so a browser's `EventSource` resumes after a
//! reconnect by sending `Last-Event-ID`, and the server replays what was missed from the store. The
//! store is the source of truth: whenever the live channel lags, or an event arrives with a gap before
//! it, the stream catches up from the store by id before going on. Nothing is skipped and nothing is
//! sent twice on one stream.
//!
//! Events another instance committed are not on this instance's live channel: the hub's
//! `committed` watermark (woken by PostgreSQL `NOTIFY`) tells the stream the log has grown, and
//! what has not arrived live within a short grace is read from the store. A scoped operator's
//! stream carries only the events of incidents in their area.

use std::collections::{HashMap, VecDeque};
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::Stream;
use serde::Deserialize;
use tokio::sync::broadcast::{self, error::RecvError};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use super::error::ApiResult;
use super::policy::Caller;
use crate::domain::{IncidentEvent, now_millis};
use crate::store::Store;

/// Routes: the live stream.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(stream))
}

/// Where to start.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct StreamParams {
    /// Replay events with an id above this one first. Default: the `Last-Event-ID` header, else
    /// only events from now on.
    pub after: Option<i64>,
    /// A single-use ticket from `POST /api/v1/auth/ticket`, for clients that cannot send the
    /// token in a header (browsers' `EventSource`). Tokens are never accepted in a URL.
    pub ticket: Option<String>,
}

const CATCH_UP_PAGE: i64 = 500;

/// How long a stream waits for its own instance's publication of a commit it was told of before
/// it reads the commit from the store.
const BEHIND_GRACE: Duration = Duration::from_millis(20);

async fn sleep_until(behind: Option<(i64, tokio::time::Instant)>) {
    match behind {
        Some((_, at)) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// Live incident events (`text/event-stream`). Each event: `id: <event id>`, `event: incident`,
/// `data: <IncidentEvent JSON>`.
#[utoipa::path(get, path = "/stream", tag = "incidents", params(StreamParams),
    responses((status = 200, description = "text/event-stream of IncidentEvent", content_type = "text/event-stream")))]
async fn stream(
    State(app): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Query(params): Query<StreamParams>,
) -> ApiResult<Sse<impl Stream<Item = Result<Event, Infallible>>>> {
    // Subscribe before reading where to start, so nothing committed in between is lost.
    let live = app.hub.subscribe();
    let header = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse().ok());
    let last_id = match params.after.or(header) {
        Some(id) => id,
        None => app.store.last_incident_event_id().await?,
    };
    let feed = Feed {
        store: app.store.clone(),
        committed: app.hub.committed(),
        behind: None,
        live,
        last_id,
        backlog: VecDeque::new(),
        catch_up: true,
        shutdown: session_watch(&app, &caller),
    };
    let feed = Guarded(feed.shutdown.clone().drop_guard(), feed);
    let hub = app.hub.clone();
    let scope = caller.scope.as_ref().map(|_| Scope {
        app: app.clone(),
        caller: caller.clone(),
        seen: HashMap::new(),
    });
    let stream = futures_util::stream::unfold((feed, scope), move |(mut guarded, mut scope)| {
        let hub = hub.clone();
        async move {
            let feed = &mut guarded.1;
            let event = loop {
                let event = feed.next().await?;
                if let Some(scope) = &mut scope
                    && !scope.shows(event.incident_id).await
                {
                    continue;
                }
                break event;
            };
            if event.kind == "opened" {
                mark_shown(feed.store.clone(), hub.clone(), event.incident_id);
            }
            let sse = Event::default()
                .id(event.id.to_string())
                .event("incident")
                .json_data(&*event)
                .unwrap_or_else(|_| Event::default().comment("unserialisable event"));
            Some((Ok(sse), (guarded, scope)))
        }
    });
    Ok(Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))))
}

/// What a scoped operator's stream shows: events of incidents of elders in their area. Each
/// incident's answer is looked up once (an incident's elder does not change).
struct Scope {
    app: AppState,
    caller: Caller,
    seen: HashMap<i64, bool>,
}

impl Scope {
    /// Whether the incident's events go on this stream. While the store cannot say, the stream
    /// waits rather than drop an event its operator must see.
    async fn shows(&mut self, incident_id: i64) -> bool {
        if let Some(&shown) = self.seen.get(&incident_id) {
            return shown;
        }
        let shown = loop {
            match super::scope::incident(&self.app, &self.caller, incident_id).await {
                Ok(_) => break true,
                Err(super::error::ApiError::NotFound(_)) => break false,
                Err(e) => {
                    tracing::warn!(incident_id, error = ?e, "cannot check a stream's scope; retrying");
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
            }
        };
        self.seen.insert(incident_id, shown);
        shown
    }
}

/// A token cancelled at shutdown, or when the caller's session ends (logout, expiry, disabled
/// account): a live stream must not outlive the session that opened it. Checked every 15 s.
pub fn session_watch(app: &AppState, caller: &Caller) -> tokio_util::sync::CancellationToken {
    let token = app.shutdown.child_token();
    let (store, digest, watched) = (app.store.clone(), caller.session.clone(), token.clone());
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = watched.cancelled() => return,
                _ = tokio::time::sleep(Duration::from_secs(15)) => {}
            }
            match store.session_by_digest(&digest).await {
                Ok(Some(_)) => {}
                Ok(None) => {
                    tracing::info!("session ended; closing its live stream");
                    watched.cancel();
                    return;
                }
                Err(e) => tracing::warn!(error = %e, "cannot check a stream's session"),
            }
        }
    });
    token
}

/// Records that an incident reached a console (its `shown_at` step), once.
fn mark_shown(store: Store, hub: crate::notify::ConsoleHub, incident_id: i64) {
    tokio::spawn(async move {
        match store.mark_shown(incident_id, now_millis()).await {
            Ok(Some(event)) => hub.publish([event]),
            Ok(None) => {}
            Err(e) => tracing::warn!(incident_id, error = %e, "could not record shown_at"),
        }
    });
}

/// The feed, with the guard (held, never read) that stops its session watch when the client goes
/// away.
struct Guarded(#[allow(dead_code)] tokio_util::sync::DropGuard, Feed);

struct Feed {
    store: Store,
    /// How far the log has grown on any instance: behind it, catch up from the store.
    committed: tokio::sync::watch::Receiver<i64>,
    /// Events up to this id are committed but not yet seen here; read the store at the instant.
    behind: Option<(i64, tokio::time::Instant)>,
    live: broadcast::Receiver<Arc<IncidentEvent>>,
    last_id: i64,
    backlog: VecDeque<IncidentEvent>,
    catch_up: bool,
    shutdown: tokio_util::sync::CancellationToken,
}

impl Feed {
    /// The next event after `last_id`, or `None` when the server is shutting down.
    async fn next(&mut self) -> Option<Arc<IncidentEvent>> {
        loop {
            if let Some(event) = self.backlog.pop_front() {
                if event.id > self.last_id {
                    self.last_id = event.id;
                    return Some(Arc::new(event));
                }
                continue;
            }
            if self.catch_up {
                match self
                    .store
                    .incident_events_after(self.last_id, CATCH_UP_PAGE)
                    .await
                {
                    Ok(page) => {
                        self.catch_up = page.len() as i64 == CATCH_UP_PAGE;
                        self.backlog.extend(page);
                        continue;
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "console catch-up failed; retrying");
                        tokio::time::sleep(Duration::from_secs(1)).await;
                        continue;
                    }
                }
            }
            let received = tokio::select! {
                _ = self.shutdown.cancelled() => return None,
                received = self.live.recv() => received,
                Ok(()) = self.committed.changed() => {
                    // The log grew. This instance's own commits arrive on `live` a moment
                    // later; what is still missing after a short grace was committed by another
                    // instance, and is read from the store.
                    let target = *self.committed.borrow_and_update();
                    if target > self.last_id {
                        self.behind = Some((target, tokio::time::Instant::now() + BEHIND_GRACE));
                    }
                    continue;
                }
                _ = sleep_until(self.behind), if self.behind.is_some() => {
                    if self.behind.is_some_and(|(target, _)| target > self.last_id) {
                        self.catch_up = true;
                    }
                    self.behind = None;
                    continue;
                }
            };
            match received {
                Ok(event) if event.id <= self.last_id => continue,
                Ok(event) if event.id == self.last_id + 1 => {
                    self.last_id = event.id;
                    return Some(event);
                }
                // A gap: an earlier event is committed but not yet published here. Read the store.
                Ok(_) | Err(RecvError::Lagged(_)) => self.catch_up = true,
                Err(RecvError::Closed) => return None,
            }
        }
    }
}
