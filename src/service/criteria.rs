//! Question selection criteria shared by question listing, rule pools and test rules, and the
//! sort direction of list queries.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::domain::enums::{QuestionLevel, QuestionStatus, QuestionType};
use crate::domain::marks::Marks;
use crate::error::{AppError, AppResult};
use crate::store::Ts;
use crate::store::questions::QuestionFilter;
use crate::store::sql::named_column;

/// `sortOrder`: `ASC` or `DESC` (any case); DESC by default.
pub fn descending(order: Option<&str>) -> AppResult<bool> {
    match order.map(|s| s.trim().to_ascii_uppercase()).as_deref() {
        None | Some("DESC") => Ok(true),
        Some("ASC") => Ok(false),
        Some(other) => Err(AppError::validation(format!(
            "sortOrder must be ASC or DESC, not {other:?}"
        ))),
    }
}

/// The column and direction of a sorted list: `sortBy` (`createdAt` by default), one of
/// `columns` (quoted SQL names), and `sortOrder`.
pub fn sorting(
    sort_by: Option<&str>,
    sort_order: Option<&str>,
    columns: &[&'static str],
) -> AppResult<(&'static str, bool)> {
    let sort = sort_by.unwrap_or("createdAt");
    let order_by = named_column(columns, sort).ok_or_else(|| {
        let names: Vec<&str> = columns.iter().map(|c| c.trim_matches('"')).collect();
        AppError::validation(format!(
            "sortBy must be one of {} (not {sort:?})",
            names.join(", ")
        ))
    })?;
    Ok((order_by, descending(sort_order)?))
}

/// Refuses a bank filter with a list longer than [`MAX_IDS`](super::MAX_IDS) values, named
/// as the criteria and the listing's query name them.
pub fn check_lists(f: &QuestionFilter) -> AppResult<()> {
    use super::{MAX_IDS, at_most};
    at_most("categories", &f.categories, MAX_IDS)?;
    at_most("difficultyLevels", &f.levels, MAX_IDS)?;
    at_most("questionTypes", &f.types, MAX_IDS)?;
    at_most("tags", &f.tags, MAX_IDS)?;
    at_most("marks", &f.marks, MAX_IDS)?;
    at_most("excludeQuestionIds", &f.exclude_ids, MAX_IDS)?;
    at_most("includeQuestionIds", &f.include_ids, MAX_IDS)
}

/// Selection criteria of a rule and of `POST /questions/rule-preview`.
#[derive(Debug, Clone, Default, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Criteria {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub categories: Vec<Uuid>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub difficulty_levels: Vec<QuestionLevel>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub question_types: Vec<QuestionType>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schema(value_type = Vec<f64>)]
    pub marks: Vec<Marks>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub exclude_question_ids: Vec<Uuid>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub include_question_ids: Vec<Uuid>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub time_range: Option<TimeRange>,
}

/// A `{from, to}` window kept as given (serialisable for storage in a rule).
#[derive(Debug, Clone, Default, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TimeRange {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<chrono::DateTime<chrono::Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<chrono::DateTime<chrono::Utc>>,
}

impl Criteria {
    /// Refuses a list longer than [`MAX_IDS`](super::MAX_IDS) (see [`check_lists`]).
    pub fn check(&self) -> AppResult<()> {
        check_lists(&self.filter())
    }

    /// The bank filter these criteria select: published, top-level questions.
    pub fn filter(&self) -> QuestionFilter {
        QuestionFilter {
            statuses: vec![QuestionStatus::Published],
            types: self.question_types.clone(),
            levels: self.difficulty_levels.clone(),
            categories: self.categories.clone(),
            tags: self.tags.clone(),
            marks: self.marks.clone(),
            include_ids: self.include_question_ids.clone(),
            exclude_ids: self.exclude_question_ids.clone(),
            created_from: self.time_range.as_ref().and_then(|t| t.from).map(Ts::new),
            created_to: self.time_range.as_ref().and_then(|t| t.to).map(Ts::new),
            top_level_only: true,
            ..QuestionFilter::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::assessments::TEST_SORT_COLUMNS;
    use crate::store::questions::QUESTION_SORT_COLUMNS;

    #[test]
    fn sorting_defaults_to_newest_first_and_names_the_accepted_keys() {
        assert_eq!(
            sorting(None, None, TEST_SORT_COLUMNS).unwrap(),
            (r#""createdAt""#, true)
        );
        assert_eq!(
            sorting(Some("title"), Some("asc"), TEST_SORT_COLUMNS).unwrap(),
            (r#""title""#, false)
        );
        // The messages the two lists answered with before they shared this function.
        let err = sorting(Some("nope"), None, TEST_SORT_COLUMNS).unwrap_err();
        assert_eq!(
            err.to_string(),
            "sortBy must be one of createdAt, updatedAt, title, ordering, totalMarks, \
             startDate, endDate, status, type (not \"nope\")"
        );
        let err = sorting(Some("title"), None, QUESTION_SORT_COLUMNS).unwrap_err();
        assert_eq!(
            err.to_string(),
            "sortBy must be one of createdAt, updatedAt, text, marks, type, level, status, \
             ordering, idealTime (not \"title\")"
        );
    }
}
