//! Rules about tests: alias slugs, and what a test needs before it can be published.

use uuid::Uuid;

use super::enums::TestType;
use super::marks::Marks;

/// Upstream's slug: lower case, only `[a-z0-9_-]` and whitespace kept, whitespace runs become
/// `-`, repeated `-` collapse, leading and trailing `-` go. Input beyond 1000 characters is cut.
pub fn slug(text: &str) -> String {
    let lowered: String = text.chars().take(1000).collect::<String>().to_lowercase();
    let mut out = String::new();
    let mut pending_dash = false;
    for c in lowered.chars() {
        if c.is_whitespace() || c == '-' {
            pending_dash = true;
        } else if c.is_ascii_alphanumeric() || c == '_' {
            if pending_dash && !out.is_empty() {
                out.push('-');
            }
            pending_dash = false;
            out.push(c);
        }
    }
    out
}

/// Candidate aliases for a base slug, tried in order until one is free: `base`, `base-2`, ...
pub fn alias_candidates(base: &str) -> impl Iterator<Item = String> + '_ {
    let base = if base.is_empty() { "test" } else { base };
    std::iter::once(base.to_string()).chain((2..=50).map(move |n| format!("{base}-{n}")))
}

/// A rule's ability to supply questions, as publishing sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleSupply {
    pub name: String,
    pub needed: u32,
    /// The questions it may draw: id and marks.
    pub pool: Vec<(Uuid, Marks)>,
}

impl RuleSupply {
    /// The sum of the `needed` lowest (or highest) marks of the pool.
    fn marks_range(&self) -> (Marks, Marks) {
        let mut marks: Vec<Marks> = self.pool.iter().map(|(_, m)| *m).collect();
        marks.sort();
        let n = (self.needed as usize).min(marks.len());
        let low = marks.iter().take(n).copied().sum();
        let high = marks.iter().rev().take(n).copied().sum();
        (low, high)
    }
}

/// What publishing looks at.
#[derive(Debug, Clone)]
pub struct PublishFacts {
    pub test_type: TestType,
    /// Marks of the (non-conditional) questions linked to the test.
    pub question_marks: Vec<Marks>,
    pub rules: Vec<RuleSupply>,
    pub total_marks: Marks,
    pub passing_marks: Marks,
}

/// What a published test will carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Publication {
    pub total_marks: Marks,
    pub question_count: u32,
}

/// Decides whether a test can be published; the error is the client-facing reason.
///
/// Every paper a learner can get must be possible and passable, and the total the test
/// announces must be the one attempts are scored out of:
/// - a rule-based test's rules must be satisfiable together (no question serves two rules;
///   [`super::draw::assign`], which the draw uses too);
/// - a declared `totalMarks` must equal the marks of the questions a learner gets, when every
///   paper has the same total; when the rules draw questions of different marks it must be
///   declared (and is the test's nominal total);
/// - the passing marks may not exceed the lowest total a paper can have.
pub fn check_publish(f: &PublishFacts) -> Result<Publication, String> {
    // (question count, lowest and highest total a paper can have)
    let (count, low, high) = match f.test_type {
        TestType::RuleBased => {
            if f.rules.is_empty() {
                return Err("Cannot publish a rule-based test without active rules".into());
            }
            for r in &f.rules {
                if r.pool.len() < r.needed as usize {
                    return Err(format!(
                        "Rule \"{}\" needs {} questions but its pool has only {}",
                        r.name,
                        r.needed,
                        r.pool.len()
                    ));
                }
            }
            let ranked: Vec<Vec<Uuid>> = f
                .rules
                .iter()
                .map(|r| r.pool.iter().map(|(id, _)| *id).collect())
                .collect();
            let needs: Vec<usize> = f.rules.iter().map(|r| r.needed as usize).collect();
            if let Err(i) = super::draw::assign(&ranked, &needs) {
                let distinct: std::collections::HashSet<&Uuid> = ranked.iter().flatten().collect();
                return Err(format!(
                    "The rules' pools overlap: rule \"{}\" cannot get its {} questions once the other rules have theirs ({} distinct questions in the pools, {} needed in all)",
                    f.rules[i].name,
                    f.rules[i].needed,
                    distinct.len(),
                    needs.iter().sum::<usize>()
                ));
            }
            let (mut low, mut high) = (Marks::ZERO, Marks::ZERO);
            for r in &f.rules {
                let (l, h) = r.marks_range();
                (low, high) = (low + l, high + h);
            }
            (needs.iter().sum::<usize>() as u32, low, high)
        }
        TestType::Plain | TestType::Generated => {
            if f.question_marks.is_empty() {
                return Err("Cannot publish a test with no questions".into());
            }
            let sum: Marks = f.question_marks.iter().copied().sum();
            (f.question_marks.len() as u32, sum, sum)
        }
    };
    let declared = (f.total_marks > Marks::ZERO).then_some(f.total_marks);
    let total = match declared {
        None if low == high => low,
        None => {
            return Err(
                "Set totalMarks before publishing: the rules draw questions of different marks"
                    .into(),
            );
        }
        Some(d) if low == high && d != low => {
            return Err(format!(
                "totalMarks ({d}) must equal the marks of the questions a learner gets ({low}): set it to {low} or leave it unset"
            ));
        }
        Some(d) => d,
    };
    if f.passing_marks > low {
        return Err(if low == high {
            format!(
                "Passing marks ({}) cannot exceed total marks ({total})",
                f.passing_marks
            )
        } else {
            format!(
                "Passing marks ({}) cannot exceed the lowest total a learner's questions can have ({low})",
                f.passing_marks
            )
        });
    }
    Ok(Publication {
        total_marks: total,
        question_count: count,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs_like_upstream() {
        assert_eq!(slug("Maths Final -- Exam!"), "maths-final-exam");
        assert_eq!(slug("  Hello   World  "), "hello-world");
        assert_eq!(slug("snake_case ok"), "snake_case-ok");
        assert_eq!(slug("!!!"), "");
        let c: Vec<String> = alias_candidates("").take(2).collect();
        assert_eq!(c, vec!["test", "test-2"]);
    }

    fn facts(marks: &[u32]) -> PublishFacts {
        PublishFacts {
            test_type: TestType::Plain,
            question_marks: marks.iter().map(|m| Marks::whole(*m)).collect(),
            rules: vec![],
            total_marks: Marks::ZERO,
            passing_marks: Marks::ZERO,
        }
    }

    #[test]
    fn plain_tests_need_questions_and_get_their_total() {
        assert!(check_publish(&facts(&[])).is_err());
        let p = check_publish(&facts(&[2, 3])).unwrap();
        assert_eq!(p.total_marks, Marks::whole(5));
        assert_eq!(p.question_count, 2);
        let mut f = facts(&[2, 3]);
        f.passing_marks = Marks::whole(6);
        assert_eq!(
            check_publish(&f).unwrap_err(),
            "Passing marks (6) cannot exceed total marks (5)"
        );
        // A declared total is the questions' total, or the test is refused.
        f.passing_marks = Marks::whole(3);
        f.total_marks = Marks::whole(10);
        assert_eq!(
            check_publish(&f).unwrap_err(),
            "totalMarks (10) must equal the marks of the questions a learner gets (5): set it to 5 or leave it unset"
        );
        f.total_marks = Marks::whole(5);
        assert_eq!(check_publish(&f).unwrap().total_marks, Marks::whole(5));
    }

    fn pool(ids: &[u128], marks: u32) -> Vec<(Uuid, Marks)> {
        ids.iter()
            .map(|i| (Uuid::from_u128(*i), Marks::whole(marks)))
            .collect()
    }

    fn rule(name: &str, needed: u32, pool: Vec<(Uuid, Marks)>) -> RuleSupply {
        RuleSupply {
            name: name.into(),
            needed,
            pool,
        }
    }

    #[test]
    fn rules_must_be_satisfiable() {
        let mut f = facts(&[]);
        f.test_type = TestType::RuleBased;
        assert!(check_publish(&f).is_err());
        f.rules = vec![rule("easy", 3, pool(&[1, 2], 1))];
        assert_eq!(
            check_publish(&f).unwrap_err(),
            "Rule \"easy\" needs 3 questions but its pool has only 2"
        );
        f.rules[0].pool = pool(&[1, 2, 3, 4, 5], 1);
        let p = check_publish(&f).unwrap();
        assert_eq!((p.question_count, p.total_marks), (3, Marks::whole(3)));
        // Questions of different marks: the total must be declared, and the passing marks
        // must be within reach of the lowest paper.
        f.rules[0].pool.push((Uuid::from_u128(9), Marks::whole(4)));
        assert!(check_publish(&f).is_err());
        f.total_marks = Marks::whole(7);
        assert_eq!(check_publish(&f).unwrap().total_marks, Marks::whole(7));
        f.passing_marks = Marks::whole(4);
        assert_eq!(
            check_publish(&f).unwrap_err(),
            "Passing marks (4) cannot exceed the lowest total a learner's questions can have (3)"
        );
    }

    #[test]
    fn rules_must_be_satisfiable_together() {
        let mut f = facts(&[]);
        f.test_type = TestType::RuleBased;
        // Each pool alone is big enough; together they hold 3 questions for 4 places.
        f.rules = vec![
            rule("a", 2, pool(&[1, 2, 3], 1)),
            rule("b", 2, pool(&[2, 3], 1)),
        ];
        assert_eq!(
            check_publish(&f).unwrap_err(),
            "The rules' pools overlap: rule \"b\" cannot get its 2 questions once the other rules have theirs (3 distinct questions in the pools, 4 needed in all)"
        );
        // Overlapping but satisfiable (a takes 1, b takes 2 and 3).
        f.rules[0].needed = 1;
        assert_eq!(check_publish(&f).unwrap().question_count, 3);
    }
}
