#!/usr/bin/env bash
# Foundation figures (issue 3), on demand: `bash bench/run.sh`. Prints, on this machine:
#  - idle resident memory of `slipway up` after start (target < 40 MB);
#  - registration latency p50/p99 with 100 and with 10,000 services registered (target: p99 ratio <= 1.5).
#    Two servers run side by side, one holding 100 services and one 10,000, and the measured
#    registrations alternate between them, so machine noise hits both alike;
#  - /platform/services/{name}/health throughput at concurrency 32, SQLite (target >= 5,000 req/s);
#  - the disk B uses: platform repository and SQLite database.
# Everything runs on loopback and stops by itself. SEED=1000 gives a quicker, smaller run;
# KEEP=1 keeps the data directories for a look afterwards.
set -euo pipefail
cd "$(dirname "$0")/.."
SEED=${SEED:-10000}
MEASURE=${MEASURE:-300}
SECONDS_LOAD=${SECONDS_LOAD:-10}
cargo build --release -q -p slipway-cli --bin slipway --example bench
target_dir=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
BIN="$target_dir/release/slipway"
BENCH="$target_dir/release/examples/bench"
work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  if [ -n "${KEEP:-}" ]; then echo "kept $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT

start() { # name port -> starts a server, waits until ready
  SLIPWAY_LOG=warn "$BIN" up --auth off --rate-limit 0 --proxy-listen 127.0.0.1:0 --data-dir "$work/$1" --listen "127.0.0.1:$2" 2>"$work/$1.log" &
  pids+=($!)
  for _ in $(seq 1 100); do curl -fsS "http://127.0.0.1:$2/ready" >/dev/null 2>&1 && return 0; sleep 0.1; done
  echo "server $1 did not start" >&2; cat "$work/$1.log" >&2; exit 1
}

settle() { # waits until no server has a child process (git index sync or repack) running
  local t0=$SECONDS busy
  for _ in $(seq 1 1200); do
    busy=0
    for p in "${pids[@]}"; do pgrep -P "$p" >/dev/null && busy=1; done
    if [ "$busy" = 0 ]; then echo "(background maintenance settled after $((SECONDS - t0)) s)"; return 0; fi
    sleep 0.5
  done
  echo "(background maintenance still running after $((SECONDS - t0)) s; measuring anyway)"
}

port=$((20000 + RANDOM % 20000))
small="http://127.0.0.1:$port"
large="http://127.0.0.1:$((port + 1))"
start small "$port"
sleep 3
echo "== idle memory after start"
"$BENCH" rss "${pids[0]}"

start large $((port + 1))
echo "== registering 100 services on A and $SEED on B"
"$BENCH" register "$small" 100 --prefix seed --concurrency 4 >/dev/null
"$BENCH" register "$large" "$SEED" --prefix seed --concurrency 4 | sed 's/^/B bulk: /'
# A bulk load leaves background maintenance behind (the idle-time git repack of hundreds of
# per-commit packs takes a while at 10,000 services): measure the steady state after it.
sleep 2; settle; sleep 2; settle

echo "== registration latency, alternating: A has 100 services, B has $SEED"
"$BENCH" register-pair "$small" "$large" "$MEASURE" --prefix measured | tee "$work/pair"
python3 - "$work/pair" <<'PY'
import re, sys
ratio = float(re.search(r"p99_ratio_b_over_a=([0-9.]+)", open(sys.argv[1]).read()).group(1))
print("p99 ratio (B / A) = %.2f  (target <= 1.5): %s" % (ratio, "met" if ratio <= 1.5 else "NOT met"))
PY

echo "== health throughput, concurrency 32, ${SECONDS_LOAD}s, SQLite, B ($SEED services)"
if command -v wrk >/dev/null; then
  wrk -t2 -c32 -d"${SECONDS_LOAD}s" "$large/platform/services/seed-1/health" | grep -E "Requests/sec|Non-2xx|Latency"
else
  echo "(wrk not installed: apt-get install -y wrk gives a lighter load generator; using the bench example)"
  "$BENCH" health "$large" seed-1 --seconds "$SECONDS_LOAD" --concurrency 32
fi
echo "== memory after the run (A, B)"
"$BENCH" rss "${pids[0]}"
"$BENCH" rss "${pids[1]}"
echo "== disk of B ($SEED services): platform repository, SQLite database (file + WAL)"
du -sh "$work/large/platform-repo/.git" 2>/dev/null || true
du -ch "$work/large/slipway.db" "$work/large/slipway.db-wal" 2>/dev/null | tail -1 || true
