//! Attempt rules: seeded shuffling and rule selection, deadlines, and grading across
//! attempts. Pure: the seed, the clock and the data are passed in.

use chrono::{DateTime, Duration, Utc};

use super::enums::{AttemptsGrading, SelectionStrategy};
use super::marks::Marks;

/// A small deterministic generator (SplitMix64): the same seed gives the same paper on every
/// machine and every version, which a library RNG does not promise.
#[derive(Debug, Clone)]
pub struct SeededRng(u64);

impl SeededRng {
    pub fn new(seed: u64) -> Self {
        SeededRng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (n > 0), without modulo bias.
    pub fn below(&mut self, n: u64) -> u64 {
        let zone = u64::MAX - (u64::MAX % n);
        loop {
            let v = self.next_u64();
            if v < zone {
                return v % n;
            }
        }
    }

    /// Uniform in `(0, 1]`.
    pub fn unit(&mut self) -> f64 {
        ((self.next_u64() >> 11) as f64 + 1.0) / (1u64 << 53) as f64
    }
}

/// Fisher-Yates shuffle with `rng`.
pub fn shuffle<T>(items: &mut [T], rng: &mut SeededRng) {
    for i in (1..items.len()).rev() {
        let j = rng.below(i as u64 + 1) as usize;
        items.swap(i, j);
    }
}

/// Picks `n` of `pool` (ids with their marks) by `strategy`: the first `n` of [`rank`].
/// `None` when the pool is too small.
pub fn select<T: Clone>(
    pool: &[(T, Marks)],
    n: usize,
    strategy: SelectionStrategy,
    rng: &mut SeededRng,
) -> Option<Vec<T>> {
    if pool.len() < n {
        return None;
    }
    Some(rank(pool, strategy, rng).into_iter().take(n).collect())
}

/// Orders `pool` (ids with their marks) by how much `strategy` wants each: `sequential` in
/// pool order; `random` uniformly shuffled; `weighted` so that a question's chance of coming
/// early grows with its marks (Efraimidis-Spirakis keys). Taking the first `n` is the draw.
pub fn rank<T: Clone>(
    pool: &[(T, Marks)],
    strategy: SelectionStrategy,
    rng: &mut SeededRng,
) -> Vec<T> {
    match strategy {
        SelectionStrategy::Sequential => pool.iter().map(|(t, _)| t.clone()).collect(),
        SelectionStrategy::Random => {
            let mut idx: Vec<usize> = (0..pool.len()).collect();
            shuffle(&mut idx, rng);
            idx.into_iter().map(|i| pool[i].0.clone()).collect()
        }
        SelectionStrategy::Weighted => {
            let mut keyed: Vec<(f64, usize)> = pool
                .iter()
                .enumerate()
                .map(|(i, (_, m))| {
                    let w = (m.hundredths().max(1)) as f64;
                    (rng.unit().powf(1.0 / w), i)
                })
                .collect();
            keyed.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
            keyed.into_iter().map(|(_, i)| pool[i].0.clone()).collect()
        }
    }
}

/// When an attempt must be submitted: start + `time_duration` seconds, capped by the test's
/// end date. `None`: no limit.
pub fn deadline(
    started: DateTime<Utc>,
    time_duration_secs: Option<i32>,
    end_date: Option<DateTime<Utc>>,
) -> Option<DateTime<Utc>> {
    let by_duration = time_duration_secs
        .filter(|s| *s > 0)
        .map(|s| started + Duration::seconds(i64::from(s)));
    match (by_duration, end_date) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// Whole seconds left before `deadline` (0 once passed).
pub fn seconds_remaining(now: DateTime<Utc>, deadline: DateTime<Utc>) -> i64 {
    (deadline - now).num_seconds().max(0)
}

/// A scored attempt, for grading across attempts.
#[derive(Debug, Clone, PartialEq)]
pub struct ScoredAttempt<Id> {
    pub id: Id,
    pub number: i32,
    pub score: Marks,
}

/// The attempt that grades the learner and its score. `average` has no single attempt: it
/// returns the latest attempt's id with the mean score (rounded half up to hundredths).
/// Attempts without a score must not be passed in.
pub fn grade<Id: Clone>(
    method: AttemptsGrading,
    scored: &[ScoredAttempt<Id>],
) -> Option<(Id, Marks)> {
    let latest = scored.iter().max_by_key(|a| a.number)?;
    Some(match method {
        AttemptsGrading::FirstAttempt => {
            let a = scored.iter().min_by_key(|a| a.number)?;
            (a.id.clone(), a.score)
        }
        AttemptsGrading::LastAttempt => (latest.id.clone(), latest.score),
        AttemptsGrading::Highest => {
            // Ties go to the earlier attempt.
            let a = scored
                .iter()
                .max_by(|x, y| x.score.cmp(&y.score).then(y.number.cmp(&x.number)))?;
            (a.id.clone(), a.score)
        }
        AttemptsGrading::Average => {
            let n = scored.len() as i64;
            let sum: i64 = scored.iter().map(|a| a.score.hundredths()).sum();
            let avg = (2 * sum + n) / (2 * n);
            (
                latest.id.clone(),
                Marks::from_hundredths(avg).unwrap_or(Marks::MAX),
            )
        }
    })
}

/// Score as a percentage of total marks, two decimals (0 when the total is 0).
pub fn percentage(score: Marks, total: Marks) -> f64 {
    if total == Marks::ZERO {
        return 0.0;
    }
    let basis_points =
        (score.hundredths() * 10_000 * 2 + total.hundredths()) / (2 * total.hundredths());
    basis_points as f64 / 100.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use proptest::prelude::*;

    #[test]
    fn same_seed_same_order() {
        let mut a: Vec<u32> = (0..20).collect();
        let mut b = a.clone();
        shuffle(&mut a, &mut SeededRng::new(42));
        shuffle(&mut b, &mut SeededRng::new(42));
        assert_eq!(a, b);
        let mut c: Vec<u32> = (0..20).collect();
        shuffle(&mut c, &mut SeededRng::new(43));
        assert_ne!(a, c);
        let mut sorted = a.clone();
        sorted.sort();
        assert_eq!(sorted, (0..20).collect::<Vec<_>>());
    }

    #[test]
    fn selection_strategies() {
        let pool: Vec<(u32, Marks)> = (0..10).map(|i| (i, Marks::whole(i + 1))).collect();
        let mut rng = SeededRng::new(7);
        assert_eq!(
            select(&pool, 3, SelectionStrategy::Sequential, &mut rng).unwrap(),
            vec![0, 1, 2]
        );
        let r = select(&pool, 4, SelectionStrategy::Random, &mut rng).unwrap();
        assert_eq!(r.len(), 4);
        assert_eq!(r.iter().collect::<std::collections::BTreeSet<_>>().len(), 4);
        assert!(select(&pool, 11, SelectionStrategy::Random, &mut rng).is_none());
        // Weighted favours high marks: over many draws the heaviest wins more often.
        let mut heavy = 0;
        for seed in 0..500 {
            let r = select(
                &pool,
                1,
                SelectionStrategy::Weighted,
                &mut SeededRng::new(seed),
            )
            .unwrap();
            if r[0] >= 5 {
                heavy += 1;
            }
        }
        // Items 5..=9 carry 40 of the 55 marks (73%); a uniform draw would give 50%.
        assert!(heavy > 320, "{heavy}");
    }

    #[test]
    fn deadlines_and_remaining_time() {
        let start = Utc.with_ymd_and_hms(2026, 1, 1, 10, 0, 0).unwrap();
        assert_eq!(deadline(start, None, None), None);
        assert_eq!(
            deadline(start, Some(600), None),
            Some(start + Duration::seconds(600))
        );
        let end = start + Duration::seconds(60);
        assert_eq!(
            deadline(start, Some(600), Some(end)),
            Some(end),
            "capped by endDate"
        );
        assert_eq!(seconds_remaining(start, start + Duration::seconds(90)), 90);
        assert_eq!(seconds_remaining(start + Duration::seconds(100), start), 0);
    }

    #[test]
    fn grading_methods() {
        let a = |id: u8, number: i32, h: i64| ScoredAttempt {
            id,
            number,
            score: Marks::from_hundredths(h).unwrap(),
        };
        let all = [a(1, 1, 500), a(2, 2, 900), a(3, 3, 700)];
        assert_eq!(
            grade(AttemptsGrading::FirstAttempt, &all),
            Some((1, Marks::from_hundredths(500).unwrap()))
        );
        assert_eq!(
            grade(AttemptsGrading::LastAttempt, &all),
            Some((3, Marks::from_hundredths(700).unwrap()))
        );
        assert_eq!(
            grade(AttemptsGrading::Highest, &all),
            Some((2, Marks::from_hundredths(900).unwrap()))
        );
        assert_eq!(
            grade(AttemptsGrading::Average, &all),
            Some((3, Marks::from_hundredths(700).unwrap()))
        );
        assert_eq!(grade::<u8>(AttemptsGrading::Average, &[]), None);
        assert_eq!(percentage(Marks::whole(1), Marks::whole(3)), 33.33);
        assert_eq!(percentage(Marks::whole(2), Marks::ZERO), 0.0);
    }

    proptest! {
        #[test]
        fn shuffle_is_a_permutation(seed in any::<u64>(), n in 0usize..40) {
            let mut v: Vec<usize> = (0..n).collect();
            shuffle(&mut v, &mut SeededRng::new(seed));
            v.sort();
            prop_assert_eq!(v, (0..n).collect::<Vec<_>>());
        }
    }
}
