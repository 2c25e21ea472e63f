//! Webhooks: a signed HTTP request per delivery (Standard Webhooks headers), to a target that
//! is checked against private networks after DNS resolution.

use std::time::Duration;

use super::{Outcome, Reply};
use crate::clock::Clock;
use crate::events::{safety, signing};
use crate::store::deliveries::{Claimed, Subscription};

/// How long resolving a webhook's host may take.
pub const CHECK_TIMEOUT: Duration = Duration::from_secs(5);
/// How much of a response is kept.
const RESPONSE_KEEP: usize = 1024;

pub(super) struct WebhookSink {
    client: reqwest::Client,
    allow_private: bool,
    clock: Clock,
}

impl WebhookSink {
    pub(super) fn new(clock: Clock, allow_private: bool) -> Self {
        WebhookSink {
            client: safety::client(allow_private),
            allow_private,
            clock,
        }
    }

    /// The HTTP request, and what its answer means for the delivery: 2xx delivered, 410 gone,
    /// any other status or a transport error tried again (429 and 503 after their
    /// `Retry-After`), an invalid or unsafe URL never deliverable.
    pub(super) async fn send(&self, c: &Claimed, sub: &Subscription) -> Outcome {
        match self.request(c, sub).await {
            Err(Failure::Refused(error)) => Outcome::Refused { error },
            Err(Failure::Failed(error)) => Outcome::Failed {
                error,
                reply: Reply::default(),
                retry_after: None,
            },
            Ok((status, retry_after, body)) => {
                let reply = Reply {
                    status: Some(status),
                    body,
                };
                match status {
                    200..=299 => Outcome::Accepted { reply },
                    410 => Outcome::Gone { reply },
                    _ => Outcome::Failed {
                        error: format!("HTTP {status}"),
                        reply,
                        retry_after: retry_after.filter(|_| matches!(status, 429 | 503)),
                    },
                }
            }
        }
    }

    /// Sends the request; the answer's status, `Retry-After` and first bytes.
    async fn request(
        &self,
        c: &Claimed,
        sub: &Subscription,
    ) -> Result<(u16, Option<Duration>, Option<String>), Failure> {
        let url = url::Url::parse(&sub.target)
            .map_err(|e| Failure::Refused(format!("invalid URL: {e}")))?;
        match tokio::time::timeout(CHECK_TIMEOUT, safety::check(&url, self.allow_private)).await {
            Err(_) => return Err(Failure::Failed("resolving the host timed out".into())),
            Ok(Err(safety::Unsafe::Refused(m))) => return Err(Failure::Refused(m)),
            Ok(Err(safety::Unsafe::Unresolved(m))) => return Err(Failure::Failed(m)),
            Ok(Ok(_)) => {}
        }
        let body = serde_json::to_vec(&c.payload.0).map_err(|e| Failure::Refused(e.to_string()))?;
        let method =
            reqwest::Method::from_bytes(sub.method.as_bytes()).unwrap_or(reqwest::Method::POST);
        let id = c.event_id.0.to_string();
        let timestamp = self.clock.now().0.timestamp();
        let mut req = self
            .client
            .request(method, url)
            .timeout(Duration::from_millis(sub.timeout_ms.max(1) as u64))
            .header("Content-Type", "application/json")
            .header("webhook-id", &id)
            .header("webhook-timestamp", timestamp.to_string());
        if let Some(traceparent) = &c.traceparent {
            // The receiver's work joins the trace of the request that committed the event.
            req = req.header("traceparent", traceparent);
        }
        if let Some(headers) = sub.headers.0.as_object() {
            for (k, v) in headers {
                if let Some(v) = v.as_str() {
                    req = req.header(k.as_str(), v);
                }
            }
        }
        let secrets = sub.signing_secrets(self.clock.now());
        if let Some(signature) = signing::signature_header(secrets, &id, timestamp, &body) {
            req = req.header("webhook-signature", signature);
        }
        let mut resp = req
            .body(body)
            .send()
            .await
            .map_err(|e| Failure::Failed(describe(e)))?;
        let status = resp.status().as_u16();
        let retry_after = resp
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| parse_retry_after(v, self.clock.now().0));
        let mut kept = Vec::new();
        while kept.len() < RESPONSE_KEEP {
            match resp.chunk().await {
                Ok(Some(chunk)) => {
                    kept.extend_from_slice(&chunk[..chunk.len().min(RESPONSE_KEEP - kept.len())]);
                }
                _ => break,
            }
        }
        // With private networks allowed, a tenant's webhook may point at an internal page: its
        // answer is not kept, or the delivery log would let a tenant admin read it. The
        // operator's subscriptions keep theirs.
        let keep = !self.allow_private || sub.tenant_id.is_none();
        let body = (keep && !kept.is_empty()).then(|| String::from_utf8_lossy(&kept).into_owned());
        Ok((status, retry_after, body))
    }
}

/// Why a request got no answer: `Refused` is permanent (unsafe or invalid target).
enum Failure {
    Refused(String),
    Failed(String),
}

/// A `Retry-After` value: delay seconds or an HTTP date (a date in the past means now).
pub fn parse_retry_after(v: &str, now: chrono::DateTime<chrono::Utc>) -> Option<Duration> {
    let v = v.trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = chrono::DateTime::parse_from_rfc2822(v).ok()?;
    Some(
        (at.with_timezone(&chrono::Utc) - now)
            .to_std()
            .unwrap_or(Duration::ZERO),
    )
}

/// A send error for the log: its causes, without the URL (which may carry credentials).
fn describe(e: reqwest::Error) -> String {
    if e.is_timeout() {
        return "timed out".into();
    }
    let connect = e.is_connect();
    let e = e.without_url();
    let mut text = e.to_string();
    let mut cause = std::error::Error::source(&e);
    while let Some(c) = cause {
        text.push_str(": ");
        text.push_str(&c.to_string());
        cause = c.source();
    }
    if connect {
        format!("could not connect: {text}")
    } else {
        text
    }
}
