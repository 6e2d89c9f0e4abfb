//! `GET /api/v1/console/config`: what the console and the app need to know about this
//! deployment: the centre's phone number, the map's tile server, the procedures per alarm kind
//! and the SLA targets per category (from the dispatch policy, so the clocks on screen are the
//! ones dispatch runs).

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::State;
use serde::{Deserialize, Serialize};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use super::auth::{Authenticated, Operator};
use super::error::ApiResult;
use crate::config::{Config, ConsoleSettings, MapSettings};
use crate::procedures::Procedure;

/// The console's view of the configuration, built once at start.
#[derive(Debug, Clone)]
pub struct ConsoleContext {
    /// `[console]`.
    pub settings: ConsoleSettings,
    /// SLA targets per category.
    pub sla: BTreeMap<String, Sla>,
    /// Local time's offset from UTC, for responders' shifts.
    pub utc_offset_min: i64,
}

impl ConsoleContext {
    /// From the server's configuration.
    pub fn new(config: &Config) -> ConsoleContext {
        let p = &config.dispatch.policy;
        let sla = [
            ("emergency", &p.emergency),
            ("service", &p.service),
            ("technical", &p.technical),
            ("welfare", &p.welfare),
        ]
        .into_iter()
        .map(|(name, c)| {
            (
                name.to_string(),
                Sla {
                    ack_s: c.sla.ack_s,
                    accept_s: c.sla.accept_s,
                    on_scene_s: c.sla.on_scene_s,
                    done_s: c.sla.done_s,
                },
            )
        })
        .collect();
        ConsoleContext {
            settings: config.console.clone(),
            sla,
            utc_offset_min: config.dispatch.utc_offset_min,
        }
    }
}

/// SLA targets of one category, seconds from the alarm (`null`: no such clock).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Sla {
    /// To an operator's acknowledgement.
    pub ack_s: Option<u64>,
    /// To a responder's acceptance.
    pub accept_s: Option<u64>,
    /// To someone with the elder.
    pub on_scene_s: Option<u64>,
    /// To the task done.
    pub done_s: Option<u64>,
}

/// The deployment as the console sees it.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ConsoleConfig {
    /// The centre's phone number.
    pub centre_phone: String,
    /// The map's base layer.
    pub map: MapSettings,
    /// Procedures by name.
    pub procedures: BTreeMap<String, Procedure>,
    /// SLA targets by category.
    pub sla: BTreeMap<String, Sla>,
}

/// Routes.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(config))
        .routes(routes!(colleagues))
}

/// The centre's number, the map, the procedures and the SLA targets (any signed-in user: the app
/// needs the centre's number).
#[utoipa::path(get, path = "/console/config", tag = "console", responses((status = 200, body = ConsoleConfig)))]
async fn config(State(app): State<AppState>, _: Authenticated) -> Json<ConsoleConfig> {
    let c = &app.console;
    Json(ConsoleConfig {
        centre_phone: c.settings.centre_phone.clone(),
        map: c.settings.map.clone(),
        procedures: c.settings.procedures.clone(),
        sla: c.sla.clone(),
    })
}

/// The names of active operator accounts, for handing an incident over to a colleague.
#[utoipa::path(get, path = "/console/operators", tag = "console", responses((status = 200, body = Vec<String>)))]
async fn colleagues(State(app): State<AppState>, _: Operator) -> ApiResult<Json<Vec<String>>> {
    Ok(Json(
        app.store
            .list_operators()
            .await?
            .into_iter()
            .filter(|o| !o.disabled)
            .map(|o| o.name)
            .collect(),
    ))
}
