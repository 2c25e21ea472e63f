//! Item statistics (issue 19, item 4): every figure against a fixture worked by hand.

use serde_json::{Value, json};

use crate::harness::*;

const LEARNERS: [&str; 5] = [
    "a1000000-0000-4000-8000-000000000001",
    "a1000000-0000-4000-8000-000000000002",
    "a1000000-0000-4000-8000-000000000003",
    "a1000000-0000-4000-8000-000000000004",
    "a1000000-0000-4000-8000-000000000005",
];

fn close(v: &Value, expected: f64) {
    let got = v.as_f64().unwrap_or_else(|| panic!("{v} is not a number"));
    assert!((got - expected).abs() < 1e-4, "{got} against {expected}");
}

/// Four learners, three one-mark questions of two options each; right (r) or wrong (w):
/// A r r r (3), B r r w (2), C r w w (1), D w w w (0); a fifth learner's attempt is still in
/// progress and counts for nothing. By hand (docs/decisions.md, "Item statistics"): mean 1.5,
/// median 1.5, standard deviation sqrt(5/3), alpha 3/2 * (1 - 0.625/1.25) = 0.75; facility
/// 0.75, 0.5, 0.25; discrimination (item against the rest) 0.75/sqrt(0.75*2.75), 1/sqrt(2),
/// 0.75/sqrt(0.75*2.75); the right option chosen by 3, 2 and 1 of 4.
#[tokio::test]
async fn every_figure_matches_the_hand_worked_fixture() {
    let app = TestApp::spawn().await;
    let mcq = |text: &str| {
        json!({"text": text, "type": "mcq", "marks": 1,
               "options": [{"text": "right", "isCorrect": true}, {"text": "wrong"}]})
    };
    let (test, qs) = published_test(&app, json!({}), vec![mcq("q1"), mcq("q2"), mcq("q3")]).await;
    let pick = |q: usize, right: bool| {
        json!({"questionId": qs[q]["questionId"],
               "answer": {"selectedOptionIds": [qs[q]["options"][if right { 0 } else { 1 }]["questionOptionId"]]}})
    };
    let sheets = [
        [true, true, true],
        [true, true, false],
        [true, false, false],
        [false, false, false],
    ];
    for (learner, sheet) in LEARNERS.iter().zip(sheets) {
        let attempt = start_attempt(&app, &test, learner).await;
        let answers: Vec<Value> = sheet.iter().enumerate().map(|(q, r)| pick(q, *r)).collect();
        answer(&app, &attempt, learner, json!(answers), 201).await;
        submit(&app, &attempt, learner, 201).await;
    }
    let unfinished = start_attempt(&app, &test, LEARNERS[4]).await;
    answer(&app, &unfinished, LEARNERS[4], json!([pick(0, false)]), 201).await;

    let r = app
        .call(
            http::Method::GET,
            &format!("/assessment/v1/tests/{test}/statistics"),
            None,
        )
        .await
        .expect_status(200);
    let s = &r["result"];
    assert_eq!(s["attempts"], 4, "{s}");
    close(&s["mean"], 1.5);
    close(&s["median"], 1.5);
    close(&s["standardDeviation"], (5.0f64 / 3.0).sqrt());
    close(&s["cronbachAlpha"], 0.75);
    assert_eq!(
        s["scoreDistribution"],
        json!([{"score": 0.0, "attempts": 1}, {"score": 1.0, "attempts": 1},
               {"score": 2.0, "attempts": 1}, {"score": 3.0, "attempts": 1}]),
        "{s}"
    );
    let q = s["questions"].as_array().unwrap();
    assert_eq!(q.len(), 3);
    let edge = 0.75 / (0.75f64 * 2.75).sqrt();
    for (i, (facility, discrimination, right)) in [
        (0.75, edge, 3),
        (0.5, 1.0 / 2.0f64.sqrt(), 2),
        (0.25, edge, 1),
    ]
    .into_iter()
    .enumerate()
    {
        assert_eq!(q[i]["questionId"], qs[i]["questionId"]);
        assert_eq!(q[i]["scored"], 4);
        close(&q[i]["marks"], 1.0);
        close(&q[i]["facility"], facility);
        close(&q[i]["meanScore"], facility);
        close(&q[i]["discrimination"], discrimination);
        let options = q[i]["options"].as_array().unwrap();
        assert_eq!(options[0]["isCorrect"], true);
        assert_eq!(options[0]["chosen"], right);
        assert_eq!(options[1]["chosen"], 4 - right);
        close(&options[0]["share"], f64::from(right) / 4.0);
    }
}

#[tokio::test]
async fn a_test_without_submissions_has_no_figures_and_other_tenants_none_at_all() {
    let app = TestApp::spawn().await;
    let (test, _) = published_test(
        &app,
        json!({}),
        vec![json!({"text": "Why?", "type": "essay", "marks": 2})],
    )
    .await;
    let path = format!("/assessment/v1/tests/{test}/statistics");
    let r = app
        .call(http::Method::GET, &path, None)
        .await
        .expect_status(200);
    let s = &r["result"];
    assert_eq!(s["attempts"], 0);
    for figure in ["mean", "median", "standardDeviation", "cronbachAlpha"] {
        assert!(s[figure].is_null(), "{figure}: {s}");
    }
    assert_eq!(s["questions"][0]["marks"], 2.0);
    assert!(s["questions"][0]["facility"].is_null());
    let other_tenant = [
        ("tenantid", OTHER_TENANT),
        ("organisationid", ORG),
        ("userid", USER),
    ];
    let r = app
        .call_with(http::Method::GET, &path, None, &other_tenant)
        .await;
    assert_eq!(r.status, 404);
}

/// The statistics speak of one version: its attempts, and its questions as it had them; a
/// regrade moves the attempts it changes to the version it scored them against.
#[tokio::test]
async fn statistics_are_of_one_version() {
    let app = TestApp::spawn().await;
    let (test, qs) = published_test(
        &app,
        json!({}),
        vec![json!({"text": "q1", "type": "mcq", "marks": 1,
                    "options": [{"text": "right", "isCorrect": true}, {"text": "wrong"}]})],
    )
    .await;
    let pick = |i: usize| {
        json!([{"questionId": qs[0]["questionId"],
                "answer": {"selectedOptionIds": [qs[0]["options"][i]["questionOptionId"]]}}])
    };
    for learner in &LEARNERS[..2] {
        let attempt = start_attempt(&app, &test, learner).await;
        answer(&app, &attempt, learner, pick(0), 201).await;
        submit(&app, &attempt, learner, 201).await;
    }
    // Version 2: worth 4, the other option right.
    let path = format!("/assessment/v1/tests/{test}");
    republish_with(&app, &test, &qs[0]["questionId"], json!({"text": "q1, corrected", "marks": 4, "options": [
        {"questionOptionId": qs[0]["options"][0]["questionOptionId"], "text": "right", "isCorrect": false},
        {"questionOptionId": qs[0]["options"][1]["questionOptionId"], "text": "wrong", "isCorrect": true}]}))
    .await;
    let attempt = start_attempt(&app, &test, LEARNERS[2]).await;
    answer(&app, &attempt, LEARNERS[2], pick(1), 201).await;
    submit(&app, &attempt, LEARNERS[2], 201).await;

    let stats = |query: &'static str| {
        let app = &app;
        let path = format!("/assessment/v1/tests/{test}/statistics{query}");
        async move { app.call(http::Method::GET, &path, None).await }
    };
    let latest = stats("").await.expect_status(200)["result"].clone();
    assert_eq!(
        (latest["version"].clone(), latest["attempts"].clone()),
        (json!(2), json!(1)),
        "{latest}"
    );
    close(&latest["questions"][0]["marks"], 4.0);
    assert_eq!(latest["questions"][0]["text"], "q1, corrected");
    close(&latest["questions"][0]["facility"], 1.0);
    let first = stats("?version=1").await.expect_status(200)["result"].clone();
    assert_eq!(first["attempts"], 2, "{first}");
    close(&first["questions"][0]["marks"], 1.0);
    assert_eq!(first["questions"][0]["text"], "q1");
    assert_eq!(first["questions"][0]["options"][0]["isCorrect"], true);
    assert_eq!(first["questions"][0]["options"][0]["chosen"], 2);
    close(&first["questions"][0]["facility"], 1.0);
    stats("?version=3").await.expect_status(400);
    stats("?version=x").await.expect_status(400);

    // Regraded against version 2, the first two attempts (now wrong) count there.
    app.call(
        http::Method::POST,
        &format!("{path}/regrade"),
        Some(json!({})),
    )
    .await
    .expect_status(200);
    let latest = stats("").await.expect_status(200)["result"].clone();
    assert_eq!(latest["attempts"], 3, "{latest}");
    close(&latest["questions"][0]["facility"], 1.0 / 3.0);
    assert_eq!(
        stats("?version=1").await.expect_status(200)["result"]["attempts"],
        0
    );
}
