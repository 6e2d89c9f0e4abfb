//! How big a request may be and how long it may take: [`BODY_MAX_BYTES`] and [`DEADLINE`] on every
//! route, [`IMPORT_MAX_BYTES`] and [`IMPORT_DEADLINE`] on the admins' import (a district's whole
//! directory). A body announced larger is refused with 413 before a byte of it is read; a chunked
//! one is cut off at the limit (the extractor answers 413); a request past its deadline gets 408.

use std::time::Duration;

use axum::Json;
use axum::body::Body;
use axum::extract::Request;
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::error::{ErrorBody, ErrorDetail};

/// The largest request body of any route but the import.
pub const BODY_MAX_BYTES: usize = 1024 * 1024;

/// The largest import: 10,000 elders with their devices and contacts and 10,000 responders are
/// about 11 MB of JSON.
pub const IMPORT_MAX_BYTES: usize = 64 * 1024 * 1024;

/// How long any request but the import may take, body included.
pub const DEADLINE: Duration = Duration::from_secs(30);

/// How long an import may take: 30,000 rows take about 35 s on SQLite.
pub const IMPORT_DEADLINE: Duration = Duration::from_secs(600);

const IMPORT_PATH: &str = "/api/v1/import";

fn refuse(status: StatusCode, code: &'static str, message: String) -> Response {
    let body = ErrorBody {
        error: ErrorDetail { code, message },
    };
    (status, Json(body)).into_response()
}

/// The layer.
pub async fn limit(req: Request, next: Next) -> Response {
    let (max, deadline) = if req.uri().path() == IMPORT_PATH {
        (IMPORT_MAX_BYTES, IMPORT_DEADLINE)
    } else {
        (BODY_MAX_BYTES, DEADLINE)
    };
    let announced = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if announced.is_some_and(|n| n > max as u64) {
        return refuse(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_large",
            format!("the request body is larger than {max} bytes"),
        );
    }
    let (parts, body) = req.into_parts();
    let body = Body::new(http_body_util::Limited::new(body, max));
    match tokio::time::timeout(deadline, next.run(Request::from_parts(parts, body))).await {
        Ok(response) => response,
        Err(_) => refuse(
            StatusCode::REQUEST_TIMEOUT,
            "timeout",
            format!("the request took longer than {} s", deadline.as_secs()),
        ),
    }
}
