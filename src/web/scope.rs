//! What a scoped operator may see: records in the grids of their area (see [`super::policy`]).
//! Out-of-scope records answer 404, as if they did not exist.

use super::AppState;
use super::error::{ApiError, ApiResult};
use super::policy::Caller;
use crate::domain::{Elder, Incident};

/// The grid of an elder, when known.
pub async fn elder_grid(app: &AppState, elder_id: Option<i64>) -> ApiResult<Option<i64>> {
    match elder_id {
        Some(id) => Ok(app.store.get_elder(id).await?.and_then(|e| e.grid_id)),
        None => Ok(None),
    }
}

/// Whether the caller sees records of this elder.
pub async fn sees_elder(app: &AppState, caller: &Caller, elder_id: Option<i64>) -> ApiResult<bool> {
    if caller.scope.is_none() {
        return Ok(true);
    }
    Ok(caller.sees_grid(elder_grid(app, elder_id).await?))
}

/// The incident, when it exists and is in the caller's scope.
pub async fn incident(app: &AppState, caller: &Caller, id: i64) -> ApiResult<Incident> {
    let incident = app
        .store
        .get_incident(id)
        .await?
        .ok_or(ApiError::NotFound("incident"))?;
    if !sees_elder(app, caller, incident.elder_id).await? {
        return Err(ApiError::NotFound("incident"));
    }
    Ok(incident)
}

/// Hides what a role does not need: lists never carry key-safe codes; viewers see no key-safe
/// code, health notes or medications at all.
pub fn redact(mut elder: Elder, caller: &Caller, in_list: bool) -> Elder {
    let viewer = caller.role() == Some(super::policy::Role::Viewer);
    if in_list || viewer {
        elder.key_safe_code = None;
    }
    if viewer {
        elder.health_notes = String::new();
        elder.medications = String::new();
    }
    elder
}
