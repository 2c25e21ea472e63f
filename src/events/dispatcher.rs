//! The dispatcher: fans committed events out to their subscriptions, claims due deliveries
//! with a lease, sends them (never inside a database transaction), and records every try,
//! retrying with exponential backoff and jitter until the subscription's retries run out.
//!
//! [`Dispatcher::dispatch_once`] is one step (tests call it with the clock they want);
//! [`Dispatcher::run`] loops, woken by the store's signal (commits with events, here or on
//! other instances) and by a periodic poll, and sends each delivery in its own task so a slow
//! receiver holds only its own slots.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Duration as ChronoDuration;
use rand::Rng;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::{safety, signing};
use crate::store::deliveries::{
    self as repo, Claimed, Finished, Subscription, SubscriptionKind, TryOutcome, TryRecord,
};
use crate::store::{Store, Ts};

/// How many deliveries a subscription may have in flight at once.
const PER_SUBSCRIPTION: usize = 32;
/// How many deliveries are in flight in all.
const IN_FLIGHT: usize = 256;
/// The longest the dispatcher waits between claims (retries coming due, expired leases).
const POLL: Duration = Duration::from_millis(500);
/// The shortest time between two passes woken by commits or finished sends.
const GATHER: Duration = Duration::from_millis(4);
/// How long resolving a webhook's host may take.
const CHECK_TIMEOUT: Duration = Duration::from_secs(5);
/// How much of a response is kept.
const RESPONSE_KEEP: usize = 1024;
/// The most tries recorded in one transaction.
const RECORD_BATCH: usize = 256;

/// A finished send waiting to be recorded, holding its in-flight slot until then.
struct Done(Finished, Option<tokio::sync::OwnedSemaphorePermit>);

/// What one step did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Outcome {
    pub fanned_out: usize,
    pub claimed: usize,
    pub delivered: usize,
    pub retrying: usize,
    pub dead: usize,
}

/// Delay before try `n + 1` after `n` failures: 5 s, 10 s, 20 s, ... capped at one hour,
/// each within ±20%.
pub fn backoff(failures: i32, jitter: f64) -> Duration {
    let base = 5.0 * 2f64.powi((failures - 1).clamp(0, 20));
    let secs = base.min(3600.0) * (1.0 + jitter.clamp(-0.2, 0.2));
    Duration::from_secs_f64(secs.max(1.0))
}

/// Delivers events to webhooks.
pub struct Dispatcher {
    store: Store,
    plugins: super::plugins::Registry,
    client: reqwest::Client,
    allow_private: bool,
    owner: String,
    in_flight: Arc<Semaphore>,
    /// Signalled when a send ends: its slot is free, and a later event with the same ordering
    /// key may now be due.
    finished: tokio::sync::Notify,
}

impl Dispatcher {
    pub fn new(store: Store, allow_private: bool) -> Self {
        Self::with_plugins(store, allow_private, super::plugins::Registry::default())
    }

    /// A dispatcher that also runs these internal plugins.
    pub fn with_plugins(
        store: Store,
        allow_private: bool,
        plugins: super::plugins::Registry,
    ) -> Self {
        let client = safety::client(allow_private);
        Dispatcher {
            store,
            plugins,
            client,
            allow_private,
            owner: format!("dispatcher-{}", Uuid::new_v4().simple()),
            in_flight: Arc::new(Semaphore::new(IN_FLIGHT)),
            finished: tokio::sync::Notify::new(),
        }
    }

    async fn subscriptions(&self) -> anyhow::Result<HashMap<Uuid, Subscription>> {
        Ok(repo::all_subscriptions(&self.store)
            .await?
            .into_iter()
            .map(|s| (s.subscription_id.0, s))
            .collect())
    }

    /// `subs`, read again if a claimed delivery's subscription was created after it was read.
    async fn covering(
        &self,
        subs: HashMap<Uuid, Subscription>,
        claimed: &[Claimed],
    ) -> anyhow::Result<HashMap<Uuid, Subscription>> {
        if claimed
            .iter()
            .all(|c| subs.contains_key(&c.subscription_id.0))
        {
            return Ok(subs);
        }
        // The leases were sized for the list read before: sends of a newer subscription are
        // held to that, so no lease runs out while its send is still going.
        let cap = Self::longest_timeout(&subs);
        let mut fresh = self.subscriptions().await?;
        for s in fresh.values_mut() {
            s.timeout_ms = s.timeout_ms.min(cap);
        }
        Ok(fresh)
    }

    fn longest_timeout(subs: &HashMap<Uuid, Subscription>) -> i32 {
        subs.values()
            .map(|s| s.timeout_ms)
            .max()
            .unwrap_or(10_000)
            .max(1000)
    }

    fn lease_until(now: Ts, subs: &HashMap<Uuid, Subscription>) -> Ts {
        let longest = Self::longest_timeout(subs);
        // A send ends within the address check's and its own timeout; the lease outlives both
        // with room for recording the try.
        let check = CHECK_TIMEOUT.as_millis() as i64;
        Ts::new(now.0 + ChronoDuration::milliseconds(i64::from(longest) + check + 10_000))
    }

    /// One step at `now`: fan out, claim what is due, send it all, record the tries.
    pub async fn dispatch_once(&self, now: Ts) -> anyhow::Result<Outcome> {
        let mut out = Outcome {
            fanned_out: repo::fan_out(&self.store, 500, now).await?.events,
            ..Outcome::default()
        };
        let subs = self.subscriptions().await?;
        let claimed = repo::claim(
            &self.store,
            &self.owner,
            now,
            Self::lease_until(now, &subs),
            100,
            PER_SUBSCRIPTION as i64,
        )
        .await?;
        let subs = self.covering(subs, &claimed).await?;
        out.claimed = claimed.len();
        let sends = claimed.into_iter().map(|c| {
            let sub = subs.get(&c.subscription_id.0).cloned();
            async move { self.deliver(c, sub, now).await }
        });
        let mut done = Vec::new();
        for result in futures::future::join_all(sends).await {
            let f = result?;
            match f.record.outcome {
                TryOutcome::Delivered => out.delivered += 1,
                TryOutcome::Dead => out.dead += 1,
                TryOutcome::Pending => out.retrying += 1,
            }
            done.push(f);
        }
        repo::record_tries(&self.store, &self.owner, &done, now).await?;
        Ok(out)
    }

    /// Sends one delivery; returns the try to record (recorded in batches by the caller).
    async fn deliver(
        &self,
        c: Claimed,
        sub: Option<Subscription>,
        now: Ts,
    ) -> anyhow::Result<Finished> {
        let attempt = c.attempt_count + 1;
        let finished = |record| Finished {
            delivery_id: c.delivery_id.0,
            attempt_number: attempt,
            record,
        };
        let Some(sub) = sub else {
            return Ok(finished(failure(
                now,
                0,
                None,
                "the subscription no longer exists".into(),
                None,
                TryOutcome::Dead,
                now,
            )));
        };
        let started = Instant::now();
        let started_at = Ts::now();
        let result = self.send(&c, &sub).await;
        let ms = started.elapsed().as_millis() as i64;
        let record = match result {
            Ok((status, retry_after, body)) if (200..300).contains(&status) => {
                metrics::counter!("event_deliveries_total", "outcome" => "delivered").increment(1);
                let latency = (Ts::now().0 - c.event_created_at.0)
                    .num_milliseconds()
                    .max(0) as f64
                    / 1000.0;
                metrics::histogram!("event_commit_to_delivery_seconds").record(latency);
                let _ = retry_after;
                TryRecord {
                    started_at,
                    duration_ms: ms,
                    status_code: Some(i32::from(status)),
                    error: None,
                    response_body: body,
                    outcome: TryOutcome::Delivered,
                    next_attempt_at: now,
                }
            }
            Ok((410, _, body)) => {
                repo::disable(
                    &self.store,
                    sub.subscription_id.0,
                    "the receiver answered 410 Gone",
                    Ts::now(),
                )
                .await?;
                failure(
                    started_at,
                    ms,
                    Some(410),
                    "410 Gone: subscription disabled".into(),
                    body,
                    TryOutcome::Dead,
                    now,
                )
            }
            Ok((status, retry_after, body)) => {
                let wait = if matches!(status, 429 | 503) {
                    retry_after
                } else {
                    None
                };
                self.retry_or_die(
                    &sub,
                    attempt,
                    started_at,
                    ms,
                    Some(status),
                    format!("HTTP {status}"),
                    body,
                    wait,
                    now,
                )
            }
            Err(SendError::Refused(e)) => {
                failure(started_at, ms, None, e, None, TryOutcome::Dead, now)
            }
            Err(SendError::Failed(e)) => {
                self.retry_or_die(&sub, attempt, started_at, ms, None, e, None, None, now)
            }
        };
        match record.outcome {
            TryOutcome::Delivered => {}
            TryOutcome::Dead => {
                metrics::counter!("event_deliveries_total", "outcome" => "dead").increment(1)
            }
            TryOutcome::Pending => {
                metrics::counter!("event_deliveries_total", "outcome" => "retry").increment(1)
            }
        }
        Ok(finished(record))
    }

    #[allow(clippy::too_many_arguments)]
    fn retry_or_die(
        &self,
        sub: &Subscription,
        attempt: i32,
        started_at: Ts,
        ms: i64,
        status: Option<u16>,
        error: String,
        body: Option<String>,
        retry_after: Option<Duration>,
        now: Ts,
    ) -> TryRecord {
        if attempt > sub.max_retries {
            return failure(
                started_at,
                ms,
                status.map(i32::from),
                error,
                body,
                TryOutcome::Dead,
                now,
            );
        }
        let jitter = rand::thread_rng().gen_range(-0.2..=0.2);
        let wait = retry_after
            .map(|d| d.clamp(Duration::from_secs(1), Duration::from_secs(3600)))
            .unwrap_or_else(|| backoff(attempt, jitter));
        // Counted from the end of this try, so a slow failure does not shorten the wait.
        let next = Ts::new(now.0 + ChronoDuration::milliseconds(ms + wait.as_millis() as i64));
        failure(
            started_at,
            ms,
            status.map(i32::from),
            error,
            body,
            TryOutcome::Pending,
            next,
        )
    }

    /// The HTTP request. `Refused` errors are permanent (unsafe or invalid target).
    async fn send(
        &self,
        c: &Claimed,
        sub: &Subscription,
    ) -> Result<(u16, Option<Duration>, Option<String>), SendError> {
        if sub.kind == SubscriptionKind::Plugin {
            // Internal plugins: run their hooks; a failure retries like an HTTP error. A plugin
            // this instance lacks (instances configured differently, mid-rollout) also retries,
            // so an instance that has it can deliver.
            return match self.plugins.run(&sub.target, &c.payload.0).await {
                Ok(()) => Ok((200, None, None)),
                Err(e) => Err(SendError::Failed(e)),
            };
        }
        let url = url::Url::parse(&sub.target)
            .map_err(|e| SendError::Refused(format!("invalid URL: {e}")))?;
        match tokio::time::timeout(CHECK_TIMEOUT, safety::check(&url, self.allow_private)).await {
            Err(_) => return Err(SendError::Failed("resolving the host timed out".into())),
            Ok(Err(safety::Unsafe::Refused(m))) => return Err(SendError::Refused(m)),
            Ok(Err(safety::Unsafe::Unresolved(m))) => return Err(SendError::Failed(m)),
            Ok(Ok(_)) => {}
        }
        let body =
            serde_json::to_vec(&c.payload.0).map_err(|e| SendError::Refused(e.to_string()))?;
        let method =
            reqwest::Method::from_bytes(sub.method.as_bytes()).unwrap_or(reqwest::Method::POST);
        let id = c.event_id.0.to_string();
        let timestamp = chrono::Utc::now().timestamp();
        let mut req = self
            .client
            .request(method, url)
            .timeout(Duration::from_millis(sub.timeout_ms.max(1) as u64))
            .header("Content-Type", "application/json")
            .header("webhook-id", &id)
            .header("webhook-timestamp", timestamp.to_string());
        if let Some(headers) = sub.headers.0.as_object() {
            for (k, v) in headers {
                if let Some(v) = v.as_str() {
                    req = req.header(k.as_str(), v);
                }
            }
        }
        if let Some(key) = sub.secret.as_deref().and_then(signing::secret_key) {
            req = req.header(
                "webhook-signature",
                signing::sign(&key, &id, timestamp, &body),
            );
        }
        let mut resp = req
            .body(body)
            .send()
            .await
            .map_err(|e| SendError::Failed(describe(e)))?;
        let status = resp.status().as_u16();
        let retry_after = resp
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| parse_retry_after(v, chrono::Utc::now()));
        let mut kept = Vec::new();
        while kept.len() < RESPONSE_KEEP {
            match resp.chunk().await {
                Ok(Some(chunk)) => {
                    kept.extend_from_slice(&chunk[..chunk.len().min(RESPONSE_KEEP - kept.len())])
                }
                _ => break,
            }
        }
        let body = (!kept.is_empty()).then(|| String::from_utf8_lossy(&kept).into_owned());
        Ok((status, retry_after, body))
    }

    /// Runs until `token` is cancelled: woken by commits, polling every half second.
    pub async fn run(self: Arc<Self>, token: CancellationToken) {
        // Commits of other instances wake this dispatcher too (PostgreSQL).
        let listening = tokio::spawn(crate::store::outbox::listen(
            self.store.clone(),
            token.clone(),
        ));
        if self.store.backend() == crate::store::Backend::Sqlite {
            match repo::release_leases(&self.store, Ts::now()).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(
                    released = n,
                    "deliveries in flight at the last stop are queued again"
                ),
                Err(e) => tracing::warn!(error = %e, "releasing stale leases failed"),
            }
        }
        // Finished sends are recorded in batches: one commit for all the tries that ended
        // while the previous batch was being written.
        let (done_tx, mut done_rx) = tokio::sync::mpsc::unbounded_channel::<Done>();
        let me = self.clone();
        let recorder = tokio::spawn(async move {
            while let Some(first) = done_rx.recv().await {
                let mut batch = vec![first];
                while batch.len() < RECORD_BATCH {
                    match done_rx.try_recv() {
                        Ok(d) => batch.push(d),
                        Err(_) => break,
                    }
                }
                let (tries, slots): (Vec<Finished>, Vec<_>) =
                    batch.into_iter().map(|Done(f, slot)| (f, slot)).unzip();
                // Recording again is harmless (a try is recorded only while its lease is
                // held), so a transient failure is retried before the leases are left to run
                // out (their deliveries would then be sent again).
                for (n, pause) in [0u64, 200, 1000, 5000].into_iter().enumerate() {
                    tokio::time::sleep(Duration::from_millis(pause)).await;
                    match repo::record_tries(&me.store, &me.owner, &tries, Ts::now()).await {
                        Ok(_) => break,
                        Err(e) if n == 3 => {
                            tracing::warn!(error = %e, tries = tries.len(), "recording deliveries failed")
                        }
                        Err(e) => {
                            tracing::debug!(error = %e, "recording deliveries failed; retrying")
                        }
                    }
                }
                // The slots free only now, after the leases were released.
                drop(slots);
                me.finished.notify_one();
            }
        });
        // Claim when there may be something new to send: deliveries were just created, a send
        // ended, or the poll interval passed (retries coming due, expired leases). A commit whose
        // events nobody subscribes to costs one fan-out and no claim.
        let mut claim_now = true;
        let mut last_claim = Instant::now();
        loop {
            let pass = Instant::now();
            let now = Ts::now();
            match repo::fan_out(&self.store, 500, now).await {
                Ok(f) if f.deliveries > 0 => claim_now = true,
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(error = %e, "fan-out failed");
                    claim_now = true;
                }
            }
            if claim_now || last_claim.elapsed() >= POLL {
                claim_now = false;
                last_claim = Instant::now();
                match self.claim_and_spawn(now, &done_tx).await {
                    Ok(n) if n > 0 => {
                        claim_now = true;
                        continue;
                    }
                    Ok(_) => {}
                    Err(e) => tracing::warn!(error = %e, "claiming deliveries failed"),
                }
            }
            let woken = tokio::select! {
                _ = token.cancelled() => break,
                _ = self.store.signal().committed() => true,
                _ = self.finished.notified() => {
                    claim_now = true;
                    true
                }
                _ = tokio::time::sleep(POLL.saturating_sub(last_claim.elapsed())) => false,
            };
            if woken {
                // Commits and finished sends that come within GATHER of the last pass share
                // the next one: under load a fan-out and a claim serve many events, not one.
                tokio::time::sleep_until((pass + GATHER).into()).await;
            }
        }
        // Stopping: no new claims. The recorder ends once every send in flight has finished
        // and its try is recorded (the caller bounds how long that may take).
        drop(done_tx);
        let _ = recorder.await;
        let _ = listening.await;
    }

    async fn claim_and_spawn(
        self: &Arc<Self>,
        now: Ts,
        done: &tokio::sync::mpsc::UnboundedSender<Done>,
    ) -> anyhow::Result<usize> {
        let free = self.in_flight.available_permits();
        if free == 0 {
            return Ok(0);
        }
        let subs = self.subscriptions().await?;
        let claimed = repo::claim(
            &self.store,
            &self.owner,
            now,
            Self::lease_until(now, &subs),
            free as i64,
            PER_SUBSCRIPTION as i64,
        )
        .await?;
        let subs = self.covering(subs, &claimed).await?;
        let n = claimed.len();
        for c in claimed {
            let sub = subs.get(&c.subscription_id.0).cloned();
            // The claim already capped each subscription's in-flight count, so a slow receiver
            // holds only its own slots and nothing waits while its lease runs.
            let global = self.in_flight.clone().try_acquire_owned().ok();
            let (me, done) = (self.clone(), done.clone());
            tokio::spawn(async move {
                match me.deliver(c, sub, Ts::now()).await {
                    Ok(f) => {
                        // The recorder outlives the loop while sends are running.
                        let _ = done.send(Done(f, global));
                    }
                    Err(e) => {
                        // The lease runs out and the delivery is sent again.
                        tracing::warn!(error = %e, "a delivery failed before its try was recorded");
                        drop(global);
                        me.finished.notify_one();
                    }
                }
            });
        }
        Ok(n)
    }
}

/// A `Retry-After` value: delay seconds or an HTTP date (a date in the past means now).
fn parse_retry_after(v: &str, now: chrono::DateTime<chrono::Utc>) -> Option<Duration> {
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

enum SendError {
    Refused(String),
    Failed(String),
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

fn failure(
    started_at: Ts,
    ms: i64,
    status: Option<i32>,
    error: String,
    body: Option<String>,
    outcome: TryOutcome,
    next: Ts,
) -> TryRecord {
    TryRecord {
        started_at,
        duration_ms: ms,
        status_code: status,
        error: Some(error),
        response_body: body,
        outcome,
        next_attempt_at: next,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_takes_seconds_or_a_date() {
        let now = chrono::DateTime::parse_from_rfc3339("2026-11-28T10:00:00Z")
            .unwrap()
            .with_timezone(&chrono::Utc);
        assert_eq!(
            parse_retry_after(" 30 ", now),
            Some(Duration::from_secs(30))
        );
        assert_eq!(
            parse_retry_after("Sat, 28 Nov 2026 10:02:00 GMT", now),
            Some(Duration::from_secs(120))
        );
        assert_eq!(
            parse_retry_after("Sat, 28 Nov 2026 09:00:00 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("soon", now), None);
        assert_eq!(parse_retry_after("-5", now), None);
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        assert_eq!(backoff(1, 0.0), Duration::from_secs(5));
        assert_eq!(backoff(2, 0.0), Duration::from_secs(10));
        assert_eq!(backoff(3, 0.0), Duration::from_secs(20));
        assert_eq!(backoff(30, 0.0), Duration::from_secs(3600));
        assert_eq!(backoff(1, 0.2), Duration::from_secs(6));
        assert_eq!(
            backoff(1, 5.0),
            Duration::from_secs(6),
            "jitter is clamped to 20%"
        );
    }
}
