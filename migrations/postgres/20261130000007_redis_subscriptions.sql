-- Redis Streams joins the broker kinds (the `event-stream` plugin type with a redis:// URL).
-- The target of a broker subscription is a display form of where it publishes (its URL
-- without credentials, the queue or topic); its connection lives in the configuration only.
ALTER TABLE "subscriptions" DROP CONSTRAINT "ck_subscriptions_kind";
ALTER TABLE "subscriptions" ADD CONSTRAINT "ck_subscriptions_kind"
    CHECK ("kind" IN ('webhook', 'plugin', 'amqp', 'nats', 'redis'));
