//! Broker configuration: templates, stream naming, URLs and the environment.
use super::*;
use serde_json::json;

#[test]
fn templates_fill_from_the_event() {
    let t = Template::parse(DEFAULT_TOPIC).unwrap();
    let e =
        json!({"name": "attempt.submitted", "context": {"tenantId": "t1", "organisationId": "o1"}});
    assert_eq!(t.render(&e), "assessment.t1.attempt.submitted");
    let system = json!({"name": "system.startup", "context": {}});
    assert_eq!(t.render(&system), "assessment.global.system.startup");
    let k = Template::parse("{organisationId}/{name}").unwrap();
    assert_eq!(k.render(&e), "o1/attempt.submitted");
    assert_eq!(t.binding_key(), "assessment.*.#");
    for bad in ["{nme}", "a.{name", "a}", ""] {
        assert!(Template::parse(bad).is_err(), "{bad}");
    }
}

#[test]
fn a_jetstream_stream_is_named_by_the_fixed_tokens() {
    let t = Template::parse("school.events.{tenantId}.{name}").unwrap();
    assert_eq!(
        t.jetstream(None).unwrap(),
        (
            "SCHOOL_EVENTS".to_string(),
            vec!["school.events.>".to_string()]
        )
    );
    let fixed = Template::parse("all-events").unwrap();
    assert_eq!(
        fixed.jetstream(Some(3)).unwrap(),
        ("ALL-EVENTS_3".to_string(), vec!["all-events.3".to_string()])
    );
    assert!(
        Template::parse("{tenantId}.{name}")
            .unwrap()
            .jetstream(None)
            .is_err()
    );
    assert!(Template::parse("a..b").unwrap().jetstream(None).is_err());
    assert!(Template::parse("a.*").unwrap().jetstream(None).is_err());
}

#[test]
fn urls_are_checked_against_the_type_and_shown_without_password() {
    let u = BrokerUrl::parse("amqp://guest:guest@127.0.0.1:5672/%2f", &[BrokerKind::Amqp]).unwrap();
    assert_eq!(u.kind, BrokerKind::Amqp);
    assert!(!u.shown().contains("guest@"), "{}", u.shown());
    assert!(u.expose().contains("guest:guest"));
    assert!(format!("{u:?}").contains("********"));
    let stream = [BrokerKind::Nats, BrokerKind::Redis];
    assert_eq!(
        BrokerUrl::parse("nats://127.0.0.1:4222", &stream)
            .unwrap()
            .kind,
        BrokerKind::Nats
    );
    assert_eq!(
        BrokerUrl::parse("redis://127.0.0.1:6379/0", &stream)
            .unwrap()
            .kind,
        BrokerKind::Redis
    );
    assert!(BrokerUrl::parse("kafka://x:9092", &stream).is_err());
    assert!(BrokerUrl::parse("amqp://127.0.0.1", &stream).is_err());
    assert!(BrokerUrl::parse("not a url", &[BrokerKind::Amqp]).is_err());
}

#[test]
fn the_environment_gives_a_queue_and_a_stream() {
    let c = Config {
        message_queue_url: Some("amqp://127.0.0.1:5672/%2f".into()),
        message_queue_exchange: Some("school".into()),
        event_stream_url: Some("nats://127.0.0.1:4222".into()),
        event_stream_events: Some("attempt.submitted".into()),
        ..Config::default()
    };
    let specs = from_config(&c).unwrap();
    assert_eq!(specs.len(), 2);
    assert_eq!(specs[0].plugin_type(), "message-queue");
    assert!(
        matches!(&specs[0].destination, Destination::Queue { queue, exchange: Some(x), routing_key }
            if queue == DEFAULT_QUEUE && x == "school" && routing_key.as_str() == "{name}")
    );
    assert_eq!(specs[0].events, vec!["*"]);
    assert_eq!(specs[1].events, vec!["attempt.submitted"]);
    assert_eq!(specs[1].id(), Source::Env.id("event-stream"));
    let bad = Config {
        event_stream_url: Some("kafka://127.0.0.1:9092".into()),
        ..c.clone()
    };
    assert_eq!(from_config(&bad).unwrap_err().var, "EVENT_STREAM_URL");
    let bad = Config {
        message_queue_routing_key: Some("{who}".into()),
        ..c.clone()
    };
    assert_eq!(from_config(&bad).unwrap_err().var, "MESSAGE_QUEUE_URL");
    let test_profile = Config {
        node_env: "test".into(),
        ..c
    };
    assert!(from_config(&test_profile).unwrap().is_empty());
}
