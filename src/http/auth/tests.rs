//! Unit tests of authentication: header mode, JWT claims and roles.

use super::*;
use http::HeaderValue;

const T: &str = "0f3d1c9e-6a1b-4b2c-9d3e-1f2a3b4c5d6e";
const O: &str = "1f3d1c9e-6a1b-4b2c-9d3e-1f2a3b4c5d6e";
const U: &str = "2f3d1c9e-6a1b-4b2c-9d3e-1f2a3b4c5d6e";

fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
    let mut h = HeaderMap::new();
    for (k, v) in pairs {
        h.insert(*k, HeaderValue::from_str(v).unwrap());
    }
    h
}

fn msg(r: Result<RequestContext, AppError>) -> String {
    r.unwrap_err().to_string()
}

#[test]
fn header_checks_in_upstream_order() {
    let a = Authenticator::headers_only();
    assert_eq!(
        msg(a.authenticate(&headers(&[]), None)),
        "tenantId header is required"
    );
    assert_eq!(
        msg(a.authenticate(&headers(&[("tenantid", "x")]), None)),
        "organisationId header is required"
    );
    assert_eq!(
        msg(a.authenticate(
            &headers(&[("tenantid", "x"), ("organisationid", "y")]),
            None
        )),
        "tenantId must be a valid UUID format"
    );
    assert_eq!(
        msg(a.authenticate(&headers(&[("tenantid", T), ("organisationid", "y")]), None)),
        "organisationId must be a valid UUID format"
    );
    assert_eq!(
        msg(a.authenticate(
            &headers(&[("tenantid", T), ("organisationid", O), ("userid", "bob")]),
            None
        )),
        "userId must be a valid UUID format"
    );
    let ctx = a
        .authenticate(
            &headers(&[("tenantid", T), ("organisationid", O), ("userid", "system")]),
            None,
        )
        .unwrap();
    assert_eq!(ctx.user_id, None, "upstream's placeholder means no user");
    let ctx = a
        .authenticate(
            &headers(&[("tenantid", ""), ("tenant-id", T), ("organisationid", O)]),
            None,
        )
        .unwrap();
    assert_eq!(
        ctx.tenant_id.to_string(),
        T,
        "an empty header falls through"
    );
}

#[test]
fn accepts_every_header_spelling_and_query_user() {
    let a = Authenticator::headers_only();
    for (t, o, u) in [
        ("tenantid", "organisationid", "userid"),
        ("tenant-id", "organisation-id", "user-id"),
        ("x-tenant-id", "x-organisation-id", "x-user-id"),
    ] {
        let ctx = a
            .authenticate(&headers(&[(t, T), (o, O), (u, U)]), None)
            .unwrap();
        assert_eq!(ctx.tenant_id.to_string(), T);
        assert_eq!(ctx.organisation_id.to_string(), O);
        assert_eq!(ctx.user_id.unwrap().to_string(), U);
        assert_eq!(ctx.roles, Roles::ALL);
    }
    let ctx = a
        .authenticate(
            &headers(&[("tenantid", T), ("organisationid", O)]),
            Some(&format!("limit=1&userId={U}")),
        )
        .unwrap();
    assert_eq!(ctx.user_id.unwrap().to_string(), U);
}

#[test]
fn no_user_means_none_and_writes_are_refused() {
    let a = Authenticator::headers_only();
    let ctx = a
        .authenticate(&headers(&[("tenantid", T), ("organisationid", O)]), None)
        .unwrap();
    assert_eq!(ctx.user_id, None);
    let err = ctx.user().unwrap_err();
    assert!(matches!(err, AppError::Validation(_)));
}

#[test]
fn roles_parse_and_check() {
    let roles: Roles = [Role::Learner].into_iter().collect();
    let ctx = RequestContext {
        tenant_id: TenantId::parse(T).unwrap(),
        organisation_id: OrganisationId::parse(O).unwrap(),
        user_id: None,
        roles,
        mode: AuthMode::Jwt,
    };
    assert!(ctx.require_any_role(&[Role::Learner]).is_ok());
    let err = ctx
        .require_any_role(&[Role::Instructor, Role::Admin])
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "This action requires one of the roles: instructor, admin"
    );
    assert_eq!(Role::parse(" Admin "), Some(Role::Admin));
    assert_eq!(Role::parse("root"), None);
}

#[test]
fn debug_shows_no_secret() {
    let secret = "jwt-secret-that-is-long-enough-for-hs256";
    let cfg = Config {
        jwt_secret: Some(secret.into()),
        ..Config::default()
    };
    let auth = Authenticator::from_config(&cfg).unwrap();
    let shown = format!("{auth:?} {auth:#?}");
    assert!(!shown.contains(secret), "{shown}");
    assert!(shown.contains("Jwt"), "{shown}");
}

#[test]
fn short_secret_is_a_config_error() {
    let cfg = Config {
        jwt_secret: Some("short".into()),
        ..Config::default()
    };
    assert_eq!(
        Authenticator::from_config(&cfg).unwrap_err().var,
        "JWT_SECRET"
    );
}
