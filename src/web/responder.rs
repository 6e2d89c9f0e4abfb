//! The responder app's API under `/api/v1/responder/…`: duty, location, my tasks, accept, decline,
//! arrived, completed, and a live SSE stream of my pushes. Only the caller's own tasks.

use std::convert::Infallible;

use axum::Json;
use axum::extract::{FromRequestParts, Path, State};
use axum::http::request::Parts;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::Stream;
use serde::{Deserialize, Serialize};
use tokio::sync::broadcast::error::RecvError;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use super::auth::Authenticated;
use super::error::{ApiError, ApiResult};
use crate::dispatch::{Input, Runner};
use crate::domain::now_millis;
use crate::store::{OfferRow, SubjectKind};

/// Routes.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(duty))
        .routes(routes!(location))
        .routes(routes!(tasks))
        .routes(routes!(accept))
        .routes(routes!(decline))
        .routes(routes!(arrived))
        .routes(routes!(completed))
        .route("/responder/stream", axum::routing::get(stream))
}

/// A logged-in responder.
pub struct Me(pub i64);

impl FromRequestParts<AppState> for Me {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, app: &AppState) -> Result<Self, ApiError> {
        let Authenticated(p) = Authenticated::from_request_parts(parts, app).await?;
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

/// One task as the app shows it: the address always, the key-safe code and health notes only
/// once this responder holds the task.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Task {
    /// The offer or assignment.
    pub offer: OfferRow,
    /// Incident category.
    pub category: Option<String>,
    /// What raised it.
    pub kind: Option<String>,
    /// The elder's address.
    pub address: Option<String>,
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
async fn tasks(State(app): State<AppState>, Me(me): Me) -> ApiResult<Json<Vec<Task>>> {
    let mut out = Vec::new();
    for offer in app.store.responder_offers(me).await? {
        let incident = app.store.get_incident(offer.incident_id).await?;
        let elder = match incident.as_ref().and_then(|i| i.elder_id) {
            Some(id) => app.store.get_elder(id).await?,
            None => None,
        };
        let holds = matches!(offer.status.as_str(), "accepted" | "arrived");
        let location = incident.as_ref().and_then(|i| i.location);
        out.push(Task {
            category: incident.as_ref().map(|i| i.category.as_str().to_string()),
            kind: incident.as_ref().map(|i| i.kind.clone()),
            address: elder.as_ref().map(|e| e.address.clone()),
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

/// My pushes as server-sent events (`offer`, `assigned`, `stand_down`, `escalation`).
async fn stream(
    State(app): State<AppState>,
    Me(me): Me,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let rx = app.responders.subscribe();
    let shutdown = app.shutdown.clone();
    let events =
        futures_util::stream::unfold((rx, shutdown), move |(mut rx, shutdown)| async move {
            loop {
                let msg = tokio::select! {
                    _ = shutdown.cancelled() => return None,
                    m = rx.recv() => m,
                };
                match msg {
                    Ok(p) if p.responder_id == me => {
                        let data = serde_json::to_string(&*p).unwrap_or_default();
                        let kind = serde_json::to_value(&p.push)
                            .ok()
                            .and_then(|v| {
                                v.get("type").and_then(|t| t.as_str()).map(str::to_string)
                            })
                            .unwrap_or_else(|| "push".into());
                        return Some((Ok(Event::default().event(kind).data(data)), (rx, shutdown)));
                    }
                    Ok(_) => continue,
                    // A lagging app lists its tasks again; tell it so.
                    Err(RecvError::Lagged(_)) => {
                        return Some((
                            Ok(Event::default().event("resync").data("{}")),
                            (rx, shutdown),
                        ));
                    }
                    Err(RecvError::Closed) => return None,
                }
            }
        });
    Sse::new(events).keep_alive(KeepAlive::default())
}
