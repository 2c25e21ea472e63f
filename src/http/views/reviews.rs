//! Reviews and results: the answer sheet, result statuses, pending reviews, the
//! question-answer report.

#[allow(unused_imports)]
use super::*;

/// `GET /attempts/{id}/answersheet`.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AnswerSheet {
    pub attempt: SheetAttempt,
    /// The answered questions in the paper's order.
    pub answers: Vec<SheetAnswer>,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SheetAttempt {
    #[serde(flatten)]
    pub attempt: Attempt,
    pub score: Option<f64>,
    pub total_marks: Option<f64>,
    pub percentage: Option<f64>,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SheetAnswer {
    #[schema(format = Uuid)]
    pub question_id: String,
    pub question_text: String,
    #[serde(rename = "type")]
    pub qtype: QuestionType,
    pub marks: f64,
    pub user_answer: UserAnswer,
    /// Null while the learner may not see scores yet.
    pub score: Option<f64>,
    pub review_status: ReviewStatus,
    pub remarks: Option<String>,
    /// Null unless correct answers are shown, and for `feedback` grading.
    pub is_correct: Option<bool>,
    /// Only when correct answers are shown: `{correctOptionIds}` for choice questions, a list
    /// of `{blankIndex, text}` for `fill_blank`, of `{questionOptionId, text, matchWith}` for
    /// `match`; null for free-text, file and rating questions.
    pub correct_answer: Option<CorrectAnswer>,
}

/// What the learner answered, by question type: one of its fields.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct UserAnswer {
    /// `subjective`, `essay`.
    pub text: Option<String>,
    /// `file`.
    pub file: Option<String>,
    /// `rating`.
    pub rating: Option<f64>,
    /// `fill_blank`.
    pub blanks: Option<Vec<SheetBlank>>,
    /// `match`.
    pub matches: Option<Vec<SheetMatch>>,
    /// The choice questions.
    pub selected_options: Option<Vec<SelectedOption>>,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SheetBlank {
    pub blank_index: Option<i32>,
    pub text: String,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SheetMatch {
    #[schema(format = Uuid)]
    pub question_option_id: String,
    pub text: Option<String>,
    pub match_with: String,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SelectedOption {
    #[schema(format = Uuid)]
    pub option_id: String,
    pub text: Option<String>,
    /// Only when correct answers are shown.
    pub is_correct: Option<bool>,
}

#[derive(Serialize, ToSchema)]
#[serde(untagged)]
pub enum CorrectAnswer {
    Choice(CorrectOptions),
    Blanks(Vec<SheetBlank>),
    Matches(Vec<SheetMatch>),
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CorrectOptions {
    #[schema(format = Uuid)]
    pub correct_option_ids: Vec<String>,
}

/// `POST /attempts/import/resultstatus`.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ResultStatus {
    /// The learner's latest attempt has a final result.
    pub is_imported: bool,
    /// The test has an answer sheet (upstream's spelling).
    pub aswaresheet: bool,
}

/// `POST /internal/attempts/user/result-status`.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct InternalResultStatus {
    /// An `assessment`-graded test whose learner's latest attempt has a final result.
    pub is_imported: bool,
    pub aswaresheet: bool,
    /// Null when the test does not exist.
    pub grading_type: Option<GradingType>,
}

/// An attempt waiting for review (`GET /attempts/reviews/pending`).
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PendingReview {
    #[schema(format = Uuid)]
    pub attempt_id: String,
    #[schema(format = Uuid)]
    pub test_id: String,
    #[schema(format = Uuid)]
    pub user_id: String,
    #[schema(format = DateTime)]
    pub submitted_at: Option<String>,
    pub review_status: ReviewStatus,
    /// Its answers still to review.
    pub answers: Vec<PendingAnswer>,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PendingAnswer {
    #[schema(format = Uuid)]
    pub question_id: String,
    pub question_text: Option<String>,
    #[serde(rename = "type")]
    pub qtype: Option<QuestionType>,
    pub marks: Option<f64>,
    pub answer: Answer,
}

/// `GET /tests/{id}/question-answer-report`.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AnswerReport {
    #[schema(format = Uuid)]
    pub test_id: String,
    pub test_title: String,
    pub metadata: ReportMetadata,
    /// The learner columns, then one per question (its id as `key`).
    pub columns: Vec<ReportColumn>,
    /// One row per learner: the columns' keys (a question's id holds the answer as text).
    pub data: Vec<ReportRow>,
    pub pagination: ReportPagination,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReportMetadata {
    pub total_questions: i64,
    pub grading_method: AttemptsGrading,
    pub allow_resubmission: bool,
    pub total_users: i64,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReportColumn {
    pub key: String,
    pub header: String,
    pub marks: f64,
    /// `string`, `number`, `datetime`, or the question's type.
    #[serde(rename = "type")]
    pub kind: String,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReportRow {
    /// From the user service, when it is set up.
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub email: Option<String>,
    #[schema(format = Uuid)]
    pub user_id: String,
    pub attempt_number: i32,
    pub score: f64,
    /// Minutes, rounded.
    pub time_spent: i64,
    pub status: AttemptStatus,
    #[schema(format = DateTime)]
    pub start_time: String,
    #[schema(format = DateTime)]
    pub submit_time: Option<String>,
    /// The answers, as text, by question id.
    #[serde(flatten)]
    pub answers: BTreeMap<String, String>,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReportPagination {
    pub total_elements: i64,
    pub total_pages: i64,
    pub current_page: i64,
    pub size: i64,
    pub has_next: bool,
    pub has_previous: bool,
}
