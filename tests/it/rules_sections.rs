//! `/sections` and `/rules`, and publishing rule-based tests.

use http::Method;
use serde_json::{Value, json};

use crate::harness::*;
use crate::questions::{OTHER_ORG, mcq};

const S: &str = "/assessment/v1/sections";
const R: &str = "/assessment/v1/rules";

#[tokio::test]
async fn sections_crud() {
    let app = TestApp::spawn().await;
    let test = create_test(&app, json!({"title": "T", "type": "plain"})).await;
    let a = create_section(&app, &test, "A").await;
    let b = create_section(&app, &test, "B").await;
    let r = app
        .call(Method::GET, &format!("{S}/test/{test}"), None)
        .await;
    let list = r.json()["result"].clone();
    assert_eq!(list.as_array().unwrap().len(), 2);
    assert_eq!(list[0]["ordering"], 1);
    assert_eq!(list[1]["ordering"], 2);
    assert_eq!(list[0]["status"], "active");
    assert_eq!(list[0]["questions"], json!([]));

    let q = create_question(&app, mcq("Q")).await;
    app.call(
        Method::POST,
        &format!("/assessment/v1/tests/{test}/questions"),
        Some(json!({"sectionId": a, "questionId": q["questionId"]})),
    )
    .await
    .expect_status(201);
    let r = app.call(Method::GET, &format!("{S}/{a}"), None).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["result"]["questions"].as_array().unwrap().len(), 1);

    let r = app
        .call(
            Method::PATCH,
            &format!("{S}/{b}"),
            Some(json!({"title": "Beta", "minQuestions": 1})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["result"]["sectionId"], b.as_str());
    let r = app.call(Method::GET, &format!("{S}/{b}"), None).await;
    assert_eq!(r.json()["result"]["title"], "Beta");
    assert_eq!(r.json()["result"]["ordering"], 2, "unsent fields unchanged");
    let r = app
        .call(
            Method::PATCH,
            &format!("{S}/{b}"),
            Some(json!({"minQuestions": 5, "maxQuestions": 2})),
        )
        .await;
    assert_eq!(r.status, 400);

    let r = app.call(Method::DELETE, &format!("{S}/{a}"), None).await;
    assert_eq!(r.status, 200);
    assert_eq!(
        r.json()["result"]["message"],
        "Section deleted successfully"
    );
    let r = app.call(Method::GET, &format!("{S}/{a}"), None).await;
    assert_eq!(r.json()["result"]["status"], "archived");
    assert_eq!(
        r.json()["result"]["questions"],
        json!([]),
        "its links are removed"
    );
    let r = app
        .call(Method::DELETE, &format!("{S}/{b}?hard=true"), None)
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(
        app.call(Method::GET, &format!("{S}/{b}"), None)
            .await
            .status,
        404
    );

    let r = app
        .call(
            Method::POST,
            S,
            Some(json!({"title": "X", "testId": TENANT})),
        )
        .await;
    assert_failure(
        &r,
        404,
        "api.sections.create",
        "NOT_FOUND",
        "NOT_FOUND",
        "Test not found",
    );
    let r = app
        .call(Method::POST, S, Some(json!({"testId": test})))
        .await;
    assert_eq!(r.errmsg(), "title should not be empty");
    let r = app
        .call(
            Method::POST,
            S,
            Some(json!({"title": "X", "testId": test, "name": "y"})),
        )
        .await;
    assert_eq!(r.errmsg(), "property name should not exist");
}

async fn published(app: &TestApp, text: &str, marks: u32, tags: &[&str]) -> Value {
    let mut body = mcq(text);
    body["status"] = json!("published");
    body["marks"] = json!(marks);
    body["tags"] = json!(tags);
    create_question(app, body).await
}

#[tokio::test]
async fn rules_crud_preview_and_rule_based_publishing() {
    let app = TestApp::spawn().await;
    for i in 0..3 {
        published(&app, &format!("geo {i}"), 2, &["geo"]).await;
    }
    published(&app, "hist", 4, &["hist"]).await;
    let plain = create_test(&app, json!({"title": "Plain", "type": "plain"})).await;
    let rb = create_test(
        &app,
        json!({"title": "Rules", "type": "rule_based", "passingMarks": 2}),
    )
    .await;
    let section = create_section(&app, &rb, "S").await;

    let rule = json!({"name": "Geography", "ruleType": "category_based", "testId": rb, "sectionId": section,
                      "numberOfQuestions": 2, "poolSize": 3, "criteria": {"tags": ["geo"]}});
    let r = app.call(Method::POST, R, Some(json!({"name": "x", "ruleType": "mixed", "testId": plain, "numberOfQuestions": 1, "poolSize": 1, "criteria": {}}))).await;
    assert_failure(
        &r,
        400,
        "api.rules.create",
        "VALIDATION_ERROR",
        "CLIENT_ERROR",
        "Plain tests should not have rules. Please add questions directly to sections.",
    );
    let mut bad = rule.clone();
    bad["poolSize"] = json!(1);
    let r = app.call(Method::POST, R, Some(bad)).await;
    assert_eq!(r.errmsg(), "poolSize must be at least numberOfQuestions");
    let mut bad = rule.clone();
    bad["criteria"] = json!({"colour": ["red"]});
    let r = app.call(Method::POST, R, Some(bad)).await;
    assert_eq!(r.errmsg(), "property criteria.colour should not exist");

    // A rule-based test without rules cannot be published.
    let r = app
        .call(
            Method::POST,
            &format!("/assessment/v1/tests/{rb}/publish"),
            None,
        )
        .await;
    assert_eq!(
        r.errmsg(),
        "Cannot publish a rule-based test without active rules"
    );

    let r = app.call(Method::POST, R, Some(rule.clone())).await;
    assert_eq!(r.status, 201, "{}", r.text());
    let rule_id = r.json()["result"]["ruleId"].as_str().unwrap().to_string();
    let r = app.call(Method::GET, &format!("{R}/{rule_id}"), None).await;
    assert!(r.json()["result"]["minMarks"].is_null());
    assert_eq!(events(&app, "rule.created").await.len(), 1);

    let r = app
        .call(Method::GET, &format!("{R}/{rule_id}/preview"), None)
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let meta = &r.json()["result"]["metadata"];
    assert_eq!(meta["totalQuestionsMatching"], 3, "tags criterion honoured");
    assert_eq!(meta["canGeneratePool"], true);
    assert_eq!(meta["canCreateTest"], true);
    let r = app
        .call(Method::POST, &format!("{R}/{rule_id}/questions"), None)
        .await;
    assert_eq!(r.status, 201);
    assert_eq!(r.json()["result"]["totalCount"], 3);
    assert_eq!(r.json()["result"]["questions"].as_array().unwrap().len(), 3);

    for path in [
        format!("{R}?testId={rb}"),
        format!("{R}/test/{rb}"),
        format!("{R}/section/{section}"),
    ] {
        let r = app.call(Method::GET, &path, None).await;
        assert_eq!(r.json()["result"].as_array().unwrap().len(), 1, "{path}");
    }

    // An unsatisfiable rule blocks publishing; fixing it allows it.
    let r = app.call(Method::PATCH, &format!("{R}/{rule_id}"), Some(json!({"numberOfQuestions": 3, "poolSize": 3, "criteria": {"tags": ["geo"], "marks": [4]}}))).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let r = app
        .call(
            Method::POST,
            &format!("/assessment/v1/tests/{rb}/publish"),
            None,
        )
        .await;
    assert_failure(
        &r,
        422,
        "api.tests.create",
        "UNPROCESSABLE_ENTITY",
        "CLIENT_ERROR",
        "Rule \"Geography\" needs 3 questions but its pool has only 0",
    );
    app.call(
        Method::PATCH,
        &format!("{R}/{rule_id}"),
        Some(json!({"numberOfQuestions": 2, "criteria": {"tags": ["geo"]}})),
    )
    .await
    .expect_status(200);
    let r = app
        .call(
            Method::POST,
            &format!("/assessment/v1/tests/{rb}/publish"),
            None,
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    let ev = events(&app, "test.published").await;
    assert_eq!(ev[0]["data"]["questionCount"], 2);
    assert_eq!(ev[0]["data"]["totalMarks"], 4, "two questions of 2 marks");
    assert_eq!(ev[0]["data"]["testType"], "rule_based");

    // Rules of a published test are frozen.
    let r = app
        .call(
            Method::PATCH,
            &format!("{R}/{rule_id}"),
            Some(json!({"priority": 3})),
        )
        .await;
    assert_eq!(r.status, 422);
    let r = app
        .call(Method::DELETE, &format!("{R}/{rule_id}"), None)
        .await;
    assert_eq!(r.status, 422);
    app.call(
        Method::POST,
        &format!("/assessment/v1/tests/{rb}/unpublish"),
        None,
    )
    .await
    .expect_status(201);
    let r = app
        .call(Method::DELETE, &format!("{R}/{rule_id}"), None)
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["result"]["message"], "Rule deleted successfully");
    assert_eq!(
        app.call(Method::GET, &format!("{R}/{rule_id}"), None)
            .await
            .status,
        404
    );
}

#[tokio::test]
async fn preselected_rules_draw_from_linked_questions() {
    let app = TestApp::spawn().await;
    let a = published(&app, "a", 1, &[]).await;
    let b = published(&app, "b", 1, &[]).await;
    published(&app, "c", 1, &[]).await;
    let rb = create_test(&app, json!({"title": "Pre", "type": "rule_based"})).await;
    let section = create_section(&app, &rb, "S").await;
    let r = app
        .call(
            Method::POST,
            R,
            Some(
                json!({"name": "pre", "ruleType": "mixed", "testId": rb, "numberOfQuestions": 2,
            "poolSize": 2, "criteria": {}, "selectionMode": "PRESELECTED"}),
            ),
        )
        .await;
    let rule_id = r.json()["result"]["ruleId"].as_str().unwrap().to_string();
    for q in [&a, &b] {
        let r = app
            .call(
                Method::POST,
                &format!("/assessment/v1/tests/{rb}/questions"),
                Some(
                    json!({"sectionId": section, "questionId": q["questionId"], "ruleId": rule_id}),
                ),
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.text());
    }
    let r = app
        .call(Method::GET, &format!("{R}/{rule_id}/preview"), None)
        .await;
    assert_eq!(r.json()["result"]["metadata"]["totalQuestionsMatching"], 2);
    let detail = app
        .call(Method::GET, &format!("/assessment/v1/tests/{rb}"), None)
        .await
        .json()["result"]
        .clone();
    assert!(
        detail["questions"]
            .as_array()
            .unwrap()
            .iter()
            .all(|l| l["ruleId"] == rule_id.as_str())
    );
    let r = app
        .call(
            Method::POST,
            &format!("/assessment/v1/tests/{rb}/publish"),
            None,
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
}

#[tokio::test]
async fn rules_are_invisible_from_other_scopes() {
    let app = TestApp::spawn().await;
    let rb = create_test(&app, json!({"title": "Rules", "type": "rule_based"})).await;
    let r = app
        .call(Method::POST, R, Some(json!({"name": "r", "ruleType": "mixed", "testId": rb, "numberOfQuestions": 1, "poolSize": 1, "criteria": {}})))
        .await;
    let rule_id = r.json()["result"]["ruleId"].as_str().unwrap().to_string();
    for headers in [
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
    ] {
        for (m, p, b) in [
            (Method::GET, format!("{R}/{rule_id}"), None),
            (
                Method::PATCH,
                format!("{R}/{rule_id}"),
                Some(json!({"priority": 9})),
            ),
            (Method::DELETE, format!("{R}/{rule_id}"), None),
            (Method::GET, format!("{R}/{rule_id}/preview"), None),
            (Method::POST, format!("{R}/{rule_id}/questions"), None),
            (
                Method::POST,
                R.to_string(),
                Some(
                    json!({"name": "r", "ruleType": "mixed", "testId": rb, "numberOfQuestions": 1, "poolSize": 1, "criteria": {}}),
                ),
            ),
        ] {
            let r = app.call_with(m.clone(), &p, b, &headers).await;
            assert_eq!(r.status, 404, "{m} {p}: {}", r.text());
        }
        let r = app.call_with(Method::GET, R, None, &headers).await;
        assert_eq!(r.json()["result"], json!([]));
        let r = app
            .call_with(Method::GET, &format!("{R}/test/{rb}"), None, &headers)
            .await;
        assert_eq!(r.json()["result"], json!([]));
    }
    let r = app.call(Method::GET, &format!("{R}/{rule_id}"), None).await;
    assert_eq!(r.json()["result"]["priority"], 0);
}

#[tokio::test]
async fn learners_cannot_author_tests_sections_or_rules_but_can_read_hierarchies() {
    use assessment_service::config::Config;
    use jsonwebtoken::{EncodingKey, Header, encode};
    let secret = "a-test-secret-that-is-long-enough-for-hs256";
    let app = TestApp::with_config(Config {
        jwt_secret: Some(secret.into()),
        ..Config::default()
    })
    .await;
    let bearer = |roles: Value| {
        let token = encode(
            &Header::default(),
            &json!({"sub": USER, "tenantId": TENANT, "organisationId": ORG, "roles": roles,
                    "exp": chrono::Utc::now().timestamp() + 600}),
            &EncodingKey::from_secret(secret.as_bytes()),
        )
        .unwrap();
        format!("Bearer {token}")
    };
    let author = bearer(json!(["admin"]));
    let learner = bearer(json!(["learner"]));
    let a = [("authorization", author.as_str())];
    let l = [("authorization", learner.as_str())];
    let r = app
        .call_with(
            Method::POST,
            "/assessment/v1/tests",
            Some(json!({"title": "T", "type": "plain"})),
            &a,
        )
        .await;
    let test = r.json()["result"]["testId"].as_str().unwrap().to_string();
    let r = app
        .call_with(
            Method::POST,
            S,
            Some(json!({"title": "S", "testId": test})),
            &a,
        )
        .await;
    let section = r.json()["result"]["sectionId"]
        .as_str()
        .unwrap()
        .to_string();
    let r = app
        .call_with(Method::POST, "/assessment/v1/questions", Some(mcq("Q")), &a)
        .await;
    let q = r.json()["result"]["questionId"].clone();
    app.call_with(
        Method::POST,
        &format!("/assessment/v1/tests/{test}/questions"),
        Some(json!({"sectionId": section, "questionId": q})),
        &a,
    )
    .await;
    let r = app
        .call_with(
            Method::POST,
            &format!("/assessment/v1/tests/{test}/publish"),
            None,
            &a,
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text());

    for (m, p, b) in [
        (
            Method::POST,
            "/assessment/v1/tests".to_string(),
            Some(json!({"title": "T", "type": "plain"})),
        ),
        (Method::GET, "/assessment/v1/tests".to_string(), None),
        (
            Method::GET,
            format!("/assessment/v1/tests/{test}/test-hierarchy"),
            None,
        ),
        (
            Method::PATCH,
            format!("/assessment/v1/tests/{test}"),
            Some(json!({"title": "x"})),
        ),
        (
            Method::POST,
            format!("/assessment/v1/tests/{test}/unpublish"),
            None,
        ),
        (
            Method::POST,
            S.to_string(),
            Some(json!({"title": "S", "testId": test})),
        ),
        (Method::GET, S.to_string(), None),
        (
            Method::POST,
            R.to_string(),
            Some(
                json!({"name": "r", "ruleType": "mixed", "numberOfQuestions": 1, "poolSize": 1, "criteria": {}}),
            ),
        ),
        (Method::GET, R.to_string(), None),
    ] {
        let r = app.call_with(m.clone(), &p, b, &l).await;
        assert_eq!(r.status, 403, "{m} {p}: {}", r.text());
    }
    let r = app
        .call_with(
            Method::GET,
            &format!("/assessment/v1/tests/{test}/hierarchy"),
            None,
            &l,
        )
        .await;
    assert_eq!(
        r.status,
        200,
        "learners read the published hierarchy: {}",
        r.text()
    );
    let r = app.call_with(Method::GET, S, None, &a).await;
    assert_eq!(
        r.json()["result"][0]["questions"].as_array().unwrap().len(),
        1,
        "GET /sections lists links"
    );
}

#[tokio::test]
async fn every_rule_criterion_is_honoured() {
    let app = TestApp::spawn().await;
    let cat = "8c9d0e1f-2a3b-4c4d-8e5f-6a7b8c9d0e1f";
    let mut ids = Vec::new();
    for (text, ty, level, marks, category) in [
        ("a", "mcq", "easy", 1, Some(cat)),
        ("b", "mcq", "hard", 2, None),
        ("c", "essay", "easy", 3, Some(cat)),
        ("d", "true_false", "medium", 4, None),
    ] {
        let mut body = if ty == "essay" {
            json!({"text": text, "type": "essay"})
        } else if ty == "true_false" {
            json!({"text": text, "type": "true_false", "options": [{"text": "T", "isCorrect": true}, {"text": "F"}]})
        } else {
            mcq(text)
        };
        body["status"] = json!("published");
        body["level"] = json!(level);
        body["marks"] = json!(marks);
        if let Some(c) = category {
            body["categoryId"] = json!(c);
        }
        ids.push(
            create_question(&app, body).await["questionId"]
                .as_str()
                .unwrap()
                .to_string(),
        );
    }
    let rb = create_test(&app, json!({"title": "Criteria", "type": "rule_based"})).await;
    let count = |criteria: Value, extra: Value| {
        let app = &app;
        let rb = rb.clone();
        async move {
            let mut body = json!({"name": "r", "ruleType": "mixed", "testId": rb, "numberOfQuestions": 1, "poolSize": 1, "criteria": criteria});
            for (k, v) in extra.as_object().unwrap() {
                body[k] = v.clone();
            }
            let r = app.call(Method::POST, R, Some(body)).await;
            assert_eq!(r.status, 201, "{}", r.text());
            let id = r.json()["result"]["ruleId"].as_str().unwrap().to_string();
            let p = app
                .call(Method::GET, &format!("{R}/{id}/preview"), None)
                .await;
            p.json()["result"]["metadata"]["totalQuestionsMatching"]
                .as_i64()
                .unwrap()
        }
    };
    assert_eq!(count(json!({"categories": [cat]}), json!({})).await, 2);
    assert_eq!(
        count(json!({"difficultyLevels": ["easy"]}), json!({})).await,
        2
    );
    assert_eq!(
        count(json!({"questionTypes": ["mcq", "true_false"]}), json!({})).await,
        3
    );
    assert_eq!(
        count(json!({"includeQuestionIds": [ids[0], ids[1]]}), json!({})).await,
        2
    );
    assert_eq!(
        count(json!({"excludeQuestionIds": [ids[0]]}), json!({})).await,
        3
    );
    assert_eq!(count(json!({"marks": [2, 3]}), json!({})).await, 2);
    assert_eq!(
        count(
            json!({"timeRange": {"from": "2000-01-01T00:00:00Z", "to": "2001-01-01T00:00:00Z"}}),
            json!({})
        )
        .await,
        0
    );
    assert_eq!(
        count(
            json!({"timeRange": {"from": "2000-01-01T00:00:00Z"}}),
            json!({})
        )
        .await,
        4
    );
    assert_eq!(
        count(json!({}), json!({"minMarks": 2, "maxMarks": 3})).await,
        2
    );
    let r = app
        .call(Method::GET, &format!("{R}?testId={rb}"), None)
        .await;
    let with_marks = r.json()["result"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| !x["minMarks"].is_null())
        .unwrap()
        .clone();
    assert_eq!(
        with_marks["minMarks"], 2,
        "marks on the wire, not hundredths"
    );
    assert_eq!(with_marks["maxMarks"], 3);
}

/// A test removed with its rows takes its rules along, and each is announced with
/// `rule.deleted` (issue 18, item 4); an archived test keeps its rules and announces none.
#[tokio::test]
async fn deleting_a_test_announces_the_rules_it_removes() {
    let app = TestApp::spawn().await;
    let mut removed = Vec::new();
    for hard in [true, false] {
        let rb = create_test(&app, json!({"title": "Rules", "type": "rule_based"})).await;
        let section = create_section(&app, &rb, "S").await;
        let mut ids = Vec::new();
        for name in ["a", "b"] {
            let r = app
                .call(
                    Method::POST,
                    R,
                    Some(json!({"name": name, "ruleType": "mixed", "testId": rb,
                    "sectionId": section, "numberOfQuestions": 1, "poolSize": 1,
                    "criteria": {"questionTypes": ["mcq"]}})),
                )
                .await;
            ids.push(
                r.expect_status(201)["result"]["ruleId"]
                    .as_str()
                    .unwrap()
                    .to_string(),
            );
        }
        let path = format!("/assessment/v1/tests/{rb}?hard={hard}");
        app.call(Method::DELETE, &path, None)
            .await
            .expect_status(200);
        if hard {
            removed = ids;
        }
    }
    let announced: Vec<String> = events(&app, "rule.deleted")
        .await
        .iter()
        .map(|e| e["data"]["ruleId"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(announced, removed);
}

/// Rules whose pools overlap (issue 18, item 2): publishing checks that all of them can have
/// their questions at once, and every start then succeeds, whatever each rule draws first.
#[tokio::test]
async fn overlapping_rules_are_checked_together_and_every_start_succeeds() {
    let app = TestApp::spawn().await;
    let geo = published(&app, "geo", 2, &["geo"]).await;
    published(&app, "hist", 2, &["hist"]).await;
    let rb = create_test(&app, json!({"title": "Rules", "type": "rule_based"})).await;
    let section = create_section(&app, &rb, "S").await;
    let rule = |name: &str, n: u32, tags: &[&str]| {
        json!({"name": name, "ruleType": "category_based", "testId": rb, "sectionId": section,
               "numberOfQuestions": n, "poolSize": n, "criteria": {"tags": tags},
               "selectionStrategy": "random"})
    };
    // `both` may take either question, `only geo` needs the first. Rules are drawn newest
    // first: `both` draws before `only geo`.
    let mut ids = Vec::new();
    for body in [
        rule("only geo", 1, &["geo"]),
        rule("both", 1, &["geo", "hist"]),
    ] {
        let r = app.call(Method::POST, R, Some(body)).await;
        let r = r.expect_status(201);
        ids.push(r["result"]["ruleId"].as_str().unwrap().to_string());
    }
    let publish_path = format!("/assessment/v1/tests/{rb}/publish");
    let unpublish_path = format!("/assessment/v1/tests/{rb}/unpublish");
    app.call(Method::POST, &publish_path, None)
        .await
        .expect_status(201);
    // Drawn in turn, `both` would take the geo question half the time and leave `only geo`
    // nothing; every one of these starts gets both questions.
    for i in 0..12u32 {
        let learner: &'static str =
            Box::leak(format!("00000000-0000-4000-8000-{i:012}").into_boxed_str());
        let started = start(&app, &rb, learner, 201).await;
        let attempt = started["result"]["attemptId"].as_str().unwrap();
        let paper = app
            .call_with(
                Method::GET,
                &format!("{ATTEMPTS}/{attempt}/questions/{learner}"),
                None,
                &as_user(learner),
            )
            .await
            .expect_status(200);
        let drawn: Vec<&str> = paper["result"]
            .as_array()
            .unwrap()
            .iter()
            .map(|q| q["questionId"].as_str().unwrap())
            .collect();
        assert_eq!(drawn.len(), 2, "{paper}");
        assert!(
            drawn.contains(&geo["questionId"].as_str().unwrap()),
            "{paper}"
        );
    }
    // Both rules wanting two: three places for two questions, refused before any start.
    app.call(Method::POST, &unpublish_path, None)
        .await
        .expect_status(201);
    let r = app
        .call(
            Method::PATCH,
            &format!("{R}/{}", ids[1]),
            Some(json!({"numberOfQuestions": 2, "poolSize": 2})),
        )
        .await;
    r.expect_status(200);
    let r = app.call(Method::POST, &publish_path, None).await;
    assert_eq!(r.status, 422, "{}", r.text());
    assert_eq!(
        r.errmsg(),
        "The rules' pools overlap: rule \"only geo\" cannot get its 1 questions once the other rules have theirs (2 distinct questions in the pools, 3 needed in all)"
    );
}

/// A declared `totalMarks` is the total attempts are scored out of (issue 18, item 3).
#[tokio::test]
async fn a_declared_total_must_be_the_questions_total() {
    let app = TestApp::spawn().await;
    let test = create_test(
        &app,
        json!({"title": "T", "type": "plain", "totalMarks": 10, "passingMarks": 1}),
    )
    .await;
    let section = create_section(&app, &test, "S").await;
    let mut q = mcq("Q");
    q["marks"] = json!(2);
    q["testId"] = json!(test);
    q["sectionId"] = json!(section);
    create_question(&app, q).await;
    let path = format!("/assessment/v1/tests/{test}/publish");
    let r = app.call(Method::POST, &path, None).await;
    assert_eq!(r.status, 422, "{}", r.text());
    assert_eq!(
        r.errmsg(),
        "totalMarks (10) must equal the marks of the questions a learner gets (2): set it to 2 or leave it unset"
    );
    assert!(events(&app, "test.published").await.is_empty());
    app.call(
        Method::PATCH,
        &format!("/assessment/v1/tests/{test}"),
        Some(json!({"totalMarks": 2})),
    )
    .await
    .expect_status(200);
    app.call(Method::POST, &path, None).await.expect_status(201);
    assert_eq!(
        events(&app, "test.published").await[0]["data"]["totalMarks"],
        2
    );
}
