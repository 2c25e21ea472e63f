//! The `data` of each event: one type per shape, each naming the events that carry it.
//!
//! The services build every event's `data` from these types ([`Payload`]), and the AsyncAPI
//! document (`events::asyncapi`) takes its message schemas from the same types
//! ([`schemas`], [`carriers`]), so what is sent and what is documented cannot drift apart.

use serde::Serialize;
use utoipa::openapi::{RefOr, schema::Schema};
use utoipa::{PartialSchema, ToSchema};
use uuid::Uuid;

use super::enums::{
    AttemptResult, GradingType, QuestionLevel, QuestionStatus, QuestionType, ReviewStatus,
    SelectionMode, SubmissionType, TestStatus, TestType,
};
use super::event::EventName;
use super::marks::Marks;

/// The `data` of the events in [`Payload::EVENTS`].
pub trait Payload: Serialize {
    const EVENTS: &'static [EventName];
}

/// A test's identity and state (`test.created`, `test.updated`).
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TestChanged {
    pub test_id: Uuid,
    pub test_title: String,
    pub test_type: TestType,
    pub status: TestStatus,
}

/// A section of a test created, changed or deleted (`test.updated`).
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SectionChanged {
    pub test_id: Uuid,
    pub section_id: Uuid,
    pub title: String,
}

/// `test.deleted`.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TestDeleted {
    pub test_id: Uuid,
    /// Removed with its rows (`?hard=true`), not archived.
    pub hard: bool,
}

/// `test.published`, `test.unpublished`: the seed's fields.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TestPublication {
    pub test_id: Uuid,
    pub test_title: String,
    pub test_type: TestType,
    #[schema(value_type = f64)]
    pub total_marks: Marks,
    pub question_count: u32,
    /// The published version (see `GET /tests/{id}/versions`).
    pub version: i32,
}

/// A question of the bank (`question.created`, `question.updated`, `question.published`).
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct QuestionChanged {
    pub question_id: Uuid,
    #[serde(rename = "type")]
    pub question_type: QuestionType,
    pub status: QuestionStatus,
    #[schema(value_type = f64)]
    pub marks: Marks,
    pub level: QuestionLevel,
    pub grading_type: GradingType,
}

/// `question.deleted` (archived).
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct QuestionDeleted {
    pub question_id: Uuid,
    #[serde(rename = "type")]
    pub question_type: QuestionType,
}

/// A selection rule (`rule.created`, `rule.updated`, `rule.deleted`).
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RuleChanged {
    pub rule_id: Uuid,
    pub test_id: Option<Uuid>,
    pub name: String,
    pub number_of_questions: i32,
    pub selection_mode: SelectionMode,
}

/// `attempt.started`: the seed's fields.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AttemptStarted {
    pub attempt_id: Uuid,
    pub test_id: Uuid,
    /// 1 for a learner's first attempt at the test.
    pub attempt_number: i32,
}

/// `attempt.submitted`: the seed's fields and the review state.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AttemptSubmitted {
    pub attempt_id: Uuid,
    pub test_id: Uuid,
    /// Null while answers wait for a reviewer.
    #[schema(value_type = Option<f64>)]
    pub score: Option<Marks>,
    /// `P` or `F`; null while answers wait for a reviewer.
    pub result: Option<AttemptResult>,
    /// Seconds, from the server's clock.
    pub time_spent: i32,
    pub review_status: ReviewStatus,
    pub is_objective: bool,
    /// `self` or `auto` (the deadline passed).
    pub submission_type: SubmissionType,
}

/// `attempt.reviewed`.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AttemptReviewed {
    pub attempt_id: Uuid,
    pub test_id: Uuid,
    pub user_id: Uuid,
    #[schema(value_type = f64)]
    pub score: Marks,
    pub result: Option<AttemptResult>,
    pub review_status: ReviewStatus,
    pub reviewed_by: Uuid,
    pub answers_reviewed: u64,
}

/// `answer.submitted`: one per question whose answer a save changed.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AnswerSubmitted {
    pub attempt_id: Uuid,
    pub test_id: Uuid,
    pub question_id: Uuid,
}

/// `system.startup`, `system.shutdown`: an instance of the service (no tenant).
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ServiceLifecycle {
    pub service: String,
    pub version: String,
    pub instance_id: Uuid,
    /// `sqlite` or `postgres`.
    pub database: String,
    /// `system.shutdown` only: how long the instance ran.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uptime_seconds: Option<u64>,
}

/// `accommodation.updated`: the accommodation as it now is, and the attempts in progress
/// whose deadline it moved.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AccommodationChanged {
    pub test_id: Uuid,
    pub user_id: Uuid,
    pub extra_time_minutes: Option<i32>,
    pub time_multiplier: Option<f64>,
    pub extra_attempts: i32,
    pub end_date: Option<chrono::DateTime<chrono::Utc>>,
    pub rescheduled_attempt_ids: Vec<Uuid>,
}

/// `attempt.regraded`: a regrade changed the attempt's score, result or review status; and
/// the learner's grade across their attempts at the test after it.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AttemptRegraded {
    pub attempt_id: Uuid,
    pub test_id: Uuid,
    pub user_id: Uuid,
    pub from_version: i32,
    pub to_version: i32,
    #[schema(value_type = Option<f64>)]
    pub old_score: Option<Marks>,
    #[schema(value_type = Option<f64>)]
    pub new_score: Option<Marks>,
    pub old_result: Option<AttemptResult>,
    pub new_result: Option<AttemptResult>,
    pub review_status: ReviewStatus,
    #[schema(value_type = f64)]
    pub total_marks: Marks,
    pub reason: Option<String>,
    pub regraded_by: Uuid,
    /// The attempt that grades the learner now (by the test's `attemptsGrading`), if any.
    pub graded_attempt_id: Option<Uuid>,
    #[schema(value_type = Option<f64>)]
    pub grade: Option<Marks>,
}

/// `accommodation.deleted`.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AccommodationRemoved {
    pub test_id: Uuid,
    pub user_id: Uuid,
}

macro_rules! payloads {
    ($($ty:ident => [$($event:ident),+ $(,)?]),+ $(,)?) => {
        $(impl Payload for $ty {
            const EVENTS: &'static [EventName] = &[$(EventName::$event),+];
        })+

        /// The schema names of the types carried as `name`'s `data`.
        pub fn carriers(name: EventName) -> Vec<&'static str> {
            let mut out = Vec::new();
            $(if <$ty as Payload>::EVENTS.contains(&name) {
                out.push(stringify!($ty));
            })+
            out
        }

        /// Every payload type's schema, with the schemas it refers to, by name.
        pub fn schemas() -> Vec<(String, RefOr<Schema>)> {
            let mut out = Vec::new();
            $(
                out.push((stringify!($ty).to_string(), <$ty as PartialSchema>::schema()));
                <$ty as ToSchema>::schemas(&mut out);
            )+
            out
        }
    };
}

payloads! {
    TestChanged => [TestCreated, TestUpdated],
    SectionChanged => [TestUpdated],
    TestDeleted => [TestDeleted],
    TestPublication => [TestPublished, TestUnpublished],
    QuestionChanged => [QuestionCreated, QuestionUpdated, QuestionPublished],
    QuestionDeleted => [QuestionDeleted],
    RuleChanged => [RuleCreated, RuleUpdated, RuleDeleted],
    AttemptStarted => [AttemptStarted],
    AttemptSubmitted => [AttemptSubmitted],
    AttemptReviewed => [AttemptReviewed],
    AttemptRegraded => [AttemptRegraded],
    AnswerSubmitted => [AnswerSubmitted],
    AccommodationChanged => [AccommodationUpdated],
    AccommodationRemoved => [AccommodationDeleted],
    ServiceLifecycle => [SystemStartup, SystemShutdown],
}

/// `data` as the JSON an event carries.
pub fn to_data<P: Payload>(name: EventName, data: &P) -> serde_json::Value {
    debug_assert!(
        P::EVENTS.contains(&name),
        "{name} does not carry {}",
        std::any::type_name::<P>()
    );
    // These types hold strings, numbers, ids and enums only: serializing them cannot fail.
    serde_json::to_value(data).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_event_has_a_payload_type() {
        for name in EventName::ALL {
            assert!(!carriers(*name).is_empty(), "{name} has no payload type");
        }
        assert_eq!(
            carriers(EventName::TestUpdated),
            ["TestChanged", "SectionChanged"]
        );
    }

    #[test]
    fn schemas_are_named_and_include_the_enums_they_use() {
        let names: Vec<String> = schemas().into_iter().map(|(n, _)| n).collect();
        for needed in [
            "AttemptSubmitted",
            "ReviewStatus",
            "SubmissionType",
            "TestType",
        ] {
            assert!(names.iter().any(|n| n == needed), "{needed} in {names:?}");
        }
    }
}
