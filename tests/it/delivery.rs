//! Event delivery to a real HTTP receiver on 127.0.0.1: payloads, signatures, retries with an
//! injected clock, dead letters, 410, Retry-After, ordering, slow receivers.
//!
//! The tests drive the production path: [`Dispatcher::step`] (the loop's own step: claim, one
//! task per send, batched recording), then [`Dispatcher::settle`] to wait for the sends.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use assessment_service::clock::ManualClock;
use assessment_service::domain::event::{EventContext, EventName, NewEvent};
use assessment_service::domain::ids::{OrganisationId, TenantId, UserId};
use assessment_service::events::dispatcher::{Claim, Dispatcher};
use assessment_service::events::subscriptions::{self, EnvSubscription};
use assessment_service::store::deliveries;
use assessment_service::store::{Store, Ts};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use base64::Engine;
use hmac::Mac;
use serde_json::{Value, json};

use crate::harness::*;

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

#[derive(Clone, Debug)]
pub(crate) struct Received {
    headers: HeaderMap,
    pub(crate) body: Value,
    raw: Bytes,
    at: Instant,
}

/// One answer of the receiver: status, Retry-After, delay in milliseconds.
pub(crate) type Step = (u16, Option<&'static str>, u64);

/// What the receiver answers, request by request (the last one repeats).
#[derive(Clone)]
pub(crate) struct Receiver {
    pub(crate) got: Arc<Mutex<Vec<Received>>>,
    script: Arc<Mutex<Vec<Step>>>,
}

async fn receive(State(r): State<Receiver>, headers: HeaderMap, raw: Bytes) -> impl IntoResponse {
    let (status, retry_after, delay_ms) = {
        let mut s = r.script.lock().unwrap();
        if s.len() > 1 { s.remove(0) } else { s[0] }
    };
    if delay_ms > 0 {
        tokio::time::sleep(Duration::from_millis(delay_ms)).await;
    }
    r.got.lock().unwrap().push(Received {
        body: serde_json::from_slice(&raw).unwrap_or(Value::Null),
        headers,
        raw,
        at: Instant::now(),
    });
    let mut resp = (StatusCode::from_u16(status).unwrap(), "ok").into_response();
    if let Some(ra) = retry_after {
        resp.headers_mut()
            .insert("retry-after", ra.parse().unwrap());
    }
    resp
}

/// Starts a receiver on 127.0.0.1 with the given script; returns it and its URL.
pub(crate) async fn receiver(script: Vec<Step>) -> (Receiver, String) {
    let r = Receiver {
        got: Arc::new(Mutex::new(Vec::new())),
        script: Arc::new(Mutex::new(script)),
    };
    let app = axum::Router::new()
        .route("/hook", axum::routing::post(receive))
        .with_state(r.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (r, url)
}

async fn subscribe(store: &Store, url: &str, events: &[&str]) {
    subscriptions::sync(
        store,
        &[EnvSubscription {
            name: "external-service",
            url: url::Url::parse(url).unwrap(),
            api_key: Some("secret-key".into()),
            events: events.iter().map(|s| s.to_string()).collect(),
            secret: Some(SECRET.into()),
            timeout_ms: subscriptions::DEFAULT_TIMEOUT_MS as i32,
            max_retries: subscriptions::DEFAULT_RETRIES as i32,
        }],
        &[],
    )
    .await
    .unwrap();
}

async fn append(store: &Store, name: EventName, key: Option<&str>) -> NewEvent {
    let mut e = NewEvent::new(
        uuid::Uuid::now_v7(),
        name,
        EventContext {
            tenant_id: TenantId::parse(TENANT),
            organisation_id: OrganisationId::parse(ORG),
            user_id: UserId::parse(USER),
        },
        json!({"attemptId": "a", "testId": "t"}),
        chrono::Utc::now(),
    );
    e.ordering_key = key.map(str::to_string);
    let mut tx = store.begin().await.unwrap();
    assessment_service::events::append(&mut tx, &e)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    e
}

fn verify(r: &Received) -> bool {
    let key = base64::engine::general_purpose::STANDARD
        .decode(SECRET.trim_start_matches("whsec_"))
        .unwrap();
    let id = r.headers["webhook-id"].to_str().unwrap();
    let ts = r.headers["webhook-timestamp"].to_str().unwrap();
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(&key).unwrap();
    mac.update(format!("{id}.{ts}.").as_bytes());
    mac.update(&r.raw);
    let expected = format!(
        "v1,{}",
        base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
    );
    r.headers["webhook-signature"].to_str().unwrap() == expected
}

/// Subscribes `analytics-service` (at `first`) and `lms-integration` (at `second`) to every event.
async fn two_subscribers(store: &Store, first: &str, second: &str) {
    let sub = |name, url: &str| EnvSubscription {
        name,
        url: url::Url::parse(url).unwrap(),
        api_key: None,
        events: vec!["*".into()],
        secret: None,
        timeout_ms: subscriptions::DEFAULT_TIMEOUT_MS as i32,
        max_retries: subscriptions::DEFAULT_RETRIES as i32,
    };
    subscriptions::sync(
        store,
        &[
            sub("analytics-service", first),
            sub("lms-integration", second),
        ],
        &[],
    )
    .await
    .unwrap();
}

fn later(now: Ts, secs: i64) -> Ts {
    Ts::new(now.0 + chrono::Duration::seconds(secs))
}

/// Moves `clock` to `secs` seconds after `start`.
fn move_to(clock: &ManualClock, start: Ts, secs: i64) {
    clock.set(later(start, secs).0);
}

/// What one pass of a dispatcher did, once its sends were recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Pass {
    claimed: usize,
    delivered: usize,
    retrying: usize,
    dead: usize,
}

/// One step of `d` (claiming whatever is due at its clock's time), then waits until the sends
/// it started have finished and their tries are recorded.
async fn pass(d: &Dispatcher) -> Pass {
    let step = d.step(Claim::Due).await.unwrap();
    let tally = d.settle().await;
    Pass {
        claimed: step.sending(),
        delivered: tally.delivered,
        retrying: tally.retrying,
        dead: tally.dead,
    }
}

#[tokio::test]
async fn seed_events_arrive_with_the_seed_payload_and_a_valid_signature() {
    let app = TestApp::spawn().await;
    let (rx, url) = receiver(vec![(200, None, 0)]).await;
    subscribe(
        &app.state.store,
        &url,
        &[
            "attempt.started",
            "attempt.submitted",
            "answer.submitted",
            "test.published",
        ],
    )
    .await;
    // A real journey: publish a test, take it.
    let test = create_test(&app, json!({"title": "Seed", "type": "plain", "questionsShuffle": false, "answersShuffle": false})).await;
    let section = create_section(&app, &test, "S").await;
    let q = crate::questions::create(
        &app,
        json!({"text": "Q", "type": "mcq", "testId": test, "sectionId": section,
        "options": [{"text": "a", "isCorrect": true}, {"text": "b"}]}),
    )
    .await;
    app.call(
        http::Method::POST,
        &format!("/assessment/v1/tests/{test}/publish"),
        None,
    )
    .await;
    let r = app
        .call(
            http::Method::POST,
            &format!("/assessment/v1/attempts/start/{test}"),
            None,
        )
        .await;
    let attempt = r.json()["result"]["attemptId"]
        .as_str()
        .unwrap()
        .to_string();
    app.call(http::Method::POST, &format!("/assessment/v1/attempts/{attempt}/answers"),
        Some(json!({"answers": [{"questionId": q["questionId"], "answer": {"selectedOptionIds": [q["options"][0]["questionOptionId"]]}}]}))).await;
    app.call(
        http::Method::POST,
        &format!("/assessment/v1/attempts/{attempt}/submit"),
        None,
    )
    .await;

    let d = Dispatcher::new(app.state.store.clone(), app.state.clock.clone(), true);
    for _ in 0..5 {
        pass(&d).await;
    }
    let got = rx.got.lock().unwrap().clone();
    let names: Vec<&str> = got
        .iter()
        .map(|r| r.body["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        vec![
            "test.published",
            "attempt.started",
            "answer.submitted",
            "attempt.submitted"
        ]
    );
    for r in &got {
        assert!(verify(r), "signature of {}", r.body["name"]);
        assert_eq!(r.headers["authorization"], "Bearer secret-key");
        assert_eq!(r.headers["x-service-name"], "shiksha-assessment");
        assert_eq!(r.headers["content-type"], "application/json");
        assert_eq!(
            r.headers["webhook-id"].to_str().unwrap(),
            r.body["id"].as_str().unwrap()
        );
        let mut keys: Vec<&str> = r
            .body
            .as_object()
            .unwrap()
            .keys()
            .map(|k| k.as_str())
            .collect();
        keys.sort();
        assert_eq!(keys, ["context", "data", "id", "name", "timestamp"]);
        assert_eq!(
            r.body["context"],
            json!({"tenantId": TENANT, "organisationId": ORG, "userId": USER})
        );
    }
    let published = &got[0].body["data"];
    assert_eq!(published["testId"], test.as_str());
    assert_eq!(published["questionCount"], 1);
    assert_eq!(
        got[1].body["data"],
        json!({"attemptId": attempt, "testId": test, "attemptNumber": 1})
    );
    let submitted = &got[3].body["data"];
    for k in ["attemptId", "testId", "score", "result", "timeSpent"] {
        assert!(submitted.get(k).is_some(), "attempt.submitted carries {k}");
    }
}

#[tokio::test]
async fn failures_retry_with_backoff_then_deliver() {
    let app = TestApp::spawn().await;
    let store = &app.state.store;
    let (rx, url) = receiver(vec![(500, None, 0), (502, None, 0), (200, None, 0)]).await;
    subscribe(store, &url, &["*"]).await;
    let e = append(store, EventName::TestPublished, None).await;
    let clock = ManualClock::starting_now();
    let d = Dispatcher::new(store.clone(), clock.clock(), true);
    let now = clock.now();
    assert_eq!(pass(&d).await.retrying, 1);
    assert_eq!(pass(&d).await.claimed, 0, "not due before its backoff");
    move_to(&clock, now, 7);
    assert_eq!(
        d.step(Claim::IfFannedOut).await.unwrap().claimed,
        None,
        "a step after a commit claims only what its fan-out created"
    );
    assert_eq!(pass(&d).await.retrying, 1, "second try after 5 s (+-20%)");
    move_to(&clock, now, 12);
    assert_eq!(pass(&d).await.claimed, 0);
    move_to(&clock, now, 7 + 13);
    assert_eq!(pass(&d).await.delivered, 1, "third try after 10 s (+-20%)");
    let rows = deliveries::of_event(store, e.id).await.unwrap();
    assert_eq!(rows[0].status, "delivered");
    assert_eq!(rows[0].attempt_count, 3);
    let tries = deliveries::attempts_of(store, rows[0].delivery_id.0)
        .await
        .unwrap();
    assert_eq!(
        tries.iter().map(|t| t.1).collect::<Vec<_>>(),
        vec![Some(500), Some(502), Some(200)]
    );
    let got = rx.got.lock().unwrap();
    assert_eq!(got.len(), 3);
    assert!(
        got.iter()
            .all(|r| r.headers["webhook-id"] == got[0].headers["webhook-id"]),
        "the id is stable across retries"
    );
}

#[tokio::test]
async fn exhausted_retries_dead_letter_and_410_disables() {
    let app = TestApp::spawn().await;
    let store = &app.state.store;
    let (_rx, url) = receiver(vec![(500, None, 0)]).await;
    subscribe(store, &url, &["*"]).await;
    let e = append(store, EventName::TestPublished, None).await;
    let clock = ManualClock::starting_now();
    let d = Dispatcher::new(store.clone(), clock.clock(), true);
    for _ in 0..4 {
        pass(&d).await;
        clock.advance(chrono::Duration::seconds(3600));
    }
    let rows = deliveries::of_event(store, e.id).await.unwrap();
    assert_eq!(rows[0].status, "dead", "1 try + 3 retries, then dead");
    assert_eq!(rows[0].attempt_count, 4);

    let (_rx2, url2) = receiver(vec![(410, None, 0)]).await;
    subscribe(store, &url2, &["*"]).await;
    let e2 = append(store, EventName::TestPublished, None).await;
    pass(&d).await;
    assert_eq!(
        deliveries::of_event(store, e2.id).await.unwrap()[0].status,
        "dead"
    );
    let subs = deliveries::all_subscriptions(store).await.unwrap();
    assert!(!subs[0].is_active, "410 Gone disables the subscription");
    let e3 = append(store, EventName::TestPublished, None).await;
    pass(&d).await;
    assert!(
        deliveries::of_event(store, e3.id).await.unwrap().is_empty(),
        "nothing more is sent to it"
    );
}

#[tokio::test]
async fn retry_after_is_honoured() {
    let app = TestApp::spawn().await;
    let store = &app.state.store;
    let (rx, url) = receiver(vec![(429, Some("120"), 0), (200, None, 0)]).await;
    subscribe(store, &url, &["*"]).await;
    append(store, EventName::TestPublished, None).await;
    let clock = ManualClock::starting_now();
    let d = Dispatcher::new(store.clone(), clock.clock(), true);
    let now = clock.now();
    pass(&d).await;
    move_to(&clock, now, 60);
    assert_eq!(pass(&d).await.claimed, 0, "waits the 120 s asked for");
    move_to(&clock, now, 121);
    assert_eq!(pass(&d).await.delivered, 1);
    assert_eq!(rx.got.lock().unwrap().len(), 2);
}

#[tokio::test]
async fn events_of_one_attempt_arrive_in_order() {
    let app = TestApp::spawn().await;
    let store = &app.state.store;
    // The first event fails once; the later ones of the same attempt must wait for it.
    let (rx, url) = receiver(vec![(500, None, 0), (200, None, 0)]).await;
    subscribe(store, &url, &["*"]).await;
    let key = "attempt:1";
    let first = append(store, EventName::AttemptStarted, Some(key)).await;
    let second = append(store, EventName::AnswerSubmitted, Some(key)).await;
    let third = append(store, EventName::AttemptSubmitted, Some(key)).await;
    let unrelated = append(store, EventName::TestPublished, None).await;
    let clock = ManualClock::starting_now();
    let d = Dispatcher::new(store.clone(), clock.clock(), true);
    pass(&d).await;
    for _ in 0..6 {
        clock.advance(chrono::Duration::seconds(60));
        pass(&d).await;
    }
    let got = rx.got.lock().unwrap();
    let ids: Vec<String> = got
        .iter()
        .filter(|r| r.body["id"] != unrelated.id.to_string())
        .map(|r| r.body["id"].as_str().unwrap().to_string())
        .collect();
    let expected: Vec<String> = [first.id, first.id, second.id, third.id]
        .iter()
        .map(|i| i.to_string())
        .collect();
    assert_eq!(
        ids, expected,
        "the failed first event is retried before the others go"
    );
    assert!(
        got.iter().any(|r| r.body["id"] == unrelated.id.to_string()),
        "unrelated events are not held back"
    );
}

#[tokio::test]
async fn a_hanging_receiver_does_not_hold_back_the_others() {
    let app = TestApp::spawn().await;
    let store = &app.state.store;
    let (_slow, slow_url) = receiver(vec![(200, None, 3000)]).await;
    let (fast, fast_url) = receiver(vec![(200, None, 0)]).await;
    two_subscribers(store, &slow_url, &fast_url).await;
    // A short timeout for the slow one.
    let mut tx = store.begin().await.unwrap();
    assessment_service::on_tx!(&mut tx, c => {
        sqlx::query(r#"UPDATE "subscriptions" SET "timeoutMs" = 1000 WHERE "name" = 'analytics-service'"#)
            .execute(c).await.map(|r| r.rows_affected()).unwrap()
    });
    tx.commit().await.unwrap();
    append(store, EventName::TestPublished, None).await;
    let d = Dispatcher::new(store.clone(), app.state.clock.clone(), true);
    let started = Instant::now();
    let out = pass(&d).await;
    assert_eq!(out.delivered, 1);
    assert_eq!(out.retrying, 1, "the slow one timed out and will retry");
    let got = fast.got.lock().unwrap();
    assert_eq!(got.len(), 1);
    assert!(
        got[0].at.duration_since(started) < Duration::from_millis(800),
        "the fast receiver was not kept waiting"
    );
}

#[tokio::test]
async fn private_targets_are_refused_unless_allowed() {
    let app = TestApp::spawn().await;
    let store = &app.state.store;
    let (rx, url) = receiver(vec![(200, None, 0)]).await;
    subscribe(store, &url, &["*"]).await;
    let e = append(store, EventName::TestPublished, None).await;
    let d = Dispatcher::new(store.clone(), app.state.clock.clone(), false);
    assert_eq!(pass(&d).await.dead, 1);
    let rows = deliveries::of_event(store, e.id).await.unwrap();
    assert!(
        rows[0]
            .last_error
            .as_deref()
            .unwrap()
            .contains("not a public address"),
        "{:?}",
        rows[0].last_error
    );
    assert!(rx.got.lock().unwrap().is_empty());
}

#[tokio::test]
async fn webhooks_to_special_purpose_addresses_are_refused_at_create() {
    // Private networks off (the default). The audit's addresses (IPv4-compatible,
    // IPv4-translated, site-local, IETF protocol assignments, reserved) and some of the
    // registries' others; each a 400 naming the address, nothing stored.
    let app = TestApp::spawn().await;
    for host in [
        "[::127.0.0.1]",
        "[::ffff:0:127.0.0.1]",
        "[fec0::1]",
        "192.0.0.1",
        "240.0.0.1",
        "168.63.129.16",
        "[2001:db8::1]",
        "198.18.0.1",
    ] {
        let body = json!({"name": "x", "url": format!("http://{host}/hook")});
        let r = app
            .call(http::Method::POST, "/assessment/v1/webhooks", Some(body))
            .await;
        assert_eq!(r.status, 400, "{host}: {}", r.text());
        assert!(
            r.errmsg().contains("not a public address"),
            "{host}: {}",
            r.errmsg()
        );
    }
    let r = app
        .call(http::Method::GET, "/assessment/v1/webhooks", None)
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["result"], json!([]), "{}", r.text());
}

#[tokio::test]
async fn the_webhook_admin_api_manages_subscriptions_logs_and_replays() {
    use assessment_service::config::Config;
    let app = TestApp::with_config(Config {
        webhook_allow_private_networks: true,
        ..Config::default()
    })
    .await;
    let (rx, url) = receiver(vec![(200, None, 0)]).await;
    let r = app
        .call(
            http::Method::POST,
            "/assessment/v1/webhooks",
            Some(
                json!({"name": "mine", "url": url, "events": ["test.published"],
            "headers": {"Authorization": "Bearer abc"}, "timeout": 2000, "retries": 1}),
            ),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    let hook = r.json()["result"].clone();
    let id = hook["subscriptionId"].as_str().unwrap().to_string();
    let secret = hook["secret"].as_str().unwrap().to_string();
    assert!(secret.starts_with("whsec_"));
    assert_eq!(hook["maxRetries"], 1);
    let r = app
        .call(http::Method::GET, "/assessment/v1/webhooks", None)
        .await;
    assert_eq!(r.json()["result"].as_array().unwrap().len(), 1);
    assert!(
        r.json()["result"][0].get("secret").is_none(),
        "secrets are not listed"
    );
    assert_eq!(
        r.json()["result"][0]["headers"],
        json!({"Authorization": "********"}),
        "header values are not shown"
    );

    // Another tenant sees nothing.
    let other = [
        ("tenantid", OTHER_TENANT),
        ("organisationid", ORG),
        ("userid", USER),
    ];
    assert_eq!(
        app.call_with(
            http::Method::GET,
            &format!("/assessment/v1/webhooks/{id}"),
            None,
            &other
        )
        .await
        .status,
        404
    );
    assert_eq!(
        app.call_with(http::Method::GET, "/assessment/v1/webhooks", None, &other)
            .await
            .json()["result"],
        json!([])
    );

    // Bad input.
    for (body, msg) in [
        (
            json!({"name": "x", "url": "ftp://x"}),
            "url: unsupported scheme ftp",
        ),
        (
            json!({"name": "x", "url": url, "events": ["nope"]}),
            "\"nope\" is not an event name",
        ),
        (
            json!({"name": "x", "url": url, "timeout": 0}),
            "timeout must be between 1 and 300000 ms",
        ),
    ] {
        let r = app
            .call(http::Method::POST, "/assessment/v1/webhooks", Some(body))
            .await;
        assert_eq!(r.status, 400, "{}", r.text());
        assert_eq!(r.errmsg(), msg);
    }

    // A test send, signed with the subscription's secret.
    let r = app
        .call(
            http::Method::POST,
            &format!("/assessment/v1/webhooks/{id}/test"),
            None,
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(r.json()["result"]["delivered"], true);
    {
        let got = rx.got.lock().unwrap();
        assert_eq!(got[0].body["name"], "webhook.test");
        assert_eq!(got[0].headers["authorization"], "Bearer abc");
    }
    // Headers sent back as shown (masked) keep their stored values; a new one needs its value.
    let r = app
        .call(
            http::Method::PATCH,
            &format!("/assessment/v1/webhooks/{id}"),
            Some(json!({"headers": {"Authorization": "********", "X-Extra": "1"}})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let r = app
        .call(
            http::Method::PATCH,
            &format!("/assessment/v1/webhooks/{id}"),
            Some(json!({"headers": {"X-New": "********"}})),
        )
        .await;
    assert_eq!(r.status, 400, "{}", r.text());
    let r = app
        .call(
            http::Method::POST,
            &format!("/assessment/v1/webhooks/{id}/test"),
            None,
        )
        .await;
    assert_eq!(r.json()["result"]["delivered"], true);
    {
        let got = rx.got.lock().unwrap();
        assert_eq!(got[1].headers["authorization"], "Bearer abc");
        assert_eq!(got[1].headers["x-extra"], "1");
    }

    // A tenant event reaches the tenant's webhook (and an operator-configured one, whose
    // delivery the tenant does not see).
    let (operator_rx, operator_url) = receiver(vec![(200, None, 0)]).await;
    subscribe(&app.state.store, &operator_url, &["*"]).await;
    let e = append(&app.state.store, EventName::TestPublished, None).await;
    let d = Dispatcher::new(app.state.store.clone(), app.state.clock.clone(), true);
    pass(&d).await;
    let r = app
        .call(
            http::Method::GET,
            &format!("/assessment/v1/webhooks/deliveries?eventId={}", e.id),
            None,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(operator_rx.got.lock().unwrap().len(), 1);
    assert_eq!(
        r.json()["result"]["content"].as_array().unwrap().len(),
        1,
        "only the tenant's own subscription: {}",
        r.text()
    );
    let row = r.json()["result"]["content"][0].clone();
    assert_eq!(row["subscriptionId"].as_str().unwrap(), id);
    assert_eq!(row["status"], "delivered");
    let delivery = row["deliveryId"].as_str().unwrap().to_string();
    let r = app
        .call(
            http::Method::GET,
            &format!("/assessment/v1/webhooks/deliveries/{delivery}/attempts"),
            None,
        )
        .await;
    assert_eq!(r.json()["result"][0]["statusCode"], 200);
    // Private networks are allowed here: a tenant's webhook's answer is not kept (it could be
    // an internal page); the operator's subscription keeps its own.
    assert!(
        r.json()["result"][0]["responseBody"].is_null(),
        "{}",
        r.text()
    );
    let operator_delivery = deliveries::of_event(&app.state.store, e.id)
        .await
        .unwrap()
        .into_iter()
        .find(|d| d.subscription_id.0.to_string() != id)
        .unwrap();
    let tries = deliveries::attempts_detail(&app.state.store, operator_delivery.delivery_id.0)
        .await
        .unwrap();
    assert_eq!(tries[0]["responseBody"], "ok");

    // Replay: the same event again, with the same webhook-id.
    let r = app
        .call(
            http::Method::POST,
            &format!("/assessment/v1/webhooks/deliveries/{delivery}/replay"),
            None,
        )
        .await;
    assert_eq!(r.json()["result"]["replayed"], 1);
    pass(&d).await;
    let r = app
        .call(
            http::Method::POST,
            &format!("/assessment/v1/webhooks/events/{}/replay", e.id),
            None,
        )
        .await;
    assert_eq!(r.json()["result"]["replayed"], 1);
    pass(&d).await;
    let from = (chrono::Utc::now() - chrono::Duration::hours(1)).to_rfc3339();
    let to = (chrono::Utc::now() + chrono::Duration::hours(1)).to_rfc3339();
    let r = app
        .call(
            http::Method::POST,
            "/assessment/v1/webhooks/replay",
            Some(json!({"from": from, "to": to})),
        )
        .await;
    assert_eq!(r.json()["result"]["replayed"], 1);
    pass(&d).await;
    {
        let got = rx.got.lock().unwrap();
        let copies: Vec<_> = got
            .iter()
            .filter(|g| g.body["id"] == e.id.to_string())
            .collect();
        assert_eq!(copies.len(), 4);
        assert!(
            copies
                .iter()
                .all(|c| c.headers["webhook-id"] == e.id.to_string())
        );
        assert!(copies.iter().all(verify_with(&secret)));
    }
    assert_eq!(
        operator_rx.got.lock().unwrap().len(),
        1,
        "a tenant's replays do not reach operator subscriptions"
    );
    // Every try is kept, numbered on across replays.
    let r = app
        .call(
            http::Method::GET,
            &format!("/assessment/v1/webhooks/deliveries/{delivery}/attempts"),
            None,
        )
        .await;
    let numbers: Vec<i64> = r.json()["result"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["attemptNumber"].as_i64().unwrap())
        .collect();
    assert_eq!(numbers, vec![1, 2, 3, 4]);

    // Rotation changes the secret; dead letters and the registry.
    let r = app
        .call(
            http::Method::POST,
            &format!("/assessment/v1/webhooks/{id}/rotate-secret"),
            None,
        )
        .await;
    assert_ne!(r.json()["result"]["secret"].as_str().unwrap(), secret);
    let r = app
        .call(
            http::Method::GET,
            "/assessment/v1/webhooks/dead-letters",
            None,
        )
        .await;
    assert_eq!(r.json()["result"]["totalElements"], 0);
    let r = app
        .call(http::Method::GET, "/assessment/v1/plugins", None)
        .await;
    assert_eq!(
        r.json()["result"]["externalServiceCount"],
        2,
        "the tenant's webhook and the operator's: {}",
        r.text()
    );
    let r = app
        .call(
            http::Method::PATCH,
            &format!("/assessment/v1/webhooks/{id}"),
            Some(json!({"isActive": false})),
        )
        .await;
    assert_eq!(r.json()["result"]["isActive"], false);
    let r = app
        .call(
            http::Method::DELETE,
            &format!("/assessment/v1/webhooks/{id}"),
            None,
        )
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(
        app.call(
            http::Method::GET,
            &format!("/assessment/v1/webhooks/{id}"),
            None
        )
        .await
        .status,
        404
    );
}

fn verify_with(secret: &str) -> impl Fn(&&Received) -> bool + '_ {
    move |r: &&Received| {
        let key = base64::engine::general_purpose::STANDARD
            .decode(secret.trim_start_matches("whsec_"))
            .unwrap();
        let id = r.headers["webhook-id"].to_str().unwrap();
        let ts = r.headers["webhook-timestamp"].to_str().unwrap();
        let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(&key).unwrap();
        mac.update(format!("{id}.{ts}.").as_bytes());
        mac.update(&r.raw);
        let expected = format!(
            "v1,{}",
            base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
        );
        // Several signatures (space-separated) during a rotation: any one may match.
        r.headers["webhook-signature"]
            .to_str()
            .unwrap()
            .split(' ')
            .any(|sig| sig == expected)
    }
}

/// How many signatures the request carries.
fn signatures(r: &Received) -> usize {
    r.headers["webhook-signature"]
        .to_str()
        .unwrap()
        .split(' ')
        .count()
}

#[tokio::test]
async fn a_rotated_secret_keeps_signing_beside_the_new_one_for_the_overlap() {
    use assessment_service::config::Config;
    let clock = ManualClock::starting_now();
    let config = |overlap| Config {
        webhook_allow_private_networks: true,
        webhook_secret_overlap_secs: overlap,
        ..Config::default()
    };
    let app = TestApp::with_config_on(config(3600), &clock).await;
    let (rx, url) = receiver(vec![(200, None, 0)]).await;
    let body = json!({"name": "rotating", "url": url, "events": ["test.created"]});
    let r = app
        .call(http::Method::POST, "/assessment/v1/webhooks", Some(body))
        .await;
    let hook = r.expect_status(201)["result"].clone();
    let id = hook["subscriptionId"].as_str().unwrap().to_string();
    let old = hook["secret"].as_str().unwrap().to_string();
    let rotate = format!("/assessment/v1/webhooks/{id}/rotate-secret");
    let r = app.call(http::Method::POST, &rotate, None).await;
    let rotated = r.expect_status(201)["result"].clone();
    let new = rotated["secret"].as_str().unwrap().to_string();
    assert_ne!(new, old);
    let until = rotated["previousSecretExpiresAt"]
        .as_str()
        .expect("an overlap end");
    let until = chrono::DateTime::parse_from_rfc3339(until).unwrap();
    assert_eq!((until.to_utc() - clock.clock().now().0).num_seconds(), 3600);

    // During the overlap: a test send and a dispatched delivery both carry two signatures,
    // one for each secret.
    let test_send = format!("/assessment/v1/webhooks/{id}/test");
    app.call(http::Method::POST, &test_send, None)
        .await
        .expect_status(201);
    create_test(&app, json!({"title": "Signed twice", "type": "plain"})).await;
    let d = Dispatcher::new(app.state.store.clone(), app.state.clock.clone(), true);
    assert_eq!(pass(&d).await.delivered, 1);
    {
        let got = rx.got.lock().unwrap();
        assert_eq!(got.len(), 2);
        for r in got.iter() {
            assert_eq!(signatures(r), 2, "{:?}", r.headers["webhook-signature"]);
            assert!(verify_with(&new)(&r) && verify_with(&old)(&r));
        }
    }

    // After it: the new secret alone.
    clock.advance(chrono::Duration::seconds(3601));
    app.call(http::Method::POST, &test_send, None)
        .await
        .expect_status(201);
    {
        let got = rx.got.lock().unwrap();
        assert_eq!(signatures(&got[2]), 1);
        assert!(verify_with(&new)(&&got[2]) && !verify_with(&old)(&&got[2]));
    }

    // With no overlap configured a rotation replaces the secret at once.
    let at_once = TestApp::with_config_on(config(0), &clock).await;
    let body = json!({"name": "at once", "url": url, "events": ["test.created"]});
    let r = at_once
        .call(http::Method::POST, "/assessment/v1/webhooks", Some(body))
        .await;
    let id = r.expect_status(201)["result"]["subscriptionId"]
        .as_str()
        .unwrap()
        .to_string();
    let r = at_once
        .call(
            http::Method::POST,
            &format!("/assessment/v1/webhooks/{id}/rotate-secret"),
            None,
        )
        .await;
    assert!(r.expect_status(201)["result"]["previousSecretExpiresAt"].is_null());
    at_once
        .call(
            http::Method::POST,
            &format!("/assessment/v1/webhooks/{id}/test"),
            None,
        )
        .await
        .expect_status(201);
    assert_eq!(signatures(&rx.got.lock().unwrap()[3]), 1);
}

/// A stand-in LMS on loopback recording PATCHes; answers per `ok`.
async fn fake_lms(ok: bool) -> (Arc<Mutex<Vec<(HeaderMap, Value)>>>, String) {
    let got: Arc<Mutex<Vec<(HeaderMap, Value)>>> = Arc::new(Mutex::new(Vec::new()));
    let sink = got.clone();
    let app = axum::Router::new().route(
        "/course/tracking/update_test_progress",
        axum::routing::patch(
            move |headers: HeaderMap, axum::Json(body): axum::Json<Value>| {
                let sink = sink.clone();
                async move {
                    sink.lock().unwrap().push((headers, body));
                    let status = if ok { "successful" } else { "failed" };
                    axum::Json(json!({"params": {"status": status}}))
                }
            },
        ),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (got, url)
}

#[tokio::test]
async fn the_lms_plugin_reports_passed_submissions_durably() {
    use assessment_service::events::plugins::{DebugLog, LmsProgress, Registry};
    let app = TestApp::spawn().await;
    let store = &app.state.store;
    let (lms_ok, ok_url) = fake_lms(true).await;
    let registry = Registry::with(vec![
        Arc::new(DebugLog),
        Arc::new(LmsProgress::new(url::Url::parse(&ok_url).unwrap())),
    ]);
    registry.sync(store).await.unwrap();
    let passed = NewEvent::new(
        uuid::Uuid::now_v7(),
        EventName::AttemptSubmitted,
        EventContext {
            tenant_id: TenantId::parse(TENANT),
            organisation_id: OrganisationId::parse(ORG),
            user_id: UserId::parse(USER),
        },
        json!({"attemptId": "a", "testId": "t", "score": 8, "result": "P", "reviewStatus": "R", "timeSpent": 60}),
        chrono::Utc::now(),
    );
    let mut tx = store.begin().await.unwrap();
    assessment_service::events::append(&mut tx, &passed)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let d = Dispatcher::with_plugins(store.clone(), app.state.clock.clone(), true, registry);
    let out = pass(&d).await;
    assert_eq!(out.delivered, 2, "debug-log and lms-progress");
    let got = lms_ok.lock().unwrap().clone();
    assert_eq!(got.len(), 1);
    assert_eq!(
        got[0].1,
        json!({"testId": "t", "userId": USER, "score": 8, "result": "P", "reviewedBy": null})
    );
    assert_eq!(got[0].0["tenantid"], TENANT);
    assert_eq!(got[0].0["organisationid"], ORG);

    // An LMS that refuses is retried, like a webhook.
    let (_lms_no, no_url) = fake_lms(false).await;
    let registry = Registry::with(vec![Arc::new(LmsProgress::new(
        url::Url::parse(&no_url).unwrap(),
    ))]);
    registry.sync(store).await.unwrap();
    let e = append(store, EventName::AttemptSubmitted, None).await;
    let _ = e;
    let mut tx = store.begin().await.unwrap();
    let again = NewEvent {
        id: uuid::Uuid::now_v7(),
        ..passed.clone()
    };
    assessment_service::events::append(&mut tx, &again)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let d = Dispatcher::with_plugins(store.clone(), app.state.clock.clone(), true, registry);
    let out = pass(&d).await;
    assert_eq!(out.retrying, 1, "{out:?}");
    let rows = deliveries::of_event(store, again.id).await.unwrap();
    assert!(
        rows[0]
            .last_error
            .as_deref()
            .unwrap()
            .contains("LMS refused"),
        "{:?}",
        rows[0].last_error
    );
}

#[tokio::test]
async fn two_dispatchers_share_the_work_without_double_sends() {
    let app = TestApp::spawn().await;
    let store = &app.state.store;
    let (rx, url) = receiver(vec![(200, None, 20)]).await;
    subscribe(store, &url, &["*"]).await;
    let mut ids = Vec::new();
    for i in 0..40 {
        let key = format!("attempt:{}", i % 8);
        ids.push(
            append(store, EventName::AnswerSubmitted, Some(&key))
                .await
                .id
                .to_string(),
        );
    }
    let clock = ManualClock::starting_now();
    let a = Dispatcher::new(store.clone(), clock.clock(), true);
    let b = Dispatcher::new(store.clone(), clock.clock(), true);
    for _ in 0..10 {
        tokio::join!(pass(&a), pass(&b));
    }
    let got = rx.got.lock().unwrap();
    let mut received: Vec<String> = got
        .iter()
        .map(|r| r.body["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(received.len(), 40, "each event sent exactly once");
    received.sort();
    let mut expected = ids.clone();
    expected.sort();
    assert_eq!(received, expected);
    // Within each attempt the order held, though two dispatchers worked at once.
    for k in 0..8 {
        let order: Vec<&String> = got
            .iter()
            .map(|r| r.body["id"].as_str().unwrap())
            .filter_map(|id| ids.iter().position(|x| x == id))
            .filter(|p| p % 8 == k)
            .map(|p| &ids[p])
            .collect();
        let mut sorted = order.clone();
        sorted.sort_by_key(|id| ids.iter().position(|x| x == *id));
        assert_eq!(order, sorted, "attempt {k} in order");
    }
}

#[tokio::test]
async fn plugins_file_webhooks_are_delivered() {
    let app = TestApp::spawn().await;
    let store = &app.state.store;
    let (rx, url) = receiver(vec![(200, None, 0)]).await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("plugins.json");
    std::fs::write(&path, json!({"plugins": [{"id": "custom-webhook", "name": "Custom Webhook Plugin", "version": "1.0.0",
        "description": "d", "author": "a", "type": "external", "isActive": true,
        "externalService": {"type": "webhook", "webhook": {"url": url, "method": "POST",
            "headers": {"Authorization": "Bearer file-key"}, "timeout": 15000, "retries": 5,
            "events": ["test.published"]}}}]}).to_string()).unwrap();
    let plugins = subscriptions::read_plugins_file(&path).unwrap();
    subscriptions::sync_file(store, &plugins, &[])
        .await
        .unwrap();
    append(store, EventName::TestPublished, None).await;
    append(store, EventName::TestUpdated, None).await;
    let out = pass(&Dispatcher::new(
        store.clone(),
        app.state.clock.clone(),
        true,
    ))
    .await;
    assert_eq!(out.delivered, 1, "only the events it asked for");
    {
        let got = rx.got.lock().unwrap();
        assert_eq!(got[0].headers["authorization"], "Bearer file-key");
        assert_eq!(got[0].body["name"], "test.published");
    }
    let subs = deliveries::all_subscriptions(store).await.unwrap();
    assert_eq!(
        (
            subs[0].timeout_ms,
            subs[0].max_retries,
            subs[0].source.as_str()
        ),
        (15000, 5, "file")
    );
    // A start without the file (what `serve` syncs then) deactivates its entries.
    subscriptions::sync_file(store, &[], &[]).await.unwrap();
    let subs = deliveries::all_subscriptions(store).await.unwrap();
    assert!(!subs[0].is_active, "a removed file's webhook stays active");
}

#[tokio::test]
async fn postgres_commits_notify_other_instances() {
    let app = TestApp::spawn().await;
    let Some(pool) = app.state.store.postgres() else {
        // SQLite runs one process: the in-process wake-up is all it needs (tested by the
        // dispatcher loop below on both databases).
        return;
    };
    let mut listener = sqlx::postgres::PgListener::connect_with(pool)
        .await
        .unwrap();
    listener
        .listen(assessment_service::store::outbox::CHANNEL)
        .await
        .unwrap();
    append(&app.state.store, EventName::TestPublished, None).await;
    let note = tokio::time::timeout(Duration::from_secs(5), listener.recv()).await;
    assert!(
        note.is_ok_and(|n| n.is_ok()),
        "a commit with events notifies the channel"
    );
}

#[tokio::test]
async fn a_hanging_receiver_never_slows_a_learners_request() {
    let app = TestApp::spawn().await;
    let store = app.state.store.clone();
    let (_slow, url) = receiver(vec![(200, None, 5000)]).await;
    subscribe(&store, &url, &["*"]).await;
    let token = tokio_util::sync::CancellationToken::new();
    tokio::spawn(Dispatcher::new(store.clone(), app.state.clock.clone(), true).run(token.clone()));
    // Requests that append events answer while the receiver hangs on the earlier ones.
    for i in 0..5 {
        let started = Instant::now();
        let r = app
            .call(
                http::Method::POST,
                "/assessment/v1/questions",
                Some(json!({"text": format!("q{i}"), "type": "essay"})),
            )
            .await;
        assert_eq!(r.status, 201);
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "request {i} took {:?}",
            started.elapsed()
        );
    }
    token.cancel();
}

#[tokio::test]
async fn a_claim_leases_at_most_eight_per_subscription() {
    let app = TestApp::spawn().await;
    let store = &app.state.store;
    let (_a, a_url) = receiver(vec![(200, None, 0)]).await;
    let (_b, b_url) = receiver(vec![(200, None, 0)]).await;
    two_subscribers(store, &a_url, &b_url).await;
    for _ in 0..20 {
        append(store, EventName::TestPublished, None).await;
    }
    let now = assessment_service::clock::Clock::system().now();
    assert_eq!(
        deliveries::fan_out(store, 500, now).await.unwrap(),
        deliveries::FanOut {
            events: 20,
            deliveries: 40
        },
        "one delivery per event and subscriber"
    );
    let per_sub = |c: &[deliveries::Claimed]| {
        let mut n = std::collections::HashMap::new();
        for d in c {
            *n.entry(d.subscription_id.0).or_insert(0) += 1;
        }
        let mut v: Vec<usize> = n.into_values().collect();
        v.sort();
        v
    };
    let lease = later(now, 30);
    let first = deliveries::claim(store, "one", now, lease, 100, 8)
        .await
        .unwrap();
    assert_eq!(per_sub(&first), vec![8, 8], "eight of each subscription");
    // While those leases live, another claimer gets nothing of either.
    let second = deliveries::claim(store, "two", now, lease, 100, 8)
        .await
        .unwrap();
    assert!(second.is_empty(), "{} more were leased", second.len());
    // Expired leases are free again, and count no longer as busy.
    let after = later(now, 31);
    let third = deliveries::claim(store, "two", after, later(after, 30), 100, 8)
        .await
        .unwrap();
    assert_eq!(per_sub(&third), vec![8, 8]);
    // The global limit still applies.
    let fourth = deliveries::claim(store, "three", later(after, 31), later(after, 60), 5, 8)
        .await
        .unwrap();
    assert_eq!(fourth.len(), 5);
}

#[tokio::test]
async fn postgres_fans_out_one_instance_at_a_time() {
    let app = TestApp::spawn().await;
    let store = &app.state.store;
    let Some(pool) = store.postgres() else {
        // SQLite has one process and serialises writers: nothing to arbitrate.
        return;
    };
    let (_rx, url) = receiver(vec![(200, None, 0)]).await;
    subscribe(store, &url, &["*"]).await;
    append(store, EventName::TestPublished, None).await;
    // Another instance in the middle of its fan-out holds the lock.
    let mut other = pool.begin().await.unwrap();
    sqlx::query("SELECT pg_advisory_xact_lock(7426001, hashtext(current_schema()))")
        .execute(&mut *other)
        .await
        .unwrap();
    assert_eq!(
        deliveries::fan_out(store, 500, assessment_service::clock::Clock::system().now())
            .await
            .unwrap(),
        deliveries::FanOut::default(),
        "no second fan-out while one runs"
    );
    other.rollback().await.unwrap();
    assert_eq!(
        deliveries::fan_out(store, 500, assessment_service::clock::Clock::system().now())
            .await
            .unwrap(),
        deliveries::FanOut {
            events: 1,
            deliveries: 1
        }
    );
}

#[tokio::test]
async fn concurrent_claims_never_lease_one_delivery_twice() {
    let app = TestApp::spawn().await;
    let store = &app.state.store;
    let (_rx, url) = receiver(vec![(200, None, 0)]).await;
    subscribe(store, &url, &["*"]).await;
    for _ in 0..200 {
        append(store, EventName::TestPublished, None).await;
    }
    let now = assessment_service::clock::Clock::system().now();
    deliveries::fan_out(store, 500, now).await.unwrap();
    let claimers = (0..8).map(|i| {
        let store = store.clone();
        tokio::spawn(async move {
            let mut mine = Vec::new();
            loop {
                let got = deliveries::claim(&store, &format!("c{i}"), now, later(now, 60), 7, 1000)
                    .await
                    .unwrap();
                if got.is_empty() {
                    break mine;
                }
                mine.extend(got.into_iter().map(|c| c.delivery_id.0));
            }
        })
    });
    let mut all = Vec::new();
    for c in claimers {
        all.extend(c.await.unwrap());
    }
    let distinct: std::collections::HashSet<_> = all.iter().collect();
    assert_eq!(distinct.len(), 200, "every delivery was leased");
    assert_eq!(all.len(), 200, "a delivery was leased twice");
}

#[tokio::test]
async fn retention_deletes_finished_events_with_their_deliveries_and_tries() {
    let app = TestApp::spawn().await;
    let store = &app.state.store;
    let (_rx, url) = receiver(vec![(200, None, 0), (200, None, 0), (500, None, 0)]).await;
    subscribe(store, &url, &["*"]).await;
    let d = Dispatcher::new(store.clone(), app.state.clock.clone(), true);
    // Two events delivered, one retrying, one not yet fanned out.
    let done = [
        append(store, EventName::TestPublished, None).await,
        append(store, EventName::TestUnpublished, None).await,
    ];
    let now = assessment_service::clock::Clock::system().now();
    assert_eq!(pass(&d).await.delivered, 2);
    let retrying = append(store, EventName::TestPublished, None).await;
    assert_eq!(pass(&d).await.retrying, 1);
    let unfanned = append(store, EventName::TestPublished, None).await;
    let delivered_ids: Vec<uuid::Uuid> = {
        let mut ids = Vec::new();
        for e in &done {
            ids.push(
                deliveries::of_event(store, e.id).await.unwrap()[0]
                    .delivery_id
                    .0,
            );
        }
        ids
    };

    // A cutoff before them all deletes nothing.
    let before = Ts::new(now.0 - chrono::Duration::hours(1));
    assert_eq!(
        deliveries::purge_before(store, before, 1000).await.unwrap(),
        (0, 0)
    );
    // A cutoff after them all deletes the finished ones only, batch by batch.
    let after = later(assessment_service::clock::Clock::system().now(), 60);
    assert_eq!(
        deliveries::purge_before(store, after, 1).await.unwrap(),
        (1, 1)
    );
    assert_eq!(
        deliveries::purge_before(store, after, 1000).await.unwrap(),
        (1, 1)
    );
    assert_eq!(
        deliveries::purge_before(store, after, 1000).await.unwrap(),
        (0, 0)
    );
    for (e, id) in done.iter().zip(&delivered_ids) {
        assert!(
            assessment_service::store::outbox::find(store, e.id)
                .await
                .unwrap()
                .is_none()
        );
        assert!(deliveries::of_event(store, e.id).await.unwrap().is_empty());
        assert!(
            deliveries::attempts_of(store, *id)
                .await
                .unwrap()
                .is_empty(),
            "the tries go with their delivery"
        );
    }
    let kept = deliveries::of_event(store, retrying.id).await.unwrap();
    assert_eq!(kept.len(), 1, "a delivery still retrying keeps its event");
    assert_eq!(kept[0].status, "pending");
    assert!(
        assessment_service::store::outbox::find(store, unfanned.id)
            .await
            .unwrap()
            .is_some(),
        "an event not yet fanned out is kept"
    );
}

#[tokio::test]
async fn the_dispatchers_own_commits_do_not_wake_it() {
    let app = TestApp::spawn().await;
    let store = &app.state.store;
    let (rx, url) = receiver(vec![(500, None, 0), (200, None, 0)]).await;
    subscribe(store, &url, &["*"]).await;
    append(store, EventName::TestPublished, None).await;
    let woken = || async {
        tokio::time::timeout(Duration::from_millis(300), store.signal().committed())
            .await
            .is_ok()
    };
    assert!(woken().await, "the append woke the dispatcher");
    let clock = ManualClock::starting_now();
    let d = Dispatcher::new(store.clone(), clock.clock(), true);
    // Fan-out, claim, a failed try recorded, a retry recorded: four commits, no events.
    assert_eq!(pass(&d).await.retrying, 1);
    clock.advance(chrono::Duration::seconds(60));
    assert_eq!(pass(&d).await.delivered, 1);
    assert_eq!(rx.got.lock().unwrap().len(), 2);
    assert!(!woken().await, "the dispatcher's bookkeeping woke it");
}

#[tokio::test]
async fn a_stopped_loop_returns_once_its_sends_in_flight_are_recorded() {
    let app = TestApp::spawn().await;
    let store = &app.state.store;
    let (rx, url) = receiver(vec![(200, None, 700)]).await;
    subscribe(store, &url, &["*"]).await;
    let token = tokio_util::sync::CancellationToken::new();
    let running = tokio::spawn(
        Dispatcher::new(store.clone(), app.state.clock.clone(), true).run(token.clone()),
    );
    let e = append(store, EventName::TestPublished, None).await;
    // The loop claims the delivery and starts sending it (the receiver holds it 700 ms).
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let rows = deliveries::of_event(store, e.id).await.unwrap();
        if rows.first().is_some_and(|r| r.status == "delivering") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the loop never claimed: {rows:?}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    token.cancel();
    tokio::time::timeout(Duration::from_secs(10), running)
        .await
        .expect("the loop stops once its sends have ended")
        .unwrap();
    assert_eq!(rx.got.lock().unwrap().len(), 1);
    assert_eq!(
        deliveries::of_event(store, e.id).await.unwrap()[0].status,
        "delivered",
        "the send in flight at the stop was recorded before the loop returned"
    );
}

#[tokio::test]
async fn a_subscription_of_a_kind_this_version_cannot_send_to_does_not_stop_the_others() {
    let app = TestApp::spawn().await;
    let store = &app.state.store;
    let (rx, url) = receiver(vec![(200, None, 0)]).await;
    subscribe(store, &url, &["*"]).await;
    // A broker subscription, as a newer version sharing the database might register it.
    let mut tx = store.begin().await.unwrap();
    let id = assessment_service::store::Id(uuid::Uuid::new_v4());
    let now = assessment_service::clock::Clock::system().now();
    assessment_service::on_tx!(&mut tx, c => {
        sqlx::query(r#"INSERT INTO "subscriptions" ("subscriptionId", "name", "source", "kind",
                "target", "method", "headers", "events", "timeoutMs", "maxRetries", "isActive",
                "createdAt", "updatedAt")
            VALUES ($1, 'queue', 'file', 'amqp', 'amqp://127.0.0.1:5672', 'POST', '{}', '["*"]',
                    10000, 3, TRUE, $2, $2)"#)
            .bind(id).bind(now).execute(c).await.map(|r| r.rows_affected()).unwrap()
    });
    tx.commit().await.unwrap();
    append(store, EventName::TestPublished, None).await;
    let d = Dispatcher::new(store.clone(), ManualClock::starting_now().clock(), true);
    let p = pass(&d).await;
    assert_eq!(
        (p.claimed, p.delivered, p.retrying, p.dead),
        (2, 1, 1, 0),
        "the webhook is delivered; the broker delivery waits for a version that can send it"
    );
    assert_eq!(rx.got.lock().unwrap().len(), 1);
}

/// Framing, hop-by-hop and service-written headers, values with line breaks, and too many
/// headers are refused at create and at PATCH, before any delivery could go wrong.
#[tokio::test]
async fn webhook_headers_that_would_break_the_request_are_refused() {
    let app = TestApp::with_config(assessment_service::config::Config {
        webhook_allow_private_networks: true,
        ..assessment_service::config::Config::default()
    })
    .await;
    let (_rx, url) = receiver(vec![(200, None, 0)]).await;
    let create = |headers: Value| {
        app.call(
            http::Method::POST,
            "/assessment/v1/webhooks",
            Some(json!({"name": "h", "url": url, "headers": headers})),
        )
    };
    for bad in [
        json!({"Content-Length": "5"}),
        json!({"Transfer-Encoding": "chunked"}),
        json!({"Host": "elsewhere.example.org"}),
        json!({"Connection": "close"}),
        json!({"X-Token": "a\r\nX-Injected: 1"}),
        Value::Object((0..51).map(|i| (format!("X-H{i}"), json!("v"))).collect()),
    ] {
        let r = create(bad.clone()).await;
        assert_eq!(r.status, 400, "{bad}: {}", r.text());
        assert!(r.errmsg().starts_with("headers"), "{bad}: {}", r.text());
    }
    let ok = create(json!({"Authorization": "Bearer k"})).await;
    assert_eq!(ok.status, 201, "{}", ok.text());
    let id = ok.json()["result"]["subscriptionId"]
        .as_str()
        .unwrap()
        .to_string();
    let patch = app
        .call(
            http::Method::PATCH,
            &format!("/assessment/v1/webhooks/{id}"),
            Some(json!({"headers": {"Authorization": "********", "Content-Length": "5"}})),
        )
        .await;
    assert_eq!(patch.status, 400, "{}", patch.text());
    assert!(
        patch.errmsg().contains("Content-Length"),
        "{}",
        patch.text()
    );
    let patch = app
        .call(
            http::Method::PATCH,
            &format!("/assessment/v1/webhooks/{id}"),
            Some(json!({"headers": {"Authorization": "********", "X-Extra": "1"}})),
        )
        .await;
    assert_eq!(patch.status, 200, "{}", patch.text());
}

/// A 410 disables the subscription and cancels the deliveries still waiting for it (they
/// would otherwise stay pending for ever); a replay brings them back.
#[tokio::test]
async fn a_410_cancels_the_deliveries_waiting_for_the_subscription() {
    let app = TestApp::spawn().await;
    let store = &app.state.store;
    let (_rx, url) = receiver(vec![(410, None, 0)]).await;
    subscribe(store, &url, &["*"]).await;
    // One attempt's events: only the first is sent, the others wait for it.
    let events = [
        append(store, EventName::AttemptStarted, Some("attempt:x")).await,
        append(store, EventName::AnswerSubmitted, Some("attempt:x")).await,
        append(store, EventName::AttemptSubmitted, Some("attempt:x")).await,
    ];
    let d = Dispatcher::new(store.clone(), app.state.clock.clone(), true);
    pass(&d).await;
    let mut statuses = Vec::new();
    for e in &events {
        statuses.push(
            deliveries::of_event(store, e.id).await.unwrap()[0]
                .status
                .clone(),
        );
    }
    assert_eq!(statuses, ["dead", "cancelled", "cancelled"]);
    let row = &deliveries::of_event(store, events[1].id).await.unwrap()[0];
    assert!(
        row.last_error
            .as_deref()
            .unwrap_or_default()
            .contains("410"),
        "{row:?}"
    );
    assert_eq!(deliveries::backlog(store).await.unwrap().0, 0);
}

/// Subscription ids by name.
async fn subscription_ids(store: &Store) -> std::collections::HashMap<String, uuid::Uuid> {
    deliveries::all_subscriptions(store)
        .await
        .unwrap()
        .into_iter()
        .map(|s| (s.name, s.subscription_id.0))
        .collect()
}

/// A fan-out's lease for these tests: owner `me`, at most 8 in flight per subscription.
fn lease<'a>(
    room: &'a std::collections::HashMap<uuid::Uuid, usize>,
    stalled: &'a std::collections::HashSet<uuid::Uuid>,
    budget: usize,
    until: &'a (dyn Fn(&[deliveries::Subscription]) -> Ts + Sync),
) -> deliveries::Lease<'a> {
    deliveries::Lease {
        owner: "me",
        budget,
        room,
        stalled,
        per_subscription: 8,
        until,
    }
}

/// Statuses of the deliveries of these events, in order.
async fn statuses(store: &Store, events: &[NewEvent]) -> Vec<String> {
    let mut out = Vec::new();
    for e in events {
        for d in deliveries::of_event(store, e.id).await.unwrap() {
            out.push(d.status);
        }
    }
    out
}

#[tokio::test]
async fn a_commit_is_sent_by_the_fan_out_without_a_claim() {
    let app = TestApp::spawn().await;
    let store = &app.state.store;
    let (rx, url) = receiver(vec![(200, None, 0)]).await;
    subscribe(store, &url, &["*"]).await;
    append(store, EventName::TestPublished, None).await;
    append(store, EventName::TestPublished, None).await;
    let d = Dispatcher::new(store.clone(), app.state.clock.clone(), true);
    let step = d.step(Claim::IfFannedOut).await.unwrap();
    assert_eq!(step.leased, 2, "both leased as they were created");
    assert_eq!(step.claimed, None, "nothing was left pending to claim");
    assert_eq!(d.settle().await.delivered, 2);
    assert_eq!(rx.got.lock().unwrap().len(), 2);
}

#[tokio::test]
async fn the_fan_out_leases_within_room_and_slots_and_leaves_the_rest_for_later() {
    let app = TestApp::spawn().await;
    let store = &app.state.store;
    let (_rx, url) = receiver(vec![(200, None, 0)]).await;
    subscribe(store, &url, &["*"]).await;
    let mut events = Vec::new();
    for _ in 0..5 {
        events.push(append(store, EventName::TestPublished, None).await);
    }
    let sub = subscription_ids(store).await["external-service"];
    let now = assessment_service::clock::Clock::system().now();
    let until = |_: &[deliveries::Subscription]| later(now, 60);
    let none = std::collections::HashSet::new();
    // Room for two more sends: two events go out, the other three stay for a later fan-out.
    let room = std::collections::HashMap::from([(sub, 2)]);
    let (f, leased) =
        deliveries::fan_out_leasing(store, 500, now, Some(lease(&room, &none, 100, &until)))
            .await
            .unwrap();
    assert_eq!((f.events, f.deliveries, leased.claimed.len()), (2, 2, 2));
    assert!(leased.cut && !leased.more);
    assert_eq!(leased.deferred, 0, "nothing became a backlog");
    assert_eq!(
        statuses(store, &events).await,
        ["delivering", "delivering"],
        "the later events have no deliveries yet"
    );
    // One slot left: one event read, and sent; more may wait.
    let empty = std::collections::HashMap::new();
    let (f, leased) =
        deliveries::fan_out_leasing(store, 500, now, Some(lease(&empty, &none, 1, &until)))
            .await
            .unwrap();
    assert_eq!((f.events, leased.claimed.len()), (1, 1));
    assert!(leased.more && !leased.cut);
    // Room and slots: the rest, and nothing more waits.
    let (f, leased) =
        deliveries::fan_out_leasing(store, 500, now, Some(lease(&empty, &none, 100, &until)))
            .await
            .unwrap();
    assert_eq!((f.events, leased.claimed.len()), (2, 2));
    assert!(!leased.cut && !leased.more);
    assert_eq!(statuses(store, &events).await, vec!["delivering"; 5]);
}

#[tokio::test]
async fn a_stalled_subscription_gets_pending_deliveries_and_does_not_hold_back_the_others() {
    let app = TestApp::spawn().await;
    let store = &app.state.store;
    let (_a, a_url) = receiver(vec![(200, None, 0)]).await;
    let (_b, b_url) = receiver(vec![(200, None, 0)]).await;
    two_subscribers(store, &a_url, &b_url).await;
    for _ in 0..3 {
        append(store, EventName::TestPublished, None).await;
    }
    let ids = subscription_ids(store).await;
    let (slow, fast) = (ids["analytics-service"], ids["lms-integration"]);
    let now = assessment_service::clock::Clock::system().now();
    let until = |_: &[deliveries::Subscription]| later(now, 60);
    let room = std::collections::HashMap::from([(slow, 0)]);
    let stalled = std::collections::HashSet::from([slow]);
    let (f, leased) =
        deliveries::fan_out_leasing(store, 500, now, Some(lease(&room, &stalled, 100, &until)))
            .await
            .unwrap();
    assert_eq!((f.events, f.deliveries), (3, 6), "no event was held back");
    assert!(leased.claimed.iter().all(|c| c.subscription_id.0 == fast));
    assert_eq!(leased.claimed.len(), 3);
    assert_eq!(
        leased.deferred, 3,
        "the stalled one's wait, pending, for a claim"
    );
    let claimed = deliveries::claim(store, "other", now, later(now, 60), 100, 8)
        .await
        .unwrap();
    assert_eq!(claimed.len(), 3);
    assert!(claimed.iter().all(|c| c.subscription_id.0 == slow));
}

#[tokio::test]
async fn the_fan_out_leases_only_the_first_undelivered_event_of_a_key() {
    let app = TestApp::spawn().await;
    let store = &app.state.store;
    let (_rx, url) = receiver(vec![(200, None, 0)]).await;
    subscribe(store, &url, &["*"]).await;
    let now = assessment_service::clock::Clock::system().now();
    let until = |_: &[deliveries::Subscription]| later(now, 60);
    let (room, none) = (
        std::collections::HashMap::new(),
        std::collections::HashSet::new(),
    );
    let first = append(store, EventName::AttemptStarted, Some("attempt:1")).await;
    let second = append(store, EventName::AnswerSubmitted, Some("attempt:1")).await;
    let other = append(store, EventName::AttemptStarted, Some("attempt:2")).await;
    let (_, leased) =
        deliveries::fan_out_leasing(store, 500, now, Some(lease(&room, &none, 100, &until)))
            .await
            .unwrap();
    let sent: Vec<_> = leased.claimed.iter().map(|c| c.event_id.0).collect();
    assert_eq!(sent, [first.id, other.id], "the second waits for the first");
    assert_eq!(leased.blocked.len(), 1);
    // A later batch: the key's first event is still undelivered (stored, in flight).
    let third = append(store, EventName::AttemptSubmitted, Some("attempt:1")).await;
    let (_, leased) =
        deliveries::fan_out_leasing(store, 500, now, Some(lease(&room, &none, 100, &until)))
            .await
            .unwrap();
    assert!(
        leased.claimed.is_empty(),
        "held behind the stored first one"
    );
    assert_eq!(
        statuses(store, &[first, second, other, third]).await,
        ["delivering", "pending", "delivering", "pending"]
    );
}

#[tokio::test]
async fn a_running_loop_sends_held_back_events_as_soon_as_the_earlier_one_is_recorded() {
    let app = TestApp::spawn().await;
    let store = &app.state.store;
    let (rx, url) = receiver(vec![(200, None, 0)]).await;
    subscribe(store, &url, &["*"]).await;
    // Committed before the loop starts, so one fan-out sees all three.
    let key = Some("attempt:9");
    let mut ids = Vec::new();
    for name in [
        EventName::AttemptStarted,
        EventName::AnswerSubmitted,
        EventName::AttemptSubmitted,
    ] {
        ids.push(append(store, name, key).await.id.to_string());
    }
    let token = tokio_util::sync::CancellationToken::new();
    let started = Instant::now();
    let running = tokio::spawn(
        Dispatcher::new(store.clone(), app.state.clock.clone(), true).run(token.clone()),
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while rx.got.lock().unwrap().len() < 3 {
        assert!(Instant::now() < deadline, "not all arrived");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let took = started.elapsed();
    token.cancel();
    running.await.unwrap();
    let got: Vec<String> = rx
        .got
        .lock()
        .unwrap()
        .iter()
        .map(|r| r.body["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(got, ids, "in order");
    // Each held-back event is claimed when the one before it is recorded, not at the next
    // poll (500 ms): two polls would take a second.
    assert!(took < Duration::from_millis(900), "took {took:?}");
}

#[tokio::test]
async fn a_running_loop_works_through_a_backlog_without_waiting_for_polls() {
    let app = TestApp::spawn().await;
    let store = &app.state.store;
    let (rx, url) = receiver(vec![(200, None, 0)]).await;
    subscribe(store, &url, &["*"]).await;
    // Ten claims' worth of pending deliveries, fanned out with no dispatcher to lease them
    // (as after an outage).
    let n = 640;
    let mut events = Vec::with_capacity(n);
    for _ in 0..n {
        events.push(append(store, EventName::AnswerSubmitted, None).await);
    }
    let mut fanned = 0;
    while fanned < n {
        let f = deliveries::fan_out(store, 500, app.state.clock.now())
            .await
            .unwrap();
        assert!(f.events > 0);
        fanned += f.events;
    }
    let token = tokio_util::sync::CancellationToken::new();
    let started = Instant::now();
    let running = tokio::spawn(
        Dispatcher::new(store.clone(), app.state.clock.clone(), true).run(token.clone()),
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    while rx.got.lock().unwrap().len() < n {
        assert!(Instant::now() < deadline, "the backlog did not drain");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let took = started.elapsed();
    token.cancel();
    running.await.unwrap();
    // Each claim follows the tries recorded before it (64 a subscription in flight): waiting
    // for the poll (500 ms) between claims would take over 4.5 s.
    assert!(took < Duration::from_secs(3), "took {took:?}");
    assert_eq!(
        statuses(store, &events).await,
        vec!["delivered".to_string(); n]
    );
}

/// A receiver on 127.0.0.1 that closes a keep-alive connection idle for `idle`, as Node's
/// HTTP server does after 5 s: a request that arrives on such a connection is lost with it
/// (counted), as when it crosses the server's close on the wire. Every other request gets 200.
async fn idle_closing_receiver(idle: Duration) -> (String, Arc<std::sync::atomic::AtomicUsize>) {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let lost = Arc::new(AtomicUsize::new(0));
    let counter = lost.clone();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let lost = counter.clone();
            tokio::spawn(async move {
                let (mut buf, mut last) = (Vec::new(), Instant::now());
                let mut chunk = [0u8; 16 * 1024];
                loop {
                    let n = match socket.read(&mut chunk).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => n,
                    };
                    if buf.is_empty() && last.elapsed() >= idle {
                        lost.fetch_add(1, Ordering::SeqCst);
                        return;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                    while let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                        let head = String::from_utf8_lossy(&buf[..end]).to_lowercase();
                        let len: usize = head
                            .lines()
                            .find_map(|l| l.strip_prefix("content-length:"))
                            .map_or(0, |v| v.trim().parse().unwrap());
                        if buf.len() < end + 4 + len {
                            break;
                        }
                        buf.drain(..end + 4 + len);
                        let ok = b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n";
                        if socket.write_all(ok).await.is_err() {
                            return;
                        }
                        last = Instant::now();
                    }
                }
            });
        }
    });
    (url, lost)
}

/// Receivers that close idle keep-alive connections after 5 s (Node's default, the seed's
/// Express receiver): the delivery after a pause still succeeds on its first try, because
/// the service never reuses a connection idle that long.
#[tokio::test]
async fn a_receiver_closing_idle_connections_after_5_s_gets_every_first_try() {
    let app = TestApp::spawn().await;
    let store = &app.state.store;
    let (url, lost) = idle_closing_receiver(Duration::from_secs(5)).await;
    subscribe(store, &url, &["*"]).await;
    let clock = ManualClock::starting_now();
    let d = Dispatcher::new(store.clone(), clock.clock(), true);
    append(store, EventName::TestPublished, None).await;
    assert_eq!(pass(&d).await.delivered, 1);
    tokio::time::sleep(Duration::from_millis(5_300)).await;
    let e = append(store, EventName::TestPublished, None).await;
    let second = pass(&d).await;
    assert_eq!(second.delivered, 1, "{second:?}");
    assert_eq!(lost.load(std::sync::atomic::Ordering::SeqCst), 0);
    let rows = deliveries::of_event(store, e.id).await.unwrap();
    assert_eq!(rows[0].attempt_count, 1);
}

/// Deliveries are counted by outcome, kind and subscription, and timed: the send, and from
/// the event's commit to the receiver's acknowledgement, both as histograms (buckets add up
/// across instances, where a summary's quantiles do not).
#[tokio::test]
async fn deliveries_are_measured_by_kind_and_subscription() {
    let app = TestApp::spawn().await;
    let store = &app.state.store;
    let (_rx, url) = receiver(vec![(200, None, 0)]).await;
    subscribe(store, &url, &["*"]).await;
    append(store, EventName::TestPublished, None).await;
    let clock = ManualClock::starting_now();
    let d = Dispatcher::new(store.clone(), clock.clock(), true);
    assert_eq!(pass(&d).await.delivered, 1);
    let text = app.get("/metrics").await.text();
    let has = |family: &str, labels: &[&str]| {
        text.lines()
            .any(|l| l.starts_with(&format!("{family}{{")) && labels.iter().all(|x| l.contains(x)))
    };
    assert!(
        has(
            "event_deliveries_total",
            &[
                r#"outcome="delivered""#,
                r#"kind="webhook""#,
                r#"subscription="external-service""#
            ]
        ),
        "{text}"
    );
    assert!(
        has("event_commit_to_delivery_seconds_bucket", &[r#"le="0.5""#]),
        "{text}"
    );
    assert!(
        has(
            "event_delivery_send_duration_seconds_bucket",
            &[r#"kind="webhook""#]
        ),
        "{text}"
    );
    assert!(
        text.contains("# TYPE event_commit_to_delivery_seconds histogram"),
        "{text}"
    );
}

/// A request's W3C `traceparent` goes on with the deliveries of the events it committed:
/// same trace and flags, the service's own span as the parent. A request without one starts
/// a trace of its own.
#[tokio::test]
async fn a_requests_traceparent_goes_on_with_the_deliveries_of_its_events() {
    let app = TestApp::spawn().await;
    let store = &app.state.store;
    let (rx, url) = receiver(vec![(200, None, 0)]).await;
    subscribe(store, &url, &["question.created"]).await;
    let given = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    let mut traced = tenancy();
    traced.push(("traceparent", given));
    let question = json!({"text": "Why?", "type": "essay"});
    for headers in [traced, tenancy()] {
        app.call_with(
            http::Method::POST,
            "/assessment/v1/questions",
            Some(question.clone()),
            &headers,
        )
        .await
        .expect_status(201);
    }
    let d = Dispatcher::new(store.clone(), app.state.clock.clone(), true);
    assert_eq!(pass(&d).await.delivered, 2);
    let got = rx.got.lock().unwrap();
    let sent: Vec<Vec<String>> = got
        .iter()
        .map(|r| {
            r.headers["traceparent"]
                .to_str()
                .unwrap()
                .split('-')
                .map(str::to_string)
                .collect()
        })
        .collect();
    let continued = sent
        .iter()
        .find(|t| t[1] == "4bf92f3577b34da6a3ce929d0e0e4736")
        .expect("the caller's trace");
    assert_eq!(continued[0], "00");
    assert_eq!(continued[3], "01");
    assert_ne!(
        continued[2], "00f067aa0ba902b7",
        "the service's span is the parent"
    );
    assert_eq!(continued[2].len(), 16);
    let started = sent
        .iter()
        .find(|t| t[1] != "4bf92f3577b34da6a3ce929d0e0e4736")
        .expect("a trace of its own");
    assert_eq!((started[1].len(), started[3].as_str()), (32, "00"));
}

/// The environment's four webhooks take their timeout and retries from `*_TIMEOUT_MS` and
/// `*_RETRIES` (issue 18, item 5); unset, the defaults.
#[tokio::test]
async fn the_environments_webhooks_take_their_timeout_and_retries() {
    use assessment_service::app::Components;
    use assessment_service::config::Config;
    let config = Config {
        node_env: "test".into(),
        external_plugins_in_test: true,
        analytics_service_webhook_url: Some("https://analytics.example.org/in".into()),
        analytics_service_timeout_ms: Some(2_500),
        analytics_service_retries: Some(7),
        lms_integration_url: Some("https://lms.example.org/in".into()),
        ..Config::default()
    };
    let app = TestApp::with_config(config.clone()).await;
    Components::from_config(&config)
        .unwrap()
        .sync_subscriptions(&app.state.store)
        .await
        .unwrap();
    let subs = deliveries::all_subscriptions(&app.state.store)
        .await
        .unwrap();
    let of = |name: &str| {
        let s = subs.iter().find(|s| s.name == name).unwrap();
        (s.timeout_ms, s.max_retries)
    };
    assert_eq!(of("analytics-service"), (2_500, 7));
    assert_eq!(of("lms-integration"), (10_000, 3));
}
