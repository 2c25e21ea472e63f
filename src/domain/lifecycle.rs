//! The life of an attempt: when a learner may start one, when an attempt takes an answer or a
//! submission, when the deadline closes it, and how closing (or reviewing) sets its score,
//! review status and result. Pure: the states, the test's settings and the time are passed in.

use chrono::{DateTime, Utc};

use super::enums::{AttemptResult, AttemptStatus, ReviewStatus, SubmissionType};
use super::marks::Marks;
use super::scoring::Outcome;

/// Why an attempt refuses an answer or a submission.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Submitted, and the test does not allow changing answers afterwards.
    AlreadySubmitted,
    /// The attempt's own deadline has passed.
    TimeOver,
    /// The test's end date has passed.
    TestClosed,
}

/// What the rules need to know of an attempt and its test.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub status: AttemptStatus,
    /// The test lets a learner change answers after submitting (upstream's resubmission).
    pub allow_resubmission: bool,
    /// The attempt's deadline (start + duration, capped by the test's end date).
    pub deadline: Option<DateTime<Utc>>,
    /// The test's end date.
    pub test_end: Option<DateTime<Utc>>,
}

impl Window {
    fn closed_for_good(&self) -> bool {
        self.status == AttemptStatus::Submitted && !self.allow_resubmission
    }

    /// Whether the learner may see scores at `now`: always when the test shows its key
    /// (`show_key`), and otherwise only once the answers can no longer change (a learner who
    /// may still re-answer would learn from per-question scores which answers to fix).
    pub fn shows_scores(&self, now: DateTime<Utc>, show_key: bool) -> bool {
        show_key || self.may_answer(now).is_err()
    }

    /// Whether the attempt takes an answer at `now`.
    pub fn may_answer(&self, now: DateTime<Utc>) -> Result<(), Refusal> {
        if self.closed_for_good() {
            return Err(Refusal::AlreadySubmitted);
        }
        if self.deadline.is_some_and(|d| now > d) {
            return Err(Refusal::TimeOver);
        }
        if self.test_end.is_some_and(|e| now > e) {
            return Err(Refusal::TestClosed);
        }
        Ok(())
    }

    /// Whether the attempt may be submitted at `now`, and as what: past the deadline it is
    /// closed as the deadline would have closed it (`auto`).
    pub fn may_submit(&self, now: DateTime<Utc>) -> Result<SubmissionType, Refusal> {
        if self.closed_for_good() {
            return Err(Refusal::AlreadySubmitted);
        }
        Ok(if self.deadline.is_some_and(|d| now > d) {
            SubmissionType::Auto
        } else {
            SubmissionType::Learner
        })
    }

    /// Whether the deadline sweeper closes the attempt at `now`.
    pub fn is_overdue(&self, now: DateTime<Utc>) -> bool {
        self.status == AttemptStatus::InProgress && self.deadline.is_some_and(|d| d <= now)
    }
}

/// An earlier attempt of the same learner on the same test, oldest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Earlier {
    pub status: AttemptStatus,
    pub review: ReviewStatus,
}

impl Earlier {
    /// Submitted and waiting for a reviewer.
    pub fn awaits_review(&self) -> bool {
        self.status == AttemptStatus::Submitted
            && matches!(
                self.review,
                ReviewStatus::Pending | ReviewStatus::UnderReview
            )
    }
}

/// Why a learner may not start an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartRefusal {
    /// An attempt is still in progress.
    Incomplete,
    /// The last submitted attempt waits for a reviewer.
    AwaitingReview,
    /// Every allowed attempt is used.
    NoAttemptsLeft { allowed: i32 },
}

/// What a start request does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Start {
    /// Continue the earlier attempt at this index (tests that allow resubmission keep one
    /// attempt open to changes).
    Resume(usize),
    /// A new attempt with this number (1-based).
    New(i32),
    Refused(StartRefusal),
}

/// Decides a start from the learner's earlier attempts (oldest first).
pub fn start(earlier: &[Earlier], allow_resubmission: bool, allowed: i32) -> Start {
    if allow_resubmission {
        if let Some(last) = earlier.len().checked_sub(1) {
            return Start::Resume(last);
        }
    } else {
        if earlier
            .iter()
            .any(|a| a.status == AttemptStatus::InProgress)
        {
            return Start::Refused(StartRefusal::Incomplete);
        }
        if earlier.iter().any(Earlier::awaits_review) {
            return Start::Refused(StartRefusal::AwaitingReview);
        }
    }
    if earlier.len() as i64 >= i64::from(allowed) {
        return Start::Refused(StartRefusal::NoAttemptsLeft { allowed });
    }
    Start::New(i32::try_from(earlier.len()).unwrap_or(i32::MAX - 1) + 1)
}

/// The score an answer is stored with and its review status, from its scoring outcome.
pub fn answer_review(outcome: &Outcome) -> (Option<Marks>, ReviewStatus) {
    match outcome {
        Outcome::Scored(m) => (Some(*m), ReviewStatus::Reviewed),
        Outcome::Unscored => (Some(Marks::ZERO), ReviewStatus::Reviewed),
        Outcome::NeedsReview => (None, ReviewStatus::Pending),
    }
}

/// When the closing rule runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// The learner or the deadline submits.
    Submission,
    /// A reviewer scores answers of a submitted attempt.
    Review,
}

/// An answer as the closing rule sees it: its score in hundredths (none while it waits for a
/// reviewer) and its review status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScoredAnswer {
    pub score: Option<i64>,
    pub review: ReviewStatus,
}

/// An attempt's score, review status and result after closing or review.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Closing {
    pub score: Option<Marks>,
    pub review: ReviewStatus,
    pub result: Option<AttemptResult>,
}

/// The result of a score against the passing marks.
pub fn result_of(score: Marks, passing: Marks) -> AttemptResult {
    if score >= passing {
        AttemptResult::Passed
    } else {
        AttemptResult::Failed
    }
}

/// Closes (or re-closes after a review) an attempt: the score is the sum of its counted
/// answers (never negative); while an answer waits for a reviewer the attempt waits too
/// (`P` after submission, `U` once a review has begun) and has no result; otherwise it is
/// reviewed and passed or failed. A test without an answer key (feedback, reflection) has no
/// score, nothing to review and no result.
pub fn close(stage: Stage, graded: bool, answers: &[ScoredAnswer], passing: Marks) -> Closing {
    if !graded {
        return Closing {
            score: None,
            review: ReviewStatus::NotApplicable,
            result: None,
        };
    }
    let sum: i64 = answers
        .iter()
        .filter_map(|a| a.score)
        .fold(0i64, i64::saturating_add);
    let score = Marks::from_hundredths(sum.max(0)).unwrap_or(Marks::MAX);
    if answers.iter().any(|a| a.review == ReviewStatus::Pending) {
        let review = match stage {
            Stage::Submission => ReviewStatus::Pending,
            Stage::Review => ReviewStatus::UnderReview,
        };
        return Closing {
            score: Some(score),
            review,
            result: None,
        };
    }
    Closing {
        score: Some(score),
        review: ReviewStatus::Reviewed,
        result: Some(result_of(score, passing)),
    }
}

/// A result that an import or a finished review has settled (`R` with `P` or `F`).
pub fn has_final_result(review: ReviewStatus, result: Option<AttemptResult>) -> bool {
    review == ReviewStatus::Reviewed && result.is_some()
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{Duration, TimeZone};
    use proptest::prelude::*;

    fn at(secs: i64) -> DateTime<Utc> {
        Utc.timestamp_opt(1_800_000_000 + secs, 0).unwrap()
    }

    fn status() -> impl Strategy<Value = AttemptStatus> {
        prop::sample::select(AttemptStatus::ALL.to_vec())
    }

    fn review() -> impl Strategy<Value = ReviewStatus> {
        prop::sample::select(ReviewStatus::ALL.to_vec())
    }

    fn window() -> impl Strategy<Value = Window> {
        (
            status(),
            any::<bool>(),
            prop::option::of(-100i64..100),
            prop::option::of(-100i64..100),
        )
            .prop_map(|(status, allow_resubmission, deadline, test_end)| Window {
                status,
                allow_resubmission,
                deadline: deadline.map(at),
                test_end: test_end.map(at),
            })
    }

    #[test]
    fn the_deadline_and_the_end_date_close_answering() {
        let w = Window {
            status: AttemptStatus::InProgress,
            allow_resubmission: false,
            deadline: Some(at(10)),
            test_end: Some(at(20)),
        };
        assert_eq!(w.may_answer(at(10)), Ok(()));
        assert_eq!(w.may_answer(at(11)), Err(Refusal::TimeOver));
        let no_deadline = Window {
            deadline: None,
            ..w
        };
        assert_eq!(no_deadline.may_answer(at(21)), Err(Refusal::TestClosed));
        assert_eq!(w.may_submit(at(5)), Ok(SubmissionType::Learner));
        assert_eq!(w.may_submit(at(11)), Ok(SubmissionType::Auto));
        assert!(!w.is_overdue(at(9)));
        assert!(w.is_overdue(at(10)));
        let submitted = Window {
            status: AttemptStatus::Submitted,
            ..w
        };
        assert_eq!(submitted.may_answer(at(0)), Err(Refusal::AlreadySubmitted));
        assert_eq!(submitted.may_submit(at(0)), Err(Refusal::AlreadySubmitted));
        assert!(!submitted.is_overdue(at(100)));
    }

    #[test]
    fn starts() {
        let e = |status, review| Earlier { status, review };
        let done = e(AttemptStatus::Submitted, ReviewStatus::Reviewed);
        let open = e(AttemptStatus::InProgress, ReviewStatus::Pending);
        let waiting = e(AttemptStatus::Submitted, ReviewStatus::UnderReview);
        assert_eq!(start(&[], false, 1), Start::New(1));
        assert_eq!(start(&[done], false, 2), Start::New(2));
        assert_eq!(
            start(&[done], false, 1),
            Start::Refused(StartRefusal::NoAttemptsLeft { allowed: 1 })
        );
        assert_eq!(
            start(&[done, open], false, 5),
            Start::Refused(StartRefusal::Incomplete)
        );
        assert_eq!(
            start(&[waiting], false, 5),
            Start::Refused(StartRefusal::AwaitingReview)
        );
        assert_eq!(start(&[done, done], true, 1), Start::Resume(1));
        assert_eq!(start(&[], true, 1), Start::New(1));
    }

    #[test]
    fn closing_after_submission_and_after_review() {
        let a = |score, review| ScoredAnswer { score, review };
        let pass = Marks::whole(5);
        let reviewed = [
            a(Some(300), ReviewStatus::Reviewed),
            a(Some(300), ReviewStatus::Reviewed),
        ];
        assert_eq!(
            close(Stage::Submission, true, &reviewed, pass),
            Closing {
                score: Some(Marks::whole(6)),
                review: ReviewStatus::Reviewed,
                result: Some(AttemptResult::Passed),
            }
        );
        let waiting = [
            a(Some(300), ReviewStatus::Reviewed),
            a(None, ReviewStatus::Pending),
        ];
        assert_eq!(
            close(Stage::Submission, true, &waiting, pass).review,
            ReviewStatus::Pending
        );
        assert_eq!(
            close(Stage::Review, true, &waiting, pass).review,
            ReviewStatus::UnderReview
        );
        assert_eq!(
            close(Stage::Submission, false, &reviewed, pass),
            Closing {
                score: None,
                review: ReviewStatus::NotApplicable,
                result: None,
            }
        );
        assert_eq!(
            close(
                Stage::Review,
                true,
                &[a(Some(-500), ReviewStatus::Reviewed)],
                pass
            )
            .score,
            Some(Marks::ZERO)
        );
    }

    proptest! {
        #[test]
        fn an_answer_is_refused_exactly_when_a_rule_says_so(w in window(), now in -120i64..120) {
            let now = at(now);
            let refused = (w.status == AttemptStatus::Submitted && !w.allow_resubmission)
                || w.deadline.is_some_and(|d| now > d)
                || w.test_end.is_some_and(|e| now > e);
            prop_assert_eq!(w.may_answer(now).is_err(), refused);
            // Whatever takes an answer can also be submitted.
            if w.may_answer(now).is_ok() {
                prop_assert_eq!(w.may_submit(now), Ok(SubmissionType::Learner));
            }
            // The sweeper closes only open attempts past their deadline, and those no longer
            // take answers.
            if w.is_overdue(now) {
                prop_assert_eq!(w.status, AttemptStatus::InProgress);
                prop_assert!(w.may_answer(now + Duration::seconds(1)).is_err());
            }
        }

        #[test]
        fn a_start_never_exceeds_the_allowed_attempts(
            earlier in prop::collection::vec((status(), review()), 0..6),
            allow_resubmission in any::<bool>(),
            allowed in 0i32..6,
        ) {
            let earlier: Vec<Earlier> = earlier
                .into_iter()
                .map(|(status, review)| Earlier { status, review })
                .collect();
            match start(&earlier, allow_resubmission, allowed) {
                Start::New(n) => {
                    prop_assert_eq!(n as usize, earlier.len() + 1);
                    prop_assert!(n <= allowed);
                    if !allow_resubmission {
                        prop_assert!(earlier.iter().all(|a| a.status == AttemptStatus::Submitted && !a.awaits_review()));
                    }
                }
                Start::Resume(i) => {
                    prop_assert!(allow_resubmission);
                    prop_assert_eq!(i + 1, earlier.len());
                }
                Start::Refused(_) => {}
            }
        }

        #[test]
        fn closing_is_consistent(
            answers in prop::collection::vec(
                (prop::option::of(-1_000i64..100_000), prop::sample::select(vec![ReviewStatus::Pending, ReviewStatus::Reviewed])),
                0..12,
            ),
            graded in any::<bool>(),
            review_stage in any::<bool>(),
            passing in 0i64..200_000,
        ) {
            let answers: Vec<ScoredAnswer> = answers
                .into_iter()
                .map(|(score, review)| ScoredAnswer { score, review })
                .collect();
            let stage = if review_stage { Stage::Review } else { Stage::Submission };
            let passing = Marks::from_hundredths(passing).unwrap();
            let c = close(stage, graded, &answers, passing);
            if !graded {
                prop_assert_eq!(c, Closing { score: None, review: ReviewStatus::NotApplicable, result: None });
                return Ok(());
            }
            let score = c.score.expect("a graded attempt has a score");
            prop_assert!(score >= Marks::ZERO);
            let sum: i64 = answers.iter().filter_map(|a| a.score).sum();
            prop_assert_eq!(score.hundredths(), sum.max(0));
            // A result exactly when nothing waits for a reviewer, and it is the pass mark's.
            prop_assert_eq!(c.result.is_some(), c.review == ReviewStatus::Reviewed);
            let waiting = answers.iter().any(|a| a.review == ReviewStatus::Pending);
            prop_assert_eq!(c.review == ReviewStatus::Reviewed, !waiting);
            if let Some(r) = c.result {
                prop_assert_eq!(r == AttemptResult::Passed, score >= passing);
                prop_assert!(has_final_result(c.review, c.result));
            }
            if waiting {
                prop_assert_eq!(c.review, if review_stage { ReviewStatus::UnderReview } else { ReviewStatus::Pending });
            }
        }
    }

    #[test]
    fn scores_show_once_answers_can_no_longer_change_or_with_the_key() {
        let now = Utc::now();
        let submitted = |allow_resubmission, deadline| Window {
            status: AttemptStatus::Submitted,
            allow_resubmission,
            deadline,
            test_end: None,
        };
        assert!(submitted(false, None).shows_scores(now, false));
        assert!(
            !submitted(true, None).shows_scores(now, false),
            "may still re-answer"
        );
        assert!(
            submitted(true, None).shows_scores(now, true),
            "the test shows its key"
        );
        let past = Some(now - chrono::Duration::minutes(1));
        assert!(
            submitted(true, past).shows_scores(now, false),
            "the deadline passed"
        );
    }
}
