#!/usr/bin/env bash
# The operator console in headless Chromium (issue 20, also in .ci/run): starts the service on
# a fresh SQLite file in JWT mode, with webhooks to this machine allowed, and runs
# bench/console.cjs against it (playwright-core from the npm registry driving Debian's
# chromium). Installs what is missing: `chromium` with apt, playwright-core under /var/tmp.
#
# Usage: bench/console.sh [--screenshots] [binary]   (default: the debug build in CARGO_TARGET_DIR)
#   --screenshots  also saves a picture of each page in docs/console/
set -euo pipefail
cd "$(dirname "$0")/.."
shots=()
if [ "${1:-}" = "--screenshots" ]; then
    mkdir -p docs/console
    shots=(--screenshots "$PWD/docs/console")
    shift
fi
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/assessment-service-target}"
bin="${1:-$CARGO_TARGET_DIR/debug/assessment-service}"
# shellcheck source=bench/browser-deps.sh
. bench/browser-deps.sh
secret="console-check-$(date +%s)-$RANDOM-$RANDOM-and-long-enough-for-hs256"
export JWT_SECRET="$secret" WEBHOOK_ALLOW_PRIVATE_NETWORKS=true
# shellcheck source=bench/serve-sqlite.sh
. bench/serve-sqlite.sh
NODE_PATH="$node_dir/node_modules" timeout 180 node bench/console.cjs "http://127.0.0.1:$port" "$secret" "${shots[@]}"
