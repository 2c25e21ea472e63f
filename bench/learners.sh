#!/usr/bin/env bash
# The learner benchmark on PostgreSQL, one or more service binaries side by side in one run:
# for each round and each binary, a fresh database, a freshly started service, then the
# `learners` mode of the load generator at each concurrency. Binaries alternate, so noise from
# the shared machine falls on all of them alike.
#
# Usage: bench/learners.sh [-n learners] [-c "10 50"] [-r rounds] [-a ARGS] [-m] BINARY [BINARY...]
#   e.g. bench/learners.sh -r 2 /var/tmp/target-before/release/assessment-service \
#        target/release/assessment-service
# -a replaces the generator's arguments ({c} is each value of -c), e.g. event delivery:
#   bench/learners.sh -c 1000 -a "events -k 10000 -c 20 --rate {c} --warmup 1000" BINARY...
# -m adds the service's own view of each learner route (from its /metrics histogram, scraped
# before it stops): requests, and the share answered within 1, 2.5 and 5 ms of the request's
# arrival in the service, to tell time spent in the service from time spent waiting for a CPU.
# Prints one JSON line per run (the generator's own summary, with the binary and C added, and
# the CPU seconds of the service, of PostgreSQL and of the generator over the run).
set -euo pipefail
cd "$(dirname "$0")/.."
n=500; concurrencies="10 50"; rounds=1; args=""; server_view=0
while getopts "n:c:r:a:m" o; do
    case "$o" in
        n) n="$OPTARG" ;;
        c) concurrencies="$OPTARG" ;;
        r) rounds="$OPTARG" ;;
        a) args="$OPTARG" ;;
        m) server_view=1 ;;
        *) exit 2 ;;
    esac
done
shift $((OPTIND - 1))
[ "$#" -ge 1 ] || { echo "usage: $0 [-n N] [-c \"10 50\"] [-r R] BINARY..." >&2; exit 2; }
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/assessment-service-target}"
cargo build --release --locked -q -p assessment-bench
gen="$CARGO_TARGET_DIR/release/assessment-bench"
port="${PORT:-18090}"
pg="postgres://postgres@127.0.0.1:5432"
db="bench_learners_$$"
trap 'rm -f "${gen_time:-}"; [ -n "${pid:-}" ] && kill "$pid" 2>/dev/null || true; psql -q -h 127.0.0.1 -U postgres -d postgres -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1 || true' EXIT

# CPU seconds used so far by the PostgreSQL processes now running (the server's backends for
# the service's pooled connections live through the run, so the difference across the run is
# what PostgreSQL spent on it; backends that exit during the run are not counted).
pg_cpu() {
    local hz total=0 f
    hz=$(getconf CLK_TCK)
    for f in /proc/[0-9]*/stat; do
        [ "$(cat "${f%stat}comm" 2>/dev/null)" = postgres ] || continue
        total=$((total + $(awk '{print $14 + $15}' "$f" 2>/dev/null || echo 0)))
    done
    echo "scale=2; $total / $hz" | bc
}
gen_time=$(mktemp)

for round in $(seq 1 "$rounds"); do
    for c in $concurrencies; do
        for bin in "$@"; do
            psql -q -h 127.0.0.1 -U postgres -d postgres -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" -c "CREATE DATABASE $db" >/dev/null 2>&1
            DATABASE_URL="$pg/$db" PORT="$port" LOG_LEVEL=warn WEBHOOK_ALLOW_PRIVATE_NETWORKS=true RATE_LIMIT_TENANT_PER_SEC=0 \
                "$bin" >/dev/null 2>&1 &
            pid=$!
            for _ in $(seq 1 200); do
                curl -fs "http://127.0.0.1:$port/health/ready" >/dev/null 2>&1 && break
                sleep 0.05
            done
            workload="$args"
            [ -n "$workload" ] || workload="learners -n $n -c {c}"
            pg_before=$(pg_cpu)
            # shellcheck disable=SC2086 # the workload is a list of arguments
            out=$(/usr/bin/time -f "%U %S" -o "$gen_time" "$gen" --url "http://127.0.0.1:$port" \
                ${workload//\{c\}/$c} 2>/dev/null | tail -1)
            pg_after=$(pg_cpu)
            # The service's CPU time over its whole life (start-up and the run), in seconds.
            cpu=$(awk -v hz="$(getconf CLK_TCK)" '{printf "%.2f", ($14 + $15) / hz}' "/proc/$pid/stat")
            server="null"
            if [ "$server_view" = 1 ]; then
                server=$(curl -fs "http://127.0.0.1:$port/metrics" | python3 bench/server-view.py)
            fi
            gen_cpu=$(awk '{printf "%.2f", $1 + $2}' "$gen_time")
            kill "$pid"; wait "$pid" 2>/dev/null || true
            printf '{"round": %s, "binary": "%s", "c": %s, "service_cpu_s": %s, "postgres_cpu_s": %s, "generator_cpu_s": %s, "server": %s, "result": %s}\n' \
                "$round" "$bin" "$c" "$cpu" "$(echo "$pg_after - $pg_before" | bc)" "$gen_cpu" "$server" "$out"
        done
    done
done
