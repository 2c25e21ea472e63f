//! SQL for event delivery: subscriptions, fan-out of committed events into deliveries, the
//! leased claim of due deliveries, and the record of every try.
//!
//! The claim is the only dialect-specific statement: PostgreSQL uses `FOR UPDATE SKIP LOCKED`
//! so several dispatchers share the work; SQLite (one writer) a plain `UPDATE ... RETURNING`.

use serde::Serialize;
use serde_json::Value;
use sqlx::FromRow;
use sqlx::types::Json;
use utoipa::ToSchema;
use uuid::Uuid;

use super::{Backend, Id, Store, Ts, Tx};
use crate::{on_reader, on_tx};

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

/// What a subscription's deliveries run: an HTTP request, or an internal plugin.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SubscriptionKind {
    Webhook,
    Plugin,
}

impl SubscriptionKind {
    /// As stored.
    pub fn as_str(self) -> &'static str {
        match self {
            SubscriptionKind::Webhook => "webhook",
            SubscriptionKind::Plugin => "plugin",
        }
    }
}

impl TryFrom<String> for SubscriptionKind {
    type Error = crate::domain::enums::UnknownValue;

    fn try_from(s: String) -> Result<Self, Self::Error> {
        match s.as_str() {
            "webhook" => Ok(SubscriptionKind::Webhook),
            "plugin" => Ok(SubscriptionKind::Plugin),
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
fn masked_headers<S: serde::Serializer>(h: &Json<Value>, s: S) -> Result<S::Ok, S::Error> {
    use serde::ser::SerializeMap;
    let empty = serde_json::Map::new();
    let map = h.0.as_object().unwrap_or(&empty);
    let mut out = s.serialize_map(Some(map.len()))?;
    for k in map.keys() {
        out.serialize_entry(k, MASKED)?;
    }
    out.end()
}

const SUB_COLUMNS: &str = r#""subscriptionId", "tenantId", "organisationId", "name", "source",
    "kind", "target", "method", "headers", "secret", "events", "timeoutMs", "maxRetries",
    "isActive", "disabledReason", "createdAt", "updatedAt""#;

/// Creates or rewrites a subscription by id (configuration-defined ones have stable ids).
pub async fn upsert_subscription(tx: &mut Tx, s: &Subscription) -> Result<(), sqlx::Error> {
    let sql = format!(
        r#"INSERT INTO "subscriptions" ({SUB_COLUMNS}) VALUES
           ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14,$15,$16,$17)
           ON CONFLICT ("subscriptionId") DO UPDATE SET "name" = excluded."name",
             "kind" = excluded."kind", "target" = excluded."target", "method" = excluded."method",
             "headers" = excluded."headers", "secret" = excluded."secret",
             "events" = excluded."events", "timeoutMs" = excluded."timeoutMs",
             "maxRetries" = excluded."maxRetries", "isActive" = excluded."isActive",
             "disabledReason" = excluded."disabledReason", "updatedAt" = excluded."updatedAt""#
    );
    on_tx!(tx, c => {
        sqlx::query(&sql)
            .bind(s.subscription_id).bind(s.tenant_id).bind(s.organisation_id).bind(&s.name)
            .bind(&s.source).bind(s.kind.as_str()).bind(&s.target).bind(&s.method).bind(&s.headers)
            .bind(&s.secret).bind(&s.events).bind(s.timeout_ms).bind(s.max_retries)
            .bind(s.is_active).bind(&s.disabled_reason).bind(s.created_at).bind(s.updated_at)
            .execute(c).await.map(|r| r.rows_affected())
    })?;
    Ok(())
}

/// Deactivates configuration-defined subscriptions of `source` not in `keep`.
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

/// Turns a subscription off (a 410 from its receiver, or an operator).
pub async fn disable(store: &Store, id: Uuid, reason: &str, now: Ts) -> Result<(), sqlx::Error> {
    let mut tx = store.begin().await?;
    on_tx!(&mut tx, c => {
        sqlx::query(r#"UPDATE "subscriptions" SET "isActive" = FALSE, "disabledReason" = $2,
            "updatedAt" = $3 WHERE "subscriptionId" = $1"#)
            .bind(Id(id)).bind(reason).bind(now).execute(c).await.map(|r| r.rows_affected())
    })?;
    tx.commit().await
}

/// Every subscription (registry view).
pub async fn all_subscriptions(store: &Store) -> Result<Vec<Subscription>, sqlx::Error> {
    let sql = format!(
        r#"SELECT {SUB_COLUMNS} FROM "subscriptions" ORDER BY "source", "name", "subscriptionId""#
    );
    on_reader!(store, p => sqlx::query_as::<_, Subscription>(&sql).fetch_all(p).await)
}

/// An event waiting for fan-out: seq, name, tenant, organisation, ordering key.
type PendingEvent = (i64, String, Option<Id>, Option<Id>, Option<String>);

/// What one fan-out did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FanOut {
    /// Events marked fanned out.
    pub events: usize,
    /// Deliveries created for them.
    pub deliveries: usize,
}

/// Creates the deliveries of up to `limit` committed events not yet fanned out, for every
/// active subscription that wants them, and marks those events fanned out.
pub async fn fan_out(store: &Store, limit: i64, now: Ts) -> Result<FanOut, sqlx::Error> {
    let mut tx = store.begin_async_commit().await?;
    if tx.backend() == Backend::Postgres {
        // One fan-out at a time across instances: two taking different slices of the events
        // could create a later event's deliveries before an earlier one's, and the ordering
        // rule (no earlier undelivered event with the same key) would not see the earlier one.
        // The lock is per schema, so services sharing a database do not wait on each other.
        let ours: bool = on_tx!(&mut tx, c => {
            sqlx::query_scalar("SELECT pg_try_advisory_xact_lock(7426001, hashtext(current_schema()))").fetch_one(c).await
        })?;
        if !ours {
            return Ok(FanOut::default());
        }
    }
    let pick = r#"SELECT "seq", "name", "tenantId", "organisationId", "orderingKey" FROM "events"
           WHERE "fannedOutAt" IS NULL ORDER BY "seq" LIMIT $1"#;
    let events: Vec<PendingEvent> =
        on_tx!(&mut tx, c => sqlx::query_as(pick).bind(limit).fetch_all(c).await)?;
    if events.is_empty() {
        return Ok(FanOut::default());
    }
    let subs_sql = format!(r#"SELECT {SUB_COLUMNS} FROM "subscriptions" WHERE "isActive""#);
    let subs: Vec<Subscription> =
        on_tx!(&mut tx, c => sqlx::query_as::<_, Subscription>(&subs_sql).fetch_all(c).await)?;
    // Every (event, subscription) pair, inserted in multi-row statements.
    let pairs: Vec<_> = events
        .iter()
        .flat_map(|(seq, name, tenant, org, key)| {
            subs.iter()
                .filter(move |s| {
                    s.tenant_id.is_none_or(|t| Some(t) == *tenant)
                        && s.organisation_id.is_none_or(|o| Some(o) == *org)
                        && s.events.0.iter().any(|e| e == "*" || e == name)
                })
                .map(move |s| (*seq, s.subscription_id, key.clone()))
        })
        .collect();
    let mut deliveries = 0;
    // 7 parameters a row; 500 rows stay far below either database's limit.
    for chunk in pairs.chunks(500) {
        let mut insert = super::sql::Sql::new(
            tx.backend(),
            r#"INSERT INTO "deliveries" ("deliveryId", "eventSeq", "subscriptionId",
                "orderingKey", "status", "attemptCount", "nextAttemptAt", "createdAt", "updatedAt")
                VALUES "#,
        );
        for (i, (seq, sub, key)) in chunk.iter().enumerate() {
            use super::sql::Arg;
            if i > 0 {
                insert.push(", ");
            }
            insert
                .push("(")
                .bind(Arg::Id(Id(Uuid::new_v4())))
                .push(", ")
                .bind(Arg::Int(*seq))
                .push(", ")
                .bind(Arg::Id(*sub))
                .push(", ")
                .bind(Arg::OptText(key.clone()))
                .push(", 'pending', 0, ")
                .bind(Arg::Ts(now))
                .push(", ")
                .bind(Arg::Ts(now))
                .push(", ")
                .bind(Arg::Ts(now))
                .push(")");
        }
        insert.push(r#" ON CONFLICT ("eventSeq", "subscriptionId") DO NOTHING"#);
        deliveries += on_tx!(&mut tx, c => crate::bind_args!(sqlx::query(&insert.text), &insert.args).execute(c).await.map(|r| r.rows_affected()))?
            as usize;
    }
    // One statement marks them all (at most `limit` values).
    let mut mark = super::sql::Sql::new(tx.backend(), r#"UPDATE "events" SET "fannedOutAt" = "#);
    mark.bind(super::sql::Arg::Ts(now))
        .push(r#" WHERE "seq" IN "#)
        .bind_list(events.iter().map(|e| super::sql::Arg::Int(e.0)));
    on_tx!(&mut tx, c => crate::bind_args!(sqlx::query(&mark.text), &mark.args).execute(c).await.map(|r| r.rows_affected()))?;
    tx.commit().await?;
    Ok(FanOut {
        events: events.len(),
        deliveries,
    })
}

/// A claimed delivery with what sending it needs.
#[derive(Debug, Clone, FromRow)]
#[sqlx(rename_all = "camelCase")]
pub struct Claimed {
    pub delivery_id: Id,
    pub subscription_id: Id,
    pub attempt_count: i32,
    pub event_id: Id,
    pub name: String,
    pub payload: Json<Value>,
    pub event_created_at: Ts,
}

/// Leases up to `limit` due deliveries to `owner` until `lease_until`, at most
/// `per_subscription` in flight per subscription (so a slow receiver holds only its own
/// slots). A delivery is due when pending (or its lease expired) and its time has come, and no
/// earlier event with the same ordering key is still undelivered to the same subscription.
pub async fn claim(
    store: &Store,
    owner: &str,
    now: Ts,
    lease_until: Ts,
    limit: i64,
    per_subscription: i64,
) -> Result<Vec<Claimed>, sqlx::Error> {
    let mut tx = store.begin_async_commit().await?;
    let skip = if tx.backend() == Backend::Postgres {
        " FOR UPDATE OF x SKIP LOCKED"
    } else {
        ""
    };
    // The due condition is repeated where rows are locked and updated: on PostgreSQL a row
    // another claimer leased and committed after this statement began is re-checked there
    // (and refused) rather than leased a second time.
    // `picked` is materialised so the locked, limited set is chosen once, not per outer row.
    let due = |t: &str| {
        format!(
            r#"(({t}"status" = 'pending' AND {t}"nextAttemptAt" <= $3)
                OR ({t}"status" = 'delivering' AND {t}"leaseExpiresAt" <= $3))"#
        )
    };
    let (d_due, x_due, due) = (due("d."), due("x."), due(""));
    let in_order = r#"(d."orderingKey" IS NULL OR NOT EXISTS (
                    SELECT 1 FROM "deliveries" e WHERE e."subscriptionId" = d."subscriptionId"
                      AND e."orderingKey" = d."orderingKey" AND e."eventSeq" < d."eventSeq"
                      AND e."status" IN ('pending', 'delivering')))"#;
    // The candidates: on PostgreSQL, each active subscription's first `per_subscription` due
    // deliveries, read in order from `idx_deliveries_claim` (a claim costs the same however
    // long the backlog); SQLite, which has no LATERAL, ranks every due delivery.
    let candidates = if tx.backend() == Backend::Postgres {
        format!(
            r#"SELECT d."deliveryId", d."subscriptionId", d."nextAttemptAt", d."eventSeq"
             FROM "subscriptions" s CROSS JOIN LATERAL (
               SELECT d."deliveryId", d."subscriptionId", d."nextAttemptAt", d."eventSeq"
               FROM "deliveries" d
               WHERE d."subscriptionId" = s."subscriptionId"
                 AND d."status" IN ('pending', 'delivering') AND d."nextAttemptAt" <= $3
                 AND {d_due} AND {in_order}
               ORDER BY d."nextAttemptAt", d."eventSeq", d."deliveryId" LIMIT $5) d
             WHERE s."isActive""#
        )
    } else {
        format!(
            r#"SELECT d."deliveryId", d."subscriptionId", d."nextAttemptAt", d."eventSeq"
             FROM "deliveries" d
             JOIN "subscriptions" s ON s."subscriptionId" = d."subscriptionId" AND s."isActive"
             WHERE {d_due} AND {in_order}"#
        )
    };
    let sql = format!(
        r#"WITH candidates AS ({candidates}),
           due AS (
             SELECT c."deliveryId", c."subscriptionId", c."nextAttemptAt", c."eventSeq",
                    row_number() OVER (PARTITION BY c."subscriptionId"
                                       ORDER BY c."nextAttemptAt", c."eventSeq", c."deliveryId") AS rn
             FROM candidates c
           ),
           busy AS (
             SELECT "subscriptionId", COUNT(*) AS n FROM "deliveries"
             WHERE "status" = 'delivering' AND "leaseExpiresAt" > $3 GROUP BY "subscriptionId"
           ),
           picked AS MATERIALIZED (
             SELECT x."deliveryId" FROM "deliveries" x
             JOIN due ON due."deliveryId" = x."deliveryId"
             LEFT JOIN busy ON busy."subscriptionId" = due."subscriptionId"
             WHERE due.rn + COALESCE(busy.n, 0) <= $5 AND {x_due}
             ORDER BY due."nextAttemptAt", due."eventSeq", due."deliveryId" LIMIT $4{skip}
           )
           UPDATE "deliveries" SET "status" = 'delivering', "leaseOwner" = $1,
             "leaseExpiresAt" = $2, "updatedAt" = $3
           WHERE {due} AND "deliveryId" IN (SELECT "deliveryId" FROM picked)
           RETURNING "deliveryId""#
    );
    let ids: Vec<Id> = on_tx!(&mut tx, c => {
        sqlx::query_scalar(&sql).bind(owner).bind(lease_until).bind(now).bind(limit)
            .bind(per_subscription).fetch_all(c).await
    })?;
    tx.commit().await?;
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let mut q = super::sql::Sql::new(
        store.backend(),
        r#"SELECT d."deliveryId", d."subscriptionId", d."attemptCount", e."eventId", e."name",
                  e."payload", e."createdAt" AS "eventCreatedAt"
           FROM "deliveries" d JOIN "events" e ON e."seq" = d."eventSeq"
           WHERE d."deliveryId" IN "#,
    );
    q.bind_list(ids.iter().map(|i| super::sql::Arg::Id(*i)))
        .push(r#" ORDER BY d."eventSeq""#);
    q.fetch_rows::<Claimed>(store).await
}

/// One try, and what it leaves the delivery as.
#[derive(Debug, Clone)]
pub struct TryRecord {
    pub started_at: Ts,
    pub duration_ms: i64,
    pub status_code: Option<i32>,
    pub error: Option<String>,
    pub response_body: Option<String>,
    pub outcome: TryOutcome,
    pub next_attempt_at: Ts,
}

/// What a try leaves its delivery as (its stored status).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TryOutcome {
    Delivered,
    /// To be tried again at `next_attempt_at`.
    Pending,
    /// Dead-lettered: no more tries.
    Dead,
}

impl TryOutcome {
    /// The delivery's stored status.
    pub fn as_str(self) -> &'static str {
        match self {
            TryOutcome::Delivered => "delivered",
            TryOutcome::Pending => "pending",
            TryOutcome::Dead => "dead",
        }
    }
}

/// Text without NUL characters (PostgreSQL text columns refuse them).
fn no_nul(s: &str) -> String {
    s.replace('\0', "")
}

/// One finished try to record: the delivery, its try number and what it leaves.
#[derive(Debug, Clone)]
pub struct Finished {
    pub delivery_id: Uuid,
    pub attempt_number: i32,
    pub record: TryRecord,
}

/// Records several tries in one transaction (one commit for a batch of sends). A delivery
/// whose lease this owner no longer holds is skipped: whoever took it records its own try.
/// Returns how many were recorded.
pub async fn record_tries(
    store: &Store,
    owner: &str,
    tries: &[Finished],
    now: Ts,
) -> Result<usize, sqlx::Error> {
    if tries.is_empty() {
        return Ok(0);
    }
    let mut tx = store.begin_async_commit().await?;
    let mut recorded = 0;
    for Finished {
        delivery_id,
        attempt_number,
        record: t,
    } in tries
    {
        let n = on_tx!(&mut tx, c => {
            sqlx::query(r#"UPDATE "deliveries" SET "status" = $3, "attemptCount" = $4,
                "nextAttemptAt" = $5, "leaseOwner" = NULL, "leaseExpiresAt" = NULL,
                "lastStatusCode" = $6, "lastError" = $7, "updatedAt" = $8,
                "deliveredAt" = CASE WHEN $3 = 'delivered' THEN $8 ELSE "deliveredAt" END
                WHERE "deliveryId" = $1 AND "leaseOwner" = $2 AND "status" = 'delivering'"#)
                .bind(Id(*delivery_id)).bind(owner).bind(t.outcome.as_str()).bind(*attempt_number)
                .bind(t.next_attempt_at).bind(t.status_code).bind(t.error.as_deref().map(no_nul)).bind(now)
                .execute(c).await.map(|r| r.rows_affected())
        })?;
        if n == 0 {
            continue;
        }
        on_tx!(&mut tx, c => {
            sqlx::query(r#"INSERT INTO "deliveryAttempts" ("deliveryAttemptId", "deliveryId",
                "attemptNumber", "startedAt", "durationMs", "statusCode", "error", "responseBody")
                VALUES ($1, $2, (SELECT COALESCE(MAX("attemptNumber"), 0) + 1 FROM "deliveryAttempts"
                                 WHERE "deliveryId" = $2), $3, $4, $5, $6, $7)"#)
                .bind(Id(Uuid::new_v4())).bind(Id(*delivery_id)).bind(t.started_at)
                .bind(t.duration_ms).bind(t.status_code).bind(t.error.as_deref().map(no_nul))
                .bind(t.response_body.as_deref().map(no_nul))
                .execute(c).await.map(|r| r.rows_affected())
        })?;
        recorded += 1;
    }
    tx.commit().await?;
    Ok(recorded)
}

/// One retention step: deletes up to `batch` ended deliveries (delivered, dead-lettered or
/// cancelled, last changed before `cutoff`) of events created before `cutoff`, with their tries
/// (the foreign key cascades), then up to `batch` fanned-out events created before `cutoff`
/// that have no delivery left. Returns how many rows of each were deleted.
///
/// Two statements, so a delivery a replay has just made pending again is never deleted: the
/// first re-checks each row's status as it deletes it (PostgreSQL re-evaluates a row changed
/// since the statement began), and the second only takes events with no delivery at all.
pub async fn purge_before(
    store: &Store,
    cutoff: Ts,
    batch: i64,
) -> Result<(u64, u64), sqlx::Error> {
    let mut tx = store.begin_async_commit().await?;
    let deliveries = on_tx!(&mut tx, c => {
        sqlx::query(r#"DELETE FROM "deliveries"
            WHERE "status" IN ('delivered', 'dead', 'cancelled') AND "updatedAt" < $1
              AND "deliveryId" IN (
                SELECT d."deliveryId" FROM "deliveries" d JOIN "events" e ON e."seq" = d."eventSeq"
                WHERE d."status" IN ('delivered', 'dead', 'cancelled') AND d."updatedAt" < $1
                  AND e."createdAt" < $1
                LIMIT $2)"#)
            .bind(cutoff).bind(batch).execute(c).await.map(|r| r.rows_affected())
    })?;
    tx.commit().await?;
    let mut tx = store.begin_async_commit().await?;
    let events = on_tx!(&mut tx, c => {
        sqlx::query(r#"DELETE FROM "events" WHERE "seq" IN (
            SELECT e."seq" FROM "events" e
            WHERE e."createdAt" < $1 AND e."fannedOutAt" IS NOT NULL
              AND NOT EXISTS (SELECT 1 FROM "deliveries" d WHERE d."eventSeq" = e."seq")
            ORDER BY e."seq" LIMIT $2)"#)
            .bind(cutoff).bind(batch).execute(c).await.map(|r| r.rows_affected())
    })?;
    tx.commit().await?;
    Ok((deliveries, events))
}

/// A delivery as the log shows it.
#[derive(Debug, Clone, FromRow, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[sqlx(rename_all = "camelCase")]
pub struct DeliveryRow {
    #[schema(value_type = String, format = Uuid)]
    pub delivery_id: Id,
    #[schema(value_type = String, format = Uuid)]
    pub event_id: Id,
    pub event_name: String,
    #[schema(value_type = String, format = Uuid)]
    pub subscription_id: Id,
    pub status: String,
    pub attempt_count: i32,
    #[schema(value_type = String, format = DateTime)]
    pub next_attempt_at: Ts,
    pub last_status_code: Option<i32>,
    pub last_error: Option<String>,
    #[schema(value_type = Option<String>, format = DateTime)]
    pub delivered_at: Option<Ts>,
}

/// Deliveries of an event (by its id), for tests and the delivery log.
pub async fn of_event(store: &Store, event_id: Uuid) -> Result<Vec<DeliveryRow>, sqlx::Error> {
    on_reader!(store, p => {
        sqlx::query_as::<_, DeliveryRow>(r#"SELECT d."deliveryId", e."eventId", e."name" AS "eventName",
            d."subscriptionId", d."status", d."attemptCount", d."nextAttemptAt", d."lastStatusCode",
            d."lastError", d."deliveredAt"
            FROM "deliveries" d JOIN "events" e ON e."seq" = d."eventSeq"
            WHERE e."eventId" = $1 ORDER BY d."createdAt""#)
            .bind(Id(event_id)).fetch_all(p).await
    })
}

/// Deliveries not yet finished (pending or in flight) to active subscriptions, and the oldest
/// one's creation time. Those of a disabled subscription wait for it to be enabled again and
/// are not backlog the dispatcher could work off.
pub async fn backlog(store: &Store) -> Result<(i64, Option<Ts>), sqlx::Error> {
    on_reader!(store, p => {
        sqlx::query_as::<_, (i64, Option<Ts>)>(r#"SELECT COUNT(*), MIN(d."createdAt")
            FROM "deliveries" d JOIN "subscriptions" s ON s."subscriptionId" = d."subscriptionId"
            WHERE d."status" IN ('pending', 'delivering') AND s."isActive""#).fetch_one(p).await
    })
}

/// Every try of a delivery, in order.
pub async fn attempts_of(
    store: &Store,
    delivery_id: Uuid,
) -> Result<Vec<(i32, Option<i32>, Option<String>)>, sqlx::Error> {
    on_reader!(store, p => {
        sqlx::query_as(r#"SELECT "attemptNumber", "statusCode", "error" FROM "deliveryAttempts"
            WHERE "deliveryId" = $1 ORDER BY "attemptNumber""#).bind(Id(delivery_id)).fetch_all(p).await
    })
}

/// Subscriptions of one tenant and organisation (the admin API's), newest first.
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
pub async fn delete_subscription(tx: &mut Tx, id: Uuid) -> Result<(), sqlx::Error> {
    on_tx!(tx, c => {
        sqlx::query(r#"DELETE FROM "subscriptions" WHERE "subscriptionId" = $1"#)
            .bind(Id(id)).execute(c).await.map(|r| r.rows_affected())
    })?;
    Ok(())
}

/// Filters of the delivery log.
#[derive(Debug, Clone, Default)]
pub struct DeliveryFilter {
    pub event_id: Option<Uuid>,
    pub subscription_id: Option<Uuid>,
    pub status: Option<String>,
    pub created_from: Option<Ts>,
    pub created_to: Option<Ts>,
}

fn push_delivery_filter(sql: &mut super::sql::Sql, tenant: Uuid, org: Uuid, f: &DeliveryFilter) {
    use super::sql::Arg;
    // A tenant sees and replays only deliveries of its own events to its own subscriptions;
    // those to operator-configured (global) subscriptions are the operator's business.
    sql.push(r#" WHERE e."tenantId" = "#)
        .bind(Arg::Id(Id(tenant)))
        .push(r#" AND e."organisationId" = "#)
        .bind(Arg::Id(Id(org)))
        .push(r#" AND d."subscriptionId" IN (SELECT "subscriptionId" FROM "subscriptions" WHERE "tenantId" = "#)
        .bind(Arg::Id(Id(tenant)))
        .push(r#" AND "organisationId" = "#)
        .bind(Arg::Id(Id(org)))
        .push(")");
    if let Some(id) = f.event_id {
        sql.push(r#" AND e."eventId" = "#).bind(Arg::Id(Id(id)));
    }
    if let Some(id) = f.subscription_id {
        sql.push(r#" AND d."subscriptionId" = "#)
            .bind(Arg::Id(Id(id)));
    }
    if let Some(s) = &f.status {
        sql.push(r#" AND d."status" = "#).bind(Arg::Text(s.clone()));
    }
    if let Some(t) = f.created_from {
        sql.push(r#" AND e."createdAt" >= "#).bind(Arg::Ts(t));
    }
    if let Some(t) = f.created_to {
        sql.push(r#" AND e."createdAt" <= "#).bind(Arg::Ts(t));
    }
}

/// A page of the deliveries of a tenant's events, newest first, and the total.
pub async fn log(
    store: &Store,
    tenant: Uuid,
    org: Uuid,
    f: &DeliveryFilter,
    limit: i64,
    offset: i64,
) -> Result<(Vec<DeliveryRow>, i64), sqlx::Error> {
    use super::sql::Sql;
    let from = r#" FROM "deliveries" d JOIN "events" e ON e."seq" = d."eventSeq""#;
    let mut count = Sql::new(store.backend(), format!("SELECT COUNT(*){from}"));
    push_delivery_filter(&mut count, tenant, org, f);
    let mut page = Sql::new(
        store.backend(),
        format!(
            r#"SELECT d."deliveryId", e."eventId", e."name" AS "eventName", d."subscriptionId",
               d."status", d."attemptCount", d."nextAttemptAt", d."lastStatusCode", d."lastError",
               d."deliveredAt"{from}"#
        ),
    );
    push_delivery_filter(&mut page, tenant, org, f);
    page.push(r#" ORDER BY e."seq" DESC, d."deliveryId""#)
        .page(limit, offset);
    let total = count.fetch_count(store).await?;
    Ok((page.fetch_rows(store).await?, total))
}

/// The deliveries of a tenant's events matching `f` (and `delivery_id`), not in flight.
pub async fn replay_candidates(
    store: &Store,
    tenant: Uuid,
    org: Uuid,
    f: &DeliveryFilter,
    delivery_id: Option<Uuid>,
) -> Result<Vec<Id>, sqlx::Error> {
    use super::sql::{Arg, Sql};
    let mut pick = Sql::new(
        store.backend(),
        r#"SELECT d."deliveryId" FROM "deliveries" d JOIN "events" e ON e."seq" = d."eventSeq""#,
    );
    push_delivery_filter(&mut pick, tenant, org, f);
    if let Some(id) = delivery_id {
        pick.push(r#" AND d."deliveryId" = "#).bind(Arg::Id(Id(id)));
    }
    on_reader!(store, p => crate::bind_args!(sqlx::query_scalar::<_, Id>(&pick.text), &pick.args).fetch_all(p).await)
}

/// Puts the matching deliveries of a tenant's events back in the queue, due now, with a
/// fresh retry budget. Returns how many.
pub async fn replay(
    store: &Store,
    tenant: Uuid,
    org: Uuid,
    f: &DeliveryFilter,
    delivery_id: Option<Uuid>,
    now: Ts,
) -> Result<u64, sqlx::Error> {
    use super::sql::{Arg, Sql};
    let mut tx = store.begin().await?;
    // One statement, so a range of any size replays atomically (no bound-parameter limit).
    let mut upd = Sql::new(
        tx.backend(),
        r#"UPDATE "deliveries" SET "status" = 'pending', "attemptCount" = 0, "nextAttemptAt" = "#,
    );
    upd.bind(Arg::Ts(now))
        .push(r#", "updatedAt" = "#)
        .bind(Arg::Ts(now))
        .push(
            r#" WHERE "status" <> 'delivering' AND "deliveryId" IN (SELECT d."deliveryId"
               FROM "deliveries" d JOIN "events" e ON e."seq" = d."eventSeq""#,
        );
    push_delivery_filter(&mut upd, tenant, org, f);
    if let Some(id) = delivery_id {
        upd.push(r#" AND d."deliveryId" = "#).bind(Arg::Id(Id(id)));
    }
    upd.push(")");
    let n = on_tx!(&mut tx, c => crate::bind_args!(sqlx::query(&upd.text), &upd.args).execute(c).await.map(|r| r.rows_affected()))?;
    tx.commit().await?;
    Ok(n)
}

/// A try as stored: number, start, duration, status, error, response.
type TryRow = (i32, Ts, i64, Option<i32>, Option<String>, Option<String>);

/// Every try of a delivery, as the log shows it.
pub async fn attempts_detail(store: &Store, delivery_id: Uuid) -> Result<Vec<Value>, sqlx::Error> {
    let rows: Vec<TryRow> = on_reader!(store, p => {
        sqlx::query_as(r#"SELECT "attemptNumber", "startedAt", "durationMs", "statusCode", "error",
            "responseBody" FROM "deliveryAttempts" WHERE "deliveryId" = $1 ORDER BY "attemptNumber""#)
            .bind(Id(delivery_id)).fetch_all(p).await
    })?;
    Ok(rows
        .into_iter()
        .map(|(n, at, ms, code, err, body)| {
            serde_json::json!({
                "attemptNumber": n, "startedAt": at, "durationMs": ms, "statusCode": code,
                "error": err, "responseBody": body,
            })
        })
        .collect())
}

/// Puts every in-flight delivery back to pending. Only for SQLite at start-up: an embedded
/// database has one process, so any lease it finds belongs to a process that is gone.
pub async fn release_leases(store: &Store, now: Ts) -> Result<u64, sqlx::Error> {
    let mut tx = store.begin().await?;
    let n = on_tx!(&mut tx, c => {
        sqlx::query(r#"UPDATE "deliveries" SET "status" = 'pending', "leaseOwner" = NULL,
            "leaseExpiresAt" = NULL, "nextAttemptAt" = $1 WHERE "status" = 'delivering'"#)
            .bind(now).execute(c).await.map(|r| r.rows_affected())
    })?;
    tx.commit().await?;
    Ok(n)
}
