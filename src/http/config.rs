//! `/config`: the tenant's configuration (upstream's routes; see `service::tenant_config`).

use axum::extract::State;

use super::auth::{RequestContext, Role};
use super::envelope::{ApiOk, Envelope, ErrorEnvelope};
use super::params::Tenancy;
use crate::error::AppResult;
use crate::http::AppState;
use crate::service::tenant_config::{self as svc, ConfigOut};

api_routes!([get_config], [sync]);

/// The tenant's configuration, as last synced. Credentials in it are never shown.
#[utoipa::path(get, path = "/config", tag = "config", params(Tenancy),
    responses((status = 200, body = Envelope<ConfigOut>),
              (status = 404, body = ErrorEnvelope, description = "Never synced: `POST /config/sync` first")))]
async fn get_config(State(s): State<AppState>, ctx: RequestContext) -> AppResult<ApiOk<ConfigOut>> {
    Ok(ApiOk::ok(svc::get(&s.store, ctx.scope().tenant).await?))
}

/// Takes the tenant's configuration from the user service (`USER_SERVICE_URL`) and stores it;
/// when that is not set up, fails or gives nothing, stores the local defaults. Admins.
#[utoipa::path(post, path = "/config/sync", tag = "config", params(Tenancy),
    responses((status = 201, body = Envelope<ConfigOut>), (status = 403, body = ErrorEnvelope)))]
async fn sync(
    State(s): State<AppState>,
    ctx: RequestContext,
    headers: http::HeaderMap,
) -> AppResult<ApiOk<ConfigOut>> {
    ctx.require_any_role(&[Role::Admin])?;
    let auth = headers
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    let out = svc::sync(&s.store, &s.clock, &s.users, ctx.scope().tenant, auth).await?;
    Ok(ApiOk::created(out))
}
