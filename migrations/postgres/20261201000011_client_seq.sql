-- Saves a flaky network cannot reorder: an answer save may carry a "clientSeq" (an integer the
-- client increases with every save of the attempt). Each answer keeps the highest one it was
-- saved with; a save carrying a lower or equal one for that question changes nothing.
ALTER TABLE "testUserAnswers" ADD COLUMN "clientSeq" BIGINT;
