//! SQL for event delivery: subscriptions, fan-out of committed events into deliveries, the
//! leased claim of due deliveries, and the record of every try.
//!
//! The claim is the only dialect-specific statement: PostgreSQL uses `FOR UPDATE SKIP LOCKED`
//! so several dispatchers share the work; SQLite (one writer) a plain `UPDATE ... RETURNING`.

use serde::Serialize;
use serde_json::Value;
use sqlx::FromRow;
use sqlx::types::Json;
use tracing::instrument;
use utoipa::ToSchema;
use uuid::Uuid;

use super::{Backend, Id, Store, Ts, Tx, TxConn};
use crate::{on_reader, on_tx};

mod fan_out;
mod log;
mod subscriptions;
pub use fan_out::*;
pub use log::*;
pub use subscriptions::*;

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
    pub ordering_key: Option<String>,
    /// The W3C trace context the event was committed under, if any.
    pub traceparent: Option<String>,
}

/// Leases up to `limit` due deliveries to `owner` until `lease_until`, at most
/// `per_subscription` in flight per subscription (so a slow receiver holds only its own
/// slots). A delivery is due when pending (or its lease expired) and its time has come, and no
/// earlier event with the same ordering key is still undelivered to the same subscription.
#[instrument(skip_all, err(level = "warn"))]
pub async fn claim(
    store: &Store,
    owner: &str,
    now: Ts,
    lease_until: Ts,
    limit: i64,
    per_subscription: i64,
) -> Result<Vec<Claimed>, sqlx::Error> {
    let mut tx = store.begin_async_commit().await?;
    // The due condition is repeated where rows are locked and updated: on PostgreSQL a row
    // another claimer leased and committed after this statement began is re-checked there
    // (and refused) rather than leased a second time.
    // `picked` is materialised so the locked, limited set is chosen once, not per outer row.
    let (pending, delivering) = (
        DeliveryStatus::Pending.sql(),
        DeliveryStatus::Delivering.sql(),
    );
    let due = |t: &str| {
        format!(
            r#"(({t}"status" = {pending} AND {t}"nextAttemptAt" <= $3)
                OR ({t}"status" = {delivering} AND {t}"leaseExpiresAt" <= $3))"#
        )
    };
    let (d_due, due) = (due("d."), due(""));
    // The same condition for rows found by primary key, written so that it does not imply the
    // partial indexes' predicate: otherwise the planner may read the wanted ids out of
    // `idx_deliveries_claim` (its last column), scanning the whole queue.
    let by_id_due = |t: &str| {
        format!(
            r#"(CASE {t}"status" WHEN {pending} THEN {t}"nextAttemptAt" <= $3
                 WHEN {delivering} THEN {t}"leaseExpiresAt" <= $3 ELSE false END)"#
        )
    };
    let sql = if tx.backend() == Backend::Postgres {
        // Each active subscription's first due deliveries, as many as its room (the cap less
        // its live leases), read in order from `idx_deliveries_claim`; the ordering check
        // reads the first undelivered delivery of the key from `idx_deliveries_key_order`;
        // rows are found and locked by primary key. Every step is an index lookup bounded by
        // the claim's size, so a claim costs the same however long the backlog, and none
        // depends on the planner's statistics (a new database has none).
        let in_order = format!(
            r#"(d."orderingKey" IS NULL OR d."eventSeq" = (
                    SELECT e."eventSeq" FROM "deliveries" e
                    WHERE e."subscriptionId" = d."subscriptionId"
                      AND e."orderingKey" = d."orderingKey"
                      AND e."status" IN ({pending}, {delivering})
                    ORDER BY e."eventSeq" LIMIT 1))"#
        );
        format!(
            r#"WITH picked AS MATERIALIZED (
                 SELECT x."deliveryId" FROM "deliveries" x
                 WHERE x."deliveryId" = ANY(ARRAY(
                   SELECT c."deliveryId" FROM "subscriptions" s
                   CROSS JOIN LATERAL (
                     SELECT COUNT(*) AS n FROM "deliveries" b
                     WHERE b."subscriptionId" = s."subscriptionId" AND b."status" = {delivering}
                       AND b."leaseExpiresAt" > $3) busy
                   CROSS JOIN LATERAL (
                     SELECT d."deliveryId", d."nextAttemptAt", d."eventSeq" FROM "deliveries" d
                     WHERE d."subscriptionId" = s."subscriptionId"
                       AND d."status" IN ({pending}, {delivering}) AND d."nextAttemptAt" <= $3
                       AND {d_due} AND {in_order}
                     ORDER BY d."nextAttemptAt", d."eventSeq", d."deliveryId"
                     LIMIT GREATEST($5 - busy.n, 0)) c
                   WHERE s."isActive"
                   ORDER BY c."nextAttemptAt", c."eventSeq", c."deliveryId" LIMIT $4))
                   AND {x_by_id}
                 FOR UPDATE OF x SKIP LOCKED
               )
               UPDATE "deliveries" SET "status" = {delivering}, "leaseOwner" = $1,
                 "leaseExpiresAt" = $2, "updatedAt" = $3
               WHERE "deliveryId" = ANY(ARRAY(SELECT "deliveryId" FROM picked)) AND {by_id}
               RETURNING "deliveryId""#,
            x_by_id = by_id_due("x."),
            by_id = by_id_due(""),
        )
    } else {
        // SQLite (one writer, no LATERAL) ranks every due delivery.
        let in_order = format!(
            r#"(d."orderingKey" IS NULL OR NOT EXISTS (
                    SELECT 1 FROM "deliveries" e WHERE e."subscriptionId" = d."subscriptionId"
                      AND e."orderingKey" = d."orderingKey" AND e."eventSeq" < d."eventSeq"
                      AND e."status" IN ({pending}, {delivering})))"#
        );
        format!(
            r#"WITH due AS (
                 SELECT d."deliveryId", d."subscriptionId", d."nextAttemptAt", d."eventSeq",
                        row_number() OVER (PARTITION BY d."subscriptionId"
                                           ORDER BY d."nextAttemptAt", d."eventSeq", d."deliveryId") AS rn
                 FROM "deliveries" d
                 JOIN "subscriptions" s ON s."subscriptionId" = d."subscriptionId" AND s."isActive"
                 WHERE {d_due} AND {in_order}
               ),
               busy AS (
                 SELECT "subscriptionId", COUNT(*) AS n FROM "deliveries"
                 WHERE "status" = {delivering} AND "leaseExpiresAt" > $3 GROUP BY "subscriptionId"
               ),
               picked AS MATERIALIZED (
                 SELECT due."deliveryId" FROM due
                 LEFT JOIN busy ON busy."subscriptionId" = due."subscriptionId"
                 WHERE due.rn + COALESCE(busy.n, 0) <= $5
                 ORDER BY due."nextAttemptAt", due."eventSeq", due."deliveryId" LIMIT $4
               )
               UPDATE "deliveries" SET "status" = {delivering}, "leaseOwner" = $1,
                 "leaseExpiresAt" = $2, "updatedAt" = $3
               WHERE {due} AND "deliveryId" IN (SELECT "deliveryId" FROM picked)
               RETURNING "deliveryId""#
        )
    };
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
                  e."payload", e."createdAt" AS "eventCreatedAt", d."orderingKey",
                  e."traceparent"
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
    /// Not to be delivered (a plugin's hook cancelled it): stored as `cancelled`.
    Skipped,
}

impl TryOutcome {
    /// The delivery's status after this try.
    pub fn status(self) -> DeliveryStatus {
        match self {
            TryOutcome::Delivered => DeliveryStatus::Delivered,
            TryOutcome::Pending => DeliveryStatus::Pending,
            TryOutcome::Dead => DeliveryStatus::Dead,
            TryOutcome::Skipped => DeliveryStatus::Cancelled,
        }
    }

    /// The delivery's stored status after this try.
    pub fn as_str(self) -> &'static str {
        self.status().as_str()
    }
}

/// A delivery's state, as stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryStatus {
    /// Waiting for its next try (`nextAttemptAt`).
    Pending,
    /// Leased to a dispatcher, being sent.
    Delivering,
    Delivered,
    /// Dead-lettered.
    Dead,
    Cancelled,
}

impl DeliveryStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryStatus::Pending => "pending",
            DeliveryStatus::Delivering => "delivering",
            DeliveryStatus::Delivered => "delivered",
            DeliveryStatus::Dead => "dead",
            DeliveryStatus::Cancelled => "cancelled",
        }
    }

    /// As an SQL string literal. Statements name the statuses in their text rather than bind
    /// them, so the planners can use the partial indexes on `status`.
    pub fn sql(self) -> String {
        format!("'{}'", self.as_str())
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
#[instrument(skip_all, err(level = "warn"))]
pub async fn record_tries(
    store: &Store,
    owner: &str,
    tries: &[Finished],
    now: Ts,
) -> Result<usize, sqlx::Error> {
    if tries.is_empty() {
        return Ok(0);
    }
    let record_sql = format!(
        r#"UPDATE "deliveries" SET "status" = $3, "attemptCount" = $4,
                "nextAttemptAt" = $5, "leaseOwner" = NULL, "leaseExpiresAt" = NULL,
                "lastStatusCode" = $6, "lastError" = $7, "updatedAt" = $8,
                "deliveredAt" = CASE WHEN $3 = {delivered} THEN $8 ELSE "deliveredAt" END
                WHERE "deliveryId" = $1 AND "leaseOwner" = $2 AND "status" = {delivering}"#,
        delivered = DeliveryStatus::Delivered.sql(),
        delivering = DeliveryStatus::Delivering.sql(),
    );
    let mut tx = store.begin_async_commit().await?;
    if let TxConn::Postgres(t) = tx.conn_mut() {
        let recorded = record_tries_at_once(t, owner, tries, now).await?;
        tx.commit().await?;
        return Ok(recorded);
    }
    let mut recorded = 0;
    for Finished {
        delivery_id,
        attempt_number,
        record: t,
    } in tries
    {
        let n = on_tx!(&mut tx, c => {
            sqlx::query(&record_sql)
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

/// [`record_tries`] on PostgreSQL: one statement for the whole batch (the leases checked and
/// released, the tries appended), in the caller's transaction. The lease check is written as a
/// `CASE` so that it does not imply `idx_deliveries_leased`'s predicate: with a plain
/// `"status" = 'delivering'` the planner read every live lease of the queue (and the dead
/// entries of those recorded before) for each batch instead of the rows by primary key.
async fn record_tries_at_once(
    tx: &mut sqlx::PgConnection,
    owner: &str,
    tries: &[Finished],
    now: Ts,
) -> Result<usize, sqlx::Error> {
    let sql = format!(
        r#"WITH t AS (
             SELECT * FROM unnest($2::uuid[], $3::text[], $4::int4[], $5::timestamptz[],
                 $6::int4[], $7::text[], $8::timestamptz[], $9::int8[], $10::text[], $11::uuid[])
               AS t(id, status, tries, next_at, code, error, started, took, body, try_id)
           ),
           released AS (
             UPDATE "deliveries" d SET "status" = t.status, "attemptCount" = t.tries,
               "nextAttemptAt" = t.next_at, "leaseOwner" = NULL, "leaseExpiresAt" = NULL,
               "lastStatusCode" = t.code, "lastError" = t.error, "updatedAt" = $12,
               "deliveredAt" = CASE WHEN t.status = {delivered} THEN $12 ELSE d."deliveredAt" END
             FROM t WHERE d."deliveryId" = ANY($2::uuid[]) AND d."deliveryId" = t.id
               AND (CASE d."status" WHEN {delivering} THEN d."leaseOwner" = $1 ELSE false END)
             RETURNING d."deliveryId"
           ),
           recorded AS (
             INSERT INTO "deliveryAttempts" ("deliveryAttemptId", "deliveryId", "attemptNumber",
                 "startedAt", "durationMs", "statusCode", "error", "responseBody")
             SELECT t.try_id, t.id,
                 (SELECT COALESCE(MAX(a."attemptNumber"), 0) + 1 FROM "deliveryAttempts" a
                  WHERE a."deliveryId" = t.id),
                 t.started, t.took, t.code, t.error, t.body
             FROM t JOIN released r ON r."deliveryId" = t.id
             RETURNING 1
           )
           SELECT COUNT(*) FROM recorded"#,
        delivered = DeliveryStatus::Delivered.sql(),
        delivering = DeliveryStatus::Delivering.sql(),
    );
    // One array per column, in the order of the `unnest` above.
    fn column<T>(tries: &[Finished], f: impl Fn(&Finished) -> T) -> Vec<T> {
        tries.iter().map(f).collect()
    }
    let recorded: i64 = sqlx::query_scalar(&sql)
        .bind(owner)
        .bind(column(tries, |t| t.delivery_id))
        .bind(column(tries, |t| t.record.outcome.as_str()))
        .bind(column(tries, |t| t.attempt_number))
        .bind(column(tries, |t| t.record.next_attempt_at.0))
        .bind(column(tries, |t| t.record.status_code))
        .bind(column(tries, |t| t.record.error.as_deref().map(no_nul)))
        .bind(column(tries, |t| t.record.started_at.0))
        .bind(column(tries, |t| t.record.duration_ms))
        .bind(column(tries, |t| {
            t.record.response_body.as_deref().map(no_nul)
        }))
        .bind(column(tries, |_| Uuid::new_v4()))
        .bind(now)
        .fetch_one(tx)
        .await?;
    Ok(usize::try_from(recorded).unwrap_or(0))
}

/// A try as stored: number, start, duration, status, error, response.
type TryRow = (i32, Ts, i64, Option<i32>, Option<String>, Option<String>);

/// Puts every in-flight delivery back to pending. Only for SQLite at start-up: an embedded
/// database has one process, so any lease it finds belongs to a process that is gone.
#[instrument(skip_all, err(level = "warn"))]
pub async fn release_leases(store: &Store, now: Ts) -> Result<u64, sqlx::Error> {
    let mut tx = store.begin().await?;
    let n = on_tx!(&mut tx, c => {
        sqlx::query(&format!(
            r#"UPDATE "deliveries" SET "status" = {}, "leaseOwner" = NULL,
            "leaseExpiresAt" = NULL, "nextAttemptAt" = $1 WHERE "status" = {}"#,
            DeliveryStatus::Pending.sql(),
            DeliveryStatus::Delivering.sql()
        ))
            .bind(now).execute(c).await.map(|r| r.rows_affected())
    })?;
    tx.commit().await?;
    Ok(n)
}
