#!/usr/bin/env bash
# Security figure (issue 8), on demand: `bash bench/auth.sh`. Throughput of the seed-000 health route
# (/platform/services/{name}/health) with authentication off and with it required (an API token in
# every request: hash, lookup, role check), measured in the same run: two servers side by side,
# rounds alternating between them. Target: authentication costs < 5 % of the throughput.
# Loopback only, wrk at concurrency 32 (installed from Debian when missing). ROUNDS (3), SECONDS_LOAD (8).
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${ROUNDS:-3}
SECONDS_LOAD=${SECONDS_LOAD:-8}
command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk; }
cargo build --release -q -p slipway-cli --bin slipway
target_dir=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
BIN="$target_dir/release/slipway"
work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

port=$((20000 + RANDOM % 20000))
start() { # name port auth
  SLIPWAY_LOG=warn "$BIN" up --auth "$3" --rate-limit 0 --proxy-listen 127.0.0.1:0 \
    --data-dir "$work/$1" --listen "127.0.0.1:$2" 2>"$work/$1.log" &
  pids+=($!)
  for _ in $(seq 1 100); do curl -fsS "http://127.0.0.1:$2/ready" >/dev/null 2>&1 && return 0; sleep 0.1; done
  echo "server $1 did not start" >&2; cat "$work/$1.log" >&2; exit 1
}
start off "$port" off
start on "$((port + 1))" required
token=$(cat "$work/on/admin-token")
body='{"service_name":"payments","team_name":"core","repo_url":"https://github.com/org/payments"}'
curl -fsS -o /dev/null -X POST "http://127.0.0.1:$port/platform/services" -H 'content-type: application/json' -d "$body"
curl -fsS -o /dev/null -X POST "http://127.0.0.1:$((port + 1))/platform/services" -H 'content-type: application/json' \
  -H "Authorization: Bearer $token" -d "$body"
code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$((port + 1))/platform/services/payments/health")
[ "$code" = 401 ] || { echo "expected 401 without a token, got $code" >&2; exit 1; }

rps() { # url [header]
  if [ -n "${2:-}" ]; then
    wrk -t2 -c32 -d"${SECONDS_LOAD}s" -H "$2" "$1" | awk '/Requests\/sec/ {print $2}'
  else
    wrk -t2 -c32 -d"${SECONDS_LOAD}s" "$1" | awk '/Requests\/sec/ {print $2}'
  fi
}
echo "== load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
off_total=0; on_total=0
for r in $(seq 1 "$ROUNDS"); do
  if [ $((r % 2)) = 1 ]; then
    a=$(rps "http://127.0.0.1:$port/platform/services/payments/health")
    b=$(rps "http://127.0.0.1:$((port + 1))/platform/services/payments/health" "Authorization: Bearer $token")
  else
    b=$(rps "http://127.0.0.1:$((port + 1))/platform/services/payments/health" "Authorization: Bearer $token")
    a=$(rps "http://127.0.0.1:$port/platform/services/payments/health")
  fi
  echo "round $r: auth off $a req/s, auth required $b req/s"
  off_total=$(python3 -c "print($off_total + $a)"); on_total=$(python3 -c "print($on_total + $b)")
done
python3 - "$off_total" "$on_total" <<'PY'
import sys
off, on = map(float, sys.argv[1:])
cost = (1 - on / off) * 100
print(f"auth off {off/1:.0f} req/s (sum of rounds), required {on:.0f}: authentication costs {cost:.1f} % "
      f"(target < 5 %): {'MET' if cost < 5 else 'NOT MET'}")
PY
echo "== load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
