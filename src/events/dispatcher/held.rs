//! What the dispatcher keeps in memory about its sends and the deliveries it left pending:
//! each subscription's sends in progress (its room, and whether it has stalled) and the
//! held-back deliveries a recorded try may make due, so that it claims only when a claim can
//! find something.

#[allow(unused_imports)]
use super::*;

/// A subscription's deliveries leased to this dispatcher and not yet recorded.
pub(super) struct InFlight {
    /// Being sent.
    pub(super) sends: usize,
    /// Being sent, or sent and waiting for their tries to be recorded (the leases the
    /// database counts against the subscription's room).
    pub(super) leased: usize,
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
    /// Tries recorded since the last claim: while a backlog is worked through, a claim waits
    /// until half a subscription's room is free again (or nothing is in flight), so that one
    /// claim serves many deliveries rather than each recorded batch costing one.
    pub(super) recorded_since_claim: usize,
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
            leased: 0,
            progress: Instant::now(),
        });
        if started {
            if f.sends == 0 {
                f.progress = Instant::now();
            }
            f.sends += 1;
            f.leased += 1;
        } else {
            f.sends = f.sends.saturating_sub(1);
            f.progress = Instant::now();
        }
        f.sends
    }

    /// Counts the leases of `subscriptions` (one per entry) as released: their tries were
    /// recorded, or their sends failed before they could be.
    pub(super) fn released(&self, subscriptions: impl Iterator<Item = Uuid>) {
        let mut in_flight = lock(&self.in_flight);
        for sub in subscriptions {
            if let Some(f) = in_flight.get_mut(&sub) {
                f.leased = f.leased.saturating_sub(1);
                if f.leased == 0 && f.sends == 0 {
                    in_flight.remove(&sub);
                }
            }
        }
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

    /// Notes what a claim took (see [`Held::after_claim`]).
    pub(super) fn claimed(&self, claimed: &[Claimed]) {
        let leased = claimed
            .iter()
            .map(|c| (c.subscription_id.0, c.ordering_key.as_deref()));
        lock(&self.held).after_claim(leased, &lock(&self.in_flight));
    }

    /// After tries were recorded: whether to claim now (see [`Held::after_record`]).
    pub(super) fn recorded(&self, tries: &[(Uuid, Option<String>)]) -> bool {
        lock(&self.held).after_record(tries, &lock(&self.in_flight))
    }
}

impl Held {
    /// Notes what a claim leased (subscription and ordering key of each): blocked deliveries
    /// it leased no longer wait; a claim that found none while no subscription had its room
    /// leased to this dispatcher (sending, or waiting to be recorded) leaves no backlog
    /// behind.
    pub(super) fn after_claim<'a>(
        &mut self,
        leased: impl ExactSizeIterator<Item = (Uuid, Option<&'a str>)>,
        in_flight: &HashMap<Uuid, InFlight>,
    ) {
        self.recorded_since_claim = 0;
        let found = leased.len() > 0;
        for (sub, key) in leased {
            if let Some(key) = key {
                let pair = (sub, key.to_string());
                if let Some(n) = self.blocked.get_mut(&pair) {
                    *n -= 1;
                    if *n == 0 {
                        self.blocked.remove(&pair);
                    }
                }
            }
        }
        if found {
            self.backlog = true;
        } else if in_flight.values().all(|f| f.leased < PER_SUBSCRIPTION) {
            self.backlog = false;
        }
    }

    /// After tries were recorded: whether to claim now. Yes when one of them held back a
    /// blocked delivery (the next of its key is due: its latency counts). While a backlog is
    /// worked through, once half a subscription's room has been recorded since the last
    /// claim, or nothing is being sent any more.
    pub(super) fn after_record(
        &mut self,
        tries: &[(Uuid, Option<String>)],
        in_flight: &HashMap<Uuid, InFlight>,
    ) -> bool {
        self.recorded_since_claim += tries.len();
        let unblocked = tries.iter().any(|(sub, key)| {
            key.as_ref()
                .is_some_and(|k| self.blocked.contains_key(&(*sub, k.clone())))
        });
        unblocked
            || (self.backlog
                && (self.recorded_since_claim >= PER_SUBSCRIPTION / 2
                    || in_flight.values().all(|f| f.sends == 0)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flight(sends: usize, leased: usize) -> InFlight {
        InFlight {
            sends,
            leased,
            progress: Instant::now(),
        }
    }

    #[test]
    fn a_claim_that_finds_nothing_while_the_room_waits_for_records_keeps_the_backlog() {
        let sub = Uuid::new_v4();
        let mut held = Held::default();
        let none = || std::iter::empty::<(Uuid, Option<&str>)>();
        // A claim leased the subscription's whole room; its sends have all finished and their
        // tries wait to be recorded, so the database still counts the leases.
        held.after_claim(
            vec![(sub, None); PER_SUBSCRIPTION].into_iter(),
            &HashMap::new(),
        );
        let waiting = HashMap::from([(sub, flight(0, PER_SUBSCRIPTION))]);
        held.after_claim(none(), &waiting);
        assert!(
            held.backlog,
            "the leases, not an empty queue, stopped the claim"
        );
        // Half the room recorded: claim again.
        let tries = vec![(sub, None); PER_SUBSCRIPTION / 2 - 1];
        let sending = HashMap::from([(sub, flight(1, PER_SUBSCRIPTION / 2 + 1))]);
        assert!(
            !held.after_record(&tries, &sending),
            "one claim per half room"
        );
        assert!(held.after_record(&[(sub, None)], &sending));
        // The claim found some; once nothing is being sent, any recorded try asks again.
        held.after_claim(std::iter::once((sub, None)), &sending);
        assert!(!held.after_record(&[(sub, None)], &sending));
        assert!(held.after_record(&[(sub, None)], &HashMap::new()));
        // A claim that finds nothing with the room free: the backlog is done.
        held.after_claim(none(), &HashMap::new());
        assert!(!held.backlog);
        assert!(!held.after_record(&[(sub, None)], &HashMap::new()));
    }

    #[test]
    fn a_recorded_try_of_a_blocked_key_asks_for_a_claim_at_once() {
        let sub = Uuid::new_v4();
        let mut held = Held::default();
        held.blocked.insert((sub, "attempt:1".into()), 1);
        let sending = HashMap::from([(sub, flight(5, 6))]);
        assert!(!held.after_record(&[(sub, Some("attempt:2".into()))], &sending));
        assert!(held.after_record(&[(sub, Some("attempt:1".into()))], &sending));
        held.after_claim(std::iter::once((sub, Some("attempt:1"))), &sending);
        assert!(held.blocked.is_empty());
    }
}
