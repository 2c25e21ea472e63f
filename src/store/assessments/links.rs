//! SQL for the questions linked to a test: their places, orderings and the facts publishing checks.

#[allow(unused_imports)]
use super::*;

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

pub(super) const LINK_COLUMNS: &str = r#""testQuestionId", "tenantId", "organisationId", "testId",
    "questionId", "ordering", "sectionId", "ruleId", "isCompulsory", "isConditional""#;

/// Links a question to a test. `Ok(false)`: it was already linked.
#[instrument(skip_all, err(level = "warn"))]
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
#[instrument(skip_all, err(level = "warn"))]
pub async fn update_link(tx: &mut Tx, l: &TestQuestion) -> Result<(), sqlx::Error> {
    const SQL: &str = r#"UPDATE "testQuestions" SET "ordering" = $2, "sectionId" = $3,
        "ruleId" = $4, "isCompulsory" = $5, "isConditional" = $6
        WHERE "testQuestionId" = $1 AND "tenantId" IS NOT DISTINCT FROM $7 AND "organisationId" IS NOT DISTINCT FROM $8"#;
    on_tx!(tx, c => {
        sqlx::query(SQL)
            .bind(l.test_question_id).bind(l.ordering).bind(l.section_id).bind(l.rule_id)
            .bind(l.is_compulsory).bind(l.is_conditional).bind(l.tenant_id).bind(l.organisation_id)
            .execute(c).await.map(|r| r.rows_affected())
    })?;
    Ok(())
}

/// Removes a question from a test. `Ok(false)` when it was not in it.
#[instrument(skip_all, err(level = "warn"))]
pub async fn delete_link(
    tx: &mut Tx,
    scope: &Scope,
    test_id: Uuid,
    question_id: Uuid,
) -> Result<bool, sqlx::Error> {
    let (t, o) = sid(scope);
    let n = on_tx!(tx, c => {
        sqlx::query(r#"DELETE FROM "testQuestions" WHERE "testId" = $1 AND "questionId" = $2
            AND "tenantId" IS NOT DISTINCT FROM $3 AND "organisationId" IS NOT DISTINCT FROM $4"#)
            .bind(Id(test_id)).bind(Id(question_id)).bind(t).bind(o)
            .execute(c).await.map(|r| r.rows_affected())
    })?;
    Ok(n > 0)
}

/// Removes every link of a section.
#[instrument(skip_all, err(level = "warn"))]
pub async fn delete_section_links(
    tx: &mut Tx,
    scope: &Scope,
    section_id: Uuid,
) -> Result<(), sqlx::Error> {
    delete_scoped(
        tx,
        r#""testQuestions""#,
        r#""sectionId""#,
        scope,
        section_id,
    )
    .await?;
    Ok(())
}

pub(super) fn links_sql() -> String {
    format!(
        r#"SELECT {LINK_COLUMNS} FROM "testQuestions" WHERE "testId" = $1 AND "tenantId" IS NOT DISTINCT FROM $2
           AND "organisationId" IS NOT DISTINCT FROM $3 ORDER BY "ordering", "testQuestionId""#
    )
}

/// The links of a test, ordered.
#[instrument(skip_all, err(level = "warn"))]
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
#[instrument(skip_all, err(level = "warn"))]
pub async fn links_of_sections(
    store: &Store,
    scope: &Scope,
    section_ids: &[Uuid],
) -> Result<Vec<TestQuestion>, sqlx::Error> {
    if section_ids.is_empty() {
        return Ok(Vec::new());
    }
    let mut sql = Sql::new(
        store.backend(),
        format!(r#"SELECT {LINK_COLUMNS} FROM "testQuestions""#),
    );
    sql.where_scope_filter(scope)
        .and_in(r#""sectionId""#, section_ids)
        .push(r#" ORDER BY "ordering", "testQuestionId""#);
    sql.fetch_rows::<TestQuestion>(store).await
}

/// The types and marks of the questions linked to a test (for `isObjective` and totals).
#[instrument(skip_all, err(level = "warn"))]
pub async fn linked_question_facts(
    tx: &mut Tx,
    scope: &Scope,
    test_id: Uuid,
) -> Result<Vec<(QuestionType, Marks, bool)>, sqlx::Error> {
    let (t, o) = sid(scope);
    const SQL: &str = r#"SELECT q."type", q."marks", tq."isConditional" FROM "testQuestions" tq
        JOIN "questions" q ON q."questionId" = tq."questionId"
        JOIN "testSections" s ON s."sectionId" = tq."sectionId" AND s."status" <> 'archived'
        WHERE tq."testId" = $1 AND tq."tenantId" IS NOT DISTINCT FROM $2 AND tq."organisationId" IS NOT DISTINCT FROM $3
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
#[instrument(skip_all, err(level = "warn"))]
pub async fn max_ordering(
    tx: &mut Tx,
    scope: &Scope,
    test_id: Uuid,
    section_id: Option<Uuid>,
) -> Result<i32, sqlx::Error> {
    let (t, o) = sid(scope);
    let n: Option<i32> = on_tx!(tx, c => {
        sqlx::query_scalar(r#"SELECT MAX("ordering") FROM "testQuestions" WHERE "testId" = $1
            AND "tenantId" IS NOT DISTINCT FROM $2 AND "organisationId" IS NOT DISTINCT FROM $3
            AND ("sectionId" = $4 OR ($4 IS NULL AND "sectionId" IS NULL))"#)
            .bind(Id(test_id)).bind(t).bind(o).bind(section_id.map(Id)).fetch_one(c).await
    })?;
    Ok(n.unwrap_or(0))
}

/// The tests that link this question.
#[instrument(skip_all, err(level = "warn"))]
pub async fn tests_linking(
    tx: &mut Tx,
    scope: &Scope,
    question_id: Uuid,
) -> Result<Vec<Uuid>, sqlx::Error> {
    let (t, o) = sid(scope);
    let ids: Vec<Id> = on_tx!(tx, c => {
        sqlx::query_scalar(r#"SELECT DISTINCT "testId" FROM "testQuestions" WHERE "questionId" = $1
            AND "tenantId" IS NOT DISTINCT FROM $2 AND "organisationId" IS NOT DISTINCT FROM $3"#)
            .bind(Id(question_id)).bind(t).bind(o).fetch_all(c).await
    })?;
    Ok(ids.into_iter().map(|i| i.0).collect())
}
