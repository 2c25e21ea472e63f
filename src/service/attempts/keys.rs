//! What an attempt's answer saves need to know and cannot change while it runs (its questions'
//! scoring keys, its paper's order, its start and deadline), kept in the process between its
//! saves.
//!
//! A question's key cannot change while a test that uses it is published, nor while an
//! attempt that holds it is in progress: the question service refuses both edits, on every
//! instance, since the checks are in the database. So the keys read with a published test stay
//! right until that test is unpublished, which changes its `updatedAt`. An entry is made where
//! the questions are read anyway: at the start (the start reads them for the paper's marks) or,
//! for an attempt this instance has not seen start, at its first save. It records the test's
//! `updatedAt`, grading type and time limit as read with the keys (a republish may change the
//! last two while an attempt is paused, and they shape the key and the time), and a save uses
//! the entry only where the database still holds all three: the general path compares them
//! after locking the attempt, the one-statement save makes them conditions of its statement.
//! So the cache needs no invalidation between instances. A submitted attempt's entry is never
//! used again, and goes when the map is full: the least recently used half.

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
    /// The test's `updatedAt` when it was read with the keys: a later unpublish (which any
    /// edit of a key needs) changes it.
    pub test_updated_at: Ts,
    pub started_at: Ts,
    pub deadline_at: Option<Ts>,
    /// The scoring key of each question of the paper.
    pub keys: HashMap<Uuid, QuestionKey>,
    /// Each question's place in the paper, from 0.
    pub positions: HashMap<Uuid, usize>,
}

impl Known {
    /// Whether `test`, as the database holds it now, is the one the keys were read with.
    pub fn holds_for(&self, test: &crate::store::assessments::Test) -> bool {
        self.test_updated_at == test.updated_at
            && self.grading == test.grading_type
            && self.time_duration == test.time_duration
    }
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
            test_updated_at: Ts::new(chrono::Utc::now()),
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
