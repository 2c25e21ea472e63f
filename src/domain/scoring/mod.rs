//! The scoring engine: from a question's key and a learner's answer to an exact score
//! (CONTRACT.md, "Scoring"). Pure: no I/O, no clock. Never panics on any input and never
//! returns a score outside `0..=marks`.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::enums::{GradingType, QuestionType};
use super::marks::Marks;

/// One option of a question, as scoring sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct KeyOption {
    pub id: Uuid,
    /// The option's text: the accepted answer of a `fill_blank` blank.
    pub text: String,
    pub is_correct: bool,
    pub marks: Marks,
    pub blank_index: Option<u32>,
    pub match_with: Option<String>,
    pub case_sensitive: bool,
}

/// A question with its key.
#[derive(Debug, Clone, PartialEq)]
pub struct QuestionKey {
    pub qtype: QuestionType,
    pub grading_type: GradingType,
    pub marks: Marks,
    pub partial: bool,
    /// `dropdown` with `params.dropdownConfig.allowMultiple`.
    pub multi_select: bool,
    /// `params.caseSensitive` (fill_blank).
    pub case_sensitive: bool,
    pub min_length: Option<u32>,
    pub max_length: Option<u32>,
    pub word_limit: Option<u32>,
    pub options: Vec<KeyOption>,
}

/// A blank's answer: upstream sends plain strings (position = blank index); the object form
/// names the blank.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum BlankAnswer {
    Text(String),
    Indexed {
        #[serde(rename = "blankIndex")]
        blank_index: u32,
        text: String,
    },
}

/// A pair of a `match` answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct MatchPair {
    pub option_id: Uuid,
    pub match_with: String,
}

/// A learner's answer (upstream's answer JSON keys; other keys are refused).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Answer {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selected_option_ids: Option<Vec<Uuid>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blanks: Option<Vec<BlankAnswer>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub matches: Option<Vec<MatchPair>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rating: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
}

/// What scoring decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Scored automatically.
    Scored(Marks),
    /// Scored by a reviewer later (`subjective`, `essay`, `file` under a graded test).
    NeedsReview,
    /// Not scored at all (`rating`, surveys, feedback and reflection prompts): counts 0.
    Unscored,
}

impl Outcome {
    /// The score this outcome contributes now.
    pub fn score(self) -> Marks {
        match self {
            Outcome::Scored(m) => m,
            _ => Marks::ZERO,
        }
    }
}

fn selection_types(q: &QuestionKey) -> bool {
    matches!(
        q.qtype,
        QuestionType::Mcq
            | QuestionType::TrueFalse
            | QuestionType::MultipleAnswer
            | QuestionType::Dropdown
            | QuestionType::Checkbox
            | QuestionType::Rating
    )
}

fn single_choice(q: &QuestionKey) -> bool {
    matches!(q.qtype, QuestionType::Mcq | QuestionType::TrueFalse)
        || (q.qtype == QuestionType::Dropdown && !q.multi_select)
}

/// The blanks of an answer keyed by blank index (strings take their position).
pub fn blanks_by_index(blanks: &[BlankAnswer]) -> BTreeMap<u32, &str> {
    let mut out = BTreeMap::new();
    for (i, b) in blanks.iter().enumerate() {
        match b {
            BlankAnswer::Text(t) => {
                out.entry(i as u32).or_insert(t.as_str());
            }
            BlankAnswer::Indexed { blank_index, text } => {
                out.entry(*blank_index).or_insert(text.as_str());
            }
        }
    }
    out
}

/// Checks that `answer` has the shape `q` takes. The error is the client-facing message.
pub fn validate(q: &QuestionKey, a: &Answer) -> Result<(), String> {
    use QuestionType::*;
    let t = q.qtype;
    let wrong = |key: &str| {
        Err(format!(
            "Answer field \"{key}\" is not used by {t} questions."
        ))
    };
    if a.file.as_deref().is_some_and(|f| !f.trim().is_empty()) && t != File {
        return Err("Answer field \"file\" is only allowed for questions of type \"file\".".into());
    }
    if a.selected_option_ids.is_some() && !selection_types(q) {
        return wrong("selectedOptionIds");
    }
    if a.text.is_some() && !matches!(t, Subjective | Essay) {
        return wrong("text");
    }
    if a.blanks.is_some() && t != FillBlank {
        return wrong("blanks");
    }
    if a.matches.is_some() && t != Match {
        return wrong("matches");
    }
    if a.rating.is_some() && t != Rating {
        return wrong("rating");
    }
    if let Some(ids) = &a.selected_option_ids {
        let known: BTreeSet<Uuid> = q.options.iter().map(|o| o.id).collect();
        if let Some(bad) = ids.iter().find(|id| !known.contains(id)) {
            return Err(format!("Option {bad} does not belong to this question."));
        }
        let distinct: BTreeSet<&Uuid> = ids.iter().collect();
        if single_choice(q) && distinct.len() > 1 {
            return Err(format!("{t} questions take at most one selected option."));
        }
    }
    if let Some(text) = &a.text {
        let chars = text.trim().chars().count() as u32;
        if let Some(max) = q.max_length
            && chars > max
        {
            return Err(format!("The answer is longer than {max} characters."));
        }
        if let Some(min) = q.min_length
            && chars > 0
            && chars < min
        {
            return Err(format!("The answer is shorter than {min} characters."));
        }
        if let Some(limit) = q.word_limit {
            let words = text.split_whitespace().count() as u32;
            if words > limit {
                return Err(format!("The answer is longer than {limit} words."));
            }
        }
    }
    if let Some(blanks) = &a.blanks {
        let n = q
            .options
            .iter()
            .filter_map(|o| o.blank_index)
            .max()
            .map_or(0, |m| m + 1);
        let mut seen = BTreeSet::new();
        for (i, b) in blanks.iter().enumerate() {
            let idx = match b {
                BlankAnswer::Text(_) => i as u32,
                BlankAnswer::Indexed { blank_index, .. } => *blank_index,
            };
            if idx >= n {
                return Err(format!(
                    "Blank {idx} does not exist (the question has {n})."
                ));
            }
            if !seen.insert(idx) {
                return Err(format!("Blank {idx} is answered twice."));
            }
        }
    }
    if let Some(pairs) = &a.matches {
        let known: BTreeSet<Uuid> = q.options.iter().map(|o| o.id).collect();
        let mut seen = BTreeSet::new();
        for p in pairs {
            if !known.contains(&p.option_id) {
                return Err(format!(
                    "Option {} does not belong to this question.",
                    p.option_id
                ));
            }
            if !seen.insert(p.option_id) {
                return Err(format!("Option {} is matched twice.", p.option_id));
            }
        }
    }
    if let Some(r) = a.rating
        && (!r.is_finite() || r < 0.0)
    {
        return Err("rating must be a non-negative number.".into());
    }
    Ok(())
}

fn clamp(q: &QuestionKey, m: i64) -> Marks {
    Marks::from_hundredths(m.clamp(0, q.marks.hundredths())).unwrap_or(Marks::ZERO)
}

fn text_eq(a: &str, b: &str, case_sensitive: bool) -> bool {
    let (a, b) = (a.trim(), b.trim());
    if case_sensitive {
        a == b
    } else {
        a.to_lowercase() == b.to_lowercase()
    }
}

/// Scores `a` against `q`. Total: any input gives a score within `0..=marks`.
pub fn score(q: &QuestionKey, a: &Answer) -> Outcome {
    use QuestionType::*;
    if !q.grading_type.has_answer_key() {
        return Outcome::Unscored;
    }
    match q.qtype {
        Subjective | Essay | File => Outcome::NeedsReview,
        Rating => Outcome::Unscored,
        Mcq | TrueFalse => Outcome::Scored(single(q, a)),
        Dropdown if !q.multi_select => Outcome::Scored(single(q, a)),
        Checkbox if !q.options.iter().any(|o| o.is_correct) => Outcome::Unscored,
        MultipleAnswer | Dropdown | Checkbox => Outcome::Scored(multiple(q, a)),
        FillBlank => Outcome::Scored(fill_blank(q, a)),
        Match => Outcome::Scored(match_pairs(q, a)),
    }
}

fn selected(a: &Answer) -> BTreeSet<Uuid> {
    a.selected_option_ids
        .as_deref()
        .unwrap_or_default()
        .iter()
        .copied()
        .collect()
}

fn single(q: &QuestionKey, a: &Answer) -> Marks {
    let chosen = selected(a);
    let correct = chosen.len() == 1
        && q.options
            .iter()
            .any(|o| o.is_correct && chosen.contains(&o.id));
    if correct { q.marks } else { Marks::ZERO }
}

fn multiple(q: &QuestionKey, a: &Answer) -> Marks {
    let chosen = selected(a);
    let correct: BTreeSet<Uuid> = q
        .options
        .iter()
        .filter(|o| o.is_correct)
        .map(|o| o.id)
        .collect();
    if correct.is_empty() || chosen.is_empty() {
        return Marks::ZERO;
    }
    if !q.partial {
        return if chosen == correct {
            q.marks
        } else {
            Marks::ZERO
        };
    }
    // Each correct pick earns its option's marks; each wrong pick (an option of the question
    // that is not correct) costs the marks of one correct option (the smallest).
    let penalty = q
        .options
        .iter()
        .filter(|o| o.is_correct)
        .map(|o| o.marks.hundredths())
        .filter(|m| *m > 0)
        .min()
        .unwrap_or(0);
    let mut total: i64 = 0;
    for o in &q.options {
        if chosen.contains(&o.id) {
            if o.is_correct {
                total += o.marks.hundredths();
            } else {
                total -= penalty;
            }
        }
    }
    clamp(q, total)
}

fn fill_blank(q: &QuestionKey, a: &Answer) -> Marks {
    let given = blanks_by_index(a.blanks.as_deref().unwrap_or_default());
    let mut by_blank: BTreeMap<u32, Vec<&KeyOption>> = BTreeMap::new();
    for o in &q.options {
        if let Some(b) = o.blank_index {
            by_blank.entry(b).or_default().push(o);
        }
    }
    if by_blank.is_empty() {
        return Marks::ZERO;
    }
    let mut right = 0usize;
    let mut earned: i64 = 0;
    for (b, options) in &by_blank {
        let Some(text) = given.get(b) else { continue };
        if text.trim().is_empty() {
            continue;
        }
        let hit = options
            .iter()
            .find(|o| o.is_correct && text_eq(text, &o.text, o.case_sensitive || q.case_sensitive));
        if let Some(o) = hit {
            right += 1;
            earned += o.marks.hundredths();
        }
    }
    if q.partial {
        clamp(q, earned)
    } else if right == by_blank.len() {
        q.marks
    } else {
        Marks::ZERO
    }
}

fn match_pairs(q: &QuestionKey, a: &Answer) -> Marks {
    let key: HashMap<Uuid, &KeyOption> = q
        .options
        .iter()
        .filter(|o| o.is_correct && o.match_with.is_some())
        .map(|o| (o.id, o))
        .collect();
    if key.is_empty() {
        return Marks::ZERO;
    }
    // Each option counts once: the first pair given for it.
    let mut pairs: HashMap<Uuid, &str> = HashMap::new();
    for p in a.matches.as_deref().unwrap_or_default() {
        pairs.entry(p.option_id).or_insert(p.match_with.as_str());
    }
    let mut right = 0usize;
    let mut wrong = 0usize;
    let mut earned: i64 = 0;
    for (id, given) in &pairs {
        match key.get(id) {
            Some(o)
                if text_eq(
                    given,
                    o.match_with.as_deref().unwrap_or(""),
                    o.case_sensitive,
                ) =>
            {
                right += 1;
                earned += o.marks.hundredths();
            }
            _ => wrong += 1,
        }
    }
    if q.partial {
        clamp(q, earned)
    } else if right == key.len() && wrong == 0 {
        q.marks
    } else {
        Marks::ZERO
    }
}

#[cfg(test)]
mod tests;
