//! Listing tests: filters, date ranges, sorting and pages.

#[allow(unused_imports)]
use super::*;

/// Query of `GET /tests` (and body of `POST /tests/listsearch`).
#[derive(Debug, Clone, Default, Deserialize, IntoParams, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
pub struct TestListQuery {
    #[serde(default, deserialize_with = "de::opt_num")]
    pub limit: Option<i64>,
    #[serde(default, deserialize_with = "de::opt_num")]
    pub offset: Option<i64>,
    #[serde(default)]
    pub search: Option<String>,
    /// Without it, archived tests are left out.
    #[serde(default)]
    pub status: Option<TestStatus>,
    #[serde(default, rename = "type")]
    #[param(rename = "type")]
    pub test_type: Option<TestType>,
    #[serde(default)]
    #[param(value_type = Option<f64>)]
    #[schema(value_type = Option<f64>)]
    pub min_marks: Option<Marks>,
    #[serde(default)]
    #[param(value_type = Option<f64>)]
    #[schema(value_type = Option<f64>)]
    pub max_marks: Option<Marks>,
    #[serde(default)]
    pub context_type: Option<String>,
    #[serde(default, deserialize_with = "de::list")]
    pub context_id: Vec<Uuid>,
    /// Bounds on startDate: any of gt, gte, lt, lte, eq (`startDate[gte]=2026-03-09`).
    #[serde(default)]
    #[param(value_type = Option<Object>, style = DeepObject, explode)]
    #[schema(value_type = Option<Object>)]
    pub start_date: Option<HashMap<String, String>>,
    #[serde(default)]
    #[param(value_type = Option<Object>, style = DeepObject, explode)]
    #[schema(value_type = Option<Object>)]
    pub end_date: Option<HashMap<String, String>>,
    /// One of createdAt, updatedAt, title, ordering, totalMarks, startDate, endDate, status, type.
    #[serde(default)]
    pub sort_by: Option<String>,
    #[serde(default)]
    pub sort_order: Option<String>,
}

pub(super) fn date_ops(
    field: &str,
    raw: &Option<HashMap<String, String>>,
) -> AppResult<Vec<(DateOp, Ts)>> {
    let Some(map) = raw else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    for (k, v) in map {
        let op = match k.as_str() {
            "gt" => DateOp::Gt,
            "gte" => DateOp::Gte,
            "lt" => DateOp::Lt,
            "lte" => DateOp::Lte,
            "eq" => DateOp::Eq,
            other => {
                return Err(AppError::validation(format!(
                    "{field}.{other}: use gt, gte, lt, lte or eq"
                )));
            }
        };
        out.push((
            op,
            parse_date(v).ok_or_else(|| {
                AppError::validation(format!("{field}.{k} must be an ISO 8601 date"))
            })?,
        ));
    }
    Ok(out)
}

pub(super) fn parse_date(s: &str) -> Option<Ts> {
    let s = s.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(Ts::new(t.with_timezone(&Utc)));
    }
    chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|d| Ts::new(d.and_utc()))
}

/// `GET /tests`.
pub async fn list(store: &Store, scope: &Scope, q: TestListQuery) -> AppResult<Page<Test>> {
    let (limit, offset) = page_window(q.limit, q.offset)?;
    let (order_by, desc) = sorting(
        q.sort_by.as_deref(),
        q.sort_order.as_deref(),
        repo::TEST_SORT_COLUMNS,
    )?;
    crate::service::at_most("contextId", &q.context_id, crate::service::MAX_IDS)?;
    let filter = TestFilter {
        search: crate::service::search_text(q.search.clone())?,
        status: q.status,
        test_type: q.test_type,
        min_marks: q.min_marks,
        max_marks: q.max_marks,
        context_type: q.context_type.clone().filter(|c| !c.trim().is_empty()),
        context_ids: q.context_id.clone(),
        start_date: date_ops("startDate", &q.start_date)?,
        end_date: date_ops("endDate", &q.end_date)?,
    };
    let (rows, total) = repo::list(store, scope, &filter, order_by, desc, limit, offset).await?;
    Ok(Page::new(rows, total, limit, offset))
}
