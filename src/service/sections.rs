//! Sections of a test: create, list, read, update, delete.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::{Actor, UnitOfWork, to_i32};
use crate::clock::Clock;
use crate::domain::enums::{SectionStatus, TestType};
use crate::domain::event::EventName;
use crate::domain::event_data::SectionChanged;
use crate::domain::ids::Scope;
use crate::error::{AppError, AppResult};
use crate::service::de;
use crate::store::assessments::{self as repo, Section, TestQuestion};
use crate::store::{Id, Store, Tx};

/// Body of `POST /sections`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct SectionIn {
    pub title: String,
    pub test_id: Uuid,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub ordering: Option<i32>,
    #[serde(default)]
    pub status: Option<SectionStatus>,
    #[serde(default)]
    pub min_questions: Option<u32>,
    #[serde(default)]
    pub max_questions: Option<u32>,
}

/// Body of `PATCH /sections/{id}`: only the fields sent change.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct SectionPatch {
    #[serde(default)]
    pub title: Option<String>,
    #[serde(default, deserialize_with = "de::nullable")]
    #[schema(value_type = Option<String>)]
    pub description: Option<Option<String>>,
    #[serde(default)]
    pub ordering: Option<i32>,
    #[serde(default)]
    pub status: Option<SectionStatus>,
    #[serde(default, deserialize_with = "de::nullable")]
    #[schema(value_type = Option<u32>)]
    pub min_questions: Option<Option<u32>>,
    #[serde(default, deserialize_with = "de::nullable")]
    #[schema(value_type = Option<u32>)]
    pub max_questions: Option<Option<u32>>,
}

/// A section with the question links it holds.
#[derive(Debug, Serialize, ToSchema)]
pub struct SectionOut {
    #[serde(flatten)]
    pub section: Section,
    pub questions: Vec<TestQuestion>,
}

fn check_counts(min: Option<i32>, max: Option<i32>) -> AppResult<()> {
    if let (Some(a), Some(b)) = (min, max)
        && a > b
    {
        return Err(AppError::validation(
            "minQuestions cannot exceed maxQuestions",
        ));
    }
    Ok(())
}

/// Locks the section's test for a structural change.
async fn lock_test_for(
    tx: &mut Tx,
    scope: &Scope,
    test_id: Uuid,
) -> AppResult<crate::store::assessments::Test> {
    let t = super::assessments::lock_unpublished(tx, scope, test_id, "sections").await?;
    if t.test_type == TestType::Generated {
        return Err(AppError::validation(
            "Cannot manually create sections for generated tests. They are created automatically during test attempts.",
        ));
    }
    Ok(t)
}

/// The section, its test locked for a change to its sections.
async fn lock_section(tx: &mut Tx, scope: &Scope, id: Uuid) -> AppResult<Section> {
    let s = repo::section(&mut *tx, scope, id)
        .await?
        .ok_or_else(|| AppError::not_found("Section not found"))?;
    lock_test_for(tx, scope, s.test_id.0).await?;
    Ok(s)
}

/// A section title as stored: trimmed, not empty.
fn checked_title(title: &str) -> AppResult<String> {
    let title = title.trim();
    if title.is_empty() {
        return Err(AppError::validation("title should not be empty"));
    }
    Ok(title.to_string())
}

fn summary(s: &Section) -> SectionChanged {
    SectionChanged {
        test_id: s.test_id.0,
        section_id: s.section_id.0,
        title: s.title.clone(),
    }
}

/// `POST /sections`.
pub async fn create(
    store: &Store,
    clock: &Clock,
    actor: &Actor,
    input: SectionIn,
) -> AppResult<Uuid> {
    let now = clock.now();
    let scope = actor.scope;
    let title = checked_title(&input.title)?;
    let min = input
        .min_questions
        .map(|v| to_i32(v, "minQuestions"))
        .transpose()?;
    let max = input
        .max_questions
        .map(|v| to_i32(v, "maxQuestions"))
        .transpose()?;
    check_counts(min, max)?;
    let mut uow = UnitOfWork::begin_at(store, now, actor).await?;
    lock_test_for(uow.tx(), &scope, input.test_id).await?;
    let ordering = match input.ordering {
        Some(o) => o,
        None => super::next_ordering(
            repo::max_section_ordering(uow.tx(), &scope, input.test_id).await?,
        )?,
    };
    let s = Section {
        section_id: Id(Uuid::new_v4()),
        tenant_id: Id(scope.tenant.as_uuid()),
        organisation_id: Id(scope.organisation.as_uuid()),
        title,
        description: input.description,
        test_id: Id(input.test_id),
        ordering,
        status: input.status.unwrap_or(SectionStatus::Active),
        min_questions: min,
        max_questions: max,
        created_by: Id(actor.user_uuid()),
        created_at: now,
        updated_by: None,
        updated_at: now,
    };
    repo::insert_section(uow.tx(), &s).await?;
    uow.emit(EventName::TestUpdated, &summary(&s));
    uow.commit().await?;
    Ok(s.section_id.0)
}

async fn with_links(
    store: &Store,
    scope: &Scope,
    sections: Vec<Section>,
) -> AppResult<Vec<SectionOut>> {
    let ids: Vec<Uuid> = sections.iter().map(|s| s.section_id.0).collect();
    let links = repo::links_of_sections(store, scope, &ids).await?;
    Ok(sections
        .into_iter()
        .map(|s| {
            let questions = links
                .iter()
                .filter(|l| l.section_id == Some(s.section_id))
                .cloned()
                .collect();
            SectionOut {
                section: s,
                questions,
            }
        })
        .collect())
}

/// `GET /sections`: every section of the scope.
pub async fn list(store: &Store, scope: &Scope) -> AppResult<Vec<SectionOut>> {
    let sections = repo::all_sections(store, scope).await?;
    with_links(store, scope, sections).await
}

/// `GET /sections/test/{testId}`.
pub async fn of_test(store: &Store, scope: &Scope, test_id: Uuid) -> AppResult<Vec<SectionOut>> {
    let sections = repo::sections_of(store, scope, test_id).await?;
    with_links(store, scope, sections).await
}

/// `GET /sections/{id}`.
pub async fn get(store: &Store, scope: &Scope, id: Uuid) -> AppResult<SectionOut> {
    let s = repo::section(store, scope, id)
        .await?
        .ok_or_else(|| AppError::not_found("Section not found"))?;
    with_links(store, scope, vec![s])
        .await?
        .pop()
        .ok_or_else(|| AppError::not_found("Section not found"))
}

/// `PATCH /sections/{id}`.
pub async fn update(
    store: &Store,
    clock: &Clock,
    actor: &Actor,
    id: Uuid,
    patch: SectionPatch,
) -> AppResult<Uuid> {
    let scope = actor.scope;
    let mut uow = UnitOfWork::begin(store, clock, actor).await?;
    let mut s = lock_section(uow.tx(), &scope, id).await?;
    if let Some(t) = patch.title {
        s.title = checked_title(&t)?;
    }
    if let Some(d) = patch.description {
        s.description = d;
    }
    if let Some(o) = patch.ordering {
        s.ordering = o;
    }
    if let Some(st) = patch.status {
        s.status = st;
    }
    if let Some(v) = patch.min_questions {
        s.min_questions = v.map(|v| to_i32(v, "minQuestions")).transpose()?;
    }
    if let Some(v) = patch.max_questions {
        s.max_questions = v.map(|v| to_i32(v, "maxQuestions")).transpose()?;
    }
    check_counts(s.min_questions, s.max_questions)?;
    uow.stamp(&mut s);
    repo::update_section(uow.tx(), &s).await?;
    uow.emit(EventName::TestUpdated, &summary(&s));
    uow.commit().await?;
    Ok(id)
}

/// `DELETE /sections/{id}[?hard=true]`: removes the section's question links; archives it
/// (or deletes it with `hard`).
pub async fn delete(
    store: &Store,
    clock: &Clock,
    actor: &Actor,
    id: Uuid,
    hard: bool,
) -> AppResult<()> {
    let scope = actor.scope;
    let mut uow = UnitOfWork::begin(store, clock, actor).await?;
    let mut s = lock_section(uow.tx(), &scope, id).await?;
    if repo::attempt_count(uow.tx(), &scope, s.test_id.0).await? > 0 {
        return Err(AppError::validation(
            "Cannot delete section from test that has attempts. Archive the section instead.",
        ));
    }
    repo::delete_section_links(uow.tx(), &scope, id).await?;
    super::assessments::refresh_derived(uow.tx(), &scope, s.test_id.0).await?;
    if hard {
        repo::delete_section(uow.tx(), &scope, id).await?;
    } else {
        s.status = SectionStatus::Archived;
        uow.stamp(&mut s);
        repo::update_section(uow.tx(), &s).await?;
    }
    uow.emit(EventName::TestUpdated, &summary(&s));
    uow.commit().await?;
    Ok(())
}
