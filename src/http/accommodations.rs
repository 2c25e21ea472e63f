//! `/tests/{testId}/accommodations`: per learner extra time, extra attempts and a later end
//! date (authors).

use axum::extract::{Path, State};

use super::auth::RequestContext;
use super::envelope::{ApiOk, Envelope, ErrorEnvelope, MessageOut, msg};
use super::extract::{ValidJson, path_uuid};
use super::params::Tenancy;
use crate::error::AppResult;
use crate::http::AppState;
use crate::service::accommodations::{self as svc, AccommodationIn};
use crate::store::accommodations::AccommodationRow;

api_routes!([list], [get_one, put, delete]);

/// The test's accommodations, by learner.
#[utoipa::path(get, path = "/tests/{testId}/accommodations", tag = "accommodations",
    params(Tenancy, ("testId" = String, Path, format = Uuid)),
    responses((status = 200, body = Envelope<Vec<AccommodationRow>>), (status = 400, body = ErrorEnvelope),
              (status = 404, body = ErrorEnvelope)))]
async fn list(
    State(s): State<AppState>,
    ctx: RequestContext,
    Path(test_id): Path<String>,
) -> AppResult<ApiOk<Vec<AccommodationRow>>> {
    ctx.require_author()?;
    let test = path_uuid(&test_id)?;
    Ok(ApiOk::ok(svc::list(&s.store, &ctx.scope(), test).await?))
}

/// A learner's accommodation at the test.
#[utoipa::path(get, path = "/tests/{testId}/accommodations/{userId}", tag = "accommodations",
    params(Tenancy, ("testId" = String, Path, format = Uuid), ("userId" = String, Path, format = Uuid)),
    responses((status = 200, body = Envelope<AccommodationRow>), (status = 400, body = ErrorEnvelope),
              (status = 404, body = ErrorEnvelope)))]
async fn get_one(
    State(s): State<AppState>,
    ctx: RequestContext,
    Path((test_id, user_id)): Path<(String, String)>,
) -> AppResult<ApiOk<AccommodationRow>> {
    ctx.require_author()?;
    let (test, user) = (path_uuid(&test_id)?, path_uuid(&user_id)?);
    Ok(ApiOk::ok(
        svc::get(&s.store, &ctx.scope(), test, user).await?,
    ))
}

/// Set (or replace) a learner's accommodation: extra time (`extraTimeMinutes` or
/// `timeMultiplier`), `extraAttempts`, a later `endDate`. The learner's attempts in progress
/// get the deadline it gives, counted from their start.
#[utoipa::path(put, path = "/tests/{testId}/accommodations/{userId}", tag = "accommodations",
    params(Tenancy, ("testId" = String, Path, format = Uuid), ("userId" = String, Path, format = Uuid)),
    request_body = AccommodationIn,
    responses((status = 200, body = Envelope<AccommodationRow>), (status = 400, body = ErrorEnvelope),
              (status = 404, body = ErrorEnvelope)))]
async fn put(
    State(s): State<AppState>,
    ctx: RequestContext,
    Path((test_id, user_id)): Path<(String, String)>,
    ValidJson(body): ValidJson<AccommodationIn>,
) -> AppResult<ApiOk<AccommodationRow>> {
    ctx.require_author()?;
    let (test, user) = (path_uuid(&test_id)?, path_uuid(&user_id)?);
    let row = svc::put(&s.store, &s.clock, &ctx.actor()?, test, user, body).await?;
    Ok(ApiOk::ok(row))
}

/// Remove a learner's accommodation (attempts in progress keep their deadline).
#[utoipa::path(delete, path = "/tests/{testId}/accommodations/{userId}", tag = "accommodations",
    params(Tenancy, ("testId" = String, Path, format = Uuid), ("userId" = String, Path, format = Uuid)),
    responses((status = 200, body = Envelope<MessageOut>), (status = 400, body = ErrorEnvelope),
              (status = 404, body = ErrorEnvelope)))]
async fn delete(
    State(s): State<AppState>,
    ctx: RequestContext,
    Path((test_id, user_id)): Path<(String, String)>,
) -> AppResult<ApiOk<MessageOut>> {
    ctx.require_author()?;
    let (test, user) = (path_uuid(&test_id)?, path_uuid(&user_id)?);
    svc::delete(&s.store, &s.clock, &ctx.actor()?, test, user).await?;
    Ok(ApiOk::ok(msg("Accommodation deleted successfully")))
}
