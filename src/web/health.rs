//! `/healthz` and `/metrics`.

use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use serde::Serialize;

use super::AppState;

/// The broker connection's state, shared with the MQTT client.
#[derive(Clone, Default)]
pub struct BrokerHealth(Arc<AtomicU8>);

/// What the broker connection is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BrokerState {
    /// MQTT is not configured in this process.
    Disabled,
    /// Connecting or reconnecting.
    Down,
    /// Connected and subscribed.
    Up,
}

impl BrokerHealth {
    /// Sets the state.
    pub fn set(&self, state: BrokerState) {
        self.0.store(state as u8, Ordering::Relaxed);
    }

    /// Reads the state.
    pub fn get(&self) -> BrokerState {
        match self.0.load(Ordering::Relaxed) {
            1 => BrokerState::Down,
            2 => BrokerState::Up,
            _ => BrokerState::Disabled,
        }
    }
}

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
    broker: Dependency,
    devices_connected: usize,
    consoles_connected: usize,
}

/// 200 when every dependency is up, 503 otherwise; the body names each one.
pub async fn healthz(State(app): State<AppState>) -> impl IntoResponse {
    let store =
        match tokio::time::timeout(std::time::Duration::from_secs(2), app.store.ping()).await {
            Ok(Ok(())) => Dependency {
                state: "up",
                error: None,
            },
            Ok(Err(e)) => Dependency {
                state: "down",
                error: Some(e.to_string()),
            },
            Err(_) => Dependency {
                state: "down",
                error: Some("timed out".into()),
            },
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
    let body = Health {
        status: if healthy { "ok" } else { "degraded" },
        store,
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
