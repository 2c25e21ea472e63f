//! SQLite's write-ahead log, checkpointed by a task of its own.

use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqlitePool, SqlitePoolOptions};

/// How often the write-ahead log is copied into the database file.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(500);

/// Checkpoints SQLite's write-ahead log from a connection of its own, every
/// [`CHECKPOINT_EVERY`], until `writer` closes. The writer's own checkpoints are off
/// (`wal_autocheckpoint = 0`): SQLite runs them inside the commit that crosses the threshold,
/// so a learner's save waited while megabytes of another tenant's questions were copied and
/// synced. A passive checkpoint waits for nobody and blocks nobody.
pub(super) async fn checkpoint_in_background(
    options: &SqliteConnectOptions,
    writer: &SqlitePool,
) -> anyhow::Result<()> {
    let checkpointer = SqlitePoolOptions::new()
        .max_connections(1)
        .min_connections(1)
        .connect_with(options.clone())
        .await?;
    let writer = writer.clone();
    tokio::spawn(async move {
        let mut every = tokio::time::interval(CHECKPOINT_EVERY);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            every.tick().await;
            if writer.is_closed() {
                checkpointer.close().await;
                return;
            }
            match sqlx::query_as::<_, (i64, i64, i64)>("PRAGMA wal_checkpoint(PASSIVE)")
                .fetch_one(&checkpointer)
                .await
            {
                Ok((_, frames, copied)) => {
                    metrics::gauge!("sqlite_wal_frames").set(frames as f64);
                    metrics::gauge!("sqlite_wal_checkpointed_frames").set(copied as f64);
                }
                Err(e) => {
                    tracing::warn!(error = %e, "checkpointing the SQLite write-ahead log failed");
                }
            }
        }
    });
    Ok(())
}
