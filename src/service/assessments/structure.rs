//! A test's structure: adding, removing and reordering its questions.

#[allow(unused_imports)]
use super::*;

/// After questions were added to or removed from `t`: its derived fields, and `test.updated`.
pub(super) async fn questions_changed(uow: &mut UnitOfWork, t: &Test) -> AppResult<()> {
    let scope = uow.scope();
    refresh_derived(uow.tx(), &scope, t.test_id.0).await?;
    uow.emit(EventName::TestUpdated, &test_summary(t));
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

/// A new link of question `q` into a section of a test: first in the section, compulsory
/// for no one, drawn by no rule (callers set what they know), and conditional exactly when
/// the question has a parent.
pub(crate) fn new_link(
    scope: &Scope,
    test_id: Uuid,
    section_id: Uuid,
    q: &question_repo::Question,
) -> TestQuestion {
    TestQuestion {
        test_question_id: Id(Uuid::new_v4()),
        tenant_id: Id(scope.tenant.as_uuid()),
        organisation_id: Id(scope.organisation.as_uuid()),
        test_id: Id(test_id),
        question_id: q.question_id,
        ordering: 0,
        section_id: Some(Id(section_id)),
        rule_id: None,
        is_compulsory: false,
        is_conditional: q.parent_id.is_some(),
    }
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

pub(super) async fn check_rule(
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
    let scope = actor.scope;
    let mut uow = UnitOfWork::begin(store, clock, actor).await?;
    let t = lock_editable(uow.tx(), &scope, test_id, "questions").await?;
    check_section(uow.tx(), &scope, test_id, input.section_id).await?;
    let rule_id = check_rule(uow.tx(), &scope, &t, input.rule_id).await?;
    let q = question_repo::get(uow.tx(), &scope, input.question_id)
        .await?
        .filter(|q| q.status != crate::domain::enums::QuestionStatus::Archived)
        .ok_or_else(|| AppError::not_found("Question not found"))?;
    let ordering = match input.ordering {
        Some(o) => o,
        None => crate::service::next_ordering(
            repo::max_ordering(uow.tx(), &scope, test_id, Some(input.section_id)).await?,
        )?,
    };
    let link = TestQuestion {
        ordering,
        rule_id,
        is_compulsory: input.is_compulsory.unwrap_or(false),
        ..new_link(&scope, test_id, input.section_id, &q)
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
    crate::service::at_most("questions", &input.questions, crate::service::MAX_BATCH)?;
    let scope = actor.scope;
    let mut uow = UnitOfWork::begin(store, clock, actor).await?;
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
                next = crate::service::next_ordering(next)?;
                next
            }
        };
        let link = TestQuestion {
            ordering,
            rule_id,
            is_compulsory: item.is_compulsory.unwrap_or(false),
            ..new_link(&scope, test_id, input.section_id, &q)
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
    let scope = actor.scope;
    let mut uow = UnitOfWork::begin(store, clock, actor).await?;
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
    let scope = actor.scope;
    let mut uow = UnitOfWork::begin(store, clock, actor).await?;
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
        section.ordering = to_i32(s.order, "order")?;
        uow.stamp(&mut section);
        repo::update_section(uow.tx(), &section).await?;
        for q in &s.questions {
            let mut link = (*by_question[&q.question_id]).clone();
            link.ordering = to_i32(q.order, "order")?;
            link.section_id = Some(Id(s.section_id));
            repo::update_link(uow.tx(), &link).await?;
        }
    }
    uow.emit(EventName::TestUpdated, &test_summary(&t));
    uow.commit().await?;
    Ok(())
}
