//! Plugins as a sink: an event runs the plugin's hooks, then (for a plugin with an
//! `externalService`) goes on to its webhook or broker with the payload the hooks left.

use super::{Outcome, Reply};
use crate::events::plugins::{External, Registry, Verdict};
use crate::store::deliveries::{Claimed, Subscription, SubscriptionKind};

pub(super) struct PluginSink {
    plugins: Registry,
}

/// What running a plugin's hooks leaves to do.
pub(super) enum Next {
    /// Nothing more: this is the try's outcome.
    Done(Outcome),
    /// Deliver `claimed` (its payload as the hooks left it) to the plugin's webhook, as
    /// this subscription describes it.
    Webhook(Box<(Claimed, Subscription)>),
    /// Deliver `claimed` to the plugin's broker (routed by the plugin's subscription).
    Broker(Claimed),
}

impl PluginSink {
    pub(super) fn new(plugins: Registry) -> Self {
        PluginSink { plugins }
    }

    /// Runs the plugin's hooks. A failure retries like a failed HTTP try; so does a plugin this
    /// instance lacks (instances configured differently, mid-rollout), so that an instance that
    /// has it can deliver. A hook that cancels makes the try skipped.
    pub(super) async fn send(&self, c: &Claimed, sub: &Subscription) -> Next {
        let verdict = match self.plugins.run(&sub.target, &c.payload.0).await {
            Ok(v) => v,
            Err(error) => {
                return Next::Done(Outcome::Failed {
                    error,
                    reply: Reply::default(),
                    retry_after: None,
                });
            }
        };
        let payload = match verdict {
            Verdict::Cancel => {
                return Next::Done(Outcome::Skipped {
                    reason: "cancelled by a hook".into(),
                });
            }
            Verdict::Keep => None,
            Verdict::Replace(v) => Some(v),
        };
        let external = self
            .plugins
            .get(&sub.target)
            .and_then(|p| p.external().cloned())
            .filter(|e| e.wants(&c.name));
        let Some(external) = external else {
            return Next::Done(Outcome::Accepted {
                reply: Reply {
                    status: Some(200),
                    body: None,
                },
            });
        };
        let mut claimed = c.clone();
        if let Some(p) = payload {
            claimed.payload.0 = p;
        }
        match external {
            External::Broker(_) => Next::Broker(claimed),
            External::Webhook {
                url,
                method,
                headers,
                timeout_ms,
                ..
            } => {
                let headers: serde_json::Map<String, serde_json::Value> = headers
                    .into_iter()
                    .map(|(k, v)| (k, serde_json::json!(v.expose())))
                    .collect();
                let webhook = Subscription {
                    kind: SubscriptionKind::Webhook,
                    target: url,
                    method,
                    headers: sqlx::types::Json(serde_json::Value::Object(headers)),
                    secret: None,
                    previous_secret: None,
                    timeout_ms,
                    ..sub.clone()
                };
                Next::Webhook(Box::new((claimed, webhook)))
            }
        }
    }
}
