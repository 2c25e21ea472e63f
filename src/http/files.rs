//! `/file`: uploads for `file` questions (upstream's routes; see `service::files`).

use axum::extract::multipart::MultipartRejection;
use axum::extract::{DefaultBodyLimit, Multipart, State};
use axum::response::{IntoResponse, Response};
use bytes::BytesMut;
use http::header;
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::auth::{REVIEWERS, RequestContext};
use super::envelope::{ApiOk, Envelope, ErrorEnvelope, MessageOut, msg};
use super::extract::{ValidJson, ValidQuery};
use super::params::Tenancy;
use crate::error::{AppError, AppResult};
use crate::http::AppState;
use crate::service::files::{DownloadUrl, FileRef, Upload, Uploaded};

/// The most an upload's body may hold: the largest file `ASSESSMENT_FILE_MAX_SIZE_MB` allows
/// (100 MiB) and 1 MiB more. The configured size is checked as the file is read.
const UPLOAD_BODY_LIMIT: usize = 101 * 1024 * 1024;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(upload))
        .layer(DefaultBodyLimit::max(UPLOAD_BODY_LIMIT))
        .routes(routes!(delete))
        .routes(routes!(download_url))
        .routes(routes!(download))
}

/// [`router`]'s routes without their documentation (see `api_routes!`); the upload alone takes
/// the larger body.
pub fn served() -> axum::Router<AppState> {
    let upload =
        served!(axum::Router::new(), upload).layer(DefaultBodyLimit::max(UPLOAD_BODY_LIMIT));
    let rest = served!(axum::Router::new(), delete);
    let rest = served!(rest, download_url);
    upload.merge(served!(rest, download))
}

/// Query of `POST /file/upload`.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct UploadQuery {
    /// A `file` question the upload answers: its `allowedFileExtensions` apply.
    #[param(value_type = Option<String>, format = Uuid)]
    pub question_id: Option<String>,
}

/// The multipart body of `POST /file/upload`.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct UploadForm {
    /// The file (one).
    #[schema(value_type = String, format = Binary)]
    file: Vec<u8>,
}

/// Upload a file (multipart field `file`) for a `file` answer; the answer then names the
/// returned `file`. Its size (`ASSESSMENT_FILE_MAX_SIZE_MB`), extension
/// (`ASSESSMENT_FILE_ALLOWED_EXTENSIONS`), declared type and content are checked.
#[utoipa::path(post, path = "/file/upload", tag = "files", params(Tenancy, UploadQuery),
    request_body(content = UploadForm, content_type = "multipart/form-data"),
    responses((status = 201, body = Envelope<Uploaded>), (status = 400, body = ErrorEnvelope),
              (status = 413, body = ErrorEnvelope)))]
async fn upload(
    State(s): State<AppState>,
    ctx: RequestContext,
    ValidQuery(q): ValidQuery<UploadQuery>,
    form: Result<Multipart, MultipartRejection>,
) -> AppResult<ApiOk<Uploaded>> {
    let actor = ctx.actor()?;
    let mut form = form.map_err(|_| {
        AppError::UnsupportedMediaType("The body must be multipart/form-data with a file".into())
    })?;
    let question = match q.question_id.as_deref() {
        None | Some("") => None,
        Some(id) => Some(
            uuid::Uuid::parse_str(id)
                .map_err(|_| AppError::validation("Invalid questionId query parameter"))?,
        ),
    };
    let max = s.files.max_bytes();
    let too_large = || {
        AppError::validation(format!(
            "File size exceeds maximum allowed ({}MB)",
            max / (1024 * 1024)
        ))
    };
    let unreadable = |e: axum::extract::multipart::MultipartError| {
        if e.status() == http::StatusCode::PAYLOAD_TOO_LARGE {
            too_large()
        } else {
            AppError::validation(format!(
                "The multipart body is malformed: {}",
                e.body_text()
            ))
        }
    };
    while let Some(mut field) = form.next_field().await.map_err(unreadable)? {
        if field.name() != Some("file") {
            continue;
        }
        let name = field.file_name().unwrap_or_default().to_string();
        let declared = field.content_type().map(str::to_string);
        let mut bytes = BytesMut::new();
        while let Some(chunk) = field.chunk().await.map_err(unreadable)? {
            if (bytes.len() + chunk.len()) as u64 > max {
                return Err(too_large());
            }
            bytes.extend_from_slice(&chunk);
        }
        if bytes.is_empty() {
            break;
        }
        let now_ms = s.clock.now().0.timestamp_millis();
        let file = Upload {
            name: &name,
            declared_type: declared.as_deref(),
            bytes: bytes.freeze(),
        };
        let uploaded = s
            .files
            .upload(&s.store, &actor, question, file, now_ms)
            .await?;
        return Ok(ApiOk::created(uploaded));
    }
    Err(AppError::validation("No file provided or file too large"))
}

/// Delete an uploaded file: its owner's, or any of the organisation's for a reviewer,
/// instructor or admin.
#[utoipa::path(post, path = "/file/delete", tag = "files", params(Tenancy), request_body = FileRef,
    responses((status = 200, body = Envelope<MessageOut>), (status = 404, body = ErrorEnvelope)))]
async fn delete(
    State(s): State<AppState>,
    ctx: RequestContext,
    ValidJson(body): ValidJson<FileRef>,
) -> AppResult<ApiOk<MessageOut>> {
    let actor = ctx.actor()?;
    let reviews = ctx.has_any_role(&REVIEWERS);
    s.files.delete(&actor, reviews, &body.file).await?;
    Ok(ApiOk::ok(msg("File deleted successfully")))
}

/// A signed URL that serves an uploaded file for `ASSESSMENT_FILE_DOWNLOAD_URL_EXPIRES_IN_SECONDS`:
/// for its owner, or a reviewer, instructor or admin of the organisation.
#[utoipa::path(post, path = "/file/download-url", tag = "files", params(Tenancy), request_body = FileRef,
    responses((status = 200, body = Envelope<DownloadUrl>), (status = 404, body = ErrorEnvelope)))]
async fn download_url(
    State(s): State<AppState>,
    ctx: RequestContext,
    ValidJson(body): ValidJson<FileRef>,
) -> AppResult<ApiOk<DownloadUrl>> {
    let actor = ctx.actor()?;
    let reviews = ctx.has_any_role(&REVIEWERS);
    let now = s.clock.now().0.timestamp();
    let url = s
        .files
        .download_url(&actor, reviews, &body.file, &s.prefix, now)
        .await?;
    Ok(ApiOk::ok(url))
}

/// Query of the signed download URL.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct Signed {
    pub key: String,
    /// Unix seconds.
    pub expires: String,
    pub signature: String,
}

/// The file a signed URL from `/file/download-url` names (no other credentials: the
/// signature is the permission, until it expires).
#[utoipa::path(get, path = "/file/download", tag = "files", params(Signed),
    responses((status = 200, description = "The file, as an attachment", content_type = "application/octet-stream"),
              (status = 403, body = ErrorEnvelope, description = "The signature does not hold, or the link expired"),
              (status = 404, body = ErrorEnvelope)))]
async fn download(
    State(s): State<AppState>,
    ValidQuery(q): ValidQuery<Signed>,
) -> AppResult<Response> {
    let now = s.clock.now().0.timestamp();
    let expires = q
        .expires
        .parse::<i64>()
        .map_err(|_| AppError::validation("expires must be a whole number of seconds"))?;
    let (bytes, content_type, name) = s.files.download(&q.key, expires, &q.signature, now).await?;
    Ok((
        [
            (header::CONTENT_TYPE, content_type.to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{name}\""),
            ),
            (header::CACHE_CONTROL, "private, no-store".to_string()),
        ],
        bytes,
    )
        .into_response())
}
