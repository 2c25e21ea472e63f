# Sourced by the scripts that drive headless Chromium (docs.sh, console.sh): installs what is
# missing, Debian's `chromium` with apt and playwright-core from the npm registry under
# $node_dir (default /var/tmp/assessment-ci-node), and sets $node_dir.
node_dir="${DOCS_NODE_DIR:-/var/tmp/assessment-ci-node}"
if [ ! -x /usr/bin/chromium ]; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >/dev/null
fi
if [ ! -d "$node_dir/node_modules/playwright-core" ]; then
    mkdir -p "$node_dir"
    npm install --prefix "$node_dir" --no-audit --no-fund --silent playwright-core@1.65.1
fi
