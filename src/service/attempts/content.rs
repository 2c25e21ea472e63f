//! What the attempts of a published plain test read that does not depend on the learner: its
//! paper before any shuffle, and the questions, options and option links on it. Kept in the
//! process by test, for starts, the learner's paper and the answer sheet.
//!
//! An entry is valid on the grounds the learner hierarchy's is (see
//! [`ByTest`]): while a test is published its sections, links, questions, options and option
//! links refuse changes, and whatever would change them needs an unpublish first, which
//! stamps the test's `updatedAt`. So an entry is used only for a test read as published with
//! the entry's `updatedAt` (every use reads the test row anyway), and needs no invalidation
//! between instances. Rule-based tests are not
//! kept: a rule's pool follows the bank, which changes without the test.

use std::collections::HashMap;
use std::sync::Arc;

use uuid::Uuid;

use crate::domain::enums::{QuestionStatus, SectionStatus, TestStatus, TestType};
use crate::domain::ids::Scope;
use crate::error::{AppError, AppResult};
use crate::service::hierarchy::ByTest;
use crate::service::questions::questions_with_options;
use crate::store::Db;
use crate::store::assessments::{self as test_repo, Test};
use crate::store::attempts::PaperItem;
use crate::store::questions::{self as question_repo, OptionQuestion, Question, QuestionOption};

/// A plain test's paper material.
#[derive(Debug)]
pub struct Content {
    /// The paper before any shuffle: each section's items in order, options in stored order.
    pub sections: Vec<Vec<PaperItem>>,
    /// The linked questions (archived ones too, for the attempts that hold them).
    pub questions: HashMap<Uuid, Question>,
    pub options: HashMap<Uuid, Vec<QuestionOption>>,
    /// The option links whose child is one of the questions.
    pub reveals: Vec<OptionQuestion>,
}

impl Content {
    /// Questions, options and links read for one use, not a test's kept content (no paper).
    pub fn unkept(
        questions: HashMap<Uuid, Question>,
        options: HashMap<Uuid, Vec<QuestionOption>>,
        reveals: Vec<OptionQuestion>,
    ) -> Content {
        Content {
            sections: Vec::new(),
            questions,
            options,
            reveals,
        }
    }

    /// Whether every question of `paper` is here, at the revision the paper holds.
    pub fn holds(&self, paper: &[PaperItem]) -> bool {
        paper.iter().all(|p| {
            self.questions
                .get(&p.question_id)
                .is_some_and(|q| p.revision.is_none_or(|r| r == q.revision))
        })
    }
}

/// The kept contents, by test.
pub type Contents = ByTest<Arc<Content>>;

/// The content of `test` as read now, if it may be kept (a published plain test): from the
/// entry made at the test's `updatedAt`, or read through `db` and kept.
pub async fn kept<'a>(
    contents: &Contents,
    db: impl Into<Db<'a>>,
    scope: &Scope,
    test: &Test,
) -> AppResult<Option<Arc<Content>>> {
    if test.status != TestStatus::Published || test.test_type == TestType::RuleBased {
        return Ok(None);
    }
    let (_, content) = contents
        .get_or_make(
            "paper_material",
            (*scope, test.test_id.0),
            test.updated_at,
            || async {
                let content = read(db, scope, test.test_id.0).await?;
                Ok::<_, AppError>((test.updated_at, Arc::new(content)))
            },
        )
        .await?;
    Ok(Some(content))
}

/// Reads a plain test's content.
pub async fn read<'a>(db: impl Into<Db<'a>>, scope: &Scope, test_id: Uuid) -> AppResult<Content> {
    let mut db = db.into();
    let sections: Vec<_> = test_repo::sections_of(db.reborrow(), scope, test_id)
        .await?
        .into_iter()
        .filter(|s| s.status != SectionStatus::Archived)
        .collect();
    let links = test_repo::links_of(db.reborrow(), scope, test_id).await?;
    let ids: Vec<Uuid> = links.iter().map(|l| l.question_id.0).collect();
    let (questions, options) = questions_with_options(db.reborrow(), scope, &ids).await?;
    let reveals = question_repo::links_to(db.reborrow(), scope, &ids).await?;
    let live = |id: &Uuid| {
        questions
            .get(id)
            .is_some_and(|q| q.status != QuestionStatus::Archived)
    };
    let sections = sections
        .iter()
        .map(|s| {
            links
                .iter()
                .filter(|l| l.section_id == Some(s.section_id) && live(&l.question_id.0))
                .map(|l| PaperItem {
                    question_id: l.question_id.0,
                    section_id: Some(s.section_id.0),
                    rule_id: l.rule_id.map(|r| r.0),
                    is_compulsory: l.is_compulsory,
                    is_conditional: l.is_conditional,
                    option_order: options
                        .get(&l.question_id.0)
                        .map(|o| o.iter().map(|o| o.question_option_id.0).collect())
                        .unwrap_or_default(),
                    revision: questions.get(&l.question_id.0).map(|q| q.revision),
                })
                .collect()
        })
        .collect();
    Ok(Content {
        sections,
        questions,
        options,
        reveals,
    })
}
