//! `/questions`: the question bank.

use http::Method;
use serde_json::{Value, json};

use crate::harness::*;

const Q: &str = "/assessment/v1/questions";
pub const OTHER_ORG: &str = "5e6f7a8b-9c0d-4e1f-a2b3-c4d5e6f7a8b9";

pub fn mcq(text: &str) -> Value {
    json!({
        "text": text,
        "type": "mcq",
        "marks": 2.5,
        "tags": ["algebra", "unit-1"],
        "options": [
            {"text": "4", "isCorrect": true},
            {"text": "5"},
            {"text": "22", "position": 7}
        ]
    })
}

/// The harness's question fixture under its old name here (delivery.rs still calls it so).
pub use crate::harness::create_question as create;

fn other_org() -> Vec<(&'static str, &'static str)> {
    vec![
        ("tenantid", TENANT),
        ("organisationid", OTHER_ORG),
        ("userid", USER),
    ]
}

fn other_tenant() -> Vec<(&'static str, &'static str)> {
    vec![
        ("tenantid", OTHER_TENANT),
        ("organisationid", ORG),
        ("userid", USER),
    ]
}

#[tokio::test]
async fn create_returns_the_question_with_options_and_appends_an_event() {
    let app = TestApp::spawn().await;
    let r = app.call(Method::POST, Q, Some(mcq("2 + 2 = ?"))).await;
    assert_eq!(r.status, 201, "{}", r.text());
    let v = r.json();
    assert_envelope_keys(&v);
    assert_eq!(v["id"], "api.questions.create");
    let q = &v["result"];
    assert_eq!(q["text"], "2 + 2 = ?");
    assert_eq!(q["type"], "mcq");
    assert_eq!(q["marks"], 2.5);
    assert_eq!(q["status"], "draft");
    assert_eq!(q["level"], "medium");
    assert_eq!(q["gradingType"], "quiz");
    assert_eq!(q["allowPartialScoring"], false);
    assert_eq!(q["tags"], json!(["algebra", "unit-1"]));
    assert_eq!(q["tenantId"], TENANT);
    assert_eq!(q["organisationId"], ORG);
    assert_eq!(q["createdBy"], USER);
    let opts = q["options"].as_array().unwrap();
    assert_eq!(opts.len(), 3);
    assert_eq!(opts[0]["isCorrect"], true);
    assert_eq!(opts[0]["ordering"], 0);
    assert_eq!(opts[1]["ordering"], 1);
    assert_eq!(opts[2]["ordering"], 7, "position is ordering's alias");

    let created = events(&app, "question.created").await;
    assert_eq!(created.len(), 1);
    assert_eq!(created[0]["data"]["questionId"], q["questionId"]);
    assert_eq!(created[0]["context"]["tenantId"], TENANT);
    assert_eq!(created[0]["context"]["organisationId"], ORG);
    assert_eq!(created[0]["context"]["userId"], USER);
    assert!(
        created[0]["data"].get("options").is_none(),
        "no answer key in events"
    );
    assert!(events(&app, "question.published").await.is_empty());
}

#[tokio::test]
async fn creating_a_published_question_also_emits_question_published() {
    let app = TestApp::spawn().await;
    let mut body = mcq("Q");
    body["status"] = json!("published");
    create_question(&app, body).await;
    assert_eq!(events(&app, "question.published").await.len(), 1);
}

#[tokio::test]
async fn invalid_questions_are_400_and_store_nothing() {
    let app = TestApp::spawn().await;
    let cases = [
        (
            json!({"text": "Q", "type": "mcq", "options": [{"text": "a", "isCorrect": true}, {"text": "b", "isCorrect": true}]}),
            "mcq questions must have exactly one correct answer.",
        ),
        (
            json!({"text": "  ", "type": "essay"}),
            "Question text cannot be empty.",
        ),
        (json!({"type": "essay"}), "text should not be empty"),
        (
            json!({"text": "Q", "type": "essay", "colour": "red"}),
            "property colour should not exist",
        ),
        (
            json!({"text": "Q", "type": "mcq", "options": [{"text": "a", "isCorrect": true}, {"text": " A "}]}),
            "Duplicate option texts found: A",
        ),
        (
            json!({"text": "Q", "type": "multiple_answer", "marks": 3, "allowPartialScoring": true,
                   "options": [{"text": "a", "isCorrect": true, "marks": 1}, {"text": "b", "isCorrect": true, "marks": 1}]}),
            "With partial scoring, the marks of the correct options (2) must add up to the question's marks (3).",
        ),
        (
            json!({"text": "Q", "type": "file"}),
            "Question type \"file\" is only allowed when gradingType is feedback, reflection.prompt, or assessment.",
        ),
        (
            json!({"text": "Q", "type": "essay", "marks": 1.234}),
            "marks: must have at most two decimal places",
        ),
        (
            json!({"text": "Q", "type": "essay", "marks": -1}),
            "marks: must not be negative",
        ),
        (
            json!({"text": "Q", "type": "essay", "params": {"ratingScale": 5}}),
            "property params.ratingScale should not exist",
        ),
        (
            json!({"text": "Q", "type": "essay", "media": {"image": "not a url"}}),
            "media.image must be a URL address",
        ),
        (
            json!({"text": "Q", "type": "riddle"}),
            "type: unknown variant `riddle`, expected one of `mcq`, `multiple_answer`, `true_false`, `fill_blank`, `match`, `subjective`, `essay`, `dropdown`, `rating`, `checkbox`, `file`",
        ),
        (
            json!({"text": "Q", "type": "essay", "optionId": TENANT}),
            "parentQuestionId is required when optionId is provided",
        ),
    ];
    for (body, msg) in cases {
        let r = app.call(Method::POST, Q, Some(body.clone())).await;
        assert_failure(
            &r,
            400,
            "api.questions.create",
            "VALIDATION_ERROR",
            "CLIENT_ERROR",
            msg,
        );
    }
    let r = app.call(Method::GET, Q, None).await;
    assert_eq!(r.json()["result"]["totalElements"], 0);
    assert!(events(&app, "question.created").await.is_empty());
}

#[tokio::test]
async fn fill_blank_accepts_several_answers_per_blank() {
    let app = TestApp::spawn().await;
    let q = create_question(
        &app,
        json!({"text": "The capital of France is __ on the __", "type": "fill_blank",
        "options": [
            {"text": "Paris", "isCorrect": true, "blankIndex": 0},
            {"text": "paris city", "isCorrect": true, "blankIndex": 0},
            {"text": "Seine", "isCorrect": true, "blankIndex": 1}
        ]}),
    )
    .await;
    assert_eq!(q["options"].as_array().unwrap().len(), 3);
}

#[tokio::test]
async fn get_is_scoped_to_tenant_and_organisation() {
    let app = TestApp::spawn().await;
    let q = create_question(&app, mcq("Q")).await;
    let path = format!("{Q}/{}", q["questionId"].as_str().unwrap());
    let r = app.call(Method::GET, &path, None).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["id"], "api.questions.list");
    assert_eq!(r.json()["result"]["options"].as_array().unwrap().len(), 3);
    for headers in [other_org(), other_tenant()] {
        let r = app.call_with(Method::GET, &path, None, &headers).await;
        assert_failure(
            &r,
            404,
            "api.questions.get",
            "NOT_FOUND",
            "NOT_FOUND",
            "Question not found",
        );
        let r = app
            .call_with(
                Method::PATCH,
                &path,
                Some(json!({"text": "hijack"})),
                &headers,
            )
            .await;
        assert_eq!(r.status, 404);
        let r = app.call_with(Method::DELETE, &path, None, &headers).await;
        assert_eq!(r.status, 404);
        let r = app.call_with(Method::GET, Q, None, &headers).await;
        assert_eq!(r.json()["result"]["totalElements"], 0);
    }
    let r = app.call(Method::GET, &path, None).await;
    assert_eq!(r.json()["result"]["text"], "Q", "unchanged by other scopes");
    assert_eq!(r.json()["result"]["status"], "draft");
    let r = app
        .call(Method::GET, &format!("{Q}/not-a-uuid"), None)
        .await;
    assert_eq!(r.status, 400);
}

#[tokio::test]
async fn patch_changes_only_the_fields_sent_and_keeps_option_ids() {
    let app = TestApp::spawn().await;
    let mut body = json!({
        "text": "Pick primes", "type": "multiple_answer", "marks": 2, "allowPartialScoring": true,
        "description": "numbers", "params": {"caseSensitive": true},
        "options": [
            {"text": "2", "isCorrect": true, "marks": 1},
            {"text": "3", "isCorrect": true, "marks": 1},
            {"text": "4"}
        ]
    });
    body["level"] = json!("hard");
    let q = create_question(&app, body).await;
    let id = q["questionId"].as_str().unwrap();
    let opts = q["options"].as_array().unwrap();
    let (two, three, four) = (
        &opts[0]["questionOptionId"],
        &opts[1]["questionOptionId"],
        &opts[2]["questionOptionId"],
    );

    let r = app
        .call(
            Method::PATCH,
            &format!("{Q}/{id}"),
            Some(json!({"text": "Pick the primes"})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let after = r.json()["result"].clone();
    assert_eq!(after["text"], "Pick the primes");
    assert_eq!(after["allowPartialScoring"], true, "not reset");
    assert_eq!(after["level"], "hard");
    assert_eq!(after["description"], "numbers");
    assert_eq!(after["params"], json!({"caseSensitive": true}));
    assert_eq!(after["updatedBy"], USER);
    assert_eq!(after["options"].as_array().unwrap().len(), 3);

    // Options: keep 2 and 3 (rewritten), drop 4, add 5.
    let r = app
        .call(
            Method::PATCH,
            &format!("{Q}/{id}"),
            Some(json!({"options": [
                {"questionOptionId": two, "text": "2", "isCorrect": true, "marks": 1},
                {"questionOptionId": three, "text": "three", "isCorrect": true, "marks": 1},
                {"text": "5"}
            ], "description": null})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let after = r.json()["result"].clone();
    let opts = after["options"].as_array().unwrap();
    assert_eq!(opts.len(), 3);
    assert_eq!(&opts[0]["questionOptionId"], two);
    assert_eq!(&opts[1]["questionOptionId"], three);
    assert_eq!(opts[1]["text"], "three");
    assert!(opts.iter().all(|o| &o["questionOptionId"] != four));
    assert!(after["description"].is_null(), "null clears");

    // An invalid patch changes nothing.
    let r = app
        .call(
            Method::PATCH,
            &format!("{Q}/{id}"),
            Some(json!({"marks": 5})),
        )
        .await;
    assert_eq!(r.status, 400);
    let r = app.call(Method::GET, &format!("{Q}/{id}"), None).await;
    assert_eq!(r.json()["result"]["marks"], 2);
    assert_eq!(events(&app, "question.updated").await.len(), 2);

    // An option id of another question is refused.
    let other = create_question(&app, mcq("other")).await;
    let foreign = &other["options"][0]["questionOptionId"];
    let r = app
        .call(
            Method::PATCH,
            &format!("{Q}/{id}"),
            Some(json!({"options": [{"questionOptionId": foreign, "text": "x", "isCorrect": true, "marks": 2}]})),
        )
        .await;
    assert_eq!(r.status, 400);
    assert!(
        r.errmsg().contains("is not an option of this question"),
        "{}",
        r.errmsg()
    );
}

#[tokio::test]
async fn publishing_through_patch_emits_question_published_once() {
    let app = TestApp::spawn().await;
    let q = create_question(&app, mcq("Q")).await;
    let path = format!("{Q}/{}", q["questionId"].as_str().unwrap());
    for _ in 0..2 {
        let r = app
            .call(Method::PATCH, &path, Some(json!({"status": "published"})))
            .await;
        assert_eq!(r.status, 200);
    }
    assert_eq!(events(&app, "question.published").await.len(), 1);
    // Each transition into `published` is one (docs/decisions.md says so): back to draft and
    // published again makes a second.
    for status in ["draft", "published"] {
        let r = app
            .call(Method::PATCH, &path, Some(json!({"status": status})))
            .await;
        assert_eq!(r.status, 200, "{}", r.text());
    }
    assert_eq!(events(&app, "question.published").await.len(), 2);
}

#[tokio::test]
async fn delete_archives_and_emits_once() {
    let app = TestApp::spawn().await;
    let q = create_question(&app, mcq("Q")).await;
    let path = format!("{Q}/{}", q["questionId"].as_str().unwrap());
    let r = app.call(Method::DELETE, &path, None).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["id"], "api.questions.delete");
    assert_eq!(
        r.json()["result"]["message"],
        "Question deleted successfully"
    );
    let r = app.call(Method::GET, &path, None).await;
    assert_eq!(r.json()["result"]["status"], "archived");
    app.call(Method::DELETE, &path, None)
        .await
        .expect_status(200);
    assert_eq!(events(&app, "question.deleted").await.len(), 1);
    let r = app
        .call(Method::DELETE, &format!("{Q}/{TENANT}"), None)
        .await;
    assert_eq!(r.status, 404);
}

async fn count(app: &TestApp, query: &str) -> i64 {
    let r = app.call(Method::GET, &format!("{Q}?{query}"), None).await;
    assert_eq!(r.status, 200, "{query}: {}", r.text());
    r.json()["result"]["totalElements"].as_i64().unwrap()
}

#[tokio::test]
async fn list_filters_sorts_and_pages() {
    let app = TestApp::spawn().await;
    for i in 0..5 {
        let mut body = mcq(&format!("Question {i}"));
        body["tags"] = json!([format!("t{}", i % 2)]);
        body["marks"] = json!(i + 1);
        if i < 2 {
            body["status"] = json!("published");
        }
        create_question(&app, body).await;
    }
    create_question(
        &app,
        json!({"text": "Essay about 100% effort", "type": "essay", "level": "hard"}),
    )
    .await;

    let r = app
        .call(
            Method::GET,
            &format!("{Q}?limit=2&offset=2&sortBy=marks&sortOrder=ASC"),
            None,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let page = r.json()["result"].clone();
    assert_eq!(page["totalElements"], 6);
    assert_eq!(page["totalPages"], 3);
    assert_eq!(page["currentPage"], 2);
    assert_eq!(page["size"], 2);
    let marks: Vec<f64> = page["content"]
        .as_array()
        .unwrap()
        .iter()
        .map(|q| q["marks"].as_f64().unwrap())
        .collect();
    assert_eq!(marks, vec![2.0, 3.0]);

    assert_eq!(count(&app, "type=essay").await, 1);
    assert_eq!(count(&app, "questionTypes=mcq,essay").await, 6);
    assert_eq!(count(&app, "tags=t0").await, 3);
    assert_eq!(count(&app, "tags=t0&tags=t1").await, 5);
    assert_eq!(count(&app, "search=question%203").await, 1);
    assert_eq!(
        count(&app, "search=100%25").await,
        1,
        "LIKE wildcards are escaped"
    );
    assert_eq!(count(&app, "search=%25").await, 1);
    assert_eq!(count(&app, "status=published").await, 2);
    assert_eq!(count(&app, "minMarks=2&maxMarks=4").await, 3);
    // Marks 1: question 0 and the essay (default 1 mark); marks 5: question 4.
    assert_eq!(count(&app, "marks=1&marks=5").await, 3);
    assert_eq!(count(&app, "difficultyLevels=hard").await, 1);
    let r = app
        .call(Method::GET, &format!("{Q}?rulePreview=true"), None)
        .await;
    assert_eq!(r.json()["result"]["totalElements"], 2);
    assert_eq!(r.json()["result"]["metadata"]["rulePreviewMode"], true);

    let r = app
        .call(Method::GET, &format!("{Q}?sortBy=password"), None)
        .await;
    assert_eq!(r.status, 400);
    let r = app.call(Method::GET, &format!("{Q}?limit=0"), None).await;
    assert_eq!(r.status, 400);
    let r = app
        .call(Method::GET, &format!("{Q}?colour=red"), None)
        .await;
    assert_eq!(r.errmsg(), "property colour should not exist");
}

#[tokio::test]
async fn rule_preview_reports_the_pool() {
    let app = TestApp::spawn().await;
    for (i, t) in ["mcq", "mcq", "essay"].iter().enumerate() {
        let mut body = if *t == "mcq" {
            mcq(&format!("Q{i}"))
        } else {
            json!({"text": "E", "type": "essay", "marks": 3})
        };
        body["status"] = json!("published");
        create_question(&app, body).await;
    }
    create_question(&app, mcq("draft one")).await;
    let r = app
        .call(
            Method::POST,
            &format!("{Q}/rule-preview"),
            Some(json!({"questionTypes": ["mcq"]})),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    let meta = &r.json()["result"]["metadata"];
    assert_eq!(meta["totalQuestions"], 2);
    assert_eq!(meta["totalMarks"], 5);
    assert_eq!(meta["averageMarks"], "2.50");
    assert_eq!(meta["marksDistribution"], json!({"2.5": 2}));
    assert_eq!(meta["questionTypes"], json!({"mcq": 2}));
    let r = app
        .call(
            Method::POST,
            &format!("{Q}/rule-preview"),
            Some(json!({"tags": ["nope"]})),
        )
        .await;
    assert_eq!(r.json()["result"]["metadata"]["totalQuestions"], 0);
    assert_eq!(r.json()["result"]["metadata"]["averageMarks"], 0);
}

#[tokio::test]
async fn conditional_child_questions_link_to_parent_options() {
    let app = TestApp::spawn().await;
    let parent = create_question(&app, mcq("Parent")).await;
    let pid = parent["questionId"].as_str().unwrap().to_string();
    let opt0 = parent["options"][0]["questionOptionId"]
        .as_str()
        .unwrap()
        .to_string();
    let opt1 = parent["options"][1]["questionOptionId"]
        .as_str()
        .unwrap()
        .to_string();
    let child = create_question(
        &app,
        json!({"text": "Why?", "type": "essay", "parentId": pid, "optionId": opt0}),
    )
    .await;
    let cid = child["questionId"].as_str().unwrap().to_string();
    assert_eq!(child["parentId"], pid.as_str());

    let r = app
        .call(
            Method::GET,
            &format!("{Q}/{pid}/child-questions?includeAssociatedOptions=true"),
            None,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let data = &r.json()["result"]["data"];
    assert_eq!(data[0]["questionId"], cid.as_str());
    assert_eq!(data[0]["associatedOptions"][0]["optionId"], opt0.as_str());
    assert_eq!(data[0]["associatedOptions"][0]["optionText"], "4");

    let link = json!({"questionId": cid, "optionId": opt1});
    let r = app
        .call(
            Method::POST,
            &format!("{Q}/associate-option"),
            Some(link.clone()),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(
        r.json()["result"]["message"],
        "Question successfully associated with option"
    );
    let r = app
        .call(
            Method::POST,
            &format!("{Q}/associate-option"),
            Some(link.clone()),
        )
        .await;
    assert_eq!(r.status, 409);
    let r = app
        .call(Method::GET, &format!("{Q}/{pid}/child-questions"), None)
        .await;
    assert_eq!(
        r.json()["result"]["data"][0]["associatedOptionIds"]
            .as_array()
            .unwrap()
            .len(),
        2
    );

    let r = app
        .call(
            Method::POST,
            &format!("{Q}/disassociate-option"),
            Some(link.clone()),
        )
        .await;
    assert_eq!(r.status, 201);
    let r = app
        .call(
            Method::POST,
            &format!("{Q}/disassociate-option"),
            Some(link),
        )
        .await;
    assert_failure(
        &r,
        404,
        "api.questions.create",
        "NOT_FOUND",
        "NOT_FOUND",
        "Question-option association not found",
    );

    // A child whose option belongs to another question is refused.
    let other = create_question(&app, mcq("Other")).await;
    let foreign = other["options"][0]["questionOptionId"].as_str().unwrap();
    let r = app
        .call(
            Method::POST,
            Q,
            Some(json!({"text": "c", "type": "essay", "parentId": pid, "optionId": foreign})),
        )
        .await;
    assert_eq!(r.status, 400);
    assert_eq!(
        r.errmsg(),
        "Option does not belong to the specified parent question"
    );
    let r = app
        .call(
            Method::POST,
            Q,
            Some(json!({"text": "c", "type": "essay", "parentId": TENANT})),
        )
        .await;
    assert_eq!(r.status, 404);
    assert_eq!(r.errmsg(), "Parent question not found");
    let r = app
        .call(
            Method::POST,
            &format!("{Q}/associate-option"),
            Some(json!({"questionId": pid, "optionId": opt0})),
        )
        .await;
    assert_eq!(
        r.errmsg(),
        "Question must have a parentId to be associated with an option"
    );
}

#[tokio::test]
async fn learners_cannot_author_in_jwt_mode() {
    use assessment_service::config::Config;
    use jsonwebtoken::{EncodingKey, Header, encode};
    let secret = "a-test-secret-that-is-long-enough-for-hs256";
    let app = TestApp::with_config(Config {
        jwt_secret: Some(secret.into()),
        ..Config::default()
    })
    .await;
    let token = |roles: Value| {
        encode(
            &Header::default(),
            &json!({"sub": USER, "tenantId": TENANT, "organisationId": ORG, "roles": roles,
                    "exp": chrono::Utc::now().timestamp() + 600}),
            &EncodingKey::from_secret(secret.as_bytes()),
        )
        .unwrap()
    };
    let learner = format!("Bearer {}", token(json!(["learner"])));
    let r = app
        .call_with(
            Method::POST,
            Q,
            Some(mcq("Q")),
            &[("authorization", &learner)],
        )
        .await;
    assert_eq!(r.status, 403);
    let r = app
        .call_with(Method::GET, Q, None, &[("authorization", &learner)])
        .await;
    assert_eq!(r.status, 403);
    let author = format!("Bearer {}", token(json!(["instructor"])));
    let r = app
        .call_with(
            Method::POST,
            Q,
            Some(mcq("Q")),
            &[("authorization", &author)],
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(r.json()["result"]["createdBy"], USER);
}

#[tokio::test]
async fn option_links_previews_and_children_are_scoped() {
    let app = TestApp::spawn().await;
    let mut parent_body = mcq("Parent");
    parent_body["status"] = json!("published");
    let parent = create_question(&app, parent_body).await;
    let pid = parent["questionId"].as_str().unwrap().to_string();
    let opt = parent["options"][0]["questionOptionId"]
        .as_str()
        .unwrap()
        .to_string();
    let child = create_question(
        &app,
        json!({"text": "c", "type": "essay", "parentId": pid, "optionId": opt}),
    )
    .await;
    let cid = child["questionId"].as_str().unwrap().to_string();
    for headers in [other_org(), other_tenant()] {
        let r = app
            .call_with(
                Method::GET,
                &format!("{Q}/{pid}/child-questions"),
                None,
                &headers,
            )
            .await;
        assert_eq!(r.status, 404);
        for route in ["associate-option", "disassociate-option"] {
            let r = app
                .call_with(
                    Method::POST,
                    &format!("{Q}/{route}"),
                    Some(json!({"questionId": cid, "optionId": opt})),
                    &headers,
                )
                .await;
            assert_eq!(r.status, 404, "{route}: {}", r.text());
        }
        let r = app
            .call_with(
                Method::POST,
                &format!("{Q}/rule-preview"),
                Some(json!({})),
                &headers,
            )
            .await;
        assert_eq!(r.json()["result"]["metadata"]["totalQuestions"], 0);
        // A child cannot hang off another scope's question.
        let r = app
            .call_with(
                Method::POST,
                Q,
                Some(json!({"text": "x", "type": "essay", "parentId": pid, "optionId": opt})),
                &headers,
            )
            .await;
        assert_eq!(r.status, 404);
    }
    let r = app
        .call(Method::GET, &format!("{Q}/{pid}/child-questions"), None)
        .await;
    assert_eq!(
        r.json()["result"]["data"][0]["associatedOptionIds"],
        json!([opt])
    );
}

/// A search with a NUL or another control character, or over 200 characters, is refused.
#[tokio::test]
async fn a_search_with_control_characters_is_refused() {
    let app = TestApp::spawn().await;
    for path in ["/assessment/v1/questions", "/assessment/v1/tests"] {
        let app = &app;
        let get = |q: String| {
            let uri = format!("{path}?search={q}");
            async move { app.call(http::Method::GET, &uri, None).await }
        };
        let r = get("%00".into()).await;
        assert_eq!(r.status, 400, "{path}: {}", r.text());
        assert!(
            r.errmsg().starts_with("search must not contain"),
            "{}",
            r.text()
        );
        let r = get("a".repeat(201)).await;
        assert_eq!(r.status, 400, "{path}: {}", r.text());
        assert!(r.errmsg().contains("200 characters"), "{}", r.text());
        let r = get("algebra".into()).await;
        assert_eq!(r.status, 200, "{path}: {}", r.text());
    }
}

#[tokio::test]
async fn lists_in_bodies_have_limits() {
    let app = TestApp::spawn().await;
    let options = |n: usize| -> Vec<Value> {
        (0..n)
            .map(|i| json!({"text": format!("o{i}"), "isCorrect": i == 0}))
            .collect()
    };
    let uuids =
        |n: usize| -> Vec<String> { (0..n).map(|_| uuid::Uuid::new_v4().to_string()).collect() };
    let new_id = uuid::Uuid::new_v4;
    // A question of 100 options is taken (the 101-option create below stores nothing).
    let mut body = mcq("many options");
    body["options"] = json!(options(100));
    let created = create_question(&app, body.clone()).await;
    let id = created["questionId"].as_str().unwrap();
    body["text"] = json!("too many options");
    body["options"] = json!(options(101));
    let answers: Vec<Value> = (0..501)
        .map(|_| json!({"questionId": new_id(), "answer": {"selectedOptionIds": []}}))
        .collect();
    let items: Vec<Value> = (0..501).map(|_| json!({"questionId": new_id()})).collect();
    // Each refused with a 400 naming the list; the save and the bulk add before anything is
    // read (their attempt and test do not exist).
    for (method, path, body, msg) in [
        (
            Method::POST,
            Q.to_string(),
            Some(body),
            "options: at most 100 items (101 sent)",
        ),
        (
            Method::PATCH,
            format!("{Q}/{id}"),
            Some(json!({"options": options(101)})),
            "options: at most 100 items (101 sent)",
        ),
        (
            Method::POST,
            format!("{Q}/rule-preview"),
            Some(json!({"includeQuestionIds": uuids(1001)})),
            "includeQuestionIds: at most 1000 items (1001 sent)",
        ),
        (
            Method::POST,
            format!("/assessment/v1/attempts/{}/answers", new_id()),
            Some(json!({"answers": answers})),
            "answers: at most 500 items (501 sent)",
        ),
        (
            Method::POST,
            format!("/assessment/v1/tests/{}/questions/bulk", new_id()),
            Some(json!({"sectionId": new_id(), "questions": items})),
            "questions: at most 500 items (501 sent)",
        ),
        (
            Method::GET,
            format!("{Q}?categories={}", uuids(1001).join(",")),
            None,
            "categories: at most 1000 items (1001 sent)",
        ),
        (
            Method::POST,
            "/assessment/v1/webhooks".to_string(),
            Some(json!({"name": "x", "url": "https://93.184.216.34/hook",
                        "events": vec!["test.published"; 65]})),
            "events: at most 64 items (65 sent)",
        ),
    ] {
        let r = app.call(method, &path, body).await;
        assert_eq!(r.status, 400, "{path}: {}", r.text());
        assert_eq!(r.errmsg(), msg);
    }
    let r = app.call(Method::GET, &format!("{Q}?limit=10"), None).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(!r.text().contains("too many options"), "{}", r.text());
}
