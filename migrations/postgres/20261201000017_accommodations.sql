-- Accommodations (Canvas's "moderate quiz"): per learner and test, extra time (minutes or a
-- multiplier of the time limit), extra attempts, and a later end date. Used when an attempt
-- starts; a change during an attempt moves that attempt's deadline.
CREATE TABLE "testAccommodations" (
    "testId"           uuid             NOT NULL,
    "userId"           uuid             NOT NULL,
    "tenantId"         uuid             NOT NULL,
    "organisationId"   uuid             NOT NULL,
    "extraTimeMinutes" integer,
    "timeMultiplier"   double precision,
    "extraAttempts"    integer          NOT NULL DEFAULT 0,
    "endDate"          timestamptz,
    "createdBy"        uuid             NOT NULL,
    "createdAt"        timestamptz      NOT NULL,
    "updatedBy"        uuid             NOT NULL,
    "updatedAt"        timestamptz      NOT NULL,
    CONSTRAINT "pk_testAccommodations" PRIMARY KEY ("testId", "userId"),
    CONSTRAINT "fk_testAccommodations_test" FOREIGN KEY ("testId")
        REFERENCES "tests" ("testId") ON DELETE CASCADE
);

-- The end date an accommodation gave this attempt, when later than its test's: answering stays
-- open until then (the deadline still applies).
ALTER TABLE "testAttempts" ADD COLUMN "accommodatedEnd" timestamptz NULL;
