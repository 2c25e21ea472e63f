//! Accommodations (Canvas's "moderate quiz"): what one learner gets beyond a test's rules, and
//! how it changes their time limit, attempt limit and end date.

use chrono::{DateTime, Utc};

/// The longest extra time, in minutes (a week).
pub const MAX_EXTRA_MINUTES: i32 = 7 * 24 * 60;
/// The largest time multiplier.
pub const MAX_MULTIPLIER: f64 = 10.0;
/// The most extra attempts.
pub const MAX_EXTRA_ATTEMPTS: i32 = 100;

/// One learner's accommodation at one test. Valid once built by [`Accommodation::new`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Accommodation {
    extra_time_minutes: Option<i32>,
    time_multiplier: Option<f64>,
    extra_attempts: i32,
    end_date: Option<DateTime<Utc>>,
}

impl Accommodation {
    /// Extra time as minutes or as a multiplier of the time limit (not both), extra attempts,
    /// and an end date; at least one of them.
    pub fn new(
        extra_time_minutes: Option<i32>,
        time_multiplier: Option<f64>,
        extra_attempts: i32,
        end_date: Option<DateTime<Utc>>,
    ) -> Result<Accommodation, String> {
        if extra_time_minutes.is_some() && time_multiplier.is_some() {
            return Err("Give extraTimeMinutes or timeMultiplier, not both".into());
        }
        if let Some(m) = extra_time_minutes
            && !(1..=MAX_EXTRA_MINUTES).contains(&m)
        {
            return Err(format!(
                "extraTimeMinutes must be between 1 and {MAX_EXTRA_MINUTES}"
            ));
        }
        if let Some(x) = time_multiplier
            && !(x.is_finite() && x > 1.0 && x <= MAX_MULTIPLIER)
        {
            return Err(format!(
                "timeMultiplier must be more than 1 and at most {MAX_MULTIPLIER}"
            ));
        }
        if !(0..=MAX_EXTRA_ATTEMPTS).contains(&extra_attempts) {
            return Err(format!(
                "extraAttempts must be between 0 and {MAX_EXTRA_ATTEMPTS}"
            ));
        }
        if extra_time_minutes.is_none()
            && time_multiplier.is_none()
            && extra_attempts == 0
            && end_date.is_none()
        {
            return Err(
                "An accommodation needs extraTimeMinutes, timeMultiplier, extraAttempts or endDate"
                    .into(),
            );
        }
        Ok(Accommodation {
            extra_time_minutes,
            time_multiplier,
            extra_attempts,
            end_date,
        })
    }

    pub fn extra_time_minutes(&self) -> Option<i32> {
        self.extra_time_minutes
    }

    pub fn time_multiplier(&self) -> Option<f64> {
        self.time_multiplier
    }

    pub fn extra_attempts(&self) -> i32 {
        self.extra_attempts
    }

    pub fn end_date(&self) -> Option<DateTime<Utc>> {
        self.end_date
    }
}

/// The rules one learner's attempt runs under: the test's, moved by their accommodation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Terms {
    /// Seconds; `None` or 0: no time limit.
    pub time_limit_secs: Option<i32>,
    pub attempts: i32,
    pub end_date: Option<DateTime<Utc>>,
}

impl Terms {
    /// The test's own terms moved by `accommodation`: the time limit lengthened (a test with no
    /// limit gets none), the attempts added to, and the end date moved later (a test with no
    /// end date keeps none).
    pub fn of(
        time_limit_secs: Option<i32>,
        attempts: i32,
        end_date: Option<DateTime<Utc>>,
        accommodation: Option<&Accommodation>,
    ) -> Terms {
        let Some(a) = accommodation else {
            return Terms {
                time_limit_secs,
                attempts,
                end_date,
            };
        };
        let limit = time_limit_secs.filter(|s| *s > 0).map(|s| {
            let longer = match (a.extra_time_minutes, a.time_multiplier) {
                (Some(m), _) => i64::from(s) + i64::from(m) * 60,
                (None, Some(x)) => (f64::from(s) * x).ceil() as i64,
                (None, None) => i64::from(s),
            };
            i32::try_from(longer).unwrap_or(i32::MAX)
        });
        Terms {
            time_limit_secs: limit.or(time_limit_secs),
            attempts: attempts.saturating_add(a.extra_attempts),
            end_date: match (end_date, a.end_date) {
                (Some(t), Some(l)) => Some(t.max(l)),
                (t, _) => t,
            },
        }
    }

    /// The end date the accommodation gave, when later than the test's own (answering stays
    /// open until then).
    pub fn moved_end(&self, test_end: Option<DateTime<Utc>>) -> Option<DateTime<Utc>> {
        self.end_date.filter(|e| test_end.is_some_and(|t| *e > t))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use proptest::prelude::*;

    fn at(h: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 12, 1, h, 0, 0).unwrap()
    }

    #[test]
    fn what_is_refused() {
        assert!(Accommodation::new(Some(10), Some(1.5), 0, None).is_err());
        assert!(Accommodation::new(Some(0), None, 0, None).is_err());
        assert!(Accommodation::new(Some(MAX_EXTRA_MINUTES + 1), None, 0, None).is_err());
        assert!(Accommodation::new(None, Some(1.0), 0, None).is_err());
        assert!(Accommodation::new(None, Some(f64::NAN), 0, None).is_err());
        assert!(Accommodation::new(None, Some(10.5), 0, None).is_err());
        assert!(Accommodation::new(None, None, -1, None).is_err());
        assert!(Accommodation::new(None, None, 0, None).is_err(), "nothing");
        assert!(Accommodation::new(None, None, 0, Some(at(1))).is_ok());
    }

    #[test]
    fn terms_move_as_the_accommodation_says() {
        let minutes = Accommodation::new(Some(15), None, 2, Some(at(20))).unwrap();
        let t = Terms::of(Some(600), 1, Some(at(18)), Some(&minutes));
        assert_eq!(t.time_limit_secs, Some(600 + 900));
        assert_eq!(t.attempts, 3);
        assert_eq!(t.end_date, Some(at(20)));
        assert_eq!(t.moved_end(Some(at(18))), Some(at(20)));
        // An earlier end date never shortens the test's; no end date stays none.
        let earlier = Accommodation::new(None, None, 0, Some(at(10))).unwrap();
        let t = Terms::of(None, 1, Some(at(18)), Some(&earlier));
        assert_eq!(t.end_date, Some(at(18)));
        assert_eq!(t.moved_end(Some(at(18))), None);
        assert_eq!(Terms::of(None, 1, None, Some(&earlier)).end_date, None);
        // A multiplier of a test with no time limit gives none.
        let half_more = Accommodation::new(None, Some(1.5), 0, None).unwrap();
        assert_eq!(
            Terms::of(Some(601), 1, None, Some(&half_more)).time_limit_secs,
            Some(902)
        );
        assert_eq!(
            Terms::of(None, 1, None, Some(&half_more)).time_limit_secs,
            None
        );
        assert_eq!(
            Terms::of(Some(0), 1, None, Some(&half_more)).time_limit_secs,
            Some(0)
        );
        assert_eq!(
            Terms::of(Some(60), 2, None, None),
            Terms {
                time_limit_secs: Some(60),
                attempts: 2,
                end_date: None
            }
        );
    }

    proptest! {
        /// An accommodation never takes anything away from the test's terms.
        #[test]
        fn an_accommodation_only_adds(
            limit in proptest::option::of(0i32..100_000),
            attempts in 0i32..50,
            end in proptest::option::of(0u32..24),
            minutes in proptest::option::of(1i32..=MAX_EXTRA_MINUTES),
            multiplier in proptest::option::of(1.01f64..=MAX_MULTIPLIER),
            extra in 0i32..=MAX_EXTRA_ATTEMPTS,
            later in proptest::option::of(0u32..24),
        ) {
            let Ok(a) = Accommodation::new(minutes, multiplier, extra, later.map(at)) else {
                return Ok(());
            };
            let base = Terms::of(limit, attempts, end.map(at), None);
            let moved = Terms::of(limit, attempts, end.map(at), Some(&a));
            prop_assert!(moved.attempts >= base.attempts);
            match (base.time_limit_secs.filter(|s| *s > 0), moved.time_limit_secs) {
                (Some(b), Some(m)) if minutes.is_some() || multiplier.is_some() => {
                    prop_assert!(m > b);
                }
                (Some(b), Some(m)) => prop_assert_eq!(m, b),
                (None, m) => prop_assert_eq!(m, limit),
                (Some(_), None) => prop_assert!(false, "a limit vanished"),
            }
            match (base.end_date, moved.end_date) {
                (Some(b), Some(m)) => prop_assert!(m >= b),
                (None, m) => prop_assert!(m.is_none()),
                (Some(_), None) => prop_assert!(false, "an end date vanished"),
            }
        }
    }
}
