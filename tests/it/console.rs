//! The operator console's server side (issue 20): the page and its assets, the subscriptions'
//! state, the live tail of events and the delivery log's event filter. The page itself is
//! driven in headless Chromium by `bench/console.sh` (in `.ci/run`).

use std::time::Duration;

use assessment_service::config::Config;
use axum::body::Body;
use futures::StreamExt;
use http::{Method, Request};
use serde_json::json;
use tower::ServiceExt;

use crate::harness::*;

/// Opens the live tail with `headers`; returns the response's status and its body's chunks.
async fn open_tail(
    app: &TestApp,
    headers: &[(&str, &str)],
) -> (http::StatusCode, axum::body::BodyDataStream) {
    let mut req = Request::builder()
        .method(Method::GET)
        .uri("/assessment/v1/events/stream")
        .header("accept", "text/event-stream");
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let res = app
        .router
        .clone()
        .oneshot(req.body(Body::empty()).unwrap())
        .await
        .unwrap();
    (res.status(), res.into_body().into_data_stream())
}

/// Reads the stream until `want` shows, within 10 s; returns what was read.
async fn read_until(stream: &mut axum::body::BodyDataStream, want: &str) -> String {
    let mut seen = String::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !seen.contains(want) {
        let chunk = tokio::time::timeout_at(deadline, stream.next())
            .await
            .unwrap_or_else(|_| panic!("{want:?} never came; read: {seen}"))
            .expect("the stream ended")
            .unwrap();
        seen.push_str(&String::from_utf8_lossy(&chunk));
    }
    seen
}

#[tokio::test]
async fn the_page_and_its_assets_are_served_with_the_auth_mode() {
    let app = TestApp::spawn().await;
    let page = app.get("/console").await;
    assert_eq!(page.status, 200);
    let html = page.text();
    assert!(html.contains(r#"data-auth="headers""#), "{html}");
    assert!(html.contains(r#"data-api="/assessment/v1""#));
    let csp = page.header("content-security-policy").unwrap();
    assert!(csp.contains("script-src 'self'"), "{csp}");
    for (asset, kind) in [
        ("/console/app.js", "javascript"),
        ("/console/app.css", "css"),
    ] {
        let r = app.get(asset).await;
        assert_eq!(r.status, 200);
        assert!(r.header("content-type").unwrap().contains(kind));
    }
    let jwt = TestApp::with_config(Config {
        jwt_secret: Some("a-test-secret-that-is-long-enough-for-hs256".into()),
        ..Config::default()
    })
    .await;
    assert!(
        jwt.get("/console")
            .await
            .text()
            .contains(r#"data-auth="jwt""#)
    );
}

/// A subscription whose receiver fails shows it: dead letters, the last error, no secret; one
/// whose receiver answers shows its last success; the delivery log filters by event name.
#[tokio::test]
async fn subscriptions_show_their_state_and_deliveries_filter_by_event() {
    use assessment_service::events::dispatcher::{Claim, Dispatcher};
    let app = TestApp::with_config(Config {
        webhook_allow_private_networks: true,
        ..Config::default()
    })
    .await;
    let (_down, down_url) = crate::delivery::receiver(vec![(500, None, 0)]).await;
    let (_up, up_url) = crate::delivery::receiver(vec![(200, None, 0)]).await;
    let mut secrets = Vec::new();
    for (name, url) in [("down", &down_url), ("up", &up_url)] {
        let r = app
            .call(
                Method::POST,
                "/assessment/v1/webhooks",
                Some(
                    json!({"name": name, "url": url, "events": ["question.created"], "retries": 0}),
                ),
            )
            .await
            .expect_status(201);
        secrets.push(r["result"]["secret"].as_str().unwrap().to_string());
    }
    create_question(&app, json!({"text": "one", "type": "essay"})).await;
    let d = Dispatcher::new(app.state.store.clone(), app.state.clock.clone(), true);
    for _ in 0..5 {
        d.step(Claim::Due).await.unwrap();
        d.settle().await;
    }
    let r = app
        .call(Method::GET, "/assessment/v1/console/subscriptions", None)
        .await
        .expect_status(200);
    let text = r.to_string();
    for secret in &secrets {
        assert!(!text.contains(secret.as_str()), "a secret is shown: {text}");
    }
    let find = |name: &str| {
        r["result"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["name"] == name)
            .cloned()
            .unwrap_or_else(|| panic!("{name} not in {r}"))
    };
    let down = find("down");
    assert_eq!(down["kind"], "webhook");
    assert_eq!(down["isActive"], true);
    assert_eq!(down["deliveries"]["dead"], 1, "{down}");
    assert_eq!(down["deliveries"]["backlog"], 0);
    assert!(down["deliveries"]["lastFailureAt"].is_string(), "{down}");
    assert!(
        down["deliveries"]["lastError"]
            .as_str()
            .unwrap()
            .contains("500"),
        "{down}"
    );
    let up = find("up");
    assert_eq!(up["deliveries"]["delivered"], 1, "{up}");
    assert!(up["deliveries"]["lastSuccessAt"].is_string());
    assert!(up["deliveries"]["lastFailureAt"].is_null());

    let log = |query: &str| {
        let path = format!("/assessment/v1/webhooks/deliveries{query}");
        let app = &app;
        async move { app.call(Method::GET, &path, None).await }
    };
    let all = log("?event=question.created").await.expect_status(200);
    assert_eq!(all["result"]["totalElements"], 2, "{all}");
    let none = log("?event=attempt.started").await.expect_status(200);
    assert_eq!(none["result"]["totalElements"], 0);
    log("?event=no.such").await.expect_status(400);

    // Another tenant sees none of them.
    let other = [
        ("tenantid", OTHER_TENANT),
        ("organisationid", ORG),
        ("userid", USER),
    ];
    let r = app
        .call_with(
            Method::GET,
            "/assessment/v1/console/subscriptions",
            None,
            &other,
        )
        .await
        .expect_status(200);
    assert_eq!(r["result"], json!([]), "{r}");
}

/// The live tail sends the caller's events committed after it opened (not before, not another
/// tenant's), resumes after `Last-Event-ID`, and refuses past its limit of open tails.
#[tokio::test]
async fn the_live_tail_sends_events_as_they_commit() {
    let app = TestApp::spawn().await;
    let before = create_question(&app, json!({"text": "before", "type": "essay"})).await;
    let (status, mut stream) = open_tail(&app, &tenancy()).await;
    assert_eq!(status, 200);
    let other = [
        ("tenantid", OTHER_TENANT),
        ("organisationid", ORG),
        ("userid", USER),
    ];
    app.call_with(
        Method::POST,
        "/assessment/v1/questions",
        Some(json!({"text": "elsewhere", "type": "essay"})),
        &other,
    )
    .await
    .expect_status(201);
    let after = create_question(&app, json!({"text": "after", "type": "essay"})).await;
    let after_id = after["questionId"].as_str().unwrap();
    let seen = read_until(&mut stream, after_id).await;
    assert!(seen.contains("event: question.created"), "{seen}");
    assert!(
        !seen.contains(before["questionId"].as_str().unwrap()),
        "{seen}"
    );
    assert!(
        !seen.contains("elsewhere"),
        "another tenant's event: {seen}"
    );
    // The id of the event sent, to resume after.
    let id: i64 = seen
        .lines()
        .filter_map(|l| l.strip_prefix("id:"))
        .next_back()
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    drop(stream);

    let later = create_question(&app, json!({"text": "while away", "type": "essay"})).await;
    let last = id.to_string();
    let mut resumed: Vec<(&str, &str)> = tenancy();
    resumed.push(("last-event-id", &last));
    let (_, mut stream) = open_tail(&app, &resumed).await;
    let seen = read_until(&mut stream, later["questionId"].as_str().unwrap()).await;
    assert!(!seen.contains(after_id), "resumed before its id: {seen}");
    drop(stream);

    // A client that does not ask for a stream gets a 400, not a response that never ends.
    app.call(Method::GET, "/assessment/v1/events/stream", None)
        .await
        .expect_status(400);

    // At most MAX_LIVE_TAILS at once.
    let mut open = Vec::new();
    for _ in 0..assessment_service::http::state::MAX_LIVE_TAILS {
        let (status, stream) = open_tail(&app, &tenancy()).await;
        assert_eq!(status, 200);
        open.push(stream);
    }
    let (status, _) = open_tail(&app, &tenancy()).await;
    assert_eq!(status, 503);
    open.pop();
    tokio::time::sleep(Duration::from_millis(50)).await;
    let (status, _) = open_tail(&app, &tenancy()).await;
    assert_eq!(status, 200);
}

/// In JWT mode, a learner's token gets nothing of the console's routes.
#[tokio::test]
async fn a_learner_token_gets_nothing() {
    use jsonwebtoken::{Algorithm, EncodingKey, Header, encode};
    const SECRET: &str = "a-test-secret-that-is-long-enough-for-hs256";
    let app = TestApp::with_config(Config {
        jwt_secret: Some(SECRET.into()),
        ..Config::default()
    })
    .await;
    let token = encode(
        &Header::new(Algorithm::HS256),
        &json!({"sub": USER, "tenantId": TENANT, "organisationId": ORG, "roles": ["learner"],
                "exp": chrono::Utc::now().timestamp() + 600}),
        &EncodingKey::from_secret(SECRET.as_bytes()),
    )
    .unwrap();
    let bearer = format!("Bearer {token}");
    let auth = [("authorization", bearer.as_str())];
    for path in [
        "/assessment/v1/console/subscriptions",
        "/assessment/v1/webhooks/dead-letters",
    ] {
        let r = app.call_with(Method::GET, path, None, &auth).await;
        assert_eq!(r.status, 403, "{path}");
    }
    let (status, _) = open_tail(&app, &auth).await;
    assert_eq!(status, 403);
}
