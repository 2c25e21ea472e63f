//! Accommodations (issue 19, item 3): per learner and test, extra time, extra attempts and a
//! later end date; used at the start, by the saves, by the sweeper, and moving the deadline of
//! an attempt in progress when changed.

use assessment_service::clock::ManualClock;
use chrono::{DateTime, Duration, Utc};
use http::Method;
use serde_json::{Value, json};

use crate::harness::*;

const LEARNER: &str = "5d4c3b2a-1f0e-4d9c-8b7a-6f5e4d3c2b1a";
const OTHER_LEARNER: &str = "6e5d4c3b-2a1f-4e0d-9c8b-7a6f5e4d3c2b";
const P: &str = "/assessment/v1";

fn time(v: &Value) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(v.as_str().expect("a time"))
        .unwrap()
        .to_utc()
}

fn mcq() -> Value {
    json!({"text": "2+2", "type": "mcq", "marks": 1,
           "options": [{"text": "4", "isCorrect": true}, {"text": "5"}]})
}

fn right_answer(q: &Value) -> Value {
    json!([{"questionId": q["questionId"],
            "answer": {"selectedOptionIds": [q["options"][0]["questionOptionId"]]}}])
}

async fn accommodate(app: &TestApp, test: &str, user: &str, body: Value, status: u16) -> Value {
    app.call(
        Method::PUT,
        &format!("{P}/tests/{test}/accommodations/{user}"),
        Some(body),
    )
    .await
    .expect_status(status)
}

async fn sweep(app: &TestApp) -> usize {
    assessment_service::service::attempts::sweep_once(&app.state.store, &app.state.clock, 100)
        .await
        .unwrap()
}

#[tokio::test]
async fn extra_time_and_extra_attempts_apply_to_that_learner_alone() {
    let clock = ManualClock::starting_now();
    let app = TestApp::on_clock(&clock).await;
    let (test, qs) = published_test(
        &app,
        json!({"timeDuration": 600, "attempts": 1}),
        vec![mcq()],
    )
    .await;
    let r = accommodate(
        &app,
        &test,
        LEARNER,
        json!({"extraTimeMinutes": 15, "extraAttempts": 1}),
        200,
    )
    .await;
    assert_eq!(r["result"]["extraTimeMinutes"], 15);
    assert_eq!(r["result"]["extraAttempts"], 1);
    assert!(r["result"]["timeMultiplier"].is_null());

    let now = clock.clock().now().0;
    let mine = start(&app, &test, LEARNER, 201).await["result"].clone();
    assert_eq!(
        (time(&mine["deadlineAt"]) - now).num_seconds(),
        600 + 15 * 60
    );
    let theirs = start(&app, &test, OTHER_LEARNER, 201).await["result"].clone();
    assert_eq!((time(&theirs["deadlineAt"]) - now).num_seconds(), 600);

    // Past the test's limit, within the learner's: their save counts, the other's does not.
    clock.advance(Duration::seconds(700));
    let mine = mine["attemptId"].as_str().unwrap().to_string();
    let theirs = theirs["attemptId"].as_str().unwrap().to_string();
    answer(&app, &mine, LEARNER, right_answer(&qs[0]), 201).await;
    answer(&app, &theirs, OTHER_LEARNER, right_answer(&qs[0]), 422).await;
    assert_eq!(
        sweep(&app).await,
        1,
        "only the other learner's attempt is overdue"
    );
    submit(&app, &mine, LEARNER, 201).await;
    // The test allows one attempt: the learner has one more, and their status says so.
    let can_attempt = |user: &'static str| {
        let (app, test) = (&app, test.clone());
        async move {
            app.call_with(
                Method::GET,
                &format!("{P}/tests/{test}/users/{user}/status"),
                None,
                &as_user(user),
            )
            .await
            .expect_status(200)["result"]["canAttempt"]
                .clone()
        }
    };
    assert_eq!(can_attempt(LEARNER).await, true);
    assert_eq!(can_attempt(OTHER_LEARNER).await, false);
    start(&app, &test, LEARNER, 201).await;
    let r = start(&app, &test, OTHER_LEARNER, 409).await;
    assert_eq!(
        r["params"]["errmsg"],
        "Maximum attempts (1) reached for this test. You cannot start a new attempt."
    );
}

#[tokio::test]
async fn a_change_during_an_attempt_moves_its_deadline_and_the_sweeper_follows() {
    let clock = ManualClock::starting_now();
    let app = TestApp::on_clock(&clock).await;
    let (test, qs) = published_test(&app, json!({"timeDuration": 600}), vec![mcq()]).await;
    let started = clock.clock().now().0;
    let attempt = start_attempt(&app, &test, LEARNER).await;
    // A save now keeps what the saves know of the attempt, its deadline included.
    let r = answer(&app, &attempt, LEARNER, right_answer(&qs[0]), 201).await;
    assert_eq!(
        (time(&r["result"]["deadlineAt"]) - started).num_seconds(),
        600
    );

    clock.advance(Duration::seconds(300));
    accommodate(&app, &test, LEARNER, json!({"timeMultiplier": 2.0}), 200).await;
    let changed = events(&app, "accommodation.updated").await;
    assert_eq!(changed.len(), 1);
    assert_eq!(
        changed[0]["data"]["rescheduledAttemptIds"],
        json!([attempt])
    );
    assert_eq!(changed[0]["data"]["timeMultiplier"], 2.0);

    // Past the old deadline: the save is timed under the new one, and says so.
    clock.advance(Duration::seconds(400));
    let r = answer(&app, &attempt, LEARNER, right_answer(&qs[0]), 201).await;
    assert_eq!(
        (time(&r["result"]["deadlineAt"]) - started).num_seconds(),
        1200
    );
    assert_eq!(sweep(&app).await, 0, "not overdue");
    clock.advance(Duration::seconds(501));
    answer(&app, &attempt, LEARNER, right_answer(&qs[0]), 422).await;
    assert_eq!(sweep(&app).await, 1, "overdue at the new deadline");
    let submitted = events(&app, "attempt.submitted").await;
    assert_eq!(submitted.len(), 1);
    assert_eq!(submitted[0]["data"]["attemptId"], attempt.as_str());

    // Removing it leaves later attempts under the test's own terms.
    app.call(
        Method::DELETE,
        &format!("{P}/tests/{test}/accommodations/{LEARNER}"),
        None,
    )
    .await
    .expect_status(200);
    assert_eq!(events(&app, "accommodation.deleted").await.len(), 1);
}

#[tokio::test]
async fn a_later_end_date_keeps_the_test_open_for_that_learner() {
    let clock = ManualClock::starting_now();
    let app = TestApp::on_clock(&clock).await;
    let now = clock.clock().now().0;
    let end = now + Duration::hours(1);
    let later = now + Duration::hours(3);
    let (test, qs) = published_test(&app, json!({"endDate": end.to_rfc3339()}), vec![mcq()]).await;
    // An attempt started before the end, then given a later end date.
    let early = start_attempt(&app, &test, LEARNER).await;
    accommodate(
        &app,
        &test,
        LEARNER,
        json!({"endDate": later.to_rfc3339()}),
        200,
    )
    .await;
    clock.advance(Duration::hours(2));
    // The test has ended for everyone else.
    let r = start(&app, &test, OTHER_LEARNER, 422).await;
    assert_eq!(
        r["params"]["errmsg"],
        "Test is no longer available for attempts"
    );
    // Not for this learner: the attempt still takes answers, and is submitted as theirs.
    answer(&app, &early, LEARNER, right_answer(&qs[0]), 201).await;
    assert_eq!(sweep(&app).await, 0);
    let r = submit(&app, &early, LEARNER, 201).await;
    assert_eq!(r["result"]["score"], 1.0, "{r}");

    // A learner accommodated after the test's end starts, with the later end as deadline.
    accommodate(
        &app,
        &test,
        OTHER_LEARNER,
        json!({"endDate": later.to_rfc3339()}),
        200,
    )
    .await;
    let r = start(&app, &test, OTHER_LEARNER, 201).await["result"].clone();
    assert_eq!(time(&r["deadlineAt"]), later);
    let attempt = r["attemptId"].as_str().unwrap().to_string();
    answer(&app, &attempt, OTHER_LEARNER, right_answer(&qs[0]), 201).await;
    clock.advance(Duration::hours(1) + Duration::seconds(1));
    answer(&app, &attempt, OTHER_LEARNER, right_answer(&qs[0]), 422).await;
    assert_eq!(sweep(&app).await, 1);
}

#[tokio::test]
async fn accommodations_are_checked_scoped_listed_and_removed() {
    let app = TestApp::spawn().await;
    let (test, _) = published_test(&app, json!({"timeDuration": 600}), vec![mcq()]).await;
    let bad = |body: Value| {
        let app = &app;
        let test = test.clone();
        async move {
            accommodate(app, &test, LEARNER, body, 400).await["params"]["errmsg"]
                .as_str()
                .unwrap()
                .to_string()
        }
    };
    assert_eq!(
        bad(json!({"extraTimeMinutes": 5, "timeMultiplier": 1.5})).await,
        "Give extraTimeMinutes or timeMultiplier, not both"
    );
    assert_eq!(
        bad(json!({})).await,
        "An accommodation needs extraTimeMinutes, timeMultiplier, extraAttempts or endDate"
    );
    assert_eq!(
        bad(json!({"timeMultiplier": 0.5})).await,
        "timeMultiplier must be more than 1 and at most 10"
    );
    assert_eq!(
        bad(json!({"extraAttempts": -1})).await,
        "extraAttempts must be between 0 and 100"
    );
    accommodate(&app, &test, LEARNER, json!({"extraTime": 5}), 400).await;
    accommodate(&app, &test, "not-a-uuid", json!({"extraAttempts": 1}), 400).await;
    let missing = "7f6e5d4c-3b2a-4f1e-8d9c-0b1a2f3e4d5c";
    accommodate(&app, missing, LEARNER, json!({"extraAttempts": 1}), 404).await;

    accommodate(&app, &test, LEARNER, json!({"extraAttempts": 2}), 200).await;
    let r = accommodate(
        &app,
        &test,
        OTHER_LEARNER,
        json!({"extraTimeMinutes": 30}),
        200,
    )
    .await;
    // Replaced whole: what the body leaves out is gone.
    let r2 = accommodate(&app, &test, OTHER_LEARNER, json!({"extraAttempts": 1}), 200).await;
    assert!(r2["result"]["extraTimeMinutes"].is_null());
    assert_eq!(r2["result"]["createdAt"], r["result"]["createdAt"]);
    let list = app
        .call(
            Method::GET,
            &format!("{P}/tests/{test}/accommodations"),
            None,
        )
        .await
        .expect_status(200);
    let users: Vec<&str> = list["result"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["userId"].as_str().unwrap())
        .collect();
    let mut expected = vec![LEARNER, OTHER_LEARNER];
    expected.sort();
    assert_eq!(users, expected);

    // Another tenant sees neither the test nor its accommodations.
    let other_tenant = [
        ("tenantid", OTHER_TENANT),
        ("organisationid", ORG),
        ("userid", USER),
    ];
    let path = format!("{P}/tests/{test}/accommodations/{LEARNER}");
    let r = app.call_with(Method::GET, &path, None, &other_tenant).await;
    assert_eq!(r.status, 404);
    let r = app
        .call_with(Method::DELETE, &path, None, &other_tenant)
        .await;
    assert_eq!(r.status, 404);

    let r = app.call(Method::GET, &path, None).await.expect_status(200);
    assert_eq!(r["result"]["extraAttempts"], 2);
    app.call(Method::DELETE, &path, None)
        .await
        .expect_status(200);
    app.call(Method::GET, &path, None).await.expect_status(404);
    app.call(Method::DELETE, &path, None)
        .await
        .expect_status(404);
}
