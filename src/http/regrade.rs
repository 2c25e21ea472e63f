//! `/tests/{testId}/regrade`: scoring submitted attempts again after a key or marks change
//! (authors), with a preview that writes nothing, and the history of what regrades changed.

use axum::extract::{Path, State};

use super::attempts::PageQuery;
use super::auth::{RequestContext, Role};
use super::envelope::{ApiOk, Envelope, ErrorEnvelope};
use super::extract::{ValidJson, ValidQuery, path_uuid};
use super::params::Tenancy;
use crate::error::AppResult;
use crate::http::AppState;
use crate::service::Page;
use crate::service::regrade::{self as svc, RegradeIn, RegradeOut};
use crate::store::regrades::RegradeRecord;

api_routes!([preview], [apply], [history]);

/// What a regrade would change: per submitted attempt (of `version`, or those of
/// `attemptIds`, when given), the score, result and review status before and after, against
/// the test as published now. Writes nothing.
#[utoipa::path(post, path = "/tests/{testId}/regrade/preview", tag = "regrade",
    params(Tenancy, ("testId" = String, Path, format = Uuid)), request_body = RegradeIn,
    responses((status = 200, body = Envelope<RegradeOut>), (status = 400, body = ErrorEnvelope),
              (status = 403, body = ErrorEnvelope), (status = 404, body = ErrorEnvelope),
              (status = 422, body = ErrorEnvelope)))]
async fn preview(
    State(s): State<AppState>,
    ctx: RequestContext,
    Path(test_id): Path<String>,
    ValidJson(body): ValidJson<RegradeIn>,
) -> AppResult<ApiOk<RegradeOut>> {
    ctx.require_any_role(&[Role::Instructor, Role::Reviewer, Role::Admin])?;
    let test = path_uuid(&test_id)?;
    Ok(ApiOk::ok(
        svc::preview(&s.store, &s.clock, &ctx.actor()?, test, body).await?,
    ))
}

/// Regrade: scores the submitted attempts again as the preview shows, a batch of attempts per
/// transaction; each changed attempt gets a history row and an `attempt.regraded` event.
/// Reviewers' scores are kept unless `overrideManual`. Applying twice changes nothing the
/// second time. Returns the attempts it changed.
#[utoipa::path(post, path = "/tests/{testId}/regrade", tag = "regrade",
    params(Tenancy, ("testId" = String, Path, format = Uuid)), request_body = RegradeIn,
    responses((status = 200, body = Envelope<RegradeOut>), (status = 400, body = ErrorEnvelope),
              (status = 403, body = ErrorEnvelope), (status = 404, body = ErrorEnvelope),
              (status = 422, body = ErrorEnvelope)))]
async fn apply(
    State(s): State<AppState>,
    ctx: RequestContext,
    Path(test_id): Path<String>,
    ValidJson(body): ValidJson<RegradeIn>,
) -> AppResult<ApiOk<RegradeOut>> {
    ctx.require_author()?;
    let test = path_uuid(&test_id)?;
    Ok(ApiOk::ok(
        svc::apply(&s.store, &s.clock, &ctx.actor()?, test, body).await?,
    ))
}

/// What regrades changed on the test's attempts, newest first: who, when, why, the score and
/// result before and after.
#[utoipa::path(get, path = "/tests/{testId}/regrades", tag = "regrade",
    params(Tenancy, ("testId" = String, Path, format = Uuid), PageQuery),
    responses((status = 200, body = Envelope<Page<RegradeRecord>>), (status = 400, body = ErrorEnvelope),
              (status = 404, body = ErrorEnvelope)))]
async fn history(
    State(s): State<AppState>,
    ctx: RequestContext,
    Path(test_id): Path<String>,
    ValidQuery(q): ValidQuery<PageQuery>,
) -> AppResult<ApiOk<Page<RegradeRecord>>> {
    ctx.require_any_role(&[Role::Instructor, Role::Reviewer, Role::Admin])?;
    let test = path_uuid(&test_id)?;
    Ok(ApiOk::ok(
        svc::history(&s.store, &ctx.scope(), test, q.limit, q.offset).await?,
    ))
}
