//! Administration beyond single records: CSV (or dataset JSON) import from the console and the list
//! of operator accounts.

use axum::Json;
use axum::extract::State;
use serde::{Deserialize, Serialize};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use super::auth::{Admin, Operator};
use super::error::{ApiError, ApiResult};
use crate::store::OperatorRow;

/// Routes.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(import))
        .routes(routes!(list_operators))
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
}

/// Imports one CSV file (areas, elders, responders or devices, recognised by its header; see
/// `onekey import`) or a dataset JSON, sent as the request body.
#[utoipa::path(post, path = "/import", tag = "directory", request_body(content = String, content_type = "text/csv"),
    responses((status = 200, body = ImportResult), (status = 400, body = super::error::ErrorBody)))]
async fn import(
    State(app): State<AppState>,
    Operator(op): Operator,
    body: String,
) -> ApiResult<Json<ImportResult>> {
    if body.trim().is_empty() {
        return Err(ApiError::BadRequest("the file is empty".into()));
    }
    let report = crate::import::import_text(&app.store, &body)
        .await
        .map_err(|e| ApiError::BadRequest(format!("{e:#}")))?;
    if let Some(d) = &app.dispatch {
        d.refresh_responders().await?;
    }
    tracing::info!(operator = %op.name, summary = %report.summary(), "import");
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
    }))
}

/// Operator accounts (admins only).
#[utoipa::path(get, path = "/operators", tag = "directory",
    responses((status = 200, body = Vec<OperatorRow>), (status = 403, body = super::error::ErrorBody)))]
async fn list_operators(
    State(app): State<AppState>,
    _: Admin,
) -> ApiResult<Json<Vec<OperatorRow>>> {
    Ok(Json(app.store.list_operators().await?))
}
