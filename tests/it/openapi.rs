//! The OpenAPI document: served, documented, and identical to the committed copy.

use crate::harness::*;

fn committed_path() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/openapi.json")
}

/// `generated` equals the committed file at `relative` (with `UPDATE_OPENAPI` set, it is
/// written there first); the failure names the command that refreshes it.
pub(crate) fn assert_committed(relative: &str, generated: &str, command: &str) {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(relative);
    if std::env::var_os("UPDATE_OPENAPI").is_some() {
        std::fs::write(&path, generated).unwrap();
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == generated,
        "{relative} is out of date: run `{command}` (or the tests with UPDATE_OPENAPI=1) and commit the result"
    );
}

#[test]
fn committed_openapi_document_matches_the_code() {
    assert_committed(
        "docs/openapi.json",
        &assessment_service::http::openapi::document_json("assessment/v1"),
        "cargo run -- openapi --output docs/openapi.json",
    );
}

#[tokio::test]
async fn api_json_serves_an_openapi_3_1_document() {
    let app = TestApp::spawn().await;
    let r = app.get("/api-json").await;
    assert_eq!(r.status, 200);
    let v = r.json();
    assert_eq!(v["openapi"], "3.1.0");
    assert!(v["paths"]["/health/ready"]["get"].is_object());
    assert!(v["components"]["securitySchemes"]["bearerAuth"].is_object());
}

#[tokio::test]
async fn operation_ids_are_unique_and_the_served_document_is_the_committed_one() {
    let app = TestApp::spawn().await;
    let served = app.get("/api-json").await.json();
    let mut ids = std::collections::HashMap::<String, usize>::new();
    for item in served["paths"].as_object().unwrap().values() {
        for op in item.as_object().unwrap().values() {
            if let Some(id) = op["operationId"].as_str() {
                *ids.entry(id.to_string()).or_default() += 1;
            }
        }
    }
    let repeated: Vec<_> = ids.iter().filter(|(_, n)| **n > 1).collect();
    assert!(repeated.is_empty(), "repeated operationIds: {repeated:?}");
    assert!(ids.contains_key("rules_list") && ids.contains_key("questions_list"));
    let committed: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(committed_path()).unwrap()).unwrap();
    assert_eq!(served, committed, "/api-json serves the committed document");
}

#[tokio::test]
async fn api_docs_page_and_redirect() {
    let app = TestApp::spawn().await;
    let r = app.get("/api-docs").await;
    assert_eq!(r.status, 200);
    assert!(r.header("content-type").unwrap().starts_with("text/html"));
    let page = r.text();
    assert!(page.contains("Shiksha assessment service"), "{page}");
    // Every asset from the service itself: nothing for the browser to fetch elsewhere.
    assert!(!page.contains("//"), "an absolute URL in the page: {page}");
    for (asset, kind) in [
        ("/api-docs/swagger-ui-bundle.js", "text/javascript"),
        ("/api-docs/swagger-ui.css", "text/css"),
        ("/api-docs/init.js", "text/javascript"),
    ] {
        assert!(page.contains(asset), "{asset}");
        let r = app.get(asset).await;
        assert_eq!(r.status, 200, "{asset}");
        assert!(
            r.header("content-type").unwrap().starts_with(kind),
            "{asset}"
        );
        assert!(!r.body.is_empty(), "{asset}");
    }
    assert!(
        app.get("/api-docs/init.js")
            .await
            .text()
            .contains("/api-json")
    );
    let r = app.get("/api").await;
    assert_eq!(r.status, 308);
    assert_eq!(r.header("location"), Some("/api-docs"));
}

/// Every tenant-scoped operation names the bearer scheme (optional: the header mode needs
/// none) and the error answers it can give, its id is `{tag}_{name}`, and every response has
/// a description.
#[tokio::test]
async fn every_operation_lists_its_security_its_errors_and_describes_its_answers() {
    let app = TestApp::spawn().await;
    let doc = app.get("/api-json").await.json();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let at = format!("{method} {path}");
            let responses = op["responses"].as_object().unwrap();
            for (code, r) in responses {
                assert!(
                    r["description"].as_str().is_some_and(|d| !d.is_empty()),
                    "{at} {code}"
                );
            }
            let tag = op["tags"][0].as_str().unwrap();
            assert!(
                op["operationId"]
                    .as_str()
                    .unwrap()
                    .starts_with(&format!("{tag}_")),
                "{at}"
            );
            if path.starts_with("/health") {
                continue;
            }
            assert_eq!(
                op["security"],
                serde_json::json!([{"bearerAuth": []}, {}]),
                "{at}"
            );
            let mut codes = vec!["400", "401", "429", "503"];
            if op.get("requestBody").is_some() {
                codes.extend(["413", "415"]);
            }
            for code in codes {
                assert_eq!(
                    responses[code]["content"]["application/json"]["schema"]["$ref"],
                    "#/components/schemas/Envelope",
                    "{at} {code}"
                );
            }
        }
    }
}

/// The routes served are built apart from the document (`api_routes!`, for the idle memory):
/// every documented operation is served at its path and method, and the served routes have
/// nothing the document lacks (any other request falls through to the router's fallbacks).
#[tokio::test]
async fn every_documented_operation_is_served_and_nothing_else() {
    let app = TestApp::spawn().await;
    let doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(committed_path()).unwrap()).unwrap();
    let id = "0a0b0c0d-0e0f-4a1b-8c2d-3e4f5a6b7c8d";
    let mut served = 0;
    for (path, item) in doc["paths"].as_object().unwrap() {
        let concrete: String = path
            .split('/')
            .map(|p| if p.starts_with('{') { id } else { p })
            .collect::<Vec<_>>()
            .join("/");
        for method in ["get", "post", "put", "patch", "delete"] {
            let documented = item.get(method).is_some();
            let m = http::Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            let body = matches!(method, "post" | "put" | "patch").then(|| serde_json::json!({}));
            let r = app.call_with(m, &concrete, body, &tenancy()).await;
            let text = r.text();
            let fell_through = r.status == 405 || (r.status == 404 && text.contains("Cannot "));
            assert_eq!(
                !fell_through, documented,
                "{method} {path}: {} {text}",
                r.status
            );
            served += usize::from(documented);
        }
    }
    assert!(served >= 80, "only {served} operations documented");
}
