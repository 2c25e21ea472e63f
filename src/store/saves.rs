//! The guarded answer save: answers scored by the caller with what it kept of the attempt,
//! written only if the database still holds what that scoring assumed. One statement on
//! PostgreSQL (one round trip, one commit); on SQLite one short transaction whose first
//! statement is the guarded update of the attempt.

use std::sync::LazyLock;

use serde_json::Value;
use sqlx::types::Json;
use tracing::instrument;
use uuid::Uuid;

use super::db::sid;
use super::{Id, Pools, Store, Ts};
use crate::domain::enums::{GradingType, ReviewStatus};
use crate::domain::event::NewEvent;
use crate::domain::ids::Scope;
use crate::on_tx;

/// A save and what the database must still hold for it to write anything.
#[derive(Debug)]
pub struct GuardedSave<'a> {
    pub scope: &'a Scope,
    pub attempt_id: Uuid,
    /// The attempt's learner, recorded as the author.
    pub user_id: Uuid,
    pub test_id: Uuid,
    /// The test's grading type and time limit the answers were scored and timed under.
    pub grading: GradingType,
    pub time_duration: Option<i32>,
    pub now: Ts,
    /// Question, answer, score (hundredths), review status; no question twice.
    pub answers: Vec<(Uuid, Json<Value>, Option<i64>, ReviewStatus)>,
    pub events: &'a [NewEvent],
    pub current_position: Option<i32>,
    pub time_spent: i32,
}

/// The guarded update of the attempt: its progress, only if it is still the learner's, in
/// progress, before its deadline and its test's end date, and its test still has the grading
/// type and time limit the save assumed. `{same}` is the dialect's null-safe equality.
///
/// The row is found by its primary key: the scope and the status are written as filters no
/// index can serve (see [`SCOPE_FILTER`](super::sql::SCOPE_FILTER)); `"status" = 'I'` would
/// let the planner pick the partial index of in-progress attempts' deadlines and walk all of
/// them on every save.
fn guarded_update(same: &str) -> String {
    format!(
        r#"UPDATE "testAttempts" SET "currentPosition" = $9, "timeSpent" = $10,
        "updatedBy" = $4, "updatedAt" = $6
    WHERE "attemptId" = $1
      AND "tenantId" IS NOT DISTINCT FROM $2 AND "organisationId" IS NOT DISTINCT FROM $3
      AND "userId" IS NOT DISTINCT FROM $4 AND "testId" IS NOT DISTINCT FROM $5
      AND "status" IS NOT DISTINCT FROM 'I'
      AND ("deadlineAt" IS NULL OR "deadlineAt" >= $6)
      AND EXISTS (SELECT 1 FROM "tests" t WHERE t."testId" = $5
          AND t."tenantId" IS NOT DISTINCT FROM $2
          AND t."organisationId" IS NOT DISTINCT FROM $3
          AND (t."endDate" IS NULL OR t."endDate" >= $6)
          AND t."gradingType" = $7 AND t."timeDuration" {same} $8)"#
    )
}

/// Saves the answers, their events and the attempt's progress as one transaction if the
/// guard holds; `Ok(false)`, with nothing written, if it does not. The first step updates the
/// attempt row, so the save waits for (and is then re-checked against) a submission in
/// progress, as the general path's lock does.
#[instrument(skip_all, err(level = "warn"))]
pub async fn save_guarded(store: &Store, s: GuardedSave<'_>) -> Result<bool, sqlx::Error> {
    match store.pools() {
        Pools::Postgres(pool) => in_one_statement(store, pool, s).await,
        Pools::Sqlite { .. } => in_one_transaction(store, s).await,
    }
}

static SQLITE_UPDATE: LazyLock<String> = LazyLock::new(|| guarded_update("IS"));

async fn in_one_transaction(store: &Store, s: GuardedSave<'_>) -> Result<bool, sqlx::Error> {
    let (t, o) = sid(s.scope);
    let update: &str = &SQLITE_UPDATE;
    let mut tx = store.begin().await?;
    let found = on_tx!(&mut tx, c => {
        sqlx::query(update)
            .bind(Id(s.attempt_id)).bind(t).bind(o).bind(Id(s.user_id)).bind(Id(s.test_id))
            .bind(s.now).bind(s.grading.as_str()).bind(s.time_duration)
            .bind(s.current_position).bind(s.time_spent)
            .execute(c).await.map(|r| r.rows_affected())
    })?;
    if found == 0 {
        tx.rollback().await?;
        return Ok(false);
    }
    for (question_id, answer, score, review_status) in &s.answers {
        super::attempts::upsert_answer(
            &mut tx,
            s.scope,
            super::attempts::AnswerRow {
                attempt_id: s.attempt_id,
                question_id: *question_id,
                answer,
                score: *score,
                review_status: *review_status,
            },
            s.user_id,
            s.now,
        )
        .await?;
    }
    super::outbox::append_many(&mut tx, s.events).await?;
    tx.commit().await?;
    Ok(true)
}

static POSTGRES_SAVE: LazyLock<String> = LazyLock::new(|| {
    format!(
        r#"
WITH a AS (
    {update}
    RETURNING "attemptId"
),
saved AS (
    INSERT INTO "testUserAnswers"
        ("attemptAnsId", "tenantId", "organisationId", "attemptId", "questionId", "answer",
         "score", "reviewStatus", "anssOrder", "createdAt", "updatedBy", "updatedAt")
    SELECT u.id, $2, $3, a."attemptId", u.q, u.answer, u.score, u.review, '1', $6, $4, $6
    FROM a CROSS JOIN unnest($11::uuid[], $12::uuid[], $13::jsonb[], $14::int8[], $15::text[])
        AS u(id, q, answer, score, review)
    ON CONFLICT ("attemptId", "questionId") DO UPDATE SET
        "answer" = excluded."answer", "score" = excluded."score",
        "reviewStatus" = excluded."reviewStatus", "reviewedBy" = NULL,
        "reviewedAt" = NULL, "updatedBy" = excluded."updatedBy",
        "updatedAt" = excluded."updatedAt"
    RETURNING 1
),
appended AS (
    INSERT INTO "events"
        ("eventId", "name", "tenantId", "organisationId", "userId", "orderingKey", "payload",
         "createdAt")
    SELECT e.id, e.name, e.tenant, e.org, e.usr, e.key, e.payload, e.at
    FROM a CROSS JOIN unnest($16::uuid[], $17::text[], $18::uuid[], $19::uuid[], $20::uuid[],
        $21::text[], $22::jsonb[], $23::timestamptz[])
        WITH ORDINALITY AS e(id, name, tenant, org, usr, key, payload, at, n)
    ORDER BY e.n
    RETURNING 1
)
SELECT (SELECT count(*) FROM a), (SELECT count(*) FROM saved), (SELECT count(*) FROM appended)"#,
        update = guarded_update("IS NOT DISTINCT FROM"),
    )
});

async fn in_one_statement(
    store: &Store,
    pool: &sqlx::PgPool,
    s: GuardedSave<'_>,
) -> Result<bool, sqlx::Error> {
    let (t, o) = sid(s.scope);
    let n = s.answers.len();
    let (mut ids, mut questions, mut answers, mut scores, mut reviews) = (
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
    );
    for (q, answer, score, review) in s.answers {
        ids.push(Uuid::new_v4());
        questions.push(q);
        answers.push(answer);
        scores.push(score);
        reviews.push(review.as_str());
    }
    let ev = s.events;
    let uuids = |f: fn(&NewEvent) -> Option<Uuid>| ev.iter().map(f).collect::<Vec<_>>();
    let (found, _, appended): (i64, i64, i64) = sqlx::query_as(POSTGRES_SAVE.as_str())
        .bind(Id(s.attempt_id))
        .bind(t)
        .bind(o)
        .bind(Id(s.user_id))
        .bind(Id(s.test_id))
        .bind(s.now)
        .bind(s.grading.as_str())
        .bind(s.time_duration)
        .bind(s.current_position)
        .bind(s.time_spent)
        .bind(ids)
        .bind(questions)
        .bind(answers)
        .bind(scores)
        .bind(reviews)
        .bind(ev.iter().map(|e| e.id).collect::<Vec<_>>())
        .bind(ev.iter().map(|e| e.name.as_str()).collect::<Vec<_>>())
        .bind(uuids(|e| e.context.tenant_id.map(|x| x.as_uuid())))
        .bind(uuids(|e| e.context.organisation_id.map(|x| x.as_uuid())))
        .bind(uuids(|e| e.context.user_id.map(|x| x.as_uuid())))
        .bind(
            ev.iter()
                .map(|e| e.ordering_key.as_deref())
                .collect::<Vec<_>>(),
        )
        .bind(ev.iter().map(|e| Json(e.payload())).collect::<Vec<_>>())
        .bind(ev.iter().map(|e| e.timestamp).collect::<Vec<_>>())
        .fetch_one(pool)
        .await?;
    if found == 0 {
        return Ok(false);
    }
    if appended > 0 {
        // As a transaction that appended events does at its commit.
        store.signal().events_committed();
    }
    Ok(true)
}
