//! Use cases: each is one database transaction that loads, decides (in `domain`), writes,
//! appends its events to the outbox, and commits.

pub mod accommodations;
pub mod assessments;
pub mod attempts;
pub mod console;
pub mod criteria;
pub mod de;
pub mod files;
pub mod hierarchy;
pub mod questions;
pub mod regrade;
pub mod reviews;
pub mod rules;
pub mod sections;
pub mod statistics;
pub mod tenant_config;
pub mod users;
pub mod webhooks;

use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::clock::Clock;
use crate::domain::event::{EventContext, EventName, NewEvent};
use crate::domain::event_data::{self, Payload};
use crate::domain::ids::{Scope, UserId};
use crate::error::{AppError, AppResult};
use crate::store::{Id, Store, Ts, Tx};

/// Who performs a write: the scope it is confined to and the user recorded as author.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Actor {
    pub scope: Scope,
    pub user: UserId,
}

impl Actor {
    pub fn user_uuid(&self) -> Uuid {
        self.user.as_uuid()
    }

    /// An event about a change this actor made at `now`.
    pub(crate) fn event<P: Payload>(
        &self,
        now: Ts,
        name: EventName,
        data: &P,
        ordering_key: Option<String>,
    ) -> NewEvent {
        let data = event_data::to_data(name, data);
        let mut event = NewEvent::new(Uuid::now_v7(), name, self.event_context(), data, now.0);
        event.ordering_key = ordering_key;
        event.traceparent = crate::telemetry::Trace::current().map(|t| t.traceparent());
        event
    }

    fn event_context(&self) -> EventContext {
        EventContext {
            tenant_id: Some(self.scope.tenant),
            organisation_id: Some(self.scope.organisation),
            user_id: Some(self.user),
        }
    }
}

/// A record that keeps who changed it last and when.
pub trait Stamped {
    fn stamp(&mut self, by: Id, at: Ts);
}

macro_rules! stamped {
    ($($t:ty),+) => {$(
        impl Stamped for $t {
            fn stamp(&mut self, by: Id, at: Ts) {
                self.updated_by = Some(by);
                self.updated_at = at;
            }
        }
    )+};
}

stamped!(
    crate::store::attempts::Attempt,
    crate::store::questions::Question,
    crate::store::rules::Rule,
    crate::store::assessments::Test,
    crate::store::assessments::Section
);

/// One use case's write: its transaction, who acts, the time it happens at (read once from the
/// clock), and the events it will append. Events are buffered and written at [`commit`](Self::commit)
/// in one multi-row insert, in the transaction, so they exist if and only if the change
/// committed. Dropped without `commit`, nothing is written.
#[derive(Debug)]
pub struct UnitOfWork {
    tx: Tx,
    actor: Actor,
    now: Ts,
    events: Vec<NewEvent>,
}

impl UnitOfWork {
    /// Reads the clock, then opens the transaction: the use case happens at the time the
    /// request reached it, not when it got a connection (on SQLite, the one writer).
    pub async fn begin(store: &Store, clock: &Clock, actor: &Actor) -> AppResult<UnitOfWork> {
        UnitOfWork::begin_at(store, clock.now(), actor).await
    }

    /// Opens the transaction for a use case that read its time from the clock already (to
    /// check its input before it waits for a connection).
    pub async fn begin_at(store: &Store, now: Ts, actor: &Actor) -> AppResult<UnitOfWork> {
        let tx = store.begin().await?;
        Ok(UnitOfWork {
            tx,
            actor: *actor,
            now,
            events: Vec::new(),
        })
    }

    /// The transaction, for the store's functions.
    pub fn tx(&mut self) -> &mut Tx {
        &mut self.tx
    }

    /// The time of this use case.
    pub fn now(&self) -> Ts {
        self.now
    }

    pub fn actor(&self) -> &Actor {
        &self.actor
    }

    pub fn scope(&self) -> Scope {
        self.actor.scope
    }

    /// The acting user, as stored.
    pub fn user(&self) -> Id {
        Id(self.actor.user_uuid())
    }

    /// Records that `record` was changed by the actor now.
    pub fn stamp<T: Stamped>(&self, record: &mut T) {
        record.stamp(self.user(), self.now);
    }

    /// Buffers an event about this change.
    pub fn emit<P: Payload>(&mut self, name: EventName, data: &P) {
        let event = self.actor.event(self.now, name, data, None);
        self.push_event(event);
    }

    /// Buffers an event delivered in order with the others of `ordering_key` (one attempt).
    pub fn emit_ordered<P: Payload>(&mut self, name: EventName, data: &P, ordering_key: String) {
        let event = self.actor.event(self.now, name, data, Some(ordering_key));
        self.push_event(event);
    }

    /// Buffers an event made by [`Actor::event`].
    pub(crate) fn push_event(&mut self, event: NewEvent) {
        self.events.push(event);
    }

    /// Appends the buffered events and commits.
    pub async fn commit(mut self) -> AppResult<()> {
        crate::store::outbox::append_many(&mut self.tx, &self.events).await?;
        self.tx.commit().await?;
        Ok(())
    }
}

/// A page of results, upstream's pagination shape.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Page<T> {
    pub content: Vec<T>,
    pub total_elements: i64,
    pub total_pages: i64,
    pub current_page: i64,
    pub size: i64,
}

impl<T> Page<T> {
    pub fn new(content: Vec<T>, total: i64, limit: i64, offset: i64) -> Self {
        let limit = limit.max(1);
        Page {
            content,
            total_elements: total,
            total_pages: (total + limit - 1) / limit,
            current_page: offset / limit + 1,
            size: limit,
        }
    }
}

/// The most items one answer save, review, import or bulk add of questions takes (more than
/// any test's paper holds).
pub(crate) const MAX_BATCH: usize = 500;
/// The most ids one list of a filter takes.
pub(crate) const MAX_IDS: usize = 1000;

/// Refuses a list in a body longer than `max` (the limits are listed in the README, "Limits").
pub(crate) fn at_most<T>(field: &str, items: &[T], max: usize) -> AppResult<()> {
    if items.len() > max {
        return Err(AppError::validation(format!(
            "{field}: at most {max} items ({} sent)",
            items.len()
        )));
    }
    Ok(())
}

/// A `search` parameter, checked: no control characters (the extractor already refuses a NUL,
/// which SQLite would end the pattern at), at most 200 characters.
pub(crate) fn search_text(s: Option<String>) -> AppResult<Option<String>> {
    match s {
        Some(s) if s.chars().any(char::is_control) => Err(AppError::validation(
            "search must not contain control characters",
        )),
        Some(s) if s.chars().count() > 200 => Err(AppError::validation(
            "search must be at most 200 characters",
        )),
        other => Ok(other),
    }
}

/// `limit` (1..=100, default 10) and `offset` (default 0) as upstream pages.
pub fn page_window(limit: Option<i64>, offset: Option<i64>) -> Result<(i64, i64), AppError> {
    let limit = limit.unwrap_or(10);
    let offset = offset.unwrap_or(0);
    if !(1..=1000).contains(&limit) {
        return Err(AppError::validation("limit must be between 1 and 1000"));
    }
    if offset < 0 {
        return Err(AppError::validation("offset must not be negative"));
    }
    Ok((limit, offset))
}

/// A count or duration from a request as stored (400 when it does not fit).
pub fn to_i32(v: u32, field: &str) -> AppResult<i32> {
    i32::try_from(v).map_err(|_| AppError::validation(format!("{field} is too large")))
}

/// The ordering after `max` (422 when the orderings are exhausted).
pub fn next_ordering(max: i32) -> Result<i32, AppError> {
    max.checked_add(1).ok_or_else(|| {
        AppError::unprocessable("ordering is at its maximum; renumber with PUT /structure")
    })
}

/// Maps a unique violation to a 409 with `message`; other errors pass through.
pub fn conflict_on_unique(e: sqlx::Error, message: &str) -> AppError {
    if crate::store::is_unique_violation(&e) {
        AppError::conflict(message)
    } else {
        e.into()
    }
}
