//! SQL for regrades: the submitted attempts of a test page by page, an answer's and an
//! attempt's new scores, and the history of what each regrade changed.

use serde::Serialize;
use sqlx::FromRow;
use sqlx::types::Json;
use tracing::instrument;
use utoipa::ToSchema;
use uuid::Uuid;

use super::attempts::{ATTEMPT_COLUMNS, Attempt, PaperItem};
use super::db::sid;
use super::sql::{Arg, Sql, lock_clause};
use super::{Db, Id, Ts, Tx};
use crate::domain::enums::{AttemptResult, AttemptStatus, ReviewStatus};
use crate::domain::ids::Scope;
use crate::{bind_args, on_tx};

/// Which submitted attempts of a test a regrade takes.
#[derive(Debug, Clone, Default)]
pub struct Selection {
    /// Only attempts started on this version.
    pub version: Option<i32>,
    /// Only these attempts (empty: all).
    pub attempt_ids: Vec<Uuid>,
}

/// Up to `limit` submitted attempts of `test_id` after `after` (by id), in id order; locked
/// for the rest of `tx` when `lock` (PostgreSQL; SQLite has one writer).
#[instrument(skip_all, err(level = "warn"))]
pub async fn submitted_page<'a>(
    db: impl Into<Db<'a>>,
    scope: &Scope,
    test_id: Uuid,
    selection: &Selection,
    after: Option<Uuid>,
    limit: i64,
    lock: bool,
) -> Result<Vec<Attempt>, sqlx::Error> {
    let db = db.into();
    let mut sql = Sql::new(
        db.backend(),
        format!(r#"SELECT {ATTEMPT_COLUMNS} FROM "testAttempts""#),
    );
    sql.where_scope_filter(scope)
        .push(r#" AND "testId" = "#)
        .bind(Arg::Id(Id(test_id)))
        .push(r#" AND "status" = "#)
        .bind(Arg::Text(AttemptStatus::Submitted.as_str().to_string()));
    if let Some(v) = selection.version {
        sql.push(r#" AND "testVersion" = "#)
            .bind(Arg::Int(i64::from(v)));
    }
    if !selection.attempt_ids.is_empty() {
        sql.and_in(r#""attemptId""#, &selection.attempt_ids);
    }
    if let Some(a) = after {
        sql.push(r#" AND "attemptId" > "#).bind(Arg::Id(Id(a)));
    }
    sql.push(r#" ORDER BY "attemptId" LIMIT "#)
        .bind(Arg::Int(limit));
    if lock {
        sql.push(lock_clause(db.backend()));
    }
    sql.fetch_rows::<Attempt>(db).await
}

/// Sets one answer's score and review status.
#[instrument(skip_all, err(level = "warn"))]
pub async fn set_answer_score(
    tx: &mut Tx,
    scope: &Scope,
    attempt_id: Uuid,
    question_id: Uuid,
    score: Option<i64>,
    review: ReviewStatus,
    now: Ts,
) -> Result<(), sqlx::Error> {
    let (t, o) = sid(scope);
    const SQL: &str = r#"UPDATE "testUserAnswers" SET "score" = $1, "reviewStatus" = $2,
        "updatedAt" = $3 WHERE "attemptId" = $4 AND "questionId" = $5
        AND "tenantId" IS NOT DISTINCT FROM $6 AND "organisationId" IS NOT DISTINCT FROM $7"#;
    on_tx!(tx, c => {
        sqlx::query(SQL).bind(score).bind(review).bind(now).bind(Id(attempt_id))
            .bind(Id(question_id)).bind(t).bind(o)
            .execute(c).await.map(|r| r.rows_affected())
    })?;
    Ok(())
}

/// Writes what a regrade changes on an attempt: its score, result, review status, total
/// marks, the revisions its paper holds and its version.
#[instrument(skip_all, err(level = "warn"))]
pub async fn set_attempt(tx: &mut Tx, a: &Attempt) -> Result<(), sqlx::Error> {
    const SQL: &str = r#"UPDATE "testAttempts" SET "score" = $2, "result" = $3,
        "reviewStatus" = $4, "totalMarks" = $5, "paper" = $6, "testVersion" = $7,
        "updatedBy" = $8, "updatedAt" = $9
        WHERE "attemptId" = $1 AND "tenantId" IS NOT DISTINCT FROM $10 AND "organisationId" IS NOT DISTINCT FROM $11"#;
    on_tx!(tx, c => {
        sqlx::query(SQL)
            .bind(a.attempt_id).bind(a.score).bind(a.result).bind(a.review_status)
            .bind(a.total_marks).bind(&a.paper).bind(a.test_version).bind(a.updated_by)
            .bind(a.updated_at).bind(a.tenant_id).bind(a.organisation_id)
            .execute(c).await.map(|r| r.rows_affected())
    })?;
    Ok(())
}

/// What one regrade changed on one attempt.
#[derive(Debug, Clone, FromRow, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[sqlx(rename_all = "camelCase")]
pub struct RegradeRecord {
    #[schema(value_type = String, format = Uuid)]
    pub regrade_id: Id,
    #[schema(value_type = String, format = Uuid)]
    pub attempt_id: Id,
    #[schema(value_type = String, format = Uuid)]
    pub test_id: Id,
    #[schema(value_type = String, format = Uuid)]
    pub user_id: Id,
    #[serde(skip)]
    pub tenant_id: Id,
    #[serde(skip)]
    pub organisation_id: Id,
    pub from_version: i32,
    pub to_version: i32,
    /// Hundredths on the wire as marks (see [`crate::domain::marks::Marks`]).
    #[serde(serialize_with = "marks")]
    #[schema(value_type = Option<f64>)]
    pub old_score: Option<i64>,
    #[serde(serialize_with = "marks")]
    #[schema(value_type = Option<f64>)]
    pub new_score: Option<i64>,
    pub old_result: Option<AttemptResult>,
    pub new_result: Option<AttemptResult>,
    pub reason: Option<String>,
    #[schema(value_type = String, format = Uuid)]
    pub regraded_by: Id,
    #[schema(value_type = String, format = DateTime)]
    pub regraded_at: Ts,
}

fn marks<S: serde::Serializer>(h: &Option<i64>, s: S) -> Result<S::Ok, S::Error> {
    use serde::Serialize;
    h.and_then(|h| crate::domain::marks::Marks::from_hundredths(h).ok())
        .serialize(s)
}

const RECORD_COLUMNS: &str = r#""regradeId", "attemptId", "testId", "userId", "tenantId",
    "organisationId", "fromVersion", "toVersion", "oldScore", "newScore", "oldResult",
    "newResult", "reason", "regradedBy", "regradedAt""#;

/// Records what a regrade changed on an attempt.
#[instrument(skip_all, err(level = "warn"))]
pub async fn record(tx: &mut Tx, r: &RegradeRecord) -> Result<(), sqlx::Error> {
    let sql = format!(
        r#"INSERT INTO "attemptRegrades" ({RECORD_COLUMNS}) VALUES ({})"#,
        super::sql::placeholders(15)
    );
    on_tx!(tx, c => {
        sqlx::query(&sql)
            .bind(r.regrade_id).bind(r.attempt_id).bind(r.test_id).bind(r.user_id)
            .bind(r.tenant_id).bind(r.organisation_id).bind(r.from_version).bind(r.to_version)
            .bind(r.old_score).bind(r.new_score).bind(r.old_result).bind(r.new_result)
            .bind(&r.reason).bind(r.regraded_by).bind(r.regraded_at)
            .execute(c).await.map(|r| r.rows_affected())
    })?;
    Ok(())
}

/// The regrades of a test's attempts, newest first, a page of them, and their total.
#[instrument(skip_all, err(level = "warn"))]
pub async fn history<'a>(
    db: impl Into<Db<'a>>,
    scope: &Scope,
    test_id: Uuid,
    limit: i64,
    offset: i64,
) -> Result<(Vec<RegradeRecord>, i64), sqlx::Error> {
    let mut db = db.into();
    let mut sql = Sql::new(
        db.backend(),
        format!(r#"SELECT {RECORD_COLUMNS} FROM "attemptRegrades""#),
    );
    sql.where_scope(scope)
        .push(r#" AND "testId" = "#)
        .bind(Arg::Id(Id(test_id)))
        .push(r#" ORDER BY "regradedAt" DESC, "regradeId""#)
        .page(limit, offset);
    let rows = sql.fetch_rows::<RegradeRecord>(db.reborrow()).await?;
    let mut count = Sql::new(db.backend(), r#"SELECT COUNT(*) FROM "attemptRegrades""#);
    count
        .where_scope(scope)
        .push(r#" AND "testId" = "#)
        .bind(Arg::Id(Id(test_id)));
    let total: i64 = crate::on_db!(db, c => {
        bind_args!(sqlx::query_scalar::<_, i64>(&count.text), &count.args).fetch_one(c).await
    })?;
    Ok((rows, total))
}

/// The paper with each question at `revisions` (those not named keep theirs).
pub fn repinned(
    paper: &[PaperItem],
    revisions: &std::collections::HashMap<Uuid, i32>,
) -> Json<Vec<PaperItem>> {
    Json(
        paper
            .iter()
            .map(|p| PaperItem {
                revision: revisions.get(&p.question_id).copied().or(p.revision),
                ..p.clone()
            })
            .collect(),
    )
}
