//! Accommodations: per learner and test, extra time, extra attempts and a later end date
//! (`domain::accommodation`). Setting one reschedules the learner's attempts in progress at the
//! test; a save timed under the old deadline is refused by its guard and taken again under the
//! new one (`store::saves`), on every instance.

use chrono::{DateTime, Utc};
use serde::Deserialize;
use utoipa::ToSchema;
use uuid::Uuid;

use super::{Actor, UnitOfWork};
use crate::clock::Clock;
use crate::domain::accommodation::{Accommodation, Terms};
use crate::domain::attempt as rules;
use crate::domain::event::EventName;
use crate::domain::event_data::{AccommodationChanged, AccommodationRemoved};
use crate::domain::ids::Scope;
use crate::error::{AppError, AppResult};
use crate::store::accommodations::{self as repo, AccommodationRow};
use crate::store::assessments::Test;
use crate::store::{Db, Id, Store, Ts};

/// Body of `PUT /tests/{testId}/accommodations/{userId}`: the whole accommodation (what is
/// left out is none).
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct AccommodationIn {
    /// Minutes added to the test's time limit (1 to 10080).
    #[serde(default)]
    pub extra_time_minutes: Option<i32>,
    /// The time limit multiplied by this (more than 1, at most 10), instead of minutes added.
    #[serde(default)]
    pub time_multiplier: Option<f64>,
    /// Attempts beyond the test's (0 to 100).
    #[serde(default)]
    pub extra_attempts: Option<i32>,
    /// A later end date for this learner: starting and answering stay open until then.
    #[serde(default)]
    pub end_date: Option<DateTime<Utc>>,
}

fn of_row(row: &AccommodationRow) -> Option<Accommodation> {
    Accommodation::new(
        row.extra_time_minutes,
        row.time_multiplier,
        row.extra_attempts,
        row.end_date.map(|e| e.0),
    )
    .ok()
}

/// The terms an attempt at `test` runs under, moved by the learner's `accommodation`.
pub fn terms(test: &Test, accommodation: Option<&Accommodation>) -> Terms {
    Terms::of(
        test.time_duration,
        test.attempts,
        test.end_date.map(|e| e.0),
        accommodation,
    )
}

/// The learner's accommodation at the test, if any (for a start, or the learner's status).
pub async fn of_learner<'a>(
    db: impl Into<Db<'a>>,
    scope: &Scope,
    test: Uuid,
    user: Uuid,
) -> AppResult<Option<Accommodation>> {
    Ok(repo::get(db, scope, test, user)
        .await?
        .as_ref()
        .and_then(of_row))
}

/// Sets the learner's accommodation at the test and moves the deadlines of their attempts
/// in progress there to what it gives (from each attempt's start).
pub async fn put(
    store: &Store,
    clock: &Clock,
    actor: &Actor,
    test_id: Uuid,
    user_id: Uuid,
    body: AccommodationIn,
) -> AppResult<AccommodationRow> {
    let accommodation = Accommodation::new(
        body.extra_time_minutes,
        body.time_multiplier,
        body.extra_attempts.unwrap_or(0),
        body.end_date,
    )
    .map_err(AppError::validation)?;
    let mut uow = UnitOfWork::begin(store, clock, actor).await?;
    let scope = uow.scope();
    let now = uow.now();
    let test = crate::service::assessments::live(uow.tx(), &scope, test_id).await?;
    let row = AccommodationRow {
        test_id: Id(test_id),
        user_id: Id(user_id),
        extra_time_minutes: accommodation.extra_time_minutes(),
        time_multiplier: accommodation.time_multiplier(),
        extra_attempts: accommodation.extra_attempts(),
        end_date: accommodation.end_date().map(Ts::new),
        created_by: uow.user(),
        created_at: now,
        updated_by: uow.user(),
        updated_at: now,
    };
    let stored = repo::put(uow.tx(), &scope, &row).await?;
    let terms = terms(&test, Some(&accommodation));
    let moved_end = terms.moved_end(test.end_date.map(|e| e.0));
    let mut rescheduled = Vec::new();
    for (attempt, started) in repo::in_progress(uow.tx(), &scope, test_id, user_id).await? {
        let deadline = rules::deadline(started.0, terms.time_limit_secs, terms.end_date);
        repo::reschedule(
            uow.tx(),
            attempt,
            deadline.map(Ts::new),
            moved_end.map(Ts::new),
        )
        .await?;
        rescheduled.push(attempt.0);
    }
    uow.emit(
        EventName::AccommodationUpdated,
        &AccommodationChanged {
            test_id,
            user_id,
            extra_time_minutes: stored.extra_time_minutes,
            time_multiplier: stored.time_multiplier,
            extra_attempts: stored.extra_attempts,
            end_date: stored.end_date.map(|e| e.0),
            rescheduled_attempt_ids: rescheduled,
        },
    );
    uow.commit().await?;
    Ok(stored)
}

/// The learner's accommodation at the test (404 without one).
pub async fn get(
    store: &Store,
    scope: &Scope,
    test_id: Uuid,
    user_id: Uuid,
) -> AppResult<AccommodationRow> {
    crate::service::assessments::live(Db::from(store), scope, test_id).await?;
    repo::get(store, scope, test_id, user_id)
        .await?
        .ok_or_else(|| AppError::not_found("Accommodation not found"))
}

/// The test's accommodations.
pub async fn list(store: &Store, scope: &Scope, test_id: Uuid) -> AppResult<Vec<AccommodationRow>> {
    crate::service::assessments::live(Db::from(store), scope, test_id).await?;
    Ok(repo::of_test(store, scope, test_id).await?)
}

/// Removes the learner's accommodation. Their attempts in progress keep the deadline it gave
/// them (taking time back half-way through an attempt would surprise the learner); later
/// attempts run under the test's own terms.
pub async fn delete(
    store: &Store,
    clock: &Clock,
    actor: &Actor,
    test_id: Uuid,
    user_id: Uuid,
) -> AppResult<()> {
    let mut uow = UnitOfWork::begin(store, clock, actor).await?;
    let scope = uow.scope();
    crate::service::assessments::live(uow.tx(), &scope, test_id).await?;
    if !repo::delete(uow.tx(), &scope, test_id, user_id).await? {
        return Err(AppError::not_found("Accommodation not found"));
    }
    uow.emit(
        EventName::AccommodationDeleted,
        &AccommodationRemoved { test_id, user_id },
    );
    uow.commit().await
}
