//! Subscriptions defined by the configuration, registered in the `subscriptions` table at
//! start-up beside those created through the API: the environment's (the seed's variables)
//! and the plugins file's webhooks here, the internal plugins in `plugins`. Every such
//! source writes its whole set through [`sync_source`].

use serde_json::json;
use sqlx::types::Json;
use uuid::Uuid;

use super::brokers::{self, BrokerSpec};
use crate::config::{Config, ConfigError};
use crate::domain::event::EventName;
use crate::secret::Secret;
use crate::store::deliveries::{self as repo, Subscription};
use crate::store::{Id, Store};

/// One subscription from the environment.
#[derive(Debug, Clone, PartialEq)]
pub struct EnvSubscription {
    pub name: &'static str,
    pub url: url::Url,
    pub api_key: Option<Secret>,
    pub events: Vec<String>,
    /// The `whsec_` secret it is signed with.
    pub secret: Option<Secret>,
}

const SEED_EVENTS: &[&str] = &[
    "attempt.started",
    "attempt.submitted",
    "answer.submitted",
    "test.published",
    "test.unpublished",
];
const OUTCOME_EVENTS: &[&str] = &[
    "attempt.submitted",
    "attempt.reviewed",
    "test.published",
    "test.unpublished",
];

pub(super) fn events_list(
    var: &'static str,
    raw: Option<&str>,
    default: &[&str],
) -> Result<Vec<String>, ConfigError> {
    let Some(raw) = raw.map(str::trim).filter(|s| !s.is_empty()) else {
        return Ok(default.iter().map(|s| s.to_string()).collect());
    };
    let mut out = Vec::new();
    for name in raw.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        if name != "*" && EventName::parse(name).is_none() {
            return Err(ConfigError::new(
                var,
                format!("{name:?} is not an event name"),
            ));
        }
        out.push(name.to_string());
    }
    Ok(out)
}

/// name, URL variable, URL, key, events variable, events, default events.
type Spec<'a> = (
    &'static str,
    &'static str,
    &'a Option<String>,
    &'a Option<Secret>,
    &'static str,
    &'a Option<String>,
    &'static [&'static str],
);

/// The environment's subscriptions (none in the `test` profile unless asked for).
pub fn from_config(c: &Config) -> Result<Vec<EnvSubscription>, ConfigError> {
    if !c.external_plugins_enabled() {
        return Ok(Vec::new());
    }
    let secret = match c.webhook_signing_secret.as_ref().filter(|s| !s.is_empty()) {
        None => None,
        Some(s) if super::signing::secret_key(s.expose()).is_some() => Some(s.clone()),
        Some(_) => {
            return Err(ConfigError::new(
                "WEBHOOK_SIGNING_SECRET",
                "must be whsec_ followed by base64",
            ));
        }
    };
    let specs: [Spec<'_>; 4] = [
        (
            "external-service",
            "EXTERNAL_SERVICE_WEBHOOK_URL",
            &c.external_service_webhook_url,
            &c.external_service_api_key,
            "EXTERNAL_SERVICE_EVENTS",
            &c.external_service_events,
            SEED_EVENTS,
        ),
        (
            "analytics-service",
            "ANALYTICS_SERVICE_WEBHOOK_URL",
            &c.analytics_service_webhook_url,
            &c.analytics_service_api_key,
            "ANALYTICS_SERVICE_EVENTS",
            &c.analytics_service_events,
            &["*"],
        ),
        (
            "notification-service",
            "NOTIFICATION_SERVICE_URL",
            &c.notification_service_url,
            &c.notification_service_api_key,
            "NOTIFICATION_SERVICE_EVENTS",
            &c.notification_service_events,
            OUTCOME_EVENTS,
        ),
        (
            "lms-integration",
            "LMS_INTEGRATION_URL",
            &c.lms_integration_url,
            &c.lms_api_key,
            "LMS_INTEGRATION_EVENTS",
            &c.lms_integration_events,
            OUTCOME_EVENTS,
        ),
    ];
    let mut out = Vec::new();
    for (name, url_var, url, key, events_var, events, default) in specs {
        let Some(raw) = url.as_deref().map(str::trim).filter(|s| !s.is_empty()) else {
            continue;
        };
        let parsed =
            url::Url::parse(raw).map_err(|e| ConfigError::new(url_var, format!("{raw:?}: {e}")))?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(ConfigError::new(url_var, "must be an http(s) URL"));
        }
        out.push(EnvSubscription {
            name,
            url: parsed,
            api_key: key.clone().filter(|k| !k.is_empty()),
            events: events_list(events_var, events.as_deref(), default)?,
            secret: secret.clone(),
        });
    }
    Ok(out)
}

/// The stable id of an environment subscription.
pub fn env_id(name: &str) -> Uuid {
    Uuid::new_v5(
        &Uuid::NAMESPACE_URL,
        format!("shiksha-assessment:env:{name}").as_bytes(),
    )
}

/// A source of subscriptions defined by the configuration rather than through the API. Each
/// owns its rows of the `subscriptions` table: a start writes the source's whole set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// The seed's environment variables.
    Env,
    /// `PLUGINS_FILE`.
    File,
    /// The internal plugins.
    Builtin,
}

impl Source {
    /// The `source` column.
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Env => "env",
            Source::File => "file",
            Source::Builtin => "builtin",
        }
    }

    /// The stable id of this source's subscription named `key` (the same at every start, so
    /// its deliveries' history stays attached to it).
    pub fn id(self, key: &str) -> Uuid {
        match self {
            Source::Env => env_id(key),
            Source::File => env_id(&format!("file:{key}")),
            Source::Builtin => env_id(&format!("plugin:{key}")),
        }
    }
}

/// A subscription as its source wants it registered (the global, configuration-defined kind).
#[derive(Debug, Clone)]
pub struct Desired {
    /// Unique within the source; the stable id derives from it.
    pub key: String,
    pub name: String,
    /// `webhook` or `plugin`.
    pub kind: repo::SubscriptionKind,
    pub target: String,
    pub method: String,
    /// Every value is taken for a credential.
    pub headers: std::collections::BTreeMap<String, Secret>,
    pub secret: Option<Secret>,
    pub events: Vec<String>,
    pub timeout_ms: i32,
    pub max_retries: i32,
    /// `Some(reason)` registers it switched off.
    pub disabled_reason: Option<String>,
}

/// Makes the registry hold exactly `desired` for `source`, in one transaction: each is written
/// (created, or updated in place), and the source's other active rows are deactivated
/// (`no longer configured`), keeping their history.
pub async fn sync_source(
    store: &Store,
    source: Source,
    desired: impl IntoIterator<Item = Desired>,
) -> anyhow::Result<()> {
    // Configuration is registered at start-up, on the system's clock (nothing compares it).
    let now = crate::clock::Clock::system().now();
    let mut tx = store.begin().await?;
    let mut keep = Vec::new();
    for d in desired {
        let id = source.id(&d.key);
        keep.push(id);
        let headers: serde_json::Map<String, serde_json::Value> = d
            .headers
            .into_iter()
            .map(|(k, v)| (k, json!(v.expose())))
            .collect();
        repo::upsert_subscription(
            &mut tx,
            &Subscription {
                subscription_id: Id(id),
                tenant_id: None,
                organisation_id: None,
                name: d.name,
                source: source.as_str().into(),
                kind: d.kind,
                target: d.target,
                method: d.method,
                headers: Json(serde_json::Value::Object(headers)),
                secret: d.secret.map(|s| s.expose().to_string()),
                events: Json(d.events),
                timeout_ms: d.timeout_ms,
                max_retries: d.max_retries,
                is_active: d.disabled_reason.is_none(),
                disabled_reason: d.disabled_reason,
                created_at: now,
                updated_at: now,
            },
        )
        .await?;
    }
    repo::deactivate_others(&mut tx, source.as_str(), &keep, now).await?;
    tx.commit().await?;
    Ok(())
}

/// The `X-Service-Name` header every configured webhook sends.
fn service_name_header() -> std::collections::BTreeMap<String, Secret> {
    [(
        "X-Service-Name".to_string(),
        Secret::from("shiksha-assessment"),
    )]
    .into()
}

impl EnvSubscription {
    fn desired(&self) -> Desired {
        let mut headers = service_name_header();
        if let Some(k) = &self.api_key {
            headers.insert(
                "Authorization".into(),
                Secret::new(format!("Bearer {}", k.expose())),
            );
        }
        Desired {
            key: self.name.to_string(),
            name: self.name.to_string(),
            kind: repo::SubscriptionKind::Webhook,
            target: self.url.to_string(),
            method: "POST".into(),
            headers,
            secret: self.secret.clone(),
            events: self.events.clone(),
            timeout_ms: 10_000,
            max_retries: 3,
            disabled_reason: None,
        }
    }
}

/// Writes the environment's subscriptions (its webhooks, and its brokers from `brokers`) to
/// the registry and deactivates those no longer configured.
pub async fn sync(
    store: &Store,
    subs: &[EnvSubscription],
    brokers: &[BrokerSpec],
) -> anyhow::Result<()> {
    sync_source(
        store,
        Source::Env,
        subs.iter().map(EnvSubscription::desired).chain(
            brokers
                .iter()
                .filter(|b| b.source == Source::Env)
                .map(BrokerSpec::desired),
        ),
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seed_variables_become_subscriptions() {
        let c = Config {
            external_service_webhook_url: Some("https://hooks.example.org/in".into()),
            external_service_api_key: Some("k".into()),
            lms_integration_url: Some("https://lms.example.org/i".into()),
            lms_integration_events: Some("attempt.submitted, test.published".into()),
            ..Config::default()
        };
        let subs = from_config(&c).unwrap();
        assert_eq!(subs.len(), 2);
        assert_eq!(subs[0].name, "external-service");
        assert_eq!(subs[0].events.len(), 5);
        assert_eq!(subs[1].events, vec!["attempt.submitted", "test.published"]);
        let test_profile = Config {
            node_env: "test".into(),
            ..c.clone()
        };
        assert!(from_config(&test_profile).unwrap().is_empty());
        let bad = Config {
            external_service_events: Some("attempt.nope".into()),
            ..c
        };
        assert_eq!(
            from_config(&bad).unwrap_err().var,
            "EXTERNAL_SERVICE_EVENTS"
        );
        assert_eq!(env_id("x"), env_id("x"));
    }

    #[test]
    fn each_source_keeps_the_ids_its_rows_already_have() {
        // Rows written before the sources shared one sync: a changed id would orphan them.
        assert_eq!(Source::Env.id("lms-integration"), env_id("lms-integration"));
        assert_eq!(Source::File.id("custom"), env_id("file:custom"));
        assert_eq!(Source::Builtin.id("debug-log"), env_id("plugin:debug-log"));
        assert_eq!(
            [Source::Env, Source::File, Source::Builtin].map(Source::as_str),
            ["env", "file", "builtin"]
        );
    }
}

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
        for (k, v) in &w.headers {
            if !k.eq_ignore_ascii_case("content-type") {
                headers.insert(k.clone(), v.clone());
            }
        }
        Some(Desired {
            key: self.id.clone(),
            name: self.name.clone(),
            kind: repo::SubscriptionKind::Webhook,
            target: w.url.clone(),
            method: w
                .method
                .clone()
                .unwrap_or_else(|| "POST".into())
                .to_ascii_uppercase(),
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
