#!/usr/bin/env bash
# A generated client runs the learner flow: openapi-python-client (from PyPI) generates a Python
# client from docs/openapi.json, then bench/client-flow.py drives create test, question, publish,
# start, save, submit, answer sheet and the learner's views through it alone (no hand-written
# request), on a fresh SQLite service, and validates every body it got against the schema the
# document gives for that operation and status (openapi-schema-validator). A document that a
# generator cannot use (a missing parameter, a wrong enum, a response its model cannot parse)
# fails here. Installs what is missing in a venv under /var/tmp.
#
# Usage: bench/client.sh [binary]   (default: the debug build in CARGO_TARGET_DIR)
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/assessment-service-target}"
bin="${1:-$CARGO_TARGET_DIR/debug/assessment-service}"
venv="${CLIENT_VENV:-/var/tmp/openapi-client-venv}"
# Both pinned: a new generator release changes the generated code (names, types), and that
# must not turn this check red on its own.
if ! "$venv/bin/python" -c 'import openapi_python_client, openapi_schema_validator' 2>/dev/null ||
    [ "$("$venv/bin/openapi-python-client" --version 2>/dev/null)" != "openapi-python-client version: 0.29.1" ]; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q "openapi-python-client==0.29.1" "openapi-schema-validator==0.9.0"
fi
gen=$(mktemp -d)
trap 'rm -rf "$gen"' EXIT
# `--meta none`: the output folder is the package itself, importable with no install step.
# The venv's bin is on PATH for the generator's post-hooks (ruff, installed with it).
# Its warnings about the document are printed; an operation it had to skip is a failure
# in client-flow.py when the flow needs it, and a warning there otherwise.
if ! PATH="$venv/bin:$PATH" "$venv/bin/openapi-python-client" generate \
    --path docs/openapi.json --output-path "$gen/assessment_client" --meta none >"$gen/log" 2>&1; then
    cat "$gen/log" >&2
    echo "client.sh: openapi-python-client could not generate a client from docs/openapi.json" >&2
    exit 1
fi
cat "$gen/log"
gen_dir="$gen"
# serve-sqlite.sh sets its own EXIT trap (stop the service, remove its folder): keep ours in it.
# shellcheck source=bench/serve-sqlite.sh
. bench/serve-sqlite.sh
trap 'kill $pid 2>/dev/null || true; rm -rf "$work" "$gen_dir"' EXIT
if ! curl -sf "http://127.0.0.1:$port/api-json" | "$venv/bin/python" -c '
import json, sys
served = json.load(sys.stdin)
committed = json.load(open("docs/openapi.json"))
sys.exit(served != committed)'; then
    echo "NOTE: the served /api-json differs from docs/openapi.json; checking against docs/openapi.json"
fi
timeout 120 "$venv/bin/python" bench/client-flow.py \
    "http://127.0.0.1:$port" "$gen/assessment_client" docs/openapi.json
