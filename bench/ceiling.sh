#!/usr/bin/env bash
# The ceiling: how many "answer save" transactions PostgreSQL itself commits per second on this
# machine. The default mode uses the statements of the general save path (an attempt's first
# save, src/service/attempts/answers.rs `save_locked`): lock the attempt, read the test, the
# question and its options, upsert the answer, append the event, update the attempt, commit.
# Saves of an attempt the instance started take the guarded path (src/store/saves.rs): on
# PostgreSQL one statement for many learners' saves, each more than `minimal` does alone.
# (The service's NOTIFY to other instances is sent after the commit, coalesced, outside the
# transaction; it is left out here.)
#
# `minimal` measures instead the smallest transaction a durable answer save needs, as one
# statement (one round trip, committed on its own): check the attempt (the learner's, in
# progress), upsert the answer, append the event. The service's answers/s divided by that is
# its share of what PostgreSQL can commit at all (issue 13's ratio).
#
# `start` measures the smallest transaction a start needs, as one statement: insert a new
# learner's attempt, append its event (issue 16's reference for the surge).
#
# Usage: [SERVICE_BIN=path] bench/ceiling.sh [clients] [seconds] [service|minimal|start]   (PostgreSQL on 127.0.0.1:5432)
set -euo pipefail
cd "$(dirname "$0")/.."
clients="${1:-50}"
seconds="${2:-20}"
mode="${3:-service}"
db="ceiling_$$"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/assessment-service-target}"
PSQL=(psql -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -U postgres)
"${PSQL[@]}" -d postgres -c "CREATE DATABASE \"$db\""
trap '"${PSQL[@]}" -d postgres -c "DROP DATABASE IF EXISTS \"$db\" WITH (FORCE)" >/dev/null 2>&1 || true' EXIT
# SERVICE_BIN: a built service binary for the migration (no build during a benchmark run).
if [ -n "${SERVICE_BIN:-}" ]; then
    "$SERVICE_BIN" migrate --database-url "postgres://postgres@127.0.0.1:5432/$db" >/dev/null
else
    cargo run -q --release --bin assessment-service -- migrate --database-url "postgres://postgres@127.0.0.1:5432/$db" >/dev/null
fi

T=0f3d1c9e-6a1b-4b2c-9d3e-1f2a3b4c5d6e
O=1a2b3c4d-5e6f-4a1b-8c2d-3e4f5a6b7c8d
U=2b3c4d5e-6f7a-4b2c-9d3e-4f5a6b7c8d9e
TEST=3c4d5e6f-7a8b-4c3d-ae4f-5a6b7c8d9e0f
Q=4d5e6f7a-8b9c-4d4e-bf5a-6b7c8d9e0f1a
OPT=5e6f7a8b-9c0d-4e1f-a2b3-c4d5e6f7a8b9
"${PSQL[@]}" -d "$db" <<SQL
INSERT INTO "tests" ("testId","type","tenantId","organisationId","title","status","createdBy")
  VALUES ('$TEST','plain','$T','$O','Ceiling','published','$U');
INSERT INTO "questions" ("questionId","tenantId","organisationId","text","type","status","createdBy")
  VALUES ('$Q','$T','$O','Q','mcq','published','$U');
INSERT INTO "questionOptions" ("questionOptionId","tenantId","organisationId","questionId","text","isCorrect","ordering")
  SELECT CASE WHEN g = 0 THEN '$OPT'::uuid ELSE gen_random_uuid() END, '$T','$O','$Q','option '||g, g = 0, g
  FROM generate_series(0,3) g;
INSERT INTO "testAttempts" ("attemptId","tenantId","organisationId","testId","userId","attempt","status","paper","totalMarks")
  SELECT md5('attempt'||g)::uuid, '$T','$O','$TEST', md5('user'||g)::uuid, 1, 'I',
         '[{"questionId":"$Q","sectionId":null,"ruleId":null,"isCompulsory":false,"isConditional":false,"optionOrder":[]}]', 100
  FROM generate_series(1, $clients) g;
SQL

script=$(mktemp)
if [ "$mode" = minimal ]; then
cat > "$script" <<SQL
\set a random(1, $clients)
WITH a AS (SELECT "attemptId" FROM "testAttempts" WHERE "attemptId" = md5('attempt' || :a)::uuid AND "tenantId" = '$T' AND "organisationId" = '$O' AND "userId" = md5('user' || :a)::uuid AND "status" = 'I' FOR UPDATE), ans AS (INSERT INTO "testUserAnswers" ("attemptAnsId","tenantId","organisationId","attemptId","questionId","answer","score","reviewStatus","anssOrder","createdAt","updatedBy","updatedAt") SELECT gen_random_uuid(), '$T', '$O', a."attemptId", '$Q', '{"selectedOptionIds":["$OPT"]}', 100, 'R', '1', now(), '$U', now() FROM a ON CONFLICT ("attemptId","questionId") DO UPDATE SET "answer" = excluded."answer", "score" = excluded."score", "reviewStatus" = excluded."reviewStatus", "updatedBy" = excluded."updatedBy", "updatedAt" = excluded."updatedAt" RETURNING 1) INSERT INTO "events" ("eventId","name","tenantId","organisationId","userId","orderingKey","payload","createdAt") SELECT gen_random_uuid(), 'answer.submitted', '$T', '$O', '$U', 'attempt:' || :a, '{"name":"answer.submitted","context":{},"data":{},"timestamp":"","id":""}', now() FROM ans RETURNING "seq";
SQL
label="the minimal answer save (one statement: check, upsert, append)"
elif [ "$mode" = start ]; then
# A paper of 20 items, built in SQL: pgbench would read the colons of a JSON text as variables.
cat > "$script" <<SQL
WITH a AS (INSERT INTO "testAttempts" ("attemptId","tenantId","organisationId","testId","userId","attempt","status","paper","totalMarks") SELECT gen_random_uuid(), '$T', '$O', '$TEST', gen_random_uuid(), 1, 'I', jsonb_agg(jsonb_build_object('questionId', '$Q', 'sectionId', NULL, 'ruleId', NULL, 'isCompulsory', false, 'isConditional', false, 'optionOrder', jsonb_build_array())), 2000 FROM generate_series(1, 20) RETURNING "attemptId") INSERT INTO "events" ("eventId","name","tenantId","organisationId","userId","orderingKey","payload","createdAt") SELECT gen_random_uuid(), 'attempt.started', '$T', '$O', '$U', 'attempt.' || a."attemptId", jsonb_build_object('name', 'attempt.started', 'data', jsonb_build_object('attemptId', a."attemptId")), now() FROM a RETURNING "seq";
SQL
label="the minimal start (one statement: insert the attempt, append the event)"
else
cat > "$script" <<SQL
\set a random(1, $clients)
BEGIN;
SELECT * FROM "testAttempts" WHERE "attemptId" = md5('attempt' || :a)::uuid AND "tenantId" = '$T' AND "organisationId" = '$O' FOR UPDATE;
SELECT * FROM "tests" WHERE "testId" = '$TEST' AND "tenantId" = '$T' AND "organisationId" = '$O';
SELECT * FROM "questions" WHERE "tenantId" = '$T' AND "organisationId" = '$O' AND "questionId" IN ('$Q');
SELECT * FROM "questionOptions" WHERE "tenantId" = '$T' AND "organisationId" = '$O' AND "questionId" IN ('$Q') ORDER BY "questionId", "ordering", "createdAt", "questionOptionId";
INSERT INTO "testUserAnswers" ("attemptAnsId","tenantId","organisationId","attemptId","questionId","answer","score","reviewStatus","anssOrder","createdAt","updatedBy","updatedAt") VALUES (gen_random_uuid(), '$T', '$O', md5('attempt' || :a)::uuid, '$Q', '{"selectedOptionIds":["$OPT"]}', 100, 'R', '1', now(), '$U', now()) ON CONFLICT ("attemptId","questionId") DO UPDATE SET "answer" = excluded."answer", "score" = excluded."score", "reviewStatus" = excluded."reviewStatus", "reviewedBy" = NULL, "reviewedAt" = NULL, "updatedBy" = excluded."updatedBy", "updatedAt" = excluded."updatedAt";
INSERT INTO "events" ("eventId","name","tenantId","organisationId","userId","orderingKey","payload","createdAt") VALUES (gen_random_uuid(), 'answer.submitted', '$T', '$O', '$U', 'attempt:' || :a, '{"name":"answer.submitted","context":{},"data":{},"timestamp":"","id":""}', now()) RETURNING "seq";
UPDATE "testAttempts" SET "submittedAt" = NULL, "status" = 'I', "reviewStatus" = 'P', "score" = NULL, "submissionType" = 'self', "result" = NULL, "currentPosition" = 1, "timeSpent" = 1, "updatedBy" = '$U', "updatedAt" = now() WHERE "attemptId" = md5('attempt' || :a)::uuid AND "tenantId" = '$T' AND "organisationId" = '$O';
COMMIT;
SQL
label="the service's answer-save transaction (9 round trips)"
fi
echo "pgbench: $label, $clients clients, ${seconds}s"
# Without TLS, as the service connects to a server on this machine (src/store/mod.rs).
PGSSLMODE=disable pgbench -n -M prepared -h 127.0.0.1 -U postgres -c "$clients" -j 2 -T "$seconds" -f "$script" "$db" | grep -E "tps|latency|failed"
rm -f "$script"
