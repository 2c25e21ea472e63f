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

/// A TCP relay to PostgreSQL that can be cut: every relayed connection closed, new ones
/// refused (the database gone, as far as the service can tell).
struct Relay {
    port: u16,
    tasks: tokio::task::JoinSet<()>,
}

impl Relay {
    async fn to(target: std::net::SocketAddr) -> Relay {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let mut tasks = tokio::task::JoinSet::new();
        tasks.spawn(async move {
            let mut conns = tokio::task::JoinSet::new();
            while let Ok((mut inbound, _)) = listener.accept().await {
                conns.spawn(async move {
                    if let Ok(mut outbound) = tokio::net::TcpStream::connect(target).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
            }
        });
        Relay { port, tasks }
    }

    /// Closes every relayed connection and the listener.
    fn cut(&mut self) {
        self.tasks.abort_all();
    }
}

/// With the database gone under a running service, readiness says so within a second, and
/// an API call is answered 503 "unavailable" (not 500, not "busy").
#[tokio::test]
async fn postgres_a_database_gone_is_reported_at_once() {
    use assessment_service::store::{Backend, Store, StoreOptions};
    use std::str::FromStr;
    let db = std::sync::Arc::new(TestDb::fresh().await);
    assert_eq!(db.backend(), Backend::Postgres, "PostgreSQL only");
    db.store().await.close().await; // migrated
    let url = db.url();
    let options = sqlx::postgres::PgConnectOptions::from_str(&url).unwrap();
    let target = tokio::net::lookup_host((options.get_host(), options.get_port()))
        .await
        .unwrap()
        .next()
        .unwrap();
    let mut relay = Relay::to(target).await;
    let store = Store::connect_postgres(
        options.host("127.0.0.1").port(relay.port),
        StoreOptions {
            acquire_timeout: std::time::Duration::from_secs(2),
            ..StoreOptions::default()
        },
    )
    .await
    .unwrap();
    let state = assessment_service::http::AppState::new(Default::default(), store).unwrap();
    let app = TestApp {
        router: assessment_service::app::build_app(state.clone()),
        state,
        db,
    };
    assert_eq!(app.get("/health/ready").await.status, 200);
    app.call(http::Method::GET, "/assessment/v1/tests?limit=1", None)
        .await
        .expect_status(200);

    relay.cut();
    let asked = std::time::Instant::now();
    let r = app.get("/health/ready").await;
    assert_eq!(r.status, 503);
    assert_eq!(r.json()["error"]["database"]["status"], "down");
    assert!(
        asked.elapsed() < std::time::Duration::from_millis(1_900),
        "{:?}",
        asked.elapsed()
    );
    for _ in 0..2 {
        let r = app
            .call(http::Method::GET, "/assessment/v1/tests?limit=1", None)
            .await;
        assert_eq!(r.status, 503, "{}", r.text());
        assert_eq!(r.errmsg(), assessment_service::error::DATABASE_UNAVAILABLE);
    }
}
