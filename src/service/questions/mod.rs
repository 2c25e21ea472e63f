//! The question bank: create, read, list, update, archive, conditional links, rule preview.

use std::collections::{BTreeMap, HashMap, HashSet};

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sqlx::types::Json;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::criteria::sorting;
pub use super::criteria::{Criteria, TimeRange, descending};

/// The most options a question may have (choice, matching, ordering and blanks alike).
pub const MAX_OPTIONS: usize = 100;
use super::{Actor, Page, UnitOfWork, page_window, to_i32};
use crate::clock::Clock;
use crate::domain::enums::{GradingType, QuestionLevel, QuestionStatus, QuestionType};
use crate::domain::event::EventName;
use crate::domain::event_data::{QuestionChanged, QuestionDeleted};
use crate::domain::ids::Scope;
use crate::domain::marks::Marks;
use crate::domain::question::{self, OptionDraft, QuestionDraft, QuestionParams};
use crate::error::{AppError, AppResult};
use crate::service::de;
use crate::store::questions::{self as repo, Question, QuestionFilter, QuestionOption};
use crate::store::{Db, Id, Store, Ts, Tx};

mod input;
mod links;
mod listing;
pub use input::*;
pub use links::*;
pub use listing::*;
/// A question with its options (the author's view: keys included).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct QuestionOut {
    #[serde(flatten)]
    pub question: Question,
    pub options: Vec<QuestionOption>,
}

/// The question's stored `params`, or the defaults when it has none (or none readable).
pub(crate) fn params_of(q: &Question) -> QuestionParams {
    q.params
        .as_ref()
        .and_then(|p| serde_json::from_value(p.0.clone()).ok())
        .unwrap_or_default()
}

fn draft_of(o: &QuestionOption) -> OptionDraft {
    OptionDraft {
        text: o.text.clone(),
        is_correct: o.is_correct,
        marks: Some(o.marks),
        blank_index: o.blank_index.map(|b| b.max(0) as u32),
        match_with: o.match_with.clone(),
    }
}

/// Checks a question with its options against the domain rules (400 with the rule's words).
fn check(q: &Question, options: &[QuestionOption]) -> AppResult<()> {
    let mut params = params_of(q);
    question::normalise_params(q.qtype, &mut params).map_err(AppError::Validation)?;
    let drafts: Vec<OptionDraft> = options.iter().map(draft_of).collect();
    question::validate(&QuestionDraft {
        text: &q.text,
        qtype: q.qtype,
        grading_type: q.grading_type,
        marks: q.marks,
        allow_partial_scoring: q.allow_partial_scoring,
        params: &params,
        options: &drafts,
    })
    .map_err(AppError::Validation)
}

fn summary(q: &Question) -> QuestionChanged {
    QuestionChanged {
        question_id: q.question_id.0,
        question_type: q.qtype,
        status: q.status,
        marks: q.marks,
        level: q.level,
        grading_type: q.grading_type,
    }
}

fn deleted(q: &Question) -> QuestionDeleted {
    QuestionDeleted {
        question_id: q.question_id.0,
        question_type: q.qtype,
    }
}

/// Creates a question with its options (and its link to a parent option), in one transaction.
pub async fn create(
    store: &Store,
    clock: &Clock,
    actor: &Actor,
    input: QuestionIn,
) -> AppResult<QuestionOut> {
    let now = clock.now();
    let scope = actor.scope;
    let id = Uuid::new_v4();
    if input.option_id.is_some() && input.parent_id.is_none() {
        return Err(AppError::validation(
            "parentQuestionId is required when optionId is provided",
        ));
    }
    match (input.test_id, input.section_id) {
        (Some(_), None) => {
            return Err(AppError::validation(
                "sectionId is required when testId is provided",
            ));
        }
        (None, Some(_)) => {
            return Err(AppError::validation(
                "testId is required when sectionId is provided",
            ));
        }
        _ => {}
    }
    let params = normalised_params(input.qtype, input.params)?;
    let mut q = Question {
        question_id: Id(id),
        tenant_id: Id(scope.tenant.as_uuid()),
        organisation_id: Id(scope.organisation.as_uuid()),
        ordering: input.ordering.unwrap_or(0),
        text: input.text.trim().to_string(),
        media: input.media.map(|m| m.checked("media")).transpose()?,
        alias: input.alias,
        description: input.description,
        category_id: input.category_id.map(Id),
        qtype: input.qtype,
        level: input.level.unwrap_or(QuestionLevel::Medium),
        marks: input.marks.unwrap_or(Marks::whole(1)),
        status: input.status.unwrap_or(QuestionStatus::Draft),
        ideal_time: input
            .ideal_time
            .map(|t| to_i32(t, "idealTime"))
            .transpose()?,
        grading_type: input.grading_type.unwrap_or(GradingType::Quiz),
        allow_partial_scoring: input.allow_partial_scoring.unwrap_or(false),
        params: params_json(params)?,
        parent_id: input.parent_id.map(Id),
        tags: Json(clean_tags(input.tags.unwrap_or_default())?),
        created_by: Id(actor.user_uuid()),
        created_at: now,
        updated_by: None,
        updated_at: now,
        revision: 1,
    };
    let options = input.options.unwrap_or_default();
    super::at_most("options", &options, MAX_OPTIONS)?;
    let options = options
        .into_iter()
        .enumerate()
        .map(|(i, o)| {
            if o.question_option_id.is_some() {
                return Err(AppError::validation(format!(
                    "property options[{i}].questionOptionId should not exist"
                )));
            }
            build_option(&scope, id, i, o, Uuid::new_v4(), now, now)
        })
        .collect::<AppResult<Vec<_>>>()?;
    let mut uow = UnitOfWork::begin_at(store, now, actor).await?;
    let test = match (input.test_id, input.section_id) {
        (Some(test_id), Some(section_id)) => {
            let t =
                super::assessments::lock_editable(uow.tx(), &scope, test_id, "questions").await?;
            super::assessments::check_section(uow.tx(), &scope, test_id, section_id).await?;
            // A question written inside a test takes the test's grading type (upstream).
            q.grading_type = t.grading_type;
            Some((t, section_id))
        }
        _ => None,
    };
    check(&q, &options)?;
    if let Some(parent) = input.parent_id
        && repo::get(uow.tx(), &scope, parent).await?.is_none()
    {
        return Err(AppError::not_found("Parent question not found"));
    }
    repo::insert(uow.tx(), &q).await?;
    repo::insert_options(uow.tx(), &options).await?;
    if let (Some(parent), Some(option)) = (input.parent_id, input.option_id) {
        let parent_options = repo::options_of(uow.tx(), &scope, &[parent]).await?;
        if !parent_options
            .iter()
            .any(|o| o.question_option_id.0 == option)
        {
            return Err(AppError::validation(
                "Option does not belong to the specified parent question",
            ));
        }
        repo::link_option(uow.tx(), &scope, option, id, now).await?;
    }
    if let Some((t, section_id)) = &test {
        use crate::store::assessments as test_repo;
        let ordering = super::next_ordering(
            test_repo::max_ordering(uow.tx(), &scope, t.test_id.0, Some(*section_id)).await?,
        )?;
        let link = test_repo::TestQuestion {
            ordering,
            is_compulsory: input.is_compulsory.unwrap_or(false),
            ..super::assessments::new_link(&scope, t.test_id.0, *section_id, &q)
        };
        test_repo::insert_link(uow.tx(), &link).await?;
        super::assessments::refresh_derived(uow.tx(), &scope, t.test_id.0).await?;
        uow.emit(EventName::TestUpdated, &super::assessments::test_summary(t));
    }
    uow.emit(EventName::QuestionCreated, &summary(&q));
    if q.status == QuestionStatus::Published {
        uow.emit(EventName::QuestionPublished, &summary(&q));
    }
    uow.commit().await?;
    Ok(QuestionOut {
        question: q,
        options,
    })
}

/// A question with its options, or 404.
pub async fn get(store: &Store, scope: &Scope, id: Uuid) -> AppResult<QuestionOut> {
    let question = repo::get(store, scope, id)
        .await?
        .ok_or_else(|| AppError::not_found("Question not found"))?;
    let options = repo::options_of(store, scope, &[id]).await?;
    Ok(QuestionOut { question, options })
}

async fn reconcile_options(
    tx: &mut Tx,
    scope: &Scope,
    question_id: Uuid,
    existing: &[QuestionOption],
    sent: Vec<OptionIn>,
    now: Ts,
) -> AppResult<Vec<QuestionOption>> {
    let by_id: HashMap<Uuid, &QuestionOption> = existing
        .iter()
        .map(|o| (o.question_option_id.0, o))
        .collect();
    let mut kept = HashSet::new();
    let mut out = Vec::new();
    for (i, o) in sent.into_iter().enumerate() {
        match o.question_option_id {
            Some(oid) => {
                let Some(old) = by_id.get(&oid) else {
                    return Err(AppError::validation(format!(
                        "options[{i}].questionOptionId {oid} is not an option of this question"
                    )));
                };
                if !kept.insert(oid) {
                    return Err(AppError::validation(format!(
                        "options[{i}].questionOptionId {oid} is listed twice"
                    )));
                }
                out.push((
                    true,
                    build_option(scope, question_id, i, o, oid, old.created_at, now)?,
                ));
            }
            None => out.push((
                false,
                build_option(scope, question_id, i, o, Uuid::new_v4(), now, now)?,
            )),
        }
    }
    let removed: Vec<Uuid> = existing
        .iter()
        .map(|o| o.question_option_id.0)
        .filter(|id| !kept.contains(id))
        .collect();
    repo::delete_options(tx, scope, question_id, &removed).await?;
    for (_, o) in out.iter().filter(|(existing, _)| *existing) {
        repo::update_option(tx, o).await?;
    }
    let added: Vec<QuestionOption> = out
        .iter()
        .filter(|(existing, _)| !*existing)
        .map(|(_, o)| o.clone())
        .collect();
    repo::insert_options(tx, &added).await?;
    Ok(out.into_iter().map(|(_, o)| o).collect())
}

/// Locks the tests that use a question; a published one freezes the question (422).
pub(super) async fn lock_using_tests(
    tx: &mut Tx,
    scope: &Scope,
    question_id: Uuid,
) -> AppResult<Vec<Uuid>> {
    use crate::domain::enums::TestStatus;
    // Attempts in progress need no check: each holds the revision it started with, which an
    // edit keeps (see `update`).
    let ids = crate::store::assessments::tests_linking(tx, scope, question_id).await?;
    for id in &ids {
        if let Some(t) = crate::store::assessments::lock(tx, scope, *id).await?
            && t.status == TestStatus::Published
        {
            return Err(AppError::unprocessable(format!(
                "This question is used by the published test \"{}\"; unpublish it first",
                t.title
            )));
        }
    }
    Ok(ids)
}

/// Applies a partial update in one transaction; only the fields sent change.
pub async fn update(
    store: &Store,
    clock: &Clock,
    actor: &Actor,
    id: Uuid,
    patch: QuestionPatch,
) -> AppResult<QuestionOut> {
    let now = clock.now();
    let scope = actor.scope;
    let mut uow = UnitOfWork::begin_at(store, now, actor).await?;
    let mut q = repo::get_for_update(uow.tx(), &scope, id)
        .await?
        .ok_or_else(|| AppError::not_found("Question not found"))?;
    let was_published = q.status == QuestionStatus::Published;
    let was_archived = q.status == QuestionStatus::Archived;
    let using = lock_using_tests(uow.tx(), &scope, id).await?;
    let existing = repo::options_of(uow.tx(), &scope, &[id]).await?;
    // The question as it was stays readable for the attempts that hold this revision.
    crate::store::revisions::keep(uow.tx(), &q, &existing, now).await?;
    q.revision += 1;
    if let Some(text) = patch.text {
        q.text = text.trim().to_string();
    }
    if let Some(t) = patch.qtype {
        q.qtype = t;
    }
    if let Some(m) = patch.media {
        q.media = m.map(|m| m.checked("media")).transpose()?;
    }
    if let Some(a) = patch.alias {
        q.alias = a;
    }
    if let Some(d) = patch.description {
        q.description = d;
    }
    if let Some(c) = patch.category_id {
        q.category_id = c.map(Id);
    }
    if let Some(l) = patch.level {
        q.level = l;
    }
    if let Some(m) = patch.marks {
        q.marks = m;
    }
    if let Some(s) = patch.status {
        q.status = s;
    }
    if let Some(t) = patch.ideal_time {
        q.ideal_time = t.map(|t| to_i32(t, "idealTime")).transpose()?;
    }
    if let Some(g) = patch.grading_type {
        q.grading_type = g;
    }
    if let Some(p) = patch.allow_partial_scoring {
        q.allow_partial_scoring = p;
    }
    if let Some(p) = patch.params {
        q.params = params_json(normalised_params(q.qtype, p)?)?;
    }
    if let Some(t) = patch.tags {
        q.tags = Json(clean_tags(t)?);
    }
    if let Some(o) = patch.ordering {
        q.ordering = o;
    }
    uow.stamp(&mut q);

    if let Some(sent) = &patch.options {
        super::at_most("options", sent, MAX_OPTIONS)?;
    }
    let options = match patch.options {
        Some(sent) => reconcile_options(uow.tx(), &scope, id, &existing, sent, now).await?,
        None => existing,
    };
    check(&q, &options)?;
    repo::update(uow.tx(), &q).await?;
    for test_id in &using {
        super::assessments::refresh_derived(uow.tx(), &scope, *test_id).await?;
    }
    uow.emit(EventName::QuestionUpdated, &summary(&q));
    if !was_archived && q.status == QuestionStatus::Archived {
        uow.emit(EventName::QuestionDeleted, &deleted(&q));
    }
    if !was_published && q.status == QuestionStatus::Published {
        uow.emit(EventName::QuestionPublished, &summary(&q));
    }
    uow.commit().await?;
    let mut options = options;
    options.sort_by_key(|o| o.ordering);
    Ok(QuestionOut {
        question: q,
        options,
    })
}

/// Archives a question (upstream's soft delete). Links to tests are kept.
pub async fn archive(store: &Store, clock: &Clock, actor: &Actor, id: Uuid) -> AppResult<()> {
    let mut uow = UnitOfWork::begin(store, clock, actor).await?;
    let now = uow.now();
    let q = repo::get_for_update(uow.tx(), &actor.scope, id)
        .await?
        .ok_or_else(|| AppError::not_found("Question not found"))?;
    if q.status != QuestionStatus::Archived {
        let using = lock_using_tests(uow.tx(), &actor.scope, id).await?;
        repo::set_status(
            uow.tx(),
            &actor.scope,
            id,
            QuestionStatus::Archived,
            actor.user_uuid(),
            now,
        )
        .await?;
        for test_id in &using {
            super::assessments::refresh_derived(uow.tx(), &actor.scope, *test_id).await?;
        }
        uow.emit(EventName::QuestionDeleted, &deleted(&q));
    }
    uow.commit().await?;
    Ok(())
}
