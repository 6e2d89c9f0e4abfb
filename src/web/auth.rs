//! Login, logout and the extractors that guard every other route.
//!
//! Clients send `Authorization: Bearer <token>`; the browser's live stream, which cannot set
//! headers, may pass `?token=`. Operators use the console; responders use the app.

use axum::Json;
use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use serde::{Deserialize, Serialize};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use super::error::{ApiError, ApiResult, JsonBody};
use crate::store::{Principal, SubjectKind};

/// Credentials.
#[derive(Deserialize, Serialize, utoipa::ToSchema)]
pub struct LoginRequest {
    /// `operator` (default) or `responder`.
    #[serde(default)]
    pub kind: Option<String>,
    /// Operator name, or the responder's phone or name.
    pub name: String,
    /// Password.
    pub password: String,
}

/// A new session.
#[derive(Serialize, Deserialize, utoipa::ToSchema)]
pub struct LoginResponse {
    /// Bearer token.
    pub token: String,
    /// Who logged in.
    pub principal: Principal,
}

/// Routes: login, logout, me.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(login))
        .routes(routes!(logout))
        .routes(routes!(me))
}

/// Logs in and returns a bearer token.
#[utoipa::path(post, path = "/auth/login", tag = "auth", request_body = LoginRequest,
    responses((status = 200, body = LoginResponse), (status = 401, body = super::error::ErrorBody)))]
async fn login(
    State(app): State<AppState>,
    JsonBody(req): JsonBody<LoginRequest>,
) -> ApiResult<Json<LoginResponse>> {
    let kind = match req.kind.as_deref() {
        None | Some("operator") => SubjectKind::Operator,
        Some("responder") => SubjectKind::Responder,
        Some(other) => return Err(ApiError::BadRequest(format!("unknown kind {other:?}"))),
    };
    match app.store.login(kind, &req.name, &req.password).await? {
        Some((token, principal)) => {
            tracing::info!(name = %principal.name, kind = ?kind, "login");
            Ok(Json(LoginResponse { token, principal }))
        }
        None => {
            tracing::warn!(name = %req.name, "failed login");
            metrics::counter!("onekey_login_failures_total").increment(1);
            Err(ApiError::Unauthorized)
        }
    }
}

/// Ends the caller's session.
#[utoipa::path(post, path = "/auth/logout", tag = "auth", responses((status = 204)))]
async fn logout(
    State(app): State<AppState>,
    parts: AuthToken,
) -> ApiResult<axum::http::StatusCode> {
    app.store.logout(&parts.0).await?;
    Ok(axum::http::StatusCode::NO_CONTENT)
}

/// Who the caller is.
#[utoipa::path(get, path = "/auth/me", tag = "auth", responses((status = 200, body = Principal)))]
async fn me(user: Authenticated) -> Json<Principal> {
    Json(user.0)
}

/// The raw bearer token of a request.
pub struct AuthToken(pub String);

impl<S: Send + Sync> FromRequestParts<S> for AuthToken {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let header = parts
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::to_owned);
        let query = parts.uri.query().and_then(|q| {
            q.split('&')
                .find_map(|kv| kv.strip_prefix("token="))
                .map(str::to_owned)
        });
        header
            .or(query)
            .filter(|t| !t.is_empty())
            .map(AuthToken)
            .ok_or(ApiError::Unauthorized)
    }
}

/// Any logged-in caller.
pub struct Authenticated(pub Principal);

impl FromRequestParts<AppState> for Authenticated {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        app: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let AuthToken(token) = AuthToken::from_request_parts(parts, app).await?;
        app.store
            .session(&token)
            .await?
            .map(Authenticated)
            .ok_or(ApiError::Unauthorized)
    }
}

/// A logged-in operator (or admin).
pub struct Operator(pub Principal);

impl FromRequestParts<AppState> for Operator {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        app: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let Authenticated(p) = Authenticated::from_request_parts(parts, app).await?;
        match p.kind {
            SubjectKind::Operator => Ok(Operator(p)),
            SubjectKind::Responder => Err(ApiError::Forbidden("operators only")),
        }
    }
}

/// A logged-in admin.
pub struct Admin(pub Principal);

impl FromRequestParts<AppState> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        app: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let Operator(p) = Operator::from_request_parts(parts, app).await?;
        if p.role == "admin" {
            Ok(Admin(p))
        } else {
            Err(ApiError::Forbidden("admins only"))
        }
    }
}
