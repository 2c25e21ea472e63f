//! SQL for the sections of a test.

#[allow(unused_imports)]
use super::*;

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

pub(super) const SECTION_COLUMNS: &str = r#""sectionId", "tenantId", "organisationId", "title",
    "description", "testId", "ordering", "status", "minQuestions", "maxQuestions", "createdBy",
    "createdAt", "updatedBy", "updatedAt""#;

#[instrument(skip_all, err(level = "warn"))]
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

#[instrument(skip_all, err(level = "warn"))]
pub async fn update_section(tx: &mut Tx, s: &Section) -> Result<(), sqlx::Error> {
    const SQL: &str = r#"UPDATE "testSections" SET "title" = $2, "description" = $3,
        "ordering" = $4, "status" = $5, "minQuestions" = $6, "maxQuestions" = $7,
        "updatedBy" = $8, "updatedAt" = $9
        WHERE "sectionId" = $1 AND "tenantId" IS NOT DISTINCT FROM $10 AND "organisationId" IS NOT DISTINCT FROM $11"#;
    on_tx!(tx, c => {
        sqlx::query(SQL)
            .bind(s.section_id).bind(&s.title).bind(&s.description).bind(s.ordering)
            .bind(s.status.as_str()).bind(s.min_questions).bind(s.max_questions)
            .bind(s.updated_by).bind(s.updated_at).bind(s.tenant_id).bind(s.organisation_id)
            .execute(c).await.map(|r| r.rows_affected())
    })?;
    Ok(())
}

#[instrument(skip_all, err(level = "warn"))]
pub async fn delete_section(tx: &mut Tx, scope: &Scope, id: Uuid) -> Result<(), sqlx::Error> {
    delete_scoped(tx, r#""testSections""#, r#""sectionId""#, scope, id).await?;
    Ok(())
}

pub(super) fn sections_sql(backend: Backend, by: &str) -> String {
    let _ = backend;
    format!(
        r#"SELECT {SECTION_COLUMNS} FROM "testSections" WHERE "tenantId" = $1
           AND "organisationId" = $2{by} ORDER BY "ordering", "createdAt", "sectionId""#
    )
}

/// Sections of a test, ordered.
#[instrument(skip_all, err(level = "warn"))]
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
#[instrument(skip_all, err(level = "warn"))]
pub async fn all_sections(store: &Store, scope: &Scope) -> Result<Vec<Section>, sqlx::Error> {
    let (t, o) = sid(scope);
    let sql = sections_sql(store.backend(), "");
    on_reader!(store, p => {
        sqlx::query_as::<_, Section>(&sql).bind(t).bind(o).fetch_all(p).await
    })
}

/// One section.
#[instrument(skip_all, err(level = "warn"))]
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

/// The largest section ordering of a test.
#[instrument(skip_all, err(level = "warn"))]
pub async fn max_section_ordering(
    tx: &mut Tx,
    scope: &Scope,
    test_id: Uuid,
) -> Result<i32, sqlx::Error> {
    let (t, o) = sid(scope);
    let n: Option<i32> = on_tx!(tx, c => {
        sqlx::query_scalar(r#"SELECT MAX("ordering") FROM "testSections" WHERE "testId" = $1
            AND "tenantId" IS NOT DISTINCT FROM $2 AND "organisationId" IS NOT DISTINCT FROM $3"#)
            .bind(Id(test_id)).bind(t).bind(o).fetch_one(c).await
    })?;
    Ok(n.unwrap_or(0))
}
