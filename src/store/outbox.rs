//! The transactional outbox: events are appended inside the caller's transaction, so an event
//! exists if and only if the change it describes committed.

use std::sync::atomic::{AtomicBool, Ordering};

use serde_json::Value;
use sqlx::types::Json;
use uuid::Uuid;

use super::{Id, Store, Ts, Tx};
use crate::domain::event::NewEvent;
use crate::{on_reader, on_tx};

static COMMITTED: tokio::sync::Notify = tokio::sync::Notify::const_new();

/// Wakes the dispatcher: called after every commit (an event may have become visible).
pub fn wake() {
    COMMITTED.notify_one();
}

static PUBLISHING: AtomicBool = AtomicBool::new(false);
static AGAIN: AtomicBool = AtomicBool::new(false);

/// Notifies [`CHANNEL`] after a commit with events, in the background. Commits that come while
/// a notification is being sent share the next one, so a burst of commits costs a few
/// round trips, each outside any writer's transaction. (One publisher per process: every
/// store of a process reaches the same database.)
pub fn publish(pool: &sqlx::PgPool) {
    AGAIN.store(true, Ordering::SeqCst);
    if PUBLISHING.swap(true, Ordering::SeqCst) {
        return; // the running publisher sees AGAIN
    }
    let pool = pool.clone();
    tokio::spawn(async move {
        loop {
            while AGAIN.swap(false, Ordering::SeqCst) {
                let sent = tokio::time::timeout(
                    std::time::Duration::from_secs(5),
                    sqlx::query("SELECT pg_notify($1, '')")
                        .bind(CHANNEL)
                        .execute(&pool),
                )
                .await;
                if !matches!(sent, Ok(Ok(_))) {
                    // Other instances find the events at their next poll.
                    tracing::debug!("notifying other instances failed or timed out");
                }
            }
            PUBLISHING.store(false, Ordering::SeqCst);
            // A commit between the last check and the release: take it, unless another
            // publisher already has.
            if !AGAIN.load(Ordering::SeqCst) || PUBLISHING.swap(true, Ordering::SeqCst) {
                break;
            }
        }
    });
}

/// Resolves at the next commit (or at once if one happened since the last wait).
pub async fn committed() {
    COMMITTED.notified().await;
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

const INSERT: &str = r#"
INSERT INTO "events"
    ("eventId", "name", "tenantId", "organisationId", "userId", "orderingKey", "payload", "createdAt")
VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
RETURNING "seq""#;

const SELECT_BY_ID: &str = r#"
SELECT "seq", "eventId", "name", "tenantId", "organisationId", "userId", "orderingKey",
       "payload", "createdAt"
FROM "events" WHERE "eventId" = $1"#;

/// The PostgreSQL channel that wakes every instance's dispatcher when events commit.
pub const CHANNEL: &str = "assessment_events";

/// Appends `event` in `tx`; returns its sequence number. Nothing is visible to the dispatcher
/// until `tx` commits, and nothing remains if it rolls back. On PostgreSQL a committed
/// transaction that appended events is followed by a notification on [`CHANNEL`] (see
/// [`publish`]), so dispatchers of other instances wake at once.
pub async fn append(tx: &mut Tx, event: &NewEvent) -> Result<i64, sqlx::Error> {
    if let Tx::Postgres(t) = tx {
        t.appended = true;
    }
    let payload = Json(event.payload());
    let tenant = event.context.tenant_id.map(|t| Id(t.as_uuid()));
    let organisation = event.context.organisation_id.map(|o| Id(o.as_uuid()));
    let user = event.context.user_id.map(|u| Id(u.as_uuid()));
    let created = Ts::new(event.timestamp);
    on_tx!(tx, conn => {
        sqlx::query_scalar::<_, i64>(INSERT)
            .bind(Id(event.id))
            .bind(event.name.as_str())
            .bind(tenant)
            .bind(organisation)
            .bind(user)
            .bind(event.ordering_key.as_deref())
            .bind(&payload)
            .bind(created)
            .fetch_one(conn)
            .await
    })
}

/// Rows per statement in [`append_many`]: 8 values each, well under both databases' limits
/// on bound parameters.
const APPEND_CHUNK: usize = 500;

/// Appends `events` in `tx`, in order, with one multi-row `INSERT` (per [`APPEND_CHUNK`]
/// events). As with [`append`], they become visible only when `tx` commits.
pub async fn append_many(tx: &mut Tx, events: &[NewEvent]) -> Result<(), sqlx::Error> {
    if events.is_empty() {
        return Ok(());
    }
    if let Tx::Postgres(t) = tx {
        t.appended = true;
    }
    for chunk in events.chunks(APPEND_CHUNK) {
        let mut sql = String::from(
            r#"INSERT INTO "events"
    ("eventId", "name", "tenantId", "organisationId", "userId", "orderingKey", "payload", "createdAt")
VALUES "#,
        );
        for i in 0..chunk.len() {
            if i > 0 {
                sql.push_str(", ");
            }
            let b = i * 8;
            sql.push_str(&format!(
                "(${}, ${}, ${}, ${}, ${}, ${}, ${}, ${})",
                b + 1,
                b + 2,
                b + 3,
                b + 4,
                b + 5,
                b + 6,
                b + 7,
                b + 8
            ));
        }
        let rows: Vec<_> = chunk
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
                )
            })
            .collect();
        on_tx!(tx, conn => {
            let mut q = sqlx::query(&sql);
            for (id, name, tenant, org, user, key, payload, at) in &rows {
                q = q.bind(*id).bind(*name).bind(*tenant).bind(*org).bind(*user).bind(*key)
                    .bind(payload).bind(*at);
            }
            q.execute(conn).await.map(|_| ())
        })?;
    }
    Ok(())
}

/// The committed event with this id, if any.
pub async fn find(store: &Store, event_id: Uuid) -> Result<Option<StoredEvent>, sqlx::Error> {
    on_reader!(store, pool => {
        sqlx::query_as::<_, StoredEvent>(SELECT_BY_ID)
            .bind(Id(event_id))
            .fetch_optional(pool)
            .await
    })
}

/// The event with this id as seen inside `tx` (including its own uncommitted writes).
pub async fn find_in(tx: &mut Tx, event_id: Uuid) -> Result<Option<StoredEvent>, sqlx::Error> {
    on_tx!(tx, conn => {
        sqlx::query_as::<_, StoredEvent>(SELECT_BY_ID)
            .bind(Id(event_id))
            .fetch_optional(conn)
            .await
    })
}

/// Committed events with this name, oldest first (delivery log and tests).
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
