//! Domain events: their names and the body every subscriber receives.
//!
//! The body is the seed document's webhook payload, exactly:
//! `{"name", "context": {"tenantId", "organisationId", "userId"}, "data", "timestamp", "id"}`.

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Value, json};
use uuid::Uuid;

use super::ids::{OrganisationId, TenantId, UserId};

macro_rules! event_names {
    ($($variant:ident => $text:literal),+ $(,)?) => {
        /// Every event this service emits (CONTRACT.md, "Add").
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum EventName { $($variant),+ }

        impl EventName {
            pub const ALL: &'static [EventName] = &[$(EventName::$variant),+];

            /// The wire name, e.g. `attempt.started`.
            pub fn as_str(self) -> &'static str {
                match self { $(EventName::$variant => $text),+ }
            }

            pub fn parse(s: &str) -> Option<EventName> {
                match s { $($text => Some(EventName::$variant),)+ _ => None }
            }
        }
    };
}

event_names! {
    TestCreated => "test.created",
    TestUpdated => "test.updated",
    TestDeleted => "test.deleted",
    TestPublished => "test.published",
    TestUnpublished => "test.unpublished",
    QuestionCreated => "question.created",
    QuestionUpdated => "question.updated",
    QuestionDeleted => "question.deleted",
    QuestionPublished => "question.published",
    RuleCreated => "rule.created",
    RuleUpdated => "rule.updated",
    RuleDeleted => "rule.deleted",
    AttemptStarted => "attempt.started",
    AttemptSubmitted => "attempt.submitted",
    AttemptReviewed => "attempt.reviewed",
    AttemptRegraded => "attempt.regraded",
    AnswerSubmitted => "answer.submitted",
    AccommodationUpdated => "accommodation.updated",
    AccommodationDeleted => "accommodation.deleted",
    SystemStartup => "system.startup",
    SystemShutdown => "system.shutdown",
}

impl std::fmt::Display for EventName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Who and where an event happened. System events have no tenant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct EventContext {
    pub tenant_id: Option<TenantId>,
    pub organisation_id: Option<OrganisationId>,
    pub user_id: Option<UserId>,
}

/// An event about to be appended to the outbox.
#[derive(Debug, Clone, PartialEq)]
pub struct NewEvent {
    /// Stable across retries; also the `webhook-id` header.
    pub id: Uuid,
    pub name: EventName,
    pub context: EventContext,
    /// The per-event fields (`attemptId`, `testId`, ...).
    pub data: Value,
    pub timestamp: DateTime<Utc>,
    /// Events sharing a key are delivered in the order they were appended (e.g. one attempt).
    pub ordering_key: Option<String>,
    /// The W3C `traceparent` of the request that made it, sent on with its deliveries.
    pub traceparent: Option<String>,
}

impl NewEvent {
    /// The caller supplies the id and the time (the domain has no clock).
    pub fn new(
        id: Uuid,
        name: EventName,
        context: EventContext,
        data: Value,
        timestamp: DateTime<Utc>,
    ) -> Self {
        NewEvent {
            id,
            name,
            context,
            data,
            timestamp,
            ordering_key: None,
            traceparent: None,
        }
    }

    pub fn with_ordering_key(mut self, key: impl Into<String>) -> Self {
        self.ordering_key = Some(key.into());
        self
    }

    /// The body sent to every subscriber.
    pub fn payload(&self) -> Value {
        json!({
            "name": self.name.as_str(),
            "context": {
                "tenantId": self.context.tenant_id,
                "organisationId": self.context.organisation_id,
                "userId": self.context.user_id,
            },
            "data": self.data,
            "timestamp": self.timestamp.to_rfc3339_opts(SecondsFormat::Millis, true),
            "id": self.id.hyphenated().to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn names_round_trip() {
        for name in EventName::ALL {
            assert_eq!(EventName::parse(name.as_str()), Some(*name));
        }
        assert_eq!(EventName::ALL.len(), 21);
        assert_eq!(EventName::parse("attempt.unknown"), None);
    }

    #[test]
    fn payload_has_exactly_the_seed_shape() {
        let tenant = TenantId::parse("0f3d1c9e-6a1b-4b2c-9d3e-1f2a3b4c5d6e").unwrap();
        let id = Uuid::parse_str("017f22e2-79b0-7cc3-98c4-dc0c0c07398f").unwrap();
        let event = NewEvent::new(
            id,
            EventName::AttemptStarted,
            EventContext {
                tenant_id: Some(tenant),
                ..Default::default()
            },
            json!({"attemptId": "a", "testId": "t", "attemptNumber": 1}),
            Utc.with_ymd_and_hms(2024, 1, 15, 10, 30, 0).unwrap(),
        );
        assert_eq!(
            event.payload(),
            json!({
                "name": "attempt.started",
                "context": {
                    "tenantId": "0f3d1c9e-6a1b-4b2c-9d3e-1f2a3b4c5d6e",
                    "organisationId": null,
                    "userId": null
                },
                "data": {"attemptId": "a", "testId": "t", "attemptNumber": 1},
                "timestamp": "2024-01-15T10:30:00.000Z",
                "id": "017f22e2-79b0-7cc3-98c4-dc0c0c07398f"
            })
        );
    }
}
