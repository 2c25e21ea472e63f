//! SQL for the selection rules of rule-based tests. Confined to a scope.

use serde::Serialize;
use serde_json::Value;
use sqlx::FromRow;
use sqlx::types::Json;
use tracing::instrument;
use utoipa::ToSchema;
use uuid::Uuid;

use super::db::{delete_scoped, sid};
use super::sql::{Arg, Sql, assignments, placeholders};
use super::{Db, Id, Ts, Tx};
use crate::domain::enums::{RuleType, SelectionMode, SelectionStrategy};
use crate::domain::ids::Scope;
use crate::domain::marks::Marks;
use crate::{on_db, on_tx};

/// A rule as stored and returned.
#[derive(Debug, Clone, FromRow, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[sqlx(rename_all = "camelCase")]
pub struct Rule {
    #[schema(value_type = String, format = Uuid)]
    pub rule_id: Id,
    #[schema(value_type = String, format = Uuid)]
    pub tenant_id: Id,
    #[schema(value_type = String, format = Uuid)]
    pub organisation_id: Id,
    pub name: String,
    pub description: Option<String>,
    #[sqlx(try_from = "String")]
    pub rule_type: RuleType,
    #[schema(value_type = Option<String>, format = Uuid)]
    pub test_id: Option<Id>,
    #[schema(value_type = Option<String>, format = Uuid)]
    pub section_id: Option<Id>,
    pub number_of_questions: i32,
    pub pool_size: i32,
    /// Stored in hundredths; shown in marks.
    #[schema(value_type = Option<f64>)]
    #[serde(serialize_with = "super::types::hundredths_as_marks")]
    pub min_marks: Option<i64>,
    #[schema(value_type = Option<f64>)]
    #[serde(serialize_with = "super::types::hundredths_as_marks")]
    pub max_marks: Option<i64>,
    #[sqlx(try_from = "String")]
    pub selection_strategy: SelectionStrategy,
    #[schema(value_type = Object)]
    pub criteria: Json<Value>,
    #[sqlx(try_from = "String")]
    pub selection_mode: SelectionMode,
    pub is_active: bool,
    pub priority: i32,
    #[schema(value_type = String, format = Uuid)]
    pub created_by: Id,
    #[schema(value_type = String, format = DateTime)]
    pub created_at: Ts,
    #[schema(value_type = Option<String>, format = Uuid)]
    pub updated_by: Option<Id>,
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: Ts,
}

impl Rule {
    pub fn min_marks(&self) -> Option<Marks> {
        self.min_marks.and_then(|m| Marks::from_hundredths(m).ok())
    }
    pub fn max_marks(&self) -> Option<Marks> {
        self.max_marks.and_then(|m| Marks::from_hundredths(m).ok())
    }
}

const RULE_COLUMNS: &str = r#""ruleId", "tenantId", "organisationId", "name", "description",
    "ruleType", "testId", "sectionId", "numberOfQuestions", "poolSize", "minMarks", "maxMarks",
    "selectionStrategy", "criteria", "selectionMode", "isActive", "priority", "createdBy",
    "createdAt", "updatedBy", "updatedAt""#;

macro_rules! bind_rule {
    ($q:expr, $r:expr) => {
        $q.bind($r.rule_id)
            .bind($r.tenant_id)
            .bind($r.organisation_id)
            .bind(&$r.name)
            .bind(&$r.description)
            .bind($r.rule_type.as_str())
            .bind($r.test_id)
            .bind($r.section_id)
            .bind($r.number_of_questions)
            .bind($r.pool_size)
            .bind($r.min_marks)
            .bind($r.max_marks)
            .bind($r.selection_strategy.as_str())
            .bind(&$r.criteria)
            .bind($r.selection_mode.as_str())
            .bind($r.is_active)
            .bind($r.priority)
            .bind($r.created_by)
            .bind($r.created_at)
            .bind($r.updated_by)
            .bind($r.updated_at)
    };
}

#[instrument(skip_all, err(level = "warn"))]
pub async fn insert(tx: &mut Tx, r: &Rule) -> Result<(), sqlx::Error> {
    let sql = format!(
        r#"INSERT INTO "testRules" ({RULE_COLUMNS}) VALUES ({})"#,
        placeholders(21)
    );
    on_tx!(tx, c => bind_rule!(sqlx::query(&sql), r).execute(c).await.map(|r| r.rows_affected()))?;
    Ok(())
}

#[instrument(skip_all, err(level = "warn"))]
pub async fn update(tx: &mut Tx, r: &Rule) -> Result<(), sqlx::Error> {
    let sets = assignments(RULE_COLUMNS);
    let sql = format!(
        r#"UPDATE "testRules" SET {sets} WHERE "ruleId" = $1 AND "tenantId" IS NOT DISTINCT FROM $2
           AND "organisationId" IS NOT DISTINCT FROM $3"#
    );
    on_tx!(tx, c => bind_rule!(sqlx::query(&sql), r).execute(c).await.map(|r| r.rows_affected()))?;
    Ok(())
}

#[instrument(skip_all, err(level = "warn"))]
pub async fn delete(tx: &mut Tx, scope: &Scope, id: Uuid) -> Result<(), sqlx::Error> {
    delete_scoped(tx, r#""testRules""#, r#""ruleId""#, scope, id).await?;
    Ok(())
}

#[instrument(skip_all, err(level = "warn"))]
pub async fn get<'a>(
    db: impl Into<Db<'a>>,
    scope: &Scope,
    id: Uuid,
) -> Result<Option<Rule>, sqlx::Error> {
    let (t, o) = sid(scope);
    let sql = format!(
        r#"SELECT {RULE_COLUMNS} FROM "testRules" WHERE "ruleId" = $1 AND "tenantId" IS NOT DISTINCT FROM $2
           AND "organisationId" IS NOT DISTINCT FROM $3"#
    );
    on_db!(db.into(), p => sqlx::query_as::<_, Rule>(&sql).bind(Id(id)).bind(t).bind(o).fetch_optional(p).await)
}

/// Which rules to list.
#[derive(Debug, Clone, Copy, Default)]
pub struct RuleFilter {
    pub test_id: Option<Uuid>,
    pub section_id: Option<Uuid>,
    pub active_only: bool,
}

fn list_sql(
    store_backend: super::Backend,
    scope: &Scope,
    f: RuleFilter,
    oldest_first: bool,
) -> Sql {
    let mut sql = Sql::new(
        store_backend,
        format!(r#"SELECT {RULE_COLUMNS} FROM "testRules""#),
    );
    sql.where_scope(scope);
    if let Some(test) = f.test_id {
        sql.push(r#" AND "testId" = "#).bind(Arg::Id(Id(test)));
    }
    if let Some(section) = f.section_id {
        sql.push(r#" AND "sectionId" = "#)
            .bind(Arg::Id(Id(section)));
    }
    if f.active_only {
        sql.push(r#" AND "isActive" = "#).bind(Arg::Bool(true));
    }
    let created = if oldest_first { "ASC" } else { "DESC" };
    sql.push(&format!(
        r#" ORDER BY "priority" DESC, "createdAt" {created}, "ruleId""#
    ));
    sql
}

/// Rules by priority (highest first), then by creation.
#[instrument(skip_all, err(level = "warn"))]
pub async fn list<'a>(
    db: impl Into<Db<'a>>,
    scope: &Scope,
    f: RuleFilter,
    oldest_first: bool,
) -> Result<Vec<Rule>, sqlx::Error> {
    let db = db.into();
    let sql = list_sql(db.backend(), scope, f, oldest_first);
    sql.fetch_rows::<Rule>(db).await
}
