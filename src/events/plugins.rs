//! Internal plugins: code run by the dispatcher for events, with the same durability as
//! webhooks (each plugin is a subscription; a failing plugin is retried and dead-lettered).
//! Within a plugin, hooks run in priority order (highest first); a failing hook is recorded
//! and does not stop the others.

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
    pub event: &'static str,
    pub priority: i32,
}

/// What a hook run returns.
pub type HookFuture<'a> = Pin<Box<dyn Future<Output = Result<(), String>> + Send + 'a>>;

/// An internal plugin (the seed's `Plugin` interface, for code shipped with the service).
pub trait Plugin: Send + Sync {
    fn id(&self) -> &'static str;
    fn name(&self) -> &'static str;
    fn version(&self) -> &'static str;
    fn description(&self) -> &'static str;
    fn author(&self) -> &'static str {
        "Shiksha assessment service"
    }
    fn hooks(&self) -> Vec<Hook>;
    /// Runs the hook for `hook_event` on the event body (the webhook payload).
    fn run<'a>(&'a self, hook_event: &'a str, event: &'a Value) -> HookFuture<'a>;
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
        vec![Hook {
            event: "*",
            priority: 0,
        }]
    }
    fn run<'a>(&'a self, _hook: &'a str, event: &'a Value) -> HookFuture<'a> {
        Box::pin(async move {
            tracing::debug!(target: "events", name = %event["name"], id = %event["id"], payload = %event, "event");
            Ok(())
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
            Hook {
                event: "attempt.submitted",
                priority: 100,
            },
            Hook {
                event: "attempt.reviewed",
                priority: 100,
            },
        ]
    }
    fn run<'a>(&'a self, _hook: &'a str, event: &'a Value) -> HookFuture<'a> {
        Box::pin(async move {
            let Some(body) = Self::progress(event) else {
                return Ok(());
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
                Ok(())
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
    pub fn configured(lms_service: Option<url::Url>) -> Self {
        let mut plugins: Vec<Arc<dyn Plugin>> = Vec::new();
        if tracing::enabled!(target: "events", tracing::Level::DEBUG) {
            plugins.push(Arc::new(DebugLog));
        }
        if let Some(url) = lms_service {
            plugins.push(Arc::new(LmsProgress::new(url)));
        }
        Registry { plugins }
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
                    "description": p.description(), "author": p.author(), "type": "internal",
                    "isActive": true,
                    "hooks": p.hooks().iter().map(|h| json!({"name": h.event, "priority": h.priority})).collect::<Vec<_>>(),
                })
            })
            .collect()
    }

    /// Runs a plugin's hooks for an event, highest priority first. A failing hook does not
    /// stop the others; the failures are returned together.
    pub async fn run(&self, id: &str, event: &Value) -> Result<(), String> {
        let plugin = self.get(id).ok_or_else(|| format!("no plugin {id}"))?;
        let name = event["name"].as_str().unwrap_or_default();
        let mut hooks: Vec<Hook> = plugin
            .hooks()
            .into_iter()
            .filter(|h| h.event == "*" || h.event == name)
            .collect();
        hooks.sort_by_key(|h| std::cmp::Reverse(h.priority));
        let mut failures = Vec::new();
        for h in hooks {
            if let Err(e) = plugin.run(h.event, event).await {
                failures.push(format!("{}: {e}", h.event));
            }
        }
        if failures.is_empty() {
            Ok(())
        } else {
            Err(failures.join("; "))
        }
    }

    /// Registers each plugin as a built-in subscription (so its runs are durable and logged),
    /// deactivating plugins no longer run.
    pub async fn sync(&self, store: &Store) -> anyhow::Result<()> {
        let desired = self.plugins.iter().map(|p| {
            let mut events: Vec<String> = p.hooks().iter().map(|h| h.event.to_string()).collect();
            events.dedup();
            Desired {
                key: p.id().to_string(),
                name: p.id().to_string(),
                kind: crate::store::deliveries::SubscriptionKind::Plugin,
                target: p.id().to_string(),
                method: "POST".into(),
                headers: Default::default(),
                secret: None,
                events,
                timeout_ms: 10_000,
                max_retries: 5,
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
