-- Vacuum the queue tables after a small share of their rows has changed, not PostgreSQL's
-- default of a fifth of the table. Every delivery is inserted and then updated, every event
-- is marked once fanned out; the dead versions stay in the partial indexes the claim and the
-- fan-out read (the undelivered deliveries, the leases) until a vacuum removes them, and a
-- claim over a queue just drained walks them. With the default, a table holding months of
-- delivery history would wait for millions of dead rows. A fixed floor keeps small tables
-- from being vacuumed on every few changes.
ALTER TABLE "deliveries" SET (
    autovacuum_vacuum_scale_factor = 0.02,
    autovacuum_vacuum_threshold = 5000,
    autovacuum_vacuum_insert_scale_factor = 0.02,
    autovacuum_analyze_scale_factor = 0.02
);
ALTER TABLE "events" SET (
    autovacuum_vacuum_scale_factor = 0.02,
    autovacuum_vacuum_threshold = 5000,
    autovacuum_vacuum_insert_scale_factor = 0.02,
    autovacuum_analyze_scale_factor = 0.02
);

-- Nothing reads this index on PostgreSQL: its claim reads each subscription's due deliveries
-- through "idx_deliveries_claim" (same predicate, the subscription first). It cost an entry
-- (and later a dead one) for every delivery. SQLite's claim, which ranks every due delivery,
-- keeps it.
DROP INDEX IF EXISTS "idx_deliveries_due";
