import io
import json
import threading
import unittest
import urllib.error
import urllib.request
from unittest import mock

from app import ROUTES, Metrics, make_server


class AppTest(unittest.TestCase):
    def setUp(self):
        self.logs = io.StringIO()
        self.server = make_server(host="127.0.0.1", port=0, log_stream=self.logs)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}"

    def tearDown(self):
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()

    def get(self, path):
        try:
            with urllib.request.urlopen(self.base + path, timeout=5) as response:
                return response.status, response.headers, response.read().decode()
        except urllib.error.HTTPError as error:
            return error.code, error.headers, error.read().decode()

    def test_health_answers_ok(self):
        status, headers, body = self.get("/health")
        self.assertEqual(status, 200)
        self.assertEqual(headers["Content-Type"], "application/json")
        self.assertEqual(json.loads(body), {"status": "ok"})

    def test_metrics_count_requests_in_prometheus_format(self):
        self.get("/health")
        self.get("/nope")
        status, headers, body = self.get("/metrics")
        self.assertEqual(status, 200)
        self.assertTrue(headers["Content-Type"].startswith("text/plain"))
        self.assertIn("# TYPE http_requests_total counter", body)
        # The labels the generated alerts and dashboards select on: method, path and code.
        self.assertIn('http_requests_total{method="GET",path="/health",code="200"} 1', body)
        self.assertIn('http_requests_total{method="GET",path="other",code="404"} 1', body)
        self.assertIn(
            'http_request_duration_seconds_bucket{method="GET",path="/health",code="200",le="+Inf"} 1',
            body,
        )
        self.assertIn('http_request_duration_seconds_count{method="GET",path="other",code="404"} 1', body)

    def test_unknown_paths_are_404(self):
        status, _, body = self.get("/nope")
        self.assertEqual(status, 404)
        self.assertEqual(json.loads(body), {"error": "not found"})

    def test_a_route_that_raises_answers_500_and_is_counted(self):
        def failing(handler):
            raise RuntimeError("deliberate failure")

        with mock.patch.dict(ROUTES, {"/fail": failing}):
            status, _, body = self.get("/fail")
            self.assertEqual(status, 500)
            self.assertEqual(json.loads(body), {"error": "internal error"})
            # The server goes on serving, and the error alert's series has the failure.
            _, _, metrics = self.get("/metrics")
        self.assertIn('http_requests_total{method="GET",path="/fail",code="500"} 1', metrics)
        self.assertIn('http_request_duration_seconds_count{method="GET",path="/fail",code="500"} 1', metrics)
        errors = [json.loads(line) for line in self.logs.getvalue().splitlines() if '"error"' in line]
        self.assertEqual(errors[0]["message"], "request failed")
        self.assertIn("deliberate failure", errors[0]["error"])

    def test_every_request_is_logged_as_one_json_object(self):
        self.get("/health")
        lines = [line for line in self.logs.getvalue().splitlines() if line]
        self.assertTrue(lines)
        entry = json.loads(lines[-1])
        self.assertEqual(entry["message"], "request")
        self.assertEqual(entry["path"], "/health")
        self.assertEqual(entry["status"], 200)
        self.assertEqual(entry["level"], "info")
        self.assertIn("service", entry)


class MetricsTest(unittest.TestCase):
    def test_histogram_buckets_are_cumulative(self):
        metrics = Metrics()
        metrics.observe("GET", "/", 200, 0.003)
        metrics.observe("GET", "/", 200, 0.2)
        metrics.observe("GET", "/", 500, 0.7)
        text = metrics.render()
        ok = 'method="GET",path="/",code="200"'
        self.assertIn(f'http_request_duration_seconds_bucket{{{ok},le="0.005"}} 1', text)
        self.assertIn(f'http_request_duration_seconds_bucket{{{ok},le="0.25"}} 2', text)
        self.assertIn(f'http_request_duration_seconds_bucket{{{ok},le="+Inf"}} 2', text)
        self.assertIn(f"http_request_duration_seconds_count{{{ok}}} 2", text)
        failed = 'method="GET",path="/",code="500"'
        self.assertIn(f'http_request_duration_seconds_bucket{{{failed},le="0.5"}} 0', text)
        self.assertIn(f'http_request_duration_seconds_bucket{{{failed},le="1.0"}} 1', text)
        self.assertIn(f'http_requests_total{{{failed}}} 1', text)


if __name__ == "__main__":
    unittest.main()
