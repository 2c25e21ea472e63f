//! Selection rules of rule-based tests: create, list, read, update, delete, and previews of
//! the pool a rule draws from.

use serde::{Deserialize, Serialize};
use serde_json::json;
use sqlx::types::Json;
use utoipa::ToSchema;
use uuid::Uuid;

use super::questions::{Criteria, QuestionOut};
use super::{Actor, UnitOfWork, to_i32};
use crate::clock::Clock;
use crate::domain::enums::{RuleType, SelectionMode, SelectionStrategy, TestStatus, TestType};
use crate::domain::event::EventName;
use crate::domain::event_data::RuleChanged;
use crate::domain::ids::Scope;
use crate::domain::marks::Marks;
use crate::error::{AppError, AppResult};
use crate::service::de;
use crate::store::assessments as test_repo;
use crate::store::rules::{self as repo, Rule, RuleFilter};
use crate::store::{Id, Store, Tx};

/// The fields `create` refuses to go without (the OpenAPI document marks them required on
/// create; a patch may leave any out).
pub const REQUIRED_ON_CREATE: &[&str] = &[
    "name",
    "ruleType",
    "numberOfQuestions",
    "poolSize",
    "criteria",
];

/// Body of `POST /rules` (all optional in `PATCH /rules/{id}`).
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RuleIn {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default, deserialize_with = "de::nullable")]
    #[schema(value_type = Option<String>)]
    pub description: Option<Option<String>>,
    #[serde(default)]
    pub rule_type: Option<RuleType>,
    #[serde(default)]
    pub test_id: Option<Uuid>,
    #[serde(default, deserialize_with = "de::nullable")]
    #[schema(value_type = Option<Uuid>)]
    pub section_id: Option<Option<Uuid>>,
    #[serde(default)]
    pub number_of_questions: Option<u32>,
    #[serde(default)]
    pub pool_size: Option<u32>,
    #[serde(default, deserialize_with = "de::nullable")]
    #[schema(value_type = Option<f64>)]
    pub min_marks: Option<Option<Marks>>,
    #[serde(default, deserialize_with = "de::nullable")]
    #[schema(value_type = Option<f64>)]
    pub max_marks: Option<Option<Marks>>,
    #[serde(default)]
    pub selection_strategy: Option<SelectionStrategy>,
    #[serde(default)]
    pub criteria: Option<Criteria>,
    /// Accepted for compatibility and ignored (rules have no status).
    #[serde(default)]
    pub status: Option<TestStatus>,
    #[serde(default)]
    pub priority: Option<i32>,
    #[serde(default)]
    pub selection_mode: Option<SelectionMode>,
    #[serde(default)]
    pub is_active: Option<bool>,
}

pub(crate) fn summary(r: &Rule) -> RuleChanged {
    RuleChanged {
        rule_id: r.rule_id.0,
        test_id: r.test_id.map(|t| t.0),
        name: r.name.clone(),
        number_of_questions: r.number_of_questions,
        selection_mode: r.selection_mode,
    }
}

/// The rule's test, locked, when it may carry rules (rule-based, not published).
async fn lock_test(tx: &mut Tx, scope: &Scope, test_id: Uuid) -> AppResult<()> {
    let t = super::assessments::lock_live(tx, scope, test_id).await?;
    match t.test_type {
        TestType::Plain => Err(AppError::validation(
            "Plain tests should not have rules. Please add questions directly to sections.",
        )),
        TestType::Generated => Err(AppError::validation(
            "Cannot manually create rules for generated tests. They are created automatically during test attempts.",
        )),
        TestType::RuleBased if t.status == TestStatus::Published => Err(AppError::unprocessable(
            "Cannot modify rules of a published test; unpublish it first",
        )),
        TestType::RuleBased => Ok(()),
    }
}

async fn check_section(
    tx: &mut Tx,
    scope: &Scope,
    test_id: Option<Id>,
    section_id: Option<Id>,
) -> AppResult<()> {
    let Some(section_id) = section_id else {
        return Ok(());
    };
    let s = test_repo::section(&mut *tx, scope, section_id.0)
        .await?
        .ok_or_else(|| AppError::not_found("Section not found"))?;
    if test_id.is_some_and(|t| t != s.test_id) {
        return Err(AppError::validation(
            "The section does not belong to the rule's test",
        ));
    }
    Ok(())
}

fn validate(r: &Rule) -> AppResult<()> {
    if r.name.trim().is_empty() {
        return Err(AppError::validation("name should not be empty"));
    }
    if r.number_of_questions < 1 {
        return Err(AppError::validation("numberOfQuestions must be at least 1"));
    }
    if r.pool_size < r.number_of_questions {
        return Err(AppError::validation(
            "poolSize must be at least numberOfQuestions",
        ));
    }
    if let (Some(a), Some(b)) = (r.min_marks, r.max_marks)
        && a > b
    {
        return Err(AppError::validation("minMarks cannot exceed maxMarks"));
    }
    Ok(())
}

fn apply(r: &mut Rule, input: &RuleIn) -> AppResult<()> {
    if let Some(n) = &input.name {
        r.name = n.trim().to_string();
    }
    if let Some(d) = &input.description {
        r.description = d.clone();
    }
    if let Some(t) = input.rule_type {
        r.rule_type = t;
    }
    if let Some(s) = input.section_id {
        r.section_id = s.map(Id);
    }
    if let Some(n) = input.number_of_questions {
        r.number_of_questions = to_i32(n, "numberOfQuestions")?;
    }
    if let Some(n) = input.pool_size {
        r.pool_size = to_i32(n, "poolSize")?;
    }
    if let Some(m) = input.min_marks {
        r.min_marks = m.map(Marks::hundredths);
    }
    if let Some(m) = input.max_marks {
        r.max_marks = m.map(Marks::hundredths);
    }
    if let Some(s) = input.selection_strategy {
        r.selection_strategy = s;
    }
    if let Some(c) = &input.criteria {
        c.check()?;
        r.criteria = Json(serde_json::to_value(c).map_err(anyhow::Error::from)?);
    }
    if let Some(p) = input.priority {
        r.priority = p;
    }
    if let Some(m) = input.selection_mode {
        r.selection_mode = m;
    }
    if let Some(a) = input.is_active {
        r.is_active = a;
    }
    Ok(())
}

/// `POST /rules`.
pub async fn create(store: &Store, clock: &Clock, actor: &Actor, input: RuleIn) -> AppResult<Uuid> {
    let now = clock.now();
    let scope = actor.scope;
    let name = input
        .name
        .clone()
        .ok_or_else(|| AppError::validation("name should not be empty"))?;
    let rule_type = input
        .rule_type
        .ok_or_else(|| AppError::validation("ruleType should not be empty"))?;
    let n = input
        .number_of_questions
        .ok_or_else(|| AppError::validation("numberOfQuestions should not be empty"))?;
    let pool = input
        .pool_size
        .ok_or_else(|| AppError::validation("poolSize should not be empty"))?;
    if input.criteria.is_none() {
        return Err(AppError::validation("criteria should not be empty"));
    }
    let mut r = Rule {
        rule_id: Id(Uuid::new_v4()),
        tenant_id: Id(scope.tenant.as_uuid()),
        organisation_id: Id(scope.organisation.as_uuid()),
        name,
        description: None,
        rule_type,
        test_id: input.test_id.map(Id),
        section_id: None,
        number_of_questions: to_i32(n, "numberOfQuestions")?,
        pool_size: to_i32(pool, "poolSize")?,
        min_marks: None,
        max_marks: None,
        selection_strategy: SelectionStrategy::Random,
        criteria: Json(json!({})),
        selection_mode: SelectionMode::Dynamic,
        is_active: true,
        priority: 0,
        created_by: Id(actor.user_uuid()),
        created_at: now,
        updated_by: None,
        updated_at: now,
    };
    apply(&mut r, &input)?;
    validate(&r)?;
    let mut uow = UnitOfWork::begin_at(store, now, actor).await?;
    if let Some(t) = input.test_id {
        lock_test(uow.tx(), &scope, t).await?;
    }
    check_section(uow.tx(), &scope, r.test_id, r.section_id).await?;
    repo::insert(uow.tx(), &r).await?;
    uow.emit(EventName::RuleCreated, &summary(&r));
    uow.commit().await?;
    Ok(r.rule_id.0)
}

/// `PATCH /rules/{id}`.
pub async fn update(
    store: &Store,
    clock: &Clock,
    actor: &Actor,
    id: Uuid,
    input: RuleIn,
) -> AppResult<Uuid> {
    let scope = actor.scope;
    let mut uow = UnitOfWork::begin(store, clock, actor).await?;
    let mut r = repo::get(uow.tx(), &scope, id)
        .await?
        .ok_or_else(|| AppError::not_found("Rule not found"))?;
    if let Some(t) = r.test_id {
        lock_test(uow.tx(), &scope, t.0).await?;
    }
    if let Some(t) = input.test_id
        && Some(Id(t)) != r.test_id
    {
        lock_test(uow.tx(), &scope, t).await?;
        r.test_id = Some(Id(t));
    }
    apply(&mut r, &input)?;
    validate(&r)?;
    check_section(uow.tx(), &scope, r.test_id, r.section_id).await?;
    uow.stamp(&mut r);
    repo::update(uow.tx(), &r).await?;
    uow.emit(EventName::RuleUpdated, &summary(&r));
    uow.commit().await?;
    Ok(id)
}

/// `DELETE /rules/{id}`.
pub async fn delete(store: &Store, clock: &Clock, actor: &Actor, id: Uuid) -> AppResult<()> {
    let scope = actor.scope;
    let mut uow = UnitOfWork::begin(store, clock, actor).await?;
    let r = repo::get(uow.tx(), &scope, id)
        .await?
        .ok_or_else(|| AppError::not_found("Rule not found"))?;
    if let Some(t) = r.test_id {
        lock_test(uow.tx(), &scope, t.0).await?;
    }
    repo::delete(uow.tx(), &scope, id).await?;
    uow.emit(EventName::RuleDeleted, &summary(&r));
    uow.commit().await?;
    Ok(())
}

/// `GET /rules/{id}`.
pub async fn get(store: &Store, scope: &Scope, id: Uuid) -> AppResult<Rule> {
    repo::get(store, scope, id)
        .await?
        .ok_or_else(|| AppError::not_found("Rule not found"))
}

/// `GET /rules`, `/rules/test/{id}`, `/rules/section/{id}`.
pub async fn list(
    store: &Store,
    scope: &Scope,
    filter: RuleFilter,
    oldest_first: bool,
) -> AppResult<Vec<Rule>> {
    Ok(repo::list(store, scope, filter, oldest_first).await?)
}

/// What a rule's pool can supply.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RulePool {
    pub rule: Rule,
    pub questions: Vec<QuestionOut>,
    pub total_count: usize,
    pub can_generate_pool: bool,
    pub can_create_test: bool,
}

/// The questions a rule can draw from (published, top-level, matching its criteria; for
/// PRESELECTED rules, only those linked to the test under this rule).
pub async fn pool(store: &Store, scope: &Scope, id: Uuid) -> AppResult<RulePool> {
    let rule = get(store, scope, id).await?;
    let mut tx = store.begin_read().await?;
    let questions = super::assessments::rule_pool(&mut tx, scope, &rule).await?;
    tx.rollback().await?;
    let total = questions.len();
    let questions = super::questions::with_options(store, scope, questions).await?;
    Ok(RulePool {
        can_generate_pool: total >= rule.pool_size.max(0) as usize,
        can_create_test: total >= rule.number_of_questions.max(0) as usize,
        total_count: total,
        questions,
        rule,
    })
}
