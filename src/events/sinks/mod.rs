//! Where deliveries go. The dispatcher knows a target only through [`Sinks::send`] and the
//! [`Outcome`] it returns; each sink owns how it reaches its target (an HTTP client, an
//! internal plugin, a shared broker connection). Retries, ordering, leases and the delivery
//! log stay in the dispatcher, shared by every sink.

mod broker;
mod plugin;
mod webhook;

use std::time::Duration;

use crate::clock::Clock;
use crate::store::deliveries::{Claimed, Subscription, SubscriptionKind};

pub use broker::Brokers;
pub use webhook::{CHECK_TIMEOUT, parse_retry_after};

/// How one send ended, in terms every sink can give.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The target took the event (a 2xx answer, a plugin that ran).
    Accepted { reply: Reply },
    /// The target is gone for good (HTTP 410): the subscription is to be disabled.
    Gone { reply: Reply },
    /// Not taken this time; another try may succeed (after `retry_after` when the target said).
    Failed {
        error: String,
        reply: Reply,
        retry_after: Option<Duration>,
    },
    /// Can never be delivered as configured (an invalid or unsafe target).
    Refused { error: String },
    /// The target's broker cannot be reached now: tried again after `retry_after` without
    /// using up a retry (an outage is not the message's fault, and must not dead-letter it).
    Unavailable {
        error: String,
        retry_after: Duration,
    },
    /// Not to be delivered, and not a failure (a plugin's hook cancelled it).
    Skipped { reason: String },
}

/// What the target answered, when it answered.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Reply {
    /// The HTTP status, for targets that have one.
    pub status: Option<u16>,
    /// The first bytes of the answer's body.
    pub body: Option<String>,
}

/// Every kind of target, ready to send.
pub struct Sinks {
    webhook: webhook::WebhookSink,
    plugins: plugin::PluginSink,
    brokers: Brokers,
}

impl Sinks {
    pub fn new(
        clock: Clock,
        allow_private: bool,
        plugins: super::plugins::Registry,
        brokers: Brokers,
    ) -> Self {
        Sinks {
            webhook: webhook::WebhookSink::new(clock, allow_private),
            plugins: plugin::PluginSink::new(plugins),
            brokers,
        }
    }

    /// Sends one claimed delivery to its subscription's target.
    pub async fn send(&self, c: &Claimed, sub: &Subscription) -> Outcome {
        match sub.kind {
            SubscriptionKind::Webhook => self.webhook.send(c, sub).await,
            SubscriptionKind::Plugin => match self.plugins.send(c, sub).await {
                plugin::Next::Done(outcome) => outcome,
                plugin::Next::Webhook(next) => {
                    let (claimed, webhook) = *next;
                    self.webhook.send(&claimed, &webhook).await
                }
                plugin::Next::Broker(claimed) => self.brokers.send(&claimed, sub).await,
            },
            SubscriptionKind::Amqp | SubscriptionKind::Nats | SubscriptionKind::Redis => {
                self.brokers.send(c, sub).await
            }
        }
    }
}
