-- The reviewer's overall remarks on an attempt (upstream accepted and discarded them).
ALTER TABLE "testAttempts" ADD COLUMN "overallRemarks" text NULL;
