//! JWT mode: HS256, RS256 and ES256 tokens; expiry, signature, claims agreeing with headers.

use assessment_service::config::Config;
use http::Method;
use jsonwebtoken::{Algorithm, EncodingKey, Header, encode};
use serde_json::{Value, json};

use crate::harness::*;

const SECRET: &str = "a-test-secret-that-is-long-enough-for-hs256";
const CTX: &str = "/assessment/v1/probe/context";
const OTHER_ORG: &str = "4d5e6f7a-8b9c-4d4e-bf5a-6b7c8d9e0f1a";

fn fixture(name: &str) -> String {
    std::fs::read_to_string(format!(
        "{}/tests/fixtures/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

fn claims(extra: Value) -> Value {
    let mut c = json!({
        "sub": USER,
        "tenantId": TENANT,
        "organisationId": ORG,
        "roles": ["instructor"],
        "exp": now() + 600,
    });
    for (k, v) in extra.as_object().unwrap() {
        if v.is_null() {
            c.as_object_mut().unwrap().remove(k);
        } else {
            c[k] = v.clone();
        }
    }
    c
}

fn hs256(claims: &Value, secret: &str) -> String {
    encode(
        &Header::new(Algorithm::HS256),
        claims,
        &EncodingKey::from_secret(secret.as_bytes()),
    )
    .unwrap()
}

async fn jwt_app() -> TestApp {
    TestApp::with_config(Config {
        jwt_secret: Some(SECRET.into()),
        ..Config::default()
    })
    .await
}

async fn call(app: &TestApp, token: Option<&str>, headers: &[(&str, &str)]) -> TestResponse {
    let bearer = token.map(|t| format!("Bearer {t}"));
    let mut all: Vec<(&str, &str)> = headers.to_vec();
    if let Some(b) = bearer.as_deref() {
        all.push(("authorization", b));
    }
    app.call_with(Method::GET, CTX, None, &all).await
}

fn tenant_headers() -> Vec<(&'static str, &'static str)> {
    vec![("tenantid", TENANT), ("organisationid", ORG)]
}

#[tokio::test]
async fn the_running_state_never_prints_the_secret() {
    let app = jwt_app().await;
    let shown = format!("{:?} {:?}", app.state.config, app.state.auth);
    assert!(!shown.contains(SECRET), "{shown}");
    assert!(shown.contains("[redacted]"), "{shown}");
}

#[tokio::test]
async fn a_valid_token_identifies_user_tenant_and_roles() {
    let app = jwt_app().await;
    let token = hs256(
        &claims(json!({"roles": ["instructor", "reviewer", "bogus"]})),
        SECRET,
    );
    let r = call(&app, Some(&token), &tenant_headers()).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let result = &r.json()["result"];
    assert_eq!(result["userId"], USER);
    assert_eq!(result["tenantId"], TENANT);
    assert_eq!(result["organisationId"], ORG);
    assert_eq!(result["roles"], json!(["instructor", "reviewer"]));

    // Claims stand in for absent headers.
    let r = call(&app, Some(&token), &[]).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["result"]["tenantId"], TENANT);
}

#[tokio::test]
async fn a_missing_or_malformed_token_is_401() {
    let app = jwt_app().await;
    let r = call(&app, None, &tenancy()).await;
    assert_failure(
        &r,
        401,
        "api.probe.get",
        "UNAUTHORIZED",
        "UNAUTHORIZED",
        "Authorization header with a Bearer token is required",
    );
    let r = call(&app, Some("not.a.token"), &tenant_headers()).await;
    assert_eq!(r.status, 401);
    assert_eq!(r.errmsg(), "Invalid token: the token is malformed");
}

#[tokio::test]
async fn an_expired_token_is_401() {
    let app = jwt_app().await;
    let token = hs256(&claims(json!({"exp": now() - 3600})), SECRET);
    let r = call(&app, Some(&token), &tenant_headers()).await;
    assert_failure(
        &r,
        401,
        "api.probe.get",
        "UNAUTHORIZED",
        "UNAUTHORIZED",
        "Invalid token: the token has expired",
    );
}

#[tokio::test]
async fn a_token_without_exp_is_401() {
    let app = jwt_app().await;
    let token = hs256(&claims(json!({"exp": null})), SECRET);
    let r = call(&app, Some(&token), &tenant_headers()).await;
    assert_eq!(r.status, 401);
    assert_eq!(r.errmsg(), "Invalid token: the exp claim is missing");
}

#[tokio::test]
async fn a_wrong_signature_is_401() {
    let app = jwt_app().await;
    let token = hs256(
        &claims(json!({})),
        "another-secret-that-is-also-long-enough!!",
    );
    let r = call(&app, Some(&token), &tenant_headers()).await;
    assert_eq!(r.status, 401);
    assert_eq!(r.errmsg(), "Invalid token: the signature does not match");
}

#[tokio::test]
async fn an_unexpected_algorithm_is_401() {
    let app = jwt_app().await;
    let key = EncodingKey::from_secret(SECRET.as_bytes());
    let token = encode(&Header::new(Algorithm::HS512), &claims(json!({})), &key).unwrap();
    let r = call(&app, Some(&token), &tenant_headers()).await;
    assert_eq!(r.status, 401);
}

#[tokio::test]
async fn tenant_or_organisation_mismatch_is_403() {
    let app = jwt_app().await;
    let token = hs256(&claims(json!({})), SECRET);
    let r = call(
        &app,
        Some(&token),
        &[("tenantid", OTHER_TENANT), ("organisationid", ORG)],
    )
    .await;
    assert_failure(
        &r,
        403,
        "api.probe.get",
        "FORBIDDEN",
        "FORBIDDEN",
        "tenantId header does not match the token",
    );
    let r = call(
        &app,
        Some(&token),
        &[("tenantid", TENANT), ("organisationid", OTHER_ORG)],
    )
    .await;
    assert_eq!(r.status, 403);
    assert_eq!(r.errmsg(), "organisationId header does not match the token");

    let r = call(
        &app,
        Some(&token),
        &[
            ("tenantid", TENANT),
            ("organisationid", ORG),
            ("userid", OTHER_TENANT),
        ],
    )
    .await;
    assert_eq!(r.status, 403);
    assert_eq!(r.errmsg(), "userId header does not match the token");
}

#[tokio::test]
async fn a_token_without_tenant_is_401_and_without_org_takes_the_header() {
    let app = jwt_app().await;
    let token = hs256(&claims(json!({"tenantId": null})), SECRET);
    let r = call(&app, Some(&token), &tenant_headers()).await;
    assert_eq!(r.status, 401);
    assert_eq!(r.errmsg(), "Invalid token: it carries no tenantId claim");
    let token = hs256(&claims(json!({"tenantId": "not-a-uuid"})), SECRET);
    let r = call(&app, Some(&token), &tenant_headers()).await;
    assert_eq!(r.status, 401);
    let token = hs256(&claims(json!({"organisationId": "not-a-uuid"})), SECRET);
    let r = call(&app, Some(&token), &tenant_headers()).await;
    assert_eq!(r.status, 401);

    let token = hs256(&claims(json!({"organisationId": null})), SECRET);
    let r = call(
        &app,
        Some(&token),
        &[("tenantid", TENANT), ("organisationid", OTHER_ORG)],
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["result"]["organisationId"], OTHER_ORG);
    let r = call(&app, Some(&token), &[("tenantid", TENANT)]).await;
    assert_eq!(r.status, 400);
    assert_eq!(r.errmsg(), "organisationId header is required");
}

#[tokio::test]
async fn a_non_uuid_subject_is_401() {
    let app = jwt_app().await;
    let token = hs256(&claims(json!({"sub": "system"})), SECRET);
    let r = call(&app, Some(&token), &tenant_headers()).await;
    assert_eq!(r.status, 401);
    assert_eq!(r.errmsg(), "Invalid token: sub must be a UUID");
}

#[tokio::test]
async fn roles_are_enforced_by_handlers() {
    let app = jwt_app().await;
    let learner = hs256(&claims(json!({"roles": ["learner"]})), SECRET);
    let mut headers = tenant_headers();
    let bearer = format!("Bearer {learner}");
    headers.push(("authorization", &bearer));
    let r = app
        .call_with(
            Method::GET,
            "/assessment/v1/probe/authoring",
            None,
            &headers,
        )
        .await;
    assert_failure(
        &r,
        403,
        "api.probe.get",
        "FORBIDDEN",
        "FORBIDDEN",
        "This action requires one of the roles: instructor, admin",
    );
    let instructor = hs256(&claims(json!({})), SECRET);
    let bearer = format!("Bearer {instructor}");
    let headers = [("authorization", bearer.as_str())];
    let r = app
        .call_with(
            Method::GET,
            "/assessment/v1/probe/authoring",
            None,
            &headers,
        )
        .await;
    assert_eq!(r.status, 200);
}

#[tokio::test]
async fn rs256_and_es256_public_keys_verify_tokens() {
    for (public, private, alg) in [
        ("rsa-public.pem", "rsa-private.pem", Algorithm::RS256),
        ("ec-public.pem", "ec-private.pem", Algorithm::ES256),
    ] {
        let app = TestApp::with_config(Config {
            jwt_public_key: Some(fixture(public)),
            ..Config::default()
        })
        .await;
        let pem = fixture(private);
        let key = match alg {
            Algorithm::RS256 => EncodingKey::from_rsa_pem(pem.as_bytes()).unwrap(),
            _ => EncodingKey::from_ec_pem(pem.as_bytes()).unwrap(),
        };
        let token = encode(&Header::new(alg), &claims(json!({})), &key).unwrap();
        let r = call(&app, Some(&token), &tenant_headers()).await;
        assert_eq!(r.status, 200, "{alg:?}: {}", r.text());

        // An HS256 token signed with the public key text must not pass (algorithm confusion).
        let forged = hs256(&claims(json!({})), &fixture(public));
        let r = call(&app, Some(&forged), &tenant_headers()).await;
        assert_eq!(r.status, 401, "{alg:?} forged");
    }
}

#[tokio::test]
async fn issuer_and_audience_are_checked_when_configured() {
    let app = TestApp::with_config(Config {
        jwt_secret: Some(SECRET.into()),
        jwt_issuer: Some("https://id.example".into()),
        jwt_audience: Some("assessment".into()),
        ..Config::default()
    })
    .await;
    let good = hs256(
        &claims(json!({"iss": "https://id.example", "aud": "assessment"})),
        SECRET,
    );
    assert_eq!(call(&app, Some(&good), &tenant_headers()).await.status, 200);
    let bad = hs256(
        &claims(json!({"iss": "https://evil.example", "aud": "assessment"})),
        SECRET,
    );
    let r = call(&app, Some(&bad), &tenant_headers()).await;
    assert_eq!(r.status, 401);
    assert_eq!(r.errmsg(), "Invalid token: the issuer is not accepted");
    // A configured issuer and audience must be present, not merely right when present.
    let bare = hs256(&claims(json!({})), SECRET);
    let r = call(&app, Some(&bare), &tenant_headers()).await;
    assert_eq!(r.status, 401);
    assert!(r.errmsg().contains("claim is missing"), "{}", r.errmsg());
    let no_aud = hs256(&claims(json!({"iss": "https://id.example"})), SECRET);
    let r = call(&app, Some(&no_aud), &tenant_headers()).await;
    assert_eq!(r.status, 401);
    assert_eq!(r.errmsg(), "Invalid token: the aud claim is missing");
}
