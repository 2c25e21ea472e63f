//! `/sections`: sections of tests (authors).

use axum::extract::{Path, State};
use serde::Serialize;
use utoipa::ToSchema;

use super::assessments::HardQuery;
use super::auth::RequestContext;
use super::envelope::{ApiOk, Envelope, ErrorEnvelope};
use super::envelope::{MessageOut, msg};
use super::extract::{ValidJson, ValidQuery, path_uuid};
use super::params::Tenancy;
use crate::error::AppResult;
use crate::http::AppState;
use crate::service::sections::{self as svc, SectionIn, SectionOut, SectionPatch};

api_routes!([create, list], [of_test], [get_one, update, delete]);

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SectionIdOut {
    #[schema(value_type = String, format = Uuid)]
    pub section_id: uuid::Uuid,
}

/// Create a section in a test that is not published.
#[utoipa::path(post, path = "/sections", tag = "sections", params(Tenancy), request_body = SectionIn,
    responses((status = 201, body = Envelope<SectionIdOut>), (status = 400, body = ErrorEnvelope),
              (status = 404, body = ErrorEnvelope), (status = 422, body = ErrorEnvelope)))]
async fn create(
    State(s): State<AppState>,
    ctx: RequestContext,
    ValidJson(body): ValidJson<SectionIn>,
) -> AppResult<ApiOk<SectionIdOut>> {
    ctx.require_author()?;
    let section_id = svc::create(&s.store, &s.clock, &ctx.actor()?, body).await?;
    Ok(ApiOk::created(SectionIdOut { section_id }))
}

/// Every section, with its question links.
#[utoipa::path(get, path = "/sections", tag = "sections", params(Tenancy),
    responses((status = 200, body = Envelope<Vec<SectionOut>>)))]
async fn list(State(s): State<AppState>, ctx: RequestContext) -> AppResult<ApiOk<Vec<SectionOut>>> {
    ctx.require_author()?;
    Ok(ApiOk::ok(svc::list(&s.store, &ctx.scope()).await?))
}

/// The sections of a test.
#[utoipa::path(get, path = "/sections/test/{testId}", tag = "sections", params(Tenancy, ("testId" = String, Path, format = Uuid)),
    responses((status = 200, body = Envelope<Vec<SectionOut>>), (status = 400, body = ErrorEnvelope)))]
async fn of_test(
    State(s): State<AppState>,
    ctx: RequestContext,
    Path(test_id): Path<String>,
) -> AppResult<ApiOk<Vec<SectionOut>>> {
    ctx.require_author()?;
    Ok(ApiOk::ok(
        svc::of_test(&s.store, &ctx.scope(), path_uuid(&test_id)?).await?,
    ))
}

/// A section with its question links.
#[utoipa::path(get, path = "/sections/{id}", tag = "sections", params(Tenancy, ("id" = String, Path, format = Uuid)),
    responses((status = 200, body = Envelope<SectionOut>), (status = 404, body = ErrorEnvelope)))]
async fn get_one(
    State(s): State<AppState>,
    ctx: RequestContext,
    Path(id): Path<String>,
) -> AppResult<ApiOk<SectionOut>> {
    ctx.require_author()?;
    Ok(ApiOk::ok(
        svc::get(&s.store, &ctx.scope(), path_uuid(&id)?).await?,
    ))
}

/// Change the fields sent.
#[utoipa::path(patch, path = "/sections/{id}", tag = "sections", params(Tenancy, ("id" = String, Path, format = Uuid)),
    request_body = SectionPatch,
    responses((status = 200, body = Envelope<SectionIdOut>), (status = 400, body = ErrorEnvelope),
              (status = 404, body = ErrorEnvelope), (status = 422, body = ErrorEnvelope)))]
async fn update(
    State(s): State<AppState>,
    ctx: RequestContext,
    Path(id): Path<String>,
    ValidJson(body): ValidJson<SectionPatch>,
) -> AppResult<ApiOk<SectionIdOut>> {
    ctx.require_author()?;
    let section_id = svc::update(&s.store, &s.clock, &ctx.actor()?, path_uuid(&id)?, body).await?;
    Ok(ApiOk::ok(SectionIdOut { section_id }))
}

/// Archive a section (or delete it with `hard=true`) and remove its question links.
#[utoipa::path(delete, path = "/sections/{id}", tag = "sections", params(Tenancy, ("id" = String, Path, format = Uuid), HardQuery),
    responses((status = 200, body = Envelope<MessageOut>), (status = 400, body = ErrorEnvelope),
              (status = 404, body = ErrorEnvelope), (status = 422, body = ErrorEnvelope)))]
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
    Ok(ApiOk::ok(msg("Section deleted successfully")))
}
