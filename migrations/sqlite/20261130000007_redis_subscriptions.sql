-- Redis Streams joins the broker kinds (the `event-stream` plugin type with a redis:// URL).
-- SQLite cannot change a CHECK constraint in place: the table is rebuilt (SQLite's documented
-- procedure). Store::migrate runs migrations with foreign keys off (and checks them after), so
-- dropping the old table does not cascade to the deliveries; do not run this file by hand with
-- foreign keys on.
CREATE TABLE "subscriptions_rebuilt" (
    "subscriptionId" TEXT        NOT NULL,
    -- NULL tenant: a subscription for every tenant (from the environment or the plugins file).
    "tenantId"       TEXT        NULL,
    "organisationId" TEXT        NULL,
    "name"           TEXT        NOT NULL,
    "source"         TEXT        NOT NULL,
    "kind"           TEXT        NOT NULL,
    -- URL for webhooks, plugin id for plugins; for brokers a display form of where it publishes
    -- (URL without credentials, queue or topic): the connection lives in the configuration.
    "target"         TEXT        NOT NULL,
    "method"         TEXT        NOT NULL DEFAULT 'POST',
    "headers"        TEXT        NOT NULL DEFAULT '{}',
    -- Standard Webhooks signing secret (whsec_...), when the subscription signs.
    "secret"         TEXT        NULL,
    -- JSON array of event names; ["*"] means every event.
    "events"         TEXT        NOT NULL DEFAULT '["*"]',
    "timeoutMs"      INTEGER     NOT NULL DEFAULT 10000,
    "maxRetries"     INTEGER     NOT NULL DEFAULT 3,
    "isActive"       INTEGER     NOT NULL DEFAULT 1 CHECK ("isActive" IN (0, 1)),
    "disabledReason" TEXT        NULL,
    "createdBy"      TEXT        NULL,
    "createdAt"      TEXT        NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ','now')),
    "updatedAt"      TEXT        NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ','now')),
    CONSTRAINT "pk_subscriptions" PRIMARY KEY ("subscriptionId"),
    CONSTRAINT "ck_subscriptions_source" CHECK ("source" IN ('env', 'file', 'api', 'builtin')),
    CONSTRAINT "ck_subscriptions_kind" CHECK ("kind" IN ('webhook', 'plugin', 'amqp', 'nats', 'redis')),
    CONSTRAINT "ck_subscriptions_events" CHECK (json_valid("events") AND json_type("events") = 'array'),
    CONSTRAINT "ck_subscriptions_headers" CHECK (json_valid("headers") AND json_type("headers") = 'object'),
    CONSTRAINT "ck_subscriptions_timeout" CHECK ("timeoutMs" BETWEEN 1 AND 300000),
    CONSTRAINT "ck_subscriptions_retries" CHECK ("maxRetries" BETWEEN 0 AND 100)
);
INSERT INTO "subscriptions_rebuilt" ("subscriptionId", "tenantId", "organisationId", "name",
    "source", "kind", "target", "method", "headers", "secret", "events", "timeoutMs",
    "maxRetries", "isActive", "disabledReason", "createdBy", "createdAt", "updatedAt")
SELECT "subscriptionId", "tenantId", "organisationId", "name", "source", "kind", "target",
    "method", "headers", "secret", "events", "timeoutMs", "maxRetries", "isActive",
    "disabledReason", "createdBy", "createdAt", "updatedAt" FROM "subscriptions";
DROP TABLE "subscriptions";
ALTER TABLE "subscriptions_rebuilt" RENAME TO "subscriptions";
CREATE INDEX "idx_subscriptions_tenant" ON "subscriptions" ("tenantId", "organisationId", "isActive");
CREATE INDEX "idx_subscriptions_source_name" ON "subscriptions" ("source", "name");
