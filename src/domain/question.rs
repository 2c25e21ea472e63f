//! Questions: their parameters and options, and the rules a question must satisfy before it
//! is stored (upstream §6.2, with CONTRACT.md's fixes: several accepted answers per blank,
//! option ordering, partial-scoring marks that add up).

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::enums::{GradingType, QuestionType};
use super::marks::Marks;

/// File extensions a `file` question may accept.
pub const ALLOWED_FILE_EXTENSIONS: &[&str] = &[
    "pdf", "doc", "docx", "jpg", "jpeg", "png", "gif", "webp", "mp4",
];

/// Dropdown settings.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct DropdownConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allow_multiple: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub placeholder: Option<String>,
}

/// Type-specific settings of a question (upstream's `params`; other keys are refused).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct QuestionParams {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_length: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_length: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub word_limit: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allow_attachments: Option<bool>,
    /// Question-level case sensitivity for `fill_blank` (an option's own flag also applies).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub case_sensitive: Option<bool>,
    /// Informational; the question's `allowPartialScoring` decides.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allow_partial_scoring: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dropdown_config: Option<DropdownConfig>,
    /// Stored and returned as given (`{criteria: [{name, maxScore, description}]}`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Object)]
    pub rubric: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allowed_file_extensions: Option<Vec<String>>,
}

impl QuestionParams {
    pub fn allows_multiple(&self) -> bool {
        self.dropdown_config
            .as_ref()
            .and_then(|d| d.allow_multiple)
            .unwrap_or(false)
    }
}

/// An option as the rules see it.
#[derive(Debug, Clone, PartialEq)]
pub struct OptionDraft {
    pub text: String,
    pub is_correct: bool,
    pub marks: Option<Marks>,
    pub blank_index: Option<u32>,
    pub match_with: Option<String>,
}

/// A question as the rules see it.
#[derive(Debug, Clone)]
pub struct QuestionDraft<'a> {
    pub text: &'a str,
    pub qtype: QuestionType,
    pub grading_type: GradingType,
    pub marks: Marks,
    pub allow_partial_scoring: bool,
    pub params: &'a QuestionParams,
    pub options: &'a [OptionDraft],
}

fn norm(s: &str) -> String {
    s.trim().to_lowercase()
}

fn duplicates<'a>(values: impl Iterator<Item = &'a str>) -> Vec<String> {
    let mut seen = BTreeSet::new();
    let mut dup = BTreeSet::new();
    for v in values {
        let n = norm(v);
        if !seen.insert(n.clone()) {
            dup.insert(v.trim().to_string());
        }
    }
    dup.into_iter().collect()
}

/// Checks `params` and normalises `allowedFileExtensions` (lower case, no dot).
pub fn normalise_params(qtype: QuestionType, params: &mut QuestionParams) -> Result<(), String> {
    if let (Some(min), Some(max)) = (params.min_length, params.max_length)
        && max <= min
    {
        return Err("params.maxLength must be greater than params.minLength".into());
    }
    if params.word_limit == Some(0) {
        return Err("params.wordLimit must be greater than 0".into());
    }
    if let Some(exts) = params.allowed_file_extensions.as_mut() {
        if qtype != QuestionType::File {
            return Err("params.allowedFileExtensions is only allowed for file questions".into());
        }
        if exts.is_empty() || exts.len() > 20 {
            return Err("params.allowedFileExtensions must list 1 to 20 extensions".into());
        }
        let mut out = Vec::new();
        for e in exts.iter() {
            let e = e.trim().trim_start_matches('.').to_lowercase();
            if !ALLOWED_FILE_EXTENSIONS.contains(&e.as_str()) {
                return Err(format!(
                    "params.allowedFileExtensions: {e:?} is not one of {}",
                    ALLOWED_FILE_EXTENSIONS.join(", ")
                ));
            }
            if !out.contains(&e) {
                out.push(e);
            }
        }
        *exts = out;
    }
    Ok(())
}

/// The rules a question must satisfy. The error is the client-facing message.
pub fn validate(q: &QuestionDraft<'_>) -> Result<(), String> {
    use QuestionType::*;
    if q.text.trim().is_empty() {
        return Err("Question text cannot be empty.".into());
    }
    if q.qtype == File
        && q.grading_type.has_answer_key()
        && q.grading_type != GradingType::Assessment
    {
        return Err(
            "Question type \"file\" is only allowed when gradingType is feedback, \
                    reflection.prompt, or assessment."
                .into(),
        );
    }
    if q.qtype == File && !q.options.is_empty() {
        return Err("file questions take no options.".into());
    }
    if q.options.iter().any(|o| o.text.trim().is_empty()) {
        return Err("Option text cannot be empty.".into());
    }

    // Duplicate option texts: per blank for fill_blank (two blanks may share an answer).
    let dup = if q.qtype == FillBlank {
        let mut by_blank: BTreeMap<Option<u32>, Vec<&str>> = BTreeMap::new();
        for o in q.options {
            by_blank.entry(o.blank_index).or_default().push(&o.text);
        }
        by_blank
            .values()
            .flat_map(|texts| duplicates(texts.iter().copied()))
            .collect::<Vec<_>>()
    } else {
        duplicates(q.options.iter().map(|o| o.text.as_str()))
    };
    if !dup.is_empty() {
        return Err(format!("Duplicate option texts found: {}", dup.join(", ")));
    }
    if q.qtype == Match {
        let dup = duplicates(q.options.iter().filter_map(|o| o.match_with.as_deref()));
        if !dup.is_empty() {
            return Err(format!(
                "Duplicate matchWith values found: {}",
                dup.join(", ")
            ));
        }
    }

    let correct: Vec<&OptionDraft> = q.options.iter().filter(|o| o.is_correct).collect();
    if q.grading_type.has_answer_key() {
        match q.qtype {
            Mcq => {
                if q.options.len() < 2 {
                    return Err("mcq questions need at least two options.".into());
                }
                if correct.len() != 1 {
                    return Err("mcq questions must have exactly one correct answer.".into());
                }
            }
            TrueFalse => {
                if q.options.len() != 2 {
                    return Err("true_false questions must have exactly two options.".into());
                }
                if correct.len() != 1 {
                    return Err("true_false questions must have exactly one correct answer.".into());
                }
            }
            MultipleAnswer => {
                if correct.is_empty() {
                    return Err(
                        "Multiple answer questions must have at least one correct answer.".into(),
                    );
                }
            }
            Dropdown => {
                if q.options.len() < 2 {
                    return Err("Dropdown questions must have at least two options.".into());
                }
                if correct.is_empty() {
                    return Err("Dropdown questions must have at least one correct answer.".into());
                }
                if correct.len() > 1 && !q.params.allows_multiple() {
                    return Err("Dropdown questions allow only one correct answer unless \
                                params.dropdownConfig.allowMultiple is true."
                        .into());
                }
            }
            FillBlank => validate_blanks(q.options)?,
            Match => {
                let pairs: Vec<&OptionDraft> = q
                    .options
                    .iter()
                    .filter(|o| {
                        o.match_with
                            .as_deref()
                            .is_some_and(|m| !m.trim().is_empty())
                    })
                    .collect();
                if pairs.is_empty() {
                    return Err(
                        "Matching questions must have options with matchWith specified.".into(),
                    );
                }
                if pairs.iter().any(|o| !o.is_correct) {
                    return Err("All options with matchWith must be marked as correct in \
                                matching questions."
                        .into());
                }
            }
            Checkbox | Subjective | Essay | Rating | File => {}
        }
    }

    if q.allow_partial_scoring {
        validate_partial(q, &correct)?;
    }
    Ok(())
}

fn validate_blanks(options: &[OptionDraft]) -> Result<(), String> {
    if options.is_empty() || options.iter().any(|o| o.blank_index.is_none()) {
        return Err(
            "Fill in the blank questions must have options with blankIndex specified.".into(),
        );
    }
    let blanks: BTreeSet<u32> = options.iter().filter_map(|o| o.blank_index).collect();
    for (expected, found) in blanks.iter().enumerate() {
        if *found != expected as u32 {
            return Err(format!(
                "Fill in the blank questions must use sequential blankIndex values starting \
                 from 0. Found gap at index {expected}."
            ));
        }
    }
    for b in &blanks {
        if !options
            .iter()
            .any(|o| o.blank_index == Some(*b) && o.is_correct)
        {
            return Err(format!("Blank {b} must have at least one correct answer."));
        }
    }
    Ok(())
}

fn validate_partial(q: &QuestionDraft<'_>, correct: &[&OptionDraft]) -> Result<(), String> {
    use QuestionType::*;
    let multi_dropdown = q.qtype == Dropdown && q.params.allows_multiple();
    match q.qtype {
        Subjective | Essay | File => Ok(()),
        MultipleAnswer | Checkbox | Match | Dropdown if q.qtype != Dropdown || multi_dropdown => {
            if q.qtype == Checkbox && correct.is_empty() {
                return Err("Partial scoring needs correct options on checkbox questions.".into());
            }
            let mut total = Marks::ZERO;
            for o in correct {
                match o.marks {
                    Some(m) if m > Marks::ZERO => total = total + m,
                    _ => {
                        return Err(format!(
                            "With partial scoring, every correct option needs marks above 0 \
                             (option {:?}).",
                            o.text.trim()
                        ));
                    }
                }
            }
            if total != q.marks {
                return Err(format!(
                    "With partial scoring, the marks of the correct options ({total}) must add \
                     up to the question's marks ({}).",
                    q.marks
                ));
            }
            Ok(())
        }
        FillBlank => {
            let mut per_blank: BTreeMap<u32, Marks> = BTreeMap::new();
            for o in correct {
                let Some(b) = o.blank_index else { continue };
                let m = match o.marks {
                    Some(m) if m > Marks::ZERO => m,
                    _ => {
                        return Err(format!(
                            "With partial scoring, every correct answer of blank {b} needs marks \
                             above 0."
                        ));
                    }
                };
                if let Some(prev) = per_blank.insert(b, m)
                    && prev != m
                {
                    return Err(format!(
                        "With partial scoring, the accepted answers of blank {b} must carry \
                             the same marks."
                    ));
                }
            }
            let total: Marks = per_blank.values().copied().sum();
            if total != q.marks {
                return Err(format!(
                    "With partial scoring, the marks of the blanks ({total}) must add up to the \
                     question's marks ({}).",
                    q.marks
                ));
            }
            Ok(())
        }
        other => Err(format!(
            "Partial scoring is not supported for question type: {other}"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opt(text: &str, correct: bool) -> OptionDraft {
        OptionDraft {
            text: text.into(),
            is_correct: correct,
            marks: None,
            blank_index: None,
            match_with: None,
        }
    }

    fn draft<'a>(
        qtype: QuestionType,
        options: &'a [OptionDraft],
        params: &'a QuestionParams,
    ) -> QuestionDraft<'a> {
        QuestionDraft {
            text: "What?",
            qtype,
            grading_type: GradingType::Quiz,
            marks: Marks::whole(2),
            allow_partial_scoring: false,
            params,
            options,
        }
    }

    #[test]
    fn mcq_needs_exactly_one_correct() {
        let p = QuestionParams::default();
        assert!(
            validate(&draft(
                QuestionType::Mcq,
                &[opt("a", true), opt("b", false)],
                &p
            ))
            .is_ok()
        );
        let err = validate(&draft(
            QuestionType::Mcq,
            &[opt("a", true), opt("b", true)],
            &p,
        ));
        assert_eq!(
            err.unwrap_err(),
            "mcq questions must have exactly one correct answer."
        );
        let err = validate(&draft(
            QuestionType::Mcq,
            &[opt("a", true), opt(" A ", false)],
            &p,
        ));
        assert_eq!(err.unwrap_err(), "Duplicate option texts found: A");
    }

    #[test]
    fn feedback_questions_need_no_key() {
        let p = QuestionParams::default();
        let opts = [opt("a", false), opt("b", false)];
        let mut d = draft(QuestionType::Mcq, &opts, &p);
        d.grading_type = GradingType::Feedback;
        assert!(validate(&d).is_ok());
    }

    #[test]
    fn fill_blank_accepts_synonyms_and_requires_sequential_blanks() {
        let p = QuestionParams::default();
        let mut a = opt("Paris", true);
        a.blank_index = Some(0);
        let mut b = opt("paris city", true);
        b.blank_index = Some(0);
        let mut c = opt("Seine", true);
        c.blank_index = Some(1);
        assert!(
            validate(&draft(
                QuestionType::FillBlank,
                &[a.clone(), b, c.clone()],
                &p
            ))
            .is_ok()
        );
        let mut gap = c;
        gap.blank_index = Some(2);
        assert!(
            validate(&draft(QuestionType::FillBlank, &[a.clone(), gap], &p))
                .unwrap_err()
                .contains("Found gap at index 1")
        );
        // The same answer text in two different blanks is fine.
        let mut same = opt("Paris", true);
        same.blank_index = Some(1);
        assert!(validate(&draft(QuestionType::FillBlank, &[a, same], &p)).is_ok());
    }

    #[test]
    fn partial_scoring_marks_must_add_up() {
        let p = QuestionParams::default();
        let mut a = opt("a", true);
        a.marks = Some(Marks::whole(1));
        let mut b = opt("b", true);
        b.marks = Some(Marks::whole(1));
        let c = opt("c", false);
        let opts = [a.clone(), b, c];
        let mut d = draft(QuestionType::MultipleAnswer, &opts, &p);
        d.allow_partial_scoring = true;
        assert!(validate(&d).is_ok());
        d.marks = Marks::whole(3);
        assert!(validate(&d).unwrap_err().contains("must add up"));

        let opts = [a, opt("x", false)];
        let mut d = draft(QuestionType::Mcq, &opts, &p);
        d.allow_partial_scoring = true;
        assert_eq!(
            validate(&d).unwrap_err(),
            "Partial scoring is not supported for question type: mcq"
        );
    }

    #[test]
    fn match_pairs_must_be_correct_and_unique() {
        let p = QuestionParams::default();
        let mut a = opt("1", true);
        a.match_with = Some("one".into());
        let mut b = opt("2", false);
        b.match_with = Some("two".into());
        assert!(
            validate(&draft(QuestionType::Match, &[a.clone(), b], &p))
                .unwrap_err()
                .starts_with("All options with matchWith")
        );
        let mut c = opt("3", true);
        c.match_with = Some("ONE".into());
        assert!(
            validate(&draft(QuestionType::Match, &[a, c], &p))
                .unwrap_err()
                .starts_with("Duplicate matchWith")
        );
    }

    #[test]
    fn params_are_checked_and_normalised() {
        let mut p = QuestionParams {
            allowed_file_extensions: Some(vec![".PDF".into(), "png".into(), "pdf".into()]),
            ..Default::default()
        };
        normalise_params(QuestionType::File, &mut p).unwrap();
        assert_eq!(p.allowed_file_extensions.unwrap(), vec!["pdf", "png"]);
        let mut p = QuestionParams {
            allowed_file_extensions: Some(vec!["exe".into()]),
            ..Default::default()
        };
        assert!(normalise_params(QuestionType::File, &mut p).is_err());
        let mut p = QuestionParams {
            min_length: Some(10),
            max_length: Some(5),
            ..Default::default()
        };
        assert!(normalise_params(QuestionType::Essay, &mut p).is_err());
    }

    #[test]
    fn file_questions_only_outside_quiz() {
        let p = QuestionParams::default();
        let d = draft(QuestionType::File, &[], &p);
        assert!(validate(&d).is_err());
        let mut d = draft(QuestionType::File, &[], &p);
        d.grading_type = GradingType::Assessment;
        assert!(validate(&d).is_ok());
    }
}
