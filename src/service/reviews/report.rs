//! The question-answer report across a test's learners.

#[allow(unused_imports)]
use super::*;

/// Query of `GET /tests/{id}/question-answer-report`.
#[derive(Debug, Clone, Default, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
pub struct ReportQuery {
    /// 1 to 100, default 10 (learners per page).
    #[serde(default, deserialize_with = "crate::service::de::opt_num")]
    pub limit: Option<i64>,
    #[serde(default, deserialize_with = "crate::service::de::opt_num")]
    pub offset: Option<i64>,
    /// Only these learners (repeat the parameter or separate with commas).
    #[serde(default, deserialize_with = "crate::service::de::list")]
    pub user_ids: Vec<Uuid>,
}

pub(super) fn answer_text(
    q: &question_repo::Question,
    options: &[question_repo::QuestionOption],
    raw: &Value,
) -> String {
    let a: Answer = serde_json::from_value(raw.clone()).unwrap_or_default();
    let option_text = |id: &Uuid| {
        options
            .iter()
            .find(|o| o.question_option_id.0 == *id)
            .map(|o| o.text.clone())
            .unwrap_or_else(|| id.to_string())
    };
    match q.qtype {
        QuestionType::Subjective | QuestionType::Essay => a.text.unwrap_or_default(),
        QuestionType::File => a.file.unwrap_or_default(),
        QuestionType::Rating => a.rating.map(|r| r.to_string()).unwrap_or_default(),
        QuestionType::FillBlank => blanks_by_index(a.blanks.as_deref().unwrap_or_default())
            .values()
            .map(|t| t.to_string())
            .collect::<Vec<_>>()
            .join("; "),
        QuestionType::Match => a
            .matches
            .unwrap_or_default()
            .iter()
            .map(|m| format!("{} -> {}", option_text(&m.option_id), m.match_with))
            .collect::<Vec<_>>()
            .join("; "),
        _ => a
            .selected_option_ids
            .unwrap_or_default()
            .iter()
            .map(option_text)
            .collect::<Vec<_>>()
            .join("; "),
    }
}

/// `GET /tests/{id}/question-answer-report`: one row per learner (their latest attempt), one
/// column per question, answers of that attempt only.
pub async fn question_answer_report(
    store: &Store,
    users: &crate::service::users::UserDirectory,
    scope: &Scope,
    authorization: Option<&str>,
    test_id: Uuid,
    q: ReportQuery,
) -> AppResult<Value> {
    let limit = q.limit.unwrap_or(10);
    let offset = q.offset.unwrap_or(0);
    if !(1..=100).contains(&limit) {
        return Err(AppError::validation("limit must be between 1 and 100"));
    }
    if !(0..=1_000_000_000).contains(&offset) {
        return Err(AppError::validation(
            "offset must be between 0 and 1000000000",
        ));
    }
    let test = crate::service::assessments::live(store, scope, test_id).await?;
    let sections = test_repo::sections_of(store, scope, test_id).await?;
    let section_order: HashMap<Uuid, i32> = sections
        .iter()
        .map(|s| (s.section_id.0, s.ordering))
        .collect();
    let mut links = test_repo::links_of(store, scope, test_id).await?;
    links.sort_by_key(|l| {
        (
            l.section_id
                .and_then(|s| section_order.get(&s.0).copied())
                .unwrap_or(0),
            l.ordering,
        )
    });
    crate::service::at_most("userIds", &q.user_ids, crate::service::MAX_IDS)?;
    let (learners, total_users) =
        repo::learners_of(store, scope, test_id, &q.user_ids, limit, offset).await?;
    let mut rows_attempts = Vec::new();
    for u in &learners {
        if let Some(a) = repo::of_user(store, scope, test_id, *u)
            .await?
            .into_iter()
            .last()
        {
            rows_attempts.push(a);
        }
    }
    // Columns: the test's linked questions, else (rule-based) those drawn into the papers.
    let live_sections: std::collections::HashSet<Uuid> = sections
        .iter()
        .filter(|s| s.status != crate::domain::enums::SectionStatus::Archived)
        .map(|s| s.section_id.0)
        .collect();
    let mut question_ids: Vec<Uuid> = links
        .iter()
        .filter(|l| !l.is_conditional && l.section_id.is_some_and(|s| live_sections.contains(&s.0)))
        .map(|l| l.question_id.0)
        .collect();
    if question_ids.is_empty() {
        for a in &rows_attempts {
            for item in a.paper.as_ref().map(|p| p.0.clone()).unwrap_or_default() {
                if !question_ids.contains(&item.question_id) {
                    question_ids.push(item.question_id);
                }
            }
        }
    }
    if question_ids.is_empty() && rows_attempts.is_empty() {
        return Err(AppError::not_found("No questions found for this test"));
    }
    let questions: HashMap<Uuid, question_repo::Question> =
        question_repo::by_ids(store, scope, &question_ids)
            .await?
            .into_iter()
            .filter(|x| x.status != crate::domain::enums::QuestionStatus::Archived)
            .map(|x| (x.question_id.0, x))
            .collect();
    question_ids.retain(|id| questions.contains_key(id));
    let mut options: HashMap<Uuid, Vec<question_repo::QuestionOption>> = HashMap::new();
    for o in question_repo::options_of(store, scope, &question_ids).await? {
        options.entry(o.question_id.0).or_default().push(o);
    }
    let details = users.details(scope, authorization, &learners).await;
    let mut columns = vec![
        json!({"key": "firstName", "header": "First Name", "marks": 0, "type": "string"}),
        json!({"key": "lastName", "header": "Last Name", "marks": 0, "type": "string"}),
        json!({"key": "email", "header": "Email", "marks": 0, "type": "string"}),
        json!({"key": "userId", "header": "User ID", "marks": 0, "type": "string"}),
        json!({"key": "attemptNumber", "header": "Attempt Number", "marks": 0, "type": "number"}),
        json!({"key": "score", "header": "Total Score", "marks": 0, "type": "number"}),
        json!({"key": "timeSpent", "header": "Time Spent (minutes)", "marks": 0, "type": "number"}),
        json!({"key": "status", "header": "Status", "marks": 0, "type": "string"}),
        json!({"key": "startTime", "header": "Start Time", "marks": 0, "type": "datetime"}),
        json!({"key": "submitTime", "header": "Submit Time", "marks": 0, "type": "datetime"}),
    ];
    for id in &question_ids {
        if let Some(x) = questions.get(id) {
            columns.push(json!({"key": id, "header": x.text, "marks": x.marks, "type": x.qtype}));
        }
    }
    let mut data = Vec::new();
    for a in &rows_attempts {
        let d = details.get(&a.user_id.0).cloned().unwrap_or_default();
        let mut row = json!({
            "firstName": d.first_name,
            "lastName": d.last_name,
            "email": d.email,
            "userId": a.user_id,
            "attemptNumber": a.attempt,
            "score": a.score.and_then(|h| Marks::from_hundredths(h).ok()).unwrap_or(Marks::ZERO),
            "timeSpent": (i64::from(a.time_spent.unwrap_or(0)) + 30) / 60,
            "status": a.status,
            "startTime": a.started_at,
            "submitTime": a.submitted_at,
        });
        let answers: HashMap<Uuid, Value> = repo::answers(store, scope, a.attempt_id.0)
            .await?
            .into_iter()
            .map(|x| (x.question_id.0, x.answer.0))
            .collect();
        for id in &question_ids {
            let text = match (questions.get(id), answers.get(id)) {
                (Some(x), Some(raw)) => answer_text(
                    x,
                    options.get(id).map(Vec::as_slice).unwrap_or_default(),
                    raw,
                ),
                _ => String::new(),
            };
            row[id.to_string()] = json!(text);
        }
        data.push(row);
    }
    Ok(json!({
        "testId": test.test_id,
        "testTitle": test.title,
        "metadata": {
            "totalQuestions": question_ids.len(),
            "gradingMethod": test.attempts_grading,
            "allowResubmission": test.allow_resubmission,
            "totalUsers": total_users,
        },
        "columns": columns,
        "data": data,
        "pagination": {
            "totalElements": total_users,
            "totalPages": (total_users + limit - 1) / limit,
            "currentPage": offset / limit + 1,
            "size": limit,
            "hasNext": offset + limit < total_users,
            "hasPrevious": offset > 0,
        }
    }))
}
