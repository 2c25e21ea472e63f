-- The W3C trace context of the request that committed an event ("00-<trace>-<span>-<flags>",
-- the service's span as the parent), sent with its deliveries as the `traceparent` header.
-- NULL for events no request committed (system events) and for events stored before.
ALTER TABLE "events" ADD COLUMN "traceparent" TEXT;
