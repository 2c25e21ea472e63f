//! SQL for event delivery: subscriptions, fan-out of committed events into deliveries, the
//! leased claim of due deliveries, and the record of every try.
//!
//! The claim is the only dialect-specific statement: PostgreSQL uses `FOR UPDATE SKIP LOCKED`
//! so several dispatchers share the work; SQLite (one writer) a plain `UPDATE ... RETURNING`.

use std::collections::{HashMap, HashSet};

use serde::Serialize;
use serde_json::Value;
use sqlx::FromRow;
use sqlx::types::Json;
use tracing::instrument;
use utoipa::ToSchema;
use uuid::Uuid;

use super::{Backend, Id, Store, Ts, Tx, TxConn};
use crate::{on_reader, on_tx};

mod log;
mod subscriptions;
pub use log::*;
pub use subscriptions::*;
/// A committed event waiting for fan-out, with what sending it needs.
#[derive(Debug, FromRow)]
#[sqlx(rename_all = "camelCase")]
struct Committed {
    seq: i64,
    event_id: Id,
    name: String,
    tenant_id: Option<Id>,
    organisation_id: Option<Id>,
    ordering_key: Option<String>,
    payload: Json<Value>,
    created_at: Ts,
}

/// What one fan-out did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FanOut {
    /// Events marked fanned out.
    pub events: usize,
    /// Deliveries created for them.
    pub deliveries: usize,
}

/// What a fan-out may lease to its dispatcher, to be sent at once rather than claimed later.
pub struct Lease<'a> {
    pub owner: &'a str,
    /// The most deliveries to lease (the dispatcher's free slots).
    pub budget: usize,
    /// How many more deliveries each subscription may have in flight from this dispatcher
    /// (a subscription not listed: `per_subscription`).
    pub room: &'a HashMap<Uuid, usize>,
    /// Subscriptions without room whose sends are not progressing: their deliveries are left
    /// pending rather than holding back the batch.
    pub stalled: &'a HashSet<Uuid>,
    pub per_subscription: usize,
    /// When the leases end, given the active subscriptions.
    pub until: &'a (dyn Fn(&[Subscription]) -> Ts + Sync),
}

/// The deliveries a fan-out leased, and what it left for a claim.
#[derive(Debug, Default)]
pub struct Leased {
    /// Leased to the dispatcher, to be sent now.
    pub claimed: Vec<Claimed>,
    /// The active subscriptions the fan-out read (those of `claimed` among them).
    pub subscriptions: Vec<Subscription>,
    /// Left pending: each behind an earlier undelivered event with the same ordering key, as
    /// (subscription, ordering key).
    pub blocked: Vec<(Uuid, String)>,
    /// Left pending: their subscription is stalled (a slow receiver).
    pub deferred: usize,
    /// Events were left for the next fan-out: slots, or a subscription's room, ran out.
    pub cut: bool,
    /// The fan-out took all it read, as many as it could: more events may be waiting.
    pub more: bool,
}

/// Creates the deliveries of up to `limit` committed events not yet fanned out, for every
/// active subscription that wants them, and marks those events fanned out.
pub async fn fan_out(store: &Store, limit: i64, now: Ts) -> Result<FanOut, sqlx::Error> {
    fan_out_leasing(store, limit, now, None)
        .await
        .map(|(f, _)| f)
}

/// [`fan_out`], also leasing to `lease.owner` the deliveries that can be sent at once (they
/// are created `delivering`, so the happy path costs no claim): within its budget and each
/// subscription's room, and not behind an earlier undelivered event with the same ordering
/// key, whether that one is already stored or in this same batch.
#[instrument(skip_all, err(level = "warn"))]
pub async fn fan_out_leasing(
    store: &Store,
    limit: i64,
    now: Ts,
    lease: Option<Lease<'_>>,
) -> Result<(FanOut, Leased), sqlx::Error> {
    use super::sql::{Arg, Sql};
    let mut leased = Leased::default();
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
            return Ok((FanOut::default(), leased));
        }
    }
    let pick = r#"SELECT "seq", "eventId", "name", "tenantId", "organisationId", "orderingKey",
           "payload", "createdAt" FROM "events"
           WHERE "fannedOutAt" IS NULL ORDER BY "seq" LIMIT $1"#;
    // Leasing, no more events than one subscription has room for, nor than there are slots
    // (an event with subscribers needs one): the rest would be read only to be left.
    let limit = match &lease {
        Some(l) => limit.min(l.budget.min(l.per_subscription).max(1) as i64),
        None => limit,
    };
    let events: Vec<Committed> =
        on_tx!(&mut tx, c => sqlx::query_as(pick).bind(limit).fetch_all(c).await)?;
    if events.is_empty() {
        return Ok((FanOut::default(), leased));
    }
    // Read after the events: a subscription that committed before an event did is seen.
    let subs_sql = format!(r#"SELECT {SUB_COLUMNS} FROM "subscriptions" WHERE "isActive""#);
    let subs: Vec<Subscription> =
        on_tx!(&mut tx, c => sqlx::query_as::<_, Subscription>(&subs_sql).fetch_all(c).await)?;
    // Every (event, subscription) pair, in event order, with its event's index.
    let mut pairs: Vec<(usize, &Committed, &Subscription)> = events
        .iter()
        .enumerate()
        .flat_map(|(n, e)| {
            subs.iter()
                .filter(move |s| {
                    s.tenant_id.is_none_or(|t| Some(t) == e.tenant_id)
                        && s.organisation_id
                            .is_none_or(|o| Some(o) == e.organisation_id)
                        && s.events.0.iter().any(|name| name == "*" || *name == e.name)
                })
                .map(move |s| (n, e, s))
        })
        .collect();
    let mut take = events.len();
    // Which pairs are leased: the (subscription, key)s with an undelivered event already
    // stored hold back this batch's events with the same key.
    let mut lease_of = vec![false; pairs.len()];
    if let Some(l) = &lease {
        let mut held: HashSet<(Uuid, &str)> = HashSet::new();
        let keyed: HashSet<&str> = pairs
            .iter()
            .filter_map(|(_, e, _)| e.ordering_key.as_deref())
            .collect();
        if !keyed.is_empty() {
            let mut q = Sql::new(
                tx.backend(),
                format!(
                    r#"SELECT DISTINCT "subscriptionId", "orderingKey" FROM "deliveries"
                       WHERE "status" IN ({}, {}) AND "subscriptionId" IN "#,
                    DeliveryStatus::Pending.sql(),
                    DeliveryStatus::Delivering.sql()
                ),
            );
            q.bind_list(subs.iter().map(|s| Arg::Id(s.subscription_id)))
                .push(r#" AND "orderingKey" IN "#)
                .bind_list(keyed.iter().map(|k| Arg::Text((*k).to_string())));
            let stored: Vec<(Id, String)> = q.fetch_rows(&mut tx).await?;
            for (sub, key) in stored {
                if let Some(k) = keyed.get(key.as_str()) {
                    held.insert((sub.0, k));
                }
            }
        }
        // A stalled subscription's deliveries wait as pending, for a claim. A subscription
        // that has (or runs out of) no room otherwise, or slots that run out, end the batch
        // before that event: the events after it stay for the next fan-out, once sends have
        // finished, rather than becoming a backlog to claim.
        let start = |sub: &Uuid| l.room.get(sub).copied().unwrap_or(l.per_subscription);
        let stalled = |sub: &Uuid| l.stalled.contains(sub);
        let mut budget = l.budget;
        let mut room: HashMap<Uuid, usize> = HashMap::new();
        let mut i = 0;
        'events: for n in 0..events.len() {
            let end = i + pairs[i..].iter().take_while(|p| p.0 == n).count();
            let mut need = 0;
            for (_, e, s) in &pairs[i..end] {
                let sub = s.subscription_id.0;
                let behind = e
                    .ordering_key
                    .as_deref()
                    .is_some_and(|k| held.contains(&(sub, k)));
                if behind || stalled(&sub) {
                    continue;
                }
                if room.get(&sub).copied().unwrap_or_else(|| start(&sub)) == 0 {
                    take = n;
                    break 'events;
                }
                need += 1;
            }
            if need > budget {
                take = n;
                break;
            }
            for (j, (_, e, s)) in pairs[i..end].iter().enumerate() {
                let sub = s.subscription_id.0;
                let behind = e
                    .ordering_key
                    .as_deref()
                    .is_some_and(|k| !held.insert((sub, k)));
                if behind {
                    leased
                        .blocked
                        .push((sub, e.ordering_key.clone().unwrap_or_default()));
                } else if stalled(&sub) {
                    leased.deferred += 1;
                } else {
                    *room.entry(sub).or_insert_with(|| start(&sub)) -= 1;
                    budget -= 1;
                    lease_of[i + j] = true;
                }
            }
            i = end;
        }
        pairs.truncate(i);
        leased.cut = take < events.len();
        leased.more = !leased.cut && events.len() as i64 == limit;
        if take == 0 {
            return Ok((FanOut::default(), leased));
        }
    }
    let events = &events[..take];
    let until = lease.as_ref().map(|l| (l.until)(&subs));
    let owner = lease.as_ref().map(|l| l.owner.to_string());
    let mut deliveries = 0;
    let mut sent: HashMap<Uuid, usize> = HashMap::new();
    let ids: Vec<Uuid> = pairs.iter().map(|_| Uuid::new_v4()).collect();
    // 9 parameters a row; 500 rows stay far below either database's limit.
    for (chunk, first) in pairs.chunks(500).zip((0..).step_by(500)) {
        let mut insert = Sql::new(
            tx.backend(),
            r#"INSERT INTO "deliveries" ("deliveryId", "eventSeq", "subscriptionId",
                "orderingKey", "status", "attemptCount", "nextAttemptAt", "leaseOwner",
                "leaseExpiresAt", "createdAt", "updatedAt")
                VALUES "#,
        );
        for (j, (_, e, s)) in chunk.iter().enumerate() {
            let i = first + j;
            let (status, owner, until) = match (lease_of[i], until) {
                (true, Some(until)) => (DeliveryStatus::Delivering, owner.clone(), Some(until)),
                _ => (DeliveryStatus::Pending, None, None),
            };
            if j > 0 {
                insert.push(", ");
            }
            insert
                .push("(")
                .bind(Arg::Id(Id(ids[i])))
                .push(", ")
                .bind(Arg::Int(e.seq))
                .push(", ")
                .bind(Arg::Id(s.subscription_id))
                .push(", ")
                .bind(Arg::OptText(e.ordering_key.clone()))
                .push(&format!(", {}, 0, ", status.sql()))
                .bind(Arg::Ts(now))
                .push(", ")
                .bind(Arg::OptText(owner))
                .push(", ")
                .bind(Arg::OptTs(until))
                .push(", ")
                .bind(Arg::Ts(now))
                .push(", ")
                .bind(Arg::Ts(now))
                .push(")");
        }
        insert.push(
            r#" ON CONFLICT ("eventSeq", "subscriptionId") DO NOTHING RETURNING "deliveryId""#,
        );
        let created: Vec<Id> = on_tx!(&mut tx, c => {
            crate::bind_args!(sqlx::query_scalar(&insert.text), &insert.args).fetch_all(c).await
        })?;
        deliveries += created.len();
        for id in created {
            sent.insert(id.0, 0);
        }
    }
    // One statement marks them all (at most `limit` values).
    let mut mark = Sql::new(tx.backend(), r#"UPDATE "events" SET "fannedOutAt" = "#);
    mark.bind(Arg::Ts(now))
        .push(r#" WHERE "seq" IN "#)
        .bind_list(events.iter().map(|e| Arg::Int(e.seq)));
    on_tx!(&mut tx, c => crate::bind_args!(sqlx::query(&mark.text), &mark.args).execute(c).await.map(|r| r.rows_affected()))?;
    tx.commit().await?;
    // Only what this fan-out created is sent (a pair already there is someone else's).
    leased.claimed = pairs
        .iter()
        .zip(&ids)
        .zip(&lease_of)
        .filter(|((_, id), l)| **l && sent.contains_key(*id))
        .map(|(((_, e, s), id), _)| Claimed {
            delivery_id: Id(*id),
            subscription_id: s.subscription_id,
            attempt_count: 0,
            event_id: e.event_id,
            name: e.name.clone(),
            payload: e.payload.clone(),
            event_created_at: e.created_at,
            ordering_key: e.ordering_key.clone(),
        })
        .collect();
    leased.subscriptions = subs;
    Ok((
        FanOut {
            events: events.len(),
            deliveries,
        },
        leased,
    ))
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
    pub ordering_key: Option<String>,
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
                  e."payload", e."createdAt" AS "eventCreatedAt", d."orderingKey"
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
/// released, the tries appended), in the caller's transaction.
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
             FROM t WHERE d."deliveryId" = t.id AND d."leaseOwner" = $1
               AND d."status" = {delivering}
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
    let column = |f: fn(&Finished) -> Option<String>| tries.iter().map(f).collect::<Vec<_>>();
    let recorded: i64 = sqlx::query_scalar(&sql)
        .bind(owner)
        .bind(tries.iter().map(|t| t.delivery_id).collect::<Vec<_>>())
        .bind(
            tries
                .iter()
                .map(|t| t.record.outcome.as_str())
                .collect::<Vec<_>>(),
        )
        .bind(tries.iter().map(|t| t.attempt_number).collect::<Vec<_>>())
        .bind(
            tries
                .iter()
                .map(|t| t.record.next_attempt_at.0)
                .collect::<Vec<_>>(),
        )
        .bind(
            tries
                .iter()
                .map(|t| t.record.status_code)
                .collect::<Vec<_>>(),
        )
        .bind(column(|t| t.record.error.as_deref().map(no_nul)))
        .bind(
            tries
                .iter()
                .map(|t| t.record.started_at.0)
                .collect::<Vec<_>>(),
        )
        .bind(
            tries
                .iter()
                .map(|t| t.record.duration_ms)
                .collect::<Vec<_>>(),
        )
        .bind(column(|t| t.record.response_body.as_deref().map(no_nul)))
        .bind(tries.iter().map(|_| Uuid::new_v4()).collect::<Vec<_>>())
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
