//! Delivery backlog benchmark (issue 14), PostgreSQL: the cost of one claim against the size of
//! the backlog, and how fast a backlog drains once the receiver is back.
//!
//! For each backlog size: a fresh schema, one webhook subscription to a receiver in its own
//! process (this program started again as `backlog_bench receive`), that many committed and
//! fanned-out events (deliveries pending: the receiver was down), then 20 claims
//! timed one by one (each leases up to the per-subscription cap, 32, released again before the
//! next). For the largest size the dispatcher then drains the backlog to the receiver, and
//! claims are timed again on the emptied queue (whose indexes still hold the dead row versions
//! the drain left), and once more after a `VACUUM` of the table (what autovacuum does).
//!
//! cargo run --release --example backlog_bench -- postgres://postgres@127.0.0.1:5432/test [sizes...]
//! (default sizes: 0 100 10000 100000; 100 is the smallest that fills every claim)

use std::io::BufRead;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use assessment_service::clock::Clock;
use assessment_service::domain::event::{EventContext, EventName, NewEvent};
use assessment_service::events::dispatcher::Dispatcher;
use assessment_service::store::{Store, Ts, deliveries, outbox};
use serde_json::json;
use tokio_util::sync::CancellationToken;

mod support;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("receive") {
        return receive().await;
    }
    let url = args
        .get(1)
        .filter(|u| u.starts_with("postgres"))
        .ok_or_else(|| anyhow::anyhow!("usage: backlog_bench postgres://... [sizes...]"))?
        .clone();
    let sizes: Vec<usize> = if args.len() > 2 {
        args[2..]
            .iter()
            .map(|s| s.parse())
            .collect::<Result<_, _>>()?
    } else {
        vec![0, 100, 10_000, 100_000]
    };
    // The receiver, in its own process: it prints its address, then counts what it gets.
    let mut child = std::process::Command::new(std::env::current_exe()?)
        .arg("receive")
        .stdout(std::process::Stdio::piped())
        .spawn()?;
    let mut addr = String::new();
    std::io::BufReader::new(child.stdout.take().expect("piped")).read_line(&mut addr)?;
    let addr = addr.trim().to_string();
    let _receiver = Reaper(child);
    anyhow::ensure!(!addr.is_empty(), "the receiver did not start");
    let hook = format!("http://{addr}/hook");
    let http = reqwest::Client::new();
    let count_url = format!("http://{addr}/count");
    let received = || async {
        let n: usize = http.get(&count_url).send().await?.text().await?.parse()?;
        anyhow::Ok(n)
    };

    let largest = sizes.iter().copied().max().unwrap_or(0);
    for size in sizes {
        let (store, schema) = support::postgres_store(&url, "backlog").await?;
        store.migrate().await?;
        support::subscribe_webhook(&store, &hook).await?;
        fill(&store, size).await?;
        let claims = time_claims(&store, 20).await?;
        println!(
            "{{\"backlog\":{size},\"claim_us\":{{\"p50\":{},\"max\":{}}}}}",
            claims[claims.len() / 2],
            claims[claims.len() - 1]
        );
        if size == largest && size > 0 {
            let before = received().await?;
            let token = CancellationToken::new();
            let started = Instant::now();
            let dispatcher = Dispatcher::new(store.clone(), Clock::system(), true);
            let running = tokio::spawn(dispatcher.run(token.clone()));
            let target = size;
            while received().await? - before < target {
                anyhow::ensure!(
                    started.elapsed() < Duration::from_secs(600),
                    "the backlog did not drain"
                );
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            let took = started.elapsed().as_secs_f64();
            token.cancel();
            running.await?;
            println!(
                "{{\"backlog\":{size},\"drained\":{target},\"seconds\":{took:.1},\"per_s\":{:.0}}}",
                target as f64 / took
            );
            let claims = time_claims(&store, 20).await?;
            println!(
                "{{\"backlog\":\"0 after draining {size}\",\"claim_us\":{{\"p50\":{},\"max\":{}}}}}",
                claims[claims.len() / 2],
                claims[claims.len() - 1]
            );
            let pool = store.postgres().expect("a PostgreSQL store");
            sqlx::query(&format!("VACUUM \"{schema}\".\"deliveries\""))
                .execute(pool)
                .await?;
            let claims = time_claims(&store, 20).await?;
            println!(
                "{{\"backlog\":\"0 after draining {size}, vacuumed\",\"claim_us\":{{\"p50\":{},\"max\":{}}}}}",
                claims[claims.len() / 2],
                claims[claims.len() - 1]
            );
        }
        store.close().await;
        use sqlx::Connection;
        let mut c = sqlx::postgres::PgConnection::connect(&url).await?;
        sqlx::query(&format!("DROP SCHEMA \"{schema}\" CASCADE"))
            .execute(&mut c)
            .await?;
    }
    Ok(())
}

/// Stops the receiver process when the bench ends, however it ends.
struct Reaper(std::process::Child);

impl Drop for Reaper {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The receiver process: answers every POST to `/hook` with 200 and counts them; `GET /count`
/// says how many so far. Prints its address on the first line of its output.
async fn receive() -> anyhow::Result<()> {
    let received = Arc::new(AtomicUsize::new(0));
    let (counter, reader) = (received.clone(), received.clone());
    let app = axum::Router::new()
        .route(
            "/hook",
            axum::routing::post(move || {
                counter.fetch_add(1, Ordering::Relaxed);
                async { "ok" }
            }),
        )
        .route(
            "/count",
            axum::routing::get(move || {
                let n = reader.load(Ordering::Relaxed);
                async move { n.to_string() }
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    println!("{}", listener.local_addr()?);
    axum::serve(listener, app).await?;
    Ok(())
}

/// Commits `n` events (5,000 a transaction) and fans them all out: `n` pending deliveries.
async fn fill(store: &Store, n: usize) -> anyhow::Result<()> {
    let mut done = 0;
    while done < n {
        let k = (n - done).min(5_000);
        let events: Vec<NewEvent> = (done..done + k)
            .map(|i| {
                NewEvent::new(
                    uuid::Uuid::now_v7(),
                    EventName::AnswerSubmitted,
                    EventContext::default(),
                    json!({"attemptId": format!("a{i}"), "testId": "t", "questionId": i}),
                    chrono::Utc::now(),
                )
                .with_ordering_key(format!("attempt:{i}"))
            })
            .collect();
        let mut tx = store.begin().await?;
        outbox::append_many(&mut tx, &events).await?;
        tx.commit().await?;
        done += k;
    }
    let mut fanned = 0;
    while fanned < n {
        let f = deliveries::fan_out(store, 500, Ts::new(chrono::Utc::now())).await?;
        anyhow::ensure!(f.events > 0, "fan-out stopped at {fanned} of {n}");
        fanned += f.events;
    }
    Ok(())
}

/// `n` claims one after another, each timed (microseconds), sorted.
async fn time_claims(store: &Store, n: usize) -> anyhow::Result<Vec<u128>> {
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let now = chrono::Utc::now();
        let t = Instant::now();
        deliveries::claim(
            store,
            "backlog-bench",
            Ts::new(now),
            Ts::new(now + chrono::Duration::seconds(60)),
            256,
            32,
        )
        .await?;
        out.push(t.elapsed().as_micros());
        // Back to pending, so each claim finds the subscription's slots free (its leases
        // would otherwise block it until they expire).
        deliveries::release_leases(store, Ts::new(now)).await?;
    }
    out.sort_unstable();
    Ok(out)
}
