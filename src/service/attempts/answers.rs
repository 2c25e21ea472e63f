//! Saving a learner's answers: one row per question, the last write wins, refused after the
//! deadline.
//!
//! Two paths, with one outcome. The general path locks the attempt, reads its test, checks the
//! window in `domain`, writes each answer and its event and updates the attempt, in one
//! transaction. Once an attempt's first save has read what cannot change while it runs (see
//! [`keys`](super::keys)), its later saves are guarded: the answers are scored here, and the
//! store writes them, their events and the attempt's progress only if the database still holds
//! what the scoring assumed (the learner's attempt, in progress, before its deadline and its
//! test's end date, with the same grading type and time limit). On PostgreSQL that is one
//! statement: one round trip, one commit. If the guard fails, nothing is written and the
//! general path answers, with whatever refusal applies.

use std::borrow::Cow;
use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::json;
use sqlx::types::Json;
use utoipa::ToSchema;
use uuid::Uuid;

use super::keys::{KeyCache, Keys, Known};
use super::{elapsed, key_of, lock_own, ordering_key, paper_of, refused, time_spent, window};
use crate::clock::Clock;
use crate::domain::enums::ReviewStatus;
use crate::domain::event::{EventName, NewEvent};
use crate::domain::lifecycle;
use crate::domain::marks::Marks;
use crate::domain::scoring::{self, Answer};
use crate::error::{AppError, AppResult};
use crate::service::questions::questions_at;
use crate::service::{Actor, UnitOfWork};
use crate::store::assessments::{self as test_repo, Test};
use crate::store::attempts::{self as repo, Attempt, PaperItem};
use crate::store::questions::{Question, QuestionOption};
use crate::store::saves::{self, GuardedSave};
use crate::store::{Store, Ts};

/// One answer in `POST /attempts/{id}/answers`.
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
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
    /// A number the client increases with every save of this attempt (0 or more). An answer
    /// stored by a save with a `clientSeq` at least this one is kept, and its question listed
    /// in `unchanged`: a delayed or retried save cannot replace a newer answer. Without it,
    /// the last save to arrive wins.
    #[serde(default)]
    #[schema(minimum = 0)]
    pub client_seq: Option<i64>,
}

/// Result of `POST /attempts/{id}/answers`: upstream's message, and the clock a client needs
/// for its countdown.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Saved {
    #[schema(value_type = String)]
    pub message: Cow<'static, str>,
    /// The server's time when it answered.
    #[schema(value_type = String, format = DateTime)]
    pub server_time: Ts,
    /// When the attempt ends, if it does (null for an empty save of an attempt this instance
    /// has not seen a save of yet: nothing is read for it).
    #[schema(value_type = Option<String>, format = DateTime)]
    pub deadline_at: Option<Ts>,
    /// The questions of this save whose stored answer was kept, because it was saved with a
    /// `clientSeq` at least this save's (no event for them). Empty without `clientSeq`.
    pub unchanged: Vec<Uuid>,
}

/// What an attempt's saves need, from its test and its paper's questions and options as read
/// in one transaction.
pub(super) fn known_of(
    attempt: &Attempt,
    test: &Test,
    paper: &[PaperItem],
    questions: &HashMap<Uuid, Question>,
    options: &HashMap<Uuid, Vec<QuestionOption>>,
) -> Keys {
    let keys = questions
        .iter()
        .map(|(id, q)| {
            let opts = options.get(id).map(Vec::as_slice).unwrap_or_default();
            (*id, key_of(q, opts, test.grading_type))
        })
        .collect();
    Arc::new(Known {
        test_id: attempt.test_id.0,
        grading: test.grading_type,
        time_duration: test.time_duration,
        test_updated_at: test.updated_at,
        started_at: attempt.started_at,
        deadline_at: attempt.deadline_at,
        keys,
        positions: paper
            .iter()
            .enumerate()
            .map(|(i, p)| (p.question_id, i))
            .collect(),
    })
}

/// One answer, checked and scored, ready to store.
struct Scored {
    question_id: Uuid,
    stored: Json<serde_json::Value>,
    /// Hundredths.
    score: Option<i64>,
    review: ReviewStatus,
}

/// The answers of `body`, checked against the paper and scored with `known`'s keys, and the
/// attempt's position after them (the last answered question's place, from 1).
fn score_all(known: &Known, body: &AnswersIn) -> AppResult<(Vec<Scored>, Option<i32>)> {
    let mut seen = BTreeSet::new();
    for (i, a) in body.answers.iter().enumerate() {
        if !seen.insert(a.question_id) {
            return Err(AppError::validation(format!(
                "answers[{i}]: question {} is answered twice in this request",
                a.question_id
            )));
        }
        if !known.positions.contains_key(&a.question_id) {
            return Err(AppError::validation(format!(
                "answers[{i}]: question {} is not part of this attempt",
                a.question_id
            )));
        }
    }
    let mut scored = Vec::with_capacity(body.answers.len());
    for (i, a) in body.answers.iter().enumerate() {
        let key = known
            .keys
            .get(&a.question_id)
            .ok_or_else(|| AppError::not_found("Question not found"))?;
        scoring::validate(key, &a.answer)
            .map_err(|m| AppError::validation(format!("answers[{i}]: {m}")))?;
        let (score, review) = lifecycle::answer_review(&scoring::score(key, &a.answer));
        scored.push(Scored {
            question_id: a.question_id,
            stored: Json(serde_json::to_value(&a.answer).map_err(anyhow::Error::from)?),
            score: score.map(Marks::hundredths),
            review,
        });
    }
    let last = body
        .answers
        .last()
        .and_then(|a| known.positions.get(&a.question_id))
        .map(|p| *p as i32 + 1);
    Ok((scored, last))
}

/// The `answer.submitted` events of a save.
fn events(
    actor: &Actor,
    now: Ts,
    attempt_id: Uuid,
    test_id: Uuid,
    scored: &[Scored],
) -> Vec<NewEvent> {
    scored
        .iter()
        .map(|s| {
            actor.event(
                now,
                EventName::AnswerSubmitted,
                &crate::domain::event_data::AnswerSubmitted {
                    attempt_id,
                    test_id,
                    question_id: s.question_id,
                },
                Some(ordering_key(attempt_id)),
            )
        })
        .collect()
}

const SAVED: &str = "Answers submitted successfully";

/// Saves answers: one row per question, the last write wins (unless `clientSeq` says the
/// stored answer is newer); refused after the deadline. With an `Idempotency-Key` (`once`),
/// a save already made under it for this attempt is answered again as it was, and nothing is
/// written.
// The stores a save touches (the database, the kept keys, the files) come in one by one.
#[allow(clippy::too_many_arguments)]
pub async fn save_answers(
    store: &Store,
    clock: &Clock,
    cache: &KeyCache,
    files: &crate::service::files::Files,
    actor: &Actor,
    attempt_id: Uuid,
    body: AnswersIn,
    once: Option<&str>,
) -> AppResult<Saved> {
    let now = clock.now();
    if body.client_seq.is_some_and(|n| n < 0) {
        return Err(AppError::validation("clientSeq must be 0 or more"));
    }
    if body.answers.is_empty() {
        return Ok(Saved {
            message: "No answers provided to submit".into(),
            server_time: now,
            deadline_at: cache.get(attempt_id).and_then(|k| k.deadline_at),
            unchanged: Vec::new(),
        });
    }
    crate::service::at_most("answers", &body.answers, crate::service::MAX_BATCH)?;
    // A `file` answer names a file this learner uploaded, in this scope, still there.
    for (i, a) in body.answers.iter().enumerate() {
        if let Some(file) = a.answer.file.as_deref().filter(|f| !f.trim().is_empty()) {
            files
                .check_answer(actor, file)
                .await
                .map_err(|m| AppError::validation(format!("answers[{i}]: {m}")))?;
        }
    }
    if once.is_none()
        && let Some(known) = cache.get(attempt_id)
        && let Some(unchanged) = save_guarded(store, &known, actor, attempt_id, &body, now).await?
    {
        metrics::counter!("answer_saves_total", "path" => "guarded").increment(1);
        return Ok(Saved {
            message: SAVED.into(),
            server_time: now,
            deadline_at: known.deadline_at,
            unchanged,
        });
    }
    let saved = save_locked(store, cache, actor, attempt_id, &body, now, once).await?;
    metrics::counter!("answer_saves_total", "path" => "locked").increment(1);
    Ok(saved)
}

/// What identifies a save's request for its `Idempotency-Key`: its answers and `clientSeq`
/// (`timeSpent` is ignored, so it may differ), as a SHA-256 in hex.
fn request_hash(body: &AnswersIn) -> AppResult<String> {
    use sha2::{Digest, Sha256};
    let bytes = serde_json::to_vec(&json!({"answers": body.answers, "clientSeq": body.client_seq}))
        .map_err(anyhow::Error::from)?;
    Ok(Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect())
}

/// The guarded save: `Ok(None)` when it wrote nothing and the general path must answer (an
/// answer the keys refuse, whose error the general path gives after the checks that come
/// first; an attempt no longer as `known` describes it); else the questions whose answer was
/// kept (see [`AnswersIn::client_seq`]).
async fn save_guarded(
    store: &Store,
    known: &Known,
    actor: &Actor,
    attempt_id: Uuid,
    body: &AnswersIn,
    now: Ts,
) -> AppResult<Option<Vec<Uuid>>> {
    let Ok((scored, position)) = score_all(known, body) else {
        return Ok(None);
    };
    let events = events(actor, now, attempt_id, known.test_id, &scored);
    let saved = saves::save_guarded(
        store,
        GuardedSave {
            scope: actor.scope,
            attempt_id,
            user_id: actor.user_uuid(),
            test_id: known.test_id,
            grading: known.grading,
            time_duration: known.time_duration,
            test_updated_at: known.test_updated_at,
            deadline: known.deadline_at,
            now,
            answers: scored
                .into_iter()
                .map(|s| (s.question_id, s.stored, s.score, s.review))
                .collect(),
            events,
            client_seq: body.client_seq,
            current_position: position,
            time_spent: elapsed(
                known.started_at,
                known.deadline_at,
                now,
                known.time_duration,
            ),
        },
    )
    .await?;
    Ok(saved)
}

/// The general save: lock the attempt, read its test, check, write, in one transaction; with
/// an `Idempotency-Key`, answered from or recorded under it in the same transaction.
async fn save_locked(
    store: &Store,
    cache: &KeyCache,
    actor: &Actor,
    attempt_id: Uuid,
    body: &AnswersIn,
    now: Ts,
    once: Option<&str>,
) -> AppResult<Saved> {
    let scope = actor.scope;
    let mut uow = UnitOfWork::begin_at(store, now, actor).await?;
    let mut attempt = lock_own(uow.tx(), actor, attempt_id).await?;
    // A save made under this key already: its answer again, whatever happened since (the
    // attempt's lock orders it after that save's commit).
    let once = match once {
        Some(key) => {
            let hash = request_hash(body)?;
            if let Some(first) = repo::save_key(uow.tx(), &scope, attempt_id, key).await? {
                if first.request_hash != hash {
                    return Err(AppError::unprocessable(
                        "This Idempotency-Key was used for another save of this attempt",
                    ));
                }
                let saved: Saved =
                    serde_json::from_value(first.response.0).map_err(anyhow::Error::from)?;
                return Ok(saved);
            }
            Some((key, hash))
        }
        None => None,
    };
    let test = test_repo::get(uow.tx(), &scope, attempt.test_id.0)
        .await?
        .ok_or_else(|| AppError::not_found("Test not found"))?;
    window(&attempt, &test)
        .may_answer(now.0)
        .map_err(|r| refused(r, "Cannot submit answer to completed attempt"))?;
    // What the attempt's saves need: kept since its first save, or read from the bank now.
    let known = match cache.get(attempt_id) {
        Some(k) if k.holds_for(&test) && k.test_id == attempt.test_id.0 => k,
        _ => {
            let paper = paper_of(&attempt);
            let (questions, options) = questions_at(uow.tx(), &scope, &paper).await?;
            // Keys as the attempt's version grades them.
            let terms =
                crate::service::assessments::scoring_terms(uow.tx(), &scope, &attempt, &test)
                    .await?;
            let graded = Test {
                grading_type: terms.grading_type,
                ..test.clone()
            };
            let known = known_of(&attempt, &graded, &paper, &questions, &options);
            cache.put(attempt_id, known.clone());
            known
        }
    };
    let (scored, position) = score_all(&known, body)?;
    let mut written = Vec::with_capacity(scored.len());
    let mut unchanged = Vec::new();
    for s in scored {
        let row = repo::AnswerRow {
            attempt_id,
            question_id: s.question_id,
            answer: &s.stored,
            score: s.score,
            review_status: s.review,
            client_seq: body.client_seq,
        };
        if repo::upsert_answer(uow.tx(), &scope, row, actor.user_uuid(), now).await? {
            written.push(s);
        } else {
            unchanged.push(s.question_id);
        }
    }
    for e in events(actor, now, attempt_id, attempt.test_id.0, &written) {
        uow.push_event(e);
    }
    attempt.current_position = position;
    attempt.time_spent = Some(time_spent(&attempt, now, &test));
    uow.stamp(&mut attempt);
    repo::update(uow.tx(), &attempt).await?;
    let saved = Saved {
        message: SAVED.into(),
        server_time: now,
        deadline_at: attempt.deadline_at,
        unchanged,
    };
    if let Some((key, hash)) = once {
        let response = Json(serde_json::to_value(&saved).map_err(anyhow::Error::from)?);
        let record = repo::SaveKey {
            request_hash: hash,
            response,
        };
        repo::record_save_key(uow.tx(), &scope, attempt_id, key, &record, now).await?;
    }
    uow.commit().await?;
    Ok(saved)
}
