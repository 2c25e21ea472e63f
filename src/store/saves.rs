//! The guarded answer save: answers scored by the caller with what it kept of the attempt,
//! written only if the database still holds what that scoring assumed. One statement on
//! PostgreSQL (one round trip, one commit). On SQLite (one writer connection, each statement a
//! hand-off to its thread, each commit a sync to disk) saves share commits: a task takes every
//! save waiting, runs each one's guarded update and writes in one transaction, commits once,
//! and only then answers each (group commit).

use std::sync::LazyLock;

use serde_json::Value;
use sqlx::types::Json;
use tokio::sync::{mpsc, oneshot};
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
pub struct GuardedSave {
    pub scope: Scope,
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
    pub events: Vec<NewEvent>,
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
pub async fn save_guarded(store: &Store, s: GuardedSave) -> Result<bool, sqlx::Error> {
    match store.pools() {
        Pools::Postgres(pool) => in_one_statement(store, pool, s).await,
        Pools::Sqlite { .. } => store.save_queue().save(s).await,
    }
}

/// The most saves one shared commit takes.
const BATCH: usize = 64;

type Job = (GuardedSave, oneshot::Sender<Result<bool, sqlx::Error>>);

/// Guarded saves waiting for a shared commit (SQLite).
#[derive(Debug)]
pub(crate) struct Queue {
    jobs: mpsc::Sender<Job>,
}

impl Queue {
    /// Starts the task that commits the saves sent to the queue, on `store`.
    pub(super) fn start(store: Store) -> Queue {
        let (jobs, mut waiting) = mpsc::channel::<Job>(1024);
        tokio::spawn(async move {
            let mut batch = Vec::with_capacity(BATCH);
            while waiting.recv_many(&mut batch, BATCH).await > 0 {
                commit_together(&store, std::mem::take(&mut batch)).await;
            }
        });
        Queue { jobs }
    }

    /// Queues `s`; resolves once the commit that holds it is done (or it was refused).
    async fn save(&self, s: GuardedSave) -> Result<bool, sqlx::Error> {
        let (tx, rx) = oneshot::channel();
        self.jobs
            .send((s, tx))
            .await
            .map_err(|_| sqlx::Error::PoolClosed)?;
        rx.await.map_err(|_| sqlx::Error::PoolClosed)?
    }
}

/// Runs the saves of `batch` in one transaction, in order, and answers each after the commit.
/// If the transaction fails, each save is retried in its own, so one bad save fails alone.
async fn commit_together(store: &Store, batch: Vec<Job>) {
    let (saves, replies): (Vec<GuardedSave>, Vec<_>) = batch.into_iter().unzip();
    let together = async {
        let mut tx = store.begin().await?;
        let mut found = Vec::with_capacity(saves.len());
        let mut events = Vec::new();
        for s in &saves {
            let ok = write(&mut tx, s).await?;
            if ok {
                events.extend(s.events.iter().cloned());
            }
            found.push(ok);
        }
        super::outbox::append_many(&mut tx, &events).await?;
        tx.commit().await?;
        Ok::<_, sqlx::Error>(found)
    };
    match together.await {
        Ok(found) => {
            metrics::counter!("answer_save_commits_total").increment(1);
            for (reply, ok) in replies.into_iter().zip(found) {
                let _ = reply.send(Ok(ok));
            }
        }
        Err(e) if saves.len() == 1 => {
            if let Some(reply) = replies.into_iter().next() {
                let _ = reply.send(Err(e));
            }
        }
        Err(e) => {
            tracing::warn!(error = %e, saves = saves.len(), "a shared commit of answer saves failed; saving each alone");
            for (s, reply) in saves.into_iter().zip(replies) {
                let _ = reply.send(in_one_transaction(store, s).await);
            }
        }
    }
}

static SQLITE_UPDATE: LazyLock<String> = LazyLock::new(|| guarded_update("IS"));

/// The guarded update and, if it found the attempt, the answers, in `tx` (events are the
/// caller's); whether it found the attempt.
async fn write(tx: &mut super::Tx, s: &GuardedSave) -> Result<bool, sqlx::Error> {
    let (t, o) = sid(&s.scope);
    let update: &str = &SQLITE_UPDATE;
    let found = on_tx!(tx, c => {
        sqlx::query(update)
            .bind(Id(s.attempt_id)).bind(t).bind(o).bind(Id(s.user_id)).bind(Id(s.test_id))
            .bind(s.now).bind(s.grading.as_str()).bind(s.time_duration)
            .bind(s.current_position).bind(s.time_spent)
            .execute(c).await.map(|r| r.rows_affected())
    })?;
    if found == 0 {
        return Ok(false);
    }
    for (question_id, answer, score, review_status) in &s.answers {
        super::attempts::upsert_answer(
            tx,
            &s.scope,
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
    Ok(true)
}

/// One save in its own transaction (SQLite).
async fn in_one_transaction(store: &Store, s: GuardedSave) -> Result<bool, sqlx::Error> {
    let mut tx = store.begin().await?;
    if !write(&mut tx, &s).await? {
        tx.rollback().await?;
        return Ok(false);
    }
    super::outbox::append_many(&mut tx, &s.events).await?;
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
    s: GuardedSave,
) -> Result<bool, sqlx::Error> {
    let (t, o) = sid(&s.scope);
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
    let ev = &s.events;
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
