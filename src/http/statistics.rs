//! `/tests/{testId}/statistics`: item statistics (authors and reviewers).

use axum::extract::{Path, State};
use serde::Deserialize;
use utoipa::IntoParams;

use super::auth::{RequestContext, Role};
use super::envelope::{ApiOk, Envelope, ErrorEnvelope};
use super::extract::{ValidQuery, path_uuid};
use super::params::Tenancy;
use crate::error::AppResult;
use crate::http::AppState;

api_routes!([statistics]);

/// `?version=` of the statistics.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct VersionQuery {
    /// The published version whose attempts are counted (default: the test's latest).
    #[serde(default, deserialize_with = "crate::service::de::opt_num")]
    pub version: Option<i32>,
}

/// Item statistics over the submitted attempts of one published version of the test (its
/// latest unless `version` names another): mean, median, standard deviation, Cronbach's alpha;
/// per question facility, discrimination and the share of attempts choosing each option.
#[utoipa::path(get, path = "/tests/{testId}/statistics", tag = "tests",
    params(Tenancy, ("testId" = String, Path, format = Uuid), VersionQuery),
    responses((status = 200, body = Envelope<crate::service::statistics::TestStatistics>),
              (status = 400, body = ErrorEnvelope), (status = 404, body = ErrorEnvelope)))]
async fn statistics(
    State(s): State<AppState>,
    ctx: RequestContext,
    Path(test_id): Path<String>,
    ValidQuery(q): ValidQuery<VersionQuery>,
) -> AppResult<ApiOk<crate::service::statistics::TestStatistics>> {
    ctx.require_any_role(&[Role::Instructor, Role::Reviewer, Role::Admin])?;
    let test = path_uuid(&test_id)?;
    Ok(ApiOk::ok(
        crate::service::statistics::of_test(&s.store, &ctx.scope(), test, q.version).await?,
    ))
}
