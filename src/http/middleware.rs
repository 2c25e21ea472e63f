//! The per-request middleware: request id, envelope metadata, timeout, metrics and the
//! access log, in one pass.

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http::{HeaderValue, Method};
use tracing::Instrument;
use uuid::Uuid;

use super::envelope::RequestMeta;
use crate::error::AppError;
use crate::http::AppState;

pub const REQUEST_ID: &str = "x-request-id";

/// A client-supplied request id is kept when it is short, visible ASCII.
fn acceptable_request_id(v: &HeaderValue) -> Option<&str> {
    let s = v.to_str().ok()?.trim();
    (!s.is_empty() && s.len() <= 128 && s.bytes().all(|b| b.is_ascii_graphic())).then_some(s)
}

pub async fn per_request(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let started = Instant::now();
    let request_id: Arc<str> = req
        .headers()
        .get(REQUEST_ID)
        .and_then(acceptable_request_id)
        .map(Arc::from)
        .unwrap_or_else(|| Arc::from(Uuid::new_v4().to_string()));
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_string())
        .unwrap_or_else(|| "unmatched".into());
    let meta = RequestMeta {
        request_id: request_id.clone(),
        method: method.clone(),
        path: path.clone(),
        prefix: state.prefix.clone(),
    };
    let span = tracing::info_span!("request", request_id = %request_id);
    let timeout = state.config.request_timeout();

    let mut response = async {
        match tokio::time::timeout(timeout, meta.clone().scope(next.run(req))).await {
            Ok(response) => response,
            // The handler future is dropped here: an open transaction rolls back.
            Err(_) => {
                meta.clone()
                    .scope(async {
                        AppError::Timeout(format!(
                            "The request did not complete within {} s",
                            timeout.as_secs()
                        ))
                        .into_response()
                    })
                    .await
            }
        }
    }
    .instrument(span.clone())
    .await;

    if needs_envelope(&response) {
        response = meta.scope(envelope_error(response)).await;
    }

    if let Ok(value) = HeaderValue::from_str(&request_id) {
        response.headers_mut().insert(REQUEST_ID, value);
    }

    let status = response.status();
    let elapsed = started.elapsed();
    // Only standard methods become label values: a made-up method must not mint series.
    let method_label = match method {
        Method::GET
        | Method::POST
        | Method::PUT
        | Method::PATCH
        | Method::DELETE
        | Method::HEAD
        | Method::OPTIONS => method.as_str().to_string(),
        _ => "OTHER".to_string(),
    };
    let labels = [
        ("method", method_label),
        ("route", route),
        ("status", status.as_u16().to_string()),
    ];
    metrics::counter!("http_requests_total", &labels).increment(1);
    metrics::histogram!("http_request_duration_seconds", &labels).record(elapsed.as_secs_f64());

    let _entered = span.enter();
    let latency_ms = elapsed.as_secs_f64() * 1000.0;
    if status.is_server_error() {
        tracing::warn!(%method, %path, status = status.as_u16(), latency_ms, "request");
    } else {
        tracing::info!(%method, %path, status = status.as_u16(), latency_ms, "request");
    }
    response
}

/// An error response that did not come through [`AppError`] (an axum rejection such as a
/// path that is not valid UTF-8, or a layer's plain-text answer).
fn needs_envelope(response: &Response) -> bool {
    let status = response.status();
    let json = response
        .headers()
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    (status.is_client_error() || status.is_server_error()) && !json
}

/// Rewrites such a response into the standard envelope, keeping its status.
async fn envelope_error(response: Response) -> Response {
    use http::StatusCode;
    let status = response.status();
    let text = axum::body::to_bytes(response.into_body(), 4096)
        .await
        .map(|b| String::from_utf8_lossy(&b).trim().to_string())
        .unwrap_or_default();
    let text = if text.is_empty() {
        status
            .canonical_reason()
            .unwrap_or("Request failed")
            .to_string()
    } else {
        text
    };
    let error = match status {
        StatusCode::UNAUTHORIZED => AppError::Unauthorized(text),
        StatusCode::FORBIDDEN => AppError::Forbidden(text),
        StatusCode::NOT_FOUND => AppError::NotFound(text),
        StatusCode::METHOD_NOT_ALLOWED => AppError::MethodNotAllowed(text),
        StatusCode::CONFLICT => AppError::Conflict(text),
        StatusCode::PAYLOAD_TOO_LARGE => AppError::PayloadTooLarge(text),
        StatusCode::UNSUPPORTED_MEDIA_TYPE => AppError::UnsupportedMediaType(text),
        StatusCode::UNPROCESSABLE_ENTITY => AppError::Unprocessable(text),
        s if s.is_client_error() => AppError::Validation(text),
        StatusCode::SERVICE_UNAVAILABLE => AppError::Unavailable(text),
        _ => AppError::Internal(anyhow::anyhow!("unenveloped {status}: {text}")),
    };
    let mut out = error.into_response();
    if out.status() != status && status.is_client_error() {
        *out.status_mut() = status;
    }
    out
}
