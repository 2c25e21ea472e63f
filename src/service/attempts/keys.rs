//! The scoring keys of running attempts, kept in the process between their answer saves.
//!
//! A question's key cannot change while an attempt that holds it is in progress: the question
//! service refuses the edit (`in_progress_with`), on every instance, since the check is in the
//! database. So the keys an attempt's first save reads from the bank stay right for all its
//! later saves, and the cache needs no invalidation between instances. The entry is keyed by
//! the attempt and the test's grading type (which shapes the key, and which a republish could
//! change while an attempt is paused); it is consulted only after the save has locked the
//! attempt and found it in progress (a submitted attempt's entry is never used again, and goes
//! when the map is full: the least recently used half).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use uuid::Uuid;

use crate::domain::enums::GradingType;
use crate::domain::scoring::QuestionKey;

/// The keys of one attempt's questions, by question id.
pub type Keys = Arc<HashMap<Uuid, QuestionKey>>;

/// How many attempts' keys are kept.
const CAPACITY: usize = 20_000;

#[derive(Default)]
pub struct KeyCache {
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    entries: HashMap<(Uuid, GradingType), (Keys, u64)>,
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

    /// The keys kept for this attempt, if any.
    pub fn get(&self, attempt: Uuid, grading: GradingType) -> Option<Keys> {
        let mut inner = self.lock();
        inner.tick += 1;
        let tick = inner.tick;
        let entry = inner.entries.get_mut(&(attempt, grading))?;
        entry.1 = tick;
        Some(entry.0.clone())
    }

    /// Keeps an attempt's keys (replacing what was kept).
    pub fn put(&self, attempt: Uuid, grading: GradingType, keys: Keys) {
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
        inner.entries.insert((attempt, grading), (keys, tick));
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

    #[test]
    fn keeps_by_attempt_and_grading() {
        let c = KeyCache::default();
        let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
        c.put(a, GradingType::Quiz, Arc::new(HashMap::new()));
        assert!(c.get(a, GradingType::Quiz).is_some());
        assert!(
            c.get(a, GradingType::Assessment).is_none(),
            "the grading type is part of the key"
        );
        assert!(c.get(b, GradingType::Quiz).is_none());
        assert_eq!(c.len(), 1);
    }

    #[test]
    fn a_full_cache_drops_the_least_recently_used_half() {
        let c = KeyCache::default();
        let ids: Vec<Uuid> = (0..CAPACITY).map(|_| Uuid::new_v4()).collect();
        for id in &ids {
            c.put(*id, GradingType::Quiz, Arc::new(HashMap::new()));
        }
        // The first one is used again: it stays.
        assert!(c.get(ids[0], GradingType::Quiz).is_some());
        c.put(Uuid::new_v4(), GradingType::Quiz, Arc::new(HashMap::new()));
        assert!(c.len() <= CAPACITY / 2 + 2, "{}", c.len());
        assert!(c.get(ids[0], GradingType::Quiz).is_some());
        assert!(c.get(ids[1], GradingType::Quiz).is_none());
    }
}
