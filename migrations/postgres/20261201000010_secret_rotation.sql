-- Secret rotation with an overlap (Standard Webhooks allows several signatures): after a
-- rotation, deliveries are signed with the new secret and also with the previous one until
-- "previousSecretExpiresAt", so receivers can switch to the new secret without a window in
-- which valid deliveries fail their check.
ALTER TABLE "subscriptions" ADD COLUMN "previousSecret" TEXT;
ALTER TABLE "subscriptions" ADD COLUMN "previousSecretExpiresAt" TIMESTAMPTZ;
