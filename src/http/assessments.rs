//! `/tests`: tests, their question links, structure, clone, publish (authors), and the
//! learner hierarchy.

use axum::extract::{Path, State};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};

use super::auth::RequestContext;
use super::auth::{REVIEWERS, require_self_or_reviewer};
use super::envelope::{ApiOk, Envelope, ErrorEnvelope};
use super::envelope::{MessageOut, msg};
use super::extract::{ValidJson, ValidQuery, path_uuid};
use super::params::Tenancy;
use crate::error::AppResult;
use crate::http::AppState;
use crate::service::Page;
use crate::service::assessments::{
    self as svc, AddQuestionIn, BulkAddIn, BulkOutcome, StructureIn, TestDetail, TestIn,
    TestListQuery,
};
use crate::service::de;
use crate::service::hierarchy::{self, Audience};
use crate::store::assessments::Test;

api_routes!(
    [create, list],
    [list_search],
    [get_one, update, delete],
    [learner_hierarchy],
    [author_hierarchy],
    [add_question],
    [bulk_add],
    [remove_question],
    [structure],
    [clone_test],
    [publish],
    [unpublish],
    [user_status],
    [question_answer_report]
);

/// Learners' answers per question, one row per learner (their latest attempt). Names come from
/// the user service when `USER_SERVICE_URL` is set.
#[utoipa::path(get, path = "/tests/{id}/question-answer-report", tag = "reviews",
    params(Tenancy, ("id" = String, Path, format = Uuid), crate::service::reviews::ReportQuery),
    responses((status = 200, body = Envelope<super::views::AnswerReport>), (status = 400, body = ErrorEnvelope), (status = 404, body = ErrorEnvelope)))]
async fn question_answer_report(
    State(s): State<AppState>,
    ctx: RequestContext,
    headers: http::HeaderMap,
    Path(id): Path<String>,
    ValidQuery(q): ValidQuery<crate::service::reviews::ReportQuery>,
) -> AppResult<ApiOk<Value>> {
    ctx.require_any_role(&REVIEWERS)?;
    let id = path_uuid(&id)?;
    let auth = headers
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    Ok(ApiOk::ok(
        crate::service::reviews::question_answer_report(
            &s.store,
            &s.users,
            &ctx.scope(),
            auth,
            id,
            q,
        )
        .await?,
    ))
}

/// A learner's standing on a test: attempts made and allowed, the graded attempt, whether
/// they can start or resume. Learners see their own; reviewers, instructors and admins anyone's.
#[utoipa::path(get, path = "/tests/{id}/users/{userId}/status", tag = "tests",
    params(Tenancy, ("id" = String, Path, format = Uuid), ("userId" = String, Path, format = Uuid)),
    responses((status = 200, body = Envelope<super::views::UserStatus>), (status = 403, body = ErrorEnvelope), (status = 404, body = ErrorEnvelope)))]
async fn user_status(
    State(s): State<AppState>,
    ctx: RequestContext,
    Path((id, user_id)): Path<(String, String)>,
) -> AppResult<ApiOk<Value>> {
    let (id, user_id) = (path_uuid(&id)?, path_uuid(&user_id)?);
    require_self_or_reviewer(&ctx, user_id)?;
    Ok(ApiOk::ok(
        crate::service::attempts::user_status(&s.store, &ctx.scope(), id, user_id).await?,
    ))
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TestIdOut {
    #[schema(value_type = String, format = Uuid)]
    pub test_id: uuid::Uuid,
}

#[derive(Serialize, ToSchema)]
pub struct BulkOut {
    pub message: String,
    pub result: BulkOutcome,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CloneOut {
    pub message: String,
    #[schema(value_type = String, format = Uuid)]
    pub cloned_test_id: uuid::Uuid,
}

/// `?hard=true` on deletes.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct HardQuery {
    #[serde(default, deserialize_with = "de::opt_bool")]
    pub hard: Option<bool>,
}

/// Create a test (a `status` of `published` goes through the publish checks).
#[utoipa::path(post, path = "/tests", tag = "tests", params(Tenancy), request_body = TestIn,
    responses((status = 201, body = Envelope<TestIdOut>), (status = 400, body = ErrorEnvelope),
              (status = 403, body = ErrorEnvelope), (status = 422, body = ErrorEnvelope)))]
async fn create(
    State(s): State<AppState>,
    ctx: RequestContext,
    ValidJson(body): ValidJson<TestIn>,
) -> AppResult<ApiOk<TestIdOut>> {
    ctx.require_author()?;
    let test_id = svc::create(&s.store, &s.clock, &ctx.actor()?, body).await?;
    Ok(ApiOk::created(TestIdOut { test_id }))
}

/// List tests (archived ones only with `status=archived`).
#[utoipa::path(get, path = "/tests", tag = "tests", params(Tenancy, TestListQuery),
    responses((status = 200, body = Envelope<Page<Test>>), (status = 400, body = ErrorEnvelope)))]
async fn list(
    State(s): State<AppState>,
    ctx: RequestContext,
    ValidQuery(q): ValidQuery<TestListQuery>,
) -> AppResult<ApiOk<Page<Test>>> {
    ctx.require_author()?;
    Ok(ApiOk::ok(svc::list(&s.store, &ctx.scope(), q).await?))
}

/// List tests, filters in the body.
#[utoipa::path(post, path = "/tests/listsearch", tag = "tests", params(Tenancy), request_body = TestListQuery,
    responses((status = 201, body = Envelope<Page<Test>>), (status = 400, body = ErrorEnvelope)))]
async fn list_search(
    State(s): State<AppState>,
    ctx: RequestContext,
    ValidJson(q): ValidJson<TestListQuery>,
) -> AppResult<ApiOk<Page<Test>>> {
    ctx.require_author()?;
    Ok(ApiOk::created(svc::list(&s.store, &ctx.scope(), q).await?))
}

/// A test with its sections and question links.
#[utoipa::path(get, path = "/tests/{id}", tag = "tests", params(Tenancy, ("id" = String, Path, format = Uuid)),
    responses((status = 200, body = Envelope<TestDetail>), (status = 404, body = ErrorEnvelope)))]
async fn get_one(
    State(s): State<AppState>,
    ctx: RequestContext,
    Path(id): Path<String>,
) -> AppResult<ApiOk<TestDetail>> {
    ctx.require_author()?;
    Ok(ApiOk::ok(
        svc::get(&s.store, &ctx.scope(), path_uuid(&id)?).await?,
    ))
}

/// Change the fields sent; `status` goes through publish / unpublish.
#[utoipa::path(patch, path = "/tests/{id}", tag = "tests", params(Tenancy, ("id" = String, Path, format = Uuid)),
    request_body = TestIn,
    responses((status = 200, body = Envelope<TestIdOut>), (status = 400, body = ErrorEnvelope),
              (status = 404, body = ErrorEnvelope), (status = 409, body = ErrorEnvelope), (status = 422, body = ErrorEnvelope)))]
async fn update(
    State(s): State<AppState>,
    ctx: RequestContext,
    Path(id): Path<String>,
    ValidJson(body): ValidJson<TestIn>,
) -> AppResult<ApiOk<TestIdOut>> {
    ctx.require_author()?;
    let test_id = svc::update(&s.store, &s.clock, &ctx.actor()?, path_uuid(&id)?, body).await?;
    Ok(ApiOk::ok(TestIdOut { test_id }))
}

/// Archive a test (or delete it with `hard=true`); refused once it has attempts.
#[utoipa::path(delete, path = "/tests/{id}", tag = "tests", params(Tenancy, ("id" = String, Path, format = Uuid), HardQuery),
    responses((status = 200, body = Envelope<MessageOut>), (status = 400, body = ErrorEnvelope), (status = 404, body = ErrorEnvelope)))]
async fn delete(
    State(s): State<AppState>,
    ctx: RequestContext,
    Path(id): Path<String>,
    ValidQuery(q): ValidQuery<HardQuery>,
) -> AppResult<ApiOk<MessageOut>> {
    ctx.require_author()?;
    svc::delete(
        &s.store,
        &s.clock,
        &ctx.actor()?,
        path_uuid(&id)?,
        q.hard.unwrap_or(false),
    )
    .await?;
    Ok(ApiOk::ok(msg("Test deleted successfully")))
}

/// The learner's view of a published test: no answer keys.
#[utoipa::path(get, path = "/tests/{id}/hierarchy", tag = "tests", params(Tenancy, ("id" = String, Path, format = Uuid),
        ("If-None-Match" = Option<String>, Header, description = "An `ETag` of an earlier answer: 304 while the view is unchanged")),
    responses((status = 200, body = Envelope<super::views::LearnerHierarchy>, headers(("ETag" = String, description = "Changes whenever the view does"))),
        (status = 304, description = "The view named by `If-None-Match` is current"), (status = 404, body = ErrorEnvelope)))]
async fn learner_hierarchy(
    State(s): State<AppState>,
    ctx: RequestContext,
    Path(id): Path<String>,
    headers: http::HeaderMap,
) -> AppResult<axum::response::Response> {
    let v = hierarchy::learner_hierarchy(&s.store, &s.views, &ctx.scope(), path_uuid(&id)?).await?;
    Ok(super::conditional::respond(&headers, v.etag, v.view))
}

/// The author's view of a test: keys, and the questions each option reveals.
#[utoipa::path(get, path = "/tests/{id}/test-hierarchy", tag = "tests", params(Tenancy, ("id" = String, Path, format = Uuid)),
    responses((status = 200, body = Envelope<super::views::AuthorHierarchy>), (status = 404, body = ErrorEnvelope)))]
async fn author_hierarchy(
    State(s): State<AppState>,
    ctx: RequestContext,
    Path(id): Path<String>,
) -> AppResult<ApiOk<Value>> {
    ctx.require_author()?;
    Ok(ApiOk::ok(
        hierarchy::hierarchy(&s.store, &ctx.scope(), path_uuid(&id)?, Audience::Author).await?,
    ))
}

/// Add a question to a section of the test.
#[utoipa::path(post, path = "/tests/{id}/questions", tag = "tests", params(Tenancy, ("id" = String, Path, format = Uuid)),
    request_body = AddQuestionIn,
    responses((status = 201, body = Envelope<MessageOut>), (status = 400, body = ErrorEnvelope),
              (status = 404, body = ErrorEnvelope), (status = 409, body = ErrorEnvelope), (status = 422, body = ErrorEnvelope)))]
async fn add_question(
    State(s): State<AppState>,
    ctx: RequestContext,
    Path(id): Path<String>,
    ValidJson(body): ValidJson<AddQuestionIn>,
) -> AppResult<ApiOk<MessageOut>> {
    ctx.require_author()?;
    svc::add_question(&s.store, &s.clock, &ctx.actor()?, path_uuid(&id)?, body).await?;
    Ok(ApiOk::created(msg("Question added to test successfully")))
}

/// Add several questions to a section in one transaction.
#[utoipa::path(post, path = "/tests/{id}/questions/bulk", tag = "tests", params(Tenancy, ("id" = String, Path, format = Uuid)),
    request_body = BulkAddIn,
    responses((status = 201, body = Envelope<BulkOut>), (status = 400, body = ErrorEnvelope),
              (status = 404, body = ErrorEnvelope), (status = 422, body = ErrorEnvelope)))]
async fn bulk_add(
    State(s): State<AppState>,
    ctx: RequestContext,
    Path(id): Path<String>,
    ValidJson(body): ValidJson<BulkAddIn>,
) -> AppResult<ApiOk<BulkOut>> {
    ctx.require_author()?;
    let result = svc::bulk_add(&s.store, &s.clock, &ctx.actor()?, path_uuid(&id)?, body).await?;
    Ok(ApiOk::created(BulkOut {
        message: "Questions added to test successfully".into(),
        result,
    }))
}

/// Remove a question from the test.
#[utoipa::path(delete, path = "/tests/{id}/question/{questionId}", tag = "tests",
    params(Tenancy, ("id" = String, Path, format = Uuid), ("questionId" = String, Path, format = Uuid)),
    responses((status = 200, body = Envelope<MessageOut>), (status = 400, body = ErrorEnvelope),
              (status = 404, body = ErrorEnvelope), (status = 422, body = ErrorEnvelope)))]
async fn remove_question(
    State(s): State<AppState>,
    ctx: RequestContext,
    Path((id, question_id)): Path<(String, String)>,
) -> AppResult<ApiOk<MessageOut>> {
    ctx.require_author()?;
    svc::remove_question(
        &s.store,
        &s.clock,
        &ctx.actor()?,
        path_uuid(&id)?,
        path_uuid(&question_id)?,
    )
    .await?;
    Ok(ApiOk::ok(msg("Question removed from test successfully")))
}

/// Reorder sections and questions (and move questions between sections).
#[utoipa::path(put, path = "/tests/{id}/structure", tag = "tests", params(Tenancy, ("id" = String, Path, format = Uuid)),
    request_body = StructureIn,
    responses((status = 200, body = Envelope<MessageOut>), (status = 400, body = ErrorEnvelope),
              (status = 404, body = ErrorEnvelope), (status = 422, body = ErrorEnvelope)))]
async fn structure(
    State(s): State<AppState>,
    ctx: RequestContext,
    Path(id): Path<String>,
    ValidJson(body): ValidJson<StructureIn>,
) -> AppResult<ApiOk<MessageOut>> {
    ctx.require_author()?;
    svc::restructure(&s.store, &s.clock, &ctx.actor()?, path_uuid(&id)?, body).await?;
    Ok(ApiOk::ok(msg("Test structure updated successfully")))
}

/// Copy a test (as a draft) with its sections, question links and rules.
#[utoipa::path(post, path = "/tests/{id}/clone", tag = "tests", params(Tenancy, ("id" = String, Path, format = Uuid)),
    responses((status = 201, body = Envelope<CloneOut>), (status = 404, body = ErrorEnvelope)))]
async fn clone_test(
    State(s): State<AppState>,
    ctx: RequestContext,
    Path(id): Path<String>,
) -> AppResult<ApiOk<CloneOut>> {
    ctx.require_author()?;
    let cloned_test_id = svc::clone(&s.store, &s.clock, &ctx.actor()?, path_uuid(&id)?).await?;
    Ok(ApiOk::created(CloneOut {
        message: "Test cloned successfully".into(),
        cloned_test_id,
    }))
}

/// Publish: refused (422) without questions, with passing marks above total marks, or with
/// rules whose pools cannot supply their questions. Computes `totalMarks` when unset.
#[utoipa::path(post, path = "/tests/{id}/publish", tag = "tests", params(Tenancy, ("id" = String, Path, format = Uuid)),
    responses((status = 201, body = Envelope<Test>), (status = 404, body = ErrorEnvelope),
              (status = 409, body = ErrorEnvelope), (status = 422, body = ErrorEnvelope)))]
async fn publish(
    State(s): State<AppState>,
    ctx: RequestContext,
    Path(id): Path<String>,
) -> AppResult<ApiOk<Test>> {
    ctx.require_author()?;
    let id = path_uuid(&id)?;
    let published = svc::publish(&s.store, &s.clock, &ctx.actor()?, id).await?;
    // The learner hierarchy is rendered now, once, so the first learners to open the test do
    // not wait for it. The publish has committed whatever happens here; a failure only leaves
    // the first learner to render it.
    if let Err(e) = hierarchy::learner_hierarchy(&s.store, &s.views, &ctx.scope(), id).await {
        tracing::warn!(test_id = %id, error = %e, "the learner hierarchy was not rendered at publish");
    }
    Ok(ApiOk::created(published))
}

/// Unpublish a published test.
#[utoipa::path(post, path = "/tests/{id}/unpublish", tag = "tests", params(Tenancy, ("id" = String, Path, format = Uuid)),
    responses((status = 201, body = Envelope<Test>), (status = 404, body = ErrorEnvelope), (status = 409, body = ErrorEnvelope)))]
async fn unpublish(
    State(s): State<AppState>,
    ctx: RequestContext,
    Path(id): Path<String>,
) -> AppResult<ApiOk<Test>> {
    ctx.require_author()?;
    Ok(ApiOk::created(
        svc::unpublish(&s.store, &s.clock, &ctx.actor()?, path_uuid(&id)?).await?,
    ))
}
