//! The OpenAPI 3.1 document, generated from the route handlers (utoipa), served at
//! `/api-json`, with a documentation page at `/api-docs` (`/api` redirects there).
//! A committed copy (`docs/openapi.json`) is checked for drift by a test.

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::envelope::{EnvelopeParams, NoResult};
use super::health;
use crate::http::AppState;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Shiksha Assessment Service",
        description = "Multi-tenant assessments: question bank, tests, attempts, scoring, \
                       reviews, and reliable event delivery. Wire-compatible with the NestJS \
                       Shiksha Assessment Service.",
        license(name = "MIT"),
    ),
    modifiers(&Security),
    components(schemas(EnvelopeParams, NoResult)),
    tags(
        (name = "health", description = "Liveness and readiness"),
        (name = "questions", description = "The question bank (authors)"),
        (name = "tests", description = "Tests, their questions, publishing, hierarchies"),
        (name = "sections", description = "Sections of tests (authors)"),
        (name = "rules", description = "Selection rules of rule-based tests (authors)"),
        (name = "attempts", description = "Taking tests: start, answer, submit, resume"),
        (name = "reviews", description = "Reviews, answer sheets and result status"),
        (name = "webhooks", description = "Webhooks, deliveries, replays and plugins (admins)"),
    ),
)]
struct ApiDoc;

struct Security;

impl Modify for Security {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearerAuth",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .description(Some(
                        "Required when the service runs with JWT_SECRET or JWT_PUBLIC_KEY",
                    ))
                    .build(),
            ),
        );
    }
}

/// Every documented route, with its OpenAPI description. `prefix` is the global prefix
/// (`assessment/v1`) under which the resource routes are nested.
pub fn api_router(prefix: &str) -> OpenApiRouter<AppState> {
    let resources = OpenApiRouter::new()
        .merge(super::questions::router())
        .merge(super::assessments::router())
        .merge(super::sections::router())
        .merge(super::rules::router())
        .merge(super::attempts::router())
        .merge(super::webhooks::router());
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(health::health))
        .routes(routes!(health::ready))
        .routes(routes!(health::live))
        .nest(&format!("/{prefix}"), resources)
}

/// The OpenAPI document for a given prefix.
pub fn document(prefix: &str) -> utoipa::openapi::OpenApi {
    let mut doc = api_router(prefix).into_openapi();
    finish(&mut doc);
    doc
}

/// What the generated document needs after every route is in: the version, and operation ids
/// that are unique (utoipa names an operation after its handler, and several resources have a
/// `list`, `create`, ...: those become `{tag}_{name}`, e.g. `rules_list`).
pub fn finish(doc: &mut utoipa::openapi::OpenApi) {
    doc.info.version = env!("CARGO_PKG_VERSION").to_string();
    let mut seen: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
    for op in operations(doc) {
        if let Some(id) = &op.operation_id {
            *seen.entry(id.clone()).or_default() += 1;
        }
    }
    for op in operations(doc) {
        let Some(id) = op.operation_id.clone() else {
            continue;
        };
        if seen.get(&id).copied().unwrap_or(0) > 1 {
            let tag = op
                .tags
                .as_ref()
                .and_then(|t| t.first())
                .cloned()
                .unwrap_or_default();
            op.operation_id = Some(format!("{tag}_{id}"));
        }
    }
}

fn operations(
    doc: &mut utoipa::openapi::OpenApi,
) -> impl Iterator<Item = &mut utoipa::openapi::path::Operation> {
    doc.paths.paths.values_mut().flat_map(|item| {
        [
            &mut item.get,
            &mut item.put,
            &mut item.post,
            &mut item.delete,
            &mut item.options,
            &mut item.head,
            &mut item.patch,
            &mut item.trace,
        ]
        .into_iter()
        .filter_map(Option::as_mut)
    })
}

/// The document as pretty JSON with a trailing newline (the committed form).
pub fn document_json(prefix: &str) -> String {
    let mut text = document(prefix)
        .to_pretty_json()
        .expect("the OpenAPI document serialises");
    text.push('\n');
    text
}
