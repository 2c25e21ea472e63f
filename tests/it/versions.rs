//! Published versions (issue 19, item 1): an attempt is scored, resumed and shown against the
//! version it started on, whatever happens to the test and its questions afterwards.

use http::Method;
use serde_json::{Value, json};

use crate::harness::*;

const A: &str = "/assessment/v1/attempts";
const FIRST: &str = "b1000000-0000-4000-8000-000000000001";
const SECOND: &str = "b1000000-0000-4000-8000-000000000002";

async fn versions(app: &TestApp, test: &str) -> Vec<Value> {
    app.call(
        Method::GET,
        &format!("/assessment/v1/tests/{test}/versions"),
        None,
    )
    .await
    .expect_status(200)["result"]
        .as_array()
        .unwrap()
        .clone()
}

/// Unpublishes `test`, rewrites the first question (new text, 5 marks, option 1 right), and
/// publishes again.
async fn edit_and_republish(app: &TestApp, test: &str, q: &Value) {
    let patch = json!({
        "text": "edited", "marks": 5,
        "options": [
            {"questionOptionId": opt(q, 0), "text": "right", "isCorrect": false},
            {"questionOptionId": opt(q, 1), "text": "now right", "isCorrect": true}]
    });
    republish_with(app, test, &q["questionId"], patch).await;
}

/// An attempt in progress while the author unpublishes, edits a key and the marks, and
/// republishes: its saves, paper, submission and answer sheet all follow the version it
/// started on; a new attempt follows the new version.
#[tokio::test]
async fn an_attempt_keeps_the_version_it_started_on() {
    let app = TestApp::spawn().await;
    let (test, qs) = published_test(
        &app,
        json!({"answerSheet": true, "showCorrectAnswer": true}),
        vec![mcq_worth("first", 1), mcq_worth("second", 1)],
    )
    .await;
    let v = versions(&app, &test).await;
    assert_eq!(v.len(), 1, "{v:?}");
    assert_eq!(v[0]["version"], 1);
    assert_eq!(v[0]["questions"].as_array().unwrap().len(), 2);
    assert_eq!(v[0]["totalMarks"], 2.0);

    let old = start_attempt(&app, &test, FIRST).await;
    // A save before the edit: this instance keeps the attempt's keys.
    answer(&app, &old, FIRST, json!([pick(&qs[1], 0)]), 201).await;

    edit_and_republish(&app, &test, &qs[0]).await;
    let v = versions(&app, &test).await;
    assert_eq!(v.len(), 2, "{v:?}");
    assert_eq!(v[0]["version"], 2);
    assert_eq!(v[0]["totalMarks"], 6.0);
    let q0 = &qs[0]["questionId"];
    let revision = |v: &Value| {
        v["questions"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| &p["questionId"] == q0)
            .map(|p| p["revision"].clone())
    };
    assert_eq!(revision(&v[0]), Some(json!(2)));
    assert_eq!(revision(&v[1]), Some(json!(1)));
    let published = events(&app, "test.published").await;
    assert_eq!(published.last().unwrap()["data"]["version"], 2);

    // The old attempt: option 0 is still right and the question still worth 1.
    answer(&app, &old, FIRST, json!([pick(&qs[0], 0)]), 201).await;
    let paper = app
        .call_with(
            Method::GET,
            &format!("{A}/{old}/questions/{FIRST}"),
            None,
            &as_user(FIRST),
        )
        .await
        .expect_status(200);
    let shown = paper["result"].to_string();
    assert!(
        shown.contains("\"first\"") && !shown.contains("edited"),
        "{shown}"
    );
    let done = submit(&app, &old, FIRST, 201).await;
    assert_eq!(done["result"]["score"], 2.0, "{done}");
    assert_eq!(done["result"]["totalMarks"], 2.0, "{done}");
    let sheet = app
        .call_with(
            Method::GET,
            &format!("{A}/{old}/answersheet"),
            None,
            &as_user(FIRST),
        )
        .await
        .expect_status(200)["result"]
        .to_string();
    assert!(
        sheet.contains("\"first\"") && !sheet.contains("edited"),
        "{sheet}"
    );

    // A new attempt: the edited question, its new key and marks.
    let new = start_attempt(&app, &test, SECOND).await;
    answer(&app, &new, SECOND, json!([pick(&qs[0], 1)]), 201).await;
    answer(&app, &new, SECOND, json!([pick(&qs[1], 0)]), 201).await;
    let done = submit(&app, &new, SECOND, 201).await;
    assert_eq!(done["result"]["score"], 6.0, "{done}");

    // Republishing without a change records no new version.
    let path = format!("/assessment/v1/tests/{test}");
    app.call(Method::POST, &format!("{path}/unpublish"), None)
        .await
        .expect_status(201);
    publish(&app, &test, 201).await;
    assert_eq!(versions(&app, &test).await.len(), 2);
}

/// Versions are confined to the caller's tenant, and a test that was never published has
/// none.
#[tokio::test]
async fn versions_are_scoped_and_start_at_the_first_publish() {
    let app = TestApp::spawn().await;
    let draft = create_test(&app, json!({"title": "Draft", "type": "plain"})).await;
    assert!(versions(&app, &draft).await.is_empty());
    let (test, _) = published_test(&app, json!({}), vec![mcq_worth("q", 1)]).await;
    // A copy starts without versions, and its first publish is its version 1.
    let copy = app
        .call(
            Method::POST,
            &format!("/assessment/v1/tests/{test}/clone"),
            None,
        )
        .await
        .expect_status(201)["result"]["clonedTestId"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(versions(&app, &copy).await.is_empty());
    publish(&app, &copy, 201).await;
    let v = versions(&app, &copy).await;
    assert_eq!((v.len(), v[0]["version"].clone()), (1, json!(1)), "{v:?}");
    let other = [
        ("tenantid", OTHER_TENANT),
        ("organisationid", ORG),
        ("userid", USER),
    ];
    app.call_with(
        Method::GET,
        &format!("/assessment/v1/tests/{test}/versions"),
        None,
        &other,
    )
    .await
    .expect_status(404);
    app.call(
        Method::GET,
        "/assessment/v1/tests/not-a-uuid/versions",
        None,
    )
    .await
    .expect_status(400);
}
