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

/// The environment's subscriptions (none in the `test` profile unless asked for).
pub fn from_config(c: &Config) -> Result<Vec<EnvSubscription>, ConfigError> {
    if c.node_env.trim() == "test" && !c.external_plugins_in_test {
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
                kind: "webhook".into(),
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
