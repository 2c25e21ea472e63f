//! What authors send for a question and its options, and how it is checked and normalised.

#[allow(unused_imports)]
use super::*;

/// Media attached to a question or option: URLs.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Media {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub video: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audio: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub document: Option<String>,
}

impl Media {
    pub(super) fn checked(self, field: &str) -> AppResult<Json<Value>> {
        for (name, value) in [
            ("image", &self.image),
            ("video", &self.video),
            ("audio", &self.audio),
            ("document", &self.document),
        ] {
            if let Some(v) = value {
                let ok = url::Url::parse(v)
                    .map(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some())
                    .unwrap_or(false);
                if !ok {
                    return Err(AppError::validation(format!(
                        "{field}.{name} must be a URL address"
                    )));
                }
            }
        }
        Ok(Json(
            serde_json::to_value(self).map_err(anyhow::Error::from)?,
        ))
    }
}

/// An option in a create or update body.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct OptionIn {
    /// On update: the id of an existing option to keep (and rewrite in place).
    #[serde(default)]
    pub question_option_id: Option<Uuid>,
    pub text: String,
    #[serde(default)]
    pub media: Option<Media>,
    #[serde(default)]
    pub match_with: Option<String>,
    #[serde(default)]
    pub match_with_media: Option<Media>,
    /// Display order; upstream's `position` is accepted as an alias. Defaults to the index.
    #[serde(default, alias = "position")]
    pub ordering: Option<i32>,
    #[serde(default)]
    pub is_correct: Option<bool>,
    #[serde(default)]
    #[schema(value_type = Option<f64>)]
    pub marks: Option<Marks>,
    #[serde(default)]
    pub blank_index: Option<u32>,
    #[serde(default)]
    pub case_sensitive: Option<bool>,
    /// Accepted for compatibility and ignored: links are made with `optionId` on the child.
    #[serde(default)]
    pub has_child_question: Option<bool>,
}

/// Body of `POST /questions`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct QuestionIn {
    pub text: String,
    #[serde(rename = "type")]
    pub qtype: QuestionType,
    #[serde(default)]
    pub media: Option<Media>,
    #[serde(default)]
    pub alias: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub category_id: Option<Uuid>,
    #[serde(default)]
    pub level: Option<QuestionLevel>,
    #[serde(default)]
    #[schema(value_type = Option<f64>)]
    pub marks: Option<Marks>,
    #[serde(default)]
    pub status: Option<QuestionStatus>,
    #[serde(default)]
    pub ideal_time: Option<u32>,
    #[serde(default)]
    pub grading_type: Option<GradingType>,
    #[serde(default)]
    pub allow_partial_scoring: Option<bool>,
    #[serde(default)]
    pub params: Option<QuestionParams>,
    #[serde(default)]
    pub options: Option<Vec<OptionIn>>,
    #[serde(default)]
    pub tags: Option<Vec<String>>,
    #[serde(default)]
    pub ordering: Option<i32>,
    /// Also link the new question to this test (with `sectionId`).
    #[serde(default)]
    pub test_id: Option<Uuid>,
    /// The section of `testId` to place the question in.
    #[serde(default)]
    pub section_id: Option<Uuid>,
    /// For the test link: must the learner answer it?
    #[serde(default)]
    pub is_compulsory: Option<bool>,
    /// The parent of a conditional (child) question.
    #[serde(default)]
    pub parent_id: Option<Uuid>,
    /// The parent's option that reveals this question (needs `parentId`).
    #[serde(default)]
    pub option_id: Option<Uuid>,
}

/// Body of `PATCH /questions/{id}`: only the fields sent change; `null` clears a nullable one.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct QuestionPatch {
    #[serde(default)]
    pub text: Option<String>,
    #[serde(default, rename = "type")]
    pub qtype: Option<QuestionType>,
    #[serde(default, deserialize_with = "de::nullable")]
    #[schema(value_type = Option<Media>)]
    pub media: Option<Option<Media>>,
    #[serde(default, deserialize_with = "de::nullable")]
    #[schema(value_type = Option<String>)]
    pub alias: Option<Option<String>>,
    #[serde(default, deserialize_with = "de::nullable")]
    #[schema(value_type = Option<String>)]
    pub description: Option<Option<String>>,
    #[serde(default, deserialize_with = "de::nullable")]
    #[schema(value_type = Option<Uuid>)]
    pub category_id: Option<Option<Uuid>>,
    #[serde(default)]
    pub level: Option<QuestionLevel>,
    #[serde(default)]
    #[schema(value_type = Option<f64>)]
    pub marks: Option<Marks>,
    #[serde(default)]
    pub status: Option<QuestionStatus>,
    #[serde(default, deserialize_with = "de::nullable")]
    #[schema(value_type = Option<u32>)]
    pub ideal_time: Option<Option<u32>>,
    #[serde(default)]
    pub grading_type: Option<GradingType>,
    #[serde(default)]
    pub allow_partial_scoring: Option<bool>,
    #[serde(default, deserialize_with = "de::nullable")]
    #[schema(value_type = Option<QuestionParams>)]
    pub params: Option<Option<QuestionParams>>,
    /// When sent, the options become exactly these: options with a `questionOptionId` are
    /// rewritten in place (ids, and so stored answers, stay valid), others are created, and
    /// options not listed are deleted.
    #[serde(default)]
    pub options: Option<Vec<OptionIn>>,
    #[serde(default)]
    pub tags: Option<Vec<String>>,
    #[serde(default)]
    pub ordering: Option<i32>,
}

/// Trimmed, distinct tags in their first order; at most 50. Linear in the input: duplicates are
/// found through a set, and the limit stops the walk at the 51st distinct tag (a body of
/// thousands of tags once took seconds of CPU comparing each with every other).
pub(super) fn clean_tags(tags: Vec<String>) -> AppResult<Vec<String>> {
    let mut out: Vec<String> = Vec::new();
    let mut seen: std::collections::HashSet<String> = std::collections::HashSet::new();
    for t in tags {
        let t = t.trim().to_string();
        if t.is_empty() {
            return Err(AppError::validation("tags must not contain empty strings"));
        }
        if t.chars().count() > 100 {
            return Err(AppError::validation(
                "each tag must be at most 100 characters",
            ));
        }
        if seen.insert(t.clone()) {
            if out.len() == 50 {
                return Err(AppError::validation("a question takes at most 50 tags"));
            }
            out.push(t);
        }
    }
    Ok(out)
}

pub(super) fn params_json(params: Option<QuestionParams>) -> AppResult<Option<Json<Value>>> {
    params
        .map(|p| {
            serde_json::to_value(p)
                .map(Json)
                .map_err(|e| AppError::Internal(e.into()))
        })
        .transpose()
}

pub(super) fn normalised_params(
    qtype: QuestionType,
    params: Option<QuestionParams>,
) -> AppResult<Option<QuestionParams>> {
    params
        .map(|mut p| {
            question::normalise_params(qtype, &mut p).map_err(AppError::Validation)?;
            Ok(p)
        })
        .transpose()
}

pub(super) fn build_option(
    scope: &Scope,
    question_id: Uuid,
    index: usize,
    input: OptionIn,
    id: Uuid,
    created_at: Ts,
    now: Ts,
) -> AppResult<QuestionOption> {
    let text = input.text.trim().to_string();
    if text.is_empty() {
        return Err(AppError::validation(format!(
            "options[{index}].text should not be empty"
        )));
    }
    let ordering = match input.ordering {
        Some(o) => o,
        None => i32::try_from(index).unwrap_or(i32::MAX),
    };
    Ok(QuestionOption {
        question_option_id: Id(id),
        tenant_id: Id(scope.tenant.as_uuid()),
        organisation_id: Id(scope.organisation.as_uuid()),
        question_id: Id(question_id),
        text,
        media: input
            .media
            .map(|m| m.checked(&format!("options[{index}].media")))
            .transpose()?,
        match_with: input
            .match_with
            .map(|m| m.trim().to_string())
            .filter(|m| !m.is_empty()),
        match_with_media: input
            .match_with_media
            .map(|m| m.checked(&format!("options[{index}].matchWithMedia")))
            .transpose()?,
        ordering,
        is_correct: input.is_correct.unwrap_or(false),
        marks: input.marks.unwrap_or(Marks::ZERO),
        blank_index: input
            .blank_index
            .map(|b| to_i32(b, &format!("options[{index}].blankIndex")))
            .transpose()?,
        case_sensitive: input.case_sensitive.unwrap_or(false),
        created_at,
        updated_at: now,
    })
}

#[cfg(test)]
mod tag_tests {
    use super::clean_tags;

    #[test]
    fn tags_are_trimmed_distinct_and_capped_in_linear_time() {
        let tags = vec![" a ".to_string(), "b".into(), "a".into()];
        assert_eq!(clean_tags(tags).unwrap(), ["a", "b"]);
        let fifty: Vec<String> = (0..50).map(|i| format!("t{i}")).collect();
        assert_eq!(clean_tags(fifty.clone()).unwrap().len(), 50);
        let mut fifty_one = fifty;
        fifty_one.push("one more".into());
        assert!(clean_tags(fifty_one).is_err());
        // 200,000 tags (a few MiB of body): answered at once either way.
        let started = std::time::Instant::now();
        let repeated: Vec<String> = (0..200_000).map(|i| format!("t{}", i % 40)).collect();
        assert_eq!(clean_tags(repeated).unwrap().len(), 40);
        let distinct: Vec<String> = (0..200_000).map(|i| format!("t{i}")).collect();
        assert!(clean_tags(distinct).is_err());
        assert!(
            started.elapsed() < std::time::Duration::from_secs(2),
            "{:?}",
            started.elapsed()
        );
    }
}
