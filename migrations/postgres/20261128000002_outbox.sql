-- The transactional outbox and the tables of event delivery.
--
-- An event row is written in the same transaction as the change it describes, so it exists
-- iff that change committed. The dispatcher fans each event out to the matching subscriptions
-- as deliveries, claims due deliveries with a lease (never holding a transaction across a
-- network call) and records every try in "deliveryAttempts".
-- Conventions as in 20261128000001_schema.sql (ids uuid, times timestamptz, camelCase names).

CREATE TABLE "events" (
    -- Append order. Events of one "orderingKey" are appended under the lock of their
    -- aggregate (e.g. the attempt row), so "seq" orders them as they happened.
    "seq"            BIGINT GENERATED ALWAYS AS IDENTITY,
    "eventId"        uuid        NOT NULL,
    "name"           text        NOT NULL,
    "tenantId"       uuid        NULL,
    "organisationId" uuid        NULL,
    "userId"         uuid        NULL,
    "orderingKey"    text        NULL,
    -- The exact body every subscriber receives: {name, context, data, timestamp, id}.
    "payload"        jsonb       NOT NULL,
    "createdAt"      timestamptz NOT NULL DEFAULT now(),
    -- Set once the dispatcher has created this event's deliveries.
    "fannedOutAt"    timestamptz NULL,
    CONSTRAINT "pk_events" PRIMARY KEY ("seq"),
    CONSTRAINT "uq_events_event_id" UNIQUE ("eventId")
);
CREATE INDEX "idx_events_pending_fan_out" ON "events" ("seq") WHERE "fannedOutAt" IS NULL;
CREATE INDEX "idx_events_tenant_created" ON "events" ("tenantId", "organisationId", "createdAt");
CREATE INDEX "idx_events_name_created" ON "events" ("name", "createdAt");
CREATE INDEX "idx_events_ordering_key" ON "events" ("orderingKey", "seq");

CREATE TABLE "subscriptions" (
    "subscriptionId" uuid        NOT NULL,
    -- NULL tenant: a subscription for every tenant (from the environment or the plugins file).
    "tenantId"       uuid        NULL,
    "organisationId" uuid        NULL,
    "name"           text        NOT NULL,
    "source"         text        NOT NULL,
    "kind"           text        NOT NULL,
    -- URL for webhooks, subject for NATS, routing key for AMQP, plugin id for plugins.
    "target"         text        NOT NULL,
    "method"         text        NOT NULL DEFAULT 'POST',
    "headers"        jsonb       NOT NULL DEFAULT '{}',
    -- Standard Webhooks signing secret (whsec_...), when the subscription signs.
    "secret"         text        NULL,
    -- JSON array of event names; ["*"] means every event.
    "events"         jsonb       NOT NULL DEFAULT '["*"]',
    "timeoutMs"      integer     NOT NULL DEFAULT 10000,
    "maxRetries"     integer     NOT NULL DEFAULT 3,
    "isActive"       boolean     NOT NULL DEFAULT true,
    "disabledReason" text        NULL,
    "createdBy"      uuid        NULL,
    "createdAt"      timestamptz NOT NULL DEFAULT now(),
    "updatedAt"      timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT "pk_subscriptions" PRIMARY KEY ("subscriptionId"),
    CONSTRAINT "ck_subscriptions_source" CHECK ("source" IN ('env', 'file', 'api', 'builtin')),
    CONSTRAINT "ck_subscriptions_kind" CHECK ("kind" IN ('webhook', 'plugin', 'nats', 'amqp')),
    CONSTRAINT "ck_subscriptions_events" CHECK (jsonb_typeof("events") = 'array'),
    CONSTRAINT "ck_subscriptions_headers" CHECK (jsonb_typeof("headers") = 'object'),
    CONSTRAINT "ck_subscriptions_timeout" CHECK ("timeoutMs" BETWEEN 1 AND 300000),
    CONSTRAINT "ck_subscriptions_retries" CHECK ("maxRetries" BETWEEN 0 AND 100)
);
CREATE INDEX "idx_subscriptions_tenant" ON "subscriptions" ("tenantId", "organisationId", "isActive");
CREATE INDEX "idx_subscriptions_source_name" ON "subscriptions" ("source", "name");

CREATE TABLE "deliveries" (
    "deliveryId"     uuid        NOT NULL,
    "eventSeq"       BIGINT      NOT NULL,
    "subscriptionId" uuid        NOT NULL,
    -- Copied from the event so ordered claims need no join.
    "orderingKey"    text        NULL,
    "status"         text        NOT NULL DEFAULT 'pending',
    "attemptCount"   integer     NOT NULL DEFAULT 0,
    "nextAttemptAt"  timestamptz NOT NULL DEFAULT now(),
    "leaseOwner"     text        NULL,
    "leaseExpiresAt" timestamptz NULL,
    "lastStatusCode" integer     NULL,
    "lastError"      text        NULL,
    "createdAt"      timestamptz NOT NULL DEFAULT now(),
    "updatedAt"      timestamptz NOT NULL DEFAULT now(),
    "deliveredAt"    timestamptz NULL,
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
    "deliveryAttemptId" uuid        NOT NULL,
    "deliveryId"        uuid        NOT NULL,
    "attemptNumber"     integer     NOT NULL,
    "startedAt"         timestamptz NOT NULL,
    "durationMs"        BIGINT      NOT NULL,
    "statusCode"        integer     NULL,
    "error"             text        NULL,
    -- The first KiB of the response body.
    "responseBody"      text        NULL,
    CONSTRAINT "pk_delivery_attempts" PRIMARY KEY ("deliveryAttemptId"),
    CONSTRAINT "uq_delivery_attempts_number" UNIQUE ("deliveryId", "attemptNumber"),
    CONSTRAINT "fk_delivery_attempts_delivery" FOREIGN KEY ("deliveryId") REFERENCES "deliveries" ("deliveryId") ON DELETE CASCADE
);
