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
    // Every family has a HELP line, and the build says what it is.
    for line in text.lines().filter(|l| l.starts_with("# TYPE ")) {
        let family = line.split_whitespace().nth(2).unwrap();
        assert!(
            text.contains(&format!("# HELP {family} ")),
            "no HELP for {family} in:\n{text}"
        );
    }
    let version = env!("CARGO_PKG_VERSION");
    assert!(
        text.contains(&format!("build_info{{version=\"{version}\"}} 1")),
        "{text}"
    );
}

/// On SQLite the write-ahead log is checkpointed by a task of its own (the writer's own
/// checkpoints are off, so they never run inside a learner's commit): after some writes, the
/// log's frames are all copied into the database file within a second or so.
#[tokio::test]
async fn sqlite_checkpoints_its_log_in_the_background() {
    let app = TestApp::spawn().await;
    if app.db.backend() != assessment_service::store::Backend::Sqlite {
        return;
    }
    for i in 0..5 {
        let text = format!("Question {i} {}", "x".repeat(20_000));
        create_question(
            &app,
            serde_json::json!({"text": text, "type": "essay", "marks": 1}),
        )
        .await;
    }
    let gauge = |text: &str, name: &str| -> Option<f64> {
        text.lines()
            .find_map(|l| l.strip_prefix(name).and_then(|v| v.trim().parse().ok()))
    };
    let mut last = String::new();
    for _ in 0..30 {
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        last = app.get("/metrics").await.text();
        if let (Some(frames), Some(copied)) = (
            gauge(&last, "sqlite_wal_frames "),
            gauge(&last, "sqlite_wal_checkpointed_frames "),
        ) && frames > 0.0
            && copied == frames
        {
            return;
        }
    }
    panic!("the log was not checkpointed:\n{last}");
}
