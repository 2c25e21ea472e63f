//! `/rules`: selection rules of rule-based tests (authors).

use axum::extract::{Path, State};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use utoipa::{IntoParams, ToSchema};

use super::auth::RequestContext;
use super::envelope::{ApiOk, Envelope, ErrorEnvelope};
use super::envelope::{MessageOut, msg};
use super::extract::{ValidJson, ValidQuery, path_uuid};
use super::params::Tenancy;
use crate::error::AppResult;
use crate::http::AppState;
use crate::service::rules::{self as svc, RuleIn, RulePool};
use crate::store::rules::{Rule, RuleFilter};

api_routes!(
    [create, list],
    [of_test],
    [of_section],
    [get_one, update, delete],
    [preview],
    [questions]
);

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RuleIdOut {
    #[schema(value_type = String, format = Uuid)]
    pub rule_id: uuid::Uuid,
}

/// Filters of `GET /rules`.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
pub struct RuleQuery {
    #[serde(default)]
    pub test_id: Option<uuid::Uuid>,
    #[serde(default)]
    pub section_id: Option<uuid::Uuid>,
}

/// Create a rule (for a rule-based test that is not published).
#[utoipa::path(post, path = "/rules", tag = "rules", params(Tenancy), request_body = RuleIn,
    responses((status = 201, body = Envelope<RuleIdOut>), (status = 400, body = ErrorEnvelope),
              (status = 404, body = ErrorEnvelope), (status = 422, body = ErrorEnvelope)))]
async fn create(
    State(s): State<AppState>,
    ctx: RequestContext,
    ValidJson(body): ValidJson<RuleIn>,
) -> AppResult<ApiOk<RuleIdOut>> {
    ctx.require_author()?;
    let rule_id = svc::create(&s.store, &s.clock, &ctx.actor()?, body).await?;
    Ok(ApiOk::created(RuleIdOut { rule_id }))
}

/// Rules (inactive included), highest priority first.
#[utoipa::path(get, path = "/rules", tag = "rules", params(Tenancy, RuleQuery),
    responses((status = 200, body = Envelope<Vec<Rule>>), (status = 400, body = ErrorEnvelope)))]
async fn list(
    State(s): State<AppState>,
    ctx: RequestContext,
    ValidQuery(q): ValidQuery<RuleQuery>,
) -> AppResult<ApiOk<Vec<Rule>>> {
    ctx.require_author()?;
    let f = RuleFilter {
        test_id: q.test_id,
        section_id: q.section_id,
        active_only: false,
    };
    Ok(ApiOk::ok(
        svc::list(&s.store, &ctx.scope(), f, false).await?,
    ))
}

/// Active rules of a test.
#[utoipa::path(get, path = "/rules/test/{testId}", tag = "rules", params(Tenancy, ("testId" = String, Path, format = Uuid)),
    responses((status = 200, body = Envelope<Vec<Rule>>), (status = 400, body = ErrorEnvelope)))]
async fn of_test(
    State(s): State<AppState>,
    ctx: RequestContext,
    Path(test_id): Path<String>,
) -> AppResult<ApiOk<Vec<Rule>>> {
    ctx.require_author()?;
    let f = RuleFilter {
        test_id: Some(path_uuid(&test_id)?),
        active_only: true,
        ..RuleFilter::default()
    };
    Ok(ApiOk::ok(
        svc::list(&s.store, &ctx.scope(), f, false).await?,
    ))
}

/// Active rules of a section.
#[utoipa::path(get, path = "/rules/section/{sectionId}", tag = "rules", params(Tenancy, ("sectionId" = String, Path, format = Uuid)),
    responses((status = 200, body = Envelope<Vec<Rule>>), (status = 400, body = ErrorEnvelope)))]
async fn of_section(
    State(s): State<AppState>,
    ctx: RequestContext,
    Path(section_id): Path<String>,
) -> AppResult<ApiOk<Vec<Rule>>> {
    ctx.require_author()?;
    let f = RuleFilter {
        section_id: Some(path_uuid(&section_id)?),
        active_only: true,
        ..RuleFilter::default()
    };
    Ok(ApiOk::ok(svc::list(&s.store, &ctx.scope(), f, true).await?))
}

/// A rule.
#[utoipa::path(get, path = "/rules/{id}", tag = "rules", params(Tenancy, ("id" = String, Path, format = Uuid)),
    responses((status = 200, body = Envelope<Rule>), (status = 404, body = ErrorEnvelope)))]
async fn get_one(
    State(s): State<AppState>,
    ctx: RequestContext,
    Path(id): Path<String>,
) -> AppResult<ApiOk<Rule>> {
    ctx.require_author()?;
    Ok(ApiOk::ok(
        svc::get(&s.store, &ctx.scope(), path_uuid(&id)?).await?,
    ))
}

/// Change the fields sent.
#[utoipa::path(patch, path = "/rules/{id}", tag = "rules", params(Tenancy, ("id" = String, Path, format = Uuid)),
    request_body = RuleIn,
    responses((status = 200, body = Envelope<RuleIdOut>), (status = 400, body = ErrorEnvelope),
              (status = 404, body = ErrorEnvelope), (status = 422, body = ErrorEnvelope)))]
async fn update(
    State(s): State<AppState>,
    ctx: RequestContext,
    Path(id): Path<String>,
    ValidJson(body): ValidJson<RuleIn>,
) -> AppResult<ApiOk<RuleIdOut>> {
    ctx.require_author()?;
    let rule_id = svc::update(&s.store, &s.clock, &ctx.actor()?, path_uuid(&id)?, body).await?;
    Ok(ApiOk::ok(RuleIdOut { rule_id }))
}

/// Delete a rule.
#[utoipa::path(delete, path = "/rules/{id}", tag = "rules", params(Tenancy, ("id" = String, Path, format = Uuid)),
    responses((status = 200, body = Envelope<MessageOut>), (status = 404, body = ErrorEnvelope), (status = 422, body = ErrorEnvelope)))]
async fn delete(
    State(s): State<AppState>,
    ctx: RequestContext,
    Path(id): Path<String>,
) -> AppResult<ApiOk<MessageOut>> {
    ctx.require_author()?;
    svc::delete(&s.store, &s.clock, &ctx.actor()?, path_uuid(&id)?).await?;
    Ok(ApiOk::ok(msg("Rule deleted successfully")))
}

/// How many questions a rule's pool holds, against what it needs.
#[utoipa::path(get, path = "/rules/{id}/preview", tag = "rules", params(Tenancy, ("id" = String, Path, format = Uuid)),
    responses((status = 200, body = Envelope<super::views::RulePoolPreview>), (status = 404, body = ErrorEnvelope)))]
async fn preview(
    State(s): State<AppState>,
    ctx: RequestContext,
    Path(id): Path<String>,
) -> AppResult<ApiOk<Value>> {
    ctx.require_author()?;
    let p = svc::pool(&s.store, &ctx.scope(), path_uuid(&id)?).await?;
    Ok(ApiOk::ok(json!({
        "rule": p.rule,
        "metadata": {
            "totalQuestionsMatching": p.total_count,
            "canGeneratePool": p.can_generate_pool,
            "canCreateTest": p.can_create_test,
            "poolSize": p.rule.pool_size,
            "numberOfQuestions": p.rule.number_of_questions,
        }
    })))
}

/// The questions a rule's pool holds.
#[utoipa::path(post, path = "/rules/{id}/questions", tag = "rules", params(Tenancy, ("id" = String, Path, format = Uuid)),
    responses((status = 201, body = Envelope<RulePool>), (status = 404, body = ErrorEnvelope)))]
async fn questions(
    State(s): State<AppState>,
    ctx: RequestContext,
    Path(id): Path<String>,
) -> AppResult<ApiOk<RulePool>> {
    ctx.require_author()?;
    Ok(ApiOk::created(
        svc::pool(&s.store, &ctx.scope(), path_uuid(&id)?).await?,
    ))
}
