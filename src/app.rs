//! The composition root: the parts of the service built once from the configuration
//! ([`Components`]), the application state assembled from them, and the router factory.

use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;
use axum::Router;

use crate::config::{Config, ConfigError, DatabaseUrl};
use crate::events::brokers::{self, BrokerSpec};
use crate::events::plugins::Registry;
use crate::events::sinks::Brokers;
use crate::events::subscriptions::{self, EnvSubscription, PluginsFile};
pub use crate::http::AppState;
use crate::http::auth::Authenticator;
use crate::service::users::UserDirectory;
use crate::store::{Store, StoreOptions};

/// The parts of the service the configuration describes, each built once.
///
/// Building them is the whole check of the configuration ([`Components::from_config`]): a bad
/// value is a [`ConfigError`] naming its variable. It is pure but for reading the files the
/// configuration names (`JWT_PUBLIC_KEY` given as a path, `PLUGINS_FILE`): no connection, no
/// write. Build it once logging is installed: whether the `debug-log` plugin runs depends on
/// the log level in force.
#[derive(Debug)]
pub struct Components {
    /// The global prefix without slashes, e.g. `assessment/v1`.
    pub prefix: String,
    pub database: DatabaseUrl,
    pub auth: Authenticator,
    /// The user service, for report names.
    pub users: UserDirectory,
    /// The environment's webhooks (none in the `test` profile unless asked for).
    pub env_subscriptions: Vec<EnvSubscription>,
    /// The plugins file, when one is given and external plugins are registered.
    pub plugins_file: Option<PluginsFile>,
    /// The internal plugins.
    pub plugins: Registry,
    /// The message brokers (environment and plugins file), checked; not connected yet.
    pub broker_specs: Vec<BrokerSpec>,
    /// Uploaded files.
    pub files: crate::service::files::Files,
}

impl Components {
    /// Checks every value that clap cannot check alone, and builds the components.
    pub fn from_config(config: &Config) -> Result<Components, ConfigError> {
        let user_service = config.user_service()?;
        let env_subscriptions = subscriptions::from_config(config)?;
        // A broken file stops the start even where its plugins would not be registered.
        let plugins_file = match &config.plugins_file {
            Some(path) => Some(PluginsFile {
                plugins: subscriptions::read_plugins_file(path)?,
                path: path.clone(),
            }),
            None => None,
        };
        let mut broker_specs = brokers::from_config(config)?;
        if let Some(file) = plugins_file
            .as_ref()
            .filter(|_| config.external_plugins_enabled())
        {
            for p in &file.plugins {
                // Checked when the file was read.
                if let Ok(Some(spec)) = p.broker() {
                    broker_specs.push(spec);
                }
            }
        }
        let custom: Vec<std::sync::Arc<dyn crate::events::plugins::Plugin>> = match &config
            .custom_plugins_dir
        {
            None => Vec::new(),
            Some(dir) => {
                let limits = crate::events::plugins::js::Limits {
                    timeout: std::time::Duration::from_millis(config.custom_plugin_timeout_ms),
                    memory_bytes: (config.custom_plugin_memory_mb * 1024 * 1024) as usize,
                };
                let loaded = crate::events::plugins::js::load_dir(dir, limits)?;
                for p in &loaded {
                    // A broker behind a custom plugin is routed by the plugin's subscription.
                    if let Some(crate::events::plugins::External::Broker(spec)) =
                        crate::events::plugins::Plugin::external(p)
                    {
                        broker_specs.push(spec.clone());
                    }
                }
                loaded
                    .into_iter()
                    .filter(|p| p.is_active())
                    .map(|p| {
                        std::sync::Arc::new(p) as std::sync::Arc<dyn crate::events::plugins::Plugin>
                    })
                    .collect()
            }
        };
        let lms_service = config.lms_service()?;
        let prefix = config.prefix()?;
        let database = config.database()?;
        config.cors_origin_list()?;
        config.trusted_proxy_list()?;
        config.check_log_level()?;
        let auth = Authenticator::from_config(config)?;
        Ok(Components {
            prefix,
            database,
            auth,
            users: UserDirectory::new(user_service),
            env_subscriptions,
            plugins_file: plugins_file.filter(|_| config.external_plugins_enabled()),
            plugins: Registry::configured(lms_service, custom)?,
            broker_specs,
            files: crate::service::files::Files::from_config(config)?,
        })
    }

    /// Makes the `subscriptions` table hold the configuration's subscriptions: the
    /// environment's webhooks, the internal plugins and the plugins file's webhooks. Each
    /// source's earlier rows that are no longer configured are deactivated (without a plugins
    /// file, or with external services off, the file's earlier entries too).
    pub async fn sync_subscriptions(&self, store: &Store) -> anyhow::Result<()> {
        subscriptions::sync(store, &self.env_subscriptions, &self.broker_specs).await?;
        self.plugins.sync(store).await?;
        let file_plugins = match &self.plugins_file {
            Some(file) => {
                tracing::info!(count = file.plugins.len(), file = %file.path.display(), "plugins file registered");
                file.plugins.as_slice()
            }
            None => &[],
        };
        subscriptions::sync_file(store, file_plugins, &self.broker_specs).await?;
        tracing::info!(
            count = self.env_subscriptions.len(),
            brokers = self.broker_specs.len(),
            "subscriptions from the environment registered"
        );
        Ok(())
    }
}

impl AppState {
    /// State from the components built from `config`, over a connected and migrated store.
    pub fn assemble(config: Config, components: Components, store: Store) -> AppState {
        let clock = crate::clock::Clock::system();
        let limits = Arc::new(crate::http::limits::RateLimits::from_config(&config));
        let starts = Arc::new(crate::http::admission::Admission::new(
            config.start_concurrency,
            config.start_queue_depth,
        ));
        AppState {
            brokers: Brokers::new(&components.broker_specs, &clock),
            users: Arc::new(components.users),
            files: Arc::new(components.files),
            plugins: components.plugins,
            store,
            auth: Arc::new(components.auth),
            metrics: crate::http::metrics::install(),
            prefix: Arc::from(components.prefix),
            config: Arc::new(config),
            started_at: Instant::now(),
            keys: Arc::default(),
            views: Arc::default(),
            contents: Arc::default(),
            pools: Arc::default(),
            starts,
            limits,
            clock,
            tails: Arc::new(tokio::sync::Semaphore::new(
                crate::http::state::MAX_LIVE_TAILS,
            )),
            stopping: tokio_util::sync::CancellationToken::new(),
        }
    }

    /// State over an already connected and migrated store.
    pub fn new(config: Config, store: Store) -> Result<AppState, ConfigError> {
        let components = Components::from_config(&config)?;
        Ok(AppState::assemble(config, components, store))
    }

    /// Validates the configuration, connects to the database and migrates it.
    pub async fn connect(config: Config) -> anyhow::Result<AppState> {
        let components = Components::from_config(&config)?;
        let store = open_store(&config, &components.database).await?;
        Ok(AppState::assemble(config, components, store))
    }
}

/// Connects to `database` with the configuration's pool settings and migrates it.
pub async fn open_store(config: &Config, database: &DatabaseUrl) -> anyhow::Result<Store> {
    let store = Store::connect(database, store_options(config))
        .await
        .with_context(|| format!("connecting to {}", database.redacted()))?;
    store.migrate().await?;
    Ok(store)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_build_header_mode_on_embedded_sqlite() {
        let c = Components::from_config(&Config::default()).unwrap();
        assert_eq!(c.prefix, "assessment/v1");
        assert_eq!(
            c.database,
            DatabaseUrl::Sqlite(crate::config::DEFAULT_DATABASE_URL.into())
        );
        assert_eq!(c.auth.mode(), crate::http::auth::AuthMode::Headers);
        assert!(c.env_subscriptions.is_empty() && c.plugins_file.is_none());
    }

    #[test]
    fn a_bad_value_names_its_variable() {
        for (config, var) in [
            (
                Config {
                    lms_service_url: Some("ftp://lms".into()),
                    ..Config::default()
                },
                "LMS_SERVICE_URL",
            ),
            (
                Config {
                    log_level: "info,[".into(),
                    ..Config::default()
                },
                "LOG_LEVEL",
            ),
            (
                Config {
                    user_service_url: Some("not a url".into()),
                    ..Config::default()
                },
                "USER_SERVICE_URL",
            ),
            (
                Config {
                    plugins_file: Some("/nonexistent/plugins.toml".into()),
                    ..Config::default()
                },
                "PLUGINS_FILE",
            ),
            (
                Config {
                    trusted_proxies: "10.0.0.0/8, not-an-address".into(),
                    ..Config::default()
                },
                "TRUSTED_PROXIES",
            ),
        ] {
            assert_eq!(Components::from_config(&config).unwrap_err().var, var);
        }
    }

    #[test]
    fn debug_shows_no_secret() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("plugins.json");
        std::fs::write(
            &path,
            r#"[{"id": "a", "name": "A", "type": "external",
                "externalService": {"webhook": {"url": "https://x.example/hook",
                    "headers": {"Authorization": "Bearer file-key-1"},
                    "secret": "whsec_ZmlsZS1zZWNyZXQtMg=="}}}]"#,
        )
        .unwrap();
        let config = Config {
            database_url: Some("postgres://svc:url-password-3@db.internal/x".into()),
            jwt_secret: Some("jwt-secret-4-that-is-long-enough-for-hs256".into()),
            external_service_webhook_url: Some("https://hooks.example/in".into()),
            external_service_api_key: Some("env-key-5".into()),
            webhook_signing_secret: Some("whsec_ZW52LXNlY3JldC02".into()),
            plugins_file: Some(path),
            ..Config::default()
        };
        let c = Components::from_config(&config).unwrap();
        assert_eq!(c.env_subscriptions.len(), 1);
        assert_eq!(c.plugins_file.as_ref().unwrap().plugins.len(), 1);
        let shown = format!("{c:?}");
        for secret in [
            "file-key-1",
            "ZmlsZS1zZWNyZXQtMg",
            "url-password-3",
            "jwt-secret-4",
            "env-key-5",
            "ZW52LXNlY3JldC02",
        ] {
            assert!(!shown.contains(secret), "{secret} shows in {shown}");
        }
        assert!(shown.contains("hooks.example"), "the rest still shows");
    }

    #[test]
    fn the_plugins_file_is_checked_in_the_test_profile_but_not_registered() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("plugins.json");
        std::fs::write(
            &path,
            r#"[{"id": "a", "name": "A", "type": "external",
                "externalService": {"webhook": {"url": "https://x.example/hook"}}}]"#,
        )
        .unwrap();
        let config = Config {
            plugins_file: Some(path.clone()),
            ..Config::default()
        };
        let file = Components::from_config(&config).unwrap().plugins_file;
        assert_eq!(file.unwrap().plugins.len(), 1);
        let test_profile = Config {
            node_env: "test".into(),
            ..config
        };
        assert!(
            Components::from_config(&test_profile)
                .unwrap()
                .plugins_file
                .is_none()
        );
        std::fs::write(&path, "[").unwrap();
        assert_eq!(
            Components::from_config(&test_profile).unwrap_err().var,
            "PLUGINS_FILE"
        );
    }
}
