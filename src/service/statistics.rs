//! `GET /tests/{testId}/statistics`: item statistics over the test's submitted attempts, from
//! sums the database aggregates (`store::statistics`) and the formulas of
//! `domain::statistics`.

use std::collections::HashMap;

use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::domain::ids::Scope;
use crate::domain::statistics::{self as figures, ItemSums};
use crate::error::{AppError, AppResult};
use crate::store::Store;
use crate::store::statistics as repo;

/// The test's statistics.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TestStatistics {
    pub test_id: Uuid,
    /// The version whose attempts are counted (0: attempts from before versions were
    /// recorded).
    pub version: i32,
    /// Submitted, scored attempts counted.
    pub attempts: u64,
    /// Mean total score, in marks.
    pub mean: Option<f64>,
    pub median: Option<f64>,
    /// Of the sample (n - 1).
    pub standard_deviation: Option<f64>,
    /// Cronbach's alpha over the questions below (KR-20 when each is right or wrong).
    pub cronbach_alpha: Option<f64>,
    /// How many attempts scored each total, lowest first (the score histogram).
    pub score_distribution: Vec<ScoreCount>,
    pub questions: Vec<QuestionStatistics>,
}

/// How many attempts scored `score`.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ScoreCount {
    pub score: f64,
    pub attempts: i64,
}

/// One question's statistics.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct QuestionStatistics {
    pub question_id: Uuid,
    pub text: String,
    #[serde(rename = "type")]
    pub question_type: String,
    pub marks: f64,
    /// Attempts with a score for it (unanswered ones count as 0 in the figures).
    pub scored: i64,
    /// Mean score over the attempts, in marks.
    pub mean_score: Option<f64>,
    /// Mean score over its marks, 0 to 1.
    pub facility: Option<f64>,
    /// Correlation of its score with the rest of the test's, -1 to 1.
    pub discrimination: Option<f64>,
    /// For questions with options: how many attempts chose each, and their share.
    pub options: Vec<OptionStatistics>,
}

/// How often one option was chosen.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct OptionStatistics {
    pub question_option_id: Uuid,
    pub text: String,
    pub is_correct: bool,
    pub chosen: i64,
    /// `chosen` over the attempts counted.
    pub share: Option<f64>,
}

/// The statistics of the attempts on `version` of the test (default: its latest).
pub async fn of_test(
    store: &Store,
    scope: &Scope,
    test_id: Uuid,
    version: Option<i32>,
) -> AppResult<TestStatistics> {
    let test = crate::service::assessments::live(store, scope, test_id).await?;
    let version = version.unwrap_or(test.version);
    if !(0..=test.version).contains(&version) {
        return Err(AppError::validation(format!(
            "version must be between 0 and {} (the test's latest)",
            test.version
        )));
    }
    let mut sums = repo::sums(store, scope, test_id, version).await?;
    as_published(store, scope, test_id, version, &mut sums).await?;
    let n = sums.totals.n;
    let items: HashMap<Uuid, (ItemSums, i64)> = sums
        .items
        .iter()
        .map(|(q, s, scored)| (*q, (*s, *scored)))
        .collect();
    let mut chosen: HashMap<(Uuid, String), i64> = HashMap::new();
    for (q, option, count) in sums.chosen {
        chosen.insert((q, option.to_ascii_lowercase()), count);
    }
    let every_item: Vec<ItemSums> = sums
        .questions
        .iter()
        .map(|q| items.get(&q.question_id.0).map(|i| i.0).unwrap_or_default())
        .collect();
    let test = figures::test_figures(sums.totals, &every_item);
    let questions = sums
        .questions
        .iter()
        .zip(&every_item)
        .map(|(q, item)| {
            let marks = q.marks as f64 / 100.0;
            let f = figures::item_figures(sums.totals, *item, marks);
            let options = sums
                .options
                .iter()
                .filter(|o| o.question_id.0 == q.question_id.0)
                .map(|o| {
                    let key = (q.question_id.0, o.option_id.0.to_string());
                    let count = chosen.get(&key).copied().unwrap_or(0);
                    OptionStatistics {
                        question_option_id: o.option_id.0,
                        text: o.text.clone(),
                        is_correct: o.is_correct,
                        chosen: count,
                        share: (n > 0).then(|| count as f64 / n as f64),
                    }
                })
                .collect();
            QuestionStatistics {
                question_id: q.question_id.0,
                text: q.text.clone(),
                question_type: q.qtype.clone(),
                marks,
                scored: items.get(&q.question_id.0).map_or(0, |i| i.1),
                mean_score: (n > 0).then(|| item.sum / n as f64),
                facility: f.facility,
                discrimination: f.discrimination,
                options,
            }
        })
        .collect();
    Ok(TestStatistics {
        test_id,
        version,
        attempts: n,
        mean: test.mean,
        median: sums.median,
        standard_deviation: test.standard_deviation,
        cronbach_alpha: test.alpha,
        score_distribution: sums
            .scores
            .iter()
            .map(|(score, attempts)| ScoreCount {
                score: *score as f64 / 100.0,
                attempts: *attempts,
            })
            .collect(),
        questions,
    })
}

/// A plain test's version names its questions at their revisions: the statistics speak of
/// those (text, marks and options as that version had them), not of the test as it is now.
async fn as_published(
    store: &Store,
    scope: &Scope,
    test_id: Uuid,
    version: i32,
    sums: &mut repo::Sums,
) -> AppResult<()> {
    if version == 0 {
        return Ok(());
    }
    let mut tx = store.begin_read().await?;
    let pins = match crate::store::revisions::version(&mut tx, scope, test_id, version).await? {
        Some(v) if !v.questions.0.is_empty() => v.questions.0,
        _ => return Ok(tx.rollback().await?),
    };
    let pinned: Vec<(Uuid, Option<i32>)> = pins
        .iter()
        .map(|p| (p.question_id, Some(p.revision)))
        .collect();
    let (questions, options) =
        crate::service::questions::questions_pinned(&mut tx, scope, &pinned).await?;
    tx.rollback().await?;
    // The order the statistics gave, then any pinned question they did not list.
    let mut order: Vec<Uuid> = sums
        .questions
        .iter()
        .map(|q| q.question_id.0)
        .filter(|id| questions.contains_key(id))
        .collect();
    for p in &pins {
        if !order.contains(&p.question_id) && questions.contains_key(&p.question_id) {
            order.push(p.question_id);
        }
    }
    let answered_elsewhere: Vec<repo::StatQuestion> = sums
        .questions
        .drain(..)
        .filter(|q| !questions.contains_key(&q.question_id.0))
        .collect();
    sums.questions = order
        .iter()
        .filter_map(|id| questions.get(id))
        .map(|q| repo::StatQuestion {
            question_id: q.question_id,
            text: q.text.clone(),
            qtype: q.qtype.as_str().to_string(),
            marks: q.marks.hundredths(),
        })
        .chain(answered_elsewhere)
        .collect();
    sums.options
        .retain(|o| !questions.contains_key(&o.question_id.0));
    for id in &order {
        for o in options.get(id).map(Vec::as_slice).unwrap_or_default() {
            sums.options.push(repo::StatOption {
                option_id: o.question_option_id,
                question_id: o.question_id,
                text: o.text.clone(),
                is_correct: o.is_correct,
            });
        }
    }
    Ok(())
}
