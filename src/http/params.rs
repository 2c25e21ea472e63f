//! OpenAPI descriptions shared by the tenant-scoped routes.

use utoipa::IntoParams;

/// The tenancy headers (upstream's names; `tenant-id` and `x-tenant-id` styles are accepted
/// too). In JWT mode they are optional and must agree with the token.
#[derive(Debug, IntoParams)]
#[into_params(parameter_in = Header)]
#[allow(dead_code)]
pub struct Tenancy {
    /// Tenant id (UUID).
    #[param(rename = "tenantid", format = Uuid)]
    tenant_id: String,
    /// Organisation id (UUID).
    #[param(rename = "organisationid", format = Uuid)]
    organisation_id: String,
    /// Acting user id (UUID); required for writes.
    #[param(rename = "userid", format = Uuid)]
    user_id: Option<String>,
}
