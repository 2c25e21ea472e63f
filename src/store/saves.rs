//! The guarded answer save: answers scored by the caller with what it kept of the attempt,
//! written only if the database still holds what that scoring assumed.
//!
//! Saves share commits (group commit): each waits in a queue, a committer takes every save
//! waiting, writes them together and commits once, and only then answers each. On PostgreSQL
//! a batch is one statement (one round trip, one commit) for many learners' saves, and a few
//! committers run at once; on SQLite (one writer connection, each statement a hand-off to its
//! thread, each commit a sync to disk) one committer runs each save's statements in one
//! transaction. A batch that fails is retried one save at a time, so a bad save fails alone.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, LazyLock};

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
    /// The test's `updatedAt` the keys were read with.
    pub test_updated_at: Ts,
    /// The attempt's deadline the save was timed under (an accommodation may move it).
    pub deadline: Option<Ts>,
    pub now: Ts,
    /// Question, answer, score (hundredths), review status; no question twice.
    pub answers: Vec<(Uuid, Json<Value>, Option<i64>, ReviewStatus)>,
    /// The `answer.submitted` event of each answer, in the same order.
    pub events: Vec<NewEvent>,
    /// The request's `clientSeq`, if it carried one.
    pub client_seq: Option<i64>,
    pub current_position: Option<i32>,
    pub time_spent: i32,
}

/// Where a guard reads a save's values from: the statement's parameters (one save), or the
/// columns of one row of a batch (`s`, see [`POSTGRES_BATCH`]).
struct Source {
    attempt: &'static str,
    tenant: &'static str,
    org: &'static str,
    user: &'static str,
    test: &'static str,
    now: &'static str,
    grading: &'static str,
    duration: &'static str,
    position: &'static str,
    spent: &'static str,
    version: &'static str,
    deadline: &'static str,
}

const PARAMS: Source = Source {
    attempt: "$1",
    tenant: "$2",
    org: "$3",
    user: "$4",
    test: "$5",
    now: "$6",
    grading: "$7",
    duration: "$8",
    position: "$9",
    spent: "$10",
    version: "$11",
    deadline: "$12",
};

const BATCH_ROW: Source = Source {
    attempt: "s.attempt",
    tenant: "s.tenant",
    org: "s.org",
    user: "s.usr",
    test: "s.test",
    now: "s.at",
    grading: "s.grading",
    duration: "s.duration",
    position: "s.position",
    spent: "s.spent",
    version: "s.version",
    deadline: "s.deadline",
};

/// The guarded update of the attempt: its progress, only if it is still the learner's, in
/// progress, before its deadline and its test's end date, and its test is still the one the
/// keys were read with (its `updatedAt`), with the grading type and time limit the save
/// assumed. `same` is the dialect's null-safe equality; `from`
/// names the rows the values come from, if any.
///
/// The row is found by its primary key: the scope and the status are written as filters no
/// index can serve (see [`SCOPE_FILTER`](super::sql::SCOPE_FILTER)); `"status" = 'I'` would
/// let the planner pick the partial index of in-progress attempts' deadlines and walk all of
/// them on every save.
fn guarded_update(v: &Source, same: &str, from: &str) -> String {
    let Source {
        attempt,
        tenant,
        org,
        user,
        test,
        now,
        grading,
        duration,
        position,
        spent,
        version,
        deadline,
    } = v;
    format!(
        r#"UPDATE "testAttempts" SET "currentPosition" = {position}, "timeSpent" = {spent},
        "updatedBy" = {user}, "updatedAt" = {now}
    {from}
    WHERE "attemptId" = {attempt}
      AND "tenantId" IS NOT DISTINCT FROM {tenant} AND "organisationId" IS NOT DISTINCT FROM {org}
      AND "userId" IS NOT DISTINCT FROM {user} AND "testId" IS NOT DISTINCT FROM {test}
      AND "status" IS NOT DISTINCT FROM 'I'
      AND ("deadlineAt" IS NULL OR "deadlineAt" >= {now}) AND "deadlineAt" {same} {deadline}
      AND EXISTS (SELECT 1 FROM "tests" t WHERE t."testId" = {test}
          AND t."tenantId" IS NOT DISTINCT FROM {tenant}
          AND t."organisationId" IS NOT DISTINCT FROM {org}
          AND (t."endDate" IS NULL OR t."endDate" >= {now}
               OR "testAttempts"."accommodatedEnd" >= {now})
          AND t."updatedAt" = {version}
          AND t."gradingType" = {grading} AND t."timeDuration" {same} {duration})"#
    )
}

/// Saves the answers, their events and the attempt's progress as one transaction if the
/// guard holds; `Ok(None)`, with nothing written, if it does not. Otherwise the questions
/// whose answer was not replaced (see [`ON_ANSWER_CONFLICT`]), whose events were left out. The first step updates the
/// attempt row, so the save waits for (and is then re-checked against) a submission in
/// progress, as the general path's lock does. Resolves once the commit that holds it is done.
#[instrument(skip_all, err(level = "warn"))]
pub async fn save_guarded(store: &Store, s: GuardedSave) -> Saved {
    store.save_queue().save(s).await
}

/// The most saves one shared commit takes.
const BATCH: usize = 64;

/// How many shared commits run at once on PostgreSQL: while one is committing, the next
/// gathers what arrives meanwhile. (SQLite has one writer, so one.)
const POSTGRES_COMMITTERS: usize = 2;

/// What became of a guarded save: `None` if the guard failed, else the questions whose stored
/// answer was kept (a `clientSeq` at least the save's).
pub type Saved = Result<Option<Vec<Uuid>>, sqlx::Error>;

type Job = (GuardedSave, oneshot::Sender<Saved>);

/// Guarded saves waiting for a shared commit.
#[derive(Debug)]
pub(crate) struct Queue {
    jobs: mpsc::Sender<Job>,
}

impl Queue {
    /// Starts the tasks that commit the saves sent to the queue, on `store`. Each takes every
    /// save waiting (at most [`BATCH`]) and commits them together; none waits for more.
    pub(super) fn start(store: Store) -> Queue {
        let (jobs, waiting) = mpsc::channel::<Job>(1024);
        let committers = match store.pools() {
            Pools::Postgres(_) => POSTGRES_COMMITTERS,
            Pools::Sqlite { .. } => 1,
        };
        let waiting = Arc::new(tokio::sync::Mutex::new(waiting));
        for _ in 0..committers {
            let (store, waiting) = (store.clone(), waiting.clone());
            tokio::spawn(async move {
                let mut batch = Vec::with_capacity(BATCH);
                while waiting.lock().await.recv_many(&mut batch, BATCH).await > 0 {
                    commit_together(&store, std::mem::take(&mut batch)).await;
                }
            });
        }
        Queue { jobs }
    }

    /// Queues `s`; resolves once the commit that holds it is done (or it was refused).
    async fn save(&self, s: GuardedSave) -> Saved {
        let (tx, rx) = oneshot::channel();
        self.jobs
            .send((s, tx))
            .await
            .map_err(|_| sqlx::Error::PoolClosed)?;
        rx.await.map_err(|_| sqlx::Error::PoolClosed)?
    }
}

/// Commits the saves of `batch` together and answers each after its commit.
async fn commit_together(store: &Store, batch: Vec<Job>) {
    let (saves, replies): (Vec<GuardedSave>, Vec<_>) = batch.into_iter().unzip();
    let results = match store.pools() {
        Pools::Postgres(pool) => commit_postgres(store, pool, &saves).await,
        Pools::Sqlite { .. } => commit_sqlite(store, &saves).await,
    };
    for (reply, result) in replies.into_iter().zip(results) {
        let _ = reply.send(result);
    }
}

fn failed_together(e: &sqlx::Error, saves: usize) {
    tracing::warn!(error = %e, saves, "a shared commit of answer saves failed; saving each alone");
}

/// SQLite: the saves in one transaction, in order; if it fails, each in its own.
async fn commit_sqlite(store: &Store, saves: &[GuardedSave]) -> Vec<Saved> {
    match in_one_transaction(store, saves).await {
        Ok(outcomes) => outcomes.into_iter().map(Ok).collect(),
        Err(e) if saves.len() == 1 => vec![Err(e)],
        Err(e) => {
            failed_together(&e, saves.len());
            let mut results = Vec::with_capacity(saves.len());
            for s in saves {
                let alone = in_one_transaction(store, std::slice::from_ref(s)).await;
                results.push(alone.map(|mut outcomes| outcomes.remove(0)));
            }
            results
        }
    }
}

/// PostgreSQL: one statement for each round of distinct attempts (an attempt's second save
/// in the batch goes in the second round, after its first), each committed on its own; a
/// round that fails is retried one save at a time (the rounds before it stay committed).
async fn commit_postgres(store: &Store, pool: &sqlx::PgPool, saves: &[GuardedSave]) -> Vec<Saved> {
    let mut results: Vec<Option<Saved>> = (0..saves.len()).map(|_| None).collect();
    let mut round_of = Vec::with_capacity(saves.len());
    let mut seen: HashMap<Uuid, usize> = HashMap::with_capacity(saves.len());
    for s in saves {
        let n = seen.entry(s.attempt_id).or_default();
        round_of.push(*n);
        *n += 1;
    }
    let rounds = round_of.iter().copied().max().map_or(0, |m| m + 1);
    for round in 0..rounds {
        let mut these: Vec<usize> = (0..saves.len()).filter(|i| round_of[*i] == round).collect();
        // One order of row locks for every batch: two batches never wait for each other in
        // a circle.
        these.sort_by_key(|i| saves[*i].attempt_id);
        let picked: Vec<&GuardedSave> = these.iter().map(|i| &saves[*i]).collect();
        match in_one_statement(store, pool, &picked).await {
            Ok(written) => {
                for i in these {
                    results[i] = Some(Ok(written.outcome(&saves[i])));
                }
            }
            Err(e) if these.len() == 1 => results[these[0]] = Some(Err(e)),
            Err(e) => {
                failed_together(&e, these.len());
                for i in these {
                    let alone = in_one_statement(store, pool, &[&saves[i]]).await;
                    results[i] = Some(alone.map(|written| written.outcome(&saves[i])));
                }
            }
        }
    }
    results
        .into_iter()
        .map(|r| r.unwrap_or(Err(sqlx::Error::PoolClosed)))
        .collect()
}

static SQLITE_UPDATE: LazyLock<String> = LazyLock::new(|| guarded_update(&PARAMS, "IS", ""));

/// The guarded update and, if it found the attempt, the answers, in `tx` (events are the
/// caller's); `None` if it did not, else the questions whose stored answer was kept.
async fn write(tx: &mut super::Tx, s: &GuardedSave) -> Result<Option<Vec<Uuid>>, sqlx::Error> {
    let (t, o) = sid(&s.scope);
    let update: &str = &SQLITE_UPDATE;
    let found = on_tx!(tx, c => {
        sqlx::query(update)
            .bind(Id(s.attempt_id)).bind(t).bind(o).bind(Id(s.user_id)).bind(Id(s.test_id))
            .bind(s.now).bind(s.grading.as_str()).bind(s.time_duration)
            .bind(s.current_position).bind(s.time_spent).bind(s.test_updated_at)
            .bind(s.deadline)
            .execute(c).await.map(|r| r.rows_affected())
    })?;
    if found == 0 {
        return Ok(None);
    }
    let mut kept = Vec::new();
    for (question_id, answer, score, review_status) in &s.answers {
        let row = super::attempts::AnswerRow {
            attempt_id: s.attempt_id,
            question_id: *question_id,
            answer,
            score: *score,
            review_status: *review_status,
            client_seq: s.client_seq,
        };
        if !super::attempts::upsert_answer(tx, &s.scope, row, s.user_id, s.now).await? {
            kept.push(*question_id);
        }
    }
    Ok(Some(kept))
}

/// The events of `s` whose answers were written (all but those of the `kept` questions).
fn events_written<'a>(s: &'a GuardedSave, kept: &'a [Uuid]) -> impl Iterator<Item = &'a NewEvent> {
    s.events
        .iter()
        .zip(&s.answers)
        .filter(|(_, a)| !kept.contains(&a.0))
        .map(|(e, _)| e)
}

/// The saves in one transaction, in order (SQLite).
async fn in_one_transaction(
    store: &Store,
    saves: &[GuardedSave],
) -> Result<Vec<Option<Vec<Uuid>>>, sqlx::Error> {
    let mut tx = store.begin().await?;
    let mut outcomes = Vec::with_capacity(saves.len());
    let mut events = Vec::new();
    for s in saves {
        let outcome = write(&mut tx, s).await?;
        if let Some(kept) = &outcome {
            events.extend(events_written(s, kept).cloned());
        }
        outcomes.push(outcome);
    }
    super::outbox::append_many(&mut tx, &events).await?;
    tx.commit().await?;
    metrics::counter!("answer_save_commits_total").increment(1);
    Ok(outcomes)
}

/// Many guarded saves in one statement (PostgreSQL): `s` holds one row per save (distinct
/// attempts, so no row is updated twice), the answers and the events name their save's
/// attempt (and an event its answer's question) and are written only for the attempts the
/// guarded update found, an event only if its answer was. It returns the attempts found (with
/// no question) and the answers written. (The writes in `WITH` run whether or not the last
/// `SELECT` reads them.)
static POSTGRES_BATCH: LazyLock<String> = LazyLock::new(|| {
    format!(
        r#"
WITH s AS (
    SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::uuid[], $4::uuid[], $5::uuid[],
        $6::timestamptz[], $7::text[], $8::int4[], $9::int4[], $10::int4[], $11::timestamptz[],
        $12::timestamptz[], $13::int8[])
        AS s(attempt, tenant, org, usr, test, at, grading, duration, position, spent, version,
            deadline, seq)
),
a AS (
    {update}
    RETURNING "attemptId", s.tenant, s.org, s.usr, s.at, s.seq
),
saved AS (
    INSERT INTO "testUserAnswers"
        ("attemptAnsId", "tenantId", "organisationId", "attemptId", "questionId", "answer",
         "score", "reviewStatus", "anssOrder", "createdAt", "updatedBy", "updatedAt",
         "clientSeq")
    SELECT u.id, a.tenant, a.org, a."attemptId", u.q, u.answer, u.score, u.review, '1', a.at,
        a.usr, a.at, a.seq
    FROM a, unnest($14::uuid[], $15::uuid[], $16::uuid[], $17::jsonb[], $18::int8[],
        $19::text[]) AS u(attempt, id, q, answer, score, review)
    WHERE u.attempt = a."attemptId"
    {on_conflict}
    RETURNING "attemptId", "questionId"
),
appended AS (
    INSERT INTO "events"
        ("eventId", "name", "tenantId", "organisationId", "userId", "orderingKey", "payload",
         "createdAt", "traceparent")
    SELECT e.id, e.name, e.tenant, e.org, e.usr, e.key, e.payload, e.at, e.trace
    FROM unnest($20::uuid[], $21::uuid[], $22::uuid[], $23::text[], $24::uuid[], $25::uuid[],
        $26::uuid[], $27::text[], $28::jsonb[], $29::timestamptz[], $30::text[])
        WITH ORDINALITY AS e(attempt, q, id, name, tenant, org, usr, key, payload, at, trace, n)
    WHERE (e.attempt, e.q) IN (SELECT "attemptId", "questionId" FROM saved)
    ORDER BY e.n
)
SELECT "attemptId", NULL::uuid FROM a
UNION ALL SELECT "attemptId", "questionId" FROM saved"#,
        update = guarded_update(&BATCH_ROW, "IS NOT DISTINCT FROM", "FROM s"),
        on_conflict = super::attempts::ON_ANSWER_CONFLICT,
    )
});

/// What one batch statement wrote.
struct Written {
    attempts: HashSet<Uuid>,
    answers: HashSet<(Uuid, Uuid)>,
}

impl Written {
    /// What became of `s`, one of the batch's saves.
    fn outcome(&self, s: &GuardedSave) -> Option<Vec<Uuid>> {
        self.attempts.contains(&s.attempt_id).then(|| {
            s.answers
                .iter()
                .map(|a| a.0)
                .filter(|q| !self.answers.contains(&(s.attempt_id, *q)))
                .collect()
        })
    }
}

/// One statement of [`POSTGRES_BATCH`] for `saves` (distinct attempts), committed on its
/// own.
async fn in_one_statement(
    store: &Store,
    pool: &sqlx::PgPool,
    saves: &[&GuardedSave],
) -> Result<Written, sqlx::Error> {
    let mut q = sqlx::query_as::<_, (Uuid, Option<Uuid>)>(POSTGRES_BATCH.as_str());
    q = q
        .bind(saves.iter().map(|s| s.attempt_id).collect::<Vec<_>>())
        .bind(saves.iter().map(|s| sid(&s.scope).0.0).collect::<Vec<_>>())
        .bind(saves.iter().map(|s| sid(&s.scope).1.0).collect::<Vec<_>>())
        .bind(saves.iter().map(|s| s.user_id).collect::<Vec<_>>())
        .bind(saves.iter().map(|s| s.test_id).collect::<Vec<_>>())
        .bind(saves.iter().map(|s| s.now.0).collect::<Vec<_>>())
        .bind(saves.iter().map(|s| s.grading.as_str()).collect::<Vec<_>>())
        .bind(saves.iter().map(|s| s.time_duration).collect::<Vec<_>>())
        .bind(saves.iter().map(|s| s.current_position).collect::<Vec<_>>())
        .bind(saves.iter().map(|s| s.time_spent).collect::<Vec<_>>())
        .bind(
            saves
                .iter()
                .map(|s| s.test_updated_at.0)
                .collect::<Vec<_>>(),
        )
        .bind(
            saves
                .iter()
                .map(|s| s.deadline.map(|d| d.0))
                .collect::<Vec<_>>(),
        )
        .bind(saves.iter().map(|s| s.client_seq).collect::<Vec<_>>());
    let answers = || {
        saves
            .iter()
            .flat_map(|s| s.answers.iter().map(move |a| (s, a)))
    };
    q = q
        .bind(answers().map(|(s, _)| s.attempt_id).collect::<Vec<_>>())
        .bind(answers().map(|_| Uuid::new_v4()).collect::<Vec<_>>())
        .bind(answers().map(|(_, a)| a.0).collect::<Vec<_>>())
        .bind(answers().map(|(_, a)| a.1.clone()).collect::<Vec<_>>())
        .bind(answers().map(|(_, a)| a.2).collect::<Vec<_>>())
        .bind(answers().map(|(_, a)| a.3.as_str()).collect::<Vec<_>>());
    // Each event with its save and its answer's question.
    let events = || {
        saves.iter().flat_map(|s| {
            s.events
                .iter()
                .zip(&s.answers)
                .map(move |(e, a)| (s, a.0, e))
        })
    };
    let uuids =
        |f: fn(&NewEvent) -> Option<Uuid>| events().map(|(_, _, e)| f(e)).collect::<Vec<_>>();
    q = q
        .bind(events().map(|(s, _, _)| s.attempt_id).collect::<Vec<_>>())
        .bind(
            events()
                .map(|(_, question, _)| question)
                .collect::<Vec<_>>(),
        )
        .bind(events().map(|(_, _, e)| e.id).collect::<Vec<_>>())
        .bind(
            events()
                .map(|(_, _, e)| e.name.as_str())
                .collect::<Vec<_>>(),
        )
        .bind(uuids(|e| e.context.tenant_id.map(|x| x.as_uuid())))
        .bind(uuids(|e| e.context.organisation_id.map(|x| x.as_uuid())))
        .bind(uuids(|e| e.context.user_id.map(|x| x.as_uuid())))
        .bind(
            events()
                .map(|(_, _, e)| e.ordering_key.as_deref())
                .collect::<Vec<_>>(),
        )
        .bind(
            events()
                .map(|(_, _, e)| Json(e.payload()))
                .collect::<Vec<_>>(),
        )
        .bind(events().map(|(_, _, e)| e.timestamp).collect::<Vec<_>>())
        .bind(
            events()
                .map(|(_, _, e)| e.traceparent.as_deref())
                .collect::<Vec<_>>(),
        );
    let mut written = Written {
        attempts: HashSet::new(),
        answers: HashSet::new(),
    };
    for (attempt, question) in q.fetch_all(pool).await? {
        match question {
            None => written.attempts.insert(attempt),
            Some(question) => written.answers.insert((attempt, question)),
        };
    }
    metrics::counter!("answer_save_commits_total").increment(1);
    if !written.answers.is_empty() {
        // As a transaction that appended events does at its commit.
        store.signal().events_committed();
    }
    Ok(written)
}
