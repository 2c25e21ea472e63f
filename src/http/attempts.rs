//! `/attempts`: taking a test. Every route acts on the caller's own attempts.

use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use serde_json::Value;
use utoipa::ToSchema;

use super::auth::RequestContext;
use super::auth::{REVIEWERS, require_self_or_reviewer};
use super::conditional;
use super::envelope::{ApiOk, Envelope, ErrorEnvelope};
use super::extract::{ValidJson, path_uuid};
use super::params::Tenancy;
use crate::error::AppResult;
use crate::http::AppState;
use crate::http::extract::ValidQuery;
use crate::service::attempts::{self as svc, AnswersIn, Resumed, Saved, Started, Submitted};
use crate::service::reviews::{self, ImportIn, ReviewIn, Reviewed};
use serde::Deserialize;
use utoipa::IntoParams;

api_routes!(
    [start],
    [save_answers],
    [submit],
    [resume],
    [questions],
    [pending_reviews],
    [review_attempt],
    [review_by_test],
    [import_result_status],
    [answersheet],
    [internal_result_status]
);

/// Paging of the pending-review list.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    #[serde(default, deserialize_with = "crate::service::de::opt_num")]
    pub limit: Option<i64>,
    #[serde(default, deserialize_with = "crate::service::de::opt_num")]
    pub offset: Option<i64>,
}

/// Submitted attempts with answers waiting for a reviewer, with those answers, oldest
/// submission first: an array, as upstream's (which had no paging); `limit` (default 100,
/// at most 1000) and `offset` choose the window, `X-Total-Count` says how many there are.
#[utoipa::path(get, path = "/attempts/reviews/pending", tag = "reviews", params(Tenancy, PageQuery),
    responses((status = 200, body = Envelope<Vec<super::views::PendingReview>>,
                headers(("X-Total-Count" = i64, description = "Attempts waiting for review in all"))),
              (status = 400, body = ErrorEnvelope), (status = 403, body = ErrorEnvelope)))]
async fn pending_reviews(
    State(s): State<AppState>,
    ctx: RequestContext,
    ValidQuery(q): ValidQuery<PageQuery>,
) -> AppResult<Response> {
    ctx.require_any_role(&REVIEWERS)?;
    let limit = q.limit.or(Some(100));
    let pending = reviews::pending(&s.store, &ctx.scope(), limit, q.offset).await?;
    let total = [("x-total-count", pending.total.to_string())];
    Ok((total, ApiOk::ok(pending.content)).into_response())
}

/// Score the answers of a submitted attempt (a reviewer, never the learner).
#[utoipa::path(post, path = "/attempts/{attemptId}/review", tag = "reviews",
    params(Tenancy, ("attemptId" = String, Path, format = Uuid)), request_body = ReviewIn,
    responses((status = 201, body = Envelope<Reviewed>), (status = 400, body = ErrorEnvelope),
              (status = 403, body = ErrorEnvelope), (status = 404, body = ErrorEnvelope), (status = 409, body = ErrorEnvelope)))]
async fn review_attempt(
    State(s): State<AppState>,
    ctx: RequestContext,
    Path(attempt_id): Path<String>,
    ValidJson(body): ValidJson<ReviewIn>,
) -> AppResult<ApiOk<Reviewed>> {
    ctx.require_any_role(&REVIEWERS)?;
    let attempt_id = path_uuid(&attempt_id)?;
    Ok(ApiOk::created(
        reviews::review_attempt(&s.store, &s.clock, &ctx.actor()?, attempt_id, body).await?,
    ))
}

/// Review (or import results for) a learner's latest submitted attempt on a test.
#[utoipa::path(post, path = "/attempts/review", tag = "reviews", params(Tenancy), request_body = ImportIn,
    responses((status = 201, body = Envelope<Reviewed>), (status = 400, body = ErrorEnvelope),
              (status = 403, body = ErrorEnvelope), (status = 404, body = ErrorEnvelope), (status = 409, body = ErrorEnvelope)))]
async fn review_by_test(
    State(s): State<AppState>,
    ctx: RequestContext,
    ValidJson(body): ValidJson<ImportIn>,
) -> AppResult<ApiOk<Reviewed>> {
    ctx.require_any_role(&REVIEWERS)?;
    Ok(ApiOk::created(
        reviews::review_by_test(&s.store, &s.clock, &ctx.actor()?, body).await?,
    ))
}

/// Body of the result-status routes.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ResultStatusIn {
    pub user_id: uuid::Uuid,
    pub test_id: uuid::Uuid,
}

/// Whether the learner's latest attempt has a final result (`aswaresheet`, sic, as upstream).
#[utoipa::path(post, path = "/attempts/import/resultstatus", tag = "reviews", params(Tenancy), request_body = ResultStatusIn,
    responses((status = 201, body = Envelope<super::views::ResultStatus>), (status = 400, body = ErrorEnvelope), (status = 403, body = ErrorEnvelope)))]
async fn import_result_status(
    State(s): State<AppState>,
    ctx: RequestContext,
    ValidJson(body): ValidJson<ResultStatusIn>,
) -> AppResult<ApiOk<Value>> {
    require_self_or_reviewer(&ctx, body.user_id)?;
    Ok(ApiOk::created(
        reviews::result_status(&s.store, &ctx.scope(), body.test_id, body.user_id, false).await?,
    ))
}

/// The answer sheet of a submitted attempt: its learner, or a reviewer.
#[utoipa::path(get, path = "/attempts/{attemptId}/answersheet", tag = "reviews",
    params(Tenancy, ("attemptId" = String, Path, format = Uuid), ("If-None-Match" = Option<String>, Header, description = "An `ETag` of an earlier answer: 304 while the view is unchanged")),
    responses((status = 200, body = Envelope<super::views::AnswerSheet>, headers(("ETag" = String, description = "Changes whenever the sheet does"))),
        (status = 304, description = "The sheet named by `If-None-Match` is current"),
        (status = 400, body = ErrorEnvelope), (status = 404, body = ErrorEnvelope)))]
async fn answersheet(
    State(s): State<AppState>,
    ctx: RequestContext,
    Path(attempt_id): Path<String>,
    headers: http::HeaderMap,
) -> AppResult<Response> {
    let attempt_id = path_uuid(&attempt_id)?;
    let caller = ctx.user()?;
    // In header mode everyone holds every role: a caller reads other learners' sheets as a
    // reviewer (as upstream allows), and their own as its learner.
    let reviewer = match ctx.mode {
        crate::http::auth::AuthMode::Headers => reviews::SheetReader::ReviewerOfOthers,
        _ if ctx.has_any_role(&REVIEWERS) => reviews::SheetReader::Reviewer,
        _ => reviews::SheetReader::Learner,
    };
    let sheet = reviews::answersheet(
        &s.store,
        &s.contents,
        &s.clock,
        &ctx.scope(),
        caller.as_uuid(),
        reviewer,
        attempt_id,
    )
    .await?;
    Ok(conditional::respond_digest(&headers, sheet))
}

/// Body of the internal result-status route.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct InternalResultStatusIn {
    pub user_id: uuid::Uuid,
    pub test_id: uuid::Uuid,
    pub tenant_id: uuid::Uuid,
    pub organisation_id: uuid::Uuid,
}

/// For other services (no tenancy headers; the scope is in the body). In JWT mode the token's
/// tenant must be the body's.
#[utoipa::path(post, path = "/internal/attempts/user/result-status", tag = "reviews", request_body = InternalResultStatusIn,
    responses((status = 200, body = Envelope<super::views::InternalResultStatus>), (status = 400, body = ErrorEnvelope), (status = 401, body = ErrorEnvelope), (status = 403, body = ErrorEnvelope)))]
async fn internal_result_status(
    State(s): State<AppState>,
    headers: http::HeaderMap,
    ValidJson(body): ValidJson<InternalResultStatusIn>,
) -> AppResult<ApiOk<Value>> {
    use crate::domain::ids::{OrganisationId, Scope, TenantId};
    let invalid =
        || crate::error::AppError::validation("tenantId and organisationId must be valid UUIDs");
    let scope = Scope {
        tenant: TenantId::parse(&body.tenant_id.to_string()).ok_or_else(invalid)?,
        organisation: OrganisationId::parse(&body.organisation_id.to_string())
            .ok_or_else(invalid)?,
    };
    if s.auth.mode() == crate::http::auth::AuthMode::Jwt {
        let mut h = headers.clone();
        h.remove("tenantid");
        h.remove("organisationid");
        h.insert(
            "organisationid",
            http::HeaderValue::from_str(&body.organisation_id.to_string())
                .map_err(|_| invalid())?,
        );
        let ctx = s.auth.authenticate(&h, None)?;
        if ctx.tenant_id != scope.tenant {
            return Err(crate::error::AppError::forbidden(
                "The token's tenant is not the body's tenantId",
            ));
        }
    }
    Ok(ApiOk::ok(
        reviews::result_status(&s.store, &scope, body.test_id, body.user_id, true).await?,
    ))
}

/// Start an attempt on a published test (or get back the existing one when the test allows
/// resubmission).
#[utoipa::path(post, path = "/attempts/start/{testId}", tag = "attempts",
    params(Tenancy, ("testId" = String, Path, format = Uuid)),
    responses((status = 201, body = Envelope<Started>), (status = 400, body = ErrorEnvelope),
              (status = 404, body = ErrorEnvelope), (status = 409, body = ErrorEnvelope),
              (status = 422, body = ErrorEnvelope),
              (status = 503, body = ErrorEnvelope, description = "More starts are waiting than `START_QUEUE_DEPTH`; `Retry-After` says when to try again",
                  headers(("Retry-After" = u64, description = "Seconds")))))]
async fn start(
    State(s): State<AppState>,
    ctx: RequestContext,
    Path(test_id): Path<String>,
) -> AppResult<ApiOk<Started>> {
    let test_id = path_uuid(&test_id)?;
    let actor = ctx.actor()?;
    let _turn = s.starts.admit().await?;
    Ok(ApiOk::created(
        svc::start(
            &s.store,
            &s.clock,
            &s.keys,
            &s.contents,
            &s.pools,
            &actor,
            test_id,
        )
        .await?,
    ))
}

/// Save answers (one per question; a repeat replaces the previous one, unless `clientSeq`
/// says the stored one is newer).
#[utoipa::path(post, path = "/attempts/{attemptId}/answers", tag = "attempts",
    params(Tenancy, ("attemptId" = String, Path, format = Uuid),
        ("Idempotency-Key" = Option<String>, Header, description = "1 to 255 printable ASCII characters. A save of this attempt already made under the key is answered again as it was; nothing is written and no event emitted. The same key with other answers: 422")),
    request_body = AnswersIn,
    responses((status = 201, body = Envelope<Saved>), (status = 400, body = ErrorEnvelope),
              (status = 404, body = ErrorEnvelope), (status = 409, body = ErrorEnvelope),
              (status = 422, body = ErrorEnvelope)))]
async fn save_answers(
    State(s): State<AppState>,
    ctx: RequestContext,
    Path(attempt_id): Path<String>,
    headers: http::HeaderMap,
    ValidJson(body): ValidJson<AnswersIn>,
) -> AppResult<ApiOk<Saved>> {
    let attempt_id = path_uuid(&attempt_id)?;
    let once = idempotency_key(&headers)?;
    let actor = ctx.actor()?;
    let saved = svc::save_answers(
        &s.store, &s.clock, &s.keys, &s.files, &actor, attempt_id, body, once,
    )
    .await?;
    Ok(ApiOk::created(saved))
}

/// The `Idempotency-Key` header, if sent: 1 to 255 printable ASCII characters.
fn idempotency_key(headers: &http::HeaderMap) -> AppResult<Option<&str>> {
    let Some(value) = headers.get("idempotency-key") else {
        return Ok(None);
    };
    value
        .to_str()
        .ok()
        .filter(|k| (1..=255).contains(&k.len()) && k.bytes().all(|b| (0x20..0x7f).contains(&b)))
        .map(Some)
        .ok_or_else(|| {
            crate::error::AppError::validation(
                "Idempotency-Key must be 1 to 255 printable ASCII characters",
            )
        })
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
        svc::submit(&s.store, &s.clock, &ctx.actor()?, attempt_id).await?,
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
            &s.clock,
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
    params(Tenancy, ("attemptId" = String, Path, format = Uuid), ("userId" = String, Path, format = Uuid), ("If-None-Match" = Option<String>, Header, description = "An `ETag` of an earlier answer: 304 while the view is unchanged")),
    responses((status = 200, body = Envelope<Vec<super::views::PaperQuestion>>, headers(("ETag" = String, description = "Changes whenever the paper does"))),
              (status = 304, description = "The paper named by `If-None-Match` is current"), (status = 400, body = ErrorEnvelope),
              (status = 403, body = ErrorEnvelope), (status = 404, body = ErrorEnvelope)))]
async fn questions(
    State(s): State<AppState>,
    ctx: RequestContext,
    Path((attempt_id, user_id)): Path<(String, String)>,
    headers: http::HeaderMap,
) -> AppResult<Response> {
    let (attempt_id, user_id) = (path_uuid(&attempt_id)?, path_uuid(&user_id)?);
    let actor = ctx.actor()?;
    let paper = svc::questions(
        &s.store,
        &s.contents,
        &actor.scope,
        actor.user_uuid(),
        user_id,
        attempt_id,
    )
    .await?;
    Ok(conditional::respond_digest(&headers, paper))
}
