//! The enumerations of the wire contract (upstream §5.11), with their exact strings.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// A stored or sent string that is not one of an enumeration's values.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{value:?} is not a valid {kind}")]
pub struct UnknownValue {
    pub kind: &'static str,
    pub value: String,
}

macro_rules! wire_enum {
    ($(#[$doc:meta])* $name:ident { $($variant:ident => $text:tt),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
        pub enum $name { $(#[serde(rename = $text)] $variant),+ }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }

            pub fn parse(s: &str) -> Option<$name> {
                match s { $($text => Some($name::$variant),)+ _ => None }
            }
        }

        impl TryFrom<String> for $name {
            type Error = UnknownValue;
            fn try_from(s: String) -> Result<Self, UnknownValue> {
                $name::parse(&s).ok_or(UnknownValue { kind: stringify!($name), value: s })
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

wire_enum!(
    /// The kind of a question.
    QuestionType {
        Mcq => "mcq",
        MultipleAnswer => "multiple_answer",
        TrueFalse => "true_false",
        FillBlank => "fill_blank",
        Match => "match",
        Subjective => "subjective",
        Essay => "essay",
        Dropdown => "dropdown",
        Rating => "rating",
        Checkbox => "checkbox",
        File => "file",
    }
);

wire_enum!(
    /// Difficulty of a question.
    QuestionLevel { Easy => "easy", Medium => "medium", Hard => "hard" }
);

wire_enum!(
    /// Lifecycle of a question in the bank.
    QuestionStatus { Draft => "draft", Published => "published", Archived => "archived" }
);

wire_enum!(
    /// How answers of a test (or question) are graded.
    GradingType {
        Quiz => "quiz",
        Assessment => "assessment",
        ReflectionPrompt => "reflection.prompt",
        Feedback => "feedback",
    }
);

wire_enum!(
    /// Lifecycle of a test.
    TestStatus {
        Draft => "draft",
        Published => "published",
        Unpublished => "unpublished",
        Archived => "archived",
    }
);

wire_enum!(
    /// Kind of a test.
    TestType { Plain => "plain", RuleBased => "rule_based", Generated => "generated" }
);

wire_enum!(
    /// Which attempt decides a learner's grade.
    AttemptsGrading {
        FirstAttempt => "first_attempt",
        LastAttempt => "last_attempt",
        Average => "average",
        Highest => "highest",
    }
);

wire_enum!(
    /// Status of a section (the database default is `active`).
    SectionStatus {
        Active => "active",
        Draft => "draft",
        Published => "published",
        Unpublished => "unpublished",
        Archived => "archived",
    }
);

wire_enum!(
    /// Informational kind of a rule.
    RuleType {
        CategoryBased => "category_based",
        DifficultyBased => "difficulty_based",
        TypeBased => "type_based",
        Mixed => "mixed",
    }
);

wire_enum!(
    /// How a rule picks from its pool.
    SelectionStrategy { Random => "random", Sequential => "sequential", Weighted => "weighted" }
);

wire_enum!(
    /// Where a rule's pool comes from: questions linked to the test, or the whole bank.
    SelectionMode { Preselected => "PRESELECTED", Dynamic => "DYNAMIC" }
);

wire_enum!(
    /// Where an attempt is in its life, stored as upstream's letter.
    AttemptStatus { InProgress => "I", Submitted => "S" }
);

wire_enum!(
    /// Review state of an attempt (all four) or of one answer (`P` or `R`), stored as
    /// upstream's letter.
    ReviewStatus {
        Pending => "P",
        UnderReview => "U",
        Reviewed => "R",
        NotApplicable => "N",
    }
);

wire_enum!(
    /// Whether a reviewed attempt reached the passing marks, stored as upstream's letter.
    AttemptResult { Passed => "P", Failed => "F" }
);

wire_enum!(
    /// Who closed an attempt: the learner, or the deadline.
    SubmissionType { Learner => "self", Auto => "auto" }
);

impl GradingType {
    /// Quiz and assessment answers have right and wrong answers; feedback and reflection
    /// prompts do not.
    pub fn has_answer_key(self) -> bool {
        matches!(self, GradingType::Quiz | GradingType::Assessment)
    }
}

impl QuestionType {
    /// Types scored automatically from a key (upstream's "objective" set).
    pub fn is_objective(self) -> bool {
        matches!(
            self,
            QuestionType::Mcq
                | QuestionType::TrueFalse
                | QuestionType::MultipleAnswer
                | QuestionType::FillBlank
                | QuestionType::Match
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_round_trip_and_match_serde() {
        for t in QuestionType::ALL {
            assert_eq!(QuestionType::parse(t.as_str()), Some(*t));
            assert_eq!(serde_json::to_value(t).unwrap(), t.as_str());
        }
        assert_eq!(GradingType::ReflectionPrompt.as_str(), "reflection.prompt");
        assert_eq!(
            serde_json::from_str::<SelectionMode>("\"PRESELECTED\"").unwrap(),
            SelectionMode::Preselected
        );
        assert!(serde_json::from_str::<TestStatus>("\"deleted\"").is_err());
        // The attempt lifecycle keeps upstream's stored letters.
        assert_eq!(AttemptStatus::InProgress.as_str(), "I");
        assert_eq!(ReviewStatus::UnderReview.as_str(), "U");
        assert_eq!(AttemptResult::Passed.as_str(), "P");
        assert_eq!(SubmissionType::Learner.as_str(), "self");
        for r in ReviewStatus::ALL {
            assert_eq!(serde_json::to_value(r).unwrap(), r.as_str());
        }
    }
}
