-- Idempotent answer saves: a save sent with an Idempotency-Key header is recorded with its
-- response; a save of the same attempt with the same key gets that response again, writes
-- nothing and emits no second event. Kept as long as the attempt.
CREATE TABLE "answerSaveKeys" (
    "attemptId"      uuid        NOT NULL,
    "key"            text        NOT NULL,
    "tenantId"       uuid        NOT NULL,
    "organisationId" uuid        NOT NULL,
    "requestHash"    text        NOT NULL,
    "response"       jsonb       NOT NULL,
    "createdAt"      timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT "pk_answerSaveKeys" PRIMARY KEY ("attemptId", "key"),
    CONSTRAINT "fk_answerSaveKeys_attempt" FOREIGN KEY ("attemptId")
        REFERENCES "testAttempts" ("attemptId") ON DELETE CASCADE
);
