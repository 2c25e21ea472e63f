//! After submission: reviewers score what needs a human, results are imported, learners and
//! reviewers read answer sheets, and other services ask whether a result is in.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use utoipa::ToSchema;
use uuid::Uuid;

use super::{Actor, UnitOfWork, page_window};
use crate::clock::Clock;
use crate::domain::attempt as rules;
use crate::domain::enums::{AttemptResult, AttemptStatus, GradingType, QuestionType, ReviewStatus};
use crate::domain::event::EventName;
use crate::domain::ids::Scope;
use crate::domain::lifecycle::{self, ScoredAnswer, Stage};
use crate::domain::marks::Marks;
use crate::domain::scoring::{Answer, blanks_by_index};
use crate::error::{AppError, AppResult};
use crate::service::questions::questions_at;
use crate::store::Store;
use crate::store::assessments::{self as test_repo, Test};
use crate::store::attempts::{self as repo, Attempt};
use crate::store::questions as question_repo;

mod report;
pub use report::*;

/// A reviewer's score for one answer.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ReviewItem {
    pub question_id: Uuid,
    /// Between 0 and the question's marks, at most two decimals.
    #[schema(value_type = f64)]
    pub score: Marks,
    #[serde(default)]
    pub remarks: Option<String>,
}

/// Body of `POST /attempts/{id}/review`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ReviewIn {
    pub answers: Vec<ReviewItem>,
    /// Stored on the attempt (shown with it, e.g. in the answer sheet); omitted keeps the
    /// remarks already there.
    #[serde(default)]
    pub overall_remarks: Option<String>,
}

/// Body of `POST /attempts/review` (review or import by test and learner).
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ImportIn {
    pub test_id: Uuid,
    pub user_id: Uuid,
    pub answers: Vec<ReviewItem>,
    #[serde(default)]
    pub overall_remarks: Option<String>,
}

/// Result of a review.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Reviewed {
    #[schema(value_type = String, format = Uuid)]
    pub attempt_id: Uuid,
    #[schema(value_type = Option<f64>)]
    pub score: Option<Marks>,
    pub result: Option<AttemptResult>,
    pub review_status: ReviewStatus,
}

/// A reviewer never scores their own attempt.
fn refuse_own(reviewer: &Actor, learner: Uuid) -> AppResult<()> {
    if learner == reviewer.user_uuid() {
        return Err(AppError::forbidden("You cannot review your own attempt"));
    }
    Ok(())
}

/// Records the scores of `items` on a submitted attempt (locked by the caller), closes its
/// review, and commits.
async fn apply_review(
    mut uow: UnitOfWork,
    mut attempt: Attempt,
    test: &Test,
    items: &[ReviewItem],
    overall_remarks: Option<&str>,
) -> AppResult<Reviewed> {
    crate::service::at_most("answers", items, crate::service::MAX_BATCH)?;
    let scope = uow.scope();
    let now = uow.now();
    let reviewer = uow.user();
    if attempt.status != AttemptStatus::Submitted {
        return Err(AppError::conflict(
            "Only submitted attempts can be reviewed",
        ));
    }
    let terms =
        crate::service::assessments::scoring_terms(uow.tx(), &scope, &attempt, test).await?;
    if !terms.grading_type.has_answer_key() {
        return Err(AppError::unprocessable(
            "Feedback and reflection attempts are not scored, so they are not reviewed",
        ));
    }
    if items.is_empty() {
        return Err(AppError::validation("answers should not be empty"));
    }
    let paper = attempt
        .paper
        .as_ref()
        .map(|p| p.0.clone())
        .unwrap_or_default();
    // The marks of each question at the revision the attempt holds.
    let questions: HashMap<Uuid, Marks> = questions_at(uow.tx(), &scope, &paper)
        .await?
        .0
        .into_iter()
        .map(|(id, q)| (id, q.marks))
        .collect();
    for (i, item) in items.iter().enumerate() {
        let Some(max) = questions.get(&item.question_id) else {
            return Err(AppError::validation(format!(
                "answers[{i}]: question {} is not part of this attempt",
                item.question_id
            )));
        };
        if item.score > *max {
            return Err(AppError::validation(format!(
                "answers[{i}].score ({}) exceeds the question's marks ({max})",
                item.score
            )));
        }
        let found = repo::review_answer(
            uow.tx(),
            &scope,
            repo::AnswerReview {
                attempt_id: attempt.attempt_id.0,
                question_id: item.question_id,
                score: item.score.hundredths(),
                remarks: item.remarks.as_deref(),
            },
            reviewer.0,
            now,
        )
        .await?;
        if !found {
            return Err(AppError::not_found(format!(
                "User answers not found for question {}",
                item.question_id
            )));
        }
    }
    let answers: Vec<ScoredAnswer> = repo::answers(uow.tx(), &scope, attempt.attempt_id.0)
        .await?
        .into_iter()
        .filter(|a| questions.contains_key(&a.question_id.0))
        .map(|a| ScoredAnswer {
            score: a.score,
            review: a.review_status,
        })
        .collect();
    let closing = lifecycle::close(Stage::Review, true, &answers, terms.passing_marks);
    let score = closing.score.unwrap_or(Marks::ZERO);
    attempt.score = Some(score.hundredths());
    attempt.review_status = closing.review;
    attempt.result = closing.result;
    if let Some(r) = overall_remarks {
        attempt.overall_remarks = Some(r.to_string());
    }
    uow.stamp(&mut attempt);
    repo::update(uow.tx(), &attempt).await?;
    uow.emit_ordered(
        EventName::AttemptReviewed,
        &crate::domain::event_data::AttemptReviewed {
            attempt_id: attempt.attempt_id.0,
            test_id: attempt.test_id.0,
            user_id: attempt.user_id.0,
            score,
            result: closing.result,
            review_status: closing.review,
            reviewed_by: reviewer.0,
            answers_reviewed: items.len() as u64,
        },
        crate::service::attempts::ordering_key(attempt.attempt_id.0),
    );
    uow.commit().await?;
    Ok(Reviewed {
        attempt_id: attempt.attempt_id.0,
        score: Some(score),
        result: closing.result,
        review_status: closing.review,
    })
}

/// `POST /attempts/{id}/review`: a reviewer (never the learner) scores answers.
pub async fn review_attempt(
    store: &Store,
    clock: &Clock,
    reviewer: &Actor,
    attempt_id: Uuid,
    body: ReviewIn,
) -> AppResult<Reviewed> {
    let mut uow = UnitOfWork::begin(store, clock, reviewer).await?;
    let attempt = repo::lock(uow.tx(), &reviewer.scope, attempt_id)
        .await?
        .ok_or_else(|| AppError::not_found("Attempt not found"))?;
    refuse_own(reviewer, attempt.user_id.0)?;
    let test = test_repo::get(uow.tx(), &reviewer.scope, attempt.test_id.0)
        .await?
        .ok_or_else(|| AppError::not_found("Test not found"))?;
    let remarks = body.overall_remarks.as_deref();
    apply_review(uow, attempt, &test, &body.answers, remarks).await
}

/// `POST /attempts/review`: review (or import results for) a learner's latest submitted
/// attempt on a test, in one transaction.
pub async fn review_by_test(
    store: &Store,
    clock: &Clock,
    reviewer: &Actor,
    body: ImportIn,
) -> AppResult<Reviewed> {
    let scope = reviewer.scope;
    let mut uow = UnitOfWork::begin(store, clock, reviewer).await?;
    let test = crate::service::assessments::live(uow.tx(), &scope, body.test_id).await?;
    refuse_own(reviewer, body.user_id)?;
    let latest = repo::latest(uow.tx(), &scope, body.test_id, body.user_id, true)
        .await?
        .ok_or_else(|| AppError::not_found("No attempt found for review"))?;
    let attempt = repo::lock(uow.tx(), &scope, latest.attempt_id.0)
        .await?
        .ok_or_else(|| AppError::not_found("No attempt found for review"))?;
    let remarks = body.overall_remarks.as_deref();
    apply_review(uow, attempt, &test, &body.answers, remarks).await
}

/// A window of the attempts waiting for review, and how many there are in all.
pub struct Pending {
    pub content: Vec<Value>,
    pub total: i64,
}

/// `GET /attempts/reviews/pending`: submitted attempts with answers waiting for a reviewer,
/// each with those answers.
pub async fn pending(
    store: &Store,
    scope: &Scope,
    limit: Option<i64>,
    offset: Option<i64>,
) -> AppResult<Pending> {
    let (limit, offset) = page_window(limit, offset)?;
    let (attempts, total) = repo::pending_review(store, scope, limit, offset).await?;
    // Two reads for the whole page: every attempt's answers, then their questions.
    let ids: Vec<Uuid> = attempts.iter().map(|a| a.attempt_id.0).collect();
    let mut waiting: HashMap<Uuid, Vec<_>> = HashMap::new();
    for x in repo::answers_of_many(store, scope, &ids).await? {
        if x.review_status == ReviewStatus::Pending {
            waiting.entry(x.attempt_id.0).or_default().push(x);
        }
    }
    let question_ids: Vec<Uuid> = waiting
        .values()
        .flatten()
        .map(|x| x.question_id.0)
        .collect();
    let mut questions: HashMap<(Uuid, Option<i32>), _> =
        question_repo::by_ids(store, scope, &question_ids)
            .await?
            .into_iter()
            .map(|q| ((q.question_id.0, None), q))
            .collect();
    // Each attempt's questions at the revision it holds: one more read when any was edited.
    let pins: HashMap<Uuid, HashMap<Uuid, i32>> = attempts
        .iter()
        .map(|a| {
            let paper = a.paper.as_ref().map(|p| p.0.as_slice()).unwrap_or_default();
            let pins = paper
                .iter()
                .filter_map(|p| p.revision.map(|r| (p.question_id, r)))
                .collect();
            (a.attempt_id.0, pins)
        })
        .collect();
    let stale: Vec<Uuid> = pins
        .values()
        .flatten()
        .filter(|(id, r)| {
            questions
                .get(&(**id, None))
                .is_some_and(|q| q.revision != **r)
        })
        .map(|(id, _)| *id)
        .collect();
    for (q, _) in crate::store::revisions::of(store, scope, &stale).await? {
        questions.insert((q.question_id.0, Some(q.revision)), q);
    }
    let content = attempts
        .iter()
        .map(|a| {
            let answers = waiting
                .get(&a.attempt_id.0)
                .map(Vec::as_slice)
                .unwrap_or_default();
            let pinned = pins.get(&a.attempt_id.0);
            json!({
                "attemptId": a.attempt_id,
                "testId": a.test_id,
                "userId": a.user_id,
                "submittedAt": a.submitted_at,
                "reviewStatus": a.review_status,
                "answers": answers.iter().map(|x| {
                    let id = x.question_id.0;
                    let pin = pinned.and_then(|p| p.get(&id)).copied();
                    let q = questions
                        .get(&(id, pin))
                        .or_else(|| questions.get(&(id, None)));
                    json!({
                        "questionId": x.question_id,
                        "questionText": q.map(|q| q.text.clone()),
                        "type": q.map(|q| q.qtype),
                        "marks": q.map(|q| q.marks),
                        "answer": x.answer,
                    })
                }).collect::<Vec<_>>(),
            })
        })
        .collect();
    Ok(Pending { content, total })
}

fn attempt_json(a: &Attempt) -> Value {
    let mut v = serde_json::to_value(a).unwrap_or_else(|_| json!({}));
    let score = a.score.and_then(|h| Marks::from_hundredths(h).ok());
    let total = a.total_marks.and_then(|h| Marks::from_hundredths(h).ok());
    v["score"] = json!(score);
    v["totalMarks"] = json!(total);
    v["percentage"] = json!(match (score, total) {
        (Some(s), Some(t)) => Some(rules::percentage(s, t)),
        _ => None,
    });
    v
}

/// Who reads an answer sheet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SheetReader {
    /// A token's reviewer, instructor or admin: the reviewer's view of any attempt.
    Reviewer,
    /// Header mode, where every caller holds every role: the reviewer's view of other
    /// learners' attempts (upstream shows them), the learner's own view of their own.
    ReviewerOfOthers,
    /// A learner: their own attempts only.
    Learner,
}

impl SheetReader {
    /// Whether this reader gets the reviewer's view of an attempt (`own`: the caller's).
    fn reviews(self, own: bool) -> bool {
        match self {
            SheetReader::Reviewer => true,
            SheetReader::ReviewerOfOthers => !own,
            SheetReader::Learner => false,
        }
    }
}

/// `GET /attempts/{id}/answersheet`: for the learner who owns the attempt, or a reviewer;
/// only when the test has `answerSheet`; correct answers only with `showCorrectAnswer`.
pub async fn answersheet(
    store: &Store,
    contents: &crate::service::attempts::content::Contents,
    clock: &crate::clock::Clock,
    scope: &Scope,
    caller: Uuid,
    reviewer: SheetReader,
    attempt_id: Uuid,
) -> AppResult<Value> {
    // One read transaction: one pooled connection for the five reads (under load, separate
    // reads each wait for a connection again) and one snapshot.
    let mut tx = store.begin_read().await?;
    let a = repo::get(&mut tx, scope, attempt_id)
        .await?
        .filter(|a| reviewer.reviews(a.user_id.0 == caller) || a.user_id.0 == caller)
        .ok_or_else(|| AppError::not_found("Attempt not found"))?;
    let is_reviewer = reviewer.reviews(a.user_id.0 == caller);
    if a.status != AttemptStatus::Submitted {
        return Err(AppError::validation(
            "Attempt results are only available for submitted attempts",
        ));
    }
    let test = crate::store::watch::current(store.test_watch(), &mut tx, scope, a.test_id.0)
        .await?
        .ok_or_else(|| AppError::not_found("Test not found"))?;
    if !test.answer_sheet && !is_reviewer {
        return Err(AppError::validation(
            "Answer sheet is not enabled for this test",
        ));
    }
    // A learner who may still re-answer this attempt must not see the key, nor the scores
    // that would tell which answers to fix.
    let reveal = is_reviewer || (test.show_correct_answer && !test.allow_resubmission);
    let scores = is_reviewer
        || crate::service::attempts::window(&a, &test).shows_scores(clock.now().0, reveal);
    let paper = a.paper.as_ref().map(|p| p.0.clone()).unwrap_or_default();
    let kept = crate::service::attempts::content::kept(contents, &mut tx, scope, &test)
        .await?
        .filter(|c| c.holds(&paper));
    let read;
    let (questions, options) = match &kept {
        Some(c) => (&c.questions, &c.options),
        None => {
            read = questions_at(&mut tx, scope, &paper).await?;
            (&read.0, &read.1)
        }
    };
    let stored: HashMap<Uuid, _> = repo::answers(&mut tx, scope, attempt_id)
        .await?
        .into_iter()
        .map(|x| (x.question_id.0, x))
        .collect();
    tx.rollback().await?;
    let mut answers = Vec::new();
    for item in &paper {
        let (Some(q), Some(x)) = (
            questions.get(&item.question_id),
            stored.get(&item.question_id),
        ) else {
            continue;
        };
        let opts = options.get(&item.question_id).cloned().unwrap_or_default();
        let given: Answer = serde_json::from_value(x.answer.0.clone()).unwrap_or_default();
        let score = x.score.and_then(|h| Marks::from_hundredths(h).ok());
        let user_answer = match q.qtype {
            QuestionType::Subjective | QuestionType::Essay => json!({"text": given.text}),
            QuestionType::File => json!({"file": given.file}),
            QuestionType::Rating => json!({"rating": given.rating}),
            QuestionType::FillBlank => {
                let blanks = blanks_by_index(given.blanks.as_deref().unwrap_or_default());
                json!({"blanks": blanks.iter().map(|(i, t)| json!({"blankIndex": i, "text": t})).collect::<Vec<_>>()})
            }
            QuestionType::Match => {
                json!({"matches": given.matches.unwrap_or_default().iter().map(|m| json!({
                "questionOptionId": m.option_id,
                "text": opts.iter().find(|o| o.question_option_id.0 == m.option_id).map(|o| o.text.clone()),
                "matchWith": m.match_with,
            })).collect::<Vec<_>>()})
            }
            _ => {
                json!({"selectedOptions": given.selected_option_ids.unwrap_or_default().iter().map(|id| {
                let o = opts.iter().find(|o| o.question_option_id.0 == *id);
                let mut v = json!({"optionId": id, "text": o.map(|o| o.text.clone())});
                if reveal {
                    v["isCorrect"] = json!(o.is_some_and(|o| o.is_correct));
                }
                v
            }).collect::<Vec<_>>()})
            }
        };
        let mut v = json!({
            "questionId": q.question_id,
            "questionText": q.text,
            "type": q.qtype,
            "marks": q.marks,
            "userAnswer": user_answer,
            "score": if scores { json!(score) } else { Value::Null },
            "reviewStatus": x.review_status,
            "remarks": x.remarks,
            "isCorrect": if reveal && q.grading_type != GradingType::Feedback { json!(score == Some(q.marks) && q.marks > Marks::ZERO) } else { Value::Null },
        });
        if reveal {
            v["correctAnswer"] = match q.qtype {
                QuestionType::FillBlank => json!(opts.iter().filter(|o| o.is_correct).map(|o| json!({"blankIndex": o.blank_index, "text": o.text})).collect::<Vec<_>>()),
                QuestionType::Match => json!(opts.iter().filter(|o| o.is_correct && o.match_with.is_some()).map(|o| json!({"questionOptionId": o.question_option_id, "text": o.text, "matchWith": o.match_with})).collect::<Vec<_>>()),
                QuestionType::Subjective | QuestionType::Essay | QuestionType::File | QuestionType::Rating => Value::Null,
                _ => json!({"correctOptionIds": opts.iter().filter(|o| o.is_correct).map(|o| o.question_option_id).collect::<Vec<_>>()}),
            };
        }
        answers.push(v);
    }
    Ok(json!({"attempt": attempt_json(&a), "answers": answers}))
}

/// `POST /attempts/import/resultstatus` and the internal variant: whether the learner's latest
/// attempt has a final result.
pub async fn result_status(
    store: &Store,
    scope: &Scope,
    test_id: Uuid,
    user_id: Uuid,
    internal: bool,
) -> AppResult<Value> {
    let test = test_repo::get(store, scope, test_id).await?;
    let aswaresheet = test.as_ref().is_some_and(|t| t.answer_sheet);
    let latest = repo::of_user(store, scope, test_id, user_id)
        .await?
        .into_iter()
        .last();
    let imported = |a: &Attempt| lifecycle::has_final_result(a.review_status, a.result);
    if internal {
        let grading = test.as_ref().map(|t| t.grading_type);
        let is_imported =
            grading == Some(GradingType::Assessment) && latest.as_ref().is_some_and(imported);
        return Ok(
            json!({"isImported": is_imported, "aswaresheet": aswaresheet, "gradingType": grading}),
        );
    }
    Ok(json!({"isImported": latest.as_ref().is_some_and(imported), "aswaresheet": aswaresheet}))
}
