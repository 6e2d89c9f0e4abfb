//! The console's live feed: Server-Sent Events of every committed incident event.
//!
//! Each SSE event's `id` is the incident event's id, so a browser's `EventSource` resumes after a
//! reconnect by sending `Last-Event-ID`, and the server replays what was missed from the store.
//! Events come in the incident log's order (`store/log_order.rs`), the same on every instance and
//! after every reconnect, whichever instance committed them (`notify/log_tail.rs`). Nothing is
//! skipped and nothing is sent twice on one stream. A scoped operator's stream carries only the
//! events of incidents in their area.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::Stream;
use serde::Deserialize;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use super::error::ApiResult;
use super::policy::Caller;
use crate::domain::{IncidentEvent, now_millis};
use crate::notify::log_tail::Follower;
use crate::store::Store;

/// Routes: the live stream.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(stream))
}

/// Where to start.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct StreamParams {
    /// Replay the events that came after this one (its id) in the log first. Default: the
    /// `Last-Event-ID` header, else only events from now on.
    pub after: Option<i64>,
    /// A single-use ticket from `POST /api/v1/auth/ticket`, for clients that cannot send the
    /// token in a header (browsers' `EventSource`). Tokens are never accepted in a URL.
    pub ticket: Option<String>,
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
    let header = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse().ok());
    let feed = Feed {
        follower: app.hub.follow(params.after.or(header)).await?,
        store: app.store.clone(),
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
    follower: Follower<IncidentEvent>,
    store: Store,
    shutdown: tokio_util::sync::CancellationToken,
}

impl Feed {
    /// The next event, or `None` when the session or the server ends.
    async fn next(&mut self) -> Option<Arc<IncidentEvent>> {
        self.follower.next(&self.shutdown).await
    }
}
