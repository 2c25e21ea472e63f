//! Authors' and operators' views: the rule preview, delivery tries, `/plugins`.

#[allow(unused_imports)]
use super::*;

/// `GET /rules/{id}/preview`.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RulePoolPreview {
    pub rule: Rule,
    pub metadata: RulePoolCounts,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RulePoolCounts {
    pub total_questions_matching: i64,
    pub can_generate_pool: bool,
    pub can_create_test: bool,
    pub pool_size: i32,
    pub number_of_questions: i32,
}

/// One try of a delivery (`GET /webhooks/deliveries/{id}/attempts`).
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DeliveryTry {
    pub attempt_number: i32,
    #[schema(format = DateTime)]
    pub started_at: String,
    pub duration_ms: i64,
    /// The receiver's HTTP status, if it answered.
    pub status_code: Option<i32>,
    pub error: Option<String>,
    /// The start of the receiver's answer, when kept.
    pub response_body: Option<String>,
}

/// `GET /plugins`: the seed's `getActivePlugins()` and `getExternalServiceCount()`.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Plugins {
    /// The active subscriptions the caller can see.
    pub active_plugins: Vec<ActivePlugin>,
    pub external_service_count: i64,
    /// The plugins loaded into the process (built in, and `PLUGINS_DIR`'s).
    pub internal_plugins: Vec<InternalPlugin>,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ActivePlugin {
    #[schema(format = Uuid)]
    pub id: String,
    pub name: String,
    /// `internal` (a plugin) or `external` (a webhook or a broker).
    #[serde(rename = "type")]
    pub kind: String,
    /// Where it was declared (`api`, `env`, `file`, ...).
    pub source: String,
    pub is_active: bool,
    pub external_service: ExternalService,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ExternalService {
    /// The subscription's kind, or for a broker the seed's plugin type.
    #[serde(rename = "type")]
    pub kind: String,
    pub events: Vec<String>,
    /// Brokers only: `rabbitmq`, `nats-jetstream` or `redis-streams`.
    pub broker: Option<String>,
    /// Brokers only: where it publishes.
    pub target: Option<String>,
    /// Brokers only.
    pub connection: Option<BrokerConnection>,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct BrokerConnection {
    /// `connecting`, `connected` or `reconnecting`.
    pub state: String,
    #[schema(format = DateTime)]
    pub since: Option<String>,
    pub last_error: Option<String>,
    #[schema(format = DateTime)]
    pub last_error_at: Option<String>,
    /// The broker's address, credentials hidden.
    pub url: String,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct InternalPlugin {
    pub id: String,
    pub name: String,
    pub version: String,
    pub description: String,
    pub author: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub is_active: bool,
    pub hooks: Vec<PluginHook>,
    pub external_service: Option<PluginService>,
    /// The file it was loaded from, if any.
    pub file: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct PluginHook {
    /// An event name, or `*`.
    pub name: String,
    pub priority: i32,
}

#[derive(Serialize, ToSchema)]
pub struct PluginService {
    #[serde(rename = "type")]
    pub kind: String,
}
