//! What the dispatcher keeps in memory about its sends and the deliveries it left pending:
//! each subscription's sends in progress (its room, and whether it has stalled) and the
//! held-back deliveries a recorded try may make due, so that it claims only when a claim can
//! find something.

#[allow(unused_imports)]
use super::*;

/// A subscription's sends in progress from this dispatcher.
pub(super) struct InFlight {
    pub(super) sends: usize,
    /// When one of them last finished (or the first started).
    pub(super) progress: Instant,
}

/// What this dispatcher knows of deliveries left pending, so that it claims after recorded
/// tries only when one of them may have become due (a claim that finds nothing still costs a
/// query).
#[derive(Default)]
pub(super) struct Held {
    /// (subscription, ordering key) -> how many deliveries its fan-outs left behind an earlier
    /// undelivered one with that key and no claim has taken yet: when a try with that key is
    /// recorded, the next one may be due.
    pub(super) blocked: HashMap<(Uuid, String), usize>,
    /// Deliveries were left pending for lack of slots or room, or a claim found some: claim
    /// again after tries are recorded, until a claim with free slots and nothing in flight
    /// finds none.
    pub(super) backlog: bool,
}

impl Inner {
    /// How many more sends each subscription with sends in progress may have from this
    /// dispatcher, and which of those without room are stalled (none of their sends has
    /// finished for [`STALLED`]).
    pub(super) fn room(&self) -> (HashMap<Uuid, usize>, HashSet<Uuid>) {
        let in_flight = lock(&self.in_flight);
        let room = in_flight
            .iter()
            .map(|(s, f)| (*s, PER_SUBSCRIPTION.saturating_sub(f.sends)))
            .collect();
        let stalled = in_flight
            .iter()
            .filter(|(_, f)| f.sends >= PER_SUBSCRIPTION && f.progress.elapsed() >= STALLED)
            .map(|(s, _)| *s)
            .collect();
        (room, stalled)
    }

    /// Counts one more (or one fewer) send in progress for `subscription`.
    /// Returns how many are in progress now.
    pub(super) fn sending(&self, subscription: Uuid, started: bool) -> usize {
        let mut in_flight = lock(&self.in_flight);
        let f = in_flight.entry(subscription).or_insert(InFlight {
            sends: 0,
            progress: Instant::now(),
        });
        if started {
            if f.sends == 0 {
                f.progress = Instant::now();
            }
            f.sends += 1;
        } else {
            f.sends = f.sends.saturating_sub(1);
            f.progress = Instant::now();
            if f.sends == 0 {
                in_flight.remove(&subscription);
                return 0;
            }
        }
        f.sends
    }

    /// Notes what a fan-out left pending.
    pub(super) fn hold(&self, blocked: &[(Uuid, String)], deferred: usize) {
        let mut held = lock(&self.held);
        for pair in blocked {
            *held.blocked.entry(pair.clone()).or_default() += 1;
        }
        if deferred > 0 {
            held.backlog = true;
        }
    }

    /// Notes what a claim took: blocked deliveries it leased no longer wait; a claim that
    /// found none, with no subscription at its room, leaves no backlog behind.
    pub(super) fn claimed(&self, claimed: &[Claimed]) {
        let mut held = lock(&self.held);
        for c in claimed {
            if let Some(key) = &c.ordering_key {
                let pair = (c.subscription_id.0, key.clone());
                if let Some(n) = held.blocked.get_mut(&pair) {
                    *n -= 1;
                    if *n == 0 {
                        held.blocked.remove(&pair);
                    }
                }
            }
        }
        if !claimed.is_empty() {
            held.backlog = true;
        } else if lock(&self.in_flight)
            .values()
            .all(|f| f.sends < PER_SUBSCRIPTION)
        {
            held.backlog = false;
        }
    }

    /// After tries were recorded: whether a pending delivery may now be due (one of them
    /// held back a blocked delivery, or a backlog is being worked through).
    pub(super) fn recorded(&self, tries: &[(Uuid, Option<String>)]) -> bool {
        let held = lock(&self.held);
        held.backlog
            || tries.iter().any(|(sub, key)| {
                key.as_ref()
                    .is_some_and(|k| held.blocked.contains_key(&(*sub, k.clone())))
            })
    }
}
