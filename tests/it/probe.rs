//! Test-only routes mounted under the real middleware, to exercise the extractors, the error
//! mapping and transactions before resource routes exist. Nothing here ships in the binary.

use std::time::Duration;

use assessment_service::AppState;
use assessment_service::domain::event::{EventContext, EventName, NewEvent};
use assessment_service::domain::marks::Marks;
use assessment_service::error::AppError;
use assessment_service::http::auth::{RequestContext, Role};
use assessment_service::http::envelope::ApiOk;
use assessment_service::http::extract::{ValidJson, ValidQuery, path_uuid};
use axum::Router;
use axum::extract::{Path, State};
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::{Value, json};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/assessment/v1/probe/context", get(context))
        .route("/assessment/v1/probe/write", post(write))
        .route("/assessment/v1/probe/items/{id}", get(item))
        .route("/assessment/v1/probe/error/{kind}", get(error))
        .route("/assessment/v1/probe/panic", get(panic))
        .route("/assessment/v1/probe/authoring", get(authoring))
        .route("/assessment/v1/probe/slow-event", post(slow_event))
        .route("/assessment/v1/probe/list", get(list))
}

fn context_json(ctx: &RequestContext) -> Value {
    json!({
        "tenantId": ctx.tenant_id,
        "organisationId": ctx.organisation_id,
        "userId": ctx.user_id,
        "roles": ctx.roles.iter().map(|r| r.as_str()).collect::<Vec<_>>(),
    })
}

async fn context(ctx: RequestContext) -> ApiOk<Value> {
    ApiOk::ok(context_json(&ctx))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct WriteIn {
    title: String,
    marks: Marks,
}

async fn write(
    ctx: RequestContext,
    ValidJson(body): ValidJson<WriteIn>,
) -> Result<ApiOk<Value>, AppError> {
    let user = ctx.user()?;
    Ok(ApiOk::created(
        json!({"title": body.title, "marks": body.marks, "by": user}),
    ))
}

async fn item(Path(id): Path<String>) -> Result<ApiOk<Value>, AppError> {
    let id = path_uuid(&id)?;
    Ok(ApiOk::ok(json!({"id": id})))
}

async fn error(Path(kind): Path<String>) -> AppError {
    match kind.as_str() {
        "validation" => AppError::validation("bad value"),
        "unauthorized" => AppError::unauthorized("who are you"),
        "forbidden" => AppError::forbidden("not yours"),
        "not-found" => AppError::not_found("Test not found"),
        "conflict" => AppError::conflict("already exists"),
        "unprocessable" => AppError::unprocessable("Test is not published"),
        _ => AppError::Internal(anyhow::anyhow!(
            "relation \"secret_table\" does not exist (internal detail)"
        )),
    }
}

async fn panic() -> &'static str {
    panic!("probe panic with internal detail")
}

async fn authoring(ctx: RequestContext) -> Result<ApiOk<Value>, AppError> {
    ctx.require_any_role(&[Role::Instructor, Role::Admin])?;
    Ok(ApiOk::ok(context_json(&ctx)))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct SlowIn {
    event_id: uuid::Uuid,
    sleep_ms: u64,
}

/// Appends an event, then sleeps before committing: a request timeout must roll it back.
async fn slow_event(
    State(state): State<AppState>,
    ValidJson(body): ValidJson<SlowIn>,
) -> Result<ApiOk<Value>, AppError> {
    let mut tx = state.store.begin().await?;
    let event = NewEvent::new(
        body.event_id,
        EventName::TestUpdated,
        EventContext::default(),
        json!({}),
        chrono::Utc::now(),
    );
    assessment_service::events::append(&mut tx, &event).await?;
    tokio::time::sleep(Duration::from_millis(body.sleep_ms)).await;
    tx.commit().await?;
    Ok(ApiOk::created(json!({"eventId": body.event_id})))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    #[serde(default, deserialize_with = "assessment_service::service::de::opt_num")]
    limit: Option<u32>,
}

async fn list(ValidQuery(q): ValidQuery<ListQuery>) -> ApiOk<Value> {
    ApiOk::ok(json!({"limit": q.limit}))
}
