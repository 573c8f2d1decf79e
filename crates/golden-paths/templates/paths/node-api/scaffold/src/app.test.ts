import { strict as assert } from "node:assert";
import { createServer as createHttpServer } from "node:http";
import type { AddressInfo } from "node:net";
import { afterEach, beforeEach, test } from "node:test";
import { createLogger, createServer, type Fields, Metrics, portFromEnv, ROUTES, shutdown } from "./app";

let server: ReturnType<typeof createServer>["server"];
let base: string;
let lines: Fields[];

beforeEach(async () => {
  lines = [];
  const record = (message: string, fields: Fields = {}): void => void lines.push({ message, ...fields });
  ({ server } = createServer({ logger: { info: record, error: record } }));
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterEach(() => new Promise<void>((resolve) => (server.listening ? server.close(() => resolve()) : resolve())));

test("health answers ok", async () => {
  const res = await fetch(`${base}/health`);
  assert.equal(res.status, 200);
  assert.equal(res.headers.get("content-type"), "application/json");
  assert.deepEqual(await res.json(), { status: "ok" });
});

test("metrics count requests by method, route and status code in the Prometheus format", async () => {
  await fetch(`${base}/health`);
  await fetch(`${base}/nope?x=1`);
  await fetch(`${base}/health`, { method: "POST" });
  const res = await fetch(`${base}/metrics`);
  const body = await res.text();
  assert.equal(res.status, 200);
  assert.match(res.headers.get("content-type") ?? "", /^text\/plain; version=0\.0\.4/);
  assert.ok(body.includes("# TYPE http_requests_total counter\n"), body);
  // The labels the generated alerts and dashboards select on: method, path and code.
  assert.ok(body.includes('http_requests_total{method="GET",path="/health",code="200"} 1\n'), body);
  assert.ok(body.includes('http_requests_total{method="GET",path="other",code="404"} 1\n'), body);
  assert.ok(body.includes('http_requests_total{method="POST",path="/health",code="405"} 1\n'), body);
  assert.ok(body.includes("# TYPE http_request_duration_seconds histogram\n"), body);
  assert.ok(body.includes('http_request_duration_seconds_count{method="GET",path="/health",code="200"} 1\n'), body);
  assert.match(body, /^process_resident_memory_bytes [1-9]\d*$/m);
  assert.match(body, /^process_cpu_seconds_total \d+(\.\d+)?(e-?\d+)?$/m);
  assert.ok(body.endsWith("\n"));
  // Every sample line is `name{labels} value` with a number.
  for (const line of body.split("\n").filter((l) => l !== "" && !l.startsWith("#"))) {
    assert.match(line, /^[a-z_]+(\{[^}]*\})? -?\d+(\.\d+)?(e[-+]?\d+)?$/, line);
  }
});

test("a request for an unknown path is counted as other, not by its URL", async () => {
  await fetch(`${base}/a`);
  await fetch(`${base}/b`);
  const body = await (await fetch(`${base}/metrics`)).text();
  assert.ok(body.includes('http_requests_total{method="GET",path="other",code="404"} 2\n'), body);
  assert.ok(!body.includes('path="/a"'), body);
});

test("a route that throws answers 500 and is counted as one", async () => {
  ROUTES.set("/fail", () => {
    throw new Error("deliberate failure");
  });
  try {
    const res = await fetch(`${base}/fail`);
    assert.equal(res.status, 500);
    assert.deepEqual(await res.json(), { error: "internal error" });
    // The server goes on serving, and the error alert's series has the failure.
    const body = await (await fetch(`${base}/metrics`)).text();
    assert.ok(body.includes('http_requests_total{method="GET",path="/fail",code="500"} 1\n'), body);
    assert.ok(body.includes('http_request_duration_seconds_count{method="GET",path="/fail",code="500"} 1\n'), body);
    const failed = lines.find((l) => l["message"] === "request failed");
    assert.equal(failed?.["path"], "/fail");
    assert.match(String(failed?.["error"]), /deliberate failure/);
  } finally {
    ROUTES.delete("/fail");
  }
});

test("every request is logged", async () => {
  await fetch(`${base}/health`);
  const last = lines.at(-1);
  assert.equal(last?.["message"], "request");
  assert.equal(last?.["path"], "/health");
  assert.equal(last?.["status"], 200);
  assert.equal(typeof last?.["duration_ms"], "number");
});

test("the default logger writes one JSON object per line", () => {
  const out: string[] = [];
  createLogger((line) => void out.push(line)).info("hello", { a: 1, level: "forged" });
  assert.equal(out.length, 1);
  assert.ok(out[0]?.endsWith("\n"));
  assert.equal(out[0]?.indexOf("\n"), out[0]!.length - 1);
  const entry = JSON.parse(out[0] ?? "") as Fields;
  assert.equal(entry["message"], "hello");
  assert.equal(entry["level"], "info");
  assert.equal(entry["a"], 1);
  assert.equal(typeof entry["service"], "string");
  assert.ok(!Number.isNaN(Date.parse(String(entry["time"]))));
});

test("histogram buckets are cumulative", () => {
  const metrics = new Metrics();
  metrics.observe("GET", "/", 200, 0.003);
  metrics.observe("GET", "/", 200, 0.2);
  metrics.observe("GET", "/", 500, 0.7);
  const text = metrics.render();
  const series = 'method="GET",path="/",code="200"';
  assert.ok(text.includes(`http_request_duration_seconds_bucket{${series},le="0.005"} 1\n`), text);
  assert.ok(text.includes(`http_request_duration_seconds_bucket{${series},le="0.1"} 1\n`), text);
  assert.ok(text.includes(`http_request_duration_seconds_bucket{${series},le="0.25"} 2\n`), text);
  assert.ok(text.includes(`http_request_duration_seconds_bucket{${series},le="+Inf"} 2\n`), text);
  assert.ok(text.includes(`http_request_duration_seconds_count{${series}} 2\n`), text);
  const failed = 'method="GET",path="/",code="500"';
  assert.ok(text.includes(`http_request_duration_seconds_bucket{${failed},le="0.5"} 0\n`), text);
  assert.ok(text.includes(`http_request_duration_seconds_bucket{${failed},le="1"} 1\n`), text);
  assert.ok(text.includes(`http_requests_total{${failed}} 1\n`), text);
});

test("PORT comes from the environment, 8080 by default", () => {
  const saved = process.env.PORT;
  try {
    delete process.env.PORT;
    assert.equal(portFromEnv(), 8080);
    process.env.PORT = "3000";
    assert.equal(portFromEnv(), 3000);
  } finally {
    if (saved === undefined) delete process.env.PORT;
    else process.env.PORT = saved;
  }
  assert.equal(portFromEnv(""), 8080);
  assert.equal(portFromEnv(" 9090 "), 9090);
  assert.throws(() => portFromEnv("http"), /PORT must be a port number/);
  assert.throws(() => portFromEnv("70000"), /PORT must be a port number/);
  assert.throws(() => portFromEnv("-1"), /PORT must be a port number/);
});

test("shutdown waits for a request in flight, then closes its keep-alive connection", async () => {
  // A handler that takes a while, so the request is still being answered when the shutdown starts.
  const slow = createHttpServer((_req, res) => void setTimeout(() => res.end("done"), 300));
  await new Promise<void>((resolve) => slow.listen(0, "127.0.0.1", resolve));
  const url = `http://127.0.0.1:${(slow.address() as AddressInfo).port}/`;
  const inFlight = fetch(url).then((res) => res.text());
  await new Promise((resolve) => setTimeout(resolve, 100));
  const started = Date.now();
  let stopped = false;
  const stopping = shutdown(slow, 5000).then(() => void (stopped = true));
  assert.equal(await inFlight, "done");
  // fetch keeps its connection open; the shutdown does not wait five seconds for it.
  await stopping;
  const waited = Date.now() - started;
  assert.ok(stopped && waited >= 150 && waited < 2000, `shutdown took ${waited} ms`);
  await assert.rejects(fetch(url));
});

test("the server refuses connections once shut down", async () => {
  await fetch(`${base}/health`);
  await shutdown(server, 5000);
  assert.equal(server.listening, false);
  await assert.rejects(fetch(`${base}/health`));
});
