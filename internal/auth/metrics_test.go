package auth

import (
	"io"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"

	"kinoteka/internal/events"
	"kinoteka/internal/testkit"
)

// startMetricsRun runs auth with login limited to one attempt per IP.
func startMetricsRun(t *testing.T, brokers []string) running {
	t.Helper()
	return startRun(t, brokers, func(c *Config) {
		c.Throttle = ThrottleConfig{Store: "memory", Limits: map[Action]Limits{ActLogin: {IP: Rule{1, time.Hour}}}}
	})
}

// scrape returns auth's /metrics, from the operators' listener.
func scrape(t *testing.T, srv running) string {
	t.Helper()
	resp, err := client.Get(srv.opsURL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("/metrics: %d, %v", resp.StatusCode, err)
	}
	return string(body)
}

// sample is the value of the first series in body whose line starts with
// prefix (a name, or a name and the start of its labels).
func sample(body, prefix string) (float64, bool) {
	for line := range strings.SplitSeq(body, "\n") {
		if strings.HasPrefix(line, prefix) {
			v, err := strconv.ParseFloat(line[strings.LastIndexByte(line, ' ')+1:], 64)
			return v, err == nil
		}
	}
	return 0, false
}

func TestMetrics(t *testing.T) {
	cluster, err := kfake.NewCluster(kfake.SeedTopics(1, events.Topic))
	if err != nil {
		t.Fatal(err)
	}
	defer cluster.Close()
	srv := startMetricsRun(t, cluster.ListenAddrs())
	url := srv.url

	for _, tc := range []struct {
		path, body string
		want       int
	}{
		{"/v1/auth/register", `{"email":"a@example.com","password":"correct horse"}`, 202},
		{"/v1/auth/login", `{"email":"b@example.com","password":"correct horse"}`, 401},
		{"/v1/auth/login", `{"email":"b@example.com","password":"correct horse"}`, 429},
	} {
		if status, body := post(t, url+tc.path, tc.body); status != tc.want {
			t.Fatalf("%s: %d %s, want %d", tc.path, status, body, tc.want)
		}
	}

	// The relay publishes the registration's mail; then the backlog is empty.
	var body string
	deadline := time.Now().Add(30 * time.Second)
	for {
		body = scrape(t, srv)
		pending, ok := sample(body, "kinoteka_outbox_pending_rows ")
		produced, _ := sample(body, `kinoteka_kafka_produce_records_total{`)
		if ok && pending == 0 && produced == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the outbox never drained (pending %v, %v; produced %v):\n%s", pending, ok, produced, body)
		}
		time.Sleep(20 * time.Millisecond)
	}
	for _, tc := range []struct {
		series string
		want   float64
	}{
		{`kinoteka_http_requests_total{method="POST",route="POST /v1/auth/register",status="202"}`, 1},
		{`kinoteka_http_requests_total{method="POST",route="POST /v1/auth/login",status="401"}`, 1},
		{`kinoteka_http_requests_total{method="POST",route="POST /v1/auth/login",status="429"}`, 1},
		{`kinoteka_http_request_duration_seconds_count{method="POST",route="POST /v1/auth/login"}`, 2},
		{`kinoteka_auth_throttled_total{action="login",scope="ip"}`, 1},
		{`kinoteka_auth_throttled_total{action="register",scope="ip"}`, 0},
		{`kinoteka_auth_login_failures_total{reason="unknown_email"}`, 1},
		{`kinoteka_outbox_failing_rows`, 0},
		{`kinoteka_outbox_oldest_age_seconds`, 0},
		{`kinoteka_outbox_publish_errors_total`, 0},
		{`kinoteka_kafka_connects_total{`, 1},
	} {
		// A series ending in "{" is any of its label sets, counted at least want.
		prefix, atLeast := tc.series, strings.HasSuffix(tc.series, "{")
		if !atLeast {
			prefix += " "
		}
		if got, ok := sample(body, prefix); !ok || got != tc.want && !(atLeast && got > tc.want) {
			t.Errorf("%s = %v (present %v), want %v", tc.series, got, ok, tc.want)
		}
	}
}

func TestMetricsOutboxBacklogWhileKafkaIsDown(t *testing.T) {
	brokers := []string{testkit.FreeAddr(t)} // nothing listens there: the broker is down
	srv := startMetricsRun(t, brokers)
	url := srv.url
	for _, email := range []string{"a@example.com", "b@example.com"} {
		if status, body := post(t, url+"/v1/auth/register", `{"email":"`+email+`","password":"correct horse"}`); status != 202 {
			t.Fatalf("register: %d %s", status, body)
		}
	}
	body := scrape(t, srv)
	if got, ok := sample(body, "kinoteka_outbox_pending_rows "); !ok || got != 2 {
		t.Errorf("kinoteka_outbox_pending_rows = %v (present %v), want 2", got, ok)
	}
	if got, ok := sample(body, "kinoteka_outbox_oldest_age_seconds "); !ok || got < 0 {
		t.Errorf("kinoteka_outbox_oldest_age_seconds = %v (present %v), want ≥ 0", got, ok)
	}
}
