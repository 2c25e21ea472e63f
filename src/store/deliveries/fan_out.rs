//! The fan-out: committed events become one delivery per matching active subscription, leased
//! at once to the dispatcher when it can send them (see `docs/decisions.md`, "Delivery without
//! a claim").

use std::collections::{HashMap, HashSet};

use serde_json::Value;
use sqlx::FromRow;
use sqlx::types::Json;
use tracing::instrument;
use uuid::Uuid;

use super::{Claimed, DeliveryStatus, SUB_COLUMNS, Subscription};
use crate::on_tx;
use crate::store::{Backend, Id, Store, Ts};

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
    traceparent: Option<String>,
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
    use crate::store::sql::{Arg, Sql};
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
           "payload", "createdAt", "traceparent" FROM "events"
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
            traceparent: e.traceparent.clone(),
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
