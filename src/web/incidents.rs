//! Incidents: the operators' queue and the actions on one incident.

use axum::Json;
use axum::extract::{Path, Query, State};
use serde::{Deserialize, Serialize};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use super::auth::Operator;
use super::error::{ApiError, ApiResult, JsonBody};
use super::policy::Caller;
use super::scope;
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
        .routes(routes!(attend))
        .routes(routes!(confirm_false_alarm))
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
    /// Everyone it was offered to, with live positions and where each offer's message stands.
    pub offers: Vec<crate::store::IncidentOffer>,
    /// Every message sent about it (pushes, SMS to responders and family, webhooks), oldest first.
    pub notifications: Vec<crate::store::Notification>,
    /// Where it stands (see [`Incident::stage`]).
    pub stage: String,
    /// Display names of the log's actors (`responder:7` → the responder's name).
    pub actors: std::collections::BTreeMap<String, String>,
    /// The procedure for its kind, when one is configured.
    pub procedure: Option<NamedProcedure>,
}

/// A procedure and its name.
#[derive(Serialize, Deserialize, utoipa::ToSchema)]
pub struct NamedProcedure {
    /// Its name in `[console.procedures]`.
    pub name: String,
    /// Its steps.
    pub steps: Vec<crate::procedures::Step>,
}

/// Lists incidents: open ones most urgent and oldest first.
#[utoipa::path(get, path = "/incidents", tag = "incidents", params(IncidentFilter),
    responses((status = 200, body = Vec<Incident>)))]
async fn list(
    State(app): State<AppState>,
    caller: Caller,
    Query(f): Query<IncidentFilter>,
) -> ApiResult<Json<Vec<Incident>>> {
    let list = app.store.list_incidents(&f).await?;
    if caller.scope.is_none() {
        return Ok(Json(list));
    }
    let mut out = Vec::new();
    for i in list {
        if scope::sees_elder(&app, &caller, i.elder_id).await? {
            out.push(i);
        }
    }
    Ok(Json(out))
}

/// One incident with its log, elder and device (the elder's record read is audited).
#[utoipa::path(get, path = "/incidents/{id}", tag = "incidents",
    responses((status = 200, body = IncidentDetail), (status = 404, body = super::error::ErrorBody)))]
async fn get(
    State(app): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
) -> ApiResult<Json<IncidentDetail>> {
    let incident = scope::incident(&app, &caller, id).await?;
    let events = app.store.incident_events(id).await?;
    let elder = match incident.elder_id {
        Some(e) => app.store.get_elder(e).await?,
        None => None,
    };
    if let Some(e) = &elder {
        app.audit(
            &caller,
            "elder_read",
            &format!("elder:{}", e.id),
            serde_json::json!({"incident_id": id}),
        )
        .await;
    }
    let elder = elder.map(|e| scope::redact(e, &caller, false));
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
    let mut offers = app.store.incident_offers(id).await?;
    let notifications = app.store.incident_notifications(id).await?;
    for offer in &mut offers {
        // The newest message that carried this offer (the push, or the SMS that replaced it).
        let carrier = notifications.iter().rev().find(|n| {
            n.responder_id == Some(offer.responder_id)
                && matches!(n.purpose.as_str(), "offer" | "offer_sms")
                && n.created_at >= offer.sent_at
        });
        if let Some(n) = carrier {
            offer.delivery = Some(n.status);
            offer.delivery_channel = Some(n.channel);
        }
    }
    let stage = incident
        .stage(offers.iter().any(|o| o.status == "completed"))
        .to_string();
    // Actors, and the responders the dispatch entries name in their detail.
    let mentioned: Vec<String> = events
        .iter()
        .filter_map(|e| e.detail.get("responder_id").and_then(|r| r.as_i64()))
        .map(|r| format!("responder:{r}"))
        .collect();
    let actor_ids: Vec<&str> = events
        .iter()
        .map(|e| e.actor.as_str())
        .chain(mentioned.iter().map(String::as_str))
        .collect();
    let actors = app.store.actor_names(&actor_ids).await?;
    let procedure = crate::procedures::resolve(
        &app.console.settings.procedures,
        &incident.kind,
        incident.category.as_str(),
    )
    .map(|(name, p)| NamedProcedure {
        name: name.to_string(),
        steps: p.steps.clone(),
    });
    Ok(Json(IncidentDetail {
        incident,
        events,
        elder,
        device,
        previous,
        offers,
        notifications,
        stage,
        actors,
        procedure,
    }))
}

/// An operator takes the incident. Acknowledging twice is harmless.
#[utoipa::path(post, path = "/incidents/{id}/ack", tag = "incidents",
    responses((status = 200, body = Incident), (status = 404, body = super::error::ErrorBody), (status = 409, body = super::error::ErrorBody)))]
async fn acknowledge(
    State(app): State<AppState>,
    Operator(op): Operator,
    caller: Caller,
    Path(id): Path<i64>,
) -> ApiResult<Json<Incident>> {
    scope::incident(&app, &caller, id).await?;
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
    caller: Caller,
    Path(id): Path<i64>,
    JsonBody(req): JsonBody<CloseRequest>,
) -> ApiResult<Json<Incident>> {
    scope::incident(&app, &caller, id).await?;
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
    #[schema(min_length = 1, max_length = 4000)]
    pub text: String,
}

/// Adds a note to the incident's log.
#[utoipa::path(post, path = "/incidents/{id}/notes", tag = "incidents", request_body = NoteRequest,
    responses((status = 200, body = IncidentEvent), (status = 404, body = super::error::ErrorBody)))]
async fn add_note(
    State(app): State<AppState>,
    Operator(op): Operator,
    caller: Caller,
    Path(id): Path<i64>,
    JsonBody(req): JsonBody<NoteRequest>,
) -> ApiResult<Json<IncidentEvent>> {
    scope::incident(&app, &caller, id).await?;
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

/// What the audit log and the incident log keep of a command (its text, never more).
pub fn command_detail(req: &CommandRequest, command_id: u32) -> serde_json::Value {
    serde_json::json!({ "command": req.command, "command_id": command_id, "arg": req.arg,
        "numbers": req.numbers, "text": req.text })
}

/// Parses an API command into a device command, if the caller's role may send it (free text, SOS
/// numbers, reset and the heartbeat period are for admins: they can point a device at another
/// server or silence it).
pub fn parse_command(req: &CommandRequest, caller: &Caller) -> ApiResult<DeviceCommand> {
    use onekey_protocol::CommandKind;
    if !super::policy::may_send_command(caller.role(), &req.command) {
        tracing::warn!(who = %caller.principal.name, command = %req.command, "command refused: admins only");
        return Err(ApiError::Forbidden("only admins may send this command"));
    }
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

/// Sends a command to the device that raised the incident and records it (`text`,
/// `set_sos_numbers`, `reset` and `set_heartbeat` are for admins only).
#[utoipa::path(post, path = "/incidents/{id}/command", tag = "incidents", request_body = CommandRequest,
    responses((status = 200, body = CommandSent), (status = 400, body = super::error::ErrorBody),
              (status = 403, body = super::error::ErrorBody, description = "a command only admins may send"),
              (status = 404, body = super::error::ErrorBody), (status = 409, body = super::error::ErrorBody),
              (status = 503, body = super::error::ErrorBody)))]
async fn send_command(
    State(app): State<AppState>,
    Operator(op): Operator,
    caller: Caller,
    Path(id): Path<i64>,
    JsonBody(req): JsonBody<CommandRequest>,
) -> ApiResult<Json<CommandSent>> {
    let command = parse_command(&req, &caller)?;
    let incident = scope::incident(&app, &caller, id).await?;
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
    app.audit(
        &caller,
        "device_command",
        &format!("device:{device_id}"),
        command_detail(&req, command_id),
    )
    .await;
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
    #[schema(max_length = 4000)]
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
    caller: Caller,
    Path(id): Path<i64>,
    JsonBody(req): JsonBody<OfferRequest>,
) -> ApiResult<Json<Incident>> {
    scope::incident(&app, &caller, id).await?;
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
    caller: Caller,
    Path(id): Path<i64>,
    JsonBody(req): JsonBody<EscalateRequest>,
) -> ApiResult<Json<Incident>> {
    scope::incident(&app, &caller, id).await?;
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

/// An operator acknowledges why they were called back (an escalation, a failed delivery,
/// unreachable family): the console's alarm for it stops. Logged as `attention_acknowledged`.
#[utoipa::path(post, path = "/incidents/{id}/attention", tag = "incidents",
    responses((status = 200, body = Incident), (status = 404, body = super::error::ErrorBody),
              (status = 409, body = super::error::ErrorBody, description = "nothing needs attention")))]
async fn attend(
    State(app): State<AppState>,
    Operator(op): Operator,
    caller: Caller,
    Path(id): Path<i64>,
) -> ApiResult<Json<Incident>> {
    let incident = scope::incident(&app, &caller, id).await?;
    if incident.attention.is_none() {
        return Err(ApiError::Conflict("nothing needs attention".into()));
    }
    if let Some(event) = app
        .store
        .acknowledge_attention(id, &op.name, now_millis())
        .await?
    {
        app.hub.publish([event]);
    }
    app.store
        .get_incident(id)
        .await?
        .map(Json)
        .ok_or(ApiError::NotFound("incident"))
}

/// An operator confirms that the elder's cancel was a false alarm: responders still on the way are
/// stood down and the clocks stop (the incident stays open until closed). Logged as
/// `false_alarm_confirmed`.
#[utoipa::path(post, path = "/incidents/{id}/false-alarm", tag = "incidents",
    responses((status = 200, body = Incident), (status = 404, body = super::error::ErrorBody),
              (status = 409, body = super::error::ErrorBody, description = "closed or completed")))]
async fn confirm_false_alarm(
    State(app): State<AppState>,
    Operator(op): Operator,
    caller: Caller,
    Path(id): Path<i64>,
) -> ApiResult<Json<Incident>> {
    scope::incident(&app, &caller, id).await?;
    let outcome = dispatch_runner(&app)?
        .confirm_false_alarm(id, &op.name, now_millis())
        .await?;
    answer(&app, id, outcome).await
}
