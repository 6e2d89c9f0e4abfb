//! Sessions (login, logout, renewal, password change, stream tickets) and the extractors handlers
//! use to know who is calling.
//!
//! Clients send `Authorization: Bearer <token>`; a token in a URL is never accepted. Whether a
//! caller may use a route is decided by the table in [`super::policy`] before the handler runs;
//! the extractors here only hand the handler the [`Caller`] that check produced.
//!
//! Logins are limited twice: per client address (a burst, then one attempt every few seconds) and
//! per attempted name (locked for a while after a few failures in a row, known name or not).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::Json;
use axum::extract::{FromRequestParts, State};
use axum::http::StatusCode;
use axum::http::request::Parts;
use serde::{Deserialize, Serialize};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use super::error::{ApiError, ApiResult, ErrorBody, JsonBody};
use super::policy::{Caller, Peer, Role};
use crate::domain::Millis;
use crate::store::{LoginOutcome, Principal, SubjectKind};

/// Credentials.
#[derive(Deserialize, Serialize, utoipa::ToSchema)]
pub struct LoginRequest {
    /// `operator` (default) or `responder`.
    #[serde(default)]
    #[schema(nullable = false)]
    pub kind: Option<LoginKind>,
    /// Operator name, or the responder's phone or name.
    #[schema(max_length = 200)]
    pub name: String,
    /// Password.
    #[schema(max_length = 1024)]
    pub password: String,
}

/// Who logs in.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum LoginKind {
    /// Console.
    Operator,
    /// App.
    Responder,
}

/// A new session.
#[derive(Serialize, Deserialize, utoipa::ToSchema)]
pub struct LoginResponse {
    /// Bearer token.
    pub token: String,
    /// Who logged in.
    pub principal: Principal,
    /// When the session ends unless renewed (Unix ms).
    pub expires_at: Millis,
}

/// A renewed session.
#[derive(Serialize, Deserialize, utoipa::ToSchema)]
pub struct Renewed {
    /// The new expiry (Unix ms); renewals never go past the session's fixed lifetime.
    pub expires_at: Millis,
}

/// A password change.
#[derive(Deserialize, Serialize, utoipa::ToSchema)]
pub struct PasswordChange {
    /// The current password.
    #[schema(max_length = 1024)]
    pub current: String,
    /// The new one, 8 to 1024 bytes.
    #[schema(min_length = 8, max_length = 1024)]
    pub new: String,
}

/// Which stream a ticket is for.
#[derive(Deserialize, Serialize, utoipa::ToSchema)]
pub struct TicketRequest {
    /// `/api/v1/stream` (console) or `/api/v1/responder/stream` (app).
    pub path: StreamPath,
}

/// The live streams.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, utoipa::ToSchema)]
pub enum StreamPath {
    /// The console's feed.
    #[serde(rename = "/api/v1/stream")]
    Console,
    /// The responder's pushes.
    #[serde(rename = "/api/v1/responder/stream")]
    Responder,
}

impl StreamPath {
    fn as_str(self) -> &'static str {
        match self {
            StreamPath::Console => "/api/v1/stream",
            StreamPath::Responder => "/api/v1/responder/stream",
        }
    }
}

/// A stream ticket.
#[derive(Serialize, Deserialize, utoipa::ToSchema)]
pub struct Ticket {
    /// Pass as `?ticket=` to the stream, once, within a minute.
    pub ticket: String,
    /// Unix ms.
    pub expires_at: Millis,
}

/// Routes: login, logout, me, renew, password, ticket.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(login))
        .routes(routes!(logout))
        .routes(routes!(me))
        .routes(routes!(renew))
        .routes(routes!(change_password))
        .routes(routes!(ticket))
}

/// Per-address login budget: `burst` attempts, refilled one every `every`.
pub struct LoginLimiter {
    burst: u32,
    every: Duration,
    buckets: Mutex<HashMap<IpAddr, (f64, Instant)>>,
}

impl LoginLimiter {
    /// A limiter.
    pub fn new(burst: u32, every: Duration) -> LoginLimiter {
        LoginLimiter {
            burst: burst.max(1),
            every: every.max(Duration::from_millis(1)),
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes one attempt for `ip`; false when its budget is spent.
    pub fn allow(&self, ip: IpAddr) -> bool {
        let now = Instant::now();
        let mut map = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        if map.len() > 100_000 {
            map.retain(|_, (_, at)| now.duration_since(*at) < self.every * self.burst);
        }
        let (tokens, at) = map.entry(ip).or_insert((f64::from(self.burst), now));
        let refill = now.duration_since(*at).as_secs_f64() / self.every.as_secs_f64();
        *tokens = (*tokens + refill).min(f64::from(self.burst));
        *at = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// Logs in and returns a bearer token.
#[utoipa::path(post, path = "/auth/login", tag = "auth", request_body = LoginRequest, security(()),
    responses((status = 200, body = LoginResponse),
              (status = 400, body = ErrorBody),
              (status = 401, body = ErrorBody, description = "wrong name or password"),
              (status = 429, body = ErrorBody, description = "too many attempts from this address or for this name")))]
async fn login(
    State(app): State<AppState>,
    Peer(peer): Peer,
    JsonBody(req): JsonBody<LoginRequest>,
) -> ApiResult<Json<LoginResponse>> {
    let kind = match req.kind {
        None | Some(LoginKind::Operator) => SubjectKind::Operator,
        Some(LoginKind::Responder) => SubjectKind::Responder,
    };
    if let Some(addr) = peer
        && !app.login_limiter.allow(addr.ip())
    {
        tracing::warn!(%addr, "login rate limit reached");
        metrics::counter!("onekey_login_throttled_total").increment(1);
        return Err(ApiError::TooMany(
            "too many login attempts from this address; wait a moment".into(),
        ));
    }
    match app
        .store
        .login(kind, &req.name, &req.password, &app.auth)
        .await?
    {
        LoginOutcome::Ok {
            token,
            principal,
            expires_at,
        } => {
            tracing::info!(name = %principal.name, kind = ?kind, peer = ?peer, "login");
            Ok(Json(LoginResponse {
                token,
                principal,
                expires_at,
            }))
        }
        LoginOutcome::Invalid => {
            tracing::warn!(name = %req.name.chars().take(64).collect::<String>(), peer = ?peer, "failed login");
            metrics::counter!("onekey_login_failures_total").increment(1);
            Err(ApiError::Unauthorized)
        }
        LoginOutcome::Locked { until } => {
            tracing::warn!(name = %req.name.chars().take(64).collect::<String>(), peer = ?peer, until, "login locked");
            metrics::counter!("onekey_login_failures_total").increment(1);
            metrics::counter!("onekey_login_locked_total").increment(1);
            Err(ApiError::TooMany(
                "too many failed logins for this name; try again later".into(),
            ))
        }
    }
}

/// Ends the caller's session.
#[utoipa::path(post, path = "/auth/logout", tag = "auth",
    responses((status = 204), (status = 401, body = ErrorBody)))]
async fn logout(State(app): State<AppState>, caller: Authenticated) -> ApiResult<StatusCode> {
    if let Some(token) = &caller.1.token {
        app.store.logout(token).await?;
    }
    Ok(StatusCode::NO_CONTENT)
}

/// Who the caller is.
#[utoipa::path(get, path = "/auth/me", tag = "auth",
    responses((status = 200, body = Principal), (status = 401, body = ErrorBody)))]
async fn me(user: Authenticated) -> Json<Principal> {
    Json(user.0)
}

/// Renews the caller's session (the console does so while it is open).
#[utoipa::path(post, path = "/auth/renew", tag = "auth",
    responses((status = 200, body = Renewed), (status = 401, body = ErrorBody)))]
async fn renew(State(app): State<AppState>, caller: Authenticated) -> ApiResult<Json<Renewed>> {
    let token = caller.1.token.as_deref().ok_or(ApiError::Unauthorized)?;
    let expires_at = app
        .store
        .renew_session(token, &app.auth)
        .await?
        .ok_or(ApiError::Unauthorized)?;
    Ok(Json(Renewed { expires_at }))
}

/// Changes the caller's own password; the caller's other sessions end.
#[utoipa::path(post, path = "/auth/password", tag = "auth", request_body = PasswordChange,
    responses((status = 204), (status = 400, body = ErrorBody),
              (status = 401, body = ErrorBody), (status = 403, body = ErrorBody, description = "the current password is wrong")))]
async fn change_password(
    State(app): State<AppState>,
    caller: Authenticated,
    JsonBody(req): JsonBody<PasswordChange>,
) -> ApiResult<StatusCode> {
    let token = caller.1.token.as_deref().ok_or(ApiError::Unauthorized)?;
    if !app
        .store
        .change_password(&caller.0, token, &req.current, &req.new)
        .await?
    {
        return Err(ApiError::Forbidden("the current password is wrong"));
    }
    app.audit(
        &caller.1,
        "password_changed",
        &target_of(&caller.0),
        serde_json::json!({}),
    )
    .await;
    Ok(StatusCode::NO_CONTENT)
}

/// A single-use ticket to open a live stream (`EventSource` cannot send the token in a header).
#[utoipa::path(post, path = "/auth/ticket", tag = "auth", request_body = TicketRequest,
    responses((status = 200, body = Ticket), (status = 400, body = ErrorBody),
              (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
async fn ticket(
    State(app): State<AppState>,
    caller: Authenticated,
    JsonBody(req): JsonBody<TicketRequest>,
) -> ApiResult<Json<Ticket>> {
    let token = caller.1.token.as_deref().ok_or(ApiError::Unauthorized)?;
    let path = req.path.as_str();
    let allowed = super::policy::rule("GET", path).is_some_and(|r| r.allows(caller.1.role()));
    if !allowed {
        return Err(ApiError::Forbidden("your role may not open this stream"));
    }
    let (ticket, expires_at) = app.store.issue_ticket(token, path).await?;
    Ok(Json(Ticket { ticket, expires_at }))
}

fn target_of(p: &Principal) -> String {
    format!("{}:{}", p.kind.as_str(), p.id)
}

fn caller_of(parts: &Parts) -> Result<Caller, ApiError> {
    parts
        .extensions
        .get::<Caller>()
        .cloned()
        .ok_or(ApiError::Unauthorized)
}

/// Any logged-in caller (its principal, and the whole [`Caller`]).
pub struct Authenticated(pub Principal, pub Caller);

impl<S: Send + Sync> FromRequestParts<S> for Authenticated {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let caller = caller_of(parts)?;
        Ok(Authenticated(caller.principal.clone(), caller))
    }
}

/// A logged-in operator (any operator role; the route's row says which).
pub struct Operator(pub Principal);

impl<S: Send + Sync> FromRequestParts<S> for Operator {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let caller = caller_of(parts)?;
        match caller.principal.kind {
            SubjectKind::Operator => Ok(Operator(caller.principal)),
            SubjectKind::Responder => Err(ApiError::Forbidden("operators only")),
        }
    }
}

/// A logged-in admin.
pub struct Admin(pub Principal);

impl<S: Send + Sync> FromRequestParts<S> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let caller = caller_of(parts)?;
        if caller.role() == Some(Role::Admin) {
            Ok(Admin(caller.principal))
        } else {
            Err(ApiError::Forbidden("admins only"))
        }
    }
}

/// The whole caller: principal, scope, peer address.
impl<S: Send + Sync> FromRequestParts<S> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        caller_of(parts)
    }
}
