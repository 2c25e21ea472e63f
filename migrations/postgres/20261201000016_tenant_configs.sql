-- Tenant configuration (`GET /config`, `POST /config/sync`): what the user service gives for
-- the tenant, or the local defaults when it gives nothing. Upstream kept it in its cache only
-- (lost on a flush or restart); here it is a row per tenant.
CREATE TABLE "tenantConfigs" (
    "tenantId"   uuid        NOT NULL,
    "config"     jsonb       NOT NULL,
    -- `user-service` or `defaults`: where the config came from.
    "source"     text        NOT NULL,
    "lastSynced" timestamptz NOT NULL,
    CONSTRAINT "pk_tenantConfigs" PRIMARY KEY ("tenantId")
);
