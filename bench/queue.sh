#!/usr/bin/env bash
# Queue figure (issue 4), on demand: `bash bench/queue.sh`. Pick-up latency of the durable job queue,
# enqueue → worker start (target on PostgreSQL: p99 < 50 ms), measured by
# crates/jobs/examples/pickup_latency.rs with run_workers (4 workers, the default) in one process:
#   steady — JOBS jobs, one every INTERVAL_MS ms (the figure the issue asks for);
#   burst  — BURST jobs back to back from one enqueuer (queueing shows; for context).
# Runs on PostgreSQL twice — the enqueuer sharing the workers' store (one `slipway up`: the store
# wakes its own workers in-process, NOTIFY is not on the path) and on a second connection (another
# replica: workers are woken by LISTEN/NOTIFY only) — and on SQLite for comparison.
# Each run gets a fresh database: CREATE DATABASE on the server PG_URL names (dropped afterwards),
# a temp file for SQLite. Without a reachable PostgreSQL the PostgreSQL rows are skipped with a
# message. Loopback only; stops by itself (about JOBS × INTERVAL_MS × 3 plus the build).
# Knobs: PG_URL (postgres://postgres@127.0.0.1:5432/test), JOBS (2000), INTERVAL_MS (5), BURST (500),
# WORKERS (4), KEEP=1 keeps the SQLite file.
set -euo pipefail
cd "$(dirname "$0")/.."
PG_URL=${PG_URL:-postgres://postgres@127.0.0.1:5432/test}
JOBS=${JOBS:-2000}
INTERVAL_MS=${INTERVAL_MS:-5}
BURST=${BURST:-500}
WORKERS=${WORKERS:-4}

cargo build --release -q -p slipway-jobs --example pickup_latency
target_dir=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
BENCH="$target_dir/release/examples/pickup_latency"

work=$(mktemp -d)
databases=()
cleanup() {
  for db in "${databases[@]}"; do
    psql -q "$PG_URL" -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1 || true
  done
  if [ -n "${KEEP:-}" ]; then echo "kept $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT

# $PG_URL with its database replaced by $1.
pg_url_for() { python3 - "$PG_URL" "$1" <<'PY'
import sys
from urllib.parse import urlsplit, urlunsplit
u = urlsplit(sys.argv[1])
print(urlunsplit((u.scheme, u.netloc, "/" + sys.argv[2], u.query, u.fragment)))
PY
}

run() { # label url enqueuer
  "$BENCH" "$2" --jobs "$JOBS" --interval-ms "$INTERVAL_MS" --burst "$BURST" \
    --concurrency "$WORKERS" --enqueuer "$3" --label "$1" | tee -a "$work/results"
}

echo "== pick-up latency: $JOBS jobs one every $INTERVAL_MS ms, then a burst of $BURST; $WORKERS workers; $(nproc) CPUs"
echo "== load average before: $(cut -d' ' -f1-3 /proc/loadavg) (other work on the machine skews the figures)"
if psql -q "$PG_URL" -c 'SELECT 1' >/dev/null 2>&1; then
  echo "($(psql -tA "$PG_URL" -c 'SHOW server_version' | cut -d' ' -f1) at $(echo "$PG_URL" | sed -E 's#//[^@]*@#//#'))"
  for enqueuer in same separate; do
    db="slipway_bench_$(date +%s)_$RANDOM"
    psql -q "$PG_URL" -c "CREATE DATABASE $db" >/dev/null
    databases+=("$db")
    run "postgres/$enqueuer" "$(pg_url_for "$db")" "$enqueuer"
  done
else
  echo "(no PostgreSQL at $PG_URL: PostgreSQL rows skipped; set PG_URL or start a server)"
fi
run sqlite "sqlite://$work/queue.db" same

echo "== load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
echo
printf '%-18s %-7s %7s %8s %8s %8s %8s %12s %10s\n' store phase jobs p50_ms p90_ms p99_ms max_ms enqueue_p99 done/s
awk '{
  for (i = 1; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] }
  printf "%-18s %-7s %7d %8.2f %8.2f %8.2f %8.2f %12.2f %10.0f\n", v["label"], v["phase"], v["jobs"], v["p50_ms"], v["p90_ms"], v["p99_ms"], v["max_ms"], v["enqueue_p99_ms"], v["done_per_s"]
}' "$work/results"
echo
awk '{
  for (i = 1; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] }
  if (v["label"] ~ /^postgres/ && v["phase"] == "steady")
    printf "PostgreSQL (%s) steady p99 = %.2f ms (target < 50 ms): %s\n", v["enqueuer"] == "same" ? "same process" : "woken by NOTIFY", v["p99_ms"], (v["p99_ms"] < 50 ? "MET" : "NOT MET")
}' "$work/results"
