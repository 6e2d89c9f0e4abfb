//! The console's working views: `GET /queue` (open incidents with names, address, handler and
//! where each stands), `GET /incidents/{id}/candidates` (whom an operator may offer the task to,
//! nearest first, with availability, skills, phone and load) and `GET /map/points` (elders at their
//! registered homes and responders on duty, for the city map).

use axum::Json;
use axum::extract::{Path, Query, State};
use serde::{Deserialize, Serialize};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use super::auth::Operator;
use super::error::{ApiError, ApiResult, ErrorBody};
use crate::dispatch::available_at;
use crate::domain::{GeoPoint, now_millis};
use crate::store::{MapPoint, QueueRow};

/// Routes.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(queue))
        .routes(routes!(candidates))
        .routes(routes!(map_points))
}

/// Which incidents the queue lists.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct QueueQuery {
    /// Also those closed in the last this many hours (default 0: open ones only).
    pub closed_hours: Option<i64>,
}

/// Open incidents, most urgent and oldest first, as the queue shows them.
#[utoipa::path(get, path = "/queue", tag = "incidents", params(QueueQuery),
    responses((status = 200, body = Vec<QueueRow>)))]
async fn queue(
    State(app): State<AppState>,
    _: Operator,
    Query(q): Query<QueueQuery>,
) -> ApiResult<Json<Vec<QueueRow>>> {
    let since = q
        .closed_hours
        .filter(|h| *h > 0)
        .map(|h| now_millis() - h.min(24 * 31) * 3_600_000);
    Ok(Json(app.store.queue(since).await?))
}

/// Someone an operator could offer the task to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Candidate {
    /// Responder id.
    pub id: i64,
    /// Name.
    pub name: String,
    /// Phone.
    pub phone: String,
    /// `volunteer`, `grid_worker`…
    pub kind: String,
    /// Skills.
    pub skills: Vec<String>,
    /// Team.
    pub team: Option<String>,
    /// On duty, or inside one of their shifts now.
    pub available: bool,
    /// On duty now (the app's switch).
    pub on_duty: bool,
    /// Metres from the incident (live position when on duty, else home).
    pub distance_m: Option<f64>,
    /// Tasks in hand.
    pub load: u32,
    /// Most tasks at once.
    pub max_tasks: i64,
    /// This incident's offer to them, if any (`pending`, `accepted`, `declined`…).
    pub offer: Option<String>,
    /// Of the elder's grid.
    pub same_grid: bool,
}

/// Paging of the candidates.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct CandidateQuery {
    /// Name, phone, skill or team contains this.
    pub q: Option<String>,
    /// Also those not available now (default false).
    pub all: Option<bool>,
    /// At most this many (default 30, at most 200).
    pub limit: Option<usize>,
}

fn metres(a: GeoPoint, lat: f64, lon: f64) -> f64 {
    let r = 6_371_000.0_f64;
    let (p1, p2) = (a.lat.to_radians(), lat.to_radians());
    let dp = (lat - a.lat).to_radians();
    let dl = (lon - a.lon).to_radians();
    let h = (dp / 2.0).sin().powi(2) + p1.cos() * p2.cos() * (dl / 2.0).sin().powi(2);
    2.0 * r * h.sqrt().asin()
}

/// Responders for the operator's choice: available ones first, then by distance to the incident
/// (its reported location, else the elder's registered home).
#[utoipa::path(get, path = "/incidents/{id}/candidates", tag = "incidents", params(CandidateQuery),
    responses((status = 200, body = Vec<Candidate>), (status = 404, body = ErrorBody)))]
async fn candidates(
    State(app): State<AppState>,
    _: Operator,
    Path(id): Path<i64>,
    Query(q): Query<CandidateQuery>,
) -> ApiResult<Json<Vec<Candidate>>> {
    let incident = app
        .store
        .get_incident(id)
        .await?
        .ok_or(ApiError::NotFound("incident"))?;
    let elder = match incident.elder_id {
        Some(e) => app.store.get_elder(e).await?,
        None => None,
    };
    let at = incident.location.or(elder.as_ref().map(|e| GeoPoint {
        lat: e.lat,
        lon: e.lon,
        accuracy_m: None,
    }));
    let offers = app.store.incident_offers(id).await?;
    let loads = app.store.responder_loads().await?;
    let local = now_millis().saturating_add(app.console.utc_offset_min.saturating_mul(60_000));
    let needle = q.q.as_deref().unwrap_or("").trim().to_lowercase();
    let all = q.all.unwrap_or(false) || !needle.is_empty();
    let mut out: Vec<Candidate> = app
        .store
        .active_responders()
        .await?
        .into_iter()
        .filter(|r| {
            needle.is_empty()
                || r.name.to_lowercase().contains(&needle)
                || r.phone.contains(&needle)
                || r.team
                    .as_deref()
                    .is_some_and(|t| t.to_lowercase().contains(&needle))
                || r.skills.iter().any(|s| s.to_lowercase().contains(&needle))
        })
        .map(|r| {
            let available = available_at(r.on_duty, &r.shifts, local);
            let (lat, lon) = if r.on_duty {
                (r.lat.unwrap_or(r.home_lat), r.lon.unwrap_or(r.home_lon))
            } else {
                (r.home_lat, r.home_lon)
            };
            Candidate {
                distance_m: at.map(|a| metres(a, lat, lon)),
                offer: offers
                    .iter()
                    .find(|o| o.responder_id == r.id)
                    .map(|o| o.status.clone()),
                load: loads.get(&r.id).copied().unwrap_or(0),
                same_grid: r.grid_id.is_some()
                    && r.grid_id == elder.as_ref().and_then(|e| e.grid_id),
                id: r.id,
                name: r.name,
                phone: r.phone,
                kind: r.kind.as_str().to_string(),
                skills: r.skills,
                team: r.team,
                available,
                on_duty: r.on_duty,
                max_tasks: r.max_tasks,
            }
        })
        .filter(|c| all || c.available)
        .collect();
    out.sort_by(|a, b| {
        b.available.cmp(&a.available).then(
            a.distance_m
                .unwrap_or(f64::MAX)
                .total_cmp(&b.distance_m.unwrap_or(f64::MAX)),
        )
    });
    out.truncate(q.limit.unwrap_or(30).clamp(1, 200));
    Ok(Json(out))
}

/// The city map's points.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct MapPoints {
    /// Every active elder at their registered home.
    pub elders: Vec<MapPoint>,
    /// Responders on duty, at their live position (home when unknown).
    pub responders: Vec<MapPoint>,
}

/// Elders at their registered homes and responders on duty.
#[utoipa::path(get, path = "/map/points", tag = "console", responses((status = 200, body = MapPoints)))]
async fn map_points(State(app): State<AppState>, _: Operator) -> ApiResult<Json<MapPoints>> {
    let elders = app.store.elder_points().await?;
    let responders = app
        .store
        .active_responders()
        .await?
        .into_iter()
        .filter(|r| r.on_duty)
        .map(|r| MapPoint {
            id: r.id,
            lat: r.lat.unwrap_or(r.home_lat),
            lon: r.lon.unwrap_or(r.home_lon),
            name: r.name,
            grid_id: r.grid_id,
        })
        .collect();
    Ok(Json(MapPoints { elders, responders }))
}
