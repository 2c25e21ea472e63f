//! Plugins: code run by the dispatcher for events, with the same durability as webhooks (each
//! plugin is a subscription; a failing plugin is retried and dead-lettered). The built-in ones
//! are Rust (here); custom ones are sandboxed JavaScript modules loaded at start-up
//! ([`js`]). Within a plugin, hooks run in priority order (highest first); a failing hook is
//! recorded and does not stop the others. A hook may replace the payload the plugin's external
//! service receives, or cancel that delivery.

pub mod js;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};

use super::subscriptions::{Desired, Source, sync_source};
use crate::store::Store;

/// A hook: the event it runs for (`*` for all) and its priority.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hook {
    pub event: String,
    pub priority: i32,
}

impl Hook {
    pub fn new(event: &str, priority: i32) -> Hook {
        Hook {
            event: event.to_string(),
            priority,
        }
    }
}

/// What a hook makes of the event, for its plugin's own delivery.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    /// The event as it is.
    Keep,
    /// This payload instead (what the plugin's external service receives).
    Replace(Value),
    /// No delivery for this plugin (recorded as skipped).
    Cancel,
}

/// What a hook run returns.
pub type HookFuture<'a> = Pin<Box<dyn Future<Output = Result<Verdict, String>> + Send + 'a>>;

/// Where a plugin delivers after its hooks (the seed's `externalService`).
#[derive(Debug, Clone)]
pub enum External {
    Webhook {
        url: String,
        method: String,
        /// Values are often credentials.
        headers: std::collections::BTreeMap<String, crate::secret::Secret>,
        timeout_ms: i32,
        /// The events it receives (`None`: every event the plugin gets).
        events: Option<Vec<String>>,
    },
    /// A queue or a stream; its route in the sinks has the plugin's subscription id.
    Broker(crate::events::brokers::BrokerSpec),
}

impl External {
    /// Whether the external service takes this event.
    pub fn wants(&self, name: &str) -> bool {
        let events = match self {
            External::Webhook { events, .. } => events.as_deref(),
            External::Broker(spec) => Some(spec.events.as_slice()),
        };
        events.is_none_or(|e| e.iter().any(|x| x == "*" || x == name))
    }

    pub fn service_type(&self) -> &'static str {
        match self {
            External::Webhook { .. } => "webhook",
            External::Broker(spec) => spec.plugin_type(),
        }
    }
}

/// An internal plugin (the seed's `Plugin` interface, for code shipped with the service).
pub trait Plugin: Send + Sync {
    fn id(&self) -> &str;
    fn name(&self) -> &str;
    fn version(&self) -> &str;
    fn description(&self) -> &str;
    fn author(&self) -> &str {
        "Shiksha assessment service"
    }
    /// The seed's plugin type: `internal` or `external`.
    fn plugin_type(&self) -> &str {
        "internal"
    }
    fn hooks(&self) -> Vec<Hook>;
    /// Runs hook number `hook` (an index into [`Plugin::hooks`]) on the event body (the webhook
    /// payload, or what an earlier hook replaced it with).
    fn run<'a>(&'a self, hook: usize, event: &'a Value) -> HookFuture<'a>;
    /// Where it delivers after its hooks.
    fn external(&self) -> Option<&External> {
        None
    }
    /// Retries of its delivery after the first try.
    fn max_retries(&self) -> i32 {
        5
    }
    /// The file it was loaded from (custom plugins).
    fn file(&self) -> Option<&std::path::Path> {
        None
    }
}

/// Logs every event at debug level (the seed's "Enable Debug Logging").
pub struct DebugLog;

impl Plugin for DebugLog {
    fn id(&self) -> &'static str {
        "debug-log"
    }
    fn name(&self) -> &'static str {
        "Debug log"
    }
    fn version(&self) -> &'static str {
        "1.0.0"
    }
    fn description(&self) -> &'static str {
        "Logs each event at debug level"
    }
    fn hooks(&self) -> Vec<Hook> {
        vec![Hook::new("*", 0)]
    }
    fn run<'a>(&'a self, _hook: usize, event: &'a Value) -> HookFuture<'a> {
        Box::pin(async move {
            tracing::debug!(target: "events", name = %event["name"], id = %event["id"], payload = %event, "event");
            Ok(Verdict::Keep)
        })
    }
}

/// Upstream's LMS integration: `PATCH {LMS_SERVICE_URL}/course/tracking/update_test_progress`
/// with `{testId, userId, score, result, reviewedBy}` and the tenant headers, on a passed
/// submission and on a completed review.
pub struct LmsProgress {
    base: url::Url,
    client: reqwest::Client,
}

impl LmsProgress {
    pub fn new(base: url::Url) -> Self {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .redirect(reqwest::redirect::Policy::none())
            .pool_idle_timeout(crate::events::safety::IDLE_CONNECTIONS_KEPT)
            .build()
            .unwrap_or_default();
        LmsProgress { base, client }
    }

    /// The request body for this event, or `None` when the event does not concern the LMS.
    pub fn progress(event: &Value) -> Option<Value> {
        let data = &event["data"];
        let (user, reviewed_by) = match event["name"].as_str()? {
            "attempt.submitted" => {
                if data["result"] != "P" || data["reviewStatus"] != "R" {
                    return None;
                }
                (event["context"]["userId"].clone(), Value::Null)
            }
            "attempt.reviewed" => {
                if data["reviewStatus"] != "R" {
                    return None;
                }
                (data["userId"].clone(), data["reviewedBy"].clone())
            }
            _ => return None,
        };
        Some(json!({
            "testId": data["testId"],
            "userId": user,
            "score": data["score"],
            "result": data["result"],
            "reviewedBy": reviewed_by,
        }))
    }
}

impl Plugin for LmsProgress {
    fn id(&self) -> &'static str {
        "lms-progress"
    }
    fn name(&self) -> &'static str {
        "LMS progress"
    }
    fn version(&self) -> &'static str {
        "1.0.0"
    }
    fn description(&self) -> &'static str {
        "Reports passed submissions and completed reviews to the LMS course tracking"
    }
    fn hooks(&self) -> Vec<Hook> {
        vec![
            Hook::new("attempt.submitted", 100),
            Hook::new("attempt.reviewed", 100),
        ]
    }
    fn run<'a>(&'a self, _hook: usize, event: &'a Value) -> HookFuture<'a> {
        Box::pin(async move {
            let Some(body) = Self::progress(event) else {
                return Ok(Verdict::Keep);
            };
            let url = format!(
                "{}/course/tracking/update_test_progress",
                self.base.as_str().trim_end_matches('/')
            );
            let resp = self
                .client
                .patch(url)
                .header(
                    "tenantId",
                    event["context"]["tenantId"].as_str().unwrap_or_default(),
                )
                .header(
                    "organisationId",
                    event["context"]["organisationId"]
                        .as_str()
                        .unwrap_or_default(),
                )
                .json(&body)
                .send()
                .await
                .map_err(|e| format!("LMS unreachable: {e}"))?;
            let status = resp.status();
            let answer: Value = resp.json().await.unwrap_or(Value::Null);
            if status.is_success() && answer["params"]["status"] == "successful" {
                Ok(Verdict::Keep)
            } else {
                Err(format!(
                    "LMS refused the progress update (HTTP {})",
                    status.as_u16()
                ))
            }
        })
    }
}

/// The plugins this service runs.
#[derive(Clone, Default)]
pub struct Registry {
    plugins: Vec<Arc<dyn Plugin>>,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.plugins.iter().map(|p| p.id()))
            .finish()
    }
}

impl Registry {
    /// `debug-log` when events are logged at debug level (`LOG_LEVEL=debug`, the seed's
    /// "Enable Debug Logging"; so built once logging is installed); `lms-progress` when the
    /// LMS service (`LMS_SERVICE_URL`) is given. A plugin that is not needed is not
    /// registered: every registered plugin costs a delivery per event.
    /// Custom plugins (`custom`) follow; an id used twice is a [`ConfigError`].
    ///
    /// [`ConfigError`]: crate::config::ConfigError
    pub fn configured(
        lms_service: Option<url::Url>,
        custom: Vec<Arc<dyn Plugin>>,
    ) -> Result<Self, crate::config::ConfigError> {
        let mut plugins: Vec<Arc<dyn Plugin>> = Vec::new();
        if tracing::enabled!(target: "events", tracing::Level::DEBUG) {
            plugins.push(Arc::new(DebugLog));
        }
        if let Some(url) = lms_service {
            plugins.push(Arc::new(LmsProgress::new(url)));
        }
        for p in custom {
            if plugins.iter().any(|q| q.id() == p.id()) {
                return Err(crate::config::ConfigError::new(
                    "CUSTOM_PLUGINS_DIR",
                    format!(
                        "{}: the id {:?} is a built-in plugin's",
                        p.file()
                            .map(|f| f.display().to_string())
                            .unwrap_or_default(),
                        p.id()
                    ),
                ));
            }
            plugins.push(p);
        }
        Ok(Registry { plugins })
    }

    pub fn with(plugins: Vec<Arc<dyn Plugin>>) -> Self {
        Registry { plugins }
    }

    pub fn get(&self, id: &str) -> Option<&Arc<dyn Plugin>> {
        self.plugins.iter().find(|p| p.id() == id)
    }

    pub fn all(&self) -> &[Arc<dyn Plugin>] {
        &self.plugins
    }

    /// The registry as `/plugins` shows it.
    pub fn describe(&self) -> Vec<Value> {
        self.plugins
            .iter()
            .map(|p| {
                json!({
                    "id": p.id(), "name": p.name(), "version": p.version(),
                    "description": p.description(), "author": p.author(), "type": p.plugin_type(),
                    "isActive": true,
                    "hooks": p.hooks().iter().map(|h| json!({"name": h.event, "priority": h.priority})).collect::<Vec<_>>(),
                    "externalService": p.external().map(|e| json!({"type": e.service_type()})),
                    "file": p.file().map(|f| f.display().to_string()),
                })
            })
            .collect()
    }

    /// Runs a plugin's hooks for an event, highest priority first (equal priorities in the
    /// order declared), each on the payload the ones before it left. A failing hook does not
    /// stop the others; the failures are returned together. A hook that cancels ends the run.
    pub async fn run(&self, id: &str, event: &Value) -> Result<Verdict, String> {
        let plugin = self.get(id).ok_or_else(|| format!("no plugin {id}"))?;
        let name = event["name"].as_str().unwrap_or_default();
        let mut hooks: Vec<(usize, Hook)> = plugin
            .hooks()
            .into_iter()
            .enumerate()
            .filter(|(_, h)| h.event == "*" || h.event == name)
            .collect();
        hooks.sort_by_key(|(_, h)| std::cmp::Reverse(h.priority));
        let mut failures = Vec::new();
        let mut current: Option<Value> = None;
        for (i, h) in hooks {
            match plugin.run(i, current.as_ref().unwrap_or(event)).await {
                Ok(Verdict::Keep) => {}
                Ok(Verdict::Replace(v)) => current = Some(v),
                Ok(Verdict::Cancel) if failures.is_empty() => return Ok(Verdict::Cancel),
                Ok(Verdict::Cancel) => break,
                Err(e) => failures.push(format!("{}: {e}", h.event)),
            }
        }
        if !failures.is_empty() {
            return Err(failures.join("; "));
        }
        Ok(current.map_or(Verdict::Keep, Verdict::Replace))
    }

    /// Registers each plugin as a built-in subscription (so its runs are durable and logged),
    /// deactivating plugins no longer run.
    pub async fn sync(&self, store: &Store) -> anyhow::Result<()> {
        let desired = self.plugins.iter().map(|p| {
            // The events its hooks run for, and those its external service takes.
            let mut events: Vec<String> = p.hooks().iter().map(|h| h.event.clone()).collect();
            match p.external() {
                Some(External::Webhook { events: None, .. }) => events.push("*".into()),
                Some(External::Webhook {
                    events: Some(e), ..
                }) => events.extend(e.iter().cloned()),
                Some(External::Broker(spec)) => events.extend(spec.events.iter().cloned()),
                None => {}
            }
            events.sort();
            events.dedup();
            if events.iter().any(|e| e == "*") {
                events = vec!["*".into()];
            }
            let timeout_ms = match p.external() {
                Some(External::Webhook { timeout_ms, .. }) => *timeout_ms,
                Some(External::Broker(spec)) => spec.timeout_ms,
                None => 10_000,
            };
            Desired {
                key: p.id().to_string(),
                name: p.id().to_string(),
                kind: crate::store::deliveries::SubscriptionKind::Plugin,
                target: p.id().to_string(),
                method: "POST".into(),
                headers: Default::default(),
                secret: None,
                events,
                timeout_ms,
                max_retries: p.max_retries(),
                disabled_reason: None,
            }
        });
        sync_source(store, Source::Builtin, desired).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lms_progress_only_for_passed_submissions_and_completed_reviews() {
        let submitted = json!({"name": "attempt.submitted", "context": {"userId": "u"},
            "data": {"testId": "t", "score": 8, "result": "P", "reviewStatus": "R"}});
        assert_eq!(
            LmsProgress::progress(&submitted).unwrap(),
            json!({"testId": "t", "userId": "u", "score": 8, "result": "P", "reviewedBy": null})
        );
        let failed =
            json!({"name": "attempt.submitted", "data": {"result": "F", "reviewStatus": "R"}});
        assert!(LmsProgress::progress(&failed).is_none());
        let reviewed = json!({"name": "attempt.reviewed", "context": {"userId": "r"},
            "data": {"testId": "t", "userId": "u", "score": 3, "result": "F", "reviewStatus": "R", "reviewedBy": "r"}});
        assert_eq!(LmsProgress::progress(&reviewed).unwrap()["userId"], "u");
        assert!(LmsProgress::progress(&json!({"name": "test.published"})).is_none());
    }
}
