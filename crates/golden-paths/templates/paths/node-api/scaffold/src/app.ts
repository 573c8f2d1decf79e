// The service: an HTTP API on Node's standard library with /health, /metrics and JSON logs.

import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { SERVICE } from "./config";

/** Upper bounds of the request latency histogram, in seconds. */
export const BUCKETS: readonly number[] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5];

export type Fields = Record<string, unknown>;

export interface Logger {
  info(message: string, fields?: Fields): void;
  error(message: string, fields?: Fields): void;
}

/** One JSON object per line: what log collectors parse without configuration. */
export function createLogger(write: (line: string) => void = (line) => void process.stdout.write(line)): Logger {
  const log = (level: string, message: string, fields: Fields = {}): void => {
    const entry: Fields = { time: new Date().toISOString(), level, service: SERVICE, message };
    for (const [key, value] of Object.entries(fields)) {
      // A field never replaces the four every line has.
      if (!(key in entry)) entry[key] = value;
    }
    write(JSON.stringify(entry) + "\n");
  };
  return {
    info: (message, fields) => log("info", message, fields),
    error: (message, fields) => log("error", message, fields),
  };
}

/** The port to listen on: `$PORT`, 8080 when it is unset or empty. */
export function portFromEnv(value: string | undefined = process.env.PORT): number {
  const raw = value?.trim() ?? "";
  if (raw === "") return 8080;
  const port = Number(raw);
  if (!/^\d+$/.test(raw) || port > 65535) {
    throw new Error(`PORT must be a port number (0-65535), not ${JSON.stringify(raw)}`);
  }
  return port;
}

/** A label value in the Prometheus text format. */
function label(value: string): string {
  return value.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n");
}

interface Histogram {
  buckets: number[];
  count: number;
  sum: number;
}

/** Request counters and a latency histogram by method, route and status code (the series the
 * generated alerts and dashboards read), plus a few process figures, in the Prometheus text format. */
export class Metrics {
  private readonly requests = new Map<string, number>();
  private readonly durations = new Map<string, Histogram>();
  private readonly startTime = Date.now() / 1000 - process.uptime();

  observe(method: string, route: string, code: number, seconds: number): void {
    const key = `method="${label(method)}",path="${label(route)}",code="${code}"`;
    this.requests.set(key, (this.requests.get(key) ?? 0) + 1);
    let histogram = this.durations.get(key);
    if (histogram === undefined) {
      histogram = { buckets: BUCKETS.map(() => 0), count: 0, sum: 0 };
      this.durations.set(key, histogram);
    }
    BUCKETS.forEach((bound, i) => {
      if (seconds <= bound) histogram.buckets[i] = (histogram.buckets[i] ?? 0) + 1;
    });
    histogram.count += 1;
    histogram.sum += seconds;
  }

  render(): string {
    const lines = [
      "# HELP http_requests_total HTTP requests served, by method, route and status code.",
      "# TYPE http_requests_total counter",
    ];
    const keys = [...this.requests.keys()].sort();
    for (const key of keys) {
      lines.push(`http_requests_total{${key}} ${this.requests.get(key) ?? 0}`);
    }
    lines.push(
      "# HELP http_request_duration_seconds Time to answer HTTP requests, by method, route and status code.",
      "# TYPE http_request_duration_seconds histogram",
    );
    for (const key of keys) {
      const h = this.durations.get(key);
      if (h === undefined) continue;
      BUCKETS.forEach((bound, i) =>
        lines.push(`http_request_duration_seconds_bucket{${key},le="${bound}"} ${h.buckets[i] ?? 0}`),
      );
      lines.push(`http_request_duration_seconds_bucket{${key},le="+Inf"} ${h.count}`);
      lines.push(`http_request_duration_seconds_sum{${key}} ${h.sum}`);
      lines.push(`http_request_duration_seconds_count{${key}} ${h.count}`);
    }
    const cpu = process.cpuUsage();
    const memory = process.memoryUsage();
    lines.push(
      "# HELP process_cpu_seconds_total User and system CPU time spent, in seconds.",
      "# TYPE process_cpu_seconds_total counter",
      `process_cpu_seconds_total ${(cpu.user + cpu.system) / 1e6}`,
      "# HELP process_resident_memory_bytes Resident memory size, in bytes.",
      "# TYPE process_resident_memory_bytes gauge",
      `process_resident_memory_bytes ${memory.rss}`,
      "# HELP process_start_time_seconds Start time of the process since the Unix epoch, in seconds.",
      "# TYPE process_start_time_seconds gauge",
      `process_start_time_seconds ${Math.round(this.startTime)}`,
      "# HELP nodejs_heap_size_used_bytes V8 heap in use, in bytes.",
      "# TYPE nodejs_heap_size_used_bytes gauge",
      `nodejs_heap_size_used_bytes ${memory.heapUsed}`,
    );
    return lines.join("\n") + "\n";
  }
}

function send(res: ServerResponse, status: number, type: string, body: string): number {
  res.writeHead(status, { "content-type": type, "content-length": Buffer.byteLength(body) });
  res.end(body);
  return status;
}

/** What a route answers. */
export interface Answer {
  status: number;
  type: string;
  body: string;
}

/** The routes this service answers (GET and HEAD), by path. Any other path is a 404 counted as
 * "other", so a scan of random URLs cannot create a metric series per URL. */
export const ROUTES = new Map<string, (metrics: Metrics) => Answer>([
  ["/", () => ({ status: 200, type: "application/json", body: JSON.stringify({ service: SERVICE }) })],
  ["/health", () => ({ status: 200, type: "application/json", body: JSON.stringify({ status: "ok" }) })],
  [
    "/metrics",
    (metrics) => ({ status: 200, type: "text/plain; version=0.0.4; charset=utf-8", body: metrics.render() }),
  ],
]);

function answer(req: IncomingMessage, res: ServerResponse, metrics: Metrics, path: string): number {
  if (req.method !== "GET" && req.method !== "HEAD") {
    res.setHeader("allow", "GET, HEAD");
    return send(res, 405, "application/json", JSON.stringify({ error: "method not allowed" }));
  }
  const route = ROUTES.get(path);
  if (route === undefined) return send(res, 404, "application/json", JSON.stringify({ error: "not found" }));
  const { status, type, body } = route(metrics);
  return send(res, status, type, body);
}

/** A server with its own metrics, not yet listening. */
export function createServer({ logger = createLogger() }: { logger?: Logger } = {}): {
  server: Server;
  metrics: Metrics;
} {
  const metrics = new Metrics();
  const server = createHttpServer((req, res) => {
    const started = process.hrtime.bigint();
    const path = (req.url ?? "/").split("?")[0] ?? "/";
    const route = ROUTES.has(path) ? path : "other";
    const method = req.method ?? "GET";
    let status: number;
    try {
      status = answer(req, res, metrics, path);
    } catch (error) {
      // A route that throws answers 500 and is counted as one: the generated HighErrorRate alert
      // reads code="500". When its headers already went out the answer cannot become a 500; the
      // connection is cut so the client does not take a truncated body for a success, and the
      // request is still counted as the failure it is.
      logger.error("request failed", { method, path: route, error: String(error) });
      if (res.headersSent) res.destroy();
      else send(res, 500, "application/json", JSON.stringify({ error: "internal error" }));
      status = 500;
    }
    // Counted as the answer goes out, so a client that reads /metrics next sees it.
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    metrics.observe(method, route, status, seconds);
    logger.info("request", { method, path: route, status, duration_ms: seconds * 1000 });
  });
  return { server, metrics };
}

/** Stops accepting connections, lets the requests in flight finish and resolves when the last
 * connection is gone; connections still open after `timeoutMs` are cut. */
export function shutdown(server: Server, timeoutMs = 10_000): Promise<void> {
  return new Promise((resolve) => {
    // A keep-alive connection becomes idle when its request is answered; close those as they
    // come, or a client that keeps its connection open would hold the process until the timeout.
    const idle = setInterval(() => server.closeIdleConnections(), 50);
    const timer = setTimeout(() => server.closeAllConnections(), timeoutMs);
    server.close(() => {
      clearInterval(idle);
      clearTimeout(timer);
      resolve();
    });
    server.closeIdleConnections();
  });
}
