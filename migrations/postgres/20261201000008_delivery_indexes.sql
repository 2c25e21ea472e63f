-- Indexes for the claim and the fan-out's ordering check, each over the undelivered
-- deliveries only (pending or leased), so their size follows the queue, not the history.
--
-- The first undelivered delivery of an ordering key, per subscription: a later one is due
-- only when it is that first one.
DROP INDEX IF EXISTS "idx_deliveries_ordering";
CREATE INDEX "idx_deliveries_key_order" ON "deliveries" ("subscriptionId", "orderingKey", "eventSeq")
    WHERE "status" IN ('pending', 'delivering');
-- A subscription's live leases, counted against its room in flight.
CREATE INDEX "idx_deliveries_leased" ON "deliveries" ("subscriptionId", "leaseExpiresAt")
    WHERE "status" = 'delivering';
