//! The per-request middleware: request id, envelope metadata, timeout, metrics and the
//! access log, in one pass.

use std::sync::Arc;
use std::time::Instant;

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, MatchedPath, Request, State};
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
    let trace = crate::telemetry::Trace::of_request(
        req.headers()
            .get("traceparent")
            .and_then(|v| v.to_str().ok()),
    );
    let span = tracing::info_span!("request", request_id = %request_id, trace_id = %trace.trace_id);
    let timeout = state.config.request_timeout();
    let limited = request_size(&req).and_then(|()| address_limit(&state, &req));

    let response = async {
        if let Err(refused) = limited {
            let refused = state.limits.held(refused).await;
            return meta.clone().scope(async { refused.into_response() }).await;
        }
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
    .instrument(span.clone());
    let mut response = trace.clone().scope(response).await;

    if needs_envelope(&response) {
        response = meta.scope(envelope_error(response)).await;
    }

    if let Ok(value) = HeaderValue::from_str(&request_id) {
        response.headers_mut().insert(REQUEST_ID, value);
    }
    // Tenant data is never stored by caches unless the route says otherwise (the tagged
    // learner views do, see `conditional`).
    if path.starts_with(&format!("/{}", state.prefix)) {
        response
            .headers_mut()
            .entry(http::header::CACHE_CONTROL)
            .or_insert(HeaderValue::from_static("no-store"));
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
        ("route", route.clone()),
        ("status", status.as_u16().to_string()),
    ];
    metrics::counter!("http_requests_total", &labels).increment(1);
    metrics::histogram!("http_request_duration_seconds", &labels).record(elapsed.as_secs_f64());

    let _entered = span.enter();
    let latency_ms = elapsed.as_secs_f64() * 1000.0;
    // The request's ids on the line itself, not only in its span: a log query on one field
    // finds the line.
    let (status, trace_id) = (status.as_u16(), &trace.trace_id);
    if response.status().is_server_error() {
        tracing::warn!(%request_id, %trace_id, %route, %method, %path, status, latency_ms, "request");
    } else {
        tracing::info!(%request_id, %trace_id, %route, %method, %path, status, latency_ms, "request");
    }
    response
}

/// The longest request target the service reads: room for a list filter of 1,000 ids (37 KB).
/// hyper itself refuses targets of 64 KiB and more, before the service sees them, with a bare
/// 414.
pub const MAX_URI_BYTES: usize = 48 * 1024;
/// The largest header block the service reads, names and values together (hyper itself
/// refuses blocks of about 400 KiB and more, and more than 100 fields, without the envelope).
pub const MAX_HEADER_BYTES: usize = 32 * 1024;

/// 414 for a target over [`MAX_URI_BYTES`], 431 for headers over [`MAX_HEADER_BYTES`].
fn request_size(req: &Request) -> Result<(), AppError> {
    let uri = req.uri().path_and_query().map_or(0, |p| p.as_str().len());
    if uri > MAX_URI_BYTES {
        return Err(AppError::UriTooLong(format!(
            "The request target is {uri} bytes; at most {MAX_URI_BYTES} are read"
        )));
    }
    let headers: usize = req
        .headers()
        .iter()
        .map(|(k, v)| k.as_str().len() + v.len() + 4)
        .sum();
    if headers > MAX_HEADER_BYTES {
        return Err(AppError::HeadersTooLarge(format!(
            "The request's header fields are {headers} bytes; at most {MAX_HEADER_BYTES} are read"
        )));
    }
    Ok(())
}

/// The client address's allowance (`RATE_LIMIT_IP_PER_SEC`): health and metrics are exempt,
/// and so is a request that came through no socket (in-process tests).
fn address_limit(state: &AppState, req: &Request) -> Result<(), AppError> {
    if !state.limits.limits_addresses() {
        return Ok(());
    }
    let path = req.uri().path();
    if path == "/metrics" || path == "/health" || path.starts_with("/health/") {
        return Ok(());
    }
    let Some(ConnectInfo(peer)) = req.extensions().get::<ConnectInfo<SocketAddr>>() else {
        return Ok(());
    };
    let client = state.limits.client_address(peer.ip(), req.headers());
    state.limits.address(client)
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
