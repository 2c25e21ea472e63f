//! Internal plugins as a sink: an event runs the plugin's hooks.

use super::{Outcome, Reply};
use crate::events::plugins::Registry;
use crate::store::deliveries::{Claimed, Subscription};

pub(super) struct PluginSink {
    plugins: Registry,
}

impl PluginSink {
    pub(super) fn new(plugins: Registry) -> Self {
        PluginSink { plugins }
    }

    /// Runs the plugin's hooks. A failure retries like a failed HTTP try; so does a plugin this
    /// instance lacks (instances configured differently, mid-rollout), so that an instance that
    /// has it can deliver.
    pub(super) async fn send(&self, c: &Claimed, sub: &Subscription) -> Outcome {
        match self.plugins.run(&sub.target, &c.payload.0).await {
            Ok(()) => Outcome::Accepted {
                reply: Reply {
                    status: Some(200),
                    body: None,
                },
            },
            Err(error) => Outcome::Failed {
                error,
                reply: Reply::default(),
                retry_after: None,
            },
        }
    }
}
