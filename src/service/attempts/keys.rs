//! What an attempt's answer saves need to know and cannot change while it runs (its questions'
//! scoring keys, its paper's order, its start and deadline), kept in the process between its
//! saves.
//!
//! A question's key cannot change while an attempt that holds it is in progress: the question
//! service refuses the edit (`in_progress_with`), on every instance, since the check is in the
//! database. So the keys an attempt's first save reads from the bank stay right for all its
//! later saves, and the cache needs no invalidation between instances. The paper, the start
//! and the deadline are written once, when the attempt starts. What can change under a running
//! attempt is its test's grading type (which shapes the key: a republish may change it while an
//! attempt is paused) and time limit: the entry records both, and a save uses the entry only
//! where the database still holds them (the general path compares them after locking the
//! attempt; the one-statement save makes them conditions of its statement). A submitted
//! attempt's entry is never used again, and goes when the map is full: the least recently used
//! half.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use uuid::Uuid;

use crate::domain::enums::GradingType;
use crate::domain::scoring::QuestionKey;
use crate::store::Ts;

/// What one running attempt's saves need to know.
#[derive(Debug)]
pub struct Known {
    pub test_id: Uuid,
    /// The test's grading type the keys were made for.
    pub grading: GradingType,
    /// The test's time limit (seconds) when the keys were read.
    pub time_duration: Option<i32>,
    pub started_at: Ts,
    pub deadline_at: Option<Ts>,
    /// The scoring key of each question of the paper.
    pub keys: HashMap<Uuid, QuestionKey>,
    /// Each question's place in the paper, from 0.
    pub positions: HashMap<Uuid, usize>,
}

/// What is known of one attempt, shared by its saves.
pub type Keys = Arc<Known>;

/// How many attempts' keys are kept.
const CAPACITY: usize = 20_000;

#[derive(Default)]
pub struct KeyCache {
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    entries: HashMap<Uuid, (Keys, u64)>,
    tick: u64,
}

impl std::fmt::Debug for KeyCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "KeyCache({} attempts)", self.lock().entries.len())
    }
}

impl KeyCache {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// What is kept for this attempt, if anything.
    pub fn get(&self, attempt: Uuid) -> Option<Keys> {
        let mut inner = self.lock();
        inner.tick += 1;
        let tick = inner.tick;
        let entry = inner.entries.get_mut(&attempt)?;
        entry.1 = tick;
        Some(entry.0.clone())
    }

    /// Keeps what is known of an attempt (replacing what was kept).
    pub fn put(&self, attempt: Uuid, keys: Keys) {
        let mut inner = self.lock();
        if inner.entries.len() >= CAPACITY {
            // The least recently used half goes.
            let mut ticks: Vec<u64> = inner.entries.values().map(|e| e.1).collect();
            ticks.sort_unstable();
            let cut = ticks[ticks.len() / 2];
            inner.entries.retain(|_, e| e.1 > cut);
        }
        inner.tick += 1;
        let tick = inner.tick;
        inner.entries.insert(attempt, (keys, tick));
    }

    pub fn len(&self) -> usize {
        self.lock().entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn known(grading: GradingType) -> Keys {
        Arc::new(Known {
            test_id: Uuid::new_v4(),
            grading,
            time_duration: None,
            started_at: Ts::new(chrono::Utc::now()),
            deadline_at: None,
            keys: HashMap::new(),
            positions: HashMap::new(),
        })
    }

    #[test]
    fn keeps_by_attempt() {
        let c = KeyCache::default();
        let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
        c.put(a, known(GradingType::Quiz));
        assert_eq!(c.get(a).map(|k| k.grading), Some(GradingType::Quiz));
        c.put(a, known(GradingType::Assessment));
        assert_eq!(
            c.get(a).map(|k| k.grading),
            Some(GradingType::Assessment),
            "a second put replaces the first"
        );
        assert!(c.get(b).is_none());
        assert_eq!(c.len(), 1);
    }

    #[test]
    fn a_full_cache_drops_the_least_recently_used_half() {
        let c = KeyCache::default();
        let ids: Vec<Uuid> = (0..CAPACITY).map(|_| Uuid::new_v4()).collect();
        for id in &ids {
            c.put(*id, known(GradingType::Quiz));
        }
        // The first one is used again: it stays.
        assert!(c.get(ids[0]).is_some());
        c.put(Uuid::new_v4(), known(GradingType::Quiz));
        assert!(c.len() <= CAPACITY / 2 + 2, "{}", c.len());
        assert!(c.get(ids[0]).is_some());
        assert!(c.get(ids[1]).is_none());
    }
}
