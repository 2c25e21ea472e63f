//! Prometheus metrics at `/metrics`: request counts and latency histograms by route and
//! status (recorded by the request middleware), and database pool gauges.

use std::sync::OnceLock;

use axum::extract::State;
use axum::response::IntoResponse;
use http::header;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

use crate::http::AppState;

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

const LATENCY_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// From an event's commit to its receiver's acknowledgement: milliseconds when all is well,
/// up to the retry schedule's hours when not.
const DELIVERY_BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0,
    3600.0, 21600.0,
];

/// The `# HELP` line of every family.
fn describe() {
    use metrics::{Unit, describe_histogram as histogram};
    use metrics::{describe_counter as counter, describe_gauge as gauge};
    counter!(
        "http_requests_total",
        "Requests answered, by method, route and status."
    );
    histogram!(
        "http_request_duration_seconds",
        Unit::Seconds,
        "Time to answer a request, by method, route and status."
    );
    gauge!(
        "db_pool_connections",
        "Pooled database connections, by pool and state (idle, in_use)."
    );
    gauge!(
        "db_pool_max_connections",
        "The most connections each pool opens."
    );
    counter!(
        "answer_saves_total",
        "Answer saves, by path (guarded: scored from kept keys; locked: the general path)."
    );
    counter!(
        "answer_save_commits_total",
        "Commits shared by guarded answer saves."
    );
    counter!(
        "attempt_starts_in_one_statement_total",
        "Starts written by one statement (PostgreSQL, a learner's first attempt at a published plain test)."
    );
    counter!(
        "test_entries_made_total",
        "Reads of a published test into the process, by kind (learner_hierarchy, paper_material, rule_pools)."
    );
    counter!(
        "admission_refused_total",
        "Requests refused with 503 past a queue's depth, by kind."
    );
    counter!("rate_limited_total", "Requests refused with 429, by limit.");
    counter!(
        "event_deliveries_total",
        "Delivery tries, by outcome (delivered, retry, dead, skipped), kind and subscription."
    );
    histogram!(
        "event_commit_to_delivery_seconds",
        Unit::Seconds,
        "From an event's commit to its acknowledgement by the receiver."
    );
    histogram!(
        "event_delivery_send_duration_seconds",
        Unit::Seconds,
        "Time of one delivery try (the send and the receiver's answer), by kind."
    );
    counter!(
        "event_deliveries_leased_total",
        "Deliveries taken for sending, by how (fan_out, claim)."
    );
    counter!(
        "event_deliveries_held_total",
        "Deliveries held back at fan-out, by why (ordering: an earlier one of the attempt is pending; room)."
    );
    counter!(
        "event_delivery_claims_total",
        "Claims of due deliveries by the dispatcher."
    );
    gauge!(
        "event_deliveries_pending",
        "Deliveries not yet delivered or dead (the backlog)."
    );
    gauge!(
        "event_deliveries_oldest_pending_seconds",
        Unit::Seconds,
        "Age of the oldest pending delivery's event."
    );
    gauge!(
        "sqlite_wal_frames",
        "SQLite: frames in the write-ahead log at the last checkpoint."
    );
    gauge!(
        "sqlite_wal_checkpointed_frames",
        "SQLite: frames copied into the database file at the last checkpoint."
    );
    gauge!(
        "build_info",
        "Always 1; the version of the running build is its label."
    );
}

/// Installs the process-wide recorder once and returns its handle.
pub fn install() -> PrometheusHandle {
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("duration_seconds".into()), LATENCY_BUCKETS)
                .and_then(|b| {
                    b.set_buckets_for_metric(
                        Matcher::Full("event_commit_to_delivery_seconds".into()),
                        DELIVERY_BUCKETS,
                    )
                })
                .expect("buckets are not empty")
                .build_recorder();
            let handle = recorder.handle();
            if metrics::set_global_recorder(recorder).is_err() {
                tracing::warn!("a metrics recorder was already installed; /metrics may be empty");
            }
            describe();
            metrics::gauge!("build_info", "version" => env!("CARGO_PKG_VERSION")).set(1.0);
            handle
        })
        .clone()
}

/// The metrics in Prometheus text format.
pub async fn render(State(state): State<AppState>) -> impl IntoResponse {
    for pool in state.store.pool_stats() {
        let in_use = pool.size.saturating_sub(pool.idle);
        metrics::gauge!("db_pool_connections", "pool" => pool.name, "state" => "idle")
            .set(f64::from(pool.idle));
        metrics::gauge!("db_pool_connections", "pool" => pool.name, "state" => "in_use")
            .set(f64::from(in_use));
        metrics::gauge!("db_pool_max_connections", "pool" => pool.name).set(f64::from(pool.max));
    }
    if let Ok((pending, oldest)) = crate::store::deliveries::backlog(&state.store).await {
        metrics::gauge!("event_deliveries_pending").set(pending as f64);
        let age = oldest.map_or(0.0, |t| {
            (state.clock.now().0 - t.0).num_milliseconds().max(0) as f64 / 1000.0
        });
        metrics::gauge!("event_deliveries_oldest_pending_seconds").set(age);
    }
    state.metrics.run_upkeep();
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        state.metrics.render(),
    )
}
