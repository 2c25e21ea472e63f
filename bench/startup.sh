#!/usr/bin/env bash
# Measures, on the release binary and a fresh SQLite file:
#   - start-up time: process start to the first 200 from /health/ready (polled every ~1 ms);
#   - idle RSS, 2 s after start-up;
#   - RSS after 2,000 requests to /health/ready (a warm process).
# Runs N times (default 5) and prints min / median / max.
# Usage: bench/startup.sh [runs]
set -euo pipefail
cd "$(dirname "$0")/.."
runs="${1:-5}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/assessment-service-target}"
cargo build --release --locked -q
bin="$CARGO_TARGET_DIR/release/assessment-service"
port="${PORT:-18080}"

python3 - "$bin" "$port" "$runs" <<'PY'
import os, socket, statistics, subprocess, sys, tempfile, time

bin_, port, runs = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])

def get(path):
    s = socket.create_connection(("127.0.0.1", port), timeout=2)
    s.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
    data = b""
    while chunk := s.recv(65536):
        data += chunk
    s.close()
    return int(data.split()[1])

def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return -1

starts, idle, warm = [], [], []
for _ in range(runs):
    with tempfile.TemporaryDirectory() as d:
        env = {"PATH": os.environ["PATH"], "PORT": str(port), "LOG_LEVEL": "warn",
               "DATABASE_URL": f"sqlite://{d}/bench.db"}
        t0 = time.perf_counter()
        p = subprocess.Popen([bin_], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        while True:
            try:
                if get("/health/ready") == 200:
                    break
            except OSError:
                pass
            if time.perf_counter() - t0 > 30:
                p.kill(); sys.exit("did not start within 30 s")
            time.sleep(0.001)
        starts.append((time.perf_counter() - t0) * 1000)
        time.sleep(2)
        idle.append(rss_kib(p.pid) / 1024)
        for _ in range(2000):
            get("/health/ready")
        warm.append(rss_kib(p.pid) / 1024)
        p.terminate(); p.wait(timeout=20)

def row(name, xs, unit):
    print(f"{name:<38} min {min(xs):7.1f}  median {statistics.median(xs):7.1f}  max {max(xs):7.1f} {unit}")

print(f"release binary, fresh SQLite file, {runs} runs")
row("start-up to first 200 /health/ready", starts, "ms")
row("idle RSS (2 s after start)", idle, "MiB")
row("RSS after 2,000 /health/ready", warm, "MiB")
PY
