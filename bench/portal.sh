#!/usr/bin/env bash
# Portal figures (issue 7), on demand: `bash bench/portal.sh`. Prints, on this machine:
#  - each page's server time (the handler, from its Server-Timing header) and the time to its last
#    byte on loopback, p50 and p95 over MEASURE requests, with SERVICES services and DEPLOYMENTS
#    deployments (target: p95 < 20 ms with 1,000 and 10,000);
#  - the first render's weight: the page's HTML plus the CSS and JavaScript it loads, uncompressed
#    (target < 100 KB).
# Everything is seeded through the API: services (ten teams) whose repository is a local git
# repository with nothing deployable in it, then deployments of them, which the engine fetches and
# fails at analysis (FAILED) — a tenth are cancelled while queued. The queue is drained before measuring. Runs on loopback and stops by itself; KEEP=1 keeps
# the data directory.
set -euo pipefail
cd "$(dirname "$0")/.."
SERVICES=${SERVICES:-1000}
DEPLOYMENTS=${DEPLOYMENTS:-10000}
MEASURE=${MEASURE:-200}
cargo build --release -q -p slipway-cli --bin slipway
target_dir=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
BIN="$target_dir/release/slipway"
work=$(mktemp -d)
pid=
cleanup() {
  [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null || true
  if [ -n "${KEEP:-}" ]; then echo "kept $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT

repo="$work/nothing-to-deploy"
mkdir -p "$repo" && git -C "$repo" init -q -b main && echo "# docs only" >"$repo/README.md"
git -C "$repo" add -A && git -C "$repo" -c user.name=bench -c user.email=bench@example.com commit -qm docs

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
proxy=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
SLIPWAY_LOG=warn "$BIN" up --auth off --rate-limit 0 --allow-local-repos --data-dir "$work/data" \
  --listen "127.0.0.1:$port" --proxy-listen "127.0.0.1:$proxy" >"$work/slipway.log" 2>&1 &
pid=$!
for _ in $(seq 1 100); do curl -fsS "http://127.0.0.1:$port/ready" >/dev/null 2>&1 && break; sleep 0.1; done

python3 - "$port" "$SERVICES" "$DEPLOYMENTS" "$MEASURE" "$repo" <<'PY'
import http.client, json, sys, time, threading, re
port, n_services, n_deployments, measure = (int(a) for a in sys.argv[1:5])
repo = sys.argv[5]

def conn():
    return http.client.HTTPConnection("127.0.0.1", port, timeout=60)

def call(c, method, path, body=None):
    headers = {"content-type": "application/json"} if body is not None else {}
    c.request(method, path, json.dumps(body) if body is not None else None, headers)
    r = c.getresponse()
    data = r.read()
    return r.status, data, r

def parallel(items, work, threads=4):
    def run(part):
        c = conn()
        for it in part:
            work(c, it)
    ts = [threading.Thread(target=run, args=(items[i::threads],)) for i in range(threads)]
    for t in ts: t.start()
    for t in ts: t.join()

t0 = time.time()
names = [f"svc-{i:04d}" for i in range(n_services)]
def register(c, i):
    name = names[i]
    s, d, _ = call(c, "POST", "/api/v1/services", {"name": name, "team": f"team-{i % 10}",
        "repo_url": repo, "description": f"benchmark service {i}"})
    assert s == 201, (s, d[:300])
parallel(list(range(n_services)), register)
print(f"seeded {n_services} services in {time.time() - t0:.1f} s")

t0 = time.time()
ids = []
lock = threading.Lock()
def deploy(c, i):
    s, d, _ = call(c, "POST", "/api/v1/deployments", {"service": names[i % n_services]})
    assert s == 202, (s, d[:300])
    did = json.loads(d)["id"]
    if i % 10 == 0:
        call(c, "POST", f"/api/v1/deployments/{did}/cancel")
    with lock:
        ids.append(did)
parallel(list(range(n_deployments)), deploy)
print(f"seeded {n_deployments} deployments in {time.time() - t0:.1f} s")

t0 = time.time()
c = conn()
running = ["QUEUED", "ANALYZING", "BUILDING", "PROVISIONING", "DEPLOYING", "HEALTHY", "ROLLING_BACK"]
while True:
    left = sum(json.loads(call(c, "GET", f"/api/v1/deployments?status={s}&limit=1")[1])["total"] for s in running)
    if left == 0:
        break
    if time.time() - t0 > 1800:
        sys.exit(f"the queue did not drain in 30 minutes ({left} left)")
    time.sleep(2)
print(f"queue drained in {time.time() - t0:.1f} s")

def first(path):
    return json.loads(call(c, "GET", path)[1])
arts = first("/api/v1/services/svc-0500/artifacts")
file = arts[0]["path"] if arts else ""
dep = first("/api/v1/deployments?service=svc-0500&limit=1")["items"][0]["id"]
pages = [
    "/", "/services", "/services?page=10", "/services?q=svc-05", "/services?team=team-3&page=2",
    "/services?status=FAILED", "/services?status=CANCELLED&page=2", "/services/new",
    "/services/svc-0500", f"/services/svc-0500?scope=platform&file={file}", "/services/svc-0500?dpage=2",
    "/teams", "/teams/team-3", f"/deployments/{dep}", f"/deployments/{dep}/status", "/dashboard/svc-0500",
]
assets = {}
def asset_size(path):
    if path not in assets:
        assets[path] = len(call(c, "GET", path)[1])
    return assets[path]

def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]

print(f"\n{'page':58} {'server p50':>10} {'p95':>7} {'wall p95':>9} {'HTML KB':>8} {'+CSS+JS KB':>11}")
worst = 0.0
heaviest = 0.0
for p in pages:
    server, wall = [], []
    for i in range(measure + 10):
        t = time.perf_counter()
        s, body, r = call(c, "GET", p)
        w = (time.perf_counter() - t) * 1000
        assert s == 200, (p, s, body[:200])
        st = r.getheader("server-timing") or ""
        m = re.search(r"dur=([0-9.]+)", st)
        if i >= 10:  # warm-up
            wall.append(w)
            if m: server.append(float(m.group(1)))
    html = body.decode()
    refs = re.findall(r'(?:href|src)="(/portal/assets/[^"?]+)', html) if "<html" in html else []
    total = len(body) + sum(asset_size(a) for a in set(refs))
    sp95 = pct(server, 95) if server else pct(wall, 95)
    worst = max(worst, sp95)
    heaviest = max(heaviest, total / 1024)
    sp50 = f"{pct(server, 50):.2f}" if server else "n/a"
    print(f"{p[:58]:58} {sp50:>10} {sp95:>7.2f} {pct(wall, 95):>9.2f} {len(body)/1024:>8.1f} {total/1024:>11.1f}")
print(f"\nworst page p95 server time: {worst:.2f} ms (target < 20 ms); heaviest first render: {heaviest:.1f} KB (target < 100 KB)")
print("(/dashboard/{name} is the seed-000 page outside the portal: no Server-Timing header, its wall time is shown)")
PY
