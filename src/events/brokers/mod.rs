//! Message brokers as delivery targets: the seed's `message-queue` (AMQP 0.9.1, RabbitMQ) and
//! `event-stream` (NATS JetStream, Redis Streams) plugin types, configured by the operator
//! (environment and plugins file), never through the per-tenant API.
//!
//! This module is the configuration side: what a broker subscription is, checked once at
//! start-up ([`BrokerSpec`]). A broker's URL may carry credentials, so it never reaches the
//! database: a subscription row holds a display form of its target, and the connection lives
//! in the sinks ([`crate::events::sinks`]), built from these specs.

use serde_json::Value;
use uuid::Uuid;

use super::subscriptions::{Desired, Source};
use crate::config::{Config, ConfigError};
use crate::secret::Secret;
use crate::store::deliveries::SubscriptionKind;

/// The topic of the `EVENT_STREAM_*` stream when none is given.
pub const DEFAULT_TOPIC: &str = "assessment.{tenantId}.{name}";
/// The routing key of the `MESSAGE_QUEUE_*` queue when none is given.
pub const DEFAULT_ROUTING_KEY: &str = "{name}";
/// The queue of `MESSAGE_QUEUE_*` when `MESSAGE_QUEUE_NAME` is not given.
pub const DEFAULT_QUEUE: &str = "shiksha-assessment-events";
/// What a template's `{tenantId}` / `{organisationId}` become for an event without one
/// (`system.startup`, `system.shutdown`).
pub const NO_TENANT: &str = "global";

/// Which broker a URL names: its scheme decides.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BrokerKind {
    /// `amqp://`, `amqps://`: RabbitMQ.
    Amqp,
    /// `nats://`, `tls://`: NATS JetStream.
    Nats,
    /// `redis://`, `rediss://`: Redis Streams.
    Redis,
}

impl BrokerKind {
    pub fn subscription_kind(self) -> SubscriptionKind {
        match self {
            BrokerKind::Amqp => SubscriptionKind::Amqp,
            BrokerKind::Nats => SubscriptionKind::Nats,
            BrokerKind::Redis => SubscriptionKind::Redis,
        }
    }
}

/// A broker's address as configured. It may carry a password, so it is kept as a [`Secret`];
/// [`BrokerUrl::shown`] is the form for logs, `/plugins` and the database.
#[derive(Clone, PartialEq, Eq)]
pub struct BrokerUrl {
    pub kind: BrokerKind,
    url: Secret,
    shown: String,
}

impl std::fmt::Debug for BrokerUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.shown)
    }
}

impl BrokerUrl {
    /// Parses a URL of one of `allowed` kinds (the plugin type decides which).
    pub fn parse(raw: &str, allowed: &[BrokerKind]) -> Result<BrokerUrl, String> {
        let raw = raw.trim();
        let url = url::Url::parse(raw).map_err(|e| format!("url: {e}"))?;
        let kind = match url.scheme() {
            "amqp" | "amqps" => BrokerKind::Amqp,
            "nats" | "tls" => BrokerKind::Nats,
            "redis" | "rediss" => BrokerKind::Redis,
            other => {
                return Err(format!(
                    "url: the scheme {other:?} names no broker of this type (expected {})",
                    schemes(allowed)
                ));
            }
        };
        if !allowed.contains(&kind) {
            return Err(format!(
                "url: a {} URL cannot serve this type (expected {})",
                url.scheme(),
                schemes(allowed)
            ));
        }
        if url.host_str().is_none_or(str::is_empty) {
            return Err("url: no host".into());
        }
        // Each client's own parser, so that what starts is what connects.
        match kind {
            BrokerKind::Amqp => raw
                .parse::<lapin::uri::AMQPUri>()
                .map(drop)
                .map_err(|e| format!("url: {e}"))?,
            BrokerKind::Nats => raw
                .parse::<async_nats::ServerAddr>()
                .map(drop)
                .map_err(|e| format!("url: {e}"))?,
            BrokerKind::Redis => redis::Client::open(raw)
                .map(drop)
                .map_err(|e| format!("url: {e}"))?,
        }
        let mut shown = url;
        if shown.password().is_some() {
            let _ = shown.set_password(Some("********"));
        }
        Ok(BrokerUrl {
            kind,
            url: Secret::new(raw),
            shown: shown.to_string(),
        })
    }

    /// The URL with its credentials, for connecting.
    pub fn expose(&self) -> &str {
        self.url.expose()
    }

    /// The URL without its password.
    pub fn shown(&self) -> &str {
        &self.shown
    }
}

fn schemes(allowed: &[BrokerKind]) -> &'static str {
    match allowed {
        [BrokerKind::Amqp] => "amqp:// or amqps://",
        _ => "nats:// or redis://",
    }
}

/// One piece of a [`Template`].
#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Text(String),
    Name,
    Tenant,
    Organisation,
}

/// A topic or routing key with `{name}`, `{tenantId}` and `{organisationId}` placeholders,
/// filled from each event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    source: String,
    parts: Vec<Part>,
}

impl Template {
    pub fn parse(s: &str) -> Result<Template, String> {
        let mut parts = Vec::new();
        let mut rest = s;
        while let Some(open) = rest.find(['{', '}']) {
            if rest[open..].starts_with('}') {
                return Err(format!("{s:?}: a '}}' without its '{{'"));
            }
            if open > 0 {
                parts.push(Part::Text(rest[..open].to_string()));
            }
            let close = rest[open..]
                .find('}')
                .ok_or_else(|| format!("{s:?}: a '{{' without its '}}'"))?;
            parts.push(match &rest[open + 1..open + close] {
                "name" => Part::Name,
                "tenantId" => Part::Tenant,
                "organisationId" => Part::Organisation,
                other => {
                    return Err(format!(
                        "{s:?}: {{{other}}} is not a placeholder (use {{name}}, {{tenantId}} or {{organisationId}})"
                    ));
                }
            });
            rest = &rest[open + close + 1..];
        }
        if !rest.is_empty() {
            parts.push(Part::Text(rest.to_string()));
        }
        if parts.is_empty() {
            return Err("is empty".into());
        }
        Ok(Template {
            source: s.to_string(),
            parts,
        })
    }

    /// As configured.
    pub fn as_str(&self) -> &str {
        &self.source
    }

    /// The template filled from an event envelope (`name`, `context.tenantId`,
    /// `context.organisationId`).
    pub fn render(&self, event: &Value) -> String {
        fn field(v: &Value) -> &str {
            v.as_str().filter(|s| !s.is_empty()).unwrap_or(NO_TENANT)
        }
        let mut out = String::new();
        for p in &self.parts {
            match p {
                Part::Text(t) => out.push_str(t),
                Part::Name => out.push_str(event["name"].as_str().unwrap_or("unknown")),
                Part::Tenant => out.push_str(field(&event["context"]["tenantId"])),
                Part::Organisation => out.push_str(field(&event["context"]["organisationId"])),
            }
        }
        out
    }

    /// The literal text before the first placeholder (all of it when there is none).
    fn fixed_prefix(&self) -> &str {
        match self.parts.first() {
            Some(Part::Text(t)) => t,
            _ => "",
        }
    }

    fn is_fixed(&self) -> bool {
        self.parts.iter().all(|p| matches!(p, Part::Text(_)))
    }

    /// An AMQP topic-exchange binding key matching every key this template renders: `{name}`
    /// (dotted, `attempt.submitted`) becomes `#`, a tenant or organisation id `*`.
    pub fn binding_key(&self) -> String {
        self.parts
            .iter()
            .map(|p| match p {
                Part::Text(t) => t.as_str(),
                Part::Name => "#",
                Part::Tenant | Part::Organisation => "*",
            })
            .collect()
    }

    /// The JetStream stream a topic publishes into: its name and subjects. A topic with
    /// placeholders is captured by `<fixed tokens>.>`, so it must start with at least one
    /// whole fixed token; a fixed topic is its own subject.
    pub fn jetstream(&self, partition: Option<u32>) -> Result<(String, Vec<String>), String> {
        let with_partition = |s: String| match partition {
            Some(p) => format!("{s}.{p}"),
            None => s,
        };
        let (tokens, subject) = if self.is_fixed() {
            let subject = with_partition(self.source.clone());
            (subject.clone(), subject)
        } else {
            let prefix = self.fixed_prefix();
            let Some(cut) = prefix.rfind('.') else {
                return Err(format!(
                    "{:?}: a NATS topic with placeholders must start with a fixed token \
                     (e.g. assessment.{{tenantId}}.{{name}}), which names its stream",
                    self.source
                ));
            };
            (prefix[..cut].to_string(), format!("{}.>", &prefix[..cut]))
        };
        for token in subject.split('.') {
            if token.is_empty() || token.contains(|c: char| c.is_whitespace()) {
                return Err(format!(
                    "{:?}: not a NATS subject (empty token or whitespace)",
                    self.source
                ));
            }
        }
        if self
            .parts
            .iter()
            .any(|p| matches!(p, Part::Text(t) if t.contains(['*', '>'])))
        {
            return Err(format!(
                "{:?}: '*' and '>' are wildcards, not topic text",
                self.source
            ));
        }
        let name: String = tokens
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                    c.to_ascii_uppercase()
                } else {
                    '_'
                }
            })
            .collect();
        Ok((name, vec![subject]))
    }
}

/// Where a broker subscription publishes.
#[derive(Debug, Clone, PartialEq)]
pub enum Destination {
    /// `message-queue`: a durable queue; with an exchange, a durable topic exchange the queue
    /// is bound to, published to with the routing key.
    Queue {
        queue: String,
        exchange: Option<String>,
        routing_key: Template,
    },
    /// `event-stream`: a JetStream subject or a Redis stream key (`.{partition}` appended when
    /// a partition is given).
    Stream {
        topic: Template,
        partition: Option<u32>,
    },
}

/// A broker subscription, checked.
#[derive(Debug, Clone)]
pub struct BrokerSpec {
    pub source: Source,
    /// Unique within its source (the plugin id, or the environment's name).
    pub key: String,
    pub name: String,
    pub url: BrokerUrl,
    pub destination: Destination,
    pub events: Vec<String>,
    pub timeout_ms: i32,
    pub max_retries: i32,
    pub active: bool,
}

/// What a broker subscription's sends are held to, when not configured.
pub const DEFAULT_TIMEOUT_MS: i32 = 10_000;
/// Retries after a failed publish (a broker that cannot be reached does not use them up).
pub const DEFAULT_RETRIES: i32 = 5;

impl BrokerSpec {
    /// The subscription's stable id.
    pub fn id(&self) -> Uuid {
        self.source.id(&self.key)
    }

    /// Where it publishes, as shown in `/plugins` and stored as the subscription's target.
    pub fn target(&self) -> String {
        match &self.destination {
            Destination::Queue {
                queue,
                exchange,
                routing_key,
            } => match exchange {
                Some(x) => format!(
                    "{} exchange={x} routingKey={} queue={queue}",
                    self.url.shown(),
                    routing_key.as_str()
                ),
                None => format!("{} queue={queue}", self.url.shown()),
            },
            Destination::Stream { topic, partition } => match partition {
                Some(p) => format!(
                    "{} topic={} partition={p}",
                    self.url.shown(),
                    topic.as_str()
                ),
                None => format!("{} topic={}", self.url.shown(), topic.as_str()),
            },
        }
    }

    /// The seed's plugin type.
    pub fn plugin_type(&self) -> &'static str {
        match self.destination {
            Destination::Queue { .. } => "message-queue",
            Destination::Stream { .. } => "event-stream",
        }
    }

    pub fn desired(&self) -> Desired {
        Desired {
            key: self.key.clone(),
            name: self.name.clone(),
            kind: self.url.kind.subscription_kind(),
            target: self.target(),
            method: "PUBLISH".into(),
            headers: Default::default(),
            secret: None,
            events: self.events.clone(),
            timeout_ms: self.timeout_ms,
            max_retries: self.max_retries,
            disabled_reason: (!self.active).then(|| "isActive is false in the plugins file".into()),
        }
    }
}

/// What a `message-queue` or `event-stream` is configured with, before checking.
#[derive(Debug, Default)]
pub struct Raw<'a> {
    pub plugin_type: &'a str,
    pub url: Option<&'a str>,
    pub queue: Option<&'a str>,
    pub exchange: Option<&'a str>,
    pub routing_key: Option<&'a str>,
    pub topic: Option<&'a str>,
    pub partition: Option<u32>,
}

/// Checks a broker's settings: the URL's scheme against the type, the names, the templates.
pub fn destination(raw: &Raw<'_>) -> Result<(BrokerUrl, Destination), String> {
    let url = raw
        .url
        .filter(|u| !u.trim().is_empty())
        .ok_or("url is missing")?;
    match raw.plugin_type {
        "message-queue" => {
            let url = BrokerUrl::parse(url, &[BrokerKind::Amqp])?;
            let queue = raw.queue.unwrap_or(DEFAULT_QUEUE).trim();
            name_ok("queue name", queue)?;
            let exchange = raw.exchange.map(str::trim).filter(|x| !x.is_empty());
            if let Some(x) = exchange {
                name_ok("exchange", x)?;
                if x.starts_with("amq.") {
                    return Err(format!(
                        "exchange {x:?}: names starting with amq. are the broker's"
                    ));
                }
            }
            let routing_key = Template::parse(raw.routing_key.unwrap_or(DEFAULT_ROUTING_KEY))
                .map_err(|e| format!("routingKey {e}"))?;
            Ok((
                url,
                Destination::Queue {
                    queue: queue.to_string(),
                    exchange: exchange.map(str::to_string),
                    routing_key,
                },
            ))
        }
        "event-stream" => {
            let url = BrokerUrl::parse(url, &[BrokerKind::Nats, BrokerKind::Redis])?;
            let topic = Template::parse(raw.topic.unwrap_or(DEFAULT_TOPIC).trim())
                .map_err(|e| format!("topic {e}"))?;
            if url.kind == BrokerKind::Nats {
                topic
                    .jetstream(raw.partition)
                    .map_err(|e| format!("topic {e}"))?;
            }
            Ok((
                url,
                Destination::Stream {
                    topic,
                    partition: raw.partition,
                },
            ))
        }
        other => Err(format!("{other:?} is not a broker type")),
    }
}

fn name_ok(what: &str, s: &str) -> Result<(), String> {
    if s.is_empty() || s.len() > 255 || s.contains(|c: char| c.is_control()) {
        return Err(format!(
            "{what} {s:?}: 1 to 255 characters, no control characters"
        ));
    }
    Ok(())
}

/// The environment's brokers: `MESSAGE_QUEUE_*` and `EVENT_STREAM_*` (none in the `test`
/// profile unless asked for, like the environment's webhooks).
pub fn from_config(c: &Config) -> Result<Vec<BrokerSpec>, ConfigError> {
    if !c.external_plugins_enabled() {
        return Ok(Vec::new());
    }
    let mut out = Vec::new();
    fn given(v: &Option<String>) -> Option<&str> {
        v.as_deref().map(str::trim).filter(|s| !s.is_empty())
    }
    fn secret(v: &Option<Secret>) -> Option<&str> {
        v.as_ref()
            .map(|s| s.expose().trim())
            .filter(|s| !s.is_empty())
    }
    if let Some(url) = secret(&c.message_queue_url) {
        let (url, destination) = destination(&Raw {
            plugin_type: "message-queue",
            url: Some(url),
            queue: given(&c.message_queue_name),
            exchange: given(&c.message_queue_exchange),
            routing_key: given(&c.message_queue_routing_key),
            ..Raw::default()
        })
        .map_err(|e| ConfigError::new("MESSAGE_QUEUE_URL", e))?;
        out.push(BrokerSpec {
            source: Source::Env,
            key: "message-queue".into(),
            name: "message-queue".into(),
            url,
            destination,
            events: super::subscriptions::events_list(
                "MESSAGE_QUEUE_EVENTS",
                c.message_queue_events.as_deref(),
                &["*"],
            )?,
            timeout_ms: DEFAULT_TIMEOUT_MS,
            max_retries: DEFAULT_RETRIES,
            active: true,
        });
    }
    if let Some(url) = secret(&c.event_stream_url) {
        let (url, destination) = destination(&Raw {
            plugin_type: "event-stream",
            url: Some(url),
            topic: given(&c.event_stream_topic),
            ..Raw::default()
        })
        .map_err(|e| ConfigError::new("EVENT_STREAM_URL", e))?;
        out.push(BrokerSpec {
            source: Source::Env,
            key: "event-stream".into(),
            name: "event-stream".into(),
            url,
            destination,
            events: super::subscriptions::events_list(
                "EVENT_STREAM_EVENTS",
                c.event_stream_events.as_deref(),
                &["*"],
            )?,
            timeout_ms: DEFAULT_TIMEOUT_MS,
            max_retries: DEFAULT_RETRIES,
            active: true,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests;
