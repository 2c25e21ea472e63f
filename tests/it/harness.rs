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
                refuse_postgres_only_test();
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

/// A test named `postgres_...` tests what only PostgreSQL has (LISTEN/NOTIFY, advisory locks).
/// `.config/nextest.toml` reports such tests as skipped in the default (SQLite) run and runs
/// them in the `postgres` profile. Run on SQLite anyway (or by `cargo test` without
/// `TEST_DATABASE_URL`), one would pass without testing anything, so it fails here instead.
/// libtest names the thread running a test after the test.
fn refuse_postgres_only_test() {
    let thread = std::thread::current();
    let name = thread.name().unwrap_or_default();
    if name
        .rsplit("::")
        .next()
        .unwrap_or_default()
        .starts_with("postgres_")
    {
        panic!(
            "{name} is PostgreSQL-only and TEST_DATABASE_URL names no PostgreSQL database: \
             run it with TEST_DATABASE_URL=postgres://... cargo nextest run --profile postgres"
        );
    }
}

/// The application on its own database.
pub struct TestApp {
    pub router: Router,
    pub state: AppState,
    /// Shared with the other instances made by [`TestApp::beside`].
    pub db: std::sync::Arc<TestDb>,
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

    /// The application with `config` on a clock that moves only when the test moves it.
    pub async fn with_config_on(config: Config, clock: &ManualClock) -> TestApp {
        TestApp::build_on(config, true, clock.clock()).await
    }

    /// `probes`: mount the test-only probe routes of `probe.rs`.
    pub async fn build(config: Config, probes: bool) -> TestApp {
        TestApp::build_on(config, probes, Clock::system()).await
    }

    async fn build_on(config: Config, probes: bool, clock: Clock) -> TestApp {
        let db = TestDb::fresh().await;
        let store = db.store().await;
        TestApp::on_store(std::sync::Arc::new(db), store, config, probes, clock)
    }

    fn on_store(
        db: std::sync::Arc<TestDb>,
        store: Store,
        config: Config,
        probes: bool,
        clock: Clock,
    ) -> TestApp {
        let mut state = AppState::new(config, store).expect("valid test configuration");
        state.clock = clock;
        let router = if probes {
            assessment_service::http::router_with(state.clone(), super::probe::routes())
        } else {
            build_app(state.clone())
        };
        TestApp { router, state, db }
    }

    /// A second instance of the service on this one's database: its own pools, caches and
    /// commit signal, the same configuration and clock.
    pub async fn beside(&self) -> TestApp {
        let store = self.db.connect().await;
        TestApp::on_store(
            self.db.clone(),
            store,
            self.state.config.as_ref().clone(),
            true,
            self.state.clock.clone(),
        )
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

    /// `POST /file/upload[?questionId=]` as `user`: one multipart part `file` named `name` of
    /// type `content_type` (none when `None`) holding `bytes`.
    pub async fn upload(
        &self,
        user: &'static str,
        question: Option<&str>,
        name: &str,
        content_type: Option<&str>,
        bytes: &[u8],
    ) -> TestResponse {
        self.upload_with(&as_user(user), question, name, content_type, bytes)
            .await
    }

    /// [`TestApp::upload`] with these headers (e.g. a bearer token).
    pub async fn upload_with(
        &self,
        headers: &[(&str, &str)],
        question: Option<&str>,
        name: &str,
        content_type: Option<&str>,
        bytes: &[u8],
    ) -> TestResponse {
        let boundary = "assessment-test-boundary-7d41";
        let mut body = format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{name}\"\r\n"
        )
        .into_bytes();
        if let Some(t) = content_type {
            body.extend_from_slice(format!("Content-Type: {t}\r\n").as_bytes());
        }
        body.extend_from_slice(b"\r\n");
        body.extend_from_slice(bytes);
        body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
        let path = match question {
            Some(q) => format!("/assessment/v1/file/upload?questionId={q}"),
            None => "/assessment/v1/file/upload".to_string(),
        };
        let mut req = Request::builder().method(Method::POST).uri(path).header(
            "content-type",
            format!("multipart/form-data; boundary={boundary}"),
        );
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        self.send(req.body(Body::from(body)).unwrap()).await
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
    assert_failure_envelope(&r.json(), api_id, err, code, errmsg);
}

/// Asserts a failure envelope already parsed (its status checked by the caller).
pub fn assert_failure_envelope(v: &Value, api_id: &str, err: &str, code: &str, errmsg: &str) {
    assert_envelope_keys(v);
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

// ---------------------------------------------------------------------------------------------
// Fixtures: the steps tests repeat (authoring and publishing a test, taking it, reading the
// outbox). Each one states the HTTP status it expects and fails otherwise, naming its caller,
// the request and the response body; it returns the parsed response body.

pub const ATTEMPTS: &str = "/assessment/v1/attempts";

/// The default tenancy headers, for `user`.
pub fn as_user(user: &'static str) -> Vec<(&'static str, &'static str)> {
    vec![
        ("tenantid", TENANT),
        ("organisationid", ORG),
        ("userid", user),
    ]
}

impl TestResponse {
    /// Asserts the status (the failure names the caller's line and shows the body) and
    /// returns the parsed body (`null` when empty).
    #[track_caller]
    pub fn expect_status(&self, status: u16) -> Value {
        assert_eq!(
            self.status.as_u16(),
            status,
            "unexpected status; body: {}",
            self.text()
        );
        self.json_or_null()
    }

    fn json_or_null(&self) -> Value {
        if self.body.is_empty() {
            Value::Null
        } else {
            self.json()
        }
    }
}

type Caller = &'static std::panic::Location<'static>;

/// Sends a request and checks its status; `at` is the test line the failure names.
async fn expect_at(
    app: &TestApp,
    (method, path, body): (Method, String, Option<Value>),
    headers: &[(&str, &str)],
    status: u16,
    at: Caller,
) -> Value {
    let r = app
        .call_with(method.clone(), &path, body.clone(), headers)
        .await;
    if r.status.as_u16() != status {
        panic!(
            "{method} {path} (called at {at}): expected {status}, got {}\n\
             request body: {}\nresponse body: {}",
            r.status,
            body.map_or_else(|| "(none)".to_string(), |b| b.to_string()),
            r.text()
        );
    }
    r.json_or_null()
}

async fn create_test_at(app: &TestApp, body: Value, at: Caller) -> String {
    let v = expect_at(
        app,
        (Method::POST, "/assessment/v1/tests".into(), Some(body)),
        &tenancy(),
        201,
        at,
    )
    .await;
    v["result"]["testId"].as_str().unwrap().to_string()
}

async fn create_section_at(app: &TestApp, test: &str, title: &str, at: Caller) -> String {
    let body = serde_json::json!({"title": title, "testId": test});
    let v = expect_at(
        app,
        (Method::POST, "/assessment/v1/sections".into(), Some(body)),
        &tenancy(),
        201,
        at,
    )
    .await;
    v["result"]["sectionId"].as_str().unwrap().to_string()
}

async fn create_question_at(app: &TestApp, body: Value, at: Caller) -> Value {
    let v = expect_at(
        app,
        (Method::POST, "/assessment/v1/questions".into(), Some(body)),
        &tenancy(),
        201,
        at,
    )
    .await;
    v["result"].clone()
}

/// Creates a test (201, default tenancy); returns its id.
#[track_caller]
pub fn create_test(app: &TestApp, body: Value) -> impl Future<Output = String> + '_ {
    let at = std::panic::Location::caller();
    create_test_at(app, body, at)
}

/// Creates a section of `test` (201); returns its id.
#[track_caller]
pub fn create_section<'a>(
    app: &'a TestApp,
    test: &str,
    title: &str,
) -> impl Future<Output = String> + 'a {
    let at = std::panic::Location::caller();
    let (test, title) = (test.to_string(), title.to_string());
    async move { create_section_at(app, &test, &title, at).await }
}

/// Creates a bank question (201); returns the created question (`result`).
#[track_caller]
pub fn create_question(app: &TestApp, body: Value) -> impl Future<Output = Value> + '_ {
    let at = std::panic::Location::caller();
    create_question_at(app, body, at)
}

/// `POST /tests/{test}/publish`, expecting `status`.
#[track_caller]
pub fn publish<'a>(app: &'a TestApp, test: &str, status: u16) -> impl Future<Output = Value> + 'a {
    let at = std::panic::Location::caller();
    let path = format!("/assessment/v1/tests/{test}/publish");
    async move { expect_at(app, (Method::POST, path, None), &tenancy(), status, at).await }
}

/// A published plain test holding `questions` (bodies for POST /questions) in one section, in
/// that order unless `settings` shuffles; `settings` adds to or overrides the test's fields.
/// Returns the test id and the created questions.
#[track_caller]
pub fn published_test(
    app: &TestApp,
    settings: Value,
    questions: Vec<Value>,
) -> impl Future<Output = (String, Vec<Value>)> + '_ {
    let at = std::panic::Location::caller();
    async move {
        let mut body = serde_json::json!({"title": "Journey", "type": "plain",
            "questionsShuffle": false, "answersShuffle": false});
        for (k, v) in settings.as_object().expect("settings is an object") {
            body[k] = v.clone();
        }
        let test = create_test_at(app, body, at).await;
        let section = create_section_at(app, &test, "S", at).await;
        let mut created = Vec::new();
        for mut q in questions {
            q["testId"] = serde_json::json!(test);
            q["sectionId"] = serde_json::json!(section);
            created.push(create_question_at(app, q, at).await);
        }
        let path = format!("/assessment/v1/tests/{test}/publish");
        expect_at(app, (Method::POST, path, None), &tenancy(), 201, at).await;
        (test, created)
    }
}

/// `POST /attempts/start/{test}` as `user`, expecting `status`.
#[track_caller]
pub fn start<'a>(
    app: &'a TestApp,
    test: &str,
    user: &'static str,
    status: u16,
) -> impl Future<Output = Value> + 'a {
    let at = std::panic::Location::caller();
    let path = format!("{ATTEMPTS}/start/{test}");
    async move { expect_at(app, (Method::POST, path, None), &as_user(user), status, at).await }
}

/// Starts an attempt of `test` as `user` (201); returns the attempt id.
#[track_caller]
pub fn start_attempt<'a>(
    app: &'a TestApp,
    test: &str,
    user: &'static str,
) -> impl Future<Output = String> + 'a {
    let at = std::panic::Location::caller();
    let path = format!("{ATTEMPTS}/start/{test}");
    async move {
        let v = expect_at(app, (Method::POST, path, None), &as_user(user), 201, at).await;
        v["result"]["attemptId"].as_str().unwrap().to_string()
    }
}

/// `POST /attempts/{attempt}/answers` with `{"answers": answers}` as `user`, expecting `status`.
#[track_caller]
pub fn answer<'a>(
    app: &'a TestApp,
    attempt: &str,
    user: &'static str,
    answers: Value,
    status: u16,
) -> impl Future<Output = Value> + 'a {
    let at = std::panic::Location::caller();
    let path = format!("{ATTEMPTS}/{attempt}/answers");
    let body = serde_json::json!({ "answers": answers });
    async move {
        let req = (Method::POST, path, Some(body));
        expect_at(app, req, &as_user(user), status, at).await
    }
}

/// `POST /attempts/{attempt}/submit` as `user`, expecting `status`.
#[track_caller]
pub fn submit<'a>(
    app: &'a TestApp,
    attempt: &str,
    user: &'static str,
    status: u16,
) -> impl Future<Output = Value> + 'a {
    let at = std::panic::Location::caller();
    let path = format!("{ATTEMPTS}/{attempt}/submit");
    async move { expect_at(app, (Method::POST, path, None), &as_user(user), status, at).await }
}

/// `POST /attempts/{attempt}/review` with `body` as `reviewer`, expecting `status`.
#[track_caller]
pub fn review<'a>(
    app: &'a TestApp,
    attempt: &str,
    reviewer: &'static str,
    body: Value,
    status: u16,
) -> impl Future<Output = Value> + 'a {
    let at = std::panic::Location::caller();
    let path = format!("{ATTEMPTS}/{attempt}/review");
    async move {
        let req = (Method::POST, path, Some(body));
        expect_at(app, req, &as_user(reviewer), status, at).await
    }
}

/// The payloads of the outbox's events named `name`, oldest first.
pub async fn events(app: &TestApp, name: &str) -> Vec<Value> {
    assessment_service::store::outbox::with_name(&app.state.store, name)
        .await
        .expect("reading the outbox")
        .into_iter()
        .map(|e| e.payload.0)
        .collect()
}

/// Runs the futures concurrently on the current task (no `'static` bound, unlike spawning)
/// and returns their outputs in order.
pub async fn join_all<F: Future>(futs: impl IntoIterator<Item = F>) -> Vec<F::Output> {
    let mut pinned: Vec<_> = futs.into_iter().map(Box::pin).collect();
    let mut done: Vec<Option<F::Output>> = pinned.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (f, slot) in pinned.iter_mut().zip(done.iter_mut()) {
            if slot.is_none() {
                match f.as_mut().poll(cx) {
                    std::task::Poll::Ready(v) => *slot = Some(v),
                    std::task::Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            std::task::Poll::Pending
        } else {
            std::task::Poll::Ready(())
        }
    })
    .await;
    done.into_iter()
        .map(|d| d.expect("every future completed"))
        .collect()
}

/// Runs one statement binding `id` (a UUID) on the test's database: a change made behind the
/// service's back.
pub async fn exec(app: &TestApp, sql: &str, id: &str) {
    use assessment_service::store::{Id, Pools};
    let id = Id(id.parse().unwrap());
    match app.state.store.pools() {
        Pools::Sqlite { writer, .. } => {
            sqlx::query(sql).bind(id).execute(writer).await.unwrap();
        }
        Pools::Postgres(pool) => {
            sqlx::query(sql).bind(id).execute(pool).await.unwrap();
        }
    }
}

/// The id of option `i` of a created question.
pub fn opt(q: &Value, i: usize) -> Value {
    q["options"][i]["questionOptionId"].clone()
}

/// An MCQ worth `marks` whose first option ("right") is the right one.
pub fn mcq_worth(text: &str, marks: u32) -> Value {
    serde_json::json!({"text": text, "type": "mcq", "marks": marks,
           "options": [{"text": "right", "isCorrect": true}, {"text": "wrong"}]})
}

/// The answer choosing option `i` of `q`.
pub fn pick(q: &Value, i: usize) -> Value {
    serde_json::json!({"questionId": q["questionId"], "answer": {"selectedOptionIds": [opt(q, i)]}})
}

/// Unpublishes `test`, applies `patch` to the question `question_id` (200) and publishes the
/// test again: a new version.
pub async fn republish_with(app: &TestApp, test: &str, question_id: &Value, patch: Value) {
    let path = format!("/assessment/v1/tests/{test}");
    app.call(Method::POST, &format!("{path}/unpublish"), None)
        .await
        .expect_status(201);
    let id = question_id.as_str().expect("a question id");
    app.call(
        Method::PATCH,
        &format!("/assessment/v1/questions/{id}"),
        Some(patch),
    )
    .await
    .expect_status(200);
    app.call(Method::POST, &format!("{path}/publish"), None)
        .await
        .expect_status(201);
}
