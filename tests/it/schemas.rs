//! Real responses against the schemas the committed OpenAPI document gives them, both ways:
//! every documented field present when required and of its documented type, and no field sent
//! that the document does not name (a generated client would drop it silently). Covers the
//! views the services assemble as JSON (`http::views`), where the compiler cannot check that
//! the document and the code agree.

use std::collections::BTreeSet;

use http::Method;
use serde_json::{Value, json};

use crate::harness::*;

const LEARNER: &str = "4d5e6f7a-8b9c-4d0e-8f1a-2b3c4d5e6f7a";

fn document() -> Value {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/openapi.json");
    serde_json::from_slice(&std::fs::read(path).expect("docs/openapi.json")).unwrap()
}

/// The schema of the JSON answer of `method path` with `status` in the document.
fn response_schema<'a>(doc: &'a Value, method: &str, path: &str, status: u16) -> &'a Value {
    let op = &doc["paths"][path][method];
    assert!(op.is_object(), "{method} {path} is not documented");
    let schema = &op["responses"][status.to_string()]["content"]["application/json"]["schema"];
    assert!(
        schema.is_object(),
        "{method} {path} documents no JSON body for {status}"
    );
    schema
}

/// Follows `$ref`s to the schema they name.
pub(crate) fn resolve<'a>(doc: &'a Value, mut schema: &'a Value) -> &'a Value {
    while let Some(r) = schema.get("$ref").and_then(Value::as_str) {
        let name = r
            .strip_prefix("#/components/schemas/")
            .expect("a local ref");
        schema = &doc["components"]["schemas"][name];
        assert!(schema.is_object(), "{r} is not in the document");
    }
    schema
}

/// The property names a schema documents for an object, through `allOf` and refs; `None`
/// when it allows any (no `properties`, or `additionalProperties`).
fn documented_keys(doc: &Value, schema: &Value) -> Option<BTreeSet<String>> {
    let schema = resolve(doc, schema);
    if schema
        .get("additionalProperties")
        .is_some_and(|a| a != false)
    {
        return None;
    }
    let mut keys = BTreeSet::new();
    let mut typed = false;
    if let Some(props) = schema.get("properties").and_then(Value::as_object) {
        keys.extend(props.keys().cloned());
        typed = true;
    }
    for part in schema["allOf"].as_array().into_iter().flatten() {
        keys.extend(documented_keys(doc, part)?);
        typed = true;
    }
    typed.then_some(keys)
}

fn type_matches(t: &str, v: &Value) -> bool {
    match t {
        "null" => v.is_null(),
        "boolean" => v.is_boolean(),
        "string" => v.is_string(),
        "integer" => v.as_f64().is_some_and(|n| n.fract() == 0.0),
        "number" => v.is_number(),
        "array" => v.is_array(),
        "object" => v.is_object(),
        other => panic!("unknown type {other}"),
    }
}

/// Checks `v` against `schema`, strictly (see the module's comment); errors name the path.
pub(crate) fn check(doc: &Value, schema: &Value, v: &Value, at: &str, errors: &mut Vec<String>) {
    let schema = resolve(doc, schema);
    if let Some(c) = schema.get("const")
        && v != c
    {
        errors.push(format!("{at}: {v} is not {c}"));
    }
    if let Some(types) = schema.get("type") {
        let ok = match types {
            Value::String(t) => type_matches(t, v),
            Value::Array(ts) => ts.iter().any(|t| type_matches(t.as_str().unwrap(), v)),
            _ => true,
        };
        if !ok {
            errors.push(format!("{at}: {v} is not of type {types}"));
            return;
        }
    }
    if let Some(allowed) = schema.get("enum").and_then(Value::as_array)
        && !allowed.contains(v)
    {
        errors.push(format!("{at}: {v} is not one of {allowed:?}"));
    }
    if v.is_string() && schema["format"] == "uuid" && !v.is_null() {
        let s = v.as_str().unwrap();
        if uuid::Uuid::parse_str(s).is_err() {
            errors.push(format!("{at}: {s} is not a UUID"));
        }
    }
    if v.is_string() && schema["format"] == "date-time" {
        let s = v.as_str().unwrap();
        if chrono::DateTime::parse_from_rfc3339(s).is_err() {
            errors.push(format!("{at}: {s} is not an RFC 3339 date-time"));
        }
    }
    for part in schema["allOf"].as_array().into_iter().flatten() {
        check_part(doc, part, v, at, errors);
    }
    for (key, exactly_one) in [("oneOf", true), ("anyOf", false)] {
        if let Some(branches) = schema.get(key).and_then(Value::as_array) {
            let fits = branches
                .iter()
                .filter(|b| {
                    let mut e = Vec::new();
                    check(doc, b, v, at, &mut e);
                    e.is_empty()
                })
                .count();
            if fits == 0 || (exactly_one && fits > 1) {
                errors.push(format!("{at}: {v} fits {fits} of the {key} branches"));
            }
        }
    }
    if let Some(obj) = v.as_object() {
        for name in schema["required"].as_array().into_iter().flatten() {
            let name = name.as_str().unwrap();
            if !obj.contains_key(name) {
                errors.push(format!("{at}: required field {name} is missing"));
            }
        }
        if let Some(props) = schema.get("properties").and_then(Value::as_object) {
            for (name, sub) in props {
                if let Some(x) = obj.get(name) {
                    check(doc, sub, x, &format!("{at}.{name}"), errors);
                }
            }
        }
        if let Some(extra) = schema.get("additionalProperties").filter(|a| a.is_object()) {
            let named = documented_keys(doc, &json!({"allOf": [schema_without_extra(schema)]}));
            for (name, x) in obj {
                if !named.as_ref().is_some_and(|n| n.contains(name)) {
                    check(doc, extra, x, &format!("{at}.{name}"), errors);
                }
            }
        }
        if let Some(keys) = documented_keys(doc, schema) {
            for name in obj.keys().filter(|k| !keys.contains(*k)) {
                errors.push(format!("{at}: field {name} is sent but not documented"));
            }
        }
    }
    if let (Some(items), Some(arr)) = (schema.get("items"), v.as_array()) {
        for (i, x) in arr.iter().enumerate() {
            check(doc, items, x, &format!("{at}[{i}]"), errors);
        }
    }
}

fn schema_without_extra(schema: &Value) -> Value {
    let mut s = schema.clone();
    s.as_object_mut().unwrap().remove("additionalProperties");
    s
}

/// One part of an `allOf`: its own fields are checked; the undocumented-field check is the
/// whole schema's (a field of another part is documented).
fn check_part(doc: &Value, part: &Value, v: &Value, at: &str, errors: &mut Vec<String>) {
    let mut own = Vec::new();
    check(doc, part, v, at, &mut own);
    let own_level = format!("{at}: field ");
    errors.extend(own.into_iter().filter(|e| !e.starts_with(&own_level)));
}

/// A response checked against its documented schema; returns its body.
struct Checker {
    doc: Value,
    checked: Vec<String>,
    errors: Vec<String>,
}

impl Checker {
    fn check(&mut self, method: &str, path: &str, r: &TestResponse) -> Value {
        let body = r.json();
        let schema = response_schema(&self.doc, method, path, r.status.as_u16()).clone();
        let before = self.errors.len();
        check(&self.doc, &schema, &body, "$", &mut self.errors);
        for e in &mut self.errors[before..] {
            *e = format!("{} {path} ({}): {e}", method.to_uppercase(), r.status);
        }
        self.checked.push(format!("{method} {path}"));
        body
    }
}

fn opt(q: &Value, i: usize) -> Value {
    q["options"][i]["questionOptionId"].clone()
}

#[tokio::test]
async fn sampled_responses_match_their_documented_schemas() {
    use assessment_service::config::Config;
    use assessment_service::events::dispatcher::{Claim, Dispatcher};
    let app = TestApp::with_config(Config {
        webhook_allow_private_networks: true,
        ..Config::default()
    })
    .await;
    let mut c = Checker {
        doc: document(),
        checked: Vec::new(),
        errors: Vec::new(),
    };
    const P: &str = "/assessment/v1";
    // A webhook whose receiver is gone: its deliveries get tries with an error and no status.
    let r = app
        .call(
            Method::POST,
            &format!("{P}/webhooks"),
            Some(json!({"name": "gone", "url": "http://127.0.0.1:9/hook", "events": ["*"], "retries": 1})),
        )
        .await;
    c.check("post", "/assessment/v1/webhooks", &r);

    let (test, qs) = published_test(
        &app,
        json!({"answerSheet": true, "showCorrectAnswer": true}),
        vec![
            json!({"text": "mcq", "type": "mcq", "marks": 2, "options": [{"text": "a", "isCorrect": true}, {"text": "b"}]}),
            json!({"text": "fb", "type": "fill_blank", "marks": 2, "options": [
                {"text": "Paris", "isCorrect": true, "blankIndex": 0}, {"text": "Seine", "isCorrect": true, "blankIndex": 1}]}),
            json!({"text": "m", "type": "match", "marks": 2, "options": [
                {"text": "1", "matchWith": "one", "isCorrect": true}, {"text": "2", "matchWith": "two", "isCorrect": true}]}),
            json!({"text": "rate", "type": "rating", "marks": 0}),
            json!({"text": "essay", "type": "essay", "marks": 5}),
        ],
    )
    .await;
    let learner = as_user(LEARNER);
    let get = |path: String| {
        let headers = learner.clone();
        let app = &app;
        async move { app.call_with(Method::GET, &path, None, &headers).await }
    };
    let r = get(format!("{P}/tests/{test}/hierarchy")).await;
    let view = c.check("get", "/assessment/v1/tests/{id}/hierarchy", &r);
    // The check reaches into nested, flattened views: a field added to an option, or one
    // taken from a question, is found.
    let schema = response_schema(&c.doc, "get", "/assessment/v1/tests/{id}/hierarchy", 200);
    let mut changed = view.clone();
    changed["result"]["sections"][0]["questions"][0]["options"][0]["isCorrect"] = json!(true);
    let q = changed["result"]["sections"][0]["questions"][0]
        .as_object_mut()
        .unwrap();
    q.remove("questionId");
    let mut found = Vec::new();
    check(&c.doc, schema, &changed, "$", &mut found);
    assert_eq!(
        found,
        [
            "$.result.sections[0].questions[0]: required field questionId is missing",
            "$.result.sections[0].questions[0].options[0]: field isCorrect is sent but not documented"
        ],
        "{view}"
    );
    let r = app
        .call(
            Method::GET,
            &format!("{P}/tests/{test}/test-hierarchy"),
            None,
        )
        .await;
    c.check("get", "/assessment/v1/tests/{id}/test-hierarchy", &r);
    let r = get(format!("{P}/tests/{test}/users/{LEARNER}/status")).await;
    c.check("get", "/assessment/v1/tests/{id}/users/{userId}/status", &r);

    let attempt = start_attempt(&app, &test, LEARNER).await;
    let r = get(format!("{ATTEMPTS}/{attempt}/questions/{LEARNER}")).await;
    c.check(
        "get",
        "/assessment/v1/attempts/{attemptId}/questions/{userId}",
        &r,
    );
    answer(&app, &attempt, LEARNER, json!([
        {"questionId": qs[0]["questionId"], "answer": {"selectedOptionIds": [opt(&qs[0], 0)]}},
        {"questionId": qs[1]["questionId"], "answer": {"blanks": ["paris", "Seine"]}},
        {"questionId": qs[2]["questionId"], "answer": {"matches": [
            {"optionId": opt(&qs[2], 0), "matchWith": "one"}, {"optionId": opt(&qs[2], 1), "matchWith": "three"}]}},
        {"questionId": qs[3]["questionId"], "answer": {"rating": 4}},
        {"questionId": qs[4]["questionId"], "answer": {"text": "Because."}},
    ]), 201)
    .await;
    let r = get(format!("{ATTEMPTS}/{attempt}/resume/{LEARNER}")).await;
    c.check(
        "get",
        "/assessment/v1/attempts/{attemptId}/resume/{userId}",
        &r,
    );
    let r = get(format!("{P}/tests/{test}/users/{LEARNER}/status")).await;
    c.check("get", "/assessment/v1/tests/{id}/users/{userId}/status", &r);
    submit(&app, &attempt, LEARNER, 201).await;

    let r = app
        .call(Method::GET, &format!("{ATTEMPTS}/reviews/pending"), None)
        .await;
    let pending = c.check("get", "/assessment/v1/attempts/reviews/pending", &r);
    assert_eq!(pending["result"].as_array().unwrap().len(), 1);
    let r = get(format!("{ATTEMPTS}/{attempt}/answersheet")).await;
    let sheet = c.check("get", "/assessment/v1/attempts/{attemptId}/answersheet", &r);
    assert_eq!(sheet["result"]["answers"].as_array().unwrap().len(), 5);
    review(
        &app,
        &attempt,
        USER,
        json!({"answers": [
        {"questionId": qs[4]["questionId"], "score": 4, "remarks": "good"}]}),
        201,
    )
    .await;
    let r = app
        .call_with(
            Method::GET,
            &format!("{ATTEMPTS}/{attempt}/answersheet"),
            None,
            &as_user(USER),
        )
        .await;
    c.check("get", "/assessment/v1/attempts/{attemptId}/answersheet", &r);
    let r = get(format!("{P}/tests/{test}/users/{LEARNER}/status")).await;
    let status = c.check("get", "/assessment/v1/tests/{id}/users/{userId}/status", &r);
    assert!(status["result"]["gradedAttempt"].is_object(), "{status}");
    let r = app
        .call(
            Method::GET,
            &format!("{P}/tests/{test}/question-answer-report"),
            None,
        )
        .await;
    c.check(
        "get",
        "/assessment/v1/tests/{id}/question-answer-report",
        &r,
    );
    let r = app
        .call_with(
            Method::POST,
            &format!("{ATTEMPTS}/import/resultstatus"),
            Some(json!({"userId": LEARNER, "testId": test})),
            &learner,
        )
        .await;
    c.check("post", "/assessment/v1/attempts/import/resultstatus", &r);
    let r = app
        .call_with(
            Method::POST,
            &format!("{P}/internal/attempts/user/result-status"),
            Some(json!({"userId": LEARNER, "testId": test, "tenantId": TENANT, "organisationId": ORG})),
            &[],
        )
        .await;
    c.check(
        "post",
        "/assessment/v1/internal/attempts/user/result-status",
        &r,
    );

    // A rule's preview.
    let rb = create_test(&app, json!({"title": "Rules", "type": "rule_based"})).await;
    let section = create_section(&app, &rb, "S").await;
    let r = app
        .call(
            Method::POST,
            &format!("{P}/rules"),
            Some(json!({"name": "any", "ruleType": "mixed", "testId": rb, "sectionId": section,
                        "numberOfQuestions": 1, "poolSize": 1, "criteria": {"questionTypes": ["mcq"]}})),
        )
        .await;
    let rule = c.check("post", "/assessment/v1/rules", &r)["result"]["ruleId"]
        .as_str()
        .unwrap()
        .to_string();
    let r = app
        .call(Method::GET, &format!("{P}/rules/{rule}/preview"), None)
        .await;
    c.check("get", "/assessment/v1/rules/{id}/preview", &r);

    // Deliveries, their tries, and the plugins.
    let d = Dispatcher::new(app.state.store.clone(), app.state.clock.clone(), true);
    d.step(Claim::Due).await.unwrap();
    d.settle().await;
    let r = app
        .call(Method::GET, &format!("{P}/webhooks/deliveries"), None)
        .await;
    let deliveries = c.check("get", "/assessment/v1/webhooks/deliveries", &r);
    let tried = deliveries["result"]["content"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["attempts"].as_i64().unwrap_or(0) > 0 || d["lastError"].is_string())
        .unwrap_or_else(|| panic!("no delivery was tried: {deliveries}"));
    let id = tried["deliveryId"].as_str().unwrap();
    let r = app
        .call(
            Method::GET,
            &format!("{P}/webhooks/deliveries/{id}/attempts"),
            None,
        )
        .await;
    let tries = c.check(
        "get",
        "/assessment/v1/webhooks/deliveries/{deliveryId}/attempts",
        &r,
    );
    assert!(tries["result"][0]["error"].is_string(), "{tries}");
    let r = app.call(Method::GET, &format!("{P}/plugins"), None).await;
    c.check("get", "/assessment/v1/plugins", &r);

    assert!(
        c.errors.is_empty(),
        "responses that differ from their documented schema:\n{}",
        c.errors.join("\n")
    );
    assert_eq!(c.checked.len(), 19, "{:?}", c.checked);
}

/// The checker itself: it must fail on each kind of difference it is meant to find.
#[test]
fn the_schema_check_finds_missing_mistyped_and_undocumented_fields() {
    let doc = json!({"components": {"schemas": {
        "Base": {"type": "object", "required": ["id"], "properties": {"id": {"type": "string", "format": "uuid"}}},
        "Kind": {"type": "string", "enum": ["a", "b"]},
        "Thing": {"allOf": [{"$ref": "#/components/schemas/Base"},
            {"type": "object", "required": ["kind"], "properties": {
                "kind": {"$ref": "#/components/schemas/Kind"},
                "n": {"type": ["integer", "null"]},
                "tags": {"type": "array", "items": {"type": "string"}}}}]}
    }}});
    let schema = json!({"$ref": "#/components/schemas/Thing"});
    let errors = |v: Value| {
        let mut e = Vec::new();
        check(&doc, &schema, &v, "$", &mut e);
        e
    };
    let id = "7f9c24e5-1d2a-4c3b-9e8f-0a1b2c3d4e5f";
    assert!(errors(json!({"id": id, "kind": "a", "n": null, "tags": ["x"]})).is_empty());
    assert_eq!(
        errors(json!({"kind": "a"})),
        ["$: required field id is missing"]
    );
    assert_eq!(errors(json!({"id": id, "kind": "c"})).len(), 1);
    assert_eq!(errors(json!({"id": "x", "kind": "a"})).len(), 1);
    assert_eq!(errors(json!({"id": id, "kind": "a", "n": 1.5})).len(), 1);
    assert_eq!(errors(json!({"id": id, "kind": "a", "tags": [1]})).len(), 1);
    assert_eq!(
        errors(json!({"id": id, "kind": "a", "extra": 1})),
        ["$: field extra is sent but not documented"]
    );
}

/// `required` on the create bodies is what create's validation refuses to go without: the full
/// body creates, and the body without any one required field gets 400. The patch bodies
/// require nothing.
#[tokio::test]
async fn create_bodies_require_what_validation_requires() {
    use assessment_service::config::Config;
    let app = TestApp::with_config(Config {
        webhook_allow_private_networks: true,
        ..Config::default()
    })
    .await;
    let doc = document();
    let rb = create_test(&app, json!({"title": "Rules", "type": "rule_based"})).await;
    let cases = [
        (
            "/assessment/v1/tests",
            "TestPatch",
            json!({"title": "T", "type": "plain"}),
        ),
        (
            "/assessment/v1/rules",
            "RulePatch",
            json!({"name": "r", "ruleType": "mixed", "testId": rb, "numberOfQuestions": 1,
                   "poolSize": 1, "criteria": {"questionTypes": ["mcq"]}}),
        ),
        (
            "/assessment/v1/webhooks",
            "WebhookPatch",
            json!({"name": "w", "url": "http://127.0.0.1:9/hook"}),
        ),
    ];
    for (path, patch, full) in cases {
        let schema = resolve(
            &doc,
            &doc["paths"][path]["post"]["requestBody"]["content"]["application/json"]["schema"],
        );
        let required: Vec<&str> = schema["required"]
            .as_array()
            .unwrap_or_else(|| panic!("POST {path}'s body names no required field"))
            .iter()
            .map(|f| f.as_str().unwrap())
            .collect();
        assert!(!required.is_empty(), "{path}");
        for field in &required {
            let mut body = full.clone();
            body.as_object_mut().unwrap().remove(*field);
            let r = app.call(Method::POST, path, Some(body)).await;
            assert_eq!(r.status, 400, "POST {path} without {field}: {}", r.text());
        }
        let r = app.call(Method::POST, path, Some(full.clone())).await;
        assert_eq!(r.status, 201, "POST {path}: {}", r.text());
        let patch_schema = &doc["components"]["schemas"][patch];
        assert!(patch_schema["properties"].is_object(), "{patch} is missing");
        assert!(patch_schema.get("required").is_none_or(|r| r == &json!([])));
        let patched = doc["paths"][format!("{path}/{{id}}")]["patch"]["requestBody"]["content"]
            ["application/json"]["schema"]["$ref"]
            .clone();
        assert_eq!(patched, json!(format!("#/components/schemas/{patch}")));
    }
}
