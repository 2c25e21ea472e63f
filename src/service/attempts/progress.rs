//! Where a learner stands: resuming an attempt and the status across attempts.

#[allow(unused_imports)]
use super::*;

/// Result of `GET /attempts/{id}/resume/{userId}`.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Resumed {
    #[schema(value_type = crate::http::views::ResumedAttempt)]
    pub attempt: Value,
    #[schema(value_type = Vec<crate::http::views::SavedAnswer>)]
    pub answers: Vec<Value>,
    /// The server's time when it answered.
    #[schema(value_type = String, format = DateTime)]
    pub server_time: Ts,
    /// When the attempt ends, if it does (also in `attempt`).
    #[schema(value_type = Option<String>, format = DateTime)]
    pub deadline_at: Option<Ts>,
}

pub(super) fn own_path_user(actor_user: Uuid, path_user: Uuid) -> AppResult<()> {
    if actor_user != path_user {
        return Err(AppError::forbidden("You can only open your own attempts"));
    }
    Ok(())
}

pub(super) async fn own_attempt<'a>(
    db: impl Into<crate::store::Db<'a>>,
    scope: &Scope,
    user: Uuid,
    attempt_id: Uuid,
) -> AppResult<Attempt> {
    repo::get(db, scope, attempt_id)
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
        server_time: now,
        deadline_at: a.deadline_at,
    })
}

/// `GET /tests/{testId}/users/{userId}/status`.
pub async fn user_status(
    store: &Store,
    scope: &Scope,
    test_id: Uuid,
    user_id: Uuid,
) -> AppResult<Value> {
    // The test row from the store's watch, as the other learner views take it (on PostgreSQL
    // the status then reads the attempts only).
    let test = crate::store::watch::current(store.test_watch(), store, scope, test_id)
        .await?
        .filter(|t| t.status != crate::domain::enums::TestStatus::Archived)
        .ok_or_else(|| AppError::not_found("Test not found"))?;
    let attempts = repo::of_user(store, scope, test_id, user_id).await?;
    let graded = grade_of(&test, &attempts).map(|(i, score)| {
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
            may_start(store, scope, &test, user_id, &attempts).await?,
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

/// The learner's grade across `attempts` at `test` (by its `attemptsGrading`, over the
/// submitted attempts with a final score): the grading attempt's index and the grade.
pub(crate) fn grade_of(test: &Test, attempts: &[Attempt]) -> Option<(usize, Marks)> {
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
    rules::grade(test.attempts_grading, &scored)
}

/// Whether the learner may start a new attempt (a test without resubmission). Their
/// accommodation is read only when the test's own attempts are used up: its extra attempts are
/// all that can change the answer then, and the status (every learner's first call) keeps its
/// one read otherwise.
async fn may_start(
    store: &Store,
    scope: &Scope,
    test: &crate::store::assessments::Test,
    user_id: Uuid,
    attempts: &[crate::store::attempts::Attempt],
) -> AppResult<bool> {
    let earlier = earlier(attempts);
    let start = lifecycle::start(&earlier, false, test.attempts);
    if !matches!(start, Start::Refused(StartRefusal::NoAttemptsLeft { .. })) {
        return Ok(matches!(start, Start::New(_)));
    }
    let Some(accommodation) =
        crate::service::accommodations::of_learner(store, scope, test.test_id.0, user_id).await?
    else {
        return Ok(false);
    };
    let terms = crate::service::accommodations::terms(test, Some(&accommodation));
    Ok(matches!(
        lifecycle::start(&earlier, false, terms.attempts),
        Start::New(_)
    ))
}
