//! The answer save after an attempt's first: scored with what the first save read and kept in
//! the process, written only if the database still holds what that assumed (on PostgreSQL in
//! one statement). Whatever changed in the database since (the
//! attempt's owner, state or deadline, its test's end date or grading type) must be refused or
//! honoured exactly as the general path does, with nothing written by a refused save; and two
//! instances on one database must never score with a key the database no longer holds.

use http::Method;
use serde_json::{Value, json};

use crate::harness::{ATTEMPTS as A, *};

const LEARNER: &str = "6a7b8c9d-0e1f-4a2b-8c3d-4e5f6a7b8c9d";
const OTHER_LEARNER: &str = "7b8c9d0e-1f2a-4b3c-9d4e-5f6a7b8c9d0e";

/// The learner's answer sheet: each answered question's stored answer and score.
async fn sheet(app: &TestApp, attempt: &str, user: &'static str) -> Value {
    app.call_with(
        Method::GET,
        &format!("{A}/{attempt}/answersheet"),
        None,
        &as_user(user),
    )
    .await
    .expect_status(200)["result"]
        .clone()
}

/// How many answers the attempt holds, read from the database.
async fn stored_answers(app: &TestApp, attempt: &str) -> i64 {
    use assessment_service::store::{Id, Pools};
    let sql = r#"SELECT COUNT(*) FROM "testUserAnswers" WHERE "attemptId" = $1"#;
    let id = Id(attempt.parse().unwrap());
    match app.state.store.pools() {
        Pools::Sqlite { writer, .. } => sqlx::query_scalar(sql).bind(id).fetch_one(writer).await,
        Pools::Postgres(pool) => sqlx::query_scalar(sql).bind(id).fetch_one(pool).await,
    }
    .unwrap()
}

/// The stored score (hundredths) of the attempt's answer to `q`.
async fn stored_score(app: &TestApp, attempt: &str, q: &Value) -> Option<i64> {
    use assessment_service::store::{Id, Pools};
    let sql =
        r#"SELECT "score" FROM "testUserAnswers" WHERE "attemptId" = $1 AND "questionId" = $2"#;
    let (a, q) = (
        Id(attempt.parse().unwrap()),
        Id(q["questionId"].as_str().unwrap().parse().unwrap()),
    );
    match app.state.store.pools() {
        Pools::Sqlite { writer, .. } => {
            sqlx::query_scalar(sql)
                .bind(a)
                .bind(q)
                .fetch_one(writer)
                .await
        }
        Pools::Postgres(pool) => {
            sqlx::query_scalar(sql)
                .bind(a)
                .bind(q)
                .fetch_one(pool)
                .await
        }
    }
    .unwrap()
}

#[tokio::test]
async fn a_save_after_the_first_refuses_what_changed_in_the_database_and_writes_nothing() {
    let app = TestApp::spawn().await;
    let (test, qs) = published_test(
        &app,
        json!({}),
        vec![mcq_worth("a", 2), mcq_worth("b", 3), mcq_worth("c", 1)],
    )
    .await;
    let attempt = start_attempt(&app, &test, LEARNER).await;
    let first = json!([{"questionId": qs[0]["questionId"], "answer": {"selectedOptionIds": [opt(&qs[0], 0)]}}]);
    answer(&app, &attempt, LEARNER, first, 201).await;
    assert_eq!(
        app.state.keys.len(),
        1,
        "the first save keeps the attempt's keys"
    );
    let second = json!([{"questionId": qs[1]["questionId"], "answer": {"selectedOptionIds": [opt(&qs[1], 0)]}}]);
    let events_before = events(&app, "answer.submitted").await.len();

    // Someone else's attempt: 404, as for the first save.
    let r = answer(&app, &attempt, OTHER_LEARNER, second.clone(), 404).await;
    assert_eq!(r["params"]["errmsg"], "Attempt not found");
    // The test's end date passed behind the service's back.
    exec(
        &app,
        r#"UPDATE "tests" SET "endDate" = '2001-01-01T00:00:00Z' WHERE "testId" = $1"#,
        &test,
    )
    .await;
    let r = answer(&app, &attempt, LEARNER, second.clone(), 422).await;
    assert_eq!(
        r["params"]["errmsg"],
        "Test is no longer available for attempts"
    );
    exec(
        &app,
        r#"UPDATE "tests" SET "endDate" = NULL WHERE "testId" = $1"#,
        &test,
    )
    .await;
    // The attempt's deadline passed.
    exec(
        &app,
        r#"UPDATE "testAttempts" SET "deadlineAt" = '2001-01-01T00:00:00Z' WHERE "attemptId" = $1"#,
        &attempt,
    )
    .await;
    let r = answer(&app, &attempt, LEARNER, second.clone(), 422).await;
    assert_eq!(
        r["params"]["errmsg"],
        "The time allowed for this attempt is over"
    );
    exec(
        &app,
        r#"UPDATE "testAttempts" SET "deadlineAt" = NULL WHERE "attemptId" = $1"#,
        &attempt,
    )
    .await;
    // An answer the key refuses: the same 400 as the general path gives.
    let foreign = json!([{"questionId": qs[1]["questionId"], "answer": {"selectedOptionIds": [opt(&qs[0], 0)]}}]);
    answer(&app, &attempt, LEARNER, foreign, 400).await;
    let twice = json!([
        {"questionId": qs[1]["questionId"], "answer": {"selectedOptionIds": [opt(&qs[1], 0)]}},
        {"questionId": qs[1]["questionId"], "answer": {"selectedOptionIds": [opt(&qs[1], 1)]}},
    ]);
    answer(&app, &attempt, LEARNER, twice, 400).await;
    assert_eq!(
        stored_answers(&app, &attempt).await,
        1,
        "no refused save wrote an answer"
    );
    assert_eq!(
        events(&app, "answer.submitted").await.len(),
        events_before,
        "nor an event"
    );

    // Still open: the save goes through.
    answer(&app, &attempt, LEARNER, second.clone(), 201).await;
    assert_eq!(stored_answers(&app, &attempt).await, 2);
    // Submitted: refused with the general path's 409.
    let r = submit(&app, &attempt, LEARNER, 201).await;
    assert_eq!(r["result"]["score"], 5, "{r}");
    let third = json!([{"questionId": qs[2]["questionId"], "answer": {"selectedOptionIds": [opt(&qs[2], 0)]}}]);
    let r = answer(&app, &attempt, LEARNER, third, 409).await;
    assert_eq!(
        r["params"]["errmsg"],
        "Cannot submit answer to completed attempt"
    );
    assert_eq!(stored_answers(&app, &attempt).await, 2);
}

/// A republish may change a test's grading type while an attempt is paused: later saves grade
/// under the type the database holds, not the one the first save saw.
#[tokio::test]
async fn a_save_after_the_grading_type_changed_grades_under_the_new_type() {
    let app = TestApp::spawn().await;
    let (test, qs) =
        published_test(&app, json!({}), vec![mcq_worth("a", 2), mcq_worth("b", 3)]).await;
    let attempt = start_attempt(&app, &test, LEARNER).await;
    answer(&app, &attempt, LEARNER,
        json!([{"questionId": qs[0]["questionId"], "answer": {"selectedOptionIds": [opt(&qs[0], 0)]}}]), 201).await;
    exec(
        &app,
        r#"UPDATE "tests" SET "gradingType" = 'feedback' WHERE "testId" = $1"#,
        &test,
    )
    .await;
    answer(&app, &attempt, LEARNER,
        json!([{"questionId": qs[1]["questionId"], "answer": {"selectedOptionIds": [opt(&qs[1], 0)]}}]), 201).await;
    // Stored as saved: the first under the quiz key (2 marks, in hundredths), the second
    // (the right option, worth 3 under the quiz key) unscored: a feedback test has no key.
    assert_eq!(stored_score(&app, &attempt, &qs[0]).await, Some(200));
    assert_eq!(stored_score(&app, &attempt, &qs[1]).await, Some(0));
}

/// A save of several answers appends one event per answer, in the body's order, each with the
/// attempt's ordering key, in the same commit as the answers.
#[tokio::test]
async fn a_save_of_several_answers_appends_their_events_in_order() {
    let app = TestApp::spawn().await;
    let (test, qs) = published_test(
        &app,
        json!({}),
        vec![mcq_worth("a", 1), mcq_worth("b", 1), mcq_worth("c", 1)],
    )
    .await;
    let attempt = start_attempt(&app, &test, LEARNER).await;
    // Saved through an instance that did not see the start, so that its first save reads the
    // keys (the general path) and its second uses them (the guarded one).
    let two = app.beside().await;
    for round in 0..2 {
        let body: Vec<Value> = [2, 0, 1]
            .iter()
            .map(|i| json!({"questionId": qs[*i]["questionId"], "answer": {"selectedOptionIds": [opt(&qs[*i], round)]}}))
            .collect();
        answer(&two, &attempt, LEARNER, json!(body), 201).await;
    }
    let stored = assessment_service::store::outbox::with_name(&app.state.store, "answer.submitted")
        .await
        .unwrap();
    let order: Vec<Value> = stored
        .iter()
        .map(|e| e.payload.0["data"]["questionId"].clone())
        .collect();
    let expected: Vec<Value> = [2, 0, 1, 2, 0, 1]
        .iter()
        .map(|i| qs[*i]["questionId"].clone())
        .collect();
    assert_eq!(order, expected);
    let key = format!("attempt:{attempt}");
    assert!(
        stored
            .iter()
            .all(|e| e.ordering_key.as_deref() == Some(key.as_str()))
    );
    assert!(
        stored
            .iter()
            .all(|e| e.payload.0["data"]["attemptId"] == json!(attempt)
                && e.payload.0["data"]["testId"] == json!(test)
                && e.payload.0["context"]["userId"] == json!(LEARNER))
    );
    // The first save took the general path, the second the guarded one.
    let metrics = two.get("/metrics").await.text();
    for (path, n) in [("locked", "1"), ("guarded", "1")] {
        let line = format!("answer_saves_total{{path=\"{path}\"}} {n}");
        assert!(metrics.lines().any(|l| l == line), "no {line} in {metrics}");
    }
    // Last write wins: the second round's answers (all wrong) are the ones scored.
    let r = submit(&app, &attempt, LEARNER, 201).await;
    assert_eq!(r["result"]["score"], 0, "{r}");
    let attempt_row = sheet(&app, &attempt, LEARNER).await;
    assert_eq!(attempt_row["answers"].as_array().unwrap().len(), 3);
}

/// The start keeps the attempt's keys, so its first save is guarded; once the test is
/// republished (a new `updatedAt`, as any change of a key needs), the next save reads the keys
/// again (the general path) and later ones use what it read.
#[tokio::test]
async fn a_republish_sends_the_next_save_to_the_general_path() {
    let app = TestApp::spawn().await;
    let (test, qs) =
        published_test(&app, json!({}), vec![mcq_worth("a", 2), mcq_worth("b", 3)]).await;
    let attempt = start_attempt(&app, &test, LEARNER).await;
    let save = |q: usize| {
        answer(
            &app,
            &attempt,
            LEARNER,
            json!([{"questionId": qs[q]["questionId"], "answer": {"selectedOptionIds": [opt(&qs[q], 0)]}}]),
            201,
        )
    };
    let saves = |text: &str, path: &str| -> u64 {
        let name = format!("answer_saves_total{{path=\"{path}\"}} ");
        text.lines()
            .find_map(|l| {
                l.strip_prefix(name.as_str())
                    .and_then(|v| v.trim().parse().ok())
            })
            .unwrap_or(0)
    };
    save(0).await;
    let m = app.get("/metrics").await.text();
    assert_eq!((saves(&m, "locked"), saves(&m, "guarded")), (0, 1), "{m}");
    let path = format!("/assessment/v1/tests/{test}");
    for step in ["unpublish", "publish"] {
        app.call(Method::POST, &format!("{path}/{step}"), None)
            .await
            .expect_status(201);
    }
    save(1).await;
    save(0).await;
    let m = app.get("/metrics").await.text();
    assert_eq!((saves(&m, "locked"), saves(&m, "guarded")), (1, 2), "{m}");
    let r = submit(&app, &attempt, LEARNER, 201).await;
    assert_eq!(r["result"]["score"], 5, "{r}");
}

/// Saves racing the submission: each save either lands before it (201, and counts in the
/// score) or after it (409, and writes nothing). No accepted answer is lost.
#[tokio::test]
async fn saves_racing_the_submission_are_either_scored_or_refused() {
    let app = TestApp::spawn().await;
    let questions: Vec<Value> = (0..12).map(|i| mcq_worth(&format!("q{i}"), 1)).collect();
    let (test, qs) = published_test(&app, json!({}), questions).await;
    let attempt = start_attempt(&app, &test, LEARNER).await;
    answer(&app, &attempt, LEARNER,
        json!([{"questionId": qs[0]["questionId"], "answer": {"selectedOptionIds": [opt(&qs[0], 0)]}}]), 201).await;
    let saves = (1..12).map(|i| {
        let app = &app;
        let attempt = &attempt;
        let body = json!({"answers": [{"questionId": qs[i]["questionId"], "answer": {"selectedOptionIds": [opt(&qs[i], 0)]}}]});
        async move {
            app.call_with(Method::POST, &format!("{A}/{attempt}/answers"), Some(body), &as_user(LEARNER))
                .await
                .status
                .as_u16()
        }
    });
    let submission = async {
        tokio::task::yield_now().await;
        submit(&app, &attempt, LEARNER, 201).await
    };
    let (statuses, submitted) = tokio::join!(join_all(saves), submission);
    assert!(
        statuses.iter().all(|s| *s == 201 || *s == 409),
        "{statuses:?}"
    );
    let accepted = 1 + statuses.iter().filter(|s| **s == 201).count() as i64;
    assert_eq!(
        stored_answers(&app, &attempt).await,
        accepted,
        "{statuses:?}"
    );
    assert_eq!(
        submitted["result"]["score"],
        json!(accepted),
        "{statuses:?} {submitted}"
    );
}

/// Two instances on one database: learners save through both while an author, through the
/// second, unpublishes, changes a key under them and republishes; they keep the version they
/// started on. New learners then take the test through both (their first save through the
/// instance that kept the old attempts' keys) and are scored with the new key.
#[tokio::test]
async fn two_instances_never_score_with_a_key_the_database_no_longer_holds() {
    let one = TestApp::spawn().await;
    let two = one.beside().await;
    let (test, qs) =
        published_test(&one, json!({}), vec![mcq_worth("a", 2), mcq_worth("b", 3)]).await;
    let user = |prefix: &str, i: usize| -> &'static str {
        Box::leak(format!("{prefix}-2a3b-4c4d-8e5f-6a7b8c9d0e{i:02}").into_boxed_str())
    };

    /// Answers option `pick` of both questions, alternating instances, twice; submits.
    async fn take(
        one: &TestApp,
        two: &TestApp,
        attempt: &str,
        qs: &[Value],
        user: &'static str,
        pick: usize,
    ) -> Value {
        for (n, app) in [one, two, two, one].iter().enumerate() {
            let q = &qs[n % 2];
            answer(app, attempt, user,
                json!([{"questionId": q["questionId"], "answer": {"selectedOptionIds": [opt(q, pick)]}}]), 201).await;
        }
        submit(two, attempt, user, 201).await["result"]["score"].clone()
    }
    /// Unpublishes, makes option 1 the right one of the first question (expecting `expect`)
    /// and publishes again; returns the edit's status.
    async fn republish(two: &TestApp, test: &str, qs: &[Value], expect: u16) -> u16 {
        let path = format!("/assessment/v1/tests/{test}");
        two.call(Method::POST, &format!("{path}/unpublish"), None)
            .await
            .expect_status(201);
        let q0 = qs[0]["questionId"].as_str().unwrap();
        let edit = two
            .call(
                Method::PATCH,
                &format!("/assessment/v1/questions/{q0}"),
                Some(json!({
                    "options": [
                        {"questionOptionId": opt(&qs[0], 0), "text": "right", "isCorrect": false},
                        {"questionOptionId": opt(&qs[0], 1), "text": "wrong", "isCorrect": true}]
                })),
            )
            .await
            .status
            .as_u16();
        assert_eq!(edit, expect, "the key edit answered {edit}");
        two.call(Method::POST, &format!("{path}/publish"), None)
            .await
            .expect_status(201);
        edit
    }

    let first: Vec<&'static str> = (0..6).map(|i| user("8c9d0e1f", i)).collect();
    let mut attempts = Vec::new();
    for (i, u) in first.iter().enumerate() {
        let app = if i % 2 == 0 { &one } else { &two };
        attempts.push(start_attempt(app, &test, u).await);
    }
    let round = join_all(
        first
            .iter()
            .zip(&attempts)
            .enumerate()
            .map(|(i, (u, a))| take(&one, &two, a, &qs, u, i % 2)),
    );
    // Attempts in progress hold the revision they started with: the edit goes through.
    let (scores, edit) = tokio::join!(round, republish(&two, &test, &qs, 200));
    for (i, s) in scores.iter().enumerate() {
        // Option 0 of both: 2 + 3 under the original key; option 1 of both: 0.
        let expected = if i % 2 == 0 { 5 } else { 0 };
        assert_eq!(
            s,
            &json!(expected),
            "learner {i} (key edit answered {edit})"
        );
    }
    let later: Vec<&'static str> = (0..4).map(|i| user("9d0e1f2a", i)).collect();
    let mut attempts = Vec::new();
    for u in &later {
        attempts.push(start_attempt(&two, &test, u).await);
    }
    let scores = join_all(
        later
            .iter()
            .zip(&attempts)
            .enumerate()
            .map(|(i, (u, a))| take(&one, &two, a, &qs, u, i % 2)),
    )
    .await;
    for (i, s) in scores.iter().enumerate() {
        // Under the flipped key: option 0 of both gives 0 + 3, option 1 gives 2 + 0.
        let expected = if i % 2 == 0 { 3 } else { 2 };
        assert_eq!(s, &json!(expected), "new learner {i} under the changed key");
    }
}

/// Guarded saves arriving together share commits (group commit): on PostgreSQL one
/// statement, on SQLite one transaction. Each is answered only after its commit, and every one
/// is stored.
#[tokio::test]
async fn saves_arriving_together_share_commits() {
    let app = TestApp::spawn().await;
    let (test, qs) =
        published_test(&app, json!({}), vec![mcq_worth("a", 1), mcq_worth("b", 1)]).await;
    let learners: Vec<&'static str> = (0..20)
        .map(|i| &*Box::leak(format!("5e6f7a8b-9c0d-4e1f-8a2b-3c4d5e6f7a{i:02}").into_boxed_str()))
        .collect();
    let mut attempts = Vec::new();
    for u in &learners {
        let a = start_attempt(&app, &test, u).await;
        answer(&app, &a, u, json!([{"questionId": qs[0]["questionId"], "answer": {"selectedOptionIds": [opt(&qs[0], 0)]}}]), 201).await;
        attempts.push(a);
    }
    let metric = |text: &str, name: &str| -> u64 {
        text.lines()
            .find_map(|l| l.strip_prefix(name).and_then(|v| v.trim().parse().ok()))
            .unwrap_or(0)
    };
    let before = app.get("/metrics").await.text();
    let saves = learners.iter().zip(&attempts).map(|(u, a)| {
        answer(&app, a, u, json!([{"questionId": qs[1]["questionId"], "answer": {"selectedOptionIds": [opt(&qs[1], 0)]}}]), 201)
    });
    join_all(saves).await;
    let after = app.get("/metrics").await.text();
    for a in &attempts {
        assert_eq!(stored_answers(&app, a).await, 2);
    }
    let guarded = metric(&after, r#"answer_saves_total{path="guarded"} "#)
        - metric(&before, r#"answer_saves_total{path="guarded"} "#);
    assert_eq!(guarded, 20, "{after}");
    let commits = metric(&after, "answer_save_commits_total ")
        - metric(&before, "answer_save_commits_total ");
    assert!(
        (1..20).contains(&commits),
        "20 saves took {commits} commits"
    );
}
