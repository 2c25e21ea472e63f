//! SQL for the tenants' configurations (one row per tenant).

use serde_json::Value;
use sqlx::FromRow;
use sqlx::types::Json;
use tracing::instrument;

use super::{Db, Id, Ts, Tx};
use crate::domain::ids::TenantId;

/// A tenant's stored configuration.
#[derive(Debug, Clone, FromRow)]
#[sqlx(rename_all = "camelCase")]
pub struct TenantConfig {
    pub config: Json<Value>,
    pub source: String,
    pub last_synced: Ts,
}

#[instrument(skip_all, err(level = "warn"))]
pub async fn get<'a>(
    db: impl Into<Db<'a>>,
    tenant: TenantId,
) -> Result<Option<TenantConfig>, sqlx::Error> {
    const SQL: &str =
        r#"SELECT "config", "source", "lastSynced" FROM "tenantConfigs" WHERE "tenantId" = $1"#;
    let id = Id(tenant.as_uuid());
    crate::on_db!(db.into(), c => sqlx::query_as::<_, TenantConfig>(SQL).bind(id).fetch_optional(c).await)
}

/// Stores `config` as the tenant's, replacing what was there.
#[instrument(skip_all, err(level = "warn"))]
pub async fn put(tx: &mut Tx, tenant: TenantId, config: &TenantConfig) -> Result<(), sqlx::Error> {
    const SQL: &str = r#"INSERT INTO "tenantConfigs" ("tenantId", "config", "source", "lastSynced")
        VALUES ($1, $2, $3, $4)
        ON CONFLICT ("tenantId") DO UPDATE SET "config" = excluded."config",
            "source" = excluded."source", "lastSynced" = excluded."lastSynced""#;
    let id = Id(tenant.as_uuid());
    crate::on_tx!(tx, c => {
        sqlx::query(SQL).bind(id).bind(&config.config).bind(&config.source)
            .bind(config.last_synced).execute(c).await.map(|_| ())
    })
}
