-- Idempotent answer saves: a save sent with an Idempotency-Key header is recorded with its
-- response; a save of the same attempt with the same key gets that response again, writes
-- nothing and emits no second event. Kept as long as the attempt.
CREATE TABLE "answerSaveKeys" (
    "attemptId"      TEXT NOT NULL,
    "key"            TEXT NOT NULL,
    "tenantId"       TEXT NOT NULL,
    "organisationId" TEXT NOT NULL,
    "requestHash"    TEXT NOT NULL,
    "response"       TEXT NOT NULL CHECK (json_valid("response")),
    "createdAt"      TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ','now')),
    CONSTRAINT "pk_answerSaveKeys" PRIMARY KEY ("attemptId", "key"),
    CONSTRAINT "fk_answerSaveKeys_attempt" FOREIGN KEY ("attemptId")
        REFERENCES "testAttempts" ("attemptId") ON DELETE CASCADE
);
