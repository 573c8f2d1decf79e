#!/usr/bin/env bash
# Deployment figures (issue 4), on demand: `bash bench/deploy.sh`. Starts `slipway up` (embedded
# SQLite, --allow-local-repos) on loopback, registers a Python standard-library app from a local git
# repository made here, and measures with crates/engine/examples/redeploy_load.rs:
#   1. platform overhead — the app first answers its health check → EXPOSED (target p50 < 100 ms),
#      over DEPLOYS redeploys one after the other (for context: Dokku waits 10 s by default before it
#      trusts a new container). Taken four ways, see the example's header: the engine's own "N ms",
#      EXPOSED.at − HEALTHY.at, EXPOSED.at − the app's first health answer, and the first answer
#      through the proxy from the new release − the app's first health answer;
#   2. zero failed requests across REDEPLOYS consecutive redeploys under concurrency CONCURRENCY
#      (keep-alive clients through the proxy; non-2xx and connection errors count as failures).
# Everything runs on loopback and stops by itself (bounded by MAX_SECONDS for the load part).
# Knobs: DEPLOYS (20), REDEPLOYS (10), CONCURRENCY (16), MAX_SECONDS (300), API_PORT / PROXY_PORT
# (free ports by default), KEEP=1 keeps the work dir (data dir, logs, the app's repository).
set -euo pipefail
cd "$(dirname "$0")/.."
DEPLOYS=${DEPLOYS:-20}
REDEPLOYS=${REDEPLOYS:-10}
CONCURRENCY=${CONCURRENCY:-16}
MAX_SECONDS=${MAX_SECONDS:-300}

cargo build --release -q -p slipway-cli --bin slipway
cargo build --release -q -p slipway-engine --example redeploy_load
target_dir=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
BIN="$target_dir/release/slipway"
BENCH="$target_dir/release/examples/redeploy_load"

work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  if [ -n "${KEEP:-}" ]; then echo "kept $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}
API_PORT=${API_PORT:-$(free_port)}
PROXY_PORT=${PROXY_PORT:-$(free_port)}
API="http://127.0.0.1:$API_PORT"
PROXY="127.0.0.1:$PROXY_PORT"

# The app: Python standard library only. GET /healthz is its health check (the analyzer finds the
# route); GET / answers its pid and when it first answered a health check (host clock), so the
# benchmark can tell releases apart and time the platform against the app's own reading.
mkdir -p "$work/app"
cat >"$work/app/app.py" <<'PY'
import json
import os
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

FIRST_HEALTH = None
LOCK = threading.Lock()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # http.server writes the head and the body separately: with Nagle's algorithm on, a keep-alive
    # answer then waits for the peer's delayed ACK (about 40 ms) and that, not the platform, would
    # dominate every figure taken through the proxy.
    disable_nagle_algorithm = True

    def do_GET(self):
        global FIRST_HEALTH
        if self.path == "/healthz":
            with LOCK:
                if FIRST_HEALTH is None:
                    FIRST_HEALTH = time.time()
            body, kind = b"ok", "text/plain"
        else:
            body = json.dumps({"pid": os.getpid(), "first_health": FIRST_HEALTH}).encode()
            kind = "application/json"
        self.send_response(200)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


class Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128


if __name__ == "__main__":
    Server(("127.0.0.1", int(os.environ.get("PORT", "8000"))), Handler).serve_forever()
PY
git -C "$work/app" init -q -b main
git -C "$work/app" add app.py
git -C "$work/app" -c user.name=bench -c user.email=bench@localhost commit -q -m "bench app"

SLIPWAY_LOG=warn "$BIN" up --auth off --rate-limit 0 --data-dir "$work/data" --listen "127.0.0.1:$API_PORT" \
  --proxy-listen "$PROXY" --allow-local-repos >"$work/slipway.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 100); do curl -fsS "$API/ready" >/dev/null 2>&1 && break; sleep 0.1; done
curl -fsS "$API/ready" >/dev/null || { echo "slipway did not start" >&2; cat "$work/slipway.log" >&2; exit 1; }

curl -fsS -X POST "$API/platform/services" -H 'content-type: application/json' \
  -d "{\"service_name\":\"bench\",\"team_name\":\"bench\",\"repo_url\":\"$work/app\"}" >/dev/null
echo "== load average before: $(cut -d' ' -f1-3 /proc/loadavg) ($(nproc) CPUs; other work on the machine skews the figures)"
echo "== first deployment (not measured)"
"$BENCH" overhead "$API" "$PROXY" bench --deploys 1 >/dev/null

echo "== 1. platform overhead: health check first answered -> EXPOSED, $DEPLOYS redeploys, $(nproc) CPUs"
"$BENCH" overhead "$API" "$PROXY" bench --deploys "$DEPLOYS" | tee "$work/overhead"

echo
echo "== 2. $REDEPLOYS consecutive redeploys under concurrency $CONCURRENCY (keep-alive, through the proxy)"
status=0
"$BENCH" load "$API" "$PROXY" bench --redeploys "$REDEPLOYS" --concurrency "$CONCURRENCY" \
  --max-seconds "$MAX_SECONDS" | tee "$work/load" || status=$?

echo "== load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
echo
kv() { tail -n 1 "$1" | tr ' ' '\n' | awk -F= -v k="$2" '$1 == k { print $2 }'; }
engine=$(kv "$work/overhead" engine_p50)
app=$(kv "$work/overhead" app_p50)
traffic=$(kv "$work/overhead" traffic_p50)
printf '%-52s %-18s %s\n' figure measured target
printf '%-52s %-18s %s\n' "overhead p50, engine's own N ms" "$engine ms" "< 100 ms: $(awk -v v="$engine" 'BEGIN { print (v < 100 ? "MET" : "NOT MET") }')"
printf '%-52s %-18s %s\n' "overhead p50, app's first health answer -> EXPOSED" "$app ms" "< 100 ms: $(awk -v v="$app" 'BEGIN { print (v < 100 ? "MET" : "NOT MET") }')"
printf '%-52s %-18s %s\n' "  (first answer through the proxy, p50)" "$traffic ms" "(Dokku: 10 s default wait)"
failures=$(kv "$work/load" failures)
requests=$(kv "$work/load" requests)
rps=$(kv "$work/load" rps)
done_redeploys=$(kv "$work/load" redeploys)
printf '%-52s %-18s %s\n' "failed requests, $done_redeploys/$REDEPLOYS redeploys, c=$CONCURRENCY" \
  "${failures:-?} of ${requests:-?}" "0: $([ "${failures:-x}" = 0 ] && [ "$status" = 0 ] && echo MET || echo "NOT MET")"
printf '%-52s %-18s\n' "  (requests per second during the redeploys)" "$rps"
