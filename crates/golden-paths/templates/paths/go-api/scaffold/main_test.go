package main

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func get(t *testing.T, server *httptest.Server, path string) (int, string, string) {
	t.Helper()
	res, err := http.Get(server.URL + path)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return res.StatusCode, res.Header.Get("Content-Type"), string(body)
}

func start(t *testing.T) (*httptest.Server, *bytes.Buffer) {
	t.Helper()
	logs := &bytes.Buffer{}
	server := httptest.NewServer(Handler(NewMetrics(), &Logger{out: logs}))
	t.Cleanup(server.Close)
	return server, logs
}

func TestHealthAnswersOK(t *testing.T) {
	server, _ := start(t)
	status, contentType, body := get(t, server, "/health")
	if status != 200 || contentType != "application/json" || body != `{"status":"ok"}` {
		t.Fatalf("got %d %q %q", status, contentType, body)
	}
}

func TestMetricsCountRequestsInPrometheusFormat(t *testing.T) {
	server, _ := start(t)
	get(t, server, "/health")
	get(t, server, "/nope")
	status, contentType, body := get(t, server, "/metrics")
	if status != 200 || !strings.HasPrefix(contentType, "text/plain") {
		t.Fatalf("got %d %q", status, contentType)
	}
	for _, want := range []string{
		"# TYPE http_requests_total counter",
		// The labels the generated alerts and dashboards select on: method, path and code.
		`http_requests_total{method="GET",path="/health",code="200"} 1`,
		`http_requests_total{method="GET",path="other",code="404"} 1`,
		`http_request_duration_seconds_bucket{method="GET",path="/health",code="200",le="+Inf"} 1`,
		`http_request_duration_seconds_count{method="GET",path="other",code="404"} 1`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics lack %q:\n%s", want, body)
		}
	}
}

func TestAPanickingRouteAnswers500AndIsCounted(t *testing.T) {
	routes["/fail"] = func(*http.Request, *Metrics) (int, string, string) { panic("deliberate failure") }
	t.Cleanup(func() { delete(routes, "/fail") })
	server, logs := start(t)
	status, _, body := get(t, server, "/fail")
	if status != 500 || body != `{"error":"internal error"}` {
		t.Fatalf("got %d %q", status, body)
	}
	// The server goes on serving, and the error alert's series has the failure.
	_, _, metrics := get(t, server, "/metrics")
	for _, want := range []string{
		`http_requests_total{method="GET",path="/fail",code="500"} 1`,
		`http_request_duration_seconds_count{method="GET",path="/fail",code="500"} 1`,
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("metrics lack %q:\n%s", want, metrics)
		}
	}
	if !strings.Contains(logs.String(), `"error":"deliberate failure"`) {
		t.Errorf("the panic is not logged: %s", logs.String())
	}
}

func TestEveryRequestIsLoggedAsOneJSONObject(t *testing.T) {
	server, logs := start(t)
	get(t, server, "/health")
	lines := strings.Split(strings.TrimSpace(logs.String()), "\n")
	var entry map[string]any
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &entry); err != nil {
		t.Fatalf("%v: %q", err, logs.String())
	}
	if entry["message"] != "request" || entry["path"] != "/health" || entry["status"] != float64(200) || entry["service"] != Service {
		t.Fatalf("unexpected log entry %v", entry)
	}
}

func TestHistogramBucketsAreCumulative(t *testing.T) {
	m := NewMetrics()
	m.Observe("GET", "/", 200, 0.003)
	m.Observe("GET", "/", 200, 0.2)
	m.Observe("GET", "/", 500, 0.7)
	text := m.Render()
	for _, want := range []string{
		`http_request_duration_seconds_bucket{method="GET",path="/",code="200",le="0.005"} 1`,
		`http_request_duration_seconds_bucket{method="GET",path="/",code="200",le="0.25"} 2`,
		`http_request_duration_seconds_bucket{method="GET",path="/",code="200",le="+Inf"} 2`,
		`http_request_duration_seconds_count{method="GET",path="/",code="200"} 2`,
		`http_request_duration_seconds_bucket{method="GET",path="/",code="500",le="0.5"} 0`,
		`http_request_duration_seconds_bucket{method="GET",path="/",code="500",le="1"} 1`,
		`http_requests_total{method="GET",path="/",code="500"} 1`,
	} {
		if !strings.Contains(text, want) {
			t.Errorf("histogram lacks %q:\n%s", want, text)
		}
	}
}
