//! The learner hierarchy of a published test is kept in the process and answered with an
//! `ETag`: valid exactly while the test row is published with the same `updatedAt`, on every
//! instance, and the parts of a published test it shows cannot change without that.

use http::Method;
use serde_json::{Value, json};

use crate::harness::*;
use assessment_service::store::Backend;

const LEARNER: &str = "6a7b8c9d-0e1f-4a2b-8c3d-4e5f6a7b8c9d";
const OTHER_LEARNER: &str = "7b8c9d0e-1f2a-4b3c-9d4e-5f6a7b8c9d0e";
const REVIEWER: &str = "8d9e0f1a-2b3c-4d5e-9f6a-7b8c9d0e1f2a";

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

/// `Cache-Control` of a list of tests.
async fn app_list_cache_control(app: &TestApp) -> Option<String> {
    app.call(Method::GET, "/assessment/v1/tests?limit=1", None)
        .await
        .header("cache-control")
        .map(str::to_string)
}

/// Waits until `app` knows no test row: on PostgreSQL, until it has heard of the changes
/// another instance made to the tests it knew (within milliseconds); on SQLite, where nothing
/// is known, at once.
async fn heard(app: &TestApp) {
    for _ in 0..250 {
        if app.state.store.test_watch().is_empty() {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    panic!("a change made by another instance was not heard within 5 s");
}

/// Asks for the hierarchy until `app` knows the test row (on PostgreSQL: once its listener
/// listens and has heard the changes made before; on SQLite, never, so once).
async fn known(app: &TestApp, test: &str) {
    let watching = app.db.backend() == Backend::Postgres;
    for _ in 0..250 {
        hierarchy(app, test, None).await.expect_status(200);
        if app.state.store.test_watch().len() == usize::from(watching) {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    panic!("the test row was not known within 5 s");
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
    assert_eq!(first.header("cache-control"), Some("private, no-cache"));
    let listed = app_list_cache_control(&one).await;
    assert_eq!(listed.as_deref(), Some("no-store"), "untagged API answers");
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

    // On PostgreSQL the test row is known here (nothing read per request) until a change to
    // it is heard; SQLite reads it every time.
    known(&one, &test).await;

    // The author changes the test through the other instance: unpublished, it is gone here
    // once the change is heard; changed and published again, this instance shows the change.
    let path = format!("/assessment/v1/tests/{test}");
    two.call(Method::POST, &format!("{path}/unpublish"), None)
        .await
        .expect_status(201);
    heard(&one).await;
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
    heard(&one).await;
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

/// `GET path` as `user`, naming `tag` in `If-None-Match` when given.
async fn view(app: &TestApp, path: &str, user: &'static str, tag: Option<&str>) -> TestResponse {
    let mut headers = as_user(user);
    if let Some(tag) = tag {
        headers.push(("if-none-match", tag));
    }
    app.call_with(Method::GET, path, None, &headers).await
}

#[tokio::test]
async fn the_paper_and_the_answer_sheet_answer_304_until_they_change() {
    let app = TestApp::spawn().await;
    let essay = json!({"text": "Why?", "type": "essay", "marks": 5});
    let (test, qs) = published_test(&app, json!({}), vec![mcq("a"), essay]).await;
    let attempt = start_attempt(&app, &test, LEARNER).await;

    // The paper: the same tag while it is the same, 304 for it, and no body then.
    let paper = format!("{ATTEMPTS}/{attempt}/questions/{LEARNER}");
    let first = view(&app, &paper, LEARNER, None).await;
    let body = first.expect_status(200);
    assert_eq!(body["result"].as_array().unwrap().len(), 2);
    let tag = first.header("etag").expect("an ETag").to_string();
    assert!(tag.starts_with("W/\""), "{tag}");
    let again = view(&app, &paper, LEARNER, Some(&tag)).await;
    assert_eq!(again.status, 304);
    assert!(again.body.is_empty());
    assert_eq!(again.header("etag"), Some(tag.as_str()));
    assert_eq!(
        view(&app, &paper, LEARNER, Some("W/\"x\"")).await.status,
        200
    );
    // A tag answers nobody else's paper: the owner check comes first.
    assert_eq!(
        view(&app, &paper, OTHER_LEARNER, Some(&tag)).await.status,
        403
    );

    let option = qs[0]["options"][0]["questionOptionId"].clone();
    let answers = json!([
        {"questionId": qs[0]["questionId"], "answer": {"selectedOptionIds": [option]}},
        {"questionId": qs[1]["questionId"], "answer": {"text": "Because."}},
    ]);
    answer(&app, &attempt, LEARNER, answers, 201).await;
    submit(&app, &attempt, LEARNER, 201).await;

    // The answer sheet: 304 for its tag until a review changes it, then the new sheet.
    let sheet = format!("{ATTEMPTS}/{attempt}/answersheet");
    let first = view(&app, &sheet, LEARNER, None).await;
    first.expect_status(200);
    let tag = first.header("etag").expect("an ETag").to_string();
    assert_eq!(view(&app, &sheet, LEARNER, Some(&tag)).await.status, 304);
    let reviewed = json!({"answers": [{"questionId": qs[1]["questionId"], "score": 4}]});
    review(&app, &attempt, REVIEWER, reviewed, 201).await;
    let after = view(&app, &sheet, LEARNER, Some(&tag)).await;
    let body = after.expect_status(200);
    assert_ne!(after.header("etag"), Some(tag.as_str()));
    assert!(body.to_string().contains("\"score\":4"), "{body}");
}

/// What attempts of a published plain test read that does not depend on the learner (its
/// paper before shuffling, questions, options) is kept per instance by the test's
/// `updatedAt`: a change made through another instance (which needs an unpublish) shows at
/// once, and an earlier attempt's answer sheet shows its own questions, as they were when it
/// started (the version it started on).
#[tokio::test]
async fn a_tests_paper_material_is_kept_until_the_test_changes_on_any_instance() {
    let one = TestApp::spawn().await;
    let two = one.beside().await;
    let (test, qs) = published_test(&one, json!({}), vec![mcq("a"), mcq("b")]).await;
    let texts = |v: &Value, field: &str| -> Vec<String> {
        let mut t: Vec<String> = v["result"]
            .as_array()
            .or_else(|| v["result"]["answers"].as_array())
            .unwrap()
            .iter()
            .map(|q| q[field].as_str().unwrap().to_string())
            .collect();
        t.sort();
        t
    };
    let first = start_attempt(&one, &test, LEARNER).await;
    assert_eq!(one.state.contents.len(), 1);
    let paper = |attempt: &str, user: &str| format!("{ATTEMPTS}/{attempt}/questions/{user}");
    let body = view(&one, &paper(&first, LEARNER), LEARNER, None)
        .await
        .expect_status(200);
    assert_eq!(texts(&body, "text"), ["a", "b"]);
    let section = body["result"][0]["sectionId"].as_str().unwrap().to_string();
    let answers: Vec<Value> = qs
        .iter()
        .map(|q| json!({"questionId": q["questionId"], "answer": {"selectedOptionIds": [q["options"][0]["questionOptionId"]]}}))
        .collect();
    answer(&one, &first, LEARNER, json!(answers), 201).await;
    submit(&one, &first, LEARNER, 201).await;

    // Through the other instance: the first question reworded, a third one added.
    let path = format!("/assessment/v1/tests/{test}");
    two.call(Method::POST, &format!("{path}/unpublish"), None)
        .await
        .expect_status(201);
    let q0 = qs[0]["questionId"].as_str().unwrap();
    two.call(
        Method::PATCH,
        &format!("/assessment/v1/questions/{q0}"),
        Some(json!({"text": "a2"})),
    )
    .await
    .expect_status(200);
    let mut added = mcq("c");
    added["testId"] = json!(test);
    added["sectionId"] = json!(section);
    two.call(Method::POST, "/assessment/v1/questions", Some(added))
        .await
        .expect_status(201);
    two.call(Method::POST, &format!("{path}/publish"), None)
        .await
        .expect_status(201);
    heard(&one).await;

    let second = start_attempt(&one, &test, OTHER_LEARNER).await;
    let body = view(&one, &paper(&second, OTHER_LEARNER), OTHER_LEARNER, None)
        .await
        .expect_status(200);
    assert_eq!(texts(&body, "text"), ["a2", "b", "c"]);
    // The first attempt's sheet shows its two questions, as they were when it started.
    let sheet = format!("{ATTEMPTS}/{first}/answersheet");
    let body = view(&one, &sheet, LEARNER, None).await.expect_status(200);
    assert_eq!(texts(&body, "questionText"), ["a", "b"]);
    let r = submit(&one, &second, OTHER_LEARNER, 201).await;
    assert_eq!(r["result"]["totalMarks"], 3, "{r}");
}

/// A burst of learners arriving at a test nobody has opened yet waits for one read of it:
/// the hierarchy is rendered once and the paper material read once, not once per request.
#[tokio::test]
async fn a_burst_on_a_test_not_kept_yet_reads_it_once() {
    let app = TestApp::spawn().await;
    let (test, _) = published_test(&app, json!({}), vec![mcq("a"), mcq("b")]).await;
    let learners: Vec<&'static str> = (0..12)
        .map(|i| &*Box::leak(format!("9c0d1e2f-3a4b-4c5d-8e6f-7a8b9c0d1e{i:02}").into_boxed_str()))
        .collect();
    let views = join_all((0..12).map(|_| hierarchy(&app, &test, None))).await;
    assert!(views.iter().all(|v| v.status == 200));
    let attempts = join_all(learners.iter().map(|u| start(&app, &test, u, 201))).await;
    assert_eq!(attempts.len(), 12);
    let metrics = app.get("/metrics").await.text();
    for kind in ["learner_hierarchy", "paper_material"] {
        let line = format!("test_entries_made_total{{kind=\"{kind}\"}} 1");
        assert!(metrics.lines().any(|l| l == line), "no {line} in {metrics}");
    }
}

/// The learner's views of a published test do not read its row while a PostgreSQL instance
/// knows it: a change the instance makes itself is seen at once, one made by another
/// instance or behind the service's back (the trigger announces both) once it is heard.
#[tokio::test]
async fn a_change_to_a_test_reaches_its_own_instance_at_once_and_the_others_when_heard() {
    let one = TestApp::spawn().await;
    let two = one.beside().await;
    let (test, _) = published_test(&one, json!({}), vec![mcq("a")]).await;
    for app in [&one, &two] {
        known(app, &test).await;
    }
    let path = format!("/assessment/v1/tests/{test}");
    one.call(Method::POST, &format!("{path}/unpublish"), None)
        .await
        .expect_status(201);
    assert_eq!(hierarchy(&one, &test, None).await.status, 404, "at once");
    heard(&two).await;
    assert_eq!(hierarchy(&two, &test, None).await.status, 404);

    one.call(Method::POST, &format!("{path}/publish"), None)
        .await
        .expect_status(201);
    heard(&two).await;
    for app in [&one, &two] {
        known(app, &test).await;
    }
    exec(
        &one,
        r#"UPDATE "tests" SET "status" = 'unpublished' WHERE "testId" = $1"#,
        &test,
    )
    .await;
    for app in [&one, &two] {
        heard(app).await;
        assert_eq!(hierarchy(app, &test, None).await.status, 404);
    }
}

/// Publishing renders the learner hierarchy on the instance that publishes: the first learners
/// get the kept view instead of waiting for its render.
#[tokio::test]
async fn publishing_renders_the_learner_hierarchy_before_any_learner_asks() {
    let app = TestApp::spawn().await;
    assert!(app.state.views.is_empty());
    let (test, _) = published_test(&app, json!({}), vec![mcq("a")]).await;
    assert_eq!(app.state.views.len(), 1, "rendered at publish");
    let published = app
        .call(Method::GET, &format!("/assessment/v1/tests/{test}"), None)
        .await
        .expect_status(200);
    let at =
        chrono::DateTime::parse_from_rfc3339(published["result"]["updatedAt"].as_str().unwrap())
            .unwrap();
    let first = hierarchy(&app, &test, None).await;
    assert_eq!(question_count(&first.expect_status(200)), 1);
    // The kept view is the published version's (its tag carries that `updatedAt`).
    let tag = first.header("etag").unwrap();
    assert!(
        tag.ends_with(&format!("-{}\"", at.timestamp_micros())),
        "{tag}"
    );
    assert_eq!(app.state.views.len(), 1);
}
