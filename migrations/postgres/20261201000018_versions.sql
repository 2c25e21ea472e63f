-- Published versions. A question keeps every earlier state of itself that an attempt may hold:
-- an edit first copies the question and its options as they were into "questionRevisions",
-- then counts "revision" up. An attempt's paper names the revision of each of its questions, so
-- it is scored, resumed and shown against what it started with.
ALTER TABLE "questions" ADD COLUMN "revision" integer NOT NULL DEFAULT 1;

CREATE TABLE "questionRevisions" (
    "questionId"     uuid        NOT NULL,
    "revision"       integer     NOT NULL,
    "tenantId"       uuid        NOT NULL,
    "organisationId" uuid        NOT NULL,
    "question"       jsonb       NOT NULL,
    "options"        jsonb       NOT NULL,
    "createdAt"      timestamptz NOT NULL,
    CONSTRAINT "pk_questionRevisions" PRIMARY KEY ("questionId", "revision")
);

-- Each publish that changed what a test scores (its questions' revisions, its rules, its
-- grading and marks) records a version; "tests"."version" is the latest, 0 before the first.
ALTER TABLE "tests" ADD COLUMN "version" integer NOT NULL DEFAULT 0;

CREATE TABLE "testVersions" (
    "testId"         uuid        NOT NULL,
    "version"        integer     NOT NULL,
    "tenantId"       uuid        NOT NULL,
    "organisationId" uuid        NOT NULL,
    "gradingType"    text        NOT NULL,
    "totalMarks"     bigint      NOT NULL,
    "passingMarks"   bigint      NOT NULL,
    "questionCount"  integer     NOT NULL,
    "questions"      jsonb       NOT NULL,
    "rules"          jsonb       NOT NULL,
    "publishedBy"    uuid        NOT NULL,
    "publishedAt"    timestamptz NOT NULL,
    CONSTRAINT "pk_testVersions" PRIMARY KEY ("testId", "version"),
    CONSTRAINT "fk_testVersions_test" FOREIGN KEY ("testId")
        REFERENCES "tests" ("testId") ON DELETE CASCADE
);

-- The version an attempt started on (0: before versions were recorded).
ALTER TABLE "testAttempts" ADD COLUMN "testVersion" integer NOT NULL DEFAULT 0;

-- One row per attempt a regrade changed: who, when, why, and the score and result before and
-- after.
CREATE TABLE "attemptRegrades" (
    "regradeId"      uuid        NOT NULL,
    "attemptId"      uuid        NOT NULL,
    "testId"         uuid        NOT NULL,
    "userId"         uuid        NOT NULL,
    "tenantId"       uuid        NOT NULL,
    "organisationId" uuid        NOT NULL,
    "fromVersion"    integer     NOT NULL,
    "toVersion"      integer     NOT NULL,
    "oldScore"       bigint,
    "newScore"       bigint,
    "oldResult"      text,
    "newResult"      text,
    "reason"         text,
    "regradedBy"     uuid        NOT NULL,
    "regradedAt"     timestamptz NOT NULL,
    CONSTRAINT "pk_attemptRegrades" PRIMARY KEY ("regradeId"),
    CONSTRAINT "fk_attemptRegrades_attempt" FOREIGN KEY ("attemptId")
        REFERENCES "testAttempts" ("attemptId") ON DELETE CASCADE
);
CREATE INDEX "idx_attemptRegrades_test" ON "attemptRegrades" ("testId", "regradedAt");
