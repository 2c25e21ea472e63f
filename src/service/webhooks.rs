//! The per-tenant webhook admin API: subscriptions of one tenant and organisation, their
//! secrets, test sends, the delivery log, replays and dead letters.

use std::time::Instant;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sqlx::types::Json;
use utoipa::ToSchema;
use uuid::Uuid;

use super::{Actor, Page, page_window};
use crate::clock::Clock;
use crate::domain::event::EventName;
use crate::domain::ids::Scope;
use crate::error::{AppError, AppResult};
use crate::events::{safety, signing};
use crate::service::de;
use crate::store::deliveries::{self as repo, Audience, DeliveryFilter, DeliveryRow, Subscription};
use crate::store::{Id, Store, Ts};

/// The fields `create` refuses to go without (the OpenAPI document marks them required on
/// create; a patch may leave any out).
pub const REQUIRED_ON_CREATE: &[&str] = &["name", "url"];

/// Body of `POST /webhooks` (all optional in PATCH).
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct WebhookIn {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub url: Option<String>,
    /// Event names, or `["*"]` for all.
    #[serde(default)]
    pub events: Option<Vec<String>>,
    /// Extra request headers (e.g. `Authorization`).
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub headers: Option<std::collections::BTreeMap<String, String>>,
    /// `POST` (default) or `PUT`.
    #[serde(default)]
    pub method: Option<String>,
    /// Milliseconds, 1 to 300000 (default 10000).
    #[serde(default)]
    pub timeout: Option<u32>,
    /// Retries after the first try, 0 to 100 (default 3).
    #[serde(default)]
    pub retries: Option<u32>,
    #[serde(default)]
    pub is_active: Option<bool>,
}

/// A webhook as the admin API shows it; the secret only when it is created or rotated.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct WebhookOut {
    #[serde(flatten)]
    pub subscription: Subscription,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
}

fn check_events(events: &[String]) -> AppResult<()> {
    if events.is_empty() {
        return Err(AppError::validation("events should not be empty"));
    }
    // More names than there are events can only repeat them.
    super::at_most("events", events, 64)?;
    for e in events {
        if e != "*" && EventName::parse(e).is_none() {
            return Err(AppError::validation(format!("{e:?} is not an event name")));
        }
    }
    Ok(())
}

async fn check_url(raw: &str, allow_private: bool) -> AppResult<String> {
    let url = url::Url::parse(raw.trim()).map_err(|e| AppError::validation(format!("url: {e}")))?;
    safety::check(&url, allow_private)
        .await
        .map_err(|e| AppError::validation(format!("url: {e}")))?;
    Ok(url.to_string())
}

fn apply(s: &mut Subscription, input: &WebhookIn) -> AppResult<()> {
    if let Some(n) = &input.name {
        if n.trim().is_empty() {
            return Err(AppError::validation("name should not be empty"));
        }
        s.name = n.trim().to_string();
    }
    if let Some(e) = &input.events {
        check_events(e)?;
        s.events = Json(e.clone());
    }
    if let Some(h) = &input.headers {
        if h.len() > safety::MAX_HEADERS {
            return Err(AppError::validation(format!(
                "headers: at most {} headers",
                safety::MAX_HEADERS
            )));
        }
        for (k, v) in h {
            // A masked value is the stored one, checked when it was set.
            let value = if v == repo::MASKED { "" } else { v.as_str() };
            if let Some(problem) = safety::header_problem(k, value) {
                return Err(AppError::validation(problem));
            }
        }
        // Headers are replaced as a whole; a value sent back as shown (masked) keeps the
        // stored one, so a client can resend what it read.
        let mut next = serde_json::Map::new();
        for (k, v) in h {
            let v = if v == repo::MASKED {
                match s.headers.0.get(k).and_then(Value::as_str) {
                    Some(stored) => stored.to_string(),
                    None => {
                        return Err(AppError::validation(format!(
                            "headers: {k:?} is new: send its value, not {:?}",
                            repo::MASKED
                        )));
                    }
                }
            } else {
                v.clone()
            };
            next.insert(k.clone(), Value::String(v));
        }
        s.headers = Json(Value::Object(next));
    }
    if let Some(m) = &input.method {
        let m = m.trim().to_ascii_uppercase();
        if !matches!(m.as_str(), "POST" | "PUT") {
            return Err(AppError::validation("method must be POST or PUT"));
        }
        s.method = m;
    }
    if let Some(t) = input.timeout {
        if !(1..=300_000).contains(&t) {
            return Err(AppError::validation(
                "timeout must be between 1 and 300000 ms",
            ));
        }
        s.timeout_ms = t as i32;
    }
    if let Some(r) = input.retries {
        if r > 100 {
            return Err(AppError::validation("retries must be at most 100"));
        }
        s.max_retries = r as i32;
    }
    if let Some(a) = input.is_active {
        s.is_active = a;
        s.disabled_reason = if a {
            None
        } else {
            Some("disabled by an administrator".into())
        };
    }
    Ok(())
}

/// `POST /webhooks`.
pub async fn create(
    store: &Store,
    clock: &Clock,
    actor: &Actor,
    allow_private: bool,
    input: WebhookIn,
) -> AppResult<WebhookOut> {
    let now = clock.now();
    let url = input
        .url
        .as_deref()
        .ok_or_else(|| AppError::validation("url should not be empty"))?;
    let url = check_url(url, allow_private).await?;
    if input.name.is_none() {
        return Err(AppError::validation("name should not be empty"));
    }
    let secret = signing::new_secret();
    let mut s = Subscription {
        subscription_id: Id(Uuid::new_v4()),
        tenant_id: Some(Id(actor.scope.tenant.as_uuid())),
        organisation_id: Some(Id(actor.scope.organisation.as_uuid())),
        name: String::new(),
        source: "api".into(),
        kind: repo::SubscriptionKind::Webhook,
        target: url,
        method: "POST".into(),
        headers: Json(json!({})),
        secret: Some(secret.clone()),
        previous_secret: None,
        previous_secret_expires_at: None,
        events: Json(vec!["*".into()]),
        timeout_ms: 10_000,
        max_retries: 3,
        is_active: true,
        disabled_reason: None,
        created_at: now,
        updated_at: now,
    };
    apply(&mut s, &input)?;
    save(store, &s).await?;
    Ok(WebhookOut {
        subscription: s,
        secret: Some(secret),
    })
}

/// Writes a subscription (new or changed) in its own transaction.
async fn save(store: &Store, s: &Subscription) -> AppResult<()> {
    let mut tx = store.begin().await?;
    repo::upsert_subscription(&mut tx, s).await?;
    tx.commit().await?;
    Ok(())
}

async fn own(store: &Store, scope: &Scope, id: Uuid) -> AppResult<Subscription> {
    repo::scoped_subscription(
        store,
        scope.tenant.as_uuid(),
        scope.organisation.as_uuid(),
        id,
    )
    .await?
    .ok_or_else(|| AppError::not_found("Webhook not found"))
}

/// `GET /webhooks`.
pub async fn list(store: &Store, scope: &Scope) -> AppResult<Vec<Subscription>> {
    Ok(
        repo::scoped_subscriptions(store, scope.tenant.as_uuid(), scope.organisation.as_uuid())
            .await?,
    )
}

/// `GET /webhooks/{id}`.
pub async fn get(store: &Store, scope: &Scope, id: Uuid) -> AppResult<Subscription> {
    own(store, scope, id).await
}

/// `PATCH /webhooks/{id}`.
pub async fn update(
    store: &Store,
    clock: &Clock,
    scope: &Scope,
    allow_private: bool,
    id: Uuid,
    input: WebhookIn,
) -> AppResult<Subscription> {
    let mut s = own(store, scope, id).await?;
    if let Some(u) = &input.url {
        s.target = check_url(u, allow_private).await?;
    }
    apply(&mut s, &input)?;
    s.updated_at = clock.now();
    save(store, &s).await?;
    Ok(s)
}

/// `DELETE /webhooks/{id}` (its deliveries go with it).
pub async fn delete(store: &Store, scope: &Scope, id: Uuid) -> AppResult<()> {
    own(store, scope, id).await?;
    let mut tx = store.begin().await?;
    repo::delete_subscription(&mut tx, id).await?;
    tx.commit().await?;
    Ok(())
}

/// `POST /webhooks/{id}/rotate-secret`: a new signing secret, effective at once. For
/// `overlap` after it, deliveries carry a second signature with the secret it replaces, so a
/// receiver that still checks with the old secret keeps accepting them while it switches.
pub async fn rotate(
    store: &Store,
    clock: &Clock,
    scope: &Scope,
    id: Uuid,
    overlap: std::time::Duration,
) -> AppResult<WebhookOut> {
    let mut s = own(store, scope, id).await?;
    let secret = signing::new_secret();
    let now = clock.now();
    let until = chrono::Duration::from_std(overlap)
        .ok()
        .and_then(|d| now.0.checked_add_signed(d))
        .filter(|_| !overlap.is_zero());
    match (s.secret.take(), until) {
        (Some(previous), Some(until)) => {
            s.previous_secret = Some(previous);
            s.previous_secret_expires_at = Some(crate::store::Ts::new(until));
        }
        _ => {
            s.previous_secret = None;
            s.previous_secret_expires_at = None;
        }
    }
    s.secret = Some(secret.clone());
    s.updated_at = now;
    save(store, &s).await?;
    Ok(WebhookOut {
        subscription: s,
        secret: Some(secret),
    })
}

/// `POST /webhooks/{id}/test`: sends a signed `webhook.test` payload now and reports the
/// answer (not queued, not retried).
pub async fn send_test(
    store: &Store,
    clock: &Clock,
    actor: &Actor,
    allow_private: bool,
    id: Uuid,
) -> AppResult<TestSent> {
    let s = own(store, &actor.scope, id).await?;
    let url = url::Url::parse(&s.target).map_err(|e| AppError::validation(e.to_string()))?;
    safety::check(&url, allow_private)
        .await
        .map_err(|e| AppError::Unprocessable(e.to_string()))?;
    let event_id = Uuid::now_v7().to_string();
    let body = serde_json::to_vec(&json!({
        "name": "webhook.test",
        "context": {"tenantId": actor.scope.tenant, "organisationId": actor.scope.organisation, "userId": actor.user},
        "data": {"subscriptionId": s.subscription_id, "message": "This is a test event from the Shiksha assessment service."},
        "timestamp": clock.now().to_text(),
        "id": event_id,
    }))
    .map_err(anyhow::Error::from)?;
    let ts = clock.now().0.timestamp();
    let mut req = safety::client(allow_private)
        .post(url)
        .timeout(std::time::Duration::from_millis(s.timeout_ms.max(1) as u64))
        .header("Content-Type", "application/json")
        .header("webhook-id", &event_id)
        .header("webhook-timestamp", ts.to_string());
    if let Some(h) = s.headers.0.as_object() {
        for (k, v) in h {
            if let Some(v) = v.as_str() {
                req = req.header(k.as_str(), v);
            }
        }
    }
    if let Some(signature) =
        signing::signature_header(s.signing_secrets(clock.now()), &event_id, ts, &body)
    {
        req = req.header("webhook-signature", signature);
    }
    let started = Instant::now();
    let outcome = req.body(body).send().await;
    let ms = started.elapsed().as_millis() as u64;
    Ok(match outcome {
        Ok(r) => TestSent {
            delivered: r.status().is_success(),
            status_code: Some(r.status().as_u16()),
            duration_ms: ms,
            error: None,
        },
        Err(e) => TestSent {
            delivered: false,
            status_code: None,
            duration_ms: ms,
            error: Some(e.without_url().to_string()),
        },
    })
}

/// Filters of the delivery log (`GET /webhooks/deliveries`) and of range replays.
#[derive(Debug, Clone, Default, Deserialize, utoipa::IntoParams, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
pub struct DeliveryQuery {
    #[serde(default)]
    pub event_id: Option<Uuid>,
    /// The event's name, e.g. `attempt.submitted`.
    #[serde(default)]
    pub event: Option<String>,
    #[serde(default)]
    pub subscription_id: Option<Uuid>,
    /// `pending`, `delivering`, `delivered` or `dead`.
    #[serde(default)]
    pub status: Option<String>,
    /// Events created at or after.
    #[serde(default)]
    pub from: Option<chrono::DateTime<chrono::Utc>>,
    /// Events created at or before.
    #[serde(default)]
    pub to: Option<chrono::DateTime<chrono::Utc>>,
    #[serde(default, deserialize_with = "de::opt_num")]
    pub limit: Option<i64>,
    #[serde(default, deserialize_with = "de::opt_num")]
    pub offset: Option<i64>,
}

impl DeliveryQuery {
    fn filter(&self) -> AppResult<DeliveryFilter> {
        if let Some(s) = &self.status
            && !matches!(
                s.as_str(),
                "pending" | "delivering" | "delivered" | "dead" | "cancelled"
            )
        {
            return Err(AppError::validation(
                "status must be pending, delivering, delivered or dead",
            ));
        }
        if let Some(name) = &self.event
            && crate::domain::event::EventName::parse(name).is_none()
        {
            return Err(AppError::validation(format!(
                "event: no event is named {name:?}"
            )));
        }
        Ok(DeliveryFilter {
            event_id: self.event_id,
            event_name: self.event.clone(),
            subscription_id: self.subscription_id,
            status: self.status.clone(),
            created_from: self.from.map(Ts::new),
            created_to: self.to.map(Ts::new),
        })
    }
}

/// What a tenant's scope sees of the delivery log.
fn audience(scope: &Scope) -> Audience {
    Audience::Tenant {
        tenant: scope.tenant.as_uuid(),
        organisation: scope.organisation.as_uuid(),
    }
}

/// `GET /webhooks/deliveries` (and dead letters with `status=dead`).
pub async fn deliveries(
    store: &Store,
    scope: &Scope,
    q: &DeliveryQuery,
) -> AppResult<Page<DeliveryRow>> {
    let (limit, offset) = page_window(q.limit, q.offset)?;
    let (rows, total) = repo::log(store, &audience(scope), &q.filter()?, limit, offset).await?;
    Ok(Page::new(rows, total, limit, offset))
}

/// The tries of one delivery of this scope.
pub async fn attempts(store: &Store, scope: &Scope, delivery_id: Uuid) -> AppResult<Vec<Value>> {
    let f = DeliveryFilter::default();
    let visible = repo::replay_candidates(store, &audience(scope), &f, Some(delivery_id)).await?;
    if visible.is_empty() {
        return Err(AppError::not_found("Delivery not found"));
    }
    Ok(repo::attempts_detail(store, delivery_id).await?)
}

/// How much one replay may put back in the queue: at most `max` deliveries per call, and
/// only what `admit` allows (the tenant's replays per minute; it refuses with the error).
pub struct ReplayBounds<A> {
    pub max: u64,
    pub admit: A,
}

/// Replays: one delivery, the deliveries of one event, or those of a time range. A call
/// matching more than `bounds.max` deliveries, or refused by `bounds.admit`, writes nothing.
pub async fn replay<A: FnOnce(u64) -> AppResult<()>>(
    store: &Store,
    clock: &Clock,
    scope: &Scope,
    filter: DeliveryFilter,
    delivery_id: Option<Uuid>,
    bounds: ReplayBounds<A>,
) -> AppResult<Replayed> {
    let mut tx = store.begin().await?;
    let n = repo::replay_in(
        &mut tx,
        &audience(scope),
        &filter,
        delivery_id,
        clock.now(),
        Some(bounds.max.saturating_add(1)),
    )
    .await?;
    if n > bounds.max {
        return Err(AppError::Unprocessable(format!(
            "More than {} deliveries match; replay a narrower range (from/to, subscriptionId or status)",
            bounds.max
        )));
    }
    if n == 0 && (delivery_id.is_some() || filter.event_id.is_some()) {
        return Err(AppError::not_found("Nothing to replay"));
    }
    (bounds.admit)(n)?;
    tx.commit().await?;
    Ok(Replayed { replayed: n })
}

/// What a replay did.
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
pub struct Replayed {
    /// Deliveries set to be sent again.
    pub replayed: u64,
}

/// What a test send found.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TestSent {
    /// Whether the receiver answered 2xx.
    pub delivered: bool,
    /// The receiver's status, when it answered.
    pub status_code: Option<u16>,
    pub duration_ms: u64,
    /// Why nothing was delivered (no URL in it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The operator's delivery log (the configuration's subscriptions: environment, plugins
/// file, internal plugins), newest first, each delivery with its tries when `tries`.
pub async fn operator_deliveries(
    store: &Store,
    filter: &DeliveryFilter,
    limit: i64,
    tries: bool,
) -> anyhow::Result<Vec<Value>> {
    let (rows, _) = repo::log(
        store,
        &Audience::Operator,
        filter,
        limit.clamp(1, 10_000),
        0,
    )
    .await?;
    let mut out = Vec::with_capacity(rows.len());
    for row in rows {
        let mut v = serde_json::to_value(&row)?;
        if tries {
            v["tries"] = json!(repo::attempts_detail(store, row.delivery_id.0).await?);
        }
        out.push(v);
    }
    Ok(out)
}

/// Replays the operator's deliveries matching `filter` (and `delivery_id`).
pub async fn operator_replay(
    store: &Store,
    clock: &Clock,
    filter: &DeliveryFilter,
    delivery_id: Option<Uuid>,
) -> anyhow::Result<u64> {
    Ok(repo::replay(store, &Audience::Operator, filter, delivery_id, clock.now()).await?)
}
