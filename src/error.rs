//! One error type for the whole service. Every variant becomes the standard envelope with a
//! stable machine code (`params.err`); internal causes are logged with the request id and never
//! sent to the client.

use axum::Json;
use axum::response::{IntoResponse, Response};
use http::StatusCode;

use crate::http::envelope;

/// Everything a use case or extractor can fail with.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// 400: the request is malformed or a value is invalid.
    #[error("{0}")]
    Validation(String),
    /// 401: no or bad credentials.
    #[error("{0}")]
    Unauthorized(String),
    /// 403: authenticated but not allowed.
    #[error("{0}")]
    Forbidden(String),
    /// 404: no such thing visible to this caller.
    #[error("{0}")]
    NotFound(String),
    /// 405: the route exists with other methods.
    #[error("{0}")]
    MethodNotAllowed(String),
    /// 409: conflicts with the current state (duplicate, already done).
    #[error("{0}")]
    Conflict(String),
    /// 413: body over the configured limit.
    #[error("{0}")]
    PayloadTooLarge(String),
    /// 414: the request target is longer than the service reads.
    #[error("{0}")]
    UriTooLong(String),
    /// 431: the request's header fields are larger than the service reads.
    #[error("{0}")]
    HeadersTooLarge(String),
    /// 415: body not JSON.
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// 422: well-formed, but a business rule refuses it.
    #[error("{0}")]
    Unprocessable(String),
    /// 429: over a rate limit; `Retry-After` says when to try again.
    #[error("{message}")]
    TooManyRequests {
        message: String,
        retry_after_secs: u64,
    },
    /// 503: the request ran past the configured timeout.
    #[error("{0}")]
    Timeout(String),
    /// 503: a dependency (the database) is unavailable.
    #[error("{0}")]
    Unavailable(String),
    /// 503: more of this kind of request are waiting than the service queues; `Retry-After`
    /// says when to try again.
    #[error("{message}")]
    Busy {
        message: String,
        retry_after_secs: u64,
    },
    /// 500: a bug or an unexpected failure. The cause is logged, not sent.
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl AppError {
    pub fn validation(msg: impl Into<String>) -> Self {
        AppError::Validation(msg.into())
    }
    pub fn not_found(msg: impl Into<String>) -> Self {
        AppError::NotFound(msg.into())
    }
    pub fn conflict(msg: impl Into<String>) -> Self {
        AppError::Conflict(msg.into())
    }
    pub fn forbidden(msg: impl Into<String>) -> Self {
        AppError::Forbidden(msg.into())
    }
    pub fn unauthorized(msg: impl Into<String>) -> Self {
        AppError::Unauthorized(msg.into())
    }
    pub fn unprocessable(msg: impl Into<String>) -> Self {
        AppError::Unprocessable(msg.into())
    }

    /// HTTP status, `params.err` and `responseCode` of this error.
    pub fn parts(&self) -> (StatusCode, &'static str, &'static str) {
        use AppError::*;
        match self {
            Validation(_) => (StatusCode::BAD_REQUEST, "VALIDATION_ERROR", "CLIENT_ERROR"),
            Unauthorized(_) => (StatusCode::UNAUTHORIZED, "UNAUTHORIZED", "UNAUTHORIZED"),
            Forbidden(_) => (StatusCode::FORBIDDEN, "FORBIDDEN", "FORBIDDEN"),
            NotFound(_) => (StatusCode::NOT_FOUND, "NOT_FOUND", "NOT_FOUND"),
            MethodNotAllowed(_) => (
                StatusCode::METHOD_NOT_ALLOWED,
                "METHOD_NOT_ALLOWED",
                "CLIENT_ERROR",
            ),
            Conflict(_) => (StatusCode::CONFLICT, "CONFLICT", "CONFLICT"),
            PayloadTooLarge(_) => (
                StatusCode::PAYLOAD_TOO_LARGE,
                "PAYLOAD_TOO_LARGE",
                "CLIENT_ERROR",
            ),
            UriTooLong(_) => (StatusCode::URI_TOO_LONG, "URI_TOO_LONG", "CLIENT_ERROR"),
            HeadersTooLarge(_) => (
                StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
                "HEADERS_TOO_LARGE",
                "CLIENT_ERROR",
            ),
            UnsupportedMediaType(_) => (
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "UNSUPPORTED_MEDIA_TYPE",
                "CLIENT_ERROR",
            ),
            Unprocessable(_) => (
                StatusCode::UNPROCESSABLE_ENTITY,
                "UNPROCESSABLE_ENTITY",
                "CLIENT_ERROR",
            ),
            TooManyRequests { .. } => (
                StatusCode::TOO_MANY_REQUESTS,
                "TOO_MANY_REQUESTS",
                "CLIENT_ERROR",
            ),
            Timeout(_) => (
                StatusCode::SERVICE_UNAVAILABLE,
                "REQUEST_TIMEOUT",
                "SERVER_ERROR",
            ),
            Unavailable(_) | Busy { .. } => (
                StatusCode::SERVICE_UNAVAILABLE,
                "SERVICE_UNAVAILABLE",
                "SERVER_ERROR",
            ),
            Internal(_) => (
                StatusCode::INTERNAL_SERVER_ERROR,
                "INTERNAL_ERROR",
                "SERVER_ERROR",
            ),
        }
    }
}

/// What a request that could not reach the database is told (503).
pub const DATABASE_UNAVAILABLE: &str = "The database is unavailable; try again shortly";

impl From<sqlx::Error> for AppError {
    fn from(e: sqlx::Error) -> Self {
        use sqlx::error::ErrorKind;
        match e {
            // No connection within the pool's acquire timeout (the database gone, or every
            // connection taken for that long), or the connection lost under the query.
            sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::Io(_)
            | sqlx::Error::Tls(_)
            | sqlx::Error::WorkerCrashed => {
                tracing::warn!(error = %e, "the database is unavailable");
                AppError::Unavailable(DATABASE_UNAVAILABLE.into())
            }
            // Constraint violations are refusals of the change, not bugs: a use case that has
            // a better message maps them itself first.
            sqlx::Error::Database(ref d) => match d.kind() {
                ErrorKind::UniqueViolation => {
                    AppError::Conflict("The change conflicts with existing data".into())
                }
                ErrorKind::ForeignKeyViolation => AppError::Conflict(
                    "The change refers to, or is still referred to by, other data".into(),
                ),
                ErrorKind::CheckViolation | ErrorKind::NotNullViolation => {
                    AppError::Validation("A value is outside what the field accepts".into())
                }
                // SQLSTATE class 22 (PostgreSQL): a value the column cannot hold, such as a
                // NUL character in text or a number out of range.
                _ if d.code().is_some_and(|c| c.starts_with("22")) => AppError::Validation(
                    "A value cannot be stored: invalid characters or out of range".into(),
                ),
                _ => AppError::Internal(anyhow::Error::new(e)),
            },
            other => AppError::Internal(anyhow::Error::new(other)),
        }
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let (status, err, code) = self.parts();
        let message = match &self {
            AppError::Internal(cause) => {
                let request_id = envelope::current_request_id();
                tracing::error!(request_id = %request_id, error = ?cause, "internal error");
                format!("Internal server error (request id {request_id})")
            }
            other => other.to_string(),
        };
        let mut response = (status, Json(envelope::failure(err, code, message))).into_response();
        if let AppError::TooManyRequests {
            retry_after_secs, ..
        }
        | AppError::Busy {
            retry_after_secs, ..
        } = self
        {
            response
                .headers_mut()
                .insert(http::header::RETRY_AFTER, retry_after_secs.into());
        }
        response
    }
}

/// Result of a handler or use case.
pub type AppResult<T> = Result<T, AppError>;
