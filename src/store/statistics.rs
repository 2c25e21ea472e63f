//! SQL for item statistics: sums over a test's submitted attempts, aggregated by the database
//! (no answer is loaded into memory), in marks.

use tracing::instrument;
use uuid::Uuid;

use super::Backend;
use super::db::sid;
use super::{Id, Store};
use crate::domain::ids::Scope;
use crate::domain::statistics::{ItemSums, TotalSums};

/// Hundredths to marks; hundredths squared to marks squared.
const H: f64 = 100.0;
const H2: f64 = 10_000.0;

/// The submitted (and scored) attempts of the test on the version `$4`.
const SUBMITTED: &str = r#"a."testId" = $1 AND a."tenantId" = $2 AND a."organisationId" = $3
    AND a."testVersion" = $4 AND a."status" = 'S' AND a."score" IS NOT NULL"#;

/// The questions the statistics speak of: the test's own (plain tests) and any answered in its
/// submitted attempts (the questions rule-based papers drew).
fn questions_filter() -> String {
    format!(
        r#"q."tenantId" = $2 AND q."organisationId" = $3 AND (
        q."questionId" IN (SELECT "questionId" FROM "testQuestions" WHERE "testId" = $1)
        OR q."questionId" IN (SELECT u."questionId" FROM "testUserAnswers" u
            JOIN "testAttempts" a ON a."attemptId" = u."attemptId" WHERE {SUBMITTED}))"#
    )
}

/// A question the statistics speak of.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct StatQuestion {
    #[sqlx(rename = "questionId")]
    pub question_id: Id,
    pub text: String,
    #[sqlx(rename = "type")]
    pub qtype: String,
    /// Hundredths.
    pub marks: i64,
}

/// An option of one of those questions.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct StatOption {
    #[sqlx(rename = "questionOptionId")]
    pub option_id: Id,
    #[sqlx(rename = "questionId")]
    pub question_id: Id,
    pub text: String,
    #[sqlx(rename = "isCorrect")]
    pub is_correct: bool,
}

/// Everything the statistics are computed from.
#[derive(Debug, Default)]
pub struct Sums {
    pub totals: TotalSums,
    pub median: Option<f64>,
    pub questions: Vec<StatQuestion>,
    /// By question: its sums and how many attempts scored it.
    pub items: Vec<(Uuid, ItemSums, i64)>,
    pub options: Vec<StatOption>,
    /// By question and option: how many attempts chose it.
    pub chosen: Vec<(Uuid, String, i64)>,
    /// How many attempts scored each total (hundredths), lowest first.
    pub scores: Vec<(i64, i64)>,
}

#[instrument(skip_all, err(level = "warn"))]
pub async fn sums(
    store: &Store,
    scope: &Scope,
    test: Uuid,
    version: i32,
) -> Result<Sums, sqlx::Error> {
    let (t, o) = sid(scope);
    let test = Id(test);
    let totals_sql = format!(
        r#"SELECT COUNT(*), CAST(COALESCE(SUM(a."score"), 0) AS DOUBLE PRECISION),
            CAST(COALESCE(SUM(a."score" * a."score"), 0) AS DOUBLE PRECISION)
        FROM "testAttempts" a WHERE {SUBMITTED}"#
    );
    let (n, sum, sum_sq): (i64, f64, f64) = crate::on_reader!(store, c =>
        sqlx::query_as(&totals_sql).bind(test).bind(t).bind(o).bind(version).fetch_one(c).await)?;
    let totals = TotalSums {
        n: n.max(0) as u64,
        sum: sum / H,
        sum_sq: sum_sq / H2,
    };
    // The middle one or two scores.
    let median = if n > 0 {
        let sql = format!(
            r#"SELECT CAST(AVG("score") AS DOUBLE PRECISION) FROM (SELECT a."score" FROM "testAttempts" a
                WHERE {SUBMITTED} ORDER BY a."score" LIMIT $5 OFFSET $6) m"#
        );
        let (limit, offset) = (2 - n % 2, (n - 1) / 2);
        let m: Option<f64> = crate::on_reader!(store, c => sqlx::query_scalar(&sql)
            .bind(test).bind(t).bind(o).bind(version).bind(limit).bind(offset).fetch_one(c).await)?;
        m.map(|m| m / H)
    } else {
        None
    };
    let questions_sql = format!(
        r#"SELECT q."questionId", q."text", q."type", q."marks" FROM "questions" q
        LEFT JOIN "testQuestions" tq ON tq."questionId" = q."questionId" AND tq."testId" = $1
        WHERE {} ORDER BY tq."ordering" IS NULL, tq."ordering", q."createdAt", q."questionId""#,
        questions_filter()
    );
    let questions: Vec<StatQuestion> = crate::on_reader!(store, c => sqlx::query_as(&questions_sql)
        .bind(test).bind(t).bind(o).bind(version).fetch_all(c).await)?;
    let items_sql = format!(
        r#"SELECT u."questionId", CAST(COALESCE(SUM(u."score"), 0) AS DOUBLE PRECISION),
            CAST(COALESCE(SUM(u."score" * u."score"), 0) AS DOUBLE PRECISION),
            CAST(COALESCE(SUM(u."score" * a."score"), 0) AS DOUBLE PRECISION), COUNT(u."score")
        FROM "testUserAnswers" u JOIN "testAttempts" a ON a."attemptId" = u."attemptId"
        WHERE {SUBMITTED} GROUP BY u."questionId""#
    );
    let rows: Vec<(Id, f64, f64, f64, i64)> = crate::on_reader!(store, c =>
        sqlx::query_as(&items_sql).bind(test).bind(t).bind(o).bind(version).fetch_all(c).await)?;
    let items = rows
        .into_iter()
        .map(|(q, s, ss, st, scored)| {
            let sums = ItemSums {
                sum: s / H,
                sum_sq: ss / H2,
                sum_times_total: st / H2,
            };
            (q.0, sums, scored)
        })
        .collect();
    let options_sql = format!(
        r#"SELECT o."questionOptionId", o."questionId", o."text", o."isCorrect"
        FROM "questionOptions" o JOIN "questions" q ON q."questionId" = o."questionId"
        WHERE {} ORDER BY o."questionId", o."ordering", o."questionOptionId""#,
        questions_filter()
    );
    let options: Vec<StatOption> = crate::on_reader!(store, c => sqlx::query_as(&options_sql)
        .bind(test).bind(t).bind(o).bind(version).fetch_all(c).await)?;
    // Each chosen option id of each answer, counted by the database.
    let chosen_sql = match store.backend() {
        Backend::Postgres => format!(
            r#"SELECT u."questionId", c.value, COUNT(*) FROM "testUserAnswers" u
            JOIN "testAttempts" a ON a."attemptId" = u."attemptId",
            jsonb_array_elements_text(CASE WHEN jsonb_typeof(u."answer" -> 'selectedOptionIds') = 'array'
                THEN u."answer" -> 'selectedOptionIds' ELSE '[]'::jsonb END) AS c(value)
            WHERE {SUBMITTED} GROUP BY u."questionId", c.value"#
        ),
        Backend::Sqlite => format!(
            r#"SELECT u."questionId", c.value, COUNT(*) FROM "testUserAnswers" u
            JOIN "testAttempts" a ON a."attemptId" = u."attemptId",
            json_each(u."answer", '$.selectedOptionIds') AS c
            WHERE {SUBMITTED} AND json_type(u."answer", '$.selectedOptionIds') = 'array'
            GROUP BY u."questionId", c.value"#
        ),
    };
    let chosen: Vec<(Id, String, i64)> = crate::on_reader!(store, c => sqlx::query_as(&chosen_sql)
        .bind(test).bind(t).bind(o).bind(version).fetch_all(c).await)?;
    let scores_sql = format!(
        r#"SELECT a."score", COUNT(*) FROM "testAttempts" a WHERE {SUBMITTED}
        GROUP BY a."score" ORDER BY a."score""#
    );
    let scores: Vec<(i64, i64)> = crate::on_reader!(store, c => sqlx::query_as(&scores_sql)
        .bind(test).bind(t).bind(o).bind(version).fetch_all(c).await)?;
    Ok(Sums {
        totals,
        median,
        scores,
        questions,
        items,
        options,
        chosen: chosen.into_iter().map(|(q, v, n)| (q.0, v, n)).collect(),
    })
}
