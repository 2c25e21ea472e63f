//! The question bank: create, read, list, update, archive, conditional links, rule preview.

use std::collections::{BTreeMap, HashMap, HashSet};

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sqlx::types::Json;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::{Actor, Page, UnitOfWork, page_window};
use crate::clock::Clock;
use crate::domain::enums::{GradingType, QuestionLevel, QuestionStatus, QuestionType};
use crate::domain::event::EventName;
use crate::domain::ids::Scope;
use crate::domain::marks::Marks;
use crate::domain::question::{self, OptionDraft, QuestionDraft, QuestionParams};
use crate::error::{AppError, AppResult};
use crate::http::de;
use crate::store::questions::{self as repo, Question, QuestionFilter, QuestionOption};
use crate::store::{Id, Store, Ts, Tx};

/// Media attached to a question or option: URLs.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Media {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub video: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audio: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub document: Option<String>,
}

impl Media {
    fn checked(self, field: &str) -> AppResult<Json<Value>> {
        for (name, value) in [
            ("image", &self.image),
            ("video", &self.video),
            ("audio", &self.audio),
            ("document", &self.document),
        ] {
            if let Some(v) = value {
                let ok = url::Url::parse(v)
                    .map(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some())
                    .unwrap_or(false);
                if !ok {
                    return Err(AppError::validation(format!(
                        "{field}.{name} must be a URL address"
                    )));
                }
            }
        }
        Ok(Json(
            serde_json::to_value(self).map_err(anyhow::Error::from)?,
        ))
    }
}

/// An option in a create or update body.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct OptionIn {
    /// On update: the id of an existing option to keep (and rewrite in place).
    #[serde(default)]
    pub question_option_id: Option<Uuid>,
    pub text: String,
    #[serde(default)]
    pub media: Option<Media>,
    #[serde(default)]
    pub match_with: Option<String>,
    #[serde(default)]
    pub match_with_media: Option<Media>,
    /// Display order; upstream's `position` is accepted as an alias. Defaults to the index.
    #[serde(default, alias = "position")]
    pub ordering: Option<i32>,
    #[serde(default)]
    pub is_correct: Option<bool>,
    #[serde(default)]
    #[schema(value_type = Option<f64>)]
    pub marks: Option<Marks>,
    #[serde(default)]
    pub blank_index: Option<u32>,
    #[serde(default)]
    pub case_sensitive: Option<bool>,
    /// Accepted for compatibility and ignored: links are made with `optionId` on the child.
    #[serde(default)]
    pub has_child_question: Option<bool>,
}

/// Body of `POST /questions`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct QuestionIn {
    pub text: String,
    #[serde(rename = "type")]
    pub qtype: QuestionType,
    #[serde(default)]
    pub media: Option<Media>,
    #[serde(default)]
    pub alias: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub category_id: Option<Uuid>,
    #[serde(default)]
    pub level: Option<QuestionLevel>,
    #[serde(default)]
    #[schema(value_type = Option<f64>)]
    pub marks: Option<Marks>,
    #[serde(default)]
    pub status: Option<QuestionStatus>,
    #[serde(default)]
    pub ideal_time: Option<u32>,
    #[serde(default)]
    pub grading_type: Option<GradingType>,
    #[serde(default)]
    pub allow_partial_scoring: Option<bool>,
    #[serde(default)]
    pub params: Option<QuestionParams>,
    #[serde(default)]
    pub options: Option<Vec<OptionIn>>,
    #[serde(default)]
    pub tags: Option<Vec<String>>,
    #[serde(default)]
    pub ordering: Option<i32>,
    /// Also link the new question to this test (with `sectionId`).
    #[serde(default)]
    pub test_id: Option<Uuid>,
    /// The section of `testId` to place the question in.
    #[serde(default)]
    pub section_id: Option<Uuid>,
    /// For the test link: must the learner answer it?
    #[serde(default)]
    pub is_compulsory: Option<bool>,
    /// The parent of a conditional (child) question.
    #[serde(default)]
    pub parent_id: Option<Uuid>,
    /// The parent's option that reveals this question (needs `parentId`).
    #[serde(default)]
    pub option_id: Option<Uuid>,
}

/// Body of `PATCH /questions/{id}`: only the fields sent change; `null` clears a nullable one.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct QuestionPatch {
    #[serde(default)]
    pub text: Option<String>,
    #[serde(default, rename = "type")]
    pub qtype: Option<QuestionType>,
    #[serde(default, deserialize_with = "de::nullable")]
    #[schema(value_type = Option<Media>)]
    pub media: Option<Option<Media>>,
    #[serde(default, deserialize_with = "de::nullable")]
    #[schema(value_type = Option<String>)]
    pub alias: Option<Option<String>>,
    #[serde(default, deserialize_with = "de::nullable")]
    #[schema(value_type = Option<String>)]
    pub description: Option<Option<String>>,
    #[serde(default, deserialize_with = "de::nullable")]
    #[schema(value_type = Option<Uuid>)]
    pub category_id: Option<Option<Uuid>>,
    #[serde(default)]
    pub level: Option<QuestionLevel>,
    #[serde(default)]
    #[schema(value_type = Option<f64>)]
    pub marks: Option<Marks>,
    #[serde(default)]
    pub status: Option<QuestionStatus>,
    #[serde(default, deserialize_with = "de::nullable")]
    #[schema(value_type = Option<u32>)]
    pub ideal_time: Option<Option<u32>>,
    #[serde(default)]
    pub grading_type: Option<GradingType>,
    #[serde(default)]
    pub allow_partial_scoring: Option<bool>,
    #[serde(default, deserialize_with = "de::nullable")]
    #[schema(value_type = Option<QuestionParams>)]
    pub params: Option<Option<QuestionParams>>,
    /// When sent, the options become exactly these: options with a `questionOptionId` are
    /// rewritten in place (ids, and so stored answers, stay valid), others are created, and
    /// options not listed are deleted.
    #[serde(default)]
    pub options: Option<Vec<OptionIn>>,
    #[serde(default)]
    pub tags: Option<Vec<String>>,
    #[serde(default)]
    pub ordering: Option<i32>,
}

/// A question with its options (the author's view: keys included).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct QuestionOut {
    #[serde(flatten)]
    pub question: Question,
    pub options: Vec<QuestionOption>,
}

fn as_i32(v: u32, field: &str) -> AppResult<i32> {
    i32::try_from(v).map_err(|_| AppError::validation(format!("{field} is too large")))
}

fn clean_tags(tags: Vec<String>) -> AppResult<Vec<String>> {
    let mut out: Vec<String> = Vec::new();
    for t in tags {
        let t = t.trim().to_string();
        if t.is_empty() {
            return Err(AppError::validation("tags must not contain empty strings"));
        }
        if t.chars().count() > 100 {
            return Err(AppError::validation(
                "each tag must be at most 100 characters",
            ));
        }
        if !out.contains(&t) {
            out.push(t);
        }
    }
    if out.len() > 50 {
        return Err(AppError::validation("a question takes at most 50 tags"));
    }
    Ok(out)
}

fn params_json(params: Option<QuestionParams>) -> AppResult<Option<Json<Value>>> {
    params
        .map(|p| {
            serde_json::to_value(p)
                .map(Json)
                .map_err(|e| AppError::Internal(e.into()))
        })
        .transpose()
}

fn params_of(q: &Question) -> QuestionParams {
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

fn normalised_params(
    qtype: QuestionType,
    params: Option<QuestionParams>,
) -> AppResult<Option<QuestionParams>> {
    params
        .map(|mut p| {
            question::normalise_params(qtype, &mut p).map_err(AppError::Validation)?;
            Ok(p)
        })
        .transpose()
}

fn build_option(
    scope: &Scope,
    question_id: Uuid,
    index: usize,
    input: OptionIn,
    id: Uuid,
    created_at: Ts,
    now: Ts,
) -> AppResult<QuestionOption> {
    let text = input.text.trim().to_string();
    if text.is_empty() {
        return Err(AppError::validation(format!(
            "options[{index}].text should not be empty"
        )));
    }
    let ordering = match input.ordering {
        Some(o) => o,
        None => i32::try_from(index).unwrap_or(i32::MAX),
    };
    Ok(QuestionOption {
        question_option_id: Id(id),
        tenant_id: Id(scope.tenant.as_uuid()),
        organisation_id: Id(scope.organisation.as_uuid()),
        question_id: Id(question_id),
        text,
        media: input
            .media
            .map(|m| m.checked(&format!("options[{index}].media")))
            .transpose()?,
        match_with: input
            .match_with
            .map(|m| m.trim().to_string())
            .filter(|m| !m.is_empty()),
        match_with_media: input
            .match_with_media
            .map(|m| m.checked(&format!("options[{index}].matchWithMedia")))
            .transpose()?,
        ordering,
        is_correct: input.is_correct.unwrap_or(false),
        marks: input.marks.unwrap_or(Marks::ZERO),
        blank_index: input
            .blank_index
            .map(|b| as_i32(b, &format!("options[{index}].blankIndex")))
            .transpose()?,
        case_sensitive: input.case_sensitive.unwrap_or(false),
        created_at,
        updated_at: now,
    })
}

fn summary(q: &Question) -> Value {
    json!({
        "questionId": q.question_id,
        "type": q.qtype,
        "status": q.status,
        "marks": q.marks,
        "level": q.level,
        "gradingType": q.grading_type,
    })
}

/// Creates a question with its options (and its link to a parent option), in one transaction.
pub async fn create(
    store: &Store,
    clock: &Clock,
    actor: &Actor,
    input: QuestionIn,
) -> AppResult<QuestionOut> {
    let mut uow = UnitOfWork::begin(store, clock, actor).await?;
    let now = uow.now();
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
            .map(|t| as_i32(t, "idealTime"))
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
    };
    let options = input
        .options
        .unwrap_or_default()
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
    if let Some(parent) = input.parent_id {
        if repo::get(uow.tx(), &scope, parent).await?.is_none() {
            return Err(AppError::not_found("Parent question not found"));
        }
    }
    repo::insert(uow.tx(), &q).await?;
    for o in &options {
        repo::insert_option(uow.tx(), o).await?;
    }
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
            test_question_id: Id(Uuid::new_v4()),
            tenant_id: q.tenant_id,
            organisation_id: q.organisation_id,
            test_id: t.test_id,
            question_id: q.question_id,
            ordering,
            section_id: Some(Id(*section_id)),
            rule_id: None,
            is_compulsory: input.is_compulsory.unwrap_or(false),
            is_conditional: q.parent_id.is_some(),
        };
        test_repo::insert_link(uow.tx(), &link).await?;
        super::assessments::refresh_derived(uow.tx(), &scope, t.test_id.0).await?;
        uow.emit(EventName::TestUpdated, super::assessments::test_summary(t));
    }
    uow.emit(EventName::QuestionCreated, summary(&q));
    if q.status == QuestionStatus::Published {
        uow.emit(EventName::QuestionPublished, summary(&q));
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
    for (existing, o) in &out {
        if *existing {
            repo::update_option(tx, o).await?;
        } else {
            repo::insert_option(tx, o).await?;
        }
    }
    Ok(out.into_iter().map(|(_, o)| o).collect())
}

/// Locks the tests that use a question; a published one freezes the question (422).
async fn lock_using_tests(tx: &mut Tx, scope: &Scope, question_id: Uuid) -> AppResult<Vec<Uuid>> {
    use crate::domain::enums::TestStatus;
    // A running attempt scores against this key: it must not change under it.
    let running = crate::store::attempts::in_progress_with(tx, scope, question_id).await?;
    if running > 0 {
        return Err(AppError::unprocessable(format!(
            "This question is on {running} attempt(s) in progress; change it once they are submitted"
        )));
    }
    let ids = crate::store::assessments::tests_linking(tx, scope, question_id).await?;
    for id in &ids {
        if let Some(t) = crate::store::assessments::lock(tx, scope, *id).await? {
            if t.status == TestStatus::Published {
                return Err(AppError::unprocessable(format!(
                    "This question is used by the published test \"{}\"; unpublish it first",
                    t.title
                )));
            }
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
    let mut uow = UnitOfWork::begin(store, clock, actor).await?;
    let now = uow.now();
    let scope = actor.scope;
    let mut q = repo::get_for_update(uow.tx(), &scope, id)
        .await?
        .ok_or_else(|| AppError::not_found("Question not found"))?;
    let was_published = q.status == QuestionStatus::Published;
    let was_archived = q.status == QuestionStatus::Archived;
    let using = lock_using_tests(uow.tx(), &scope, id).await?;
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
        q.ideal_time = t.map(|t| as_i32(t, "idealTime")).transpose()?;
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

    let existing = repo::options_of(uow.tx(), &scope, &[id]).await?;
    let options = match patch.options {
        Some(sent) => reconcile_options(uow.tx(), &scope, id, &existing, sent, now).await?,
        None => existing,
    };
    check(&q, &options)?;
    repo::update(uow.tx(), &q).await?;
    for test_id in &using {
        super::assessments::refresh_derived(uow.tx(), &scope, *test_id).await?;
    }
    uow.emit(EventName::QuestionUpdated, summary(&q));
    if !was_archived && q.status == QuestionStatus::Archived {
        let data = json!({"questionId": q.question_id, "type": q.qtype});
        uow.emit(EventName::QuestionDeleted, data);
    }
    if !was_published && q.status == QuestionStatus::Published {
        uow.emit(EventName::QuestionPublished, summary(&q));
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
        uow.emit(
            EventName::QuestionDeleted,
            json!({"questionId": q.question_id, "type": q.qtype}),
        );
    }
    uow.commit().await?;
    Ok(())
}

/// Query of `GET /questions`.
#[derive(Debug, Clone, Default, Deserialize, IntoParams, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
pub struct QuestionListQuery {
    #[serde(default, deserialize_with = "de::opt_num")]
    pub limit: Option<i64>,
    #[serde(default, deserialize_with = "de::opt_num")]
    pub offset: Option<i64>,
    /// Case-insensitive match on text and description.
    #[serde(default)]
    pub search: Option<String>,
    #[serde(default)]
    pub status: Option<QuestionStatus>,
    #[serde(default, rename = "type")]
    #[param(rename = "type")]
    pub qtype: Option<QuestionType>,
    #[serde(default)]
    pub level: Option<QuestionLevel>,
    #[serde(default)]
    pub category_id: Option<Uuid>,
    #[serde(default, deserialize_with = "de::list")]
    pub categories: Vec<Uuid>,
    #[serde(default, deserialize_with = "de::list")]
    pub difficulty_levels: Vec<QuestionLevel>,
    #[serde(default, deserialize_with = "de::list")]
    pub question_types: Vec<QuestionType>,
    #[serde(default, deserialize_with = "de::list")]
    pub tags: Vec<String>,
    #[serde(default, deserialize_with = "de::list")]
    #[param(value_type = Vec<f64>)]
    #[schema(value_type = Vec<f64>)]
    pub marks: Vec<Marks>,
    #[serde(default, deserialize_with = "de::list")]
    pub exclude_question_ids: Vec<Uuid>,
    #[serde(default, deserialize_with = "de::list")]
    pub include_question_ids: Vec<Uuid>,
    #[serde(default)]
    #[param(value_type = Option<f64>)]
    #[schema(value_type = Option<f64>)]
    pub min_marks: Option<Marks>,
    #[serde(default)]
    #[param(value_type = Option<f64>)]
    #[schema(value_type = Option<f64>)]
    pub max_marks: Option<Marks>,
    #[serde(default)]
    pub time_range_from: Option<chrono::DateTime<chrono::Utc>>,
    #[serde(default)]
    pub time_range_to: Option<chrono::DateTime<chrono::Utc>>,
    /// `true`: published questions only, with pool metadata.
    #[serde(default, deserialize_with = "de::opt_bool")]
    pub rule_preview: Option<bool>,
    /// One of createdAt, updatedAt, text, marks, type, level, status, ordering, idealTime.
    #[serde(default)]
    pub sort_by: Option<String>,
    /// `ASC` or `DESC` (default).
    #[serde(default)]
    pub sort_order: Option<String>,
}

/// `sortOrder`: `ASC` or `DESC` (any case); DESC by default.
pub fn descending(order: Option<&str>) -> AppResult<bool> {
    match order.map(|s| s.trim().to_ascii_uppercase()).as_deref() {
        None | Some("DESC") => Ok(true),
        Some("ASC") => Ok(false),
        Some(other) => Err(AppError::validation(format!(
            "sortOrder must be ASC or DESC, not {other:?}"
        ))),
    }
}

/// A page of questions, with pool metadata when `rulePreview=true`.
#[derive(Debug, Serialize, ToSchema)]
pub struct QuestionPage {
    #[serde(flatten)]
    pub page: Page<QuestionOut>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub metadata: Option<Value>,
}

async fn with_options(
    store: &Store,
    scope: &Scope,
    questions: Vec<Question>,
) -> AppResult<Vec<QuestionOut>> {
    let ids: Vec<Uuid> = questions.iter().map(|q| q.question_id.0).collect();
    let mut options: HashMap<Uuid, Vec<QuestionOption>> = HashMap::new();
    for o in repo::options_of(store, scope, &ids).await? {
        options.entry(o.question_id.0).or_default().push(o);
    }
    Ok(questions
        .into_iter()
        .map(|q| {
            let opts = options.remove(&q.question_id.0).unwrap_or_default();
            QuestionOut {
                question: q,
                options: opts,
            }
        })
        .collect())
}

/// `GET /questions`.
pub async fn list(store: &Store, scope: &Scope, q: QuestionListQuery) -> AppResult<QuestionPage> {
    let (limit, offset) = page_window(q.limit, q.offset)?;
    let sort = q.sort_by.as_deref().unwrap_or("createdAt");
    let order_by = repo::question_sort_column(sort).ok_or_else(|| {
        AppError::validation(format!(
            "sortBy must be one of createdAt, updatedAt, text, marks, type, level, status, \
             ordering, idealTime (not {sort:?})"
        ))
    })?;
    let desc = descending(q.sort_order.as_deref())?;
    let preview = q.rule_preview.unwrap_or(false);
    let mut filter = QuestionFilter {
        search: q.search,
        statuses: q.status.into_iter().collect(),
        types: q.question_types,
        levels: q.difficulty_levels,
        categories: q.categories,
        tags: q.tags,
        marks: q.marks,
        include_ids: q.include_question_ids,
        exclude_ids: q.exclude_question_ids,
        min_marks: q.min_marks,
        max_marks: q.max_marks,
        created_from: q.time_range_from.map(Ts::new),
        created_to: q.time_range_to.map(Ts::new),
        top_level_only: false,
    };
    filter.types.extend(q.qtype);
    filter.levels.extend(q.level);
    filter.categories.extend(q.category_id);
    if preview {
        filter.statuses = vec![QuestionStatus::Published];
    }
    let (rows, total) = repo::list(store, scope, &filter, order_by, desc, limit, offset).await?;
    let content = with_options(store, scope, rows).await?;
    let metadata = preview.then(
        || json!({"totalQuestions": total, "availableForRules": total, "rulePreviewMode": true}),
    );
    Ok(QuestionPage {
        page: Page::new(content, total, limit, offset),
        metadata,
    })
}

/// Selection criteria of a rule and of `POST /questions/rule-preview`.
#[derive(Debug, Clone, Default, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Criteria {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub categories: Vec<Uuid>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub difficulty_levels: Vec<QuestionLevel>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub question_types: Vec<QuestionType>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schema(value_type = Vec<f64>)]
    pub marks: Vec<Marks>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub exclude_question_ids: Vec<Uuid>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub include_question_ids: Vec<Uuid>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub time_range: Option<TimeRange>,
}

/// A `{from, to}` window kept as given (serialisable for storage in a rule).
#[derive(Debug, Clone, Default, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TimeRange {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<chrono::DateTime<chrono::Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<chrono::DateTime<chrono::Utc>>,
}

impl Criteria {
    /// The bank filter these criteria select: published, top-level questions.
    pub fn filter(&self) -> QuestionFilter {
        QuestionFilter {
            statuses: vec![QuestionStatus::Published],
            types: self.question_types.clone(),
            levels: self.difficulty_levels.clone(),
            categories: self.categories.clone(),
            tags: self.tags.clone(),
            marks: self.marks.clone(),
            include_ids: self.include_question_ids.clone(),
            exclude_ids: self.exclude_question_ids.clone(),
            created_from: self.time_range.as_ref().and_then(|t| t.from).map(Ts::new),
            created_to: self.time_range.as_ref().and_then(|t| t.to).map(Ts::new),
            top_level_only: true,
            ..QuestionFilter::default()
        }
    }
}

/// Result of `POST /questions/rule-preview`.
#[derive(Debug, Serialize, ToSchema)]
pub struct RulePreview {
    pub questions: Vec<QuestionOut>,
    #[schema(value_type = Object)]
    pub metadata: Value,
}

/// The published, top-level questions matching `criteria`, with distribution metadata.
pub async fn rule_preview(
    store: &Store,
    scope: &Scope,
    criteria: &Criteria,
) -> AppResult<RulePreview> {
    let rows = repo::matching(store, scope, &criteria.filter()).await?;
    let total_marks: Marks = rows.iter().map(|q| q.marks).sum();
    let mut marks_distribution: BTreeMap<String, i64> = BTreeMap::new();
    let mut types: BTreeMap<String, i64> = BTreeMap::new();
    let mut levels: BTreeMap<String, i64> = BTreeMap::new();
    let mut categories: BTreeMap<String, i64> = BTreeMap::new();
    for q in &rows {
        *marks_distribution.entry(q.marks.to_string()).or_default() += 1;
        *types.entry(q.qtype.to_string()).or_default() += 1;
        *levels.entry(q.level.to_string()).or_default() += 1;
        if let Some(c) = q.category_id {
            *categories.entry(c.0.to_string()).or_default() += 1;
        }
    }
    let n = rows.len() as i64;
    let average = if n == 0 {
        json!(0)
    } else {
        // Rounded half up to hundredths, shown as upstream does ("x.yy").
        let avg = (total_marks.hundredths() * 2 + n) / (2 * n);
        json!(format!("{}.{:02}", avg / 100, avg % 100))
    };
    let questions = with_options(store, scope, rows).await?;
    Ok(RulePreview {
        metadata: json!({
            "totalQuestions": n,
            "totalMarks": total_marks,
            "marksDistribution": marks_distribution,
            "averageMarks": average,
            "questionTypes": types,
            "difficultyLevels": levels,
            "categories": categories,
        }),
        questions,
    })
}

/// Body of `associate-option` / `disassociate-option`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct OptionLinkIn {
    pub question_id: Uuid,
    pub option_id: Uuid,
}

/// Upstream's result of the option-link routes.
#[derive(Debug, Serialize, ToSchema)]
pub struct ActionResult {
    pub success: bool,
    pub message: String,
    #[schema(value_type = Option<Object>)]
    pub data: Value,
    pub timestamp: String,
}

impl ActionResult {
    pub fn new(message: &str, data: Value, now: Ts) -> Self {
        ActionResult {
            success: true,
            message: message.into(),
            data,
            timestamp: now.to_text(),
        }
    }
}

/// Links a child question to the parent option that reveals it.
pub async fn associate(
    store: &Store,
    clock: &Clock,
    actor: &Actor,
    input: OptionLinkIn,
) -> AppResult<()> {
    let mut uow = UnitOfWork::begin(store, clock, actor).await?;
    let now = uow.now();
    let scope = actor.scope;
    let q = repo::get_for_update(uow.tx(), &scope, input.question_id)
        .await?
        .ok_or_else(|| AppError::not_found("Question not found"))?;
    let Some(parent) = q.parent_id else {
        return Err(AppError::validation(
            "Question must have a parentId to be associated with an option",
        ));
    };
    let parent_options = repo::options_of(uow.tx(), &scope, &[parent.0]).await?;
    if !parent_options
        .iter()
        .any(|o| o.question_option_id.0 == input.option_id)
    {
        // The option may exist under another question, or not at all.
        return Err(if option_exists(uow.tx(), &scope, input.option_id).await? {
            AppError::validation("Question parentId must match the option's questionId")
        } else {
            AppError::not_found("Option not found")
        });
    }
    if !repo::link_option(uow.tx(), &scope, input.option_id, input.question_id, now).await? {
        return Err(AppError::conflict(
            "Question is already associated with this option",
        ));
    }
    uow.emit(EventName::QuestionUpdated, summary(&q));
    uow.commit().await?;
    Ok(())
}

async fn option_exists(tx: &mut Tx, scope: &Scope, option_id: Uuid) -> AppResult<bool> {
    use crate::on_tx;
    let (t, o) = (Id(scope.tenant.as_uuid()), Id(scope.organisation.as_uuid()));
    let n: i64 = on_tx!(tx, c => {
        sqlx::query_scalar(r#"SELECT COUNT(*) FROM "questionOptions" WHERE "questionOptionId" = $1
            AND "tenantId" = $2 AND "organisationId" = $3"#)
            .bind(Id(option_id)).bind(t).bind(o).fetch_one(c).await
    })?;
    Ok(n > 0)
}

/// Removes a child question's link to an option.
pub async fn disassociate(
    store: &Store,
    clock: &Clock,
    actor: &Actor,
    input: OptionLinkIn,
) -> AppResult<()> {
    let mut uow = UnitOfWork::begin(store, clock, actor).await?;
    let q = repo::get_for_update(uow.tx(), &actor.scope, input.question_id)
        .await?
        .ok_or_else(|| AppError::not_found("Question-option association not found"))?;
    if !repo::unlink_option(uow.tx(), &actor.scope, input.option_id, input.question_id).await? {
        return Err(AppError::not_found("Question-option association not found"));
    }
    uow.emit(EventName::QuestionUpdated, summary(&q));
    uow.commit().await?;
    Ok(())
}

/// Query of `GET /questions/{id}/child-questions`.
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
pub struct ChildQuestionsQuery {
    #[serde(default, deserialize_with = "de::opt_bool")]
    pub include_options: Option<bool>,
    #[serde(default, deserialize_with = "de::opt_bool")]
    pub include_associated_options: Option<bool>,
}

/// The child questions of a parent, as upstream lists them.
pub async fn child_questions(
    store: &Store,
    scope: &Scope,
    parent_id: Uuid,
    q: ChildQuestionsQuery,
) -> AppResult<Vec<Value>> {
    if repo::get(store, scope, parent_id).await?.is_none() {
        return Err(AppError::not_found("Parent question not found"));
    }
    let children = repo::children(store, scope, parent_id).await?;
    let ids: Vec<Uuid> = children.iter().map(|c| c.question_id.0).collect();
    let links = repo::links_to(store, scope, &ids).await?;
    let parent_options = repo::options_of(store, scope, &[parent_id]).await?;
    let option_text: HashMap<Uuid, &str> = parent_options
        .iter()
        .map(|o| (o.question_option_id.0, o.text.as_str()))
        .collect();
    let mut options: HashMap<Uuid, Vec<QuestionOption>> = HashMap::new();
    if q.include_options.unwrap_or(false) {
        for o in repo::options_of(store, scope, &ids).await? {
            options.entry(o.question_id.0).or_default().push(o);
        }
    }
    let include_associated = q.include_associated_options.unwrap_or(false);
    Ok(children
        .into_iter()
        .map(|c| {
            let cid = c.question_id.0;
            let mine: Vec<_> = links.iter().filter(|l| l.question_id.0 == cid).collect();
            let mut v = json!({
                "questionId": c.question_id,
                "text": c.text,
                "type": c.qtype,
                "marks": c.marks,
                "parentId": c.parent_id,
                "status": c.status,
                "createdAt": c.created_at,
                "updatedAt": c.updated_at,
            });
            if q.include_options.unwrap_or(false) {
                v["options"] = json!(options.remove(&cid).unwrap_or_default());
            }
            if include_associated {
                v["associatedOptions"] = json!(
                    mine.iter()
                        .map(|l| json!({
                            "optionId": l.option_id,
                            "optionText": option_text.get(&l.option_id.0).copied(),
                            "ordering": l.ordering,
                            "isActive": l.is_active,
                        }))
                        .collect::<Vec<_>>()
                );
            } else {
                v["associatedOptionIds"] =
                    json!(mine.iter().map(|l| l.option_id).collect::<Vec<_>>());
            }
            v
        })
        .collect())
}
