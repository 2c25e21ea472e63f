//! `/questions`: the question bank (authors only in JWT mode).

use axum::extract::{Path, State};
use serde_json::Value;

use super::auth::RequestContext;
use super::envelope::{ApiOk, Envelope, ErrorEnvelope};
use super::extract::{ValidJson, ValidQuery, path_uuid};
use super::params::Tenancy;
use crate::error::AppResult;
use crate::http::AppState;
use crate::service::questions::{
    self as svc, ActionResult, ChildQuestionsQuery, Criteria, OptionLinkIn, QuestionIn,
    QuestionListQuery, QuestionOut, QuestionPage, QuestionPatch, RulePreview,
};

api_routes!(
    [create, list],
    [rule_preview],
    [associate_option],
    [disassociate_option],
    [get_one, update, delete],
    [child_questions]
);

#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct Message {
    pub message: String,
}

/// Create a question with its options.
#[utoipa::path(post, path = "/questions", tag = "questions", params(Tenancy),
    request_body = QuestionIn,
    responses(
        (status = 201, body = Envelope<QuestionOut>),
        (status = 400, body = ErrorEnvelope), (status = 401, body = ErrorEnvelope),
        (status = 403, body = ErrorEnvelope), (status = 404, body = ErrorEnvelope),
    ))]
async fn create(
    State(state): State<AppState>,
    ctx: RequestContext,
    ValidJson(body): ValidJson<QuestionIn>,
) -> AppResult<ApiOk<QuestionOut>> {
    ctx.require_author()?;
    Ok(ApiOk::created(
        svc::create(&state.store, &state.clock, &ctx.actor()?, body).await?,
    ))
}

/// List questions with filters and pagination.
#[utoipa::path(get, path = "/questions", tag = "questions", params(Tenancy, QuestionListQuery),
    responses(
        (status = 200, body = Envelope<QuestionPage>),
        (status = 400, body = ErrorEnvelope), (status = 401, body = ErrorEnvelope),
        (status = 403, body = ErrorEnvelope),
    ))]
async fn list(
    State(state): State<AppState>,
    ctx: RequestContext,
    ValidQuery(query): ValidQuery<QuestionListQuery>,
) -> AppResult<ApiOk<QuestionPage>> {
    ctx.require_author()?;
    Ok(ApiOk::ok(
        svc::list(&state.store, &ctx.scope(), query).await?,
    ))
}

/// Published, top-level questions matching rule criteria, with distribution metadata.
#[utoipa::path(post, path = "/questions/rule-preview", tag = "questions", params(Tenancy),
    request_body = Criteria,
    responses(
        (status = 201, body = Envelope<RulePreview>),
        (status = 400, body = ErrorEnvelope), (status = 403, body = ErrorEnvelope),
    ))]
async fn rule_preview(
    State(state): State<AppState>,
    ctx: RequestContext,
    ValidJson(criteria): ValidJson<Criteria>,
) -> AppResult<ApiOk<RulePreview>> {
    ctx.require_author()?;
    Ok(ApiOk::created(
        svc::rule_preview(&state.store, &ctx.scope(), &criteria).await?,
    ))
}

/// Link a child question to the parent option that reveals it.
#[utoipa::path(post, path = "/questions/associate-option", tag = "questions", params(Tenancy),
    request_body = OptionLinkIn,
    responses(
        (status = 201, body = Envelope<ActionResult>),
        (status = 400, body = ErrorEnvelope), (status = 404, body = ErrorEnvelope),
        (status = 409, body = ErrorEnvelope),
    ))]
async fn associate_option(
    State(state): State<AppState>,
    ctx: RequestContext,
    ValidJson(body): ValidJson<OptionLinkIn>,
) -> AppResult<ApiOk<ActionResult>> {
    ctx.require_author()?;
    svc::associate(&state.store, &state.clock, &ctx.actor()?, body).await?;
    Ok(link_changed(
        &state,
        "Question successfully associated with option",
    ))
}

/// Remove a child question's link to an option.
#[utoipa::path(post, path = "/questions/disassociate-option", tag = "questions", params(Tenancy),
    request_body = OptionLinkIn,
    responses(
        (status = 201, body = Envelope<ActionResult>),
        (status = 400, body = ErrorEnvelope), (status = 404, body = ErrorEnvelope),
    ))]
async fn disassociate_option(
    State(state): State<AppState>,
    ctx: RequestContext,
    ValidJson(body): ValidJson<OptionLinkIn>,
) -> AppResult<ApiOk<ActionResult>> {
    ctx.require_author()?;
    svc::disassociate(&state.store, &state.clock, &ctx.actor()?, body).await?;
    Ok(link_changed(
        &state,
        "Question successfully disassociated from option",
    ))
}

/// The answer of the option-link routes: upstream's action result, without data.
fn link_changed(state: &AppState, message: &str) -> ApiOk<ActionResult> {
    ApiOk::created(ActionResult::new(message, Value::Null, state.clock.now()))
}

/// A question with its options.
#[utoipa::path(get, path = "/questions/{id}", tag = "questions",
    params(Tenancy, ("id" = String, Path, format = Uuid)),
    responses(
        (status = 200, body = Envelope<QuestionOut>),
        (status = 400, body = ErrorEnvelope), (status = 404, body = ErrorEnvelope),
    ))]
async fn get_one(
    State(state): State<AppState>,
    ctx: RequestContext,
    Path(id): Path<String>,
) -> AppResult<ApiOk<QuestionOut>> {
    ctx.require_author()?;
    let id = path_uuid(&id)?;
    Ok(ApiOk::ok(svc::get(&state.store, &ctx.scope(), id).await?))
}

/// Change the fields sent (options by id: kept ones keep their ids).
#[utoipa::path(patch, path = "/questions/{id}", tag = "questions",
    params(Tenancy, ("id" = String, Path, format = Uuid)),
    request_body = QuestionPatch,
    responses(
        (status = 200, body = Envelope<QuestionOut>),
        (status = 400, body = ErrorEnvelope), (status = 404, body = ErrorEnvelope),
    ))]
async fn update(
    State(state): State<AppState>,
    ctx: RequestContext,
    Path(id): Path<String>,
    ValidJson(body): ValidJson<QuestionPatch>,
) -> AppResult<ApiOk<QuestionOut>> {
    ctx.require_author()?;
    let id = path_uuid(&id)?;
    Ok(ApiOk::ok(
        svc::update(&state.store, &state.clock, &ctx.actor()?, id, body).await?,
    ))
}

/// Archive a question (soft delete).
#[utoipa::path(delete, path = "/questions/{id}", tag = "questions",
    params(Tenancy, ("id" = String, Path, format = Uuid)),
    responses(
        (status = 200, body = Envelope<Message>),
        (status = 400, body = ErrorEnvelope), (status = 404, body = ErrorEnvelope),
    ))]
async fn delete(
    State(state): State<AppState>,
    ctx: RequestContext,
    Path(id): Path<String>,
) -> AppResult<ApiOk<Message>> {
    ctx.require_author()?;
    let id = path_uuid(&id)?;
    svc::archive(&state.store, &state.clock, &ctx.actor()?, id).await?;
    Ok(ApiOk::ok(Message {
        message: "Question deleted successfully".into(),
    }))
}

/// The child (conditional) questions of a question.
#[utoipa::path(get, path = "/questions/{id}/child-questions", tag = "questions",
    params(Tenancy, ("id" = String, Path, format = Uuid), ChildQuestionsQuery),
    responses(
        (status = 200, body = Envelope<ActionResult>),
        (status = 400, body = ErrorEnvelope), (status = 404, body = ErrorEnvelope),
    ))]
async fn child_questions(
    State(state): State<AppState>,
    ctx: RequestContext,
    Path(id): Path<String>,
    ValidQuery(query): ValidQuery<ChildQuestionsQuery>,
) -> AppResult<ApiOk<ActionResult>> {
    ctx.require_author()?;
    let id = path_uuid(&id)?;
    let data = svc::child_questions(&state.store, &ctx.scope(), id, query).await?;
    Ok(ApiOk::ok(ActionResult::new(
        "Child questions retrieved successfully",
        Value::Array(data),
        state.clock.now(),
    )))
}
