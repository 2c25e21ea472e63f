//! `/tests/{testId}/statistics`: item statistics (authors and reviewers).

use axum::extract::{Path, State};

use super::auth::{RequestContext, Role};
use super::envelope::{ApiOk, Envelope, ErrorEnvelope};
use super::extract::path_uuid;
use super::params::Tenancy;
use crate::error::AppResult;
use crate::http::AppState;

api_routes!([statistics]);

/// Item statistics over the test's submitted attempts: mean, median, standard deviation,
/// Cronbach's alpha; per question facility, discrimination and the share of attempts choosing
/// each option.
#[utoipa::path(get, path = "/tests/{testId}/statistics", tag = "tests",
    params(Tenancy, ("testId" = String, Path, format = Uuid)),
    responses((status = 200, body = Envelope<crate::service::statistics::TestStatistics>),
              (status = 400, body = ErrorEnvelope), (status = 404, body = ErrorEnvelope)))]
async fn statistics(
    State(s): State<AppState>,
    ctx: RequestContext,
    Path(test_id): Path<String>,
) -> AppResult<ApiOk<crate::service::statistics::TestStatistics>> {
    ctx.require_any_role(&[Role::Instructor, Role::Reviewer, Role::Admin])?;
    let test = path_uuid(&test_id)?;
    Ok(ApiOk::ok(
        crate::service::statistics::of_test(&s.store, &ctx.scope(), test).await?,
    ))
}
