//! The HTTP layer: routes, extractors, the envelope, and the middleware stack.

/// One handler's route without its documentation: the path and methods of its
/// `#[utoipa::path]` attribute, nothing of the OpenAPI description built.
macro_rules! served {
    ($router:expr, $handler:ident) => {{
        #[allow(unused_imports)]
        use utoipa::Path as _;
        use utoipa_axum::PathItemExt as _;
        utoipa_axum::paste! {
            let path = [<__path_ $handler>]::path();
            let methods = [<__path_ $handler>]::methods();
        }
        let method_router = methods
            .iter()
            .fold(axum::routing::MethodRouter::new(), |r, m| {
                r.on(m.to_method_filter(), $handler)
            });
        $router.route(&path, method_router)
    }};
}

/// A module's routes, listed once: `router()` with each route's OpenAPI description (for the
/// document, built when it is first asked for) and `served()`, the same handlers on the same
/// paths and methods with nothing of the document built. utoipa builds every schema of a route
/// when it is registered, and the heap it took stayed in the process after the document was
/// dropped (issue 13's memory budget; BENCHMARKS.md).
macro_rules! api_routes {
    ($([$($handler:ident),+ $(,)?]),+ $(,)?) => {
        pub fn router() -> utoipa_axum::router::OpenApiRouter<crate::http::AppState> {
            utoipa_axum::router::OpenApiRouter::new()
                $(.routes(utoipa_axum::routes!($($handler),+)))+
        }

        pub fn served() -> axum::Router<crate::http::AppState> {
            let router = axum::Router::new();
            $($(let router = served!(router, $handler);)+)+
            router
        }
    };
}

mod accommodations;
pub mod admission;
pub mod assessments;
pub mod attempts;
pub mod auth;
pub mod conditional;
pub mod config;
mod console;
mod docs;
pub mod envelope;
pub mod extract;
mod files;
pub mod health;
pub mod limits;
pub mod metrics;
pub mod middleware;
pub mod openapi;
pub mod params;
pub mod questions;
mod regrade;
pub mod rules;
pub mod sections;
pub mod state;
mod statistics;
mod versions;
pub mod views;
pub mod webhooks;

pub use state::AppState;

use std::sync::{Arc, OnceLock};

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
    // The documents are written on their first request, not at start-up: most instances are
    // never asked, and an idle process should not hold them (issue 13's memory budget).
    let api = openapi::served_router(&state.prefix);
    let prefix = state.prefix.clone();
    let spec_json: Arc<OnceLock<String>> = Arc::default();
    let events_json: Arc<OnceLock<String>> = Arc::default();

    Router::new()
        .merge(api)
        .merge(extra)
        .route("/metrics", get(metrics::render))
        .route(
            "/api-json",
            get(move || {
                let (spec, prefix) = (spec_json.clone(), prefix.clone());
                async move {
                    let text = spec.get_or_init(|| openapi::document_json(&prefix));
                    ([(header::CONTENT_TYPE, "application/json")], text.clone())
                }
            }),
        )
        .route(
            "/asyncapi.json",
            get(move || {
                let spec = events_json.clone();
                async move {
                    let text = spec.get_or_init(crate::events::asyncapi::document_json);
                    ([(header::CONTENT_TYPE, "application/json")], text.clone())
                }
            }),
        )
        .merge(docs::routes())
        .merge(console::pages())
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
