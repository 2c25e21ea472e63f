//! Who is calling: the request context (tenant, organisation, user, roles).
//!
//! Two modes:
//! - **Header mode** (no JWT key configured): the upstream behaviour for deployments behind a
//!   gateway that already authenticated. Tenancy comes from `tenantid` / `tenant-id` /
//!   `x-tenant-id`, `organisationid` / `organisation-id` / `x-organisation-id`, and the
//!   optional user from `userid` / `user-id` / `x-user-id` / `?userId`. The caller holds every
//!   role. There is no `"system"` user: a write that needs a user and has none is a 400.
//! - **JWT mode** (`JWT_SECRET` for HS256, or `JWT_PUBLIC_KEY` for RS256/ES256): a valid
//!   `Authorization: Bearer` token is required (401 otherwise). Claims: `sub` (the user, a
//!   UUID), `tenantId` (required), `organisationId` (optional: when absent the token is valid
//!   for every organisation of its tenant), `roles` (array of `admin`, `instructor`,
//!   `reviewer`, `learner`), `exp` (required), `nbf`, `iss`, `aud` (checked when configured).
//!   Tenancy headers, when sent, must agree with the claims (403 otherwise).

use axum::extract::FromRequestParts;
use http::HeaderMap;
use http::request::Parts;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;

use crate::config::{Config, ConfigError};
use crate::domain::ids::{OrganisationId, Scope, TenantId, UserId, is_uuid};
use crate::error::AppError;
use crate::http::AppState;

/// A role carried by a JWT.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Admin,
    Instructor,
    Reviewer,
    Learner,
}

impl Role {
    pub const ALL: [Role; 4] = [Role::Admin, Role::Instructor, Role::Reviewer, Role::Learner];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Instructor => "instructor",
            Role::Reviewer => "reviewer",
            Role::Learner => "learner",
        }
    }

    pub fn parse(s: &str) -> Option<Role> {
        Role::ALL
            .into_iter()
            .find(|r| r.as_str().eq_ignore_ascii_case(s.trim()))
    }

    fn bit(self) -> u8 {
        1 << (self as u8)
    }
}

/// A set of roles.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Roles(u8);

impl FromIterator<Role> for Roles {
    fn from_iter<I: IntoIterator<Item = Role>>(roles: I) -> Roles {
        Roles(roles.into_iter().fold(0, |acc, r| acc | r.bit()))
    }
}

impl Roles {
    pub const NONE: Roles = Roles(0);
    pub const ALL: Roles = Roles(0b1111);

    pub fn contains(self, role: Role) -> bool {
        self.0 & role.bit() != 0
    }

    pub fn iter(self) -> impl Iterator<Item = Role> {
        Role::ALL.into_iter().filter(move |r| self.contains(*r))
    }
}

/// How the caller was identified.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthMode {
    Headers,
    Jwt,
}

/// The caller of a tenant-scoped route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestContext {
    pub tenant_id: TenantId,
    pub organisation_id: OrganisationId,
    pub user_id: Option<UserId>,
    pub roles: Roles,
    pub mode: AuthMode,
}

impl RequestContext {
    /// The tenant and organisation this request is confined to.
    pub fn scope(&self) -> Scope {
        Scope {
            tenant: self.tenant_id,
            organisation: self.organisation_id,
        }
    }

    /// The acting user, required by every write that records who did it.
    pub fn user(&self) -> Result<UserId, AppError> {
        self.user_id
            .ok_or_else(|| AppError::validation("userId header is required for this operation"))
    }

    /// The caller as the author of a write (400 without a user).
    pub fn actor(&self) -> Result<crate::service::Actor, AppError> {
        Ok(crate::service::Actor {
            scope: self.scope(),
            user: self.user()?,
        })
    }

    /// Authoring routes: instructors and admins only (403 otherwise).
    pub fn require_author(&self) -> Result<(), AppError> {
        self.require_any_role(&[Role::Instructor, Role::Admin])
    }

    pub fn has_role(&self, role: Role) -> bool {
        self.roles.contains(role)
    }

    /// Whether the caller holds one of `roles`.
    pub fn has_any_role(&self, roles: &[Role]) -> bool {
        roles.iter().any(|r| self.roles.contains(*r))
    }

    /// 403 unless the caller holds one of `roles`.
    pub fn require_any_role(&self, roles: &[Role]) -> Result<(), AppError> {
        if self.has_any_role(roles) {
            return Ok(());
        }
        let names: Vec<&str> = roles.iter().map(|r| r.as_str()).collect();
        Err(AppError::forbidden(format!(
            "This action requires one of the roles: {}",
            names.join(", ")
        )))
    }
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum RolesClaim {
    Many(Vec<String>),
    One(String),
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Claims {
    sub: String,
    #[serde(default, alias = "tenant_id")]
    tenant_id: Option<String>,
    #[serde(default, alias = "organisation_id", alias = "organizationId")]
    organisation_id: Option<String>,
    #[serde(default)]
    roles: Option<RolesClaim>,
}

#[derive(Clone)]
struct JwtVerifier {
    key: DecodingKey,
    validation: Validation,
}

/// Turns request headers into a [`RequestContext`].
#[derive(Clone)]
pub struct Authenticator {
    jwt: Option<JwtVerifier>,
}

impl std::fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authenticator")
            .field("mode", &self.mode())
            .finish()
    }
}

impl Authenticator {
    /// Header mode: trust the gateway.
    pub fn headers_only() -> Self {
        Authenticator { jwt: None }
    }

    pub fn from_config(cfg: &Config) -> Result<Self, ConfigError> {
        let secret = cfg.jwt_secret.as_ref().filter(|s| !s.is_empty());
        let public = cfg
            .jwt_public_key
            .as_deref()
            .filter(|s| !s.trim().is_empty());
        let (key, algorithm) = match (secret, public) {
            (None, None) => return Ok(Authenticator::headers_only()),
            (Some(_), Some(_)) => {
                return Err(ConfigError::new(
                    "JWT_SECRET",
                    "set either JWT_SECRET or JWT_PUBLIC_KEY, not both",
                ));
            }
            (Some(secret), None) => {
                let secret = secret.expose();
                if secret.len() < 32 {
                    return Err(ConfigError::new(
                        "JWT_SECRET",
                        "must be at least 32 bytes for HS256",
                    ));
                }
                (
                    DecodingKey::from_secret(secret.as_bytes()),
                    Algorithm::HS256,
                )
            }
            (None, Some(public)) => {
                let pem = if public.trim_start().starts_with("-----BEGIN") {
                    public.to_string()
                } else {
                    std::fs::read_to_string(public.trim()).map_err(|e| {
                        ConfigError::new(
                            "JWT_PUBLIC_KEY",
                            format!("not PEM text, and reading it as a file failed: {e}"),
                        )
                    })?
                };
                if let Ok(key) = DecodingKey::from_rsa_pem(pem.as_bytes()) {
                    (key, Algorithm::RS256)
                } else if let Ok(key) = DecodingKey::from_ec_pem(pem.as_bytes()) {
                    (key, Algorithm::ES256)
                } else {
                    return Err(ConfigError::new(
                        "JWT_PUBLIC_KEY",
                        "not an RSA or EC (P-256) public key in PEM form",
                    ));
                }
            }
        };
        let mut validation = Validation::new(algorithm);
        validation.leeway = cfg.jwt_leeway_secs;
        validation.validate_nbf = true;
        let issuer = cfg.jwt_issuer.as_deref().filter(|s| !s.is_empty());
        let audience = cfg.jwt_audience.as_deref().filter(|s| !s.is_empty());
        // A configured issuer or audience must be present in the token, not merely match
        // when present.
        let mut required = vec!["exp", "sub"];
        required.extend(issuer.map(|_| "iss"));
        required.extend(audience.map(|_| "aud"));
        validation.set_required_spec_claims(&required);
        match issuer {
            Some(iss) => validation.set_issuer(&[iss]),
            None => validation.iss = None,
        }
        match audience {
            Some(aud) => validation.set_audience(&[aud]),
            None => validation.validate_aud = false,
        }
        Ok(Authenticator {
            jwt: Some(JwtVerifier { key, validation }),
        })
    }

    pub fn mode(&self) -> AuthMode {
        if self.jwt.is_some() {
            AuthMode::Jwt
        } else {
            AuthMode::Headers
        }
    }

    /// The request context of a request with these headers and query string.
    pub fn authenticate(
        &self,
        headers: &HeaderMap,
        query: Option<&str>,
    ) -> Result<RequestContext, AppError> {
        match &self.jwt {
            None => from_headers(headers, query),
            Some(jwt) => from_token(jwt, headers, query),
        }
    }
}

/// The first non-empty header among `names` (an empty one falls through to the next
/// spelling, as upstream's `a || b` does).
fn header<'a>(headers: &'a HeaderMap, names: &[&str]) -> Option<&'a str> {
    names
        .iter()
        .filter_map(|n| headers.get(*n))
        .map(|v| v.to_str().unwrap_or("\u{fffd}").trim())
        .find(|v| !v.is_empty())
}

fn tenant_header(h: &HeaderMap) -> Option<&str> {
    header(h, &["tenantid", "tenant-id", "x-tenant-id"])
}

fn organisation_header(h: &HeaderMap) -> Option<&str> {
    header(
        h,
        &["organisationid", "organisation-id", "x-organisation-id"],
    )
}

/// The user named by the headers or the query. Upstream's placeholder `system` means "no
/// user" (reads work; writes that need a user are refused).
fn user_header<'a>(h: &'a HeaderMap, query: Option<&'a str>) -> Option<String> {
    let found = match header(h, &["userid", "user-id", "x-user-id"]) {
        Some(u) => Some(u.to_string()),
        None => query.and_then(|q| {
            url::form_urlencoded::parse(q.as_bytes())
                .find(|(k, v)| (k == "userId" || k == "userid") && !v.trim().is_empty())
                .map(|(_, v)| v.trim().to_string())
        }),
    };
    found.filter(|u| u != "system")
}

/// Upstream's checks, in upstream's order and words.
fn from_headers(h: &HeaderMap, query: Option<&str>) -> Result<RequestContext, AppError> {
    let tenant = tenant_header(h).filter(|s| !s.is_empty());
    let organisation = organisation_header(h).filter(|s| !s.is_empty());
    let Some(tenant) = tenant else {
        return Err(AppError::validation("tenantId header is required"));
    };
    let Some(organisation) = organisation else {
        return Err(AppError::validation("organisationId header is required"));
    };
    let tenant_id = TenantId::parse(tenant)
        .ok_or_else(|| AppError::validation("tenantId must be a valid UUID format"))?;
    let organisation_id = OrganisationId::parse(organisation)
        .ok_or_else(|| AppError::validation("organisationId must be a valid UUID format"))?;
    let user_id = match user_header(h, query).filter(|s| !s.is_empty()) {
        None => None,
        Some(u) => Some(
            UserId::parse(&u)
                .ok_or_else(|| AppError::validation("userId must be a valid UUID format"))?,
        ),
    };
    Ok(RequestContext {
        tenant_id,
        organisation_id,
        user_id,
        roles: Roles::ALL,
        mode: AuthMode::Headers,
    })
}

fn bearer(h: &HeaderMap) -> Option<&str> {
    let value = h.get(http::header::AUTHORIZATION)?.to_str().ok()?.trim();
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

fn token_error(kind: &ErrorKind) -> AppError {
    let why = match kind {
        ErrorKind::ExpiredSignature => "the token has expired".to_string(),
        ErrorKind::ImmatureSignature => "the token is not valid yet".to_string(),
        ErrorKind::InvalidSignature => "the signature does not match".to_string(),
        ErrorKind::InvalidAlgorithm => "the signing algorithm is not accepted".to_string(),
        ErrorKind::InvalidIssuer => "the issuer is not accepted".to_string(),
        ErrorKind::InvalidAudience => "the audience is not accepted".to_string(),
        ErrorKind::MissingRequiredClaim(c) => format!("the {c} claim is missing"),
        ErrorKind::Json(_) => "the claims are not of the expected form".to_string(),
        _ => "the token is malformed".to_string(),
    };
    AppError::unauthorized(format!("Invalid token: {why}"))
}

fn from_token(
    jwt: &JwtVerifier,
    h: &HeaderMap,
    query: Option<&str>,
) -> Result<RequestContext, AppError> {
    let token = bearer(h).ok_or_else(|| {
        AppError::unauthorized("Authorization header with a Bearer token is required")
    })?;
    let claims = jsonwebtoken::decode::<Claims>(token, &jwt.key, &jwt.validation)
        .map_err(|e| token_error(e.kind()))?
        .claims;
    let user_id = UserId::parse(&claims.sub)
        .ok_or_else(|| AppError::unauthorized("Invalid token: sub must be a UUID"))?;

    let claim_tenant = claims
        .tenant_id
        .as_deref()
        .ok_or_else(|| AppError::unauthorized("Invalid token: it carries no tenantId claim"))?;
    // A token without its required claims is not a valid token (401), not a refusal (403).
    let claim_tenant = TenantId::parse(claim_tenant)
        .ok_or_else(|| AppError::unauthorized("Invalid token: tenantId must be a UUID"))?;
    let tenant_id = match tenant_header(h).filter(|s| !s.is_empty()) {
        None => claim_tenant,
        Some(t) => {
            let t = TenantId::parse(t)
                .ok_or_else(|| AppError::validation("tenantId must be a valid UUID format"))?;
            if t != claim_tenant {
                return Err(AppError::forbidden(
                    "tenantId header does not match the token",
                ));
            }
            t
        }
    };

    let claim_org = match claims.organisation_id.as_deref() {
        None => None,
        Some(o) => Some(OrganisationId::parse(o).ok_or_else(|| {
            AppError::unauthorized("Invalid token: organisationId must be a UUID")
        })?),
    };
    let header_org =
        match organisation_header(h).filter(|s| !s.is_empty()) {
            None => None,
            Some(o) => Some(OrganisationId::parse(o).ok_or_else(|| {
                AppError::validation("organisationId must be a valid UUID format")
            })?),
        };
    let organisation_id = match (claim_org, header_org) {
        (Some(c), Some(hd)) if c != hd => {
            return Err(AppError::forbidden(
                "organisationId header does not match the token",
            ));
        }
        (Some(c), _) => c,
        (None, Some(hd)) => hd,
        (None, None) => {
            return Err(AppError::validation("organisationId header is required"));
        }
    };

    if let Some(u) = user_header(h, query).filter(|s| !s.is_empty()) {
        let u = UserId::parse(&u)
            .ok_or_else(|| AppError::validation("userId must be a valid UUID format"))?;
        if u != user_id {
            return Err(AppError::forbidden(
                "userId header does not match the token",
            ));
        }
    }

    let roles = match claims.roles {
        None => Roles::NONE,
        Some(RolesClaim::One(r)) => Role::parse(&r).into_iter().collect(),
        Some(RolesClaim::Many(rs)) => rs.iter().filter_map(|r| Role::parse(r)).collect(),
    };
    Ok(RequestContext {
        tenant_id,
        organisation_id,
        user_id: Some(user_id),
        roles,
        mode: AuthMode::Jwt,
    })
}

/// Who may review attempts and read any learner's results.
pub const REVIEWERS: [Role; 3] = [Role::Reviewer, Role::Instructor, Role::Admin];

/// The learner themself, or a reviewer (403 for anyone else).
pub fn require_self_or_reviewer(ctx: &RequestContext, learner: uuid::Uuid) -> Result<(), AppError> {
    if ctx.user_id.map(|u| u.as_uuid()) != Some(learner) {
        ctx.require_any_role(&REVIEWERS)?;
    }
    Ok(())
}

impl FromRequestParts<AppState> for RequestContext {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, AppError> {
        let ctx = state.auth.authenticate(&parts.headers, parts.uri.query())?;
        let tenant = ctx.scope().tenant.as_uuid();
        if let Err(refused) = state.limits.tenant(tenant, body_cost(parts, state)) {
            return Err(state.limits.held(refused).await);
        }
        Ok(ctx)
    }
}

/// What a request's body counts against its tenant's allowance of bytes: its declared length,
/// or, for a body of undeclared length, the most it may be.
fn body_cost(parts: &Parts, state: &AppState) -> u64 {
    let headers = &parts.headers;
    match headers
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok())
    {
        Some(n) => n,
        None if headers.contains_key(http::header::TRANSFER_ENCODING) => {
            state.config.body_limit_bytes as u64
        }
        None => 0,
    }
}

/// Whether `s` is a UUID as the tenancy checks accept it (re-exported for route validation).
pub fn valid_uuid(s: &str) -> bool {
    is_uuid(s)
}

#[cfg(test)]
mod tests;
