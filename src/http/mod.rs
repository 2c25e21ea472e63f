//! The HTTP layer: routes, extractors, the envelope, and the middleware stack.

pub mod admission;
pub mod assessments;
pub mod attempts;
pub mod auth;
pub mod conditional;
pub mod config;
mod docs;
pub mod envelope;
pub mod extract;
pub mod health;
pub mod limits;
pub mod metrics;
pub mod middleware;
pub mod openapi;
pub mod params;
pub mod questions;
pub mod rules;
pub mod sections;
pub mod state;
pub mod views;
pub mod webhooks;

pub use state::AppState;

use std::sync::Arc;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Request};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use http::header;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::compression::CompressionLayer;
use tower_http::cors::{AllowOrigin, Any, CorsLayer};

use crate::error::AppError;

async fn not_found(req: Request) -> AppError {
    AppError::not_found(format!("Cannot {} {}", req.method(), req.uri().path()))
}

async fn method_not_allowed(req: Request) -> AppError {
    AppError::MethodNotAllowed(format!(
        "Method {} is not allowed on {}",
        req.method(),
        req.uri().path()
    ))
}

fn panic_response(_: Box<dyn std::any::Any + Send + 'static>) -> Response {
    AppError::Internal(anyhow::anyhow!("handler panicked")).into_response()
}

fn cors(state: &AppState) -> CorsLayer {
    let layer = CorsLayer::new()
        .allow_methods(Any)
        .allow_headers(Any)
        .expose_headers([header::HeaderName::from_static(middleware::REQUEST_ID)]);
    match state.config.cors_origin_list() {
        Ok(Some(origins)) => layer.allow_origin(AllowOrigin::list(origins)),
        // Validated at start-up; `Err` cannot reach here from `serve`.
        _ => layer.allow_origin(Any),
    }
}

/// The service's router, with `extra` routes merged under the same middleware (tests use
/// this to mount probes; `build_app` passes none).
pub fn router_with(state: AppState, extra: Router<AppState>) -> Router {
    let (api, openapi) = openapi::api_router(&state.prefix).split_for_parts();
    let mut openapi = openapi;
    openapi::finish(&mut openapi);
    let spec_json: Arc<str> =
        Arc::from(openapi.to_json().expect("the OpenAPI document serialises"));
    let events_json: Arc<str> = Arc::from(crate::events::asyncapi::document_json());

    Router::new()
        .merge(api)
        .merge(extra)
        .route("/metrics", get(metrics::render))
        .route(
            "/api-json",
            get(move || {
                let spec = spec_json.clone();
                async move {
                    (
                        [(header::CONTENT_TYPE, "application/json")],
                        spec.to_string(),
                    )
                }
            }),
        )
        .route(
            "/asyncapi.json",
            get(move || {
                let spec = events_json.clone();
                async move {
                    (
                        [(header::CONTENT_TYPE, "application/json")],
                        spec.to_string(),
                    )
                }
            }),
        )
        .merge(docs::routes())
        .route("/api", get(|| async { Redirect::permanent("/api-docs") }))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(state.config.body_limit_bytes))
        .layer(CatchPanicLayer::custom(panic_response))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            middleware::per_request,
        ))
        .layer(CompressionLayer::new())
        .layer(cors(&state))
        .with_state(state)
}
