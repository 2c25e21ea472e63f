-- Whether "totalMarks" was computed by publishing (and so is recomputed on the next publish)
-- rather than set by the author.
ALTER TABLE "tests" ADD COLUMN "totalMarksComputed" INTEGER NOT NULL DEFAULT 0 CHECK ("totalMarksComputed" IN (0, 1));
