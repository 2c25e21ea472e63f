//! What learners see: the hierarchies (and the authors' one), the paper, the status, the
//! resume.

#[allow(unused_imports)]
use super::*;

/// `GET /tests/{id}/hierarchy`: a published test as learners see it, with no answer keys.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct LearnerHierarchy {
    #[serde(flatten)]
    pub test: Test,
    pub sections: Vec<LearnerSection>,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct LearnerSection {
    #[serde(flatten)]
    pub section: Section,
    /// The section's top-level questions in order (a conditional question appears under the
    /// option that reveals it).
    pub questions: Vec<LearnerQuestion>,
}

/// The fields of a question's place in a test and of the question, in both hierarchies.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PlacedQuestion {
    #[schema(format = Uuid)]
    pub test_question_id: String,
    #[schema(format = Uuid)]
    pub tenant_id: String,
    #[schema(format = Uuid)]
    pub organisation_id: String,
    #[schema(format = Uuid)]
    pub test_id: String,
    #[schema(format = Uuid)]
    pub question_id: String,
    #[schema(format = Uuid)]
    pub section_id: Option<String>,
    #[schema(format = Uuid)]
    pub rule_id: Option<String>,
    pub is_compulsory: bool,
    pub is_conditional: bool,
    pub text: String,
    pub description: Option<String>,
    pub media: Option<Object>,
    #[serde(rename = "type")]
    pub qtype: QuestionType,
    pub level: QuestionLevel,
    pub marks: f64,
    pub params: Option<Object>,
    pub status: QuestionStatus,
    pub ordering: i32,
    #[schema(format = DateTime)]
    pub created_at: String,
    #[schema(format = DateTime)]
    pub updated_at: String,
}

/// A free-form JSON object, stored and returned as given (`media`, `params`).
#[derive(Serialize, ToSchema)]
#[schema(as = FreeObject)]
pub struct Object(BTreeMap<String, serde_json::Value>);

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct LearnerQuestion {
    #[serde(flatten)]
    pub question: PlacedQuestion,
    /// Empty for `fill_blank` (see `blanks`), `subjective` and `essay`.
    pub options: Vec<LearnerOption>,
    /// `fill_blank` only: the blank indexes to fill.
    pub blanks: Option<Vec<i32>>,
    /// `match` only: the targets, in alphabetical order (never in pairing order).
    pub match_with_options: Option<Vec<MatchTarget>>,
}

/// The fields of an option in both hierarchies.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ShownOption {
    #[schema(format = Uuid)]
    pub question_option_id: String,
    pub text: String,
    pub media: Option<Object>,
    pub ordering: i32,
    pub case_sensitive: bool,
    #[schema(format = DateTime)]
    pub created_at: String,
    /// Whether choosing it reveals questions.
    pub has_child_question: bool,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct LearnerOption {
    #[serde(flatten)]
    pub option: ShownOption,
    /// The questions choosing this option reveals.
    #[schema(no_recursion)]
    pub child_question: Option<Vec<LearnerQuestion>>,
}

/// A target of a `match` question.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MatchTarget {
    pub match_with: Option<String>,
    pub match_with_media: Option<Object>,
    pub ordering: i64,
}

/// `GET /tests/{id}/test-hierarchy`: a test as its authors see it, keys included.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AuthorHierarchy {
    #[serde(flatten)]
    pub test: Test,
    pub sections: Vec<AuthorSection>,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AuthorSection {
    #[serde(flatten)]
    pub section: Section,
    pub questions: Vec<AuthorQuestion>,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AuthorQuestion {
    #[serde(flatten)]
    pub question: PlacedQuestion,
    pub options: Vec<AuthorOption>,
    /// `match` only, in the options' order.
    pub match_with_options: Option<Vec<MatchTarget>>,
    /// The conditional questions under this one.
    #[schema(no_recursion)]
    pub child_question: Vec<AuthorQuestion>,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AuthorOption {
    #[serde(flatten)]
    pub option: ShownOption,
    pub is_correct: bool,
    pub marks: f64,
    pub blank_index: Option<i32>,
    pub match_with: Option<String>,
    pub match_with_media: Option<Object>,
    /// The questions this option reveals (upstream's capitalised name).
    #[serde(rename = "AssociatedQuestion")]
    pub associated_question: Vec<AssociatedQuestion>,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AssociatedQuestion {
    #[schema(format = Uuid)]
    pub question_id: String,
    pub text: String,
    #[serde(rename = "type")]
    pub qtype: QuestionType,
    pub marks: f64,
    pub params: Option<Object>,
    pub status: QuestionStatus,
    pub ordering: Option<i32>,
    #[schema(format = DateTime)]
    pub created_at: String,
    #[schema(format = DateTime)]
    pub updated_at: String,
    pub is_compulsory: Option<bool>,
}

/// A question of an attempt's paper (`GET /attempts/{id}/questions/{userId}`): in the
/// attempt's order, options in the attempt's order, no keys.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PaperQuestion {
    #[schema(format = Uuid)]
    pub question_id: String,
    #[schema(format = Uuid)]
    pub section_id: Option<String>,
    #[schema(format = Uuid)]
    pub rule_id: Option<String>,
    /// 1-based place in the paper.
    pub ordering: i64,
    pub is_compulsory: bool,
    pub is_conditional: bool,
    #[schema(format = Uuid)]
    pub parent_id: Option<String>,
    /// The options that reveal this question, when it is conditional.
    #[schema(format = Uuid)]
    pub revealed_by_option_ids: Vec<String>,
    pub text: String,
    pub description: Option<String>,
    pub media: Option<Object>,
    #[serde(rename = "type")]
    pub qtype: QuestionType,
    pub level: QuestionLevel,
    pub marks: f64,
    pub params: Option<Object>,
    /// Empty for `fill_blank` (see `blanks`), `subjective` and `essay`.
    pub options: Vec<PaperOption>,
    /// `fill_blank` only: the blank indexes to fill.
    pub blanks: Option<Vec<i32>>,
    /// `match` only: the targets in alphabetical order.
    pub match_with_options: Option<Vec<PaperMatchTarget>>,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PaperOption {
    #[schema(format = Uuid)]
    pub question_option_id: String,
    pub text: Option<String>,
    pub media: Option<Object>,
    pub ordering: i64,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PaperMatchTarget {
    pub match_with: String,
    pub ordering: i64,
}

/// `GET /tests/{id}/users/{userId}/status`.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct UserStatus {
    #[schema(format = Uuid)]
    pub test_id: String,
    pub total_attempts_allowed: i32,
    /// The same as `totalAttemptsAllowed` (upstream sends both).
    pub max_attempts: i32,
    pub attempts_made: i64,
    pub can_attempt: bool,
    pub can_reattempt: bool,
    pub can_resume: bool,
    pub attempt_grading: AttemptsGrading,
    /// The attempt the grading method picks, among the reviewed submitted ones.
    pub graded_attempt: Option<GradedAttempt>,
    pub last_attempt: Option<LastAttempt>,
    #[schema(format = Uuid)]
    pub last_attempt_id: Option<String>,
    pub last_attempt_status: Option<AttemptStatus>,
    pub show_correct_answers: bool,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct GradedAttempt {
    #[schema(format = Uuid)]
    pub attempt_id: String,
    pub status: AttemptStatus,
    pub score: f64,
    pub result: Option<AttemptResult>,
    #[schema(format = DateTime)]
    pub submitted_at: Option<String>,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct LastAttempt {
    #[schema(format = Uuid)]
    pub attempt_id: String,
    pub status: AttemptStatus,
    pub resume_allowed: bool,
}

/// The attempt of a resume.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ResumedAttempt {
    #[schema(format = Uuid)]
    pub attempt_id: String,
    #[schema(format = Uuid)]
    pub test_id: String,
    #[schema(format = Uuid)]
    pub user_id: String,
    /// Its number among the learner's attempts at the test.
    pub attempt: i32,
    pub status: AttemptStatus,
    #[schema(format = DateTime)]
    pub started_at: String,
    pub current_position: Option<i32>,
    /// Seconds since the start (in progress) or spent (submitted).
    pub time_spent: i64,
    #[schema(format = DateTime)]
    pub deadline_at: Option<String>,
    /// Seconds left before the deadline, if there is one.
    pub time_remaining: Option<i64>,
    #[schema(format = DateTime)]
    pub updated_at: String,
}

/// An answer saved so far.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SavedAnswer {
    #[schema(format = Uuid)]
    pub question_id: String,
    pub answer: Answer,
    #[schema(format = DateTime)]
    pub updated_at: String,
}
