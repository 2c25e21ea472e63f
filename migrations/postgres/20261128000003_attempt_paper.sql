-- The paper of an attempt, fixed when it starts: the questions it holds (in order, with their
-- sections and the order of their options), the seed that chose and shuffled them, the
-- deadline the server enforces, and the total marks it is scored against.
ALTER TABLE "testAttempts" ADD COLUMN "seed" BIGINT NULL;
ALTER TABLE "testAttempts" ADD COLUMN "deadlineAt" timestamptz NULL;
-- JSON array of {questionId, sectionId, ruleId, isCompulsory, isConditional, optionOrder[]}.
ALTER TABLE "testAttempts" ADD COLUMN "paper" jsonb NULL;
-- Hundredths, like every marks column.
ALTER TABLE "testAttempts" ADD COLUMN "totalMarks" BIGINT NULL;
-- The sweeper's lookup: in-progress attempts by deadline.
CREATE INDEX "idx_test_attempts_deadline" ON "testAttempts" ("deadlineAt") WHERE "status" = 'I';
