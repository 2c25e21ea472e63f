//! Drawing a rule-based paper: each rule needs its number of questions from its own pool, and
//! no question may serve two rules. Pools may overlap, so taking each rule's favourites in
//! turn can leave a later rule short while a different choice would satisfy every rule.
//!
//! [`assign`] gives each rule its most wanted free questions, as taking them in turn does,
//! and only when a rule finds none free does it move an earlier rule to another question of
//! that rule's pool (an augmenting path, as in Kuhn's bipartite matching). It fails only when
//! no assignment satisfies every rule, so the publish check and the draw agree: a test that
//! publishes can always be started.

use std::collections::{HashMap, HashSet};
use std::hash::Hash;

/// Each rule's `needs[r]` distinct questions from `ranked[r]` (its candidates, most wanted
/// first), no question used twice; `Err(r)` names the first rule that cannot be satisfied
/// once the rules before it have theirs. Within a rule, questions come in the order taken.
pub fn assign<Q: Copy + Eq + Hash>(
    ranked: &[Vec<Q>],
    needs: &[usize],
) -> Result<Vec<Vec<Q>>, usize> {
    let mut owner: HashMap<Q, usize> = HashMap::new();
    let mut taken: Vec<Vec<Q>> = vec![Vec::new(); ranked.len()];
    for (rule, &need) in needs.iter().enumerate() {
        for _ in 0..need {
            let mut seen = HashSet::new();
            if !augment(rule, ranked, &mut owner, &mut taken, &mut seen) {
                return Err(rule);
            }
        }
    }
    Ok(taken)
}

/// Finds `rule` one more question: a free one in its order of preference, else one that its
/// owner can give up for another (recursively).
fn augment<Q: Copy + Eq + Hash>(
    rule: usize,
    ranked: &[Vec<Q>],
    owner: &mut HashMap<Q, usize>,
    taken: &mut [Vec<Q>],
    seen: &mut HashSet<Q>,
) -> bool {
    let candidates = &ranked[rule];
    if let Some(&q) = candidates.iter().find(|q| !owner.contains_key(*q)) {
        owner.insert(q, rule);
        taken[rule].push(q);
        return true;
    }
    for &q in candidates {
        let Some(&other) = owner.get(&q) else {
            continue;
        };
        if other == rule || !seen.insert(q) {
            continue;
        }
        // `other` gives up `q` if it can find another question.
        if augment(other, ranked, owner, taken, seen) {
            let held = &mut taken[other];
            if let Some(at) = held.iter().position(|x| *x == q) {
                held.remove(at);
            }
            owner.insert(q, rule);
            taken[rule].push(q);
            return true;
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn disjoint_pools_take_each_rules_favourites() {
        let got = assign(&[vec![1, 2, 3], vec![4, 5]], &[2, 1]).unwrap();
        assert_eq!(got, vec![vec![1, 2], vec![4]]);
    }

    #[test]
    fn overlapping_pools_are_satisfied_when_they_can_be() {
        // Taken in turn, the first rule would take 1 and leave the second nothing.
        let got = assign(&[vec![1, 2], vec![1]], &[1, 1]).unwrap();
        assert_eq!(got, vec![vec![2], vec![1]]);
        // Two rules needing two each from three questions: impossible, the second is named.
        assert_eq!(assign(&[vec![1, 2, 3], vec![1, 2, 3]], &[2, 2]), Err(1));
        assert_eq!(assign(&[vec![1], vec![]], &[1, 1]), Err(1));
        assert_eq!(assign::<u8>(&[vec![]], &[0]), Ok(vec![vec![]]));
    }

    /// Whether some assignment exists, by trying every way (small cases only).
    fn feasible(pools: &[Vec<u8>], needs: &[usize], used: &mut Vec<u8>, rule: usize) -> bool {
        if rule == pools.len() {
            return true;
        }
        fn pick(
            pools: &[Vec<u8>],
            needs: &[usize],
            used: &mut Vec<u8>,
            rule: usize,
            from: usize,
            left: usize,
        ) -> bool {
            if left == 0 {
                return feasible(pools, needs, used, rule + 1);
            }
            for i in from..pools[rule].len() {
                let q = pools[rule][i];
                if used.contains(&q) {
                    continue;
                }
                used.push(q);
                let ok = pick(pools, needs, used, rule, i + 1, left - 1);
                used.pop();
                if ok {
                    return true;
                }
            }
            false
        }
        pick(pools, needs, used, rule, 0, needs[rule])
    }

    proptest! {
        #[test]
        fn assigns_exactly_when_an_assignment_exists(
            pools in proptest::collection::vec(proptest::collection::btree_set(0u8..8, 0..6), 1..4),
            needs_seed in proptest::collection::vec(0usize..4, 4),
        ) {
            let pools: Vec<Vec<u8>> = pools.into_iter().map(|p| p.into_iter().collect()).collect();
            let needs: Vec<usize> = needs_seed.iter().take(pools.len()).copied().collect();
            let exists = feasible(&pools, &needs, &mut Vec::new(), 0);
            match assign(&pools, &needs) {
                Ok(got) => {
                    prop_assert!(exists);
                    let mut all = HashSet::new();
                    for (r, qs) in got.iter().enumerate() {
                        prop_assert_eq!(qs.len(), needs[r]);
                        for q in qs {
                            prop_assert!(pools[r].contains(q), "from its own pool");
                            prop_assert!(all.insert(*q), "never twice");
                        }
                    }
                }
                Err(_) => prop_assert!(!exists),
            }
        }
    }
}
