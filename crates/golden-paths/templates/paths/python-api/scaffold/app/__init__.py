"""The service: an HTTP API on the standard library with /health, /metrics and JSON logs."""

import json
import logging
import os
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from app.config import SERVICE

# Latency buckets of the request histogram, in seconds.
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


class JsonFormatter(logging.Formatter):
    """One JSON object per line: what log collectors parse without configuration."""

    def format(self, record):
        entry = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "service": SERVICE,
            "message": record.getMessage(),
        }
        entry.update(getattr(record, "fields", {}))
        if record.exc_info:
            entry["error"] = self.formatException(record.exc_info)
        return json.dumps(entry, sort_keys=True)


def logger(stream=None):
    log = logging.getLogger(SERVICE)
    if not log.handlers or stream is not None:
        log.handlers.clear()
        handler = logging.StreamHandler(stream or sys.stdout)
        handler.setFormatter(JsonFormatter())
        log.addHandler(handler)
        log.setLevel(os.environ.get("LOG_LEVEL", "INFO").upper())
        log.propagate = False
    return log


class Series:
    """One (method, path, code) combination: its latency buckets, request count and total time."""

    def __init__(self):
        self.buckets = [0] * len(BUCKETS)
        self.count = 0
        self.sum = 0.0


class Metrics:
    """Request counters and a latency histogram by method, route and status code, in the
    Prometheus text format: the series the generated alerts and dashboards read."""

    def __init__(self):
        self._lock = threading.Lock()
        self._series = {}

    def observe(self, method, path, code, seconds):
        with self._lock:
            series = self._series.setdefault((method, path, str(code)), Series())
            for i, bound in enumerate(BUCKETS):
                if seconds <= bound:
                    series.buckets[i] += 1
            series.count += 1
            series.sum += seconds

    def render(self):
        with self._lock:
            keys = sorted(self._series)
            labels = {key: 'method="{}",path="{}",code="{}"'.format(*key) for key in keys}
            lines = [
                "# HELP http_requests_total HTTP requests served, by method, route and status code.",
                "# TYPE http_requests_total counter",
            ]
            for key in keys:
                lines.append(f"http_requests_total{{{labels[key]}}} {self._series[key].count}")
            lines += [
                "# HELP http_request_duration_seconds Time to answer HTTP requests, by method, route and status code.",
                "# TYPE http_request_duration_seconds histogram",
            ]
            for key in keys:
                series = self._series[key]
                for bound, value in zip(BUCKETS, series.buckets):
                    lines.append(f'http_request_duration_seconds_bucket{{{labels[key]},le="{bound}"}} {value}')
                lines += [
                    f'http_request_duration_seconds_bucket{{{labels[key]},le="+Inf"}} {series.count}',
                    f"http_request_duration_seconds_sum{{{labels[key]}}} {series.sum}",
                    f"http_request_duration_seconds_count{{{labels[key]}}} {series.count}",
                ]
            return "\n".join(lines) + "\n"


def index(handler):
    return 200, "application/json", json.dumps({"service": SERVICE})


def health(handler):
    return 200, "application/json", json.dumps({"status": "ok"})


def metrics(handler):
    return 200, "text/plain; version=0.0.4", handler.metrics.render()


# The routes this service answers (GET): path -> function(handler) -> (status, content type, body).
# Any other path is a 404 counted as "other", so a scan of random URLs cannot create a metric
# series per URL.
ROUTES = {"/": index, "/health": health, "/metrics": metrics}


class Handler(BaseHTTPRequestHandler):
    server_version = SERVICE
    metrics = None
    log = None

    def do_GET(self):
        started = time.monotonic()
        path = self.path.split("?", 1)[0]
        route = ROUTES.get(path)
        if route is None:
            path = "other"
        try:
            if route is None:
                status, content_type, body = 404, "application/json", json.dumps({"error": "not found"})
            else:
                status, content_type, body = route(self)
        except Exception:
            # A route that fails answers 500 and is counted as one: the generated HighErrorRate
            # alert reads code="500". Left to http.server, the connection would just be closed,
            # uncounted, with a plain-text traceback on stderr.
            self.log.error("request failed", exc_info=True, extra={"fields": {"method": "GET", "path": path}})
            status, content_type, body = 500, "application/json", json.dumps({"error": "internal error"})
        # Counted before the answer goes out, so a client that reads /metrics next sees it.
        elapsed = time.monotonic() - started
        self.metrics.observe("GET", path, status, elapsed)
        self.log.info(
            "request",
            extra={"fields": {"method": "GET", "path": path, "status": status,
                              "duration_ms": round(elapsed * 1000, 3)}},
        )
        data = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format, *args):
        # Requests are logged as JSON in do_GET; the default access log is plain text.
        pass


def make_server(host="0.0.0.0", port=8080, log_stream=None):
    """A server with its own metrics, not yet serving: call serve_forever()."""
    handler = type("BoundHandler", (Handler,), {"metrics": Metrics(), "log": logger(log_stream)})
    return ThreadingHTTPServer((host, port), handler)
