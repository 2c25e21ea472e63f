//! SQL for attempts and their answers. Confined to a scope, except the sweeper's lookup of
//! expired attempts, which spans tenants by design.

use std::sync::LazyLock;

use serde::{Deserialize, Serialize};

use serde_json::Value;
use sqlx::FromRow;
use sqlx::types::Json;
use tracing::instrument;
use utoipa::ToSchema;
use uuid::Uuid;

use super::db::sid;
use super::sql::{lock_clause, placeholders};
use super::{Db, Id, Store, Ts, Tx};
use crate::domain::enums::{AttemptResult, AttemptStatus, ReviewStatus, SubmissionType};
use crate::domain::ids::Scope;
use crate::{on_db, on_reader, on_tx};

/// One question of an attempt's paper.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PaperItem {
    pub question_id: Uuid,
    pub section_id: Option<Uuid>,
    pub rule_id: Option<Uuid>,
    pub is_compulsory: bool,
    pub is_conditional: bool,
    /// The order options are shown in (shuffled when the test says so).
    pub option_order: Vec<Uuid>,
    /// The question's revision the attempt holds: it is scored and shown against it, whatever
    /// edits come later. Absent on papers drawn before revisions were recorded (they read the
    /// question as it is now).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revision: Option<i32>,
}

/// An attempt as stored and returned.
#[derive(Debug, Clone, FromRow, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[sqlx(rename_all = "camelCase")]
pub struct Attempt {
    #[schema(value_type = String, format = Uuid)]
    pub attempt_id: Id,
    #[schema(value_type = String, format = Uuid)]
    pub tenant_id: Id,
    #[schema(value_type = String, format = Uuid)]
    pub organisation_id: Id,
    #[schema(value_type = String, format = Uuid)]
    pub test_id: Id,
    #[schema(value_type = Option<String>, format = Uuid)]
    pub resolved_test_id: Option<Id>,
    #[schema(value_type = String, format = Uuid)]
    pub user_id: Id,
    pub attempt: i32,
    #[schema(value_type = String, format = DateTime)]
    pub started_at: Ts,
    #[schema(value_type = Option<String>, format = DateTime)]
    pub submitted_at: Option<Ts>,
    /// `I` in progress, `S` submitted.
    pub status: AttemptStatus,
    /// `P` pending, `U` under review, `R` reviewed, `N` not applicable.
    pub review_status: ReviewStatus,
    /// Hundredths (see [`Attempt::score_marks`]).
    #[serde(skip)]
    pub score: Option<i64>,
    /// `self` or `auto`.
    pub submission_type: SubmissionType,
    /// `P` or `F`.
    pub result: Option<AttemptResult>,
    pub current_position: Option<i32>,
    /// Seconds, from the server clock.
    pub time_spent: Option<i32>,
    #[schema(value_type = Option<String>, format = Uuid)]
    pub updated_by: Option<Id>,
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: Ts,
    #[serde(skip)]
    pub seed: Option<i64>,
    #[schema(value_type = Option<String>, format = DateTime)]
    pub deadline_at: Option<Ts>,
    #[serde(skip)]
    pub paper: Option<Json<Vec<PaperItem>>>,
    #[serde(skip)]
    pub total_marks: Option<i64>,
    /// The reviewer's overall remarks.
    pub overall_remarks: Option<String>,
    /// The end date an accommodation gave this attempt, when later than its test's.
    #[serde(skip)]
    #[schema(ignore)]
    #[sqlx(default)]
    pub accommodated_end: Option<Ts>,
    /// The version of the test the attempt started on (0: before versions were recorded).
    pub test_version: i32,
}

pub(crate) const ATTEMPT_COLUMNS: &str = r#""attemptId", "tenantId", "organisationId", "testId",
    "resolvedTestId", "userId", "attempt", "startedAt", "submittedAt", "status", "reviewStatus",
    "score", "submissionType", "result", "currentPosition", "timeSpent", "updatedBy",
    "updatedAt", "seed", "deadlineAt", "paper", "totalMarks", "overallRemarks", "accommodatedEnd", "testVersion""#;

/// Binds every column of [`ATTEMPT_COLUMNS`] of `$a`, in order.
macro_rules! bind_attempt {
    ($q:expr, $a:expr) => {{
        let a = $a;
        $q.bind(a.attempt_id)
            .bind(a.tenant_id)
            .bind(a.organisation_id)
            .bind(a.test_id)
            .bind(a.resolved_test_id)
            .bind(a.user_id)
            .bind(a.attempt)
            .bind(a.started_at)
            .bind(a.submitted_at)
            .bind(a.status)
            .bind(a.review_status)
            .bind(a.score)
            .bind(a.submission_type)
            .bind(a.result)
            .bind(a.current_position)
            .bind(a.time_spent)
            .bind(a.updated_by)
            .bind(a.updated_at)
            .bind(a.seed)
            .bind(a.deadline_at)
            .bind(&a.paper)
            .bind(a.total_marks)
            .bind(&a.overall_remarks)
            .bind(a.accommodated_end)
            .bind(a.test_version)
    }};
}
pub(crate) use bind_attempt;

/// Inserts an attempt unless its number is taken for this learner and test (`Ok(false)`):
/// the unique constraint settles concurrent starts.
#[instrument(skip_all, err(level = "warn"))]
pub async fn insert(tx: &mut Tx, a: &Attempt) -> Result<bool, sqlx::Error> {
    let sql = format!(
        r#"INSERT INTO "testAttempts" ({ATTEMPT_COLUMNS}) VALUES ({})
           ON CONFLICT ("testId", "userId", "attempt") DO NOTHING"#,
        placeholders(25)
    );
    let n = on_tx!(tx, c => {
        bind_attempt!(sqlx::query(&sql), a).execute(c).await.map(|r| r.rows_affected())
    })?;
    Ok(n == 1)
}

/// Writes the mutable state of an attempt.
#[instrument(skip_all, err(level = "warn"))]
pub async fn update(tx: &mut Tx, a: &Attempt) -> Result<(), sqlx::Error> {
    const SQL: &str = r#"UPDATE "testAttempts" SET "submittedAt" = $2, "status" = $3,
        "reviewStatus" = $4, "score" = $5, "submissionType" = $6, "result" = $7,
        "currentPosition" = $8, "timeSpent" = $9, "updatedBy" = $10, "updatedAt" = $11,
        "overallRemarks" = $14
        WHERE "attemptId" = $1 AND "tenantId" IS NOT DISTINCT FROM $12 AND "organisationId" IS NOT DISTINCT FROM $13"#;
    on_tx!(tx, c => {
        sqlx::query(SQL)
            .bind(a.attempt_id).bind(a.submitted_at).bind(a.status).bind(a.review_status)
            .bind(a.score).bind(a.submission_type).bind(a.result).bind(a.current_position)
            .bind(a.time_spent).bind(a.updated_by).bind(a.updated_at).bind(a.tenant_id)
            .bind(a.organisation_id).bind(&a.overall_remarks)
            .execute(c).await.map(|r| r.rows_affected())
    })?;
    Ok(())
}

/// The attempt, locked for the rest of `tx` (PostgreSQL; SQLite has one writer).
#[instrument(skip_all, err(level = "warn"))]
pub async fn lock(tx: &mut Tx, scope: &Scope, id: Uuid) -> Result<Option<Attempt>, sqlx::Error> {
    let (t, o) = sid(scope);
    let sql = format!(
        r#"SELECT {ATTEMPT_COLUMNS} FROM "testAttempts" WHERE "attemptId" = $1 AND "tenantId" IS NOT DISTINCT FROM $2
           AND "organisationId" IS NOT DISTINCT FROM $3{}"#,
        lock_clause(tx.backend())
    );
    on_tx!(tx, c => sqlx::query_as::<_, Attempt>(&sql).bind(Id(id)).bind(t).bind(o).fetch_optional(c).await)
}

/// The attempt.
#[instrument(skip_all, err(level = "warn"))]
pub async fn get<'a>(
    db: impl Into<Db<'a>>,
    scope: &Scope,
    id: Uuid,
) -> Result<Option<Attempt>, sqlx::Error> {
    let (t, o) = sid(scope);
    let sql = format!(
        r#"SELECT {ATTEMPT_COLUMNS} FROM "testAttempts" WHERE "attemptId" = $1 AND "tenantId" IS NOT DISTINCT FROM $2
           AND "organisationId" IS NOT DISTINCT FROM $3"#
    );
    on_db!(db.into(), c => sqlx::query_as::<_, Attempt>(&sql).bind(Id(id)).bind(t).bind(o).fetch_optional(c).await)
}

/// A learner's attempts on a test, oldest first.
#[instrument(skip_all, err(level = "warn"))]
pub async fn of_user<'a>(
    db: impl Into<Db<'a>>,
    scope: &Scope,
    test_id: Uuid,
    user_id: Uuid,
) -> Result<Vec<Attempt>, sqlx::Error> {
    let (t, o) = sid(scope);
    let sql = format!(
        r#"SELECT {ATTEMPT_COLUMNS} FROM "testAttempts" WHERE "testId" = $1 AND "userId" = $2
           AND "tenantId" IS NOT DISTINCT FROM $3 AND "organisationId" IS NOT DISTINCT FROM $4 ORDER BY "attempt""#
    );
    on_db!(db.into(), c => {
        sqlx::query_as::<_, Attempt>(&sql).bind(Id(test_id)).bind(Id(user_id)).bind(t).bind(o)
            .fetch_all(c).await
    })
}

/// In-progress attempts whose deadline has passed, any tenant, oldest deadline first.
#[instrument(skip_all, err(level = "warn"))]
pub async fn expired(store: &Store, now: Ts, limit: i64) -> Result<Vec<Attempt>, sqlx::Error> {
    let sql = format!(
        r#"SELECT {ATTEMPT_COLUMNS} FROM "testAttempts" WHERE "status" = '{in_progress}'
           AND "deadlineAt" IS NOT NULL AND "deadlineAt" <= $1
           ORDER BY "deadlineAt", "attemptId" LIMIT $2"#,
        // Inline, not bound: the deadline index covers only this status.
        in_progress = AttemptStatus::InProgress.as_str()
    );
    on_reader!(store, p => sqlx::query_as::<_, Attempt>(&sql).bind(now).bind(limit).fetch_all(p).await)
}

/// A stored answer.
#[derive(Debug, Clone, FromRow, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[sqlx(rename_all = "camelCase")]
pub struct StoredAnswer {
    #[schema(value_type = String, format = Uuid)]
    pub attempt_ans_id: Id,
    #[schema(value_type = String, format = Uuid)]
    pub attempt_id: Id,
    #[schema(value_type = String, format = Uuid)]
    pub question_id: Id,
    #[schema(value_type = Object)]
    pub answer: Json<Value>,
    #[serde(skip)]
    pub score: Option<i64>,
    #[schema(value_type = Option<String>, format = Uuid)]
    pub reviewed_by: Option<Id>,
    pub review_status: ReviewStatus,
    #[schema(value_type = Option<String>, format = DateTime)]
    pub reviewed_at: Option<Ts>,
    pub remarks: Option<String>,
    #[schema(value_type = String, format = DateTime)]
    pub created_at: Ts,
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: Ts,
}

const ANSWER_COLUMNS: &str = r#""attemptAnsId", "attemptId", "questionId", "answer", "score",
    "reviewedBy", "reviewStatus", "reviewedAt", "remarks", "createdAt", "updatedAt""#;

/// An answer to save.
#[derive(Debug, Clone, Copy)]
pub struct AnswerRow<'a> {
    pub attempt_id: Uuid,
    pub question_id: Uuid,
    pub answer: &'a Json<Value>,
    /// Hundredths; none while it waits for a reviewer.
    pub score: Option<i64>,
    pub review_status: ReviewStatus,
    /// The save's `clientSeq`, if it carried one.
    pub client_seq: Option<i64>,
}

/// What a save of an answer already stored does: replaces it (and clears its review), unless
/// the stored one was saved with a `clientSeq` at least the new one's. A save without one
/// always replaces it and keeps the stored `clientSeq`.
pub(crate) const ON_ANSWER_CONFLICT: &str = r#"ON CONFLICT ("attemptId", "questionId") DO UPDATE SET
        "answer" = excluded."answer", "score" = excluded."score",
        "reviewStatus" = excluded."reviewStatus", "reviewedBy" = NULL,
        "reviewedAt" = NULL, "updatedBy" = excluded."updatedBy",
        "updatedAt" = excluded."updatedAt",
        "clientSeq" = COALESCE(excluded."clientSeq", "testUserAnswers"."clientSeq")
    WHERE excluded."clientSeq" IS NULL OR "testUserAnswers"."clientSeq" IS NULL
        OR "testUserAnswers"."clientSeq" < excluded."clientSeq""#;

static UPSERT_ANSWER: LazyLock<String> = LazyLock::new(|| {
    format!(
        r#"INSERT INTO "testUserAnswers"
        ("attemptAnsId", "tenantId", "organisationId", "attemptId", "questionId", "answer",
         "score", "reviewStatus", "anssOrder", "createdAt", "updatedBy", "updatedAt", "clientSeq")
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8, '1', $9, $10, $9, $11)
        {ON_ANSWER_CONFLICT}"#
    )
});

/// Saves an answer: one row per (attempt, question); a repeat replaces the previous answer
/// (see [`ON_ANSWER_CONFLICT`]). Whether it was written.
#[instrument(skip_all, err(level = "warn"))]
pub async fn upsert_answer(
    tx: &mut Tx,
    scope: &Scope,
    row: AnswerRow<'_>,
    user: Uuid,
    now: Ts,
) -> Result<bool, sqlx::Error> {
    let (t, o) = sid(scope);
    let sql: &str = &UPSERT_ANSWER;
    let written = on_tx!(tx, c => {
        sqlx::query(sql)
            .bind(Id(Uuid::new_v4())).bind(t).bind(o).bind(Id(row.attempt_id))
            .bind(Id(row.question_id)).bind(row.answer).bind(row.score).bind(row.review_status)
            .bind(now).bind(Id(user)).bind(row.client_seq)
            .execute(c).await.map(|r| r.rows_affected())
    })?;
    Ok(written > 0)
}

/// The answers of an attempt, in the order they were first given.
#[instrument(skip_all, err(level = "warn"))]
pub async fn answers<'a>(
    db: impl Into<Db<'a>>,
    scope: &Scope,
    attempt_id: Uuid,
) -> Result<Vec<StoredAnswer>, sqlx::Error> {
    let (t, o) = sid(scope);
    let sql = format!(
        r#"SELECT {ANSWER_COLUMNS} FROM "testUserAnswers" WHERE "attemptId" = $1
           AND "tenantId" IS NOT DISTINCT FROM $2 AND "organisationId" IS NOT DISTINCT FROM $3 ORDER BY "createdAt", "attemptAnsId""#
    );
    on_db!(db.into(), c => {
        sqlx::query_as::<_, StoredAnswer>(&sql).bind(Id(attempt_id)).bind(t).bind(o).fetch_all(c).await
    })
}

/// The stored answers of several attempts (one statement), each attempt's in the order of
/// [`answers`].
#[instrument(skip_all, err(level = "warn"))]
pub async fn answers_of_many<'a>(
    db: impl Into<Db<'a>>,
    scope: &Scope,
    attempt_ids: &[Uuid],
) -> Result<Vec<StoredAnswer>, sqlx::Error> {
    use super::sql::Sql;
    let db = db.into();
    if attempt_ids.is_empty() {
        return Ok(Vec::new());
    }
    let mut sql = Sql::new(
        db.backend(),
        format!(r#"SELECT {ANSWER_COLUMNS} FROM "testUserAnswers""#),
    );
    sql.where_scope_filter(scope)
        .and_in(r#""attemptId""#, attempt_ids)
        .push(r#" ORDER BY "createdAt", "attemptAnsId""#);
    sql.fetch_rows::<StoredAnswer>(db).await
}

/// A reviewer's score for one answer.
#[derive(Debug, Clone, Copy)]
pub struct AnswerReview<'a> {
    pub attempt_id: Uuid,
    pub question_id: Uuid,
    /// Hundredths.
    pub score: i64,
    /// Kept as they were when `None`.
    pub remarks: Option<&'a str>,
}

/// Records a reviewer's score for one answer. `Ok(false)` when the attempt has no answer to
/// that question.
#[instrument(skip_all, err(level = "warn"))]
pub async fn review_answer(
    tx: &mut Tx,
    scope: &Scope,
    review: AnswerReview<'_>,
    reviewer: Uuid,
    now: Ts,
) -> Result<bool, sqlx::Error> {
    let (t, o) = sid(scope);
    const SQL: &str = r#"UPDATE "testUserAnswers" SET "score" = $1,
        "remarks" = COALESCE($2, "remarks"), "reviewedBy" = $3, "reviewStatus" = $9,
        "reviewedAt" = $4, "updatedBy" = $3, "updatedAt" = $4
        WHERE "attemptId" = $5 AND "questionId" = $6 AND "tenantId" IS NOT DISTINCT FROM $7 AND "organisationId" IS NOT DISTINCT FROM $8"#;
    let n = on_tx!(tx, c => {
        sqlx::query(SQL).bind(review.score).bind(review.remarks).bind(Id(reviewer)).bind(now)
            .bind(Id(review.attempt_id)).bind(Id(review.question_id)).bind(t).bind(o)
            .bind(ReviewStatus::Reviewed)
            .execute(c).await.map(|r| r.rows_affected())
    })?;
    Ok(n > 0)
}

/// Submitted attempts with answers waiting for a reviewer, oldest submission first, and
/// their total.
#[instrument(skip_all, err(level = "warn"))]
pub async fn pending_review(
    store: &Store,
    scope: &Scope,
    limit: i64,
    offset: i64,
) -> Result<(Vec<Attempt>, i64), sqlx::Error> {
    let (t, o) = sid(scope);
    const WHERE: &str = r#" WHERE a."tenantId" IS NOT DISTINCT FROM $1 AND a."organisationId" IS NOT DISTINCT FROM $2 AND a."status" = $3
        AND a."reviewStatus" IN ($4, $5)
        AND EXISTS (SELECT 1 FROM "testUserAnswers" u WHERE u."attemptId" = a."attemptId"
                    AND u."reviewStatus" = $4)"#;
    let columns = ATTEMPT_COLUMNS
        .split(',')
        .map(|c| format!("a.{}", c.trim()))
        .collect::<Vec<_>>()
        .join(", ");
    let page = format!(
        r#"SELECT {columns} FROM "testAttempts" a{WHERE}
           ORDER BY a."submittedAt", a."attemptId" LIMIT $6 OFFSET $7"#
    );
    let count = format!(r#"SELECT COUNT(*) FROM "testAttempts" a{WHERE}"#);
    let (submitted, pending, under_review) = (
        AttemptStatus::Submitted,
        ReviewStatus::Pending,
        ReviewStatus::UnderReview,
    );
    let total: i64 = on_reader!(store, p => {
        sqlx::query_scalar(&count).bind(t).bind(o).bind(submitted).bind(pending)
            .bind(under_review).fetch_one(p).await
    })?;
    let rows = on_reader!(store, p => {
        sqlx::query_as::<_, Attempt>(&page).bind(t).bind(o).bind(submitted).bind(pending)
            .bind(under_review).bind(limit).bind(offset).fetch_all(p).await
    })?;
    Ok((rows, total))
}

/// The latest attempt (highest number) of a learner on a test, with status `S` when
/// `submitted_only`.
#[instrument(skip_all, err(level = "warn"))]
pub async fn latest<'a>(
    db: impl Into<Db<'a>>,
    scope: &Scope,
    test_id: Uuid,
    user_id: Uuid,
    submitted_only: bool,
) -> Result<Option<Attempt>, sqlx::Error> {
    let all = of_user(db, scope, test_id, user_id).await?;
    Ok(all
        .into_iter()
        .rev()
        .find(|a| !submitted_only || a.status == AttemptStatus::Submitted))
}

/// A page of the learners with attempts on a test (optionally only `users`), ordered by
/// user id, and how many there are.
#[instrument(skip_all, err(level = "warn"))]
pub async fn learners_of(
    store: &Store,
    scope: &Scope,
    test_id: Uuid,
    users: &[Uuid],
    limit: i64,
    offset: i64,
) -> Result<(Vec<Uuid>, i64), sqlx::Error> {
    use super::sql::{Arg, Sql};
    let filter = |sql: &mut Sql| {
        sql.where_scope_filter(scope)
            .push(r#" AND "testId" = "#)
            .bind(Arg::Id(Id(test_id)));
        if !users.is_empty() {
            sql.and_in(r#""userId""#, users);
        }
    };
    let mut count = Sql::new(
        store.backend(),
        r#"SELECT COUNT(DISTINCT "userId") FROM "testAttempts""#,
    );
    filter(&mut count);
    let mut page = Sql::new(
        store.backend(),
        r#"SELECT DISTINCT "userId" FROM "testAttempts""#,
    );
    filter(&mut page);
    page.push(r#" ORDER BY "userId""#).page(limit, offset);
    let total = count.fetch_count(store).await?;
    let ids: Vec<Id> = on_reader!(store, p => crate::bind_args!(sqlx::query_scalar::<_, Id>(&page.text), &page.args).fetch_all(p).await)?;
    Ok((ids.into_iter().map(|i| i.0).collect(), total))
}

/// A recorded save with an `Idempotency-Key`: the hash of its request and its response.
#[derive(Debug, FromRow)]
#[sqlx(rename_all = "camelCase")]
pub struct SaveKey {
    pub request_hash: String,
    pub response: Json<Value>,
}

/// The save recorded under `key` for the attempt, if any.
#[instrument(skip_all, err(level = "warn"))]
pub async fn save_key(
    tx: &mut Tx,
    scope: &Scope,
    attempt_id: Uuid,
    key: &str,
) -> Result<Option<SaveKey>, sqlx::Error> {
    let (t, o) = sid(scope);
    const SQL: &str = r#"SELECT "requestHash", "response" FROM "answerSaveKeys"
        WHERE "attemptId" = $1 AND "key" = $2
          AND "tenantId" IS NOT DISTINCT FROM $3 AND "organisationId" IS NOT DISTINCT FROM $4"#;
    on_tx!(tx, c => {
        sqlx::query_as::<_, SaveKey>(SQL).bind(Id(attempt_id)).bind(key).bind(t).bind(o)
            .fetch_optional(c).await
    })
}

/// Records the save made under `key` for the attempt.
#[instrument(skip_all, err(level = "warn"))]
pub async fn record_save_key(
    tx: &mut Tx,
    scope: &Scope,
    attempt_id: Uuid,
    key: &str,
    saved: &SaveKey,
    now: Ts,
) -> Result<(), sqlx::Error> {
    let (t, o) = sid(scope);
    const SQL: &str = r#"INSERT INTO "answerSaveKeys"
        ("attemptId", "key", "tenantId", "organisationId", "requestHash", "response", "createdAt")
        VALUES ($1, $2, $3, $4, $5, $6, $7)"#;
    on_tx!(tx, c => {
        sqlx::query(SQL).bind(Id(attempt_id)).bind(key).bind(t).bind(o)
            .bind(&saved.request_hash).bind(&saved.response).bind(now)
            .execute(c).await.map(|_| ())
    })
}
