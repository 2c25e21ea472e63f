//! The AsyncAPI 3 document of the events, served at `/asyncapi.json` (committed copy:
//! `docs/asyncapi.json`, checked for drift by a test).
//!
//! One message per event name. Its payload is the body every subscriber receives (the seed's
//! envelope, [`crate::domain::event::NewEvent::payload`]) with `name` fixed and `data` the
//! schema of the Rust type the services build that event's data from
//! ([`crate::domain::event_data`]). The channels are where events go: webhooks, the RabbitMQ
//! queue, the NATS JetStream subject and the Redis stream, each with what travels beside the
//! body.

use serde_json::{Map, Value, json};

use crate::domain::event::EventName;
use crate::domain::event_data;
use crate::events::brokers::{DEFAULT_QUEUE, DEFAULT_ROUTING_KEY, DEFAULT_TOPIC};

/// What each event says happened.
fn summary(name: EventName) -> &'static str {
    match name {
        EventName::TestCreated => "A test was created (or cloned).",
        EventName::TestUpdated => {
            "A test changed: its fields, its questions or structure (data: the test), or one of its sections (data: the section)."
        }
        EventName::TestDeleted => "A test was deleted (archived, or removed with `hard`).",
        EventName::TestPublished => "A test was published: learners can start it.",
        EventName::TestUnpublished => "A published test was unpublished.",
        EventName::QuestionCreated => "A question was added to the bank.",
        EventName::QuestionUpdated => "A question or its options changed.",
        EventName::QuestionDeleted => "A question was archived.",
        EventName::QuestionPublished => "A question was published (created or changed to it).",
        EventName::RuleCreated => "A selection rule was added to a rule-based test.",
        EventName::RuleUpdated => "A selection rule changed.",
        EventName::RuleDeleted => "A selection rule was deleted (alone, or with its test).",
        EventName::AttemptStarted => "A learner started an attempt.",
        EventName::AttemptSubmitted => {
            "An attempt was submitted, by its learner or at its deadline; scored unless answers wait for a reviewer."
        }
        EventName::AttemptReviewed => "A reviewer scored an attempt's answers.",
        EventName::AttemptRegraded => {
            "A regrade changed a submitted attempt's score, result or review status (after a key or marks change); with the learner's grade across attempts after it."
        }
        EventName::AnswerSubmitted => {
            "A learner's answer to one question was saved (one event per question a save changed)."
        }
        EventName::AccommodationUpdated => {
            "A learner's accommodation at a test was set or changed (extra time, extra attempts, a later end date); attempts in progress were rescheduled."
        }
        EventName::AccommodationDeleted => "A learner's accommodation at a test was removed.",
        EventName::SystemStartup => "An instance of the service started.",
        EventName::SystemShutdown => "An instance of the service is stopping.",
    }
}

/// `attempt.started` -> `attemptStarted`.
fn message_key(name: EventName) -> String {
    let mut out = String::new();
    let mut upper = false;
    for c in name.as_str().chars() {
        if c == '.' {
            upper = true;
        } else if upper {
            out.extend(c.to_uppercase());
            upper = false;
        } else {
            out.push(c);
        }
    }
    out
}

/// `attempt.started` -> `AttemptStartedEvent`.
fn payload_name(name: EventName) -> String {
    let key = message_key(name);
    let mut chars = key.chars();
    let first = chars.next().map(|c| c.to_uppercase().to_string());
    format!("{}{}Event", first.unwrap_or_default(), chars.as_str())
}

fn reference(path: &str) -> Value {
    json!({ "$ref": path })
}

/// The body of `name`'s messages.
fn payload_schema(name: EventName) -> Value {
    let carriers: Vec<Value> = event_data::carriers(name)
        .into_iter()
        .map(|c| reference(&format!("#/components/schemas/{c}")))
        .collect();
    let data = match carriers.as_slice() {
        [one] => one.clone(),
        _ => json!({ "oneOf": carriers }),
    };
    json!({
        "type": "object",
        "description": summary(name),
        "required": ["name", "context", "data", "timestamp", "id"],
        "properties": {
            "name": { "type": "string", "const": name.as_str() },
            "context": reference("#/components/schemas/EventContext"),
            "data": data,
            "timestamp": {
                "type": "string", "format": "date-time",
                "description": "When the change was committed (UTC, milliseconds)."
            },
            "id": {
                "type": "string", "format": "uuid",
                "description": "The event's id: the same on every try and every channel (`webhook-id`, the message id); de-duplicate on it."
            }
        },
        "additionalProperties": false
    })
}

fn context_schema() -> Value {
    let id =
        |what: &str| json!({ "type": ["string", "null"], "format": "uuid", "description": what });
    json!({
        "type": "object",
        "description": "Who and where: null for the `system.*` events.",
        "required": ["tenantId", "organisationId", "userId"],
        "properties": {
            "tenantId": id("The tenant the change belongs to."),
            "organisationId": id("The organisation within the tenant."),
            "userId": id("Who made the change (the learner, the author, the reviewer).")
        },
        "additionalProperties": false
    })
}

/// The channels events go out on, with what each sends beside the body.
fn channels(messages: &Map<String, Value>) -> Value {
    let refs: Map<String, Value> = messages
        .keys()
        .map(|k| (k.clone(), reference(&format!("#/components/messages/{k}"))))
        .collect();
    let parameters = json!({
        "tenantId": { "description": "The event's `context.tenantId` (`global` for system events)." },
        "organisationId": { "description": "The event's `context.organisationId` (`global` for system events)." },
        "name": { "description": "The event name, e.g. `attempt.started`." }
    });
    json!({
        "webhooks": {
            "address": null,
            "title": "Webhooks",
            "description": "An HTTP POST (or PUT) of the body to each subscription's URL (`POST /webhooks`, `WEBHOOK_*_URL`, the plugins file), signed as Standard Webhooks: headers `webhook-id` (the event id), `webhook-timestamp` (Unix seconds) and `webhook-signature` (`v1,<base64 HMAC-SHA256 of id.timestamp.body>`; two during a secret's rotation), `Content-Type: application/json`, the subscription's own headers, and `traceparent` (W3C) when the change was made by a request. A 2xx acknowledges; anything else, or no answer within the timeout, is retried with backoff, then dead-lettered; 410 disables the subscription.",
            "messages": refs
        },
        "messageQueue": {
            "address": DEFAULT_QUEUE,
            "title": "RabbitMQ queue (`MESSAGE_QUEUE_*`)",
            "description": format!("AMQP 0.9.1, persistent, publisher-confirmed: to the queue `MESSAGE_QUEUE_NAME` (default shown), directly or through `MESSAGE_QUEUE_EXCHANGE` with the routing key `MESSAGE_QUEUE_ROUTING_KEY` (default `{DEFAULT_ROUTING_KEY}`; `{{tenantId}}`, `{{organisationId}}` and `{{name}}` are filled in). `message_id` is the event id, `type` the event name, `content_type` `application/json`; headers `eventName`, `tenantId`, `organisationId`, and `traceparent` when the change was made by a request."),
            "messages": refs
        },
        "eventStream": {
            "address": DEFAULT_TOPIC,
            "title": "NATS JetStream subject (`EVENT_STREAM_*`)",
            "description": "Published to the subject `EVENT_STREAM_TOPIC` (default shown) and acknowledged by the stream. Headers: `Nats-Msg-Id` (the event id: the stream's duplicate window drops a re-send), `Content-Type`, `eventName`, `tenantId`, `organisationId`, and `traceparent` when the change was made by a request.",
            "parameters": { "tenantId": parameters["tenantId"], "name": parameters["name"] },
            "messages": refs
        },
        "redisStream": {
            "address": DEFAULT_TOPIC,
            "title": "Redis stream (an `event-stream` plugin with a `redis://` URL)",
            "description": "`XADD <topic> * id <event id> name <event name> tenantId <..> organisationId <..> payload <the body> [traceparent <..>]`: the body is the `payload` field. Redis keeps no message ids, so a re-send after a crash adds a second entry with the same `id`; de-duplicate on it.",
            "parameters": { "tenantId": parameters["tenantId"], "name": parameters["name"] },
            "messages": refs
        }
    })
}

fn operations(messages: &Map<String, Value>) -> Value {
    let op = |channel: &str, title: &str| {
        let refs: Vec<Value> = messages
            .keys()
            .map(|k| reference(&format!("#/channels/{channel}/messages/{k}")))
            .collect();
        json!({
            "action": "send",
            "title": title,
            "channel": reference(&format!("#/channels/{channel}")),
            "messages": refs
        })
    };
    json!({
        "deliverWebhook": op("webhooks", "Deliver an event to a webhook"),
        "publishToQueue": op("messageQueue", "Publish an event to the RabbitMQ queue"),
        "publishToJetStream": op("eventStream", "Publish an event to the NATS JetStream subject"),
        "appendToRedisStream": op("redisStream", "Append an event to the Redis stream")
    })
}

/// The document.
pub fn document() -> Value {
    let mut schemas = Map::new();
    for (name, schema) in event_data::schemas() {
        schemas.insert(
            name,
            serde_json::to_value(schema).expect("a schema serialises"),
        );
    }
    schemas.insert("EventContext".into(), context_schema());
    let mut messages = Map::new();
    for name in EventName::ALL {
        let payload = payload_name(*name);
        schemas.insert(payload.clone(), payload_schema(*name));
        messages.insert(
            message_key(*name),
            json!({
                "name": name.as_str(),
                "title": name.as_str(),
                "summary": summary(*name),
                "contentType": "application/json",
                "payload": reference(&format!("#/components/schemas/{payload}"))
            }),
        );
    }
    json!({
        "asyncapi": "3.1.0",
        "info": {
            "title": "Shiksha Assessment Service events",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Every change that matters, as events delivered at least once from a transactional outbox: in commit order for the events of one attempt, with a stable id per event for de-duplication. The same body goes to every channel. Generated from the Rust types the service builds the events from.",
            "license": { "name": "MIT" }
        },
        "defaultContentType": "application/json",
        "channels": channels(&messages),
        "operations": operations(&messages),
        "components": { "schemas": schemas, "messages": messages }
    })
}

/// The document as the committed file holds it.
pub fn document_json() -> String {
    let mut text = serde_json::to_string_pretty(&document()).expect("the document serialises");
    text.push('\n');
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_become_keys() {
        assert_eq!(message_key(EventName::AttemptStarted), "attemptStarted");
        assert_eq!(
            payload_name(EventName::SystemShutdown),
            "SystemShutdownEvent"
        );
    }

    #[test]
    fn one_message_per_event_with_its_data_type() {
        let doc = document();
        let messages = doc["components"]["messages"].as_object().unwrap();
        assert_eq!(messages.len(), EventName::ALL.len());
        let updated = &doc["components"]["schemas"]["TestUpdatedEvent"]["properties"];
        assert_eq!(updated["name"]["const"], "test.updated");
        assert_eq!(updated["data"]["oneOf"].as_array().unwrap().len(), 2);
        let started = &doc["components"]["schemas"]["AttemptStartedEvent"]["properties"];
        assert_eq!(
            started["data"]["$ref"],
            "#/components/schemas/AttemptStarted"
        );
        assert!(
            doc["components"]["schemas"]["AttemptStarted"]["properties"]["attemptNumber"]
                .is_object()
        );
    }
}
