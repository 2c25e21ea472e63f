#!/usr/bin/env bash
# Exam day (issue 16): N learners start one published test at the same moment over C
# connections, then each saves an answer and submits (the load generator's `surge` mode), on
# SQLite and on PostgreSQL, a fresh database and service for each run. Before the PostgreSQL
# runs, pgbench measures the smallest start transaction PostgreSQL commits (one statement:
# insert the attempt, append the event; `bench/ceiling.sh P 15 start`) with P clients (50 by
# default: the server allows 100 connections, and the service itself uses a pool of 10): the
# reference the start rate is quoted against.
#
# Usage: bench/surge.sh [-n "1000 5000"] [-c 200] [-p 50] [-d "sqlite postgres"] [-e "VAR=value ..."] [-s] BINARY
#   -e sets extra environment for the service (e.g. "START_CONCURRENCY=16"); -s: the learners
#   only start (`surge --starts-only`), the figure to set beside pgbench's.
# Prints one JSON line per run: the generator's summary with the database and N added.
set -euo pipefail
cd "$(dirname "$0")/.."
ns="1000 5000"; c=200; p=50; dbs="sqlite postgres"; extra=""; only=""
while getopts "n:c:p:d:e:s" o; do
    case "$o" in
        n) ns="$OPTARG" ;;
        c) c="$OPTARG" ;;
        p) p="$OPTARG" ;;
        d) dbs="$OPTARG" ;;
        e) extra="$OPTARG" ;;
        s) only="--starts-only" ;;
        *) exit 2 ;;
    esac
done
shift $((OPTIND - 1))
[ "$#" -eq 1 ] || { echo "usage: $0 [-n N...] [-c C] [-d DBS] [-e ENV] BINARY" >&2; exit 2; }
bin="$1"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/assessment-service-target}"
cargo build --release --locked -q -p assessment-bench
gen="$CARGO_TARGET_DIR/release/assessment-bench"
port="${PORT:-18096}"
pg="postgres://postgres@127.0.0.1:5432"
db="bench_surge_$$"
work=$(mktemp -d)
trap '[ -n "${pid:-}" ] && kill "$pid" 2>/dev/null; rm -rf "$work"; psql -q -h 127.0.0.1 -U postgres -d postgres -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1 || true' EXIT

if [[ " $dbs " == *" postgres "* ]]; then
    echo "{\"pgbench_minimal_start\": \"$(SERVICE_BIN="$bin" bench/ceiling.sh "$p" 15 start | grep -E '^tps' | tr -d '\n')\", \"clients\": $p}"
fi
for database in $dbs; do
    for n in $ns; do
        if [ "$database" = postgres ]; then
            psql -q -h 127.0.0.1 -U postgres -d postgres -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" -c "CREATE DATABASE $db" >/dev/null 2>&1
            url="$pg/$db"
        else
            rm -f "$work"/surge.db*
            url="sqlite://$work/surge.db"
        fi
        # shellcheck disable=SC2086 # extra is a list of assignments
        env DATABASE_URL="$url" PORT="$port" LOG_LEVEL=warn RATE_LIMIT_TENANT_PER_SEC=0 $extra \
            "$bin" >"$work/log" 2>&1 &
        pid=$!
        for _ in $(seq 1 200); do
            curl -fs "http://127.0.0.1:$port/health/ready" >/dev/null 2>&1 && break
            sleep 0.05
        done
        # shellcheck disable=SC2086 # only is one flag or none
        out=$("$gen" --url "http://127.0.0.1:$port" surge -n "$n" -c "$c" $only | tail -1)
        kill "$pid"; wait "$pid" 2>/dev/null || true
        pid=""
        echo "{\"database\": \"$database\", \"n\": $n, \"c\": $c, \"env\": \"$extra\", \"result\": $out}"
    done
done
