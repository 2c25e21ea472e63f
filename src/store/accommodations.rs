//! SQL for accommodations (one row per test and learner), and the deadlines of the learner's
//! attempts in progress that one moves.

use serde::Serialize;
use sqlx::FromRow;
use tracing::instrument;
use utoipa::ToSchema;
use uuid::Uuid;

use super::db::sid;
use super::{Db, Id, Ts, Tx};
use crate::domain::ids::Scope;

/// A stored accommodation.
#[derive(Debug, Clone, FromRow, Serialize, ToSchema)]
#[sqlx(rename_all = "camelCase")]
#[serde(rename_all = "camelCase")]
pub struct AccommodationRow {
    #[schema(value_type = String, format = Uuid)]
    pub test_id: Id,
    #[schema(value_type = String, format = Uuid)]
    pub user_id: Id,
    /// Minutes added to the time limit.
    pub extra_time_minutes: Option<i32>,
    /// The time limit multiplied by this (instead of minutes added).
    pub time_multiplier: Option<f64>,
    /// Attempts allowed beyond the test's.
    pub extra_attempts: i32,
    /// A later end date for this learner.
    #[schema(value_type = Option<String>, format = DateTime)]
    pub end_date: Option<Ts>,
    #[schema(value_type = String, format = Uuid)]
    pub created_by: Id,
    #[schema(value_type = String, format = DateTime)]
    pub created_at: Ts,
    #[schema(value_type = String, format = Uuid)]
    pub updated_by: Id,
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: Ts,
}

const COLUMNS: &str = r#""testId", "userId", "extraTimeMinutes", "timeMultiplier",
    "extraAttempts", "endDate", "createdBy", "createdAt", "updatedBy", "updatedAt""#;

/// The learner's accommodation at the test.
#[instrument(skip_all, err(level = "warn"))]
pub async fn get<'a>(
    db: impl Into<Db<'a>>,
    scope: &Scope,
    test: Uuid,
    user: Uuid,
) -> Result<Option<AccommodationRow>, sqlx::Error> {
    let sql = format!(
        r#"SELECT {COLUMNS} FROM "testAccommodations" WHERE "testId" = $1 AND "userId" = $2
           AND "tenantId" = $3 AND "organisationId" = $4"#
    );
    let (t, o) = sid(scope);
    crate::on_db!(db.into(), c => sqlx::query_as::<_, AccommodationRow>(&sql)
        .bind(Id(test)).bind(Id(user)).bind(t).bind(o).fetch_optional(c).await)
}

/// The test's accommodations, by learner.
#[instrument(skip_all, err(level = "warn"))]
pub async fn of_test<'a>(
    db: impl Into<Db<'a>>,
    scope: &Scope,
    test: Uuid,
) -> Result<Vec<AccommodationRow>, sqlx::Error> {
    let sql = format!(
        r#"SELECT {COLUMNS} FROM "testAccommodations" WHERE "testId" = $1
           AND "tenantId" = $2 AND "organisationId" = $3 ORDER BY "userId""#
    );
    let (t, o) = sid(scope);
    crate::on_db!(db.into(), c => sqlx::query_as::<_, AccommodationRow>(&sql)
        .bind(Id(test)).bind(t).bind(o).fetch_all(c).await)
}

/// Stores `row` in `scope`, replacing the learner's earlier one (whose `createdBy` and
/// `createdAt` stay). Returns the row as stored.
#[instrument(skip_all, err(level = "warn"))]
pub async fn put(
    tx: &mut Tx,
    scope: &Scope,
    row: &AccommodationRow,
) -> Result<AccommodationRow, sqlx::Error> {
    let sql = format!(
        r#"INSERT INTO "testAccommodations" ({COLUMNS}, "tenantId", "organisationId")
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
        ON CONFLICT ("testId", "userId") DO UPDATE SET
            "extraTimeMinutes" = excluded."extraTimeMinutes",
            "timeMultiplier" = excluded."timeMultiplier",
            "extraAttempts" = excluded."extraAttempts", "endDate" = excluded."endDate",
            "updatedBy" = excluded."updatedBy", "updatedAt" = excluded."updatedAt"
        RETURNING {COLUMNS}"#
    );
    let (t, o) = sid(scope);
    crate::on_tx!(tx, c => sqlx::query_as::<_, AccommodationRow>(&sql)
        .bind(row.test_id).bind(row.user_id).bind(row.extra_time_minutes)
        .bind(row.time_multiplier).bind(row.extra_attempts).bind(row.end_date)
        .bind(row.created_by).bind(row.created_at).bind(row.updated_by).bind(row.updated_at)
        .bind(t).bind(o).fetch_one(c).await)
}

/// Removes the learner's accommodation; whether there was one.
#[instrument(skip_all, err(level = "warn"))]
pub async fn delete(
    tx: &mut Tx,
    scope: &Scope,
    test: Uuid,
    user: Uuid,
) -> Result<bool, sqlx::Error> {
    const SQL: &str = r#"DELETE FROM "testAccommodations" WHERE "testId" = $1 AND "userId" = $2
        AND "tenantId" = $3 AND "organisationId" = $4"#;
    let (t, o) = sid(scope);
    let n = crate::on_tx!(tx, c => sqlx::query(SQL).bind(Id(test)).bind(Id(user)).bind(t).bind(o)
        .execute(c).await.map(|r| r.rows_affected()))?;
    Ok(n > 0)
}

/// The learner's attempts in progress at the test: id and start, locked.
#[instrument(skip_all, err(level = "warn"))]
pub async fn in_progress(
    tx: &mut Tx,
    scope: &Scope,
    test: Uuid,
    user: Uuid,
) -> Result<Vec<(Id, Ts)>, sqlx::Error> {
    let sql = format!(
        r#"SELECT "attemptId", "startedAt" FROM "testAttempts" WHERE "testId" = $1 AND "userId" = $2
           AND "tenantId" = $3 AND "organisationId" = $4 AND "status" = 'I'{}"#,
        super::sql::lock_clause(tx.backend())
    );
    let (t, o) = sid(scope);
    crate::on_tx!(tx, c => sqlx::query_as::<_, (Id, Ts)>(&sql).bind(Id(test)).bind(Id(user))
        .bind(t).bind(o).fetch_all(c).await)
}

/// Sets an attempt's deadline and the end date its accommodation gave it.
#[instrument(skip_all, err(level = "warn"))]
pub async fn reschedule(
    tx: &mut Tx,
    attempt: Id,
    deadline: Option<Ts>,
    accommodated_end: Option<Ts>,
) -> Result<(), sqlx::Error> {
    const SQL: &str = r#"UPDATE "testAttempts" SET "deadlineAt" = $2, "accommodatedEnd" = $3
        WHERE "attemptId" = $1 AND "status" = 'I'"#;
    crate::on_tx!(tx, c => sqlx::query(SQL).bind(attempt).bind(deadline).bind(accommodated_end)
        .execute(c).await.map(|_| ()))
}
