//! `/tests/{testId}/versions`: the published versions of a test (authors and reviewers).

use axum::extract::{Path, State};

use super::auth::{RequestContext, Role};
use super::envelope::{ApiOk, Envelope, ErrorEnvelope};
use super::extract::path_uuid;
use super::params::Tenancy;
use crate::error::AppResult;
use crate::http::AppState;
use crate::store::revisions::TestVersion;

api_routes!([versions]);

/// The test's published versions, newest first: what each scores (questions at their
/// revisions, or rules; grading type and marks), who published it and when. An attempt is
/// scored against the version it started on.
#[utoipa::path(get, path = "/tests/{testId}/versions", tag = "tests",
    params(Tenancy, ("testId" = String, Path, format = Uuid)),
    responses((status = 200, body = Envelope<Vec<TestVersion>>),
              (status = 400, body = ErrorEnvelope), (status = 404, body = ErrorEnvelope)))]
async fn versions(
    State(s): State<AppState>,
    ctx: RequestContext,
    Path(test_id): Path<String>,
) -> AppResult<ApiOk<Vec<TestVersion>>> {
    ctx.require_any_role(&[Role::Instructor, Role::Reviewer, Role::Admin])?;
    let test = path_uuid(&test_id)?;
    Ok(ApiOk::ok(
        crate::service::assessments::versions(&s.store, &ctx.scope(), test).await?,
    ))
}
