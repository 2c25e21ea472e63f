//! Rate limits: per tenant after authentication, per client address (through trusted proxies),
//! health and metrics exempt, 429 in the envelope with `Retry-After`; replays bounded per call
//! and per tenant.

use std::net::SocketAddr;
use std::time::Instant;

use assessment_service::config::Config;
use assessment_service::events::dispatcher::{Claim, Dispatcher};
use axum::body::Body;
use axum::extract::ConnectInfo;
use http::{Method, Request};
use serde_json::json;

use crate::harness::*;

/// Sends `n` requests made by `make` back to back; returns their statuses and the seconds
/// they took.
async fn burst(
    app: &TestApp,
    n: usize,
    make: impl Fn() -> Request<Body>,
) -> (Vec<u16>, f64, Vec<TestResponse>) {
    let started = Instant::now();
    let mut out = Vec::new();
    for _ in 0..n {
        out.push(app.send(make()).await);
    }
    let statuses = out.iter().map(|r| r.status.as_u16()).collect();
    (statuses, started.elapsed().as_secs_f64(), out)
}

/// A `GET` of `path` from `peer` through a socket, with `headers`.
fn from(peer: &str, path: &str, headers: &[(&str, &str)]) -> Request<Body> {
    let mut req = Request::builder().method(Method::GET).uri(path);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let mut req = req.body(Body::empty()).unwrap();
    let peer: SocketAddr = peer.parse().unwrap();
    req.extensions_mut().insert(ConnectInfo(peer));
    req
}

/// At `per_sec` with a burst of twice that, how many of requests sent over `secs` may pass.
fn allowed(per_sec: f64, secs: f64) -> usize {
    (2.0 * per_sec + per_sec * secs).ceil() as usize + 1
}

fn assert_refused(r: &TestResponse, message: &str) {
    let v = r.json();
    assert_eq!(v["params"]["err"], "TOO_MANY_REQUESTS", "{v}");
    assert_eq!(v["responseCode"], "CLIENT_ERROR");
    assert!(
        v["params"]["errmsg"].as_str().unwrap().contains(message),
        "{v}"
    );
    let wait: u64 = r
        .header("retry-after")
        .expect("Retry-After")
        .parse()
        .unwrap();
    assert!((1..=60).contains(&wait), "{wait}");
}

#[tokio::test]
async fn a_tenant_over_its_rate_gets_429_and_other_tenants_and_health_do_not() {
    let app = TestApp::with_config(Config {
        rate_limit_tenant_per_sec: 1,
        rate_limit_refusal_hold_ms: 0,
        ..Config::default()
    })
    .await;
    let tests = |headers: Vec<(&'static str, &'static str)>| {
        move || {
            let mut req = Request::builder().uri("/assessment/v1/tests");
            for (k, v) in &headers {
                req = req.header(*k, *v);
            }
            req.body(Body::empty()).unwrap()
        }
    };
    let (statuses, secs, responses) = burst(&app, 12, tests(tenancy())).await;
    let passed = statuses.iter().filter(|s| **s == 200).count();
    assert!(passed >= 2, "the burst passes: {statuses:?}");
    assert!(passed <= allowed(1.0, secs), "{statuses:?} in {secs} s");
    assert!(
        statuses.iter().all(|s| *s == 200 || *s == 429),
        "{statuses:?}"
    );
    assert_refused(
        responses.iter().find(|r| r.status == 429).unwrap(),
        "Too many requests for this tenant",
    );

    // Another tenant has its own allowance; health and metrics have none.
    let other = vec![
        ("tenantid", OTHER_TENANT),
        ("organisationid", ORG),
        ("userid", USER),
    ];
    assert_eq!(app.send(tests(other)()).await.status, 200);
    for path in ["/health/live", "/health/ready", "/metrics"] {
        let (statuses, _, _) = burst(&app, 5, || from("127.0.0.1:9", path, &[])).await;
        assert!(statuses.iter().all(|s| *s == 200), "{path}: {statuses:?}");
    }
}

#[tokio::test]
async fn a_client_address_over_its_rate_gets_429_and_forwarded_addresses_count_behind_a_trusted_proxy()
 {
    let app = TestApp::with_config(Config {
        rate_limit_ip_per_sec: 1,
        rate_limit_tenant_per_sec: 0,
        trusted_proxies: "10.0.0.0/8".into(),
        rate_limit_refusal_hold_ms: 0,
        ..Config::default()
    })
    .await;
    let headers = tenancy();
    let (statuses, secs, responses) = burst(&app, 12, || {
        from("192.0.2.1:5000", "/assessment/v1/tests", &headers)
    })
    .await;
    let passed = statuses.iter().filter(|s| **s == 200).count();
    assert!(passed >= 2 && passed <= allowed(1.0, secs), "{statuses:?}");
    assert_refused(
        responses.iter().find(|r| r.status == 429).unwrap(),
        "Too many requests from this address",
    );
    // Health is exempt for the same address; a different address is not limited by it.
    let (statuses, _, _) = burst(&app, 5, || from("192.0.2.1:5000", "/health/live", &[])).await;
    assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");
    let r = app
        .send(from("192.0.2.2:5000", "/assessment/v1/tests", &headers))
        .await;
    assert_eq!(r.status, 200);

    // Behind the trusted proxy each forwarded client has its own allowance; from an untrusted
    // peer the header is ignored (the peer's own allowance is spent).
    let mut forwarded = headers.clone();
    forwarded.push(("x-forwarded-for", "198.51.100.7"));
    let (statuses, _, _) = burst(&app, 12, || {
        from("10.1.2.3:5000", "/assessment/v1/tests", &forwarded)
    })
    .await;
    assert!(statuses.contains(&429), "{statuses:?}");
    let mut another = headers.clone();
    another.push(("x-forwarded-for", "198.51.100.8"));
    let r = app
        .send(from("10.1.2.3:5000", "/assessment/v1/tests", &another))
        .await;
    assert_eq!(r.status, 200, "another client behind the same proxy");
    let r = app
        .send(from("192.0.2.1:5000", "/assessment/v1/tests", &another))
        .await;
    assert_eq!(
        r.status, 429,
        "an untrusted peer cannot name another client"
    );
}

/// Makes `n` tests (each a `test.created` event) and delivers their events to a subscription
/// of the default tenant pointing at a closed port: each ends dead after its one try.
async fn dead_deliveries(app: &TestApp, n: usize) {
    let body = json!({"name": "nowhere", "url": "http://127.0.0.1:9/hook",
        "events": ["test.created"], "retries": 0, "timeout": 1000});
    app.call(Method::POST, "/assessment/v1/webhooks", Some(body))
        .await
        .expect_status(201);
    for i in 0..n {
        create_test(app, json!({"title": format!("T{i}"), "type": "plain"})).await;
    }
    let d = Dispatcher::new(app.state.store.clone(), app.state.clock.clone(), true);
    let mut ended = 0;
    while ended < n {
        d.step(Claim::Due).await.unwrap();
        let tally = d.settle().await;
        ended += tally.dead + tally.delivered;
        assert!(tally.dead + tally.delivered + tally.retrying > 0 || ended >= n);
    }
}

async fn pending(app: &TestApp) -> i64 {
    let r = app
        .call(
            Method::GET,
            "/assessment/v1/webhooks/deliveries?status=pending",
            None,
        )
        .await;
    r.expect_status(200)["result"]["totalElements"]
        .as_i64()
        .unwrap()
}

async fn replay(app: &TestApp, body: serde_json::Value) -> TestResponse {
    app.call(Method::POST, "/assessment/v1/webhooks/replay", Some(body))
        .await
}

#[tokio::test]
async fn replays_are_bounded_per_call_and_per_tenant() {
    let range = json!({"from": "2000-01-01T00:00:00Z", "to": "2100-01-01T00:00:00Z"});

    // Per call: a range matching more than the maximum writes nothing.
    let app = TestApp::with_config(Config {
        webhook_allow_private_networks: true,
        replay_max_deliveries: 2,
        rate_limit_refusal_hold_ms: 0,
        ..Config::default()
    })
    .await;
    dead_deliveries(&app, 3).await;
    let r = replay(&app, range.clone()).await;
    assert_eq!(r.status, 422, "{}", r.text());
    assert_eq!(
        r.errmsg(),
        "More than 2 deliveries match; replay a narrower range (from/to, subscriptionId or status)"
    );
    assert_eq!(pending(&app).await, 0, "nothing was put back");

    // Per tenant: the minute's allowance counts deliveries, across the replay routes.
    let app = TestApp::with_config(Config {
        webhook_allow_private_networks: true,
        replay_tenant_per_min: 4,
        rate_limit_refusal_hold_ms: 0,
        ..Config::default()
    })
    .await;
    dead_deliveries(&app, 3).await;
    let r = replay(&app, range.clone()).await;
    assert_eq!(r.expect_status(201)["result"]["replayed"], 3);
    let r = replay(&app, range.clone()).await;
    assert_eq!(r.status, 429, "{}", r.text());
    assert_refused(&r, "would exceed this tenant's replays per minute");
    let r = app
        .call(
            Method::GET,
            "/assessment/v1/webhooks/deliveries?limit=1",
            None,
        )
        .await;
    let delivery = r.expect_status(200)["result"]["content"][0]["deliveryId"]
        .as_str()
        .unwrap()
        .to_string();
    let one = format!("/assessment/v1/webhooks/deliveries/{delivery}/replay");
    app.call(Method::POST, &one, None).await.expect_status(201);
    let r = app.call(Method::POST, &one, None).await;
    assert_eq!(r.status, 429, "the allowance is spent: {}", r.text());
}

#[tokio::test]
async fn a_long_target_or_large_headers_get_414_and_431_in_the_envelope() {
    let app = TestApp::spawn().await;
    let long = format!("/assessment/v1/tests?search={}", "a".repeat(50 * 1024));
    let r = app.call(Method::GET, &long, None).await;
    assert_failure_envelope(
        &r.json(),
        "api.tests.get",
        "URI_TOO_LONG",
        "CLIENT_ERROR",
        &format!(
            "The request target is {} bytes; at most 49152 are read",
            long.len()
        ),
    );
    assert_eq!(r.status, 414);
    let big = "b".repeat(40 * 1024);
    let mut headers = tenancy();
    headers.push(("x-big", &big));
    let r = app
        .call_with(Method::GET, "/assessment/v1/tests", None, &headers)
        .await;
    assert_eq!(r.status, 431);
    let v = r.json();
    assert_eq!(v["params"]["err"], "HEADERS_TOO_LARGE", "{v}");
    assert_eq!(v["responseCode"], "CLIENT_ERROR");
    // Under both: served as usual.
    let mut headers = tenancy();
    let fine = "c".repeat(16 * 1024);
    headers.push(("x-fine", &fine));
    let r = app
        .call_with(Method::GET, "/assessment/v1/tests?limit=1", None, &headers)
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
}

#[tokio::test]
async fn a_tenant_over_its_allowance_of_body_bytes_gets_429_before_the_body_is_read() {
    let app = TestApp::with_config(Config {
        rate_limit_tenant_per_sec: 0,
        rate_limit_tenant_bytes_per_sec: 10 * 1024,
        rate_limit_refusal_hold_ms: 0,
        file_max_size_mb: 1,
        ..Config::default()
    })
    .await;
    // The burst holds one body of the largest size, an upload's (1 MiB of file and 1 MiB
    // more): four bodies of 500 KB are read (and refused as what they are), the fifth is
    // refused for the bytes alone.
    let body = format!("{{\"text\": \"{}\"}}", "x".repeat(500 * 1024));
    let mut statuses = Vec::new();
    for _ in 0..5 {
        let mut req = Request::builder()
            .method(Method::POST)
            .uri("/assessment/v1/questions")
            .header("content-type", "application/json")
            .header("content-length", body.len());
        for (k, v) in tenancy() {
            req = req.header(k, v);
        }
        let r = app.send(req.body(Body::from(body.clone())).unwrap()).await;
        statuses.push(r.status.as_u16());
        if r.status == 429 {
            assert_refused(&r, "Too much request data for this tenant");
        }
    }
    assert_eq!(statuses, vec![400, 400, 400, 400, 429]);
    // A request without a body still passes, and so does another tenant's body.
    assert_eq!(
        app.call(Method::GET, "/assessment/v1/tests", None)
            .await
            .status,
        200
    );
    let other = [
        ("tenantid", OTHER_TENANT),
        ("organisationid", ORG),
        ("userid", USER),
    ];
    let r = app
        .call_with(
            Method::POST,
            "/assessment/v1/questions",
            Some(json!({"text": "x"})),
            &other,
        )
        .await;
    assert_eq!(r.status, 400, "{}", r.text());
}

/// A refused request is held before its 429 goes out (at most `RATE_LIMIT_REFUSAL_HOLD_MS`,
/// never past its `Retry-After`), so a client that retries at once is paced by the hold;
/// an allowed request is not held.
#[tokio::test]
async fn a_refusal_is_held_before_it_is_sent() {
    let app = TestApp::with_config(Config {
        rate_limit_tenant_per_sec: 1,
        rate_limit_refusal_hold_ms: 300,
        ..Config::default()
    })
    .await;
    let list = || from("127.0.0.1:9", "/assessment/v1/tests", &tenancy());
    let (statuses, secs, _) = burst(&app, 2, list).await;
    assert_eq!(statuses, [200, 200]);
    assert!(secs < 0.3, "allowed requests are not held: {secs} s");
    let started = Instant::now();
    let refused = app.send(list()).await;
    let held = started.elapsed().as_secs_f64();
    assert_eq!(refused.status, 429);
    assert_refused(&refused, "Too many requests for this tenant");
    assert!((0.3..1.0).contains(&held), "held {held} s");
}
