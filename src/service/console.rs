//! What the operator console (`/console`) reads beyond the admin API: the state of each
//! subscription with how its deliveries are doing, and the live tail of committed events.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::domain::ids::Scope;
use crate::error::AppResult;
use crate::store::deliveries::{self as repo, Subscription};
use crate::store::outbox::{self, StoredEvent};
use crate::store::{Store, Ts};

/// One subscription as the console shows it. No secret, no header value, no credential of a
/// URL.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SubscriptionState {
    pub subscription_id: Uuid,
    pub name: String,
    /// `webhook`, `plugin`, `rabbitmq`, `nats`, `redis`, ...
    pub kind: String,
    /// Where it delivers (a URL without its user and password).
    pub target: String,
    pub events: Vec<String>,
    /// `api` (this tenant's), or where the operator configured it (`env`, `plugins-file`).
    pub source: String,
    pub is_active: bool,
    /// Why it is disabled (e.g. the receiver answered 410 Gone).
    pub disabled_reason: Option<String>,
    /// A broker subscription's connection, as this instance sees it.
    #[schema(value_type = Option<Object>)]
    pub connection: Option<Value>,
    /// Of this tenant's own subscriptions only (an operator's are the operator's business).
    pub deliveries: Option<DeliveryCounts>,
}

/// How a subscription's deliveries are doing (all zero for one without deliveries).
#[derive(Debug, Default, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DeliveryCounts {
    pub backlog: i64,
    pub delivered: i64,
    pub dead: i64,
    #[schema(value_type = Option<String>, format = DateTime)]
    pub last_success_at: Option<Ts>,
    #[schema(value_type = Option<String>, format = DateTime)]
    pub last_failure_at: Option<Ts>,
    pub last_error: Option<String>,
}

impl From<repo::DeliveryHealth> for DeliveryCounts {
    fn from(h: repo::DeliveryHealth) -> DeliveryCounts {
        DeliveryCounts {
            backlog: h.backlog,
            delivered: h.delivered,
            dead: h.dead,
            last_success_at: h.last_success_at,
            last_failure_at: h.last_failure_at,
            last_error: h.last_error,
        }
    }
}

/// `user:password@` taken out of a URL.
fn without_credentials(url: &str) -> String {
    match (url.find("://"), url.find('@')) {
        (Some(scheme), Some(at)) if at > scheme && !url[scheme + 3..at].contains('/') => {
            format!("{}{}", &url[..scheme + 3], &url[at + 1..])
        }
        _ => url.to_string(),
    }
}

/// `GET /console/subscriptions`: the subscriptions the caller's scope is delivered to (its own
/// and the operator's), each with its state.
pub async fn subscriptions(
    store: &Store,
    brokers: &crate::events::sinks::Brokers,
    scope: &Scope,
) -> AppResult<Vec<SubscriptionState>> {
    let (tenant, org) = (scope.tenant.as_uuid(), scope.organisation.as_uuid());
    let subs = repo::all_subscriptions(store).await?;
    let mut health: HashMap<Uuid, repo::DeliveryHealth> = repo::health(store, tenant, org)
        .await?
        .into_iter()
        .map(|h| (h.subscription_id.0, h))
        .collect();
    let visible = subs.into_iter().filter(|s: &Subscription| {
        s.tenant_id.is_none_or(|t| t.0 == tenant) && s.organisation_id.is_none_or(|o| o.0 == org)
    });
    Ok(visible
        .map(|s| {
            let id = s.subscription_id.0;
            let own = s.tenant_id.is_some();
            let h = health.remove(&id);
            SubscriptionState {
                subscription_id: id,
                name: s.name,
                kind: s.kind.as_str().to_string(),
                target: without_credentials(&s.target),
                events: s.events.0,
                source: s.source,
                is_active: s.is_active,
                disabled_reason: s.disabled_reason,
                connection: brokers.describe(id).map(|b| b["connection"].clone()),
                deliveries: own.then(|| h.map(DeliveryCounts::from).unwrap_or_default()),
            }
        })
        .collect())
}

/// How long a gap in the events' sequence is waited for: a transaction that took a number may
/// commit after a later one (PostgreSQL), or never (a rollback leaves the number unused).
const GAP_WAIT: Duration = Duration::from_secs(2);
/// Events read per poll.
const PAGE: i64 = 500;

/// The live tail of one scope's events, in commit order as far as the sequence shows it.
#[derive(Debug)]
pub struct Tail {
    scope: Scope,
    /// Every event up to here was sent (when in scope) or given up on.
    cursor: i64,
    /// The first missing number after `cursor` and since when it is missing.
    gap: Option<(i64, Instant)>,
}

impl Tail {
    /// A tail of `scope` from now (or after `after`, an event sequence number a client saw).
    pub async fn open(store: &Store, scope: Scope, after: Option<i64>) -> AppResult<Tail> {
        let cursor = match after {
            Some(seq) => seq.max(0),
            None => outbox::last_seq(store).await?,
        };
        Ok(Tail {
            scope,
            cursor,
            gap: None,
        })
    }

    /// The scope's events committed since the last call.
    pub async fn next(&mut self, store: &Store) -> AppResult<Vec<StoredEvent>> {
        let rows = outbox::after(store, self.cursor, PAGE).await?;
        let mut out = Vec::new();
        for e in rows {
            if e.seq != self.cursor + 1 {
                let since = match self.gap {
                    Some((seq, since)) if seq == self.cursor + 1 => since,
                    _ => Instant::now(),
                };
                if since.elapsed() < GAP_WAIT {
                    self.gap = Some((self.cursor + 1, since));
                    break;
                }
            }
            self.gap = None;
            self.cursor = e.seq;
            let own = e.tenant_id.map(|t| t.0) == Some(self.scope.tenant.as_uuid())
                && e.organisation_id.map(|o| o.0) == Some(self.scope.organisation.as_uuid());
            if own {
                out.push(e);
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_are_taken_out_of_urls() {
        assert_eq!(
            without_credentials("https://user:pw@example.com/hook?x=1"),
            "https://example.com/hook?x=1"
        );
        assert_eq!(
            without_credentials("http://127.0.0.1:9/a@b"),
            "http://127.0.0.1:9/a@b"
        );
        assert_eq!(without_credentials("amqp://h/q"), "amqp://h/q");
    }
}
