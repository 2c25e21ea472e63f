//! The plugins file (`PLUGINS_FILE`): external plugins in the seed's "Custom Plugin
//! Development" shape, read and checked at start-up, and written to the registry as the
//! `file` source's subscriptions (webhooks here; brokers through [`BrokerSpec`]).

use super::brokers::{self, BrokerSpec};
use super::subscriptions::{Desired, Source, service_name_header, sync_source};
use crate::config::ConfigError;
use crate::domain::event::EventName;
use crate::secret::Secret;
use crate::store::Store;
use crate::store::deliveries as repo;

/// A plugin of the plugins file, in the seed's "Custom Plugin Development" shape.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct FilePlugin {
    pub id: String,
    pub name: String,
    #[serde(default)]
    pub version: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub author: Option<String>,
    #[serde(rename = "type")]
    pub plugin_type: String,
    #[serde(default = "yes")]
    pub is_active: bool,
    pub external_service: FileExternalService,
}

fn yes() -> bool {
    true
}

/// `externalService` of a file plugin (upstream's `ExternalServiceConfig`): a `webhook`, a
/// `message-queue` (`queue`) or an `event-stream` (`stream`). `events`, `retries` and
/// `timeout` may be given here for any type; the webhook's, queue's or stream's own win.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileExternalService {
    #[serde(rename = "type", default = "webhook_type")]
    pub service_type: String,
    pub webhook: Option<FileWebhook>,
    pub queue: Option<FileQueue>,
    pub stream: Option<FileStream>,
    #[serde(default)]
    pub events: Option<Vec<String>>,
    /// Milliseconds.
    #[serde(default)]
    pub timeout: Option<u32>,
    #[serde(default)]
    pub retries: Option<u32>,
}

fn webhook_type() -> String {
    "webhook".into()
}

/// `externalService.queue`: an AMQP 0.9.1 queue (RabbitMQ).
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct FileQueue {
    /// `amqp://` or `amqps://`; may carry credentials.
    pub url: Secret,
    pub name: String,
    #[serde(default)]
    pub exchange: Option<String>,
    #[serde(default)]
    pub routing_key: Option<String>,
    #[serde(default)]
    pub events: Option<Vec<String>>,
}

/// `externalService.stream`: a NATS JetStream subject or a Redis stream.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileStream {
    /// `nats://` or `redis://`; may carry credentials.
    pub url: Secret,
    pub topic: String,
    #[serde(default)]
    pub partition: Option<u32>,
    #[serde(default)]
    pub events: Option<Vec<String>>,
}

/// `externalService.webhook` of a file plugin.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileWebhook {
    pub url: String,
    #[serde(default)]
    pub method: Option<String>,
    /// Values are often credentials (`Authorization`), so they are secrets.
    #[serde(default)]
    pub headers: std::collections::BTreeMap<String, Secret>,
    /// Milliseconds (default 10000).
    #[serde(default)]
    pub timeout: Option<u32>,
    /// Retries after the first try (default 3).
    #[serde(default)]
    pub retries: Option<u32>,
    #[serde(default)]
    pub events: Option<Vec<String>>,
    /// A `whsec_` secret to sign with.
    #[serde(default)]
    pub secret: Option<Secret>,
}

impl FileWebhook {
    /// The HTTP method, upper-case (`POST` unless given).
    pub fn http_method(&self) -> String {
        self.method
            .as_deref()
            .unwrap_or("POST")
            .to_ascii_uppercase()
    }

    /// The configured headers the service sends: all but `Content-Type`, which it sets itself.
    pub fn sent_headers(&self) -> std::collections::BTreeMap<String, Secret> {
        self.headers
            .iter()
            .filter(|(k, _)| !k.eq_ignore_ascii_case("content-type"))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }
}

/// A plugins file as read at start-up.
#[derive(Debug, Clone)]
pub struct PluginsFile {
    pub path: std::path::PathBuf,
    pub plugins: Vec<FilePlugin>,
}

#[derive(serde::Deserialize)]
#[serde(untagged)]
enum PluginsDoc {
    List(Vec<FilePlugin>),
    Table { plugins: Vec<FilePlugin> },
}

/// Reads a plugins file (`.toml` with `[[plugins]]`, or JSON: a list or `{"plugins": [...]}`).
pub fn read_plugins_file(path: &std::path::Path) -> Result<Vec<FilePlugin>, ConfigError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| ConfigError::new("PLUGINS_FILE", format!("{}: {e}", path.display())))?;
    let doc: PluginsDoc = if path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("toml"))
    {
        toml::from_str(&text)
            .map_err(|e| ConfigError::new("PLUGINS_FILE", format!("{}: {e}", path.display())))?
    } else {
        serde_json::from_str(&text)
            .map_err(|e| ConfigError::new("PLUGINS_FILE", format!("{}: {e}", path.display())))?
    };
    let plugins = match doc {
        PluginsDoc::List(p) | PluginsDoc::Table { plugins: p } => p,
    };
    let mut seen = std::collections::BTreeSet::new();
    for p in &plugins {
        let fail = |m: String| ConfigError::new("PLUGINS_FILE", format!("plugin {:?}: {m}", p.id));
        if !seen.insert(p.id.clone()) {
            return Err(fail("the id is used twice".into()));
        }
        if p.plugin_type != "external" {
            return Err(fail(
                "a plugins file defines external plugins; internal plugins are code".into(),
            ));
        }
        let service = &p.external_service;
        for e in service_events(p).into_iter().flatten() {
            if e != "*" && EventName::parse(e).is_none() {
                return Err(fail(format!("{e:?} is not an event name")));
            }
        }
        let (timeout, retries) = (
            service
                .webhook
                .as_ref()
                .and_then(|w| w.timeout)
                .or(service.timeout),
            service
                .webhook
                .as_ref()
                .and_then(|w| w.retries)
                .or(service.retries),
        );
        if timeout.is_some_and(|t| !(1..=300_000).contains(&t)) || retries.is_some_and(|r| r > 100)
        {
            return Err(fail(
                "timeout must be 1..300000 ms and retries at most 100".into(),
            ));
        }
        if service.service_type != "webhook" {
            p.broker().map_err(fail)?;
            continue;
        }
        let w = service
            .webhook
            .as_ref()
            .ok_or_else(|| fail("externalService.webhook is missing".into()))?;
        let url = url::Url::parse(&w.url).map_err(|e| fail(format!("url: {e}")))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(fail("url must be http(s)".into()));
        }
        check_headers(&w.headers).map_err(fail)?;
        if w.secret
            .as_ref()
            .is_some_and(|s| super::signing::secret_key(s.expose()).is_none())
        {
            return Err(fail("secret must be whsec_ followed by base64".into()));
        }
    }
    Ok(plugins)
}

/// A file or custom plugin's webhook headers, as the API checks a tenant's (`Content-Type`
/// is set by the service and dropped from the configured ones).
pub(crate) fn check_headers(
    headers: &std::collections::BTreeMap<String, Secret>,
) -> Result<(), String> {
    if headers.len() > super::safety::MAX_HEADERS {
        return Err(format!("at most {} headers", super::safety::MAX_HEADERS));
    }
    for (k, v) in headers {
        if k.eq_ignore_ascii_case("content-type") {
            continue;
        }
        if let Some(problem) = super::safety::header_problem(k, v.expose()) {
            return Err(problem);
        }
    }
    Ok(())
}

/// The event lists a file plugin gives: its service's own (webhook, queue or stream), then
/// `externalService.events`.
fn service_events(p: &FilePlugin) -> Vec<&Vec<String>> {
    let s = &p.external_service;
    [
        s.webhook.as_ref().and_then(|w| w.events.as_ref()),
        s.queue.as_ref().and_then(|q| q.events.as_ref()),
        s.stream.as_ref().and_then(|q| q.events.as_ref()),
        s.events.as_ref(),
    ]
    .into_iter()
    .flatten()
    .collect()
}

impl FilePlugin {
    /// The events it receives: the service's own list, else `externalService.events`, else all.
    fn events(&self) -> Vec<String> {
        service_events(self)
            .first()
            .map(|l| (*l).clone())
            .unwrap_or_else(|| vec!["*".into()])
    }

    fn disabled_reason(&self) -> Option<String> {
        (!self.is_active).then(|| "isActive is false in the plugins file".into())
    }

    /// A `message-queue` or `event-stream` plugin, checked; `Ok(None)` for a webhook.
    pub fn broker(&self) -> Result<Option<BrokerSpec>, String> {
        let s = &self.external_service;
        let raw = match s.service_type.as_str() {
            "webhook" => return Ok(None),
            "message-queue" => {
                let q = s.queue.as_ref().ok_or("externalService.queue is missing")?;
                brokers::Raw {
                    plugin_type: "message-queue",
                    url: Some(q.url.expose()),
                    queue: Some(q.name.as_str()),
                    exchange: q.exchange.as_deref(),
                    routing_key: q.routing_key.as_deref(),
                    ..brokers::Raw::default()
                }
            }
            "event-stream" => {
                let st = s
                    .stream
                    .as_ref()
                    .ok_or("externalService.stream is missing")?;
                brokers::Raw {
                    plugin_type: "event-stream",
                    url: Some(st.url.expose()),
                    topic: Some(st.topic.as_str()),
                    partition: st.partition,
                    ..brokers::Raw::default()
                }
            }
            other => {
                return Err(format!(
                    "externalService.type {other:?} is not one of webhook, message-queue, event-stream"
                ));
            }
        };
        let (url, destination) = brokers::destination(&raw)?;
        Ok(Some(BrokerSpec {
            source: Source::File,
            key: self.id.clone(),
            name: self.name.clone(),
            url,
            destination,
            events: self.events(),
            timeout_ms: s.timeout.map_or(brokers::DEFAULT_TIMEOUT_MS, |t| t as i32),
            max_retries: s.retries.map_or(brokers::DEFAULT_RETRIES, |r| r as i32),
            active: self.is_active,
        }))
    }

    /// A webhook plugin's subscription; `None` for a broker (see [`FilePlugin::broker`]).
    fn desired(&self) -> Option<Desired> {
        let s = &self.external_service;
        if s.service_type != "webhook" {
            return None;
        }
        let w = s.webhook.as_ref()?;
        let mut headers = service_name_header();
        headers.extend(w.sent_headers());
        Some(Desired {
            key: self.id.clone(),
            name: self.name.clone(),
            kind: repo::SubscriptionKind::Webhook,
            target: w.url.clone(),
            method: w.http_method(),
            headers,
            secret: w.secret.clone(),
            events: self.events(),
            timeout_ms: w.timeout.or(s.timeout).unwrap_or(10_000) as i32,
            max_retries: w.retries.or(s.retries).unwrap_or(3) as i32,
            disabled_reason: self.disabled_reason(),
        })
    }
}

/// Writes the file's plugins to the registry (source `file`): its webhooks and its brokers
/// (already checked, in `brokers`), deactivating removed ones.
pub async fn sync_file(
    store: &Store,
    plugins: &[FilePlugin],
    brokers: &[BrokerSpec],
) -> anyhow::Result<()> {
    sync_source(
        store,
        Source::File,
        plugins.iter().filter_map(FilePlugin::desired).chain(
            brokers
                .iter()
                .filter(|b| b.source == Source::File)
                .map(BrokerSpec::desired),
        ),
    )
    .await
}

#[cfg(test)]
mod file_tests {
    use super::*;

    #[test]
    fn reads_the_seed_shape_in_toml_and_json() {
        let dir = tempfile::tempdir().unwrap();
        let toml_path = dir.path().join("plugins.toml");
        std::fs::write(
            &toml_path,
            r#"
[[plugins]]
id = "custom-webhook"
name = "Custom Webhook Plugin"
version = "1.0.0"
description = "Custom webhook for specific events"
author = "Your Organization"
type = "external"
isActive = true
[plugins.externalService]
type = "webhook"
[plugins.externalService.webhook]
url = "https://your-custom-service.com/webhook"
method = "POST"
timeout = 15000
retries = 5
events = ["attempt.started", "test.published"]
[plugins.externalService.webhook.headers]
Authorization = "Bearer your-api-key"
"#,
        )
        .unwrap();
        let p = read_plugins_file(&toml_path).unwrap();
        assert_eq!(p[0].id, "custom-webhook");
        let w = p[0].external_service.webhook.as_ref().unwrap();
        assert_eq!((w.timeout, w.retries), (Some(15000), Some(5)));
        assert_eq!(w.headers["Authorization"].expose(), "Bearer your-api-key");

        let json_path = dir.path().join("plugins.json");
        std::fs::write(&json_path, r#"[{"id": "a", "name": "A", "type": "external",
            "externalService": {"type": "message-queue", "webhook": {"url": "https://x.example"}}}]"#).unwrap();
        let err = read_plugins_file(&json_path).unwrap_err();
        assert_eq!(err.var, "PLUGINS_FILE");
        assert!(err.message.contains("queue is missing"), "{}", err.message);
    }
}
