//! Taking a test: start, answer, submit (by the learner or by the deadline sweeper), resume,
//! and the learner's status across attempts. Every use case locks the attempt row, so answers
//! and submission never interleave.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use serde::Serialize;
use serde_json::{Value, json};
use sqlx::types::Json;
use utoipa::ToSchema;
use uuid::Uuid;

use super::hierarchy::hide_answer_options;
use super::questions::{questions_at, questions_with_options};
use super::{Actor, UnitOfWork};
use crate::clock::Clock;
use crate::domain::accommodation::Terms;
use crate::domain::attempt::{self as rules, ScoredAttempt, SeededRng};
use crate::domain::enums::{
    AttemptResult, AttemptStatus, GradingType, QuestionType, ReviewStatus, SubmissionType,
    TestStatus, TestType,
};
use crate::domain::event::EventName;
use crate::domain::ids::{Scope, UserId};
use crate::domain::lifecycle::{
    self, Earlier, Refusal, ScoredAnswer, Stage, Start, StartRefusal, Window,
};
use crate::domain::marks::Marks;
use crate::domain::scoring::{Answer, KeyOption, QuestionKey};
use crate::error::{AppError, AppResult};
use crate::store::assessments::{self as test_repo, Test};
use crate::store::attempts::{self as repo, Attempt, PaperItem};
use crate::store::questions::{self as question_repo, Question, QuestionOption};
use crate::store::{Id, Store, Ts, Tx};
use content::{Content, Contents};

mod answers;
pub mod content;
pub mod keys;
mod paper;
pub mod pools;
mod progress;
mod start;
pub use answers::*;
pub use paper::*;
pub use progress::*;
pub use start::*;

/// The ordering key of an attempt's events: they are delivered in the order they happened.
pub(crate) fn ordering_key(attempt_id: Uuid) -> String {
    format!("attempt:{attempt_id}")
}

/// Stored hundredths as marks.
pub(crate) fn marks_of(h: Option<i64>) -> Option<Marks> {
    h.and_then(|v| Marks::from_hundredths(v).ok())
}

/// The lifecycle's view of a learner's attempts.
fn earlier(attempts: &[Attempt]) -> Vec<Earlier> {
    attempts
        .iter()
        .map(|a| Earlier {
            status: a.status,
            review: a.review_status,
        })
        .collect()
}

/// The lifecycle's view of an attempt on `test`.
pub(crate) fn window(a: &Attempt, test: &Test) -> Window {
    Window {
        status: a.status,
        allow_resubmission: test.allow_resubmission,
        deadline: a.deadline_at.map(|d| d.0),
        // An accommodation's later end date keeps this attempt open past the test's.
        test_end: match (test.end_date, a.accommodated_end) {
            (Some(t), Some(moved)) => Some(t.0.max(moved.0)),
            (t, _) => t.map(|t| t.0),
        },
    }
}

/// Locks the caller's own attempt (404 for anyone else's).
async fn lock_own(tx: &mut Tx, actor: &Actor, attempt_id: Uuid) -> AppResult<Attempt> {
    repo::lock(tx, &actor.scope, attempt_id)
        .await?
        .filter(|a| a.user_id.0 == actor.user_uuid())
        .ok_or_else(|| AppError::not_found("Attempt not found"))
}

fn paper_of(a: &Attempt) -> Vec<PaperItem> {
    a.paper.as_ref().map(|p| p.0.clone()).unwrap_or_default()
}

/// Seconds `a` has taken at `now`, under `test`'s time limit.
fn time_spent(a: &Attempt, now: Ts, test: &Test) -> i32 {
    elapsed(a.started_at, a.deadline_at, now, test.time_duration)
}

/// Seconds an attempt started at `started` has taken at `now`, under the test's time limit.
fn elapsed(started: Ts, deadline: Option<Ts>, now: Ts, time_duration: Option<i32>) -> i32 {
    // Time stops at the deadline, whenever the submission is recorded.
    let end = deadline.map_or(now, |d| d.min(now));
    let secs = (end.0 - started.0).num_seconds().max(0);
    // An accommodation's extra time makes the deadline later than start + the test's limit.
    let allowed = |d: i32| match deadline {
        Some(dl) => i64::from(d).max((dl.0 - started.0).num_seconds()),
        None => i64::from(d),
    };
    let capped = match time_duration.filter(|d| *d > 0) {
        Some(d) => secs.min(allowed(d)),
        None => secs,
    };
    i32::try_from(capped).unwrap_or(i32::MAX)
}

/// The error a lifecycle refusal is answered with (`submitted`: the message for an attempt
/// already submitted, which differs between answering and submitting).
fn refused(r: Refusal, submitted: &'static str) -> AppError {
    match r {
        Refusal::AlreadySubmitted => AppError::conflict(submitted),
        Refusal::TimeOver => AppError::unprocessable("The time allowed for this attempt is over"),
        Refusal::TestClosed => AppError::unprocessable("Test is no longer available for attempts"),
    }
}

/// Result of a submission.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Submitted {
    #[schema(value_type = String, format = Uuid)]
    pub attempt_id: Uuid,
    #[schema(value_type = Option<f64>)]
    pub score: Option<Marks>,
    pub review_status: ReviewStatus,
    pub result: Option<AttemptResult>,
    #[schema(value_type = f64)]
    pub total_marks: Marks,
    pub percentage: Option<f64>,
    pub time_spent: i32,
    pub submission_type: SubmissionType,
}

/// True when an answer says nothing (no selection, no text, no blanks, no pairs, no file).
fn is_empty_answer(v: &Value) -> bool {
    let a: Answer = serde_json::from_value(v.clone()).unwrap_or_default();
    a.selected_option_ids.as_ref().is_none_or(|s| s.is_empty())
        && a.text.as_deref().is_none_or(|t| t.trim().is_empty())
        && a.blanks.as_ref().is_none_or(|b| b.is_empty())
        && a.matches.as_ref().is_none_or(|m| m.is_empty())
        && a.file.as_deref().is_none_or(|f| f.trim().is_empty())
        && a.rating.is_none()
}

/// The conditional questions of the paper that the answers reveal.
async fn revealed(
    tx: &mut Tx,
    scope: &Scope,
    paper: &[PaperItem],
    answers: &HashMap<Uuid, Value>,
) -> AppResult<BTreeSet<Uuid>> {
    let conditional: Vec<Uuid> = paper
        .iter()
        .filter(|p| p.is_conditional)
        .map(|p| p.question_id)
        .collect();
    let links = question_repo::links_to(&mut *tx, scope, &conditional).await?;
    Ok(shown_by(&links, answers))
}

/// The questions `links` reveal for `answers` (the options they selected).
pub(crate) fn shown_by(
    links: &[question_repo::OptionQuestion],
    answers: &HashMap<Uuid, Value>,
) -> BTreeSet<Uuid> {
    let selected: BTreeSet<Uuid> = answers
        .values()
        .filter_map(|a| a.get("selectedOptionIds"))
        .filter_map(|v| v.as_array())
        .flatten()
        .filter_map(|v| v.as_str().and_then(|s| Uuid::parse_str(s).ok()))
        .collect();
    links
        .iter()
        .filter(|l| l.is_active && selected.contains(&l.option_id.0))
        .map(|l| l.question_id.0)
        .collect()
}

/// Which compulsory questions still lack an answer (conditional ones only when revealed).
async fn unanswered_compulsory(
    tx: &mut Tx,
    scope: &Scope,
    paper: &[PaperItem],
    answers: &HashMap<Uuid, Value>,
) -> AppResult<Vec<Uuid>> {
    let shown = revealed(tx, scope, paper, answers).await?;
    Ok(paper
        .iter()
        .filter(|p| p.is_compulsory)
        .filter(|p| !p.is_conditional || shown.contains(&p.question_id))
        .filter(|p| answers.get(&p.question_id).is_none_or(is_empty_answer))
        .map(|p| p.question_id)
        .collect())
}

/// Scores and closes an attempt in `uow` (the attempt row is locked by the caller).
async fn finalize(
    uow: &mut UnitOfWork,
    mut attempt: Attempt,
    test: &Test,
    submission_type: SubmissionType,
) -> AppResult<Submitted> {
    let scope = uow.scope();
    let now = uow.now();
    let paper = paper_of(&attempt);
    let in_paper: BTreeSet<Uuid> = paper.iter().map(|p| p.question_id).collect();
    let answers: Vec<_> = repo::answers(uow.tx(), &scope, attempt.attempt_id.0)
        .await?
        .into_iter()
        .filter(|a| in_paper.contains(&a.question_id.0))
        .collect();
    let given: HashMap<Uuid, Value> = answers
        .iter()
        .map(|a| (a.question_id.0, a.answer.0.clone()))
        .collect();
    // Answers to conditional questions their parent's answer did not reveal do not count.
    let shown = revealed(uow.tx(), &scope, &paper, &given).await?;
    let conditional: BTreeSet<Uuid> = paper
        .iter()
        .filter(|p| p.is_conditional)
        .map(|p| p.question_id)
        .collect();
    let counted: Vec<ScoredAnswer> = answers
        .iter()
        .filter(|a| !conditional.contains(&a.question_id.0) || shown.contains(&a.question_id.0))
        .map(|a| ScoredAnswer {
            score: a.score,
            review: a.review_status,
        })
        .collect();
    if submission_type == SubmissionType::Learner
        && !unanswered_compulsory(uow.tx(), &scope, &paper, &given)
            .await?
            .is_empty()
    {
        return Err(AppError::validation(
            "You need to answer all the required questions before submitting your attempt.",
        ));
    }
    let total = marks_of(attempt.total_marks).unwrap_or(Marks::ZERO);
    // Scored as the version the attempt started on scores.
    let terms =
        crate::service::assessments::scoring_terms(uow.tx(), &scope, &attempt, test).await?;
    let closing = lifecycle::close(
        Stage::Submission,
        terms.grading_type.has_answer_key(),
        &counted,
        terms.passing_marks,
    );
    attempt.status = AttemptStatus::Submitted;
    attempt.submitted_at = Some(now);
    attempt.submission_type = submission_type;
    attempt.score = closing.score.map(Marks::hundredths);
    attempt.review_status = closing.review;
    attempt.result = closing.result;
    attempt.time_spent = Some(time_spent(&attempt, now, test));
    uow.stamp(&mut attempt);
    repo::update(uow.tx(), &attempt).await?;
    let time_spent = attempt.time_spent.unwrap_or(0);
    uow.emit_ordered(
        EventName::AttemptSubmitted,
        &crate::domain::event_data::AttemptSubmitted {
            attempt_id: attempt.attempt_id.0,
            test_id: attempt.test_id.0,
            score: closing.score,
            result: closing.result,
            time_spent,
            review_status: closing.review,
            is_objective: test.is_objective,
            submission_type,
        },
        ordering_key(attempt.attempt_id.0),
    );
    Ok(Submitted {
        attempt_id: attempt.attempt_id.0,
        score: closing.score,
        review_status: closing.review,
        result: closing.result,
        total_marks: total,
        percentage: closing.score.map(|s| rules::percentage(s, total)),
        time_spent,
        submission_type,
    })
}

/// `POST /attempts/{id}/submit`.
pub async fn submit(
    store: &Store,
    clock: &Clock,
    actor: &Actor,
    attempt_id: Uuid,
) -> AppResult<Submitted> {
    let mut uow = UnitOfWork::begin(store, clock, actor).await?;
    let attempt = lock_own(uow.tx(), actor, attempt_id).await?;
    let test = test_repo::get(uow.tx(), &actor.scope, attempt.test_id.0)
        .await?
        .ok_or_else(|| AppError::not_found("Test not found"))?;
    let kind = window(&attempt, &test)
        .may_submit(uow.now().0)
        .map_err(|r| refused(r, "Attempt is already submitted"))?;
    let mut closed = attempt.clone();
    closed.status = AttemptStatus::Submitted;
    let now = uow.now().0;
    let mut out = finalize(&mut uow, attempt, &test, kind).await?;
    uow.commit().await?;
    // While the learner may still re-answer, the score would tell whether a changed answer
    // was right: it is withheld, as the key is (see `reviews::answersheet`).
    let shows_key = test.show_correct_answer && !test.allow_resubmission;
    if !window(&closed, &test).shows_scores(now, shows_key) {
        out.score = None;
        out.percentage = None;
    }
    Ok(out)
}

/// One step of the deadline sweeper: submits (as `auto`) every in-progress attempt whose
/// deadline has passed, up to `limit`, each in its own transaction. An attempt that fails is
/// logged and left for the next step; the others are still submitted. Returns how many were.
pub async fn sweep_once(store: &Store, clock: &Clock, limit: i64) -> AppResult<usize> {
    let mut done = 0;
    for candidate in repo::expired(store, clock.now(), limit).await? {
        match submit_overdue(store, clock, &candidate).await {
            Ok(true) => done += 1,
            Ok(false) => {}
            Err(e) => tracing::warn!(
                attempt_id = %candidate.attempt_id.0, test_id = %candidate.test_id.0, error = %e,
                "the deadline sweeper could not submit an attempt; it goes on with the others"
            ),
        }
    }
    Ok(done)
}

/// Submits one overdue attempt; `false` when it no longer needs it (gone, or submitted since).
async fn submit_overdue(store: &Store, clock: &Clock, candidate: &Attempt) -> AppResult<bool> {
    let scope = Scope {
        tenant: crate::domain::ids::TenantId::from_uuid(candidate.tenant_id.0),
        organisation: crate::domain::ids::OrganisationId::from_uuid(candidate.organisation_id.0),
    };
    let actor = Actor {
        scope,
        user: UserId::from_uuid(candidate.user_id.0),
    };
    let mut uow = UnitOfWork::begin(store, clock, &actor).await?;
    let Some(attempt) = repo::lock(uow.tx(), &scope, candidate.attempt_id.0).await? else {
        return Ok(false);
    };
    let Some(test) = test_repo::get(uow.tx(), &scope, attempt.test_id.0).await? else {
        return Ok(false);
    };
    // Re-checked under the lock: a learner's own submit may have won.
    if !window(&attempt, &test).is_overdue(uow.now().0) {
        return Ok(false);
    }
    finalize(&mut uow, attempt, &test, SubmissionType::Auto).await?;
    uow.commit().await?;
    Ok(true)
}
