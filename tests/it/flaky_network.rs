//! Saves a flaky network cannot reorder (issue 16): with `clientSeq`, a delayed or retried
//! save never replaces a newer answer, on the guarded path and on the general one.

use http::Method;
use serde_json::{Value, json};

use crate::harness::*;

const LEARNER: &str = "1f2a3b4c-5d6e-4f7a-8b9c-0d1e2f3a4b5c";

fn mcq(text: &str) -> Value {
    json!({"text": text, "type": "mcq", "marks": 1,
           "options": [{"text": "right", "isCorrect": true}, {"text": "wrong"}]})
}

/// Saves option `option` of each of `questions` with `seq` (none: no `clientSeq`); the
/// response's `result`.
async fn save(
    app: &TestApp,
    attempt: &str,
    questions: &[&Value],
    option: usize,
    seq: Option<i64>,
) -> TestResponse {
    let answers: Vec<Value> = questions
        .iter()
        .map(|q| json!({"questionId": q["questionId"], "answer": {"selectedOptionIds": [q["options"][option]["questionOptionId"]]}}))
        .collect();
    let mut body = json!({"answers": answers});
    if let Some(seq) = seq {
        body["clientSeq"] = json!(seq);
    }
    let path = format!("{ATTEMPTS}/{attempt}/answers");
    app.call_with(Method::POST, &path, Some(body), &as_user(LEARNER))
        .await
}

fn unchanged(r: &TestResponse) -> Vec<String> {
    let v = r.json();
    assert_eq!(r.status, 201, "{v}");
    v["result"]["unchanged"]
        .as_array()
        .expect("unchanged")
        .iter()
        .map(|q| q.as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn a_late_retry_never_replaces_a_newer_answer() {
    let one = TestApp::spawn().await;
    let (test, qs) = published_test(&one, json!({}), vec![mcq("a"), mcq("b")]).await;
    let attempt = start_attempt(&one, &test, LEARNER).await;
    let (q0, q1) = (&qs[0], &qs[1]);
    let id = |q: &Value| q["questionId"].as_str().unwrap().to_string();

    // Wrong (seq 1), then right (seq 2); the first arrives again, late: kept out.
    assert!(unchanged(&save(&one, &attempt, &[q0], 1, Some(1)).await).is_empty());
    assert!(unchanged(&save(&one, &attempt, &[q0], 0, Some(2)).await).is_empty());
    assert_eq!(
        unchanged(&save(&one, &attempt, &[q0], 1, Some(1)).await),
        [id(q0)]
    );
    // An equal number is a repeat: acknowledged, nothing changes.
    assert_eq!(
        unchanged(&save(&one, &attempt, &[q0], 1, Some(2)).await),
        [id(q0)]
    );
    // Through an instance that has not seen this attempt (the general path): the same rule,
    // and in one body a stale answer is kept while a fresh one is written.
    let two = one.beside().await;
    let r = save(&two, &attempt, &[q0, q1], 1, Some(1)).await;
    assert_eq!(unchanged(&r), [id(q0)]);
    let metrics = two.get("/metrics").await.text();
    assert!(
        metrics
            .lines()
            .any(|l| l == "answer_saves_total{path=\"locked\"} 1"),
        "{metrics}"
    );
    // q1 now holds seq 1 (wrong); seq 3 through the first instance puts it right.
    assert!(unchanged(&save(&one, &attempt, &[q1], 0, Some(3)).await).is_empty());
    // No clientSeq: the last save wins, as before, and the stored numbers stay.
    assert!(unchanged(&save(&one, &attempt, &[q1], 1, None).await).is_empty());
    assert_eq!(
        unchanged(&save(&one, &attempt, &[q1], 0, Some(3)).await),
        [id(q1)]
    );
    assert!(unchanged(&save(&one, &attempt, &[q1], 0, Some(4)).await).is_empty());

    // One event per answer written: q0 twice, q1 four times (seq 1, 3, none, 4).
    let events = events(&one, "answer.submitted").await;
    let count = |q: &Value| {
        events
            .iter()
            .filter(|e| e["data"]["questionId"] == q["questionId"])
            .count()
    };
    assert_eq!((count(q0), count(q1)), (2, 4));
    let r = submit(&one, &attempt, LEARNER, 201).await;
    assert_eq!(r["result"]["score"], 2, "{r}");
}

#[tokio::test]
async fn a_negative_client_seq_is_refused() {
    let app = TestApp::spawn().await;
    let (test, qs) = published_test(&app, json!({}), vec![mcq("a")]).await;
    let attempt = start_attempt(&app, &test, LEARNER).await;
    let r = save(&app, &attempt, &[&qs[0]], 0, Some(-1)).await;
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(r.text().contains("clientSeq"), "{}", r.text());
    let r = save(&app, &attempt, &[&qs[0]], 0, None).await;
    assert_eq!(r.status, 201);
}

/// Saves option `option` of `q` with an `Idempotency-Key`.
async fn save_once(
    app: &TestApp,
    attempt: &str,
    q: &Value,
    option: usize,
    key: &str,
) -> TestResponse {
    let body = json!({"answers": [{"questionId": q["questionId"], "answer": {"selectedOptionIds": [q["options"][option]["questionOptionId"]]}}]});
    let mut headers = as_user(LEARNER);
    let key: &'static str = Box::leak(key.to_string().into_boxed_str());
    headers.push(("idempotency-key", key));
    let path = format!("{ATTEMPTS}/{attempt}/answers");
    app.call_with(Method::POST, &path, Some(body), &headers)
        .await
}

#[tokio::test]
async fn a_save_retried_under_its_idempotency_key_is_answered_again_and_writes_nothing() {
    let app = TestApp::spawn().await;
    let (test, qs) = published_test(&app, json!({}), vec![mcq("a")]).await;
    let attempt = start_attempt(&app, &test, LEARNER).await;
    let q = &qs[0];

    let first = save_once(&app, &attempt, q, 1, "save-1").await;
    let first = first.expect_status(201)["result"].clone();
    save_once(&app, &attempt, q, 0, "save-2")
        .await
        .expect_status(201);
    // The first request again, late (as a client retries after a lost response): the same
    // answer as the first time, and the newer answer stays.
    let again = save_once(&app, &attempt, q, 1, "save-1").await;
    assert_eq!(again.expect_status(201)["result"], first);
    // Two copies of one request at once: one save, the same answer twice.
    let both = join_all([0, 1].map(|_| save_once(&app, &attempt, q, 0, "save-3"))).await;
    let results: Vec<Value> = both.iter().map(|r| r.json()["result"].clone()).collect();
    assert!(both.iter().all(|r| r.status == 201), "{results:?}");
    assert_eq!(results[0], results[1]);
    assert_eq!(events(&app, "answer.submitted").await.len(), 3);
    // The same key with another answer is a client's mistake.
    let r = save_once(&app, &attempt, q, 1, "save-2").await;
    assert_eq!(r.status, 422, "{}", r.text());
    assert!(r.text().contains("Idempotency-Key"), "{}", r.text());
    // After the submission, a retry still gets its first answer, not a refusal.
    let r = submit(&app, &attempt, LEARNER, 201).await;
    assert_eq!(r["result"]["score"], 1, "{r}");
    let late = save_once(&app, &attempt, q, 1, "save-1").await;
    assert_eq!(late.expect_status(201)["result"], first);
    // A new key after the submission is refused as any save is.
    assert_eq!(save_once(&app, &attempt, q, 1, "save-4").await.status, 409);
    for bad in ["", &"k".repeat(256), "tab\there"] {
        let r = save_once(&app, &attempt, q, 1, bad).await;
        assert_eq!(r.status, 400, "{bad:?}: {}", r.text());
    }
    assert_eq!(events(&app, "answer.submitted").await.len(), 3);
}

/// A synchronized start: past `START_CONCURRENCY` starts wait their turn, and past
/// `START_QUEUE_DEPTH` waiting ones a start is answered at once with 503 and `Retry-After`
/// in the envelope; nothing is written for it.
#[tokio::test]
async fn starts_past_the_queue_get_503_with_retry_after() {
    four_starts_at_once_two_refused(1, 1).await;
}

/// Without `START_CONCURRENCY` (the default), `START_QUEUE_DEPTH` bounds the starts in
/// flight: past it, the same 503.
#[tokio::test]
async fn without_a_start_limit_the_depth_bounds_the_starts_in_flight() {
    four_starts_at_once_two_refused(0, 2).await;
}

/// Four learners start at once: two get 201 (with `concurrency` 1 and `depth` 1: one runs,
/// one waits its turn; with no limit and `depth` 2: two in flight), the other two 503.
async fn four_starts_at_once_two_refused(concurrency: usize, depth: usize) {
    let app = TestApp::with_config(assessment_service::config::Config {
        start_concurrency: concurrency,
        start_queue_depth: depth,
        ..assessment_service::config::Config::default()
    })
    .await;
    let (test, _) = published_test(&app, json!({}), vec![mcq("a")]).await;
    let learners: Vec<&'static str> = (0..4)
        .map(|i| &*Box::leak(format!("2a3b4c5d-6e7f-4a8b-9c0d-1e2f3a4b5c{i:02}").into_boxed_str()))
        .collect();
    let path = format!("{ATTEMPTS}/start/{test}");
    let all = join_all(learners.iter().map(|u| {
        let path = path.clone();
        let app = &app;
        async move { app.call_with(Method::POST, &path, None, &as_user(u)).await }
    }))
    .await;
    let statuses: Vec<u16> = all.iter().map(|r| r.status.as_u16()).collect();
    // Two are let in, the other two are refused at once.
    assert_eq!(
        statuses.iter().filter(|s| **s == 201).count(),
        2,
        "{statuses:?}"
    );
    let refused: Vec<_> = all.iter().filter(|r| r.status == 503).collect();
    assert_eq!(refused.len(), 2, "{statuses:?}");
    for r in refused {
        assert_eq!(r.header("retry-after"), Some("1"));
        let v = r.json();
        assert_eq!(v["params"]["err"], "SERVICE_UNAVAILABLE", "{v}");
        assert!(
            v["params"]["errmsg"].as_str().unwrap().contains("starts"),
            "{v}"
        );
    }
    assert_eq!(events(&app, "attempt.started").await.len(), 2);
    // Later, with the queue empty, the refused learners start.
    for (u, status) in learners.iter().zip(&statuses) {
        if *status == 503 {
            start(&app, &test, u, 201).await;
        }
    }
    assert_eq!(events(&app, "attempt.started").await.len(), 4);
}
