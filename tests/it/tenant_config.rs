//! `/config` (issue 18): the tenant's configuration from the user service, or the local
//! defaults when it gives nothing; stored per tenant; credentials never shown.

use std::sync::{Arc, Mutex};

use assessment_service::config::Config;
use http::Method;
use serde_json::{Value, json};

use crate::harness::*;

const CONFIG: &str = "/assessment/v1/config";

/// A user service answering `GET /tenant/{id}` with `result`; records the requests' URIs.
async fn user_service(result: Value) -> (String, Arc<Mutex<Vec<String>>>) {
    use axum::extract::Request;
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    let app = axum::Router::new().route(
        "/tenant/{id}",
        axum::routing::get(move |req: Request| {
            let (log, result) = (log.clone(), result.clone());
            async move {
                log.lock().unwrap().push(req.uri().to_string());
                axum::Json(json!({"id": "api.tenant.read", "result": result}))
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}"), seen)
}

#[tokio::test]
async fn without_a_user_service_sync_stores_the_defaults() {
    let app = TestApp::spawn().await;
    let r = app.call(Method::GET, CONFIG, None).await;
    assert_failure(
        &r,
        404,
        "api.config.get",
        "NOT_FOUND",
        "NOT_FOUND",
        "Failed to retrieve configuration: Configuration not found",
    );
    let synced = app
        .call(Method::POST, &format!("{CONFIG}/sync"), None)
        .await
        .expect_status(201);
    let result = &synced["result"];
    assert_eq!(result["IsConfigsSync"], 1);
    assert_eq!(result["source"], "defaults");
    assert_eq!(result["config"]["upload_path"], "assessment/tests");
    assert_eq!(result["config"]["image_filesize"], 5);
    assert!(result["lastSynced"].is_string());
    let got = app.call(Method::GET, CONFIG, None).await.expect_status(200);
    assert_eq!(got["result"], *result);
    // Another tenant has none.
    let other = [
        ("tenantid", OTHER_TENANT),
        ("organisationid", ORG),
        ("userid", USER),
    ];
    assert_eq!(
        app.call_with(Method::GET, CONFIG, None, &other)
            .await
            .status,
        404
    );
}

#[tokio::test]
async fn sync_takes_the_user_services_config_and_never_shows_its_credentials() {
    let (url, seen) = user_service(json!({"upload_path": "tenant/files", "image_filesize": 8,
        "storage_key": "AKIAEXAMPLE", "storage_secret": "very-secret", "storage_region": "ap-south-1"}))
    .await;
    let app = TestApp::with_config(Config {
        user_service_url: Some(url),
        ..Config::default()
    })
    .await;
    let synced = app
        .call(Method::POST, &format!("{CONFIG}/sync"), None)
        .await
        .expect_status(201);
    assert_eq!(
        seen.lock().unwrap().as_slice(),
        [format!("/tenant/{TENANT}?context=assessment")]
    );
    let config = &synced["result"]["config"];
    assert_eq!(synced["result"]["source"], "user-service");
    assert_eq!(config["upload_path"], "tenant/files");
    assert_eq!(config["storage_region"], "ap-south-1");
    assert_eq!(config["storage_key"], "********");
    assert_eq!(config["storage_secret"], "********");
    let got = app.call(Method::GET, CONFIG, None).await;
    assert!(!got.text().contains("very-secret") && !got.text().contains("AKIAEXAMPLE"));
    assert_eq!(got.expect_status(200)["result"]["config"], *config);
}

#[tokio::test]
async fn an_empty_answer_from_the_user_service_falls_back_to_the_defaults() {
    let (url, _) = user_service(json!({})).await;
    let app = TestApp::with_config(Config {
        user_service_url: Some(url),
        ..Config::default()
    })
    .await;
    let synced = app
        .call(Method::POST, &format!("{CONFIG}/sync"), None)
        .await
        .expect_status(201);
    assert_eq!(synced["result"]["source"], "defaults");
    assert_eq!(
        synced["result"]["config"]["upload_path"],
        "assessment/tests"
    );
}
