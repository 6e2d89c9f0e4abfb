//! The HTTP side: the versioned JSON API under `/api/v1`, the console's live stream, health, metrics
//! and the OpenAPI document generated from the handlers' annotations.

pub mod admin;
pub mod auth;
pub mod console_config;
pub mod device_log;
pub mod directory;
pub mod error;
pub mod fleet;
pub mod handling;
pub mod health;
pub mod incidents;
pub mod limits;
pub mod policy;
pub mod queue;
pub mod reports;
pub mod responder;
pub mod responders;
pub mod scope;
pub mod security_headers;
pub mod sms;
pub mod stream;
pub mod tables;
pub mod ui;
pub mod webhooks;

use axum::Router;
use axum::routing::get;
use tower_http::trace::TraceLayer;
use utoipa::OpenApi;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa_axum::router::OpenApiRouter;

pub use crate::mqtt::{BrokerHealth, BrokerState};

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
    /// Wakes the outbox relays after a notification is queued.
    pub outbox: crate::notify::Outbox,
    /// Where an HTTP SMS provider's delivery reports and replies go (`None` unless configured).
    pub sms_inbound: Option<SmsCallbacks>,
    /// Pushes to responders' apps.
    pub responders: ResponderHub,
    /// The dispatch runner, when dispatch is enabled.
    pub dispatch: Option<std::sync::Arc<crate::dispatch::Runner>>,
    /// Cancelled at shutdown; ends live streams so the HTTP server can stop.
    pub shutdown: tokio_util::sync::CancellationToken,
    /// What the console shows beyond the data: procedures, map, SLA targets.
    pub console: std::sync::Arc<console_config::ConsoleContext>,
    /// Session lifetimes and login limits.
    pub auth: crate::store::AuthSettings,
    /// Login attempts per client address.
    pub login_limiter: std::sync::Arc<auth::LoginLimiter>,
    /// Whether the web port serves HTTPS (then HSTS is sent).
    pub https: bool,
    /// Protocols and grids whose traffic stopped.
    pub traffic: crate::supervision::TrafficBoard,
}

/// The HTTP SMS provider's callbacks: where they go and the token they must carry.
#[derive(Clone)]
pub struct SmsCallbacks {
    /// The inbound handler.
    pub inbound: tokio::sync::mpsc::Sender<crate::notify::channels::sms::Inbound>,
    /// `X-OneKey-Sms-Token`.
    pub token: String,
}

impl AppState {
    /// Appends to the audit log on behalf of `caller`. A failed write is logged and counted; it
    /// does not fail the request that caused it.
    pub async fn audit(
        &self,
        caller: &policy::Caller,
        action: &str,
        target: &str,
        detail: serde_json::Value,
    ) {
        let p = &caller.principal;
        let actor = match p.kind {
            crate::store::SubjectKind::Operator => format!("operator:{}", p.name),
            crate::store::SubjectKind::Responder => format!("responder:{}", p.id),
        };
        if let Err(e) = self
            .store
            .append_audit(&actor, &caller.peer, action, target, &detail)
            .await
        {
            tracing::error!(error = %e, action, target, "audit log write failed");
            metrics::counter!("onekey_store_errors_total", "op" => "audit").increment(1);
        }
    }
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

/// Documents what every operation can answer besides its own responses, from the access table
/// and the shared error handling: 401 and 403 on protected routes (public ones need no token), 400
/// for a malformed id, query or body, 404 for a missing path id, 422 for a body that refers to
/// missing records or repeats a unique one.
fn standard_responses(openapi: &mut utoipa::openapi::OpenApi) {
    use utoipa::openapi::{ContentBuilder, Ref, ResponseBuilder};
    let error = |description: &str| {
        ResponseBuilder::new()
            .description(description)
            .content(
                "application/json",
                ContentBuilder::new()
                    .schema(Some(Ref::from_schema_name("ErrorBody")))
                    .build(),
            )
            .build()
    };
    for (path, item) in openapi.paths.paths.iter_mut() {
        let ops = [
            ("GET", item.get.as_mut()),
            ("POST", item.post.as_mut()),
            ("PUT", item.put.as_mut()),
            ("PATCH", item.patch.as_mut()),
            ("DELETE", item.delete.as_mut()),
        ];
        for (method, op) in ops {
            let Some(op) = op else { continue };
            let public =
                policy::rule(method, path).is_some_and(|r| r.access == policy::Access::Public);
            let mut add = |code: &str, description: &str| {
                op.responses
                    .responses
                    .entry(code.to_string())
                    .or_insert_with(|| error(description).into());
            };
            if public {
                op.security = Some(vec![
                    utoipa::openapi::security::SecurityRequirement::default(),
                ]);
            } else {
                add("401", "no valid session");
                add("403", "the caller's role may not do this");
            }
            let has_params =
                op.parameters.as_ref().is_some_and(|p| !p.is_empty()) || path.contains('{');
            if has_params || op.request_body.is_some() {
                add("400", "a malformed id, query or body");
            }
            if path.contains('{') {
                add("404", "no such record (or outside the caller's area)");
            }
            if op.request_body.is_some() && method != "GET" {
                add(
                    "422",
                    "refers to a record that does not exist, or repeats a unique one",
                );
            }
        }
    }
}

/// The whole HTTP application. Every route passes the access table ([`policy::enforce`]); every
/// response gets the security headers; every error is JSON.
pub fn router(state: AppState) -> Router {
    let api = auth::router()
        .merge(incidents::router())
        .merge(directory::router())
        .merge(responders::router())
        .merge(responder::router())
        .merge(stream::router())
        .merge(reports::router())
        .merge(fleet::router())
        .merge(device_log::router())
        .merge(admin::router())
        .merge(sms::router())
        .merge(webhooks::router())
        .merge(handling::router())
        .merge(queue::router())
        .merge(tables::router())
        .merge(console_config::router());
    let (api, mut openapi) = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .nest("/api/v1", api)
        .split_for_parts();
    standard_responses(&mut openapi);
    let openapi = std::sync::Arc::new(openapi);
    let https = state.https;
    let csp = security_headers::csp(&state.console.settings.map.tile_url);
    Router::new()
        .merge(api)
        .merge(ui::router())
        .route("/healthz", get(health::healthz))
        .route("/metrics", get(health::metrics))
        .route(
            "/openapi.json",
            get(move || async move { axum::Json(openapi.as_ref().clone()) }),
        )
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            policy::enforce,
        ))
        .fallback(|| async { error::ApiError::NotFound("route") })
        .layer(axum::middleware::from_fn(error::json_errors))
        // The limits are limits.rs's; axum's own default (2 MB) would cap the import.
        .layer(axum::extract::DefaultBodyLimit::disable())
        .layer(axum::middleware::from_fn(limits::limit))
        .layer(axum::middleware::from_fn(move |req, next| {
            security_headers::add(https, csp.clone(), req, next)
        }))
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}
