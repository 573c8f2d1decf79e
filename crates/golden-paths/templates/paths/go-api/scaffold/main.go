// The service: an HTTP API on the standard library with /health, /metrics and JSON logs.
package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Latency buckets of the request histogram, in seconds.
var buckets = []float64{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5}

// Logger writes one JSON object per line: what log collectors parse without configuration.
type Logger struct {
	mu  sync.Mutex
	out io.Writer
}

// Log writes a line with the time, level, service, message and the given fields.
func (l *Logger) Log(level, message string, fields map[string]any) {
	entry := map[string]any{
		"time":    time.Now().UTC().Format(time.RFC3339Nano),
		"level":   level,
		"service": Service,
		"message": message,
	}
	for k, v := range fields {
		entry[k] = v
	}
	line, err := json.Marshal(entry)
	if err != nil {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.out.Write(append(line, '\n'))
}

// series is one (method, path, code) combination: its latency buckets, request count and total time.
type series struct {
	buckets []uint64
	count   uint64
	sum     float64
}

// Metrics counts requests and their latencies by method, route and status code in the
// Prometheus text format: the series the generated alerts and dashboards read.
type Metrics struct {
	mu     sync.Mutex
	series map[string]*series
}

// NewMetrics returns empty metrics.
func NewMetrics() *Metrics {
	return &Metrics{series: map[string]*series{}}
}

// Observe records one request.
func (m *Metrics) Observe(method, path string, code int, seconds float64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	key := fmt.Sprintf("method=%q,path=%q,code=\"%d\"", method, path, code)
	s, ok := m.series[key]
	if !ok {
		s = &series{buckets: make([]uint64, len(buckets))}
		m.series[key] = s
	}
	for i, bound := range buckets {
		if seconds <= bound {
			s.buckets[i]++
		}
	}
	s.count++
	s.sum += seconds
}

// Render returns the metrics in the Prometheus text format.
func (m *Metrics) Render() string {
	m.mu.Lock()
	defer m.mu.Unlock()
	keys := make([]string, 0, len(m.series))
	for k := range m.series {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	b.WriteString("# HELP http_requests_total HTTP requests served, by method, route and status code.\n")
	b.WriteString("# TYPE http_requests_total counter\n")
	for _, k := range keys {
		fmt.Fprintf(&b, "http_requests_total{%s} %d\n", k, m.series[k].count)
	}
	b.WriteString("# HELP http_request_duration_seconds Time to answer HTTP requests, by method, route and status code.\n")
	b.WriteString("# TYPE http_request_duration_seconds histogram\n")
	for _, k := range keys {
		s := m.series[k]
		for i, bound := range buckets {
			fmt.Fprintf(&b, "http_request_duration_seconds_bucket{%s,le=\"%g\"} %d\n", k, bound, s.buckets[i])
		}
		fmt.Fprintf(&b, "http_request_duration_seconds_bucket{%s,le=\"+Inf\"} %d\n", k, s.count)
		fmt.Fprintf(&b, "http_request_duration_seconds_sum{%s} %g\n", k, s.sum)
		fmt.Fprintf(&b, "http_request_duration_seconds_count{%s} %d\n", k, s.count)
	}
	return b.String()
}

// route answers one GET request: status, content type and body.
type route func(r *http.Request, metrics *Metrics) (int, string, string)

// routes are the paths this service answers (GET). Any other path is a 404 counted as "other",
// so a scan of random URLs cannot create a metric series per URL.
var routes = map[string]route{
	"/health": func(*http.Request, *Metrics) (int, string, string) {
		return http.StatusOK, "application/json", `{"status":"ok"}`
	},
	"/metrics": func(_ *http.Request, metrics *Metrics) (int, string, string) {
		return http.StatusOK, "text/plain; version=0.0.4", metrics.Render()
	},
	"/": func(*http.Request, *Metrics) (int, string, string) {
		body, _ := json.Marshal(map[string]string{"service": Service})
		return http.StatusOK, "application/json", string(body)
	},
}

// answer runs a route. A route that panics answers 500 and is counted as one: the generated
// HighErrorRate alert reads code="500". Left to net/http, the panic would close the connection
// with no answer and the request would not be counted.
func answer(handle route, path string, r *http.Request, metrics *Metrics, logger *Logger) (status int, contentType, body string) {
	defer func() {
		if p := recover(); p != nil {
			logger.Log("error", "request failed", map[string]any{
				"method": r.Method, "path": path, "error": fmt.Sprint(p),
			})
			status, contentType, body = http.StatusInternalServerError, "application/json", `{"error":"internal error"}`
		}
	}()
	return handle(r, metrics)
}

// Handler serves the service's routes, counting and logging every request.
func Handler(metrics *Metrics, logger *Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		started := time.Now()
		path := r.URL.Path
		var status int
		var contentType, body string
		handle, known := routes[path]
		switch {
		case r.Method != http.MethodGet:
			path = "other"
			status, contentType, body = http.StatusMethodNotAllowed, "application/json", `{"error":"method not allowed"}`
		case !known:
			path = "other"
			status, contentType, body = http.StatusNotFound, "application/json", `{"error":"not found"}`
		default:
			status, contentType, body = answer(handle, path, r, metrics, logger)
		}
		// Counted and logged before the answer goes out, so a client that reads /metrics next
		// sees it.
		seconds := time.Since(started).Seconds()
		metrics.Observe(r.Method, path, status, seconds)
		logger.Log("info", "request", map[string]any{
			"method": r.Method, "path": path, "status": status, "duration_ms": seconds * 1000,
		})
		w.Header().Set("Content-Type", contentType)
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		w.WriteHeader(status)
		io.WriteString(w, body)
	})
}

func port() string {
	if p := os.Getenv("PORT"); p != "" {
		return p
	}
	return "8080"
}

// healthcheck is the container health check: 0 when /health answers 200.
func healthcheck() int {
	client := http.Client{Timeout: 2 * time.Second}
	res, err := client.Get("http://127.0.0.1:" + port() + "/health")
	if err != nil {
		return 1
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return 1
	}
	return 0
}

func main() {
	if len(os.Args) > 1 && os.Args[1] == "healthcheck" {
		os.Exit(healthcheck())
	}
	logger := &Logger{out: os.Stdout}
	server := &http.Server{
		Addr:              ":" + port(),
		Handler:           Handler(NewMetrics(), logger),
		ReadHeaderTimeout: 10 * time.Second,
	}
	logger.Log("info", "listening", map[string]any{"port": port()})
	if err := server.ListenAndServe(); err != nil {
		logger.Log("error", "server stopped", map[string]any{"error": err.Error()})
		os.Exit(1)
	}
}
