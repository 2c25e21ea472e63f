//! Regrading a test's submitted attempts after a key or marks change: a preview that writes
//! nothing, and an apply that writes in batches, keeps a history row per changed attempt and
//! emits `attempt.regraded`.
//!
//! The target is the test as published now: each question at its current revision, the test's
//! grading type and passing marks, its latest version. (A published plain test's questions
//! cannot change without an unpublish, so for it that is its latest version exactly; a
//! rule-based test's questions come from the bank, where a correction needs no unpublish.)
//! Each answer is scored again as a save scores it; a reviewer's score is kept unless the
//! request says otherwise. An attempt changes when its score, result, review status, total
//! marks or any answer's score does; it then holds the target revisions and version, so
//! applying twice changes nothing the second time.

use std::collections::{BTreeSet, HashMap};

use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;
use uuid::Uuid;

use super::{Actor, UnitOfWork};
use crate::clock::Clock;
use crate::domain::enums::{AttemptResult, ReviewStatus, TestStatus};
use crate::domain::event::EventName;
use crate::domain::ids::Scope;
use crate::domain::lifecycle::{self, ScoredAnswer, Stage};
use crate::domain::marks::Marks;
use crate::domain::regrade::{self as rules, Stored};
use crate::domain::scoring::QuestionKey;
use crate::error::{AppError, AppResult};
use crate::service::attempts::{grade_of, key_of, marks_of, ordering_key, shown_by};
use crate::service::questions::questions_with_options;
use crate::store::assessments::{self as test_repo, Test};
use crate::store::attempts::{self as attempt_repo, Attempt};
use crate::store::questions as question_repo;
use crate::store::regrades::{self as repo, RegradeRecord, Selection};
use crate::store::{Db, Id, Store, Ts};

/// Attempts read (and, applying, written) per transaction.
const BATCH: i64 = 100;

/// Body of `POST /tests/{id}/regrade/preview` and `POST /tests/{id}/regrade`.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RegradeIn {
    /// Why (kept in the history and sent with the events); at most 1000 characters.
    #[serde(default)]
    pub reason: Option<String>,
    /// Only attempts started on this version (default: every submitted attempt).
    #[serde(default)]
    pub version: Option<i32>,
    /// Only these attempts (at most 1000).
    #[serde(default)]
    pub attempt_ids: Vec<Uuid>,
    /// Score again the answers a reviewer scored, too (default false: their scores are kept).
    #[serde(default)]
    pub override_manual: bool,
}

/// One attempt's score before and after.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AttemptRegrade {
    pub attempt_id: Uuid,
    pub user_id: Uuid,
    /// The learner's attempt number.
    pub attempt: i32,
    pub from_version: i32,
    #[schema(value_type = Option<f64>)]
    pub old_score: Option<Marks>,
    #[schema(value_type = Option<f64>)]
    pub new_score: Option<Marks>,
    pub old_result: Option<AttemptResult>,
    pub new_result: Option<AttemptResult>,
    pub old_review_status: ReviewStatus,
    pub new_review_status: ReviewStatus,
    #[schema(value_type = f64)]
    pub old_total_marks: Marks,
    #[schema(value_type = f64)]
    pub new_total_marks: Marks,
    /// Answers whose score or review status changes.
    pub answers_changed: u32,
    /// Whether anything changes (applying writes only these).
    pub changed: bool,
}

/// Result of a preview (every attempt examined) or of an apply (the attempts it changed).
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RegradeOut {
    pub test_id: Uuid,
    /// The version the attempts are scored against.
    pub to_version: i32,
    /// Submitted attempts examined.
    pub examined: u64,
    /// Attempts that change (preview) or changed (apply).
    pub changed: u64,
    pub attempts: Vec<AttemptRegrade>,
}

impl RegradeOut {
    fn empty(test_id: Uuid, to_version: i32) -> RegradeOut {
        RegradeOut {
            test_id,
            to_version,
            examined: 0,
            changed: 0,
            attempts: Vec::new(),
        }
    }
}

/// What regrading one attempt would write.
struct Plan {
    report: AttemptRegrade,
    /// The attempt as it becomes.
    after: Attempt,
    /// Answers whose score or review status changes: question, new score and status.
    answers: Vec<(Uuid, ScoredAnswer)>,
}

fn checked(body: &RegradeIn) -> AppResult<Selection> {
    if body
        .reason
        .as_deref()
        .is_some_and(|r| r.chars().count() > 1000)
    {
        return Err(AppError::validation("reason: at most 1000 characters"));
    }
    if body.version.is_some_and(|v| v < 0) {
        return Err(AppError::validation("version must be 0 or more"));
    }
    super::at_most("attemptIds", &body.attempt_ids, super::MAX_IDS)?;
    Ok(Selection {
        version: body.version,
        attempt_ids: body.attempt_ids.clone(),
    })
}

fn published(test: Test) -> AppResult<Test> {
    if test.status != TestStatus::Published {
        return Err(AppError::unprocessable(
            "Publish the test first: a regrade scores attempts against its published version",
        ));
    }
    Ok(test)
}

/// The plans for `attempts` against `test` as it is now.
async fn plan<'a>(
    db: impl Into<Db<'a>>,
    scope: &Scope,
    test: &Test,
    attempts: &[Attempt],
    body: &RegradeIn,
    by: Uuid,
    now: Ts,
) -> AppResult<Vec<Plan>> {
    let mut db = db.into();
    let ids: Vec<Uuid> = attempts
        .iter()
        .flat_map(|a| {
            a.paper
                .iter()
                .flat_map(|p| p.0.iter().map(|i| i.question_id))
        })
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let (questions, options) = questions_with_options(db.reborrow(), scope, &ids).await?;
    let keys: HashMap<Uuid, QuestionKey> = questions
        .iter()
        .map(|(id, q)| {
            let opts = options.get(id).map(Vec::as_slice).unwrap_or_default();
            (*id, key_of(q, opts, test.grading_type))
        })
        .collect();
    let revisions: HashMap<Uuid, i32> = questions.iter().map(|(id, q)| (*id, q.revision)).collect();
    let conditional: Vec<Uuid> = attempts
        .iter()
        .flat_map(|a| a.paper.iter().flat_map(|p| p.0.iter()))
        .filter(|i| i.is_conditional)
        .map(|i| i.question_id)
        .collect();
    let links = question_repo::links_to(db.reborrow(), scope, &conditional).await?;
    let attempt_ids: Vec<Uuid> = attempts.iter().map(|a| a.attempt_id.0).collect();
    let mut stored: HashMap<Uuid, Vec<attempt_repo::StoredAnswer>> = HashMap::new();
    for x in attempt_repo::answers_of_many(db, scope, &attempt_ids).await? {
        stored.entry(x.attempt_id.0).or_default().push(x);
    }
    let graded = test.grading_type.has_answer_key();
    let mut plans = Vec::with_capacity(attempts.len());
    for a in attempts {
        let paper = a.paper.as_ref().map(|p| p.0.as_slice()).unwrap_or_default();
        let answers = stored.remove(&a.attempt_id.0).unwrap_or_default();
        let given: HashMap<Uuid, Value> = answers
            .iter()
            .map(|x| (x.question_id.0, x.answer.0.clone()))
            .collect();
        let shown = shown_by(&links, &given);
        let counts = |q: &Uuid| {
            paper
                .iter()
                .find(|p| p.question_id == *q)
                .is_some_and(|p| !p.is_conditional || shown.contains(q))
        };
        let mut changed_answers = Vec::new();
        let mut counted = Vec::new();
        let mut manual = false;
        for x in &answers {
            let q = x.question_id.0;
            let now_scored = ScoredAnswer {
                score: x.score,
                review: x.review_status,
            };
            let again = match keys.get(&q) {
                Some(key) => {
                    let before = Stored {
                        answer: serde_json::from_value(x.answer.0.clone()).unwrap_or_default(),
                        score: x.score,
                        review: x.review_status,
                        manual: x.reviewed_by.is_some(),
                    };
                    manual |= before.manual;
                    rules::rescore(key, &before, body.override_manual)
                }
                None => now_scored,
            };
            if again != now_scored {
                changed_answers.push((q, again));
            }
            if counts(&q) {
                counted.push(again);
            }
        }
        let stage = if manual || a.review_status == ReviewStatus::UnderReview {
            Stage::Review
        } else {
            Stage::Submission
        };
        let closing = lifecycle::close(stage, graded, &counted, test.passing_marks);
        let total: Marks = paper
            .iter()
            .filter(|i| !i.is_conditional)
            .filter_map(|i| questions.get(&i.question_id))
            .map(|q| q.marks)
            .sum();
        let old_total = marks_of(a.total_marks).unwrap_or(Marks::ZERO);
        let new_score = closing.score;
        let changed = !changed_answers.is_empty()
            || marks_of(a.score) != new_score
            || a.result != closing.result
            || a.review_status != closing.review
            || old_total != total;
        let mut after = a.clone();
        after.score = new_score.map(Marks::hundredths);
        after.result = closing.result;
        after.review_status = closing.review;
        after.total_marks = Some(total.hundredths());
        after.paper = Some(repo::repinned(paper, &revisions));
        after.test_version = test.version;
        after.updated_by = Some(Id(by));
        after.updated_at = now;
        plans.push(Plan {
            report: AttemptRegrade {
                attempt_id: a.attempt_id.0,
                user_id: a.user_id.0,
                attempt: a.attempt,
                from_version: a.test_version,
                old_score: marks_of(a.score),
                new_score,
                old_result: a.result,
                new_result: closing.result,
                old_review_status: a.review_status,
                new_review_status: closing.review,
                old_total_marks: old_total,
                new_total_marks: total,
                answers_changed: changed_answers.len() as u32,
                changed,
            },
            after,
            answers: changed_answers,
        });
    }
    Ok(plans)
}

/// `POST /tests/{id}/regrade/preview`: per submitted attempt, the score and result before and
/// after; writes nothing.
pub async fn preview(
    store: &Store,
    clock: &Clock,
    actor: &Actor,
    test_id: Uuid,
    body: RegradeIn,
) -> AppResult<RegradeOut> {
    let selection = checked(&body)?;
    let scope = actor.scope;
    let mut tx = store.begin_read().await?;
    let test = test_repo::get(&mut tx, &scope, test_id)
        .await?
        .filter(|t| t.status != TestStatus::Archived)
        .ok_or_else(|| AppError::not_found("Test not found"))?;
    let test = published(test)?;
    let mut out = RegradeOut::empty(test_id, test.version);
    let mut after = None;
    loop {
        let page =
            repo::submitted_page(&mut tx, &scope, test_id, &selection, after, BATCH, false).await?;
        let Some(last) = page.last() else { break };
        after = Some(last.attempt_id.0);
        let plans = plan(
            &mut tx,
            &scope,
            &test,
            &page,
            &body,
            actor.user_uuid(),
            clock.now(),
        )
        .await?;
        for p in plans {
            out.examined += 1;
            out.changed += u64::from(p.report.changed);
            out.attempts.push(p.report);
        }
        if (page.len() as i64) < BATCH {
            break;
        }
    }
    tx.rollback().await?;
    Ok(out)
}

/// `POST /tests/{id}/regrade`: applies the regrade, a batch of attempts per transaction (each
/// attempt locked and planned again under its lock); returns the attempts it changed.
pub async fn apply(
    store: &Store,
    clock: &Clock,
    actor: &Actor,
    test_id: Uuid,
    body: RegradeIn,
) -> AppResult<RegradeOut> {
    let selection = checked(&body)?;
    let scope = actor.scope;
    let mut out = None;
    let mut after = None;
    loop {
        let mut uow = UnitOfWork::begin(store, clock, actor).await?;
        let (by, now) = (uow.user().0, uow.now());
        // The test's lock orders the batch after any publish or regrade of it in progress.
        let mut test =
            published(crate::service::assessments::lock_live(uow.tx(), &scope, test_id).await?)?;
        let out = out.get_or_insert_with(|| RegradeOut::empty(test_id, test.version));
        if out.to_version != test.version {
            // Republished between two batches: the batches done stand, and applying again
            // regrades the rest against the new version.
            return Err(AppError::conflict(format!(
                "The test was republished (version {}) during the regrade; {} attempts were regraded against version {}; apply again",
                test.version, out.changed, out.to_version
            )));
        }
        let page =
            repo::submitted_page(uow.tx(), &scope, test_id, &selection, after, BATCH, true).await?;
        let Some(last) = page.last() else { break };
        after = Some(last.attempt_id.0);
        let plans = plan(uow.tx(), &scope, &test, &page, &body, by, now).await?;
        let mut changed_any = false;
        for p in plans {
            out.examined += 1;
            if !p.report.changed {
                continue;
            }
            changed_any = true;
            write(&mut uow, &test, &p, body.reason.as_deref()).await?;
            out.changed += 1;
            out.attempts.push(p.report);
        }
        if changed_any && test.allow_resubmission {
            // A submitted attempt may still be answered: the keys kept for its saves on every
            // instance were read under the test's `updatedAt`, which this moves.
            uow.stamp(&mut test);
            test_repo::update(uow.tx(), &test).await?;
        }
        uow.commit().await?;
        if (page.len() as i64) < BATCH {
            break;
        }
    }
    out.ok_or_else(|| AppError::not_found("Test not found"))
}

/// Writes one changed attempt: its answers, itself, its history row and its event.
async fn write(uow: &mut UnitOfWork, test: &Test, p: &Plan, reason: Option<&str>) -> AppResult<()> {
    let scope = uow.scope();
    let (by, now) = (uow.user().0, uow.now());
    let a = &p.after;
    for (q, s) in &p.answers {
        repo::set_answer_score(uow.tx(), &scope, a.attempt_id.0, *q, s.score, s.review, now)
            .await?;
    }
    repo::set_attempt(uow.tx(), a).await?;
    let r = &p.report;
    repo::record(
        uow.tx(),
        &RegradeRecord {
            regrade_id: Id(Uuid::new_v4()),
            attempt_id: a.attempt_id,
            test_id: a.test_id,
            user_id: a.user_id,
            tenant_id: a.tenant_id,
            organisation_id: a.organisation_id,
            from_version: r.from_version,
            to_version: test.version,
            old_score: r.old_score.map(Marks::hundredths),
            new_score: r.new_score.map(Marks::hundredths),
            old_result: r.old_result,
            new_result: r.new_result,
            reason: reason.map(str::to_string),
            regraded_by: Id(by),
            regraded_at: now,
        },
    )
    .await?;
    // The learner's grade across their attempts, with this one as it now is.
    let attempts = attempt_repo::of_user(uow.tx(), &scope, test.test_id.0, a.user_id.0).await?;
    let grade = grade_of(test, &attempts).map(|(i, g)| (attempts[i].attempt_id.0, g));
    uow.emit_ordered(
        EventName::AttemptRegraded,
        &crate::domain::event_data::AttemptRegraded {
            attempt_id: a.attempt_id.0,
            test_id: a.test_id.0,
            user_id: a.user_id.0,
            from_version: r.from_version,
            to_version: test.version,
            old_score: r.old_score,
            new_score: r.new_score,
            old_result: r.old_result,
            new_result: r.new_result,
            review_status: r.new_review_status,
            total_marks: r.new_total_marks,
            reason: reason.map(str::to_string),
            regraded_by: by,
            graded_attempt_id: grade.map(|g| g.0),
            grade: grade.map(|g| g.1),
        },
        ordering_key(a.attempt_id.0),
    );
    Ok(())
}

/// `GET /tests/{id}/regrades`: what regrades changed, newest first.
pub async fn history(
    store: &Store,
    scope: &Scope,
    test_id: Uuid,
    limit: Option<i64>,
    offset: Option<i64>,
) -> AppResult<super::Page<RegradeRecord>> {
    let (limit, offset) = super::page_window(limit, offset)?;
    crate::service::assessments::live(store, scope, test_id).await?;
    let (content, total) = repo::history(store, scope, test_id, limit, offset).await?;
    Ok(super::Page::new(content, total, limit, offset))
}
