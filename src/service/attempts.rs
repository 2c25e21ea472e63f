//! Taking a test: start, answer, submit (by the learner or by the deadline sweeper), resume,
//! and the learner's status across attempts. Every use case locks the attempt row, so answers
//! and submission never interleave.

use std::collections::{BTreeSet, HashMap};

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sqlx::types::Json;
use utoipa::ToSchema;
use uuid::Uuid;

use super::{Actor, UnitOfWork};
use crate::clock::Clock;
use crate::domain::attempt::{self as rules, ScoredAttempt, SeededRng};
use crate::domain::enums::{
    AttemptResult, AttemptStatus, GradingType, QuestionStatus, QuestionType, ReviewStatus,
    SectionStatus, SubmissionType, TestStatus, TestType,
};
use crate::domain::event::EventName;
use crate::domain::ids::{Scope, UserId};
use crate::domain::lifecycle::{
    self, Earlier, Refusal, ScoredAnswer, Stage, Start, StartRefusal, Window,
};
use crate::domain::marks::Marks;
use crate::domain::question::QuestionParams;
use crate::domain::scoring::{self, Answer, KeyOption, QuestionKey};
use crate::error::{AppError, AppResult};
use crate::store::assessments::{self as test_repo, Test};
use crate::store::attempts::{self as repo, Attempt, PaperItem};
use crate::store::questions::{self as question_repo, Question, QuestionOption};
use crate::store::rules::{self as rule_repo, RuleFilter};
use crate::store::{Db, Id, Store, Ts, Tx};

fn ordering_key(attempt_id: Uuid) -> String {
    format!("attempt:{attempt_id}")
}

fn marks_of(h: Option<i64>) -> Option<Marks> {
    h.and_then(|v| Marks::from_hundredths(v).ok())
}

/// The key of a question as the test grades it.
pub fn key_of(q: &Question, options: &[QuestionOption], grading: GradingType) -> QuestionKey {
    let params: QuestionParams = q
        .params
        .as_ref()
        .and_then(|p| serde_json::from_value(p.0.clone()).ok())
        .unwrap_or_default();
    QuestionKey {
        qtype: q.qtype,
        grading_type: grading,
        marks: q.marks,
        partial: q.allow_partial_scoring,
        multi_select: params.allows_multiple(),
        case_sensitive: params.case_sensitive.unwrap_or(false),
        min_length: params.min_length,
        max_length: params.max_length,
        word_limit: params.word_limit,
        options: options
            .iter()
            .map(|o| KeyOption {
                id: o.question_option_id.0,
                text: o.text.clone(),
                is_correct: o.is_correct,
                marks: o.marks,
                blank_index: o.blank_index.and_then(|b| u32::try_from(b).ok()),
                match_with: o.match_with.clone(),
                case_sensitive: o.case_sensitive,
            })
            .collect(),
    }
}

type Bank = (HashMap<Uuid, Question>, HashMap<Uuid, Vec<QuestionOption>>);

fn bank(questions: Vec<Question>, all_options: Vec<QuestionOption>) -> Bank {
    let questions = questions
        .into_iter()
        .map(|q| (q.question_id.0, q))
        .collect();
    let mut options: HashMap<Uuid, Vec<QuestionOption>> = HashMap::new();
    for o in all_options {
        options.entry(o.question_id.0).or_default().push(o);
    }
    for list in options.values_mut() {
        list.sort_by_key(|o| (o.ordering, o.created_at, o.question_option_id.0));
    }
    (questions, options)
}

/// Questions and options, read on a read connection or within a transaction (a transaction
/// must never wait for a second pooled connection).
async fn questions_with_options<'a>(
    db: impl Into<Db<'a>>,
    scope: &Scope,
    ids: &[Uuid],
) -> AppResult<Bank> {
    let mut db = db.into();
    let questions = question_repo::by_ids(db.reborrow(), scope, ids).await?;
    let options = question_repo::options_of(db, scope, ids).await?;
    Ok(bank(questions, options))
}

/// Builds the paper of a new attempt from the test (plain) or its rules (rule-based).
async fn build_paper(
    tx: &mut Tx,
    scope: &Scope,
    test: &Test,
    rng: &mut SeededRng,
) -> AppResult<Vec<PaperItem>> {
    let mut items: Vec<PaperItem> = Vec::new();
    if test.test_type == TestType::RuleBased {
        let rules = rule_repo::list(
            &mut *tx,
            scope,
            RuleFilter {
                test_id: Some(test.test_id.0),
                active_only: true,
                ..RuleFilter::default()
            },
            false,
        )
        .await?;
        let mut chosen = BTreeSet::new();
        for rule in &rules {
            let pool: Vec<(Uuid, Marks)> = super::assessments::rule_pool(tx, scope, rule)
                .await?
                .into_iter()
                .filter(|q| !chosen.contains(&q.question_id.0))
                .map(|q| (q.question_id.0, q.marks))
                .collect();
            let n = rule.number_of_questions.max(0) as usize;
            let picked =
                rules::select(&pool, n, rule.selection_strategy, rng).ok_or_else(|| {
                    AppError::unprocessable(format!(
                        "Not enough questions available for rule \"{}\": found {}, required {n}",
                        rule.name,
                        pool.len()
                    ))
                })?;
            for id in picked {
                chosen.insert(id);
                items.push(PaperItem {
                    question_id: id,
                    section_id: rule.section_id.map(|s| s.0),
                    rule_id: Some(rule.rule_id.0),
                    is_compulsory: false,
                    is_conditional: false,
                    option_order: Vec::new(),
                });
            }
        }
        if test.questions_shuffle {
            // Shuffle within each section, sections in the order the rules gave them.
            let mut order: Vec<Option<Uuid>> = Vec::new();
            for i in &items {
                if !order.contains(&i.section_id) {
                    order.push(i.section_id);
                }
            }
            let mut shuffled = Vec::with_capacity(items.len());
            for section in order {
                let mut group: Vec<PaperItem> = items
                    .iter()
                    .filter(|i| i.section_id == section)
                    .cloned()
                    .collect();
                rules::shuffle(&mut group, rng);
                shuffled.extend(group);
            }
            items = shuffled;
        }
    } else {
        let sections: Vec<_> = test_repo::sections_of(&mut *tx, scope, test.test_id.0)
            .await?
            .into_iter()
            .filter(|s| s.status != SectionStatus::Archived)
            .collect();
        let links = test_repo::links_of(&mut *tx, scope, test.test_id.0).await?;
        let ids: Vec<Uuid> = links.iter().map(|l| l.question_id.0).collect();
        let live: BTreeSet<Uuid> = question_repo::by_ids(&mut *tx, scope, &ids)
            .await?
            .into_iter()
            .filter(|q| q.status != QuestionStatus::Archived)
            .map(|q| q.question_id.0)
            .collect();
        for s in &sections {
            let mut section_items: Vec<PaperItem> = links
                .iter()
                .filter(|l| l.section_id == Some(s.section_id) && live.contains(&l.question_id.0))
                .map(|l| PaperItem {
                    question_id: l.question_id.0,
                    section_id: Some(s.section_id.0),
                    rule_id: l.rule_id.map(|r| r.0),
                    is_compulsory: l.is_compulsory,
                    is_conditional: l.is_conditional,
                    option_order: Vec::new(),
                })
                .collect();
            if test.questions_shuffle {
                // Shuffle the top-level questions; conditional ones keep their places after.
                let (mut top, rest): (Vec<_>, Vec<_>) =
                    section_items.into_iter().partition(|i| !i.is_conditional);
                rules::shuffle(&mut top, rng);
                top.extend(rest);
                section_items = top;
            }
            items.extend(section_items);
        }
    }
    if items.iter().all(|i| i.is_conditional) {
        return Err(AppError::unprocessable(
            "This test has no questions to attempt",
        ));
    }
    let ids: Vec<Uuid> = items.iter().map(|i| i.question_id).collect();
    let (_, options) = questions_with_options(tx, scope, &ids).await?;
    for item in &mut items {
        let mut order: Vec<Uuid> = options
            .get(&item.question_id)
            .map(|o| o.iter().map(|o| o.question_option_id.0).collect())
            .unwrap_or_default();
        if test.answers_shuffle {
            rules::shuffle(&mut order, rng);
        }
        item.option_order = order;
    }
    Ok(items)
}

/// Result of `POST /attempts/start/{testId}`.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Started {
    #[schema(value_type = String, format = Uuid)]
    pub attempt_id: Uuid,
}

/// Starts an attempt (or, with `allowResubmission`, returns the learner's existing one).
pub async fn start(
    store: &Store,
    clock: &Clock,
    actor: &Actor,
    test_id: Uuid,
) -> AppResult<Started> {
    let scope = actor.scope;
    let user = actor.user_uuid();
    let mut uow = UnitOfWork::begin(store, clock, actor).await?;
    let now = uow.now();
    let test = test_repo::get(uow.tx(), &scope, test_id)
        .await?
        .filter(|t| t.status != TestStatus::Archived)
        .ok_or_else(|| AppError::not_found("Test not found"))?;
    if test.status != TestStatus::Published {
        return Err(AppError::unprocessable(
            "Test is not available for attempts",
        ));
    }
    if test.start_date.is_some_and(|s| now < s) {
        return Err(AppError::unprocessable(
            "Test is not yet available for attempts",
        ));
    }
    if test.end_date.is_some_and(|e| now > e) {
        return Err(AppError::unprocessable(
            "Test is no longer available for attempts",
        ));
    }
    let attempts = repo::of_user(uow.tx(), &scope, test_id, user).await?;
    let number = match lifecycle::start(&earlier(&attempts), test.allow_resubmission, test.attempts)
    {
        Start::Resume(i) => {
            return Ok(Started {
                attempt_id: attempts[i].attempt_id.0,
            });
        }
        Start::New(number) => number,
        Start::Refused(StartRefusal::Incomplete) => {
            return Err(AppError::conflict(INCOMPLETE));
        }
        Start::Refused(StartRefusal::AwaitingReview) => {
            return Err(AppError::conflict(
                "Your last attempt is currently under review. Please wait for the review to finish before starting a new one.",
            ));
        }
        Start::Refused(StartRefusal::NoAttemptsLeft { allowed }) => {
            return Err(AppError::conflict(format!(
                "Maximum attempts ({allowed}) reached for this test. You cannot start a new attempt."
            )));
        }
    };
    let seed = rand::random::<u64>();
    let mut rng = SeededRng::new(seed);
    let paper = build_paper(uow.tx(), &scope, &test, &mut rng).await?;
    // The attempt is scored out of its own paper (a rule-based paper's marks depend on the
    // questions drawn); conditional questions are extra.
    let total: Marks = {
        let ids: Vec<Uuid> = paper
            .iter()
            .filter(|i| !i.is_conditional)
            .map(|i| i.question_id)
            .collect();
        let (questions, _) = questions_with_options(uow.tx(), &scope, &ids).await?;
        questions.values().map(|q| q.marks).sum()
    };
    let attempt = Attempt {
        attempt_id: Id(Uuid::new_v4()),
        tenant_id: Id(scope.tenant.as_uuid()),
        organisation_id: Id(scope.organisation.as_uuid()),
        test_id: Id(test_id),
        resolved_test_id: None,
        user_id: Id(user),
        attempt: number,
        started_at: now,
        submitted_at: None,
        status: AttemptStatus::InProgress,
        review_status: ReviewStatus::Pending,
        score: None,
        submission_type: SubmissionType::Learner,
        result: None,
        current_position: None,
        time_spent: Some(0),
        updated_by: Some(Id(user)),
        updated_at: now,
        seed: Some(seed as i64),
        deadline_at: rules::deadline(now.0, test.time_duration, test.end_date.map(|e| e.0))
            .map(Ts::new),
        paper: Some(Json(paper)),
        total_marks: Some(total.hundredths()),
        overall_remarks: None,
    };
    if !repo::insert(uow.tx(), &attempt).await? {
        // Another start by the same learner won the race for this attempt number.
        if test.allow_resubmission {
            if let Some(winner) = repo::of_user(uow.tx(), &scope, test_id, user).await?.pop() {
                return Ok(Started {
                    attempt_id: winner.attempt_id.0,
                });
            }
        }
        return Err(AppError::conflict(INCOMPLETE));
    }
    uow.emit_ordered(
        EventName::AttemptStarted,
        json!({"attemptId": attempt.attempt_id, "testId": test_id, "attemptNumber": number}),
        ordering_key(attempt.attempt_id.0),
    );
    uow.commit().await?;
    Ok(Started {
        attempt_id: attempt.attempt_id.0,
    })
}

const INCOMPLETE: &str =
    "You have an incomplete attempt. Please complete it before starting a new attempt.";

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
fn window(a: &Attempt, test: &Test) -> Window {
    Window {
        status: a.status,
        allow_resubmission: test.allow_resubmission,
        deadline: a.deadline_at.map(|d| d.0),
        test_end: test.end_date.map(|e| e.0),
    }
}

/// One answer in `POST /attempts/{id}/answers`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct AnswerIn {
    pub question_id: Uuid,
    pub answer: Answer,
}

/// Body of `POST /attempts/{id}/answers`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct AnswersIn {
    pub answers: Vec<AnswerIn>,
    /// Accepted for compatibility and ignored: time spent comes from the server clock.
    #[serde(default)]
    pub time_spent: Option<f64>,
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

fn elapsed_secs(a: &Attempt, now: Ts, test: &Test) -> i32 {
    // Time stops at the deadline, whenever the submission is recorded.
    let end = a.deadline_at.map_or(now, |d| d.min(now));
    let secs = (end.0 - a.started_at.0).num_seconds().max(0);
    let capped = match test.time_duration.filter(|d| *d > 0) {
        Some(d) => secs.min(i64::from(d)),
        None => secs,
    };
    i32::try_from(capped).unwrap_or(i32::MAX)
}

/// Saves answers: one row per question, the last write wins; refused after the deadline.
pub async fn save_answers(
    store: &Store,
    clock: &Clock,
    actor: &Actor,
    attempt_id: Uuid,
    body: AnswersIn,
) -> AppResult<&'static str> {
    if body.answers.is_empty() {
        return Ok("No answers provided to submit");
    }
    let scope = actor.scope;
    let mut uow = UnitOfWork::begin(store, clock, actor).await?;
    let now = uow.now();
    let mut attempt = lock_own(uow.tx(), actor, attempt_id).await?;
    let test = test_repo::get(uow.tx(), &scope, attempt.test_id.0)
        .await?
        .ok_or_else(|| AppError::not_found("Test not found"))?;
    window(&attempt, &test)
        .may_answer(now.0)
        .map_err(|r| refused(r, "Cannot submit answer to completed attempt"))?;
    let paper = paper_of(&attempt);
    let position: HashMap<Uuid, usize> = paper
        .iter()
        .enumerate()
        .map(|(i, p)| (p.question_id, i))
        .collect();
    let mut seen = BTreeSet::new();
    for (i, a) in body.answers.iter().enumerate() {
        if !seen.insert(a.question_id) {
            return Err(AppError::validation(format!(
                "answers[{i}]: question {} is answered twice in this request",
                a.question_id
            )));
        }
        if !position.contains_key(&a.question_id) {
            return Err(AppError::validation(format!(
                "answers[{i}]: question {} is not part of this attempt",
                a.question_id
            )));
        }
    }
    let ids: Vec<Uuid> = body.answers.iter().map(|a| a.question_id).collect();
    let (questions, options) = questions_with_options(uow.tx(), &scope, &ids).await?;
    let mut last = None;
    for (i, a) in body.answers.iter().enumerate() {
        let q = questions
            .get(&a.question_id)
            .ok_or_else(|| AppError::not_found("Question not found"))?;
        let key = key_of(
            q,
            options
                .get(&a.question_id)
                .map(Vec::as_slice)
                .unwrap_or_default(),
            test.grading_type,
        );
        scoring::validate(&key, &a.answer)
            .map_err(|m| AppError::validation(format!("answers[{i}]: {m}")))?;
        let (score, review) = lifecycle::answer_review(&scoring::score(&key, &a.answer));
        let stored = Json(serde_json::to_value(&a.answer).map_err(anyhow::Error::from)?);
        repo::upsert_answer(
            uow.tx(),
            &scope,
            repo::AnswerRow {
                attempt_id,
                question_id: a.question_id,
                answer: &stored,
                score: score.map(Marks::hundredths),
                review_status: review,
            },
            actor.user_uuid(),
            now,
        )
        .await?;
        uow.emit_ordered(
            EventName::AnswerSubmitted,
            json!({"attemptId": attempt_id, "testId": attempt.test_id, "questionId": a.question_id}),
            ordering_key(attempt_id),
        );
        last = position.get(&a.question_id).copied();
    }
    attempt.current_position = last.map(|p| p as i32 + 1);
    attempt.time_spent = Some(elapsed_secs(&attempt, now, &test));
    uow.stamp(&mut attempt);
    repo::update(uow.tx(), &attempt).await?;
    uow.commit().await?;
    Ok("Answers submitted successfully")
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
    let selected: BTreeSet<Uuid> = answers
        .values()
        .filter_map(|a| a.get("selectedOptionIds"))
        .filter_map(|v| v.as_array())
        .flatten()
        .filter_map(|v| v.as_str().and_then(|s| Uuid::parse_str(s).ok()))
        .collect();
    Ok(links
        .iter()
        .filter(|l| l.is_active && selected.contains(&l.option_id.0))
        .map(|l| l.question_id.0)
        .collect())
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
    let closing = lifecycle::close(
        Stage::Submission,
        test.grading_type.has_answer_key(),
        &counted,
        test.passing_marks,
    );
    attempt.status = AttemptStatus::Submitted;
    attempt.submitted_at = Some(now);
    attempt.submission_type = submission_type;
    attempt.score = closing.score.map(Marks::hundredths);
    attempt.review_status = closing.review;
    attempt.result = closing.result;
    attempt.time_spent = Some(elapsed_secs(&attempt, now, test));
    uow.stamp(&mut attempt);
    repo::update(uow.tx(), &attempt).await?;
    let time_spent = attempt.time_spent.unwrap_or(0);
    uow.emit_ordered(
        EventName::AttemptSubmitted,
        json!({
            "attemptId": attempt.attempt_id,
            "testId": attempt.test_id,
            "score": closing.score,
            "result": closing.result,
            "timeSpent": time_spent,
            "reviewStatus": closing.review,
            "isObjective": test.is_objective,
            "submissionType": submission_type,
        }),
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
    let out = finalize(&mut uow, attempt, &test, kind).await?;
    uow.commit().await?;
    Ok(out)
}

/// One step of the deadline sweeper: submits (as `auto`) every in-progress attempt whose
/// deadline has passed by the clock's time, up to `limit`. Returns how many it submitted.
pub async fn sweep_once(store: &Store, clock: &Clock, limit: i64) -> AppResult<usize> {
    let mut done = 0;
    for candidate in repo::expired(store, clock.now(), limit).await? {
        let scope = Scope {
            tenant: crate::domain::ids::TenantId::from_uuid(candidate.tenant_id.0),
            organisation: crate::domain::ids::OrganisationId::from_uuid(
                candidate.organisation_id.0,
            ),
        };
        let actor = Actor {
            scope,
            user: UserId::from_uuid(candidate.user_id.0),
        };
        let mut uow = UnitOfWork::begin(store, clock, &actor).await?;
        let Some(attempt) = repo::lock(uow.tx(), &scope, candidate.attempt_id.0).await? else {
            continue;
        };
        let Some(test) = test_repo::get(uow.tx(), &scope, attempt.test_id.0).await? else {
            continue;
        };
        // Re-checked under the lock: a learner's own submit may have won.
        if !window(&attempt, &test).is_overdue(uow.now().0) {
            continue;
        }
        finalize(&mut uow, attempt, &test, SubmissionType::Auto).await?;
        uow.commit().await?;
        done += 1;
    }
    Ok(done)
}

/// Result of `GET /attempts/{id}/resume/{userId}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct Resumed {
    #[schema(value_type = Object)]
    pub attempt: Value,
    #[schema(value_type = Vec<Object>)]
    pub answers: Vec<Value>,
}

fn own_path_user(actor_user: Uuid, path_user: Uuid) -> AppResult<()> {
    if actor_user != path_user {
        return Err(AppError::forbidden("You can only open your own attempts"));
    }
    Ok(())
}

async fn own_attempt(
    store: &Store,
    scope: &Scope,
    user: Uuid,
    attempt_id: Uuid,
) -> AppResult<Attempt> {
    repo::get(store, scope, attempt_id)
        .await?
        .filter(|a| a.user_id.0 == user)
        .ok_or_else(|| AppError::not_found("Attempt not found"))
}

/// The attempt with its answers and the time left.
pub async fn resume(
    store: &Store,
    clock: &Clock,
    scope: &Scope,
    user: Uuid,
    path_user: Uuid,
    attempt_id: Uuid,
) -> AppResult<Resumed> {
    own_path_user(user, path_user)?;
    let a = own_attempt(store, scope, user, attempt_id).await?;
    let now = clock.now();
    let remaining = a.deadline_at.map(|d| rules::seconds_remaining(now.0, d.0));
    let answers = repo::answers(store, scope, attempt_id)
        .await?
        .into_iter()
        .map(
            |s| json!({"questionId": s.question_id, "answer": s.answer, "updatedAt": s.updated_at}),
        )
        .collect();
    Ok(Resumed {
        attempt: json!({
            "attemptId": a.attempt_id,
            "testId": a.test_id,
            "userId": a.user_id,
            "attempt": a.attempt,
            "status": a.status,
            "startedAt": a.started_at,
            "currentPosition": a.current_position,
            "timeSpent": if a.status == AttemptStatus::InProgress { (now.0 - a.started_at.0).num_seconds().max(0) } else { i64::from(a.time_spent.unwrap_or(0)) },
            "deadlineAt": a.deadline_at,
            "timeRemaining": remaining,
            "updatedAt": a.updated_at,
        }),
        answers,
    })
}

/// The questions of the attempt's paper, in order, with options in the paper's order and no
/// answer keys.
pub async fn questions(
    store: &Store,
    scope: &Scope,
    user: Uuid,
    path_user: Uuid,
    attempt_id: Uuid,
) -> AppResult<Vec<Value>> {
    own_path_user(user, path_user)?;
    let a = own_attempt(store, scope, user, attempt_id).await?;
    let paper = paper_of(&a);
    let ids: Vec<Uuid> = paper.iter().map(|p| p.question_id).collect();
    let (questions, options) = questions_with_options(store, scope, &ids).await?;
    let links = question_repo::links_to(store, scope, &ids).await?;
    let mut out = Vec::new();
    for (i, item) in paper.iter().enumerate() {
        let Some(q) = questions.get(&item.question_id) else {
            continue;
        };
        let by_id: HashMap<Uuid, &QuestionOption> = options
            .get(&item.question_id)
            .map(|os| os.iter().map(|o| (o.question_option_id.0, o)).collect())
            .unwrap_or_default();
        let shown: Vec<&QuestionOption> = item
            .option_order
            .iter()
            .filter_map(|id| by_id.get(id).copied())
            .collect();
        let mut v = json!({
            "questionId": q.question_id,
            "sectionId": item.section_id,
            "ruleId": item.rule_id,
            "ordering": i + 1,
            "isCompulsory": item.is_compulsory,
            "isConditional": item.is_conditional,
            "parentId": q.parent_id,
            "revealedByOptionIds": links.iter().filter(|l| l.is_active && l.question_id == q.question_id).map(|l| l.option_id).collect::<Vec<_>>(),
            "text": q.text,
            "description": q.description,
            "media": q.media,
            "type": q.qtype,
            "level": q.level,
            "marks": q.marks,
            "params": q.params,
            "options": shown.iter().enumerate().map(|(n, o)| json!({
                "questionOptionId": o.question_option_id,
                "text": if q.qtype == QuestionType::FillBlank { Value::Null } else { json!(o.text) },
                "media": o.media,
                "ordering": n,
            })).collect::<Vec<_>>(),
        });
        if matches!(q.qtype, QuestionType::Subjective | QuestionType::Essay) {
            // Options of free-text questions are reference answers.
            v["options"] = json!([]);
        }
        if q.qtype == QuestionType::FillBlank {
            // The blanks, not the accepted answers.
            let blanks: BTreeSet<i32> = shown.iter().filter_map(|o| o.blank_index).collect();
            v["options"] = json!([]);
            v["blanks"] = json!(blanks.into_iter().collect::<Vec<_>>());
        }
        if q.qtype == QuestionType::Match {
            let mut targets: Vec<&str> = shown
                .iter()
                .filter_map(|o| o.match_with.as_deref())
                .collect();
            targets.sort_by_key(|t| t.to_lowercase());
            v["matchWithOptions"] = json!(
                targets
                    .iter()
                    .enumerate()
                    .map(|(n, t)| json!({"matchWith": t, "ordering": n}))
                    .collect::<Vec<_>>()
            );
        }
        out.push(v);
    }
    Ok(out)
}

/// `GET /tests/{testId}/users/{userId}/status`.
pub async fn user_status(
    store: &Store,
    scope: &Scope,
    test_id: Uuid,
    user_id: Uuid,
) -> AppResult<Value> {
    let test = test_repo::get(store, scope, test_id)
        .await?
        .filter(|t| t.status != TestStatus::Archived)
        .ok_or_else(|| AppError::not_found("Test not found"))?;
    let attempts = repo::of_user(store, scope, test_id, user_id).await?;
    let scored: Vec<ScoredAttempt<usize>> = attempts
        .iter()
        .enumerate()
        .filter(|(_, a)| {
            a.status == AttemptStatus::Submitted && a.review_status == ReviewStatus::Reviewed
        })
        .filter_map(|(i, a)| {
            marks_of(a.score).map(|s| ScoredAttempt {
                id: i,
                number: a.attempt,
                score: s,
            })
        })
        .collect();
    let graded = rules::grade(test.attempts_grading, &scored).map(|(i, score)| {
        let a = &attempts[i];
        let result = if test.attempts_grading == crate::domain::enums::AttemptsGrading::Average {
            Some(lifecycle::result_of(score, test.passing_marks))
        } else {
            a.result
        };
        json!({"attemptId": a.attempt_id, "status": a.status, "score": score, "result": result, "submittedAt": a.submitted_at})
    });
    let made = attempts.len() as i64;
    let latest = attempts.last();
    let (can_attempt, last, can_resume) = if test.allow_resubmission {
        let last = latest;
        (made == 0, last, last.is_some())
    } else {
        let in_progress = attempts
            .iter()
            .rev()
            .find(|a| a.status == AttemptStatus::InProgress);
        (
            matches!(
                lifecycle::start(&earlier(&attempts), false, test.attempts),
                Start::New(_)
            ),
            in_progress,
            in_progress.is_some(),
        )
    };
    Ok(json!({
        "testId": test_id,
        "totalAttemptsAllowed": test.attempts,
        "maxAttempts": test.attempts,
        "attemptsMade": made,
        "canAttempt": can_attempt,
        "canReattempt": can_attempt && made > 0,
        "canResume": can_resume,
        "attemptGrading": test.attempts_grading,
        "gradedAttempt": graded,
        "lastAttempt": last.map(|a| json!({"attemptId": a.attempt_id, "status": a.status, "resumeAllowed": a.status == AttemptStatus::InProgress || test.allow_resubmission})),
        "lastAttemptId": latest.map(|a| a.attempt_id),
        "lastAttemptStatus": latest.map(|a| a.status),
        "showCorrectAnswers": test.show_correct_answer,
    }))
}
