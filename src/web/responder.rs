//! The responder app's API under `/api/v1/responder/…`: who I am and whether I am on duty, duty,
//! location, my tasks, accept, decline, arrived, completed, and a live SSE stream of my pushes.
//! Only the caller's own tasks.

use std::convert::Infallible;

use axum::Json;
use axum::extract::{FromRequestParts, Path, State};
use axum::http::request::Parts;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::Stream;
use serde::{Deserialize, Serialize};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use super::auth::Authenticated;
use super::error::{ApiError, ApiResult};
use super::policy::Caller;
use crate::dispatch::{Input, Runner};
use crate::domain::now_millis;
use crate::store::{OfferRow, SubjectKind};

/// Routes.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(me))
        .routes(routes!(duty))
        .routes(routes!(location))
        .routes(routes!(tasks))
        .routes(routes!(accept))
        .routes(routes!(decline))
        .routes(routes!(arrived))
        .routes(routes!(completed))
        .routes(routes!(receipts))
        .routes(routes!(stream))
}

/// A logged-in responder.
pub struct Me(pub i64);

impl FromRequestParts<AppState> for Me {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, app: &AppState) -> Result<Self, ApiError> {
        let Authenticated(p, _) = Authenticated::from_request_parts(parts, app).await?;
        match p.kind {
            SubjectKind::Responder => Ok(Me(p.id)),
            SubjectKind::Operator => Err(ApiError::Forbidden("responders only")),
        }
    }
}

/// Going on or off duty.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct DutyRequest {
    /// On duty now.
    pub on_duty: bool,
    /// Live latitude.
    pub lat: Option<f64>,
    /// Live longitude.
    pub lon: Option<f64>,
}

/// A position report.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct LocationRequest {
    /// Latitude.
    pub lat: f64,
    /// Longitude.
    pub lon: f64,
}

/// A completion note.
#[derive(Debug, Deserialize, utoipa::ToSchema, Default)]
pub struct CompleteRequest {
    /// What was done.
    #[serde(default)]
    pub note: String,
}

/// The signed-in responder as the app shows them.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct MeResponse {
    /// Responder id.
    pub id: i64,
    /// Name.
    pub name: String,
    /// Phone (what they sign in with).
    pub phone: String,
    /// On duty according to the server (the app's switch shows this).
    pub on_duty: bool,
    /// `volunteer`, `grid_worker`…
    pub kind: String,
}

/// Who I am, and whether the server has me on duty.
#[utoipa::path(get, path = "/responder/me", tag = "responder", responses((status = 200, body = MeResponse)))]
async fn me(State(app): State<AppState>, Me(me): Me) -> ApiResult<Json<MeResponse>> {
    let r = app
        .store
        .get_responder(me)
        .await?
        .ok_or(ApiError::NotFound("responder"))?;
    Ok(Json(MeResponse {
        id: r.id,
        name: r.name,
        phone: r.phone,
        on_duty: r.on_duty,
        kind: r.kind.as_str().to_string(),
    }))
}

/// One task as the app shows it: the elder's name, the address and the alarm kind always; the
/// phone numbers, key-safe code and health notes only once this responder holds the task.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Task {
    /// The offer or assignment.
    pub offer: OfferRow,
    /// Incident category.
    pub category: Option<String>,
    /// What raised it.
    pub kind: Option<String>,
    /// When the alarm came in.
    pub received_at: Option<crate::domain::Millis>,
    /// The elder's name.
    pub elder_name: Option<String>,
    /// The elder's address.
    pub address: Option<String>,
    /// The elder's phone (task holders only).
    pub elder_phone: Option<String>,
    /// Contacts and key holders (task holders only).
    pub contacts: Vec<crate::domain::Contact>,
    /// Where to go.
    pub lat: Option<f64>,
    /// Where to go.
    pub lon: Option<f64>,
    /// Key-safe code (task holders only).
    pub key_safe_code: Option<String>,
    /// Health notes (task holders only).
    pub health_notes: Option<String>,
}

fn runner(app: &AppState) -> ApiResult<&Runner> {
    app.dispatch.as_deref().ok_or(ApiError::Conflict(
        "dispatch is disabled on this server".into(),
    ))
}

fn valid(lat: f64, lon: f64) -> ApiResult<()> {
    if (-90.0..=90.0).contains(&lat) && (-180.0..=180.0).contains(&lon) {
        Ok(())
    } else {
        Err(ApiError::BadRequest("coordinates out of range".into()))
    }
}

#[utoipa::path(post, path = "/responder/duty", tag = "responder", request_body = DutyRequest,
    responses((status = 204)))]
async fn duty(
    State(app): State<AppState>,
    Me(me): Me,
    Json(req): Json<DutyRequest>,
) -> ApiResult<axum::http::StatusCode> {
    let position = req.lat.zip(req.lon);
    if let Some((lat, lon)) = position {
        valid(lat, lon)?;
    }
    app.store
        .set_duty(me, req.on_duty, position, now_millis())
        .await?;
    if let Some(r) = &app.dispatch {
        r.refresh_responders().await?;
    }
    Ok(axum::http::StatusCode::NO_CONTENT)
}

#[utoipa::path(post, path = "/responder/location", tag = "responder", request_body = LocationRequest,
    responses((status = 204)))]
async fn location(
    State(app): State<AppState>,
    Me(me): Me,
    Json(req): Json<LocationRequest>,
) -> ApiResult<axum::http::StatusCode> {
    valid(req.lat, req.lon)?;
    let on_duty = app
        .store
        .get_responder(me)
        .await?
        .is_some_and(|r| r.on_duty);
    app.store
        .set_duty(me, on_duty, Some((req.lat, req.lon)), now_millis())
        .await?;
    Ok(axum::http::StatusCode::NO_CONTENT)
}

#[utoipa::path(get, path = "/responder/tasks", tag = "responder", responses((status = 200, body = Vec<Task>)))]
async fn tasks(
    State(app): State<AppState>,
    Me(me): Me,
    caller: Caller,
) -> ApiResult<Json<Vec<Task>>> {
    let mut out = Vec::new();
    for offer in app.store.responder_offers(me).await? {
        let incident = app.store.get_incident(offer.incident_id).await?;
        let elder = match incident.as_ref().and_then(|i| i.elder_id) {
            Some(id) => app.store.get_elder(id).await?,
            None => None,
        };
        let holds = matches!(offer.status.as_str(), "accepted" | "arrived");
        if let Some(e) = elder.as_ref().filter(|_| holds) {
            app.audit(
                &caller,
                "elder_read",
                &format!("elder:{}", e.id),
                serde_json::json!({"incident_id": offer.incident_id, "via": "task"}),
            )
            .await;
        }
        let location = incident.as_ref().and_then(|i| i.location);
        out.push(Task {
            category: incident.as_ref().map(|i| i.category.as_str().to_string()),
            kind: incident.as_ref().map(|i| i.kind.clone()),
            received_at: incident.as_ref().map(|i| i.received_at),
            elder_name: elder.as_ref().map(|e| e.name.clone()),
            address: elder.as_ref().map(|e| e.address.clone()),
            elder_phone: elder
                .as_ref()
                .filter(|_| holds)
                .and_then(|e| e.phone.clone()),
            contacts: elder
                .as_ref()
                .filter(|_| holds)
                .map(|e| e.contacts.clone())
                .unwrap_or_default(),
            lat: location.map(|l| l.lat).or(elder.as_ref().map(|e| e.lat)),
            lon: location.map(|l| l.lon).or(elder.as_ref().map(|e| e.lon)),
            key_safe_code: elder
                .as_ref()
                .filter(|_| holds)
                .and_then(|e| e.key_safe_code.clone()),
            health_notes: elder
                .as_ref()
                .filter(|_| holds)
                .map(|e| e.health_notes.clone()),
            offer,
        });
    }
    Ok(Json(out))
}

#[utoipa::path(post, path = "/responder/tasks/{incident_id}/accept", tag = "responder",
    responses((status = 204), (status = 409, body = super::error::ErrorBody)))]
async fn accept(
    State(app): State<AppState>,
    Me(me): Me,
    Path(incident_id): Path<i64>,
) -> ApiResult<axum::http::StatusCode> {
    if runner(&app)?.accept(incident_id, me, now_millis()).await? {
        Ok(axum::http::StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::Conflict(
            "the task was taken or the offer is closed".into(),
        ))
    }
}

async fn report(
    app: &AppState,
    incident_id: i64,
    input: Input,
) -> ApiResult<axum::http::StatusCode> {
    let me = match &input {
        Input::Declined(r) | Input::Arrived(r) | Input::Completed(r, _) => *r,
        _ => return Err(ApiError::BadRequest("unsupported".into())),
    };
    if runner(app)?
        .report(incident_id, me, input, now_millis())
        .await?
    {
        Ok(axum::http::StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::Conflict(
            "no such offer or task in that state".into(),
        ))
    }
}

#[utoipa::path(post, path = "/responder/tasks/{incident_id}/decline", tag = "responder",
    responses((status = 204), (status = 409, body = super::error::ErrorBody)))]
async fn decline(
    State(app): State<AppState>,
    Me(me): Me,
    Path(incident_id): Path<i64>,
) -> ApiResult<axum::http::StatusCode> {
    report(&app, incident_id, Input::Declined(me)).await
}

#[utoipa::path(post, path = "/responder/tasks/{incident_id}/arrived", tag = "responder",
    responses((status = 204), (status = 409, body = super::error::ErrorBody)))]
async fn arrived(
    State(app): State<AppState>,
    Me(me): Me,
    Path(incident_id): Path<i64>,
) -> ApiResult<axum::http::StatusCode> {
    report(&app, incident_id, Input::Arrived(me)).await
}

#[utoipa::path(post, path = "/responder/tasks/{incident_id}/completed", tag = "responder",
    request_body = CompleteRequest, responses((status = 204), (status = 409, body = super::error::ErrorBody)))]
async fn completed(
    State(app): State<AppState>,
    Me(me): Me,
    Path(incident_id): Path<i64>,
    Json(req): Json<CompleteRequest>,
) -> ApiResult<axum::http::StatusCode> {
    report(&app, incident_id, Input::Completed(me, req.note)).await
}

/// Receipts from the browser app: the push notifications it has shown.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct ReceiptRequest {
    /// Notification ids (the `id` of each pushed message), at most 256.
    pub ids: Vec<i64>,
}

/// How many receipts were new.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ReceiptResponse {
    /// Notifications confirmed now (repeats and other responders' ids are ignored).
    pub confirmed: usize,
}

/// The app confirms it received pushed messages (the same as publishing to
/// `<prefix>/responder/<id>/receipt` over MQTT); the console then shows the offer as received.
#[utoipa::path(post, path = "/responder/receipts", tag = "responder", request_body = ReceiptRequest,
    responses((status = 200, body = ReceiptResponse), (status = 400, body = super::error::ErrorBody)))]
async fn receipts(
    State(app): State<AppState>,
    Me(me): Me,
    Json(req): Json<ReceiptRequest>,
) -> ApiResult<Json<ReceiptResponse>> {
    if req.ids.len() > 256 {
        return Err(ApiError::BadRequest("at most 256 ids per receipt".into()));
    }
    let confirmed =
        crate::notify::receipts::confirm(&app.store, &app.hub, me, &req.ids, now_millis()).await?;
    Ok(Json(ReceiptResponse { confirmed }))
}

/// Where an app stream starts.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct AppStreamParams {
    /// Replay the pushes that came after this one (its id) first (default: the `Last-Event-ID`
    /// header, else only pushes from now on).
    pub after: Option<i64>,
    /// A single-use ticket from `POST /api/v1/auth/ticket` (browsers' `EventSource` cannot send
    /// the token in a header).
    pub ticket: Option<String>,
}

/// My pushes as server-sent events: `id` is the notification id (`Last-Event-ID` resumes),
/// `event` its type (`offer`, `assigned`, `stand_down`, `escalation`, `cancel_notice`,
/// `message`), `data` the same JSON the MQTT task topic carries. Ends when the session does.
#[utoipa::path(get, path = "/responder/stream", tag = "responder", params(AppStreamParams),
    responses((status = 200, description = "text/event-stream of pushes", content_type = "text/event-stream")))]
async fn stream(
    State(app): State<AppState>,
    Me(me): Me,
    caller: Caller,
    headers: axum::http::HeaderMap,
    axum::extract::Query(params): axum::extract::Query<AppStreamParams>,
) -> ApiResult<Sse<impl Stream<Item = Result<Event, Infallible>>>> {
    let header = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse().ok());
    let feed = AppFeed {
        follower: app.responders.follow(me, params.after.or(header)).await?,
        shutdown: super::stream::session_watch(&app, &caller),
    };
    let guard = feed.shutdown.clone().drop_guard();
    let events = futures_util::stream::unfold((feed, guard), |(mut feed, guard)| async move {
        let n = feed.next().await?;
        let kind = n
            .payload
            .get("type")
            .and_then(|t| t.as_str())
            .unwrap_or("push")
            .to_string();
        let data = crate::notify::app_message(&n).to_string();
        let event = Event::default().id(n.id.to_string()).event(kind).data(data);
        Some((Ok(event), (feed, guard)))
    });
    Ok(Sse::new(events).keep_alive(KeepAlive::default()))
}

struct AppFeed {
    follower: crate::notify::log_tail::Follower<crate::store::Notification>,
    shutdown: tokio_util::sync::CancellationToken,
}

impl AppFeed {
    /// The next push for this responder, or `None` when the session or the server ends.
    async fn next(&mut self) -> Option<std::sync::Arc<crate::store::Notification>> {
        self.follower.next(&self.shutdown).await
    }
}
