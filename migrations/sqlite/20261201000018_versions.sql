-- Published versions. A question keeps every earlier state of itself that an attempt may hold:
-- an edit first copies the question and its options as they were into "questionRevisions",
-- then counts "revision" up. An attempt's paper names the revision of each of its questions, so
-- it is scored, resumed and shown against what it started with.
ALTER TABLE "questions" ADD COLUMN "revision" INTEGER NOT NULL DEFAULT 1;

CREATE TABLE "questionRevisions" (
    "questionId"     TEXT        NOT NULL,
    "revision"       INTEGER     NOT NULL,
    "tenantId"       TEXT        NOT NULL,
    "organisationId" TEXT        NOT NULL,
    "question"       TEXT        NOT NULL,
    "options"        TEXT        NOT NULL,
    "createdAt"      TEXT        NOT NULL,
    CONSTRAINT "pk_questionRevisions" PRIMARY KEY ("questionId", "revision")
);

-- Each publish that changed what a test scores (its questions' revisions, its rules, its
-- grading and marks) records a version; "tests"."version" is the latest, 0 before the first.
ALTER TABLE "tests" ADD COLUMN "version" INTEGER NOT NULL DEFAULT 0;

CREATE TABLE "testVersions" (
    "testId"         TEXT        NOT NULL,
    "version"        INTEGER     NOT NULL,
    "tenantId"       TEXT        NOT NULL,
    "organisationId" TEXT        NOT NULL,
    "gradingType"    TEXT        NOT NULL,
    "totalMarks"     INTEGER     NOT NULL,
    "passingMarks"   INTEGER     NOT NULL,
    "questionCount"  INTEGER     NOT NULL,
    "questions"      TEXT        NOT NULL,
    "rules"          TEXT        NOT NULL,
    "publishedBy"    TEXT        NOT NULL,
    "publishedAt"    TEXT        NOT NULL,
    CONSTRAINT "pk_testVersions" PRIMARY KEY ("testId", "version"),
    CONSTRAINT "fk_testVersions_test" FOREIGN KEY ("testId")
        REFERENCES "tests" ("testId") ON DELETE CASCADE
);

-- The version an attempt started on (0: before versions were recorded).
ALTER TABLE "testAttempts" ADD COLUMN "testVersion" INTEGER NOT NULL DEFAULT 0;

-- One row per attempt a regrade changed: who, when, why, and the score and result before and
-- after.
CREATE TABLE "attemptRegrades" (
    "regradeId"      TEXT        NOT NULL,
    "attemptId"      TEXT        NOT NULL,
    "testId"         TEXT        NOT NULL,
    "userId"         TEXT        NOT NULL,
    "tenantId"       TEXT        NOT NULL,
    "organisationId" TEXT        NOT NULL,
    "fromVersion"    INTEGER     NOT NULL,
    "toVersion"      INTEGER     NOT NULL,
    "oldScore"       INTEGER,
    "newScore"       INTEGER,
    "oldResult"      TEXT,
    "newResult"      TEXT,
    "reason"         TEXT,
    "regradedBy"     TEXT        NOT NULL,
    "regradedAt"     TEXT        NOT NULL,
    CONSTRAINT "pk_attemptRegrades" PRIMARY KEY ("regradeId"),
    CONSTRAINT "fk_attemptRegrades_attempt" FOREIGN KEY ("attemptId")
        REFERENCES "testAttempts" ("attemptId") ON DELETE CASCADE
);
CREATE INDEX "idx_attemptRegrades_test" ON "attemptRegrades" ("testId", "regradedAt");
