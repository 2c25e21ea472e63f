-- The claim reads each subscription's due deliveries in order (per subscription, then by due
-- time), so its cost does not grow with the backlog.
CREATE INDEX "idx_deliveries_claim" ON "deliveries" ("subscriptionId", "nextAttemptAt", "eventSeq", "deliveryId")
    WHERE "status" IN ('pending', 'delivering');
