//! Listing questions, and the preview of what a rule's criteria select.

#[allow(unused_imports)]
use super::*;
use crate::store::attempts::PaperItem;

/// Query of `GET /questions`.
#[derive(Debug, Clone, Default, Deserialize, IntoParams, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
pub struct QuestionListQuery {
    #[serde(default, deserialize_with = "de::opt_num")]
    pub limit: Option<i64>,
    #[serde(default, deserialize_with = "de::opt_num")]
    pub offset: Option<i64>,
    /// Case-insensitive match on text and description.
    #[serde(default)]
    pub search: Option<String>,
    #[serde(default)]
    pub status: Option<QuestionStatus>,
    #[serde(default, rename = "type")]
    #[param(rename = "type")]
    pub qtype: Option<QuestionType>,
    #[serde(default)]
    pub level: Option<QuestionLevel>,
    #[serde(default)]
    pub category_id: Option<Uuid>,
    #[serde(default, deserialize_with = "de::list")]
    pub categories: Vec<Uuid>,
    #[serde(default, deserialize_with = "de::list")]
    pub difficulty_levels: Vec<QuestionLevel>,
    #[serde(default, deserialize_with = "de::list")]
    pub question_types: Vec<QuestionType>,
    #[serde(default, deserialize_with = "de::list")]
    pub tags: Vec<String>,
    #[serde(default, deserialize_with = "de::list")]
    #[param(value_type = Vec<f64>)]
    #[schema(value_type = Vec<f64>)]
    pub marks: Vec<Marks>,
    #[serde(default, deserialize_with = "de::list")]
    pub exclude_question_ids: Vec<Uuid>,
    #[serde(default, deserialize_with = "de::list")]
    pub include_question_ids: Vec<Uuid>,
    #[serde(default)]
    #[param(value_type = Option<f64>)]
    #[schema(value_type = Option<f64>)]
    pub min_marks: Option<Marks>,
    #[serde(default)]
    #[param(value_type = Option<f64>)]
    #[schema(value_type = Option<f64>)]
    pub max_marks: Option<Marks>,
    #[serde(default)]
    pub time_range_from: Option<chrono::DateTime<chrono::Utc>>,
    #[serde(default)]
    pub time_range_to: Option<chrono::DateTime<chrono::Utc>>,
    /// `true`: published questions only, with pool metadata.
    #[serde(default, deserialize_with = "de::opt_bool")]
    pub rule_preview: Option<bool>,
    /// One of createdAt, updatedAt, text, marks, type, level, status, ordering, idealTime.
    #[serde(default)]
    pub sort_by: Option<String>,
    /// `ASC` or `DESC` (default).
    #[serde(default)]
    pub sort_order: Option<String>,
}

/// A page of questions, with pool metadata when `rulePreview=true`.
#[derive(Debug, Serialize, ToSchema)]
pub struct QuestionPage {
    #[serde(flatten)]
    pub page: Page<QuestionOut>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub metadata: Option<Value>,
}

/// Options grouped by the question they belong to, each group in the order given.
pub(crate) fn options_by_question(
    options: Vec<QuestionOption>,
) -> HashMap<Uuid, Vec<QuestionOption>> {
    let mut by_question: HashMap<Uuid, Vec<QuestionOption>> = HashMap::new();
    for o in options {
        by_question.entry(o.question_id.0).or_default().push(o);
    }
    by_question
}

/// Questions by id, and their options by question id in display order.
pub(crate) type Bank = (HashMap<Uuid, Question>, HashMap<Uuid, Vec<QuestionOption>>);

fn bank(questions: Vec<Question>, all_options: Vec<QuestionOption>) -> Bank {
    let questions = questions
        .into_iter()
        .map(|q| (q.question_id.0, q))
        .collect();
    let mut options = options_by_question(all_options);
    for list in options.values_mut() {
        list.sort_by_key(|o| (o.ordering, o.created_at, o.question_option_id.0));
    }
    (questions, options)
}

/// Questions and options, read on a read connection or within a transaction (a transaction
/// must never wait for a second pooled connection).
pub(crate) async fn questions_with_options<'a>(
    db: impl Into<Db<'a>>,
    scope: &Scope,
    ids: &[Uuid],
) -> AppResult<Bank> {
    let mut db = db.into();
    let questions = repo::by_ids(db.reborrow(), scope, ids).await?;
    let options = repo::options_of(db, scope, ids).await?;
    Ok(bank(questions, options))
}

/// The questions and options of an attempt's paper, each at the revision the paper holds
/// (an item without one: as the question is now). See [`questions_pinned`].
pub(crate) async fn questions_at<'a>(
    db: impl Into<Db<'a>>,
    scope: &Scope,
    paper: &[PaperItem],
) -> AppResult<Bank> {
    let pins: Vec<(Uuid, Option<i32>)> =
        paper.iter().map(|p| (p.question_id, p.revision)).collect();
    questions_pinned(db, scope, &pins).await
}

/// These questions and their options, each at the revision given (none: as it is now). One
/// read when no question was edited since; one more for the kept revisions otherwise.
pub(crate) async fn questions_pinned<'a>(
    db: impl Into<Db<'a>>,
    scope: &Scope,
    pins: &[(Uuid, Option<i32>)],
) -> AppResult<Bank> {
    let mut db = db.into();
    let ids: Vec<Uuid> = pins.iter().map(|(id, _)| *id).collect();
    let (mut questions, mut options) = questions_with_options(db.reborrow(), scope, &ids).await?;
    let stale: HashMap<Uuid, i32> = pins
        .iter()
        .filter_map(|(id, r)| r.map(|r| (*id, r)))
        .filter(|(id, r)| questions.get(id).is_none_or(|q| q.revision != *r))
        .collect();
    if stale.is_empty() {
        return Ok((questions, options));
    }
    let ids: Vec<Uuid> = stale.keys().copied().collect();
    for (q, mut opts) in crate::store::revisions::of(db, scope, &ids).await? {
        let id = q.question_id.0;
        if stale.get(&id) == Some(&q.revision) {
            opts.sort_by_key(|o| (o.ordering, o.created_at, o.question_option_id.0));
            options.insert(id, opts);
            questions.insert(id, q);
        }
    }
    Ok((questions, options))
}

/// Each question with its options, in the order given.
pub(crate) async fn with_options(
    store: &Store,
    scope: &Scope,
    questions: Vec<Question>,
) -> AppResult<Vec<QuestionOut>> {
    let ids: Vec<Uuid> = questions.iter().map(|q| q.question_id.0).collect();
    let mut options = options_by_question(repo::options_of(store, scope, &ids).await?);
    Ok(questions
        .into_iter()
        .map(|q| {
            let opts = options.remove(&q.question_id.0).unwrap_or_default();
            QuestionOut {
                question: q,
                options: opts,
            }
        })
        .collect())
}

/// `GET /questions`.
pub async fn list(store: &Store, scope: &Scope, q: QuestionListQuery) -> AppResult<QuestionPage> {
    let (limit, offset) = page_window(q.limit, q.offset)?;
    let (order_by, desc) = sorting(
        q.sort_by.as_deref(),
        q.sort_order.as_deref(),
        repo::QUESTION_SORT_COLUMNS,
    )?;
    let preview = q.rule_preview.unwrap_or(false);
    let mut filter = QuestionFilter {
        search: crate::service::search_text(q.search)?,
        statuses: q.status.into_iter().collect(),
        types: q.question_types,
        levels: q.difficulty_levels,
        categories: q.categories,
        tags: q.tags,
        marks: q.marks,
        include_ids: q.include_question_ids,
        exclude_ids: q.exclude_question_ids,
        min_marks: q.min_marks,
        max_marks: q.max_marks,
        created_from: q.time_range_from.map(Ts::new),
        created_to: q.time_range_to.map(Ts::new),
        top_level_only: false,
    };
    filter.types.extend(q.qtype);
    filter.levels.extend(q.level);
    filter.categories.extend(q.category_id);
    super::super::criteria::check_lists(&filter)?;
    if preview {
        filter.statuses = vec![QuestionStatus::Published];
    }
    let (rows, total) = repo::list(store, scope, &filter, order_by, desc, limit, offset).await?;
    let content = with_options(store, scope, rows).await?;
    let metadata = preview.then(
        || json!({"totalQuestions": total, "availableForRules": total, "rulePreviewMode": true}),
    );
    Ok(QuestionPage {
        page: Page::new(content, total, limit, offset),
        metadata,
    })
}

/// Result of `POST /questions/rule-preview`.
#[derive(Debug, Serialize, ToSchema)]
pub struct RulePreview {
    pub questions: Vec<QuestionOut>,
    #[schema(value_type = Object)]
    pub metadata: Value,
}

/// The published, top-level questions matching `criteria`, with distribution metadata.
pub async fn rule_preview(
    store: &Store,
    scope: &Scope,
    criteria: &Criteria,
) -> AppResult<RulePreview> {
    criteria.check()?;
    let rows = repo::matching(store, scope, &criteria.filter()).await?;
    let total_marks: Marks = rows.iter().map(|q| q.marks).sum();
    let mut marks_distribution: BTreeMap<String, i64> = BTreeMap::new();
    let mut types: BTreeMap<String, i64> = BTreeMap::new();
    let mut levels: BTreeMap<String, i64> = BTreeMap::new();
    let mut categories: BTreeMap<String, i64> = BTreeMap::new();
    for q in &rows {
        *marks_distribution.entry(q.marks.to_string()).or_default() += 1;
        *types.entry(q.qtype.to_string()).or_default() += 1;
        *levels.entry(q.level.to_string()).or_default() += 1;
        if let Some(c) = q.category_id {
            *categories.entry(c.0.to_string()).or_default() += 1;
        }
    }
    let n = rows.len() as i64;
    let average = if n == 0 {
        json!(0)
    } else {
        // Rounded half up to hundredths, shown as upstream does ("x.yy").
        let avg = (total_marks.hundredths() * 2 + n) / (2 * n);
        json!(format!("{}.{:02}", avg / 100, avg % 100))
    };
    let questions = with_options(store, scope, rows).await?;
    Ok(RulePreview {
        metadata: json!({
            "totalQuestions": n,
            "totalMarks": total_marks,
            "marksDistribution": marks_distribution,
            "averageMarks": average,
            "questionTypes": types,
            "difficultyLevels": levels,
            "categories": categories,
        }),
        questions,
    })
}
