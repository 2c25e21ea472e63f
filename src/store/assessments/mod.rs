//! SQL for tests, their sections, and the links from tests to questions. Confined to a scope.

use serde::Serialize;
use sqlx::FromRow;
use tracing::instrument;
use utoipa::ToSchema;
use uuid::Uuid;

use super::db::{delete_scoped, sid};
use super::sql::{Arg, Listing, Sql, assignments, like_contains, lock_clause, placeholders};
use super::{Backend, Db, Id, Store, Ts, Tx};
use crate::domain::enums::{
    AttemptsGrading, GradingType, QuestionType, SectionStatus, TestStatus, TestType,
};
use crate::domain::ids::Scope;
use crate::domain::marks::Marks;
use crate::{on_db, on_reader, on_tx};

mod links;
mod sections;
pub use links::*;
pub use sections::*;

/// A test as stored and as returned to authors.
#[derive(Debug, Clone, PartialEq, FromRow, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[sqlx(rename_all = "camelCase")]
pub struct Test {
    #[schema(value_type = String, format = Uuid)]
    pub test_id: Id,
    #[schema(value_type = Option<String>, format = Uuid)]
    pub parent_id: Option<Id>,
    #[sqlx(rename = "type", try_from = "String")]
    #[serde(rename = "type")]
    pub test_type: TestType,
    #[schema(value_type = String, format = Uuid)]
    pub tenant_id: Id,
    #[schema(value_type = String, format = Uuid)]
    pub organisation_id: Id,
    pub ordering: i32,
    pub attempts: i32,
    #[sqlx(try_from = "String")]
    pub attempts_grading: AttemptsGrading,
    #[sqlx(try_from = "String")]
    pub status: TestStatus,
    pub title: String,
    pub alias: Option<String>,
    pub description: Option<String>,
    pub reviewers: Option<String>,
    pub image: Option<String>,
    pub show_time: bool,
    /// Seconds.
    pub time_duration: Option<i32>,
    pub show_time_finished: bool,
    pub time_finished_duration: Option<i32>,
    #[sqlx(try_from = "i64")]
    #[schema(value_type = f64)]
    pub total_marks: Marks,
    #[sqlx(try_from = "i64")]
    #[schema(value_type = f64)]
    pub passing_marks: Marks,
    #[schema(value_type = Option<String>, format = DateTime)]
    pub start_date: Option<Ts>,
    #[schema(value_type = Option<String>, format = DateTime)]
    pub end_date: Option<Ts>,
    pub answer_sheet: bool,
    pub show_correct_answer: bool,
    pub print_answersheet: bool,
    pub questions_shuffle: bool,
    pub answers_shuffle: bool,
    #[sqlx(try_from = "String")]
    pub grading_type: GradingType,
    pub is_objective: bool,
    pub show_thankyou_page: bool,
    pub show_all_questions: bool,
    pub show_questions_overview: bool,
    pub pagination_limit: Option<i32>,
    pub allow_resubmission: bool,
    #[schema(value_type = Option<String>, format = Uuid)]
    pub checked_out: Option<Id>,
    #[schema(value_type = Option<String>, format = DateTime)]
    pub checked_out_time: Option<Ts>,
    pub context_type: Option<String>,
    #[schema(value_type = Option<String>, format = Uuid)]
    pub context_id: Option<Id>,
    #[schema(value_type = String, format = Uuid)]
    pub created_by: Id,
    #[schema(value_type = String, format = DateTime)]
    pub created_at: Ts,
    #[schema(value_type = Option<String>, format = Uuid)]
    pub updated_by: Option<Id>,
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: Ts,
    /// `totalMarks` came from publishing, not from the author: recomputed on each publish.
    #[serde(skip)]
    pub total_marks_computed: bool,
    /// The latest published version (see `GET /tests/{id}/versions`); 0 before the first.
    pub version: i32,
}

const TEST_COLUMNS: &str = r#""testId", "parentId", "type", "tenantId", "organisationId",
    "ordering", "attempts", "attemptsGrading", "status", "title", "alias", "description",
    "reviewers", "image", "showTime", "timeDuration", "showTimeFinished", "timeFinishedDuration",
    "totalMarks", "passingMarks", "startDate", "endDate", "answerSheet", "showCorrectAnswer",
    "printAnswersheet", "questionsShuffle", "answersShuffle", "gradingType", "isObjective",
    "showThankyouPage", "showAllQuestions", "showQuestionsOverview", "paginationLimit",
    "allowResubmission", "checkedOut", "checkedOutTime", "contextType", "contextId",
    "createdBy", "createdAt", "updatedBy", "updatedAt", "totalMarksComputed", "version""#;

macro_rules! bind_test {
    ($q:expr, $t:expr) => {
        $q.bind($t.test_id)
            .bind($t.parent_id)
            .bind($t.test_type.as_str())
            .bind($t.tenant_id)
            .bind($t.organisation_id)
            .bind($t.ordering)
            .bind($t.attempts)
            .bind($t.attempts_grading.as_str())
            .bind($t.status.as_str())
            .bind(&$t.title)
            .bind(&$t.alias)
            .bind(&$t.description)
            .bind(&$t.reviewers)
            .bind(&$t.image)
            .bind($t.show_time)
            .bind($t.time_duration)
            .bind($t.show_time_finished)
            .bind($t.time_finished_duration)
            .bind($t.total_marks.hundredths())
            .bind($t.passing_marks.hundredths())
            .bind($t.start_date)
            .bind($t.end_date)
            .bind($t.answer_sheet)
            .bind($t.show_correct_answer)
            .bind($t.print_answersheet)
            .bind($t.questions_shuffle)
            .bind($t.answers_shuffle)
            .bind($t.grading_type.as_str())
            .bind($t.is_objective)
            .bind($t.show_thankyou_page)
            .bind($t.show_all_questions)
            .bind($t.show_questions_overview)
            .bind($t.pagination_limit)
            .bind($t.allow_resubmission)
            .bind($t.checked_out)
            .bind($t.checked_out_time)
            .bind(&$t.context_type)
            .bind($t.context_id)
            .bind($t.created_by)
            .bind($t.created_at)
            .bind($t.updated_by)
            .bind($t.updated_at)
            .bind($t.total_marks_computed)
            .bind($t.version)
    };
}

/// Inserts a test unless its alias is taken in the scope. `Ok(false)`: alias taken.
#[instrument(skip_all, err(level = "warn"))]
pub async fn insert(tx: &mut Tx, t: &Test) -> Result<bool, sqlx::Error> {
    let sql = format!(
        r#"INSERT INTO "tests" ({TEST_COLUMNS}) VALUES ({})
           ON CONFLICT ("tenantId", "organisationId", "alias") DO NOTHING"#,
        placeholders(44)
    );
    let n = on_tx!(tx, c => {
        bind_test!(sqlx::query(&sql), t).execute(c).await.map(|r| r.rows_affected())
    })?;
    Ok(n == 1)
}

/// Rewrites every column of a test (the caller merged the patch). A taken alias is a unique
/// violation.
#[instrument(skip_all, err(level = "warn"))]
pub async fn update(tx: &mut Tx, t: &Test) -> Result<(), sqlx::Error> {
    let sets = assignments(TEST_COLUMNS);
    let sql = format!(
        r#"UPDATE "tests" SET {sets} WHERE "testId" = $1 AND "tenantId" IS NOT DISTINCT FROM $4
           AND "organisationId" IS NOT DISTINCT FROM $5"#
    );
    on_tx!(tx, c => {
        bind_test!(sqlx::query(&sql), t).execute(c).await.map(|r| r.rows_affected())
    })?;
    tx.mark_test_changed(t.test_id.0);
    Ok(())
}

fn select_test(backend: Backend, lock: bool) -> String {
    let lock = if lock { lock_clause(backend) } else { "" };
    format!(
        r#"SELECT {TEST_COLUMNS} FROM "tests" WHERE "testId" = $1 AND "tenantId" IS NOT DISTINCT FROM $2
           AND "organisationId" IS NOT DISTINCT FROM $3{lock}"#
    )
}

/// The test (any status), locked within `tx` on PostgreSQL: every change to a test's
/// structure takes this lock first, so publishing and editing serialise.
#[instrument(skip_all, err(level = "warn"))]
pub async fn lock(tx: &mut Tx, scope: &Scope, id: Uuid) -> Result<Option<Test>, sqlx::Error> {
    let (t, o) = sid(scope);
    let sql = select_test(tx.backend(), true);
    on_tx!(tx, c => {
        sqlx::query_as::<_, Test>(&sql).bind(Id(id)).bind(t).bind(o).fetch_optional(c).await
    })
}

/// The test (any status).
#[instrument(skip_all, err(level = "warn"))]
pub async fn get<'a>(
    db: impl Into<Db<'a>>,
    scope: &Scope,
    id: Uuid,
) -> Result<Option<Test>, sqlx::Error> {
    let db = db.into();
    let (t, o) = sid(scope);
    let sql = select_test(db.backend(), false);
    on_db!(db, p => {
        sqlx::query_as::<_, Test>(&sql).bind(Id(id)).bind(t).bind(o).fetch_optional(p).await
    })
}

/// Deletes the test row (hard delete); sections, links and rules cascade.
#[instrument(skip_all, err(level = "warn"))]
pub async fn delete(tx: &mut Tx, scope: &Scope, id: Uuid) -> Result<(), sqlx::Error> {
    delete_scoped(tx, r#""tests""#, r#""testId""#, scope, id).await?;
    tx.mark_test_changed(id);
    Ok(())
}

/// Number of attempts on a test (any status).
#[instrument(skip_all, err(level = "warn"))]
pub async fn attempt_count(tx: &mut Tx, scope: &Scope, test_id: Uuid) -> Result<i64, sqlx::Error> {
    let (t, o) = sid(scope);
    on_tx!(tx, c => {
        sqlx::query_scalar::<_, i64>(r#"SELECT COUNT(*) FROM "testAttempts" WHERE "testId" = $1
            AND "tenantId" IS NOT DISTINCT FROM $2 AND "organisationId" IS NOT DISTINCT FROM $3"#)
            .bind(Id(test_id)).bind(t).bind(o).fetch_one(c).await
    })
}

/// Columns a test list may be sorted by (`sortBy` names them unquoted).
pub const TEST_SORT_COLUMNS: &[&str] = &[
    r#""createdAt""#,
    r#""updatedAt""#,
    r#""title""#,
    r#""ordering""#,
    r#""totalMarks""#,
    r#""startDate""#,
    r#""endDate""#,
    r#""status""#,
    r#""type""#,
];

/// A comparison on a date column (`startDate[gte]=...`).
#[derive(Debug, Clone, Copy)]
pub enum DateOp {
    Gt,
    Gte,
    Lt,
    Lte,
    Eq,
}

/// Filters of the test list.
#[derive(Debug, Clone, Default)]
pub struct TestFilter {
    pub search: Option<String>,
    pub status: Option<TestStatus>,
    pub test_type: Option<TestType>,
    pub min_marks: Option<Marks>,
    pub max_marks: Option<Marks>,
    pub context_type: Option<String>,
    pub context_ids: Vec<Uuid>,
    pub start_date: Vec<(DateOp, Ts)>,
    pub end_date: Vec<(DateOp, Ts)>,
}

fn push_test_filter(sql: &mut Sql, scope: &Scope, f: &TestFilter) {
    sql.where_scope(scope);
    if let Some(s) = f.search.as_deref().filter(|s| !s.trim().is_empty()) {
        let pattern = like_contains(&s.trim().to_lowercase());
        sql.push(r#" AND (LOWER("title") LIKE "#)
            .bind(Arg::Text(pattern.clone()))
            .push(r#" ESCAPE '\' OR LOWER(COALESCE("description", '')) LIKE "#)
            .bind(Arg::Text(pattern))
            .push(r#" ESCAPE '\')"#);
    }
    match f.status {
        Some(s) => {
            sql.push(r#" AND "status" = "#)
                .bind(Arg::Text(s.as_str().into()));
        }
        None => {
            sql.push(r#" AND "status" <> 'archived'"#);
        }
    }
    if let Some(tt) = f.test_type {
        sql.push(r#" AND "type" = "#)
            .bind(Arg::Text(tt.as_str().into()));
    }
    if let Some(m) = f.min_marks {
        sql.push(r#" AND "totalMarks" >= "#)
            .bind(Arg::Int(m.hundredths()));
    }
    if let Some(m) = f.max_marks {
        sql.push(r#" AND "totalMarks" <= "#)
            .bind(Arg::Int(m.hundredths()));
    }
    match (&f.context_type, f.context_ids.is_empty()) {
        (Some(ct), true) => {
            sql.push(r#" AND "contextType" = "#)
                .bind(Arg::Text(ct.clone()))
                .push(r#" AND "contextId" IS NULL"#);
        }
        (Some(ct), false) => {
            sql.push(r#" AND "contextType" = "#)
                .bind(Arg::Text(ct.clone()))
                .and_in(r#""contextId""#, &f.context_ids);
        }
        (None, false) => {
            sql.and_in(r#""contextId""#, &f.context_ids);
        }
        (None, true) => {}
    }
    for (col, ops) in [
        (r#""startDate""#, &f.start_date),
        (r#""endDate""#, &f.end_date),
    ] {
        for (op, ts) in ops {
            let op = match op {
                DateOp::Gt => ">",
                DateOp::Gte => ">=",
                DateOp::Lt => "<",
                DateOp::Lte => "<=",
                DateOp::Eq => "=",
            };
            sql.push(&format!(" AND {col} {op} ")).bind(Arg::Ts(*ts));
        }
    }
}

/// One page of tests and the total count.
#[instrument(skip_all, err(level = "warn"))]
pub async fn list(
    store: &Store,
    scope: &Scope,
    filter: &TestFilter,
    order_by: &str,
    descending: bool,
    limit: i64,
    offset: i64,
) -> Result<(Vec<Test>, i64), sqlx::Error> {
    const TESTS: Listing = Listing {
        table: r#""tests""#,
        columns: TEST_COLUMNS,
        key: r#""testId""#,
    };
    let filter = |sql: &mut Sql| push_test_filter(sql, scope, filter);
    TESTS
        .page(store, filter, order_by, descending, limit, offset)
        .await
}

/// Sets `isObjective` and, when given, `totalMarks` of a test.
#[instrument(skip_all, err(level = "warn"))]
pub async fn set_derived(
    tx: &mut Tx,
    scope: &Scope,
    test_id: Uuid,
    is_objective: bool,
) -> Result<(), sqlx::Error> {
    let (t, o) = sid(scope);
    on_tx!(tx, c => {
        sqlx::query(r#"UPDATE "tests" SET "isObjective" = $1 WHERE "testId" = $2 AND "tenantId" IS NOT DISTINCT FROM $3 AND "organisationId" IS NOT DISTINCT FROM $4"#)
            .bind(is_objective).bind(Id(test_id)).bind(t).bind(o).execute(c).await.map(|r| r.rows_affected())
    })?;
    tx.mark_test_changed(test_id);
    Ok(())
}
