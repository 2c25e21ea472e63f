//! Load generator for the assessment service (talks HTTP to a running service).
//!
//! - `learners`: creates a published test of 20 four-option MCQs, then runs N learners over C
//!   concurrent keep-alive connections through the whole flow (status, start, hierarchy,
//!   questions, 20 answers, submit, answer sheet). Learner i answers `i % 21` questions right;
//!   every score and result is checked. Prints throughput and latency per route.
//! - `events`: starts a webhook receiver on 127.0.0.1, subscribes it, drives K events and
//!   reports deliveries per second and commit-to-receipt latency, checking every signature.
//! - `broker`: the same through a message broker the service is configured to publish to
//!   (`MESSAGE_QUEUE_*` or `EVENT_STREAM_*`): a consumer on the queue, subject or stream
//!   receives the events, checking each message id against the event id.
//! - `surge`: N learners start one published test at the same moment over C connections, then
//!   each saves an answer and submits (see `surge.rs`).

mod surge;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use base64::Engine;
use clap::{Parser, Subcommand};
use hmac::Mac;
use serde_json::{Value, json};

#[derive(Parser)]
#[command(name = "assessment-bench")]
struct Cli {
    /// Base URL of the running service.
    #[arg(long, default_value = "http://127.0.0.1:8080", global = true)]
    url: String,
    /// Route prefix of the service.
    #[arg(long, default_value = "assessment/v1", global = true)]
    prefix: String,
    #[command(subcommand)]
    mode: Mode,
}

#[derive(Subcommand)]
enum Mode {
    /// The learner flow.
    Learners {
        /// Learners.
        #[arg(short = 'n', long, default_value_t = 500)]
        learners: usize,
        /// Concurrent connections.
        #[arg(short = 'c', long, default_value_t = 50)]
        concurrency: usize,
        /// Misbehaving webhook receivers to subscribe to every event of the learners' tenant
        /// first, comma-separated: `hang` (never answers), `error` (500), `throttle` (429 with
        /// `Retry-After: 1`). The service needs WEBHOOK_ALLOW_PRIVATE_NETWORKS=true.
        #[arg(long, value_delimiter = ',')]
        receivers: Vec<String>,
    },
    /// An exam's first minute: N learners start at once over C connections, save and submit.
    Surge {
        /// Learners.
        #[arg(short = 'n', long, default_value_t = 1000)]
        learners: usize,
        /// Concurrent connections.
        #[arg(short = 'c', long, default_value_t = 200)]
        concurrency: usize,
        /// The learners only start (no answer, no submission).
        #[arg(long)]
        starts_only: bool,
    },
    /// Event delivery to a local receiver (the service needs WEBHOOK_ALLOW_PRIVATE_NETWORKS=true).
    Events {
        #[command(flatten)]
        drive: Drive,
        /// Also print, per second of the run, how many events committed and their latency
        /// (p50, p99, worst).
        #[arg(long)]
        timeline: bool,
    },
    /// The writes of `events` alone, with no subscriber: the reference for what delivery
    /// adds (run both under `bench/learners.sh -a` to compare PostgreSQL's CPU).
    Writes {
        #[command(flatten)]
        drive: Drive,
    },
    /// A noisy tenant: questions with the largest body the limits allow (100 options, 50
    /// tags, close to `BODY_LIMIT_BYTES`), sent as fast as C connections can, under another
    /// tenant, while `/health/live` is asked every 20 ms. Reports the statuses (`0`: the
    /// connection was closed under the body, as a refusal before reading it does; any 5xx fails
    /// the run) and the health check's latency.
    Noisy {
        /// Concurrent connections.
        #[arg(short = 'c', long, default_value_t = 4)]
        concurrency: usize,
        /// Seconds to run.
        #[arg(long, default_value_t = 20.0)]
        seconds: f64,
        /// Bytes each body may take (the service's `BODY_LIMIT_BYTES`).
        #[arg(long, default_value_t = 1024 * 1024)]
        body_limit: usize,
    },
    /// Event delivery through a broker the service publishes `question.created` to.
    Broker {
        /// `amqp` (consumes the queue), `nats` (subscribes to `<target>.>`) or `redis`
        /// (reads the stream key `<target>`).
        #[arg(long)]
        kind: String,
        /// The broker's URL.
        #[arg(long)]
        broker_url: String,
        /// The queue, the subject root or the stream key.
        #[arg(long)]
        target: String,
        #[command(flatten)]
        drive: Drive,
    },
}

const TENANT: &str = "0f3d1c9e-6a1b-4b2c-9d3e-1f2a3b4c5d6e";
const ORG: &str = "1a2b3c4d-5e6f-4a1b-8c2d-3e4f5a6b7c8d";
const AUTHOR: &str = "2b3c4d5e-6f7a-4b2c-9d3e-4f5a6b7c8d9e";

type Timings = Arc<Mutex<BTreeMap<&'static str, Vec<f64>>>>;

/// How events are driven: how many, by how many writers, at what rate, after what warm-up.
#[derive(clap::Args, Debug, Clone, Copy)]
struct Drive {
    /// Events to drive.
    #[arg(short = 'k', long, default_value_t = 2000)]
    events: usize,
    /// Concurrent writers.
    #[arg(short = 'c', long, default_value_t = 20)]
    concurrency: usize,
    /// Events per second to drive (the writers are paced to it); 0 = as fast as they can.
    #[arg(short = 'r', long, default_value_t = 0.0)]
    rate: f64,
    /// Events driven first, the same way, and not measured (cold connections and caches).
    #[arg(long, default_value_t = 0)]
    warmup: usize,
}

struct Client {
    http: reqwest::Client,
    base: String,
    timings: Timings,
}

impl Client {
    /// A request to the service as `user` of the bench tenant.
    fn request(&self, method: reqwest::Method, path: &str, user: &str) -> reqwest::RequestBuilder {
        self.http
            .request(method, format!("{}{path}", self.base))
            .header("tenantid", TENANT)
            .header("organisationid", ORG)
            .header("userid", user)
    }

    async fn call(
        &self,
        route: &'static str,
        method: reqwest::Method,
        path: &str,
        user: &str,
        body: Option<Value>,
    ) -> anyhow::Result<Value> {
        let mut req = self.request(method, path, user);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let started = Instant::now();
        let resp = req
            .send()
            .await
            .with_context(|| format!("{route}: request failed"))?;
        let status = resp.status();
        let v: Value = resp
            .json()
            .await
            .with_context(|| format!("{route}: body is not JSON"))?;
        let ms = started.elapsed().as_secs_f64() * 1000.0;
        self.timings
            .lock()
            .unwrap()
            .entry(route)
            .or_default()
            .push(ms);
        ensure!(
            status.is_success(),
            "{route}: HTTP {status}: {}",
            v["params"]["errmsg"]
        );
        Ok(v["result"].clone())
    }
}

fn pct(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn report(timings: &BTreeMap<&'static str, Vec<f64>>, elapsed: Duration, extra: Value) -> Value {
    let secs = elapsed.as_secs_f64();
    let mut routes = serde_json::Map::new();
    let total: usize = timings.values().map(Vec::len).sum();
    println!(
        "{:<22} {:>8} {:>9} {:>9} {:>9} {:>9}",
        "route", "count", "req/s", "p50 ms", "p95 ms", "p99 ms"
    );
    for (route, v) in timings {
        let mut s = v.clone();
        s.sort_by(f64::total_cmp);
        let (p50, p95, p99) = (pct(&s, 0.5), pct(&s, 0.95), pct(&s, 0.99));
        println!(
            "{route:<22} {:>8} {:>9.0} {p50:>9.2} {p95:>9.2} {p99:>9.2}",
            s.len(),
            s.len() as f64 / secs
        );
        routes.insert(
            (*route).into(),
            json!({"count": s.len(), "p50_ms": p50, "p95_ms": p95, "p99_ms": p99}),
        );
    }
    let out = json!({"elapsed_s": secs, "requests": total, "requests_per_s": total as f64 / secs, "routes": routes, "extra": extra});
    println!("{out}");
    out
}

async fn setup_test(
    c: &Client,
    prefix: &str,
) -> anyhow::Result<(String, Vec<(String, String, String)>)> {
    let test = c
        .call("setup", reqwest::Method::POST, &format!("/{prefix}/tests"), AUTHOR,
            Some(json!({"title": format!("Bench {}", uuid::Uuid::new_v4()), "type": "plain", "passingMarks": 10,
                        "questionsShuffle": false, "answersShuffle": false, "attempts": 1})))
        .await?["testId"].as_str().context("testId")?.to_string();
    let section = c
        .call(
            "setup",
            reqwest::Method::POST,
            &format!("/{prefix}/sections"),
            AUTHOR,
            Some(json!({"title": "All", "testId": test})),
        )
        .await?["sectionId"]
        .as_str()
        .context("sectionId")?
        .to_string();
    let mut questions = Vec::new();
    for i in 0..20 {
        let q = c
            .call("setup", reqwest::Method::POST, &format!("/{prefix}/questions"), AUTHOR, Some(json!({
                "text": format!("Question {i}"), "type": "mcq", "marks": 1, "testId": test, "sectionId": section,
                "options": [{"text": "right", "isCorrect": true}, {"text": "wrong 1"}, {"text": "wrong 2"}, {"text": "wrong 3"}]})))
            .await?;
        let qid = q["questionId"].as_str().context("questionId")?.to_string();
        let right = q["options"][0]["questionOptionId"]
            .as_str()
            .context("option")?
            .to_string();
        let wrong = q["options"][1]["questionOptionId"]
            .as_str()
            .context("option")?
            .to_string();
        questions.push((qid, right, wrong));
    }
    c.call(
        "setup",
        reqwest::Method::POST,
        &format!("/{prefix}/tests/{test}/publish"),
        AUTHOR,
        None,
    )
    .await?;
    Ok((test, questions))
}

async fn learner(
    c: Arc<Client>,
    prefix: String,
    test: String,
    questions: Arc<Vec<(String, String, String)>>,
    i: usize,
) -> anyhow::Result<()> {
    use reqwest::Method;
    let user = uuid::Uuid::new_v4().to_string();
    let right = i % 21;
    c.call(
        "status",
        Method::GET,
        &format!("/{prefix}/tests/{test}/users/{user}/status"),
        &user,
        None,
    )
    .await?;
    let attempt = c
        .call(
            "start",
            Method::POST,
            &format!("/{prefix}/attempts/start/{test}"),
            &user,
            None,
        )
        .await?["attemptId"]
        .as_str()
        .context("attemptId")?
        .to_string();
    c.call(
        "hierarchy",
        Method::GET,
        &format!("/{prefix}/tests/{test}/hierarchy"),
        &user,
        None,
    )
    .await?;
    let paper = c
        .call(
            "questions",
            Method::GET,
            &format!("/{prefix}/attempts/{attempt}/questions/{user}"),
            &user,
            None,
        )
        .await?;
    ensure!(
        paper.as_array().map(Vec::len) == Some(20),
        "the paper has 20 questions"
    );
    for (n, (qid, good, bad)) in questions.iter().enumerate() {
        let option = if n < right { good } else { bad };
        c.call("answer", Method::POST, &format!("/{prefix}/attempts/{attempt}/answers"), &user,
            Some(json!({"answers": [{"questionId": qid, "answer": {"selectedOptionIds": [option]}}]}))).await?;
    }
    let submitted = c
        .call(
            "submit",
            Method::POST,
            &format!("/{prefix}/attempts/{attempt}/submit"),
            &user,
            None,
        )
        .await?;
    let expected_result = if right >= 10 { "P" } else { "F" };
    if submitted["score"].as_f64() != Some(right as f64) || submitted["result"] != expected_result {
        bail!("learner {i}: expected score {right} and result {expected_result}, got {submitted}");
    }
    c.call(
        "answersheet",
        Method::GET,
        &format!("/{prefix}/attempts/{attempt}/answersheet"),
        &user,
        None,
    )
    .await?;
    Ok(())
}

/// Starts a receiver on 127.0.0.1 that misbehaves as `kind` says; returns its URL.
async fn misbehaving_receiver(kind: &str) -> anyhow::Result<String> {
    use axum::http::StatusCode;
    use axum::response::IntoResponse;
    let kind = kind.to_string();
    let answer = move || {
        let kind = kind.clone();
        async move {
            match kind.as_str() {
                "hang" => {
                    tokio::time::sleep(Duration::from_secs(3600)).await;
                    StatusCode::OK.into_response()
                }
                "throttle" => (
                    StatusCode::TOO_MANY_REQUESTS,
                    [("retry-after", "1")],
                    "slow down",
                )
                    .into_response(),
                _ => (StatusCode::INTERNAL_SERVER_ERROR, "broken").into_response(),
            }
        }
    };
    let app = axum::Router::new().route("/hook", axum::routing::post(answer));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}/hook", listener.local_addr()?);
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ok(url)
}

async fn run_learners(
    cli: &Cli,
    n: usize,
    concurrency: usize,
    receivers: &[String],
) -> anyhow::Result<()> {
    let client = client(cli, concurrency)?;
    for kind in receivers {
        ensure!(
            matches!(kind.as_str(), "hang" | "error" | "throttle"),
            "unknown receiver {kind:?}: hang, error or throttle"
        );
        let url = misbehaving_receiver(kind).await?;
        client
            .call(
                "setup",
                reqwest::Method::POST,
                &format!("/{}/webhooks", cli.prefix),
                AUTHOR,
                Some(json!({"name": format!("misbehaving {kind}"), "url": url, "events": ["*"]})),
            )
            .await?;
    }
    let (test, questions) = setup_test(&client, &cli.prefix).await?;
    client.timings.lock().unwrap().clear();
    let questions = Arc::new(questions);
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let started = Instant::now();
    let mut workers = Vec::new();
    for _ in 0..concurrency {
        let (c, p, t, q, next) = (
            client.clone(),
            cli.prefix.clone(),
            test.clone(),
            questions.clone(),
            next.clone(),
        );
        workers.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if i >= n {
                    return Ok::<(), anyhow::Error>(());
                }
                learner(c.clone(), p.clone(), t.clone(), q.clone(), i).await?;
            }
        }));
    }
    for w in workers {
        w.await??;
    }
    let elapsed = started.elapsed();
    let timings = client.timings.lock().unwrap().clone();
    let answers = timings.get("answer").map_or(0, Vec::len);
    report(
        &timings,
        elapsed,
        json!({
            "learners": n, "concurrency": concurrency, "receivers": receivers,
            "learners_per_s": n as f64 / elapsed.as_secs_f64(),
            "answers_per_s": answers as f64 / elapsed.as_secs_f64(),
            "all_scores_checked": true,
        }),
    );
    Ok(())
}

/// Creates `k` questions (one `question.created` event each) over `concurrency` writers,
/// paced to `rate` per second when it is positive. Returns each question's commit time (the
/// response's arrival), when driving started and how long it took.
async fn drive(
    client: &Arc<Client>,
    prefix: &str,
    k: usize,
    concurrency: usize,
    rate: f64,
) -> anyhow::Result<(HashMap<String, Instant>, Instant, Duration)> {
    let committed: Arc<Mutex<HashMap<String, Instant>>> = Arc::new(Mutex::new(HashMap::new()));
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let started = Instant::now();
    let mut workers = Vec::new();
    for _ in 0..concurrency {
        let (c, p, next, committed) = (
            client.clone(),
            prefix.to_string(),
            next.clone(),
            committed.clone(),
        );
        workers.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if i >= k {
                    return Ok::<(), anyhow::Error>(());
                }
                if rate > 0.0 {
                    // Event i is due at i / rate seconds; a writer behind schedule sends at once.
                    let due = started + Duration::from_secs_f64(i as f64 / rate);
                    tokio::time::sleep_until(due.into()).await;
                }
                let q = c
                    .call(
                        "create",
                        reqwest::Method::POST,
                        &format!("/{p}/questions"),
                        AUTHOR,
                        Some(json!({"text": format!("event {i}"), "type": "essay"})),
                    )
                    .await?;
                committed.lock().unwrap().insert(
                    q["questionId"].as_str().unwrap_or_default().to_string(),
                    Instant::now(),
                );
            }
        }));
    }
    for w in workers {
        w.await??;
    }
    let written = started.elapsed();
    let committed = committed.lock().unwrap().clone();
    Ok((committed, started, written))
}

async fn run_events(
    cli: &Cli,
    k: usize,
    concurrency: usize,
    rate: f64,
    warmup: usize,
    timeline: bool,
) -> anyhow::Result<()> {
    let seen: Received = Arc::new(Mutex::new(HashMap::new()));
    let secret: Arc<Mutex<Option<Vec<u8>>>> = Arc::new(Mutex::new(None));
    let (sink, key) = (seen.clone(), secret.clone());
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(
            move |headers: axum::http::HeaderMap, raw: axum::body::Bytes| {
                let (sink, key) = (sink.clone(), key.clone());
                async move {
                    let now = Instant::now();
                    let body: Value = serde_json::from_slice(&raw).unwrap_or(Value::Null);
                    let valid = key.lock().unwrap().as_ref().is_some_and(|k| {
                        let h = |n: &str| {
                            headers
                                .get(n)
                                .and_then(|v| v.to_str().ok())
                                .unwrap_or_default()
                                .to_string()
                        };
                        let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(k).unwrap();
                        mac.update(
                            format!("{}.{}.", h("webhook-id"), h("webhook-timestamp")).as_bytes(),
                        );
                        mac.update(&raw);
                        let expected = format!(
                            "v1,{}",
                            base64::engine::general_purpose::STANDARD
                                .encode(mac.finalize().into_bytes())
                        );
                        h("webhook-signature") == expected
                    });
                    if let Some(id) = body["data"]["questionId"].as_str() {
                        sink.lock()
                            .unwrap()
                            .entry(id.to_string())
                            .or_insert((now, valid));
                    }
                    "ok"
                }
            },
        ),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let hook = format!("http://{}/hook", listener.local_addr()?);
    tokio::spawn(async move { axum::serve(listener, app).await });

    let client = client(cli, concurrency)?;
    let sub = client
        .call(
            "setup",
            reqwest::Method::POST,
            &format!("/{}/webhooks", cli.prefix),
            AUTHOR,
            Some(json!({"name": "bench", "url": hook, "events": ["question.created"]})),
        )
        .await
        .context("subscribing (the service needs WEBHOOK_ALLOW_PRIVATE_NETWORKS=true)")?;
    let s = sub["secret"].as_str().context("secret")?;
    *secret.lock().unwrap() =
        Some(base64::engine::general_purpose::STANDARD.decode(s.trim_start_matches("whsec_"))?);
    let sub_id = sub["subscriptionId"]
        .as_str()
        .context("subscriptionId")?
        .to_string();

    let (started, written, elapsed, lat, committed) =
        measure(&client, &cli.prefix, &seen, (k, concurrency, rate, warmup)).await?;
    let seen = seen.lock().unwrap().clone();
    if timeline {
        // Per second of the run (by commit time): events, and their p50, p99 and worst
        // commit-to-receipt latency.
        let mut buckets: BTreeMap<u64, Vec<f64>> = BTreeMap::new();
        for (id, t) in &committed {
            if let Some((r, _)) = seen.get(id) {
                let b = t.saturating_duration_since(started).as_secs();
                buckets
                    .entry(b)
                    .or_default()
                    .push(r.saturating_duration_since(*t).as_secs_f64() * 1000.0);
            }
        }
        for (b, mut v) in buckets {
            v.sort_by(f64::total_cmp);
            eprintln!(
                "{b:>4} s  n={:>5}  p50={:.1}  p99={:.1}  max={:.1}",
                v.len(),
                pct(&v, 0.5),
                pct(&v, 0.99),
                v.last().copied().unwrap_or(0.0)
            );
        }
    }
    let timings = client.timings.lock().unwrap().clone();
    report(
        &timings,
        elapsed,
        json!({
            "events": k,
            "target_rate": rate,
            "events_per_s": k as f64 / written.as_secs_f64(),
            "deliveries_per_s": k as f64 / elapsed.as_secs_f64(),
            "commit_to_receipt_ms": {"p50": pct(&lat, 0.5), "p95": pct(&lat, 0.95), "p99": pct(&lat, 0.99)},
            "signatures_valid": true,
        }),
    );
    client
        .call(
            "setup",
            reqwest::Method::DELETE,
            &format!("/{}/webhooks/{sub_id}", cli.prefix),
            AUTHOR,
            None,
        )
        .await?;
    Ok(())
}

/// Question id -> when the consumer received its event, and whether the message id was the
/// event id.
type Received = Arc<Mutex<HashMap<String, (Instant, bool)>>>;

fn note(seen: &Received, message_id: &str, body: &[u8]) {
    let now = Instant::now();
    let v: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    if let Some(q) = v["data"]["questionId"].as_str() {
        let valid = v["id"].as_str() == Some(message_id);
        seen.lock()
            .unwrap()
            .entry(q.to_string())
            .or_insert((now, valid));
    }
}

/// Starts a consumer of `target` on the broker; what it receives lands in `seen`.
async fn consume(kind: &str, url: &str, target: &str, seen: Received) -> anyhow::Result<()> {
    use futures::StreamExt;
    match kind {
        "amqp" => {
            let props = lapin::ConnectionProperties::default()
                .with_executor(tokio_executor_trait::Tokio::current())
                .with_reactor(tokio_reactor_trait::Tokio::current());
            let conn = lapin::Connection::connect(url, props).await?;
            let ch = conn.create_channel().await?;
            ch.basic_qos(1000, Default::default()).await?;
            // Declared as the service declares it (durable), whoever comes first.
            ch.queue_declare(
                target,
                lapin::options::QueueDeclareOptions {
                    durable: true,
                    ..Default::default()
                },
                Default::default(),
            )
            .await?;
            let mut consumer = ch
                .basic_consume(
                    target,
                    "bench",
                    lapin::options::BasicConsumeOptions {
                        no_ack: true,
                        ..Default::default()
                    },
                    Default::default(),
                )
                .await
                .context("consuming the queue")?;
            tokio::spawn(async move {
                let _conn = conn;
                while let Some(Ok(d)) = consumer.next().await {
                    let id = d
                        .properties
                        .message_id()
                        .as_ref()
                        .map(|s| s.as_str().to_string())
                        .unwrap_or_default();
                    note(&seen, &id, &d.data);
                }
            });
        }
        "nats" => {
            let client = async_nats::connect(url).await?;
            let mut sub = client.subscribe(format!("{target}.>")).await?;
            tokio::spawn(async move {
                let _client = client;
                while let Some(m) = sub.next().await {
                    let id = m
                        .headers
                        .as_ref()
                        .and_then(|h| h.get(async_nats::header::NATS_MESSAGE_ID))
                        .map(|v| v.as_str().to_string())
                        .unwrap_or_default();
                    note(&seen, &id, &m.payload);
                }
            });
        }
        "redis" => {
            let client = redis::Client::open(url)?;
            let mut c = client.get_multiplexed_async_connection().await?;
            let key = target.to_string();
            tokio::spawn(async move {
                let mut last = "$".to_string();
                loop {
                    let read: redis::RedisResult<redis::streams::StreamReadReply> =
                        redis::cmd("XREAD")
                            .arg("BLOCK")
                            .arg(1000)
                            .arg("STREAMS")
                            .arg(&key)
                            .arg(&last)
                            .query_async(&mut c)
                            .await;
                    let Ok(reply) = read else { continue };
                    for k in reply.keys {
                        for e in k.ids {
                            let field = |f: &str| match e.map.get(f) {
                                Some(redis::Value::BulkString(b)) => b.clone(),
                                _ => Vec::new(),
                            };
                            let id = String::from_utf8(field("id")).unwrap_or_default();
                            note(&seen, &id, &field("payload"));
                            last = e.id.clone();
                        }
                    }
                }
            });
        }
        other => bail!("--kind {other:?}: amqp, nats or redis"),
    }
    Ok(())
}

/// Drives `k` events (after `warmup`) and waits until each has arrived in `seen`; returns
/// when driving started, how long writing took, how long until the last arrived, and the
/// commit-to-receipt latencies (ms, sorted) with the commit times.
async fn measure(
    client: &Arc<Client>,
    prefix: &str,
    seen: &Received,
    (k, concurrency, rate, warmup): (usize, usize, f64, usize),
) -> anyhow::Result<(
    Instant,
    Duration,
    Duration,
    Vec<f64>,
    HashMap<String, Instant>,
)> {
    let arrived = |ids: &HashMap<String, Instant>| {
        let seen = seen.lock().unwrap();
        ids.keys().filter(|id| seen.contains_key(*id)).count()
    };
    if warmup > 0 {
        // Connections, caches and pools warm up unmeasured; the run starts once all arrived.
        let (warm, _, _) = drive(client, prefix, warmup, concurrency, rate).await?;
        let deadline = Instant::now() + Duration::from_secs(300);
        while arrived(&warm) < warmup {
            ensure!(
                Instant::now() < deadline,
                "the warm-up events did not all arrive"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
    let (committed, started, written) = drive(client, prefix, k, concurrency, rate).await?;
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        let n = arrived(&committed);
        if n == k {
            break;
        }
        ensure!(Instant::now() < deadline, "only {n} of {k} events arrived");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let elapsed = started.elapsed();
    let seen = seen.lock().unwrap().clone();
    ensure!(
        seen.values().all(|(_, valid)| *valid),
        "every message is valid (signature, or message id = event id)"
    );
    let mut lat: Vec<f64> = committed
        .iter()
        .filter_map(|(id, t)| {
            seen.get(id)
                .map(|(r, _)| r.saturating_duration_since(*t).as_secs_f64() * 1000.0)
        })
        .collect();
    lat.sort_by(f64::total_cmp);
    Ok((started, written, elapsed, lat, committed))
}

fn client(cli: &Cli, concurrency: usize) -> anyhow::Result<Arc<Client>> {
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(concurrency)
        .build()?;
    Ok(Arc::new(Client {
        http,
        base: cli.url.trim_end_matches('/').to_string(),
        timings: Arc::new(Mutex::new(BTreeMap::new())),
    }))
}

async fn run_broker(
    cli: &Cli,
    (kind, url, target): (&str, &str, &str),
    shape: (usize, usize, f64, usize),
) -> anyhow::Result<()> {
    let seen: Received = Arc::new(Mutex::new(HashMap::new()));
    consume(kind, url, target, seen.clone()).await?;
    let client = client(cli, shape.1)?;
    let (_, written, elapsed, lat, _) = measure(&client, &cli.prefix, &seen, shape).await?;
    let k = shape.0;
    let timings = client.timings.lock().unwrap().clone();
    report(
        &timings,
        elapsed,
        json!({
            "broker": kind,
            "events": k,
            "target_rate": shape.2,
            "events_per_s": k as f64 / written.as_secs_f64(),
            "deliveries_per_s": k as f64 / elapsed.as_secs_f64(),
            "commit_to_receipt_ms": {"p50": pct(&lat, 0.5), "p95": pct(&lat, 0.95), "p99": pct(&lat, 0.99)},
            "message_ids_valid": true,
        }),
    );
    clean_up(kind, url, target).await
}

/// Removes what the run left on the broker (the service declared or created it).
async fn clean_up(kind: &str, url: &str, target: &str) -> anyhow::Result<()> {
    match kind {
        "amqp" => {
            let props = lapin::ConnectionProperties::default()
                .with_executor(tokio_executor_trait::Tokio::current())
                .with_reactor(tokio_reactor_trait::Tokio::current());
            let conn = lapin::Connection::connect(url, props).await?;
            let ch = conn.create_channel().await?;
            ch.queue_delete(target, Default::default()).await?;
        }
        "nats" => {
            let client = async_nats::connect(url).await?;
            // The service names the stream after the topic's fixed tokens.
            let stream = target.to_uppercase().replace('.', "_");
            async_nats::jetstream::new(client)
                .delete_stream(&stream)
                .await?;
        }
        _ => {
            let client = redis::Client::open(url)?;
            let mut c = client.get_multiplexed_async_connection().await?;
            let _: i64 = redis::cmd("DEL").arg(target).query_async(&mut c).await?;
        }
    }
    Ok(())
}

/// The noisy tenant of `noisy` (the learners run under `TENANT`).
const NOISY_TENANT: &str = "3c4d5e6f-7a8b-4c3d-ae4f-5a6b7c8d9e0f";

/// A question body of just under `limit` bytes: 100 options and 50 tags, the most the limits
/// allow, the options' text filling the rest.
fn largest_question(limit: usize) -> Value {
    let tags: Vec<String> = (0..50)
        .map(|i| format!("{i:02}{}", "t".repeat(98)))
        .collect();
    let skeleton = |text_len: usize| {
        let options: Vec<Value> = (0..100)
            .map(
                |i| json!({"text": format!("{i:03}{}", "o".repeat(text_len)), "isCorrect": i == 0}),
            )
            .collect();
        json!({"text": "A noisy question", "type": "mcq", "marks": 1, "tags": tags, "options": options})
    };
    let fixed = skeleton(0).to_string().len();
    skeleton(limit.saturating_sub(fixed + 1024) / 100)
}

async fn run_noisy(
    cli: &Cli,
    concurrency: usize,
    seconds: f64,
    body_limit: usize,
) -> anyhow::Result<()> {
    let body = Arc::new(largest_question(body_limit).to_string());
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(concurrency + 1)
        .build()?;
    let base = cli.url.trim_end_matches('/').to_string();
    let deadline = Instant::now() + Duration::from_secs_f64(seconds);
    let statuses: Arc<Mutex<BTreeMap<u16, usize>>> = Arc::default();
    let mut workers = Vec::new();
    for _ in 0..concurrency {
        let (http, body, statuses) = (http.clone(), body.clone(), statuses.clone());
        let url = format!("{base}/{}/questions", cli.prefix);
        workers.push(tokio::spawn(async move {
            while Instant::now() < deadline {
                let resp = http
                    .post(&url)
                    .header("tenantid", NOISY_TENANT)
                    .header("organisationid", ORG)
                    .header("userid", AUTHOR)
                    .header("content-type", "application/json")
                    .body(body.as_bytes().to_vec())
                    .send()
                    .await;
                let status = match resp {
                    Ok(r) => {
                        let s = r.status().as_u16();
                        let _ = r.bytes().await;
                        if s == 429 {
                            // A client that honours Retry-After would wait; a noisy one does
                            // not, but yields the connection for a moment.
                            tokio::time::sleep(Duration::from_millis(5)).await;
                        }
                        s
                    }
                    Err(_) => 0,
                };
                *statuses.lock().unwrap().entry(status).or_default() += 1;
            }
        }));
    }
    let health = format!("{base}/health/live");
    // Its own client: a connection the noisy workers' refusals closed is never reused for it.
    let prober = reqwest::Client::new();
    let mut probes = Vec::new();
    let mut failed_probes = 0;
    while Instant::now() < deadline {
        let started = Instant::now();
        match prober.get(&health).send().await {
            Ok(r) if r.status().is_success() => {
                let _ = r.bytes().await;
                probes.push(started.elapsed().as_secs_f64() * 1000.0);
            }
            _ => failed_probes += 1,
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    for w in workers {
        w.await?;
    }
    probes.sort_by(f64::total_cmp);
    let statuses = statuses.lock().unwrap().clone();
    let sent: usize = statuses.values().sum();
    let out = json!({
        "body_bytes": body.len(),
        "requests": sent,
        "requests_per_s": sent as f64 / seconds,
        "statuses": statuses.iter().map(|(k, v)| (k.to_string(), json!(v))).collect::<serde_json::Map<_, _>>(),
        "health_live_ms": {"count": probes.len(), "p50": pct(&probes, 0.5), "p99": pct(&probes, 0.99),
                           "max": probes.last().copied().unwrap_or(0.0), "failed": failed_probes},
    });
    println!("{out}");
    // 0: the connection closed under a body still being sent, which is how a server refuses
    // a request (429, 413) before reading its body; any 5xx fails the run.
    ensure!(
        statuses.keys().all(|s| *s < 500),
        "the noisy tenant got a server error: {statuses:?}"
    );
    ensure!(
        statuses.get(&201).is_some_and(|n| *n > 0),
        "no noisy question was accepted: {statuses:?}"
    );
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.mode {
        Mode::Learners {
            learners,
            concurrency,
            ref receivers,
        } => run_learners(&cli, learners, concurrency, receivers).await,
        Mode::Surge {
            learners,
            concurrency,
            starts_only,
        } => {
            let client = client(&cli, concurrency)?;
            surge::run(client, &cli.prefix, learners, concurrency, starts_only).await
        }
        Mode::Noisy {
            concurrency,
            seconds,
            body_limit,
        } => run_noisy(&cli, concurrency, seconds, body_limit).await,
        Mode::Events { drive, timeline } => {
            run_events(
                &cli,
                drive.events,
                drive.concurrency,
                drive.rate,
                drive.warmup,
                timeline,
            )
            .await
        }
        Mode::Writes { drive: shape } => {
            let Drive {
                events,
                concurrency,
                rate,
                warmup,
            } = shape;
            let client = client(&cli, concurrency)?;
            if warmup > 0 {
                drive(&client, &cli.prefix, warmup, concurrency, rate).await?;
            }
            let (_, _, written) = drive(&client, &cli.prefix, events, concurrency, rate).await?;
            let timings = client.timings.lock().unwrap().clone();
            report(
                &timings,
                written,
                json!({
                    "events": events,
                    "target_rate": rate,
                    "events_per_s": events as f64 / written.as_secs_f64(),
                }),
            );
            Ok(())
        }
        Mode::Broker {
            ref kind,
            ref broker_url,
            ref target,
            drive,
        } => {
            run_broker(
                &cli,
                (kind, broker_url, target),
                (drive.events, drive.concurrency, drive.rate, drive.warmup),
            )
            .await
        }
    }
}
