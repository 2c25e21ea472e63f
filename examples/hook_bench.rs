//! The cost of one custom plugin hook call: a plugin loaded from a temporary folder, its hook
//! called N times in a row from the async runtime (as the dispatcher calls it: the event sent
//! to the plugin's thread as JSON, the verdict back), each call timed.
//!
//! Usage: cargo run --release --example hook_bench -- [calls]

use std::time::Instant;

use assessment_service::events::plugins::Plugin;
use assessment_service::events::plugins::js::{Limits, load_dir};
use serde_json::json;

const PLUGINS: &[(&str, &str)] = &[
    (
        "keep.js",
        "export default { id: 'keep', hooks: [{ name: '*', handler: (e) => {} }] };",
    ),
    (
        "transform.js",
        "export default { id: 'transform', hooks: [{ name: '*', handler: (e) => ({ ...e, data: { ...e.data, seen: true, at: new Date().toISOString() } }) }] };",
    ),
    (
        "async.js",
        "export default { id: 'async', hooks: [{ name: '*', handler: async (e) => { if (e.data.score > 5) { return false; } } }] };",
    ),
];

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let n: usize = std::env::args()
        .nth(1)
        .map(|a| a.parse())
        .transpose()?
        .unwrap_or(20_000);
    let dir = tempfile::tempdir()?;
    for (name, source) in PLUGINS {
        std::fs::write(dir.path().join(name), source)?;
    }
    let plugins = load_dir(dir.path(), Limits::default()).map_err(|e| anyhow::anyhow!("{e}"))?;
    // A question.created event as the outbox holds it.
    let event = json!({
        "name": "answer.submitted",
        "context": {"tenantId": "0f3d1c9e-6a1b-4b2c-9d3e-1f2a3b4c5d6e",
                    "organisationId": "1a2b3c4d-5e6f-4a1b-8c2d-3e4f5a6b7c8d",
                    "userId": "2b3c4d5e-6f7a-4b2c-9d3e-4f5a6b7c8d9e"},
        "data": {"attemptId": "5d6e7f8a-9b0c-4d1e-8f2a-3b4c5d6e7f80", "testId": "6e7f8a9b-0c1d-4e2f-8a3b-4c5d6e7f8091",
                 "questionId": "7f8a9b0c-1d2e-4f3a-8b4c-5d6e7f809102", "score": 2, "answer": {"selectedOptionIds": ["a"]}},
        "timestamp": "2026-11-30T10:00:00.000Z",
        "id": "01a22a44-3890-722d-8ac0-a7413f532ccd",
    });
    for p in &plugins {
        for _ in 0..1000 {
            p.run(0, &event).await.map_err(|e| anyhow::anyhow!(e))?;
        }
        let mut us = Vec::with_capacity(n);
        let started = Instant::now();
        for _ in 0..n {
            let t = Instant::now();
            p.run(0, &event).await.map_err(|e| anyhow::anyhow!(e))?;
            us.push(t.elapsed().as_secs_f64() * 1e6);
        }
        let total = started.elapsed();
        us.sort_by(f64::total_cmp);
        let pct = |q: f64| us[((us.len() - 1) as f64 * q).round() as usize];
        println!(
            "{}",
            json!({"plugin": p.id(), "calls": n, "calls_per_s": n as f64 / total.as_secs_f64(),
                   "us": {"p50": pct(0.5), "p95": pct(0.95), "p99": pct(0.99), "max": pct(1.0)}})
        );
    }
    Ok(())
}
