//! Who may call what: one table ([`RULES`]) names, for every route, the roles allowed, and
//! [`enforce`] (a layer on every route) applies it before any handler runs. Handlers only read who
//! the caller is ([`Caller`]); they never decide whether a role may come in.
//!
//! Roles: `admin` (accounts, keys, imports, grids), `dispatcher` (works incidents and the
//! directory of people), `viewer` (reads the queue, records and reports), `responder` (the app,
//! own tasks only). An operator may be scoped to one area (a street or community): routes marked
//! `scoped` then show only that area's elders, devices, incidents and responders (their handlers
//! filter by [`Caller::scope`]).
//!
//! A route without a row is refused (403) and logged; the route × role test
//! (`tests/access_matrix.rs`) fails naming it. Tokens are read from the `Authorization` header
//! only; the live streams, which a browser's `EventSource` opens without headers, take a
//! single-use `ticket` (`POST /api/v1/auth/ticket`) in their query instead.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::AppState;
use super::error::ApiError;
use crate::store::{Principal, SubjectKind, session_digest};

/// A role, as the table names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// Operator with every right.
    Admin,
    /// Operator who works incidents.
    Dispatcher,
    /// Operator who only reads.
    Viewer,
    /// Volunteer, grid worker, family: the app.
    Responder,
}

impl Role {
    /// Every role.
    pub const ALL: [Role; 4] = [Role::Admin, Role::Dispatcher, Role::Viewer, Role::Responder];

    /// The role of a principal.
    pub fn of(p: &Principal) -> Option<Role> {
        match (p.kind, p.role.as_str()) {
            (SubjectKind::Responder, _) => Some(Role::Responder),
            (SubjectKind::Operator, "admin") => Some(Role::Admin),
            (SubjectKind::Operator, "dispatcher") => Some(Role::Dispatcher),
            (SubjectKind::Operator, "viewer") => Some(Role::Viewer),
            _ => None,
        }
    }

    /// Stable name.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Dispatcher => "dispatcher",
            Role::Viewer => "viewer",
            Role::Responder => "responder",
        }
    }
}

/// Who may use a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Anyone, logged in or not.
    Public,
    /// Callers with one of these roles.
    Roles(&'static [Role]),
}

/// One row of the table.
#[derive(Debug, Clone, Copy)]
pub struct Rule {
    /// HTTP method.
    pub method: &'static str,
    /// The route as the router (and `/openapi.json`) spells it.
    pub path: &'static str,
    /// Who may call it.
    pub access: Access,
    /// A live stream: authenticated by a single-use `?ticket=` instead of a header.
    pub ticket: bool,
    /// Scoped operators see only their area here.
    pub scoped: bool,
}

impl Rule {
    /// Whether `role` (`None`: anonymous) may call the route.
    pub fn allows(&self, role: Option<Role>) -> bool {
        match self.access {
            Access::Public => true,
            Access::Roles(roles) => role.is_some_and(|r| roles.contains(&r)),
        }
    }
}

use Role::{Admin, Dispatcher, Responder, Viewer};

/// Every logged-in caller.
pub const ANYONE: &[Role] = &[Admin, Dispatcher, Viewer, Responder];
/// The console's readers.
pub const OPERATORS: &[Role] = &[Admin, Dispatcher, Viewer];
/// Those who work incidents and the directory of people.
pub const DISPATCHERS: &[Role] = &[Admin, Dispatcher];
/// Accounts, keys, imports, the grid.
pub const ADMINS: &[Role] = &[Admin];
/// The responders' app.
pub const RESPONDERS: &[Role] = &[Responder];

const fn public(method: &'static str, path: &'static str) -> Rule {
    Rule {
        method,
        path,
        access: Access::Public,
        ticket: false,
        scoped: false,
    }
}

const fn allow(method: &'static str, path: &'static str, roles: &'static [Role]) -> Rule {
    Rule {
        method,
        path,
        access: Access::Roles(roles),
        ticket: false,
        scoped: false,
    }
}

const fn scoped(method: &'static str, path: &'static str, roles: &'static [Role]) -> Rule {
    Rule {
        scoped: true,
        ..allow(method, path, roles)
    }
}

const fn stream(path: &'static str, roles: &'static [Role]) -> Rule {
    Rule {
        ticket: true,
        ..allow("GET", path, roles)
    }
}

const fn scoped_stream(path: &'static str, roles: &'static [Role]) -> Rule {
    Rule {
        scoped: true,
        ..stream(path, roles)
    }
}

/// The table: every route of the server and who may call it.
pub static RULES: &[Rule] = &[
    // Outside the API.
    public("GET", "/"),
    public("GET", "/console"),
    public("GET", "/app"),
    public("GET", "/app-sw.js"),
    public("GET", "/assets/{*path}"),
    public("GET", "/healthz"),
    public("GET", "/metrics"),
    public("GET", "/openapi.json"),
    // Sessions.
    public("POST", "/api/v1/auth/login"),
    allow("POST", "/api/v1/auth/logout", ANYONE),
    allow("GET", "/api/v1/auth/me", ANYONE),
    allow("POST", "/api/v1/auth/renew", ANYONE),
    allow("POST", "/api/v1/auth/password", ANYONE),
    allow("POST", "/api/v1/auth/ticket", ANYONE),
    // Incidents.
    scoped("GET", "/api/v1/incidents", OPERATORS),
    scoped("GET", "/api/v1/incidents/{id}", OPERATORS),
    scoped("POST", "/api/v1/incidents/{id}/ack", DISPATCHERS),
    scoped("POST", "/api/v1/incidents/{id}/close", DISPATCHERS),
    scoped("POST", "/api/v1/incidents/{id}/notes", DISPATCHERS),
    scoped("POST", "/api/v1/incidents/{id}/command", DISPATCHERS),
    scoped("POST", "/api/v1/incidents/{id}/offer", DISPATCHERS),
    scoped("POST", "/api/v1/incidents/{id}/escalate", DISPATCHERS),
    scoped("POST", "/api/v1/incidents/{id}/attention", DISPATCHERS),
    scoped("POST", "/api/v1/incidents/{id}/false-alarm", DISPATCHERS),
    scoped_stream("/api/v1/stream", OPERATORS),
    // The directory.
    allow("GET", "/api/v1/areas", OPERATORS),
    allow("POST", "/api/v1/areas", ADMINS),
    allow("GET", "/api/v1/areas/{id}", OPERATORS),
    allow("PUT", "/api/v1/areas/{id}", ADMINS),
    scoped("GET", "/api/v1/elders", OPERATORS),
    scoped("POST", "/api/v1/elders", DISPATCHERS),
    scoped("GET", "/api/v1/elders/{id}", OPERATORS),
    scoped("PUT", "/api/v1/elders/{id}", DISPATCHERS),
    scoped("GET", "/api/v1/devices", OPERATORS),
    allow("POST", "/api/v1/devices", ADMINS),
    scoped("GET", "/api/v1/devices/{id}", OPERATORS),
    allow("PUT", "/api/v1/devices/{id}", ADMINS),
    scoped("POST", "/api/v1/devices/{id}/command", DISPATCHERS),
    scoped("GET", "/api/v1/responders", OPERATORS),
    scoped("POST", "/api/v1/responders", DISPATCHERS),
    scoped("GET", "/api/v1/responders/{id}", OPERATORS),
    scoped("PUT", "/api/v1/responders/{id}", DISPATCHERS),
    scoped("POST", "/api/v1/responders/{id}/push", DISPATCHERS),
    allow("POST", "/api/v1/import", ADMINS),
    // Accounts and the audit log.
    allow("GET", "/api/v1/operators", ADMINS),
    allow("POST", "/api/v1/operators", ADMINS),
    allow("PUT", "/api/v1/operators/{id}", ADMINS),
    allow("GET", "/api/v1/audit", ADMINS),
    // Reports.
    scoped("GET", "/api/v1/reports", OPERATORS),
    scoped("GET", "/api/v1/fleet", OPERATORS),
    allow("GET", "/api/v1/device-log", ADMINS),
    // The responders' app.
    allow("POST", "/api/v1/responder/duty", RESPONDERS),
    allow("POST", "/api/v1/responder/location", RESPONDERS),
    allow("GET", "/api/v1/responder/tasks", RESPONDERS),
    allow("POST", "/api/v1/responder/receipts", RESPONDERS),
    allow(
        "POST",
        "/api/v1/responder/tasks/{incident_id}/accept",
        RESPONDERS,
    ),
    allow(
        "POST",
        "/api/v1/responder/tasks/{incident_id}/decline",
        RESPONDERS,
    ),
    allow(
        "POST",
        "/api/v1/responder/tasks/{incident_id}/arrived",
        RESPONDERS,
    ),
    allow(
        "POST",
        "/api/v1/responder/tasks/{incident_id}/completed",
        RESPONDERS,
    ),
    stream("/api/v1/responder/stream", RESPONDERS),
    allow("GET", "/api/v1/responder/me", RESPONDERS),
    // The console's work on an incident: who handles it, the procedure, calls, candidates.
    scoped("POST", "/api/v1/incidents/{id}/take", DISPATCHERS),
    scoped("POST", "/api/v1/incidents/{id}/handover", DISPATCHERS),
    scoped("POST", "/api/v1/incidents/{id}/release", DISPATCHERS),
    scoped("POST", "/api/v1/incidents/{id}/steps", DISPATCHERS),
    scoped("POST", "/api/v1/incidents/{id}/calls", DISPATCHERS),
    scoped("GET", "/api/v1/incidents/{id}/candidates", OPERATORS),
    scoped("GET", "/api/v1/queue", OPERATORS),
    scoped("GET", "/api/v1/map/points", OPERATORS),
    allow("GET", "/api/v1/console/config", ANYONE),
    allow("GET", "/api/v1/console/operators", OPERATORS),
    scoped("GET", "/api/v1/reports/incidents.csv", OPERATORS),
    // Paged directory tables and switching records off and on.
    scoped("GET", "/api/v1/tables/elders", OPERATORS),
    scoped("GET", "/api/v1/tables/devices", OPERATORS),
    scoped("GET", "/api/v1/tables/responders", OPERATORS),
    scoped("POST", "/api/v1/elders/{id}/active", DISPATCHERS),
    scoped("POST", "/api/v1/responders/{id}/active", DISPATCHERS),
    allow("POST", "/api/v1/devices/{id}/active", ADMINS),
    allow("POST", "/api/v1/operators/{id}/active", ADMINS),
    // Other systems: webhooks and their dead letters.
    allow("GET", "/api/v1/webhooks", ADMINS),
    allow("POST", "/api/v1/webhooks", ADMINS),
    allow("DELETE", "/api/v1/webhooks/{id}", ADMINS),
    allow("GET", "/api/v1/webhooks/dead", ADMINS),
    allow("POST", "/api/v1/notifications/{id}/replay", ADMINS),
    // An HTTP SMS gateway's callbacks authenticate with their own token header.
    public("POST", "/api/v1/sms/inbound"),
    public("POST", "/api/v1/sms/report"),
];

/// Device commands anyone who may command a device can send; every other command (free text,
/// SOS numbers, reset: they can point a device elsewhere or silence it) is for admins only.
pub const ROUTINE_COMMANDS: &[&str] = &["help_coming", "call_back", "locate", "ring"];

/// Whether `role` may send device command `name`.
pub fn may_send_command(role: Option<Role>, name: &str) -> bool {
    match role {
        Some(Role::Admin) => true,
        Some(Role::Dispatcher) => ROUTINE_COMMANDS.contains(&name),
        _ => false,
    }
}

/// The row of a route.
pub fn rule(method: &str, path: &str) -> Option<&'static Rule> {
    RULES
        .iter()
        .find(|r| r.method.eq_ignore_ascii_case(method) && r.path == path)
}

/// Who is calling, put in the request by [`enforce`] for the handlers.
#[derive(Debug, Clone)]
pub struct Caller {
    /// The session's principal.
    pub principal: Principal,
    /// The bearer token (absent when the caller came with a stream ticket).
    pub token: Option<String>,
    /// The session's digest, to check later that it is still alive.
    pub session: String,
    /// Where the request came from (`ip:port`), for the audit log.
    pub peer: String,
    /// Grid ids the caller is limited to on scoped routes; `None` = everything.
    pub scope: Option<Vec<i64>>,
}

impl Caller {
    /// The caller's role.
    pub fn role(&self) -> Option<Role> {
        Role::of(&self.principal)
    }

    /// Whether a record in grid `grid_id` is inside the caller's scope.
    pub fn sees_grid(&self, grid_id: Option<i64>) -> bool {
        match &self.scope {
            None => true,
            Some(grids) => grid_id.is_some_and(|g| grids.contains(&g)),
        }
    }
}

/// The client address of a request (`None` when the server does not record it).
pub struct Peer(pub Option<SocketAddr>);

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for Peer {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _: &S,
    ) -> Result<Self, Self::Rejection> {
        Ok(Peer(
            parts
                .extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map(|c| c.0),
        ))
    }
}

/// The peer address of a request, when the server records it.
pub fn peer_of(req: &Request) -> String {
    req.extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.to_string())
        .unwrap_or_else(|| "unknown".into())
}

fn bearer(req: &Request) -> Option<String> {
    req.headers()
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .filter(|t| !t.is_empty() && t.len() <= 256)
        .map(str::to_owned)
}

fn ticket(req: &Request) -> Option<String> {
    req.uri().query().and_then(|q| {
        q.split('&')
            .find_map(|kv| kv.strip_prefix("ticket="))
            .filter(|t| !t.is_empty() && t.len() <= 256)
            .map(str::to_owned)
    })
}

/// The layer on every route: finds the route's row, authenticates the caller (header token, or a
/// stream ticket), checks the role and hands [`Caller`] to the handler.
pub async fn enforce(State(app): State<AppState>, mut req: Request, next: Next) -> Response {
    let path = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_default();
    let method = req.method().as_str().to_owned();
    let Some(rule) = rule(&method, &path) else {
        let allowed: Vec<&str> = RULES
            .iter()
            .filter(|r| r.path == path)
            .map(|r| r.method)
            .collect();
        if !allowed.is_empty() {
            // A method the route does not have: what the router would answer.
            let mut response = (
                axum::http::StatusCode::METHOD_NOT_ALLOWED,
                axum::Json(serde_json::json!({"error": {"code": "method_not_allowed",
                    "message": format!("use {}", allowed.join(", "))}})),
            )
                .into_response();
            if let Ok(v) = axum::http::HeaderValue::from_str(&allowed.join(", ")) {
                response.headers_mut().insert(axum::http::header::ALLOW, v);
            }
            return response;
        }
        tracing::error!(%method, %path, "route has no access rule; refused");
        return ApiError::Forbidden("this route has no access rule").into_response();
    };
    if rule.access == Access::Public {
        return next.run(req).await;
    }
    let peer = peer_of(&req);
    let credentials = (bearer(&req), rule.ticket.then(|| ticket(&req)).flatten());
    let caller = match authenticate(&app, credentials, rule, peer).await {
        Ok(c) => c,
        Err(e) => return e.into_response(),
    };
    if !rule.allows(caller.role()) {
        tracing::warn!(%method, %path, who = %caller.principal.name, role = %caller.principal.role, "forbidden");
        metrics::counter!("onekey_http_forbidden_total").increment(1);
        return ApiError::Forbidden("your role may not do this").into_response();
    }
    req.extensions_mut().insert(caller);
    next.run(req).await
}

async fn authenticate(
    app: &AppState,
    credentials: (Option<String>, Option<String>),
    rule: &Rule,
    peer: String,
) -> Result<Caller, ApiError> {
    let (principal, token, session) = match credentials {
        (Some(token), _) => {
            let p = app
                .store
                .session(&token)
                .await?
                .ok_or(ApiError::Unauthorized)?;
            let digest = session_digest(&token);
            (p, Some(token), digest)
        }
        (None, Some(ticket)) => {
            let (p, digest) = app
                .store
                .redeem_ticket(&ticket, rule.path)
                .await?
                .ok_or(ApiError::Unauthorized)?;
            (p, None, digest)
        }
        (None, None) => return Err(ApiError::Unauthorized),
    };
    let scope = match (rule.scoped, principal.scope_area_id) {
        (true, Some(area)) => Some(app.store.grids_under(area).await?),
        _ => None,
    };
    Ok(Caller {
        principal,
        token,
        session,
        peer,
        scope,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_row_is_unique_and_dangerous_commands_are_for_admins() {
        for (i, a) in RULES.iter().enumerate() {
            assert!(
                RULES[i + 1..]
                    .iter()
                    .all(|b| !(a.method == b.method && a.path == b.path)),
                "{} {} twice",
                a.method,
                a.path
            );
        }
        for command in ["text", "set_sos_numbers", "reset", "set_heartbeat"] {
            assert!(!may_send_command(Some(Role::Dispatcher), command));
            assert!(may_send_command(Some(Role::Admin), command));
        }
        assert!(may_send_command(Some(Role::Dispatcher), "help_coming"));
        assert!(!may_send_command(Some(Role::Viewer), "help_coming"));
    }
}
