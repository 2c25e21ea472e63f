//! Unit and property tests of scoring.

use super::*;
use proptest::prelude::*;

fn id(n: u8) -> Uuid {
    Uuid::from_bytes([n; 16])
}

fn opt(n: u8, correct: bool, marks: i64) -> KeyOption {
    KeyOption {
        id: id(n),
        text: format!("opt{n}"),
        is_correct: correct,
        marks: Marks::from_hundredths(marks).unwrap(),
        blank_index: None,
        match_with: None,
        case_sensitive: false,
    }
}

fn key(qtype: QuestionType, marks: i64, partial: bool, options: Vec<KeyOption>) -> QuestionKey {
    QuestionKey {
        qtype,
        grading_type: GradingType::Quiz,
        marks: Marks::from_hundredths(marks).unwrap(),
        partial,
        multi_select: false,
        case_sensitive: false,
        min_length: None,
        max_length: None,
        word_limit: None,
        options,
    }
}

fn pick(ids: &[u8]) -> Answer {
    Answer {
        selected_option_ids: Some(ids.iter().map(|n| id(*n)).collect()),
        ..Answer::default()
    }
}

fn h(o: Outcome) -> i64 {
    o.score().hundredths()
}

#[test]
fn mcq_full_marks_only_for_the_one_correct_option() {
    let q = key(
        QuestionType::Mcq,
        250,
        false,
        vec![opt(1, true, 0), opt(2, false, 0)],
    );
    assert_eq!(score(&q, &pick(&[1])), Outcome::Scored(q.marks));
    assert_eq!(h(score(&q, &pick(&[2]))), 0);
    assert_eq!(h(score(&q, &pick(&[1, 2]))), 0);
    assert_eq!(
        h(score(&q, &pick(&[1, 1]))),
        250,
        "a duplicate is one selection"
    );
    assert_eq!(h(score(&q, &pick(&[]))), 0);
    assert!(validate(&q, &pick(&[1, 2])).is_err());
    assert!(validate(&q, &pick(&[9])).is_err());
}

#[test]
fn multiple_answer_exact_set_without_partial() {
    let q = key(
        QuestionType::MultipleAnswer,
        200,
        false,
        vec![opt(1, true, 100), opt(2, true, 100), opt(3, false, 0)],
    );
    assert_eq!(h(score(&q, &pick(&[2, 1]))), 200);
    assert_eq!(h(score(&q, &pick(&[1]))), 0);
    assert_eq!(h(score(&q, &pick(&[1, 2, 3]))), 0);
}

#[test]
fn multiple_answer_partial_penalises_wrong_picks() {
    let q = key(
        QuestionType::MultipleAnswer,
        200,
        true,
        vec![opt(1, true, 100), opt(2, true, 100), opt(3, false, 0)],
    );
    assert_eq!(h(score(&q, &pick(&[1]))), 100);
    assert_eq!(h(score(&q, &pick(&[1, 2]))), 200);
    assert_eq!(
        h(score(&q, &pick(&[1, 2, 3]))),
        100,
        "select-all is not full marks"
    );
    assert_eq!(h(score(&q, &pick(&[1, 3]))), 0);
    assert_eq!(h(score(&q, &pick(&[3]))), 0, "never below zero");
}

#[test]
fn dropdowns_single_and_multi() {
    let mut q = key(
        QuestionType::Dropdown,
        100,
        false,
        vec![opt(1, true, 50), opt(2, true, 50), opt(3, false, 0)],
    );
    q.multi_select = true;
    assert_eq!(
        h(score(&q, &pick(&[1, 2]))),
        100,
        "multi-select dropdown can score"
    );
    q.multi_select = false;
    q.options[1].is_correct = false;
    assert_eq!(h(score(&q, &pick(&[1]))), 100);
}

#[test]
fn checkbox_scores_only_with_correct_options() {
    let q = key(
        QuestionType::Checkbox,
        100,
        false,
        vec![opt(1, false, 0), opt(2, false, 0)],
    );
    assert_eq!(score(&q, &pick(&[1])), Outcome::Unscored);
    let q = key(
        QuestionType::Checkbox,
        100,
        false,
        vec![opt(1, true, 0), opt(2, false, 0)],
    );
    assert_eq!(h(score(&q, &pick(&[1]))), 100);
}

fn blank(n: u8, b: u32, text: &str, marks: i64) -> KeyOption {
    KeyOption {
        text: text.into(),
        blank_index: Some(b),
        ..opt(n, true, marks)
    }
}

fn blanks(texts: &[&str]) -> Answer {
    Answer {
        blanks: Some(
            texts
                .iter()
                .map(|t| BlankAnswer::Text(t.to_string()))
                .collect(),
        ),
        ..Answer::default()
    }
}

#[test]
fn fill_blank_matches_by_index_with_synonyms() {
    let q = key(
        QuestionType::FillBlank,
        200,
        false,
        vec![
            blank(1, 0, "Paris", 100),
            blank(2, 0, "paris city", 100),
            blank(3, 1, "Seine", 100),
        ],
    );
    assert_eq!(h(score(&q, &blanks(&[" paris ", "SEINE"]))), 200);
    assert_eq!(h(score(&q, &blanks(&["Paris City", "seine"]))), 200);
    assert_eq!(
        h(score(&q, &blanks(&["Paris"]))),
        0,
        "one of two blanks is not full marks"
    );
    let indexed = Answer {
        blanks: Some(vec![
            BlankAnswer::Indexed {
                blank_index: 1,
                text: "seine".into(),
            },
            BlankAnswer::Indexed {
                blank_index: 0,
                text: "paris".into(),
            },
        ]),
        ..Answer::default()
    };
    assert_eq!(
        h(score(&q, &indexed)),
        200,
        "order of blanks does not matter"
    );
    let mut partial = q.clone();
    partial.partial = true;
    assert_eq!(h(score(&partial, &blanks(&["Paris", "Thames"]))), 100);
    let mut sensitive = q.clone();
    sensitive.case_sensitive = true;
    assert_eq!(h(score(&sensitive, &blanks(&["paris", "Seine"]))), 0);
    assert!(
        validate(&q, &blanks(&["a", "b", "c"])).is_err(),
        "blank 2 does not exist"
    );
}

fn pair_opt(n: u8, with: &str, marks: i64) -> KeyOption {
    KeyOption {
        match_with: Some(with.into()),
        ..opt(n, true, marks)
    }
}

fn pairs(p: &[(u8, &str)]) -> Answer {
    Answer {
        matches: Some(
            p.iter()
                .map(|(n, w)| MatchPair {
                    option_id: id(*n),
                    match_with: w.to_string(),
                })
                .collect(),
        ),
        ..Answer::default()
    }
}

#[test]
fn match_counts_each_pair_once() {
    let q = key(
        QuestionType::Match,
        200,
        true,
        vec![pair_opt(1, "one", 100), pair_opt(2, "two", 100)],
    );
    assert_eq!(h(score(&q, &pairs(&[(1, " ONE "), (2, "two")]))), 200);
    assert_eq!(
        h(score(&q, &pairs(&[(1, "one"), (1, "one")]))),
        100,
        "a duplicate pair counts once"
    );
    let strict = QuestionKey {
        partial: false,
        ..q.clone()
    };
    assert_eq!(h(score(&strict, &pairs(&[(1, "one")]))), 0);
    assert_eq!(h(score(&strict, &pairs(&[(2, "two"), (1, "one")]))), 200);
    assert!(validate(&q, &pairs(&[(1, "one"), (1, "two")])).is_err());
}

#[test]
fn review_and_unscored_types() {
    let q = key(QuestionType::Essay, 500, false, vec![]);
    assert_eq!(
        score(
            &q,
            &Answer {
                text: Some("x".into()),
                ..Answer::default()
            }
        ),
        Outcome::NeedsReview
    );
    let q = key(QuestionType::Rating, 0, false, vec![]);
    assert_eq!(
        score(
            &q,
            &Answer {
                rating: Some(4.0),
                ..Answer::default()
            }
        ),
        Outcome::Unscored
    );
    let mut q = key(QuestionType::Mcq, 100, false, vec![opt(1, true, 0)]);
    q.grading_type = GradingType::Feedback;
    assert_eq!(score(&q, &pick(&[1])), Outcome::Unscored);
}

#[test]
fn answer_shape_is_checked() {
    let q = key(QuestionType::Essay, 100, false, vec![]);
    let mut q2 = q.clone();
    q2.max_length = Some(5);
    q2.word_limit = Some(1);
    assert!(
        validate(
            &q2,
            &Answer {
                text: Some("abcdef".into()),
                ..Answer::default()
            }
        )
        .is_err()
    );
    assert!(
        validate(
            &q2,
            &Answer {
                text: Some("ab cd".into()),
                ..Answer::default()
            }
        )
        .is_err()
    );
    assert!(
        validate(&q, &pick(&[1])).is_err(),
        "essays take no selections"
    );
    assert_eq!(
        validate(
            &q,
            &Answer {
                file: Some("https://x/y.pdf".into()),
                ..Answer::default()
            }
        )
        .unwrap_err(),
        "Answer field \"file\" is only allowed for questions of type \"file\"."
    );
}

fn arb_key() -> impl Strategy<Value = QuestionKey> {
    let types = prop::sample::select(vec![
        QuestionType::Mcq,
        QuestionType::TrueFalse,
        QuestionType::MultipleAnswer,
        QuestionType::Dropdown,
        QuestionType::Checkbox,
        QuestionType::FillBlank,
        QuestionType::Match,
        QuestionType::Subjective,
        QuestionType::Essay,
        QuestionType::Rating,
        QuestionType::File,
    ]);
    (
        types,
        0i64..2000,
        any::<bool>(),
        any::<bool>(),
        prop::collection::vec(
            (
                any::<bool>(),
                0i64..800,
                prop::option::of(0u32..3),
                prop::option::of("[a-c]{1,2}"),
                any::<bool>(),
            ),
            0..6,
        ),
    )
        .prop_map(|(qtype, marks, partial, multi, opts)| QuestionKey {
            qtype,
            grading_type: GradingType::Quiz,
            marks: Marks::from_hundredths(marks).unwrap(),
            partial,
            multi_select: multi,
            case_sensitive: false,
            min_length: None,
            max_length: None,
            word_limit: None,
            options: opts
                .into_iter()
                .enumerate()
                .map(|(i, (c, m, b, w, cs))| KeyOption {
                    id: id(i as u8 + 1),
                    text: format!("t{}", i % 3),
                    is_correct: c,
                    marks: Marks::from_hundredths(m).unwrap(),
                    blank_index: b,
                    match_with: w,
                    case_sensitive: cs,
                })
                .collect(),
        })
}

fn arb_answer() -> impl Strategy<Value = Answer> {
    (
        prop::option::of(prop::collection::vec(0u8..8, 0..8)),
        prop::option::of(prop::collection::vec("[a-cT0-2 ]{0,4}", 0..4)),
        prop::option::of(prop::collection::vec((0u8..8, "[a-cA-C ]{0,3}"), 0..6)),
        prop::option::of(".{0,40}"),
        prop::option::of(prop::num::f64::ANY),
        prop::option::of(".{0,20}"),
    )
        .prop_map(|(sel, bl, mt, text, rating, file)| Answer {
            selected_option_ids: sel.map(|v| v.into_iter().map(id).collect()),
            blanks: bl.map(|v| v.into_iter().map(BlankAnswer::Text).collect()),
            matches: mt.map(|v| {
                v.into_iter()
                    .map(|(n, w)| MatchPair {
                        option_id: id(n),
                        match_with: w,
                    })
                    .collect()
            }),
            text,
            rating,
            file,
        })
}

/// Any JSON value, a few levels deep, with the answer's field names likely to appear.
fn arb_json() -> impl Strategy<Value = serde_json::Value> {
    use serde_json::{Value, json};
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        prop::num::f64::NORMAL.prop_map(|f| json!(f)),
        ".{0,12}".prop_map(Value::String),
        (0u8..8).prop_map(|n| json!(id(n))),
    ];
    leaf.prop_recursive(3, 24, 6, |inner| {
        let key = prop::sample::select(vec![
            "selectedOptionIds",
            "text",
            "blanks",
            "matches",
            "rating",
            "file",
            "blankIndex",
            "questionOptionId",
            "optionId",
            "matchWith",
            "other",
        ]);
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            prop::collection::btree_map(key, inner, 0..5).prop_map(|m| {
                Value::Object(m.into_iter().map(|(k, v)| (k.to_string(), v)).collect())
            }),
        ]
    })
}

proptest! {
    #[test]
    fn any_json_is_refused_or_scored_within_bounds(q in arb_key(), v in arb_json()) {
        // What a client may send: either it does not decode as an answer (a 400), or it
        // validates or not, and scores within the question's marks, without a panic.
        if let Ok(a) = serde_json::from_value::<Answer>(v) {
            let _ = validate(&q, &a);
            let s = score(&q, &a).score();
            prop_assert!(s >= Marks::ZERO && s <= q.marks);
        }
    }

    #[test]
    fn score_is_within_bounds_and_total(q in arb_key(), a in arb_answer()) {
        let _ = validate(&q, &a);
        let s = score(&q, &a).score();
        prop_assert!(s >= Marks::ZERO && s <= q.marks);
    }

    #[test]
    fn order_of_selections_and_pairs_does_not_matter(q in arb_key(), a in arb_answer()) {
        let mut b = a.clone();
        if let Some(v) = b.selected_option_ids.as_mut() { v.reverse(); }
        if let Some(v) = b.matches.as_mut() {
            // Reversing may change which duplicate comes first; compare only unique ones.
            let mut seen = BTreeSet::new();
            v.retain(|p| seen.insert(p.option_id));
            v.reverse();
        }
        let mut a2 = a;
        if let Some(v) = a2.matches.as_mut() {
            let mut seen = BTreeSet::new();
            v.retain(|p| seen.insert(p.option_id));
        }
        prop_assert_eq!(score(&q, &a2), score(&q, &b));
    }

    #[test]
    fn duplicates_never_count_twice(q in arb_key(), a in arb_answer()) {
        let mut doubled = a.clone();
        if let Some(v) = doubled.selected_option_ids.as_mut() {
            let copy = v.clone();
            v.extend(copy);
        }
        if let Some(v) = doubled.matches.as_mut() {
            let copy = v.clone();
            v.extend(copy);
        }
        prop_assert_eq!(score(&q, &a), score(&q, &doubled));
    }

    #[test]
    fn selecting_every_option_never_earns_full_marks_under_partial(q in arb_key()) {
        let mut q = q;
        q.partial = true;
        q.multi_select = true;
        if !matches!(q.qtype, QuestionType::MultipleAnswer | QuestionType::Dropdown | QuestionType::Checkbox) {
            return Ok(());
        }
        // A valid partial-scoring key: correct options carry marks adding up to the
        // question's marks (authoring enforces it).
        for o in q.options.iter_mut().filter(|o| o.is_correct && o.marks == Marks::ZERO) {
            o.marks = Marks::from_hundredths(1).unwrap();
        }
        q.marks = q.options.iter().filter(|o| o.is_correct).map(|o| o.marks).sum();
        let has_wrong = q.options.iter().any(|o| !o.is_correct);
        let has_right = q.options.iter().any(|o| o.is_correct);
        prop_assume!(has_wrong && has_right);
        let all = Answer {
            selected_option_ids: Some(q.options.iter().map(|o| o.id).collect()),
            ..Answer::default()
        };
        prop_assert!(score(&q, &all).score() < q.marks);
    }
}
