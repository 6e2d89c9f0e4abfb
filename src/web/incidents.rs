//! Incidents: the operators' queue and the actions on one incident.

use axum::Json;
use axum::extract::{Path, Query, State};
use serde::{Deserialize, Serialize};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use super::auth::Operator;
use super::error::{ApiError, ApiResult, JsonBody};
use crate::domain::{Device, Elder, Incident, IncidentEvent, Outcome, now_millis};
use crate::notify::DeviceCommand;
use crate::store::IncidentFilter;

/// Routes under `/incidents`.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list))
        .routes(routes!(get))
        .routes(routes!(acknowledge))
        .routes(routes!(close))
        .routes(routes!(add_note))
        .routes(routes!(send_command))
        .routes(routes!(offer))
        .routes(routes!(escalate))
}

/// An incident with everything the incident page shows.
#[derive(Serialize, Deserialize, utoipa::ToSchema)]
pub struct IncidentDetail {
    /// The incident.
    pub incident: Incident,
    /// Its event log, oldest first.
    pub events: Vec<IncidentEvent>,
    /// The elder, when known.
    pub elder: Option<Elder>,
    /// The device that raised it, when one did.
    pub device: Option<Device>,
    /// The elder's other incidents, newest first.
    pub previous: Vec<Incident>,
    /// Everyone it was offered to, with live positions.
    pub offers: Vec<crate::store::IncidentOffer>,
}

/// Lists incidents: open ones most urgent and oldest first.
#[utoipa::path(get, path = "/incidents", tag = "incidents", params(IncidentFilter),
    responses((status = 200, body = Vec<Incident>)))]
async fn list(
    State(app): State<AppState>,
    _: Operator,
    Query(f): Query<IncidentFilter>,
) -> ApiResult<Json<Vec<Incident>>> {
    Ok(Json(app.store.list_incidents(&f).await?))
}

/// One incident with its log, elder and device.
#[utoipa::path(get, path = "/incidents/{id}", tag = "incidents",
    responses((status = 200, body = IncidentDetail), (status = 404, body = super::error::ErrorBody)))]
async fn get(
    State(app): State<AppState>,
    _: Operator,
    Path(id): Path<i64>,
) -> ApiResult<Json<IncidentDetail>> {
    let incident = app
        .store
        .get_incident(id)
        .await?
        .ok_or(ApiError::NotFound("incident"))?;
    let events = app.store.incident_events(id).await?;
    let elder = match incident.elder_id {
        Some(e) => app.store.get_elder(e).await?,
        None => None,
    };
    let device = match incident.device_id {
        Some(d) => app.store.get_device(d).await?,
        None => None,
    };
    let previous = match incident.elder_id {
        Some(e) => {
            let f = IncidentFilter {
                elder_id: Some(e),
                limit: Some(20),
                ..Default::default()
            };
            app.store
                .list_incidents(&f)
                .await?
                .into_iter()
                .filter(|i| i.id != id)
                .collect()
        }
        None => Vec::new(),
    };
    let offers = app.store.incident_offers(id).await?;
    Ok(Json(IncidentDetail {
        incident,
        events,
        elder,
        device,
        previous,
        offers,
    }))
}

/// An operator takes the incident. Acknowledging twice is harmless.
#[utoipa::path(post, path = "/incidents/{id}/ack", tag = "incidents",
    responses((status = 200, body = Incident), (status = 404, body = super::error::ErrorBody), (status = 409, body = super::error::ErrorBody)))]
async fn acknowledge(
    State(app): State<AppState>,
    Operator(op): Operator,
    Path(id): Path<i64>,
) -> ApiResult<Json<Incident>> {
    match app.store.acknowledge(id, &op.name, now_millis()).await {
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
        Err(crate::store::StoreError::Invalid(m)) => Err(ApiError::Conflict(m)),
        Err(e) => Err(e.into()),
    }
}

/// How an operator closes an incident.
#[derive(Deserialize, Serialize, utoipa::ToSchema)]
pub struct CloseRequest {
    /// The outcome.
    pub outcome: Outcome,
    /// A closing note.
    #[serde(default)]
    pub note: Option<String>,
}

/// Closes an incident with an outcome.
#[utoipa::path(post, path = "/incidents/{id}/close", tag = "incidents", request_body = CloseRequest,
    responses((status = 200, body = Incident), (status = 404, body = super::error::ErrorBody), (status = 409, body = super::error::ErrorBody)))]
async fn close(
    State(app): State<AppState>,
    Operator(op): Operator,
    Path(id): Path<i64>,
    JsonBody(req): JsonBody<CloseRequest>,
) -> ApiResult<Json<Incident>> {
    match app
        .store
        .close_incident(id, &op.name, req.outcome, req.note.as_deref(), now_millis())
        .await
    {
        Ok(Some((incident, event))) => {
            app.hub.publish([event]);
            Ok(Json(incident))
        }
        Ok(None) => match app.store.get_incident(id).await? {
            Some(_) => Err(ApiError::Conflict("incident is already closed".into())),
            None => Err(ApiError::NotFound("incident")),
        },
        Err(crate::store::StoreError::Invalid(m)) => Err(ApiError::Conflict(m)),
        Err(e) => Err(e.into()),
    }
}

/// A note.
#[derive(Deserialize, Serialize, utoipa::ToSchema)]
pub struct NoteRequest {
    /// Text, 1–4000 characters.
    pub text: String,
}

/// Adds a note to the incident's log.
#[utoipa::path(post, path = "/incidents/{id}/notes", tag = "incidents", request_body = NoteRequest,
    responses((status = 200, body = IncidentEvent), (status = 404, body = super::error::ErrorBody)))]
async fn add_note(
    State(app): State<AppState>,
    Operator(op): Operator,
    Path(id): Path<i64>,
    JsonBody(req): JsonBody<NoteRequest>,
) -> ApiResult<Json<IncidentEvent>> {
    let text = req.text.trim();
    if text.is_empty() || text.chars().count() > 4000 {
        return Err(ApiError::BadRequest(
            "a note has 1 to 4000 characters".into(),
        ));
    }
    let actor = format!("operator:{}", op.name);
    let event = app
        .store
        .add_note(id, &actor, text, now_millis())
        .await?
        .ok_or(ApiError::NotFound("incident"))?;
    app.hub.publish([event.clone()]);
    Ok(Json(event))
}

/// A command for the incident's device.
#[derive(Deserialize, Serialize, utoipa::ToSchema)]
pub struct CommandRequest {
    /// `help_coming`, `call_back`, `locate`, `ring`, `set_heartbeat`, `reset`, `set_sos_numbers` or `text`.
    pub command: String,
    /// Seconds for `set_heartbeat`.
    #[serde(default)]
    pub arg: Option<u32>,
    /// Numbers for `set_sos_numbers`.
    #[serde(default)]
    pub numbers: Vec<String>,
    /// Text for `text`.
    #[serde(default)]
    pub text: Option<String>,
}

/// The result of a command.
#[derive(Serialize, Deserialize, utoipa::ToSchema)]
pub struct CommandSent {
    /// Command id (protocols that echo it).
    pub command_id: u32,
    /// The log entry.
    pub event: IncidentEvent,
}

/// Parses an API command into a device command.
pub fn parse_command(req: &CommandRequest) -> ApiResult<DeviceCommand> {
    use onekey_protocol::CommandKind;
    Ok(match req.command.as_str() {
        "locate" => DeviceCommand::Locate,
        "reset" => DeviceCommand::Reset,
        "set_sos_numbers" if !req.numbers.is_empty() => {
            DeviceCommand::SetSosNumbers(req.numbers.clone())
        }
        "text" => DeviceCommand::Text(
            req.text
                .clone()
                .filter(|t| !t.is_empty())
                .ok_or_else(|| ApiError::BadRequest("text is required".into()))?,
        ),
        other => match CommandKind::from_name(other) {
            Some(kind) => DeviceCommand::Native {
                kind,
                arg: req.arg.unwrap_or(0),
            },
            None => return Err(ApiError::BadRequest(format!("unknown command {other:?}"))),
        },
    })
}

/// Sends a command to the device that raised the incident and records it.
#[utoipa::path(post, path = "/incidents/{id}/command", tag = "incidents", request_body = CommandRequest,
    responses((status = 200, body = CommandSent), (status = 404, body = super::error::ErrorBody), (status = 503, body = super::error::ErrorBody)))]
async fn send_command(
    State(app): State<AppState>,
    Operator(op): Operator,
    Path(id): Path<i64>,
    JsonBody(req): JsonBody<CommandRequest>,
) -> ApiResult<Json<CommandSent>> {
    let command = parse_command(&req)?;
    let incident = app
        .store
        .get_incident(id)
        .await?
        .ok_or(ApiError::NotFound("incident"))?;
    let device_id = incident
        .device_id
        .ok_or(ApiError::Conflict("the incident has no device".into()))?;
    let command_id = app
        .devices
        .send(device_id, command)
        .await
        .map_err(|e| match e {
            crate::notify::CommandError::Unsupported => ApiError::BadRequest(e.to_string()),
            _ => ApiError::Unavailable(e.to_string()),
        })?;
    let actor = format!("operator:{}", op.name);
    let detail = serde_json::json!({ "command": req.command, "command_id": command_id, "device_id": device_id });
    let event = app
        .store
        .log_incident_event(id, "command_sent", &actor, detail, now_millis())
        .await?
        .ok_or(ApiError::NotFound("incident"))?;
    app.hub.publish([event.clone()]);
    Ok(Json(CommandSent { command_id, event }))
}

/// An operator's choice of responder.
#[derive(Deserialize, Serialize, utoipa::ToSchema)]
pub struct OfferRequest {
    /// The responder to offer the task to.
    pub responder_id: i64,
}

/// An operator's escalation.
#[derive(Deserialize, Serialize, utoipa::ToSchema)]
pub struct EscalateRequest {
    /// Why (up to 4000 characters).
    #[serde(default)]
    pub note: String,
}

fn dispatch_runner(app: &AppState) -> ApiResult<&crate::dispatch::Runner> {
    app.dispatch.as_deref().ok_or(ApiError::Conflict(
        "dispatch is disabled on this server".into(),
    ))
}

async fn answer(
    app: &AppState,
    id: i64,
    outcome: Result<(), crate::dispatch::Refusal>,
) -> ApiResult<Json<Incident>> {
    use crate::dispatch::Refusal;
    match outcome {
        Ok(()) => app
            .store
            .get_incident(id)
            .await?
            .map(Json)
            .ok_or(ApiError::NotFound("incident")),
        Err(Refusal::UnknownIncident) => Err(ApiError::NotFound("incident")),
        Err(Refusal::Closed(m)) => Err(ApiError::Conflict(m)),
        Err(Refusal::Responder(m)) => Err(ApiError::BadRequest(m)),
    }
}

/// Offers the incident's task to a responder of the operator's choice now. Whoever holds the
/// primary seat is told to stand down (reassigned). Logged as `operator_offer` (and `offer_sent`,
/// `stood_down`).
#[utoipa::path(post, path = "/incidents/{id}/offer", tag = "incidents", request_body = OfferRequest,
    responses((status = 200, body = Incident),
              (status = 400, body = super::error::ErrorBody, description = "unknown or unavailable responder"),
              (status = 404, body = super::error::ErrorBody),
              (status = 409, body = super::error::ErrorBody, description = "closed or completed")))]
async fn offer(
    State(app): State<AppState>,
    Operator(op): Operator,
    Path(id): Path<i64>,
    JsonBody(req): JsonBody<OfferRequest>,
) -> ApiResult<Json<Incident>> {
    let outcome = dispatch_runner(&app)?
        .operator_offer(id, req.responder_id, &op.name, now_millis())
        .await?;
    answer(&app, id, outcome).await
}

/// Moves the incident to the next escalation step now: the elder's grid worker if not yet asked
/// (offered the task when nobody holds it), otherwise an operator decision. Logged as `escalated`
/// with the note.
#[utoipa::path(post, path = "/incidents/{id}/escalate", tag = "incidents", request_body = EscalateRequest,
    responses((status = 200, body = Incident), (status = 400, body = super::error::ErrorBody),
              (status = 404, body = super::error::ErrorBody),
              (status = 409, body = super::error::ErrorBody, description = "closed or completed")))]
async fn escalate(
    State(app): State<AppState>,
    Operator(op): Operator,
    Path(id): Path<i64>,
    JsonBody(req): JsonBody<EscalateRequest>,
) -> ApiResult<Json<Incident>> {
    let note = req.note.trim();
    if note.chars().count() > 4000 {
        return Err(ApiError::BadRequest(
            "a note has at most 4000 characters".into(),
        ));
    }
    let outcome = dispatch_runner(&app)?
        .operator_escalate(id, note, &op.name, now_millis())
        .await?;
    answer(&app, id, outcome).await
}
