//! Logs (tracing) and metrics (Prometheus text at `/metrics`).

use std::sync::OnceLock;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use tracing_subscriber::EnvFilter;

/// Installs the global tracing subscriber: `filter` in `EnvFilter` syntax, `json` for JSON lines.
pub fn init_logging(filter: &str, json: bool) {
    let filter = EnvFilter::try_new(filter).unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    // A second call (tests, `demo` after `migrate`) keeps the first subscriber.
    let _ = if json {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}

static METRICS: OnceLock<PrometheusHandle> = OnceLock::new();

/// Buckets of `onekey_dispatch_sla_seconds`, covering every SLA target with an edge at each:
/// operator ack ≤ 60 s, responder ≤ 2 min, on scene ≤ 30 min, service done ≤ 24 h. "97.5 % of
/// acks within 60 s" is `bucket{clock="ack",le="60"} / count{clock="ack"}`.
pub const SLA_BUCKETS_S: &[f64] = &[
    5.0, 10.0, 15.0, 20.0, 30.0, 45.0, 60.0, 90.0, 120.0, 180.0, 300.0, 600.0, 900.0, 1200.0,
    1800.0, 2700.0, 3600.0, 7200.0, 14400.0, 28800.0, 43200.0, 86400.0, 172800.0,
];

/// Buckets of `onekey_dispatch_first_offer_seconds`: alarm → first offer, normally well under a
/// second, up to a minute when a round of timers is involved.
pub const FIRST_OFFER_BUCKETS_S: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
];

/// The process-wide Prometheus recorder, installed on first use.
pub fn metrics() -> &'static PrometheusHandle {
    METRICS.get_or_init(|| {
        let seconds = &[
            0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
        ];
        let sizes = &[
            1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0, 1024.0,
        ];
        // A full-name matcher is consulted before the suffix one.
        let recorder = PrometheusBuilder::new()
            .set_buckets_for_metric(
                Matcher::Full("onekey_dispatch_sla_seconds".into()),
                SLA_BUCKETS_S,
            )
            .and_then(|b| {
                b.set_buckets_for_metric(
                    Matcher::Full("onekey_dispatch_first_offer_seconds".into()),
                    FIRST_OFFER_BUCKETS_S,
                )
            })
            .and_then(|b| b.set_buckets_for_metric(Matcher::Suffix("_seconds".into()), seconds))
            .and_then(|b| b.set_buckets_for_metric(Matcher::Suffix("_size".into()), sizes))
            .map(|b| b.build_recorder())
            .unwrap_or_else(|_| PrometheusBuilder::new().build_recorder());
        let handle = recorder.handle();
        let _ = metrics::set_global_recorder(recorder);
        describe();
        handle
    })
}

fn describe() {
    use metrics::{describe_counter, describe_gauge, describe_histogram};
    describe_counter!(
        "onekey_frames_total",
        "Device frames received, by protocol and result"
    );
    describe_counter!(
        "onekey_frames_rejected_total",
        "Device frames rejected, by protocol and reason"
    );
    describe_counter!(
        "onekey_acks_withheld_total",
        "Frames whose events could not be committed, so no ACK was sent, by protocol"
    );
    describe_gauge!(
        "onekey_traffic_quiet",
        "1 while a protocol's or grid's traffic has stopped (scope, name), 0 once it is back"
    );
    describe_counter!(
        "onekey_traffic_quiet_total",
        "Times a protocol's or grid's traffic stopped, by scope"
    );
    describe_counter!(
        "onekey_connections_total",
        "Device connections accepted, by protocol"
    );
    describe_counter!(
        "onekey_connections_refused_total",
        "Device connections refused at the cap"
    );
    describe_counter!(
        "onekey_connections_replaced_total",
        "Older device connections closed by a reconnect"
    );
    describe_gauge!(
        "onekey_connections_open",
        "Open device connections, by protocol"
    );
    describe_counter!(
        "onekey_intake_events_total",
        "Device events through intake, by outcome"
    );
    describe_gauge!(
        "onekey_intake_queue_depth",
        "Events waiting for the group-commit writer"
    );
    describe_histogram!("onekey_intake_batch_size", "Events per group commit");
    describe_histogram!(
        "onekey_intake_commit_seconds",
        "Duration of one group commit"
    );
    describe_histogram!(
        "onekey_intake_wait_seconds",
        "From submit to commit, per event"
    );
    describe_histogram!(
        "onekey_device_ack_seconds",
        "From frame decoded to ACK written, by protocol"
    );
    describe_counter!("onekey_store_errors_total", "Store failures, by operation");
    describe_counter!(
        "onekey_console_events_total",
        "Incident events published to consoles"
    );
    describe_counter!("onekey_http_errors_total", "API errors, by code");
    describe_counter!(
        "onekey_mqtt_messages_total",
        "MQTT uplinks received, by uplink (binary, json)"
    );
    describe_counter!(
        "onekey_mqtt_rejected_total",
        "MQTT uplinks refused, by reason"
    );
    describe_counter!(
        "onekey_mqtt_pushes_total",
        "Responder pushes, by outcome (queued, delivered, full, closed)"
    );
    describe_counter!(
        "onekey_mqtt_outbox_dropped_total",
        "MQTT messages not queued because a queue was full, by kind (ack, push)"
    );
    describe_gauge!("onekey_mqtt_outbox_depth", "Responder pushes waiting");
    describe_gauge!(
        "onekey_mqtt_connected",
        "1 while the MQTT ingress connection is up"
    );
    describe_counter!(
        "onekey_mqtt_connection_errors_total",
        "MQTT connection errors (each followed by a backed-off reconnect)"
    );
    describe_histogram!(
        "onekey_dispatch_first_offer_seconds",
        "From alarm received to the first offer sent to a responder"
    );
    describe_histogram!(
        "onekey_dispatch_sla_seconds",
        "Time to meet an SLA clock (ack, accept, on_scene, done), by clock"
    );
    describe_counter!(
        "onekey_dispatch_sla_breaches_total",
        "SLA clocks that ran out, by clock"
    );
    describe_counter!(
        "onekey_dispatch_escalations_total",
        "Escalations to operators or grid workers, by reason"
    );
    describe_counter!(
        "onekey_dispatch_state_races_total",
        "Dispatch steps retried because another instance saved first"
    );
    describe_counter!(
        "onekey_dispatch_timer_fires_total",
        "Durable timers claimed and fired by this instance, by kind (incident, welfare)"
    );
    describe_counter!(
        "onekey_responder_pushes_total",
        "Pushes published to responders' apps"
    );
    describe_gauge!(
        "onekey_outbox_pending",
        "Notifications waiting to be sent, by channel (push, sms, webhook)"
    );
    describe_counter!(
        "onekey_tls_handshake_failures_total",
        "TLS handshakes that failed or timed out, by listener and reason"
    );
    describe_counter!(
        "onekey_commit_notifications_total",
        "PostgreSQL NOTIFYs of commits (any instance's) that woke this instance's streams"
    );
    zero_series();
}

/// The series the shipped alert rules (`deploy/prometheus/`) read, at 0 from the start: an
/// alert on `increase(…)` then has a series before the first failure, and a dashboard shows 0
/// rather than "no data".
fn zero_series() {
    for clock in ["ack", "accept", "on_scene", "done"] {
        metrics::counter!("onekey_dispatch_sla_breaches_total", "clock" => clock).absolute(0);
    }
    for reason in crate::dispatch::EscalationReason::ALL {
        metrics::counter!("onekey_dispatch_escalations_total", "reason" => reason.as_str())
            .absolute(0);
    }
    for &protocol in crate::store::PROTOCOLS {
        metrics::counter!("onekey_acks_withheld_total", "protocol" => protocol).absolute(0);
    }
    for op in ["batch_commit", "commit", "status_flush"] {
        metrics::counter!("onekey_store_errors_total", "op" => op).absolute(0);
    }
    for to in ["sms", "operator"] {
        metrics::counter!("onekey_notification_fallbacks_total", "to" => to).absolute(0);
    }
    metrics::counter!("onekey_events_quarantined_total").absolute(0);
    metrics::counter!("onekey_silent_devices_total").absolute(0);
    metrics::gauge!("onekey_intake_queue_depth").set(0.0);
}
