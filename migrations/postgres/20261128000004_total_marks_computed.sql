-- Whether "totalMarks" was computed by publishing (and so is recomputed on the next publish)
-- rather than set by the author.
ALTER TABLE "tests" ADD COLUMN "totalMarksComputed" boolean NOT NULL DEFAULT false;
