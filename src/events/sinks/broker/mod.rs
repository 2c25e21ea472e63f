//! Message brokers as sinks: RabbitMQ (AMQP 0.9.1, publisher confirms), NATS JetStream
//! (awaited publish acks) and Redis Streams (`XADD`). A delivery counts as done only once the
//! broker acknowledged it.
//!
//! Connections are shared: every subscription to the same broker URL uses one connection,
//! opened on first use (or by [`Brokers::connect_all`] at start-up) and reopened with backoff
//! when lost. While a broker cannot be reached its deliveries are deferred
//! ([`Outcome::Unavailable`]): they wait without using up their retries, so an outage of any
//! length loses nothing and dead-letters nothing; a broker that answers and refuses a message
//! fails that try, like a webhook's error status.

mod amqp;
mod nats;
mod redis;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use uuid::Uuid;

use super::{Outcome, Reply};
use crate::clock::Clock;
use crate::events::brokers::{BrokerKind, BrokerSpec, Destination};
use crate::store::Ts;
use crate::store::deliveries::{Claimed, Subscription};

/// How long opening a connection may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// The longest wait between two tries to reconnect (and so the longest a deferred delivery
/// waits once its broker is back).
const MAX_RECONNECT_WAIT: Duration = Duration::from_secs(5);

/// The message a delivery publishes: the webhook body, and what brokers carry beside it.
pub(super) struct Message<'a> {
    /// The event id: the message id everywhere (AMQP `message_id`, `Nats-Msg-Id`, the Redis
    /// entry's `id` field).
    id: String,
    name: &'a str,
    tenant: &'a str,
    organisation: &'a str,
    body: Vec<u8>,
    envelope: &'a Value,
    /// The W3C `traceparent` of the request that committed the event, if any: a header (AMQP,
    /// NATS) or a field (Redis) beside the body, as webhooks get it.
    traceparent: Option<&'a str>,
}

impl<'a> Message<'a> {
    fn of(c: &'a Claimed) -> Message<'a> {
        let envelope = &c.payload.0;
        let context = |k: &str| envelope["context"][k].as_str().unwrap_or_default();
        Message {
            id: c.event_id.0.to_string(),
            name: &c.name,
            tenant: context("tenantId"),
            organisation: context("organisationId"),
            body: serde_json::to_vec(envelope).unwrap_or_default(),
            envelope,
            traceparent: c.traceparent.as_deref(),
        }
    }
}

/// How a broker connection is doing, for `/plugins`.
pub(super) struct Health {
    clock: Clock,
    state: Mutex<HealthState>,
}

struct HealthState {
    connected: bool,
    /// When `connected` last changed (or the link was made).
    since: Ts,
    last_error: Option<(Ts, String)>,
}

impl Health {
    fn new(clock: Clock) -> Health {
        let since = clock.now();
        Health {
            clock,
            state: Mutex::new(HealthState {
                connected: false,
                since,
                last_error: None,
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HealthState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The broker answered.
    fn up(&self) {
        let mut s = self.lock();
        if !s.connected {
            s.connected = true;
            s.since = self.clock.now();
        }
    }

    /// The broker cannot be reached: `error` says why.
    fn down(&self, error: &str) {
        let now = self.clock.now();
        let mut s = self.lock();
        if s.connected {
            s.connected = false;
            s.since = now;
            tracing::warn!(error, "broker connection lost; reconnecting");
        }
        s.last_error = Some((now, error.to_string()));
    }

    /// An error that leaves the connection up (a refused message).
    fn error(&self, error: &str) {
        self.lock().last_error = Some((self.clock.now(), error.to_string()));
    }

    /// A send deferred because `broker` cannot be reached, saying why (the last error).
    fn unreachable(&self, broker: &str, retry_after: Duration) -> SendError {
        let error = self
            .lock()
            .last_error
            .as_ref()
            .map_or_else(|| "not connected".into(), |e| e.1.clone());
        SendError::Unreachable {
            error: format!("{broker} unreachable: {error}"),
            retry_after,
        }
    }

    fn snapshot(&self) -> Value {
        let s = self.lock();
        let state = match (s.connected, &s.last_error) {
            (true, _) => "connected",
            (false, None) => "connecting",
            (false, Some(_)) => "reconnecting",
        };
        json!({
            "state": state,
            "since": s.since,
            "lastError": s.last_error.as_ref().map(|e| &e.1),
            "lastErrorAt": s.last_error.as_ref().map(|e| e.0),
        })
    }
}

/// Reconnecting with backoff: after a failed connect, the next one waits 0.5 s, 1 s, 2 s, ...
/// up to [`MAX_RECONNECT_WAIT`]; meanwhile sends are deferred at once.
#[derive(Default)]
struct Backoff {
    failures: u32,
    retry_at: Option<Instant>,
}

impl Backoff {
    /// How long until the next connect may be tried, if it must wait.
    fn wait(&self) -> Option<Duration> {
        self.retry_at
            .and_then(|at| at.checked_duration_since(Instant::now()))
            .filter(|d| !d.is_zero())
    }

    /// A connect failed: the wait before the next.
    fn failed(&mut self) -> Duration {
        self.failures = self.failures.saturating_add(1);
        let wait = Duration::from_millis(500u64 << self.failures.min(5).saturating_sub(1))
            .min(MAX_RECONNECT_WAIT);
        self.retry_at = Some(Instant::now() + wait);
        wait
    }

    fn succeeded(&mut self) {
        *self = Backoff::default();
    }
}

/// Why a send did not reach the broker's acknowledgement.
pub(super) enum SendError {
    /// The broker cannot be reached: deferred, not counted.
    Unreachable {
        error: String,
        retry_after: Duration,
    },
    /// The broker answered and did not take the message: a failed try.
    Refused(String),
}

impl SendError {
    fn outcome(self) -> Outcome {
        match self {
            SendError::Unreachable { error, retry_after } => {
                Outcome::Unavailable { error, retry_after }
            }
            SendError::Refused(error) => Outcome::Failed {
                error,
                reply: Reply::default(),
                retry_after: None,
            },
        }
    }
}

/// One shared connection, of whichever broker (one per URL, behind an `Arc`: its size does
/// not matter).
#[allow(clippy::large_enum_variant)]
enum Link {
    Amqp(amqp::Link),
    Nats(nats::Link),
    Redis(redis::Link),
}

impl Link {
    fn health(&self) -> &Health {
        match self {
            Link::Amqp(l) => &l.health,
            Link::Nats(l) => &l.health,
            Link::Redis(l) => &l.health,
        }
    }
}

/// A broker subscription: its spec and its connection.
struct Route {
    spec: BrokerSpec,
    link: Arc<Link>,
}

/// Every broker subscription this instance is configured with. Cheap to clone.
#[derive(Clone, Default)]
pub struct Brokers {
    routes: Arc<HashMap<Uuid, Route>>,
}

impl std::fmt::Debug for Brokers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.routes.values().map(|r| &r.spec.name))
            .finish()
    }
}

impl Brokers {
    /// The sinks of these (checked) broker subscriptions. Nothing connects yet.
    pub fn new(specs: &[BrokerSpec], clock: &Clock) -> Brokers {
        let mut links: HashMap<String, Arc<Link>> = HashMap::new();
        let mut routes = HashMap::new();
        for spec in specs {
            let link = links
                .entry(spec.url.expose().to_string())
                .or_insert_with(|| {
                    let health = Health::new(clock.clone());
                    Arc::new(match spec.url.kind {
                        BrokerKind::Amqp => Link::Amqp(amqp::Link::new(spec.url.clone(), health)),
                        BrokerKind::Nats => Link::Nats(nats::Link::new(spec.url.clone(), health)),
                        BrokerKind::Redis => {
                            Link::Redis(redis::Link::new(spec.url.clone(), health))
                        }
                    })
                })
                .clone();
            routes.insert(
                spec.id(),
                Route {
                    spec: spec.clone(),
                    link,
                },
            );
        }
        Brokers {
            routes: Arc::new(routes),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.routes.is_empty()
    }

    /// Opens every connection once (at start-up, so that `/plugins` tells at once whether a
    /// broker answers). A broker that does not is tried again when a delivery needs it.
    pub async fn connect_all(&self) {
        let mut seen = Vec::new();
        for r in self.routes.values() {
            if seen.iter().any(|l| Arc::ptr_eq(l, &r.link)) {
                continue;
            }
            seen.push(r.link.clone());
            let result = match &*r.link {
                Link::Amqp(l) => l.open().await.map(drop),
                Link::Nats(l) => l.open().await.map(drop),
                Link::Redis(l) => l.ping().await,
            };
            match result {
                Ok(()) => tracing::info!(broker = %r.spec.url.shown(), "broker connected"),
                Err(SendError::Unreachable { error, .. } | SendError::Refused(error)) => {
                    tracing::warn!(broker = %r.spec.url.shown(), %error,
                        "broker unreachable at start-up; its deliveries wait until it answers");
                }
            }
        }
    }

    /// Publishes one delivery to its subscription's broker and waits for the broker's ack.
    pub(super) async fn send(&self, c: &Claimed, sub: &Subscription) -> Outcome {
        let Some(route) = self.routes.get(&sub.subscription_id.0) else {
            // Configured on another instance sharing the database (as for a plugin this
            // instance lacks): tried again, so that one delivers it.
            return Outcome::Failed {
                error: format!(
                    "this instance is not configured with the {} broker {:?}",
                    sub.kind.as_str(),
                    sub.name
                ),
                reply: Reply::default(),
                retry_after: None,
            };
        };
        let message = Message::of(c);
        let timeout = Duration::from_millis(sub.timeout_ms.max(1) as u64);
        let sent = tokio::time::timeout(timeout, async {
            match (&*route.link, &route.spec.destination) {
                (Link::Amqp(l), Destination::Queue { .. }) => {
                    l.publish(&route.spec.destination, &message).await
                }
                (Link::Nats(l), Destination::Stream { topic, partition }) => {
                    l.publish(topic, *partition, &message).await
                }
                (Link::Redis(l), Destination::Stream { topic, partition }) => {
                    l.publish(topic, *partition, &message).await
                }
                _ => Err(SendError::Refused(
                    "the broker does not serve this plugin type".into(),
                )),
            }
        })
        .await;
        match sent {
            Ok(Ok(reply)) => {
                route.link.health().up();
                Outcome::Accepted {
                    reply: Reply {
                        status: None,
                        body: Some(reply),
                    },
                }
            }
            Ok(Err(e)) => {
                if let SendError::Refused(error) = &e {
                    route.link.health().error(error);
                }
                e.outcome()
            }
            Err(_) => {
                let error = format!("no acknowledgement within {} ms", timeout.as_millis());
                route.link.health().error(&error);
                Outcome::Failed {
                    error,
                    reply: Reply::default(),
                    retry_after: None,
                }
            }
        }
    }

    /// The connection state of a broker subscription, for `/plugins`.
    pub fn describe(&self, id: Uuid) -> Option<Value> {
        let r = self.routes.get(&id)?;
        let mut connection = r.link.health().snapshot();
        connection["url"] = json!(r.spec.url.shown());
        Some(json!({
            "type": r.spec.plugin_type(),
            "broker": match r.spec.url.kind {
                BrokerKind::Amqp => "rabbitmq",
                BrokerKind::Nats => "nats-jetstream",
                BrokerKind::Redis => "redis-streams",
            },
            "connection": connection,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reconnects_back_off_to_a_cap() {
        let mut b = Backoff::default();
        assert_eq!(b.wait(), None);
        let waits: Vec<Duration> = (0..7).map(|_| b.failed()).collect();
        assert_eq!(waits[0], Duration::from_millis(500));
        assert_eq!(waits[1], Duration::from_secs(1));
        assert_eq!(waits[2], Duration::from_secs(2));
        assert_eq!(waits[6], MAX_RECONNECT_WAIT);
        assert!(b.wait().is_some());
        b.succeeded();
        assert_eq!(b.wait(), None);
    }

    #[test]
    fn health_says_connecting_connected_then_reconnecting() {
        let h = Health::new(Clock::system());
        assert_eq!(h.snapshot()["state"], "connecting");
        h.up();
        assert_eq!(h.snapshot()["state"], "connected");
        h.error("nack");
        assert_eq!(h.snapshot()["state"], "connected");
        h.down("connection refused");
        let s = h.snapshot();
        assert_eq!(s["state"], "reconnecting");
        assert_eq!(s["lastError"], "connection refused");
    }
}
