//! The OpenAPI 3.1 document, generated from the route handlers (utoipa), served at
//! `/api-json`, with a documentation page at `/api-docs` (`/api` redirects there).
//! A committed copy (`docs/openapi.json`) is checked for drift by a test.

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;

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
        (name = "accommodations", description = "Extra time, attempts and end dates per learner (authors)"),
        (name = "regrade", description = "Scoring submitted attempts again after a key or marks change (authors)"),
        (name = "attempts", description = "Taking tests: start, answer, submit, resume"),
        (name = "reviews", description = "Reviews, answer sheets and result status"),
        (name = "webhooks", description = "Webhooks, deliveries, replays and plugins (admins)"),
        (name = "config", description = "The tenant's configuration"),
        (name = "files", description = "Uploads for `file` questions"),
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
        .merge(super::accommodations::router())
        .merge(super::statistics::router())
        .merge(super::console::router())
        .merge(super::regrade::router())
        .merge(super::versions::router())
        .merge(super::attempts::router())
        .merge(super::webhooks::router())
        .merge(super::config::router())
        .merge(super::files::router());
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .merge(health::router())
        .nest(&format!("/{prefix}"), resources)
}

/// The routes of [`api_router`] as served, without their documentation (`api_routes!`).
pub fn served_router(prefix: &str) -> axum::Router<AppState> {
    let resources = axum::Router::new()
        .merge(super::questions::served())
        .merge(super::assessments::served())
        .merge(super::sections::served())
        .merge(super::rules::served())
        .merge(super::accommodations::served())
        .merge(super::statistics::served())
        .merge(super::console::served())
        .merge(super::regrade::served())
        .merge(super::versions::served())
        .merge(super::attempts::served())
        .merge(super::webhooks::served())
        .merge(super::config::served())
        .merge(super::files::served());
    health::served().nest(&format!("/{prefix}"), resources)
}

/// The OpenAPI document for a given prefix.
pub fn document(prefix: &str) -> utoipa::openapi::OpenApi {
    let mut doc = api_router(prefix).into_openapi();
    finish(&mut doc);
    doc
}

/// What the generated document needs after every route is in:
/// - the version;
/// - readable, unique operation ids, `{tag}_{handler}` (`tests_list`, `rules_list`): utoipa
///   names an operation after its handler, and several resources have a `list`, `create`, ...;
/// - on every tenant-scoped operation (all but health): the bearer scheme, optional (an empty
///   requirement: the header mode needs none), and the error answers every such operation
///   can give (400, 401, 429, 503; 413 and 415 when it takes a body), in the standard envelope;
/// - a description on every response;
/// - the bodies create and patch share ([`SHARED_BODIES`]) split in two: the create
///   operation's names the fields create refuses to go without, the patch's (`{Name}Patch`)
///   none.
pub fn finish(doc: &mut utoipa::openapi::OpenApi) {
    use utoipa::openapi::security::SecurityRequirement;
    doc.info.version = env!("CARGO_PKG_VERSION").to_string();
    split_shared_bodies(doc);
    for (path, op) in operations(doc) {
        let tag = op
            .tags
            .as_ref()
            .and_then(|t| t.first())
            .cloned()
            .unwrap_or_default();
        if let Some(id) = &op.operation_id
            && !tag.is_empty()
            && !id.starts_with(&format!("{tag}_"))
        {
            op.operation_id = Some(format!("{tag}_{id}"));
        }
        let scoped = !path.starts_with("/health");
        if scoped {
            op.security = Some(vec![
                SecurityRequirement::new("bearerAuth", Vec::<String>::new()),
                SecurityRequirement::default(),
            ]);
            let with_body = op.request_body.is_some();
            for (code, description) in COMMON_ERRORS {
                let needs_body = matches!(*code, "413" | "415");
                if needs_body && !with_body {
                    continue;
                }
                op.responses
                    .responses
                    .entry(code.to_string())
                    .or_insert_with(|| error_response(description));
            }
        }
        for (code, response) in op.responses.responses.iter_mut() {
            if let utoipa::openapi::RefOr::T(r) = response
                && r.description.is_empty()
            {
                r.description = default_description(code).to_string();
            }
        }
    }
}

/// Request bodies one type serves for create and patch: (schema, the patch's copy, the fields
/// create requires, as its validation does).
const SHARED_BODIES: &[(&str, &str, &[&str])] = &[
    (
        "TestIn",
        "TestPatch",
        crate::service::assessments::REQUIRED_ON_CREATE,
    ),
    (
        "RuleIn",
        "RulePatch",
        crate::service::rules::REQUIRED_ON_CREATE,
    ),
    (
        "WebhookIn",
        "WebhookPatch",
        crate::service::webhooks::REQUIRED_ON_CREATE,
    ),
];

fn split_shared_bodies(doc: &mut utoipa::openapi::OpenApi) {
    use utoipa::openapi::{Ref, RefOr, schema::Schema};
    let Some(components) = doc.components.as_mut() else {
        return;
    };
    for (name, patch, required) in SHARED_BODIES {
        let Some(RefOr::T(Schema::Object(create))) = components.schemas.get_mut(*name) else {
            continue;
        };
        let mut copy = create.clone();
        copy.required.clear();
        create.required = required.iter().map(|f| f.to_string()).collect();
        components
            .schemas
            .insert(patch.to_string(), RefOr::T(Schema::Object(copy)));
        let shared = format!("#/components/schemas/{name}");
        for item in doc.paths.paths.values_mut() {
            let Some(op) = item.patch.as_mut() else {
                continue;
            };
            for content in op
                .request_body
                .iter_mut()
                .flat_map(|b| b.content.values_mut())
            {
                if matches!(&content.schema, Some(RefOr::Ref(r)) if r.ref_location == shared) {
                    content.schema = Some(RefOr::Ref(Ref::from_schema_name(*patch)));
                }
            }
        }
    }
}

/// Error answers every tenant-scoped operation can give.
const COMMON_ERRORS: &[(&str, &str)] = &[
    (
        "400",
        "The request is malformed or fails validation (`VALIDATION_ERROR`)",
    ),
    (
        "401",
        "JWT mode: the bearer token is missing, malformed, expired or not signed by the configured key",
    ),
    ("413", "The body is larger than `BODY_LIMIT_BYTES`"),
    ("415", "The body is not `application/json`"),
    (
        "429",
        "Past a rate limit; `Retry-After` says when to try again",
    ),
    (
        "503",
        "The database is unavailable, or a queue is full (`Retry-After`)",
    ),
];

fn error_response(description: &str) -> utoipa::openapi::RefOr<utoipa::openapi::Response> {
    use utoipa::openapi::{ContentBuilder, Ref, ResponseBuilder};
    ResponseBuilder::new()
        .description(description)
        .content(
            "application/json",
            ContentBuilder::new()
                .schema(Some(Ref::from_schema_name("Envelope")))
                .build(),
        )
        .build()
        .into()
}

fn default_description(code: &str) -> &'static str {
    match code {
        "200" => "OK",
        "201" => "Created",
        "202" => "Accepted",
        "204" => "No content",
        "304" => "Not modified: the view named by `If-None-Match` is current",
        "400" => "The request is malformed or fails validation",
        "401" => "Not authenticated",
        "403" => "The caller's role may not do this",
        "404" => "Not found in the caller's tenant and organisation",
        "409" => "Conflicts with the current state",
        "413" => "The body is too large",
        "415" => "The body is not JSON",
        "422" => "Valid, but not possible in the current state",
        "429" => "Past a rate limit",
        "503" => "Unavailable for now; try again",
        _ => "See the envelope's `params.errmsg`",
    }
}

/// Every operation of the document, with its path.
fn operations(
    doc: &mut utoipa::openapi::OpenApi,
) -> impl Iterator<Item = (&String, &mut utoipa::openapi::path::Operation)> {
    doc.paths.paths.iter_mut().flat_map(|(path, item)| {
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
        .map(move |op| (path, op))
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
