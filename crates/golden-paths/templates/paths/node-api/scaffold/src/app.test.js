"use strict";

const assert = require("node:assert/strict");
const { test, beforeEach, afterEach } = require("node:test");
const { createServer, Metrics } = require("./app");

let server;
let base;
let lines;

beforeEach(async () => {
  lines = [];
  ({ server } = createServer({ logger: { info: (message, fields) => lines.push({ message, ...fields }) } }));
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  base = `http://127.0.0.1:${server.address().port}`;
});

afterEach(() => new Promise((resolve) => server.close(resolve)));

test("health answers ok", async () => {
  const res = await fetch(`${base}/health`);
  assert.equal(res.status, 200);
  assert.equal(res.headers.get("content-type"), "application/json");
  assert.deepEqual(await res.json(), { status: "ok" });
});

test("metrics count requests in the Prometheus format", async () => {
  await fetch(`${base}/health`);
  await fetch(`${base}/nope`);
  const res = await fetch(`${base}/metrics`);
  const body = await res.text();
  assert.equal(res.status, 200);
  assert.match(res.headers.get("content-type"), /^text\/plain/);
  assert.ok(body.includes("# TYPE http_requests_total counter"), body);
  assert.ok(body.includes('http_requests_total{method="GET",path="/health",status="200"} 1'), body);
  assert.ok(body.includes('http_requests_total{method="GET",path="other",status="404"} 1'), body);
  assert.ok(body.includes('http_request_duration_seconds_bucket{le="+Inf"} 2'), body);
});

test("every request is logged", async () => {
  await fetch(`${base}/health`);
  assert.equal(lines.at(-1).message, "request");
  assert.equal(lines.at(-1).path, "/health");
  assert.equal(lines.at(-1).status, 200);
});

test("the default logger writes one JSON object per line", () => {
  const out = [];
  require("./app").createLogger((line) => out.push(line)).info("hello", { a: 1 });
  assert.equal(out.length, 1);
  assert.ok(out[0].endsWith("\n"));
  const entry = JSON.parse(out[0]);
  assert.equal(entry.message, "hello");
  assert.equal(entry.level, "info");
  assert.equal(entry.a, 1);
  assert.ok(entry.service);
});

test("histogram buckets are cumulative", () => {
  const metrics = new Metrics();
  metrics.observe("GET", "/", 200, 0.003);
  metrics.observe("GET", "/", 200, 0.2);
  const text = metrics.render();
  assert.ok(text.includes('http_request_duration_seconds_bucket{le="0.005"} 1'), text);
  assert.ok(text.includes('http_request_duration_seconds_bucket{le="0.25"} 2'), text);
  assert.ok(text.includes("http_request_duration_seconds_count 2"), text);
});
