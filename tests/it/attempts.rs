//! Taking tests: the learner journey, scoring per type, concurrency, deadlines, ownership.

use std::collections::HashSet;

use http::Method;
use serde_json::{Value, json};

use crate::harness::{ATTEMPTS as A, *};
use crate::questions::OTHER_ORG;

const LEARNER: &str = "6a7b8c9d-0e1f-4a2b-8c3d-4e5f6a7b8c9d";
const OTHER_LEARNER: &str = "7b8c9d0e-1f2a-4b3c-9d4e-5f6a7b8c9d0e";

fn opt(q: &Value, i: usize) -> Value {
    q["options"][i]["questionOptionId"].clone()
}

#[tokio::test]
async fn a_full_journey_scores_every_type_exactly() {
    let app = TestApp::spawn().await;
    let (test, qs) = published_test(
        &app,
        json!({"passingMarks": 10}),
        vec![
            json!({"text": "mcq", "type": "mcq", "marks": 2, "options": [{"text": "a", "isCorrect": true}, {"text": "b"}]}),
            json!({"text": "tf", "type": "true_false", "marks": 1, "options": [{"text": "T"}, {"text": "F", "isCorrect": true}]}),
            json!({"text": "ma", "type": "multiple_answer", "marks": 3, "allowPartialScoring": true,
                   "options": [{"text": "x", "isCorrect": true, "marks": 1.5}, {"text": "y", "isCorrect": true, "marks": 1.5}, {"text": "z"}]}),
            json!({"text": "fb", "type": "fill_blank", "marks": 2, "options": [
                {"text": "Paris", "isCorrect": true, "blankIndex": 0}, {"text": "Seine", "isCorrect": true, "blankIndex": 1}]}),
            json!({"text": "m", "type": "match", "marks": 2, "options": [
                {"text": "1", "matchWith": "one", "isCorrect": true}, {"text": "2", "matchWith": "two", "isCorrect": true}]}),
            json!({"text": "dd", "type": "dropdown", "marks": 1, "options": [{"text": "p", "isCorrect": true}, {"text": "q"}]}),
            json!({"text": "cb", "type": "checkbox", "marks": 1.25, "options": [{"text": "c1", "isCorrect": true}, {"text": "c2"}]}),
            json!({"text": "rate", "type": "rating", "marks": 0}),
        ],
    )
    .await;
    let attempt = start_attempt(&app, &test, LEARNER).await;
    let started = events(&app, "attempt.started").await;
    assert_eq!(started.len(), 1);
    assert_eq!(
        started[0]["data"],
        json!({"attemptId": attempt, "testId": test, "attemptNumber": 1})
    );

    let r = answer(&app, &attempt, LEARNER, json!([
        {"questionId": qs[0]["questionId"], "answer": {"selectedOptionIds": [opt(&qs[0], 0)]}},
        {"questionId": qs[1]["questionId"], "answer": {"selectedOptionIds": [opt(&qs[1], 0)]}},
        {"questionId": qs[2]["questionId"], "answer": {"selectedOptionIds": [opt(&qs[2], 0), opt(&qs[2], 2)]}},
        {"questionId": qs[3]["questionId"], "answer": {"blanks": [" paris ", "SEINE"]}},
        {"questionId": qs[4]["questionId"], "answer": {"matches": [
            {"optionId": opt(&qs[4], 0), "matchWith": "One"}, {"optionId": opt(&qs[4], 1), "matchWith": "two"}]}},
        {"questionId": qs[5]["questionId"], "answer": {"selectedOptionIds": [opt(&qs[5], 0)]}},
        {"questionId": qs[6]["questionId"], "answer": {"selectedOptionIds": [opt(&qs[6], 0)]}},
        {"questionId": qs[7]["questionId"], "answer": {"rating": 4}},
    ]), 201)
    .await;
    assert_eq!(r["result"]["message"], "Answers submitted successfully");
    assert_eq!(events(&app, "answer.submitted").await.len(), 8);

    let res = submit(&app, &attempt, LEARNER, 201).await["result"].clone();
    // mcq 2 + tf 0 + ma (1.5 - 1.5 penalty = 0) + fb 2 + match 2 + dropdown 1 + checkbox 1.25 + rating 0
    assert_eq!(res["score"], 8.25);
    assert_eq!(res["totalMarks"], 12.25);
    assert_eq!(res["result"], "F");
    assert_eq!(res["reviewStatus"], "R");
    assert_eq!(res["percentage"], 67.35);
    assert_eq!(res["submissionType"], "self");
    // Each type's own exact score, from the answer sheet.
    let sheet = app
        .call_with(
            Method::GET,
            &format!("{A}/{attempt}/answersheet"),
            None,
            &as_user(LEARNER),
        )
        .await;
    assert_eq!(sheet.status, 200, "{}", sheet.text());
    let scores: Vec<Value> = sheet.json()["result"]["answers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["score"].clone())
        .collect();
    assert_eq!(
        scores,
        vec![
            json!(2),
            json!(0),
            json!(0),
            json!(2),
            json!(2),
            json!(1),
            json!(1.25),
            json!(0)
        ],
        "mcq, true_false, multiple_answer, fill_blank, match, dropdown, checkbox, rating"
    );
    let submitted = events(&app, "attempt.submitted").await;
    assert_eq!(submitted.len(), 1);
    let data = &submitted[0]["data"];
    assert_eq!(data["attemptId"], attempt.as_str());
    assert_eq!(data["score"], 8.25);
    assert_eq!(data["result"], "F");
    assert!(data["timeSpent"].as_i64().unwrap() >= 0);
    assert_eq!(data["reviewStatus"], "R");

    let r = submit(&app, &attempt, LEARNER, 409).await;
    assert_failure_envelope(
        &r,
        "api.attempts.create",
        "CONFLICT",
        "CONFLICT",
        "Attempt is already submitted",
    );
    assert_eq!(
        events(&app, "attempt.submitted").await.len(),
        1,
        "no second event"
    );
    let r = answer(
        &app,
        &attempt,
        LEARNER,
        json!([{"questionId": qs[0]["questionId"], "answer": {"selectedOptionIds": []}}]),
        409,
    )
    .await;
    assert_failure_envelope(
        &r,
        "api.attempts.create",
        "CONFLICT",
        "CONFLICT",
        "Cannot submit answer to completed attempt",
    );

    let r = app
        .call_with(
            Method::GET,
            &format!("/assessment/v1/tests/{test}/users/{LEARNER}/status"),
            None,
            &as_user(LEARNER),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let st = r.json()["result"].clone();
    assert_eq!(st["attemptsMade"], 1);
    assert_eq!(st["canAttempt"], false);
    assert_eq!(st["gradedAttempt"]["score"], 8.25);
    assert_eq!(st["lastAttemptId"], attempt.as_str());
    assert_eq!(st["lastAttemptStatus"], "S");
}

#[tokio::test]
async fn essays_leave_the_attempt_pending_review() {
    let app = TestApp::spawn().await;
    let (test, qs) = published_test(&app, json!({}), vec![
        json!({"text": "mcq", "type": "mcq", "options": [{"text": "a", "isCorrect": true}, {"text": "b"}]}),
        json!({"text": "Why?", "type": "essay", "marks": 5, "params": {"maxLength": 20}}),
    ]).await;
    let attempt = start_attempt(&app, &test, LEARNER).await;
    let r = answer(
        &app,
        &attempt,
        LEARNER,
        json!([{"questionId": qs[1]["questionId"], "answer": {"text": "x".repeat(30)}}]),
        400,
    )
    .await;
    assert_eq!(
        r["params"]["errmsg"],
        "answers[0]: The answer is longer than 20 characters."
    );
    answer(
        &app,
        &attempt,
        LEARNER,
        json!([
            {"questionId": qs[0]["questionId"], "answer": {"selectedOptionIds": [opt(&qs[0], 0)]}},
            {"questionId": qs[1]["questionId"], "answer": {"text": "Because."}},
        ]),
        201,
    )
    .await;
    let res = submit(&app, &attempt, LEARNER, 201).await["result"].clone();
    assert_eq!(res["score"], 1);
    assert_eq!(res["reviewStatus"], "P");
    assert!(res["result"].is_null(), "no result until reviewed");
}

#[tokio::test]
async fn answers_are_validated_against_the_attempt() {
    let app = TestApp::spawn().await;
    let (test, qs) = published_test(&app, json!({}), vec![
        json!({"text": "mcq", "type": "mcq", "options": [{"text": "a", "isCorrect": true}, {"text": "b"}]}),
    ]).await;
    let stranger = create_question(&app, json!({"text": "elsewhere", "type": "essay"})).await;
    let attempt = start_attempt(&app, &test, LEARNER).await;
    let cases = [
        (
            json!([{"questionId": stranger["questionId"], "answer": {"text": "x"}}]),
            format!(
                "answers[0]: question {} is not part of this attempt",
                stranger["questionId"].as_str().unwrap()
            ),
        ),
        (
            json!([{"questionId": qs[0]["questionId"], "answer": {"selectedOptionIds": [TENANT]}}]),
            format!("answers[0]: Option {TENANT} does not belong to this question."),
        ),
        (
            json!([{"questionId": qs[0]["questionId"], "answer": {"text": "a"}}]),
            "answers[0]: Answer field \"text\" is not used by mcq questions.".to_string(),
        ),
        (
            json!([{"questionId": qs[0]["questionId"], "answer": {"colour": "red"}}]),
            "property answers[0].answer.colour should not exist".to_string(),
        ),
        (
            json!([{"questionId": qs[0]["questionId"], "answer": {"selectedOptionIds": [opt(&qs[0], 0), opt(&qs[0], 1)]}}]),
            "answers[0]: mcq questions take at most one selected option.".to_string(),
        ),
    ];
    for (answers, msg) in cases {
        let r = answer(&app, &attempt, LEARNER, answers, 400).await;
        assert_failure_envelope(
            &r,
            "api.attempts.create",
            "VALIDATION_ERROR",
            "CLIENT_ERROR",
            &msg,
        );
    }
    assert!(events(&app, "answer.submitted").await.is_empty());
    let r = answer(&app, &attempt, LEARNER, json!([]), 201).await;
    assert_eq!(r["result"]["message"], "No answers provided to submit");
}

#[tokio::test]
async fn start_checks() {
    let app = TestApp::spawn().await;
    let draft = create_test(&app, json!({"title": "Draft", "type": "plain"})).await;
    let r = app
        .call_with(
            Method::POST,
            &format!("{A}/start/{draft}"),
            None,
            &as_user(LEARNER),
        )
        .await;
    assert_failure(
        &r,
        422,
        "api.attempts.create",
        "UNPROCESSABLE_ENTITY",
        "CLIENT_ERROR",
        "Test is not available for attempts",
    );
    let r = app
        .call_with(
            Method::POST,
            &format!("{A}/start/{TENANT}"),
            None,
            &as_user(LEARNER),
        )
        .await;
    assert_failure(
        &r,
        404,
        "api.attempts.create",
        "NOT_FOUND",
        "NOT_FOUND",
        "Test not found",
    );
    let (test, _) = published_test(&app, json!({"attempts": 2, "startDate": "2020-01-01T00:00:00Z"}), vec![
        json!({"text": "mcq", "type": "mcq", "options": [{"text": "a", "isCorrect": true}, {"text": "b"}]}),
    ]).await;
    let a1 = start_attempt(&app, &test, LEARNER).await;
    let r = start(&app, &test, LEARNER, 409).await;
    assert_eq!(
        r["params"]["errmsg"],
        "You have an incomplete attempt. Please complete it before starting a new attempt."
    );
    submit(&app, &a1, LEARNER, 201).await;
    let a2 = start_attempt(&app, &test, LEARNER).await;
    assert_ne!(a1, a2);
    submit(&app, &a2, LEARNER, 201).await;
    let r = start(&app, &test, LEARNER, 409).await;
    assert_failure_envelope(
        &r,
        "api.attempts.create",
        "CONFLICT",
        "CONFLICT",
        "Maximum attempts (2) reached for this test. You cannot start a new attempt.",
    );
    let r = app
        .call_with(
            Method::POST,
            &format!("{A}/start/{test}"),
            None,
            &[("tenantid", TENANT), ("organisationid", ORG)],
        )
        .await;
    assert_eq!(r.status, 400, "a learner is needed");
    let started = events(&app, "attempt.started").await;
    assert_eq!(started.len(), 2);
    assert_eq!(started[1]["data"]["attemptNumber"], 2);
}

#[tokio::test]
async fn fifty_concurrent_starts_create_one_attempt() {
    let app = TestApp::spawn().await;
    let (test, _) = published_test(&app, json!({"attempts": 1}), vec![
        json!({"text": "mcq", "type": "mcq", "options": [{"text": "a", "isCorrect": true}, {"text": "b"}]}),
    ]).await;
    let path = format!("{A}/start/{test}");
    let headers = as_user(LEARNER);
    let calls: Vec<_> = (0..50)
        .map(|_| app.call_with(Method::POST, &path, None, &headers))
        .collect();
    let results = join_all(calls).await;
    let created: HashSet<String> = results
        .iter()
        .filter(|r| r.status == 201)
        .map(|r| {
            r.json()["result"]["attemptId"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(created.len(), 1, "exactly one attempt");
    assert!(
        results.iter().all(|r| r.status == 201 || r.status == 409),
        "only 201 and 409"
    );
    assert_eq!(events(&app, "attempt.started").await.len(), 1);
}

#[tokio::test]
async fn parallel_saves_keep_one_row_and_submit_counts_nothing_after_it() {
    let app = TestApp::spawn().await;
    let (test, qs) = published_test(&app, json!({}), vec![
        json!({"text": "mcq", "type": "mcq", "options": [{"text": "a", "isCorrect": true}, {"text": "b"}]}),
    ]).await;
    let attempt = start_attempt(&app, &test, LEARNER).await;
    let q = qs[0]["questionId"].clone();
    let path = format!("{A}/{attempt}/answers");
    let headers = as_user(LEARNER);
    let bodies: Vec<Value> = (0..20)
        .map(|i| json!({"answers": [{"questionId": q, "answer": {"selectedOptionIds": [opt(&qs[0], i % 2)]}}]}))
        .collect();
    let calls: Vec<_> = bodies
        .iter()
        .map(|b| app.call_with(Method::POST, &path, Some(b.clone()), &headers))
        .collect();
    assert!(join_all(calls).await.iter().all(|r| r.status == 201));
    let r = app
        .call_with(
            Method::GET,
            &format!("{A}/{attempt}/resume/{LEARNER}"),
            None,
            &headers,
        )
        .await;
    assert_eq!(
        r.json()["result"]["answers"].as_array().unwrap().len(),
        1,
        "one row per question"
    );

    // Start from the wrong option; the racing saves choose the right one. A save that slipped
    // in after the submission would change the stored answer without changing the score.
    answer(
        &app,
        &attempt,
        LEARNER,
        json!([{"questionId": q, "answer": {"selectedOptionIds": [opt(&qs[0], 1)]}}]),
        201,
    )
    .await;
    // Submit racing more saves: every save either lands before the submission or is refused.
    let submit_path = format!("{A}/{attempt}/submit");
    let mut calls = Vec::new();
    for i in 0..10 {
        let body = json!({"answers": [{"questionId": q, "answer": {"selectedOptionIds": [opt(&qs[0], 0)]}}]});
        calls.push(
            Box::pin(app.call_with(Method::POST, &path, Some(body), &headers))
                as std::pin::Pin<Box<dyn Future<Output = TestResponse> + '_>>,
        );
        if i == 5 {
            calls.push(Box::pin(app.call_with(
                Method::POST,
                &submit_path,
                None,
                &headers,
            )));
        }
    }
    let results = join_all(calls).await;
    let submitted = results
        .iter()
        .find(|r| r.json()["result"].get("reviewStatus").is_some())
        .expect("the submit");
    assert_eq!(submitted.status, 201);
    for r in results
        .iter()
        .filter(|r| r.json()["result"].get("reviewStatus").is_none())
    {
        assert!(
            r.status == 201
                || (r.status == 409 && r.errmsg() == "Cannot submit answer to completed attempt"),
            "{}",
            r.text()
        );
    }
    // In the outbox, no answer of this attempt comes after its submission.
    let seqs = |name: &'static str| {
        let store = app.state.store.clone();
        async move {
            assessment_service::store::outbox::with_name(&store, name)
                .await
                .unwrap()
                .into_iter()
                .map(|e| e.seq)
                .collect::<Vec<_>>()
        }
    };
    let submitted_seq = seqs("attempt.submitted").await[0];
    assert!(
        seqs("answer.submitted")
            .await
            .iter()
            .all(|s| *s < submitted_seq)
    );
    let final_score = submitted.json()["result"]["score"].clone();
    let answers = app
        .call_with(
            Method::GET,
            &format!("{A}/{attempt}/resume/{LEARNER}"),
            None,
            &headers,
        )
        .await
        .json()["result"]["answers"]
        .clone();
    let stored_correct = answers[0]["answer"]["selectedOptionIds"][0] == opt(&qs[0], 0);
    assert_eq!(
        final_score,
        if stored_correct { json!(1) } else { json!(0) },
        "the score is that of the answer stored at submission"
    );
    assert_eq!(events(&app, "attempt.submitted").await.len(), 1);
}

/// One attempt the database refuses to update does not keep the sweeper from submitting the
/// others (issue 18, item 7); it is tried again at the next step.
#[tokio::test]
async fn one_failing_attempt_does_not_stop_the_sweeper() {
    use assessment_service::store::{Backend, Pools};
    let clock = ManualClock::starting_now();
    let app = TestApp::on_clock(&clock).await;
    let (test, _) = published_test(&app, json!({"timeDuration": 60}), vec![
        json!({"text": "mcq", "type": "mcq", "options": [{"text": "a", "isCorrect": true}, {"text": "b"}]}),
    ]).await;
    let bad = start_attempt(&app, &test, LEARNER).await;
    let good = start_attempt(&app, &test, OTHER_LEARNER).await;
    // The database refuses any update of the first attempt.
    let refuse = match app.db.backend() {
        Backend::Sqlite => format!(
            r#"CREATE TRIGGER "refuse_one" BEFORE UPDATE ON "testAttempts" WHEN OLD."attemptId" = '{bad}'
               BEGIN SELECT RAISE(ABORT, 'refused by the test'); END;"#
        ),
        Backend::Postgres => format!(
            r#"CREATE FUNCTION "refuse_one"() RETURNS trigger LANGUAGE plpgsql AS $$
               BEGIN RAISE EXCEPTION 'refused by the test'; END $$;
               CREATE TRIGGER "refuse_one" BEFORE UPDATE ON "testAttempts" FOR EACH ROW
               WHEN (OLD."attemptId" = '{bad}') EXECUTE FUNCTION "refuse_one"();"#
        ),
    };
    match app.state.store.pools() {
        Pools::Sqlite { writer, .. } => sqlx::raw_sql(&refuse).execute(writer).await.map(|_| ()),
        Pools::Postgres(pool) => sqlx::raw_sql(&refuse).execute(pool).await.map(|_| ()),
    }
    .unwrap();
    clock.advance(chrono::Duration::seconds(61));
    let (store, service_clock) = (&app.state.store, &app.state.clock);
    let sweep = || assessment_service::service::attempts::sweep_once(store, service_clock, 100);
    assert_eq!(sweep().await.unwrap(), 1, "the other attempt is submitted");
    let submitted: Vec<String> = events(&app, "attempt.submitted")
        .await
        .iter()
        .map(|e| e["data"]["attemptId"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(submitted, [good]);
    // Still refused, still tried, nothing else to do.
    assert_eq!(sweep().await.unwrap(), 0);
    let r = app
        .call_with(
            Method::GET,
            &format!("{A}/{bad}/resume/{LEARNER}"),
            None,
            &as_user(LEARNER),
        )
        .await;
    assert_eq!(r.expect_status(200)["result"]["attempt"]["status"], "I");
}

#[tokio::test]
async fn deadlines_refuse_answers_and_the_sweeper_submits_once() {
    let clock = ManualClock::starting_now();
    let app = TestApp::on_clock(&clock).await;
    let (test, qs) = published_test(&app, json!({"timeDuration": 600}), vec![
        json!({"text": "mcq", "type": "mcq", "options": [{"text": "a", "isCorrect": true}, {"text": "b"}]}),
    ]).await;
    let attempt = start_attempt(&app, &test, LEARNER).await;
    let r = app
        .call_with(
            Method::GET,
            &format!("{A}/{attempt}/resume/{LEARNER}"),
            None,
            &as_user(LEARNER),
        )
        .await;
    let remaining = r.json()["result"]["attempt"]["timeRemaining"]
        .as_i64()
        .unwrap();
    assert!((590..=600).contains(&remaining), "{remaining}");
    answer(&app, &attempt, LEARNER, json!([{"questionId": qs[0]["questionId"], "answer": {"selectedOptionIds": [opt(&qs[0], 0)]}}]), 201).await;

    let (store, service_clock) = (&app.state.store, &app.state.clock);
    // Nothing is due yet, even a second before the deadline.
    clock.advance(chrono::Duration::seconds(599));
    assert_eq!(
        assessment_service::service::attempts::sweep_once(store, service_clock, 100)
            .await
            .unwrap(),
        0
    );
    // Past the ten minutes allowed.
    clock.advance(chrono::Duration::seconds(2));

    let r = answer(&app, &attempt, LEARNER, json!([{"questionId": qs[0]["questionId"], "answer": {"selectedOptionIds": [opt(&qs[0], 1)]}}]), 422).await;
    assert_failure_envelope(
        &r,
        "api.attempts.create",
        "UNPROCESSABLE_ENTITY",
        "CLIENT_ERROR",
        "The time allowed for this attempt is over",
    );
    assert_eq!(
        assessment_service::service::attempts::sweep_once(store, service_clock, 100)
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        assessment_service::service::attempts::sweep_once(store, service_clock, 100)
            .await
            .unwrap(),
        0
    );
    let ev = events(&app, "attempt.submitted").await;
    assert_eq!(ev.len(), 1);
    assert_eq!(ev[0]["data"]["submissionType"], "auto");
    assert_eq!(
        ev[0]["data"]["score"], 1,
        "the answer saved before the deadline counts"
    );
    let r = app
        .call_with(
            Method::POST,
            &format!("{A}/{attempt}/submit"),
            None,
            &as_user(LEARNER),
        )
        .await;
    assert_eq!(r.status, 409);
}

#[tokio::test]
async fn resume_and_questions_keep_the_shuffled_paper_and_hide_keys() {
    let app = TestApp::spawn().await;
    let mut questions = Vec::new();
    for i in 0..8 {
        questions.push(json!({"text": format!("q{i}"), "type": "mcq", "options": [
            {"text": "a", "isCorrect": true}, {"text": "b"}, {"text": "c"}, {"text": "d"}]}));
    }
    questions.push(json!({"text": "blank", "type": "fill_blank", "options": [{"text": "Paris", "isCorrect": true, "blankIndex": 0}]}));
    let (test, _) = published_test(
        &app,
        json!({"questionsShuffle": true, "answersShuffle": true}),
        questions,
    )
    .await;
    let attempt = start_attempt(&app, &test, LEARNER).await;
    let path = format!("{A}/{attempt}/questions/{LEARNER}");
    let first = app
        .call_with(Method::GET, &path, None, &as_user(LEARNER))
        .await;
    assert_eq!(first.status, 200, "{}", first.text());
    let second = app
        .call_with(Method::GET, &path, None, &as_user(LEARNER))
        .await;
    assert_eq!(
        first.json()["result"],
        second.json()["result"],
        "the same paper every time"
    );
    let text = first.text();
    assert!(
        !text.contains("isCorrect") && !text.contains("Paris"),
        "no keys: {text}"
    );
    let order: Vec<String> = first.json()["result"]
        .as_array()
        .unwrap()
        .iter()
        .map(|q| q["text"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(order.len(), 9);
    let blank = first.json()["result"]
        .as_array()
        .unwrap()
        .iter()
        .find(|q| q["type"] == "fill_blank")
        .unwrap()
        .clone();
    assert_eq!(blank["blanks"], json!([0]));
}

#[tokio::test]
async fn attempts_belong_to_their_learner_and_scope() {
    let app = TestApp::spawn().await;
    let (test, qs) = published_test(&app, json!({}), vec![
        json!({"text": "mcq", "type": "mcq", "options": [{"text": "a", "isCorrect": true}, {"text": "b"}]}),
    ]).await;
    let attempt = start_attempt(&app, &test, LEARNER).await;
    let body = json!({"answers": [{"questionId": qs[0]["questionId"], "answer": {"selectedOptionIds": [opt(&qs[0], 0)]}}]});
    let elsewhere = [
        as_user(OTHER_LEARNER),
        vec![
            ("tenantid", TENANT),
            ("organisationid", OTHER_ORG),
            ("userid", LEARNER),
        ],
        vec![
            ("tenantid", OTHER_TENANT),
            ("organisationid", ORG),
            ("userid", LEARNER),
        ],
    ];
    for headers in &elsewhere {
        let r = app
            .call_with(
                Method::POST,
                &format!("{A}/{attempt}/answers"),
                Some(body.clone()),
                headers,
            )
            .await;
        assert_eq!(r.status, 404, "{headers:?}");
        let r = app
            .call_with(
                Method::POST,
                &format!("{A}/{attempt}/submit"),
                None,
                headers,
            )
            .await;
        assert_eq!(r.status, 404);
        let user = headers.iter().find(|(k, _)| *k == "userid").unwrap().1;
        for route in ["resume", "questions"] {
            let r = app
                .call_with(
                    Method::GET,
                    &format!("{A}/{attempt}/{route}/{user}"),
                    None,
                    headers,
                )
                .await;
            assert_eq!(r.status, 404, "{route} {headers:?}");
        }
    }
    // Naming another learner in the path is refused outright.
    let r = app
        .call_with(
            Method::GET,
            &format!("{A}/{attempt}/resume/{LEARNER}"),
            None,
            &as_user(OTHER_LEARNER),
        )
        .await;
    assert_eq!(r.status, 403);
    let r = app
        .call_with(
            Method::POST,
            &format!("{A}/start/{test}"),
            None,
            &elsewhere[1],
        )
        .await;
    assert_eq!(
        r.status, 404,
        "the test is invisible from another organisation"
    );
    let r = app
        .call_with(
            Method::GET,
            &format!("{A}/{attempt}/resume/{LEARNER}"),
            None,
            &as_user(LEARNER),
        )
        .await;
    assert_eq!(r.status, 200);
    assert!(
        r.json()["result"]["answers"].as_array().unwrap().is_empty(),
        "nothing was saved by others"
    );
}

const REVIEWER: &str = "8d9e0f1a-2b3c-4d5e-9f6a-7b8c9d0e1f2a";

#[tokio::test]
async fn reviewers_score_essays_and_results_follow() {
    let app = TestApp::spawn().await;
    let (test, qs) = published_test(&app, json!({"passingMarks": 4, "showCorrectAnswer": false}), vec![
        json!({"text": "mcq", "type": "mcq", "marks": 1, "options": [{"text": "a", "isCorrect": true}, {"text": "b"}]}),
        json!({"text": "Why?", "type": "essay", "marks": 5}),
    ]).await;
    let attempt = start_attempt(&app, &test, LEARNER).await;
    answer(
        &app,
        &attempt,
        LEARNER,
        json!([
            {"questionId": qs[0]["questionId"], "answer": {"selectedOptionIds": [opt(&qs[0], 0)]}},
            {"questionId": qs[1]["questionId"], "answer": {"text": "Because."}},
        ]),
        201,
    )
    .await;
    let r = submit(&app, &attempt, LEARNER, 201).await;
    assert_eq!(r["result"]["reviewStatus"], "P", "the essay awaits review");

    let r = app
        .call_with(
            Method::GET,
            &format!("{A}/reviews/pending"),
            None,
            &as_user(REVIEWER),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    // Upstream's shape: an array; the total in a header.
    assert_eq!(r.header("x-total-count"), Some("1"));
    let page = r.json()["result"].clone();
    assert_eq!(page.as_array().unwrap().len(), 1);
    assert_eq!(page[0]["attemptId"], attempt.as_str());
    assert_eq!(page[0]["answers"][0]["questionText"], "Why?");
    assert_eq!(page[0]["answers"][0]["answer"]["text"], "Because.");

    let r = review(
        &app,
        &attempt,
        REVIEWER,
        json!({"answers": [{"questionId": qs[1]["questionId"], "score": 6}]}),
        400,
    )
    .await;
    assert_eq!(
        r["params"]["errmsg"],
        "answers[0].score (6) exceeds the question's marks (5)"
    );
    let r = review(
        &app,
        &attempt,
        LEARNER,
        json!({"answers": [{"questionId": qs[1]["questionId"], "score": 3}]}),
        403,
    )
    .await;
    assert_failure_envelope(
        &r,
        "api.attempts.create",
        "FORBIDDEN",
        "FORBIDDEN",
        "You cannot review your own attempt",
    );
    let r = review(&app, &attempt, REVIEWER, json!({"answers": [{"questionId": qs[1]["questionId"], "score": 3.5, "remarks": "ok"}], "overallRemarks": "fine"}), 201).await;
    let res = r["result"].clone();
    assert_eq!(
        res,
        json!({"attemptId": attempt, "score": 4.5, "result": "P", "reviewStatus": "R"})
    );
    let ev = events(&app, "attempt.reviewed").await;
    assert_eq!(ev.len(), 1);
    assert_eq!(ev[0]["data"]["reviewedBy"], REVIEWER);
    assert_eq!(ev[0]["data"]["answersReviewed"], 1);
    let r = app
        .call_with(
            Method::GET,
            &format!("{A}/reviews/pending"),
            None,
            &as_user(REVIEWER),
        )
        .await;
    assert_eq!(r.json()["result"], json!([]));

    // The learner's answer sheet: scores and remarks, no keys without showCorrectAnswer.
    let r = app
        .call_with(
            Method::GET,
            &format!("{A}/{attempt}/answersheet"),
            None,
            &as_user(LEARNER),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let sheet = r.json()["result"].clone();
    assert_eq!(sheet["attempt"]["score"], 4.5);
    assert_eq!(sheet["answers"][1]["remarks"], "ok");
    assert_eq!(
        sheet["attempt"]["overallRemarks"], "fine",
        "the reviewer's overall remarks are kept"
    );
    assert!(
        !r.text().contains("correctAnswer") && !r.text().contains("isCorrect\":true"),
        "{}",
        r.text()
    );
    let r = app
        .call_with(
            Method::GET,
            &format!("{A}/{attempt}/answersheet"),
            None,
            &as_user(OTHER_LEARNER),
        )
        .await;
    // Header mode: another caller of the tenant holds every role, so reads it as a reviewer
    // (in JWT mode a learner's token does not: see `review_routes_need_a_reviewer_and_stay_in_scope`).
    assert_eq!(r.status, 200);

    // Status and result status.
    let r = app
        .call_with(
            Method::POST,
            &format!("{A}/import/resultstatus"),
            Some(json!({"userId": LEARNER, "testId": test})),
            &as_user(LEARNER),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(
        r.json()["result"],
        json!({"isImported": true, "aswaresheet": true})
    );
    let r = app
        .call_with(Method::POST, "/assessment/v1/internal/attempts/user/result-status",
            Some(json!({"userId": LEARNER, "testId": test, "tenantId": TENANT, "organisationId": ORG})), &[])
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        r.json()["result"],
        json!({"isImported": false, "aswaresheet": true, "gradingType": "quiz"})
    );
}

#[tokio::test]
async fn review_by_test_imports_in_one_transaction() {
    let app = TestApp::spawn().await;
    let (test, qs) = published_test(
        &app,
        json!({"passingMarks": 8, "gradingType": "assessment"}),
        vec![
            json!({"text": "A", "type": "essay", "marks": 5}),
            json!({"text": "B", "type": "essay", "marks": 5}),
        ],
    )
    .await;
    let attempt = start_attempt(&app, &test, LEARNER).await;
    answer(
        &app,
        &attempt,
        LEARNER,
        json!([
            {"questionId": qs[0]["questionId"], "answer": {"text": "a"}},
            {"questionId": qs[1]["questionId"], "answer": {"text": "b"}},
        ]),
        201,
    )
    .await;
    let r = submit(&app, &attempt, LEARNER, 201).await;
    assert_eq!(r["result"]["reviewStatus"], "P");
    // One bad item refuses the whole import: nothing is scored.
    let bad = json!({"testId": test, "userId": LEARNER, "answers": [
        {"questionId": qs[0]["questionId"], "score": 5}, {"questionId": qs[1]["questionId"], "score": 9}]});
    let r = app
        .call_with(
            Method::POST,
            &format!("{A}/review"),
            Some(bad),
            &as_user(REVIEWER),
        )
        .await;
    assert_failure(
        &r,
        400,
        "api.attempts.create",
        "VALIDATION_ERROR",
        "CLIENT_ERROR",
        "answers[1].score (9) exceeds the question's marks (5)",
    );
    let r = app
        .call_with(
            Method::GET,
            &format!("{A}/reviews/pending"),
            None,
            &as_user(REVIEWER),
        )
        .await;
    assert_eq!(
        r.json()["result"][0]["answers"].as_array().unwrap().len(),
        2,
        "still both pending"
    );
    // A partial review leaves the attempt under review (U) without a result.
    let r = app
        .call_with(Method::POST, &format!("{A}/review"), Some(json!({"testId": test, "userId": LEARNER, "answers": [{"questionId": qs[0]["questionId"], "score": 5}]})), &as_user(REVIEWER))
        .await
        .expect_status(201);
    assert_eq!(r["result"]["reviewStatus"], "U");
    assert!(r["result"]["result"].is_null());
    let r = app
        .call_with(Method::POST, &format!("{A}/review"), Some(json!({"testId": test, "userId": LEARNER, "answers": [{"questionId": qs[1]["questionId"], "score": 4}]})), &as_user(REVIEWER))
        .await
        .expect_status(201);
    assert_eq!(
        r["result"],
        json!({"attemptId": attempt, "score": 9, "result": "P", "reviewStatus": "R"})
    );
    let r = app
        .call_with(Method::POST, "/assessment/v1/internal/attempts/user/result-status",
            Some(json!({"userId": LEARNER, "testId": test, "tenantId": TENANT, "organisationId": ORG})), &[])
        .await;
    assert_eq!(
        r.json()["result"]["isImported"],
        true,
        "assessment with a final result"
    );
    let r = app
        .call_with(Method::POST, &format!("{A}/review"), Some(json!({"testId": test, "userId": OTHER_LEARNER, "answers": [{"questionId": qs[1]["questionId"], "score": 4}]})), &as_user(REVIEWER))
        .await;
    assert_failure(
        &r,
        404,
        "api.attempts.create",
        "NOT_FOUND",
        "NOT_FOUND",
        "No attempt found for review",
    );
}

/// The pending list reads every attempt's answers and their questions at once (issue 18,
/// item 6), and windows with `limit` and `offset`, the total in `X-Total-Count`.
#[tokio::test]
async fn pending_reviews_are_an_array_of_each_attempts_own_answers() {
    let app = TestApp::spawn().await;
    let (test, qs) = published_test(
        &app,
        json!({}),
        vec![
            json!({"text": "Why?", "type": "essay", "marks": 2}),
            json!({"text": "How?", "type": "essay", "marks": 2}),
        ],
    )
    .await;
    const LEARNERS: [&str; 3] = [
        LEARNER,
        OTHER_LEARNER,
        "8c9d0e1f-2a3b-4c4d-8e5f-6a7b8c9d0e1f",
    ];
    for (i, learner) in LEARNERS.iter().enumerate() {
        let attempt = start_attempt(&app, &test, learner).await;
        // Learner i answers the first i + 1 questions (at most two).
        let answers: Vec<Value> = qs.iter().take(i.min(1) + 1)
            .map(|q| json!({"questionId": q["questionId"], "answer": {"text": format!("{learner}")}}))
            .collect();
        answer(&app, &attempt, learner, json!(answers), 201).await;
        submit(&app, &attempt, learner, 201).await;
    }
    let get = |query: &'static str| {
        let app = &app;
        async move {
            app.call_with(
                Method::GET,
                &format!("{A}/reviews/pending{query}"),
                None,
                &as_user(REVIEWER),
            )
            .await
        }
    };
    let all = get("").await;
    assert_eq!(all.header("x-total-count"), Some("3"));
    let listed = all.expect_status(200)["result"].clone();
    let listed = listed.as_array().unwrap();
    assert_eq!(listed.len(), 3);
    for item in listed {
        let answers = item["answers"].as_array().unwrap();
        let learner = item["userId"].as_str().unwrap();
        assert!(!answers.is_empty());
        assert!(
            answers.iter().all(|a| a["answer"]["text"] == learner),
            "{item}"
        );
        assert!(
            answers.iter().all(|a| a["questionText"].is_string()),
            "{item}"
        );
    }
    let counts: Vec<usize> = listed
        .iter()
        .map(|i| i["answers"].as_array().unwrap().len())
        .collect();
    assert_eq!(counts.iter().sum::<usize>(), 5);
    let window = get("?limit=2&offset=1").await;
    assert_eq!(window.header("x-total-count"), Some("3"));
    let window = window.expect_status(200)["result"].clone();
    assert_eq!(window.as_array().unwrap().len(), 2);
    assert_eq!(window[0]["attemptId"], listed[1]["attemptId"]);
}

#[tokio::test]
async fn answer_sheets_show_keys_only_when_allowed() {
    let app = TestApp::spawn().await;
    let (test, qs) = published_test(&app, json!({"showCorrectAnswer": true}), vec![
        json!({"text": "mcq", "type": "mcq", "options": [{"text": "a", "isCorrect": true}, {"text": "b"}]}),
    ]).await;
    let attempt = start_attempt(&app, &test, LEARNER).await;
    let r = app
        .call_with(
            Method::GET,
            &format!("{A}/{attempt}/answersheet"),
            None,
            &as_user(LEARNER),
        )
        .await;
    assert_failure(
        &r,
        400,
        "api.attempts.get",
        "VALIDATION_ERROR",
        "CLIENT_ERROR",
        "Attempt results are only available for submitted attempts",
    );
    answer(&app, &attempt, LEARNER, json!([{"questionId": qs[0]["questionId"], "answer": {"selectedOptionIds": [opt(&qs[0], 1)]}}]), 201).await;
    let r = submit(&app, &attempt, LEARNER, 201).await;
    assert_eq!(r["result"]["score"], 0, "the wrong option");
    let r = app
        .call_with(
            Method::GET,
            &format!("{A}/{attempt}/answersheet"),
            None,
            &as_user(LEARNER),
        )
        .await;
    let a = r.expect_status(200)["result"]["answers"][0].clone();
    assert_eq!(a["isCorrect"], false);
    assert_eq!(a["userAnswer"]["selectedOptions"][0]["isCorrect"], false);
    assert_eq!(
        a["correctAnswer"]["correctOptionIds"],
        json!([opt(&qs[0], 0)])
    );
    let r = app
        .call(
            Method::PATCH,
            &format!("/assessment/v1/tests/{test}"),
            Some(json!({"answerSheet": false})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let r = app
        .call_with(
            Method::GET,
            &format!("{A}/{attempt}/answersheet"),
            None,
            &as_user(LEARNER),
        )
        .await;
    assert_failure(
        &r,
        400,
        "api.attempts.get",
        "VALIDATION_ERROR",
        "CLIENT_ERROR",
        "Answer sheet is not enabled for this test",
    );
}

/// Header mode grants every role (issue 18, item 1): another user reads a learner's sheet as
/// a reviewer, as upstream allows; the learner still gets the learner's view of their own.
#[tokio::test]
async fn in_header_mode_others_read_a_learners_sheet_as_reviewers() {
    let app = TestApp::spawn().await;
    let settings = json!({"showCorrectAnswer": true, "allowResubmission": true});
    let (test, qs) = published_test(&app, settings, vec![
        json!({"text": "mcq", "type": "mcq", "options": [{"text": "a", "isCorrect": true}, {"text": "b"}]}),
    ]).await;
    let attempt = start_attempt(&app, &test, LEARNER).await;
    answer(&app, &attempt, LEARNER, json!([{"questionId": qs[0]["questionId"], "answer": {"selectedOptionIds": [opt(&qs[0], 1)]}}]), 201).await;
    submit(&app, &attempt, LEARNER, 201).await;
    let sheet = |user: &'static str| {
        let app = &app;
        let path = format!("{A}/{attempt}/answersheet");
        async move {
            app.call_with(Method::GET, &path, None, &as_user(user))
                .await
        }
    };
    // The learner may re-answer: no key, no score in their own view.
    let own = sheet(LEARNER).await.expect_status(200)["result"]["answers"][0].clone();
    assert!(own.get("correctAnswer").is_none(), "{own}");
    assert!(own["score"].is_null(), "{own}");
    // Another user of the tenant (a reviewer behind the gateway) sees it all.
    let other = sheet(USER).await.expect_status(200)["result"]["answers"][0].clone();
    assert_eq!(
        other["correctAnswer"]["correctOptionIds"],
        json!([opt(&qs[0], 0)])
    );
    assert_eq!(other["score"], 0);
}

#[tokio::test]
async fn rule_based_attempts_draw_their_paper_from_the_rules() {
    let app = TestApp::spawn().await;
    let mut bank = Vec::new();
    for i in 0..5 {
        let q = create_question(&app, json!({"text": format!("pool {i}"), "type": "mcq", "status": "published", "tags": ["pool"],
            "options": [{"text": "a", "isCorrect": true}, {"text": "b"}]})).await;
        bank.push(q);
    }
    let test = create_test(&app, json!({"title": "Drawn", "type": "rule_based", "questionsShuffle": false, "gradingType": "quiz"})).await;
    let section = create_section(&app, &test, "S").await;
    let r = app.call(Method::POST, "/assessment/v1/rules", Some(json!({"name": "first three", "ruleType": "mixed", "testId": test,
        "sectionId": section, "numberOfQuestions": 3, "poolSize": 5, "selectionStrategy": "sequential", "criteria": {"tags": ["pool"]}}))).await;
    assert_eq!(r.status, 201, "{}", r.text());
    let r = app
        .call(
            Method::POST,
            &format!("/assessment/v1/tests/{test}/publish"),
            None,
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(r.json()["result"]["totalMarks"], 3);

    let attempt = start_attempt(&app, &test, LEARNER).await;
    let r = app
        .call_with(
            Method::GET,
            &format!("{A}/{attempt}/questions/{LEARNER}"),
            None,
            &as_user(LEARNER),
        )
        .await;
    let paper = r.expect_status(200)["result"].clone();
    let texts: Vec<&str> = paper
        .as_array()
        .unwrap()
        .iter()
        .map(|q| q["text"].as_str().unwrap())
        .collect();
    assert_eq!(
        texts,
        vec!["pool 0", "pool 1", "pool 2"],
        "sequential: the pool's first three"
    );
    assert!(
        paper
            .as_array()
            .unwrap()
            .iter()
            .all(|q| q["sectionId"] == section.as_str()),
        "the rule's section"
    );
    // Answer all three correctly: full marks, scored like any quiz.
    let answers: Vec<Value> = paper.as_array().unwrap().iter().map(|q| {
        let bank_q = bank.iter().find(|b| b["questionId"] == q["questionId"]).unwrap();
        json!({"questionId": q["questionId"], "answer": {"selectedOptionIds": [opt(bank_q, 0)]}})
    }).collect();
    answer(&app, &attempt, LEARNER, json!(answers), 201).await;
    let r = submit(&app, &attempt, LEARNER, 201).await;
    assert_eq!(r["result"]["score"], 3);
    assert_eq!(r["result"]["percentage"], 100.0);
    // A question outside the drawn paper is refused.
    let outside = bank
        .iter()
        .find(|b| !texts.contains(&b["text"].as_str().unwrap()))
        .unwrap();
    app.call(
        Method::PATCH,
        &format!("/assessment/v1/tests/{test}"),
        Some(json!({"attempts": 2})),
    )
    .await
    .expect_status(200);
    let second = start_attempt(&app, &test, LEARNER).await;
    let drawn = app
        .call_with(
            Method::GET,
            &format!("{A}/{second}/questions/{LEARNER}"),
            None,
            &as_user(LEARNER),
        )
        .await
        .expect_status(200)["result"]
        .clone();
    assert!(
        !drawn
            .as_array()
            .unwrap()
            .iter()
            .any(|q| q["questionId"] == outside["questionId"]),
        "sequential: the same first three again"
    );
    let r = answer(&app, &second, LEARNER, json!([{"questionId": outside["questionId"], "answer": {"selectedOptionIds": [opt(outside, 0)]}}]), 400).await;
    assert_eq!(
        r["params"]["errmsg"],
        format!(
            "answers[0]: question {} is not part of this attempt",
            outside["questionId"].as_str().unwrap()
        )
    );
}

/// A stand-in user service on loopback that knows one learner.
async fn fake_user_service() -> String {
    use axum::routing::post;
    let app = axum::Router::new().route(
        "/list",
        post(|axum::Json(body): axum::Json<Value>| async move {
            assert_eq!(body["includeCustomFields"], false);
            axum::Json(json!({"result": {"getUserDetails": [
                {"userId": LEARNER, "firstName": "Asha", "lastName": "Rao", "email": "asha@example.org"}
            ]}}))
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}")
}

#[tokio::test]
async fn question_answer_report_uses_each_rows_attempt() {
    use assessment_service::config::Config;
    let url = fake_user_service().await;
    let app = TestApp::with_config(Config {
        user_service_url: Some(url),
        ..Config::default()
    })
    .await;
    let (test, qs) = published_test(&app, json!({"attempts": 2}), vec![
        json!({"text": "Pick", "type": "mcq", "options": [{"text": "alpha", "isCorrect": true}, {"text": "beta"}]}),
        json!({"text": "Say", "type": "essay"}),
    ]).await;
    // The learner answers twice; the report shows the second attempt's answers only.
    let first = start_attempt(&app, &test, LEARNER).await;
    answer(
        &app,
        &first,
        LEARNER,
        json!([
            {"questionId": qs[0]["questionId"], "answer": {"selectedOptionIds": [opt(&qs[0], 1)]}},
            {"questionId": qs[1]["questionId"], "answer": {"text": "first try"}},
        ]),
        201,
    )
    .await;
    submit(&app, &first, LEARNER, 201).await;
    let r = review(
        &app,
        &first,
        REVIEWER,
        json!({"answers": [{"questionId": qs[1]["questionId"], "score": 0}]}),
        201,
    )
    .await;
    assert_eq!(
        r["result"]["reviewStatus"], "R",
        "reviewed: a second start is allowed"
    );
    let second = start_attempt(&app, &test, LEARNER).await;
    answer(&app, &second, LEARNER, json!([{"questionId": qs[0]["questionId"], "answer": {"selectedOptionIds": [opt(&qs[0], 0)]}}]), 201).await;
    let other = start_attempt(&app, &test, OTHER_LEARNER).await;
    answer(
        &app,
        &other,
        OTHER_LEARNER,
        json!([{"questionId": qs[1]["questionId"], "answer": {"text": "hello"}}]),
        201,
    )
    .await;

    let r = app
        .call_with(
            Method::GET,
            &format!("/assessment/v1/tests/{test}/question-answer-report"),
            None,
            &as_user(REVIEWER),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let rep = r.json()["result"].clone();
    assert_eq!(rep["metadata"]["totalUsers"], 2);
    assert_eq!(rep["columns"].as_array().unwrap().len(), 12);
    let rows = rep["data"].as_array().unwrap();
    let mine = rows.iter().find(|r| r["userId"] == LEARNER).unwrap();
    assert_eq!(mine["firstName"], "Asha");
    assert_eq!(mine["attemptNumber"], 2);
    let (q0, q1) = (
        qs[0]["questionId"].as_str().unwrap(),
        qs[1]["questionId"].as_str().unwrap(),
    );
    assert_eq!(mine[q0], "alpha");
    assert_eq!(mine[q1], "", "the first attempt's essay is not mixed in");
    let theirs = rows.iter().find(|r| r["userId"] == OTHER_LEARNER).unwrap();
    assert_eq!(theirs["firstName"], "", "unknown to the user service");
    assert_eq!(theirs[q1], "hello");
    let r = app
        .call_with(
            Method::GET,
            &format!(
                "/assessment/v1/tests/{test}/question-answer-report?limit=1&userIds={OTHER_LEARNER}"
            ),
            None,
            &as_user(REVIEWER),
        )
        .await
        .expect_status(200);
    assert_eq!(r["result"]["data"].as_array().unwrap().len(), 1);
    assert_eq!(r["result"]["pagination"]["totalElements"], 1);
    let r = app
        .call_with(
            Method::GET,
            &format!("/assessment/v1/tests/{test}/question-answer-report?limit=500"),
            None,
            &as_user(REVIEWER),
        )
        .await;
    assert_eq!(r.status, 400);

    // Without a user service the report still answers, with empty names.
    let plain = TestApp::spawn().await;
    let (t2, _) = published_test(
        &plain,
        json!({}),
        vec![json!({"text": "Say", "type": "essay"})],
    )
    .await;
    start_attempt(&plain, &t2, LEARNER).await;
    let r = plain
        .call_with(
            Method::GET,
            &format!("/assessment/v1/tests/{t2}/question-answer-report"),
            None,
            &as_user(REVIEWER),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["result"]["data"][0]["firstName"], "");
}

#[tokio::test]
async fn compulsory_questions_and_conditional_children() {
    let app = TestApp::spawn().await;
    let test = create_test(&app, json!({"title": "Compulsory", "type": "plain", "questionsShuffle": false, "answersShuffle": false})).await;
    let section = create_section(&app, &test, "S").await;
    let parent = create_question(&app, json!({"text": "Did you like it?", "type": "mcq", "testId": test, "sectionId": section, "isCompulsory": true,
        "options": [{"text": "yes", "isCorrect": true}, {"text": "no"}]})).await;
    let no = opt(&parent, 1);
    let child = create_question(&app, json!({"text": "Why not?", "type": "essay", "testId": test, "sectionId": section, "isCompulsory": true,
        "parentId": parent["questionId"], "optionId": no})).await;
    publish(&app, &test, 201).await;

    let required = |r: &Value| {
        assert_failure_envelope(
            r,
            "api.attempts.create",
            "VALIDATION_ERROR",
            "CLIENT_ERROR",
            "You need to answer all the required questions before submitting your attempt.",
        );
    };
    // Nothing answered: the compulsory parent blocks submission.
    let a = start_attempt(&app, &test, LEARNER).await;
    required(&submit(&app, &a, LEARNER, 400).await);
    // "no" reveals the compulsory child, which must then be answered.
    answer(
        &app,
        &a,
        LEARNER,
        json!([{"questionId": parent["questionId"], "answer": {"selectedOptionIds": [no]}}]),
        201,
    )
    .await;
    required(&submit(&app, &a, LEARNER, 400).await);
    answer(
        &app,
        &a,
        LEARNER,
        json!([{"questionId": child["questionId"], "answer": {"text": "too long"}}]),
        201,
    )
    .await;
    submit(&app, &a, LEARNER, 201).await;

    // "yes" leaves the child hidden, so it is not required.
    app.call(
        Method::PATCH,
        &format!("/assessment/v1/tests/{test}"),
        Some(json!({"attempts": 3})),
    )
    .await
    .expect_status(200);
    review(
        &app,
        &a,
        REVIEWER,
        json!({"answers": [{"questionId": child["questionId"], "score": 0}]}),
        201,
    )
    .await;
    let b = start_attempt(&app, &test, LEARNER).await;
    answer(&app, &b, LEARNER, json!([{"questionId": parent["questionId"], "answer": {"selectedOptionIds": [opt(&parent, 0)]}}]), 201).await;
    let r = submit(&app, &b, LEARNER, 201).await;
    assert_eq!(r["result"]["score"], 1);
}

#[tokio::test]
async fn review_routes_need_a_reviewer_and_stay_in_scope() {
    use assessment_service::config::Config;
    use jsonwebtoken::{EncodingKey, Header, encode};
    let secret = "a-test-secret-that-is-long-enough-for-hs256";
    let app = TestApp::with_config(Config {
        jwt_secret: Some(secret.into()),
        ..Config::default()
    })
    .await;
    let token = |user: &str, org: &str, roles: Value| {
        let t = encode(
            &Header::default(),
            &json!({"sub": user, "tenantId": TENANT, "organisationId": org, "roles": roles,
            "exp": chrono::Utc::now().timestamp() + 600}),
            &EncodingKey::from_secret(secret.as_bytes()),
        )
        .unwrap();
        format!("Bearer {t}")
    };
    let admin = token(USER, ORG, json!(["admin"]));
    let learner = token(LEARNER, ORG, json!(["learner"]));
    let reviewer = token(REVIEWER, ORG, json!(["reviewer"]));
    let foreign_reviewer = token(REVIEWER, OTHER_ORG, json!(["reviewer"]));
    let call = |m: Method, p: String, b: Option<Value>, auth: String| {
        let app = &app;
        async move {
            app.call_with(m, &p, b, &[("authorization", auth.as_str())])
                .await
        }
    };
    // Set up through the tokens (the header fixtures do not apply in JWT mode).
    let r = call(
        Method::POST,
        "/assessment/v1/tests".into(),
        Some(json!({"title": "J", "type": "plain"})),
        admin.clone(),
    )
    .await
    .expect_status(201);
    let test = r["result"]["testId"].as_str().unwrap().to_string();
    let r = call(
        Method::POST,
        "/assessment/v1/sections".into(),
        Some(json!({"title": "S", "testId": test})),
        admin.clone(),
    )
    .await
    .expect_status(201);
    let section = r["result"]["sectionId"].as_str().unwrap().to_string();
    let r = call(
        Method::POST,
        "/assessment/v1/questions".into(),
        Some(json!({"text": "Why", "type": "essay", "testId": test, "sectionId": section})),
        admin.clone(),
    )
    .await
    .expect_status(201);
    let q = r["result"]["questionId"].clone();
    call(
        Method::POST,
        format!("/assessment/v1/tests/{test}/publish"),
        None,
        admin.clone(),
    )
    .await
    .expect_status(201);
    let r = call(
        Method::POST,
        format!("{A}/start/{test}"),
        None,
        learner.clone(),
    )
    .await
    .expect_status(201);
    let attempt = r["result"]["attemptId"].as_str().unwrap().to_string();
    call(
        Method::POST,
        format!("{A}/{attempt}/answers"),
        Some(json!({"answers": [{"questionId": q, "answer": {"text": "x"}}]})),
        learner.clone(),
    )
    .await
    .expect_status(201);
    let r = call(
        Method::POST,
        format!("{A}/{attempt}/submit"),
        None,
        learner.clone(),
    )
    .await
    .expect_status(201);
    assert_eq!(r["result"]["reviewStatus"], "P", "the essay awaits review");

    assert_eq!(
        call(
            Method::GET,
            format!("{A}/reviews/pending"),
            None,
            learner.clone()
        )
        .await
        .status,
        403
    );
    let r = call(
        Method::POST,
        format!("{A}/{attempt}/review"),
        Some(json!({"answers": [{"questionId": q, "score": 1}]})),
        learner.clone(),
    )
    .await;
    assert_eq!(r.status, 403);
    let r = call(
        Method::GET,
        format!("{A}/reviews/pending"),
        None,
        foreign_reviewer.clone(),
    )
    .await
    .expect_status(200);
    assert_eq!(r["result"], json!([]), "another organisation sees nothing");
    let r = call(
        Method::POST,
        format!("{A}/{attempt}/review"),
        Some(json!({"answers": [{"questionId": q, "score": 1}]})),
        foreign_reviewer.clone(),
    )
    .await;
    assert_eq!(r.status, 404);
    let r = call(
        Method::GET,
        format!("{A}/{attempt}/answersheet"),
        None,
        foreign_reviewer.clone(),
    )
    .await;
    assert_eq!(r.status, 404);
    let other_learner = token(OTHER_LEARNER, ORG, json!(["learner"]));
    let r = call(
        Method::GET,
        format!("{A}/{attempt}/answersheet"),
        None,
        other_learner,
    )
    .await;
    assert_eq!(r.status, 404, "a learner's token reads no one else's sheet");
    let r = call(
        Method::GET,
        format!("{A}/reviews/pending"),
        None,
        reviewer.clone(),
    )
    .await
    .expect_status(200);
    assert_eq!(r["result"].as_array().unwrap().len(), 1);
    let r = call(
        Method::POST,
        format!("{A}/{attempt}/review"),
        Some(json!({"answers": [{"questionId": q, "score": 1}]})),
        reviewer.clone(),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.text());
    let r = call(
        Method::GET,
        format!("{A}/{attempt}/answersheet"),
        None,
        reviewer.clone(),
    )
    .await;
    assert_eq!(
        r.status,
        200,
        "a reviewer reads any answer sheet of the scope: {}",
        r.text()
    );
    let r = call(
        Method::GET,
        format!("/assessment/v1/tests/{test}/users/{LEARNER}/status"),
        None,
        token(OTHER_LEARNER, ORG, json!(["learner"])),
    )
    .await;
    assert_eq!(r.status, 403, "a learner sees only their own status");
}

#[tokio::test]
async fn taking_rules_from_review() {
    let app = TestApp::spawn().await;
    let (test, qs) = published_test(&app, json!({"attempts": 3, "timeDuration": 600}), vec![
        json!({"text": "Pick", "type": "mcq", "isCompulsory": true, "options": [{"text": "a", "isCorrect": true}, {"text": "b"}]}),
        json!({"text": "Explain", "type": "essay", "options": [{"text": "a model answer"}]}),
    ]).await;
    let attempt = start_attempt(&app, &test, LEARNER).await;
    // Reference answers of free-text questions stay hidden.
    let r = app
        .call_with(
            Method::GET,
            &format!("{A}/{attempt}/questions/{LEARNER}"),
            None,
            &as_user(LEARNER),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(!r.text().contains("a model answer"), "{}", r.text());
    // A question on a running paper cannot change.
    let r = app
        .call(
            Method::PATCH,
            &format!(
                "/assessment/v1/questions/{}",
                qs[0]["questionId"].as_str().unwrap()
            ),
            Some(json!({"text": "x"})),
        )
        .await;
    assert_eq!(r.status, 422, "{}", r.text());
    // One answer per question per request.
    let dup = json!([
        {"questionId": qs[0]["questionId"], "answer": {"selectedOptionIds": [opt(&qs[0], 0)]}},
        {"questionId": qs[0]["questionId"], "answer": {"selectedOptionIds": [opt(&qs[0], 1)]}},
    ]);
    let r = answer(&app, &attempt, LEARNER, dup, 400).await;
    assert_eq!(
        r["params"]["errmsg"],
        format!(
            "answers[1]: question {} is answered twice in this request",
            qs[0]["questionId"].as_str().unwrap()
        )
    );
    // An empty answer is saved, but does not satisfy a compulsory question.
    answer(
        &app,
        &attempt,
        LEARNER,
        json!([{"questionId": qs[0]["questionId"], "answer": {"selectedOptionIds": []}}]),
        201,
    )
    .await;
    let r = submit(&app, &attempt, LEARNER, 400).await;
    assert_eq!(
        r["params"]["errmsg"],
        "You need to answer all the required questions before submitting your attempt."
    );
    let ev = events(&app, "answer.submitted").await;
    assert_eq!(
        ev.last().unwrap()["data"],
        json!({"attemptId": attempt, "testId": test, "questionId": qs[0]["questionId"]})
    );
    // Answer the essay, submit: pending review blocks a new start while P or U.
    answer(
        &app,
        &attempt,
        LEARNER,
        json!([
            {"questionId": qs[0]["questionId"], "answer": {"selectedOptionIds": [opt(&qs[0], 0)]}},
            {"questionId": qs[1]["questionId"], "answer": {"text": "my view"}},
        ]),
        201,
    )
    .await;
    let r = submit(&app, &attempt, LEARNER, 201).await;
    assert_eq!(r["result"]["reviewStatus"], "P");
    assert_eq!(r["result"]["totalMarks"], 2, "the paper's marks");
    let r = start(&app, &test, LEARNER, 409).await;
    assert_failure_envelope(
        &r,
        "api.attempts.create",
        "CONFLICT",
        "CONFLICT",
        "Your last attempt is currently under review. Please wait for the review to finish before starting a new one.",
    );
}

#[tokio::test]
async fn date_windows_resubmission_and_late_submits() {
    let app = TestApp::spawn().await;
    let mcq_q = || json!({"text": "Pick", "type": "mcq", "options": [{"text": "a", "isCorrect": true}, {"text": "b"}]});
    let (future, _) = published_test(
        &app,
        json!({"startDate": "2100-01-01T00:00:00Z"}),
        vec![mcq_q()],
    )
    .await;
    let r = app
        .call_with(
            Method::POST,
            &format!("{A}/start/{future}"),
            None,
            &as_user(LEARNER),
        )
        .await;
    assert_failure(
        &r,
        422,
        "api.attempts.create",
        "UNPROCESSABLE_ENTITY",
        "CLIENT_ERROR",
        "Test is not yet available for attempts",
    );
    // A test can be published with a past end date, and then refuses attempts.
    let (past, _) = published_test(
        &app,
        json!({"startDate": "2000-01-01T00:00:00Z", "endDate": "2001-01-01T00:00:00Z"}),
        vec![mcq_q()],
    )
    .await;
    let r = app
        .call_with(
            Method::POST,
            &format!("{A}/start/{past}"),
            None,
            &as_user(LEARNER),
        )
        .await;
    assert_failure(
        &r,
        422,
        "api.attempts.create",
        "UNPROCESSABLE_ENTITY",
        "CLIENT_ERROR",
        "Test is no longer available for attempts",
    );

    // allowResubmission: start returns the same attempt, which can be re-answered and resubmitted.
    let (again, qs) = published_test(&app, json!({"allowResubmission": true}), vec![mcq_q()]).await;
    let a1 = start_attempt(&app, &again, LEARNER).await;
    let a2 = start_attempt(&app, &again, LEARNER).await;
    assert_eq!(a1, a2);
    answer(&app, &a1, LEARNER, json!([{"questionId": qs[0]["questionId"], "answer": {"selectedOptionIds": [opt(&qs[0], 1)]}}]), 201).await;
    // While the learner may still re-answer, no score tells which answer to fix ...
    let r = submit(&app, &a1, LEARNER, 201).await;
    assert!(r["result"]["score"].is_null(), "{r}");
    assert!(r["result"]["percentage"].is_null(), "{r}");
    answer(&app, &a1, LEARNER, json!([{"questionId": qs[0]["questionId"], "answer": {"selectedOptionIds": [opt(&qs[0], 0)]}}]), 201).await;
    let r = submit(&app, &a1, LEARNER, 201).await;
    assert!(r["result"]["score"].is_null(), "{r}");
    // ... neither in the answer sheet ...
    let (sheet_test, qs) = published_test(
        &app,
        json!({"allowResubmission": true, "answerSheet": true}),
        vec![mcq_q()],
    )
    .await;
    let a = start_attempt(&app, &sheet_test, LEARNER).await;
    answer(&app, &a, LEARNER, json!([{"questionId": qs[0]["questionId"], "answer": {"selectedOptionIds": [opt(&qs[0], 1)]}}]), 201).await;
    submit(&app, &a, LEARNER, 201).await;
    let sheet = app
        .call_with(
            Method::GET,
            &format!("{A}/{a}/answersheet"),
            None,
            &as_user(LEARNER),
        )
        .await;
    assert_eq!(sheet.status, 200, "{}", sheet.text());
    assert!(
        sheet.json()["result"]["answers"][0]["score"].is_null(),
        "{}",
        sheet.text()
    );
    // Where the test shows its key once answers are final, it is not shown while they can
    // change, and neither is the score.
    let (keyed, qs) = published_test(
        &app,
        json!({"allowResubmission": true, "showCorrectAnswer": true}),
        vec![mcq_q()],
    )
    .await;
    let a = start_attempt(&app, &keyed, LEARNER).await;
    answer(&app, &a, LEARNER, json!([{"questionId": qs[0]["questionId"], "answer": {"selectedOptionIds": [opt(&qs[0], 0)]}}]), 201).await;
    assert!(submit(&app, &a, LEARNER, 201).await["result"]["score"].is_null());
    // Once the answers are final the scores show.
    let (shown, qs) = published_test(&app, json!({"answerSheet": true}), vec![mcq_q()]).await;
    let a = start_attempt(&app, &shown, LEARNER).await;
    answer(&app, &a, LEARNER, json!([{"questionId": qs[0]["questionId"], "answer": {"selectedOptionIds": [opt(&qs[0], 0)]}}]), 201).await;
    let r = submit(&app, &a, LEARNER, 201).await;
    assert_eq!(r["result"]["score"], 1);
    let sheet = app
        .call_with(
            Method::GET,
            &format!("{A}/{a}/answersheet"),
            None,
            &as_user(LEARNER),
        )
        .await;
    assert_eq!(
        sheet.json()["result"]["answers"][0]["score"],
        1,
        "{}",
        sheet.text()
    );

    // A learner's submit after the deadline is recorded as automatic.
    let clock = ManualClock::starting_now();
    let app = TestApp::on_clock(&clock).await;
    let (timed, _) = published_test(&app, json!({"timeDuration": 60}), vec![mcq_q()]).await;
    let a = start_attempt(&app, &timed, LEARNER).await;
    clock.advance(chrono::Duration::seconds(61));
    let r = app
        .call_with(
            Method::POST,
            &format!("{A}/{a}/submit"),
            None,
            &as_user(LEARNER),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(r.json()["result"]["submissionType"], "auto");
}

#[tokio::test]
async fn subjective_essay_and_file_are_scored_by_review() {
    let app = TestApp::spawn().await;
    let (test, qs) = published_test(&app, json!({"gradingType": "assessment", "passingMarks": 5}), vec![
        json!({"text": "Define", "type": "subjective", "marks": 2}),
        json!({"text": "Discuss", "type": "essay", "marks": 4}),
        json!({"text": "Upload", "type": "file", "marks": 3, "params": {"allowedFileExtensions": ["pdf"]}}),
    ]).await;
    let attempt = start_attempt(&app, &test, LEARNER).await;
    let upload = app
        .upload(
            LEARNER,
            qs[2]["questionId"].as_str(),
            "work.pdf",
            Some("application/pdf"),
            b"%PDF-1.7 work",
        )
        .await
        .expect_status(201);
    let file = upload["result"]["file"].as_str().unwrap().to_string();
    answer(
        &app,
        &attempt,
        LEARNER,
        json!([
            {"questionId": qs[0]["questionId"], "answer": {"text": "a definition"}},
            {"questionId": qs[1]["questionId"], "answer": {"text": "a discussion"}},
            {"questionId": qs[2]["questionId"], "answer": {"file": file}},
        ]),
        201,
    )
    .await;
    let r = submit(&app, &attempt, LEARNER, 201).await;
    assert_eq!(r["result"]["reviewStatus"], "P");
    assert_eq!(r["result"]["score"], 0);
    let r = review(
        &app,
        &attempt,
        REVIEWER,
        json!({"answers": [
            {"questionId": qs[0]["questionId"], "score": 1.5},
            {"questionId": qs[1]["questionId"], "score": 3.25},
            {"questionId": qs[2]["questionId"], "score": 3},
        ]}),
        201,
    )
    .await;
    assert_eq!(
        r["result"],
        json!({"attemptId": attempt, "score": 7.75, "result": "P", "reviewStatus": "R"})
    );
    let sheet = app
        .call_with(
            Method::GET,
            &format!("{A}/{attempt}/answersheet"),
            None,
            &as_user(LEARNER),
        )
        .await;
    let answers = sheet.expect_status(200)["result"]["answers"].clone();
    assert_eq!(answers[0]["score"], 1.5);
    assert_eq!(answers[1]["score"], 3.25);
    assert_eq!(answers[2]["userAnswer"]["file"], file.as_str());
}

/// The keys an attempt's first save read are kept for its later saves (an edit through the
/// service makes a new revision, which the attempt does not hold, so they cannot go stale): a
/// key changed in the bank behind the service's back after the first save does not reach the
/// attempt.
#[tokio::test]
async fn later_saves_score_with_the_keys_the_first_save_read() {
    let app = TestApp::spawn().await;
    let (test, qs) = published_test(&app, json!({}), vec![
        json!({"text": "2+2", "type": "mcq", "marks": 4, "options": [{"text": "4", "isCorrect": true}, {"text": "5"}]}),
        json!({"text": "3+3", "type": "mcq", "marks": 2, "options": [{"text": "6", "isCorrect": true}, {"text": "7"}]}),
    ]).await;
    let attempt = start_attempt(&app, &test, LEARNER).await;
    answer(&app, &attempt, LEARNER,
        json!([{"questionId": qs[0]["questionId"], "answer": {"selectedOptionIds": [opt(&qs[0], 0)]}}]), 201).await;
    // Through the API the edit is refused while the test is published ...
    let q1 = qs[1]["questionId"].as_str().unwrap();
    let edit = app
        .call(
            Method::PATCH,
            &format!("/assessment/v1/questions/{q1}"),
            Some(json!({"marks": 5})),
        )
        .await;
    assert_eq!(edit.status, 422, "{}", edit.text());
    // ... and behind its back it does not reach the running attempt.
    exec(
        &app,
        r#"UPDATE "questionOptions" SET "isCorrect" = NOT "isCorrect" WHERE "questionId" = $1"#,
        q1,
    )
    .await;
    answer(
        &app,
        &attempt,
        LEARNER,
        json!([{"questionId": q1, "answer": {"selectedOptionIds": [opt(&qs[1], 0)]}}]),
        201,
    )
    .await;
    assert_eq!(app.state.keys.len(), 1);
    submit(&app, &attempt, LEARNER, 201).await;
    let sheet = app
        .call_with(
            Method::GET,
            &format!("{A}/{attempt}/answersheet"),
            None,
            &as_user(LEARNER),
        )
        .await
        .json();
    let scores: Vec<Value> = sheet["result"]["answers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["score"].clone())
        .collect();
    assert_eq!(scores, [json!(4), json!(2)], "{sheet}");
}

#[tokio::test]
async fn start_resume_and_saves_carry_the_server_time_and_the_deadline() {
    use assessment_service::clock::ManualClock;
    let clock = ManualClock::starting_now();
    let app = TestApp::on_clock(&clock).await;
    let (test, qs) = published_test(&app, json!({"timeDuration": 600}), vec![
        json!({"text": "mcq", "type": "mcq", "options": [{"text": "a", "isCorrect": true}, {"text": "b"}]}),
    ]).await;
    let time = |v: &Value| {
        chrono::DateTime::parse_from_rfc3339(v.as_str().expect("a time"))
            .unwrap()
            .to_utc()
    };
    let started_at = clock.clock().now().0;
    let r = start(&app, &test, LEARNER, 201).await["result"].clone();
    let attempt = r["attemptId"].as_str().unwrap().to_string();
    assert_eq!(time(&r["serverTime"]), started_at);
    let deadline = time(&r["deadlineAt"]);
    assert_eq!((deadline - started_at).num_seconds(), 600);

    // Two saves, a minute apart each.
    let answers = json!([{"questionId": qs[0]["questionId"], "answer": {"selectedOptionIds": [opt(&qs[0], 0)]}}]);
    for minute in 1..=2 {
        clock.advance(chrono::Duration::seconds(60));
        let r = answer(&app, &attempt, LEARNER, answers.clone(), 201).await["result"].clone();
        assert_eq!(r["message"], "Answers submitted successfully");
        assert_eq!(
            time(&r["serverTime"]),
            clock.clock().now().0,
            "save {minute}"
        );
        assert_eq!(time(&r["deadlineAt"]), deadline, "save {minute}");
    }
    let r = app
        .call_with(
            Method::GET,
            &format!("{A}/{attempt}/resume/{LEARNER}"),
            None,
            &as_user(LEARNER),
        )
        .await
        .expect_status(200)["result"]
        .clone();
    assert_eq!(time(&r["serverTime"]), clock.clock().now().0);
    assert_eq!(time(&r["deadlineAt"]), deadline);
    assert_eq!(r["attempt"]["timeRemaining"], 480);

    // A test without a time limit or end date: no deadline.
    let (open, _) = published_test(&app, json!({}), vec![
        json!({"text": "q", "type": "mcq", "options": [{"text": "a", "isCorrect": true}, {"text": "b"}]}),
    ]).await;
    let r = start(&app, &open, OTHER_LEARNER, 201).await["result"].clone();
    assert!(r["deadlineAt"].is_null(), "{r}");
    assert!(r["serverTime"].is_string());
}
