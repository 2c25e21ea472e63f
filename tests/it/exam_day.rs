//! Exam day (issue 16): on PostgreSQL a learner's first start at a published plain test is one
//! statement (`store::starts`), which writes only if what the service assumed still holds;
//! anything else takes the general path, with the same outcome for the client.

use assessment_service::domain::event::{EventContext, EventName, NewEvent};
use assessment_service::domain::ids::{OrganisationId, Scope, TenantId};
use assessment_service::store::{self, Backend, Id, Ts};
use http::Method;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::harness::*;

const LEARNER: &str = "2a3b4c5d-6e7f-4a8b-9c0d-1e2f3a4b5c6d";
const SECOND: &str = "3b4c5d6e-7f8a-4b9c-8d1e-2f3a4b5c6d7e";

fn mcq(text: &str) -> Value {
    json!({"text": text, "type": "mcq", "marks": 2,
           "options": [{"text": "right", "isCorrect": true}, {"text": "wrong"}]})
}

/// The value of the counter `series` (name and labels) in `metrics`; 0 when absent.
fn counted(metrics: &str, series: &str) -> u64 {
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .map_or(0, |n| n.trim().parse().unwrap())
}

fn starts_in_one_statement(metrics: &str) -> u64 {
    counted(metrics, "attempt_starts_in_one_statement_total")
}

#[tokio::test]
async fn a_first_start_and_what_follows_are_the_same_on_either_path() {
    let app = TestApp::spawn().await;
    let (test, qs) = published_test(
        &app,
        json!({"questionsShuffle": true, "answersShuffle": true, "timeDuration": 600}),
        vec![mcq("a"), mcq("b"), mcq("c")],
    )
    .await;
    let started = start(&app, &test, LEARNER, 201).await;
    let attempt = started["result"]["attemptId"].as_str().unwrap().to_string();
    assert!(started["result"]["deadlineAt"].is_string(), "{started}");
    let one_statement = app.db.backend() == Backend::Postgres;
    let metrics = app.get("/metrics").await.text();
    assert_eq!(starts_in_one_statement(&metrics), u64::from(one_statement));

    // The paper holds every question, each with both options.
    let paper = app
        .call_with(
            Method::GET,
            &format!("{ATTEMPTS}/{attempt}/questions/{LEARNER}"),
            None,
            &as_user(LEARNER),
        )
        .await
        .expect_status(200);
    let held: Vec<&str> = paper["result"]
        .as_array()
        .unwrap()
        .iter()
        .map(|q| q["text"].as_str().unwrap())
        .collect();
    assert_eq!(held.len(), 3);
    assert!(
        paper["result"]
            .as_array()
            .unwrap()
            .iter()
            .all(|q| q["options"].as_array().unwrap().len() == 2)
    );
    // A second start of the same learner: the general path's refusal.
    start(&app, &test, LEARNER, 409).await;
    // Saves are guarded (the start kept the keys) and scored; the event says attempt 1.
    let answers: Vec<Value> = qs
        .iter()
        .map(|q| json!({"questionId": q["questionId"], "answer": {"selectedOptionIds": [q["options"][0]["questionOptionId"]]}}))
        .collect();
    answer(&app, &attempt, LEARNER, json!(answers), 201).await;
    let r = submit(&app, &attempt, LEARNER, 201).await;
    assert_eq!(r["result"]["score"], 6, "{r}");
    assert_eq!(r["result"]["totalMarks"], 6, "{r}");
    let events = events(&app, "attempt.started").await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["data"]["attemptId"], attempt.as_str());
    assert_eq!(events[0]["data"]["attemptNumber"], 1);
    assert_eq!(events[0]["data"]["testId"], test.as_str());
}

/// The statement itself: it writes the attempt and its event only for a test still published
/// with the `updatedAt` the paper was drawn from, and a learner without an attempt at it.
#[tokio::test]
async fn postgres_a_first_start_writes_only_what_still_holds() {
    let app = TestApp::spawn().await;
    assert_eq!(app.db.backend(), Backend::Postgres, "PostgreSQL only");
    let (test, _) = published_test(&app, json!({}), vec![mcq("a")]).await;
    let first = start_attempt(&app, &test, LEARNER).await;
    let store = &app.state.store;
    let scope = Scope {
        tenant: TenantId::from_uuid(TENANT.parse().unwrap()),
        organisation: OrganisationId::from_uuid(ORG.parse().unwrap()),
    };
    let test_id: Uuid = test.parse().unwrap();
    let published = store::assessments::get(store, &scope, test_id)
        .await
        .unwrap()
        .unwrap();
    let taken = store::attempts::get(store, &scope, first.parse().unwrap())
        .await
        .unwrap()
        .unwrap();
    let attempt_of = |user: &str| store::attempts::Attempt {
        attempt_id: Id(Uuid::new_v4()),
        user_id: Id(user.parse().unwrap()),
        ..taken.clone()
    };
    let event = NewEvent::new(
        Uuid::now_v7(),
        EventName::AttemptStarted,
        EventContext {
            tenant_id: Some(scope.tenant),
            organisation_id: Some(scope.organisation),
            user_id: None,
        },
        json!({}),
        taken.started_at.0,
    );
    let stale = Ts::new(published.updated_at.0 - chrono::Duration::seconds(1));
    let written = |a: store::attempts::Attempt, at: Ts| {
        let event = event.clone();
        async move { store::starts::first(store, &a, at, &event).await.unwrap() }
    };
    let events_before = events(&app, "attempt.started").await.len();
    // Drawn from another version of the test: nothing.
    assert_eq!(written(attempt_of(SECOND), stale).await, Some(false));
    // A learner who has an attempt: nothing (the general path decides).
    assert_eq!(
        written(attempt_of(LEARNER), published.updated_at).await,
        Some(false)
    );
    assert_eq!(events(&app, "attempt.started").await.len(), events_before);
    // Everything as assumed: the attempt and its event.
    let second = attempt_of(SECOND);
    let id = second.attempt_id.0;
    assert_eq!(written(second, published.updated_at).await, Some(true));
    assert!(
        store::attempts::get(store, &scope, id)
            .await
            .unwrap()
            .is_some()
    );
    assert_eq!(
        events(&app, "attempt.started").await.len(),
        events_before + 1
    );
    // Unpublished: nothing.
    app.call(
        Method::POST,
        &format!("/assessment/v1/tests/{test}/unpublish"),
        None,
    )
    .await
    .expect_status(201);
    let unpublished = store::assessments::get(store, &scope, test_id)
        .await
        .unwrap()
        .unwrap();
    let third = "4c5d6e7f-8a9b-4c0d-9e2f-3a4b5c6d7e8f";
    assert_eq!(
        written(attempt_of(third), unpublished.updated_at).await,
        Some(false)
    );
    assert_eq!(
        written(attempt_of(third), published.updated_at).await,
        Some(false)
    );
}

/// A published rule-based test whose one rule draws 2 of the 3 questions tagged `pool`;
/// returns the test and the questions' ids.
async fn rule_based_test(app: &TestApp) -> (String, Vec<String>) {
    let mut ids = Vec::new();
    for i in 0..3 {
        let mut q = mcq(&format!("pool {i}"));
        q["status"] = json!("published");
        q["tags"] = json!(["pool"]);
        ids.push(
            create_question(app, q).await["questionId"]
                .as_str()
                .unwrap()
                .to_string(),
        );
    }
    let test = create_test(app, json!({"title": "Drawn", "type": "rule_based"})).await;
    let section = create_section(app, &test, "S").await;
    let rule = json!({"name": "Pool", "ruleType": "category_based", "testId": test, "sectionId": section,
                      "numberOfQuestions": 2, "poolSize": 3, "criteria": {"tags": ["pool"]}});
    app.call(Method::POST, "/assessment/v1/rules", Some(rule))
        .await
        .expect_status(201);
    publish(app, &test, 201).await;
    (test, ids)
}

/// The questions on `user`'s paper of `attempt`.
async fn drawn(app: &TestApp, attempt: &str, user: &'static str) -> Vec<String> {
    app.call_with(
        Method::GET,
        &format!("{ATTEMPTS}/{attempt}/questions/{user}"),
        None,
        &as_user(user),
    )
    .await
    .expect_status(200)["result"]
        .as_array()
        .unwrap()
        .iter()
        .map(|q| q["questionId"].as_str().unwrap().to_string())
        .collect()
}

fn learner(i: usize) -> &'static str {
    Box::leak(format!("5d6e7f8a-9b0c-4d1e-8f3a-4b5c6d7e8f{i:02}").into_boxed_str())
}

fn pools_read(metrics: &str) -> u64 {
    counted(metrics, r#"test_entries_made_total{kind="rule_pools"}"#)
}

/// On PostgreSQL a rule-based test's pools are read once for many starts, and read again
/// after a question of the bank changes on this instance.
#[tokio::test]
async fn rule_pools_are_kept_until_the_bank_changes() {
    let app = TestApp::spawn().await;
    let (test, ids) = rule_based_test(&app).await;
    let watching = app.db.backend() == Backend::Postgres;
    // The watch listens once the first starts have been heard of (the bank's changes above).
    let mut attempts = Vec::new();
    for i in 0..4 {
        let attempt = start_attempt(&app, &test, learner(i)).await;
        assert_eq!(drawn(&app, &attempt, learner(i)).await.len(), 2);
        attempts.push((attempt, learner(i)));
    }
    let read = pools_read(&app.get("/metrics").await.text());
    assert!(
        if watching {
            (1..=4).contains(&read)
        } else {
            read == 0
        },
        "{read}"
    );
    let before = pools_read(&app.get("/metrics").await.text());
    for i in 4..8 {
        attempts.push((start_attempt(&app, &test, learner(i)).await, learner(i)));
    }
    if watching {
        assert_eq!(
            pools_read(&app.get("/metrics").await.text()),
            before,
            "kept"
        );
    }
    // Archived through this instance (once no attempt in progress holds it): the next start
    // reads the pool again and draws the other two.
    for (attempt, user) in &attempts {
        submit(&app, attempt, user, 201).await;
    }
    let path = format!("/assessment/v1/questions/{}", ids[0]);
    app.call(Method::DELETE, &path, None)
        .await
        .expect_status(200);
    let attempt = start_attempt(&app, &test, learner(8)).await;
    let mut got = drawn(&app, &attempt, learner(8)).await;
    got.sort();
    let mut rest = ids[1..].to_vec();
    rest.sort();
    assert_eq!(got, rest);
}

/// A kept pool that missed a change (here one made with the trigger off, so no instance
/// hears it) never puts a question that is no longer published on a paper: the start checks
/// what it drew and draws again from the pool as it is now.
#[tokio::test]
async fn postgres_a_kept_pool_never_draws_a_question_gone_from_the_bank() {
    let app = TestApp::spawn().await;
    assert_eq!(app.db.backend(), Backend::Postgres, "PostgreSQL only");
    let (test, ids) = rule_based_test(&app).await;
    // Until the pools are kept (the watch listening, the bank's changes heard).
    let mut i = 0;
    while pools_read(&app.get("/metrics").await.text()) == 0 || i < 2 {
        start_attempt(&app, &test, learner(i)).await;
        i += 1;
        assert!(i < 50, "the pools were never kept");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let pool = app.state.store.postgres().unwrap();
    let trigger = |on: &'static str| async move {
        let sql = format!(r#"ALTER TABLE "questions" {on} TRIGGER "bankChanged""#);
        sqlx::query(&sql).execute(pool).await.unwrap();
    };
    trigger("DISABLE").await;
    exec(
        &app,
        r#"UPDATE "questions" SET "status" = 'archived' WHERE "questionId" = $1"#,
        &ids[0],
    )
    .await;
    trigger("ENABLE").await;
    for j in i..i + 6 {
        let attempt = start_attempt(&app, &test, learner(j)).await;
        let got = drawn(&app, &attempt, learner(j)).await;
        assert_eq!(got.len(), 2);
        assert!(
            !got.contains(&ids[0]),
            "drew the archived question: {got:?}"
        );
    }
}
