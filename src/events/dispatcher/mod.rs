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
//! - The recorder is whichever send task finishes while no try is being recorded: it gathers
//!   for `GATHER` the tries that finish meanwhile, then records every try waiting, in batches
//!   of up to `RECORD_BATCH` (one transaction each), until none is left. Tries that finish
//!   meanwhile wait and share its next transaction. No channel, no long-lived task.
//! - While a backlog is claimed, tries recorded ask for the next claim once half a
//!   subscription's room is free again (or nothing is in flight), not after every batch.
//! - [`Dispatcher::run`] is woken by the store's [`CommitSignal`] (a commit with events here,
//!   or on another instance through the PostgreSQL listener task it starts), by recorded tries
//!   (slots are free, and a later event with the same ordering key may be due) and by the poll
//!   interval (retries coming due, expired leases).
//! - Every task it starts (sends, listener) is tracked; `run` returns only once they have all
//!   ended, so a shutdown that awaits it (bounded) closes the store after the last try is
//!   recorded.
//!
//! [`CommitSignal`]: crate::store::CommitSignal

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use chrono::Duration as ChronoDuration;
use rand::Rng;
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use uuid::Uuid;

use super::sinks::{Brokers, CHECK_TIMEOUT, Outcome, Reply, Sinks};
use crate::clock::Clock;
use crate::store::deliveries::{
    self as repo, Claimed, Finished, Subscription, TryOutcome, TryRecord,
};
use crate::store::{Backend, Store, Ts, outbox};

mod held;
mod record;

use held::{Held, InFlight};

/// How many deliveries a subscription may have in flight at once.
const PER_SUBSCRIPTION: usize = 64;
/// A subscription with no room whose sends have not progressed for this long is slow: the
/// fan-out leaves its deliveries pending (for a claim) rather than holding back the events of
/// the others until it has room.
const STALLED: Duration = Duration::from_millis(250);
/// How many deliveries are in flight in all.
const IN_FLIGHT: usize = 512;
/// The longest the dispatcher waits between claims (retries coming due, expired leases).
const POLL: Duration = Duration::from_millis(500);
/// The shortest time between two passes woken by commits or finished sends.
const GATHER: Duration = Duration::from_millis(4);
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
    /// Of those, the ones it leased: each now being sent by its own task.
    pub leased: usize,
    /// Deliveries claimed, each now being sent by its own task; `None` when the step did not
    /// claim ([`Claim::IfFannedOut`] and the fan-out left nothing pending).
    pub claimed: Option<usize>,
    /// The fan-out took as many events as it could read: more may be waiting.
    pub more: bool,
    /// The claim took as many deliveries as there were free slots: more may be due.
    pub filled: bool,
}

impl Step {
    /// Deliveries this step started sending (leased by the fan-out, and claimed).
    pub fn sending(&self) -> usize {
        self.leased + self.claimed.unwrap_or(0)
    }
}

/// How recorded tries ended (see [`Dispatcher::settle`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tally {
    pub delivered: usize,
    /// Failed, and will be tried again.
    pub retrying: usize,
    /// Failed for good (dead-lettered).
    pub dead: usize,
    /// Cancelled by a plugin's hook.
    pub skipped: usize,
}

impl Tally {
    fn count(&mut self, outcome: TryOutcome) {
        match outcome {
            TryOutcome::Delivered => self.delivered += 1,
            TryOutcome::Pending => self.retrying += 1,
            TryOutcome::Dead => self.dead += 1,
            TryOutcome::Skipped => self.skipped += 1,
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
    /// Where deliveries go.
    sinks: Sinks,
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
    /// Sends in progress from this dispatcher, per subscription (a try waiting to be recorded
    /// no longer counts: its receiver is done with it).
    in_flight: Mutex<HashMap<Uuid, InFlight>>,
    /// Deliveries left pending that a recorded try may make due.
    held: Mutex<Held>,
    /// A recorded try may have made a pending delivery due: the loop claims when woken.
    claim_wanted: std::sync::atomic::AtomicBool,
    /// A fan-out left events for lack of slots or room: the loop fans out when sends finish.
    fan_out_wanted: std::sync::atomic::AtomicBool,
}

/// A finished send waiting to be recorded, holding its slot until then.
struct Done {
    finished: Finished,
    slot: OwnedSemaphorePermit,
    subscription: Uuid,
    ordering_key: Option<String>,
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
        Self::with_targets(store, clock, allow_private, plugins, Brokers::default())
    }

    /// A dispatcher that also runs these internal plugins and publishes to these brokers.
    pub fn with_targets(
        store: Store,
        clock: Clock,
        allow_private: bool,
        plugins: super::plugins::Registry,
        brokers: Brokers,
    ) -> Self {
        Dispatcher(Arc::new(Inner {
            sinks: Sinks::new(clock.clone(), allow_private, plugins, brokers),
            store,
            clock,
            owner: format!("dispatcher-{}", Uuid::new_v4().simple()),
            slots: Arc::new(Semaphore::new(IN_FLIGHT)),
            tasks: TaskTracker::new(),
            recording: Mutex::new(Recording::default()),
            finished: Notify::new(),
            tally: Mutex::new(Tally::default()),
            in_flight: Mutex::new(HashMap::new()),
            held: Mutex::new(Held::default()),
            claim_wanted: std::sync::atomic::AtomicBool::new(false),
            fan_out_wanted: std::sync::atomic::AtomicBool::new(false),
        }))
    }

    /// One step at the clock's time: fans out committed events, sending at once the
    /// deliveries it could lease (free slots, the subscription's room, nothing earlier with
    /// the same ordering key undelivered), then (as `claim` says) claims the due deliveries
    /// there are free slots for and starts a task sending each. Does not wait for the sends:
    /// [`settle`](Self::settle) does. A failed fan-out is logged and the claim goes ahead
    /// (deliveries already due need not wait for it); a failed claim is the error.
    pub async fn step(&self, claim: Claim) -> anyhow::Result<Step> {
        let me = &self.0;
        let now = me.clock.now();
        let mut step = Step::default();
        // Taken before the fan-out, so every delivery it leases has its slot (the ones left
        // over are freed on return).
        me.fan_out_wanted
            .store(false, std::sync::atomic::Ordering::Release);
        let free = me.slots.available_permits();
        let mut slots = me.slots.clone().try_acquire_many_owned(free as u32).ok();
        let (room, stalled) = me.room();
        let until =
            |subs: &[Subscription]| Inner::lease_until(now, subs.iter().map(|s| s.timeout_ms));
        let lease = slots.as_ref().map(|s| repo::Lease {
            owner: &me.owner,
            budget: s.num_permits(),
            room: &room,
            stalled: &stalled,
            per_subscription: PER_SUBSCRIPTION,
            until: &until,
        });
        let due = match repo::fan_out_leasing(&me.store, FAN_OUT_BATCH, now, lease).await {
            Ok((f, leased)) => {
                step.fanned_out = f.events;
                step.created = f.deliveries;
                step.leased = leased.claimed.len();
                if step.leased > 0 {
                    let subs = leased
                        .subscriptions
                        .into_iter()
                        .map(|s| (s.subscription_id.0, s))
                        .collect();
                    if let Some(slots) = &mut slots {
                        self.spawn_sends(leased.claimed, &subs, slots);
                    }
                }
                me.hold(&leased.blocked, leased.deferred);
                step.more = leased.more;
                if leased.cut {
                    // The rest of the events go out once sends have finished.
                    me.fan_out_wanted
                        .store(true, std::sync::atomic::Ordering::Release);
                }
                // How deliveries reach their sends: leased at fan-out (the happy path), or
                // left pending (behind an earlier one of their key, or for lack of room) and
                // claimed later.
                metrics::counter!("event_deliveries_leased_total", "by" => "fan_out")
                    .increment(step.leased as u64);
                metrics::counter!("event_deliveries_held_total", "why" => "ordering")
                    .increment(leased.blocked.len() as u64);
                metrics::counter!("event_deliveries_held_total", "why" => "room")
                    .increment(leased.deferred as u64);
                claim == Claim::Due || leased.deferred > 0 || !leased.blocked.is_empty()
            }
            Err(e) => {
                tracing::warn!(error = %e, "fan-out failed");
                true
            }
        };
        drop(slots);
        if due {
            let (n, filled) = self.claim_and_spawn(now).await?;
            step.claimed = Some(n);
            step.filled = filled;
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
                Ok(step) => {
                    if step.claimed.is_some() {
                        last_claim = Instant::now();
                        if step.filled {
                            // The claim used every free slot: there may be more. (One that
                            // left slots free took all its subscriptions had room for; the
                            // next waits for recorded tries.)
                            claim = Claim::Due;
                            continue;
                        }
                    }
                    if step.more {
                        // More events may wait for their fan-out.
                        continue;
                    }
                }
                Err(e) => {
                    last_claim = Instant::now();
                    tracing::warn!(error = %e, "claiming deliveries failed");
                }
            }
            let woken = loop {
                tokio::select! {
                    _ = token.cancelled() => break None,
                    _ = signal.committed() => break Some(true),
                    _ = me.finished.notified() => {
                        // Slots are free. A claim only if a pending delivery may have come
                        // due (new commits wake through the signal).
                        if me.claim_wanted.swap(false, std::sync::atomic::Ordering::AcqRel) {
                            claim = Claim::Due;
                            break Some(true);
                        }
                        if me.fan_out_wanted.swap(false, std::sync::atomic::Ordering::AcqRel) {
                            // Events are waiting already: nothing to gather.
                            break Some(false);
                        }
                    }
                    _ = tokio::time::sleep(POLL.saturating_sub(last_claim.elapsed())) => break Some(false),
                }
            };
            let Some(woken) = woken else { break };
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
    /// Returns how many, and whether they filled the free slots.
    async fn claim_and_spawn(&self, now: Ts) -> anyhow::Result<(usize, bool)> {
        let me = &self.0;
        let free = me.slots.available_permits();
        if free == 0 {
            return Ok((0, false));
        }
        // Taken before the claim, so every claimed delivery has its slot (the ones left over
        // are freed on return).
        let Ok(mut slots) = me.slots.clone().try_acquire_many_owned(free as u32) else {
            return Ok((0, false));
        };
        let subs = me.subscriptions().await?;
        let claimed = repo::claim(
            &me.store,
            &me.owner,
            now,
            Inner::lease_until(now, subs.values().map(|s| s.timeout_ms)),
            free as i64,
            PER_SUBSCRIPTION as i64,
        )
        .await?;
        let subs = me.covering(subs, &claimed).await?;
        let n = claimed.len();
        metrics::counter!("event_deliveries_leased_total", "by" => "claim").increment(n as u64);
        metrics::counter!("event_delivery_claims_total").increment(1);
        me.claimed(&claimed);
        self.spawn_sends(claimed, &subs, &mut slots);
        Ok((n, n == free))
    }

    /// Starts a task sending each leased delivery, each with one of `slots`.
    fn spawn_sends(
        &self,
        leased: Vec<Claimed>,
        subs: &HashMap<Uuid, Subscription>,
        slots: &mut OwnedSemaphorePermit,
    ) {
        let me = &self.0;
        for c in leased {
            // Leased within the slots' number, so there is one for each.
            let Some(slot) = slots.split(1) else { break };
            let sub = subs.get(&c.subscription_id.0).cloned();
            me.sending(c.subscription_id.0, true);
            me.tasks.spawn(self.clone().send_and_record(c, sub, slot));
        }
    }

    /// A send task: sends, then has the try recorded (the slot is freed after that).
    async fn send_and_record(
        self,
        c: Claimed,
        sub: Option<Subscription>,
        slot: OwnedSemaphorePermit,
    ) {
        let me = &self.0;
        let sent = me.deliver(&c, sub.as_ref()).await;
        // The send is over: the subscription has room for another while this try waits to be
        // recorded (its slot is held until then). Events left for lack of room go out once
        // half of it is free again, without waiting for these tries to be recorded.
        if me.sending(c.subscription_id.0, false) == PER_SUBSCRIPTION / 2
            && me.fan_out_wanted.load(std::sync::atomic::Ordering::Acquire)
        {
            me.finished.notify_one();
        }
        match sent {
            Ok((record, attempt_number)) => {
                let finished = Finished {
                    delivery_id: c.delivery_id.0,
                    attempt_number,
                    record,
                };
                let done = Done {
                    finished,
                    slot,
                    subscription: c.subscription_id.0,
                    ordering_key: c.ordering_key,
                };
                me.record(done).await;
            }
            Err(e) => {
                // The lease runs out and the delivery is sent again.
                tracing::warn!(error = %e, "a delivery failed before its try was recorded");
                me.released(std::iter::once(c.subscription_id.0));
                drop(slot);
                me.finished.notify_one();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::sinks::parse_retry_after;

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
