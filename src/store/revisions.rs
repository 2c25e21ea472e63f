//! SQL for the earlier states of questions that attempts hold ("questionRevisions"), and for
//! the published versions of tests ("testVersions").

use serde::{Deserialize, Serialize};
use sqlx::FromRow;
use sqlx::types::Json;
use tracing::instrument;
use utoipa::ToSchema;
use uuid::Uuid;

use super::db::sid;
use super::questions::{Question, QuestionOption};
use super::sql::Sql;
use super::{Db, Id, Ts, Tx};
use crate::domain::enums::GradingType;
use crate::domain::ids::Scope;
use crate::domain::marks::Marks;
use crate::on_tx;

/// Keeps `q` and its `options` as they are now, as revision `q.revision` (once: a revision
/// already kept stays as it was).
#[instrument(skip_all, err(level = "warn"))]
pub async fn keep(
    tx: &mut Tx,
    q: &Question,
    options: &[QuestionOption],
    now: Ts,
) -> Result<(), sqlx::Error> {
    const SQL: &str = r#"INSERT INTO "questionRevisions" ("questionId", "revision", "tenantId",
        "organisationId", "question", "options", "createdAt") VALUES ($1, $2, $3, $4, $5, $6, $7)
        ON CONFLICT ("questionId", "revision") DO NOTHING"#;
    on_tx!(tx, c => {
        sqlx::query(SQL)
            .bind(q.question_id).bind(q.revision).bind(q.tenant_id).bind(q.organisation_id)
            .bind(Json(q)).bind(Json(options)).bind(now)
            .execute(c).await.map(|r| r.rows_affected())
    })?;
    Ok(())
}

#[derive(FromRow)]
struct Kept {
    question: Json<Question>,
    options: Json<Vec<QuestionOption>>,
}

/// Every kept revision of these questions, with its options.
#[instrument(skip_all, err(level = "warn"))]
pub async fn of<'a>(
    db: impl Into<Db<'a>>,
    scope: &Scope,
    ids: &[Uuid],
) -> Result<Vec<(Question, Vec<QuestionOption>)>, sqlx::Error> {
    let db = db.into();
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let mut sql = Sql::new(
        db.backend(),
        r#"SELECT "question", "options" FROM "questionRevisions""#,
    );
    sql.where_scope_filter(scope).and_in(r#""questionId""#, ids);
    Ok(sql
        .fetch_rows::<Kept>(db)
        .await?
        .into_iter()
        .map(|k| (k.question.0, k.options.0))
        .collect())
}

/// A question of a version, at the revision the version holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Pin {
    pub question_id: Uuid,
    pub revision: i32,
}

/// A rule of a version, as it drew.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RuleAt {
    pub rule_id: Uuid,
    pub name: String,
    pub section_id: Option<Uuid>,
    pub number_of_questions: i32,
    #[schema(value_type = Object)]
    pub criteria: serde_json::Value,
    pub selection_mode: String,
    pub selection_strategy: String,
    #[schema(value_type = Option<f64>)]
    pub min_marks: Option<Marks>,
    #[schema(value_type = Option<f64>)]
    pub max_marks: Option<Marks>,
}

/// A published version of a test: what it scores, as it was published.
#[derive(Debug, Clone, FromRow, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[sqlx(rename_all = "camelCase")]
pub struct TestVersion {
    #[schema(value_type = String, format = Uuid)]
    pub test_id: Id,
    pub version: i32,
    #[serde(skip)]
    pub tenant_id: Id,
    #[serde(skip)]
    pub organisation_id: Id,
    #[sqlx(try_from = "String")]
    pub grading_type: GradingType,
    #[sqlx(try_from = "i64")]
    #[schema(value_type = f64)]
    pub total_marks: Marks,
    #[sqlx(try_from = "i64")]
    #[schema(value_type = f64)]
    pub passing_marks: Marks,
    pub question_count: i32,
    /// A plain test's questions, at the revision each had (empty for a rule-based test).
    #[schema(value_type = Vec<Pin>)]
    pub questions: Json<Vec<Pin>>,
    /// A rule-based test's active rules (empty for a plain test).
    #[schema(value_type = Vec<RuleAt>)]
    pub rules: Json<Vec<RuleAt>>,
    #[schema(value_type = String, format = Uuid)]
    pub published_by: Id,
    #[schema(value_type = String, format = DateTime)]
    pub published_at: Ts,
}

const VERSION_COLUMNS: &str = r#""testId", "version", "tenantId", "organisationId",
    "gradingType", "totalMarks", "passingMarks", "questionCount", "questions", "rules",
    "publishedBy", "publishedAt""#;

/// Records a version.
#[instrument(skip_all, err(level = "warn"))]
pub async fn insert_version(tx: &mut Tx, v: &TestVersion) -> Result<(), sqlx::Error> {
    let sql = format!(
        r#"INSERT INTO "testVersions" ({VERSION_COLUMNS}) VALUES ({})"#,
        super::sql::placeholders(12)
    );
    on_tx!(tx, c => {
        sqlx::query(&sql)
            .bind(v.test_id).bind(v.version).bind(v.tenant_id).bind(v.organisation_id)
            .bind(v.grading_type.as_str()).bind(v.total_marks.hundredths())
            .bind(v.passing_marks.hundredths()).bind(v.question_count).bind(&v.questions)
            .bind(&v.rules).bind(v.published_by).bind(v.published_at)
            .execute(c).await.map(|r| r.rows_affected())
    })?;
    Ok(())
}

/// The versions of a test, newest first.
#[instrument(skip_all, err(level = "warn"))]
pub async fn versions<'a>(
    db: impl Into<Db<'a>>,
    scope: &Scope,
    test_id: Uuid,
) -> Result<Vec<TestVersion>, sqlx::Error> {
    let db = db.into();
    let mut sql = Sql::new(
        db.backend(),
        format!(r#"SELECT {VERSION_COLUMNS} FROM "testVersions""#),
    );
    sql.where_scope_filter(scope)
        .and_in(r#""testId""#, &[test_id])
        .push(r#" ORDER BY "version" DESC"#);
    sql.fetch_rows::<TestVersion>(db).await
}

/// One version of a test.
#[instrument(skip_all, err(level = "warn"))]
pub async fn version(
    tx: &mut Tx,
    scope: &Scope,
    test_id: Uuid,
    version: i32,
) -> Result<Option<TestVersion>, sqlx::Error> {
    let (t, o) = sid(scope);
    let sql = format!(
        r#"SELECT {VERSION_COLUMNS} FROM "testVersions" WHERE "testId" = $1 AND "version" = $2
           AND "tenantId" IS NOT DISTINCT FROM $3 AND "organisationId" IS NOT DISTINCT FROM $4"#
    );
    on_tx!(tx, c => {
        sqlx::query_as::<_, TestVersion>(&sql).bind(Id(test_id)).bind(version).bind(t).bind(o)
            .fetch_optional(c).await
    })
}
