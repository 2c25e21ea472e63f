//! A learner's first attempt at a published test, in one statement on PostgreSQL (one round
//! trip, committed on its own): the statement checks what the caller assumed and writes the
//! attempt and its event only if it still holds.

use sqlx::types::Json;
use std::sync::LazyLock;

use super::attempts::{ATTEMPT_COLUMNS, Attempt, bind_attempt};
use super::sql::placeholders;
use super::{Id, Store, Ts};
use crate::domain::event::NewEvent;

/// `$1..$25`: the attempt's columns; `$26`: the test's `updatedAt` the paper was drawn from;
/// `$27..$35`: the event. The attempt is written only if the test is still published with that
/// `updatedAt`, the learner has no attempt at it yet (the unique constraint settles two starts
/// at once) and no accommodation (whose terms the general path applies); the event only with
/// it.
static FIRST_START: LazyLock<String> = LazyLock::new(|| {
    let values = placeholders(25);
    format!(
        r#"WITH "test" AS (
    SELECT 1 FROM "tests" WHERE "testId" = $4 AND "tenantId" IS NOT DISTINCT FROM $2
      AND "organisationId" IS NOT DISTINCT FROM $3 AND "status" = 'published' AND "updatedAt" = $26),
"earlier" AS (
    SELECT 1 FROM "testAttempts" WHERE "testId" = $4 AND "userId" = $6
      AND "tenantId" IS NOT DISTINCT FROM $2 AND "organisationId" IS NOT DISTINCT FROM $3 LIMIT 1),
"accommodated" AS (
    SELECT 1 FROM "testAccommodations" WHERE "testId" = $4 AND "userId" = $6),
"started" AS (
    INSERT INTO "testAttempts" ({ATTEMPT_COLUMNS})
    SELECT {values} WHERE EXISTS (SELECT 1 FROM "test") AND NOT EXISTS (SELECT 1 FROM "earlier")
      AND NOT EXISTS (SELECT 1 FROM "accommodated")
    ON CONFLICT ("testId", "userId", "attempt") DO NOTHING
    RETURNING "attemptId"),
"event" AS (
    INSERT INTO "events" ("eventId", "name", "tenantId", "organisationId", "userId", "orderingKey", "payload", "createdAt", "traceparent")
    SELECT $27, $28, $29, $30, $31, $32, $33, $34, $35 FROM "started"
    RETURNING "seq")
SELECT EXISTS (SELECT 1 FROM "started")"#
    )
});

/// Writes `attempt` (the learner's first at its test) and `event` in one statement, if the
/// test is still published with `test_updated_at` and the learner has no attempt at it.
/// `Ok(None)` on SQLite (no such statement: the caller takes the general path), else whether
/// it was written. Fires the store's commit signal when it was.
pub async fn first(
    store: &Store,
    attempt: &Attempt,
    test_updated_at: Ts,
    event: &NewEvent,
) -> Result<Option<bool>, sqlx::Error> {
    let Some(pool) = store.postgres() else {
        return Ok(None);
    };
    let q = bind_attempt!(sqlx::query_scalar::<_, bool>(FIRST_START.as_str()), attempt)
        .bind(test_updated_at)
        .bind(Id(event.id))
        .bind(event.name.as_str())
        .bind(event.context.tenant_id.map(|t| Id(t.as_uuid())))
        .bind(event.context.organisation_id.map(|o| Id(o.as_uuid())))
        .bind(event.context.user_id.map(|u| Id(u.as_uuid())))
        .bind(event.ordering_key.as_deref())
        .bind(Json(event.payload()))
        .bind(Ts::new(event.timestamp))
        .bind(event.traceparent.as_deref());
    let written = q.fetch_one(pool).await?;
    if written {
        store.signal().events_committed();
    }
    Ok(Some(written))
}
