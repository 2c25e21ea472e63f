//! The learner hierarchy of a published test is kept in the process and answered with an
//! `ETag`: valid exactly while the test row is published with the same `updatedAt`, on every
//! instance, and the parts of a published test it shows cannot change without that.

use http::Method;
use serde_json::{Value, json};

use crate::harness::*;

fn mcq(text: &str) -> Value {
    json!({"text": text, "type": "mcq", "marks": 1,
           "options": [{"text": "right", "isCorrect": true}, {"text": "wrong"}]})
}

async fn hierarchy(app: &TestApp, test: &str, if_none_match: Option<&str>) -> TestResponse {
    let mut headers = tenancy();
    if let Some(tag) = if_none_match {
        headers.push(("if-none-match", tag));
    }
    let path = format!("/assessment/v1/tests/{test}/hierarchy");
    app.call_with(Method::GET, &path, None, &headers).await
}

fn question_count(v: &Value) -> usize {
    v["result"]["sections"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["questions"].as_array().unwrap().len())
        .sum()
}

#[tokio::test]
async fn a_learner_hierarchy_is_kept_until_its_test_changes_on_any_instance() {
    let one = TestApp::spawn().await;
    let two = one.beside().await;
    let (test, _) = published_test(&one, json!({}), vec![mcq("a"), mcq("b")]).await;

    let first = hierarchy(&one, &test, None).await;
    let body = first.expect_status(200);
    let tag = first.header("etag").expect("an ETag").to_string();
    assert!(tag.starts_with("W/\""), "{tag}");
    assert_eq!(question_count(&body), 2);
    assert_eq!(one.state.views.len(), 1);
    assert_eq!(
        body["result"]["sections"][0]["questions"][0]["options"][0].get("isCorrect"),
        None,
        "no key in the learner's view"
    );
    // Kept: the same view, and 304 for its tag (also among others, and weakly compared).
    let again = hierarchy(&one, &test, None).await;
    assert_eq!(again.expect_status(200)["result"], body["result"]);
    assert_eq!(again.header("etag"), Some(tag.as_str()));
    let not_modified = hierarchy(&one, &test, Some(&tag)).await;
    assert_eq!(not_modified.status, 304);
    assert!(not_modified.body.is_empty());
    assert_eq!(not_modified.header("etag"), Some(tag.as_str()));
    let listed = format!("\"other\", {}", tag.trim_start_matches("W/"));
    assert_eq!(hierarchy(&one, &test, Some(&listed)).await.status, 304);
    assert_eq!(
        hierarchy(&one, &test, Some("W/\"other\"")).await.status,
        200
    );

    // The author changes the test through the other instance: unpublished, it is gone here
    // at once; changed and published again, this instance shows the change.
    let path = format!("/assessment/v1/tests/{test}");
    two.call(Method::POST, &format!("{path}/unpublish"), None)
        .await
        .expect_status(201);
    assert_eq!(hierarchy(&one, &test, Some(&tag)).await.status, 404);
    two.call(Method::PATCH, &path, Some(json!({"title": "Renamed"})))
        .await
        .expect_status(200);
    let section = body["result"]["sections"][0]["sectionId"]
        .as_str()
        .unwrap()
        .to_string();
    let mut q = mcq("c");
    q["testId"] = json!(test);
    q["sectionId"] = json!(section);
    two.call(Method::POST, "/assessment/v1/questions", Some(q))
        .await
        .expect_status(201);
    two.call(Method::POST, &format!("{path}/publish"), None)
        .await
        .expect_status(201);
    let changed = hierarchy(&one, &test, Some(&tag)).await;
    let body = changed.expect_status(200);
    assert_eq!(body["result"]["title"], "Renamed");
    assert_eq!(question_count(&body), 3);
    assert_ne!(changed.header("etag"), Some(tag.as_str()));
}

/// Which child question an option reveals is part of a published test's paper: frozen like
/// the questions themselves until the test is unpublished.
#[tokio::test]
async fn option_links_of_a_published_tests_questions_are_frozen() {
    let app = TestApp::spawn().await;
    let (test, qs) = published_test(&app, json!({}), vec![mcq("parent")]).await;
    let parent = qs[0]["questionId"].as_str().unwrap();
    let opt = |i: usize| qs[0]["options"][i]["questionOptionId"].clone();
    let child = create_question(
        &app,
        json!({"text": "Why?", "type": "essay", "parentId": parent, "optionId": opt(0)}),
    )
    .await;
    let link = |i: usize| json!({"questionId": child["questionId"], "optionId": opt(i)});
    let q = "/assessment/v1/questions";
    let r = app
        .call(
            Method::POST,
            &format!("{q}/associate-option"),
            Some(link(1)),
        )
        .await;
    assert_eq!(r.status, 422, "{}", r.text());
    let r = app
        .call(
            Method::POST,
            &format!("{q}/disassociate-option"),
            Some(link(0)),
        )
        .await;
    assert_eq!(r.status, 422, "{}", r.text());

    app.call(
        Method::POST,
        &format!("/assessment/v1/tests/{test}/unpublish"),
        None,
    )
    .await
    .expect_status(201);
    let r = app
        .call(
            Method::POST,
            &format!("{q}/associate-option"),
            Some(link(1)),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
}
