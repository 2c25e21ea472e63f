#!/usr/bin/env bash
# The events' AsyncAPI document (issue 17, also in .ci/run): docs/asyncapi.json parsed and
# validated by the AsyncAPI initiative's own parser (@asyncapi/parser from the npm registry,
# installed under /var/tmp when missing). Any diagnostic of error severity fails; so does a
# document without one message per event. That the document matches the code, and the bodies
# really delivered match the document, is checked by the test suite (tests/it/asyncapi.rs).
#
# Usage: bench/asyncapi.sh [document]   (default: docs/asyncapi.json)
set -euo pipefail
cd "$(dirname "$0")/.."
doc="${1:-docs/asyncapi.json}"
node_dir="${DOCS_NODE_DIR:-/var/tmp/assessment-ci-node}"
if [ ! -d "$node_dir/node_modules/@asyncapi/parser" ]; then
    mkdir -p "$node_dir"
    npm install --prefix "$node_dir" --no-audit --no-fund --silent @asyncapi/parser@3.6.6
fi
NODE_PATH="$node_dir/node_modules" timeout 120 node bench/asyncapi-check.cjs "$doc"
