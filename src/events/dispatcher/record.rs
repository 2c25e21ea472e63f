//! A try's record: what a sink's outcome means for the delivery (delivered, retried after a
//! backoff, dead-lettered, or its subscription disabled), and recording tries in batches.

#[allow(unused_imports)]
use super::*;

/// A try as it went: when, how long, and what the receiver answered, if it did.
pub(super) struct Sent {
    started_at: Ts,
    duration_ms: i64,
    status: Option<u16>,
    response: Option<String>,
}

/// What decides whether a failed try is tried again, and when.
pub(super) struct Retry {
    /// The number of the try that failed (1 for the first).
    attempt: i32,
    max_retries: i32,
    /// The receiver's `Retry-After`, honoured on 429 and 503.
    retry_after: Option<Duration>,
}

impl Sent {
    /// With what the target answered.
    fn replied(mut self, reply: Reply) -> Self {
        self.status = reply.status;
        self.response = reply.body;
        self
    }

    pub(super) fn record(
        self,
        outcome: TryOutcome,
        error: Option<String>,
        next_attempt_at: Ts,
    ) -> TryRecord {
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

    pub(super) fn delivered(self) -> TryRecord {
        let at = self.started_at;
        self.record(TryOutcome::Delivered, None, at)
    }

    pub(super) fn dead(self, error: String) -> TryRecord {
        let at = self.started_at;
        self.record(TryOutcome::Dead, Some(error), at)
    }

    /// Pending again after a backoff (or the receiver's `Retry-After`), unless the
    /// subscription's retries are used up.
    pub(super) fn retry_or_die(self, error: String, retry: Retry) -> TryRecord {
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

impl Sent {
    /// Pending again after `wait` (the target could not be reached), whatever its retries.
    pub(super) fn deferred(self, error: String, wait: Duration) -> TryRecord {
        let wait = wait.clamp(Duration::from_millis(200), Duration::from_secs(60));
        let next = Ts::new(
            self.started_at.0
                + ChronoDuration::milliseconds(self.duration_ms + wait.as_millis() as i64),
        );
        self.record(TryOutcome::Pending, Some(error), next)
    }
}

impl Inner {
    pub(super) async fn subscriptions(&self) -> anyhow::Result<HashMap<Uuid, Subscription>> {
        Ok(repo::all_subscriptions(&self.store)
            .await?
            .into_iter()
            .map(|s| (s.subscription_id.0, s))
            .collect())
    }

    /// `subs`, read again if a claimed delivery's subscription was created after it was read.
    pub(super) async fn covering(
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
        let cap = Self::longest_timeout(subs.values().map(|s| s.timeout_ms));
        let mut fresh = self.subscriptions().await?;
        for s in fresh.values_mut() {
            s.timeout_ms = s.timeout_ms.min(cap);
        }
        Ok(fresh)
    }

    pub(super) fn longest_timeout(timeouts: impl Iterator<Item = i32>) -> i32 {
        timeouts.max().unwrap_or(10_000).max(1000)
    }

    pub(super) fn lease_until(now: Ts, timeouts: impl Iterator<Item = i32>) -> Ts {
        let longest = Self::longest_timeout(timeouts);
        // A send ends within the address check's and its own timeout; the lease outlives both
        // with room for recording the try.
        let check = CHECK_TIMEOUT.as_millis() as i64;
        Ts::new(now.0 + ChronoDuration::milliseconds(i64::from(longest) + check + 10_000))
    }

    /// Hands a finished try over for recording. If no task is recording, this one records
    /// every try waiting (its own first, after gathering for [`GATHER`] those that finish
    /// meanwhile) until none is left; otherwise its try waits for the recording task's next
    /// transaction, and this task ends.
    pub(super) async fn record(&self, done: Done) {
        {
            let mut r = lock(&self.recording);
            r.waiting.push(done);
            if r.busy {
                return;
            }
            r.busy = true;
        }
        // Should recording panic, the next finished try takes over (its tries still wait).
        let _busy = Busy(&self.recording);
        // Tries that finish within GATHER share this transaction: at a low rate each would
        // otherwise cost one of its own. Its receiver already has the event, so the wait
        // delays only the lease's release (and a later event with the same ordering key).
        // Not while a backlog is claimed: its tries come in batches, and the next claim waits
        // for their leases.
        let few = lock(&self.recording).waiting.len() < PER_SUBSCRIPTION / 2;
        if few && !lock(&self.held).backlog {
            tokio::time::sleep(GATHER).await;
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
    pub(super) async fn record_batch(&self, batch: Vec<Done>) {
        let mut keys = Vec::with_capacity(batch.len());
        let (tries, slots): (Vec<Finished>, Vec<OwnedSemaphorePermit>) = batch
            .into_iter()
            .map(|d| {
                keys.push((d.subscription, d.ordering_key));
                (d.finished, d.slot)
            })
            .unzip();
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
        self.released(keys.iter().map(|(sub, _)| *sub));
        if self.recorded(&keys) {
            self.claim_wanted
                .store(true, std::sync::atomic::Ordering::Release);
        }
        // The slots free only now, after the leases were released.
        drop(slots);
        self.finished.notify_one();
    }

    /// Sends one delivery through its sink; returns the try to record and the delivery's
    /// count of tries after it (a deferral does not count).
    pub(super) async fn deliver(
        &self,
        c: &Claimed,
        sub: Option<&Subscription>,
    ) -> anyhow::Result<(TryRecord, i32)> {
        let started_at = self.clock.now();
        let mut sent = Sent {
            started_at,
            duration_ms: 0,
            status: None,
            response: None,
        };
        let counted = c.attempt_count + 1;
        let Some(sub) = sub else {
            return Ok((
                sent.dead("the subscription no longer exists".into()),
                counted,
            ));
        };
        let started = Instant::now();
        let outcome = self.sinks.send(c, sub).await;
        sent.duration_ms = started.elapsed().as_millis() as i64;
        let kind = sub.kind.as_str();
        metrics::histogram!("event_delivery_send_duration_seconds", "kind" => kind)
            .record(started.elapsed().as_secs_f64());
        let subscription = subscription_label(&sub.name);
        let counted_as = |outcome: &'static str| {
            metrics::counter!("event_deliveries_total", "outcome" => outcome, "kind" => kind,
                "subscription" => subscription.clone())
            .increment(1);
        };
        let mut attempts = counted;
        let retry = |retry_after| Retry {
            attempt: counted,
            max_retries: sub.max_retries,
            retry_after,
        };
        let record = match outcome {
            Outcome::Accepted { reply } => {
                counted_as("delivered");
                let latency = (self.clock.now().0 - c.event_created_at.0)
                    .num_milliseconds()
                    .max(0) as f64
                    / 1000.0;
                metrics::histogram!("event_commit_to_delivery_seconds").record(latency);
                sent.replied(reply).delivered()
            }
            Outcome::Gone { reply } => {
                repo::disable(
                    &self.store,
                    sub.subscription_id.0,
                    "the receiver answered 410 Gone",
                    self.clock.now(),
                )
                .await?;
                sent.replied(reply)
                    .dead("410 Gone: subscription disabled".into())
            }
            Outcome::Failed {
                error,
                reply,
                retry_after,
            } => sent.replied(reply).retry_or_die(error, retry(retry_after)),
            Outcome::Refused { error } => sent.dead(error),
            Outcome::Skipped { reason } => {
                let at = sent.started_at;
                sent.record(TryOutcome::Skipped, Some(reason), at)
            }
            Outcome::Unavailable { error, retry_after } => {
                attempts = c.attempt_count;
                sent.deferred(error, retry_after)
            }
        };
        // A failed try leaves a line (the seed's advice for a missing event is "check the
        // server logs"); a deferral while a broker is down is the connection's business and
        // logged there, so it stays at debug here.
        let error = record.error.as_deref().unwrap_or_default();
        let class = error_class(record.status_code, error);
        match record.outcome {
            TryOutcome::Delivered => {}
            TryOutcome::Dead => {
                counted_as("dead");
                tracing::warn!(
                    subscription = %sub.name, subscription_id = %sub.subscription_id.0,
                    event = %c.name, event_id = %c.event_id.0, delivery_id = %c.delivery_id.0,
                    attempt = counted, status = record.status_code, error_class = class, error,
                    "delivery dead-lettered"
                );
            }
            TryOutcome::Pending if attempts == c.attempt_count => {
                counted_as("retry");
                tracing::debug!(subscription = %sub.name, delivery_id = %c.delivery_id.0, error,
                    "delivery deferred");
            }
            TryOutcome::Pending => {
                counted_as("retry");
                tracing::warn!(
                    subscription = %sub.name, subscription_id = %sub.subscription_id.0,
                    event = %c.name, event_id = %c.event_id.0, delivery_id = %c.delivery_id.0,
                    attempt = counted, status = record.status_code, error_class = class,
                    next_attempt_at = %record.next_attempt_at.0.to_rfc3339(), error,
                    "delivery failed; will retry"
                );
            }
            TryOutcome::Skipped => {
                counted_as("skipped");
            }
        }
        Ok((record, attempts))
    }
}

/// The kind of a failed try, for logs: `http_4xx` / `http_5xx` (the receiver answered),
/// `timeout`, `connect` (refused or unreachable), `refused` (by the service's own checks), or
/// `other`.
fn error_class(status: Option<i32>, error: &str) -> &'static str {
    let error = error.to_ascii_lowercase();
    match status {
        Some(400..=499) => "http_4xx",
        Some(500..=599) => "http_5xx",
        Some(_) => "http_other",
        None if error.contains("timed out") || error.contains("timeout") => "timeout",
        None if error.contains("connect") || error.contains("dns") => "connect",
        None if error.contains("not allowed") || error.contains("private") => "refused",
        None => "other",
    }
}

/// Distinct subscriptions named in the `subscription` label; past them, `other` (the label
/// stays bounded whatever subscriptions the API creates).
const SUBSCRIPTION_LABELS: usize = 50;

/// The `subscription` label for a subscription named `name`.
pub fn subscription_label(name: &str) -> String {
    static SEEN: std::sync::OnceLock<std::sync::Mutex<std::collections::HashSet<String>>> =
        std::sync::OnceLock::new();
    let mut seen = SEEN
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|p| p.into_inner());
    if seen.contains(name) {
        return name.to_string();
    }
    if seen.len() < SUBSCRIPTION_LABELS {
        seen.insert(name.to_string());
        return name.to_string();
    }
    "other".to_string()
}

/// While a task records: if it panics, another may take over.
struct Busy<'a>(&'a Mutex<Recording>);

impl Drop for Busy<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            lock(self.0).busy = false;
        }
    }
}
