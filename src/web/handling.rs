//! How an operator works an incident beyond acknowledging it: takes it (so colleagues see who has
//! it), hands it over or releases it, ticks the steps of its procedure, and records the calls made
//! and their outcome. Every action is one entry of the incident's log, pushed to every console.

use axum::Json;
use axum::extract::{Path, State};
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use super::auth::Operator;
use super::error::{ApiError, ApiResult, ErrorBody, JsonBody};
use crate::domain::{Incident, IncidentEvent, now_millis};
use crate::store::{HandlerChange, StoreError};

/// Routes under `/incidents/{id}/…`.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(take))
        .routes(routes!(hand_over))
        .routes(routes!(release))
        .routes(routes!(tick_step))
        .routes(routes!(record_call))
}

/// Taking an incident.
#[derive(Debug, Default, Deserialize, Serialize, utoipa::ToSchema)]
pub struct TakeRequest {
    /// Take it even though a colleague has it (logged with their name).
    #[serde(default)]
    pub force: bool,
}

/// Handing an incident to a colleague.
#[derive(Debug, Deserialize, Serialize, utoipa::ToSchema)]
pub struct HandOverRequest {
    /// The colleague's operator name.
    pub to: String,
    /// What they need to know (up to 1000 characters).
    #[serde(default)]
    pub note: Option<String>,
}

async fn change(
    app: &AppState,
    id: i64,
    operator: &str,
    change: HandlerChange<'_>,
) -> ApiResult<Json<Incident>> {
    match app
        .store
        .change_handler(id, operator, change, now_millis())
        .await
    {
        Ok(Some((incident, event))) => {
            app.hub.publish([event]);
            Ok(Json(incident))
        }
        Ok(None) => app
            .store
            .get_incident(id)
            .await?
            .map(Json)
            .ok_or(ApiError::NotFound("incident")),
        Err(StoreError::Invalid(m)) => Err(ApiError::Conflict(m)),
        Err(e) => Err(e.into()),
    }
}

/// The caller takes the incident (logged as `taken`). 409 when a colleague has it, unless `force`.
#[utoipa::path(post, path = "/incidents/{id}/take", tag = "incidents", request_body = TakeRequest,
    responses((status = 200, body = Incident), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn take(
    State(app): State<AppState>,
    Operator(op): Operator,
    Path(id): Path<i64>,
    body: Option<Json<TakeRequest>>,
) -> ApiResult<Json<Incident>> {
    let force = body.map(|b| b.0.force).unwrap_or(false);
    change(&app, id, &op.name, HandlerChange::Take { force }).await
}

/// The holder hands the incident to a colleague (logged as `handed_over`).
#[utoipa::path(post, path = "/incidents/{id}/handover", tag = "incidents", request_body = HandOverRequest,
    responses((status = 200, body = Incident), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn hand_over(
    State(app): State<AppState>,
    Operator(op): Operator,
    Path(id): Path<i64>,
    JsonBody(req): JsonBody<HandOverRequest>,
) -> ApiResult<Json<Incident>> {
    let note = req.note.as_deref().map(str::trim).filter(|n| !n.is_empty());
    if note.is_some_and(|n| n.chars().count() > 1000) {
        return Err(ApiError::BadRequest(
            "a hand-over note has at most 1000 characters".into(),
        ));
    }
    let to = req.to.trim();
    change(&app, id, &op.name, HandlerChange::HandOver { to, note }).await
}

/// The holder puts the incident back in the queue for anyone (logged as `released`).
#[utoipa::path(post, path = "/incidents/{id}/release", tag = "incidents",
    responses((status = 200, body = Incident), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn release(
    State(app): State<AppState>,
    Operator(op): Operator,
    Path(id): Path<i64>,
) -> ApiResult<Json<Incident>> {
    change(&app, id, &op.name, HandlerChange::Release).await
}

/// A step of the incident's procedure, ticked.
#[derive(Debug, Deserialize, Serialize, utoipa::ToSchema)]
pub struct StepRequest {
    /// The step's id in the incident's procedure.
    pub step: String,
    /// `done`, `skipped` (not needed) or `failed` (tried, did not work).
    pub outcome: String,
    /// A note (up to 1000 characters).
    #[serde(default)]
    pub note: Option<String>,
}

/// Ticks a step of the incident's procedure (logged as `procedure_step`; ticking again records
/// the new outcome, the latest counts).
#[utoipa::path(post, path = "/incidents/{id}/steps", tag = "incidents", request_body = StepRequest,
    responses((status = 200, body = IncidentEvent), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn tick_step(
    State(app): State<AppState>,
    Operator(op): Operator,
    Path(id): Path<i64>,
    JsonBody(req): JsonBody<StepRequest>,
) -> ApiResult<Json<IncidentEvent>> {
    if !matches!(req.outcome.as_str(), "done" | "skipped" | "failed") {
        return Err(ApiError::BadRequest(
            "outcome is done, skipped or failed".into(),
        ));
    }
    let note = short(req.note.as_deref(), 1000)?;
    let incident = app
        .store
        .get_incident(id)
        .await?
        .ok_or(ApiError::NotFound("incident"))?;
    let procedures = &app.console.settings.procedures;
    let (name, procedure) =
        crate::procedures::resolve(procedures, &incident.kind, incident.category.as_str())
            .ok_or_else(|| ApiError::BadRequest("this incident has no procedure".into()))?;
    if !procedure.steps.iter().any(|s| s.id == req.step) {
        return Err(ApiError::BadRequest(format!(
            "procedure {name:?} has no step {:?}",
            req.step
        )));
    }
    let detail =
        json!({ "procedure": name, "step": req.step, "outcome": req.outcome, "note": note });
    log(&app, id, "procedure_step", &op.name, detail).await
}

/// A phone call an operator made about the incident.
#[derive(Debug, Deserialize, Serialize, utoipa::ToSchema)]
pub struct CallRequest {
    /// Who was called: `elder`, `contact`, `key_holder`, `responder`, `emergency` (120/119/110),
    /// `other`.
    pub party: String,
    /// Their name, when known.
    #[serde(default)]
    pub name: Option<String>,
    /// The number dialled.
    pub number: String,
    /// `reached`, `no_answer`, `busy`, `wrong_number` or `voicemail`.
    pub result: String,
    /// What was said (up to 2000 characters).
    #[serde(default)]
    pub note: Option<String>,
}

const PARTIES: &[&str] = &[
    "elder",
    "contact",
    "key_holder",
    "responder",
    "emergency",
    "other",
];
const RESULTS: &[&str] = &["reached", "no_answer", "busy", "wrong_number", "voicemail"];

/// Records a call and its outcome in the incident's log (`call`).
#[utoipa::path(post, path = "/incidents/{id}/calls", tag = "incidents", request_body = CallRequest,
    responses((status = 200, body = IncidentEvent), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn record_call(
    State(app): State<AppState>,
    Operator(op): Operator,
    Path(id): Path<i64>,
    JsonBody(req): JsonBody<CallRequest>,
) -> ApiResult<Json<IncidentEvent>> {
    if !PARTIES.contains(&req.party.as_str()) {
        return Err(ApiError::BadRequest(format!("party is one of {PARTIES:?}")));
    }
    if !RESULTS.contains(&req.result.as_str()) {
        return Err(ApiError::BadRequest(format!(
            "result is one of {RESULTS:?}"
        )));
    }
    let number = req.number.trim();
    if number.is_empty()
        || number.len() > 32
        || !number
            .chars()
            .all(|c| c.is_ascii_digit() || "+-() #*".contains(c))
    {
        return Err(ApiError::BadRequest(
            "number has 1 to 32 digits (and + - ( ) # *)".into(),
        ));
    }
    let name = short(req.name.as_deref(), 100)?;
    let note = short(req.note.as_deref(), 2000)?;
    let detail = json!({ "party": req.party, "name": name, "number": number,
                         "result": req.result, "note": note });
    log(&app, id, "call", &op.name, detail).await
}

fn short(text: Option<&str>, max: usize) -> ApiResult<Option<String>> {
    let text = text.map(str::trim).filter(|t| !t.is_empty());
    if text.is_some_and(|t| t.chars().count() > max) {
        return Err(ApiError::BadRequest(format!(
            "a text field has at most {max} characters"
        )));
    }
    Ok(text.map(str::to_string))
}

async fn log(
    app: &AppState,
    id: i64,
    kind: &str,
    operator: &str,
    detail: serde_json::Value,
) -> ApiResult<Json<IncidentEvent>> {
    let event = app
        .store
        .log_incident_event(
            id,
            kind,
            &format!("operator:{operator}"),
            detail,
            now_millis(),
        )
        .await?
        .ok_or(ApiError::NotFound("incident"))?;
    app.hub.publish([event.clone()]);
    Ok(Json(event))
}
