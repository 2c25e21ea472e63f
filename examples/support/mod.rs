//! What the delivery benchmarks share: a store on a new PostgreSQL schema, and the webhook
//! subscription they deliver to.

use std::str::FromStr;

use assessment_service::events::subscriptions::{self, EnvSubscription};
use assessment_service::store::{Store, StoreOptions};

/// A store (10 connections) on a new schema of the PostgreSQL database at `url`, not yet
/// migrated; the schema's name, to drop it afterwards.
pub async fn postgres_store(url: &str, prefix: &str) -> anyhow::Result<(Store, String)> {
    use sqlx::Connection;
    let schema = format!("{prefix}_{}", uuid::Uuid::new_v4().simple());
    let mut c = sqlx::postgres::PgConnection::connect(url).await?;
    sqlx::query(&format!("CREATE SCHEMA \"{schema}\""))
        .execute(&mut c)
        .await?;
    let opts = sqlx::postgres::PgConnectOptions::from_str(url)?
        .options([("search_path", schema.as_str())]);
    let store = Store::connect_postgres(
        opts,
        StoreOptions {
            pool_size: 10,
            ..StoreOptions::default()
        },
    )
    .await?;
    Ok((store, schema))
}

/// One signed webhook subscription, to every event, at `hook`.
pub async fn subscribe_webhook(store: &Store, hook: &str) -> anyhow::Result<()> {
    subscriptions::sync(
        store,
        &[EnvSubscription {
            name: "external-service",
            url: url::Url::parse(hook)?,
            api_key: None,
            events: vec!["*".into()],
            secret: Some("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".into()),
            timeout_ms: subscriptions::DEFAULT_TIMEOUT_MS as i32,
            max_retries: subscriptions::DEFAULT_RETRIES as i32,
        }],
        &[],
    )
    .await?;
    Ok(())
}
