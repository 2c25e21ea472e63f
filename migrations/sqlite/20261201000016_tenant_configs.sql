-- Tenant configuration (`GET /config`, `POST /config/sync`): what the user service gives for
-- the tenant, or the local defaults when it gives nothing. Upstream kept it in its cache only
-- (lost on a flush or restart); here it is a row per tenant.
CREATE TABLE "tenantConfigs" (
    "tenantId"   TEXT NOT NULL,
    "config"     TEXT NOT NULL CHECK (json_valid("config")),
    -- `user-service` or `defaults`: where the config came from.
    "source"     TEXT NOT NULL,
    "lastSynced" TEXT NOT NULL,
    CONSTRAINT "pk_tenantConfigs" PRIMARY KEY ("tenantId")
);
