//! Subscriptions defined by the environment (the seed's variables), registered in the
//! `subscriptions` table at start-up beside those created through the API.

use serde_json::json;
use sqlx::types::Json;
use uuid::Uuid;

use crate::config::{Config, ConfigError};
use crate::domain::event::EventName;
use crate::store::deliveries::{self as repo, Subscription};
use crate::store::{Id, Store, Ts};

/// One subscription from the environment.
#[derive(Debug, Clone, PartialEq)]
pub struct EnvSubscription {
    pub name: &'static str,
    pub url: url::Url,
    pub api_key: Option<String>,
    pub events: Vec<String>,
    pub secret: Option<String>,
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

fn events_list(
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
    &'a Option<String>,
    &'static str,
    &'a Option<String>,
    &'static [&'static str],
);

/// Whether external plugins (environment and plugins file) are registered: not in the seed's
/// `test` profile unless `EXTERNAL_PLUGINS_IN_TEST=true`.
pub fn external_enabled(c: &Config) -> bool {
    c.node_env.trim() != "test" || c.external_plugins_in_test
}

/// The environment's subscriptions (none in the `test` profile unless asked for).
pub fn from_config(c: &Config) -> Result<Vec<EnvSubscription>, ConfigError> {
    if !external_enabled(c) {
        return Ok(Vec::new());
    }
    let secret = match c
        .webhook_signing_secret
        .as_deref()
        .filter(|s| !s.is_empty())
    {
        None => None,
        Some(s) if super::signing::secret_key(s).is_some() => Some(s.to_string()),
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

/// Writes the environment's subscriptions to the registry and deactivates those no longer
/// configured.
pub async fn sync(store: &Store, subs: &[EnvSubscription]) -> anyhow::Result<()> {
    let now = Ts::now();
    let mut tx = store.begin().await?;
    let mut keep = Vec::new();
    for s in subs {
        let id = env_id(s.name);
        keep.push(id);
        let mut headers = json!({"X-Service-Name": "shiksha-assessment"});
        if let Some(k) = &s.api_key {
            headers["Authorization"] = json!(format!("Bearer {k}"));
        }
        repo::upsert_subscription(
            &mut tx,
            &Subscription {
                subscription_id: Id(id),
                tenant_id: None,
                organisation_id: None,
                name: s.name.to_string(),
                source: "env".into(),
                kind: repo::SubscriptionKind::Webhook,
                target: s.url.to_string(),
                method: "POST".into(),
                headers: Json(headers),
                secret: s.secret.clone(),
                events: Json(s.events.clone()),
                timeout_ms: 10_000,
                max_retries: 3,
                is_active: true,
                disabled_reason: None,
                created_at: now,
                updated_at: now,
            },
        )
        .await?;
    }
    repo::deactivate_others(&mut tx, "env", &keep, now).await?;
    tx.commit().await?;
    Ok(())
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

/// `externalService` of a file plugin.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileExternalService {
    #[serde(rename = "type", default = "webhook_type")]
    pub service_type: String,
    pub webhook: Option<FileWebhook>,
}

fn webhook_type() -> String {
    "webhook".into()
}

/// `externalService.webhook` of a file plugin.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileWebhook {
    pub url: String,
    #[serde(default)]
    pub method: Option<String>,
    #[serde(default)]
    pub headers: std::collections::BTreeMap<String, String>,
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
    pub secret: Option<String>,
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
        if p.external_service.service_type != "webhook" {
            return Err(fail(format!(
                "externalService.type {:?} is not supported (only webhook)",
                p.external_service.service_type
            )));
        }
        let w = p
            .external_service
            .webhook
            .as_ref()
            .ok_or_else(|| fail("externalService.webhook is missing".into()))?;
        let url = url::Url::parse(&w.url).map_err(|e| fail(format!("url: {e}")))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(fail("url must be http(s)".into()));
        }
        if let Some(events) = &w.events {
            for e in events {
                if e != "*" && EventName::parse(e).is_none() {
                    return Err(fail(format!("{e:?} is not an event name")));
                }
            }
        }
        if w.secret
            .as_deref()
            .is_some_and(|s| super::signing::secret_key(s).is_none())
        {
            return Err(fail("secret must be whsec_ followed by base64".into()));
        }
        if w.timeout.is_some_and(|t| !(1..=300_000).contains(&t))
            || w.retries.is_some_and(|r| r > 100)
        {
            return Err(fail(
                "timeout must be 1..300000 ms and retries at most 100".into(),
            ));
        }
    }
    Ok(plugins)
}

/// Writes the file's plugins to the registry (source `file`), deactivating removed ones.
pub async fn sync_file(store: &Store, plugins: &[FilePlugin]) -> anyhow::Result<()> {
    let now = Ts::now();
    let mut tx = store.begin().await?;
    let mut keep = Vec::new();
    for p in plugins {
        let Some(w) = &p.external_service.webhook else {
            continue;
        };
        let id = env_id(&format!("file:{}", p.id));
        keep.push(id);
        let mut headers = serde_json::Map::new();
        headers.insert("X-Service-Name".into(), json!("shiksha-assessment"));
        for (k, v) in &w.headers {
            if !k.eq_ignore_ascii_case("content-type") {
                headers.insert(k.clone(), json!(v));
            }
        }
        repo::upsert_subscription(
            &mut tx,
            &Subscription {
                subscription_id: Id(id),
                tenant_id: None,
                organisation_id: None,
                name: p.name.clone(),
                source: "file".into(),
                kind: repo::SubscriptionKind::Webhook,
                target: w.url.clone(),
                method: w
                    .method
                    .clone()
                    .unwrap_or_else(|| "POST".into())
                    .to_ascii_uppercase(),
                headers: Json(serde_json::Value::Object(headers)),
                secret: w.secret.clone(),
                events: Json(w.events.clone().unwrap_or_else(|| vec!["*".into()])),
                timeout_ms: w.timeout.unwrap_or(10_000) as i32,
                max_retries: w.retries.unwrap_or(3) as i32,
                is_active: p.is_active,
                disabled_reason: (!p.is_active)
                    .then(|| "isActive is false in the plugins file".into()),
                created_at: now,
                updated_at: now,
            },
        )
        .await?;
    }
    repo::deactivate_others(&mut tx, "file", &keep, now).await?;
    tx.commit().await?;
    Ok(())
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
        assert_eq!(w.headers["Authorization"], "Bearer your-api-key");

        let json_path = dir.path().join("plugins.json");
        std::fs::write(&json_path, r#"[{"id": "a", "name": "A", "type": "external",
            "externalService": {"type": "message-queue", "webhook": {"url": "https://x.example"}}}]"#).unwrap();
        let err = read_plugins_file(&json_path).unwrap_err();
        assert_eq!(err.var, "PLUGINS_FILE");
        assert!(err.message.contains("not supported"), "{}", err.message);
    }
}
