//! Delivery to message brokers, against the real RabbitMQ, NATS JetStream and Redis of this
//! machine (`.ci/run` makes sure they answer). Every test uses its own queue, exchange, stream
//! and keys. The tests that stop a broker run one at a time (`.config/nextest.toml`, group
//! `brokers`), so no other broker test sees the outage.

use std::collections::{BTreeMap, HashSet};
use std::time::{Duration, Instant};

use assessment_service::app::Components;
use assessment_service::config::Config;
use assessment_service::events::dispatcher::{Claim, Dispatcher, Tally};
use assessment_service::events::plugins::Registry;
use assessment_service::store::{Id, Pools, Store};
use axum::http::Method;
use lapin::options::{BasicAckOptions, BasicGetOptions, QueueDeleteOptions};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use crate::harness::*;

pub const AMQP_URL: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";
pub const NATS_URL: &str = "nats://127.0.0.1:4222";
pub const REDIS_URL: &str = "redis://127.0.0.1:6379/0";
const LEARNER: &str = "5d6e7f8a-9b0c-4d1e-8f2a-3b4c5d6e7f80";

/// A name no other test uses.
pub fn unique(prefix: &str) -> String {
    format!("{prefix}{}", uuid::Uuid::new_v4().simple())
}

/// Configuration with the brokers on (the test profile registers none unless asked).
fn with_brokers(config: Config) -> Config {
    Config {
        node_env: "test".into(),
        external_plugins_in_test: true,
        ..config
    }
}

/// An app configured with `config`, its subscriptions registered, and a dispatcher for it.
async fn app_with(config: Config) -> (TestApp, Dispatcher) {
    let config = with_brokers(config);
    let app = TestApp::with_config(config.clone()).await;
    Components::from_config(&config)
        .unwrap()
        .sync_subscriptions(&app.state.store)
        .await
        .unwrap();
    let d = Dispatcher::with_targets(
        app.state.store.clone(),
        app.state.clock.clone(),
        true,
        Registry::default(),
        app.state.brokers.clone(),
    );
    (app, d)
}

/// Steps the dispatcher until no delivery is left to do; how the tries went.
async fn drain(app: &TestApp, d: &Dispatcher) -> Tally {
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut total = Tally::default();
    loop {
        d.step(Claim::Due).await.unwrap();
        let t = d.settle().await;
        total.delivered += t.delivered;
        total.retrying += t.retrying;
        total.dead += t.dead;
        if backlog(&app.state.store).await == 0 {
            return total;
        }
        assert!(Instant::now() < deadline, "deliveries still due: {total:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

pub async fn backlog(store: &Store) -> i64 {
    assessment_service::store::deliveries::backlog(store)
        .await
        .unwrap()
        .0
}

/// Every committed event: (id, name, ordering key), in commit order.
pub async fn committed(store: &Store) -> Vec<(String, String, Option<String>)> {
    let sql = r#"SELECT "eventId", "name", "orderingKey" FROM "events" ORDER BY "seq""#;
    let rows: Vec<(Id, String, Option<String>)> = match store.pools() {
        Pools::Sqlite { reader, .. } => sqlx::query_as(sql).fetch_all(reader).await.unwrap(),
        Pools::Postgres(pool) => sqlx::query_as(sql).fetch_all(pool).await.unwrap(),
    };
    rows.into_iter()
        .map(|(id, name, key)| (id.0.to_string(), name, key))
        .collect()
}

/// A message as a consumer saw it: the message id, the headers that matter, the body.
#[derive(Debug, Clone)]
pub struct Seen {
    pub id: String,
    pub event_name: String,
    pub tenant: String,
    pub body: Value,
    /// The W3C `traceparent` beside the body (empty when none).
    pub traceparent: String,
}

/// A connection to the test RabbitMQ on this runtime.
pub async fn amqp_connect() -> lapin::Result<lapin::Connection> {
    let props = lapin::ConnectionProperties::default()
        .with_executor(tokio_executor_trait::Tokio::current())
        .with_reactor(tokio_reactor_trait::Tokio::current());
    lapin::Connection::connect(AMQP_URL, props).await
}

/// Takes every message off an AMQP queue (acknowledging each), in queue order.
pub async fn drain_queue(queue: &str) -> Vec<Seen> {
    let conn = amqp_connect().await.unwrap();
    let ch = conn.create_channel().await.unwrap();
    let mut out = Vec::new();
    while let Some(m) = ch
        .basic_get(queue, BasicGetOptions::default())
        .await
        .unwrap()
    {
        let p = &m.delivery.properties;
        let header = |k: &str| {
            p.headers()
                .as_ref()
                .and_then(|h| h.inner().get(k).cloned())
                .and_then(|v| match v {
                    lapin::types::AMQPValue::LongString(s) => Some(s.to_string()),
                    _ => None,
                })
                .unwrap_or_default()
        };
        assert_eq!(p.delivery_mode(), &Some(2), "persistent");
        assert_eq!(
            p.content_type().as_ref().map(|c| c.as_str()),
            Some("application/json")
        );
        out.push(Seen {
            id: p
                .message_id()
                .as_ref()
                .map(|s| s.as_str().to_string())
                .unwrap(),
            event_name: header("eventName"),
            tenant: header("tenantId"),
            body: serde_json::from_slice(&m.delivery.data).unwrap(),
            traceparent: header("traceparent"),
        });
        m.delivery.ack(BasicAckOptions::default()).await.unwrap();
    }
    out
}

pub async fn delete_queue(queue: &str, exchange: Option<&str>) {
    let conn = amqp_connect().await.unwrap();
    let ch = conn.create_channel().await.unwrap();
    let _ = ch.queue_delete(queue, QueueDeleteOptions::default()).await;
    if let Some(x) = exchange {
        let _ = ch.exchange_delete(x, Default::default()).await;
    }
}

/// Every message of a JetStream stream, in stream order.
pub async fn read_stream(stream: &str) -> Vec<Seen> {
    let client = async_nats::connect(NATS_URL).await.unwrap();
    let js = async_nats::jetstream::new(client);
    let mut s = js.get_stream(stream).await.unwrap();
    let last = s.info().await.unwrap().state.last_sequence;
    let mut out = Vec::new();
    for seq in 1..=last {
        let Ok(m) = s.get_raw_message(seq).await else {
            continue;
        };
        let header = |k: &str| {
            m.headers
                .get(k)
                .map(|v| v.as_str().to_string())
                .unwrap_or_default()
        };
        out.push(Seen {
            id: m
                .headers
                .get(async_nats::header::NATS_MESSAGE_ID)
                .map(|v| v.as_str().to_string())
                .unwrap_or_default(),
            event_name: header("eventName"),
            tenant: header("tenantId"),
            body: serde_json::from_slice(&m.payload).unwrap(),
            traceparent: header("traceparent"),
        });
    }
    out
}

pub async fn delete_stream(stream: &str) {
    let client = async_nats::connect(NATS_URL).await.unwrap();
    let _ = async_nats::jetstream::new(client)
        .delete_stream(stream)
        .await;
}

/// Every entry of a Redis stream, in order.
pub async fn read_redis(key: &str) -> Vec<Seen> {
    let client = redis::Client::open(REDIS_URL).unwrap();
    let mut c = client.get_multiplexed_async_connection().await.unwrap();
    let entries: Vec<(String, Vec<(String, String)>)> = redis::cmd("XRANGE")
        .arg(key)
        .arg("-")
        .arg("+")
        .query_async(&mut c)
        .await
        .unwrap();
    entries
        .into_iter()
        .map(|(_, fields)| {
            let f: BTreeMap<String, String> = fields.into_iter().collect();
            Seen {
                id: f["id"].clone(),
                event_name: f["name"].clone(),
                tenant: f["tenantId"].clone(),
                body: serde_json::from_str(&f["payload"]).unwrap(),
                traceparent: f.get("traceparent").cloned().unwrap_or_default(),
            }
        })
        .collect()
}

pub async fn delete_key(key: &str) {
    let client = redis::Client::open(REDIS_URL).unwrap();
    let mut c = client.get_multiplexed_async_connection().await.unwrap();
    let _: Result<i64, _> = redis::cmd("DEL").arg(key).query_async(&mut c).await;
}

/// The `traceparent` the seed flow's start is sent with.
const CALLER_TRACE: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

/// The seed's flow: a test published, an attempt started, two answers saved, submitted.
/// Returns the attempt id.
async fn seed_flow(app: &TestApp) -> String {
    let (test, qs) = published_test(
        app,
        json!({}),
        vec![
            json!({"text": "2+2", "type": "mcq", "options": [{"text": "4", "isCorrect": true}, {"text": "5"}]}),
            json!({"text": "3+3", "type": "mcq", "options": [{"text": "6", "isCorrect": true}, {"text": "7"}]}),
        ],
    )
    .await;
    // The start continues a caller's trace; its event carries it to every broker.
    let mut traced = as_user(LEARNER);
    traced.push(("traceparent", CALLER_TRACE));
    let started = app
        .call_with(
            Method::POST,
            &format!("{ATTEMPTS}/start/{test}"),
            None,
            &traced,
        )
        .await
        .expect_status(201);
    let attempt = started["result"]["attemptId"].as_str().unwrap().to_string();
    for q in &qs {
        let option = &q["options"][0]["questionOptionId"];
        answer(
            app,
            &attempt,
            LEARNER,
            json!([{"questionId": q["questionId"], "answer": {"selectedOptionIds": [option]}}]),
            201,
        )
        .await;
    }
    submit(app, &attempt, LEARNER, 201).await;
    attempt
}

/// What every consumer must have seen: each committed event (of the events it takes) exactly
/// as the webhook body, ids and headers right, and per attempt in commit order.
fn check_seen(
    broker: &str,
    seen: &[Seen],
    committed: &[(String, String, Option<String>)],
    events: Option<&[&str]>,
) {
    let wanted: Vec<&(String, String, Option<String>)> = committed
        .iter()
        .filter(|(_, name, _)| events.is_none_or(|e| e.contains(&name.as_str())))
        .collect();
    let ids: HashSet<&str> = seen.iter().map(|s| s.id.as_str()).collect();
    assert_eq!(ids.len(), seen.len(), "{broker}: a message arrived twice");
    let want: HashSet<&str> = wanted.iter().map(|e| e.0.as_str()).collect();
    assert_eq!(ids, want, "{broker}: not every committed event arrived");
    for s in seen {
        let (id, name, _) = wanted.iter().find(|e| e.0 == s.id).unwrap();
        assert_eq!(
            s.body["id"],
            id.as_str(),
            "{broker}: the body's id is the message id"
        );
        assert_eq!(s.body["name"], name.as_str());
        assert_eq!(s.event_name, *name, "{broker}: the event name header");
        let tenant = s.body["context"]["tenantId"].as_str().unwrap_or_default();
        assert_eq!(s.tenant, tenant, "{broker}: the tenant header");
        for key in ["name", "context", "data", "timestamp", "id"] {
            assert!(
                s.body.get(key).is_some(),
                "{broker}: the envelope has {key}"
            );
        }
    }
    // Per ordering key (one attempt's events), the consumer sees commit order.
    let position = |id: &str| seen.iter().position(|s| s.id == id).unwrap();
    let mut by_key: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for (id, _, key) in &wanted {
        if let Some(k) = key {
            by_key.entry(k.as_str()).or_default().push(position(id));
        }
    }
    assert!(!by_key.is_empty(), "{broker}: the flow has ordered events");
    for (key, positions) in by_key {
        assert!(
            positions.windows(2).all(|w| w[0] < w[1]),
            "{broker}: events of {key} out of order: {positions:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn brokers_the_seed_flow_reaches_a_queue_a_jetstream_and_a_redis_stream() {
    let (queue, exchange) = (unique("it-q-"), unique("it-x-"));
    let (topic_root, redis_key) = (unique("it"), unique("it-redis-"));
    let stream_name = topic_root.to_uppercase();
    let dir = tempfile::tempdir().unwrap();
    let plugins = dir.path().join("plugins.toml");
    std::fs::write(
        &plugins,
        format!(
            r#"
[[plugins]]
id = "analytics-redis"
name = "Analytics stream"
type = "external"
[plugins.externalService]
type = "event-stream"
events = ["attempt.started", "answer.submitted", "attempt.submitted"]
[plugins.externalService.stream]
url = "{REDIS_URL}"
topic = "{redis_key}"
"#
        ),
    )
    .unwrap();
    let (app, d) = app_with(Config {
        message_queue_url: Some(AMQP_URL.into()),
        message_queue_name: Some(queue.clone()),
        message_queue_exchange: Some(exchange.clone()),
        message_queue_routing_key: Some("{tenantId}.{name}".into()),
        event_stream_url: Some(NATS_URL.into()),
        event_stream_topic: Some(format!("{topic_root}.{{tenantId}}.{{name}}")),
        plugins_file: Some(plugins),
        ..Config::default()
    })
    .await;
    seed_flow(&app).await;
    let tally = drain(&app, &d).await;
    assert_eq!((tally.retrying, tally.dead), (0, 0), "{tally:?}");
    let committed = committed(&app.state.store).await;
    for name in [
        "test.published",
        "attempt.started",
        "answer.submitted",
        "attempt.submitted",
    ] {
        assert!(committed.iter().any(|e| e.1 == name), "{name} committed");
    }

    let from_queue = drain_queue(&queue).await;
    check_seen("rabbitmq", &from_queue, &committed, None);
    let from_stream = read_stream(&stream_name).await;
    check_seen("jetstream", &from_stream, &committed, None);
    let from_redis = read_redis(&redis_key).await;
    check_seen(
        "redis",
        &from_redis,
        &committed,
        Some(&["attempt.started", "answer.submitted", "attempt.submitted"]),
    );
    // Each broker's message carries the trace of the request that committed its event: the
    // start's continues the caller's, the others' are traces of their own.
    for (broker, seen) in [
        ("rabbitmq", &from_queue),
        ("jetstream", &from_stream),
        ("redis", &from_redis),
    ] {
        for m in seen.iter() {
            let trace: Vec<&str> = m.traceparent.split('-').collect();
            assert_eq!(
                trace.len(),
                4,
                "{broker} {}: {:?}",
                m.event_name,
                m.traceparent
            );
            let caller = trace[1] == "4bf92f3577b34da6a3ce929d0e0e4736";
            assert_eq!(
                caller,
                m.event_name == "attempt.started",
                "{broker} {}",
                m.event_name
            );
        }
    }

    // `/plugins` shows the three with their connection state.
    let plugins = app
        .call(Method::GET, "/assessment/v1/plugins", None)
        .await
        .json();
    let active = plugins["result"]["activePlugins"].as_array().unwrap();
    let mut brokers: Vec<(String, String)> = active
        .iter()
        .filter_map(|p| {
            let s = &p["externalService"];
            Some((
                s["broker"].as_str()?.to_string(),
                s["connection"]["state"].as_str()?.to_string(),
            ))
        })
        .collect();
    brokers.sort();
    assert_eq!(
        brokers,
        [
            ("nats-jetstream".into(), "connected".into()),
            ("rabbitmq".into(), "connected".into()),
            ("redis-streams".into(), "connected".into())
        ]
    );
    assert!(
        !plugins.to_string().contains("guest:guest"),
        "no credentials are shown"
    );

    delete_queue(&queue, Some(&exchange)).await;
    delete_stream(&stream_name).await;
    delete_key(&redis_key).await;
}

#[tokio::test]
async fn brokers_an_unreachable_broker_defers_without_using_up_retries() {
    // Nothing listens on port 1: every try is deferred, none counted, none dead.
    let (app, d) = app_with(Config {
        message_queue_url: Some("amqp://guest:guest@127.0.0.1:1/%2f".into()),
        ..Config::default()
    })
    .await;
    create_test(&app, json!({"title": "T", "type": "plain"})).await;
    for _ in 0..3 {
        d.step(Claim::Due).await.unwrap();
        let t = d.settle().await;
        assert_eq!(t.dead, 0);
        tokio::time::sleep(Duration::from_millis(600)).await;
    }
    let e = &committed(&app.state.store).await[0];
    let rows =
        assessment_service::store::deliveries::of_event(&app.state.store, e.0.parse().unwrap())
            .await
            .unwrap();
    let row = serde_json::to_value(&rows[0]).unwrap();
    assert_eq!(row["status"], "pending", "{row}");
    assert_eq!(row["attemptCount"], 0, "a deferral is not a try: {row}");
    assert!(
        row["lastError"]
            .as_str()
            .unwrap()
            .contains("RabbitMQ unreachable"),
        "{row}"
    );
    let plugins = app
        .call(Method::GET, "/assessment/v1/plugins", None)
        .await
        .json();
    let connection = &plugins["result"]["activePlugins"][0]["externalService"]["connection"];
    assert_eq!(connection["state"], "reconnecting", "{plugins}");
    assert!(connection["lastError"].is_string(), "{plugins}");
}

/// A refused message (no queue bound for its routing key) is a failed try: with no retries
/// left it is dead-lettered, and the operator's log and replay (the command line) show it
/// and send it again once the queue is bound.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn brokers_an_unroutable_message_is_dead_lettered_and_replayed() {
    let (queue, exchange) = (unique("it-q-"), unique("it-x-"));
    let dir = tempfile::tempdir().unwrap();
    let plugins = dir.path().join("plugins.json");
    std::fs::write(
        &plugins,
        json!([{"id": "school-queue", "name": "school-queue", "type": "external",
            "externalService": {"type": "message-queue", "retries": 0, "events": ["test.created"],
                "queue": {"url": AMQP_URL, "name": queue, "exchange": exchange}}}])
        .to_string(),
    )
    .unwrap();
    let (app, d) = app_with(Config {
        plugins_file: Some(plugins),
        ..Config::default()
    })
    .await;
    // The first delivery declares the queue and exchange and binds them (`{name}` -> `#`).
    create_test(&app, json!({"title": "T", "type": "plain"})).await;
    assert_eq!(drain(&app, &d).await.delivered, 1);
    // Someone unbinds the queue: the next message routes nowhere and the broker returns it.
    let ch = amqp_connect()
        .await
        .unwrap()
        .create_channel()
        .await
        .unwrap();
    ch.queue_unbind(&queue, &exchange, "#", Default::default())
        .await
        .unwrap();
    create_test(&app, json!({"title": "U", "type": "plain"})).await;
    d.step(Claim::Due).await.unwrap();
    let t = d.settle().await;
    assert_eq!((t.delivered, t.dead), (0, 1), "{t:?}");

    // The operator's log shows the dead letter and why.
    let operator = |args: &[&str]| {
        let out = crate::process::base_command(&app.db)
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    let log = operator(&[
        "deliveries",
        "--status",
        "dead",
        "--subscription",
        "school-queue",
        "--tries",
    ]);
    let rows: Vec<Value> = log
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(rows.len(), 1, "{log}");
    assert_eq!(rows[0]["attemptCount"], 1);
    assert!(
        rows[0]["tries"][0]["error"]
            .as_str()
            .unwrap()
            .contains("unroutable"),
        "{log}"
    );
    // Bound again, the replayed dead letter is delivered.
    ch.queue_bind(
        &queue,
        &exchange,
        "#",
        Default::default(),
        Default::default(),
    )
    .await
    .unwrap();
    let replayed = operator(&["replay", "--status", "dead"]);
    assert_eq!(replayed.trim(), r#"{"replayed":1}"#);
    assert_eq!(drain(&app, &d).await.delivered, 1);
    assert_eq!(drain_queue(&queue).await.len(), 2);
    delete_queue(&queue, Some(&exchange)).await;
}

/// Runs a shell command, for stopping and starting brokers.
fn sh(cmd: &str) -> bool {
    std::process::Command::new("sh")
        .arg("-c")
        .arg(cmd)
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

/// Writes `n` events over `over`, while the dispatcher runs in the background.
async fn write_during(app: &TestApp, n: usize, over: Duration) {
    for i in 0..n {
        create_test(app, json!({"title": format!("T{i}"), "type": "plain"})).await;
        tokio::time::sleep(over / n as u32).await;
    }
}

/// Waits until the dispatcher has nothing left to do.
async fn until_drained(app: &TestApp, within: Duration) {
    let deadline = Instant::now() + within;
    while backlog(&app.state.store).await > 0 {
        assert!(
            Instant::now() < deadline,
            "deliveries still due after {within:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn dead(store: &Store) -> i64 {
    count(
        store,
        r#"SELECT COUNT(*) FROM "deliveries" WHERE "status" = 'dead'"#,
    )
    .await
}

/// Tries recorded as deferred because the broker could not be reached.
async fn deferred(store: &Store) -> i64 {
    let sql = r#"SELECT COUNT(*) FROM "deliveryAttempts" WHERE "error" LIKE '%unreachable%'"#;
    count(store, sql).await
}

async fn count(store: &Store, sql: &str) -> i64 {
    match store.pools() {
        Pools::Sqlite { reader, .. } => sqlx::query_scalar(sql).fetch_one(reader).await.unwrap(),
        Pools::Postgres(pool) => sqlx::query_scalar(sql).fetch_one(pool).await.unwrap(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn brokers_outage_rabbitmq_stopped_for_ten_seconds_loses_nothing() {
    let queue = unique("it-q-");
    let (app, d) = app_with(Config {
        message_queue_url: Some(AMQP_URL.into()),
        message_queue_name: Some(queue.clone()),
        ..Config::default()
    })
    .await;
    let token = CancellationToken::new();
    let running = tokio::spawn(d.clone().run(token.clone()));
    write_during(&app, 3, Duration::from_millis(300)).await;
    until_drained(&app, Duration::from_secs(20)).await;

    assert!(sh("rabbitmqctl -q stop_app"), "rabbitmqctl stop_app");
    let outage = Instant::now();
    write_during(&app, 20, Duration::from_secs(10)).await;
    let restarted = sh("rabbitmqctl -q start_app");
    let down_for = outage.elapsed();
    assert!(restarted, "rabbitmqctl start_app");
    until_drained(&app, Duration::from_secs(60)).await;
    token.cancel();
    running.await.unwrap();

    assert!(down_for >= Duration::from_secs(10));
    assert_eq!(dead(&app.state.store).await, 0, "nothing dead-lettered");
    assert!(
        deferred(&app.state.store).await > 0,
        "the outage was seen: deliveries were deferred"
    );
    let committed = committed(&app.state.store).await;
    let seen = drain_queue(&queue).await;
    let ids: HashSet<&str> = seen.iter().map(|s| s.id.as_str()).collect();
    let want: HashSet<&str> = committed.iter().map(|e| e.0.as_str()).collect();
    assert_eq!(ids, want, "every committed event is in the queue");
    delete_queue(&queue, None).await;
}

/// The command line the running NATS server was started with (to start it again the same
/// way after stopping it).
fn nats_command() -> Option<(u32, Vec<String>)> {
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        let args: Vec<String> = cmdline
            .split(|b| *b == 0)
            .filter(|a| !a.is_empty())
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect();
        if args.first().is_some_and(|a| a.ends_with("nats-server")) {
            return Some((pid, args));
        }
    }
    None
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn brokers_outage_nats_stopped_for_ten_seconds_loses_nothing() {
    let topic_root = unique("it");
    let stream_name = topic_root.to_uppercase();
    let (app, d) = app_with(Config {
        event_stream_url: Some(NATS_URL.into()),
        event_stream_topic: Some(format!("{topic_root}.{{name}}")),
        ..Config::default()
    })
    .await;
    let token = CancellationToken::new();
    let running = tokio::spawn(d.clone().run(token.clone()));
    write_during(&app, 3, Duration::from_millis(300)).await;
    until_drained(&app, Duration::from_secs(20)).await;

    let (pid, args) = nats_command().expect("a running nats-server");
    assert!(sh(&format!("kill {pid}")), "stopping nats-server");
    let outage = Instant::now();
    write_during(&app, 20, Duration::from_secs(10)).await;
    let start = format!(
        "start-stop-daemon --start --oknodo --background --exec {} -- {}",
        args[0],
        args[1..].join(" ")
    );
    // The old process may take a moment to exit and free the port.
    let mut restarted = false;
    for _ in 0..50 {
        if nats_command().is_none() {
            restarted = sh(&start);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let down_for = outage.elapsed();
    assert!(restarted, "starting nats-server again: {start}");
    until_drained(&app, Duration::from_secs(60)).await;
    token.cancel();
    running.await.unwrap();

    assert!(down_for >= Duration::from_secs(10));
    assert_eq!(dead(&app.state.store).await, 0, "nothing dead-lettered");
    assert!(
        deferred(&app.state.store).await > 0,
        "the outage was seen: deliveries were deferred"
    );
    let committed = committed(&app.state.store).await;
    let seen = read_stream(&stream_name).await;
    let ids: Vec<&str> = seen.iter().map(|s| s.id.as_str()).collect();
    let distinct: HashSet<&str> = ids.iter().copied().collect();
    assert_eq!(
        distinct.len(),
        ids.len(),
        "each event once in the stream: {ids:?}"
    );
    let want: HashSet<&str> = committed.iter().map(|e| e.0.as_str()).collect();
    assert_eq!(distinct, want, "every committed event is in the stream");
    delete_stream(&stream_name).await;
}

#[tokio::test]
async fn brokers_a_plugins_file_stream_takes_its_events_and_partition() {
    let key = unique("it-redis-");
    let dir = tempfile::tempdir().unwrap();
    let plugins = dir.path().join("plugins.json");
    std::fs::write(
        &plugins,
        json!([{"id": "s", "name": "S", "type": "external", "externalService": {
            "type": "event-stream",
            "stream": {"url": REDIS_URL, "topic": key, "partition": 2, "events": ["test.created"]}}}])
        .to_string(),
    )
    .unwrap();
    let (app, d) = app_with(Config {
        plugins_file: Some(plugins),
        ..Config::default()
    })
    .await;
    create_test(&app, json!({"title": "T", "type": "plain"})).await;
    let t = drain(&app, &d).await;
    assert_eq!(t.delivered, 1, "only test.created: {t:?}");
    assert!(read_redis(&key).await.is_empty());
    let seen = read_redis(&format!("{key}.2")).await;
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].event_name, "test.created");
    delete_key(&format!("{key}.2")).await;
}

/// The binary, publishing every event to a queue and a JetStream stream.
fn start_with_brokers(
    db: &TestDb,
    port: u16,
    queue: &str,
    topic_root: &str,
) -> std::process::Child {
    use crate::process::{base_command, wait_ready};
    let child = base_command(db)
        .env("PORT", port.to_string())
        .env("MESSAGE_QUEUE_URL", AMQP_URL)
        .env("MESSAGE_QUEUE_NAME", queue)
        .env("EVENT_STREAM_URL", NATS_URL)
        .env(
            "EVENT_STREAM_TOPIC",
            format!("{topic_root}.{{tenantId}}.{{name}}"),
        )
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    wait_ready(port);
    child
}

/// Waits until every committed event is fanned out and every delivery done.
async fn until_settled(store: &Store, within: Duration) {
    let deadline = Instant::now() + within;
    loop {
        let unfanned = count(
            store,
            r#"SELECT COUNT(*) FROM "events" WHERE "fannedOutAt" IS NULL"#,
        )
        .await;
        if unfanned == 0 && backlog(store).await == 0 {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "events still to deliver after {within:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// SIGKILL during a burst of answers, then a restart: every committed event is in the
/// JetStream stream exactly once (its `Nats-Msg-Id` drops a re-send) and in the queue at
/// least once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn brokers_every_committed_event_reaches_both_brokers_after_a_sigkill() {
    use crate::process::{call, free_port, published_mcq_test, signal};
    use reqwest::Method;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    const LEARNERS: usize = 8;
    const QUESTIONS: usize = 20;

    let db = TestDb::fresh().await;
    let (queue, topic_root) = (unique("it-q-"), unique("it"));
    let stream = topic_root.to_uppercase();
    let port = free_port();
    let mut child = start_with_brokers(&db, port, &queue, &topic_root);
    let http = reqwest::Client::new();
    let (test, questions) = published_mcq_test(&http, port, QUESTIONS).await;
    let questions = Arc::new(questions);
    let saves = Arc::new(AtomicUsize::new(0));
    let mut learners = Vec::new();
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
        let (http, questions, saves) = (http.clone(), questions.clone(), saves.clone());
        learners.push(tokio::spawn(async move {
            for (qid, right, _) in questions.iter() {
                let body = json!({"answers": [
                    {"questionId": qid, "answer": {"selectedOptionIds": [right]}}]});
                let path = format!("/attempts/{attempt}/answers");
                if call(&http, port, Method::POST, &path, &user, Some(body))
                    .await
                    .is_err()
                {
                    // The process died under this request.
                    return;
                }
                saves.fetch_add(1, Ordering::SeqCst);
            }
        }));
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    while saves.load(Ordering::SeqCst) < LEARNERS * QUESTIONS / 3 {
        assert!(Instant::now() < deadline, "the learners made no progress");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    signal(&mut child, "-KILL");
    for l in learners {
        l.await.unwrap();
    }
    let saved = saves.load(Ordering::SeqCst);
    assert!(
        saved < LEARNERS * QUESTIONS,
        "the kill came mid-burst ({saved} saves)"
    );

    let mut child = start_with_brokers(&db, port, &queue, &topic_root);
    let store = db.connect().await;
    until_settled(&store, Duration::from_secs(60)).await;
    let committed = committed(&store).await;
    let want: HashSet<&str> = committed.iter().map(|e| e.0.as_str()).collect();
    let answers = committed
        .iter()
        .filter(|e| e.1 == "answer.submitted")
        .count();
    assert!(
        answers >= saved,
        "{answers} answer events for {saved} acknowledged saves"
    );

    let in_stream = read_stream(&stream).await;
    let ids: Vec<&str> = in_stream.iter().map(|s| s.id.as_str()).collect();
    let distinct: HashSet<&str> = ids.iter().copied().collect();
    assert_eq!(
        distinct.len(),
        ids.len(),
        "the stream holds each event once"
    );
    assert_eq!(distinct, want, "the stream holds every committed event");
    let in_queue = drain_queue(&queue).await;
    let distinct: HashSet<&str> = in_queue.iter().map(|s| s.id.as_str()).collect();
    assert_eq!(
        distinct, want,
        "the queue holds every committed event (at least once)"
    );

    signal(&mut child, "-TERM");
    delete_queue(&queue, None).await;
    delete_stream(&stream).await;
}
