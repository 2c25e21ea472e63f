//! Header mode: upstream's headers, checks and messages, plus the X- spellings.

use http::Method;
use serde_json::json;

use crate::harness::*;

const CTX: &str = "/assessment/v1/probe/context";

#[tokio::test]
async fn header_checks_return_upstream_messages_in_order() {
    let app = TestApp::spawn().await;
    let cases: Vec<(Vec<(&str, &str)>, &str)> = vec![
        (vec![], "tenantId header is required"),
        (
            vec![("tenantid", TENANT)],
            "organisationId header is required",
        ),
        (
            vec![("tenantid", "t1"), ("organisationid", "o1")],
            "tenantId must be a valid UUID format",
        ),
        (
            vec![("tenantid", TENANT), ("organisationid", "o1")],
            "organisationId must be a valid UUID format",
        ),
        (
            vec![
                ("tenantid", TENANT),
                ("organisationid", ORG),
                ("userid", "alice"),
            ],
            "userId must be a valid UUID format",
        ),
    ];
    for (headers, msg) in cases {
        let r = app.call_with(Method::GET, CTX, None, &headers).await;
        assert_failure(
            &r,
            400,
            "api.probe.get",
            "VALIDATION_ERROR",
            "CLIENT_ERROR",
            msg,
        );
    }
}

#[tokio::test]
async fn every_header_spelling_is_accepted() {
    let app = TestApp::spawn().await;
    for (t, o, u) in [
        ("tenantId", "organisationId", "userId"),
        ("tenant-id", "organisation-id", "user-id"),
        ("X-Tenant-ID", "X-Organisation-ID", "X-User-ID"),
    ] {
        let r = app
            .call_with(Method::GET, CTX, None, &[(t, TENANT), (o, ORG), (u, USER)])
            .await;
        assert_eq!(r.status, 200, "{t}: {}", r.text());
        let result = &r.json()["result"];
        assert_eq!(result["tenantId"], TENANT);
        assert_eq!(result["organisationId"], ORG);
        assert_eq!(result["userId"], USER);
        assert_eq!(
            result["roles"],
            json!(["admin", "instructor", "reviewer", "learner"])
        );
    }
}

#[tokio::test]
async fn user_may_come_from_the_query_string() {
    let app = TestApp::spawn().await;
    let r = app
        .call_with(
            Method::GET,
            &format!("{CTX}?userId={USER}"),
            None,
            &[("tenantid", TENANT), ("organisationid", ORG)],
        )
        .await;
    assert_eq!(r.json()["result"]["userId"], USER);
}

#[tokio::test]
async fn a_write_without_a_user_is_400_not_a_system_user() {
    let app = TestApp::spawn().await;
    let r = app
        .call_with(
            Method::POST,
            "/assessment/v1/probe/write",
            Some(json!({"title": "T", "marks": 1})),
            &[("tenantid", TENANT), ("organisationid", ORG)],
        )
        .await;
    assert_failure(
        &r,
        400,
        "api.probe.create",
        "VALIDATION_ERROR",
        "CLIENT_ERROR",
        "userId header is required for this operation",
    );
    // Reads need no user.
    let r = app
        .call_with(
            Method::GET,
            CTX,
            None,
            &[("tenantid", TENANT), ("organisationid", ORG)],
        )
        .await;
    assert_eq!(r.status, 200);
    assert!(r.json()["result"]["userId"].is_null());
}

#[tokio::test]
async fn upstreams_system_placeholder_means_no_user() {
    let app = TestApp::spawn().await;
    let headers = [
        ("tenantid", TENANT),
        ("organisationid", ORG),
        ("userid", "system"),
    ];
    let r = app.call_with(Method::GET, CTX, None, &headers).await;
    assert_eq!(r.status, 200);
    assert!(r.json()["result"]["userId"].is_null());
    let r = app
        .call_with(
            Method::POST,
            "/assessment/v1/probe/write",
            Some(json!({"title": "T", "marks": 1})),
            &headers,
        )
        .await;
    assert_eq!(r.status, 400);
    assert_eq!(r.errmsg(), "userId header is required for this operation");
}
