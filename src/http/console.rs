//! The operator console at `/console`: a page and its script and style, embedded in the binary
//! (no network needed), over the admin API; and the two routes it needs beyond it, the state of
//! the subscriptions and the live tail of events (server-sent events).

use std::convert::Infallible;
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use futures::stream::Stream;
use http::{HeaderMap, header};
use serde::Deserialize;
use utoipa::IntoParams;

use super::auth::{AuthMode, RequestContext, Role};
use super::envelope::{ApiOk, Envelope, ErrorEnvelope};
use super::extract::ValidQuery;
use super::params::Tenancy;
use crate::error::{AppError, AppResult};
use crate::http::AppState;
use crate::service::console::{self as svc, SubscriptionState, Tail};

api_routes!([subscriptions], [stream]);

const PAGE: &str = include_str!("../../assets/console/index.html");
const SCRIPT: &str = include_str!("../../assets/console/app.js");
const STYLE: &str = include_str!("../../assets/console/app.css");

/// How often the live tail looks for new events.
const POLL: Duration = Duration::from_millis(500);

fn admin(ctx: &RequestContext) -> AppResult<()> {
    ctx.require_any_role(&[Role::Admin])
}

/// `/console` and its assets (outside the API prefix, not in the OpenAPI document).
pub fn pages() -> Router<AppState> {
    Router::new()
        .route("/console", get(page))
        .route(
            "/console/app.js",
            get(|| async { asset("text/javascript; charset=utf-8", SCRIPT) }),
        )
        .route(
            "/console/app.css",
            get(|| async { asset("text/css; charset=utf-8", STYLE) }),
        )
}

fn asset(content_type: &'static str, body: &'static str) -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
}

/// The page, told how callers authenticate here and where the API is.
async fn page(State(s): State<AppState>) -> impl IntoResponse {
    let mode = match s.auth.mode() {
        AuthMode::Jwt => "jwt",
        AuthMode::Headers => "headers",
    };
    let html = PAGE
        .replace("{{AUTH_MODE}}", mode)
        .replace("{{API_PREFIX}}", &format!("/{}", s.prefix));
    (
        [
            (header::CACHE_CONTROL, "no-store"),
            (
                header::CONTENT_SECURITY_POLICY,
                "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'",
            ),
        ],
        Html(html),
    )
}

/// The subscriptions this tenant's events go to, each with its state: active or disabled (and
/// why, e.g. a 410 from the receiver), a broker's connection, and, for the tenant's own, the
/// backlog, dead letters and last success and failure. No secret is shown.
#[utoipa::path(get, path = "/console/subscriptions", tag = "webhooks", params(Tenancy),
    responses((status = 200, body = Envelope<Vec<SubscriptionState>>), (status = 403, body = ErrorEnvelope)))]
async fn subscriptions(
    State(s): State<AppState>,
    ctx: RequestContext,
) -> AppResult<ApiOk<Vec<SubscriptionState>>> {
    admin(&ctx)?;
    Ok(ApiOk::ok(
        svc::subscriptions(&s.store, &s.brokers, &ctx.scope()).await?,
    ))
}

/// `?after=` of the live tail.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct StreamQuery {
    /// Start after this event sequence number (the `id` of an event received); default: from
    /// now. `Last-Event-ID` does the same.
    #[serde(default, deserialize_with = "crate::service::de::opt_num")]
    pub after: Option<i64>,
}

/// The live tail: this tenant's events as they commit, as server-sent events (`event`: the
/// event's name, `id`: its sequence number, `data`: the body subscribers receive). The request
/// must accept `text/event-stream` (400 otherwise). At most a few tails are open at once per
/// instance (503 beyond).
#[utoipa::path(get, path = "/events/stream", tag = "webhooks", params(Tenancy, StreamQuery),
    responses((status = 200, description = "text/event-stream", content_type = "text/event-stream", body = String),
              (status = 400, body = ErrorEnvelope), (status = 403, body = ErrorEnvelope),
              (status = 503, body = ErrorEnvelope)))]
async fn stream(
    State(s): State<AppState>,
    ctx: RequestContext,
    headers: HeaderMap,
    ValidQuery(q): ValidQuery<StreamQuery>,
) -> AppResult<Response> {
    admin(&ctx)?;
    // Only a client that reads a stream asks for one (EventSource always does): any other
    // would wait on this response forever.
    let streams = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("text/event-stream"));
    if !streams {
        return Err(AppError::validation(
            "This route streams server-sent events: send Accept: text/event-stream",
        ));
    }
    let permit = s.tails.clone().try_acquire_owned().map_err(|_| {
        AppError::Unavailable("Too many live tails are open; try again later".into())
    })?;
    let resumed = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<i64>().ok());
    let tail = Tail::open(&s.store, ctx.scope(), resumed.or(q.after)).await?;
    let events = tail_events(s, tail, permit);
    Ok(Sse::new(events)
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
        .into_response())
}

/// The events of `tail` as they come, until the service stops (the permit is held as long).
fn tail_events(
    s: AppState,
    tail: Tail,
    permit: tokio::sync::OwnedSemaphorePermit,
) -> impl Stream<Item = Result<Event, Infallible>> {
    let state = (s, tail, permit, std::collections::VecDeque::new());
    futures::stream::unfold(state, |(s, mut tail, permit, mut ready)| async move {
        loop {
            if let Some(e) = ready.pop_front() {
                return Some((Ok(e), (s, tail, permit, ready)));
            }
            tokio::select! {
                _ = s.stopping.cancelled() => return None,
                _ = tokio::time::sleep(POLL) => {}
            }
            match tail.next(&s.store).await {
                Ok(events) => ready.extend(events.into_iter().map(|e| {
                    Event::default()
                        .event(e.name.clone())
                        .id(e.seq.to_string())
                        .data(e.payload.0.to_string())
                })),
                // The database is away: the client keeps the stream and events come once it
                // is back.
                Err(err) => tracing::debug!(error = %err, "the live tail could not read events"),
            }
        }
    })
}
