//! `/tests`: authoring, publishing, hierarchies, isolation, concurrency.

use std::collections::HashSet;

use http::Method;
use serde_json::{Value, json};

use crate::harness::*;
use crate::questions::{OTHER_ORG, mcq};

const T: &str = "/assessment/v1/tests";

/// The harness's fixtures under their old path here (delivery.rs still calls them so).
pub use crate::harness::{create_section, create_test};

/// A plain test with one section holding `n` MCQs of 2.5 marks; returns (test, section, questions).
pub async fn plain_test(app: &TestApp, n: usize) -> (String, String, Vec<Value>) {
    let test = create_test(
        app,
        json!({"title": "Algebra", "type": "plain", "passingMarks": 2}),
    )
    .await;
    let section = create_section(app, &test, "Part A").await;
    let mut questions = Vec::new();
    for i in 0..n {
        let q = create_question(app, mcq(&format!("Q{i}"))).await;
        let r = app
            .call(
                Method::POST,
                &format!("{T}/{test}/questions"),
                Some(json!({"sectionId": section, "questionId": q["questionId"]})),
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.text());
        questions.push(q);
    }
    (test, section, questions)
}

fn scopes_elsewhere() -> [Vec<(&'static str, &'static str)>; 2] {
    [
        vec![
            ("tenantid", TENANT),
            ("organisationid", OTHER_ORG),
            ("userid", USER),
        ],
        vec![
            ("tenantid", OTHER_TENANT),
            ("organisationid", ORG),
            ("userid", USER),
        ],
    ]
}

#[tokio::test]
async fn create_get_and_list_tests() {
    let app = TestApp::spawn().await;
    let r = app
        .call(Method::POST, T, Some(json!({"title": "Maths Final Exam", "type": "plain", "gradingType": "quiz", "timeDuration": 600})))
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(r.json()["id"], "api.tests.create");
    let id = r.json()["result"]["testId"].as_str().unwrap().to_string();

    let r = app.call(Method::GET, &format!("{T}/{id}"), None).await;
    assert_eq!(r.status, 200);
    let t = r.json()["result"].clone();
    assert_eq!(t["title"], "Maths Final Exam");
    assert_eq!(t["alias"], "maths-final-exam");
    assert_eq!(t["status"], "draft");
    assert_eq!(t["timeDuration"], 600);
    assert_eq!(t["attempts"], 1);
    assert_eq!(t["attemptsGrading"], "last_attempt");
    for flag in [
        "answerSheet",
        "showCorrectAnswer",
        "printAnswersheet",
        "questionsShuffle",
        "answersShuffle",
        "showThankyouPage",
        "showAllQuestions",
        "showQuestionsOverview",
    ] {
        assert_eq!(
            t[flag], true,
            "{flag} defaults to true on create, as upstream"
        );
    }
    assert_eq!(t["sections"], json!([]));
    assert_eq!(t["questions"], json!([]));
    assert_eq!(events(&app, "test.created").await.len(), 1);

    create_test(&app, json!({"title": "Physics", "type": "rule_based"})).await;
    let r = app
        .call(Method::GET, &format!("{T}?type=rule_based"), None)
        .await;
    assert_eq!(r.json()["result"]["totalElements"], 1);
    let r = app
        .call(
            Method::POST,
            &format!("{T}/listsearch"),
            Some(json!({"search": "maths", "limit": 5})),
        )
        .await;
    assert_eq!(r.status, 201);
    assert_eq!(r.json()["result"]["totalElements"], 1);
    assert_eq!(r.json()["result"]["size"], 5);
    let r = app
        .call(
            Method::GET,
            &format!("{T}?sortBy=title&sortOrder=ASC"),
            None,
        )
        .await;
    let titles: Vec<&str> = r.json()["result"]["content"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["title"].as_str().unwrap())
        .collect::<Vec<_>>()
        .into_iter()
        .map(|s| {
            if s.starts_with('M') {
                "Maths Final Exam"
            } else {
                "Physics"
            }
        })
        .collect();
    assert_eq!(titles, vec!["Maths Final Exam", "Physics"]);
    let r = app
        .call(Method::GET, &format!("{T}?startDate[gte]=2020-01-01"), None)
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        r.json()["result"]["totalElements"],
        0,
        "no test has a start date"
    );
    let r = app
        .call(Method::GET, &format!("{T}?sortBy=1;drop"), None)
        .await;
    assert_eq!(r.status, 400);
    let r = app
        .call(
            Method::GET,
            &format!("{T}?startDate[around]=2020-01-01"),
            None,
        )
        .await;
    assert_eq!(r.status, 400);
}

#[tokio::test]
async fn create_validation_errors() {
    let app = TestApp::spawn().await;
    let cases = [
        (json!({"type": "plain"}), "Title is required"),
        (json!({"title": "T"}), "type should not be empty"),
        (
            json!({"title": "T", "type": "generated"}),
            "generated tests are created by the service when a rule-based attempt starts",
        ),
        (
            json!({"title": "T", "type": "plain", "attempts": 0}),
            "attempts must be between 1 and 1000",
        ),
        (
            json!({"title": "T", "type": "plain", "timeDuration": 1.5}),
            "timeDuration: invalid type: floating point `1.5`, expected u32",
        ),
        (
            json!({"title": "T", "type": "plain", "startDate": "2026-02-01T00:00:00Z", "endDate": "2026-01-01T00:00:00Z"}),
            "End date is invalid or must be greater than start date",
        ),
        (
            json!({"title": "T", "type": "plain", "bogus": 1}),
            "property bogus should not exist",
        ),
    ];
    for (body, msg) in cases {
        let r = app.call(Method::POST, T, Some(body)).await;
        assert_failure(
            &r,
            400,
            "api.tests.create",
            "VALIDATION_ERROR",
            "CLIENT_ERROR",
            msg,
        );
    }
    // Publishing at creation goes through the publish checks: an empty test cannot be published.
    let r = app
        .call(
            Method::POST,
            T,
            Some(json!({"title": "T", "type": "plain", "status": "published"})),
        )
        .await;
    assert_failure(
        &r,
        422,
        "api.tests.create",
        "UNPROCESSABLE_ENTITY",
        "CLIENT_ERROR",
        "Cannot publish a test with no questions",
    );
    let r = app.call(Method::GET, T, None).await;
    assert_eq!(
        r.json()["result"]["totalElements"],
        0,
        "the refused create stored nothing"
    );
    assert!(events(&app, "test.created").await.is_empty());
}

#[tokio::test]
async fn patch_changes_only_the_fields_sent() {
    let app = TestApp::spawn().await;
    let id = create_test(&app, json!({"title": "T", "type": "plain", "answerSheet": false, "questionsShuffle": false, "description": "d"})).await;
    let r = app
        .call(
            Method::PATCH,
            &format!("{T}/{id}"),
            Some(json!({"title": "T2"})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["result"]["testId"], id.as_str());
    let t = app
        .call(Method::GET, &format!("{T}/{id}"), None)
        .await
        .json()["result"]
        .clone();
    assert_eq!(t["title"], "T2");
    assert_eq!(t["answerSheet"], false, "not reset to true");
    assert_eq!(t["questionsShuffle"], false);
    assert_eq!(t["description"], "d");
    assert_eq!(t["updatedBy"], USER);
    let r = app
        .call(
            Method::PATCH,
            &format!("{T}/{id}"),
            Some(json!({"description": null, "alias": "My Alias"})),
        )
        .await;
    assert_eq!(r.status, 200);
    let t = app
        .call(Method::GET, &format!("{T}/{id}"), None)
        .await
        .json()["result"]
        .clone();
    assert!(t["description"].is_null());
    assert_eq!(t["alias"], "my-alias");
    let other = create_test(&app, json!({"title": "Other", "type": "plain"})).await;
    let r = app
        .call(
            Method::PATCH,
            &format!("{T}/{other}"),
            Some(json!({"alias": "my-alias"})),
        )
        .await;
    assert_failure(
        &r,
        409,
        "api.tests.update",
        "CONFLICT",
        "CONFLICT",
        "alias is already used by another test",
    );
    let r = app
        .call(
            Method::PATCH,
            &format!("{T}/{id}"),
            Some(json!({"type": "rule_based"})),
        )
        .await;
    assert_eq!(r.status, 422);
}

#[tokio::test]
async fn publish_checks_and_events() {
    let app = TestApp::spawn().await;
    let (test, section, questions) = plain_test(&app, 2).await;
    // Passing marks above the computed total (5) are refused, and nothing is emitted.
    let r = app
        .call(
            Method::PATCH,
            &format!("{T}/{test}"),
            Some(json!({"passingMarks": 6})),
        )
        .await;
    assert_eq!(r.status, 200);
    let r = app
        .call(Method::POST, &format!("{T}/{test}/publish"), None)
        .await;
    assert_failure(
        &r,
        422,
        "api.tests.create",
        "UNPROCESSABLE_ENTITY",
        "CLIENT_ERROR",
        "Passing marks (6) cannot exceed total marks (5)",
    );
    assert!(events(&app, "test.published").await.is_empty());
    let t = app
        .call(Method::GET, &format!("{T}/{test}"), None)
        .await
        .json()["result"]
        .clone();
    assert_eq!(t["status"], "draft");

    app.call(
        Method::PATCH,
        &format!("{T}/{test}"),
        Some(json!({"passingMarks": 2})),
    )
    .await
    .expect_status(200);
    let r = app
        .call(Method::POST, &format!("{T}/{test}/publish"), None)
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(r.json()["result"]["status"], "published");
    assert_eq!(r.json()["result"]["totalMarks"], 5, "computed when unset");
    let published = events(&app, "test.published").await;
    assert_eq!(published.len(), 1);
    assert_eq!(
        published[0]["data"],
        json!({"testId": test, "testTitle": "Algebra", "testType": "plain", "totalMarks": 5, "questionCount": 2, "version": 1})
    );
    assert_eq!(
        published[0]["context"],
        json!({"tenantId": TENANT, "organisationId": ORG, "userId": USER})
    );
    let r = app
        .call(Method::POST, &format!("{T}/{test}/publish"), None)
        .await;
    assert_eq!(r.status, 409);

    // The structure is frozen while published.
    let extra = create_question(&app, mcq("extra")).await;
    let r = app
        .call(
            Method::POST,
            &format!("{T}/{test}/questions"),
            Some(json!({"sectionId": section, "questionId": extra["questionId"]})),
        )
        .await;
    assert_failure(
        &r,
        422,
        "api.tests.create",
        "UNPROCESSABLE_ENTITY",
        "CLIENT_ERROR",
        "Cannot modify questions of a published test; unpublish it first",
    );
    let q0 = questions[0]["questionId"].as_str().unwrap();
    let r = app
        .call(Method::DELETE, &format!("{T}/{test}/question/{q0}"), None)
        .await;
    assert_eq!(r.status, 422);
    let r = app
        .call(
            Method::POST,
            "/assessment/v1/sections",
            Some(json!({"title": "B", "testId": test})),
        )
        .await;
    assert_eq!(r.status, 422);
    let r = app
        .call(
            Method::PATCH,
            &format!("/assessment/v1/sections/{section}"),
            Some(json!({"title": "B"})),
        )
        .await;
    assert_eq!(r.status, 422);

    let r = app
        .call(Method::POST, &format!("{T}/{test}/unpublish"), None)
        .await;
    assert_eq!(r.status, 201);
    assert_eq!(r.json()["result"]["status"], "unpublished");
    let unpublished = events(&app, "test.unpublished").await;
    assert_eq!(unpublished.len(), 1);
    assert_eq!(unpublished[0]["data"]["questionCount"], 2);
    let r = app
        .call(Method::POST, &format!("{T}/{test}/unpublish"), None)
        .await;
    assert_eq!(r.status, 409);

    // The upstream way: PATCH status, same checks and events.
    let r = app
        .call(
            Method::PATCH,
            &format!("{T}/{test}"),
            Some(json!({"status": "published"})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(events(&app, "test.published").await.len(), 2);
    let r = app
        .call(
            Method::PATCH,
            &format!("{T}/{test}"),
            Some(json!({"status": "draft"})),
        )
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(events(&app, "test.unpublished").await.len(), 2);
    let empty = create_test(&app, json!({"title": "Empty", "type": "plain"})).await;
    let r = app
        .call(
            Method::PATCH,
            &format!("{T}/{empty}"),
            Some(json!({"status": "published", "title": "New"})),
        )
        .await;
    assert_eq!(r.status, 422);
    let t = app
        .call(Method::GET, &format!("{T}/{empty}"), None)
        .await
        .json()["result"]
        .clone();
    assert_eq!(
        t["title"], "Empty",
        "a refused publish rolls back the whole PATCH"
    );
}

#[tokio::test]
async fn adding_and_removing_questions() {
    let app = TestApp::spawn().await;
    let (test, section, questions) = plain_test(&app, 2).await;
    let q0 = questions[0]["questionId"].as_str().unwrap().to_string();
    let r = app
        .call(
            Method::POST,
            &format!("{T}/{test}/questions"),
            Some(json!({"sectionId": section, "questionId": q0})),
        )
        .await;
    assert_failure(
        &r,
        409,
        "api.tests.create",
        "CONFLICT",
        "CONFLICT",
        "Question is already added to this test",
    );
    let other_test = create_test(&app, json!({"title": "X", "type": "plain"})).await;
    let other_section = create_section(&app, &other_test, "S").await;
    let q = create_question(&app, mcq("new")).await;
    let r = app
        .call(
            Method::POST,
            &format!("{T}/{test}/questions"),
            Some(json!({"sectionId": other_section, "questionId": q["questionId"]})),
        )
        .await;
    assert_eq!(r.status, 404, "a section of another test");
    let r = app
        .call(
            Method::POST,
            &format!("{T}/{test}/questions"),
            Some(json!({"sectionId": section, "questionId": TENANT})),
        )
        .await;
    assert_failure(
        &r,
        404,
        "api.tests.create",
        "NOT_FOUND",
        "NOT_FOUND",
        "Question not found",
    );

    let detail = app
        .call(Method::GET, &format!("{T}/{test}"), None)
        .await
        .json()["result"]
        .clone();
    let orderings: Vec<i64> = detail["questions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["ordering"].as_i64().unwrap())
        .collect();
    assert_eq!(orderings, vec![1, 2]);
    assert_eq!(detail["isObjective"], true);

    let essay = create_question(&app, json!({"text": "Explain", "type": "essay"})).await;
    app.call(
        Method::POST,
        &format!("{T}/{test}/questions"),
        Some(json!({"sectionId": section, "questionId": essay["questionId"]})),
    )
    .await
    .expect_status(201);
    let detail = app
        .call(Method::GET, &format!("{T}/{test}"), None)
        .await
        .json()["result"]
        .clone();
    assert_eq!(detail["isObjective"], false, "derived from the questions");

    let r = app
        .call(Method::DELETE, &format!("{T}/{test}/question/{q0}"), None)
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(
        r.json()["result"]["message"],
        "Question removed from test successfully"
    );
    let r = app
        .call(Method::DELETE, &format!("{T}/{test}/question/{q0}"), None)
        .await;
    assert_failure(
        &r,
        404,
        "api.tests.delete",
        "NOT_FOUND",
        "NOT_FOUND",
        "Question not found in this test",
    );
}

#[tokio::test]
async fn bulk_add_gives_distinct_orderings_and_reports_skips() {
    let app = TestApp::spawn().await;
    let test = create_test(&app, json!({"title": "Bulk", "type": "plain"})).await;
    let section = create_section(&app, &test, "S").await;
    let mut ids = Vec::new();
    for i in 0..3 {
        ids.push(create_question(&app, mcq(&format!("B{i}"))).await["questionId"].clone());
    }
    let body = json!({"sectionId": section, "questions": [
        {"questionId": ids[0]}, {"questionId": ids[1]}, {"questionId": ids[1]}, {"questionId": ids[2], "isCompulsory": true}, {"questionId": TENANT}
    ]});
    let r = app
        .call(
            Method::POST,
            &format!("{T}/{test}/questions/bulk"),
            Some(body),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    let res = &r.json()["result"];
    assert_eq!(res["message"], "Questions added to test successfully");
    assert_eq!(res["result"]["added"], 3);
    assert_eq!(res["result"]["skipped"], 1);
    assert_eq!(
        res["result"]["errors"],
        json!([format!("Questions not found: {TENANT}")])
    );
    let detail = app
        .call(Method::GET, &format!("{T}/{test}"), None)
        .await
        .json()["result"]
        .clone();
    let orderings: HashSet<i64> = detail["questions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["ordering"].as_i64().unwrap())
        .collect();
    assert_eq!(orderings.len(), 3, "distinct orderings");
    let r = app
        .call(
            Method::POST,
            &format!("{T}/{test}/questions/bulk"),
            Some(json!({"sectionId": section, "questions": []})),
        )
        .await;
    assert_eq!(r.errmsg(), "At least one question must be provided");
}

#[tokio::test]
async fn concurrent_bulk_adds_and_alias_creation_make_no_duplicates() {
    let app = TestApp::spawn().await;
    let test = create_test(&app, json!({"title": "Race", "type": "plain"})).await;
    let section = create_section(&app, &test, "S").await;
    let mut ids = Vec::new();
    for i in 0..6 {
        ids.push(create_question(&app, mcq(&format!("R{i}"))).await["questionId"].clone());
    }
    let body = json!({"sectionId": section, "questions": ids.iter().map(|id| json!({"questionId": id})).collect::<Vec<_>>()});
    let path = format!("{T}/{test}/questions/bulk");
    let calls = (0..8).map(|_| app.call(Method::POST, &path, Some(body.clone())));
    let results = join_all(calls).await;
    let added: i64 = results
        .iter()
        .map(|r| {
            assert_eq!(r.status, 201, "{}", r.text());
            r.json()["result"]["result"]["added"].as_i64().unwrap()
        })
        .sum();
    assert_eq!(
        added, 6,
        "each question added exactly once across all concurrent calls"
    );
    let detail = app
        .call(Method::GET, &format!("{T}/{test}"), None)
        .await
        .json()["result"]
        .clone();
    let links = detail["questions"].as_array().unwrap();
    assert_eq!(links.len(), 6);
    let orderings: HashSet<i64> = links
        .iter()
        .map(|l| l["ordering"].as_i64().unwrap())
        .collect();
    assert_eq!(orderings.len(), 6);

    let creates = (0..8).map(|_| {
        app.call(
            Method::POST,
            T,
            Some(json!({"title": "Same Title", "type": "plain"})),
        )
    });
    let results = join_all(creates).await;
    assert!(results.iter().all(|r| r.status == 201));
    let r = app
        .call(Method::GET, &format!("{T}?search=same&limit=100"), None)
        .await;
    let aliases: HashSet<String> = r.json()["result"]["content"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["alias"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(aliases.len(), 8, "eight distinct aliases: {aliases:?}");
    assert!(aliases.contains("same-title") && aliases.contains("same-title-2"));
}

#[tokio::test]
async fn structure_reorders_and_moves_questions() {
    let app = TestApp::spawn().await;
    let (test, s1, questions) = plain_test(&app, 2).await;
    let s2 = create_section(&app, &test, "Part B").await;
    let (q0, q1) = (
        questions[0]["questionId"].clone(),
        questions[1]["questionId"].clone(),
    );
    let body = json!({"sections": [
        {"sectionId": s2, "order": 1, "questions": [{"questionId": q1, "order": 1}]},
        {"sectionId": s1, "order": 2, "questions": [{"questionId": q0, "order": 5}]}
    ]});
    let r = app
        .call(Method::PUT, &format!("{T}/{test}/structure"), Some(body))
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["id"], "api.tests.update");
    let detail = app
        .call(Method::GET, &format!("{T}/{test}"), None)
        .await
        .json()["result"]
        .clone();
    assert_eq!(detail["sections"][0]["sectionId"], s2.as_str());
    let link1 = detail["questions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["questionId"] == q1)
        .unwrap()
        .clone();
    assert_eq!(link1["sectionId"], s2.as_str());
    let r = app
        .call(Method::PUT, &format!("{T}/{test}/structure"), Some(json!({"sections": [{"sectionId": s1, "order": 1, "questions": [{"questionId": q0, "order": 1}]}]})))
        .await;
    assert_eq!(r.status, 400);
    assert_eq!(
        r.errmsg(),
        format!("Missing sections in structure update: {s2}")
    );
    let r = app
        .call(
            Method::PUT,
            &format!("{T}/{test}/structure"),
            Some(json!({"sections": [
            {"sectionId": s1, "order": 1, "questions": [{"questionId": q0, "order": 1}]},
            {"sectionId": s2, "order": 2, "questions": []}]})),
        )
        .await;
    assert_eq!(
        r.errmsg(),
        format!(
            "Missing questions in structure update: {}",
            q1.as_str().unwrap()
        )
    );
}

#[tokio::test]
async fn clone_is_a_draft_with_the_same_structure() {
    let app = TestApp::spawn().await;
    let (test, _, _) = plain_test(&app, 2).await;
    publish(&app, &test, 201).await;
    let r = app
        .call(Method::POST, &format!("{T}/{test}/clone"), None)
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(r.json()["result"]["message"], "Test cloned successfully");
    let copy = r.json()["result"]["clonedTestId"]
        .as_str()
        .unwrap()
        .to_string();
    let d = app
        .call(Method::GET, &format!("{T}/{copy}"), None)
        .await
        .json()["result"]
        .clone();
    assert_eq!(d["status"], "draft");
    assert_eq!(d["title"], "Algebra (Copy)");
    assert_eq!(d["alias"], "algebra_copy");
    assert_eq!(d["sections"].as_array().unwrap().len(), 1);
    assert_eq!(d["questions"].as_array().unwrap().len(), 2);
    let source = app
        .call(Method::GET, &format!("{T}/{test}"), None)
        .await
        .json()["result"]
        .clone();
    assert_ne!(
        d["sections"][0]["sectionId"], source["sections"][0]["sectionId"],
        "new sections"
    );
    assert_eq!(
        d["questions"][0]["questionId"], source["questions"][0]["questionId"],
        "same bank questions"
    );
    assert_eq!(
        d["questions"][0]["sectionId"],
        d["sections"][0]["sectionId"]
    );
}

#[tokio::test]
async fn delete_archives_or_removes_and_hides_the_test() {
    let app = TestApp::spawn().await;
    let (test, _, _) = plain_test(&app, 1).await;
    let r = app.call(Method::DELETE, &format!("{T}/{test}"), None).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["result"]["message"], "Test deleted successfully");
    assert_eq!(
        app.call(Method::GET, &format!("{T}/{test}"), None)
            .await
            .status,
        404
    );
    let r = app
        .call(Method::GET, &format!("{T}?status=archived"), None)
        .await;
    assert_eq!(r.json()["result"]["totalElements"], 1);
    let (test2, _, _) = plain_test(&app, 1).await;
    let r = app
        .call(Method::DELETE, &format!("{T}/{test2}?hard=true"), None)
        .await;
    assert_eq!(r.status, 200);
    let r = app
        .call(Method::GET, &format!("{T}?status=archived"), None)
        .await;
    assert_eq!(
        r.json()["result"]["totalElements"],
        1,
        "the hard-deleted test is gone"
    );
    assert_eq!(events(&app, "test.deleted").await.len(), 2);
}

#[tokio::test]
async fn learner_hierarchy_hides_keys_and_unpublished_tests() {
    let app = TestApp::spawn().await;
    let test = create_test(&app, json!({"title": "H", "type": "plain"})).await;
    let section = create_section(&app, &test, "S").await;
    let mcq_q = create_question(&app, json!({"text": "Pick", "type": "multiple_answer", "marks": 2, "allowPartialScoring": true, "testId": test, "sectionId": section,
        "options": [{"text": "a", "isCorrect": true, "marks": 1}, {"text": "b", "isCorrect": true, "marks": 1}, {"text": "c"}]})).await;
    create_question(&app, json!({"text": "Pair", "type": "match", "testId": test, "sectionId": section,
        "options": [{"text": "1", "matchWith": "zebra", "isCorrect": true}, {"text": "2", "matchWith": "apple", "isCorrect": true}]})).await;
    create_question(
        &app,
        json!({"text": "Why?", "type": "essay", "testId": test, "sectionId": section,
        "parentId": mcq_q["questionId"], "optionId": mcq_q["options"][2]["questionOptionId"]}),
    )
    .await;

    let r = app
        .call(Method::GET, &format!("{T}/{test}/hierarchy"), None)
        .await;
    assert_failure(
        &r,
        404,
        "api.tests.get",
        "NOT_FOUND",
        "NOT_FOUND",
        "Test not found",
    );
    let author = app
        .call(Method::GET, &format!("{T}/{test}/test-hierarchy"), None)
        .await;
    assert_eq!(author.status, 200, "{}", author.text());
    let a = author.json()["result"].clone();
    let aq = &a["sections"][0]["questions"];
    assert_eq!(
        aq.as_array().unwrap().len(),
        2,
        "the conditional child is not top-level"
    );
    assert_eq!(aq[0]["options"][0]["isCorrect"], true);
    assert_eq!(aq[0]["options"][2]["AssociatedQuestion"][0]["text"], "Why?");
    assert_eq!(aq[0]["childQuestion"][0]["text"], "Why?");

    publish(&app, &test, 201).await;
    let r = app
        .call(Method::GET, &format!("{T}/{test}/hierarchy"), None)
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let text = r.text();
    for leak in ["isCorrect", "blankIndex", "AssociatedQuestion"] {
        assert!(
            !text.contains(leak),
            "learner hierarchy leaks {leak}: {text}"
        );
    }
    let h = r.json()["result"].clone();
    let qs = &h["sections"][0]["questions"];
    let options = qs[0]["options"].as_array().unwrap();
    assert!(
        options
            .iter()
            .all(|o| o.get("marks").is_none() && o.get("isCorrect").is_none())
    );
    assert_eq!(options[2]["hasChildQuestion"], true);
    assert_eq!(options[2]["childQuestion"][0]["text"], "Why?");
    let targets: Vec<&str> = qs[1]["matchWithOptions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["matchWith"].as_str().unwrap())
        .collect();
    assert_eq!(
        targets,
        vec!["apple", "zebra"],
        "alphabetical, not pairing order"
    );
    assert!(
        qs[1]["options"]
            .as_array()
            .unwrap()
            .iter()
            .all(|o| o.get("matchWith").is_none())
    );
}

#[tokio::test]
async fn every_test_route_is_invisible_from_other_scopes() {
    let app = TestApp::spawn().await;
    let (test, section, questions) = plain_test(&app, 1).await;
    let q0 = questions[0]["questionId"].as_str().unwrap().to_string();
    // Published, so the learner hierarchy answers 200 in its own scope and the 404s below
    // are the scope's doing.
    let r = app
        .call(Method::POST, &format!("{T}/{test}/publish"), None)
        .await;
    assert_eq!(r.status, 201);
    assert_eq!(
        app.call(Method::GET, &format!("{T}/{test}/hierarchy"), None)
            .await
            .status,
        200
    );
    for headers in scopes_elsewhere() {
        let call = |m: Method, p: String, b: Option<Value>| {
            let h = headers.clone();
            let app = &app;
            async move { app.call_with(m, &p, b, &h).await }
        };
        for (m, p, b) in [
            (Method::GET, format!("{T}/{test}"), None),
            (Method::GET, format!("{T}/{test}/hierarchy"), None),
            (Method::GET, format!("{T}/{test}/test-hierarchy"), None),
            (
                Method::PATCH,
                format!("{T}/{test}"),
                Some(json!({"title": "x"})),
            ),
            (Method::DELETE, format!("{T}/{test}"), None),
            (
                Method::POST,
                format!("{T}/{test}/questions"),
                Some(json!({"sectionId": section, "questionId": q0})),
            ),
            (
                Method::POST,
                format!("{T}/{test}/questions/bulk"),
                Some(json!({"sectionId": section, "questions": [{"questionId": q0}]})),
            ),
            (Method::DELETE, format!("{T}/{test}/question/{q0}"), None),
            (
                Method::PUT,
                format!("{T}/{test}/structure"),
                Some(json!({"sections": []})),
            ),
            (Method::POST, format!("{T}/{test}/clone"), None),
            (Method::POST, format!("{T}/{test}/publish"), None),
            (Method::POST, format!("{T}/{test}/unpublish"), None),
            (
                Method::GET,
                format!("/assessment/v1/sections/{section}"),
                None,
            ),
            (
                Method::PATCH,
                format!("/assessment/v1/sections/{section}"),
                Some(json!({"title": "x"})),
            ),
            (
                Method::DELETE,
                format!("/assessment/v1/sections/{section}"),
                None,
            ),
            (
                Method::POST,
                "/assessment/v1/sections".to_string(),
                Some(json!({"title": "x", "testId": test})),
            ),
        ] {
            let r = call(m.clone(), p.clone(), b).await;
            assert_eq!(r.status, 404, "{m} {p} from {headers:?}: {}", r.text());
        }
        let r = call(Method::GET, T.to_string(), None).await;
        assert_eq!(r.json()["result"]["totalElements"], 0);
        let r = call(Method::POST, format!("{T}/listsearch"), Some(json!({}))).await;
        assert_eq!(r.json()["result"]["totalElements"], 0);
        let r = call(
            Method::GET,
            format!("/assessment/v1/sections/test/{test}"),
            None,
        )
        .await;
        assert_eq!(r.json()["result"], json!([]));
        let r = call(Method::GET, "/assessment/v1/sections".into(), None).await;
        assert_eq!(r.json()["result"], json!([]));
    }
    let d = app
        .call(Method::GET, &format!("{T}/{test}"), None)
        .await
        .json()["result"]
        .clone();
    assert_eq!(d["title"], "Algebra");
    assert_eq!(d["status"], "published");
    assert_eq!(d["questions"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn review_fixes_for_authoring() {
    let app = TestApp::spawn().await;
    let (test, section, questions) = plain_test(&app, 2).await;

    // Fill-in answers and essay reference answers stay out of the learner hierarchy.
    create_question(
        &app,
        json!({"text": "Capital __", "type": "fill_blank", "testId": test, "sectionId": section,
        "options": [{"text": "Paris", "isCorrect": true, "blankIndex": 0}]}),
    )
    .await;
    create_question(
        &app,
        json!({"text": "Explain", "type": "essay", "testId": test, "sectionId": section,
        "options": [{"text": "A model answer"}]}),
    )
    .await;
    let r = app
        .call(Method::POST, &format!("{T}/{test}/publish"), None)
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(r.json()["result"]["totalMarks"], 7, "2 x 2.5 + 1 + 1");
    let h = app
        .call(Method::GET, &format!("{T}/{test}/hierarchy"), None)
        .await;
    assert!(
        !h.text().contains("Paris") && !h.text().contains("A model answer"),
        "{}",
        h.text()
    );
    let qs = h.json()["result"]["sections"][0]["questions"].clone();
    let blank = qs
        .as_array()
        .unwrap()
        .iter()
        .find(|q| q["type"] == "fill_blank")
        .unwrap()
        .clone();
    assert_eq!(blank["blanks"], json!([0]));

    // A question of a published test is frozen.
    let q0 = questions[0]["questionId"].as_str().unwrap().to_string();
    let r = app
        .call(
            Method::PATCH,
            &format!("/assessment/v1/questions/{q0}"),
            Some(json!({"marks": 10})),
        )
        .await;
    assert_eq!(r.status, 422, "{}", r.text());
    let r = app
        .call(
            Method::DELETE,
            &format!("/assessment/v1/questions/{q0}"),
            None,
        )
        .await;
    assert_eq!(r.status, 422);
    // PATCH of a published test keeps the publish checks.
    let r = app
        .call(
            Method::PATCH,
            &format!("{T}/{test}"),
            Some(json!({"passingMarks": 100})),
        )
        .await;
    assert_eq!(r.status, 422, "{}", r.text());
    // A status-only PATCH emits no test.updated.
    let before = events(&app, "test.updated").await.len();
    let r = app
        .call(
            Method::PATCH,
            &format!("{T}/{test}"),
            Some(json!({"status": "unpublished"})),
        )
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(events(&app, "test.updated").await.len(), before);

    // A computed total is recomputed on the next publish.
    let extra = create_question(&app, mcq("extra")).await;
    app.call(
        Method::POST,
        &format!("{T}/{test}/questions"),
        Some(json!({"sectionId": section, "questionId": extra["questionId"]})),
    )
    .await
    .expect_status(201);
    let r = app
        .call(Method::POST, &format!("{T}/{test}/publish"), None)
        .await;
    assert_eq!(r.json()["result"]["totalMarks"], 9.5);
    app.call(Method::POST, &format!("{T}/{test}/unpublish"), None)
        .await
        .expect_status(201);

    // isObjective follows section deletion and question edits.
    let s2 = create_section(&app, &test, "Essays").await;
    let essay = create_question(
        &app,
        json!({"text": "Why", "type": "essay", "testId": test, "sectionId": s2}),
    )
    .await;
    let _ = essay;
    let d = app
        .call(Method::GET, &format!("{T}/{test}"), None)
        .await
        .json()["result"]
        .clone();
    assert_eq!(d["isObjective"], false);
    app.call(
        Method::DELETE,
        &format!("/assessment/v1/sections/{s2}"),
        None,
    )
    .await
    .expect_status(200);
    let fb = qs
        .as_array()
        .unwrap()
        .iter()
        .find(|q| q["type"] == "essay")
        .unwrap()["questionId"]
        .as_str()
        .unwrap()
        .to_string();
    app.call(
        Method::DELETE,
        &format!("/assessment/v1/questions/{fb}"),
        None,
    )
    .await
    .expect_status(200);
    let d = app
        .call(Method::GET, &format!("{T}/{test}"), None)
        .await
        .json()["result"]
        .clone();
    assert_eq!(d["isObjective"], true, "{d}");

    // Orderings cannot overflow, structure orders start at 1, parents stay in scope.
    let r = app
        .call(
            Method::POST,
            "/assessment/v1/sections",
            Some(json!({"title": "Max", "testId": test, "ordering": 2147483647})),
        )
        .await;
    assert_eq!(r.status, 201);
    let r = app
        .call(
            Method::POST,
            "/assessment/v1/sections",
            Some(json!({"title": "Next", "testId": test})),
        )
        .await;
    assert_eq!(r.status, 422, "{}", r.text());
    let r = app
        .call(
            Method::PUT,
            &format!("{T}/{test}/structure"),
            Some(json!({"sections": [{"sectionId": section, "order": 0}]})),
        )
        .await;
    assert_eq!(r.errmsg(), "order must not be less than 1");
    let r = app
        .call(
            Method::POST,
            T,
            Some(json!({"title": "Child", "type": "plain", "parentId": TENANT})),
        )
        .await;
    assert_failure(
        &r,
        404,
        "api.tests.create",
        "NOT_FOUND",
        "NOT_FOUND",
        "Parent test not found",
    );

    // Archiving by PATCH is a deletion event.
    let q = create_question(&app, mcq("to archive")).await;
    app.call(
        Method::PATCH,
        &format!(
            "/assessment/v1/questions/{}",
            q["questionId"].as_str().unwrap()
        ),
        Some(json!({"status": "archived"})),
    )
    .await
    .expect_status(200);
    assert!(
        events(&app, "question.deleted")
            .await
            .iter()
            .any(|e| e["data"]["questionId"] == q["questionId"])
    );
}

#[tokio::test]
async fn a_nul_character_is_a_client_error_on_both_databases() {
    // PostgreSQL cannot store NUL in text and SQLite can: the service refuses it at the
    // boundary, so both databases answer the same 400.
    let app = TestApp::spawn().await;
    let r = app
        .call(Method::GET, &format!("{T}?search=%00"), None)
        .await;
    assert_failure(
        &r,
        400,
        "api.tests.get",
        "VALIDATION_ERROR",
        "CLIENT_ERROR",
        "search must not contain the NUL character (\\u0000)",
    );
    let r = app
        .call(
            Method::POST,
            T,
            Some(json!({"title": "a\u{0}b", "type": "plain"})),
        )
        .await;
    assert_failure(
        &r,
        400,
        "api.tests.create",
        "VALIDATION_ERROR",
        "CLIENT_ERROR",
        "title must not contain the NUL character (\\u0000)",
    );
    let r = app
        .call(
            Method::POST,
            "/assessment/v1/questions",
            Some(json!({"text": "Pick", "type": "mcq", "options": [{"text": "a", "isCorrect": true}, {"text": "\u{0}"}]})),
        )
        .await;
    assert_failure(
        &r,
        400,
        "api.questions.create",
        "VALIDATION_ERROR",
        "CLIENT_ERROR",
        "options[1].text must not contain the NUL character (\\u0000)",
    );
    let r = app.call(Method::GET, T, None).await.expect_status(200);
    assert_eq!(r["result"]["totalElements"], 0, "nothing was stored");
    assert!(events(&app, "test.created").await.is_empty());
    assert!(events(&app, "question.created").await.is_empty());
}
