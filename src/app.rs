//! Application state and the router factory.

use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;
use axum::Router;
use metrics_exporter_prometheus::PrometheusHandle;

use crate::config::{Config, ConfigError};
use crate::http::auth::Authenticator;
use crate::store::{Store, StoreOptions};

/// Everything a handler may need. Cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub store: Store,
    pub config: Arc<Config>,
    pub auth: Arc<Authenticator>,
    pub metrics: PrometheusHandle,
    /// The global prefix without slashes, e.g. `assessment/v1`.
    pub prefix: Arc<str>,
    pub started_at: Instant,
    /// The user service, for report names.
    pub users: Arc<crate::service::users::UserDirectory>,
    /// The internal plugins the dispatcher runs.
    pub plugins: crate::events::plugins::Registry,
    /// The time source: the system clock, or a test's manual clock.
    pub clock: crate::clock::Clock,
}

impl AppState {
    /// State over an already connected and migrated store.
    pub fn new(config: Config, store: Store) -> Result<AppState, ConfigError> {
        config.validate()?;
        let auth = Authenticator::from_config(&config)?;
        let prefix = config.prefix()?;
        let users = crate::service::users::UserDirectory::new(config.user_service()?);
        Ok(AppState {
            users: Arc::new(users),
            plugins: crate::events::plugins::Registry::from_config(&config),
            store,
            auth: Arc::new(auth),
            metrics: crate::http::metrics::install(),
            prefix: Arc::from(prefix),
            config: Arc::new(config),
            started_at: Instant::now(),
            clock: crate::clock::Clock::system(),
        })
    }

    /// Validates the configuration, connects to the database and migrates it.
    pub async fn connect(config: Config) -> anyhow::Result<AppState> {
        config.validate()?;
        let url = config.database()?;
        let store = Store::connect(&url, store_options(&config))
            .await
            .with_context(|| format!("connecting to {}", url.redacted()))?;
        store.migrate().await?;
        Ok(AppState::new(config, store)?)
    }
}

/// Pool settings from the configuration.
pub fn store_options(config: &Config) -> StoreOptions {
    StoreOptions {
        pool_size: config.database_pool_size,
        // The whole pool, warm: connections a burst needs are open before it comes.
        warm_connections: config.database_pool_size,
        sqlite_synchronous: config.sqlite_synchronous,
        ..StoreOptions::default()
    }
}

/// The whole HTTP application.
pub fn build_app(state: AppState) -> Router {
    crate::http::router_with(state, Router::new())
}
