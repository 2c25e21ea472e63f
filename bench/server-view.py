"""Reads the service's /metrics on stdin and prints, per learner route (GET and POST under
/attempts and /tests), the requests answered and the share answered within 1, 2.5 and 5 ms
of arriving in the service (from `http_request_duration_seconds`), as one JSON object.
Used by `bench/learners.sh -m`."""
import json
import re
import sys

LINE = re.compile(r'^http_request_duration_seconds_bucket\{(?P<labels>.*)\} (?P<n>\S+)$')
buckets = {}
for line in sys.stdin:
    m = LINE.match(line.strip())
    if not m:
        continue
    labels = dict(re.findall(r'(\w+)="([^"]*)"', m["labels"]))
    route = labels.get("route", "")
    if not labels.get("status", "").startswith("2") or "/attempts" not in route and "/tests" not in route:
        continue
    key = f'{labels["method"]} {route}'
    le = float("inf") if labels["le"] == "+Inf" else float(labels["le"])
    buckets.setdefault(key, {}).setdefault(le, 0.0)
    buckets[key][le] += float(m["n"])
out = {}
for key, b in sorted(buckets.items()):
    total = b.get(float("inf"), 0.0)
    if total < 100:
        continue
    out[key] = {"n": int(total)} | {
        f"within_{ms}ms": round(next((n for le, n in b.items() if abs(le - ms / 1000) < 1e-9), 0.0) / total, 4)
        for ms in (1, 2.5, 5)
    }
print(json.dumps(out))
