//! SQL for the subscription registry: who receives which events, and how.

#[allow(unused_imports)]
use super::*;

/// A subscription: where events go.
#[derive(Debug, Clone, FromRow, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[sqlx(rename_all = "camelCase")]
pub struct Subscription {
    #[schema(value_type = String, format = Uuid)]
    pub subscription_id: Id,
    #[schema(value_type = Option<String>, format = Uuid)]
    pub tenant_id: Option<Id>,
    #[schema(value_type = Option<String>, format = Uuid)]
    pub organisation_id: Option<Id>,
    pub name: String,
    pub source: String,
    #[sqlx(try_from = "String")]
    #[schema(value_type = String)]
    pub kind: SubscriptionKind,
    pub target: String,
    pub method: String,
    /// Header names are shown; their values (often credentials) never are.
    #[schema(value_type = Object)]
    #[serde(serialize_with = "masked_headers")]
    pub headers: Json<Value>,
    #[serde(skip)]
    pub secret: Option<String>,
    /// The secret before the last rotation, still signing until `previous_secret_expires_at`.
    #[serde(skip)]
    pub previous_secret: Option<String>,
    /// Until when deliveries also carry a signature with the previous secret.
    #[schema(value_type = Option<String>, format = DateTime)]
    pub previous_secret_expires_at: Option<Ts>,
    #[schema(value_type = Vec<String>)]
    pub events: Json<Vec<String>>,
    pub timeout_ms: i32,
    pub max_retries: i32,
    pub is_active: bool,
    pub disabled_reason: Option<String>,
    #[schema(value_type = String, format = DateTime)]
    pub created_at: Ts,
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: Ts,
}

/// What a subscription's deliveries run: an HTTP request, an internal plugin, or a message
/// broker (RabbitMQ, NATS JetStream, Redis Streams). Every kind the schema allows decodes, so one subscription of a kind this version
/// cannot send to (written by a newer instance sharing the database) cannot stop the fan-out
/// and the claims of all the others.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SubscriptionKind {
    Webhook,
    Plugin,
    Amqp,
    Nats,
    Redis,
}

impl Subscription {
    /// The secrets deliveries are signed with at `now`: the current one, then the previous
    /// one while its overlap after a rotation lasts.
    pub fn signing_secrets(&self, now: Ts) -> Vec<&str> {
        let previous = self.previous_secret.as_deref().filter(|_| {
            self.previous_secret_expires_at
                .is_some_and(|until| now < until)
        });
        self.secret.as_deref().into_iter().chain(previous).collect()
    }
}

impl SubscriptionKind {
    /// As stored.
    pub fn as_str(self) -> &'static str {
        match self {
            SubscriptionKind::Webhook => "webhook",
            SubscriptionKind::Plugin => "plugin",
            SubscriptionKind::Nats => "nats",
            SubscriptionKind::Amqp => "amqp",
            SubscriptionKind::Redis => "redis",
        }
    }
}

impl TryFrom<String> for SubscriptionKind {
    type Error = crate::domain::enums::UnknownValue;

    fn try_from(s: String) -> Result<Self, Self::Error> {
        match s.as_str() {
            "webhook" => Ok(SubscriptionKind::Webhook),
            "plugin" => Ok(SubscriptionKind::Plugin),
            "nats" => Ok(SubscriptionKind::Nats),
            "amqp" => Ok(SubscriptionKind::Amqp),
            "redis" => Ok(SubscriptionKind::Redis),
            _ => Err(crate::domain::enums::UnknownValue {
                kind: "SubscriptionKind",
                value: s,
            }),
        }
    }
}

/// What a header value is shown as.
pub const MASKED: &str = "********";

/// Writes headers with every value replaced by [`MASKED`].
pub(super) fn masked_headers<S: serde::Serializer>(
    h: &Json<Value>,
    s: S,
) -> Result<S::Ok, S::Error> {
    use serde::ser::SerializeMap;
    let empty = serde_json::Map::new();
    let map = h.0.as_object().unwrap_or(&empty);
    let mut out = s.serialize_map(Some(map.len()))?;
    for k in map.keys() {
        out.serialize_entry(k, MASKED)?;
    }
    out.end()
}

pub(super) const SUB_COLUMNS: &str = r#""subscriptionId", "tenantId", "organisationId", "name", "source",
    "kind", "target", "method", "headers", "secret", "events", "timeoutMs", "maxRetries",
    "isActive", "disabledReason", "createdAt", "updatedAt", "previousSecret", "previousSecretExpiresAt""#;

/// Creates or rewrites a subscription by id (configuration-defined ones have stable ids).
#[instrument(skip_all, err(level = "warn"))]
pub async fn upsert_subscription(tx: &mut Tx, s: &Subscription) -> Result<(), sqlx::Error> {
    let sql = format!(
        r#"INSERT INTO "subscriptions" ({SUB_COLUMNS}) VALUES
           ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14,$15,$16,$17,$18,$19)
           ON CONFLICT ("subscriptionId") DO UPDATE SET "name" = excluded."name",
             "kind" = excluded."kind", "target" = excluded."target", "method" = excluded."method",
             "headers" = excluded."headers", "secret" = excluded."secret",
             "events" = excluded."events", "timeoutMs" = excluded."timeoutMs",
             "maxRetries" = excluded."maxRetries", "isActive" = excluded."isActive",
             "disabledReason" = excluded."disabledReason", "updatedAt" = excluded."updatedAt",
             "previousSecret" = excluded."previousSecret",
             "previousSecretExpiresAt" = excluded."previousSecretExpiresAt""#
    );
    on_tx!(tx, c => {
        sqlx::query(&sql)
            .bind(s.subscription_id).bind(s.tenant_id).bind(s.organisation_id).bind(&s.name)
            .bind(&s.source).bind(s.kind.as_str()).bind(&s.target).bind(&s.method).bind(&s.headers)
            .bind(&s.secret).bind(&s.events).bind(s.timeout_ms).bind(s.max_retries)
            .bind(s.is_active).bind(&s.disabled_reason).bind(s.created_at).bind(s.updated_at)
            .bind(&s.previous_secret).bind(s.previous_secret_expires_at)
            .execute(c).await.map(|r| r.rows_affected())
    })?;
    Ok(())
}

/// Deactivates configuration-defined subscriptions of `source` not in `keep`.
#[instrument(skip_all, err(level = "warn"))]
pub async fn deactivate_others(
    tx: &mut Tx,
    source: &str,
    keep: &[Uuid],
    now: Ts,
) -> Result<(), sqlx::Error> {
    let rows: Vec<Id> = on_tx!(tx, c => {
        sqlx::query_scalar(r#"SELECT "subscriptionId" FROM "subscriptions" WHERE "source" = $1 AND "isActive""#)
            .bind(source).fetch_all(c).await
    })?;
    for id in rows.into_iter().filter(|i| !keep.contains(&i.0)) {
        on_tx!(tx, c => {
            sqlx::query(r#"UPDATE "subscriptions" SET "isActive" = FALSE,
                "disabledReason" = 'no longer configured', "updatedAt" = $2 WHERE "subscriptionId" = $1"#)
                .bind(id).bind(now).execute(c).await.map(|r| r.rows_affected())
        })?;
    }
    Ok(())
}

/// Turns a subscription off because its receiver is gone (HTTP 410), and cancels the
/// deliveries still waiting for it: they would otherwise stay pending for ever. A replay puts
/// them back once the subscription is enabled again.
#[instrument(skip_all, err(level = "warn"))]
pub async fn disable(store: &Store, id: Uuid, reason: &str, now: Ts) -> Result<(), sqlx::Error> {
    let mut tx = store.begin().await?;
    on_tx!(&mut tx, c => {
        sqlx::query(r#"UPDATE "subscriptions" SET "isActive" = FALSE, "disabledReason" = $2,
            "updatedAt" = $3 WHERE "subscriptionId" = $1"#)
            .bind(Id(id)).bind(reason).bind(now).execute(c).await.map(|r| r.rows_affected())
    })?;
    let cancel = format!(
        r#"UPDATE "deliveries" SET "status" = {}, "lastError" = $2, "updatedAt" = $3
           WHERE "subscriptionId" = $1 AND "status" = {}"#,
        DeliveryStatus::Cancelled.sql(),
        DeliveryStatus::Pending.sql()
    );
    on_tx!(&mut tx, c => {
        sqlx::query(&cancel)
            .bind(Id(id)).bind(format!("cancelled: {reason}")).bind(now).execute(c).await.map(|r| r.rows_affected())
    })?;
    tx.commit().await
}

/// Every subscription (registry view).
#[instrument(skip_all, err(level = "warn"))]
pub async fn all_subscriptions(store: &Store) -> Result<Vec<Subscription>, sqlx::Error> {
    let sql = format!(
        r#"SELECT {SUB_COLUMNS} FROM "subscriptions" ORDER BY "source", "name", "subscriptionId""#
    );
    on_reader!(store, p => sqlx::query_as::<_, Subscription>(&sql).fetch_all(p).await)
}

/// Subscriptions of one tenant and organisation (the admin API's), newest first.
#[instrument(skip_all, err(level = "warn"))]
pub async fn scoped_subscriptions(
    store: &Store,
    tenant: Uuid,
    org: Uuid,
) -> Result<Vec<Subscription>, sqlx::Error> {
    let sql = format!(
        r#"SELECT {SUB_COLUMNS} FROM "subscriptions" WHERE "tenantId" = $1 AND "organisationId" = $2
           AND "source" = 'api' ORDER BY "createdAt" DESC, "subscriptionId""#
    );
    on_reader!(store, p => sqlx::query_as::<_, Subscription>(&sql).bind(Id(tenant)).bind(Id(org)).fetch_all(p).await)
}

/// One subscription of a tenant and organisation.
#[instrument(skip_all, err(level = "warn"))]
pub async fn scoped_subscription(
    store: &Store,
    tenant: Uuid,
    org: Uuid,
    id: Uuid,
) -> Result<Option<Subscription>, sqlx::Error> {
    let sql = format!(
        r#"SELECT {SUB_COLUMNS} FROM "subscriptions" WHERE "tenantId" = $1 AND "organisationId" = $2
           AND "source" = 'api' AND "subscriptionId" = $3"#
    );
    on_reader!(store, p => sqlx::query_as::<_, Subscription>(&sql).bind(Id(tenant)).bind(Id(org)).bind(Id(id)).fetch_optional(p).await)
}

/// Deletes a subscription (its deliveries go with it).
#[instrument(skip_all, err(level = "warn"))]
pub async fn delete_subscription(tx: &mut Tx, id: Uuid) -> Result<(), sqlx::Error> {
    on_tx!(tx, c => {
        sqlx::query(r#"DELETE FROM "subscriptions" WHERE "subscriptionId" = $1"#)
            .bind(Id(id)).execute(c).await.map(|r| r.rows_affected())
    })?;
    Ok(())
}
