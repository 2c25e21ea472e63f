//! Delivery benchmark: commits N events (one transaction each) while the dispatcher runs, to a
//! webhook receiver on 127.0.0.1 in this process, and reports deliveries per second and
//! commit-to-receipt latency.
//!
//! cargo run --release --example delivery_bench -- [events] [database-url]
//! (default: 2000 events on a fresh SQLite file; a postgres:// URL uses a fresh schema in it)

use std::collections::HashMap;
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use assessment_service::clock::Clock;
use assessment_service::domain::event::{EventContext, EventName, NewEvent};
use assessment_service::events::dispatcher::Dispatcher;
use assessment_service::store::{Store, StoreOptions};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

mod support;

type Seen = Arc<Mutex<HashMap<String, Instant>>>;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let n: usize = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(2000);
    let url = args.get(2).cloned();
    let dir = tempfile::tempdir()?;
    let store = match url.as_deref() {
        Some(u) if u.starts_with("postgres") => support::postgres_store(u, "bench").await?.0,
        _ => {
            let path = dir.path().join("bench.db");
            let opts = sqlx::sqlite::SqliteConnectOptions::from_str(&format!(
                "sqlite://{}",
                path.display()
            ))?;
            Store::connect_sqlite(opts, StoreOptions::default()).await?
        }
    };
    store.migrate().await?;

    let seen: Seen = Arc::new(Mutex::new(HashMap::new()));
    let sink = seen.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |axum::Json(body): axum::Json<Value>| {
            let sink = sink.clone();
            async move {
                let id = body["id"].as_str().unwrap_or_default().to_string();
                sink.lock().unwrap().entry(id).or_insert_with(Instant::now);
                "ok"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let hook = format!("http://{}/hook", listener.local_addr()?);
    tokio::spawn(async move { axum::serve(listener, app).await });
    support::subscribe_webhook(&store, &hook).await?;

    let token = CancellationToken::new();
    let dispatcher = Dispatcher::new(store.clone(), Clock::system(), true);
    tokio::spawn(dispatcher.run(token.clone()));

    let started = Instant::now();
    let mut committed: HashMap<String, Instant> = HashMap::with_capacity(n);
    for i in 0..n {
        let e = NewEvent::new(
            uuid::Uuid::now_v7(),
            EventName::AnswerSubmitted,
            EventContext::default(),
            json!({"attemptId": format!("a{}", i % 50), "testId": "t", "questionId": i}),
            chrono::Utc::now(),
        )
        .with_ordering_key(format!("attempt:{}", i % 50));
        let mut tx = store.begin().await?;
        assessment_service::events::append(&mut tx, &e).await?;
        tx.commit().await?;
        committed.insert(e.id.to_string(), Instant::now());
    }
    let committed_in = started.elapsed();
    let deadline = Instant::now() + Duration::from_secs(300);
    while seen.lock().unwrap().len() < n {
        anyhow::ensure!(Instant::now() < deadline, "not every event arrived");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let total = started.elapsed();
    token.cancel();
    let seen = seen.lock().unwrap();
    let mut lat: Vec<f64> = committed
        .iter()
        .filter_map(|(id, t)| {
            seen.get(id)
                .map(|r| r.duration_since(*t).as_secs_f64() * 1000.0)
        })
        .collect();
    lat.sort_by(f64::total_cmp);
    let pct = |p: f64| lat[((lat.len() as f64 - 1.0) * p).round() as usize];
    println!(
        "{{\"backend\":\"{}\",\"events\":{n},\"commit_rate_per_s\":{:.0},\"deliveries_per_s\":{:.0},\"latency_ms\":{{\"p50\":{:.1},\"p95\":{:.1},\"p99\":{:.1},\"max\":{:.1}}}}}",
        store.backend().as_str(),
        n as f64 / committed_in.as_secs_f64(),
        n as f64 / total.as_secs_f64(),
        pct(0.5),
        pct(0.95),
        pct(0.99),
        lat[lat.len() - 1]
    );
    Ok(())
}
