-- The transactional outbox and the tables of event delivery.
--
-- An event row is written in the same transaction as the change it describes, so it exists
-- iff that change committed. The dispatcher fans each event out to the matching subscriptions
-- as deliveries, claims due deliveries with a lease (never holding a transaction across a
-- network call) and records every try in "deliveryAttempts".
-- Conventions as in 20261128000001_schema.sql (ids TEXT uuid, times TEXT
-- 'YYYY-MM-DDTHH:MM:SS.sssZ', booleans 0/1, JSON as checked TEXT).

CREATE TABLE "events" (
    -- Append order. Events of one "orderingKey" are appended under the lock of their
    -- aggregate (e.g. the attempt row), so "seq" orders them as they happened.
    "seq"            INTEGER     NOT NULL,
    "eventId"        TEXT        NOT NULL,
    "name"           TEXT        NOT NULL,
    "tenantId"       TEXT        NULL,
    "organisationId" TEXT        NULL,
    "userId"         TEXT        NULL,
    "orderingKey"    TEXT        NULL,
    -- The exact body every subscriber receives: {name, context, data, timestamp, id}.
    "payload"        TEXT        NOT NULL CHECK (json_valid("payload")),
    "createdAt"      TEXT        NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ','now')),
    -- Set once the dispatcher has created this event's deliveries.
    "fannedOutAt"    TEXT        NULL,
    CONSTRAINT "pk_events" PRIMARY KEY ("seq" AUTOINCREMENT),
    CONSTRAINT "uq_events_event_id" UNIQUE ("eventId")
);
CREATE INDEX "idx_events_pending_fan_out" ON "events" ("seq") WHERE "fannedOutAt" IS NULL;
CREATE INDEX "idx_events_tenant_created" ON "events" ("tenantId", "organisationId", "createdAt");
CREATE INDEX "idx_events_name_created" ON "events" ("name", "createdAt");
CREATE INDEX "idx_events_ordering_key" ON "events" ("orderingKey", "seq");

CREATE TABLE "subscriptions" (
    "subscriptionId" TEXT        NOT NULL,
    -- NULL tenant: a subscription for every tenant (from the environment or the plugins file).
    "tenantId"       TEXT        NULL,
    "organisationId" TEXT        NULL,
    "name"           TEXT        NOT NULL,
    "source"         TEXT        NOT NULL,
    "kind"           TEXT        NOT NULL,
    -- URL for webhooks, subject for NATS, routing key for AMQP, plugin id for plugins.
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
    CONSTRAINT "ck_subscriptions_kind" CHECK ("kind" IN ('webhook', 'plugin', 'nats', 'amqp')),
    CONSTRAINT "ck_subscriptions_events" CHECK (json_valid("events") AND json_type("events") = 'array'),
    CONSTRAINT "ck_subscriptions_headers" CHECK (json_valid("headers") AND json_type("headers") = 'object'),
    CONSTRAINT "ck_subscriptions_timeout" CHECK ("timeoutMs" BETWEEN 1 AND 300000),
    CONSTRAINT "ck_subscriptions_retries" CHECK ("maxRetries" BETWEEN 0 AND 100)
);
CREATE INDEX "idx_subscriptions_tenant" ON "subscriptions" ("tenantId", "organisationId", "isActive");
CREATE INDEX "idx_subscriptions_source_name" ON "subscriptions" ("source", "name");

CREATE TABLE "deliveries" (
    "deliveryId"     TEXT        NOT NULL,
    "eventSeq"       INTEGER     NOT NULL,
    "subscriptionId" TEXT        NOT NULL,
    -- Copied from the event so ordered claims need no join.
    "orderingKey"    TEXT        NULL,
    "status"         TEXT        NOT NULL DEFAULT 'pending',
    "attemptCount"   INTEGER     NOT NULL DEFAULT 0,
    "nextAttemptAt"  TEXT        NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ','now')),
    "leaseOwner"     TEXT        NULL,
    "leaseExpiresAt" TEXT        NULL,
    "lastStatusCode" INTEGER     NULL,
    "lastError"      TEXT        NULL,
    "createdAt"      TEXT        NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ','now')),
    "updatedAt"      TEXT        NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ','now')),
    "deliveredAt"    TEXT        NULL,
    CONSTRAINT "pk_deliveries" PRIMARY KEY ("deliveryId"),
    CONSTRAINT "uq_deliveries_event_subscription" UNIQUE ("eventSeq", "subscriptionId"),
    CONSTRAINT "fk_deliveries_event" FOREIGN KEY ("eventSeq") REFERENCES "events" ("seq") ON DELETE CASCADE,
    CONSTRAINT "fk_deliveries_subscription" FOREIGN KEY ("subscriptionId") REFERENCES "subscriptions" ("subscriptionId") ON DELETE CASCADE,
    CONSTRAINT "ck_deliveries_status" CHECK ("status" IN ('pending', 'delivering', 'delivered', 'dead', 'cancelled'))
);
CREATE INDEX "idx_deliveries_due" ON "deliveries" ("nextAttemptAt") WHERE "status" IN ('pending', 'delivering');
CREATE INDEX "idx_deliveries_subscription_status" ON "deliveries" ("subscriptionId", "status", "createdAt");
CREATE INDEX "idx_deliveries_ordering" ON "deliveries" ("subscriptionId", "orderingKey", "eventSeq");

CREATE TABLE "deliveryAttempts" (
    "deliveryAttemptId" TEXT        NOT NULL,
    "deliveryId"        TEXT        NOT NULL,
    "attemptNumber"     INTEGER     NOT NULL,
    "startedAt"         TEXT        NOT NULL,
    "durationMs"        INTEGER     NOT NULL,
    "statusCode"        INTEGER     NULL,
    "error"             TEXT        NULL,
    -- The first KiB of the response body.
    "responseBody"      TEXT        NULL,
    CONSTRAINT "pk_delivery_attempts" PRIMARY KEY ("deliveryAttemptId"),
    CONSTRAINT "uq_delivery_attempts_number" UNIQUE ("deliveryId", "attemptNumber"),
    CONSTRAINT "fk_delivery_attempts_delivery" FOREIGN KEY ("deliveryId") REFERENCES "deliveries" ("deliveryId") ON DELETE CASCADE
);
