#!/usr/bin/env bash
# The documentation page with no network (issue 17, also in .ci/run): starts the service on a
# fresh SQLite file, then headless Chromium (Debian's `chromium`) opens /api-docs with every
# request to another host refused, and checks that every operation of /api-json is rendered
# (bench/docs-offline.cjs, driven by playwright-core from the npm registry). Installs what is
# missing: `chromium` with apt, playwright-core under /var/tmp.
#
# Usage: bench/docs.sh [binary]   (default: the debug build in CARGO_TARGET_DIR)
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/assessment-service-target}"
bin="${1:-$CARGO_TARGET_DIR/debug/assessment-service}"
# shellcheck source=bench/browser-deps.sh
. bench/browser-deps.sh
# shellcheck source=bench/serve-sqlite.sh
. bench/serve-sqlite.sh
NODE_PATH="$node_dir/node_modules" timeout 120 node bench/docs-offline.cjs "http://127.0.0.1:$port"
