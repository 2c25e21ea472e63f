//! Tests: create, list, read, update, delete, clone, publish and unpublish, and the
//! questions linked to them. Every change to a test's structure locks the test row first.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::questions::{Criteria, descending};
use super::{Actor, Page, UnitOfWork, conflict_on_unique, page_window};
use crate::clock::Clock;
use crate::domain::enums::{AttemptsGrading, GradingType, SelectionMode, TestStatus, TestType};
use crate::domain::event::EventName;
use crate::domain::ids::Scope;
use crate::domain::marks::Marks;
use crate::domain::test::{self as rules_of, PublishFacts, RuleSupply};
use crate::error::{AppError, AppResult};
use crate::http::de;
use crate::store::questions as question_repo;
use crate::store::rules::{self as rule_repo, Rule, RuleFilter};
use crate::store::tests::{self as repo, DateOp, Section, Test, TestFilter, TestQuestion};
use crate::store::{Id, Store, Ts, Tx};

/// Body of `POST /tests` (and, all optional, of `PATCH /tests/{id}`).
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct TestIn {
    #[serde(default, rename = "type")]
    pub test_type: Option<TestType>,
    #[serde(default)]
    pub title: Option<String>,
    #[serde(default)]
    pub grading_type: Option<GradingType>,
    #[serde(default, deserialize_with = "de::nullable")]
    #[schema(value_type = Option<Uuid>)]
    pub parent_id: Option<Option<Uuid>>,
    #[serde(default, deserialize_with = "de::nullable")]
    #[schema(value_type = Option<String>)]
    pub alias: Option<Option<String>>,
    #[serde(default, deserialize_with = "de::nullable")]
    #[schema(value_type = Option<String>)]
    pub description: Option<Option<String>>,
    #[serde(default, deserialize_with = "de::nullable")]
    #[schema(value_type = Option<String>)]
    pub reviewers: Option<Option<String>>,
    #[serde(default, deserialize_with = "de::nullable")]
    #[schema(value_type = Option<String>)]
    pub image: Option<Option<String>>,
    #[serde(default)]
    pub status: Option<TestStatus>,
    #[serde(default)]
    pub show_time: Option<bool>,
    #[serde(default)]
    pub show_time_finished: Option<bool>,
    /// Seconds.
    #[serde(default, deserialize_with = "de::nullable")]
    #[schema(value_type = Option<u32>)]
    pub time_duration: Option<Option<u32>>,
    #[serde(default, deserialize_with = "de::nullable")]
    #[schema(value_type = Option<u32>)]
    pub time_finished_duration: Option<Option<u32>>,
    #[serde(default)]
    #[schema(value_type = Option<f64>)]
    pub total_marks: Option<Marks>,
    #[serde(default)]
    #[schema(value_type = Option<f64>)]
    pub passing_marks: Option<Marks>,
    #[serde(default, deserialize_with = "de::nullable")]
    #[schema(value_type = Option<u32>)]
    pub pagination_limit: Option<Option<u32>>,
    #[serde(default)]
    pub ordering: Option<i32>,
    /// Attempts allowed per learner (1 to 1000).
    #[serde(default)]
    pub attempts: Option<u32>,
    #[serde(default, deserialize_with = "de::nullable")]
    #[schema(value_type = Option<DateTime<Utc>>)]
    pub start_date: Option<Option<DateTime<Utc>>>,
    #[serde(default, deserialize_with = "de::nullable")]
    #[schema(value_type = Option<DateTime<Utc>>)]
    pub end_date: Option<Option<DateTime<Utc>>>,
    #[serde(default)]
    pub answer_sheet: Option<bool>,
    #[serde(default)]
    pub show_correct_answer: Option<bool>,
    #[serde(default)]
    pub print_answersheet: Option<bool>,
    #[serde(default)]
    pub questions_shuffle: Option<bool>,
    #[serde(default)]
    pub answers_shuffle: Option<bool>,
    #[serde(default)]
    pub show_thankyou_page: Option<bool>,
    #[serde(default)]
    pub show_all_questions: Option<bool>,
    #[serde(default)]
    pub show_questions_overview: Option<bool>,
    /// Accepted for compatibility and ignored: the service derives it from the questions.
    #[serde(default)]
    pub is_objective: Option<bool>,
    #[serde(default)]
    pub allow_resubmission: Option<bool>,
    #[serde(default)]
    pub attempts_grading: Option<AttemptsGrading>,
    #[serde(default, deserialize_with = "de::nullable")]
    #[schema(value_type = Option<Uuid>)]
    pub checked_out: Option<Option<Uuid>>,
    #[serde(default, deserialize_with = "de::nullable")]
    #[schema(value_type = Option<DateTime<Utc>>)]
    pub checked_out_time: Option<Option<DateTime<Utc>>>,
    #[serde(default, deserialize_with = "de::nullable")]
    #[schema(value_type = Option<String>)]
    pub context_type: Option<Option<String>>,
    #[serde(default, deserialize_with = "de::nullable")]
    #[schema(value_type = Option<Uuid>)]
    pub context_id: Option<Option<Uuid>>,
}

fn int(v: u32, field: &str) -> AppResult<i32> {
    i32::try_from(v).map_err(|_| AppError::validation(format!("{field} is too large")))
}

/// Applies the fields of `input` to `t` (create starts from defaults).
fn apply(t: &mut Test, input: &TestIn) -> AppResult<()> {
    if let Some(title) = &input.title {
        let title = title.trim();
        if title.is_empty() {
            return Err(AppError::validation("Title is required"));
        }
        t.title = title.to_string();
    }
    if let Some(g) = input.grading_type {
        t.grading_type = g;
    }
    if let Some(p) = input.parent_id {
        t.parent_id = p.map(Id);
    }
    if let Some(d) = &input.description {
        t.description = d.clone();
    }
    if let Some(r) = &input.reviewers {
        t.reviewers = r.clone();
    }
    if let Some(i) = &input.image {
        t.image = i.clone();
    }
    if let Some(v) = input.show_time {
        t.show_time = v;
    }
    if let Some(v) = input.show_time_finished {
        t.show_time_finished = v;
    }
    if let Some(v) = input.time_duration {
        t.time_duration = v.map(|s| int(s, "timeDuration")).transpose()?;
    }
    if let Some(v) = input.time_finished_duration {
        t.time_finished_duration = v.map(|s| int(s, "timeFinishedDuration")).transpose()?;
    }
    if let Some(v) = input.total_marks {
        t.total_marks = v;
        // 0 asks the service to compute it at publishing.
        t.total_marks_computed = false;
    }
    if let Some(v) = input.passing_marks {
        t.passing_marks = v;
    }
    if let Some(v) = input.pagination_limit {
        t.pagination_limit = v.map(|s| int(s, "paginationLimit")).transpose()?;
    }
    if let Some(v) = input.ordering {
        t.ordering = v;
    }
    if let Some(v) = input.attempts {
        if !(1..=1000).contains(&v) {
            return Err(AppError::validation("attempts must be between 1 and 1000"));
        }
        t.attempts = v as i32;
    }
    if let Some(v) = input.start_date {
        t.start_date = v.map(Ts::new);
    }
    if let Some(v) = input.end_date {
        t.end_date = v.map(Ts::new);
    }
    if let (Some(s), Some(e)) = (t.start_date, t.end_date) {
        if e <= s {
            return Err(AppError::validation(
                "End date is invalid or must be greater than start date",
            ));
        }
    }
    for (field, value) in [
        (&mut t.answer_sheet, input.answer_sheet),
        (&mut t.show_correct_answer, input.show_correct_answer),
        (&mut t.print_answersheet, input.print_answersheet),
        (&mut t.questions_shuffle, input.questions_shuffle),
        (&mut t.answers_shuffle, input.answers_shuffle),
        (&mut t.show_thankyou_page, input.show_thankyou_page),
        (&mut t.show_all_questions, input.show_all_questions),
        (
            &mut t.show_questions_overview,
            input.show_questions_overview,
        ),
        (&mut t.allow_resubmission, input.allow_resubmission),
    ] {
        if let Some(v) = value {
            *field = v;
        }
    }
    if let Some(v) = input.attempts_grading {
        t.attempts_grading = v;
    }
    if let Some(v) = input.checked_out {
        t.checked_out = v.map(Id);
    }
    if let Some(v) = input.checked_out_time {
        t.checked_out_time = v.map(Ts::new);
    }
    if let Some(v) = &input.context_type {
        if v.as_deref().is_some_and(|c| c.chars().count() > 50) {
            return Err(AppError::validation(
                "contextType must be at most 50 characters",
            ));
        }
        t.context_type = v.clone();
    }
    if let Some(v) = input.context_id {
        t.context_id = v.map(Id);
    }
    Ok(())
}

pub(crate) fn test_summary(t: &Test) -> Value {
    json!({"testId": t.test_id, "testTitle": t.title, "testType": t.test_type, "status": t.status})
}

/// Inserts `t`, choosing the first free alias from its slug (the unique constraint decides).
async fn insert_with_alias(tx: &mut Tx, t: &mut Test, wanted: &str) -> AppResult<()> {
    let base = rules_of::slug(wanted);
    for candidate in rules_of::alias_candidates(&base) {
        t.alias = Some(candidate);
        if repo::insert(tx, t).await? {
            return Ok(());
        }
    }
    t.alias = Some(format!(
        "{}-{}",
        if base.is_empty() { "test" } else { &base },
        Uuid::new_v4().simple()
    ));
    if repo::insert(tx, t).await? {
        return Ok(());
    }
    Err(AppError::conflict(
        "Could not find a free alias for this test",
    ))
}

fn new_test(actor: &Actor, now: Ts) -> Test {
    Test {
        test_id: Id(Uuid::new_v4()),
        parent_id: None,
        test_type: TestType::Plain,
        tenant_id: Id(actor.scope.tenant.as_uuid()),
        organisation_id: Id(actor.scope.organisation.as_uuid()),
        ordering: 0,
        attempts: 1,
        attempts_grading: AttemptsGrading::LastAttempt,
        status: TestStatus::Draft,
        title: String::new(),
        alias: None,
        description: None,
        reviewers: None,
        image: None,
        show_time: false,
        time_duration: None,
        show_time_finished: false,
        time_finished_duration: None,
        total_marks: Marks::ZERO,
        passing_marks: Marks::ZERO,
        start_date: None,
        end_date: None,
        // Upstream's create defaults for the display flags.
        answer_sheet: true,
        show_correct_answer: true,
        print_answersheet: true,
        questions_shuffle: true,
        answers_shuffle: true,
        grading_type: GradingType::Quiz,
        is_objective: true,
        show_thankyou_page: true,
        show_all_questions: true,
        show_questions_overview: true,
        pagination_limit: None,
        allow_resubmission: false,
        checked_out: None,
        checked_out_time: None,
        context_type: None,
        context_id: None,
        created_by: Id(actor.user_uuid()),
        created_at: now,
        updated_by: None,
        updated_at: now,
        total_marks_computed: false,
    }
}

/// `POST /tests`.
pub async fn create(store: &Store, clock: &Clock, actor: &Actor, input: TestIn) -> AppResult<Uuid> {
    let mut uow = UnitOfWork::begin(store, clock, actor).await?;
    let now = uow.now();
    let test_type = input
        .test_type
        .ok_or_else(|| AppError::validation("type should not be empty"))?;
    if test_type == TestType::Generated {
        return Err(AppError::validation(
            "generated tests are created by the service when a rule-based attempt starts",
        ));
    }
    if input.title.is_none() {
        return Err(AppError::validation("Title is required"));
    }
    let mut t = new_test(actor, now);
    t.test_type = test_type;
    apply(&mut t, &input)?;
    let target = input.status.unwrap_or(TestStatus::Draft);
    if target == TestStatus::Archived {
        return Err(AppError::validation("A test cannot be created archived"));
    }
    t.status = TestStatus::Draft;
    let wanted = input
        .alias
        .clone()
        .flatten()
        .filter(|a| !a.trim().is_empty())
        .unwrap_or_else(|| t.title.clone());
    check_parent(uow.tx(), &actor.scope, t.parent_id).await?;
    insert_with_alias(uow.tx(), &mut t, &wanted).await?;
    uow.emit(EventName::TestCreated, test_summary(&t));
    if target != TestStatus::Draft {
        change_status(&mut uow, &mut t, target).await?;
    }
    uow.commit().await?;
    Ok(t.test_id.0)
}

/// A test's `parentId` must name a test of the same scope.
async fn check_parent(tx: &mut Tx, scope: &Scope, parent: Option<Id>) -> AppResult<()> {
    if let Some(p) = parent {
        if repo::get(&mut *tx, scope, p.0).await?.is_none() {
            return Err(AppError::not_found("Parent test not found"));
        }
    }
    Ok(())
}

/// Moves a test to `target` with the checks and events of publish / unpublish.
async fn change_status(uow: &mut UnitOfWork, t: &mut Test, target: TestStatus) -> AppResult<()> {
    if t.status == target {
        return Ok(());
    }
    let scope = uow.scope();
    match target {
        TestStatus::Published => {
            let facts = publish_facts(uow.tx(), &scope, t).await?;
            let publication = rules_of::check_publish(&facts).map_err(AppError::Unprocessable)?;
            t.total_marks_computed = facts.total_marks == Marks::ZERO;
            t.total_marks = publication.total_marks;
            t.status = TestStatus::Published;
            uow.stamp(t);
            repo::update(uow.tx(), t).await?;
            uow.emit(
                EventName::TestPublished,
                json!({
                    "testId": t.test_id,
                    "testTitle": t.title,
                    "testType": t.test_type,
                    "totalMarks": publication.total_marks,
                    "questionCount": publication.question_count,
                }),
            );
        }
        TestStatus::Unpublished | TestStatus::Draft => {
            let was_published = t.status == TestStatus::Published;
            t.status = target;
            uow.stamp(t);
            repo::update(uow.tx(), t).await?;
            if was_published {
                let count = question_count(uow.tx(), &scope, t).await?;
                uow.emit(
                    EventName::TestUnpublished,
                    json!({
                        "testId": t.test_id,
                        "testTitle": t.title,
                        "testType": t.test_type,
                        "totalMarks": t.total_marks,
                        "questionCount": count,
                    }),
                );
            }
        }
        TestStatus::Archived => {
            return Err(AppError::validation(
                "Archive a test with DELETE /tests/{id}, not by setting its status",
            ));
        }
    }
    Ok(())
}

async fn question_count(tx: &mut Tx, scope: &Scope, t: &Test) -> AppResult<u32> {
    Ok(match t.test_type {
        TestType::RuleBased => {
            let rules = rule_repo::list(
                &mut *tx,
                scope,
                RuleFilter {
                    test_id: Some(t.test_id.0),
                    active_only: true,
                    ..RuleFilter::default()
                },
                false,
            )
            .await?;
            rules
                .iter()
                .map(|r| r.number_of_questions.max(0) as u32)
                .sum()
        }
        _ => repo::linked_question_facts(tx, scope, t.test_id.0)
            .await?
            .iter()
            .filter(|(_, _, conditional)| !conditional)
            .count() as u32,
    })
}

/// What a rule's pool holds, for publishing and previews.
pub async fn rule_pool(
    tx: &mut Tx,
    scope: &Scope,
    rule: &Rule,
) -> AppResult<Vec<question_repo::Question>> {
    // Criteria are written by this service; one it cannot read is a bug, not "match all".
    let criteria: Criteria = serde_json::from_value(rule.criteria.0.clone())
        .map_err(|e| anyhow::anyhow!("rule {} has unreadable criteria: {e}", rule.rule_id.0))?;
    let mut filter = criteria.filter();
    filter.min_marks = rule.min_marks();
    filter.max_marks = rule.max_marks();
    match rule.selection_mode {
        SelectionMode::Dynamic => Ok(question_repo::matching(&mut *tx, scope, &filter).await?),
        SelectionMode::Preselected => {
            let Some(test_id) = rule.test_id else {
                return Ok(Vec::new());
            };
            let ids: Vec<Uuid> = repo::links_of(&mut *tx, scope, test_id.0)
                .await?
                .into_iter()
                .filter(|l| l.rule_id == Some(rule.rule_id))
                .map(|l| l.question_id.0)
                .collect();
            if ids.is_empty() {
                return Ok(Vec::new());
            }
            filter.include_ids = ids;
            Ok(question_repo::matching(&mut *tx, scope, &filter).await?)
        }
    }
}

async fn publish_facts(tx: &mut Tx, scope: &Scope, t: &Test) -> AppResult<PublishFacts> {
    let question_marks = repo::linked_question_facts(tx, scope, t.test_id.0)
        .await?
        .into_iter()
        .filter(|(_, _, conditional)| !conditional)
        .map(|(_, m, _)| m)
        .collect();
    let mut supplies = Vec::new();
    if t.test_type == TestType::RuleBased {
        let rules = rule_repo::list(
            &mut *tx,
            scope,
            RuleFilter {
                test_id: Some(t.test_id.0),
                active_only: true,
                ..RuleFilter::default()
            },
            false,
        )
        .await?;
        for rule in &rules {
            let pool = rule_pool(tx, scope, rule).await?;
            let first = pool.first().map(|q| q.marks);
            let uniform = first.filter(|m| pool.iter().all(|q| q.marks == *m));
            supplies.push(RuleSupply {
                name: rule.name.clone(),
                needed: rule.number_of_questions.max(0) as u32,
                available: pool.len() as u32,
                uniform_marks: uniform,
            });
        }
    }
    Ok(PublishFacts {
        test_type: t.test_type,
        question_marks,
        rules: supplies,
        // A total the service computed last time is computed afresh.
        total_marks: if t.total_marks_computed {
            Marks::ZERO
        } else {
            t.total_marks
        },
        passing_marks: t.passing_marks,
    })
}

/// `PATCH /tests/{id}`: only the fields sent change; a `status` goes through publish checks.
pub async fn update(
    store: &Store,
    clock: &Clock,
    actor: &Actor,
    id: Uuid,
    input: TestIn,
) -> AppResult<Uuid> {
    let mut uow = UnitOfWork::begin(store, clock, actor).await?;
    let mut t = lock_live(uow.tx(), &actor.scope, id).await?;
    if let Some(tt) = input.test_type {
        if tt != t.test_type {
            return Err(AppError::unprocessable(
                "The type of a test cannot change; create a new test instead",
            ));
        }
    }
    let before = t.clone();
    if let Some(parent) = input.parent_id.flatten() {
        check_parent(uow.tx(), &actor.scope, Some(Id(parent))).await?;
    }
    apply(&mut t, &input)?;
    if let Some(alias) = &input.alias {
        match alias.as_deref().map(str::trim).filter(|a| !a.is_empty()) {
            Some(a) => {
                let s = rules_of::slug(a);
                if s.is_empty() {
                    return Err(AppError::validation("alias must contain letters or digits"));
                }
                t.alias = Some(s);
            }
            None => t.alias = None,
        }
    }
    if t != before {
        if t.status == TestStatus::Published && input.status != Some(TestStatus::Unpublished) {
            // A published test keeps satisfying the publish checks (marks, passing marks).
            let facts = publish_facts(uow.tx(), &actor.scope, &t).await?;
            let publication = rules_of::check_publish(&facts).map_err(AppError::Unprocessable)?;
            t.total_marks = publication.total_marks;
        }
        uow.stamp(&mut t);
        repo::update(uow.tx(), &t)
            .await
            .map_err(|e| conflict_on_unique(e, "alias is already used by another test"))?;
        uow.emit(EventName::TestUpdated, test_summary(&t));
    }
    if let Some(target) = input.status {
        change_status(&mut uow, &mut t, target).await?;
    }
    uow.commit().await?;
    Ok(id)
}

/// The test locked for a change; archived tests are gone (404).
async fn lock_live(tx: &mut Tx, scope: &Scope, id: Uuid) -> AppResult<Test> {
    repo::lock(tx, scope, id)
        .await?
        .filter(|t| t.status != TestStatus::Archived)
        .ok_or_else(|| AppError::not_found("Test not found"))
}

/// A test whose structure may change: not published (422), not generated (400).
pub(crate) async fn lock_editable(
    tx: &mut Tx,
    scope: &Scope,
    id: Uuid,
    what: &str,
) -> AppResult<Test> {
    let t = lock_live(tx, scope, id).await?;
    if t.status == TestStatus::Published {
        return Err(AppError::unprocessable(format!(
            "Cannot modify {what} of a published test; unpublish it first"
        )));
    }
    if t.test_type == TestType::Generated {
        return Err(AppError::validation(format!(
            "Cannot manually change {what} of generated tests. They are created automatically \
             during test attempts."
        )));
    }
    Ok(t)
}

/// `POST /tests/{id}/publish`.
pub async fn publish(store: &Store, clock: &Clock, actor: &Actor, id: Uuid) -> AppResult<Test> {
    set_status(store, clock, actor, id, TestStatus::Published).await
}

/// `POST /tests/{id}/unpublish`.
pub async fn unpublish(store: &Store, clock: &Clock, actor: &Actor, id: Uuid) -> AppResult<Test> {
    set_status(store, clock, actor, id, TestStatus::Unpublished).await
}

async fn set_status(
    store: &Store,
    clock: &Clock,
    actor: &Actor,
    id: Uuid,
    target: TestStatus,
) -> AppResult<Test> {
    let mut uow = UnitOfWork::begin(store, clock, actor).await?;
    let mut t = lock_live(uow.tx(), &actor.scope, id).await?;
    if target == TestStatus::Published && t.status == TestStatus::Published {
        return Err(AppError::conflict("Test is already published"));
    }
    if target == TestStatus::Unpublished && t.status != TestStatus::Published {
        return Err(AppError::conflict("Test is not published"));
    }
    change_status(&mut uow, &mut t, target).await?;
    uow.commit().await?;
    Ok(t)
}

/// `DELETE /tests/{id}[?hard=true]`.
pub async fn delete(
    store: &Store,
    clock: &Clock,
    actor: &Actor,
    id: Uuid,
    hard: bool,
) -> AppResult<()> {
    let mut uow = UnitOfWork::begin(store, clock, actor).await?;
    let mut t = lock_live(uow.tx(), &actor.scope, id).await?;
    if repo::attempt_count(uow.tx(), &actor.scope, id).await? > 0 {
        return Err(AppError::validation(
            "Cannot delete test that has attempts. Archive the test instead.",
        ));
    }
    if hard {
        repo::delete(uow.tx(), &actor.scope, id).await?;
    } else {
        for mut s in repo::sections_of(uow.tx(), &actor.scope, id).await? {
            s.status = crate::domain::enums::SectionStatus::Archived;
            uow.stamp(&mut s);
            repo::update_section(uow.tx(), &s).await?;
        }
        t.status = TestStatus::Archived;
        uow.stamp(&mut t);
        repo::update(uow.tx(), &t).await?;
    }
    uow.emit(EventName::TestDeleted, json!({"testId": id, "hard": hard}));
    uow.commit().await?;
    Ok(())
}

/// Query of `GET /tests` (and body of `POST /tests/listsearch`).
#[derive(Debug, Clone, Default, Deserialize, IntoParams, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
pub struct TestListQuery {
    #[serde(default, deserialize_with = "de::opt_num")]
    pub limit: Option<i64>,
    #[serde(default, deserialize_with = "de::opt_num")]
    pub offset: Option<i64>,
    #[serde(default)]
    pub search: Option<String>,
    /// Without it, archived tests are left out.
    #[serde(default)]
    pub status: Option<TestStatus>,
    #[serde(default, rename = "type")]
    #[param(rename = "type")]
    pub test_type: Option<TestType>,
    #[serde(default)]
    #[param(value_type = Option<f64>)]
    #[schema(value_type = Option<f64>)]
    pub min_marks: Option<Marks>,
    #[serde(default)]
    #[param(value_type = Option<f64>)]
    #[schema(value_type = Option<f64>)]
    pub max_marks: Option<Marks>,
    #[serde(default)]
    pub context_type: Option<String>,
    #[serde(default, deserialize_with = "de::list")]
    pub context_id: Vec<Uuid>,
    /// Bounds on startDate: any of gt, gte, lt, lte, eq (`startDate[gte]=2026-03-09`).
    #[serde(default)]
    #[param(value_type = Option<Object>, style = DeepObject, explode)]
    #[schema(value_type = Option<Object>)]
    pub start_date: Option<HashMap<String, String>>,
    #[serde(default)]
    #[param(value_type = Option<Object>, style = DeepObject, explode)]
    #[schema(value_type = Option<Object>)]
    pub end_date: Option<HashMap<String, String>>,
    /// One of createdAt, updatedAt, title, ordering, totalMarks, startDate, endDate, status, type.
    #[serde(default)]
    pub sort_by: Option<String>,
    #[serde(default)]
    pub sort_order: Option<String>,
}

fn date_ops(field: &str, raw: &Option<HashMap<String, String>>) -> AppResult<Vec<(DateOp, Ts)>> {
    let Some(map) = raw else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    for (k, v) in map {
        let op = match k.as_str() {
            "gt" => DateOp::Gt,
            "gte" => DateOp::Gte,
            "lt" => DateOp::Lt,
            "lte" => DateOp::Lte,
            "eq" => DateOp::Eq,
            other => {
                return Err(AppError::validation(format!(
                    "{field}.{other}: use gt, gte, lt, lte or eq"
                )));
            }
        };
        out.push((
            op,
            parse_date(v).ok_or_else(|| {
                AppError::validation(format!("{field}.{k} must be an ISO 8601 date"))
            })?,
        ));
    }
    Ok(out)
}

fn parse_date(s: &str) -> Option<Ts> {
    let s = s.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(Ts::new(t.with_timezone(&Utc)));
    }
    chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|d| Ts::new(d.and_utc()))
}

/// `GET /tests`.
pub async fn list(store: &Store, scope: &Scope, q: TestListQuery) -> AppResult<Page<Test>> {
    let (limit, offset) = page_window(q.limit, q.offset)?;
    let sort = q.sort_by.as_deref().unwrap_or("createdAt");
    let order_by = repo::test_sort_column(sort).ok_or_else(|| {
        AppError::validation(format!(
            "sortBy must be one of createdAt, updatedAt, title, ordering, totalMarks, \
             startDate, endDate, status, type (not {sort:?})"
        ))
    })?;
    let desc = descending(q.sort_order.as_deref())?;
    let filter = TestFilter {
        search: q.search.clone(),
        status: q.status,
        test_type: q.test_type,
        min_marks: q.min_marks,
        max_marks: q.max_marks,
        context_type: q.context_type.clone().filter(|c| !c.trim().is_empty()),
        context_ids: q.context_id.clone(),
        start_date: date_ops("startDate", &q.start_date)?,
        end_date: date_ops("endDate", &q.end_date)?,
    };
    let (rows, total) = repo::list(store, scope, &filter, order_by, desc, limit, offset).await?;
    Ok(Page::new(rows, total, limit, offset))
}

/// A test with its sections and question links (`GET /tests/{id}`).
#[derive(Debug, Serialize, ToSchema)]
pub struct TestDetail {
    #[serde(flatten)]
    pub test: Test,
    pub sections: Vec<Section>,
    pub questions: Vec<TestQuestion>,
}

/// `GET /tests/{id}`: any status but archived.
pub async fn get(store: &Store, scope: &Scope, id: Uuid) -> AppResult<TestDetail> {
    let test = live(store, scope, id).await?;
    Ok(TestDetail {
        sections: repo::sections_of(store, scope, id).await?,
        questions: repo::links_of(store, scope, id).await?,
        test,
    })
}

async fn live(store: &Store, scope: &Scope, id: Uuid) -> AppResult<Test> {
    repo::get(store, scope, id)
        .await?
        .filter(|t| t.status != TestStatus::Archived)
        .ok_or_else(|| AppError::not_found("Test not found"))
}

/// Recomputes `isObjective`: every linked question is of an auto-scored type.
pub(crate) async fn refresh_derived(tx: &mut Tx, scope: &Scope, test_id: Uuid) -> AppResult<()> {
    let facts = repo::linked_question_facts(tx, scope, test_id).await?;
    let objective = facts.iter().all(|(t, _, _)| t.is_objective());
    repo::set_derived(tx, scope, test_id, objective).await?;
    Ok(())
}

/// After questions were added to or removed from `t`: its derived fields, and `test.updated`.
async fn questions_changed(uow: &mut UnitOfWork, t: &Test) -> AppResult<()> {
    let scope = uow.scope();
    refresh_derived(uow.tx(), &scope, t.test_id.0).await?;
    uow.emit(EventName::TestUpdated, test_summary(t));
    Ok(())
}

/// Body of `POST /tests/{id}/questions`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct AddQuestionIn {
    pub section_id: Uuid,
    pub question_id: Uuid,
    #[serde(default)]
    pub is_compulsory: Option<bool>,
    /// Accepted; the service derives it from the question's parent link.
    #[serde(default)]
    pub is_conditional: Option<bool>,
    /// The rule whose pre-selected pool this question joins (rule-based tests).
    #[serde(default)]
    pub rule_id: Option<Uuid>,
    #[serde(default)]
    pub ordering: Option<i32>,
}

pub(crate) async fn check_section(
    tx: &mut Tx,
    scope: &Scope,
    test_id: Uuid,
    section_id: Uuid,
) -> AppResult<Section> {
    repo::section(&mut *tx, scope, section_id)
        .await?
        .filter(|s| {
            s.test_id.0 == test_id && s.status != crate::domain::enums::SectionStatus::Archived
        })
        .ok_or_else(|| {
            AppError::not_found("Section not found or does not belong to the specified test")
        })
}

async fn check_rule(
    tx: &mut Tx,
    scope: &Scope,
    t: &Test,
    rule_id: Option<Uuid>,
) -> AppResult<Option<Id>> {
    let Some(rule_id) = rule_id else {
        return Ok(None);
    };
    let rule = rule_repo::get(&mut *tx, scope, rule_id)
        .await?
        .filter(|r| r.test_id == Some(t.test_id))
        .ok_or_else(|| AppError::not_found("Rule not found for this test"))?;
    if rule.selection_mode != SelectionMode::Preselected {
        return Err(AppError::validation(
            "Questions can be linked to a rule only in PRESELECTED mode",
        ));
    }
    Ok(Some(rule.rule_id))
}

/// `POST /tests/{id}/questions`.
pub async fn add_question(
    store: &Store,
    clock: &Clock,
    actor: &Actor,
    test_id: Uuid,
    input: AddQuestionIn,
) -> AppResult<()> {
    let mut uow = UnitOfWork::begin(store, clock, actor).await?;
    let scope = actor.scope;
    let t = lock_editable(uow.tx(), &scope, test_id, "questions").await?;
    check_section(uow.tx(), &scope, test_id, input.section_id).await?;
    let rule_id = check_rule(uow.tx(), &scope, &t, input.rule_id).await?;
    let q = question_repo::get(uow.tx(), &scope, input.question_id)
        .await?
        .filter(|q| q.status != crate::domain::enums::QuestionStatus::Archived)
        .ok_or_else(|| AppError::not_found("Question not found"))?;
    let ordering = match input.ordering {
        Some(o) => o,
        None => super::next_ordering(
            repo::max_ordering(uow.tx(), &scope, test_id, Some(input.section_id)).await?,
        )?,
    };
    let link = TestQuestion {
        test_question_id: Id(Uuid::new_v4()),
        tenant_id: Id(scope.tenant.as_uuid()),
        organisation_id: Id(scope.organisation.as_uuid()),
        test_id: Id(test_id),
        question_id: q.question_id,
        ordering,
        section_id: Some(Id(input.section_id)),
        rule_id,
        is_compulsory: input.is_compulsory.unwrap_or(false),
        is_conditional: q.parent_id.is_some(),
    };
    if !repo::insert_link(uow.tx(), &link).await? {
        return Err(AppError::conflict("Question is already added to this test"));
    }
    questions_changed(&mut uow, &t).await?;
    uow.commit().await?;
    Ok(())
}

/// One item of a bulk add.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct BulkItem {
    pub question_id: Uuid,
    #[serde(default)]
    pub ordering: Option<i32>,
    #[serde(default)]
    pub is_compulsory: Option<bool>,
    #[serde(default)]
    pub rule_id: Option<Uuid>,
}

/// Body of `POST /tests/{id}/questions/bulk`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct BulkAddIn {
    pub section_id: Uuid,
    pub questions: Vec<BulkItem>,
}

/// What a bulk add did.
#[derive(Debug, Serialize, ToSchema)]
pub struct BulkOutcome {
    pub added: u32,
    pub skipped: u32,
    pub errors: Vec<String>,
}

/// `POST /tests/{id}/questions/bulk`: one transaction; items without an ordering get
/// distinct orderings after the section's last one.
pub async fn bulk_add(
    store: &Store,
    clock: &Clock,
    actor: &Actor,
    test_id: Uuid,
    input: BulkAddIn,
) -> AppResult<BulkOutcome> {
    if input.questions.is_empty() {
        return Err(AppError::validation(
            "At least one question must be provided",
        ));
    }
    let mut uow = UnitOfWork::begin(store, clock, actor).await?;
    let scope = actor.scope;
    let t = lock_editable(uow.tx(), &scope, test_id, "questions").await?;
    check_section(uow.tx(), &scope, test_id, input.section_id).await?;
    let mut next = repo::max_ordering(uow.tx(), &scope, test_id, Some(input.section_id)).await?;
    let mut outcome = BulkOutcome {
        added: 0,
        skipped: 0,
        errors: Vec::new(),
    };
    let mut missing = Vec::new();
    let mut seen = HashSet::new();
    for item in &input.questions {
        if !seen.insert(item.question_id) {
            outcome.skipped += 1;
            continue;
        }
        let rule_id = check_rule(uow.tx(), &scope, &t, item.rule_id).await?;
        let Some(q) = question_repo::get(uow.tx(), &scope, item.question_id)
            .await?
            .filter(|q| q.status != crate::domain::enums::QuestionStatus::Archived)
        else {
            missing.push(item.question_id.to_string());
            continue;
        };
        let ordering = match item.ordering {
            Some(o) => o,
            None => {
                next = super::next_ordering(next)?;
                next
            }
        };
        let link = TestQuestion {
            test_question_id: Id(Uuid::new_v4()),
            tenant_id: Id(scope.tenant.as_uuid()),
            organisation_id: Id(scope.organisation.as_uuid()),
            test_id: Id(test_id),
            question_id: q.question_id,
            ordering,
            section_id: Some(Id(input.section_id)),
            rule_id,
            is_compulsory: item.is_compulsory.unwrap_or(false),
            is_conditional: q.parent_id.is_some(),
        };
        if repo::insert_link(uow.tx(), &link).await? {
            outcome.added += 1;
        } else {
            outcome.skipped += 1;
        }
    }
    if !missing.is_empty() {
        outcome
            .errors
            .push(format!("Questions not found: {}", missing.join(", ")));
    }
    if outcome.added > 0 {
        questions_changed(&mut uow, &t).await?;
    }
    uow.commit().await?;
    Ok(outcome)
}

/// `DELETE /tests/{testId}/question/{questionId}`.
pub async fn remove_question(
    store: &Store,
    clock: &Clock,
    actor: &Actor,
    test_id: Uuid,
    question_id: Uuid,
) -> AppResult<()> {
    let mut uow = UnitOfWork::begin(store, clock, actor).await?;
    let scope = actor.scope;
    let t = lock_editable(uow.tx(), &scope, test_id, "questions").await?;
    if repo::attempt_count(uow.tx(), &scope, test_id).await? > 0 {
        return Err(AppError::validation(
            "Cannot remove questions from a test that has attempts",
        ));
    }
    if !repo::delete_link(uow.tx(), &scope, test_id, question_id).await? {
        return Err(AppError::not_found("Question not found in this test"));
    }
    questions_changed(&mut uow, &t).await?;
    uow.commit().await?;
    Ok(())
}

/// A question's place in `PUT /tests/{id}/structure`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct StructureQuestion {
    pub question_id: Uuid,
    pub order: u32,
}

/// A section's place in `PUT /tests/{id}/structure`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct StructureSection {
    pub section_id: Uuid,
    pub order: u32,
    #[serde(default)]
    pub questions: Vec<StructureQuestion>,
}

/// Body of `PUT /tests/{id}/structure`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StructureIn {
    pub sections: Vec<StructureSection>,
}

/// `PUT /tests/{id}/structure`: reorders sections and questions, moving questions between
/// sections; everything current must be listed.
pub async fn restructure(
    store: &Store,
    clock: &Clock,
    actor: &Actor,
    test_id: Uuid,
    input: StructureIn,
) -> AppResult<()> {
    let mut uow = UnitOfWork::begin(store, clock, actor).await?;
    let scope = actor.scope;
    let t = lock_editable(uow.tx(), &scope, test_id, "the structure").await?;
    let sections: Vec<Section> = repo::sections_of(uow.tx(), &scope, test_id)
        .await?
        .into_iter()
        .filter(|s| s.status != crate::domain::enums::SectionStatus::Archived)
        .collect();
    let section_ids: HashSet<Uuid> = sections.iter().map(|s| s.section_id.0).collect();
    let links = repo::links_of(uow.tx(), &scope, test_id).await?;
    let live_links: Vec<&TestQuestion> = links
        .iter()
        .filter(|l| l.section_id.is_some_and(|s| section_ids.contains(&s.0)))
        .collect();

    if input
        .sections
        .iter()
        .any(|s| s.order < 1 || s.questions.iter().any(|q| q.order < 1))
    {
        return Err(AppError::validation("order must not be less than 1"));
    }
    let listed_sections: HashSet<Uuid> = input.sections.iter().map(|s| s.section_id).collect();
    if listed_sections.len() != input.sections.len() {
        return Err(AppError::validation(
            "A section is listed twice in the structure",
        ));
    }
    let unknown: Vec<String> = listed_sections
        .difference(&section_ids)
        .map(|s| s.to_string())
        .collect();
    if !unknown.is_empty() {
        return Err(AppError::validation(
            "Some sections not found or do not belong to the specified test",
        ));
    }
    let mut missing: Vec<String> = section_ids
        .difference(&listed_sections)
        .map(|s| s.to_string())
        .collect();
    if !missing.is_empty() {
        missing.sort();
        return Err(AppError::validation(format!(
            "Missing sections in structure update: {}",
            missing.join(", ")
        )));
    }
    let mut listed_questions = HashSet::new();
    for s in &input.sections {
        for q in &s.questions {
            if !listed_questions.insert(q.question_id) {
                return Err(AppError::validation(
                    "Some questions not found or do not belong to the specified sections",
                ));
            }
        }
    }
    let by_question: HashMap<Uuid, &TestQuestion> =
        links.iter().map(|l| (l.question_id.0, l)).collect();
    if listed_questions
        .iter()
        .any(|q| !by_question.contains_key(q))
    {
        return Err(AppError::validation(
            "Some questions not found or do not belong to the specified sections",
        ));
    }
    let mut missing: Vec<String> = live_links
        .iter()
        .map(|l| l.question_id.0)
        .filter(|q| !listed_questions.contains(q))
        .map(|q| q.to_string())
        .collect();
    if !missing.is_empty() {
        missing.sort();
        return Err(AppError::validation(format!(
            "Missing questions in structure update: {}",
            missing.join(", ")
        )));
    }
    for s in &input.sections {
        let mut section = sections
            .iter()
            .find(|x| x.section_id.0 == s.section_id)
            .cloned()
            .ok_or_else(|| AppError::not_found("Section not found"))?;
        section.ordering = int(s.order, "order")?;
        uow.stamp(&mut section);
        repo::update_section(uow.tx(), &section).await?;
        for q in &s.questions {
            let mut link = (*by_question[&q.question_id]).clone();
            link.ordering = int(q.order, "order")?;
            link.section_id = Some(Id(s.section_id));
            repo::update_link(uow.tx(), &link).await?;
        }
    }
    uow.emit(EventName::TestUpdated, test_summary(&t));
    uow.commit().await?;
    Ok(())
}

/// `POST /tests/{id}/clone`: a draft copy with its sections, question links and rules. The
/// copy links the same bank questions (it does not duplicate the bank, unlike upstream).
pub async fn clone(store: &Store, clock: &Clock, actor: &Actor, test_id: Uuid) -> AppResult<Uuid> {
    let mut uow = UnitOfWork::begin(store, clock, actor).await?;
    let now = uow.now();
    let scope = actor.scope;
    let source = repo::lock(uow.tx(), &scope, test_id)
        .await?
        .ok_or_else(|| AppError::not_found("Test not found"))?;
    let mut copy = source.clone();
    copy.test_id = Id(Uuid::new_v4());
    copy.title = format!("{} (Copy)", source.title);
    copy.status = TestStatus::Draft;
    copy.parent_id = None;
    copy.context_type = None;
    copy.context_id = None;
    copy.checked_out = None;
    copy.checked_out_time = None;
    copy.created_by = Id(actor.user_uuid());
    copy.created_at = now;
    copy.updated_by = None;
    copy.updated_at = now;
    let wanted = format!(
        "{}_copy",
        source.alias.clone().unwrap_or_else(|| source.title.clone())
    );
    insert_with_alias(uow.tx(), &mut copy, &wanted).await?;

    let mut section_map = HashMap::new();
    for s in repo::sections_of(uow.tx(), &scope, test_id).await? {
        let mut n = s.clone();
        n.section_id = Id(Uuid::new_v4());
        n.test_id = copy.test_id;
        n.created_by = Id(actor.user_uuid());
        n.created_at = now;
        n.updated_by = None;
        n.updated_at = now;
        repo::insert_section(uow.tx(), &n).await?;
        section_map.insert(s.section_id, n.section_id);
    }
    let mut rule_map = HashMap::new();
    for r in rule_repo::list(
        uow.tx(),
        &scope,
        RuleFilter {
            test_id: Some(test_id),
            ..RuleFilter::default()
        },
        false,
    )
    .await?
    {
        let mut n = r.clone();
        n.rule_id = Id(Uuid::new_v4());
        n.test_id = Some(copy.test_id);
        n.section_id = r.section_id.and_then(|s| section_map.get(&s).copied());
        n.created_by = Id(actor.user_uuid());
        n.created_at = now;
        n.updated_by = None;
        n.updated_at = now;
        rule_repo::insert(uow.tx(), &n).await?;
        rule_map.insert(r.rule_id, n.rule_id);
    }
    for l in repo::links_of(uow.tx(), &scope, test_id).await? {
        let mut n = l.clone();
        n.test_question_id = Id(Uuid::new_v4());
        n.test_id = copy.test_id;
        n.section_id = l.section_id.and_then(|s| section_map.get(&s).copied());
        n.rule_id = l.rule_id.and_then(|r| rule_map.get(&r).copied());
        repo::insert_link(uow.tx(), &n).await?;
    }
    uow.emit(EventName::TestCreated, test_summary(&copy));
    uow.commit().await?;
    Ok(copy.test_id.0)
}
