//! `GET /api/v1/reports`: the centre's figures for a period, as the console's report charts need
//! them: answer time against the 97.5 % ≤ 60 s target (every emergency counts: one never
//! acknowledged misses the target), time to responder, time to scene, service orders done within
//! 24 h, false alarms per device model, and the same per operator and per grid.
//! `GET /api/v1/reports/incidents.csv`: every incident of the period, one row each.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::{Query, State};
use serde::{Deserialize, Serialize};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use super::error::{ApiError, ApiResult};
use super::policy::Caller;
use crate::domain::{Millis, now_millis};
use crate::store::IncidentTimes;

/// The answer-time target: 97.5 % of emergencies acknowledged within 60 s.
pub const ANSWER_TARGET_S: f64 = 60.0;
const DAY_MS: Millis = 86_400_000;

/// Routes.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(reports))
        .routes(routes!(incidents_csv))
}

/// The period: Unix milliseconds, `until` exclusive. Defaults: the last 30 days.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct Period {
    /// From (inclusive), Unix ms.
    #[param(value_type = Option<i64>, minimum = 0)]
    pub since: Option<Millis>,
    /// To (exclusive), Unix ms.
    #[param(value_type = Option<i64>, minimum = 0)]
    pub until: Option<Millis>,
}

/// One bar of a histogram: durations up to `le_s` seconds (`None`: the rest).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Bucket {
    /// Upper bound in seconds, inclusive; `null` for the overflow bar.
    pub le_s: Option<f64>,
    /// Incidents in this bar (not cumulative).
    pub count: u64,
}

/// A distribution of durations.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Distribution {
    /// Incidents measured.
    pub count: u64,
    /// Median, seconds.
    pub p50_s: Option<f64>,
    /// 90th percentile, seconds.
    pub p90_s: Option<f64>,
    /// Bars.
    pub histogram: Vec<Bucket>,
}

/// Answer time of emergencies against the target.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Answer {
    /// Emergencies measured: acknowledged, or past the target without acknowledgement.
    pub count: u64,
    /// Of those, never acknowledged (closed without it, or still waiting past the target).
    pub unacknowledged: u64,
    /// Still waiting and within the target: not measured yet.
    pub pending: u64,
    /// Acknowledged within the target.
    pub within_target: u64,
    /// `within_target / count`.
    pub share_within_target: Option<f64>,
    /// The target, seconds.
    pub target_s: f64,
    /// Median, seconds.
    pub p50_s: Option<f64>,
    /// Bars.
    pub histogram: Vec<Bucket>,
}

/// Service orders (daily care, housekeeping…).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Service {
    /// Orders received.
    pub count: u64,
    /// Closed within 24 h of arrival.
    pub within_24h: u64,
    /// `within_24h / count`.
    pub share: Option<f64>,
}

/// False alarms of one device model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ModelFalseAlarms {
    /// Device model.
    pub model: String,
    /// Incidents its devices raised.
    pub incidents: u64,
    /// Closed as false alarm, or cancelled from the device.
    pub false_alarms: u64,
    /// `false_alarms / incidents`.
    pub rate: f64,
}

/// The report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Report {
    /// Period start, Unix ms.
    pub since: Millis,
    /// Period end (exclusive), Unix ms.
    pub until: Millis,
    /// Incidents received in the period.
    pub total: u64,
    /// Of those, closed.
    pub closed: u64,
    /// Emergencies: arrival → operator acknowledgement.
    pub answer: Answer,
    /// Arrival → first responder accepted.
    pub to_responder: Distribution,
    /// Arrival → someone with the elder.
    pub to_scene: Distribution,
    /// Service orders done within 24 h.
    pub service: Service,
    /// False alarms per device model, most incidents first.
    pub false_alarms: Vec<ModelFalseAlarms>,
    /// Per operator, by name.
    pub operators: Vec<OperatorFigures>,
    /// Per grid, most incidents first.
    pub grids: Vec<GridFigures>,
}

/// What one operator did in the period.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct OperatorFigures {
    /// Operator name.
    pub operator: String,
    /// Incidents they acknowledged.
    pub acknowledged: u64,
    /// Of their acknowledged emergencies, within the target.
    pub within_target: u64,
    /// Their acknowledged emergencies.
    pub emergencies: u64,
    /// Median answer time of their emergencies, seconds.
    pub p50_answer_s: Option<f64>,
    /// Incidents they closed.
    pub closed: u64,
}

/// One grid's figures.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct GridFigures {
    /// Grid name (`null`: elders without a grid, or no elder).
    pub grid: Option<String>,
    /// Incidents.
    pub incidents: u64,
    /// Of those, emergencies.
    pub emergencies: u64,
    /// Emergencies acknowledged within the target.
    pub within_target: u64,
    /// Median time to scene, seconds.
    pub p50_to_scene_s: Option<f64>,
    /// False alarms.
    pub false_alarms: u64,
}

/// The centre's figures for a period (default: the last 30 days).
#[utoipa::path(get, path = "/reports", tag = "reports", params(Period),
    responses((status = 200, body = Report), (status = 400, body = super::error::ErrorBody)))]
async fn reports(
    State(app): State<AppState>,
    caller: Caller,
    Query(p): Query<Period>,
) -> ApiResult<Json<Report>> {
    let (since, until) = period(&p)?;
    let rows = scoped_times(&app, &caller, since, until).await?;
    Ok(Json(summarize(&rows, since, until, now_millis())))
}

/// The period's incidents that the caller's scope covers.
async fn scoped_times(
    app: &AppState,
    caller: &Caller,
    since: Millis,
    until: Millis,
) -> ApiResult<Vec<IncidentTimes>> {
    let mut rows = app.store.incident_times(since, until).await?;
    rows.retain(|r| caller.sees_grid(r.grid_id));
    Ok(rows)
}

fn period(p: &Period) -> ApiResult<(Millis, Millis)> {
    if p.since.is_some_and(|t| t < 0) || p.until.is_some_and(|t| t < 0) {
        return Err(ApiError::BadRequest(
            "`since` and `until` are Unix milliseconds, not negative".into(),
        ));
    }
    let until = p.until.unwrap_or_else(|| now_millis() + 1);
    let since = p.since.unwrap_or(until.saturating_sub(30 * DAY_MS));
    if since >= until {
        return Err(ApiError::BadRequest(
            "`since` must be before `until`".into(),
        ));
    }
    Ok((since, until))
}

/// Every incident of the period as CSV (UTF-8 with a byte-order mark, so spreadsheet programs
/// read the Chinese names): id, category, kind, elder, grid, the clocks in ISO 8601 UTC, the
/// answer time in seconds, who acknowledged and closed it, and the outcome.
#[utoipa::path(get, path = "/reports/incidents.csv", tag = "reports", params(Period),
    responses((status = 200, content_type = "text/csv", body = String), (status = 400, body = super::error::ErrorBody)))]
async fn incidents_csv(
    State(app): State<AppState>,
    caller: Caller,
    Query(p): Query<Period>,
) -> ApiResult<axum::response::Response> {
    use axum::http::header;
    use axum::response::IntoResponse;
    let (since, until) = period(&p)?;
    let rows = scoped_times(&app, &caller, since, until).await?;
    let body = to_csv(&rows).map_err(|e| ApiError::Internal(e.to_string()))?;
    let name = format!("onekey-incidents-{since}-{until}.csv");
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{name}\""),
            ),
        ],
        body,
    )
        .into_response())
}

fn iso(ms: Option<Millis>) -> String {
    ms.map(utc).unwrap_or_default()
}

/// `YYYY-MM-DDTHH:MM:SSZ` for Unix milliseconds (UTC), without a date library.
fn utc(ms: Millis) -> String {
    let secs = ms.div_euclid(1000);
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60
    )
}

/// The CSV of [`incidents_csv`]. Pure.
pub fn to_csv(rows: &[IncidentTimes]) -> Result<String, csv::Error> {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record([
        "id",
        "category",
        "kind",
        "elder",
        "grid",
        "received_at",
        "acked_at",
        "answer_s",
        "acked_by",
        "accepted_at",
        "on_scene_at",
        "closed_at",
        "closed_by",
        "outcome",
        "probable_false_alarm",
        "device_model",
    ])?;
    for r in rows {
        let answer = r
            .acked_at
            .map(|a| format!("{:.1}", (a - r.received_at).max(0) as f64 / 1000.0))
            .unwrap_or_default();
        w.write_record([
            r.id.to_string(),
            r.category.clone(),
            r.kind.clone(),
            r.elder_name.clone().unwrap_or_default(),
            r.grid_name.clone().unwrap_or_default(),
            iso(Some(r.received_at)),
            iso(r.acked_at),
            answer,
            r.acked_by.clone().unwrap_or_default(),
            iso(r.accepted_at),
            iso(r.on_scene_at),
            iso(r.closed_at),
            r.closed_by.clone().unwrap_or_default(),
            r.outcome.clone().unwrap_or_default(),
            r.probable_false_alarm.to_string(),
            r.model.clone().unwrap_or_default(),
        ])?;
    }
    let bytes = w.into_inner().map_err(|e| e.into_error())?;
    Ok(format!("\u{feff}{}", String::from_utf8_lossy(&bytes)))
}

/// Aggregates incident clocks into the report, as of `now` (an emergency still waiting for an
/// operator past the target counts as missed). Pure.
pub fn summarize(rows: &[IncidentTimes], since: Millis, until: Millis, now: Millis) -> Report {
    let secs = |from: Millis, to: Option<Millis>| to.map(|t| (t - from).max(0) as f64 / 1000.0);
    let target_ms = (ANSWER_TARGET_S * 1000.0) as Millis;
    let emergencies = rows.iter().filter(|r| r.category == "emergency");
    let answer: Vec<f64> = emergencies
        .clone()
        .filter_map(|r| secs(r.received_at, r.acked_at))
        .collect();
    let within_target = answer.iter().filter(|s| **s <= ANSWER_TARGET_S).count() as u64;
    let unacked: Vec<&IncidentTimes> = emergencies
        .clone()
        .filter(|r| r.acked_at.is_none())
        .collect();
    let missed = unacked
        .iter()
        .filter(|r| r.closed_at.is_some() || now - r.received_at > target_ms)
        .count() as u64;
    let pending = unacked.len() as u64 - missed;
    let measured = answer.len() as u64 + missed;
    let to_responder: Vec<f64> = rows
        .iter()
        .filter_map(|r| secs(r.received_at, r.accepted_at))
        .collect();
    let to_scene: Vec<f64> = rows
        .iter()
        .filter_map(|r| secs(r.received_at, r.on_scene_at))
        .collect();

    let service: Vec<&IncidentTimes> = rows.iter().filter(|r| r.category == "service").collect();
    let service_within = service
        .iter()
        .filter(|r| r.closed_at.is_some_and(|c| c - r.received_at <= DAY_MS))
        .count() as u64;

    let mut models: BTreeMap<&str, (u64, u64)> = BTreeMap::new();
    for r in rows {
        let Some(model) = r.model.as_deref() else {
            continue;
        };
        let e = models.entry(model).or_default();
        e.0 += 1;
        if is_false_alarm(r) {
            e.1 += 1;
        }
    }
    let mut false_alarms: Vec<ModelFalseAlarms> = models
        .into_iter()
        .map(|(model, (incidents, false_alarms))| ModelFalseAlarms {
            model: model.to_string(),
            incidents,
            false_alarms,
            rate: false_alarms as f64 / incidents as f64,
        })
        .collect();
    false_alarms.sort_by_key(|m| std::cmp::Reverse(m.incidents));

    Report {
        since,
        until,
        total: rows.len() as u64,
        closed: rows.iter().filter(|r| r.closed_at.is_some()).count() as u64,
        answer: Answer {
            count: measured,
            unacknowledged: missed,
            pending,
            within_target,
            share_within_target: share(within_target, measured),
            target_s: ANSWER_TARGET_S,
            p50_s: percentile(&answer, 0.5),
            histogram: histogram(&answer, &[10.0, 20.0, 30.0, 45.0, 60.0, 90.0, 120.0, 300.0]),
        },
        to_responder: distribution(&to_responder, &[30.0, 60.0, 120.0, 300.0, 600.0, 1800.0]),
        to_scene: distribution(&to_scene, &[300.0, 600.0, 900.0, 1800.0, 3600.0, 7200.0]),
        service: Service {
            count: service.len() as u64,
            within_24h: service_within,
            share: share(service_within, service.len() as u64),
        },
        false_alarms,
        operators: per_operator(rows),
        grids: per_grid(rows),
    }
}

fn is_false_alarm(r: &IncidentTimes) -> bool {
    r.probable_false_alarm || r.outcome.as_deref() == Some("false_alarm")
}

fn per_operator(rows: &[IncidentTimes]) -> Vec<OperatorFigures> {
    let mut by: BTreeMap<&str, (OperatorFigures, Vec<f64>)> = BTreeMap::new();
    let blank = |name: &str| {
        (
            OperatorFigures {
                operator: name.to_string(),
                acknowledged: 0,
                within_target: 0,
                emergencies: 0,
                p50_answer_s: None,
                closed: 0,
            },
            Vec::new(),
        )
    };
    for r in rows {
        if let (Some(op), Some(at)) = (r.acked_by.as_deref(), r.acked_at) {
            let e = by.entry(op).or_insert_with(|| blank(op));
            e.0.acknowledged += 1;
            if r.category == "emergency" {
                let s = (at - r.received_at).max(0) as f64 / 1000.0;
                e.0.emergencies += 1;
                e.0.within_target += u64::from(s <= ANSWER_TARGET_S);
                e.1.push(s);
            }
        }
        if let Some(op) = r.closed_by.as_deref() {
            by.entry(op).or_insert_with(|| blank(op)).0.closed += 1;
        }
    }
    by.into_values()
        .map(|(mut f, answers)| {
            f.p50_answer_s = percentile(&answers, 0.5);
            f
        })
        .collect()
}

fn per_grid(rows: &[IncidentTimes]) -> Vec<GridFigures> {
    let mut by: BTreeMap<Option<&str>, (GridFigures, Vec<f64>)> = BTreeMap::new();
    for r in rows {
        let grid = r.grid_name.as_deref();
        let e = by.entry(grid).or_insert_with(|| {
            (
                GridFigures {
                    grid: grid.map(str::to_string),
                    incidents: 0,
                    emergencies: 0,
                    within_target: 0,
                    p50_to_scene_s: None,
                    false_alarms: 0,
                },
                Vec::new(),
            )
        });
        e.0.incidents += 1;
        e.0.false_alarms += u64::from(is_false_alarm(r));
        if r.category == "emergency" {
            e.0.emergencies += 1;
            e.0.within_target += u64::from(
                r.acked_at
                    .is_some_and(|a| (a - r.received_at) as f64 <= ANSWER_TARGET_S * 1000.0),
            );
        }
        if let Some(t) = r.on_scene_at {
            e.1.push((t - r.received_at).max(0) as f64 / 1000.0);
        }
    }
    let mut out: Vec<GridFigures> = by
        .into_values()
        .map(|(mut g, scene)| {
            g.p50_to_scene_s = percentile(&scene, 0.5);
            g
        })
        .collect();
    out.sort_by_key(|g| std::cmp::Reverse(g.incidents));
    out
}

fn share(part: u64, whole: u64) -> Option<f64> {
    (whole > 0).then(|| part as f64 / whole as f64)
}

fn distribution(values: &[f64], edges: &[f64]) -> Distribution {
    Distribution {
        count: values.len() as u64,
        p50_s: percentile(values, 0.5),
        p90_s: percentile(values, 0.9),
        histogram: histogram(values, edges),
    }
}

/// Nearest-rank percentile.
fn percentile(values: &[f64], q: f64) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    Some(sorted[rank - 1])
}

fn histogram(values: &[f64], edges: &[f64]) -> Vec<Bucket> {
    let mut bars: Vec<Bucket> = edges
        .iter()
        .map(|e| Bucket {
            le_s: Some(*e),
            count: 0,
        })
        .chain(std::iter::once(Bucket {
            le_s: None,
            count: 0,
        }))
        .collect();
    for v in values {
        let i = edges.iter().position(|e| v <= e).unwrap_or(edges.len());
        bars[i].count += 1;
    }
    bars
}

#[cfg(test)]
mod tests {
    use super::*;

    fn incident(category: &str, ack_s: Option<i64>) -> IncidentTimes {
        IncidentTimes {
            category: category.into(),
            received_at: 1_000_000,
            acked_at: ack_s.map(|s| 1_000_000 + s * 1000),
            acked_by: ack_s.map(|_| "夜班".to_string()),
            ..Default::default()
        }
    }

    #[test]
    fn answer_time_is_measured_against_sixty_seconds_for_emergencies_only() {
        let mut rows: Vec<IncidentTimes> = (0..39)
            .map(|i| incident("emergency", Some(i + 1)))
            .collect();
        rows.push(incident("emergency", Some(61)));
        rows.push(incident("emergency", None));
        rows.push(incident("technical", Some(500)));
        // 1 000 s after the alarms: the one nobody acknowledged has missed the target.
        let r = summarize(&rows, 0, 2_000_000, 2_000_000);
        assert_eq!(r.total, 42);
        assert_eq!(r.answer.count, 41);
        assert_eq!(r.answer.unacknowledged, 1);
        assert_eq!(r.answer.within_target, 39);
        assert_eq!(r.answer.share_within_target, Some(39.0 / 41.0));
        assert_eq!(r.operators[0].operator, "夜班");
        assert_eq!(r.operators[0].emergencies, 40);
        assert_eq!(r.operators[0].acknowledged, 41);
        assert_eq!(r.grids[0].incidents, 42);
        // 30 s after the alarms the unacknowledged one is still within its minute: not yet counted.
        let early = summarize(&rows, 0, 2_000_000, 1_030_000);
        assert_eq!((early.answer.count, early.answer.pending), (40, 1));
        // 1..=10 s, 11..=20, 21..=30, 31..=39 (in 45), none in 60, 61 in 90.
        let counts: Vec<u64> = r.answer.histogram.iter().map(|b| b.count).collect();
        assert_eq!(counts, vec![10, 10, 10, 9, 0, 1, 0, 0, 0]);
        assert_eq!(r.answer.histogram.last().map(|b| b.le_s), Some(None));
        assert_eq!(r.answer.p50_s, Some(20.0));
    }

    #[test]
    fn service_within_a_day_and_false_alarms_per_model() {
        let mut done = incident("service", None);
        done.closed_at = Some(done.received_at + DAY_MS);
        let mut late = incident("service", None);
        late.closed_at = Some(late.received_at + DAY_MS + 1);
        let open = incident("service", None);
        let mut cancelled = incident("emergency", None);
        cancelled.model = Some("P1".into());
        cancelled.probable_false_alarm = true;
        let mut closed_false = incident("emergency", None);
        closed_false.model = Some("P1".into());
        closed_false.outcome = Some("false_alarm".into());
        let mut real = incident("emergency", None);
        real.model = Some("P1".into());
        real.outcome = Some("resolved".into());
        let mut watch = incident("emergency", None);
        watch.model = Some("W2".into());
        let r = summarize(
            &[done, late, open, cancelled, closed_false, real, watch],
            0,
            1,
            1,
        );
        assert_eq!((r.service.count, r.service.within_24h), (3, 1));
        assert_eq!(r.false_alarms[0].model, "P1");
        assert_eq!(
            (r.false_alarms[0].incidents, r.false_alarms[0].false_alarms),
            (3, 2)
        );
        assert_eq!(r.false_alarms[1].rate, 0.0);
        assert_eq!(r.closed, 2);
    }

    #[test]
    fn the_csv_has_a_row_per_incident_with_utc_times() {
        let mut i = incident("emergency", Some(12));
        i.id = 7;
        i.kind = "fall".into();
        i.elder_name = Some("王秀英".into());
        i.received_at = 1_700_000_000_000;
        i.acked_at = Some(1_700_000_012_000);
        let csv = to_csv(&[i]).expect("csv");
        let lines: Vec<&str> = csv.lines().collect();
        assert_eq!(lines.len(), 2);
        assert!(lines[0].starts_with("\u{feff}id,category,kind"));
        assert!(
            lines[1].starts_with(
                "7,emergency,fall,王秀英,,2023-11-14T22:13:20Z,2023-11-14T22:13:32Z,12.0,夜班"
            ),
            "{}",
            lines[1]
        );
    }

    #[test]
    fn empty_period_has_no_shares() {
        let r = summarize(&[], 0, 1, 1);
        assert_eq!(r.answer.share_within_target, None);
        assert_eq!(r.to_scene.p90_s, None);
        assert_eq!(r.to_scene.histogram.len(), 7);
    }
}
