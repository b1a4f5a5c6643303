package httpapi

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestMetricsLabelByRoutePattern(t *testing.T) {
	m := NewMetrics()
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/films/{id}", func(w http.ResponseWriter, r *http.Request) {
		if r.PathValue("id") == "0" {
			http.NotFound(w, r)
			return
		}
		_, _ = io.WriteString(w, "{}")
	})
	mux.Handle("GET /metrics", m.Handler())
	srv := httptest.NewServer(Stack{Metrics: m}.Handler(mux))
	defer srv.Close()
	for _, p := range []string{"/v1/films/1", "/v1/films/2", "/v1/films/0", "/nowhere"} {
		resp, err := http.Get(srv.URL + p)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	resp, err := http.Get(srv.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{
		`kinoteka_http_requests_total{method="GET",route="GET /v1/films/{id}",status="200"} 2`,
		`kinoteka_http_requests_total{method="GET",route="GET /v1/films/{id}",status="404"} 1`,
		`kinoteka_http_requests_total{method="GET",route="unmatched",status="404"} 1`,
		`kinoteka_http_request_duration_seconds_count{method="GET",route="GET /v1/films/{id}"} 3`,
		`go_goroutines`,
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	if strings.Contains(string(body), "/v1/films/1") {
		t.Error("a raw path leaked into a label")
	}
}
