//! The transactional outbox: events are appended inside the caller's transaction, so an event
//! exists if and only if the change it describes committed.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use serde_json::Value;
use sqlx::types::Json;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::instrument;
use uuid::Uuid;

use super::{Db, Id, Store, Ts, Tx};
use crate::domain::event::NewEvent;
use crate::{on_reader, on_tx};

/// A store's signal that events were committed. Every clone of a [`Store`] shares one.
///
/// A commit that appended events (see [`Tx::commit`]) wakes the waiter of
/// [`committed`](Self::committed) (the dispatcher) and, on PostgreSQL, has a notification on
/// [`CHANNEL`] sent in the background so other instances' dispatchers wake too; [`listen`]
/// turns their notifications into wake-ups of this signal.
#[derive(Debug)]
pub struct CommitSignal {
    wake: Notify,
    /// PostgreSQL only.
    publisher: Option<Arc<Publisher>>,
}

/// Sends the notifications on [`CHANNEL`], one at a time, outside any transaction.
#[derive(Debug)]
struct Publisher {
    pool: sqlx::PgPool,
    /// A task is sending notifications.
    publishing: AtomicBool,
    /// A commit came since that task's last notification.
    again: AtomicBool,
    /// That task, so closing the store waits for its last notification.
    task: TaskTracker,
}

impl CommitSignal {
    /// `notify_through`: the PostgreSQL pool other instances are notified through.
    pub(crate) fn new(notify_through: Option<sqlx::PgPool>) -> Self {
        CommitSignal {
            wake: Notify::new(),
            publisher: notify_through.map(|pool| {
                Arc::new(Publisher {
                    pool,
                    publishing: AtomicBool::new(false),
                    again: AtomicBool::new(false),
                    task: TaskTracker::new(),
                })
            }),
        }
    }

    /// Resolves at the next wake-up, or at once if one came since the last wait. One waiter
    /// is woken per wake-up (the store's dispatcher).
    pub async fn committed(&self) {
        self.wake.notified().await;
    }

    /// Wakes the waiter, without telling other instances (events they committed, or that may
    /// have become visible).
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// After a commit that appended events: wakes the waiter and, on PostgreSQL, tells other
    /// instances.
    pub(crate) fn events_committed(&self) {
        self.wake();
        if let Some(p) = &self.publisher {
            p.publish();
        }
    }

    /// Waits until the notification being sent, if any, has gone (closing the store).
    pub(crate) async fn close(&self) {
        if let Some(p) = &self.publisher {
            p.task.close();
            p.task.wait().await;
        }
    }
}

impl Publisher {
    /// Notifies [`CHANNEL`] in the background. Commits that come while a notification is
    /// being sent share the next one, so a burst of commits costs a few round trips, each
    /// outside any writer's transaction.
    fn publish(self: &Arc<Self>) {
        self.again.store(true, Ordering::SeqCst);
        if self.publishing.swap(true, Ordering::SeqCst) {
            return; // the running task sees `again`
        }
        let me = self.clone();
        self.task.spawn(async move {
            loop {
                while me.again.swap(false, Ordering::SeqCst) {
                    let sent = tokio::time::timeout(
                        Duration::from_secs(5),
                        sqlx::query("SELECT pg_notify($1, '')")
                            .bind(CHANNEL)
                            .execute(&me.pool),
                    )
                    .await;
                    if !matches!(sent, Ok(Ok(_))) {
                        // Other instances find the events at their next poll.
                        tracing::debug!("notifying other instances failed or timed out");
                    }
                }
                me.publishing.store(false, Ordering::SeqCst);
                // A commit between the last check and the release: take it, unless another
                // task already has.
                if !me.again.load(Ordering::SeqCst) || me.publishing.swap(true, Ordering::SeqCst) {
                    break;
                }
            }
        });
    }
}

/// Wakes `store`'s signal at every notification on [`CHANNEL`] (events committed by any
/// instance of the service on this database), until `stop` is cancelled. A lost connection is
/// opened again after a second; meanwhile dispatchers find new events at their next poll.
/// Returns at once on SQLite (one process: the commits' own wake-ups are all it needs).
pub async fn listen(store: Store, stop: CancellationToken) {
    let Some(pool) = store.postgres().cloned() else {
        return;
    };
    loop {
        let listener = async {
            let mut l = sqlx::postgres::PgListener::connect_with(&pool).await?;
            l.listen(CHANNEL).await?;
            loop {
                l.recv().await?;
                store.signal().wake();
            }
            #[allow(unreachable_code)]
            Ok::<(), sqlx::Error>(())
        };
        tokio::select! {
            _ = stop.cancelled() => break,
            r = listener => if let Err(e) = r {
                tracing::warn!(error = %e, "event notifications lost; polling until they return");
                tokio::select! {
                    _ = stop.cancelled() => break,
                    _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                }
            },
        }
    }
}

/// An event as stored.
#[derive(Debug, Clone, sqlx::FromRow)]
#[sqlx(rename_all = "camelCase")]
pub struct StoredEvent {
    pub seq: i64,
    pub event_id: Id,
    pub name: String,
    pub tenant_id: Option<Id>,
    pub organisation_id: Option<Id>,
    pub user_id: Option<Id>,
    pub ordering_key: Option<String>,
    pub payload: Json<Value>,
    pub created_at: Ts,
}

const SELECT_BY_ID: &str = r#"
SELECT "seq", "eventId", "name", "tenantId", "organisationId", "userId", "orderingKey",
       "payload", "createdAt"
FROM "events" WHERE "eventId" = $1"#;

/// The PostgreSQL channel that wakes every instance's dispatcher when events commit.
pub const CHANNEL: &str = "assessment_events";

/// Appends `event` in `tx`; returns its sequence number. Nothing is visible to the dispatcher
/// until `tx` commits, and nothing remains if it rolls back. On PostgreSQL a committed
/// transaction that appended events is followed by a notification on [`CHANNEL`] (see
/// [`CommitSignal`]), so dispatchers of other instances wake at once.
#[instrument(skip_all, err(level = "warn"))]
pub async fn append(tx: &mut Tx, event: &NewEvent) -> Result<i64, sqlx::Error> {
    let seqs = insert(tx, std::slice::from_ref(event)).await?;
    seqs.first().copied().ok_or(sqlx::Error::RowNotFound)
}

/// Rows per statement in [`append_many`]: 9 values each, well under both databases' limits
/// on bound parameters.
const APPEND_CHUNK: usize = 500;

/// Appends `events` in `tx`, in order, with one multi-row `INSERT` (per [`APPEND_CHUNK`]
/// events). As with [`append`], they become visible only when `tx` commits.
#[instrument(skip_all, err(level = "warn"))]
pub async fn append_many(tx: &mut Tx, events: &[NewEvent]) -> Result<(), sqlx::Error> {
    for chunk in events.chunks(APPEND_CHUNK) {
        insert(tx, chunk).await?;
    }
    Ok(())
}

/// One `INSERT` of `events` (at most [`APPEND_CHUNK`]); their sequence numbers, in no
/// particular order when there are several.
async fn insert(tx: &mut Tx, events: &[NewEvent]) -> Result<Vec<i64>, sqlx::Error> {
    if events.is_empty() {
        return Ok(Vec::new());
    }
    tx.mark_appended();
    let mut sql = String::from(
        r#"INSERT INTO "events"
    ("eventId", "name", "tenantId", "organisationId", "userId", "orderingKey", "payload", "createdAt",
     "traceparent")
VALUES "#,
    );
    for i in 0..events.len() {
        if i > 0 {
            sql.push_str(", ");
        }
        sql.push_str(&super::sql::placeholders_from(i * 9 + 1, 9));
    }
    sql.push_str(r#" RETURNING "seq""#);
    let rows: Vec<_> = events
        .iter()
        .map(|e| {
            (
                Id(e.id),
                e.name.as_str(),
                e.context.tenant_id.map(|t| Id(t.as_uuid())),
                e.context.organisation_id.map(|o| Id(o.as_uuid())),
                e.context.user_id.map(|u| Id(u.as_uuid())),
                e.ordering_key.as_deref(),
                Json(e.payload()),
                Ts::new(e.timestamp),
                e.traceparent.as_deref(),
            )
        })
        .collect();
    on_tx!(tx, conn => {
        let mut q = sqlx::query_scalar::<_, i64>(&sql);
        for (id, name, tenant, org, user, key, payload, at, trace) in &rows {
            q = q.bind(*id).bind(*name).bind(*tenant).bind(*org).bind(*user).bind(*key)
                .bind(payload).bind(*at).bind(*trace);
        }
        q.fetch_all(conn).await
    })
}

/// The event with this id: committed, or seen inside a transaction (its own uncommitted
/// writes included).
#[instrument(skip_all, err(level = "warn"))]
pub async fn find<'a>(
    db: impl Into<Db<'a>>,
    event_id: Uuid,
) -> Result<Option<StoredEvent>, sqlx::Error> {
    crate::on_db!(db.into(), c => {
        sqlx::query_as::<_, StoredEvent>(SELECT_BY_ID)
            .bind(Id(event_id))
            .fetch_optional(c)
            .await
    })
}

/// Committed events with this name, oldest first (delivery log and tests).
#[instrument(skip_all, err(level = "warn"))]
pub async fn with_name(store: &Store, name: &str) -> Result<Vec<StoredEvent>, sqlx::Error> {
    on_reader!(store, pool => {
        sqlx::query_as::<_, StoredEvent>(
            r#"SELECT "seq", "eventId", "name", "tenantId", "organisationId", "userId",
                      "orderingKey", "payload", "createdAt"
               FROM "events" WHERE "name" = $1 ORDER BY "seq""#,
        )
        .bind(name)
        .fetch_all(pool)
        .await
    })
}

/// Up to `limit` events after `seq`, of every tenant, in order (the console's live tail
/// filters them; by the primary key, so cheap however many there are).
#[instrument(skip_all, err(level = "warn"))]
pub async fn after(store: &Store, seq: i64, limit: i64) -> Result<Vec<StoredEvent>, sqlx::Error> {
    on_reader!(store, pool => {
        sqlx::query_as::<_, StoredEvent>(
            r#"SELECT "seq", "eventId", "name", "tenantId", "organisationId", "userId",
                      "orderingKey", "payload", "createdAt"
               FROM "events" WHERE "seq" > $1 ORDER BY "seq" LIMIT $2"#,
        )
        .bind(seq)
        .bind(limit)
        .fetch_all(pool)
        .await
    })
}

/// The latest event's sequence number (0 with none).
#[instrument(skip_all, err(level = "warn"))]
pub async fn last_seq(store: &Store) -> Result<i64, sqlx::Error> {
    let seq: Option<i64> = on_reader!(store, pool => {
        sqlx::query_scalar(r#"SELECT MAX("seq") FROM "events""#).fetch_one(pool).await
    })?;
    Ok(seq.unwrap_or(0))
}
