//! SQL for the question bank: questions, their options, and option-to-child links.
//! Every function is confined to a [`Scope`].

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sqlx::FromRow;
use sqlx::types::Json;
use tracing::instrument;
use utoipa::ToSchema;
use uuid::Uuid;

use super::db::sid;
use super::sql::{Arg, Listing, Sql, like_contains, lock_clause};
use super::{Backend, Db, Id, Store, Ts, Tx};
use crate::domain::enums::{GradingType, QuestionLevel, QuestionStatus, QuestionType};
use crate::domain::ids::Scope;
use crate::domain::marks::Marks;
use crate::{bind_args, on_db, on_reader, on_tx};

/// A question as stored and as returned to authors (and, as JSON, as kept in a revision).
#[derive(Debug, Clone, FromRow, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[sqlx(rename_all = "camelCase")]
pub struct Question {
    #[schema(value_type = String, format = Uuid)]
    pub question_id: Id,
    #[schema(value_type = String, format = Uuid)]
    pub tenant_id: Id,
    #[schema(value_type = String, format = Uuid)]
    pub organisation_id: Id,
    pub ordering: i32,
    pub text: String,
    #[schema(value_type = Option<Object>)]
    pub media: Option<Json<Value>>,
    pub alias: Option<String>,
    pub description: Option<String>,
    #[schema(value_type = Option<String>, format = Uuid)]
    pub category_id: Option<Id>,
    #[sqlx(rename = "type", try_from = "String")]
    #[serde(rename = "type")]
    pub qtype: QuestionType,
    #[sqlx(try_from = "String")]
    pub level: QuestionLevel,
    #[sqlx(try_from = "i64")]
    #[schema(value_type = f64)]
    pub marks: Marks,
    #[sqlx(try_from = "String")]
    pub status: QuestionStatus,
    pub ideal_time: Option<i32>,
    #[sqlx(try_from = "String")]
    pub grading_type: GradingType,
    pub allow_partial_scoring: bool,
    #[schema(value_type = Option<Object>)]
    pub params: Option<Json<Value>>,
    #[schema(value_type = Option<String>, format = Uuid)]
    pub parent_id: Option<Id>,
    #[schema(value_type = Vec<String>)]
    pub tags: Json<Vec<String>>,
    #[schema(value_type = String, format = Uuid)]
    pub created_by: Id,
    #[schema(value_type = String, format = DateTime)]
    pub created_at: Ts,
    #[schema(value_type = Option<String>, format = Uuid)]
    pub updated_by: Option<Id>,
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: Ts,
    /// Counts the edits of the question's content, from 1. An attempt is scored and shown
    /// against the revision it started with.
    pub revision: i32,
}

/// An option of a question, as stored and as returned to authors.
#[derive(Debug, Clone, FromRow, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[sqlx(rename_all = "camelCase")]
pub struct QuestionOption {
    #[schema(value_type = String, format = Uuid)]
    pub question_option_id: Id,
    #[schema(value_type = String, format = Uuid)]
    pub tenant_id: Id,
    #[schema(value_type = String, format = Uuid)]
    pub organisation_id: Id,
    #[schema(value_type = String, format = Uuid)]
    pub question_id: Id,
    pub text: String,
    #[schema(value_type = Option<Object>)]
    pub media: Option<Json<Value>>,
    pub match_with: Option<String>,
    #[schema(value_type = Option<Object>)]
    pub match_with_media: Option<Json<Value>>,
    pub ordering: i32,
    pub is_correct: bool,
    #[sqlx(try_from = "i64")]
    #[schema(value_type = f64)]
    pub marks: Marks,
    pub blank_index: Option<i32>,
    pub case_sensitive: bool,
    #[schema(value_type = String, format = DateTime)]
    pub created_at: Ts,
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: Ts,
}

const QUESTION_COLUMNS: &str = r#""questionId", "tenantId", "organisationId", "ordering", "text",
    "media", "alias", "description", "categoryId", "type", "level", "marks", "status",
    "idealTime", "gradingType", "allowPartialScoring", "params", "parentId", "tags",
    "createdBy", "createdAt", "updatedBy", "updatedAt", "revision""#;

const OPTION_COLUMNS: &str = r#""questionOptionId", "tenantId", "organisationId", "questionId",
    "text", "media", "matchWith", "matchWithMedia", "ordering", "isCorrect", "marks",
    "blankIndex", "caseSensitive", "createdAt", "updatedAt""#;

/// Inserts a question row.
#[instrument(skip_all, err(level = "warn"))]
pub async fn insert(tx: &mut Tx, q: &Question) -> Result<(), sqlx::Error> {
    let sql = format!(
        r#"INSERT INTO "questions" ({QUESTION_COLUMNS}) VALUES
        ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14,$15,$16,$17,$18,$19,$20,$21,$22,$23,$24)"#
    );
    on_tx!(tx, c => {
        sqlx::query(&sql)
            .bind(q.question_id).bind(q.tenant_id).bind(q.organisation_id).bind(q.ordering)
            .bind(&q.text).bind(&q.media).bind(&q.alias).bind(&q.description)
            .bind(q.category_id).bind(q.qtype.as_str()).bind(q.level.as_str())
            .bind(q.marks.hundredths()).bind(q.status.as_str()).bind(q.ideal_time)
            .bind(q.grading_type.as_str()).bind(q.allow_partial_scoring).bind(&q.params)
            .bind(q.parent_id).bind(&q.tags).bind(q.created_by).bind(q.created_at)
            .bind(q.updated_by).bind(q.updated_at).bind(q.revision)
            .execute(c).await.map(|r| r.rows_affected())
    })?;
    tx.mark_bank_changed(q.tenant_id.0);
    Ok(())
}

/// Rewrites every mutable column of a question (the caller merged the patch).
#[instrument(skip_all, err(level = "warn"))]
pub async fn update(tx: &mut Tx, q: &Question) -> Result<(), sqlx::Error> {
    const SQL: &str = r#"UPDATE "questions" SET "ordering" = $3, "text" = $4, "media" = $5,
        "alias" = $6, "description" = $7, "categoryId" = $8, "type" = $9, "level" = $10,
        "marks" = $11, "status" = $12, "idealTime" = $13, "gradingType" = $14,
        "allowPartialScoring" = $15, "params" = $16, "parentId" = $17, "tags" = $18,
        "updatedBy" = $19, "updatedAt" = $20, "revision" = $22
        WHERE "questionId" = $1 AND "tenantId" IS NOT DISTINCT FROM $2 AND "organisationId" IS NOT DISTINCT FROM $21"#;
    on_tx!(tx, c => {
        sqlx::query(SQL)
            .bind(q.question_id).bind(q.tenant_id).bind(q.ordering).bind(&q.text)
            .bind(&q.media).bind(&q.alias).bind(&q.description).bind(q.category_id)
            .bind(q.qtype.as_str()).bind(q.level.as_str()).bind(q.marks.hundredths())
            .bind(q.status.as_str()).bind(q.ideal_time).bind(q.grading_type.as_str())
            .bind(q.allow_partial_scoring).bind(&q.params).bind(q.parent_id).bind(&q.tags)
            .bind(q.updated_by).bind(q.updated_at).bind(q.organisation_id).bind(q.revision)
            .execute(c).await.map(|r| r.rows_affected())
    })?;
    tx.mark_bank_changed(q.tenant_id.0);
    Ok(())
}

fn select_one(backend: Backend, lock: bool) -> String {
    let lock = if lock { lock_clause(backend) } else { "" };
    format!(
        r#"SELECT {QUESTION_COLUMNS} FROM "questions"
           WHERE "questionId" = $1 AND "tenantId" IS NOT DISTINCT FROM $2 AND "organisationId" IS NOT DISTINCT FROM $3{lock}"#
    )
}

/// The question, locked for update within `tx` (PostgreSQL; SQLite has one writer).
#[instrument(skip_all, err(level = "warn"))]
pub async fn get_for_update(
    tx: &mut Tx,
    scope: &Scope,
    id: Uuid,
) -> Result<Option<Question>, sqlx::Error> {
    let (t, o) = sid(scope);
    let backend = tx.backend();
    let sql = select_one(backend, true);
    on_tx!(tx, c => {
        sqlx::query_as::<_, Question>(&sql).bind(Id(id)).bind(t).bind(o).fetch_optional(c).await
    })
}

/// The question.
#[instrument(skip_all, err(level = "warn"))]
pub async fn get<'a>(
    db: impl Into<Db<'a>>,
    scope: &Scope,
    id: Uuid,
) -> Result<Option<Question>, sqlx::Error> {
    let db = db.into();
    let (t, o) = sid(scope);
    let sql = select_one(db.backend(), false);
    on_db!(db, p => {
        sqlx::query_as::<_, Question>(&sql).bind(Id(id)).bind(t).bind(o).fetch_optional(p).await
    })
}

fn options_query(backend: Backend, scope: &Scope, question_ids: &[Uuid]) -> Sql {
    let mut sql = Sql::new(
        backend,
        format!(r#"SELECT {OPTION_COLUMNS} FROM "questionOptions""#),
    );
    sql.where_scope_filter(scope)
        .and_in(r#""questionId""#, question_ids)
        .push(r#" ORDER BY "questionId", "ordering", "createdAt", "questionOptionId""#);
    sql
}

/// Options of these questions, ordered by question then `ordering`.
#[instrument(skip_all, err(level = "warn"))]
pub async fn options_of<'a>(
    db: impl Into<Db<'a>>,
    scope: &Scope,
    question_ids: &[Uuid],
) -> Result<Vec<QuestionOption>, sqlx::Error> {
    let db = db.into();
    if question_ids.is_empty() {
        return Ok(Vec::new());
    }
    let sql = options_query(db.backend(), scope, question_ids);
    sql.fetch_rows::<QuestionOption>(db).await
}

/// How many options one `INSERT` writes (15 values each, well under either database's limit
/// on bound values).
const OPTIONS_PER_INSERT: usize = 200;

/// Inserts options, many rows a statement: a question's options go in one round trip (on
/// SQLite, one hand-off to the writer's thread instead of one per option).
#[instrument(skip_all, err(level = "warn"))]
pub async fn insert_options(tx: &mut Tx, options: &[QuestionOption]) -> Result<(), sqlx::Error> {
    const WIDTH: usize = 15;
    for chunk in options.chunks(OPTIONS_PER_INSERT) {
        let rows: Vec<String> = (0..chunk.len())
            .map(|i| super::sql::placeholders_from(i * WIDTH + 1, WIDTH))
            .collect();
        let sql = format!(
            r#"INSERT INTO "questionOptions" ({OPTION_COLUMNS}) VALUES {}"#,
            rows.join(", ")
        );
        on_tx!(tx, c => {
            let mut q = sqlx::query(&sql);
            for o in chunk {
                q = q
                    .bind(o.question_option_id).bind(o.tenant_id).bind(o.organisation_id)
                    .bind(o.question_id).bind(&o.text).bind(&o.media).bind(&o.match_with)
                    .bind(&o.match_with_media).bind(o.ordering).bind(o.is_correct)
                    .bind(o.marks.hundredths()).bind(o.blank_index).bind(o.case_sensitive)
                    .bind(o.created_at).bind(o.updated_at);
            }
            q.execute(c).await.map(|r| r.rows_affected())
        })?;
    }
    Ok(())
}

/// Rewrites an existing option in place (its id, and so stored answers, stay valid).
#[instrument(skip_all, err(level = "warn"))]
pub async fn update_option(tx: &mut Tx, o: &QuestionOption) -> Result<(), sqlx::Error> {
    const SQL: &str = r#"UPDATE "questionOptions" SET "text" = $2, "media" = $3,
        "matchWith" = $4, "matchWithMedia" = $5, "ordering" = $6, "isCorrect" = $7,
        "marks" = $8, "blankIndex" = $9, "caseSensitive" = $10, "updatedAt" = $11
        WHERE "questionOptionId" = $1 AND "questionId" = $12 AND "tenantId" IS NOT DISTINCT FROM $13
          AND "organisationId" IS NOT DISTINCT FROM $14"#;
    on_tx!(tx, c => {
        sqlx::query(SQL)
            .bind(o.question_option_id).bind(&o.text).bind(&o.media).bind(&o.match_with)
            .bind(&o.match_with_media).bind(o.ordering).bind(o.is_correct)
            .bind(o.marks.hundredths()).bind(o.blank_index).bind(o.case_sensitive)
            .bind(o.updated_at).bind(o.question_id).bind(o.tenant_id).bind(o.organisation_id)
            .execute(c).await.map(|r| r.rows_affected())
    })?;
    Ok(())
}

/// Deletes options of a question by id (links to child questions go with them).
#[instrument(skip_all, err(level = "warn"))]
pub async fn delete_options(
    tx: &mut Tx,
    scope: &Scope,
    question_id: Uuid,
    option_ids: &[Uuid],
) -> Result<(), sqlx::Error> {
    if option_ids.is_empty() {
        return Ok(());
    }
    let mut sql = Sql::new(tx.backend(), r#"DELETE FROM "questionOptions""#);
    sql.where_scope_filter(scope)
        .push(r#" AND "questionId" = "#)
        .bind(Arg::Id(Id(question_id)))
        .and_in(r#""questionOptionId""#, option_ids);
    on_tx!(tx, c => bind_args!(sqlx::query(&sql.text), &sql.args).execute(c).await.map(|r| r.rows_affected()))?;
    Ok(())
}

/// Columns a question list may be sorted by (`sortBy` names them unquoted).
pub const QUESTION_SORT_COLUMNS: &[&str] = &[
    r#""createdAt""#,
    r#""updatedAt""#,
    r#""text""#,
    r#""marks""#,
    r#""type""#,
    r#""level""#,
    r#""status""#,
    r#""ordering""#,
    r#""idealTime""#,
];

/// Filters of the question list and the rule pools.
#[derive(Debug, Clone, Default)]
pub struct QuestionFilter {
    pub search: Option<String>,
    pub statuses: Vec<QuestionStatus>,
    pub types: Vec<QuestionType>,
    pub levels: Vec<QuestionLevel>,
    pub categories: Vec<Uuid>,
    pub tags: Vec<String>,
    pub marks: Vec<Marks>,
    pub include_ids: Vec<Uuid>,
    pub exclude_ids: Vec<Uuid>,
    pub min_marks: Option<Marks>,
    pub max_marks: Option<Marks>,
    pub created_from: Option<Ts>,
    pub created_to: Option<Ts>,
    /// Leave out conditional (child) questions.
    pub top_level_only: bool,
}

fn push_filter(sql: &mut Sql, scope: &Scope, f: &QuestionFilter) {
    sql.where_scope(scope);
    if let Some(s) = f.search.as_deref().filter(|s| !s.trim().is_empty()) {
        let pattern = like_contains(&s.trim().to_lowercase());
        sql.push(r#" AND (LOWER("text") LIKE "#)
            .bind(Arg::Text(pattern.clone()))
            .push(r#" ESCAPE '\' OR LOWER(COALESCE("description", '')) LIKE "#)
            .bind(Arg::Text(pattern))
            .push(r#" ESCAPE '\')"#);
    }
    let text_in = |sql: &mut Sql, col: &str, values: Vec<String>| {
        if !values.is_empty() {
            sql.push(&format!(" AND {col} IN "))
                .bind_list(values.into_iter().map(Arg::Text));
        }
    };
    text_in(
        sql,
        r#""status""#,
        f.statuses.iter().map(|s| s.as_str().into()).collect(),
    );
    text_in(
        sql,
        r#""type""#,
        f.types.iter().map(|s| s.as_str().into()).collect(),
    );
    text_in(
        sql,
        r#""level""#,
        f.levels.iter().map(|s| s.as_str().into()).collect(),
    );
    if !f.categories.is_empty() {
        sql.and_in(r#""categoryId""#, &f.categories);
    }
    if !f.include_ids.is_empty() {
        sql.and_in(r#""questionId""#, &f.include_ids);
    }
    if !f.exclude_ids.is_empty() {
        sql.push(r#" AND "questionId" NOT IN "#)
            .bind_list(f.exclude_ids.iter().map(|c| Arg::Id(Id(*c))));
    }
    if !f.marks.is_empty() {
        sql.push(r#" AND "marks" IN "#)
            .bind_list(f.marks.iter().map(|m| Arg::Int(m.hundredths())));
    }
    if let Some(m) = f.min_marks {
        sql.push(r#" AND "marks" >= "#)
            .bind(Arg::Int(m.hundredths()));
    }
    if let Some(m) = f.max_marks {
        sql.push(r#" AND "marks" <= "#)
            .bind(Arg::Int(m.hundredths()));
    }
    if let Some(t) = f.created_from {
        sql.push(r#" AND "createdAt" >= "#).bind(Arg::Ts(t));
    }
    if let Some(t) = f.created_to {
        sql.push(r#" AND "createdAt" <= "#).bind(Arg::Ts(t));
    }
    if !f.tags.is_empty() {
        let elements = sql.json_array_elements(r#""tags""#);
        sql.push(&format!(
            " AND EXISTS (SELECT 1 FROM {elements} WHERE value IN "
        ))
        .bind_list(f.tags.iter().map(|t| Arg::Text(t.clone())))
        .push(")");
    }
    if f.top_level_only {
        sql.push(r#" AND "parentId" IS NULL"#);
    }
}

/// One page of questions matching `filter`, and the total count.
#[instrument(skip_all, err(level = "warn"))]
pub async fn list(
    store: &Store,
    scope: &Scope,
    filter: &QuestionFilter,
    order_by: &str,
    descending: bool,
    limit: i64,
    offset: i64,
) -> Result<(Vec<Question>, i64), sqlx::Error> {
    const QUESTIONS: Listing = Listing {
        table: r#""questions""#,
        columns: QUESTION_COLUMNS,
        key: r#""questionId""#,
    };
    let filter = |sql: &mut Sql| push_filter(sql, scope, filter);
    QUESTIONS
        .page(store, filter, order_by, descending, limit, offset)
        .await
}

/// Every question matching `filter` (rule pools), ordered by creation.
#[instrument(skip_all, err(level = "warn"))]
pub async fn matching<'a>(
    db: impl Into<Db<'a>>,
    scope: &Scope,
    filter: &QuestionFilter,
) -> Result<Vec<Question>, sqlx::Error> {
    let db = db.into();
    let mut sql = Sql::new(
        db.backend(),
        format!(r#"SELECT {QUESTION_COLUMNS} FROM "questions""#),
    );
    push_filter(&mut sql, scope, filter);
    sql.push(r#" ORDER BY "createdAt", "questionId""#);
    sql.fetch_rows::<Question>(db).await
}

/// A link from an option to the child question it reveals.
#[derive(Debug, Clone, FromRow, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[sqlx(rename_all = "camelCase")]
pub struct OptionQuestion {
    #[schema(value_type = String, format = Uuid)]
    pub id: Id,
    #[schema(value_type = String, format = Uuid)]
    pub option_id: Id,
    #[schema(value_type = String, format = Uuid)]
    pub question_id: Id,
    pub ordering: i32,
    pub is_active: bool,
}

/// Links `option_id` to the child `question_id`. `Ok(false)` when the link already exists.
#[instrument(skip_all, err(level = "warn"))]
pub async fn link_option(
    tx: &mut Tx,
    scope: &Scope,
    option_id: Uuid,
    question_id: Uuid,
    now: Ts,
) -> Result<bool, sqlx::Error> {
    let (t, o) = sid(scope);
    const SQL: &str = r#"INSERT INTO "optionQuestions"
        ("id", "tenantId", "organisationId", "optionId", "questionId", "ordering", "isActive",
         "createdAt", "updatedAt")
        VALUES ($1, $2, $3, $4, $5, 0, TRUE, $6, $6)
        ON CONFLICT ("optionId", "questionId") DO NOTHING"#;
    let done = on_tx!(tx, c => {
        sqlx::query(SQL).bind(Id(Uuid::new_v4())).bind(t).bind(o).bind(Id(option_id))
            .bind(Id(question_id)).bind(now).execute(c).await.map(|r| r.rows_affected())
    })?;
    Ok(done == 1)
}

/// Removes a link; `Ok(false)` when there was none.
#[instrument(skip_all, err(level = "warn"))]
pub async fn unlink_option(
    tx: &mut Tx,
    scope: &Scope,
    option_id: Uuid,
    question_id: Uuid,
) -> Result<bool, sqlx::Error> {
    let (t, o) = sid(scope);
    const SQL: &str = r#"DELETE FROM "optionQuestions" WHERE "optionId" = $1 AND "questionId" = $2
        AND "tenantId" IS NOT DISTINCT FROM $3 AND "organisationId" IS NOT DISTINCT FROM $4"#;
    let done = on_tx!(tx, c => {
        sqlx::query(SQL).bind(Id(option_id)).bind(Id(question_id)).bind(t).bind(o).execute(c).await.map(|r| r.rows_affected())
    })?;
    Ok(done > 0)
}

/// The query of [`links_to`] and [`links_to_in`].
fn links_to_query(backend: Backend, scope: &Scope, question_ids: &[Uuid]) -> Sql {
    let mut sql = Sql::new(
        backend,
        r#"SELECT "id", "optionId", "questionId", "ordering", "isActive" FROM "optionQuestions""#,
    );
    sql.where_scope_filter(scope)
        .and_in(r#""questionId""#, question_ids)
        .push(r#" ORDER BY "ordering", "createdAt""#);
    sql
}

/// Links whose child is one of `question_ids`.
#[instrument(skip_all, err(level = "warn"))]
pub async fn links_to<'a>(
    db: impl Into<Db<'a>>,
    scope: &Scope,
    question_ids: &[Uuid],
) -> Result<Vec<OptionQuestion>, sqlx::Error> {
    let db = db.into();
    if question_ids.is_empty() {
        return Ok(Vec::new());
    }
    let sql = links_to_query(db.backend(), scope, question_ids);
    sql.fetch_rows::<OptionQuestion>(db).await
}

/// Child questions of `parent_id` (by `parentId`), oldest first.
#[instrument(skip_all, err(level = "warn"))]
pub async fn children(
    store: &Store,
    scope: &Scope,
    parent_id: Uuid,
) -> Result<Vec<Question>, sqlx::Error> {
    let (t, o) = sid(scope);
    let sql = format!(
        r#"SELECT {QUESTION_COLUMNS} FROM "questions" WHERE "parentId" = $1 AND "tenantId" IS NOT DISTINCT FROM $2
           AND "organisationId" IS NOT DISTINCT FROM $3 ORDER BY "createdAt", "questionId""#
    );
    on_reader!(store, p => {
        sqlx::query_as::<_, Question>(&sql).bind(Id(parent_id)).bind(t).bind(o).fetch_all(p).await
    })
}

/// Sets `status` (archive). Returns whether a row changed.
#[instrument(skip_all, err(level = "warn"))]
pub async fn set_status(
    tx: &mut Tx,
    scope: &Scope,
    id: Uuid,
    status: QuestionStatus,
    by: Uuid,
    now: Ts,
) -> Result<bool, sqlx::Error> {
    let (t, o) = sid(scope);
    const SQL: &str = r#"UPDATE "questions" SET "status" = $1, "updatedBy" = $2, "updatedAt" = $3
        WHERE "questionId" = $4 AND "tenantId" IS NOT DISTINCT FROM $5 AND "organisationId" IS NOT DISTINCT FROM $6"#;
    let done = on_tx!(tx, c => {
        sqlx::query(SQL).bind(status.as_str()).bind(Id(by)).bind(now).bind(Id(id)).bind(t).bind(o)
            .execute(c).await.map(|r| r.rows_affected())
    })?;
    tx.mark_bank_changed(scope.tenant.as_uuid());
    Ok(done > 0)
}

/// The query of [`by_ids`] and [`by_ids_in`] (`ids` not empty).
fn by_ids_sql(backend: Backend, scope: &Scope, ids: &[Uuid]) -> Sql {
    let mut sql = Sql::new(
        backend,
        format!(r#"SELECT {QUESTION_COLUMNS} FROM "questions""#),
    );
    sql.where_scope_filter(scope).and_in(r#""questionId""#, ids);
    sql
}

/// The questions with these ids (any status).
#[instrument(skip_all, err(level = "warn"))]
pub async fn by_ids<'a>(
    db: impl Into<Db<'a>>,
    scope: &Scope,
    ids: &[Uuid],
) -> Result<Vec<Question>, sqlx::Error> {
    let db = db.into();
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let sql = by_ids_sql(db.backend(), scope, ids);
    sql.fetch_rows::<Question>(db).await
}
