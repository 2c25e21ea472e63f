//! Health endpoints: raw reports for `/health` and `/health/ready`, 503 when the database is
//! gone.

use crate::harness::*;

#[tokio::test]
async fn ready_and_health_report_the_database() {
    let app = TestApp::spawn().await;
    for path in ["/health", "/health/ready"] {
        let r = app.get(path).await;
        assert_eq!(r.status, 200, "{path}");
        let v = r.json();
        assert_eq!(v["status"], "ok");
        assert_eq!(v["info"]["database"]["status"], "up");
        assert!(
            v["info"]["database"]["responseTime"]
                .as_str()
                .unwrap()
                .ends_with("ms")
        );
        assert_eq!(v["error"], serde_json::json!({}));
        assert_eq!(v["details"]["database"]["status"], "up");
        assert!(v.get("params").is_none(), "not enveloped");
    }
}

#[tokio::test]
async fn a_closed_database_makes_health_503() {
    let app = TestApp::spawn().await;
    app.state.store.close().await;
    for path in ["/health", "/health/ready"] {
        let r = app.get(path).await;
        assert_eq!(r.status, 503, "{path}");
        let v = r.json();
        assert_eq!(v["status"], "error");
        assert_eq!(v["error"]["database"]["status"], "down");
        assert_eq!(v["info"], serde_json::json!({}));
    }
    // Liveness does not depend on the database.
    assert_eq!(app.get("/health/live").await.status, 200);
}
