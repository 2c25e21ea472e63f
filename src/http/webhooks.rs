//! `/webhooks` (per-tenant subscriptions, delivery log, replays, dead letters) and `/plugins`
//! (the registry), for admins.

use axum::extract::{Path, State};
use serde::Deserialize;
use serde_json::{Value, json};
use utoipa::ToSchema;

use super::auth::{RequestContext, Role};
use super::envelope::{ApiOk, Envelope, ErrorEnvelope};
use super::extract::{ValidJson, ValidQuery, path_uuid};
use super::params::Tenancy;
use crate::error::AppResult;
use crate::http::AppState;
use crate::service::Page;
use crate::service::webhooks::{self as svc, DeliveryQuery, WebhookIn, WebhookOut};
use crate::store::deliveries::{DeliveryFilter, DeliveryRow, Subscription, SubscriptionKind};

api_routes!(
    [create, list],
    [deliveries],
    [dead_letters],
    [delivery_attempts],
    [replay_delivery],
    [replay_event],
    [replay_range],
    [get_one, update, delete],
    [rotate_secret],
    [send_test],
    [plugins]
);

fn admin(ctx: &RequestContext) -> AppResult<()> {
    ctx.require_any_role(&[Role::Admin])
}

/// Subscribe a URL to events of this tenant and organisation. The signing secret is shown
/// here and on rotation only.
#[utoipa::path(post, path = "/webhooks", tag = "webhooks", params(Tenancy), request_body = WebhookIn,
    responses((status = 201, body = Envelope<WebhookOut>), (status = 400, body = ErrorEnvelope), (status = 403, body = ErrorEnvelope)))]
async fn create(
    State(s): State<AppState>,
    ctx: RequestContext,
    ValidJson(body): ValidJson<WebhookIn>,
) -> AppResult<ApiOk<WebhookOut>> {
    admin(&ctx)?;
    Ok(ApiOk::created(
        svc::create(
            &s.store,
            &s.clock,
            &ctx.actor()?,
            s.config.webhook_allow_private_networks,
            body,
        )
        .await?,
    ))
}

/// This tenant and organisation's webhooks.
#[utoipa::path(get, path = "/webhooks", tag = "webhooks", params(Tenancy),
    responses((status = 200, body = Envelope<Vec<Subscription>>), (status = 403, body = ErrorEnvelope)))]
async fn list(
    State(s): State<AppState>,
    ctx: RequestContext,
) -> AppResult<ApiOk<Vec<Subscription>>> {
    admin(&ctx)?;
    Ok(ApiOk::ok(svc::list(&s.store, &ctx.scope()).await?))
}

/// A webhook.
#[utoipa::path(get, path = "/webhooks/{id}", tag = "webhooks", params(Tenancy, ("id" = String, Path, format = Uuid)),
    responses((status = 200, body = Envelope<Subscription>), (status = 404, body = ErrorEnvelope)))]
async fn get_one(
    State(s): State<AppState>,
    ctx: RequestContext,
    Path(id): Path<String>,
) -> AppResult<ApiOk<Subscription>> {
    admin(&ctx)?;
    Ok(ApiOk::ok(
        svc::get(&s.store, &ctx.scope(), path_uuid(&id)?).await?,
    ))
}

/// Change the fields sent.
#[utoipa::path(patch, path = "/webhooks/{id}", tag = "webhooks", params(Tenancy, ("id" = String, Path, format = Uuid)),
    request_body = WebhookIn,
    responses((status = 200, body = Envelope<Subscription>), (status = 400, body = ErrorEnvelope), (status = 404, body = ErrorEnvelope)))]
async fn update(
    State(s): State<AppState>,
    ctx: RequestContext,
    Path(id): Path<String>,
    ValidJson(body): ValidJson<WebhookIn>,
) -> AppResult<ApiOk<Subscription>> {
    admin(&ctx)?;
    let allow = s.config.webhook_allow_private_networks;
    Ok(ApiOk::ok(
        svc::update(
            &s.store,
            &s.clock,
            &ctx.scope(),
            allow,
            path_uuid(&id)?,
            body,
        )
        .await?,
    ))
}

/// Delete a webhook and its deliveries.
#[utoipa::path(delete, path = "/webhooks/{id}", tag = "webhooks", params(Tenancy, ("id" = String, Path, format = Uuid)),
    responses((status = 200, body = Envelope<super::envelope::MessageOut>), (status = 404, body = ErrorEnvelope)))]
async fn delete(
    State(s): State<AppState>,
    ctx: RequestContext,
    Path(id): Path<String>,
) -> AppResult<ApiOk<super::envelope::MessageOut>> {
    admin(&ctx)?;
    svc::delete(&s.store, &ctx.scope(), path_uuid(&id)?).await?;
    Ok(ApiOk::ok(super::envelope::msg(
        "Webhook deleted successfully",
    )))
}

/// Replace the signing secret. Until `previousSecretExpiresAt` (`WEBHOOK_SECRET_OVERLAP_SECS`
/// after the rotation, a day by default) deliveries carry a second signature made with the
/// secret it replaced.
#[utoipa::path(post, path = "/webhooks/{id}/rotate-secret", tag = "webhooks", params(Tenancy, ("id" = String, Path, format = Uuid)),
    responses((status = 201, body = Envelope<WebhookOut>), (status = 404, body = ErrorEnvelope)))]
async fn rotate_secret(
    State(s): State<AppState>,
    ctx: RequestContext,
    Path(id): Path<String>,
) -> AppResult<ApiOk<WebhookOut>> {
    admin(&ctx)?;
    Ok(ApiOk::created(
        svc::rotate(
            &s.store,
            &s.clock,
            &ctx.scope(),
            path_uuid(&id)?,
            std::time::Duration::from_secs(s.config.webhook_secret_overlap_secs),
        )
        .await?,
    ))
}

/// Send a signed `webhook.test` payload now and report the answer.
#[utoipa::path(post, path = "/webhooks/{id}/test", tag = "webhooks", params(Tenancy, ("id" = String, Path, format = Uuid)),
    responses((status = 201, body = Envelope<svc::TestSent>), (status = 404, body = ErrorEnvelope), (status = 422, body = ErrorEnvelope)))]
async fn send_test(
    State(s): State<AppState>,
    ctx: RequestContext,
    Path(id): Path<String>,
) -> AppResult<ApiOk<svc::TestSent>> {
    admin(&ctx)?;
    let allow = s.config.webhook_allow_private_networks;
    Ok(ApiOk::created(
        svc::send_test(&s.store, &s.clock, &ctx.actor()?, allow, path_uuid(&id)?).await?,
    ))
}

/// The delivery log of this scope's events (by event, subscription, status, time).
#[utoipa::path(get, path = "/webhooks/deliveries", tag = "webhooks", params(Tenancy, DeliveryQuery),
    responses((status = 200, body = Envelope<Page<DeliveryRow>>), (status = 400, body = ErrorEnvelope)))]
async fn deliveries(
    State(s): State<AppState>,
    ctx: RequestContext,
    ValidQuery(q): ValidQuery<DeliveryQuery>,
) -> AppResult<ApiOk<Page<DeliveryRow>>> {
    admin(&ctx)?;
    Ok(ApiOk::ok(
        svc::deliveries(&s.store, &ctx.scope(), &q).await?,
    ))
}

/// Dead letters: deliveries whose retries ran out.
#[utoipa::path(get, path = "/webhooks/dead-letters", tag = "webhooks", params(Tenancy, DeliveryQuery),
    responses((status = 200, body = Envelope<Page<DeliveryRow>>), (status = 400, body = ErrorEnvelope)))]
async fn dead_letters(
    State(s): State<AppState>,
    ctx: RequestContext,
    ValidQuery(mut q): ValidQuery<DeliveryQuery>,
) -> AppResult<ApiOk<Page<DeliveryRow>>> {
    admin(&ctx)?;
    q.status = Some("dead".into());
    Ok(ApiOk::ok(
        svc::deliveries(&s.store, &ctx.scope(), &q).await?,
    ))
}

/// Every try of a delivery.
#[utoipa::path(get, path = "/webhooks/deliveries/{deliveryId}/attempts", tag = "webhooks",
    params(Tenancy, ("deliveryId" = String, Path, format = Uuid)),
    responses((status = 200, body = Envelope<Vec<super::views::DeliveryTry>>), (status = 404, body = ErrorEnvelope)))]
async fn delivery_attempts(
    State(s): State<AppState>,
    ctx: RequestContext,
    Path(id): Path<String>,
) -> AppResult<ApiOk<Vec<Value>>> {
    admin(&ctx)?;
    Ok(ApiOk::ok(
        svc::attempts(&s.store, &ctx.scope(), path_uuid(&id)?).await?,
    ))
}

/// Replays what `filter` (and `delivery`) names for the caller's tenant, within its bounds:
/// `REPLAY_MAX_DELIVERIES` per call, `REPLAY_TENANT_PER_MIN` deliveries a minute.
async fn replay(
    s: &AppState,
    ctx: &RequestContext,
    filter: DeliveryFilter,
    delivery: Option<uuid::Uuid>,
) -> AppResult<ApiOk<svc::Replayed>> {
    let tenant = ctx.scope().tenant.as_uuid();
    let bounds = svc::ReplayBounds {
        max: u64::from(s.config.replay_max_deliveries),
        admit: |n| s.limits.replays(tenant, n),
    };
    let replayed = svc::replay(&s.store, &s.clock, &ctx.scope(), filter, delivery, bounds).await?;
    Ok(ApiOk::created(replayed))
}

/// Send one delivery again (a fresh retry budget).
#[utoipa::path(post, path = "/webhooks/deliveries/{deliveryId}/replay", tag = "webhooks",
    params(Tenancy, ("deliveryId" = String, Path, format = Uuid)),
    responses((status = 201, body = Envelope<svc::Replayed>), (status = 404, body = ErrorEnvelope)))]
async fn replay_delivery(
    State(s): State<AppState>,
    ctx: RequestContext,
    Path(id): Path<String>,
) -> AppResult<ApiOk<svc::Replayed>> {
    admin(&ctx)?;
    replay(&s, &ctx, DeliveryFilter::default(), Some(path_uuid(&id)?)).await
}

/// Send every delivery of one event again.
#[utoipa::path(post, path = "/webhooks/events/{eventId}/replay", tag = "webhooks",
    params(Tenancy, ("eventId" = String, Path, format = Uuid)),
    responses((status = 201, body = Envelope<svc::Replayed>), (status = 404, body = ErrorEnvelope)))]
async fn replay_event(
    State(s): State<AppState>,
    ctx: RequestContext,
    Path(id): Path<String>,
) -> AppResult<ApiOk<svc::Replayed>> {
    admin(&ctx)?;
    let f = DeliveryFilter {
        event_id: Some(path_uuid(&id)?),
        ..DeliveryFilter::default()
    };
    replay(&s, &ctx, f, None).await
}

/// Body of a range replay.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ReplayRange {
    pub from: chrono::DateTime<chrono::Utc>,
    pub to: chrono::DateTime<chrono::Utc>,
    #[serde(default)]
    pub subscription_id: Option<uuid::Uuid>,
    /// Only deliveries in this status (e.g. `dead`).
    #[serde(default)]
    pub status: Option<String>,
}

/// Send again the deliveries of the events created in a time range.
#[utoipa::path(post, path = "/webhooks/replay", tag = "webhooks", params(Tenancy), request_body = ReplayRange,
    responses((status = 201, body = Envelope<svc::Replayed>), (status = 400, body = ErrorEnvelope)))]
async fn replay_range(
    State(s): State<AppState>,
    ctx: RequestContext,
    ValidJson(body): ValidJson<ReplayRange>,
) -> AppResult<ApiOk<svc::Replayed>> {
    admin(&ctx)?;
    if body.to < body.from {
        return Err(crate::error::AppError::validation(
            "to must not be before from",
        ));
    }
    let f = DeliveryFilter {
        subscription_id: body.subscription_id,
        status: body.status,
        created_from: Some(crate::store::Ts::new(body.from)),
        created_to: Some(crate::store::Ts::new(body.to)),
        ..DeliveryFilter::default()
    };
    replay(&s, &ctx, f, None).await
}

/// The plugin registry: the seed's `getActivePlugins()` and `getExternalServiceCount()`.
#[utoipa::path(get, path = "/plugins", tag = "webhooks", params(Tenancy),
    responses((status = 200, body = Envelope<super::views::Plugins>), (status = 403, body = ErrorEnvelope)))]
async fn plugins(State(s): State<AppState>, ctx: RequestContext) -> AppResult<ApiOk<Value>> {
    admin(&ctx)?;
    let scope = ctx.scope();
    let subs = crate::store::deliveries::all_subscriptions(&s.store).await?;
    let visible: Vec<&Subscription> = subs
        .iter()
        .filter(|x| x.tenant_id.is_none_or(|t| t.0 == scope.tenant.as_uuid()))
        .filter(|x| {
            x.organisation_id
                .is_none_or(|o| o.0 == scope.organisation.as_uuid())
        })
        .collect();
    let active: Vec<Value> = visible
        .iter()
        .filter(|x| x.is_active)
        .map(|x| {
            let mut service = json!({"type": x.kind, "events": x.events.0});
            if let Some(broker) = s.brokers.describe(x.subscription_id.0) {
                // The seed's plugin type, the broker, where it publishes and how its
                // connection is doing.
                service = json!({
                    "type": broker["type"], "broker": broker["broker"], "target": x.target,
                    "events": x.events.0, "connection": broker["connection"],
                });
            }
            json!({
                "id": x.subscription_id,
                "name": x.name,
                "type": if x.kind == SubscriptionKind::Plugin { "internal" } else { "external" },
                "source": x.source,
                "isActive": x.is_active,
                "externalService": service,
            })
        })
        .collect();
    Ok(ApiOk::ok(json!({
        "activePlugins": active,
        "externalServiceCount": active.iter().filter(|p| p["type"] == "external").count(),
        "internalPlugins": s.plugins.describe(),
    })))
}
