//! `/healthz` and `/metrics`.

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use serde::Serialize;

use super::AppState;
use crate::mqtt::BrokerState;

#[derive(Serialize)]
struct Dependency {
    state: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

#[derive(Serialize)]
struct Health {
    status: &'static str,
    store: Dependency,
    /// The store's durability settings in force and the unsafe ones (absent when unreadable).
    #[serde(skip_serializing_if = "Option::is_none")]
    durability: Option<crate::store::Durability>,
    broker: Dependency,
    devices_connected: usize,
    consoles_connected: usize,
    /// Protocols and grids whose traffic stopped (`status` is then `degraded`, still 200).
    traffic_quiet: Vec<crate::supervision::traffic::Quiet>,
}

/// 200 when every dependency is up, 503 otherwise; the body names each one.
pub async fn healthz(State(app): State<AppState>) -> impl IntoResponse {
    let store =
        match tokio::time::timeout(std::time::Duration::from_secs(2), app.store.ping()).await {
            Ok(Ok(())) => Dependency {
                state: "up",
                error: None,
            },
            Ok(Err(e)) => {
                // The details go to the log only: /healthz is public.
                tracing::warn!(error = %e, "health check: store down");
                Dependency {
                    state: "down",
                    error: Some("unavailable".into()),
                }
            }
            Err(_) => Dependency {
                state: "down",
                error: Some("timed out".into()),
            },
        };
    let durability =
        match tokio::time::timeout(std::time::Duration::from_secs(2), app.store.durability()).await
        {
            Ok(Ok(d)) => Some(d),
            _ => None,
        };
    let broker_state = app.broker.get();
    let broker = Dependency {
        state: match broker_state {
            BrokerState::Disabled => "disabled",
            BrokerState::Down => "down",
            BrokerState::Up => "up",
        },
        error: None,
    };
    let healthy = store.state == "up" && broker_state != BrokerState::Down;
    let traffic_quiet = app.traffic.quiet();
    let body = Health {
        status: if healthy && traffic_quiet.is_empty() {
            "ok"
        } else {
            "degraded"
        },
        traffic_quiet,
        store,
        durability,
        broker,
        devices_connected: app.devices.len(),
        consoles_connected: app.hub.subscribers(),
    };
    let code = if healthy {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (code, Json(body))
}

/// Prometheus text exposition.
pub async fn metrics() -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        crate::telemetry::metrics().render(),
    )
}
