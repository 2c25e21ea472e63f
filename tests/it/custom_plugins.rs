//! Custom plugins: JavaScript modules from `CUSTOM_PLUGINS_DIR`, run sandboxed, their hooks
//! shaping what their external service receives.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use assessment_service::app::Components;
use assessment_service::clock::{Clock, ManualClock};
use assessment_service::config::Config;
use assessment_service::events::dispatcher::{Claim, Dispatcher, Tally};
use axum::http::Method;
use serde_json::{Value, json};

use crate::harness::*;

/// A receiver on 127.0.0.1 that answers 200 and keeps every body.
async fn receiver() -> (Arc<Mutex<Vec<Value>>>, String) {
    let got: Arc<Mutex<Vec<Value>>> = Arc::default();
    let sink = got.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |body: axum::body::Bytes| {
            let sink = sink.clone();
            async move {
                sink.lock()
                    .unwrap()
                    .push(serde_json::from_slice(&body).unwrap_or(Value::Null));
                "ok"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (got, url)
}

/// A folder holding these plugin files.
fn plugin_dir(files: &[(&str, String)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (name, source) in files {
        std::fs::write(dir.path().join(name), source).unwrap();
    }
    dir
}

/// An app loading the plugins of `dir`, its subscriptions registered, and its dispatcher.
async fn app_with(dir: &std::path::Path, clock: Option<&ManualClock>) -> (TestApp, Dispatcher) {
    let config = Config {
        custom_plugins_dir: Some(dir.to_path_buf()),
        ..Config::default()
    };
    let app = match clock {
        Some(c) => TestApp::with_config_on(config.clone(), c).await,
        None => TestApp::with_config(config.clone()).await,
    };
    Components::from_config(&config)
        .unwrap()
        .sync_subscriptions(&app.state.store)
        .await
        .unwrap();
    let d = Dispatcher::with_targets(
        app.state.store.clone(),
        clock.map_or_else(Clock::system, ManualClock::clock),
        true,
        app.state.plugins.clone(),
        app.state.brokers.clone(),
    );
    (app, d)
}

/// One pass of the dispatcher, waited for.
async fn pass(d: &Dispatcher) -> Tally {
    d.step(Claim::Due).await.unwrap();
    d.settle().await
}

/// A plugin with a webhook to `url` and these hooks (JavaScript source of the array).
fn with_webhook(id: &str, url: &str, hooks: &str) -> String {
    format!(
        r#"export default {{
  id: '{id}', name: '{id}', type: 'external',
  externalService: {{ type: 'webhook', webhook: {{ url: '{url}', events: ['test.created'] }} }},
  hooks: {hooks},
}};"#
    )
}

/// The seed's `CustomWebhookPlugin`, with its TypeScript annotations and import removed, and
/// its URL pointing at the test's receiver.
fn seed_example(url: &str) -> String {
    r#"
export class CustomWebhookPlugin {
  id = 'custom-webhook';
  name = 'Custom Webhook Plugin';
  version = '1.0.0';
  description = 'Custom webhook for specific events';
  author = 'Your Organization';
  type = 'external';
  isActive = true;

  externalService = {
    type: 'webhook',
    webhook: {
      url: 'https://your-custom-service.com/webhook',
      method: 'POST',
      headers: {
        'Authorization': 'Bearer your-api-key',
        'Content-Type': 'application/json',
      },
      timeout: 15000,
      retries: 5,
      events: ['attempt.started', 'test.published'],
    },
  };

  hooks = [
    {
      name: 'attempt.started',
      handler: async (event) => {
        // Custom processing logic
        console.log('Custom processing for attempt started:', event.data);
      },
      priority: 100,
    },
  ];
}
"#
    .replace("https://your-custom-service.com/webhook", url)
}

#[tokio::test]
async fn custom_the_seed_example_loads_runs_its_hook_and_delivers() {
    let (got, url) = receiver().await;
    let dir = plugin_dir(&[("custom-webhook.js", seed_example(&url))]);
    let (app, d) = app_with(dir.path(), None).await;
    let plugins = app
        .call(Method::GET, "/assessment/v1/plugins", None)
        .await
        .json();
    let custom = plugins["result"]["internalPlugins"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["id"] == "custom-webhook")
        .cloned()
        .expect("listed");
    assert_eq!(
        custom["hooks"],
        json!([{"name": "attempt.started", "priority": 100}])
    );
    assert_eq!(custom["type"], "external");
    assert_eq!(custom["version"], "1.0.0");

    let (test, _) =
        published_test(&app, json!({}), vec![json!({"text": "Q", "type": "essay"})]).await;
    start_attempt(&app, &test, USER).await;
    let t = pass(&d).await;
    assert_eq!((t.delivered, t.retrying, t.dead), (2, 0, 0), "{t:?}");
    let names: Vec<Value> = got
        .lock()
        .unwrap()
        .iter()
        .map(|b| b["name"].clone())
        .collect();
    assert_eq!(names, [json!("test.published"), json!("attempt.started")]);
    assert_eq!(got.lock().unwrap()[1]["data"]["testId"], test.as_str());
}

#[tokio::test]
async fn custom_a_hook_transforms_the_payload_in_priority_order() {
    let (got, url) = receiver().await;
    let hook = |p: i32| {
        format!(
            "{{ name: 'test.created', priority: {p}, handler: (e) => ({{ ...e, data: {{ ...e.data, order: [...(e.data.order || []), {p}] }} }}) }}"
        )
    };
    let hooks = format!("[{}, {}, {}]", hook(1), hook(10), hook(5));
    let dir = plugin_dir(&[("order.js", with_webhook("order", &url, &hooks))]);
    let (app, d) = app_with(dir.path(), None).await;
    create_test(&app, json!({"title": "T", "type": "plain"})).await;
    assert_eq!(pass(&d).await.delivered, 1);
    let body = got.lock().unwrap()[0].clone();
    assert_eq!(body["data"]["order"], json!([10, 5, 1]), "{body}");
    assert_eq!(body["name"], "test.created");
    assert_eq!(
        body["data"]["testTitle"], "T",
        "the rest of the event is kept"
    );
}

#[tokio::test]
async fn custom_a_cancelling_hook_skips_its_plugin_only() {
    let (got, url) = receiver().await;
    let dir = plugin_dir(&[
        (
            "a.js",
            with_webhook("a-cancels", &url, "[{ name: '*', handler: () => false }]"),
        ),
        (
            "b.js",
            with_webhook(
                "b-keeps",
                &url,
                "[{ name: '*', handler: (e) => { e.data.ignored = true; } }]",
            ),
        ),
    ]);
    let (app, d) = app_with(dir.path(), None).await;
    create_test(&app, json!({"title": "T", "type": "plain"})).await;
    let t = pass(&d).await;
    assert_eq!((t.delivered, t.skipped, t.retrying), (1, 1, 0), "{t:?}");
    let got = got.lock().unwrap().clone();
    assert_eq!(got.len(), 1);
    assert!(
        got[0]["data"].get("ignored").is_none(),
        "mutating the argument without returning it changes nothing"
    );
    let e = &events(&app, "test.created").await[0];
    let rows = assessment_service::store::deliveries::of_event(
        &app.state.store,
        e["id"].as_str().unwrap().parse().unwrap(),
    )
    .await
    .unwrap();
    let mut statuses: Vec<String> = rows
        .iter()
        .map(|r| {
            serde_json::to_value(r).unwrap()["status"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    statuses.sort();
    assert_eq!(statuses, ["cancelled", "delivered"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn custom_an_endless_loop_and_a_memory_bomb_fail_their_tries_while_the_api_answers() {
    let dir = plugin_dir(&[
        (
            "loop.js",
            r#"export default { id: 'looper', hooks: [{ name: 'test.created',
                handler: (e) => { if (e.data.testTitle === 'loop') { while (true) {} } } }] };"#
                .to_string(),
        ),
        (
            "bomb.js",
            r#"export default { id: 'bomber', hooks: [{ name: 'test.created',
                handler: (e) => { if (e.data.testTitle === 'loop') { const a = []; while (true) { a.push(new Array(100000).fill(7)); } } } }] };"#
                .to_string(),
        ),
    ]);
    let (app, d) = app_with(dir.path(), None).await;
    create_test(&app, json!({"title": "loop", "type": "plain"})).await;
    let started = Instant::now();
    let stepping = {
        let d = d.clone();
        tokio::spawn(async move { pass(&d).await })
    };
    // The API answers while both hooks run away.
    let mut slowest = Duration::ZERO;
    while !stepping.is_finished() {
        let t = Instant::now();
        let r = app.get("/health/live").await;
        assert_eq!(r.status, 200);
        slowest = slowest.max(t.elapsed());
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let t = stepping.await.unwrap();
    assert_eq!((t.retrying, t.delivered), (2, 0), "{t:?}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "the limits ended both within {:?}",
        started.elapsed()
    );
    assert!(
        slowest < Duration::from_millis(200),
        "the API answered within {slowest:?}"
    );
    let e = &events(&app, "test.created").await[0];
    let rows = assessment_service::store::deliveries::of_event(
        &app.state.store,
        e["id"].as_str().unwrap().parse().unwrap(),
    )
    .await
    .unwrap();
    let errors: Vec<String> = rows
        .iter()
        .map(|r| {
            serde_json::to_value(r).unwrap()["lastError"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert!(
        errors.iter().any(|e| e.contains("past its 100 ms limit")),
        "{errors:?}"
    );
    assert!(
        errors.iter().any(|e| e.contains("out of memory")),
        "{errors:?}"
    );

    // Each plugin runs again afterwards (its runtime was replaced).
    create_test(&app, json!({"title": "fine", "type": "plain"})).await;
    let t = pass(&d).await;
    assert_eq!(t.delivered, 2, "{t:?}");
}

#[tokio::test]
async fn custom_a_throwing_hook_is_retried_then_dead_lettered() {
    let clock = ManualClock::starting_now();
    let dir = plugin_dir(&[(
        "thrower.js",
        r#"export default { id: 'thrower', hooks: [{ name: 'test.created',
            handler: async (e) => { throw new Error('no ' + e.data.testTitle); } }] };"#
            .to_string(),
    )]);
    let (app, d) = app_with(dir.path(), Some(&clock)).await;
    create_test(&app, json!({"title": "luck", "type": "plain"})).await;
    // A hook-only plugin has 3 retries: four tries, then the dead letter.
    let mut tally = Tally::default();
    for _ in 0..4 {
        let t = pass(&d).await;
        tally.retrying += t.retrying;
        tally.dead += t.dead;
        clock.advance(chrono::Duration::hours(2));
    }
    assert_eq!((tally.retrying, tally.dead), (3, 1), "{tally:?}");
    let e = &events(&app, "test.created").await[0];
    let rows = assessment_service::store::deliveries::of_event(
        &app.state.store,
        e["id"].as_str().unwrap().parse().unwrap(),
    )
    .await
    .unwrap();
    let row = serde_json::to_value(&rows[0]).unwrap();
    assert_eq!(row["status"], "dead");
    assert!(
        row["lastError"].as_str().unwrap().contains("no luck"),
        "{row}"
    );
}

/// A plugin whose external service is a stream: its hook's payload is what the stream gets.
#[tokio::test]
async fn custom_a_plugin_publishes_its_hooks_payload_to_its_stream() {
    use crate::brokers::{REDIS_URL, delete_key, read_redis, unique};
    let key = unique("it-redis-");
    let source = format!(
        r#"export default {{
  id: 'to-stream', type: 'external',
  externalService: {{ type: 'event-stream', stream: {{ url: '{REDIS_URL}', topic: '{key}', events: ['test.created'] }} }},
  hooks: [{{ name: 'test.created', handler: (e) => ({{ ...e, data: {{ title: e.data.testTitle.toUpperCase() }} }}) }}],
}};"#
    );
    let dir = plugin_dir(&[("to-stream.js", source)]);
    let (app, d) = app_with(dir.path(), None).await;
    create_test(&app, json!({"title": "shout", "type": "plain"})).await;
    assert_eq!(pass(&d).await.delivered, 1);
    let seen = read_redis(&key).await;
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].body["data"], json!({"title": "SHOUT"}));
    assert_eq!(seen[0].event_name, "test.created");
    delete_key(&key).await;
}
