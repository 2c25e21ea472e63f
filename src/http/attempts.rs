//! `/attempts`: taking a test. Every route acts on the caller's own attempts.

use axum::extract::{Path, State};
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::auth::RequestContext;
use super::envelope::{ApiOk, Envelope, ErrorEnvelope};
use super::extract::{ValidJson, path_uuid};
use super::params::Tenancy;
use crate::AppState;
use crate::error::AppResult;
use crate::service::attempts::{self as svc, AnswersIn, Resumed, Started, Submitted};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(start))
        .routes(routes!(save_answers))
        .routes(routes!(submit))
        .routes(routes!(resume))
        .routes(routes!(questions))
}

#[derive(Serialize, ToSchema)]
pub struct MessageOut {
    pub message: String,
}

/// Start an attempt on a published test (or get back the existing one when the test allows
/// resubmission).
#[utoipa::path(post, path = "/attempts/start/{testId}", tag = "attempts",
    params(Tenancy, ("testId" = String, Path, format = Uuid)),
    responses((status = 201, body = Envelope<Started>), (status = 400, body = ErrorEnvelope),
              (status = 404, body = ErrorEnvelope), (status = 409, body = ErrorEnvelope),
              (status = 422, body = ErrorEnvelope)))]
async fn start(
    State(s): State<AppState>,
    ctx: RequestContext,
    Path(test_id): Path<String>,
) -> AppResult<ApiOk<Started>> {
    let test_id = path_uuid(&test_id)?;
    Ok(ApiOk::created(
        svc::start(&s.store, &ctx.actor()?, test_id).await?,
    ))
}

/// Save answers (one per question; a repeat replaces the previous one).
#[utoipa::path(post, path = "/attempts/{attemptId}/answers", tag = "attempts",
    params(Tenancy, ("attemptId" = String, Path, format = Uuid)), request_body = AnswersIn,
    responses((status = 201, body = Envelope<MessageOut>), (status = 400, body = ErrorEnvelope),
              (status = 404, body = ErrorEnvelope), (status = 409, body = ErrorEnvelope),
              (status = 422, body = ErrorEnvelope)))]
async fn save_answers(
    State(s): State<AppState>,
    ctx: RequestContext,
    Path(attempt_id): Path<String>,
    ValidJson(body): ValidJson<AnswersIn>,
) -> AppResult<ApiOk<MessageOut>> {
    let attempt_id = path_uuid(&attempt_id)?;
    let message = svc::save_answers(&s.store, &ctx.actor()?, attempt_id, body).await?;
    Ok(ApiOk::created(MessageOut {
        message: message.into(),
    }))
}

/// Submit the attempt: scored, with its result once nothing needs review.
#[utoipa::path(post, path = "/attempts/{attemptId}/submit", tag = "attempts",
    params(Tenancy, ("attemptId" = String, Path, format = Uuid)),
    responses((status = 201, body = Envelope<Submitted>), (status = 400, body = ErrorEnvelope),
              (status = 404, body = ErrorEnvelope), (status = 409, body = ErrorEnvelope)))]
async fn submit(
    State(s): State<AppState>,
    ctx: RequestContext,
    Path(attempt_id): Path<String>,
) -> AppResult<ApiOk<Submitted>> {
    let attempt_id = path_uuid(&attempt_id)?;
    Ok(ApiOk::created(
        svc::submit(&s.store, &ctx.actor()?, attempt_id).await?,
    ))
}

/// The attempt, its answers and the time left (the caller's own attempts only).
#[utoipa::path(get, path = "/attempts/{attemptId}/resume/{userId}", tag = "attempts",
    params(Tenancy, ("attemptId" = String, Path, format = Uuid), ("userId" = String, Path, format = Uuid)),
    responses((status = 200, body = Envelope<Resumed>), (status = 400, body = ErrorEnvelope),
              (status = 403, body = ErrorEnvelope), (status = 404, body = ErrorEnvelope)))]
async fn resume(
    State(s): State<AppState>,
    ctx: RequestContext,
    Path((attempt_id, user_id)): Path<(String, String)>,
) -> AppResult<ApiOk<Resumed>> {
    let (attempt_id, user_id) = (path_uuid(&attempt_id)?, path_uuid(&user_id)?);
    let actor = ctx.actor()?;
    Ok(ApiOk::ok(
        svc::resume(
            &s.store,
            &actor.scope,
            actor.user_uuid(),
            user_id,
            attempt_id,
        )
        .await?,
    ))
}

/// The attempt's questions in order, with options and no answer keys.
#[utoipa::path(get, path = "/attempts/{attemptId}/questions/{userId}", tag = "attempts",
    params(Tenancy, ("attemptId" = String, Path, format = Uuid), ("userId" = String, Path, format = Uuid)),
    responses((status = 200, body = Envelope<Vec<Object>>), (status = 400, body = ErrorEnvelope),
              (status = 403, body = ErrorEnvelope), (status = 404, body = ErrorEnvelope)))]
async fn questions(
    State(s): State<AppState>,
    ctx: RequestContext,
    Path((attempt_id, user_id)): Path<(String, String)>,
) -> AppResult<ApiOk<Vec<Value>>> {
    let (attempt_id, user_id) = (path_uuid(&attempt_id)?, path_uuid(&user_id)?);
    let actor = ctx.actor()?;
    Ok(ApiOk::ok(
        svc::questions(
            &s.store,
            &actor.scope,
            actor.user_uuid(),
            user_id,
            attempt_id,
        )
        .await?,
    ))
}
