//! `surge`: an exam's first minute. N distinct learners start the same published test at the
//! same moment over C connections, then each saves one answer and submits. A start refused
//! with 503 (the service's start queue is full) is sent again after its `Retry-After`.
//!
//! With `--starts-only` the learners only start (the reference for a start rate: what the
//! database commits of the smallest start transaction).
//!
//! Besides each route's latency on the wire, it reports what a learner waits for: the time
//! from the surge's first moment until the learner's attempt has started (queueing for a
//! connection and every refused try included), and when the last learner had started.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, ensure};
use serde_json::{Value, json};

use super::{Client, pct, report, setup_test};

/// One request on a connection of the surge's `C`: waits for a free one, then sends.
async fn send(
    c: &Client,
    connections: &tokio::sync::Semaphore,
    route: &'static str,
    path: &str,
    user: &str,
    body: Option<Value>,
) -> anyhow::Result<(u16, Value, Option<u64>)> {
    let _connection = connections.acquire().await?;
    let mut req = c.request(reqwest::Method::POST, path, user);
    if let Some(b) = body {
        req = req.json(&b);
    }
    let sent = Instant::now();
    let resp = req
        .send()
        .await
        .with_context(|| format!("{route}: request failed"))?;
    let status = resp.status().as_u16();
    let retry_after = resp
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok());
    let v: Value = resp
        .json()
        .await
        .with_context(|| format!("{route}: body is not JSON"))?;
    let ms = sent.elapsed().as_secs_f64() * 1000.0;
    let route = if status == 503 {
        "start refused (503)"
    } else {
        route
    };
    c.timings.lock().unwrap().entry(route).or_default().push(ms);
    Ok((status, v, retry_after))
}

/// What one learner saw: when (from the surge's start) the attempt had started, and how many
/// starts were refused first.
struct Learner {
    started_after: Duration,
    refused: usize,
}

async fn learner(
    c: Arc<Client>,
    connections: Arc<tokio::sync::Semaphore>,
    prefix: Arc<str>,
    test: Arc<str>,
    question: Arc<(String, String, String)>,
    surge: Instant,
    starts_only: bool,
) -> anyhow::Result<Learner> {
    let user = uuid::Uuid::new_v4().to_string();
    let mut refused = 0;
    let attempt = loop {
        let (status, v, retry_after) = send(
            &c,
            &connections,
            "start",
            &format!("/{prefix}/attempts/start/{test}"),
            &user,
            None,
        )
        .await?;
        if status == 503 {
            refused += 1;
            ensure!(refused < 100, "start: refused 100 times");
            tokio::time::sleep(Duration::from_secs(retry_after.unwrap_or(1))).await;
            continue;
        }
        ensure!(
            (200..300).contains(&status),
            "start: HTTP {status}: {}",
            v["params"]["errmsg"]
        );
        break v["result"]["attemptId"]
            .as_str()
            .context("attemptId")?
            .to_string();
    };
    let started_after = surge.elapsed();
    if starts_only {
        return Ok(Learner {
            started_after,
            refused,
        });
    }
    let (qid, right, _) = &*question;
    let body = json!({"answers": [{"questionId": qid, "answer": {"selectedOptionIds": [right]}}]});
    let answers = format!("/{prefix}/attempts/{attempt}/answers");
    let (status, v, _) = send(&c, &connections, "answer", &answers, &user, Some(body)).await?;
    ensure!(
        status == 201,
        "answer: HTTP {status}: {}",
        v["params"]["errmsg"]
    );
    let submit = format!("/{prefix}/attempts/{attempt}/submit");
    let (status, v, _) = send(&c, &connections, "submit", &submit, &user, None).await?;
    ensure!(
        status == 201,
        "submit: HTTP {status}: {}",
        v["params"]["errmsg"]
    );
    ensure!(
        v["result"]["score"].as_f64() == Some(1.0),
        "expected a score of 1, got {v}"
    );
    Ok(Learner {
        started_after,
        refused,
    })
}

/// Runs the surge: `n` learners at once over `concurrency` connections.
pub(super) async fn run(
    client: Arc<Client>,
    prefix: &str,
    n: usize,
    concurrency: usize,
    starts_only: bool,
) -> anyhow::Result<()> {
    let (test, questions) = setup_test(&client, prefix).await?;
    client.timings.lock().unwrap().clear();
    let connections = Arc::new(tokio::sync::Semaphore::new(concurrency));
    let (prefix, test): (Arc<str>, Arc<str>) = (prefix.into(), test.into());
    let question = Arc::new(questions.into_iter().next().context("a question")?);
    let surge = Instant::now();
    let learners: Vec<_> = (0..n)
        .map(|_| {
            tokio::spawn(learner(
                client.clone(),
                connections.clone(),
                prefix.clone(),
                test.clone(),
                question.clone(),
                surge,
                starts_only,
            ))
        })
        .collect();
    let mut seen = Vec::with_capacity(n);
    for l in learners {
        seen.push(l.await??);
    }
    let elapsed = surge.elapsed();
    let mut started: Vec<f64> = seen
        .iter()
        .map(|l| l.started_after.as_secs_f64() * 1000.0)
        .collect();
    started.sort_by(f64::total_cmp);
    let all_started_ms = started.last().copied().unwrap_or_default();
    let refused: usize = seen.iter().map(|l| l.refused).sum();
    let timings = client.timings.lock().unwrap().clone();
    report(
        &timings,
        elapsed,
        json!({
            "learners": n, "concurrency": concurrency, "starts_only": starts_only,
            "time_to_start_ms": {"p50": pct(&started, 0.5), "p99": pct(&started, 0.99), "max": all_started_ms},
            "starts_per_s": n as f64 / (all_started_ms / 1000.0),
            "starts_refused_503": refused,
            "all_scores_checked": !starts_only,
        }),
    );
    Ok(())
}
