//! The dispatcher: fans committed events out to their subscriptions, claims due deliveries
//! with a lease, sends each in its own task (never inside a database transaction), and records
//! every try, retrying with exponential backoff and jitter until the subscription's retries run
//! out.
//!
//! Its concurrency, all of it:
//!
//! - [`Dispatcher::step`] is one pass: a fan-out, then a claim, and one task per claimed
//!   delivery. The same code runs in production and in tests: [`Dispatcher::run`] calls `step`
//!   in a loop; tests call it themselves, at the time of the [`Clock`] they gave, and then
//!   [`Dispatcher::settle`] to wait for the sends it started.
//! - A send task holds one of `IN_FLIGHT` slots from the claim until its try is recorded
//!   (the claim also caps each subscription's share, so a slow receiver holds only its own
//!   slots). It sends, then hands its try to the recorder.
//! - The recorder is whichever send task finishes while no try is being recorded: it records
//!   every try waiting, in batches of up to `RECORD_BATCH` (one transaction each), until
//!   none is left. Tries that finish meanwhile wait and share its next transaction. No
//!   channel, no long-lived task.
//! - [`Dispatcher::run`] is woken by the store's [`CommitSignal`] (a commit with events here,
//!   or on another instance through the PostgreSQL listener task it starts), by recorded tries
//!   (slots are free, and a later event with the same ordering key may be due) and by the poll
//!   interval (retries coming due, expired leases).
//! - Every task it starts (sends, listener) is tracked; `run` returns only once they have all
//!   ended, so a shutdown that awaits it (bounded) closes the store after the last try is
//!   recorded.
//!
//! [`CommitSignal`]: crate::store::CommitSignal

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use chrono::Duration as ChronoDuration;
use rand::Rng;
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use uuid::Uuid;

use super::{safety, signing};
use crate::clock::Clock;
use crate::store::deliveries::{
    self as repo, Claimed, Finished, Subscription, SubscriptionKind, TryOutcome, TryRecord,
};
use crate::store::{Backend, Store, Ts, outbox};

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
/// The most events one fan-out takes.
const FAN_OUT_BATCH: i64 = 500;

/// Whether a [`Dispatcher::step`] claims.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claim {
    /// Claim whatever is due.
    Due,
    /// Claim only if this step's fan-out created deliveries (or failed): after a commit's
    /// wake-up, when nothing else can have come due. A commit whose events nobody subscribes
    /// to then costs one fan-out and no claim.
    IfFannedOut,
}

/// What one step did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Step {
    /// Events fanned out.
    pub fanned_out: usize,
    /// Deliveries the fan-out created.
    pub created: usize,
    /// Deliveries claimed, each now being sent by its own task; `None` when the step did not
    /// claim ([`Claim::IfFannedOut`] and nothing new).
    pub claimed: Option<usize>,
}

/// How recorded tries ended (see [`Dispatcher::settle`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tally {
    pub delivered: usize,
    /// Failed, and will be tried again.
    pub retrying: usize,
    /// Failed for good (dead-lettered).
    pub dead: usize,
}

impl Tally {
    fn count(&mut self, outcome: TryOutcome) {
        match outcome {
            TryOutcome::Delivered => self.delivered += 1,
            TryOutcome::Pending => self.retrying += 1,
            TryOutcome::Dead => self.dead += 1,
        }
    }
}

/// Delay before try `n + 1` after `n` failures: 5 s, 10 s, 20 s, ... capped at one hour,
/// each within ±20%.
pub fn backoff(failures: i32, jitter: f64) -> Duration {
    let base = 5.0 * 2f64.powi((failures - 1).clamp(0, 20));
    let secs = base.min(3600.0) * (1.0 + jitter.clamp(-0.2, 0.2));
    Duration::from_secs_f64(secs.max(1.0))
}

/// Delivers events to webhooks and internal plugins. Cheap to clone: clones are the same
/// dispatcher (one owner of leases, one set of slots and tasks).
#[derive(Clone)]
pub struct Dispatcher(Arc<Inner>);

struct Inner {
    store: Store,
    clock: Clock,
    plugins: super::plugins::Registry,
    client: reqwest::Client,
    allow_private: bool,
    /// The lease owner: this dispatcher.
    owner: String,
    /// One slot per delivery in flight, taken before its claim and freed once its try is
    /// recorded.
    slots: Arc<Semaphore>,
    /// The send tasks, and the listener while [`Dispatcher::run`] runs.
    tasks: TaskTracker,
    /// Finished tries waiting to be recorded.
    recording: Mutex<Recording>,
    /// Signalled when tries were recorded (or a send failed before its try could be): their
    /// slots are free, and a later event with the same ordering key may now be due.
    finished: Notify,
    /// How the tries recorded since the last [`Dispatcher::settle`] ended.
    tally: Mutex<Tally>,
}

/// A finished send waiting to be recorded, holding its slot until then.
struct Done {
    finished: Finished,
    slot: OwnedSemaphorePermit,
}

#[derive(Default)]
struct Recording {
    waiting: Vec<Done>,
    /// A task is recording (and will take `waiting` before it stops).
    busy: bool,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// A try as it went: when, how long, and what the receiver answered, if it did.
struct Sent {
    started_at: Ts,
    duration_ms: i64,
    status: Option<u16>,
    response: Option<String>,
}

/// What decides whether a failed try is tried again, and when.
struct Retry {
    /// The number of the try that failed (1 for the first).
    attempt: i32,
    max_retries: i32,
    /// The receiver's `Retry-After`, honoured on 429 and 503.
    retry_after: Option<Duration>,
}

impl Sent {
    fn record(self, outcome: TryOutcome, error: Option<String>, next_attempt_at: Ts) -> TryRecord {
        TryRecord {
            started_at: self.started_at,
            duration_ms: self.duration_ms,
            status_code: self.status.map(i32::from),
            error,
            response_body: self.response,
            outcome,
            next_attempt_at,
        }
    }

    fn delivered(self) -> TryRecord {
        let at = self.started_at;
        self.record(TryOutcome::Delivered, None, at)
    }

    fn dead(self, error: String) -> TryRecord {
        let at = self.started_at;
        self.record(TryOutcome::Dead, Some(error), at)
    }

    /// Pending again after a backoff (or the receiver's `Retry-After`), unless the
    /// subscription's retries are used up.
    fn retry_or_die(self, error: String, retry: Retry) -> TryRecord {
        if retry.attempt > retry.max_retries {
            return self.dead(error);
        }
        let jitter = rand::thread_rng().gen_range(-0.2..=0.2);
        let wait = retry
            .retry_after
            .map(|d| d.clamp(Duration::from_secs(1), Duration::from_secs(3600)))
            .unwrap_or_else(|| backoff(retry.attempt, jitter));
        // Counted from the end of this try, so a slow failure does not shorten the wait.
        let next = Ts::new(
            self.started_at.0
                + ChronoDuration::milliseconds(self.duration_ms + wait.as_millis() as i64),
        );
        self.record(TryOutcome::Pending, Some(error), next)
    }
}

/// What a receiver answered.
struct Response {
    status: u16,
    retry_after: Option<Duration>,
    /// Its first [`RESPONSE_KEEP`] bytes.
    body: Option<String>,
}

impl Dispatcher {
    /// A dispatcher reading the time from `clock` (the application's, or a test's).
    pub fn new(store: Store, clock: Clock, allow_private: bool) -> Self {
        Self::with_plugins(
            store,
            clock,
            allow_private,
            super::plugins::Registry::default(),
        )
    }

    /// A dispatcher that also runs these internal plugins.
    pub fn with_plugins(
        store: Store,
        clock: Clock,
        allow_private: bool,
        plugins: super::plugins::Registry,
    ) -> Self {
        Dispatcher(Arc::new(Inner {
            client: safety::client(allow_private),
            store,
            clock,
            plugins,
            allow_private,
            owner: format!("dispatcher-{}", Uuid::new_v4().simple()),
            slots: Arc::new(Semaphore::new(IN_FLIGHT)),
            tasks: TaskTracker::new(),
            recording: Mutex::new(Recording::default()),
            finished: Notify::new(),
            tally: Mutex::new(Tally::default()),
        }))
    }

    /// One step at the clock's time: fans out committed events, then (as `claim` says) claims
    /// the due deliveries there are free slots for and starts a task sending each. Does not
    /// wait for the sends: [`settle`](Self::settle) does. A failed fan-out is logged and the
    /// claim goes ahead (deliveries already due need not wait for it); a failed claim is the
    /// error.
    pub async fn step(&self, claim: Claim) -> anyhow::Result<Step> {
        let now = self.0.clock.now();
        let mut step = Step::default();
        let due = match repo::fan_out(&self.0.store, FAN_OUT_BATCH, now).await {
            Ok(f) => {
                step.fanned_out = f.events;
                step.created = f.deliveries;
                claim == Claim::Due || f.deliveries > 0
            }
            Err(e) => {
                tracing::warn!(error = %e, "fan-out failed");
                true
            }
        };
        if due {
            step.claimed = Some(self.claim_and_spawn(now).await?);
        }
        Ok(step)
    }

    /// Waits until every send started so far has finished and its try is recorded; returns
    /// how the tries recorded since the last `settle` ended. For tests and one-off passes: it
    /// takes every slot while it waits, so a running loop claims nothing meanwhile.
    pub async fn settle(&self) -> Tally {
        // Every slot is free again once every send has recorded its try.
        drop(self.0.slots.acquire_many(IN_FLIGHT as u32).await);
        std::mem::take(&mut *lock(&self.0.tally))
    }

    /// Runs until `token` is cancelled: steps when woken by a commit with events (of this
    /// instance, or of another through the PostgreSQL listener), by recorded tries, or by the
    /// poll interval. Returns once every send in flight has finished and its try is recorded
    /// (the caller bounds how long it waits).
    pub async fn run(self, token: CancellationToken) {
        let me = &self.0;
        if me.store.backend() == Backend::Postgres {
            // Commits of other instances wake this dispatcher too.
            me.tasks
                .spawn(outbox::listen(me.store.clone(), token.clone()));
        } else {
            match repo::release_leases(&me.store, me.clock.now()).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(
                    released = n,
                    "deliveries in flight at the last stop are queued again"
                ),
                Err(e) => tracing::warn!(error = %e, "releasing stale leases failed"),
            }
        }
        let signal = me.store.signal();
        // Claim when there may be something new to send: deliveries were just created, tries
        // were recorded, the last claim found work, or the poll interval passed.
        let mut claim = Claim::Due;
        let mut last_claim = Instant::now();
        loop {
            let pass = Instant::now();
            if last_claim.elapsed() >= POLL {
                claim = Claim::Due;
            }
            let stepped = self.step(claim).await;
            claim = Claim::IfFannedOut;
            match stepped {
                Ok(Step { claimed: None, .. }) => {}
                Ok(Step {
                    claimed: Some(n), ..
                }) => {
                    last_claim = Instant::now();
                    if n > 0 {
                        claim = Claim::Due;
                        continue;
                    }
                }
                Err(e) => {
                    last_claim = Instant::now();
                    tracing::warn!(error = %e, "claiming deliveries failed");
                }
            }
            let woken = tokio::select! {
                _ = token.cancelled() => break,
                _ = signal.committed() => true,
                _ = me.finished.notified() => {
                    claim = Claim::Due;
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
        // Stopping: no new claims. The sends in flight finish and record their tries; the
        // listener stops with the token.
        me.tasks.close();
        me.tasks.wait().await;
    }

    /// Claims up to the free slots' worth of due deliveries and starts a task sending each.
    async fn claim_and_spawn(&self, now: Ts) -> anyhow::Result<usize> {
        let me = &self.0;
        let free = me.slots.available_permits();
        if free == 0 {
            return Ok(0);
        }
        // Taken before the claim, so every claimed delivery has its slot (the ones left over
        // are freed on return).
        let Ok(mut slots) = me.slots.clone().try_acquire_many_owned(free as u32) else {
            return Ok(0);
        };
        let subs = me.subscriptions().await?;
        let claimed = repo::claim(
            &me.store,
            &me.owner,
            now,
            Inner::lease_until(now, &subs),
            free as i64,
            PER_SUBSCRIPTION as i64,
        )
        .await?;
        let subs = me.covering(subs, &claimed).await?;
        let n = claimed.len();
        for c in claimed {
            // The claim took at most `free`, so there is a slot for each.
            let Some(slot) = slots.split(1) else { break };
            let sub = subs.get(&c.subscription_id.0).cloned();
            me.tasks.spawn(self.clone().send_and_record(c, sub, slot));
        }
        Ok(n)
    }

    /// A send task: sends, then has the try recorded (the slot is freed after that).
    async fn send_and_record(
        self,
        c: Claimed,
        sub: Option<Subscription>,
        slot: OwnedSemaphorePermit,
    ) {
        let me = &self.0;
        match me.deliver(&c, sub.as_ref()).await {
            Ok(record) => {
                let finished = Finished {
                    delivery_id: c.delivery_id.0,
                    attempt_number: c.attempt_count + 1,
                    record,
                };
                me.record(Done { finished, slot }).await;
            }
            Err(e) => {
                // The lease runs out and the delivery is sent again.
                tracing::warn!(error = %e, "a delivery failed before its try was recorded");
                drop(slot);
                me.finished.notify_one();
            }
        }
    }
}

impl Inner {
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

    /// Hands a finished try over for recording. If no task is recording, this one records
    /// every try waiting (its own first) until none is left; otherwise its try waits for the
    /// recording task's next transaction, and this task ends.
    async fn record(&self, done: Done) {
        {
            let mut r = lock(&self.recording);
            r.waiting.push(done);
            if r.busy {
                return;
            }
            r.busy = true;
        }
        loop {
            let batch: Vec<Done> = {
                let mut r = lock(&self.recording);
                if r.waiting.is_empty() {
                    // Under the same lock as the pushes: no try is left behind.
                    r.busy = false;
                    return;
                }
                let n = r.waiting.len().min(RECORD_BATCH);
                r.waiting.drain(..n).collect()
            };
            self.record_batch(batch).await;
        }
    }

    /// Records tries in one transaction, then frees their slots.
    async fn record_batch(&self, batch: Vec<Done>) {
        let (tries, slots): (Vec<Finished>, Vec<OwnedSemaphorePermit>) =
            batch.into_iter().map(|d| (d.finished, d.slot)).unzip();
        // Recording again is harmless (a try is recorded only while its lease is held), so a
        // transient failure is retried before the leases are left to run out (their
        // deliveries would then be sent again).
        for (n, pause) in [0u64, 200, 1000, 5000].into_iter().enumerate() {
            if pause > 0 {
                tokio::time::sleep(Duration::from_millis(pause)).await;
            }
            match repo::record_tries(&self.store, &self.owner, &tries, self.clock.now()).await {
                Ok(_) => break,
                Err(e) if n == 3 => {
                    tracing::warn!(error = %e, tries = tries.len(), "recording deliveries failed");
                }
                Err(e) => tracing::debug!(error = %e, "recording deliveries failed; retrying"),
            }
        }
        {
            let mut tally = lock(&self.tally);
            for t in &tries {
                tally.count(t.record.outcome);
            }
        }
        // The slots free only now, after the leases were released.
        drop(slots);
        self.finished.notify_one();
    }

    /// Sends one delivery; returns the try to record.
    async fn deliver(&self, c: &Claimed, sub: Option<&Subscription>) -> anyhow::Result<TryRecord> {
        let started_at = self.clock.now();
        let mut sent = Sent {
            started_at,
            duration_ms: 0,
            status: None,
            response: None,
        };
        let Some(sub) = sub else {
            return Ok(sent.dead("the subscription no longer exists".into()));
        };
        let started = Instant::now();
        let result = self.send(c, sub).await;
        sent.duration_ms = started.elapsed().as_millis() as i64;
        let retry = |retry_after| Retry {
            attempt: c.attempt_count + 1,
            max_retries: sub.max_retries,
            retry_after,
        };
        let record = match result {
            Ok(r) if (200..300).contains(&r.status) => {
                metrics::counter!("event_deliveries_total", "outcome" => "delivered").increment(1);
                let latency = (self.clock.now().0 - c.event_created_at.0)
                    .num_milliseconds()
                    .max(0) as f64
                    / 1000.0;
                metrics::histogram!("event_commit_to_delivery_seconds").record(latency);
                sent.status = Some(r.status);
                sent.response = r.body;
                sent.delivered()
            }
            Ok(r) if r.status == 410 => {
                repo::disable(
                    &self.store,
                    sub.subscription_id.0,
                    "the receiver answered 410 Gone",
                    self.clock.now(),
                )
                .await?;
                sent.status = Some(r.status);
                sent.response = r.body;
                sent.dead("410 Gone: subscription disabled".into())
            }
            Ok(r) => {
                let wait = if matches!(r.status, 429 | 503) {
                    r.retry_after
                } else {
                    None
                };
                sent.status = Some(r.status);
                sent.response = r.body;
                sent.retry_or_die(format!("HTTP {}", r.status), retry(wait))
            }
            Err(SendError::Refused(e)) => sent.dead(e),
            Err(SendError::Failed(e)) => sent.retry_or_die(e, retry(None)),
        };
        match record.outcome {
            TryOutcome::Delivered => {}
            TryOutcome::Dead => {
                metrics::counter!("event_deliveries_total", "outcome" => "dead").increment(1);
            }
            TryOutcome::Pending => {
                metrics::counter!("event_deliveries_total", "outcome" => "retry").increment(1);
            }
        }
        Ok(record)
    }

    /// The HTTP request (or the plugin run). `Refused` errors are permanent (unsafe or invalid
    /// target).
    async fn send(&self, c: &Claimed, sub: &Subscription) -> Result<Response, SendError> {
        if sub.kind == SubscriptionKind::Plugin {
            // Internal plugins: run their hooks; a failure retries like an HTTP error. A plugin
            // this instance lacks (instances configured differently, mid-rollout) also retries,
            // so an instance that has it can deliver.
            return match self.plugins.run(&sub.target, &c.payload.0).await {
                Ok(()) => Ok(Response {
                    status: 200,
                    retry_after: None,
                    body: None,
                }),
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
        let timestamp = self.clock.now().0.timestamp();
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
        let body = (!kept.is_empty()).then(|| String::from_utf8_lossy(&kept).into_owned());
        Ok(Response {
            status,
            retry_after,
            body,
        })
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
