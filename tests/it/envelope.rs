//! The response envelope, API ids, error classes, request ids, body handling.

use assessment_service::config::Config;
use http::Method;
use serde_json::json;

use crate::harness::*;

#[tokio::test]
async fn success_envelope_has_upstream_shape() {
    let app = TestApp::spawn().await;
    let r = app.get("/health/live").await;
    assert_eq!(r.status, 200);
    let v = r.json();
    assert_envelope_keys(&v);
    assert_eq!(v["id"], "api.health.list");
    assert_eq!(v["params"]["status"], "successful");
    assert!(v["params"]["err"].is_null());
    assert!(v["params"]["errmsg"].is_null());
    assert_eq!(v["responseCode"], "OK");
    assert_eq!(v["result"]["status"], "ok");
    assert!(v["result"]["uptime"].as_f64().unwrap() >= 0.0);
}

#[tokio::test]
async fn post_success_is_201_with_create_api_id() {
    let app = TestApp::spawn().await;
    let r = app
        .call(
            Method::POST,
            "/assessment/v1/probe/write",
            Some(json!({"title": "T", "marks": 8.25})),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    let v = r.json();
    assert_envelope_keys(&v);
    assert_eq!(v["id"], "api.probe.create");
    assert_eq!(
        v["result"],
        json!({"title": "T", "marks": 8.25, "by": USER})
    );
}

#[tokio::test]
async fn each_error_class_maps_to_status_code_and_envelope() {
    let app = TestApp::spawn().await;
    let cases = [
        (
            "validation",
            400,
            "VALIDATION_ERROR",
            "CLIENT_ERROR",
            "bad value",
        ),
        (
            "unauthorized",
            401,
            "UNAUTHORIZED",
            "UNAUTHORIZED",
            "who are you",
        ),
        ("forbidden", 403, "FORBIDDEN", "FORBIDDEN", "not yours"),
        ("not-found", 404, "NOT_FOUND", "NOT_FOUND", "Test not found"),
        ("conflict", 409, "CONFLICT", "CONFLICT", "already exists"),
        (
            "unprocessable",
            422,
            "UNPROCESSABLE_ENTITY",
            "CLIENT_ERROR",
            "Test is not published",
        ),
    ];
    for (kind, status, err, code, msg) in cases {
        let r = app.get(&format!("/assessment/v1/probe/error/{kind}")).await;
        assert_failure(&r, status, "api.probe.get", err, code, msg);
    }
}

#[tokio::test]
async fn internal_errors_carry_the_request_id_and_no_internal_text() {
    let app = TestApp::spawn().await;
    let r = app
        .call_with(
            Method::GET,
            "/assessment/v1/probe/error/internal",
            None,
            &[("x-request-id", "req-abc-123")],
        )
        .await;
    assert_failure(
        &r,
        500,
        "api.probe.get",
        "INTERNAL_ERROR",
        "SERVER_ERROR",
        "Internal server error (request id req-abc-123)",
    );
    assert!(!r.text().contains("secret_table"));
    assert_eq!(r.header("x-request-id"), Some("req-abc-123"));
}

#[tokio::test]
async fn a_panicking_handler_is_a_500_envelope() {
    let app = TestApp::spawn().await;
    let r = app.get("/assessment/v1/probe/panic").await;
    assert_eq!(r.status, 500);
    let v = r.json();
    assert_envelope_keys(&v);
    assert_eq!(v["params"]["err"], "INTERNAL_ERROR");
    assert!(!r.text().contains("probe panic"));
    let id = r.header("x-request-id").unwrap().to_string();
    assert!(r.errmsg().contains(&id));
}

#[tokio::test]
async fn unknown_routes_are_404_like_upstream() {
    let app = TestApp::spawn().await;
    let r = app.get("/assessment/v1/nothing/here").await;
    assert_failure(
        &r,
        404,
        "api.nothing.get",
        "NOT_FOUND",
        "NOT_FOUND",
        "Cannot GET /assessment/v1/nothing/here",
    );
}

#[tokio::test]
async fn wrong_method_is_405_envelope() {
    let app = TestApp::spawn().await;
    let r = app
        .call_with(Method::DELETE, "/health/live", None, &[])
        .await;
    assert_failure(
        &r,
        405,
        "api.health.delete",
        "METHOD_NOT_ALLOWED",
        "CLIENT_ERROR",
        "Method DELETE is not allowed on /health/live",
    );
}

#[tokio::test]
async fn request_id_is_echoed_or_generated() {
    let app = TestApp::spawn().await;
    let r = app
        .call_with(
            Method::GET,
            "/health/live",
            None,
            &[("x-request-id", "abc-1")],
        )
        .await;
    assert_eq!(r.header("x-request-id"), Some("abc-1"));
    assert_eq!(r.json()["params"]["msgid"], "abc-1");

    let r = app.get("/health/live").await;
    let generated = r.header("x-request-id").unwrap();
    assert!(uuid::Uuid::parse_str(generated).is_ok(), "{generated}");
    assert_eq!(r.json()["params"]["msgid"], generated);

    // An unusable id (too long) is replaced.
    let long = "x".repeat(300);
    let r = app
        .call_with(
            Method::GET,
            "/health/live",
            None,
            &[("x-request-id", &long)],
        )
        .await;
    assert_ne!(r.header("x-request-id"), Some(long.as_str()));
}

#[tokio::test]
async fn unknown_body_properties_are_refused_like_forbid_non_whitelisted() {
    let app = TestApp::spawn().await;
    let r = app
        .call(
            Method::POST,
            "/assessment/v1/probe/write",
            Some(json!({"title": "T", "marks": 1, "foo": true})),
        )
        .await;
    assert_failure(
        &r,
        400,
        "api.probe.create",
        "VALIDATION_ERROR",
        "CLIENT_ERROR",
        "property foo should not exist",
    );
}

#[tokio::test]
async fn body_shape_errors_are_400_with_a_message() {
    let app = TestApp::spawn().await;
    let r = app
        .call(
            Method::POST,
            "/assessment/v1/probe/write",
            Some(json!({"marks": 1})),
        )
        .await;
    assert_eq!(r.status, 400);
    assert_eq!(r.errmsg(), "title should not be empty");

    let r = app
        .call(
            Method::POST,
            "/assessment/v1/probe/write",
            Some(json!({"title": "T", "marks": 1.005})),
        )
        .await;
    assert_eq!(r.status, 400);
    assert_eq!(r.errmsg(), "marks: must have at most two decimal places");

    let r = app
        .raw(
            Method::POST,
            "/assessment/v1/probe/write",
            "application/json",
            "{\"title\":",
        )
        .await;
    assert_eq!(r.status, 400);
    assert!(
        r.errmsg().starts_with("Request body is not valid JSON"),
        "{}",
        r.errmsg()
    );
}

#[tokio::test]
async fn non_json_bodies_are_415() {
    let app = TestApp::spawn().await;
    let r = app
        .raw(
            Method::POST,
            "/assessment/v1/probe/write",
            "text/plain",
            "hello",
        )
        .await;
    assert_failure(
        &r,
        415,
        "api.probe.create",
        "UNSUPPORTED_MEDIA_TYPE",
        "CLIENT_ERROR",
        "Content-Type must be application/json",
    );
}

#[tokio::test]
async fn bodies_over_the_limit_are_413() {
    let config = Config {
        body_limit_bytes: 2048,
        ..Config::default()
    };
    let app = TestApp::with_config(config).await;
    let big = "x".repeat(4096);
    let r = app
        .call(
            Method::POST,
            "/assessment/v1/probe/write",
            Some(json!({"title": big, "marks": 1})),
        )
        .await;
    assert_failure(
        &r,
        413,
        "api.probe.create",
        "PAYLOAD_TOO_LARGE",
        "CLIENT_ERROR",
        "Request body is too large",
    );
}

#[tokio::test]
async fn query_strings_are_validated() {
    let app = TestApp::spawn().await;
    let r = app.get("/assessment/v1/probe/list?limit=5").await;
    assert_eq!(r.json()["result"]["limit"], 5);
    let r = app.get("/assessment/v1/probe/list?limit=5&sortBy=x").await;
    assert_failure(
        &r,
        400,
        "api.probe.get",
        "VALIDATION_ERROR",
        "CLIENT_ERROR",
        "property sortBy should not exist",
    );
    let r = app.get("/assessment/v1/probe/list?limit=many").await;
    assert_eq!(r.status, 400);
}

#[tokio::test]
async fn uuid_path_parameters_use_the_parse_uuid_message() {
    let app = TestApp::spawn().await;
    let r = app.get("/assessment/v1/probe/items/not-a-uuid").await;
    assert_failure(
        &r,
        400,
        "api.probe.get",
        "VALIDATION_ERROR",
        "CLIENT_ERROR",
        "Validation failed (uuid is expected)",
    );
    let r = app
        .get(&format!("/assessment/v1/probe/items/{TENANT}"))
        .await;
    assert_eq!(r.status, 200);
}

#[tokio::test]
async fn a_request_past_the_timeout_is_503_and_its_transaction_rolls_back() {
    let config = Config {
        request_timeout_secs: 1,
        ..Config::default()
    };
    let app = TestApp::with_config(config).await;
    let event_id = uuid::Uuid::new_v4();
    let r = app
        .call(
            Method::POST,
            "/assessment/v1/probe/slow-event",
            Some(json!({"eventId": event_id, "sleepMs": 2500})),
        )
        .await;
    assert_failure(
        &r,
        503,
        "api.probe.create",
        "REQUEST_TIMEOUT",
        "SERVER_ERROR",
        "The request did not complete within 1 s",
    );
    // Give the dropped transaction a moment to be rolled back by the pool, then look.
    tokio::time::sleep(std::time::Duration::from_millis(1800)).await;
    let found = assessment_service::events::find(&app.state.store, event_id)
        .await
        .unwrap();
    assert!(
        found.is_none(),
        "the timed-out request's event must not exist"
    );

    // The same request within the limit commits.
    let event_id = uuid::Uuid::new_v4();
    let r = app
        .call(
            Method::POST,
            "/assessment/v1/probe/slow-event",
            Some(json!({"eventId": event_id, "sleepMs": 10})),
        )
        .await;
    assert_eq!(r.status, 201);
    assert!(
        assessment_service::events::find(&app.state.store, event_id)
            .await
            .unwrap()
            .is_some()
    );
}

#[tokio::test]
async fn responses_are_compressed_when_asked() {
    let app = TestApp::spawn().await;
    let r = app
        .call_with(
            Method::GET,
            "/api-json",
            None,
            &[("accept-encoding", "gzip")],
        )
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-encoding"), Some("gzip"));
}

#[tokio::test]
async fn cors_allows_only_configured_origins() {
    let config = Config {
        cors_origins: "https://app.example".into(),
        ..Config::default()
    };
    let app = TestApp::with_config(config).await;
    let r = app
        .call_with(
            Method::GET,
            "/health/live",
            None,
            &[("origin", "https://app.example")],
        )
        .await;
    assert_eq!(
        r.header("access-control-allow-origin"),
        Some("https://app.example")
    );
    let r = app
        .call_with(
            Method::GET,
            "/health/live",
            None,
            &[("origin", "https://evil.example")],
        )
        .await;
    assert_eq!(r.header("access-control-allow-origin"), None);

    let open = TestApp::spawn().await;
    let r = open
        .call_with(
            Method::OPTIONS,
            "/assessment/v1/probe/write",
            None,
            &[
                ("origin", "https://any.example"),
                ("access-control-request-method", "POST"),
            ],
        )
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("access-control-allow-origin"), Some("*"));
}

#[tokio::test]
async fn framework_rejections_are_enveloped_too() {
    let app = TestApp::spawn().await;
    // Not valid UTF-8 in a path parameter: axum rejects it before the handler runs.
    let r = app
        .call(Method::GET, "/assessment/v1/questions/%FF", None)
        .await;
    assert_eq!(r.status, 400, "{}", r.text());
    let v = r.json();
    assert_envelope_keys(&v);
    assert_eq!(v["params"]["err"], "VALIDATION_ERROR");
    assert_eq!(v["id"], "api.questions.get");
}

#[tokio::test]
async fn unknown_methods_do_not_mint_metric_series() {
    let app = TestApp::spawn().await;
    for i in 0..3 {
        let m = Method::from_bytes(format!("BREW{i}").as_bytes()).unwrap();
        let r = app.call_with(m, "/health/live", None, &[]).await;
        assert_eq!(r.status, 405);
    }
    let text = app.get("/metrics").await.text();
    assert!(!text.contains("BREW"), "made-up methods are labelled OTHER");
    assert!(text.contains(r#"method="OTHER""#));
}
