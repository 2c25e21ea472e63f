//! The binary itself: serve, graceful shutdown, migrate, openapi, configuration errors.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::harness::*;

const BIN: &str = env!("CARGO_BIN_EXE_assessment-service");

pub(crate) fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A minimal HTTP/1.1 GET; returns the status code, or `None` when nothing listens.
pub(crate) fn http_get(port: u16, path: &str) -> Option<(u16, String)> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut buf = String::new();
    s.read_to_string(&mut buf).ok()?;
    let status = buf.split_whitespace().nth(1)?.parse().ok()?;
    let body = buf
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    Some((status, body))
}

/// Waits (up to 30 s) until the service on `port` answers `/health/ready` with 200.
pub(crate) fn wait_ready(port: u16) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while http_get(port, "/health/ready").map(|r| r.0) != Some(200) {
        assert!(Instant::now() < deadline, "the service did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
}

pub(crate) fn base_command(db: &TestDb) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("DATABASE_URL", db.url())
        .env("LOG_LEVEL", "warn");
    cmd
}

#[tokio::test]
async fn serve_answers_ready_and_stops_cleanly_on_sigterm() {
    let db = TestDb::fresh().await;
    let port = free_port();
    let mut child = base_command(&db)
        .env("PORT", port.to_string())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();

    let deadline = Instant::now() + Duration::from_secs(30);
    let ready = loop {
        if let Some((status, body)) = http_get(port, "/health/ready") {
            break (status, body);
        }
        assert!(Instant::now() < deadline, "the service did not start");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(ready.0, 200, "{}", ready.1);
    let (status, body) = http_get(port, "/api-json").unwrap();
    assert_eq!(status, 200);
    assert!(body.contains("\"openapi\""));

    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let deadline = Instant::now() + Duration::from_secs(20);
    let exit = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "the service ignored SIGTERM");
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    assert!(exit.success(), "exit {exit:?}; stderr:\n{stderr}");
    assert!(
        http_get(port, "/health/live").is_none(),
        "no longer listening"
    );
}

/// A broker plugin with a bad URL stops the start with one line naming the plugin; an
/// unreachable broker does not stop it.
#[tokio::test]
async fn a_bad_broker_plugin_stops_the_start_and_an_unreachable_broker_does_not() {
    let dir = tempfile::tempdir().unwrap();
    let plugins = dir.path().join("plugins.json");
    std::fs::write(
        &plugins,
        r#"[{"id": "school-stream", "name": "S", "type": "external", "externalService":
            {"type": "event-stream", "stream": {"url": "kafka://127.0.0.1:9092", "topic": "t"}}}]"#,
    )
    .unwrap();
    let out = Command::new(BIN)
        .env_clear()
        .env("PLUGINS_FILE", &plugins)
        .arg("serve")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("PLUGINS_FILE") && stderr.contains("school-stream"),
        "{stderr}"
    );

    let db = TestDb::fresh().await;
    let port = free_port();
    let mut child = base_command(&db)
        .env("PORT", port.to_string())
        .env("MESSAGE_QUEUE_URL", "amqp://guest:guest@127.0.0.1:1/%2f")
        .env("EVENT_STREAM_URL", "redis://127.0.0.1:1/0")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_ready(port);
    assert!(signal(&mut child, "-TERM"));
}

#[tokio::test]
async fn migrate_command_migrates_an_empty_database() {
    let db = TestDb::fresh().await;
    let out = base_command(&db).arg("migrate").output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let store = db.connect().await;
    let applied: i64 = assessment_service::on_reader!(&store, pool => {
        sqlx::query_scalar(r#"SELECT COUNT(*) FROM "_sqlx_migrations" WHERE "success""#)
            .fetch_one(pool)
            .await
            .unwrap()
    });
    assert_eq!(
        applied as usize,
        assessment_service::store::SQLITE_MIGRATOR.iter().count()
    );
    // The schema is there.
    let tests: i64 = assessment_service::on_reader!(&store, pool => {
        sqlx::query_scalar(r#"SELECT COUNT(*) FROM "tests""#).fetch_one(pool).await.unwrap()
    });
    assert_eq!(tests, 0);
}

#[test]
fn a_bad_configuration_value_stops_with_one_line_naming_it() {
    for (var, value) in [
        ("PORT", "eighty"),
        ("DATABASE_URL", "mysql://localhost/x"),
        ("LOG_FORMAT", "xml"),
        ("DATABASE_POOL_SIZE", "0"),
        ("CORS_ORIGINS", "not a url"),
        ("JWT_SECRET", "short"),
        ("MESSAGE_QUEUE_URL", "nats://127.0.0.1:4222"),
        ("EVENT_STREAM_URL", "kafka://127.0.0.1:9092"),
    ] {
        let out = Command::new(BIN)
            .env_clear()
            .env(var, value)
            .arg("serve")
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{var}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        let lines: Vec<&str> = stderr.lines().collect();
        assert_eq!(lines.len(), 1, "{var}: {stderr}");
        assert!(lines[0].contains(var), "{var}: {stderr}");
        // The variable is named first, and a list of values is shown.
        let expected = match var {
            "PORT" => "invalid configuration: PORT (--port): invalid value 'eighty'",
            "LOG_FORMAT" => "LOG_FORMAT (--log-format): invalid value 'xml' (allowed: text, json)",
            _ => var,
        };
        assert!(lines[0].contains(expected), "{var}: {stderr}");
    }
}

#[test]
fn openapi_command_prints_the_committed_document() {
    let out = Command::new(BIN)
        .env_clear()
        .arg("openapi")
        .output()
        .unwrap();
    assert!(out.status.success());
    let committed = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/openapi.json"),
    )
    .unwrap();
    assert_eq!(String::from_utf8(out.stdout).unwrap(), committed);
}

/// A receiver on loopback that records event ids, each request taking `delay_ms`.
async fn id_receiver(delay_ms: u64) -> (std::sync::Arc<std::sync::Mutex<Vec<String>>>, String) {
    use axum::routing::post;
    let got = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let sink = got.clone();
    let app = axum::Router::new().route(
        "/hook",
        post(move |axum::Json(body): axum::Json<serde_json::Value>| {
            let sink = sink.clone();
            async move {
                tokio::time::sleep(Duration::from_millis(delay_ms)).await;
                sink.lock()
                    .unwrap()
                    .push(body["id"].as_str().unwrap_or_default().to_string());
                "ok"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (got, url)
}

/// Sends `signal` (`-KILL`, `-TERM`) to the child and waits for it to exit; returns whether it
/// exited successfully.
pub(crate) fn signal(child: &mut std::process::Child, signal: &str) -> bool {
    Command::new("kill")
        .args([signal, &child.id().to_string()])
        .status()
        .unwrap();
    child.wait().unwrap().success()
}

/// Waits (up to a minute) until the receiver has seen every one of `ids`.
async fn wait_until_received(got: &std::sync::Arc<std::sync::Mutex<Vec<String>>>, ids: &[String]) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let received: std::collections::HashSet<String> =
            got.lock().unwrap().iter().cloned().collect();
        let missing = ids.iter().filter(|id| !received.contains(*id)).count();
        if missing == 0 {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{missing} of {} committed events never arrived",
            ids.len()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn http_post(port: u16, path: &str, body: &str) -> Option<(u16, String)> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    write!(
        s,
        "POST {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\ncontent-type: application/json\r\n\
         tenantid: {TENANT}\r\norganisationid: {ORG}\r\nuserid: {USER}\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    )
    .ok()?;
    let mut buf = String::new();
    s.read_to_string(&mut buf).ok()?;
    let status = buf.split_whitespace().nth(1)?.parse().ok()?;
    let body = buf
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    Some((status, body))
}

fn start_service(db: &TestDb, port: u16, hook: &str) -> std::process::Child {
    let child = base_command(db)
        .env("PORT", port.to_string())
        .env("EXTERNAL_SERVICE_WEBHOOK_URL", hook)
        .env("EXTERNAL_SERVICE_EVENTS", "*")
        .env("WEBHOOK_ALLOW_PRIVATE_NETWORKS", "true")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_ready(port);
    child
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_committed_event_is_delivered_after_a_sigkill() {
    let db = TestDb::fresh().await;
    // A slow receiver: deliveries are surely in flight when the process dies.
    let (got, hook) = id_receiver(1000).await;
    let port = free_port();
    let mut child = start_service(&db, port, &hook);
    // Twenty acknowledged writes, each committing a question.created event.
    let mut acknowledged = 0;
    for i in 0..20 {
        let body = format!(r#"{{"text":"Q{i}","type":"essay"}}"#);
        let (status, text) = tokio::task::spawn_blocking(move || {
            http_post(port, "/assessment/v1/questions", &body).unwrap()
        })
        .await
        .unwrap();
        assert_eq!(status, 201, "{text}");
        acknowledged += 1;
    }
    // Let a few deliveries go out, then kill the process mid-flight.
    tokio::time::sleep(Duration::from_millis(200)).await;
    signal(&mut child, "-KILL");
    let before = got.lock().unwrap().len();
    assert!(
        before < acknowledged,
        "the kill came while deliveries were still due ({before} sent)"
    );

    // Restart on the same database: everything committed arrives (at least once).
    let store = db.connect().await;
    let committed: Vec<String> =
        assessment_service::store::outbox::with_name(&store, "question.created")
            .await
            .unwrap()
            .into_iter()
            .map(|e| e.event_id.0.to_string())
            .collect();
    assert_eq!(committed.len(), acknowledged);
    let mut child = start_service(&db, port, &hook);
    wait_until_received(&got, &committed).await;
    signal(&mut child, "-TERM");
}

/// One call to the running binary over HTTP as `user`; the `result` of a 2xx, or why not.
pub(crate) async fn call(
    http: &reqwest::Client,
    port: u16,
    method: reqwest::Method,
    path: &str,
    user: &str,
    body: Option<serde_json::Value>,
) -> Result<serde_json::Value, String> {
    let mut req = http
        .request(
            method,
            format!("http://127.0.0.1:{port}/assessment/v1{path}"),
        )
        .header("tenantid", TENANT)
        .header("organisationid", ORG)
        .header("userid", user);
    if let Some(b) = body {
        req = req.json(&b);
    }
    let resp = req.send().await.map_err(|e| e.to_string())?;
    let status = resp.status();
    let v: serde_json::Value = resp.json().await.map_err(|e| e.to_string())?;
    if !status.is_success() {
        return Err(format!("HTTP {status}: {v}"));
    }
    Ok(v["result"].clone())
}

/// A published test of `n` one-mark MCQs: its id and, per question, (id, right, wrong option).
pub(crate) async fn published_mcq_test(
    http: &reqwest::Client,
    port: u16,
    n: usize,
) -> (String, Vec<(String, String, String)>) {
    use reqwest::Method;
    let test = call(
        http,
        port,
        Method::POST,
        "/tests",
        USER,
        Some(serde_json::json!({
        "title": "Crash", "type": "plain", "passingMarks": 1, "attempts": 1,
        "questionsShuffle": false, "answersShuffle": false})),
    )
    .await
    .unwrap()["testId"]
        .as_str()
        .unwrap()
        .to_string();
    let section = call(
        http,
        port,
        Method::POST,
        "/sections",
        USER,
        Some(serde_json::json!({"title": "All", "testId": test})),
    )
    .await
    .unwrap()["sectionId"]
        .as_str()
        .unwrap()
        .to_string();
    let mut questions = Vec::new();
    for i in 0..n {
        let q = call(http, port, Method::POST, "/questions", USER, Some(serde_json::json!({
            "text": format!("Q{i}"), "type": "mcq", "marks": 1, "testId": test, "sectionId": section,
            "options": [{"text": "right", "isCorrect": true}, {"text": "wrong"}]})))
        .await
        .unwrap();
        let option = |k: usize| {
            q["options"][k]["questionOptionId"]
                .as_str()
                .unwrap()
                .to_string()
        };
        questions.push((
            q["questionId"].as_str().unwrap().to_string(),
            option(0),
            option(1),
        ));
    }
    call(
        http,
        port,
        Method::POST,
        &format!("/tests/{test}/publish"),
        USER,
        None,
    )
    .await
    .unwrap();
    (test, questions)
}

/// The crash test of the learner flow: learners save answers concurrently, the process is
/// killed with SIGKILL in the middle, and after a restart on the same database every answer
/// whose save was acknowledged is in the learner's answer sheet and every committed event
/// reaches the webhook.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_acknowledged_answer_survives_a_sigkill() {
    use reqwest::Method;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{Arc, Mutex};
    const LEARNERS: usize = 8;
    const QUESTIONS: usize = 20;

    let db = TestDb::fresh().await;
    let (got, hook) = id_receiver(0).await;
    let port = free_port();
    let mut child = start_service(&db, port, &hook);
    let http = reqwest::Client::new();
    let (test, questions) = published_mcq_test(&http, port, QUESTIONS).await;
    let questions = Arc::new(questions);

    // Learners start, then save answers as fast as they can until the process dies. Every
    // acknowledged save is remembered: (attempt, question) -> option.
    type Saved = (String, String, String, String);
    let acknowledged: Arc<Mutex<Vec<Saved>>> = Arc::default();
    let saves = Arc::new(AtomicUsize::new(0));
    let mut attempts = Vec::new();
    for _ in 0..LEARNERS {
        let user = uuid::Uuid::new_v4().to_string();
        let attempt = call(
            &http,
            port,
            Method::POST,
            &format!("/attempts/start/{test}"),
            &user,
            None,
        )
        .await
        .unwrap()["attemptId"]
            .as_str()
            .unwrap()
            .to_string();
        attempts.push((user, attempt));
    }
    let mut learners = Vec::new();
    for (i, (user, attempt)) in attempts.iter().cloned().enumerate() {
        let (http, questions, acknowledged, saves) = (
            http.clone(),
            questions.clone(),
            acknowledged.clone(),
            saves.clone(),
        );
        learners.push(tokio::spawn(async move {
            for (n, (qid, right, wrong)) in questions.iter().enumerate() {
                let option = if (n + i) % 3 == 0 { wrong } else { right };
                let body = serde_json::json!({"answers": [
                    {"questionId": qid, "answer": {"selectedOptionIds": [option]}}]});
                match call(
                    &http,
                    port,
                    Method::POST,
                    &format!("/attempts/{attempt}/answers"),
                    &user,
                    Some(body),
                )
                .await
                {
                    Ok(_) => {
                        acknowledged.lock().unwrap().push((
                            user.clone(),
                            attempt.clone(),
                            qid.clone(),
                            option.clone(),
                        ));
                        saves.fetch_add(1, Ordering::SeqCst);
                    }
                    // The process died under this request: it was not acknowledged.
                    Err(_) => return,
                }
            }
        }));
    }
    // Kill in the middle: some answers saved, many still to come.
    let deadline = Instant::now() + Duration::from_secs(60);
    while saves.load(Ordering::SeqCst) < LEARNERS * QUESTIONS / 3 {
        assert!(Instant::now() < deadline, "the learners made no progress");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    signal(&mut child, "-KILL");
    for l in learners {
        l.await.unwrap();
    }
    let acknowledged = acknowledged.lock().unwrap().clone();
    assert!(
        acknowledged.len() < LEARNERS * QUESTIONS,
        "the kill came before every answer was saved ({} of {})",
        acknowledged.len(),
        LEARNERS * QUESTIONS
    );

    // Restart on the same database, submit every attempt and read its answer sheet.
    let mut child = start_service(&db, port, &hook);
    let http = reqwest::Client::new();
    for (user, attempt) in &attempts {
        call(
            &http,
            port,
            Method::POST,
            &format!("/attempts/{attempt}/submit"),
            user,
            None,
        )
        .await
        .unwrap();
        let sheet = call(
            &http,
            port,
            Method::GET,
            &format!("/attempts/{attempt}/answersheet"),
            user,
            None,
        )
        .await
        .unwrap();
        let saved: std::collections::HashMap<String, String> = sheet["answers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| {
                (
                    a["questionId"].as_str().unwrap().to_string(),
                    a["userAnswer"]["selectedOptions"][0]["optionId"]
                        .as_str()
                        .unwrap()
                        .to_string(),
                )
            })
            .collect();
        for (_, _, qid, option) in acknowledged.iter().filter(|a| &a.1 == attempt) {
            assert_eq!(
                saved.get(qid),
                Some(option),
                "an acknowledged answer of attempt {attempt} is missing from its answer sheet"
            );
        }
    }

    // Every committed event arrives, including those committed just before the kill.
    let store = db.connect().await;
    let mut committed = Vec::new();
    for name in [
        "test.created",
        "question.created",
        "test.published",
        "attempt.started",
        "answer.submitted",
        "attempt.submitted",
    ] {
        let events = assessment_service::store::outbox::with_name(&store, name)
            .await
            .unwrap();
        committed.extend(events.into_iter().map(|e| e.event_id.0.to_string()));
    }
    let answers = assessment_service::store::outbox::with_name(&store, "answer.submitted")
        .await
        .unwrap();
    assert!(
        answers.len() >= acknowledged.len(),
        "every acknowledged answer committed its event ({} events, {} answers)",
        answers.len(),
        acknowledged.len()
    );
    wait_until_received(&got, &committed).await;
    signal(&mut child, "-TERM");
}

/// `system.startup` is delivered after a start; `system.shutdown` is committed at a graceful
/// stop (and delivered by the next dispatcher that runs).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_and_graceful_stop_are_events() {
    let db = TestDb::fresh().await;
    let (got, hook) = id_receiver(0).await;
    let port = free_port();
    let mut child = start_service(&db, port, &hook);
    let store = db.connect().await;
    let deadline = Instant::now() + Duration::from_secs(30);
    let started = loop {
        let found = assessment_service::store::outbox::with_name(&store, "system.startup")
            .await
            .unwrap();
        if !found.is_empty() || Instant::now() > deadline {
            break found;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(started.len(), 1, "one system.startup per start");
    let data = &started[0].payload.0["data"];
    assert_eq!(data["service"], "assessment-service");
    assert!(data["instanceId"].is_string(), "{data}");
    assert!(
        started[0].tenant_id.is_none(),
        "system events belong to no tenant"
    );
    let id = started[0].event_id.0.to_string();
    let deadline = Instant::now() + Duration::from_secs(30);
    while !got.lock().unwrap().contains(&id) {
        assert!(
            Instant::now() < deadline,
            "system.startup was not delivered"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        signal(&mut child, "-TERM"),
        "a graceful stop exits with success"
    );
    let stopped = assessment_service::store::outbox::with_name(&store, "system.shutdown")
        .await
        .unwrap();
    assert_eq!(stopped.len(), 1, "a graceful stop records system.shutdown");
    assert_eq!(
        stopped[0].payload.0["data"]["instanceId"],
        data["instanceId"]
    );
    assert!(stopped[0].payload.0["data"]["uptimeSeconds"].is_u64());
    // Both bodies, as delivered, are what the AsyncAPI document says.
    let doc = crate::asyncapi::committed();
    for body in [&started[0].payload.0, &stopped[0].payload.0] {
        assert_eq!(
            crate::asyncapi::check_event(&doc, body),
            Vec::<String>::new()
        );
    }
}

/// A graceful stop lets the sends in flight finish and records them: nothing is left leased
/// to a process that is gone (which would be sent again after a restart).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_graceful_stop_records_the_sends_in_flight() {
    let db = TestDb::fresh().await;
    let (got, hook) = id_receiver(500).await;
    let port = free_port();
    let mut child = start_service(&db, port, &hook);
    for i in 0..5 {
        let body = format!(r#"{{"text":"Q{i}","type":"essay"}}"#);
        let (status, text) = tokio::task::spawn_blocking(move || {
            http_post(port, "/assessment/v1/questions", &body).unwrap()
        })
        .await
        .unwrap();
        assert_eq!(status, 201, "{text}");
    }
    // The receiver holds each request for 500 ms: stop while they are in flight.
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        got.lock().unwrap().len() < 5,
        "the stop came while sends were in flight"
    );
    assert!(
        signal(&mut child, "-TERM"),
        "a graceful stop exits with success"
    );
    let store = db.connect().await;
    for e in assessment_service::store::outbox::with_name(&store, "question.created")
        .await
        .unwrap()
    {
        let rows = assessment_service::store::deliveries::of_event(&store, e.event_id.0)
            .await
            .unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!(
            rows[0].status, "delivered",
            "a send in flight at the stop was recorded"
        );
    }
}

/// Starts the service with `env`, its stderr written to the file `log`; returns once it is
/// ready.
fn logging_to(db: &TestDb, log: &std::path::Path, env: &[(&str, &str)]) -> std::process::Child {
    let port = free_port();
    let mut cmd = base_command(db);
    cmd.env("PORT", port.to_string())
        .envs(env.iter().copied())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(log).unwrap());
    let child = cmd.spawn().unwrap();
    wait_ready(port);
    child
}

/// A failed try leaves a WARN line naming the subscription, the event and the error.
#[tokio::test]
async fn a_failed_delivery_leaves_a_warning_in_the_log() {
    let db = TestDb::fresh().await;
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("stderr");
    let hook = format!("http://127.0.0.1:{}/hook", free_port());
    let mut child = logging_to(
        &db,
        &log,
        &[
            ("EXTERNAL_SERVICE_WEBHOOK_URL", &hook),
            ("EXTERNAL_SERVICE_EVENTS", "*"),
            ("WEBHOOK_ALLOW_PRIVATE_NETWORKS", "true"),
            ("LOG_FORMAT", "json"),
        ],
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    let line = loop {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        if let Some(l) = text
            .lines()
            .find(|l| l.contains("delivery failed; will retry"))
        {
            break l.to_string();
        }
        assert!(
            Instant::now() < deadline,
            "no warning for the failed try:\n{text}"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    let _ = child.kill();
    let _ = child.wait();
    let v: serde_json::Value = serde_json::from_str(&line).unwrap();
    assert_eq!(v["level"], "WARN", "{line}");
    let fields = &v;
    assert_eq!(fields["subscription"], "external-service", "{line}");
    assert_eq!(fields["event"], "system.startup", "{line}");
    assert_eq!(fields["attempt"], 1, "{line}");
    assert!(
        fields["error"].as_str().is_some_and(|e| !e.is_empty()),
        "{line}"
    );
    assert_eq!(fields["error_class"], "connect", "{line}");
    assert!(
        fields["subscription_id"]
            .as_str()
            .is_some_and(|id| id.parse::<uuid::Uuid>().is_ok()),
        "{line}"
    );
    assert!(fields["event_id"].is_string(), "{line}");
}

/// Text logs written to a file carry no colour escape codes.
#[tokio::test]
async fn text_logs_to_a_file_have_no_colour_codes() {
    let db = TestDb::fresh().await;
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("stderr");
    let mut child = logging_to(&db, &log, &[("LOG_LEVEL", "info"), ("LOG_FORMAT", "text")]);
    let _ = child.kill();
    let _ = child.wait();
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(text.contains("listening"), "{text}");
    assert!(!text.contains('\u{1b}'), "escape codes in {text:?}");
}

/// Start-up against a PostgreSQL that refuses connections stops at once, naming the cause
/// (not after a pool's timeout, saying only that it timed out).
#[tokio::test]
async fn start_up_against_an_unreachable_database_fails_at_once_naming_the_cause() {
    let closed = free_port();
    let started = std::time::Instant::now();
    let out = Command::new(BIN)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env(
            "DATABASE_URL",
            format!("postgres://postgres@127.0.0.1:{closed}/x"),
        )
        .env("PORT", free_port().to_string())
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        started.elapsed() < std::time::Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("Connection refused"), "{stderr}");
    assert!(stderr.contains(&format!("127.0.0.1:{closed}")), "{stderr}");
}

/// A JSON access-log line carries the request's ids, route, status and latency at the top
/// level, and the trace id of the caller's `traceparent`.
#[tokio::test]
async fn json_access_logs_carry_request_id_route_status_latency_and_trace() {
    use std::io::{Read, Write};
    let db = TestDb::fresh().await;
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("stderr");
    let port = free_port();
    let mut child = base_command(&db)
        .env("PORT", port.to_string())
        .env("LOG_FORMAT", "json")
        .env("LOG_LEVEL", "info")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    wait_ready(port);
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    let test = "0b1c2d3e-4f5a-4b6c-8d7e-8f9a0b1c2d3e";
    write!(
        s,
        "GET /assessment/v1/tests/{test} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\
         tenantid: {TENANT}\r\norganisationid: {ORG}\r\nuserid: {USER}\r\n\
         x-request-id: log-test-1\r\n\
         traceparent: 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01\r\n\r\n"
    )
    .unwrap();
    let mut answer = String::new();
    let _ = s.read_to_string(&mut answer);
    assert!(answer.starts_with("HTTP/1.1 404"), "{answer}");
    let deadline = Instant::now() + Duration::from_secs(10);
    let line = loop {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        if let Some(l) = text.lines().find(|l| l.contains("log-test-1")) {
            break l.to_string();
        }
        assert!(Instant::now() < deadline, "no access log line:\n{text}");
        std::thread::sleep(Duration::from_millis(20));
    };
    let _ = child.kill();
    let _ = child.wait();
    let v: serde_json::Value = serde_json::from_str(&line).unwrap();
    assert_eq!(v["request_id"], "log-test-1", "{line}");
    assert_eq!(v["route"], "/assessment/v1/tests/{id}", "{line}");
    assert_eq!(v["status"], 404, "{line}");
    assert!(v["latency_ms"].is_number(), "{line}");
    assert_eq!(v["trace_id"], "4bf92f3577b34da6a3ce929d0e0e4736", "{line}");
    assert!(!line.contains('\u{1b}'), "no colour codes: {line}");
}
