//! Health: `/health` and `/health/ready` (raw JSON, 503 when the database is down) and
//! `/health/live` (enveloped), outside the global prefix, as upstream.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use axum::Json;
use axum::extract::State;
use http::StatusCode;
use serde::Serialize;
use utoipa::ToSchema;

use super::envelope::ApiOk;
use crate::http::AppState;

/// The state of one dependency.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Indicator {
    /// `up` or `down`.
    pub status: &'static str,
    /// Round-trip time, e.g. `3ms`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub response_time: Option<String>,
    /// Why it is down.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// Upstream's (Terminus-style) health report.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct HealthReport {
    /// `ok` when every dependency is up, else `error`.
    pub status: &'static str,
    /// Dependencies that are up.
    pub info: BTreeMap<String, Indicator>,
    /// Dependencies that are down.
    pub error: BTreeMap<String, Indicator>,
    /// Every dependency.
    pub details: BTreeMap<String, Indicator>,
}

/// Liveness: the process answers.
#[derive(Debug, Serialize, ToSchema)]
pub struct Liveness {
    pub status: &'static str,
    pub timestamp: String,
    /// Seconds since start.
    pub uptime: f64,
}

/// How long a health check waits for the database: a database that is gone is reported
/// within it (a pool acquire would otherwise wait for its own, longer, timeout).
const DB_CHECK_TIMEOUT: Duration = Duration::from_secs(1);

async fn check_database(state: &AppState, writer_too: bool) -> Indicator {
    let started = Instant::now();
    let ping = async {
        if writer_too {
            state.store.ping().await
        } else {
            state.store.ping_reader().await
        }
    };
    match tokio::time::timeout(DB_CHECK_TIMEOUT, ping).await {
        Ok(Ok(())) => Indicator {
            status: "up",
            response_time: Some(format!("{}ms", started.elapsed().as_millis())),
            message: None,
        },
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "database health check failed");
            Indicator {
                status: "down",
                response_time: None,
                message: Some("database query failed".into()),
            }
        }
        Err(_) => Indicator {
            status: "down",
            response_time: None,
            message: Some(format!("no answer within {} s", DB_CHECK_TIMEOUT.as_secs())),
        },
    }
}

fn report(checks: Vec<(&str, Indicator)>) -> (StatusCode, Json<HealthReport>) {
    let mut r = HealthReport {
        status: "ok",
        info: BTreeMap::new(),
        error: BTreeMap::new(),
        details: BTreeMap::new(),
    };
    for (name, ind) in checks {
        if ind.status == "up" {
            r.info.insert(name.into(), ind.clone());
        } else {
            r.status = "error";
            r.error.insert(name.into(), ind.clone());
        }
        r.details.insert(name.into(), ind);
    }
    let code = if r.status == "ok" {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (code, Json(r))
}

/// Overall health: every dependency of the service.
#[utoipa::path(get, path = "/health", tag = "health",
    responses(
        (status = 200, description = "Every dependency is up", body = HealthReport),
        (status = 503, description = "A dependency is down", body = HealthReport),
    ))]
pub async fn health(State(state): State<AppState>) -> (StatusCode, Json<HealthReport>) {
    // Every dependency the service has; today the database (every pool) is the only one.
    report(vec![("database", check_database(&state, true).await)])
}

/// Readiness: the database answers.
#[utoipa::path(get, path = "/health/ready", tag = "health",
    responses(
        (status = 200, description = "Ready to serve", body = HealthReport),
        (status = 503, description = "The database is down", body = HealthReport),
    ))]
pub async fn ready(State(state): State<AppState>) -> (StatusCode, Json<HealthReport>) {
    report(vec![("database", check_database(&state, false).await)])
}

/// Liveness, in the standard envelope.
#[utoipa::path(get, path = "/health/live", tag = "health",
    responses((status = 200, description = "The process is alive", body = super::envelope::Envelope<Liveness>)))]
pub async fn live(State(state): State<AppState>) -> ApiOk<Liveness> {
    ApiOk::ok(Liveness {
        status: "ok",
        timestamp: state.clock.now().to_text(),
        uptime: state.started_at.elapsed().as_secs_f64(),
    })
}

api_routes!([health], [ready], [live]);
