//! Tenant configuration, as upstream's `/config` routes: `POST /config/sync` takes the
//! tenant's configuration from the user service and stores it; `GET /config` returns it.
//!
//! When the user service is not set up, fails, or gives nothing, sync stores the local
//! defaults, the values upstream's `assessment-config.json` gives (upstream meant this
//! fallback but never loaded the file, so it answered 500). Unlike upstream the configuration
//! is a database row, not a cache entry, and credentials in it are never shown.

use serde::Serialize;
use serde_json::{Map, Value, json};
use sqlx::types::Json;
use utoipa::ToSchema;

use crate::clock::Clock;
use crate::domain::ids::TenantId;
use crate::error::{AppError, AppResult};
use crate::service::users::UserDirectory;
use crate::store::tenant_configs::{self as repo, TenantConfig};
use crate::store::{Store, Ts};

/// A tenant's configuration, as `GET /config` and `POST /config/sync` return it.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ConfigOut {
    /// The settings (upstream's flat keys: `upload_path`, `image_filesize`, ...). Values of
    /// credentials (`storage_key`, `storage_secret`, any key naming a secret, password or
    /// token) are shown as `********`.
    #[schema(value_type = Object)]
    pub config: Map<String, Value>,
    #[schema(value_type = String, format = DateTime)]
    pub last_synced: Ts,
    /// Always 1 (upstream's flag: the configuration was synced).
    #[serde(rename = "IsConfigsSync")]
    pub is_configs_sync: u8,
    /// `user-service`, or `defaults` when the user service gave nothing.
    pub source: String,
}

/// The local defaults: upstream's `assessment-config.json`, the settings with a default
/// (its empty storage credentials are left out, as its loader left them out).
pub fn defaults() -> Map<String, Value> {
    let v = json!({
        "date_format": "Y-m-d H:i:s",
        "cloud_storage_provider": "aws",
        "presigned_url_expires_in": 3600,
        "image_mime_type": "image/jpeg, image/jpg, image/png",
        "image_filesize": 5,
        "video_mime_type": "video/mp4, video/webm",
        "video_filesize": 50,
        "document_mime_type": "application/pdf,application/msword,application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        "document_filesize": 50,
        "upload_path": "assessment/tests",
    });
    match v {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

/// Whether a setting's value is a credential, never to be shown.
fn is_credential(key: &str) -> bool {
    let k = key.to_ascii_lowercase();
    k == "storage_key"
        || [
            "secret",
            "password",
            "token",
            "credential",
            "private_key",
            "api_key",
        ]
        .iter()
        .any(|w| k.contains(w))
}

fn shown(stored: TenantConfig) -> ConfigOut {
    let mut config = match stored.config.0 {
        Value::Object(m) => m,
        _ => Map::new(),
    };
    for (k, v) in config.iter_mut() {
        let nothing_to_hide = v.is_null() || v.as_str() == Some("");
        if is_credential(k) && !nothing_to_hide {
            *v = json!("********");
        }
    }
    ConfigOut {
        config,
        last_synced: stored.last_synced,
        is_configs_sync: 1,
        source: stored.source,
    }
}

/// `GET /config`.
pub async fn get(store: &Store, tenant: TenantId) -> AppResult<ConfigOut> {
    let stored = repo::get(store, tenant).await?.ok_or_else(|| {
        AppError::not_found("Failed to retrieve configuration: Configuration not found")
    })?;
    Ok(shown(stored))
}

/// `POST /config/sync`: the user service's configuration for the tenant, else the defaults,
/// stored as the tenant's.
pub async fn sync(
    store: &Store,
    clock: &Clock,
    users: &UserDirectory,
    tenant: TenantId,
    authorization: Option<&str>,
) -> AppResult<ConfigOut> {
    let (config, source) = match users.tenant_config(tenant.as_uuid(), authorization).await {
        Some(m) => (m, "user-service"),
        None => {
            tracing::info!(%tenant, "the user service gave no configuration; storing the defaults");
            (defaults(), "defaults")
        }
    };
    let stored = TenantConfig {
        config: Json(Value::Object(config)),
        source: source.to_string(),
        last_synced: clock.now(),
    };
    let mut tx = store.begin().await?;
    repo::put(&mut tx, tenant, &stored).await?;
    tx.commit().await?;
    Ok(shown(stored))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_are_never_shown() {
        let stored = TenantConfig {
            config: Json(json!({"storage_key": "AKIA", "storage_secret": "s3cr3t",
                "db_password": "x", "upload_path": "a/b", "storage_region": "eu", "empty_secret": ""})),
            source: "user-service".into(),
            last_synced: Ts::new(chrono::Utc::now()),
        };
        let out = shown(stored);
        assert_eq!(out.config["storage_key"], "********");
        assert_eq!(out.config["storage_secret"], "********");
        assert_eq!(out.config["db_password"], "********");
        assert_eq!(out.config["empty_secret"], "", "nothing to hide");
        assert_eq!(out.config["upload_path"], "a/b");
        assert_eq!(out.config["storage_region"], "eu");
    }

    #[test]
    fn defaults_are_upstreams_with_a_value() {
        let d = defaults();
        assert_eq!(d["upload_path"], "assessment/tests");
        assert_eq!(d["presigned_url_expires_in"], 3600);
        assert!(!d.contains_key("storage_key"));
    }
}
