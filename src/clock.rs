//! The one place the service reads the wall clock. Production runs on the system clock; tests
//! hold a [`ManualClock`] and move it, instead of rewriting stored times.

use std::sync::{Arc, Mutex};

use chrono::{DateTime, Duration, Utc};

use crate::store::Ts;

/// The time source of a service instance. Cheap to clone; every clone reads the same time.
#[derive(Debug, Clone, Default)]
pub struct Clock(Option<Arc<Mutex<DateTime<Utc>>>>);

impl Clock {
    /// The system's wall clock.
    pub fn system() -> Self {
        Clock(None)
    }

    /// The current time, at the precision both databases store ([`Ts`]).
    pub fn now(&self) -> Ts {
        match &self.0 {
            None => Ts::new(Utc::now()),
            Some(t) => Ts::new(*t.lock().unwrap_or_else(|p| p.into_inner())),
        }
    }
}

/// A clock that stands still until it is moved (tests).
#[derive(Debug, Clone)]
pub struct ManualClock(Arc<Mutex<DateTime<Utc>>>);

impl ManualClock {
    pub fn new(start: DateTime<Utc>) -> Self {
        ManualClock(Arc::new(Mutex::new(start)))
    }

    /// Starting at the system's current time.
    pub fn starting_now() -> Self {
        ManualClock::new(Utc::now())
    }

    /// The [`Clock`] that reads this one.
    pub fn clock(&self) -> Clock {
        Clock(Some(self.0.clone()))
    }

    /// Moves the time forward (or back, with a negative `by`).
    pub fn advance(&self, by: Duration) {
        let mut t = self.0.lock().unwrap_or_else(|p| p.into_inner());
        *t += by;
    }

    pub fn set(&self, to: DateTime<Utc>) {
        *self.0.lock().unwrap_or_else(|p| p.into_inner()) = to;
    }

    pub fn now(&self) -> Ts {
        self.clock().now()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_manual_clock_moves_only_when_told() {
        let start = DateTime::from_timestamp(1_800_000_000, 0).unwrap();
        let manual = ManualClock::new(start);
        let clock = manual.clock();
        assert_eq!(clock.now().0, start);
        manual.advance(Duration::seconds(90));
        assert_eq!(clock.now().0, start + Duration::seconds(90));
        assert_eq!(clock.now(), manual.now());
        assert!(Clock::system().now().0 > start - Duration::days(36_500));
    }
}
