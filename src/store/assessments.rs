//! SQL for tests, their sections, and the links from tests to questions. Confined to a scope.

use serde::Serialize;
use sqlx::FromRow;
use utoipa::ToSchema;
use uuid::Uuid;

use super::db::sid;
use super::sql::{Arg, Sql, like_contains};
use super::{Backend, Db, Id, Store, Ts, Tx};
use crate::domain::enums::{
    AttemptsGrading, GradingType, QuestionType, SectionStatus, TestStatus, TestType,
};
use crate::domain::ids::Scope;
use crate::domain::marks::Marks;
use crate::{on_db, on_reader, on_tx};

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
}

const TEST_COLUMNS: &str = r#""testId", "parentId", "type", "tenantId", "organisationId",
    "ordering", "attempts", "attemptsGrading", "status", "title", "alias", "description",
    "reviewers", "image", "showTime", "timeDuration", "showTimeFinished", "timeFinishedDuration",
    "totalMarks", "passingMarks", "startDate", "endDate", "answerSheet", "showCorrectAnswer",
    "printAnswersheet", "questionsShuffle", "answersShuffle", "gradingType", "isObjective",
    "showThankyouPage", "showAllQuestions", "showQuestionsOverview", "paginationLimit",
    "allowResubmission", "checkedOut", "checkedOutTime", "contextType", "contextId",
    "createdBy", "createdAt", "updatedBy", "updatedAt", "totalMarksComputed""#;

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
    };
}

fn placeholders(n: usize) -> String {
    (1..=n)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Inserts a test unless its alias is taken in the scope. `Ok(false)`: alias taken.
pub async fn insert(tx: &mut Tx, t: &Test) -> Result<bool, sqlx::Error> {
    let sql = format!(
        r#"INSERT INTO "tests" ({TEST_COLUMNS}) VALUES ({})
           ON CONFLICT ("tenantId", "organisationId", "alias") DO NOTHING"#,
        placeholders(43)
    );
    let n = on_tx!(tx, c => {
        bind_test!(sqlx::query(&sql), t).execute(c).await.map(|r| r.rows_affected())
    })?;
    Ok(n == 1)
}

/// Rewrites every column of a test (the caller merged the patch). A taken alias is a unique
/// violation.
pub async fn update(tx: &mut Tx, t: &Test) -> Result<(), sqlx::Error> {
    let sets = TEST_COLUMNS
        .split(',')
        .map(str::trim)
        .enumerate()
        .skip(1)
        .map(|(i, col)| format!("{col} = ${}", i + 1))
        .collect::<Vec<_>>()
        .join(", ");
    let sql = format!(
        r#"UPDATE "tests" SET {sets} WHERE "testId" = $1 AND "tenantId" = $4
           AND "organisationId" = $5"#
    );
    on_tx!(tx, c => {
        bind_test!(sqlx::query(&sql), t).execute(c).await.map(|r| r.rows_affected())
    })?;
    Ok(())
}

fn select_test(backend: Backend, lock: bool) -> String {
    let lock = if lock && backend == Backend::Postgres {
        " FOR UPDATE"
    } else {
        ""
    };
    format!(
        r#"SELECT {TEST_COLUMNS} FROM "tests" WHERE "testId" = $1 AND "tenantId" = $2
           AND "organisationId" = $3{lock}"#
    )
}

/// The test (any status), locked within `tx` on PostgreSQL: every change to a test's
/// structure takes this lock first, so publishing and editing serialise.
pub async fn lock(tx: &mut Tx, scope: &Scope, id: Uuid) -> Result<Option<Test>, sqlx::Error> {
    let (t, o) = sid(scope);
    let sql = select_test(tx.backend(), true);
    on_tx!(tx, c => {
        sqlx::query_as::<_, Test>(&sql).bind(Id(id)).bind(t).bind(o).fetch_optional(c).await
    })
}

/// The test (any status).
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
pub async fn delete(tx: &mut Tx, scope: &Scope, id: Uuid) -> Result<(), sqlx::Error> {
    let (t, o) = sid(scope);
    on_tx!(tx, c => {
        sqlx::query(r#"DELETE FROM "tests" WHERE "testId" = $1 AND "tenantId" = $2 AND "organisationId" = $3"#)
            .bind(Id(id)).bind(t).bind(o).execute(c).await.map(|r| r.rows_affected())
    })?;
    Ok(())
}

/// Number of attempts on a test (any status).
pub async fn attempt_count(tx: &mut Tx, scope: &Scope, test_id: Uuid) -> Result<i64, sqlx::Error> {
    let (t, o) = sid(scope);
    on_tx!(tx, c => {
        sqlx::query_scalar::<_, i64>(r#"SELECT COUNT(*) FROM "testAttempts" WHERE "testId" = $1
            AND "tenantId" = $2 AND "organisationId" = $3"#)
            .bind(Id(test_id)).bind(t).bind(o).fetch_one(c).await
    })
}

/// Columns a test list may be sorted by.
pub fn test_sort_column(name: &str) -> Option<&'static str> {
    Some(match name {
        "createdAt" => r#""createdAt""#,
        "updatedAt" => r#""updatedAt""#,
        "title" => r#""title""#,
        "ordering" => r#""ordering""#,
        "totalMarks" => r#""totalMarks""#,
        "startDate" => r#""startDate""#,
        "endDate" => r#""endDate""#,
        "status" => r#""status""#,
        "type" => r#""type""#,
        _ => return None,
    })
}

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
    let (t, o) = sid(scope);
    sql.push(r#" WHERE "tenantId" = "#)
        .bind(Arg::Id(t))
        .push(r#" AND "organisationId" = "#)
        .bind(Arg::Id(o));
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
                .push(r#" AND "contextId" IN "#)
                .bind_list(f.context_ids.iter().map(|c| Arg::Id(Id(*c))));
        }
        (None, false) => {
            sql.push(r#" AND "contextId" IN "#)
                .bind_list(f.context_ids.iter().map(|c| Arg::Id(Id(*c))));
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
pub async fn list(
    store: &Store,
    scope: &Scope,
    filter: &TestFilter,
    order_by: &str,
    descending: bool,
    limit: i64,
    offset: i64,
) -> Result<(Vec<Test>, i64), sqlx::Error> {
    let mut count = Sql::new(store.backend(), r#"SELECT COUNT(*) FROM "tests""#);
    push_test_filter(&mut count, scope, filter);
    let mut page = Sql::new(
        store.backend(),
        format!(r#"SELECT {TEST_COLUMNS} FROM "tests""#),
    );
    push_test_filter(&mut page, scope, filter);
    page.order_nulls_last(order_by, r#""testId""#, descending)
        .page(limit, offset);
    let total = count.fetch_count(store).await?;
    Ok((page.fetch_rows(store).await?, total))
}

/// A section of a test.
#[derive(Debug, Clone, FromRow, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[sqlx(rename_all = "camelCase")]
pub struct Section {
    #[schema(value_type = String, format = Uuid)]
    pub section_id: Id,
    #[schema(value_type = String, format = Uuid)]
    pub tenant_id: Id,
    #[schema(value_type = String, format = Uuid)]
    pub organisation_id: Id,
    pub title: String,
    pub description: Option<String>,
    #[schema(value_type = String, format = Uuid)]
    pub test_id: Id,
    pub ordering: i32,
    #[sqlx(try_from = "String")]
    pub status: SectionStatus,
    pub min_questions: Option<i32>,
    pub max_questions: Option<i32>,
    #[schema(value_type = String, format = Uuid)]
    pub created_by: Id,
    #[schema(value_type = String, format = DateTime)]
    pub created_at: Ts,
    #[schema(value_type = Option<String>, format = Uuid)]
    pub updated_by: Option<Id>,
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: Ts,
}

const SECTION_COLUMNS: &str = r#""sectionId", "tenantId", "organisationId", "title",
    "description", "testId", "ordering", "status", "minQuestions", "maxQuestions", "createdBy",
    "createdAt", "updatedBy", "updatedAt""#;

pub async fn insert_section(tx: &mut Tx, s: &Section) -> Result<(), sqlx::Error> {
    let sql = format!(
        r#"INSERT INTO "testSections" ({SECTION_COLUMNS}) VALUES ({})"#,
        placeholders(14)
    );
    on_tx!(tx, c => {
        sqlx::query(&sql)
            .bind(s.section_id).bind(s.tenant_id).bind(s.organisation_id).bind(&s.title)
            .bind(&s.description).bind(s.test_id).bind(s.ordering).bind(s.status.as_str())
            .bind(s.min_questions).bind(s.max_questions).bind(s.created_by).bind(s.created_at)
            .bind(s.updated_by).bind(s.updated_at)
            .execute(c).await.map(|r| r.rows_affected())
    })?;
    Ok(())
}

pub async fn update_section(tx: &mut Tx, s: &Section) -> Result<(), sqlx::Error> {
    const SQL: &str = r#"UPDATE "testSections" SET "title" = $2, "description" = $3,
        "ordering" = $4, "status" = $5, "minQuestions" = $6, "maxQuestions" = $7,
        "updatedBy" = $8, "updatedAt" = $9
        WHERE "sectionId" = $1 AND "tenantId" = $10 AND "organisationId" = $11"#;
    on_tx!(tx, c => {
        sqlx::query(SQL)
            .bind(s.section_id).bind(&s.title).bind(&s.description).bind(s.ordering)
            .bind(s.status.as_str()).bind(s.min_questions).bind(s.max_questions)
            .bind(s.updated_by).bind(s.updated_at).bind(s.tenant_id).bind(s.organisation_id)
            .execute(c).await.map(|r| r.rows_affected())
    })?;
    Ok(())
}

pub async fn delete_section(tx: &mut Tx, scope: &Scope, id: Uuid) -> Result<(), sqlx::Error> {
    let (t, o) = sid(scope);
    on_tx!(tx, c => {
        sqlx::query(r#"DELETE FROM "testSections" WHERE "sectionId" = $1 AND "tenantId" = $2 AND "organisationId" = $3"#)
            .bind(Id(id)).bind(t).bind(o).execute(c).await.map(|r| r.rows_affected())
    })?;
    Ok(())
}

fn sections_sql(backend: Backend, by: &str) -> String {
    let _ = backend;
    format!(
        r#"SELECT {SECTION_COLUMNS} FROM "testSections" WHERE "tenantId" = $1
           AND "organisationId" = $2{by} ORDER BY "ordering", "createdAt", "sectionId""#
    )
}

/// Sections of a test, ordered.
pub async fn sections_of<'a>(
    db: impl Into<Db<'a>>,
    scope: &Scope,
    test_id: Uuid,
) -> Result<Vec<Section>, sqlx::Error> {
    let db = db.into();
    let (t, o) = sid(scope);
    let sql = sections_sql(db.backend(), r#" AND "testId" = $3"#);
    on_db!(db, p => {
        sqlx::query_as::<_, Section>(&sql).bind(t).bind(o).bind(Id(test_id)).fetch_all(p).await
    })
}

/// Every section of the scope.
pub async fn all_sections(store: &Store, scope: &Scope) -> Result<Vec<Section>, sqlx::Error> {
    let (t, o) = sid(scope);
    let sql = sections_sql(store.backend(), "");
    on_reader!(store, p => {
        sqlx::query_as::<_, Section>(&sql).bind(t).bind(o).fetch_all(p).await
    })
}

/// One section.
pub async fn section<'a>(
    db: impl Into<Db<'a>>,
    scope: &Scope,
    id: Uuid,
) -> Result<Option<Section>, sqlx::Error> {
    let db = db.into();
    let (t, o) = sid(scope);
    let sql = sections_sql(db.backend(), r#" AND "sectionId" = $3"#);
    on_db!(db, p => {
        sqlx::query_as::<_, Section>(&sql).bind(t).bind(o).bind(Id(id)).fetch_optional(p).await
    })
}

/// A question's place in a test.
#[derive(Debug, Clone, FromRow, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[sqlx(rename_all = "camelCase")]
pub struct TestQuestion {
    #[schema(value_type = String, format = Uuid)]
    pub test_question_id: Id,
    #[schema(value_type = String, format = Uuid)]
    pub tenant_id: Id,
    #[schema(value_type = String, format = Uuid)]
    pub organisation_id: Id,
    #[schema(value_type = String, format = Uuid)]
    pub test_id: Id,
    #[schema(value_type = String, format = Uuid)]
    pub question_id: Id,
    pub ordering: i32,
    #[schema(value_type = Option<String>, format = Uuid)]
    pub section_id: Option<Id>,
    #[schema(value_type = Option<String>, format = Uuid)]
    pub rule_id: Option<Id>,
    pub is_compulsory: bool,
    pub is_conditional: bool,
}

const LINK_COLUMNS: &str = r#""testQuestionId", "tenantId", "organisationId", "testId",
    "questionId", "ordering", "sectionId", "ruleId", "isCompulsory", "isConditional""#;

/// Links a question to a test. `Ok(false)`: it was already linked.
pub async fn insert_link(tx: &mut Tx, l: &TestQuestion) -> Result<bool, sqlx::Error> {
    let sql = format!(
        r#"INSERT INTO "testQuestions" ({LINK_COLUMNS}) VALUES ({})
           ON CONFLICT ("testId", "questionId") DO NOTHING"#,
        placeholders(10)
    );
    let n = on_tx!(tx, c => {
        sqlx::query(&sql)
            .bind(l.test_question_id).bind(l.tenant_id).bind(l.organisation_id).bind(l.test_id)
            .bind(l.question_id).bind(l.ordering).bind(l.section_id).bind(l.rule_id)
            .bind(l.is_compulsory).bind(l.is_conditional)
            .execute(c).await.map(|r| r.rows_affected())
    })?;
    Ok(n == 1)
}

/// Moves or reorders a link, or changes its flags.
pub async fn update_link(tx: &mut Tx, l: &TestQuestion) -> Result<(), sqlx::Error> {
    const SQL: &str = r#"UPDATE "testQuestions" SET "ordering" = $2, "sectionId" = $3,
        "ruleId" = $4, "isCompulsory" = $5, "isConditional" = $6
        WHERE "testQuestionId" = $1 AND "tenantId" = $7 AND "organisationId" = $8"#;
    on_tx!(tx, c => {
        sqlx::query(SQL)
            .bind(l.test_question_id).bind(l.ordering).bind(l.section_id).bind(l.rule_id)
            .bind(l.is_compulsory).bind(l.is_conditional).bind(l.tenant_id).bind(l.organisation_id)
            .execute(c).await.map(|r| r.rows_affected())
    })?;
    Ok(())
}

/// Removes a question from a test. `Ok(false)` when it was not in it.
pub async fn delete_link(
    tx: &mut Tx,
    scope: &Scope,
    test_id: Uuid,
    question_id: Uuid,
) -> Result<bool, sqlx::Error> {
    let (t, o) = sid(scope);
    let n = on_tx!(tx, c => {
        sqlx::query(r#"DELETE FROM "testQuestions" WHERE "testId" = $1 AND "questionId" = $2
            AND "tenantId" = $3 AND "organisationId" = $4"#)
            .bind(Id(test_id)).bind(Id(question_id)).bind(t).bind(o)
            .execute(c).await.map(|r| r.rows_affected())
    })?;
    Ok(n > 0)
}

/// Removes every link of a section.
pub async fn delete_section_links(
    tx: &mut Tx,
    scope: &Scope,
    section_id: Uuid,
) -> Result<(), sqlx::Error> {
    let (t, o) = sid(scope);
    on_tx!(tx, c => {
        sqlx::query(r#"DELETE FROM "testQuestions" WHERE "sectionId" = $1 AND "tenantId" = $2 AND "organisationId" = $3"#)
            .bind(Id(section_id)).bind(t).bind(o).execute(c).await.map(|r| r.rows_affected())
    })?;
    Ok(())
}

fn links_sql() -> String {
    format!(
        r#"SELECT {LINK_COLUMNS} FROM "testQuestions" WHERE "testId" = $1 AND "tenantId" = $2
           AND "organisationId" = $3 ORDER BY "ordering", "testQuestionId""#
    )
}

/// The links of a test, ordered.
pub async fn links_of<'a>(
    db: impl Into<Db<'a>>,
    scope: &Scope,
    test_id: Uuid,
) -> Result<Vec<TestQuestion>, sqlx::Error> {
    let (t, o) = sid(scope);
    let sql = links_sql();
    on_db!(db.into(), p => {
        sqlx::query_as::<_, TestQuestion>(&sql).bind(Id(test_id)).bind(t).bind(o).fetch_all(p).await
    })
}

/// Links of every test to one of these sections (the section list shows them).
pub async fn links_of_sections(
    store: &Store,
    scope: &Scope,
    section_ids: &[Uuid],
) -> Result<Vec<TestQuestion>, sqlx::Error> {
    if section_ids.is_empty() {
        return Ok(Vec::new());
    }
    let (t, o) = sid(scope);
    let mut sql = Sql::new(
        store.backend(),
        format!(r#"SELECT {LINK_COLUMNS} FROM "testQuestions" WHERE "tenantId" = "#),
    );
    sql.bind(Arg::Id(t))
        .push(r#" AND "organisationId" = "#)
        .bind(Arg::Id(o))
        .push(r#" AND "sectionId" IN "#)
        .bind_list(section_ids.iter().map(|s| Arg::Id(Id(*s))))
        .push(r#" ORDER BY "ordering", "testQuestionId""#);
    sql.fetch_rows::<TestQuestion>(store).await
}

/// The types and marks of the questions linked to a test (for `isObjective` and totals).
pub async fn linked_question_facts(
    tx: &mut Tx,
    scope: &Scope,
    test_id: Uuid,
) -> Result<Vec<(QuestionType, Marks, bool)>, sqlx::Error> {
    let (t, o) = sid(scope);
    const SQL: &str = r#"SELECT q."type", q."marks", tq."isConditional" FROM "testQuestions" tq
        JOIN "questions" q ON q."questionId" = tq."questionId"
        JOIN "testSections" s ON s."sectionId" = tq."sectionId" AND s."status" <> 'archived'
        WHERE tq."testId" = $1 AND tq."tenantId" = $2 AND tq."organisationId" = $3
          AND q."status" <> 'archived'"#;
    let rows: Vec<(String, i64, bool)> = on_tx!(tx, c => {
        sqlx::query_as(SQL).bind(Id(test_id)).bind(t).bind(o).fetch_all(c).await
    })?;
    rows.into_iter()
        .map(|(ty, marks, conditional)| {
            let ty = QuestionType::try_from(ty).map_err(|e| sqlx::Error::Decode(Box::new(e)))?;
            let marks = Marks::try_from(marks).map_err(|e| sqlx::Error::Decode(Box::new(e)))?;
            Ok((ty, marks, conditional))
        })
        .collect()
}

/// The largest ordering used in a test's section (or among unsectioned links).
pub async fn max_ordering(
    tx: &mut Tx,
    scope: &Scope,
    test_id: Uuid,
    section_id: Option<Uuid>,
) -> Result<i32, sqlx::Error> {
    let (t, o) = sid(scope);
    let n: Option<i32> = on_tx!(tx, c => {
        sqlx::query_scalar(r#"SELECT MAX("ordering") FROM "testQuestions" WHERE "testId" = $1
            AND "tenantId" = $2 AND "organisationId" = $3
            AND ("sectionId" = $4 OR ($4 IS NULL AND "sectionId" IS NULL))"#)
            .bind(Id(test_id)).bind(t).bind(o).bind(section_id.map(Id)).fetch_one(c).await
    })?;
    Ok(n.unwrap_or(0))
}

/// The largest section ordering of a test.
pub async fn max_section_ordering(
    tx: &mut Tx,
    scope: &Scope,
    test_id: Uuid,
) -> Result<i32, sqlx::Error> {
    let (t, o) = sid(scope);
    let n: Option<i32> = on_tx!(tx, c => {
        sqlx::query_scalar(r#"SELECT MAX("ordering") FROM "testSections" WHERE "testId" = $1
            AND "tenantId" = $2 AND "organisationId" = $3"#)
            .bind(Id(test_id)).bind(t).bind(o).fetch_one(c).await
    })?;
    Ok(n.unwrap_or(0))
}

/// Sets `isObjective` and, when given, `totalMarks` of a test.
pub async fn set_derived(
    tx: &mut Tx,
    scope: &Scope,
    test_id: Uuid,
    is_objective: bool,
) -> Result<(), sqlx::Error> {
    let (t, o) = sid(scope);
    on_tx!(tx, c => {
        sqlx::query(r#"UPDATE "tests" SET "isObjective" = $1 WHERE "testId" = $2 AND "tenantId" = $3 AND "organisationId" = $4"#)
            .bind(is_objective).bind(Id(test_id)).bind(t).bind(o).execute(c).await.map(|r| r.rows_affected())
    })?;
    Ok(())
}

/// The tests that link this question.
pub async fn tests_linking(
    tx: &mut Tx,
    scope: &Scope,
    question_id: Uuid,
) -> Result<Vec<Uuid>, sqlx::Error> {
    let (t, o) = sid(scope);
    let ids: Vec<Id> = on_tx!(tx, c => {
        sqlx::query_scalar(r#"SELECT DISTINCT "testId" FROM "testQuestions" WHERE "questionId" = $1
            AND "tenantId" = $2 AND "organisationId" = $3"#)
            .bind(Id(question_id)).bind(t).bind(o).fetch_all(c).await
    })?;
    Ok(ids.into_iter().map(|i| i.0).collect())
}
