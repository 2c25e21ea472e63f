# Sourced by the bench scripts that check a running service: starts "$bin" on a fresh SQLite
# file under a new temporary folder ($work) on a free port ($port), stops it and removes the
# folder on exit, and waits (up to 10 s) until it is ready.
work=$(mktemp -d)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
PORT="$port" LOG_LEVEL=error DATABASE_URL="sqlite://$work/service.db" "$bin" >"$work/log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null || true; rm -rf "$work"' EXIT
for _ in $(seq 1 100); do
    curl -sf "http://127.0.0.1:$port/health/ready" >/dev/null && break
    sleep 0.1
done
