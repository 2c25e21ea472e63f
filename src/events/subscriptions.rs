//! Subscriptions defined by the configuration, registered in the `subscriptions` table at
//! start-up beside those created through the API: the environment's (the seed's variables)
//! here, the plugins file's in `plugins_file`, the internal plugins in `plugins`. Every such
//! source writes its whole set through [`sync_source`].

use serde_json::json;
use sqlx::types::Json;
use uuid::Uuid;

use super::brokers::BrokerSpec;
pub use super::plugins_file::*;
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
    /// Each try's time limit (`*_TIMEOUT_MS`).
    pub timeout_ms: i32,
    /// Retries after the first try (`*_RETRIES`).
    pub max_retries: i32,
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
/// One of the environment's webhooks: its variables and their values.
struct Spec<'a> {
    name: &'static str,
    url: (&'static str, &'a Option<String>),
    key: &'a Option<Secret>,
    events: (&'static str, &'a Option<String>),
    default_events: &'static [&'static str],
    timeout_ms: (&'static str, Option<u32>),
    retries: (&'static str, Option<u32>),
}

/// The timeout and retries of a webhook with none set (as the API's webhooks).
pub const DEFAULT_TIMEOUT_MS: u32 = 10_000;
pub const DEFAULT_RETRIES: u32 = 3;

/// `value` of `var` (or `default`), refused outside `range`.
fn within(
    (var, value): (&'static str, Option<u32>),
    default: u32,
    range: std::ops::RangeInclusive<u32>,
) -> Result<i32, ConfigError> {
    let v = value.unwrap_or(default);
    if !range.contains(&v) {
        return Err(ConfigError::new(
            var,
            format!("must be between {} and {}", range.start(), range.end()),
        ));
    }
    Ok(v as i32)
}

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
        Spec {
            name: "external-service",
            url: (
                "EXTERNAL_SERVICE_WEBHOOK_URL",
                &c.external_service_webhook_url,
            ),
            key: &c.external_service_api_key,
            events: ("EXTERNAL_SERVICE_EVENTS", &c.external_service_events),
            default_events: SEED_EVENTS,
            timeout_ms: ("EXTERNAL_SERVICE_TIMEOUT_MS", c.external_service_timeout_ms),
            retries: ("EXTERNAL_SERVICE_RETRIES", c.external_service_retries),
        },
        Spec {
            name: "analytics-service",
            url: (
                "ANALYTICS_SERVICE_WEBHOOK_URL",
                &c.analytics_service_webhook_url,
            ),
            key: &c.analytics_service_api_key,
            events: ("ANALYTICS_SERVICE_EVENTS", &c.analytics_service_events),
            default_events: &["*"],
            timeout_ms: (
                "ANALYTICS_SERVICE_TIMEOUT_MS",
                c.analytics_service_timeout_ms,
            ),
            retries: ("ANALYTICS_SERVICE_RETRIES", c.analytics_service_retries),
        },
        Spec {
            name: "notification-service",
            url: ("NOTIFICATION_SERVICE_URL", &c.notification_service_url),
            key: &c.notification_service_api_key,
            events: (
                "NOTIFICATION_SERVICE_EVENTS",
                &c.notification_service_events,
            ),
            default_events: OUTCOME_EVENTS,
            timeout_ms: (
                "NOTIFICATION_SERVICE_TIMEOUT_MS",
                c.notification_service_timeout_ms,
            ),
            retries: (
                "NOTIFICATION_SERVICE_RETRIES",
                c.notification_service_retries,
            ),
        },
        Spec {
            name: "lms-integration",
            url: ("LMS_INTEGRATION_URL", &c.lms_integration_url),
            key: &c.lms_api_key,
            events: ("LMS_INTEGRATION_EVENTS", &c.lms_integration_events),
            default_events: OUTCOME_EVENTS,
            timeout_ms: ("LMS_INTEGRATION_TIMEOUT_MS", c.lms_integration_timeout_ms),
            retries: ("LMS_INTEGRATION_RETRIES", c.lms_integration_retries),
        },
    ];
    let mut out = Vec::new();
    for spec in specs {
        let (url_var, url) = spec.url;
        let Some(raw) = url.as_deref().map(str::trim).filter(|s| !s.is_empty()) else {
            continue;
        };
        let parsed =
            url::Url::parse(raw).map_err(|e| ConfigError::new(url_var, format!("{raw:?}: {e}")))?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(ConfigError::new(url_var, "must be an http(s) URL"));
        }
        let (events_var, events) = spec.events;
        out.push(EnvSubscription {
            name: spec.name,
            url: parsed,
            api_key: spec.key.clone().filter(|k| !k.is_empty()),
            events: events_list(events_var, events.as_deref(), spec.default_events)?,
            secret: secret.clone(),
            timeout_ms: within(spec.timeout_ms, DEFAULT_TIMEOUT_MS, 1..=300_000)?,
            max_retries: within(spec.retries, DEFAULT_RETRIES, 0..=100)?,
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
                previous_secret: None,
                previous_secret_expires_at: None,
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
pub(crate) fn service_name_header() -> std::collections::BTreeMap<String, Secret> {
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
            timeout_ms: self.timeout_ms,
            max_retries: self.max_retries,
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
    fn each_webhook_takes_its_timeout_and_retries() {
        let c = Config {
            analytics_service_webhook_url: Some("https://a.example.org/in".into()),
            analytics_service_timeout_ms: Some(2_500),
            analytics_service_retries: Some(0),
            notification_service_url: Some("https://n.example.org/in".into()),
            ..Config::default()
        };
        let subs = from_config(&c).unwrap();
        let of = |n: &str| subs.iter().find(|s| s.name == n).unwrap().desired();
        assert_eq!(
            (
                of("analytics-service").timeout_ms,
                of("analytics-service").max_retries
            ),
            (2_500, 0)
        );
        assert_eq!(
            (
                of("notification-service").timeout_ms,
                of("notification-service").max_retries
            ),
            (10_000, 3)
        );
        for (c, var) in [
            (
                Config {
                    analytics_service_timeout_ms: Some(0),
                    ..c.clone()
                },
                "ANALYTICS_SERVICE_TIMEOUT_MS",
            ),
            (
                Config {
                    notification_service_retries: Some(101),
                    ..c
                },
                "NOTIFICATION_SERVICE_RETRIES",
            ),
        ] {
            let e = from_config(&c).unwrap_err();
            assert_eq!(e.var, var);
        }
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
