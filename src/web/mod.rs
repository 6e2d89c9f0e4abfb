//! The HTTP side: the versioned JSON API under `/api/v1`, the console's live stream, health, metrics
//! and the OpenAPI document generated from the handlers' annotations.

pub mod admin;
pub mod auth;
pub mod directory;
pub mod error;
pub mod fleet;
pub mod health;
pub mod incidents;
pub mod reports;
pub mod responder;
pub mod responders;
pub mod stream;
pub mod ui;

use std::time::Duration;

use axum::Router;
use axum::routing::get;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::trace::TraceLayer;
use utoipa::OpenApi;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa_axum::router::OpenApiRouter;

pub use health::{BrokerHealth, BrokerState};

use crate::ingress::DeviceRegistry;
use crate::notify::{ConnectedDevices, ConsoleHub, ResponderHub};
use crate::store::Store;

/// Everything a handler may need; cheap to clone.
#[derive(Clone)]
pub struct AppState {
    /// The store.
    pub store: Store,
    /// The console's live feed.
    pub hub: ConsoleHub,
    /// Connected devices, for commands.
    pub devices: ConnectedDevices,
    /// Device credentials cache, invalidated when the directory changes.
    pub registry: DeviceRegistry,
    /// The MQTT connection's state.
    pub broker: BrokerHealth,
    /// Responder pushes over MQTT (`None` when MQTT is off).
    pub mqtt: Option<crate::ingress::mqtt::Outbox>,
    /// Pushes to responders' apps.
    pub responders: ResponderHub,
    /// The dispatch runner, when dispatch is enabled.
    pub dispatch: Option<std::sync::Arc<crate::dispatch::Runner>>,
    /// Cancelled at shutdown; ends live streams so the HTTP server can stop.
    pub shutdown: tokio_util::sync::CancellationToken,
}

#[derive(OpenApi)]
#[openapi(
    info(title = "OneKey API", description = "Dispatch server for one-key emergency call devices."),
    modifiers(&BearerAuth),
    security(("bearer" = []))
)]
struct ApiDoc;

struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// The whole HTTP application.
pub fn router(state: AppState) -> Router {
    let api = auth::router()
        .merge(incidents::router())
        .merge(directory::router())
        .merge(responders::router())
        .merge(responder::router())
        .merge(stream::router())
        .merge(reports::router())
        .merge(fleet::router())
        .merge(admin::router());
    let (api, openapi) = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .nest("/api/v1", api)
        .split_for_parts();
    let openapi = std::sync::Arc::new(openapi);
    Router::new()
        .merge(api)
        .merge(ui::router())
        .route("/healthz", get(health::healthz))
        .route("/metrics", get(health::metrics))
        .route(
            "/openapi.json",
            get(move || async move { axum::Json(openapi.as_ref().clone()) }),
        )
        .fallback(|| async { error::ApiError::NotFound("route") })
        .layer(RequestBodyLimitLayer::new(1024 * 1024))
        .layer(tower_http::timeout::TimeoutLayer::with_status_code(
            axum::http::StatusCode::REQUEST_TIMEOUT,
            Duration::from_secs(30),
        ))
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}
