//! Regrading: an answer scored again against a changed key, and whether that changes the
//! attempt. Pure; the service reads the answers and keys and writes what changed.

use crate::domain::enums::ReviewStatus;
use crate::domain::lifecycle::{self, ScoredAnswer};
use crate::domain::scoring::{self, Answer, QuestionKey};

/// A stored answer as a regrade sees it.
#[derive(Debug, Clone)]
pub struct Stored {
    pub answer: Answer,
    /// Hundredths; none while it waits for a reviewer.
    pub score: Option<i64>,
    pub review: ReviewStatus,
    /// A reviewer set its score.
    pub manual: bool,
}

/// The score and review status of `stored` under `key`. A reviewer's score is kept unless
/// `override_manual` (capped at the question's marks, which may have gone down); otherwise the
/// answer is scored as a save scores it, so an answer that needs a reviewer waits for one
/// again.
pub fn rescore(key: &QuestionKey, stored: &Stored, override_manual: bool) -> ScoredAnswer {
    if stored.manual && !override_manual {
        return ScoredAnswer {
            score: stored.score.map(|s| s.min(key.marks.hundredths())),
            review: stored.review,
        };
    }
    if let Err(_refused) = scoring::validate(key, &stored.answer) {
        // An answer the changed key no longer accepts (an option removed, say) scores nothing.
        return ScoredAnswer {
            score: Some(0),
            review: ReviewStatus::Reviewed,
        };
    }
    let (score, review) = lifecycle::answer_review(&scoring::score(key, &stored.answer));
    ScoredAnswer {
        score: score.map(|m| m.hundredths()),
        review,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::enums::{GradingType, QuestionType};
    use crate::domain::marks::Marks;
    use crate::domain::scoring::KeyOption;
    use proptest::prelude::*;
    use uuid::Uuid;

    fn option(id: u128, right: bool) -> KeyOption {
        KeyOption {
            id: Uuid::from_u128(id),
            text: format!("o{id}"),
            is_correct: right,
            marks: Marks::ZERO,
            blank_index: None,
            match_with: None,
            case_sensitive: false,
        }
    }

    fn mcq(marks: u32, right: u128) -> QuestionKey {
        QuestionKey {
            qtype: QuestionType::Mcq,
            grading_type: GradingType::Quiz,
            marks: Marks::whole(marks),
            partial: false,
            multi_select: false,
            case_sensitive: false,
            min_length: None,
            max_length: None,
            word_limit: None,
            options: vec![option(1, right == 1), option(2, right == 2)],
        }
    }

    fn chose(id: u128, score: i64, manual: bool) -> Stored {
        Stored {
            answer: Answer {
                selected_option_ids: Some(vec![Uuid::from_u128(id)]),
                ..Answer::default()
            },
            score: Some(score),
            review: ReviewStatus::Reviewed,
            manual,
        }
    }

    #[test]
    fn a_changed_key_changes_the_score() {
        let was_right = chose(1, 200, false);
        assert_eq!(rescore(&mcq(2, 2), &was_right, false).score, Some(0));
        assert_eq!(rescore(&mcq(3, 1), &was_right, false).score, Some(300));
    }

    #[test]
    fn a_reviewers_score_is_kept_unless_overridden_and_capped_at_the_marks() {
        let reviewed = chose(2, 150, true);
        assert_eq!(rescore(&mcq(2, 1), &reviewed, false).score, Some(150));
        assert_eq!(rescore(&mcq(1, 1), &reviewed, false).score, Some(100));
        assert_eq!(rescore(&mcq(2, 1), &reviewed, true).score, Some(0));
        assert_eq!(rescore(&mcq(2, 2), &reviewed, true).score, Some(200));
    }

    #[test]
    fn an_option_the_key_no_longer_has_scores_nothing() {
        let gone = chose(9, 100, false);
        let r = rescore(&mcq(1, 1), &gone, false);
        assert_eq!((r.score, r.review), (Some(0), ReviewStatus::Reviewed));
    }

    #[test]
    fn an_answer_that_needs_a_reviewer_waits_again_when_overridden() {
        let key = QuestionKey {
            qtype: QuestionType::Essay,
            options: Vec::new(),
            ..mcq(5, 1)
        };
        let essay = Stored {
            answer: Answer {
                text: Some("words".into()),
                ..Answer::default()
            },
            score: Some(400),
            review: ReviewStatus::Reviewed,
            manual: true,
        };
        assert_eq!(rescore(&key, &essay, false).score, Some(400));
        let again = rescore(&key, &essay, true);
        assert_eq!((again.score, again.review), (None, ReviewStatus::Pending));
    }

    proptest! {
        /// Regrading twice gives what regrading once gave (applying twice changes nothing),
        /// and no score exceeds the question's marks.
        #[test]
        fn regrading_is_idempotent_and_bounded(
            marks in 0u32..20, right in 1u128..3, pick in 1u128..4, old in 0i64..3000,
            manual: bool, over: bool,
        ) {
            let key = mcq(marks, right);
            let stored = chose(pick, old, manual);
            let once = rescore(&key, &stored, over);
            let again = Stored { score: once.score, review: once.review, ..stored };
            prop_assert_eq!(rescore(&key, &again, over), once);
            prop_assert!(once.score.unwrap_or(0) <= key.marks.hundredths());
        }
    }
}
