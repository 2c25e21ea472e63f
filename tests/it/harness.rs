//! Builds the app on a fresh database and sends it requests without a socket.

use std::str::FromStr;

pub use assessment_service::clock::{Clock, ManualClock};
use assessment_service::config::Config;
use assessment_service::store::{Backend, Store, StoreOptions};
use assessment_service::{AppState, build_app};
use axum::Router;
use axum::body::Body;
use http::{HeaderMap, Method, Request, StatusCode};
use serde_json::Value;
use sqlx::Connection;
use sqlx::postgres::{PgConnectOptions, PgConnection};
use tempfile::TempDir;
use tower::ServiceExt;

pub const TENANT: &str = "0f3d1c9e-6a1b-4b2c-9d3e-1f2a3b4c5d6e";
pub const ORG: &str = "1a2b3c4d-5e6f-4a1b-8c2d-3e4f5a6b7c8d";
pub const USER: &str = "2b3c4d5e-6f7a-4b2c-9d3e-4f5a6b7c8d9e";
pub const OTHER_TENANT: &str = "3c4d5e6f-7a8b-4c3d-ae4f-5a6b7c8d9e0f";

/// Where a test's database lives.
pub enum TestDb {
    Sqlite { url: String, _dir: TempDir },
    Postgres { url: String, schema: String },
}

impl TestDb {
    /// A fresh, empty database (SQLite file or PostgreSQL schema), per `TEST_DATABASE_URL`.
    pub async fn fresh() -> TestDb {
        match std::env::var("TEST_DATABASE_URL") {
            Ok(url) if url.starts_with("postgres") => {
                let schema = format!("t_{}", uuid::Uuid::new_v4().simple());
                let mut conn = PgConnection::connect(&url).await.unwrap_or_else(|e| {
                    panic!("TEST_DATABASE_URL is set but PostgreSQL is unreachable: {e}")
                });
                sqlx::query(&format!("CREATE SCHEMA \"{schema}\""))
                    .execute(&mut conn)
                    .await
                    .expect("creating the test schema");
                conn.close().await.ok();
                TestDb::Postgres { url, schema }
            }
            Ok(url) if !url.is_empty() && !url.starts_with("sqlite") => {
                panic!("TEST_DATABASE_URL must be postgres://... or unset, not {url:?}")
            }
            _ => {
                let dir = tempfile::tempdir().expect("temp dir");
                let url = format!("sqlite://{}", dir.path().join("test.db").display());
                TestDb::Sqlite { url, _dir: dir }
            }
        }
    }

    pub fn backend(&self) -> Backend {
        match self {
            TestDb::Sqlite { .. } => Backend::Sqlite,
            TestDb::Postgres { .. } => Backend::Postgres,
        }
    }

    /// A `DATABASE_URL` reaching this database (for the binary).
    pub fn url(&self) -> String {
        match self {
            TestDb::Sqlite { url, .. } => url.clone(),
            TestDb::Postgres { url, schema } => {
                let sep = if url.contains('?') { '&' } else { '?' };
                format!("{url}{sep}options=-c%20search_path%3D{schema}")
            }
        }
    }

    /// Connects (not migrated).
    pub async fn connect(&self) -> Store {
        self.connect_with(5).await
    }

    /// Connects with at most `pool_size` connections (PostgreSQL; SQLite has one writer).
    pub async fn connect_with(&self, pool_size: u32) -> Store {
        match self {
            TestDb::Sqlite { url, .. } => {
                let opts = sqlx::sqlite::SqliteConnectOptions::from_str(url).unwrap();
                Store::connect_sqlite(opts, StoreOptions::default())
                    .await
                    .expect("opening the test SQLite database")
            }
            TestDb::Postgres { url, schema } => {
                let opts = PgConnectOptions::from_str(url)
                    .unwrap()
                    .options([("search_path", schema.as_str())]);
                let store_opts = StoreOptions {
                    pool_size,
                    ..StoreOptions::default()
                };
                Store::connect_postgres(opts, store_opts)
                    .await
                    .expect("connecting to the test PostgreSQL database")
            }
        }
    }

    /// Connects and migrates.
    pub async fn store(&self) -> Store {
        let store = self.connect().await;
        store.migrate().await.expect("migrating the test database");
        store
    }
}

/// The application on its own database.
pub struct TestApp {
    pub router: Router,
    pub state: AppState,
    pub db: TestDb,
}

impl TestApp {
    pub async fn spawn() -> TestApp {
        TestApp::with_config(Config::default()).await
    }

    pub async fn with_config(config: Config) -> TestApp {
        TestApp::build(config, true).await
    }

    /// The application on a clock that moves only when the test moves it.
    pub async fn on_clock(clock: &ManualClock) -> TestApp {
        TestApp::build_on(Config::default(), true, clock.clock()).await
    }

    /// `probes`: mount the test-only probe routes of `probe.rs`.
    pub async fn build(config: Config, probes: bool) -> TestApp {
        TestApp::build_on(config, probes, Clock::system()).await
    }

    async fn build_on(config: Config, probes: bool, clock: Clock) -> TestApp {
        let db = TestDb::fresh().await;
        let store = db.store().await;
        let mut state = AppState::new(config, store).expect("valid test configuration");
        state.clock = clock;
        let router = if probes {
            assessment_service::http::router_with(state.clone(), super::probe::routes())
        } else {
            build_app(state.clone())
        };
        TestApp { router, state, db }
    }

    pub async fn send(&self, req: Request<Body>) -> TestResponse {
        let response = self
            .router
            .clone()
            .oneshot(req)
            .await
            .expect("the router is infallible");
        let status = response.status();
        let headers = response.headers().clone();
        let body = axum::body::to_bytes(response.into_body(), 64 * 1024 * 1024)
            .await
            .expect("reading the body")
            .to_vec();
        TestResponse {
            status,
            headers,
            body,
        }
    }

    /// A request with the default tenancy headers (tenant, organisation, user).
    pub async fn call(&self, method: Method, path: &str, body: Option<Value>) -> TestResponse {
        self.call_with(method, path, body, &tenancy()).await
    }

    pub async fn call_with(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
        headers: &[(&str, &str)],
    ) -> TestResponse {
        let mut req = Request::builder().method(method).uri(path);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let req = match body {
            Some(json) => req
                .header("content-type", "application/json")
                .body(Body::from(json.to_string())),
            None => req.body(Body::empty()),
        }
        .unwrap();
        self.send(req).await
    }

    /// A request with the default tenancy headers and a body sent as is.
    pub async fn raw(
        &self,
        method: Method,
        path: &str,
        content_type: &str,
        body: &str,
    ) -> TestResponse {
        let mut req = Request::builder()
            .method(method)
            .uri(path)
            .header("content-type", content_type);
        for (k, v) in tenancy() {
            req = req.header(k, v);
        }
        self.send(req.body(Body::from(body.to_string())).unwrap())
            .await
    }

    pub async fn get(&self, path: &str) -> TestResponse {
        self.call_with(Method::GET, path, None, &[]).await
    }
}

/// The default tenancy headers.
pub fn tenancy() -> Vec<(&'static str, &'static str)> {
    vec![
        ("tenantid", TENANT),
        ("organisationid", ORG),
        ("userid", USER),
    ]
}

#[derive(Debug)]
pub struct TestResponse {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

impl TestResponse {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "body is not JSON ({e}): {}",
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// `params.errmsg`.
    pub fn errmsg(&self) -> String {
        self.json()["params"]["errmsg"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    }
}

/// Asserts the complete failure envelope.
pub fn assert_failure(
    r: &TestResponse,
    status: u16,
    api_id: &str,
    err: &str,
    code: &str,
    errmsg: &str,
) {
    assert_eq!(r.status.as_u16(), status, "status; body: {}", r.text());
    let v = r.json();
    assert_envelope_keys(&v);
    assert_eq!(v["id"], api_id, "api id");
    assert_eq!(v["params"]["status"], "failed");
    assert_eq!(v["params"]["err"], err);
    assert_eq!(v["params"]["errmsg"], errmsg);
    assert_eq!(v["responseCode"], code);
    assert!(v["result"].is_null());
}

/// The envelope has exactly upstream's keys and well-formed ids and time.
pub fn assert_envelope_keys(v: &Value) {
    let mut keys: Vec<&str> = v.as_object().unwrap().keys().map(|k| k.as_str()).collect();
    keys.sort();
    assert_eq!(
        keys,
        ["id", "params", "responseCode", "result", "ts", "ver"],
        "{v}"
    );
    let mut pkeys: Vec<&str> = v["params"]
        .as_object()
        .unwrap()
        .keys()
        .map(|k| k.as_str())
        .collect();
    pkeys.sort();
    assert_eq!(pkeys, ["err", "errmsg", "msgid", "resmsgid", "status"]);
    assert_eq!(v["ver"], "1.0");
    let ts = v["ts"].as_str().unwrap();
    assert!(
        chrono::DateTime::parse_from_rfc3339(ts).is_ok() && ts.ends_with('Z') && ts.len() == 24,
        "ts {ts}"
    );
    let resmsgid = v["params"]["resmsgid"].as_str().unwrap();
    assert!(resmsgid.len() == 20 && resmsgid.bytes().all(|b| b.is_ascii_alphanumeric()));
}
