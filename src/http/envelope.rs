//! The response envelope every route answers with (upstream §2), and its API-id rules.
//!
//! ```json
//! {"id":"api.tests.list","ver":"1.0","ts":"2025-08-11T10:09:37.424Z",
//!  "params":{"resmsgid":"...","msgid":"...","status":"successful","err":null,"errmsg":null},
//!  "responseCode":"OK","result":{}}
//! ```
//! The request middleware stores a [`RequestMeta`] in a task-local for the duration of the
//! request, so a response can be enveloped wherever it is made (handler, extractor rejection,
//! fallback, panic handler) without threading the path through every function.

use std::sync::Arc;

use axum::Json;
use axum::response::{IntoResponse, Response};
use chrono::{SecondsFormat, Utc};
use http::{Method, StatusCode};
use rand::Rng;
use serde::Serialize;
use utoipa::ToSchema;

tokio::task_local! {
    static REQUEST: RequestMeta;
}

/// What a response needs to know about its request.
#[derive(Debug, Clone)]
pub struct RequestMeta {
    pub request_id: Arc<str>,
    pub method: Method,
    pub path: String,
    pub prefix: Arc<str>,
}

impl RequestMeta {
    /// Runs `fut` with this request's metadata available to [`current`].
    pub async fn scope<F: Future>(self, fut: F) -> F::Output {
        REQUEST.scope(self, fut).await
    }
}

/// The metadata of the request being served, if any.
pub fn current() -> Option<RequestMeta> {
    REQUEST.try_with(Clone::clone).ok()
}

/// The request id of the request being served, or `"-"` outside a request.
pub fn current_request_id() -> String {
    REQUEST
        .try_with(|m| m.request_id.to_string())
        .unwrap_or_else(|_| "-".into())
}

/// `api.<resource>.<action>` for a request, per upstream's rules.
///
/// The resource is the first path segment after the global prefix; the action comes from the
/// method (`GET` is `list` on success and `get` on error). On success a `POST` whose last
/// segment is `delete` or `upload` takes that name.
pub fn api_id(prefix: &str, method: &Method, path: &str, success: bool) -> String {
    let marker = format!("/{prefix}/");
    let rest = match path.find(&marker) {
        Some(i) => &path[i + marker.len()..],
        None => path,
    };
    let segments: Vec<&str> = rest.split('/').filter(|s| !s.is_empty()).collect();
    let Some(resource) = segments.first() else {
        return "api.unknown".into();
    };
    let action = if success && *method == Method::POST && segments.len() >= 2 {
        match segments.last() {
            Some(&"delete") => "delete",
            Some(&"upload") => "upload",
            _ => "create",
        }
    } else {
        match *method {
            Method::GET if success => "list",
            Method::GET => "get",
            Method::POST => "create",
            Method::PUT | Method::PATCH => "update",
            Method::DELETE => "delete",
            _ => "unknown",
        }
    };
    format!("api.{resource}.{action}")
}

/// A fresh message id: 20 lowercase base-36 characters, like upstream's.
pub fn message_id() -> String {
    const ALPHABET: &[u8] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let mut rng = rand::thread_rng();
    (0..20)
        .map(|_| ALPHABET[rng.gen_range(0..ALPHABET.len())] as char)
        .collect()
}

/// The `params` block of the envelope.
#[derive(Debug, Serialize, ToSchema)]
pub struct EnvelopeParams {
    /// Id of this response (fresh, base-36).
    pub resmsgid: String,
    /// Id of the request: the `x-request-id` it came with, or the one generated for it.
    pub msgid: String,
    /// `successful` or `failed`.
    pub status: &'static str,
    /// Stable machine code on failure (`VALIDATION_ERROR`, `NOT_FOUND`, ...), else null.
    pub err: Option<&'static str>,
    /// Human message on failure, else null.
    pub errmsg: Option<String>,
}

/// The standard response envelope.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Envelope<T> {
    /// API id, e.g. `api.tests.list`.
    pub id: String,
    /// Always `1.0`.
    pub ver: &'static str,
    /// Server time, ISO 8601 with milliseconds, UTC.
    pub ts: String,
    pub params: EnvelopeParams,
    /// `OK` on success; `CLIENT_ERROR`, `UNAUTHORIZED`, `FORBIDDEN`, `NOT_FOUND`, `CONFLICT`
    /// or `SERVER_ERROR` on failure.
    pub response_code: &'static str,
    pub result: T,
}

fn now_ts() -> String {
    Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true)
}

fn api_id_for_current(success: bool) -> (String, String) {
    match current() {
        Some(m) => (
            api_id(&m.prefix, &m.method, &m.path, success),
            m.request_id.to_string(),
        ),
        None => ("api.unknown".into(), message_id()),
    }
}

fn envelope<T>(
    success: bool,
    err: Option<&'static str>,
    errmsg: Option<String>,
    response_code: &'static str,
    result: T,
) -> Envelope<T> {
    let (id, msgid) = api_id_for_current(success);
    Envelope {
        id,
        ver: "1.0",
        ts: now_ts(),
        params: EnvelopeParams {
            resmsgid: message_id(),
            msgid,
            status: if success { "successful" } else { "failed" },
            err,
            errmsg,
        },
        response_code,
        result,
    }
}

/// Builds a success envelope for the current request.
pub fn success<T>(result: T) -> Envelope<T> {
    envelope(true, None, None, "OK", result)
}

/// The `result` of a failure: always `null`.
#[derive(Debug, Clone, Copy)]
pub struct NoResult;

impl Serialize for NoResult {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_none()
    }
}

impl utoipa::PartialSchema for NoResult {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::schema::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::Null)
            .into()
    }
}

impl ToSchema for NoResult {}

/// The failure envelope: `result` is always null.
pub type ErrorEnvelope = Envelope<NoResult>;

/// Builds a failure envelope for the current request.
pub fn failure(err: &'static str, response_code: &'static str, errmsg: String) -> ErrorEnvelope {
    envelope(false, Some(err), Some(errmsg), response_code, NoResult)
}

/// A successful handler result: the status code and the `result` of the envelope.
#[derive(Debug)]
pub struct ApiOk<T> {
    pub status: StatusCode,
    pub result: T,
}

impl<T> ApiOk<T> {
    /// 200 OK.
    pub fn ok(result: T) -> Self {
        ApiOk {
            status: StatusCode::OK,
            result,
        }
    }

    /// 201 Created (upstream answers every POST with 201).
    pub fn created(result: T) -> Self {
        ApiOk {
            status: StatusCode::CREATED,
            result,
        }
    }
}

impl<T: Serialize> IntoResponse for ApiOk<T> {
    fn into_response(self) -> Response {
        (self.status, Json(success(self.result))).into_response()
    }
}

/// A response that is only a message (`{"message": ...}`).
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct MessageOut {
    pub message: String,
}

pub fn msg(m: &str) -> MessageOut {
    MessageOut { message: m.into() }
}

#[cfg(test)]
mod tests {
    use super::*;

    const P: &str = "assessment/v1";

    #[test]
    fn api_ids_follow_upstream_rules() {
        let cases = [
            (Method::GET, "/assessment/v1/tests", true, "api.tests.list"),
            (
                Method::GET,
                "/assessment/v1/tests/x/hierarchy",
                true,
                "api.tests.list",
            ),
            (
                Method::GET,
                "/assessment/v1/tests/x/hierarchy",
                false,
                "api.tests.get",
            ),
            (
                Method::POST,
                "/assessment/v1/tests",
                true,
                "api.tests.create",
            ),
            (
                Method::POST,
                "/assessment/v1/file/upload",
                true,
                "api.file.upload",
            ),
            (
                Method::POST,
                "/assessment/v1/file/delete",
                true,
                "api.file.delete",
            ),
            (
                Method::POST,
                "/assessment/v1/file/delete",
                false,
                "api.file.create",
            ),
            (
                Method::POST,
                "/assessment/v1/attempts/a/submit",
                true,
                "api.attempts.create",
            ),
            (
                Method::PATCH,
                "/assessment/v1/questions/q",
                true,
                "api.questions.update",
            ),
            (
                Method::PUT,
                "/assessment/v1/tests/t/structure",
                true,
                "api.tests.update",
            ),
            (
                Method::DELETE,
                "/assessment/v1/rules/r",
                true,
                "api.rules.delete",
            ),
            (
                Method::HEAD,
                "/assessment/v1/rules/r",
                true,
                "api.rules.unknown",
            ),
            (Method::GET, "/health/live", true, "api.health.list"),
            (Method::GET, "/", true, "api.unknown"),
            (Method::GET, "/assessment/v1/", true, "api.unknown"),
        ];
        for (method, path, ok, want) in cases {
            assert_eq!(
                api_id(P, &method, path, ok),
                want,
                "{method} {path} ok={ok}"
            );
        }
    }

    #[test]
    fn api_id_uses_the_configured_prefix() {
        assert_eq!(
            api_id("api/v2", &Method::GET, "/api/v2/tests", true),
            "api.tests.list"
        );
    }

    #[test]
    fn message_ids_are_base36() {
        let id = message_id();
        assert_eq!(id.len(), 20);
        assert!(
            id.chars()
                .all(|c| c.is_ascii_digit() || c.is_ascii_lowercase())
        );
        assert_ne!(id, message_id());
    }
}
