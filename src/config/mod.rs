//! Settings, read from environment variables or the flags of the same name
//! (`PORT` is `--port`, `DATABASE_URL` is `--database-url`, ...).
//!
//! Every value is checked at start-up; a bad one stops the process with one line naming the
//! variable (see [`ConfigError`]). This module reads and checks values; building the parts of
//! the service from them (and so the whole check) is `app::Components::from_config`.

use std::net::IpAddr;
use std::time::Duration;

use clap::{Args, ValueEnum};

use crate::secret::Secret;

pub const DEFAULT_HOST: &str = "127.0.0.1";
pub const DEFAULT_PORT: u16 = 8080;
pub const DEFAULT_PREFIX: &str = "assessment/v1";
pub const DEFAULT_DATABASE_URL: &str = "sqlite://./data/assessment.db";
pub const DEFAULT_POOL_SIZE: u32 = 10;
/// Days finished events are kept.
pub const DEFAULT_EVENT_RETENTION_DAYS: u32 = 30;
pub const DEFAULT_BODY_LIMIT: usize = 1024 * 1024;
pub const DEFAULT_REQUEST_TIMEOUT_SECS: u64 = 30;
pub const DEFAULT_SHUTDOWN_TIMEOUT_SECS: u64 = 20;
pub const DEFAULT_RATE_LIMIT_TENANT_PER_SEC: u32 = 1000;
pub const DEFAULT_RATE_LIMIT_TENANT_BYTES_PER_SEC: u64 = 4 * 1024 * 1024;
pub const DEFAULT_RATE_LIMIT_REFUSAL_HOLD_MS: u64 = 500;
pub const DEFAULT_START_CONCURRENCY: usize = 0;
pub const DEFAULT_START_QUEUE_DEPTH: usize = 5_000;
pub const DEFAULT_WEBHOOK_SECRET_OVERLAP_SECS: u64 = 86_400;
pub const DEFAULT_REPLAY_MAX_DELIVERIES: u32 = 10_000;
pub const DEFAULT_REPLAY_TENANT_PER_MIN: u32 = 20_000;
pub const DEFAULT_LOG_LEVEL: &str = "info";
pub const DEFAULT_CORS_ORIGINS: &str = "*";
pub const DEFAULT_JWT_LEEWAY_SECS: u64 = 30;

/// Log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

/// SQLite `synchronous` pragma. `full` makes every acknowledged commit survive power loss;
/// `normal` survives a process crash only, and is faster.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SqliteSynchronous {
    Full,
    Normal,
}

/// All settings of the service. Field names are the environment variable names in lower case.
#[derive(Debug, Clone, Args)]
pub struct Config {
    /// Address to listen on.
    #[arg(long, env = "HOST", default_value = DEFAULT_HOST, global = true)]
    pub host: IpAddr,

    /// Port to listen on.
    #[arg(long, env = "PORT", default_value_t = DEFAULT_PORT, global = true)]
    pub port: u16,

    /// Global route prefix, without leading or trailing slash.
    #[arg(long, env = "ASSESSMENT_PREFIX", default_value = DEFAULT_PREFIX, global = true)]
    pub assessment_prefix: String,

    /// `sqlite://path` (embedded, the default) or `postgres://...`.
    #[arg(long, env = "DATABASE_URL", global = true, hide_env_values = true)]
    pub database_url: Option<Secret>,

    /// Upstream-style PostgreSQL settings, used when `DATABASE_URL` is unset and `DB_HOST` is set.
    #[arg(long, env = "DB_HOST", global = true)]
    pub db_host: Option<String>,
    /// PostgreSQL port (with `DB_HOST`), default 5432.
    #[arg(long, env = "DB_PORT", global = true)]
    pub db_port: Option<u16>,
    /// PostgreSQL user (with `DB_HOST`), default `postgres`.
    #[arg(long, env = "DB_USERNAME", global = true)]
    pub db_username: Option<String>,
    /// PostgreSQL password (with `DB_HOST`).
    #[arg(long, env = "DB_PASSWORD", global = true, hide_env_values = true)]
    pub db_password: Option<Secret>,
    /// PostgreSQL database (with `DB_HOST`), default `assessment_db`.
    #[arg(long, env = "DB_DATABASE", global = true)]
    pub db_database: Option<String>,

    /// Maximum database connections (PostgreSQL pool; SQLite reader pool).
    #[arg(long, env = "DATABASE_POOL_SIZE", default_value_t = DEFAULT_POOL_SIZE, global = true,
          value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub database_pool_size: u32,

    /// Days events, deliveries and tries are kept: a delivery once it ended (delivered or
    /// dead-lettered) and its event are deleted when both are older; 0 keeps them forever.
    #[arg(long, env = "EVENT_RETENTION_DAYS", default_value_t = DEFAULT_EVENT_RETENTION_DAYS,
          global = true, value_parser = clap::value_parser!(u32).range(0..=36500))]
    pub event_retention_days: u32,

    /// SQLite durability: `full` (default) or `normal`.
    #[arg(
        long,
        env = "SQLITE_SYNCHRONOUS",
        value_enum,
        default_value = "full",
        global = true
    )]
    pub sqlite_synchronous: SqliteSynchronous,

    /// Largest accepted request body, in bytes.
    #[arg(long, env = "BODY_LIMIT_BYTES", default_value_t = DEFAULT_BODY_LIMIT, global = true,
          value_parser = parse_body_limit)]
    pub body_limit_bytes: usize,

    /// A request still running after this many seconds is abandoned (its transaction rolls back)
    /// and answered 503.
    #[arg(long, env = "REQUEST_TIMEOUT_SECS", default_value_t = DEFAULT_REQUEST_TIMEOUT_SECS,
          global = true, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub request_timeout_secs: u64,

    /// Requests a second per tenant (after authentication), with bursts of twice that;
    /// `0` turns the limit off. Over it: 429 with `Retry-After`.
    #[arg(long, env = "RATE_LIMIT_TENANT_PER_SEC", default_value_t = DEFAULT_RATE_LIMIT_TENANT_PER_SEC,
          global = true)]
    pub rate_limit_tenant_per_sec: u32,

    /// Request body bytes a second per tenant, with bursts of twice that (and always room for
    /// one body of `BODY_LIMIT_BYTES`); `0` turns the limit off. Over it: 429 with `Retry-After`.
    #[arg(long, env = "RATE_LIMIT_TENANT_BYTES_PER_SEC", default_value_t = DEFAULT_RATE_LIMIT_TENANT_BYTES_PER_SEC,
          global = true)]
    pub rate_limit_tenant_bytes_per_sec: u64,

    /// Requests a second per client address, with bursts of twice that; `0` (the default)
    /// turns it off: behind a gateway every client has the gateway's address.
    #[arg(
        long,
        env = "RATE_LIMIT_IP_PER_SEC",
        default_value_t = 0,
        global = true
    )]
    pub rate_limit_ip_per_sec: u32,

    /// How long a request refused by a rate limit is held before its 429 is sent, at most
    /// (never longer than its `Retry-After`); `0` answers at once. A client that retries
    /// without waiting is slowed to one try per hold per connection, instead of burning the
    /// machine's CPU (and the network) with requests the service only refuses.
    #[arg(long, env = "RATE_LIMIT_REFUSAL_HOLD_MS", default_value_t = DEFAULT_RATE_LIMIT_REFUSAL_HOLD_MS,
          global = true)]
    pub rate_limit_refusal_hold_ms: u64,

    /// How many attempt starts run at once; more wait their turn, up to `START_QUEUE_DEPTH`.
    /// `0` (the default): no limit of their own (starts wait for pooled connections as any
    /// request does, at most `START_QUEUE_DEPTH` in flight).
    #[arg(long, env = "START_CONCURRENCY", default_value_t = DEFAULT_START_CONCURRENCY,
          global = true)]
    pub start_concurrency: usize,

    /// How many attempt starts may wait for their turn (without `START_CONCURRENCY`: may be
    /// in flight); past that a start gets 503 with `Retry-After` at once.
    #[arg(long, env = "START_QUEUE_DEPTH", default_value_t = DEFAULT_START_QUEUE_DEPTH,
          global = true)]
    pub start_queue_depth: usize,

    /// Comma-separated addresses or networks (`10.0.0.0/8`) of proxies whose
    /// `X-Forwarded-For` names the client for the address limit.
    #[arg(long, env = "TRUSTED_PROXIES", default_value = "", global = true)]
    pub trusted_proxies: String,

    /// Most deliveries one replay call may put back in the queue (a range matching more is
    /// refused with 422: narrow it).
    #[arg(long, env = "REPLAY_MAX_DELIVERIES", default_value_t = DEFAULT_REPLAY_MAX_DELIVERIES,
          global = true, value_parser = clap::value_parser!(u32).range(1..))]
    pub replay_max_deliveries: u32,

    /// Deliveries a tenant may replay per minute, all replay routes together; `0` turns the
    /// limit off.
    #[arg(long, env = "REPLAY_TENANT_PER_MIN", default_value_t = DEFAULT_REPLAY_TENANT_PER_MIN,
          global = true)]
    pub replay_tenant_per_min: u32,

    /// Seconds to let in-flight requests finish after SIGTERM/SIGINT.
    #[arg(long, env = "SHUTDOWN_TIMEOUT_SECS", default_value_t = DEFAULT_SHUTDOWN_TIMEOUT_SECS,
          global = true, value_parser = clap::value_parser!(u64).range(0..=3600))]
    pub shutdown_timeout_secs: u64,

    /// `text` (default) or `json`.
    #[arg(
        long,
        env = "LOG_FORMAT",
        value_enum,
        default_value = "text",
        global = true
    )]
    pub log_format: LogFormat,

    /// Log filter: a level (`info`, `debug`, ...) or `tracing` directives. `RUST_LOG` wins when set.
    #[arg(long, env = "LOG_LEVEL", default_value = DEFAULT_LOG_LEVEL, global = true)]
    pub log_level: String,

    /// Comma-separated origins allowed by CORS, or `*` for any.
    #[arg(long, env = "CORS_ORIGINS", default_value = DEFAULT_CORS_ORIGINS, global = true)]
    pub cors_origins: String,

    /// HS256 secret. Setting it (or `JWT_PUBLIC_KEY`) turns on JWT mode.
    #[arg(long, env = "JWT_SECRET", global = true, hide_env_values = true)]
    pub jwt_secret: Option<Secret>,

    /// RS256 or ES256 public key: PEM text, or the path of a PEM file.
    #[arg(long, env = "JWT_PUBLIC_KEY", global = true, hide_env_values = true)]
    pub jwt_public_key: Option<String>,

    /// When set, tokens must carry this `iss`.
    #[arg(long, env = "JWT_ISSUER", global = true)]
    pub jwt_issuer: Option<String>,

    /// When set, tokens must carry this `aud`.
    #[arg(long, env = "JWT_AUDIENCE", global = true)]
    pub jwt_audience: Option<String>,

    /// The user service (upstream's): names and emails for the question-answer report.
    /// Unset: the report has empty names.
    #[arg(long, env = "USER_SERVICE_URL", global = true)]
    pub user_service_url: Option<String>,
    /// Where uploaded files are kept on the local file system (created when missing).
    #[arg(
        long,
        env = "STORAGE_LOCAL_PATH",
        global = true,
        default_value = "./data/files"
    )]
    pub storage_local_path: std::path::PathBuf,
    /// Signs the download URLs of uploaded files; instances sharing the files must share it.
    /// Unset: a random key per process (a URL works on the instance that made it).
    #[arg(
        long,
        env = "STORAGE_URL_SIGNING_SECRET",
        global = true,
        hide_env_values = true
    )]
    pub storage_url_signing_secret: Option<Secret>,
    /// The largest upload, in MiB (upstream's; kept within 1 to 100).
    #[arg(
        long,
        env = "ASSESSMENT_FILE_MAX_SIZE_MB",
        global = true,
        default_value_t = 10
    )]
    pub file_max_size_mb: u64,
    /// The folder of uploads within the storage (upstream's).
    #[arg(
        long,
        env = "ASSESSMENT_UPLOAD_PATH",
        global = true,
        default_value = "assessment/feedback-files"
    )]
    pub upload_path: String,
    /// How long a download URL works, in seconds (upstream's; kept within 60 to 3600).
    #[arg(
        long,
        env = "ASSESSMENT_FILE_DOWNLOAD_URL_EXPIRES_IN_SECONDS",
        global = true,
        default_value_t = 300
    )]
    pub file_url_expires_secs: u64,
    /// The extensions accepted, comma-separated, of pdf, doc, docx, jpg, jpeg, png, gif, webp
    /// and mp4 (default all of them).
    #[arg(long, env = "ASSESSMENT_FILE_ALLOWED_EXTENSIONS", global = true, default_value = crate::domain::files::DEFAULT_EXTENSIONS)]
    pub file_allowed_extensions: String,
    /// S3-compatible storage for uploads, instead of the local folder.
    #[command(flatten)]
    pub cloud_storage: storage::CloudStorage,

    /// Webhook of the seed's "external service" (every `attempt.*`, `answer.submitted` and
    /// `test.(un)published` event by default).
    #[arg(long, env = "EXTERNAL_SERVICE_WEBHOOK_URL", global = true)]
    pub external_service_webhook_url: Option<String>,
    /// Sent as `Authorization: Bearer <key>`.
    #[arg(
        long,
        env = "EXTERNAL_SERVICE_API_KEY",
        global = true,
        hide_env_values = true
    )]
    pub external_service_api_key: Option<Secret>,
    /// Comma-separated event names (or `*`) overriding the default list.
    #[arg(long, env = "EXTERNAL_SERVICE_EVENTS", global = true)]
    pub external_service_events: Option<String>,
    /// Milliseconds each try of the external service's webhook may take (1 to 300000; default 10000).
    #[arg(long, env = "EXTERNAL_SERVICE_TIMEOUT_MS", global = true)]
    pub external_service_timeout_ms: Option<u32>,
    /// Retries of the external service's webhook after a failed first try (0 to 100; default 3).
    #[arg(long, env = "EXTERNAL_SERVICE_RETRIES", global = true)]
    pub external_service_retries: Option<u32>,
    /// Analytics webhook (every event by default).
    #[arg(long, env = "ANALYTICS_SERVICE_WEBHOOK_URL", global = true)]
    pub analytics_service_webhook_url: Option<String>,
    #[arg(
        long,
        env = "ANALYTICS_SERVICE_API_KEY",
        global = true,
        hide_env_values = true
    )]
    pub analytics_service_api_key: Option<Secret>,
    #[arg(long, env = "ANALYTICS_SERVICE_EVENTS", global = true)]
    pub analytics_service_events: Option<String>,
    /// Milliseconds each try of the analytics webhook may take (1 to 300000; default 10000).
    #[arg(long, env = "ANALYTICS_SERVICE_TIMEOUT_MS", global = true)]
    pub analytics_service_timeout_ms: Option<u32>,
    /// Retries of the analytics webhook after a failed first try (0 to 100; default 3).
    #[arg(long, env = "ANALYTICS_SERVICE_RETRIES", global = true)]
    pub analytics_service_retries: Option<u32>,
    /// Notification service (submissions, reviews, publications by default).
    #[arg(long, env = "NOTIFICATION_SERVICE_URL", global = true)]
    pub notification_service_url: Option<String>,
    #[arg(
        long,
        env = "NOTIFICATION_SERVICE_API_KEY",
        global = true,
        hide_env_values = true
    )]
    pub notification_service_api_key: Option<Secret>,
    #[arg(long, env = "NOTIFICATION_SERVICE_EVENTS", global = true)]
    pub notification_service_events: Option<String>,
    /// Milliseconds each try of the notification webhook may take (1 to 300000; default 10000).
    #[arg(long, env = "NOTIFICATION_SERVICE_TIMEOUT_MS", global = true)]
    pub notification_service_timeout_ms: Option<u32>,
    /// Retries of the notification webhook after a failed first try (0 to 100; default 3).
    #[arg(long, env = "NOTIFICATION_SERVICE_RETRIES", global = true)]
    pub notification_service_retries: Option<u32>,
    /// LMS integration webhook (submissions, reviews, publications by default).
    #[arg(long, env = "LMS_INTEGRATION_URL", global = true)]
    pub lms_integration_url: Option<String>,
    #[arg(long, env = "LMS_API_KEY", global = true, hide_env_values = true)]
    pub lms_api_key: Option<Secret>,
    #[arg(long, env = "LMS_INTEGRATION_EVENTS", global = true)]
    pub lms_integration_events: Option<String>,
    /// Milliseconds each try of the LMS integration webhook may take (1 to 300000; default 10000).
    #[arg(long, env = "LMS_INTEGRATION_TIMEOUT_MS", global = true)]
    pub lms_integration_timeout_ms: Option<u32>,
    /// Retries of the LMS integration webhook after a failed first try (0 to 100; default 3).
    #[arg(long, env = "LMS_INTEGRATION_RETRIES", global = true)]
    pub lms_integration_retries: Option<u32>,
    /// A RabbitMQ (AMQP 0.9.1) queue that receives events: `amqp://` or `amqps://`, with
    /// credentials if the broker wants them (the seed's `message-queue` plugin type).
    #[arg(long, env = "MESSAGE_QUEUE_URL", global = true, hide_env_values = true)]
    pub message_queue_url: Option<Secret>,
    /// The durable queue (default `shiksha-assessment-events`).
    #[arg(long, env = "MESSAGE_QUEUE_NAME", global = true)]
    pub message_queue_name: Option<String>,
    /// A durable topic exchange the queue is bound to (none: straight to the queue).
    #[arg(long, env = "MESSAGE_QUEUE_EXCHANGE", global = true)]
    pub message_queue_exchange: Option<String>,
    /// With an exchange, the routing key: `{name}`, `{tenantId}`, `{organisationId}` are
    /// filled from the event (default `{name}`).
    #[arg(long, env = "MESSAGE_QUEUE_ROUTING_KEY", global = true)]
    pub message_queue_routing_key: Option<String>,
    /// Comma-separated event names, `*` for all (default all).
    #[arg(long, env = "MESSAGE_QUEUE_EVENTS", global = true)]
    pub message_queue_events: Option<String>,
    /// An event stream: `nats://` (JetStream) or `redis://` (Redis Streams) (the seed's
    /// `event-stream` plugin type).
    #[arg(long, env = "EVENT_STREAM_URL", global = true, hide_env_values = true)]
    pub event_stream_url: Option<Secret>,
    /// The subject or stream key: `{name}`, `{tenantId}`, `{organisationId}` are filled from
    /// the event (default `assessment.{tenantId}.{name}`).
    #[arg(long, env = "EVENT_STREAM_TOPIC", global = true)]
    pub event_stream_topic: Option<String>,
    /// Comma-separated event names, `*` for all (default all).
    #[arg(long, env = "EVENT_STREAM_EVENTS", global = true)]
    pub event_stream_events: Option<String>,
    /// A TOML or JSON file of external plugins in the seed's shape (`id`, `name`, `type`,
    /// `isActive`, `externalService` of type `webhook`, `message-queue` or `event-stream`).
    #[arg(long, env = "PLUGINS_FILE", global = true)]
    pub plugins_file: Option<std::path::PathBuf>,
    /// A folder of custom plugins: every `*.js` file is an ES module exporting a plugin in the
    /// seed's shape, run sandboxed in QuickJS (loaded once, at start-up).
    #[arg(long, env = "CUSTOM_PLUGINS_DIR", global = true)]
    pub custom_plugins_dir: Option<std::path::PathBuf>,
    /// The time limit of one custom plugin hook call, in milliseconds.
    #[arg(long, env = "CUSTOM_PLUGIN_TIMEOUT_MS", default_value_t = 100, global = true,
        value_parser = clap::value_parser!(u64).range(1..=60_000))]
    pub custom_plugin_timeout_ms: u64,
    /// The memory limit of each custom plugin, in MiB.
    #[arg(long, env = "CUSTOM_PLUGIN_MEMORY_MB", default_value_t = 16, global = true,
        value_parser = clap::value_parser!(u64).range(1..=4096))]
    pub custom_plugin_memory_mb: u64,
    /// Upstream's LMS service: turns on the `lms-progress` plugin.
    #[arg(long, env = "LMS_SERVICE_URL", global = true)]
    pub lms_service_url: Option<String>,
    /// Signs the environment's webhooks (Standard Webhooks) when set to a `whsec_...` secret.
    #[arg(
        long,
        env = "WEBHOOK_SIGNING_SECRET",
        global = true,
        hide_env_values = true
    )]
    pub webhook_signing_secret: Option<Secret>,
    /// Allow webhooks to private, loopback and link-local addresses.
    #[arg(long, env = "WEBHOOK_ALLOW_PRIVATE_NETWORKS", global = true, default_value_t = false,
          action = clap::ArgAction::Set)]
    pub webhook_allow_private_networks: bool,
    /// Seconds after a secret rotation during which deliveries are also signed with the
    /// previous secret (a second signature in `webhook-signature`); `0` replaces it at once.
    #[arg(long, env = "WEBHOOK_SECRET_OVERLAP_SECS", default_value_t = DEFAULT_WEBHOOK_SECRET_OVERLAP_SECS,
          global = true, value_parser = clap::value_parser!(u64).range(0..=30 * 86_400))]
    pub webhook_secret_overlap_secs: u64,
    /// The seed's environment profile: in `test`, external subscriptions from the environment
    /// are not registered unless `EXTERNAL_PLUGINS_IN_TEST=true`.
    #[arg(long, env = "NODE_ENV", global = true, default_value = "development")]
    pub node_env: String,
    #[arg(long, env = "EXTERNAL_PLUGINS_IN_TEST", global = true, default_value_t = false,
          action = clap::ArgAction::Set)]
    pub external_plugins_in_test: bool,

    /// Clock skew tolerated on `exp` and `nbf`, in seconds.
    #[arg(long, env = "JWT_LEEWAY_SECS", default_value_t = DEFAULT_JWT_LEEWAY_SECS, global = true,
          value_parser = clap::value_parser!(u64).range(0..=600))]
    pub jwt_leeway_secs: u64,
}

fn parse_body_limit(s: &str) -> Result<usize, String> {
    let n: usize = s.parse().map_err(|e| format!("{e}"))?;
    if !(1024..=256 * 1024 * 1024).contains(&n) {
        return Err("must be between 1024 and 268435456 bytes".into());
    }
    Ok(n)
}

impl Default for Config {
    fn default() -> Self {
        Config {
            host: DEFAULT_HOST.parse().expect("default host is an IP address"),
            port: DEFAULT_PORT,
            assessment_prefix: DEFAULT_PREFIX.into(),
            database_url: None,
            db_host: None,
            db_port: None,
            db_username: None,
            db_password: None,
            db_database: None,
            database_pool_size: DEFAULT_POOL_SIZE,
            event_retention_days: DEFAULT_EVENT_RETENTION_DAYS,
            sqlite_synchronous: SqliteSynchronous::Full,
            body_limit_bytes: DEFAULT_BODY_LIMIT,
            request_timeout_secs: DEFAULT_REQUEST_TIMEOUT_SECS,
            shutdown_timeout_secs: DEFAULT_SHUTDOWN_TIMEOUT_SECS,
            rate_limit_tenant_per_sec: DEFAULT_RATE_LIMIT_TENANT_PER_SEC,
            rate_limit_tenant_bytes_per_sec: DEFAULT_RATE_LIMIT_TENANT_BYTES_PER_SEC,
            rate_limit_ip_per_sec: 0,
            rate_limit_refusal_hold_ms: DEFAULT_RATE_LIMIT_REFUSAL_HOLD_MS,
            start_concurrency: DEFAULT_START_CONCURRENCY,
            start_queue_depth: DEFAULT_START_QUEUE_DEPTH,
            trusted_proxies: String::new(),
            replay_max_deliveries: DEFAULT_REPLAY_MAX_DELIVERIES,
            replay_tenant_per_min: DEFAULT_REPLAY_TENANT_PER_MIN,
            log_format: LogFormat::Text,
            log_level: DEFAULT_LOG_LEVEL.into(),
            cors_origins: DEFAULT_CORS_ORIGINS.into(),
            jwt_secret: None,
            jwt_public_key: None,
            jwt_issuer: None,
            jwt_audience: None,
            jwt_leeway_secs: DEFAULT_JWT_LEEWAY_SECS,
            user_service_url: None,
            // Tests and embedders get a folder of their own, not the working directory's.
            storage_local_path: std::env::temp_dir().join("assessment-service-files"),
            storage_url_signing_secret: None,
            file_max_size_mb: 10,
            upload_path: "assessment/feedback-files".into(),
            file_url_expires_secs: 300,
            file_allowed_extensions: crate::domain::files::DEFAULT_EXTENSIONS.into(),
            cloud_storage: storage::CloudStorage::default(),
            external_service_webhook_url: None,
            external_service_api_key: None,
            external_service_events: None,
            external_service_timeout_ms: None,
            external_service_retries: None,
            analytics_service_webhook_url: None,
            analytics_service_api_key: None,
            analytics_service_events: None,
            analytics_service_timeout_ms: None,
            analytics_service_retries: None,
            notification_service_url: None,
            notification_service_api_key: None,
            notification_service_events: None,
            notification_service_timeout_ms: None,
            notification_service_retries: None,
            lms_integration_url: None,
            lms_api_key: None,
            lms_integration_events: None,
            lms_integration_timeout_ms: None,
            lms_integration_retries: None,
            message_queue_url: None,
            message_queue_name: None,
            message_queue_exchange: None,
            message_queue_routing_key: None,
            message_queue_events: None,
            event_stream_url: None,
            event_stream_topic: None,
            event_stream_events: None,
            webhook_signing_secret: None,
            lms_service_url: None,
            plugins_file: None,
            custom_plugins_dir: None,
            custom_plugin_timeout_ms: 100,
            custom_plugin_memory_mb: 16,
            webhook_allow_private_networks: false,
            webhook_secret_overlap_secs: DEFAULT_WEBHOOK_SECRET_OVERLAP_SECS,
            node_env: "development".into(),
            external_plugins_in_test: false,
        }
    }
}

/// A configuration value that cannot be used. Displayed as one line naming the variable.
#[derive(Debug, thiserror::Error)]
#[error("invalid configuration: {var}: {message}")]
pub struct ConfigError {
    pub var: &'static str,
    pub message: String,
}

impl ConfigError {
    pub fn new(var: &'static str, message: impl Into<String>) -> Self {
        ConfigError {
            var,
            message: message.into(),
        }
    }
}

/// Which database the service runs on. A PostgreSQL URL may carry the password, so it is a
/// [`Secret`]: [`DatabaseUrl::redacted`] is the form for logs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DatabaseUrl {
    Sqlite(String),
    Postgres(Secret),
}

impl DatabaseUrl {
    /// The URL with any password replaced, for logs.
    pub fn redacted(&self) -> String {
        match self {
            DatabaseUrl::Sqlite(u) => u.clone(),
            DatabaseUrl::Postgres(u) => match url::Url::parse(u.expose()) {
                Ok(mut parsed) => {
                    if parsed.password().is_some() {
                        let _ = parsed.set_password(Some("***"));
                    }
                    parsed.to_string()
                }
                Err(_) => "postgres://(unparsable)".into(),
            },
        }
    }
}

mod checked;
pub mod invalid;
pub mod storage;

#[cfg(test)]
mod tests;
