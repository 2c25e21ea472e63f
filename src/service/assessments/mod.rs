//! Tests: create, list, read, update, delete, clone, publish and unpublish, and the
//! questions linked to them. Every change to a test's structure locks the test row first.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::criteria::{Criteria, sorting};
use super::{Actor, Page, UnitOfWork, conflict_on_unique, page_window, to_i32};
use crate::clock::Clock;
use crate::domain::assessment::{self as rules_of, PublishFacts, RuleSupply};
use crate::domain::enums::{AttemptsGrading, GradingType, SelectionMode, TestStatus, TestType};
use crate::domain::{event::EventName, ids::Scope, marks::Marks};
use crate::error::{AppError, AppResult};
use crate::service::de;
use crate::store::assessments::{self as repo, DateOp, Section, Test, TestFilter, TestQuestion};
use crate::store::questions as question_repo;
use crate::store::rules::{self as rule_repo, Rule, RuleFilter};
use crate::store::{Db, Id, Store, Ts, Tx};

mod listing;
mod publishing;
mod removal;
mod structure;
mod versions;
pub use listing::*;
pub use publishing::*;
pub use removal::*;
pub use structure::*;
pub use versions::*;
/// The fields `create` refuses to go without (required on create in the OpenAPI document).
pub const REQUIRED_ON_CREATE: &[&str] = &["type", "title"];

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
        t.time_duration = v.map(|s| to_i32(s, "timeDuration")).transpose()?;
    }
    if let Some(v) = input.time_finished_duration {
        t.time_finished_duration = v.map(|s| to_i32(s, "timeFinishedDuration")).transpose()?;
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
        t.pagination_limit = v.map(|s| to_i32(s, "paginationLimit")).transpose()?;
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
    if let (Some(s), Some(e)) = (t.start_date, t.end_date)
        && e <= s
    {
        return Err(AppError::validation(
            "End date is invalid or must be greater than start date",
        ));
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
        version: 0,
    }
}

/// `POST /tests`.
pub async fn create(store: &Store, clock: &Clock, actor: &Actor, input: TestIn) -> AppResult<Uuid> {
    let now = clock.now();
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
    let mut uow = UnitOfWork::begin_at(store, now, actor).await?;
    check_parent(uow.tx(), &actor.scope, t.parent_id).await?;
    insert_with_alias(uow.tx(), &mut t, &wanted).await?;
    uow.emit(EventName::TestCreated, &test_summary(&t));
    if target != TestStatus::Draft {
        change_status(&mut uow, &mut t, target).await?;
    }
    uow.commit().await?;
    Ok(t.test_id.0)
}

/// A test's `parentId` must name a test of the same scope.
async fn check_parent(tx: &mut Tx, scope: &Scope, parent: Option<Id>) -> AppResult<()> {
    if let Some(p) = parent
        && repo::get(&mut *tx, scope, p.0).await?.is_none()
    {
        return Err(AppError::not_found("Parent test not found"));
    }
    Ok(())
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
    if let Some(tt) = input.test_type
        && tt != t.test_type
    {
        return Err(AppError::unprocessable(
            "The type of a test cannot change; create a new test instead",
        ));
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
        uow.emit(EventName::TestUpdated, &test_summary(&t));
    }
    if let Some(target) = input.status {
        change_status(&mut uow, &mut t, target).await?;
    }
    uow.commit().await?;
    Ok(id)
}

/// The test locked for a change; archived tests are gone (404).
pub(crate) async fn lock_live(tx: &mut Tx, scope: &Scope, id: Uuid) -> AppResult<Test> {
    repo::lock(tx, scope, id)
        .await?
        .filter(|t| t.status != TestStatus::Archived)
        .ok_or_else(|| AppError::not_found("Test not found"))
}

/// A test locked for a change to its `what`: not archived (404), not published (422).
pub(crate) async fn lock_unpublished(
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
    Ok(t)
}

/// A test whose structure may change: not published (422), not generated (400).
pub(crate) async fn lock_editable(
    tx: &mut Tx,
    scope: &Scope,
    id: Uuid,
    what: &str,
) -> AppResult<Test> {
    let t = lock_unpublished(tx, scope, id, what).await?;
    if t.test_type == TestType::Generated {
        return Err(AppError::validation(format!(
            "Cannot manually change {what} of generated tests. They are created automatically \
             during test attempts."
        )));
    }
    Ok(t)
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

/// The test, or 404 when it is missing or archived.
pub(crate) async fn live<'a>(db: impl Into<Db<'a>>, scope: &Scope, id: Uuid) -> AppResult<Test> {
    repo::get(db, scope, id)
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

/// `POST /tests/{id}/clone`: a draft copy with its sections, question links and rules. The
/// copy links the same bank questions (it does not duplicate the bank, unlike upstream).
pub async fn clone(store: &Store, clock: &Clock, actor: &Actor, test_id: Uuid) -> AppResult<Uuid> {
    let now = clock.now();
    let scope = actor.scope;
    let mut uow = UnitOfWork::begin_at(store, now, actor).await?;
    let source = repo::lock(uow.tx(), &scope, test_id)
        .await?
        .ok_or_else(|| AppError::not_found("Test not found"))?;
    let mut copy = source.clone();
    copy.test_id = Id(Uuid::new_v4());
    copy.title = format!("{} (Copy)", source.title);
    copy.status = TestStatus::Draft;
    copy.version = 0;
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
    uow.emit(EventName::TestCreated, &test_summary(&copy));
    uow.commit().await?;
    Ok(copy.test_id.0)
}
