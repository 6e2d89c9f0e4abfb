//! Administration beyond single records: CSV (or dataset JSON) import, with a preview of what it
//! would change, the list of operator accounts and the audit log (admins only, see
//! [`super::policy`]).

use axum::Json;
use axum::extract::{Query, State};
use serde::{Deserialize, Serialize};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use super::error::{ApiError, ApiResult, ErrorBody};
use super::policy::Caller;
use crate::store::{AuditEntry, OperatorRow};

/// Routes.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(import))
        .routes(routes!(list_operators))
        .routes(routes!(audit))
}

/// One rejected row.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ImportError {
    /// CSV line number, when the error names one.
    pub line: Option<u64>,
    /// What was wrong.
    pub message: String,
}

/// What an import did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ImportResult {
    /// Records created.
    pub created: u64,
    /// Records already there (skipped; importing twice creates nothing).
    pub updated: u64,
    /// Per kind: `[kind, created, already there]`.
    pub counts: Vec<(String, u64, u64)>,
    /// Bad rows, skipped; the others were imported.
    pub errors: Vec<ImportError>,
    /// Per CSV row: created, already there, or refused (in a preview: what would happen).
    pub rows: Vec<crate::import::RowOutcome>,
    /// True when nothing was written (a preview).
    pub preview: bool,
}

/// How to import.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
pub struct ImportQuery {
    /// Only say what would change; write nothing.
    #[serde(default)]
    pub preview: bool,
}

/// An import that failed: the store's own failure keeps its status (a database that cannot be
/// written is not the file's fault); anything else is the file's, answered 400.
fn import_error(e: anyhow::Error) -> ApiError {
    match e.downcast::<crate::store::StoreError>() {
        Ok(store) => store.into(),
        Err(e) => ApiError::BadRequest(format!("{e:#}")),
    }
}

/// Imports one CSV file (areas, elders, responders or devices, recognised by its header; see
/// `onekey import`) or a dataset JSON, sent as the request body.
#[utoipa::path(post, path = "/import", tag = "directory", params(ImportQuery), request_body(content = String, content_type = "text/csv"),
    responses((status = 200, body = ImportResult), (status = 400, body = super::error::ErrorBody)))]
async fn import(
    State(app): State<AppState>,
    caller: Caller,
    Query(q): Query<ImportQuery>,
    body: String,
) -> ApiResult<Json<ImportResult>> {
    let op = &caller.principal;
    if body.trim().is_empty() {
        return Err(ApiError::BadRequest("the file is empty".into()));
    }
    let report = if q.preview {
        crate::import::preview_text(&app.store, &body).await
    } else {
        crate::import::import_text(&app.store, &body).await
    }
    .map_err(import_error)?;
    if !q.preview
        && let Some(d) = &app.dispatch
    {
        d.refresh_responders().await?;
    }
    tracing::info!(operator = %op.name, preview = q.preview, summary = %report.summary(), "import");
    if !q.preview {
        app.audit(
            &caller,
            "import",
            "directory",
            serde_json::json!({"summary": report.summary()}),
        )
        .await;
    }
    let errors = report
        .errors
        .iter()
        .map(|e| ImportError {
            line: e
                .strip_prefix("line ")
                .and_then(|r| r.split(':').next())
                .and_then(|n| n.parse().ok()),
            message: e.clone(),
        })
        .collect();
    Ok(Json(ImportResult {
        created: report.counts.iter().map(|c| c.1).sum(),
        updated: report.counts.iter().map(|c| c.2).sum(),
        counts: report
            .counts
            .iter()
            .map(|(k, c, e)| (k.to_string(), *c, *e))
            .collect(),
        errors,
        rows: report.rows,
        preview: q.preview,
    }))
}

/// Operator accounts (admins only).
#[utoipa::path(get, path = "/operators", tag = "directory",
    responses((status = 200, body = Vec<OperatorRow>)))]
async fn list_operators(
    State(app): State<AppState>,
    _: Caller,
) -> ApiResult<Json<Vec<OperatorRow>>> {
    Ok(Json(app.store.list_operators().await?))
}

/// Which audit entries.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct AuditParams {
    /// Only this target (`elder:12`, `device:3`, `operator:2`…).
    pub target: Option<String>,
    /// At most this many, newest first (default 200; smaller values count as 1, larger as
    /// 10000).
    pub limit: Option<i64>,
}

/// The audit log: who read an elder's record or changed the directory, keys or accounts, when
/// and from where (admins only).
#[utoipa::path(get, path = "/audit", tag = "directory", params(AuditParams),
    responses((status = 200, body = Vec<AuditEntry>), (status = 400, body = ErrorBody)))]
async fn audit(
    State(app): State<AppState>,
    _: Caller,
    axum::extract::Query(p): axum::extract::Query<AuditParams>,
) -> ApiResult<Json<Vec<AuditEntry>>> {
    let limit = p.limit.unwrap_or(200).clamp(1, 10_000);
    Ok(Json(
        app.store.list_audit(p.target.as_deref(), limit).await?,
    ))
}
