//! The structured view of a test: sections, their questions in order, options, and the child
//! questions options reveal. Two audiences:
//! - learners (`/hierarchy`): published tests only; no answer keys (no `isCorrect`, no option
//!   marks, no `blankIndex`/`matchWith` on options) and match targets in alphabetical order,
//!   never in pairing order;
//! - authors (`/test-hierarchy`): everything, with the questions each option reveals.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::{Arc, Mutex};

use serde_json::{Value, json};
use uuid::Uuid;

use crate::domain::enums::{QuestionStatus, QuestionType, SectionStatus, TestStatus};
use crate::domain::ids::Scope;
use crate::error::{AppError, AppResult};
use crate::service::questions::questions_with_options;
use crate::store::assessments::{self as repo, TestQuestion};
use crate::store::questions::{self as question_repo, OptionQuestion, Question, QuestionOption};
use crate::store::{Store, Ts};

/// Who the hierarchy is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Audience {
    Learner,
    Author,
}

struct Paper {
    questions: HashMap<Uuid, Question>,
    options: HashMap<Uuid, Vec<QuestionOption>>,
    links: HashMap<Uuid, TestQuestion>,
    /// option id -> child question ids (linked to this test), ordered.
    reveals: HashMap<Uuid, Vec<Uuid>>,
    audience: Audience,
}

impl Paper {
    fn option_json(&self, o: &QuestionOption, visited: &mut HashSet<Uuid>) -> Value {
        let children = self
            .reveals
            .get(&o.question_option_id.0)
            .cloned()
            .unwrap_or_default();
        let mut v = json!({
            "questionOptionId": o.question_option_id,
            "text": o.text,
            "media": o.media,
            "ordering": o.ordering,
            "caseSensitive": o.case_sensitive,
            "createdAt": o.created_at,
            "hasChildQuestion": !children.is_empty(),
        });
        match self.audience {
            Audience::Learner => {
                if !children.is_empty() {
                    v["childQuestion"] = Value::Array(
                        children
                            .iter()
                            .filter_map(|c| self.question_json(*c, visited))
                            .collect(),
                    );
                }
            }
            Audience::Author => {
                v["isCorrect"] = json!(o.is_correct);
                v["marks"] = json!(o.marks);
                v["blankIndex"] = json!(o.blank_index);
                v["matchWith"] = json!(o.match_with);
                v["matchWithMedia"] = json!(o.match_with_media);
                v["AssociatedQuestion"] = Value::Array(
                    children
                        .iter()
                        .filter_map(|c| self.questions.get(c))
                        .map(|q| {
                            json!({
                                "questionId": q.question_id,
                                "text": q.text,
                                "type": q.qtype,
                                "marks": q.marks,
                                "params": q.params,
                                "status": q.status,
                                "ordering": self.links.get(&q.question_id.0).map(|l| l.ordering),
                                "createdAt": q.created_at,
                                "updatedAt": q.updated_at,
                                "isCompulsory": self.links.get(&q.question_id.0).map(|l| l.is_compulsory),
                            })
                        })
                        .collect(),
                );
            }
        }
        v
    }

    fn question_json(&self, id: Uuid, visited: &mut HashSet<Uuid>) -> Option<Value> {
        if !visited.insert(id) {
            return None; // a cycle of conditional links: show each question once
        }
        let q = self.questions.get(&id)?;
        if q.status == QuestionStatus::Archived {
            return None;
        }
        let link = self.links.get(&id)?;
        let options = self.options.get(&id).cloned().unwrap_or_default();
        let mut v = json!({
            "testQuestionId": link.test_question_id,
            "tenantId": link.tenant_id,
            "organisationId": link.organisation_id,
            "testId": link.test_id,
            "questionId": q.question_id,
            "sectionId": link.section_id,
            "ruleId": link.rule_id,
            "isCompulsory": link.is_compulsory,
            "isConditional": link.is_conditional,
            "text": q.text,
            "description": q.description,
            "media": q.media,
            "type": q.qtype,
            "level": q.level,
            "marks": q.marks,
            "params": q.params,
            "status": q.status,
            "ordering": link.ordering,
            "createdAt": q.created_at,
            "updatedAt": q.updated_at,
        });
        v["options"] = Value::Array(
            options
                .iter()
                .map(|o| self.option_json(o, visited))
                .collect(),
        );
        if self.audience == Audience::Learner {
            hide_answer_options(&mut v, q.qtype, &options);
        }
        if q.qtype == QuestionType::Match {
            let mut targets: Vec<&QuestionOption> =
                options.iter().filter(|o| o.match_with.is_some()).collect();
            match self.audience {
                // Alphabetical: the order carries no information about the pairs.
                Audience::Learner => targets
                    .sort_by_key(|o| o.match_with.as_deref().unwrap_or_default().to_lowercase()),
                Audience::Author => targets.sort_by_key(|o| o.ordering),
            }
            v["matchWithOptions"] = Value::Array(
                targets
                    .iter()
                    .enumerate()
                    .map(|(i, o)| {
                        json!({"matchWith": o.match_with, "matchWithMedia": o.match_with_media, "ordering": i})
                    })
                    .collect(),
            );
        }
        if self.audience == Audience::Author {
            let mut children: Vec<&Question> = self
                .questions
                .values()
                .filter(|c| c.parent_id.map(|p| p.0) == Some(id))
                .filter(|c| {
                    self.links
                        .get(&c.question_id.0)
                        .is_some_and(|l| l.is_conditional)
                })
                .collect();
            children.sort_by_key(|c| {
                (
                    self.links
                        .get(&c.question_id.0)
                        .map(|l| l.ordering)
                        .unwrap_or(i32::MAX),
                    c.question_id.0,
                )
            });
            let ids: Vec<Uuid> = children.iter().map(|c| c.question_id.0).collect();
            v["childQuestion"] = Value::Array(
                ids.into_iter()
                    .filter_map(|c| self.question_json(c, visited))
                    .collect(),
            );
        }
        visited.remove(&id);
        Some(v)
    }
}

/// Takes out of a learner's view of a question (`v`) the options that are answers: a blank's
/// options are its accepted answers (the learner gets the blank indexes instead), and a
/// free-text question's are reference answers.
pub(crate) fn hide_answer_options<'a>(
    v: &mut Value,
    qtype: QuestionType,
    options: impl IntoIterator<Item = &'a QuestionOption>,
) {
    match qtype {
        QuestionType::FillBlank => {
            let blanks: BTreeSet<i32> = options.into_iter().filter_map(|o| o.blank_index).collect();
            v["options"] = json!([]);
            v["blanks"] = json!(blanks.into_iter().collect::<Vec<_>>());
        }
        QuestionType::Subjective | QuestionType::Essay => v["options"] = json!([]),
        _ => {}
    }
}

/// Things made from published tests, kept in the process by test.
///
/// What a published test shows learners cannot change while it stays published: its
/// sections, links and rules refuse changes (`lock_unpublished`), and so do its questions,
/// their options and the options' links to child questions (`lock_using_tests`). Anything
/// else (unpublishing, a change to the test's own fields) stamps the test's `updatedAt`. So an
/// entry is valid while the test row, read on every use, is published with the entry's
/// `updatedAt`: one indexed read instead of several, correct across instances without any
/// invalidation message.
#[derive(Debug)]
pub struct ByTest<T> {
    entries: Mutex<HashMap<(Scope, Uuid), (Ts, T)>>,
    /// Held while an entry is made: one maker at a time.
    making: tokio::sync::Mutex<()>,
}

impl<T> Default for ByTest<T> {
    fn default() -> Self {
        ByTest {
            entries: Mutex::default(),
            making: tokio::sync::Mutex::default(),
        }
    }
}

/// How many tests' entries are kept; past it, the map starts again empty.
const KEPT_TESTS: usize = 1_000;

impl<T: Clone> ByTest<T> {
    /// The entry of the test made at `updated_at`, if kept.
    pub(crate) fn get(&self, key: &(Scope, Uuid), updated_at: Ts) -> Option<T> {
        let entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        entries
            .get(key)
            .filter(|(at, _)| *at == updated_at)
            .map(|(_, v)| v.clone())
    }

    /// The entry of the test made at `updated_at`, or the one `make` makes (with the
    /// `updatedAt` it was made at), kept. Entries are made one at a time, so a burst of
    /// requests for a test not kept yet (the first minute of an exam) waits for one read of
    /// it instead of each reading the same rows.
    ///
    /// `what` names the kind of entry in the `test_entries_made_total` metric.
    pub async fn get_or_make<E, F: Future<Output = Result<(Ts, T), E>>>(
        &self,
        what: &'static str,
        key: (Scope, Uuid),
        updated_at: Ts,
        make: impl FnOnce() -> F,
    ) -> Result<(Ts, T), E> {
        if let Some(kept) = self.get(&key, updated_at) {
            return Ok((updated_at, kept));
        }
        let _making = self.making.lock().await;
        if let Some(kept) = self.get(&key, updated_at) {
            return Ok((updated_at, kept));
        }
        let (at, made) = make().await?;
        metrics::counter!("test_entries_made_total", "kind" => what).increment(1);
        self.put(key, at, made.clone());
        Ok((at, made))
    }

    pub(crate) fn put(&self, key: (Scope, Uuid), updated_at: Ts, value: T) {
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        if entries.len() >= KEPT_TESTS && !entries.contains_key(&key) {
            entries.clear();
        }
        entries.insert(key, (updated_at, value));
    }

    pub fn len(&self) -> usize {
        self.entries.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The learner hierarchies of published tests.
pub type LearnerViews = ByTest<Shared>;

/// A rendered view, shared between requests, serialized once.
#[derive(Debug, Clone)]
pub struct Shared(pub Arc<serde_json::value::RawValue>);

impl serde::Serialize for Shared {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(s)
    }
}

/// A learner hierarchy and its entity tag: a weak one (the envelope around it differs per
/// response), from the test and the `updatedAt` the view was rendered at.
#[derive(Debug, Clone)]
pub struct LearnerView {
    pub view: Shared,
    pub etag: String,
}

/// The learner hierarchy of a published test: from `views` when the test row still matches
/// the kept one, else rendered and kept.
pub async fn learner_hierarchy(
    store: &Store,
    views: &LearnerViews,
    scope: &Scope,
    test_id: Uuid,
) -> AppResult<LearnerView> {
    let test = crate::store::watch::current(store.test_watch(), store, scope, test_id)
        .await?
        .filter(|t| t.status == TestStatus::Published)
        .ok_or_else(|| AppError::not_found("Test not found"))?;
    let etag = |at: Ts| format!("W/\"{}-{}\"", test_id.simple(), at.0.timestamp_micros());
    let (updated_at, view) = views
        .get_or_make(
            "learner_hierarchy",
            (*scope, test_id),
            test.updated_at,
            || async {
                let (value, updated_at) = render(store, scope, test_id, Audience::Learner).await?;
                let raw = serde_json::value::to_raw_value(&value).map_err(anyhow::Error::from)?;
                Ok::<_, AppError>((updated_at, Shared(Arc::from(raw))))
            },
        )
        .await?;
    Ok(LearnerView {
        view,
        etag: etag(updated_at),
    })
}

/// The hierarchy of a test for `audience`.
pub async fn hierarchy(
    store: &Store,
    scope: &Scope,
    test_id: Uuid,
    audience: Audience,
) -> AppResult<Value> {
    Ok(render(store, scope, test_id, audience).await?.0)
}

/// The hierarchy of a test for `audience`, and the test's `updatedAt` in the snapshot it was
/// read from.
async fn render(
    store: &Store,
    scope: &Scope,
    test_id: Uuid,
    audience: Audience,
) -> AppResult<(Value, Ts)> {
    // One read transaction: one pooled connection for the six reads (under load each separate
    // read waited for a connection again), and one snapshot of the test.
    let mut tx = store.begin_read().await?;
    let test = repo::get(&mut tx, scope, test_id)
        .await?
        .filter(|t| match audience {
            Audience::Learner => t.status == TestStatus::Published,
            Audience::Author => t.status != TestStatus::Archived,
        })
        .ok_or_else(|| AppError::not_found("Test not found"))?;
    let sections: Vec<_> = repo::sections_of(&mut tx, scope, test_id)
        .await?
        .into_iter()
        .filter(|s| s.status != SectionStatus::Archived)
        .collect();
    let links = repo::links_of(&mut tx, scope, test_id).await?;
    let ids: Vec<Uuid> = links.iter().map(|l| l.question_id.0).collect();
    let (questions, options) = questions_with_options(&mut tx, scope, &ids).await?;
    let option_links: Vec<OptionQuestion> = question_repo::links_to(&mut tx, scope, &ids).await?;
    tx.rollback().await?;
    let link_map: HashMap<Uuid, TestQuestion> =
        links.iter().map(|l| (l.question_id.0, l.clone())).collect();
    let mut reveals: HashMap<Uuid, Vec<(i32, i32, Uuid)>> = HashMap::new();
    for ol in option_links.iter().filter(|l| l.is_active) {
        if let Some(child_link) = link_map.get(&ol.question_id.0) {
            reveals.entry(ol.option_id.0).or_default().push((
                child_link.ordering,
                ol.ordering,
                ol.question_id.0,
            ));
        }
    }
    let reveals = reveals
        .into_iter()
        .map(|(k, mut v)| {
            v.sort();
            (k, v.into_iter().map(|(_, _, id)| id).collect())
        })
        .collect();
    let paper = Paper {
        questions,
        options,
        links: link_map,
        reveals,
        audience,
    };
    let mut out = serde_json::to_value(&test).map_err(anyhow::Error::from)?;
    let mut section_values = Vec::new();
    for s in &sections {
        let mut sv = serde_json::to_value(s).map_err(anyhow::Error::from)?;
        let mut visited = HashSet::new();
        let qs: Vec<Value> = links
            .iter()
            .filter(|l| l.section_id == Some(s.section_id) && !l.is_conditional)
            .filter(|l| {
                paper
                    .questions
                    .get(&l.question_id.0)
                    .is_some_and(|q| q.parent_id.is_none())
            })
            .filter_map(|l| paper.question_json(l.question_id.0, &mut visited))
            .collect();
        sv["questions"] = Value::Array(qs);
        section_values.push(sv);
    }
    out["sections"] = Value::Array(section_values);
    Ok((out, test.updated_at))
}
