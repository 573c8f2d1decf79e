#!/usr/bin/env bash
# Foundation figures (issue 3), on demand: `bash bench/run.sh`. Prints, on this machine:
#  - idle resident memory of `slipway up` after start (target < 40 MB);
#  - registration latency p50/p99 with 100 and with 10,000 services registered (target: p99 ratio <= 1.5);
#  - /platform/services/{name}/health throughput at concurrency 32, SQLite (target >= 5,000 req/s).
# Everything runs on loopback and stops by itself. Set SEED=1000 for a quicker, smaller run.
set -euo pipefail
cd "$(dirname "$0")/.."
SEED=${SEED:-10000}
MEASURE=${MEASURE:-300}
SECONDS_LOAD=${SECONDS_LOAD:-10}
cargo build --release -q -p slipway-cli -p slipway-bench
target_dir=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
BIN="$target_dir/release/slipway"
BENCH="$target_dir/release/slipway-bench"
work=$(mktemp -d)
pid=""
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null; wait 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT

port=$((20000 + RANDOM % 20000))
url="http://127.0.0.1:$port"
SLIPWAY_LOG=warn "$BIN" up --data-dir "$work/data" --listen "127.0.0.1:$port" 2>"$work/server.log" &
pid=$!
for _ in $(seq 1 100); do curl -fsS "$url/ready" >/dev/null 2>&1 && break; sleep 0.1; done
curl -fsS "$url/ready" >/dev/null
sleep 3
echo "== idle memory after start"
"$BENCH" rss "$pid"

echo "== registration latency with 100 services registered"
"$BENCH" register "$url" 100 --prefix seed --concurrency 4 >/dev/null
"$BENCH" register "$url" "$MEASURE" --prefix at100 | tee "$work/r100"

echo "== registration latency with $SEED services registered"
"$BENCH" register "$url" $((SEED - 100 - MEASURE)) --prefix grow --concurrency 4 >/dev/null
"$BENCH" register "$url" "$MEASURE" --prefix at10k | tee "$work/r10k"
p100=$(sed -E 's/.*p99_ms=([0-9.]+).*/\1/' "$work/r100")
p10k=$(sed -E 's/.*p99_ms=([0-9.]+).*/\1/' "$work/r10k")
python3 -c "print('p99 ratio (10k/100) = %.2f  (target <= 1.5)' % ($p10k / $p100))"

echo "== health throughput, concurrency 32, ${SECONDS_LOAD}s, SQLite, $((SEED + MEASURE)) services"
if command -v wrk >/dev/null; then
  wrk -t2 -c32 -d"${SECONDS_LOAD}s" "$url/platform/services/seed-1/health" | grep -E "Requests/sec|Non-2xx|Latency"
else
  echo "(wrk not installed: apt-get install -y wrk gives a lighter load generator; using slipway-bench)"
  "$BENCH" health "$url" seed-1 --seconds "$SECONDS_LOAD" --concurrency 32
fi
echo "== idle memory after the run"
"$BENCH" rss "$pid"
du -sh "$work/data/platform-repo/.git" "$work/data/slipway.db" 2>/dev/null || true
