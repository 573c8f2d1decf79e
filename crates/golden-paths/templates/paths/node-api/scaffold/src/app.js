"use strict";
// The service: an HTTP API on Node's standard library with /health, /metrics and JSON logs.

const http = require("node:http");
const { SERVICE } = require("./config");

// Latency buckets of the request histogram, in seconds.
const BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5];

/** One JSON object per line: what log collectors parse without configuration. */
function createLogger(write = (line) => process.stdout.write(line)) {
  const log = (level, message, fields = {}) =>
    write(JSON.stringify({ time: new Date().toISOString(), level, service: SERVICE, message, ...fields }) + "\n");
  return {
    info: (message, fields) => log("info", message, fields),
    error: (message, fields) => log("error", message, fields),
  };
}

/** Request counters and a latency histogram in the Prometheus text format. */
class Metrics {
  constructor() {
    this.requests = new Map();
    this.buckets = BUCKETS.map(() => 0);
    this.count = 0;
    this.sum = 0;
  }

  observe(method, path, status, seconds) {
    const key = `method="${method}",path="${path}",status="${status}"`;
    this.requests.set(key, (this.requests.get(key) || 0) + 1);
    BUCKETS.forEach((bound, i) => {
      if (seconds <= bound) this.buckets[i] += 1;
    });
    this.count += 1;
    this.sum += seconds;
  }

  render() {
    const lines = [
      "# HELP http_requests_total HTTP requests served, by method, route and status.",
      "# TYPE http_requests_total counter",
    ];
    for (const key of [...this.requests.keys()].sort()) {
      lines.push(`http_requests_total{${key}} ${this.requests.get(key)}`);
    }
    lines.push(
      "# HELP http_request_duration_seconds Time to answer HTTP requests.",
      "# TYPE http_request_duration_seconds histogram",
    );
    BUCKETS.forEach((bound, i) => lines.push(`http_request_duration_seconds_bucket{le="${bound}"} ${this.buckets[i]}`));
    lines.push(`http_request_duration_seconds_bucket{le="+Inf"} ${this.count}`);
    lines.push(`http_request_duration_seconds_sum ${this.sum}`);
    lines.push(`http_request_duration_seconds_count ${this.count}`);
    return lines.join("\n") + "\n";
  }
}

/** A server with its own metrics, not yet listening. */
function createServer({ logger = createLogger() } = {}) {
  const metrics = new Metrics();
  const server = http.createServer((req, res) => {
    const started = process.hrtime.bigint();
    let path = (req.url || "/").split("?")[0];
    const send = (status, type, body) => {
      res.writeHead(status, { "content-type": type, "content-length": Buffer.byteLength(body) });
      res.end(body);
      return status;
    };
    let status;
    if (req.method !== "GET") {
      status = send(405, "application/json", JSON.stringify({ error: "method not allowed" }));
    } else if (path === "/health") {
      status = send(200, "application/json", JSON.stringify({ status: "ok" }));
    } else if (path === "/metrics") {
      status = send(200, "text/plain; version=0.0.4", metrics.render());
    } else if (path === "/") {
      status = send(200, "application/json", JSON.stringify({ service: SERVICE }));
    } else {
      path = "other";
      status = send(404, "application/json", JSON.stringify({ error: "not found" }));
    }
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    metrics.observe(req.method, path, status, seconds);
    logger.info("request", { method: req.method, path, status, duration_ms: seconds * 1000 });
  });
  return { server, metrics };
}

module.exports = { createServer, createLogger, Metrics };
