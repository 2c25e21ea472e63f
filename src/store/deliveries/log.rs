//! SQL for the delivery log: reading deliveries and their tries, replays, and retention.

#[allow(unused_imports)]
use super::*;

/// One retention step: deletes up to `batch` ended deliveries (delivered, dead-lettered or
/// cancelled, last changed before `cutoff`) of events created before `cutoff`, with their tries
/// (the foreign key cascades), then up to `batch` fanned-out events created before `cutoff`
/// that have no delivery left. Returns how many rows of each were deleted.
///
/// Two statements, so a delivery a replay has just made pending again is never deleted: the
/// first re-checks each row's status as it deletes it (PostgreSQL re-evaluates a row changed
/// since the statement began), and the second only takes events with no delivery at all.
#[instrument(skip_all, err(level = "warn"))]
pub async fn purge_before(
    store: &Store,
    cutoff: Ts,
    batch: i64,
) -> Result<(u64, u64), sqlx::Error> {
    let ended = [
        DeliveryStatus::Delivered,
        DeliveryStatus::Dead,
        DeliveryStatus::Cancelled,
    ]
    .map(DeliveryStatus::sql)
    .join(", ");
    let mut tx = store.begin_async_commit().await?;
    let deliveries = on_tx!(&mut tx, c => {
        sqlx::query(&format!(r#"DELETE FROM "deliveries"
            WHERE "status" IN ({ended}) AND "updatedAt" < $1
              AND "deliveryId" IN (
                SELECT d."deliveryId" FROM "deliveries" d JOIN "events" e ON e."seq" = d."eventSeq"
                WHERE d."status" IN ({ended}) AND d."updatedAt" < $1
                  AND e."createdAt" < $1
                LIMIT $2)"#))
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
#[instrument(skip_all, err(level = "warn"))]
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
#[instrument(skip_all, err(level = "warn"))]
pub async fn backlog(store: &Store) -> Result<(i64, Option<Ts>), sqlx::Error> {
    on_reader!(store, p => {
        sqlx::query_as::<_, (i64, Option<Ts>)>(&format!(r#"SELECT COUNT(*), MIN(d."createdAt")
            FROM "deliveries" d JOIN "subscriptions" s ON s."subscriptionId" = d."subscriptionId"
            WHERE d."status" IN ({}, {}) AND s."isActive""#,
            DeliveryStatus::Pending.sql(), DeliveryStatus::Delivering.sql())).fetch_one(p).await
    })
}

/// A try as the tests read it: its number, the receiver's status and the error.
pub type TrySummary = (i32, Option<i32>, Option<String>);

/// Every try of a delivery, in order.
#[instrument(skip_all, err(level = "warn"))]
pub async fn attempts_of(store: &Store, delivery_id: Uuid) -> Result<Vec<TrySummary>, sqlx::Error> {
    on_reader!(store, p => {
        sqlx::query_as(r#"SELECT "attemptNumber", "statusCode", "error" FROM "deliveryAttempts"
            WHERE "deliveryId" = $1 ORDER BY "attemptNumber""#).bind(Id(delivery_id)).fetch_all(p).await
    })
}

/// Filters of the delivery log.
#[derive(Debug, Clone, Default)]
pub struct DeliveryFilter {
    pub event_id: Option<Uuid>,
    /// The event's name.
    pub event_name: Option<String>,
    pub subscription_id: Option<Uuid>,
    pub status: Option<String>,
    pub created_from: Option<Ts>,
    pub created_to: Option<Ts>,
}

/// Whose deliveries a log query or replay covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Audience {
    /// A tenant's: deliveries of its own events to its own subscriptions (the API's).
    Tenant { tenant: Uuid, organisation: Uuid },
    /// The operator's: deliveries to the subscriptions the configuration defines (the
    /// environment's and the plugins file's webhooks and brokers, the internal plugins), of
    /// every tenant's events (the command line's).
    Operator,
}

pub(super) fn push_delivery_filter(
    sql: &mut crate::store::sql::Sql,
    audience: &Audience,
    f: &DeliveryFilter,
) {
    use crate::store::sql::Arg;
    match *audience {
        // A tenant sees and replays only deliveries of its own events to its own
        // subscriptions; those to operator-configured (global) subscriptions are the
        // operator's business.
        Audience::Tenant {
            tenant,
            organisation,
        } => {
            sql.push(r#" WHERE e."tenantId" = "#)
                .bind(Arg::Id(Id(tenant)))
                .push(r#" AND e."organisationId" = "#)
                .bind(Arg::Id(Id(organisation)))
                .push(r#" AND d."subscriptionId" IN (SELECT "subscriptionId" FROM "subscriptions" WHERE "tenantId" = "#)
                .bind(Arg::Id(Id(tenant)))
                .push(r#" AND "organisationId" = "#)
                .bind(Arg::Id(Id(organisation)))
                .push(")");
        }
        Audience::Operator => {
            sql.push(r#" WHERE d."subscriptionId" IN (SELECT "subscriptionId" FROM "subscriptions" WHERE "tenantId" IS NULL)"#);
        }
    }
    if let Some(id) = f.event_id {
        sql.push(r#" AND e."eventId" = "#).bind(Arg::Id(Id(id)));
    }
    if let Some(name) = &f.event_name {
        sql.push(r#" AND e."name" = "#)
            .bind(Arg::Text(name.clone()));
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

/// A page of the deliveries `audience` sees, newest first, and the total.
#[instrument(skip_all, err(level = "warn"))]
pub async fn log(
    store: &Store,
    audience: &Audience,
    f: &DeliveryFilter,
    limit: i64,
    offset: i64,
) -> Result<(Vec<DeliveryRow>, i64), sqlx::Error> {
    use crate::store::sql::Sql;
    let from = r#" FROM "deliveries" d JOIN "events" e ON e."seq" = d."eventSeq""#;
    let mut count = Sql::new(store.backend(), format!("SELECT COUNT(*){from}"));
    push_delivery_filter(&mut count, audience, f);
    let mut page = Sql::new(
        store.backend(),
        format!(
            r#"SELECT d."deliveryId", e."eventId", e."name" AS "eventName", d."subscriptionId",
               d."status", d."attemptCount", d."nextAttemptAt", d."lastStatusCode", d."lastError",
               d."deliveredAt"{from}"#
        ),
    );
    push_delivery_filter(&mut page, audience, f);
    page.push(r#" ORDER BY e."seq" DESC, d."deliveryId""#)
        .page(limit, offset);
    let total = count.fetch_count(store).await?;
    Ok((page.fetch_rows(store).await?, total))
}

/// The deliveries `audience` sees matching `f` (and `delivery_id`).
#[instrument(skip_all, err(level = "warn"))]
pub async fn replay_candidates(
    store: &Store,
    audience: &Audience,
    f: &DeliveryFilter,
    delivery_id: Option<Uuid>,
) -> Result<Vec<Id>, sqlx::Error> {
    use crate::store::sql::{Arg, Sql};
    let mut pick = Sql::new(
        store.backend(),
        r#"SELECT d."deliveryId" FROM "deliveries" d JOIN "events" e ON e."seq" = d."eventSeq""#,
    );
    push_delivery_filter(&mut pick, audience, f);
    if let Some(id) = delivery_id {
        pick.push(r#" AND d."deliveryId" = "#).bind(Arg::Id(Id(id)));
    }
    on_reader!(store, p => crate::bind_args!(sqlx::query_scalar::<_, Id>(&pick.text), &pick.args).fetch_all(p).await)
}

/// Puts the matching deliveries `audience` sees back in the queue, due now, with a fresh
/// retry budget (those in flight excepted). Returns how many.
#[instrument(skip_all, err(level = "warn"))]
pub async fn replay(
    store: &Store,
    audience: &Audience,
    f: &DeliveryFilter,
    delivery_id: Option<Uuid>,
    now: Ts,
) -> Result<u64, sqlx::Error> {
    let mut tx = store.begin().await?;
    let n = replay_in(&mut tx, audience, f, delivery_id, now, None).await?;
    tx.commit().await?;
    Ok(n)
}

/// [`replay`] inside `tx`, of at most `limit` deliveries (the oldest events' first) when
/// given: the caller sees how many and commits, or refuses and rolls back.
#[instrument(skip_all, err(level = "warn"))]
pub async fn replay_in(
    tx: &mut Tx,
    audience: &Audience,
    f: &DeliveryFilter,
    delivery_id: Option<Uuid>,
    now: Ts,
    limit: Option<u64>,
) -> Result<u64, sqlx::Error> {
    use crate::store::sql::{Arg, Sql};
    // One statement, so a range of any size replays atomically (no bound-parameter limit).
    let mut upd = Sql::new(
        tx.backend(),
        format!(
            r#"UPDATE "deliveries" SET "status" = {}, "attemptCount" = 0, "nextAttemptAt" = "#,
            DeliveryStatus::Pending.sql()
        ),
    );
    upd.bind(Arg::Ts(now))
        .push(r#", "updatedAt" = "#)
        .bind(Arg::Ts(now))
        .push(&format!(
            r#" WHERE "status" <> {} AND "deliveryId" IN (SELECT d."deliveryId"
               FROM "deliveries" d JOIN "events" e ON e."seq" = d."eventSeq""#,
            DeliveryStatus::Delivering.sql()
        ));
    push_delivery_filter(&mut upd, audience, f);
    if let Some(id) = delivery_id {
        upd.push(r#" AND d."deliveryId" = "#).bind(Arg::Id(Id(id)));
    }
    if let Some(limit) = limit {
        // The limit counts only what the update will change.
        upd.push(&format!(
            r#" AND d."status" <> {} ORDER BY d."eventSeq" LIMIT {limit}"#,
            DeliveryStatus::Delivering.sql()
        ));
    }
    upd.push(")");
    on_tx!(tx, c => crate::bind_args!(sqlx::query(&upd.text), &upd.args).execute(c).await.map(|r| r.rows_affected()))
}

/// Every try of a delivery, as the log shows it.
#[instrument(skip_all, err(level = "warn"))]
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

/// How a subscription's deliveries are doing (the console's overview).
#[derive(Debug, Clone, FromRow)]
#[sqlx(rename_all = "camelCase")]
pub struct DeliveryHealth {
    pub subscription_id: Id,
    /// Deliveries waiting or in flight.
    pub backlog: i64,
    pub dead: i64,
    pub delivered: i64,
    pub last_success_at: Option<Ts>,
    pub last_failure_at: Option<Ts>,
    pub last_error: Option<String>,
}

/// The [`DeliveryHealth`] of each of the tenant's own subscriptions that has deliveries.
#[instrument(skip_all, err(level = "warn"))]
pub async fn health(
    store: &Store,
    tenant: Uuid,
    organisation: Uuid,
) -> Result<Vec<DeliveryHealth>, sqlx::Error> {
    use crate::store::sql::{Arg, Sql};
    let mut sql = Sql::new(
        store.backend(),
        r#"SELECT d."subscriptionId",
            SUM(CASE WHEN d."status" IN ('pending', 'delivering') THEN 1 ELSE 0 END) AS "backlog",
            SUM(CASE WHEN d."status" = 'dead' THEN 1 ELSE 0 END) AS "dead",
            SUM(CASE WHEN d."status" = 'delivered' THEN 1 ELSE 0 END) AS "delivered",
            MAX(d."deliveredAt") AS "lastSuccessAt",
            MAX(CASE WHEN d."lastError" IS NOT NULL THEN d."updatedAt" END) AS "lastFailureAt",
            (SELECT l."lastError" FROM "deliveries" l WHERE l."subscriptionId" = d."subscriptionId"
                AND l."lastError" IS NOT NULL ORDER BY l."updatedAt" DESC LIMIT 1) AS "lastError"
        FROM "deliveries" d WHERE d."subscriptionId" IN
            (SELECT "subscriptionId" FROM "subscriptions" WHERE "tenantId" = "#,
    );
    sql.bind(Arg::Id(Id(tenant)))
        .push(r#" AND "organisationId" = "#)
        .bind(Arg::Id(Id(organisation)))
        .push(r#") GROUP BY d."subscriptionId""#);
    sql.fetch_rows(store).await
}
