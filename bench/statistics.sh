#!/usr/bin/env bash
# Item statistics at scale (issue 19, item 4): a published test of 20 one-mark questions with
# 10,000 submitted attempts (200,000 answers, written straight into the database), then
# GET /tests/{id}/statistics timed through the service, beside the same aggregates run by psql
# alone in the same run (the database's own share).
#
# Usage: bench/statistics.sh [SERVICE_BINARY] [ATTEMPTS]   (PostgreSQL on 127.0.0.1:5432)
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/assessment-service-target}"
bin="${1:-}"
if [ -z "$bin" ]; then
    cargo build --release --locked -q --bin assessment-service
    bin="$CARGO_TARGET_DIR/release/assessment-service"
fi
attempts="${2:-10000}"
port="${PORT:-18097}"
db="assessment_stats_bench_$$"
psql_() { psql -v ON_ERROR_STOP=1 -q -h 127.0.0.1 -U postgres "$@"; }
psql_ -d postgres -c "CREATE DATABASE \"$db\""
work=$(mktemp -d)
trap 'kill "${pid:-}" 2>/dev/null || true; psql_ -d postgres -c "DROP DATABASE IF EXISTS \"$db\" WITH (FORCE)" >/dev/null 2>&1 || true; rm -rf "$work"' EXIT

DATABASE_URL="postgres://postgres@127.0.0.1:5432/$db" PORT="$port" LOG_LEVEL=warn "$bin" >"$work/log" 2>&1 &
pid=$!
for _ in $(seq 1 200); do
    curl -fs "http://127.0.0.1:$port/health/ready" >/dev/null 2>&1 && break
    sleep 0.05
done

python3 - "$port" "$db" "$attempts" <<'PY'
import json, statistics, subprocess, sys, time, urllib.request

port, db, attempts = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
T, O, U = "0f3d1c9e-6a1b-4b2c-9d3e-1f2a3b4c5d6e", "1a2b3c4d-5e6f-4a1b-8c2d-3e4f5a6b7c8d", "2b3c4d5e-6f7a-4b2c-9d3e-4f5a6b7c8d9e"
H = {"tenantid": T, "organisationid": O, "userid": U, "content-type": "application/json"}
base = f"http://127.0.0.1:{port}/assessment/v1"

def call(method, path, body=None):
    req = urllib.request.Request(base + path, method=method, headers=H,
                                 data=None if body is None else json.dumps(body).encode())
    with urllib.request.urlopen(req) as r:
        return json.loads(r.read())

def psql(sql):
    out = subprocess.run(["psql", "-v", "ON_ERROR_STOP=1", "-qAt", "-h", "127.0.0.1", "-U", "postgres", "-d", db, "-c", sql],
                         check=True, capture_output=True, text=True)
    return out.stdout

test = call("POST", "/tests", {"title": "Statistics", "type": "plain"})["result"]["testId"]
section = call("POST", "/sections", {"testId": test, "title": "S"})["result"]["sectionId"]
for i in range(20):
    call("POST", "/questions", {"text": f"q{i}", "type": "mcq", "marks": 1, "testId": test, "sectionId": section,
                                "options": [{"text": "right", "isCorrect": True}, {"text": "wrong"}]})
call("POST", f"/tests/{test}/publish")

# Learner i (ability i % 20) answers question j (easiness j) right when a hash of (i, j), taken
# modulo 40, is below ability + easiness: easy and hard items, learners of every ability, and
# items that agree with each other through the learner's ability.
t0 = time.perf_counter()
psql(f"""
INSERT INTO "testAttempts" ("attemptId", "tenantId", "organisationId", "testId", "userId", "attempt",
    "startedAt", "submittedAt", "status", "reviewStatus", "submissionType", "updatedAt", "totalMarks", "testVersion")
SELECT md5('a' || i)::uuid, '{T}', '{O}', '{test}', md5('u' || i)::uuid, 1, now(), now(), 'S', 'R', 'self', now(), 2000, 1
FROM generate_series(1, {attempts}) i;
WITH q AS (SELECT tq."questionId", row_number() OVER (ORDER BY tq."ordering", tq."questionId") - 1 AS j
           FROM "testQuestions" tq WHERE tq."testId" = '{test}'),
o AS (SELECT "questionId", MAX(CASE WHEN "isCorrect" THEN "questionOptionId"::text END) AS r,
             MAX(CASE WHEN NOT "isCorrect" THEN "questionOptionId"::text END) AS w
      FROM "questionOptions" GROUP BY "questionId")
INSERT INTO "testUserAnswers" ("attemptAnsId", "tenantId", "organisationId", "attemptId", "questionId",
    "answer", "score", "reviewStatus")
SELECT md5('x' || i || '-' || q.j)::uuid, '{T}', '{O}', md5('a' || i)::uuid, q."questionId",
    jsonb_build_object('selectedOptionIds', jsonb_build_array(CASE WHEN abs(hashtext(i || '-' || q.j)) % 40 < (i % 20) + q.j THEN o.r ELSE o.w END)),
    CASE WHEN abs(hashtext(i || '-' || q.j)) % 40 < (i % 20) + q.j THEN 100 ELSE 0 END, 'R'
FROM generate_series(1, {attempts}) i, q JOIN o ON o."questionId" = q."questionId";
UPDATE "testAttempts" a SET "score" = s.total FROM
    (SELECT "attemptId", SUM("score") AS total FROM "testUserAnswers" GROUP BY "attemptId") s
WHERE s."attemptId" = a."attemptId";
ANALYZE;
""")
print(f"loaded {attempts} attempts, {attempts * 20} answers in {time.perf_counter() - t0:.1f} s")

# The database alone: the same aggregates the service asks for (of the test's version 1), in
# one psql session each run.
of_version = f"""a."testId" = '{test}' AND a."testVersion" = 1 AND a."status" = 'S'"""
aggregates = f"""\\timing on
SELECT COUNT(*), SUM(a."score"), SUM(a."score" * a."score") FROM "testAttempts" a WHERE {of_version};
SELECT u."questionId", SUM(u."score"), SUM(u."score" * u."score"), SUM(u."score" * a."score"), COUNT(u."score")
  FROM "testUserAnswers" u JOIN "testAttempts" a ON a."attemptId" = u."attemptId" WHERE {of_version} GROUP BY 1;
SELECT u."questionId", c.value, COUNT(*) FROM "testUserAnswers" u JOIN "testAttempts" a ON a."attemptId" = u."attemptId",
  jsonb_array_elements_text(u."answer" -> 'selectedOptionIds') c(value) WHERE {of_version} GROUP BY 1, 2;
SELECT a."score", COUNT(*) FROM "testAttempts" a WHERE {of_version} GROUP BY 1 ORDER BY 1;
"""
service, database = [], []
for _ in range(5):
    t0 = time.perf_counter()
    r = call("GET", f"/tests/{test}/statistics")["result"]
    service.append((time.perf_counter() - t0) * 1000)
    out = subprocess.run(["psql", "-qAt", "-h", "127.0.0.1", "-U", "postgres", "-d", db],
                         input=aggregates, check=True, capture_output=True, text=True).stdout
    database.append(sum(float(l.split()[1]) for l in out.splitlines() if l.startswith("Time:")))
assert r["attempts"] == attempts, r["attempts"]
print(f"statistics of {attempts} attempts x 20 questions: alpha {r['cronbachAlpha']:.3f}, mean {r['mean']:.2f}")
print(f"GET /statistics (service, 5 runs): min {min(service):.0f} ms, median {statistics.median(service):.0f} ms, max {max(service):.0f} ms")
print(f"the four main aggregates in psql alone: min {min(database):.0f} ms, median {statistics.median(database):.0f} ms")
PY
