//! `GET /api/v1/reports`: the centre's figures for a period, as the console's report charts need
//! them: answer time against the 97.5 % ≤ 60 s target, time to responder, time to scene, service
//! orders done within 24 h and false alarms per device model.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::{Query, State};
use serde::{Deserialize, Serialize};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use super::auth::Operator;
use super::error::{ApiError, ApiResult};
use crate::domain::{Millis, now_millis};
use crate::store::IncidentTimes;

/// The answer-time target: 97.5 % of emergencies acknowledged within 60 s.
pub const ANSWER_TARGET_S: f64 = 60.0;
const DAY_MS: Millis = 86_400_000;

/// Routes.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(reports))
}

/// The period: Unix milliseconds, `until` exclusive. Defaults: the last 30 days.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct Period {
    /// From (inclusive).
    pub since: Option<Millis>,
    /// To (exclusive).
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
    /// Emergencies acknowledged.
    pub count: u64,
    /// Of those, acknowledged within the target.
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
}

/// The centre's figures for a period (default: the last 30 days).
#[utoipa::path(get, path = "/reports", tag = "reports", params(Period),
    responses((status = 200, body = Report), (status = 400, body = super::error::ErrorBody)))]
async fn reports(
    State(app): State<AppState>,
    _: Operator,
    Query(p): Query<Period>,
) -> ApiResult<Json<Report>> {
    let until = p.until.unwrap_or_else(|| now_millis() + 1);
    let since = p.since.unwrap_or(until - 30 * DAY_MS);
    if since >= until {
        return Err(ApiError::BadRequest(
            "`since` must be before `until`".into(),
        ));
    }
    let rows = app.store.incident_times(since, until).await?;
    Ok(Json(summarize(&rows, since, until)))
}

/// Aggregates incident clocks into the report. Pure.
pub fn summarize(rows: &[IncidentTimes], since: Millis, until: Millis) -> Report {
    let secs = |from: Millis, to: Option<Millis>| to.map(|t| (t - from).max(0) as f64 / 1000.0);
    let emergencies = rows.iter().filter(|r| r.category == "emergency");
    let answer: Vec<f64> = emergencies
        .clone()
        .filter_map(|r| secs(r.received_at, r.acked_at))
        .collect();
    let within_target = answer.iter().filter(|s| **s <= ANSWER_TARGET_S).count() as u64;
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
        if r.probable_false_alarm || r.outcome.as_deref() == Some("false_alarm") {
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
            count: answer.len() as u64,
            within_target,
            share_within_target: share(within_target, answer.len() as u64),
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
    }
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
            accepted_at: None,
            on_scene_at: None,
            closed_at: None,
            outcome: None,
            probable_false_alarm: false,
            model: None,
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
        let r = summarize(&rows, 0, 2_000_000);
        assert_eq!(r.total, 42);
        assert_eq!(r.answer.count, 40);
        assert_eq!(r.answer.within_target, 39);
        assert_eq!(r.answer.share_within_target, Some(39.0 / 40.0));
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
    fn empty_period_has_no_shares() {
        let r = summarize(&[], 0, 1);
        assert_eq!(r.answer.share_within_target, None);
        assert_eq!(r.to_scene.p90_s, None);
        assert_eq!(r.to_scene.histogram.len(), 7);
    }
}
