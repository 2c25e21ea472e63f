//! Regrade with preview (issue 19, item 2): after a key or marks change, submitted attempts
//! are scored again; the preview writes nothing, applying writes each change once with its
//! history row and event.

use http::Method;
use serde_json::{Value, json};

use crate::harness::*;

const REVIEWER: &str = "c1000000-0000-4000-8000-00000000000f";

fn learner(i: usize) -> &'static str {
    Box::leak(format!("c1000000-0000-4000-8000-{i:012}").into_boxed_str())
}

/// Unpublishes `test`, makes option 1 of `q` the right one, publishes again.
async fn flip_key(app: &TestApp, test: &str, q: &Value) {
    let options = json!({"options": [
        {"questionOptionId": opt(q, 0), "text": "right", "isCorrect": false},
        {"questionOptionId": opt(q, 1), "text": "wrong", "isCorrect": true}]});
    republish_with(app, test, &q["questionId"], options).await;
}

async fn regrade(app: &TestApp, test: &str, step: &str, body: Value, status: u16) -> Value {
    let path = match step {
        "preview" => format!("/assessment/v1/tests/{test}/regrade/preview"),
        _ => format!("/assessment/v1/tests/{test}/regrade"),
    };
    app.call(Method::POST, &path, Some(body))
        .await
        .expect_status(status)
}

async fn history(app: &TestApp, test: &str) -> Value {
    app.call(
        Method::GET,
        &format!("/assessment/v1/tests/{test}/regrades?limit=100"),
        None,
    )
    .await
    .expect_status(200)["result"]
        .clone()
}

/// Takes `test` as `user`, picking option `picks[i]` of question `i`; returns the attempt.
async fn take(
    app: &TestApp,
    test: &str,
    qs: &[Value],
    user: &'static str,
    picks: &[usize],
) -> String {
    let attempt = start_attempt(app, test, user).await;
    let answers: Vec<Value> = qs.iter().zip(picks).map(|(q, p)| pick(q, *p)).collect();
    answer(app, &attempt, user, json!(answers), 201).await;
    submit(app, &attempt, user, 201).await;
    attempt
}

/// Three learners, a key corrected after they submitted: the preview shows each score and
/// result before and after and writes nothing; applying writes them with a history row and an
/// event each; applying again changes nothing.
#[tokio::test]
async fn preview_writes_nothing_and_applying_twice_changes_nothing_the_second_time() {
    let app = TestApp::spawn().await;
    let (test, qs) = published_test(
        &app,
        json!({"passingMarks": 3}),
        vec![mcq_worth("first", 2), mcq_worth("second", 3)],
    )
    .await;
    // (option of q0, option of q1): scores 5, 3, 2 under the first key.
    let a = [
        take(&app, &test, &qs, learner(1), &[0, 0]).await,
        take(&app, &test, &qs, learner(2), &[1, 0]).await,
        take(&app, &test, &qs, learner(3), &[0, 1]).await,
    ];
    flip_key(&app, &test, &qs[0]).await;

    let before = regrade(&app, &test, "preview", json!({}), 200).await["result"].clone();
    assert_eq!(before["toVersion"], 2, "{before}");
    assert_eq!(before["examined"], 3);
    assert_eq!(before["changed"], 3);
    let row = |out: &Value, attempt: &str| -> Value {
        out["attempts"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["attemptId"] == attempt)
            .cloned()
            .unwrap_or_else(|| panic!("{attempt} not in {out}"))
    };
    for (attempt, old, new, old_result, new_result) in [
        (&a[0], 5, 3, "P", "P"),
        (&a[1], 3, 5, "P", "P"),
        (&a[2], 2, 0, "F", "F"),
    ] {
        let r = row(&before, attempt);
        assert_eq!(
            (
                &r["oldScore"],
                &r["newScore"],
                &r["oldResult"],
                &r["newResult"]
            ),
            (
                &json!(old),
                &json!(new),
                &json!(old_result),
                &json!(new_result)
            ),
            "{r}"
        );
        assert_eq!(r["fromVersion"], 1);
        assert_eq!(r["answersChanged"], 1);
    }
    // Nothing written: the same preview again, no history, no event.
    let again = regrade(&app, &test, "preview", json!({}), 200).await["result"].clone();
    assert_eq!(again, before);
    assert_eq!(history(&app, &test).await["totalElements"], 0);
    assert!(events(&app, "attempt.regraded").await.is_empty());

    let applied = regrade(
        &app,
        &test,
        "apply",
        json!({"reason": "key of q1 was wrong"}),
        200,
    )
    .await["result"]
        .clone();
    assert_eq!(applied["changed"], 3, "{applied}");
    assert_eq!(applied["examined"], 3);
    let h = history(&app, &test).await;
    assert_eq!(h["totalElements"], 3, "{h}");
    for r in h["content"].as_array().unwrap() {
        assert_eq!(r["reason"], "key of q1 was wrong");
        assert_eq!(
            (r["fromVersion"].clone(), r["toVersion"].clone()),
            (json!(1), json!(2))
        );
        assert_eq!(r["regradedBy"], USER);
    }
    let sent = events(&app, "attempt.regraded").await;
    assert_eq!(sent.len(), 3);
    let second = sent
        .iter()
        .find(|e| e["data"]["attemptId"] == a[1].as_str())
        .unwrap();
    assert_eq!(second["data"]["oldScore"], 3, "{second}");
    assert_eq!(second["data"]["newScore"], 5);
    assert_eq!(second["data"]["grade"], 5);
    assert_eq!(second["data"]["gradedAttemptId"], a[1].as_str());
    assert_eq!(second["data"]["reason"], "key of q1 was wrong");

    // Written: the preview now finds nothing to change, and applying again changes nothing.
    let after = regrade(&app, &test, "preview", json!({}), 200).await["result"].clone();
    assert_eq!(after["changed"], 0, "{after}");
    assert_eq!(row(&after, &a[1])["oldScore"], 5);
    assert_eq!(row(&after, &a[1])["fromVersion"], 2);
    let twice = regrade(&app, &test, "apply", json!({}), 200).await["result"].clone();
    assert_eq!(
        (twice["examined"].clone(), twice["changed"].clone()),
        (json!(3), json!(0))
    );
    assert_eq!(history(&app, &test).await["totalElements"], 3);
    assert_eq!(events(&app, "attempt.regraded").await.len(), 3);

    // The learner's own status shows the regraded score.
    let status = app
        .call_with(
            Method::GET,
            &format!("/assessment/v1/tests/{test}/users/{}/status", learner(2)),
            None,
            &as_user(learner(2)),
        )
        .await
        .expect_status(200);
    assert_eq!(status["result"]["gradedAttempt"]["score"], 5, "{status}");
}

/// A reviewer's score stays through a regrade unless the request overrides it: then the
/// answer waits for a reviewer again.
#[tokio::test]
async fn a_reviewers_score_is_kept_unless_the_request_overrides_it() {
    let app = TestApp::spawn().await;
    let (test, qs) = published_test(
        &app,
        json!({"passingMarks": 1}),
        vec![
            mcq_worth("auto", 2),
            json!({"text": "Why?", "type": "essay", "marks": 4}),
        ],
    )
    .await;
    let attempt = start_attempt(&app, &test, learner(1)).await;
    answer(
        &app,
        &attempt,
        learner(1),
        json!([
        pick(&qs[0], 0),
        {"questionId": qs[1]["questionId"], "answer": {"text": "because"}}]),
        201,
    )
    .await;
    submit(&app, &attempt, learner(1), 201).await;
    let r = review(
        &app,
        &attempt,
        REVIEWER,
        json!({"answers": [{"questionId": qs[1]["questionId"], "score": 3}]}),
        201,
    )
    .await;
    assert_eq!(r["result"]["score"], 5, "{r}");
    flip_key(&app, &test, &qs[0]).await;

    let kept = regrade(&app, &test, "apply", json!({}), 200).await["result"].clone();
    let row = &kept["attempts"][0];
    assert_eq!(
        (row["oldScore"].clone(), row["newScore"].clone()),
        (json!(5), json!(3)),
        "{kept}"
    );
    assert_eq!(row["newReviewStatus"], "R");
    assert_eq!(row["newResult"], "P");

    let overridden =
        regrade(&app, &test, "apply", json!({"overrideManual": true}), 200).await["result"].clone();
    let row = &overridden["attempts"][0];
    assert_eq!(row["newScore"], 0, "{overridden}");
    assert_eq!(row["newResult"], Value::Null);
    assert_eq!(row["newReviewStatus"], "U");
    // The essay waits for a reviewer again.
    let pending = app
        .call(Method::GET, "/assessment/v1/attempts/reviews/pending", None)
        .await
        .expect_status(200);
    assert!(pending.to_string().contains(attempt.as_str()), "{pending}");
}

/// More attempts than one batch holds: every one is regraded, each batch committed on its own.
#[tokio::test]
async fn attempts_beyond_one_batch_are_all_regraded() {
    let app = TestApp::spawn().await;
    let (test, qs) = published_test(&app, json!({}), vec![mcq_worth("only", 1)]).await;
    let n = 103;
    for i in 0..n {
        take(&app, &test, &qs, learner(100 + i), &[i % 2]).await;
    }
    flip_key(&app, &test, &qs[0]).await;
    let out =
        regrade(&app, &test, "apply", json!({"reason": "batch"}), 200).await["result"].clone();
    assert_eq!(
        (out["examined"].clone(), out["changed"].clone()),
        (json!(n), json!(n))
    );
    assert_eq!(history(&app, &test).await["totalElements"], n);
    let again = regrade(&app, &test, "apply", json!({}), 200).await["result"].clone();
    assert_eq!(again["changed"], 0);
}

/// Bad requests get 4xx; a version or a list of attempts narrows the regrade; another
/// tenant sees nothing.
#[tokio::test]
async fn regrade_checks_its_request_and_narrows_to_what_it_names() {
    let app = TestApp::spawn().await;
    let (test, qs) = published_test(&app, json!({}), vec![mcq_worth("only", 1)]).await;
    let first = take(&app, &test, &qs, learner(1), &[0]).await;
    take(&app, &test, &qs, learner(2), &[0]).await;
    flip_key(&app, &test, &qs[0]).await;
    let third = take(&app, &test, &qs, learner(3), &[1]).await;

    regrade(&app, &test, "preview", json!({"version": -1}), 400).await;
    regrade(&app, &test, "preview", json!({"surprise": 1}), 400).await;
    regrade(
        &app,
        &test,
        "apply",
        json!({"reason": "x".repeat(1001)}),
        400,
    )
    .await;
    let only_old =
        regrade(&app, &test, "preview", json!({"version": 1}), 200).await["result"].clone();
    assert_eq!(only_old["examined"], 2, "{only_old}");
    let only_new =
        regrade(&app, &test, "preview", json!({"version": 2}), 200).await["result"].clone();
    assert_eq!(
        (only_new["examined"].clone(), only_new["changed"].clone()),
        (json!(1), json!(0))
    );
    assert_eq!(only_new["attempts"][0]["attemptId"], third.as_str());
    let one =
        regrade(&app, &test, "apply", json!({"attemptIds": [first]}), 200).await["result"].clone();
    assert_eq!(
        (one["examined"].clone(), one["changed"].clone()),
        (json!(1), json!(1)),
        "{one}"
    );

    let other = [
        ("tenantid", OTHER_TENANT),
        ("organisationid", ORG),
        ("userid", USER),
    ];
    let path = format!("/assessment/v1/tests/{test}/regrade");
    let r = app
        .call_with(Method::POST, &path, Some(json!({})), &other)
        .await;
    assert_eq!(r.status, 404);
    let r = app
        .call_with(Method::GET, &format!("{path}s"), None, &other)
        .await;
    assert_eq!(r.status, 404);

    // An unpublished test has no published version to regrade against.
    app.call(
        Method::POST,
        &format!("/assessment/v1/tests/{test}/unpublish"),
        None,
    )
    .await
    .expect_status(201);
    regrade(&app, &test, "apply", json!({}), 422).await;
}

/// A rule-based test draws from the bank, where a key can be corrected without an unpublish,
/// even while an attempt holding the question runs: the attempt keeps the revision it drew,
/// and a regrade afterwards scores it with the correction.
#[tokio::test]
async fn a_bank_correction_reaches_a_rule_based_test_through_a_regrade() {
    let app = TestApp::spawn().await;
    let mut q = mcq_worth("drawn", 1);
    q["status"] = json!("published");
    q["tags"] = json!(["pool"]);
    let q = create_question(&app, q).await;
    let test = create_test(&app, json!({"title": "Drawn", "type": "rule_based"})).await;
    let section = create_section(&app, &test, "S").await;
    app.call(
        Method::POST,
        "/assessment/v1/rules",
        Some(
            json!({"name": "Pool", "ruleType": "category_based", "testId": test,
                    "sectionId": section, "numberOfQuestions": 1, "poolSize": 1,
                    "criteria": {"tags": ["pool"]}}),
        ),
    )
    .await
    .expect_status(201);
    publish(&app, &test, 201).await;
    let attempt = start_attempt(&app, &test, learner(1)).await;

    // Corrected in the bank while the attempt runs: allowed, and not seen by the attempt.
    let id = q["questionId"].as_str().unwrap();
    app.call(
        Method::PATCH,
        &format!("/assessment/v1/questions/{id}"),
        Some(json!({"options": [
            {"questionOptionId": opt(&q, 0), "text": "right", "isCorrect": false},
            {"questionOptionId": opt(&q, 1), "text": "wrong", "isCorrect": true}]})),
    )
    .await
    .expect_status(200);
    answer(&app, &attempt, learner(1), json!([pick(&q, 0)]), 201).await;
    let done = submit(&app, &attempt, learner(1), 201).await;
    assert_eq!(done["result"]["score"], 1, "{done}");

    let versions = app
        .call(
            Method::GET,
            &format!("/assessment/v1/tests/{test}/versions"),
            None,
        )
        .await
        .expect_status(200);
    assert_eq!(
        versions["result"][0]["rules"][0]["name"], "Pool",
        "{versions}"
    );
    let out =
        regrade(&app, &test, "apply", json!({"reason": "bank fix"}), 200).await["result"].clone();
    let row = &out["attempts"][0];
    assert_eq!(
        (row["oldScore"].clone(), row["newScore"].clone()),
        (json!(1), json!(0)),
        "{out}"
    );
    assert_eq!(
        (row["fromVersion"].clone(), out["toVersion"].clone()),
        (json!(1), json!(1))
    );
    let again = regrade(&app, &test, "preview", json!({}), 200).await["result"].clone();
    assert_eq!(again["changed"], 0, "{again}");
}
