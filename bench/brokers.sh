#!/usr/bin/env bash
# Event delivery through each broker on PostgreSQL, beside a webhook measured in the same run:
# for each round and each target (webhook, amqp, nats, redis), a fresh database and a freshly
# started service publishing `question.created` there, then the load generator drives K events
# at the given rate (after a warm-up) and a consumer on the queue / subject / stream (or the
# generator's own webhook receiver) times each event from its commit to its receipt.
#
# `webhook+hook` is the webhook run with a custom JavaScript plugin (bench/plugins/) whose hook
# runs on every event: its deliveries are counted from the database after the run.
#
# Usage: bench/brokers.sh [-k events] [-r rate] [-w warmup] [-n rounds] [-t "webhook amqp nats redis"] [BINARY]
# Prints one JSON line per run (the generator's summary, with the target and the service's CPU).
set -euo pipefail
cd "$(dirname "$0")/.."
k=10000; rate=1000; warmup=1000; rounds=1; targets="webhook amqp nats redis"
while getopts "k:r:w:n:t:" o; do
    case "$o" in
        k) k="$OPTARG" ;;
        r) rate="$OPTARG" ;;
        w) warmup="$OPTARG" ;;
        n) rounds="$OPTARG" ;;
        t) targets="$OPTARG" ;;
        *) exit 2 ;;
    esac
done
shift $((OPTIND - 1))
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/assessment-service-target}"
cargo build --release --locked -q -p assessment-bench -p assessment-service
bin="${1:-$CARGO_TARGET_DIR/release/assessment-service}"
gen="$CARGO_TARGET_DIR/release/assessment-bench"
port="${PORT:-18091}"
pg="postgres://postgres@127.0.0.1:5432"
db="bench_brokers_$$"
amqp="amqp://guest:guest@127.0.0.1:5672/%2f"
nats="nats://127.0.0.1:4222"
redis="redis://127.0.0.1:6379/0"
trap '[ -n "${pid:-}" ] && kill "$pid" 2>/dev/null || true; psql -q -h 127.0.0.1 -U postgres -d postgres -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1 || true' EXIT

for round in $(seq 1 "$rounds"); do
    for target in $targets; do
        name="bench$(date +%s%N)"
        env=(DATABASE_URL="$pg/$db" PORT="$port" LOG_LEVEL=warn WEBHOOK_ALLOW_PRIVATE_NETWORKS=true RATE_LIMIT_TENANT_PER_SEC=0)
        case "$target" in
            webhook) args=(events -k "$k" -c 20 --rate "$rate" --warmup "$warmup") ;;
            webhook+hook)
                env+=(CUSTOM_PLUGINS_DIR="$PWD/bench/plugins")
                args=(events -k "$k" -c 20 --rate "$rate" --warmup "$warmup") ;;
            amqp)
                env+=(MESSAGE_QUEUE_URL="$amqp" MESSAGE_QUEUE_NAME="$name" MESSAGE_QUEUE_EVENTS=question.created)
                args=(broker --kind amqp --broker-url "$amqp" --target "$name") ;;
            nats)
                env+=(EVENT_STREAM_URL="$nats" EVENT_STREAM_TOPIC="$name.{name}" EVENT_STREAM_EVENTS=question.created)
                args=(broker --kind nats --broker-url "$nats" --target "$name") ;;
            redis)
                env+=(EVENT_STREAM_URL="$redis" EVENT_STREAM_TOPIC="$name" EVENT_STREAM_EVENTS=question.created)
                args=(broker --kind redis --broker-url "$redis" --target "$name") ;;
            *) echo "unknown target $target" >&2; exit 2 ;;
        esac
        case "$target" in webhook*) ;; *) args+=(-k "$k" -c 20 --rate "$rate" --warmup "$warmup") ;; esac
        psql -q -h 127.0.0.1 -U postgres -d postgres -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" -c "CREATE DATABASE $db" >/dev/null 2>&1
        env "${env[@]}" "$bin" >/dev/null 2>&1 &
        pid=$!
        for _ in $(seq 1 200); do
            curl -fs "http://127.0.0.1:$port/health/ready" >/dev/null 2>&1 && break
            sleep 0.05
        done
        out=$("$gen" --url "http://127.0.0.1:$port" "${args[@]}" 2>&1 | tail -1)
        cpu=$(awk -v hz="$(getconf CLK_TCK)" '{printf "%.2f", ($14 + $15) / hz}' "/proc/$pid/stat")
        # The plugin's deliveries: how many were delivered, of how many.
        hooks=$(psql -At -h 127.0.0.1 -U postgres -d "$db" -c "SELECT json_build_object('delivered', COUNT(*) FILTER (WHERE d.status = 'delivered'), 'all', COUNT(*)) FROM deliveries d JOIN subscriptions s USING (\"subscriptionId\") WHERE s.kind = 'plugin'" 2>/dev/null || echo null)
        kill "$pid"; wait "$pid" 2>/dev/null || true
        printf '{"round": %s, "target": "%s", "rate": %s, "service_cpu_s": %s, "plugin_deliveries": %s, "result": %s}\n' \
            "$round" "$target" "$rate" "$cpu" "${hooks:-null}" "$out"
    done
done
