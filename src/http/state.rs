//! The application state every handler receives. Its constructors are in `app.rs`, the
//! composition root, so `http/` does not depend on how the parts are built.

use std::sync::Arc;
use std::time::Instant;

use metrics_exporter_prometheus::PrometheusHandle;

use crate::config::Config;
use crate::events::plugins::Registry;
use crate::http::auth::Authenticator;
use crate::service::users::UserDirectory;
use crate::store::Store;

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
    pub users: Arc<UserDirectory>,
    /// Uploaded files (see `service::files`).
    pub files: Arc<crate::service::files::Files>,
    /// The internal plugins the dispatcher runs.
    pub plugins: Registry,
    /// The message brokers the dispatcher publishes to, with their connections.
    pub brokers: crate::events::sinks::Brokers,
    /// The scoring keys of running attempts (see `service::attempts::keys`).
    pub keys: Arc<crate::service::attempts::keys::KeyCache>,
    /// The paper material of published plain tests (see `service::attempts::content`).
    pub contents: Arc<crate::service::attempts::content::Contents>,
    /// The rule pools of published rule-based tests (see `service::attempts::pools`).
    pub pools: Arc<crate::service::attempts::pools::RulePools>,
    /// The learner hierarchies of published tests (see `service::hierarchy::LearnerViews`).
    pub views: Arc<crate::service::hierarchy::LearnerViews>,
    /// The time source: the system clock, or a test's manual clock.
    pub clock: crate::clock::Clock,
    /// The admission of attempt starts (see `http::admission`).
    pub starts: Arc<crate::http::admission::Admission>,
    /// Request rate limits (per tenant, per client address, replays).
    pub limits: Arc<crate::http::limits::RateLimits>,
    /// The console's live tails open at once (see `http::console`), at most
    /// [`MAX_LIVE_TAILS`].
    pub tails: Arc<tokio::sync::Semaphore>,
    /// Cancelled when the service stops: long-lived responses (the live tail) end then.
    pub stopping: tokio_util::sync::CancellationToken,
}

/// How many live tails one instance serves at once.
pub const MAX_LIVE_TAILS: usize = 16;
