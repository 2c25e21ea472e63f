//! The AsyncAPI document of the events: served, identical to the committed copy, and what
//! subscribers really receive matches it (every delivered body against its message's payload
//! schema, both ways: nothing missing or mistyped, nothing undocumented).

use std::collections::BTreeSet;

use assessment_service::domain::event::EventName;
use http::Method;
use serde_json::{Value, json};

use crate::harness::*;

fn committed_path() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/asyncapi.json")
}

pub(crate) fn committed() -> Value {
    serde_json::from_slice(&std::fs::read(committed_path()).expect("docs/asyncapi.json")).unwrap()
}

/// What is wrong with `body` against the committed document's message of its `name`.
pub(crate) fn check_event(doc: &Value, body: &Value) -> Vec<String> {
    let name = body["name"].as_str().unwrap_or_default();
    let message = doc["components"]["messages"]
        .as_object()
        .unwrap()
        .values()
        .find(|m| m["name"] == name);
    let Some(message) = message else {
        return vec![format!("no message named {name:?}")];
    };
    let mut errors = Vec::new();
    crate::schemas::check(doc, &message["payload"], body, name, &mut errors);
    errors
}

#[test]
fn committed_asyncapi_document_matches_the_code() {
    crate::openapi::assert_committed(
        "docs/asyncapi.json",
        &assessment_service::events::asyncapi::document_json(),
        "cargo run -- asyncapi --output docs/asyncapi.json",
    );
}

#[tokio::test]
async fn asyncapi_json_is_served() {
    let app = TestApp::spawn().await;
    let r = app.get("/asyncapi.json").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json(), committed());
    assert_eq!(r.json()["asyncapi"], "3.1.0");
}

/// The checker finds a body that differs from its message.
#[test]
fn a_body_unlike_its_message_is_found() {
    let doc = committed();
    let good = json!({"name": "attempt.started",
        "context": {"tenantId": TENANT, "organisationId": ORG, "userId": USER},
        "data": {"attemptId": USER, "testId": USER, "attemptNumber": 1},
        "timestamp": "2026-11-30T10:00:00.000Z", "id": USER});
    assert_eq!(check_event(&doc, &good), Vec::<String>::new());
    let mut missing = good.clone();
    missing["data"]
        .as_object_mut()
        .unwrap()
        .remove("attemptNumber");
    assert_eq!(check_event(&doc, &missing).len(), 1);
    let mut extra = good.clone();
    extra["data"]["score"] = json!(3);
    assert_eq!(check_event(&doc, &extra).len(), 1);
    let mut renamed = good;
    renamed["name"] = json!("attempt.submitted");
    assert!(!check_event(&doc, &renamed).is_empty());
}

/// Every event a tenant can cause, delivered to a real receiver through the dispatcher, and
/// each body checked against the committed document. (`system.*` are checked in
/// `process::start_and_graceful_stop_are_events`, which runs the binary.)
#[tokio::test]
async fn delivered_events_match_the_asyncapi_document() {
    use assessment_service::config::Config;
    use assessment_service::events::dispatcher::{Claim, Dispatcher};
    let app = TestApp::with_config(Config {
        webhook_allow_private_networks: true,
        ..Config::default()
    })
    .await;
    let (rx, url) = crate::delivery::receiver(vec![(200, None, 0)]).await;
    app.call(
        Method::POST,
        "/assessment/v1/webhooks",
        Some(json!({"name": "all", "url": url, "events": ["*"]})),
    )
    .await
    .expect_status(201);

    const P: &str = "/assessment/v1";
    const LEARNER: &str = "9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d";
    let (test, qs) = published_test(
        &app,
        json!({}),
        vec![
            json!({"text": "2+2", "type": "mcq", "marks": 1, "options": [{"text": "4", "isCorrect": true}, {"text": "5"}]}),
            json!({"text": "Why?", "type": "essay", "marks": 2}),
        ],
    )
    .await;
    let q = qs[0]["questionId"].as_str().unwrap();
    let attempt = start_attempt(&app, &test, LEARNER).await;
    answer(&app, &attempt, LEARNER, json!([
        {"questionId": q, "answer": {"selectedOptionIds": [qs[0]["options"][0]["questionOptionId"]]}},
        {"questionId": qs[1]["questionId"], "answer": {"text": "Because."}}]), 201)
    .await;
    submit(&app, &attempt, LEARNER, 201).await;
    review(
        &app,
        &attempt,
        USER,
        json!({"answers": [
        {"questionId": qs[1]["questionId"], "score": 2}]}),
        201,
    )
    .await;
    // An accommodation, set with an end date (nullable fields both ways) and removed.
    let accommodation = format!("{P}/tests/{test}/accommodations/{LEARNER}");
    for body in [
        json!({"extraTimeMinutes": 10}),
        json!({"timeMultiplier": 1.5, "extraAttempts": 1, "endDate": "2030-01-01T00:00:00Z"}),
    ] {
        app.call(Method::PUT, &accommodation, Some(body))
            .await
            .expect_status(200);
    }
    app.call(Method::DELETE, &accommodation, None)
        .await
        .expect_status(200);
    // The key corrected and the attempt regraded.
    republish_with(&app, &test, &qs[0]["questionId"], json!({"options": [
        {"questionOptionId": qs[0]["options"][0]["questionOptionId"], "text": "4", "isCorrect": false},
        {"questionOptionId": qs[0]["options"][1]["questionOptionId"], "text": "5", "isCorrect": true}]}))
    .await;
    let regraded = app
        .call(
            Method::POST,
            &format!("{P}/tests/{test}/regrade"),
            Some(json!({"reason": "the key was wrong"})),
        )
        .await
        .expect_status(200);
    assert_eq!(regraded["result"]["changed"], 1, "{regraded}");
    app.call(Method::POST, &format!("{P}/tests/{test}/unpublish"), None)
        .await
        .expect_status(201);
    // A bank question: edited, published, then deleted.
    let spare = create_question(&app, json!({"text": "spare", "type": "essay"})).await;
    let spare = format!("{P}/questions/{}", spare["questionId"].as_str().unwrap());
    for change in [
        json!({"text": "spare, edited"}),
        json!({"status": "published"}),
    ] {
        app.call(Method::PATCH, &spare, Some(change))
            .await
            .expect_status(200);
    }
    app.call(Method::DELETE, &spare, None)
        .await
        .expect_status(200);
    // Rules, on a rule-based test.
    let rb = create_test(&app, json!({"title": "Rules", "type": "rule_based"})).await;
    let section = create_section(&app, &rb, "S").await;
    let rule = app
        .call(
            Method::POST,
            &format!("{P}/rules"),
            Some(json!({"name": "r", "ruleType": "mixed", "testId": rb, "sectionId": section,
                        "numberOfQuestions": 1, "poolSize": 1, "criteria": {"questionTypes": ["mcq"]}})),
        )
        .await
        .expect_status(201)["result"]["ruleId"]
        .as_str()
        .unwrap()
        .to_string();
    app.call(
        Method::PATCH,
        &format!("{P}/rules/{rule}"),
        Some(json!({"name": "r2"})),
    )
    .await
    .expect_status(200);
    app.call(Method::DELETE, &format!("{P}/rules/{rule}"), None)
        .await
        .expect_status(200);
    app.call(Method::DELETE, &format!("{P}/tests/{rb}"), None)
        .await
        .expect_status(200);

    let d = Dispatcher::new(app.state.store.clone(), app.state.clock.clone(), true);
    for _ in 0..20 {
        d.step(Claim::Due).await.unwrap();
        d.settle().await;
    }
    let doc = committed();
    let got = rx.got.lock().unwrap();
    let mut seen = BTreeSet::new();
    let mut errors = Vec::new();
    for r in got.iter() {
        errors.extend(check_event(&doc, &r.body));
        seen.insert(r.body["name"].as_str().unwrap_or_default().to_string());
    }
    assert!(
        errors.is_empty(),
        "delivered bodies unlike the document:\n{}",
        errors.join("\n")
    );
    let expected: BTreeSet<String> = EventName::ALL
        .iter()
        .map(|n| n.as_str().to_string())
        .filter(|n| !n.starts_with("system."))
        .collect();
    assert_eq!(
        seen, expected,
        "every tenant event was delivered and checked"
    );
}
