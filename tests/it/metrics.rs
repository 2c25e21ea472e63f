//! `/metrics` in Prometheus text format.

use crate::harness::*;

#[tokio::test]
async fn metrics_count_requests_by_route_and_status_and_show_pools() {
    let app = TestApp::spawn().await;
    app.get("/health/live").await;
    app.get("/assessment/v1/nothing").await;
    let r = app.get("/metrics").await;
    assert_eq!(r.status, 200);
    assert!(r.header("content-type").unwrap().starts_with("text/plain"));
    let text = r.text();
    for needle in [
        r#"http_requests_total{method="GET",route="/health/live",status="200"}"#,
        r#"http_requests_total{method="GET",route="unmatched",status="404"}"#,
        r#"http_request_duration_seconds_bucket{method="GET",route="/health/live",status="200",le="0.005"}"#,
        "db_pool_max_connections{pool=",
        "db_pool_connections{pool=",
    ] {
        assert!(text.contains(needle), "missing {needle} in:\n{text}");
    }
    let pool = match app.db.backend() {
        assessment_service::store::Backend::Sqlite => "writer",
        assessment_service::store::Backend::Postgres => "primary",
    };
    assert!(text.contains(&format!("db_pool_max_connections{{pool=\"{pool}\"}}")));
}
