//! Starting an attempt: the general path (one transaction, every rule checked, a resume or a
//! refusal where they apply) and a learner's first start at a published plain test in one
//! statement on PostgreSQL.

use super::*;

/// Result of `POST /attempts/start/{testId}`.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Started {
    #[schema(value_type = String, format = Uuid)]
    pub attempt_id: Uuid,
    /// The server's time when it answered: with `deadlineAt`, a countdown that does not
    /// depend on the client's clock.
    #[schema(value_type = String, format = DateTime)]
    pub server_time: Ts,
    /// When the attempt ends (time limit or the test's end date), if it does.
    #[schema(value_type = Option<String>, format = DateTime)]
    pub deadline_at: Option<Ts>,
}

impl Started {
    fn of(attempt: &Attempt, now: Ts) -> Started {
        Started {
            attempt_id: attempt.attempt_id.0,
            server_time: now,
            deadline_at: attempt.deadline_at,
        }
    }
}

/// Starts an attempt (or, with `allowResubmission`, returns the learner's existing one).
pub async fn start(
    store: &Store,
    clock: &Clock,
    keys: &keys::KeyCache,
    contents: &content::Contents,
    pools: &pools::RulePools,
    actor: &Actor,
    test_id: Uuid,
) -> AppResult<Started> {
    if let Some(started) = first_start(store, clock, keys, contents, actor, test_id).await? {
        return Ok(started);
    }
    let scope = actor.scope;
    let user = actor.user_uuid();
    let mut uow = UnitOfWork::begin(store, clock, actor).await?;
    let now = uow.now();
    let test = crate::service::assessments::live(uow.tx(), &scope, test_id).await?;
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
    let accommodation =
        crate::service::accommodations::of_learner(uow.tx(), &scope, test_id, user).await?;
    let terms = crate::service::accommodations::terms(&test, accommodation.as_ref());
    if terms.end_date.is_some_and(|e| now.0 > e) {
        return Err(AppError::unprocessable(
            "Test is no longer available for attempts",
        ));
    }
    let attempts = repo::of_user(uow.tx(), &scope, test_id, user).await?;
    let number = match lifecycle::start(
        &earlier(&attempts),
        test.allow_resubmission,
        terms.attempts,
    ) {
        Start::Resume(i) => return Ok(Started::of(&attempts[i], now)),
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
    let (paper, content) = build_paper(
        uow.tx(),
        store.test_watch(),
        &scope,
        &test,
        contents,
        pools,
        &mut rng,
    )
    .await?;
    let attempt = new_attempt(actor, &test, &terms, number, now, seed, paper, &content);
    if !repo::insert(uow.tx(), &attempt).await? {
        // Another start by the same learner won the race for this attempt number.
        if test.allow_resubmission
            && let Some(winner) = repo::of_user(uow.tx(), &scope, test_id, user).await?.pop()
        {
            return Ok(Started::of(&winner, now));
        }
        return Err(AppError::conflict(INCOMPLETE));
    }
    uow.push_event(started_event(actor, &attempt));
    uow.commit().await?;
    keep_keys(keys, &attempt, &test, &content);
    Ok(Started::of(&attempt, now))
}

/// A learner's first attempt at a published plain test, on PostgreSQL in one statement (one
/// round trip, its own commit): the test row from the store's watch (read once when not
/// known), its paper material kept, the paper drawn here, and the attempt and its event
/// written only if the test is still published as read and the learner has no attempt at it
/// (`store::starts`). `None` whenever that does not apply or the statement found otherwise:
/// the general path then decides (a resume, a refusal, a test that changed).
async fn first_start(
    store: &Store,
    clock: &Clock,
    keys: &keys::KeyCache,
    contents: &content::Contents,
    actor: &Actor,
    test_id: Uuid,
) -> AppResult<Option<Started>> {
    if store.postgres().is_none() {
        return Ok(None);
    }
    let scope = actor.scope;
    let Some(test) =
        crate::store::watch::current(store.test_watch(), store, &scope, test_id).await?
    else {
        return Ok(None);
    };
    let now = clock.now();
    let open = test.status == TestStatus::Published
        && test.start_date.is_none_or(|s| now >= s)
        && test.end_date.is_none_or(|e| now <= e);
    let first = lifecycle::start(&[], test.allow_resubmission, test.attempts) == Start::New(1);
    if !open || !first {
        return Ok(None);
    }
    let Some(content) = content::kept(contents, store, &scope, &test).await? else {
        return Ok(None); // rule-based
    };
    let seed = rand::random::<u64>();
    let Ok(paper) = paper::plain_paper(&content, &test, &mut SeededRng::new(seed)) else {
        return Ok(None); // no questions: the general path says so
    };
    // A learner with an accommodation is left to the general path by the statement.
    let terms = crate::service::accommodations::terms(&test, None);
    let attempt = new_attempt(actor, &test, &terms, 1, now, seed, paper, &content);
    let event = started_event(actor, &attempt);
    if crate::store::starts::first(store, &attempt, test.updated_at, &event).await? != Some(true) {
        return Ok(None);
    }
    metrics::counter!("attempt_starts_in_one_statement_total").increment(1);
    keep_keys(keys, &attempt, &test, &content);
    Ok(Some(Started::of(&attempt, now)))
}

/// A new attempt of `actor` at `test` under `terms`, numbered `number`, on `paper`.
#[allow(clippy::too_many_arguments)]
fn new_attempt(
    actor: &Actor,
    test: &Test,
    terms: &Terms,
    number: i32,
    now: Ts,
    seed: u64,
    paper: Vec<PaperItem>,
    content: &Content,
) -> Attempt {
    let (scope, user) = (actor.scope, actor.user_uuid());
    // The attempt is scored out of its own paper (a rule-based paper's marks depend on the
    // questions drawn); conditional questions are extra.
    let total: Marks = paper
        .iter()
        .filter(|i| !i.is_conditional)
        .filter_map(|i| content.questions.get(&i.question_id))
        .map(|q| q.marks)
        .sum();
    Attempt {
        attempt_id: Id(Uuid::new_v4()),
        tenant_id: Id(scope.tenant.as_uuid()),
        organisation_id: Id(scope.organisation.as_uuid()),
        test_id: test.test_id,
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
        deadline_at: rules::deadline(now.0, terms.time_limit_secs, terms.end_date).map(Ts::new),
        paper: Some(Json(paper)),
        total_marks: Some(total.hundredths()),
        overall_remarks: None,
        accommodated_end: terms.moved_end(test.end_date.map(|e| e.0)).map(Ts::new),
        test_version: test.version,
    }
}

/// The `attempt.started` event of `attempt`.
fn started_event(actor: &Actor, attempt: &Attempt) -> crate::domain::event::NewEvent {
    actor.event(
        attempt.started_at,
        EventName::AttemptStarted,
        &crate::domain::event_data::AttemptStarted {
            attempt_id: attempt.attempt_id.0,
            test_id: attempt.test_id.0,
            attempt_number: attempt.attempt,
        },
        Some(ordering_key(attempt.attempt_id.0)),
    )
}

/// Keeps the keys of the whole paper of a new attempt for its saves (see `keys`).
fn keep_keys(keys: &keys::KeyCache, attempt: &Attempt, test: &Test, content: &Content) {
    let known = answers::known_of(
        attempt,
        test,
        attempt.paper.as_ref().map_or(&[][..], |p| p.0.as_slice()),
        &content.questions,
        &content.options,
    );
    keys.put(attempt.attempt_id.0, known);
}

const INCOMPLETE: &str =
    "You have an incomplete attempt. Please complete it before starting a new attempt.";
