//! Rules about tests: alias slugs, and what a test needs before it can be published.

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
    pub available: u32,
    /// The marks of every candidate, when they are all equal.
    pub uniform_marks: Option<Marks>,
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
pub fn check_publish(f: &PublishFacts) -> Result<Publication, String> {
    let (count, computed) = match f.test_type {
        TestType::RuleBased => {
            if f.rules.is_empty() {
                return Err("Cannot publish a rule-based test without active rules".into());
            }
            let mut count = 0u32;
            let mut total = Some(Marks::ZERO);
            for r in &f.rules {
                if r.available < r.needed {
                    return Err(format!(
                        "Rule \"{}\" needs {} questions but its pool has only {}",
                        r.name, r.needed, r.available
                    ));
                }
                count += r.needed;
                total = match (total, r.uniform_marks) {
                    (Some(t), Some(m)) => Some(
                        t + Marks::from_hundredths(m.hundredths() * i64::from(r.needed))
                            .unwrap_or(Marks::MAX),
                    ),
                    _ => None,
                };
            }
            (count, total)
        }
        TestType::Plain | TestType::Generated => {
            if f.question_marks.is_empty() {
                return Err("Cannot publish a test with no questions".into());
            }
            (
                f.question_marks.len() as u32,
                Some(f.question_marks.iter().copied().sum()),
            )
        }
    };
    let total = if f.total_marks > Marks::ZERO {
        f.total_marks
    } else {
        computed.ok_or_else(|| {
            "Set totalMarks before publishing: the rules draw questions of different marks"
                .to_string()
        })?
    };
    if f.passing_marks > total {
        return Err(format!(
            "Passing marks ({}) cannot exceed total marks ({total})",
            f.passing_marks
        ));
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
        f.total_marks = Marks::whole(10);
        assert_eq!(check_publish(&f).unwrap().total_marks, Marks::whole(10));
    }

    #[test]
    fn rules_must_be_satisfiable() {
        let mut f = facts(&[]);
        f.test_type = TestType::RuleBased;
        assert!(check_publish(&f).is_err());
        f.rules = vec![RuleSupply {
            name: "easy".into(),
            needed: 3,
            available: 2,
            uniform_marks: Some(Marks::whole(1)),
        }];
        assert_eq!(
            check_publish(&f).unwrap_err(),
            "Rule \"easy\" needs 3 questions but its pool has only 2"
        );
        f.rules[0].available = 5;
        let p = check_publish(&f).unwrap();
        assert_eq!((p.question_count, p.total_marks), (3, Marks::whole(3)));
        f.rules[0].uniform_marks = None;
        assert!(check_publish(&f).is_err());
        f.total_marks = Marks::whole(7);
        assert_eq!(check_publish(&f).unwrap().total_marks, Marks::whole(7));
    }
}
