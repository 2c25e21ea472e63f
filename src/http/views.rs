//! The documented shapes of the views the services assemble as JSON (the hierarchies, the
//! paper, the answer sheet, the user status, the report, `/plugins`, ...).
//!
//! These types are never built: the services write the views directly, field by field, with
//! upstream's names. They exist so the OpenAPI document says what each response holds, and
//! generated clients get a model for it. `tests/it/schemas.rs` checks real responses against
//! them both ways (no documented field missing or mistyped, no field sent undocumented).
#![allow(dead_code)]

use std::collections::BTreeMap;

use serde::Serialize;
use utoipa::ToSchema;

use crate::domain::enums::{
    AttemptResult, AttemptStatus, AttemptsGrading, GradingType, QuestionLevel, QuestionStatus,
    QuestionType, ReviewStatus,
};
use crate::domain::scoring::Answer;
use crate::store::assessments::{Section, Test};
use crate::store::attempts::Attempt;
use crate::store::rules::Rule;

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

/// `GET /rules/{id}/preview`.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RulePoolPreview {
    pub rule: Rule,
    pub metadata: RulePoolCounts,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RulePoolCounts {
    pub total_questions_matching: i64,
    pub can_generate_pool: bool,
    pub can_create_test: bool,
    pub pool_size: i32,
    pub number_of_questions: i32,
}

/// One try of a delivery (`GET /webhooks/deliveries/{id}/attempts`).
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DeliveryTry {
    pub attempt_number: i32,
    #[schema(format = DateTime)]
    pub started_at: String,
    pub duration_ms: i64,
    /// The receiver's HTTP status, if it answered.
    pub status_code: Option<i32>,
    pub error: Option<String>,
    /// The start of the receiver's answer, when kept.
    pub response_body: Option<String>,
}

/// `GET /plugins`: the seed's `getActivePlugins()` and `getExternalServiceCount()`.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Plugins {
    /// The active subscriptions the caller can see.
    pub active_plugins: Vec<ActivePlugin>,
    pub external_service_count: i64,
    /// The plugins loaded into the process (built in, and `PLUGINS_DIR`'s).
    pub internal_plugins: Vec<InternalPlugin>,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ActivePlugin {
    #[schema(format = Uuid)]
    pub id: String,
    pub name: String,
    /// `internal` (a plugin) or `external` (a webhook or a broker).
    #[serde(rename = "type")]
    pub kind: String,
    /// Where it was declared (`api`, `env`, `file`, ...).
    pub source: String,
    pub is_active: bool,
    pub external_service: ExternalService,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ExternalService {
    /// The subscription's kind, or for a broker the seed's plugin type.
    #[serde(rename = "type")]
    pub kind: String,
    pub events: Vec<String>,
    /// Brokers only: `rabbitmq`, `nats-jetstream` or `redis-streams`.
    pub broker: Option<String>,
    /// Brokers only: where it publishes.
    pub target: Option<String>,
    /// Brokers only.
    pub connection: Option<BrokerConnection>,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct BrokerConnection {
    /// `connecting`, `connected` or `reconnecting`.
    pub state: String,
    #[schema(format = DateTime)]
    pub since: Option<String>,
    pub last_error: Option<String>,
    #[schema(format = DateTime)]
    pub last_error_at: Option<String>,
    /// The broker's address, credentials hidden.
    pub url: String,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct InternalPlugin {
    pub id: String,
    pub name: String,
    pub version: String,
    pub description: String,
    pub author: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub is_active: bool,
    pub hooks: Vec<PluginHook>,
    pub external_service: Option<PluginService>,
    /// The file it was loaded from, if any.
    pub file: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct PluginHook {
    /// An event name, or `*`.
    pub name: String,
    pub priority: i32,
}

#[derive(Serialize, ToSchema)]
pub struct PluginService {
    #[serde(rename = "type")]
    pub kind: String,
}
