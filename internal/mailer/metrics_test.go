package mailer

import (
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"kinoteka/internal/events"
)

// scrapeMetrics returns the mailer's /metrics.
func scrapeMetrics(t *testing.T, m *mailer) string {
	t.Helper()
	res, err := http.Get(m.health + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil || res.StatusCode != http.StatusOK {
		t.Fatalf("/metrics: %d, %v", res.StatusCode, err)
	}
	return string(body)
}

// sampleValue is the value of the series in body named exactly series
// (name and labels), and whether it is there.
func sampleValue(body, series string) (float64, bool) {
	for line := range strings.SplitSeq(body, "\n") {
		if v, ok := strings.CutPrefix(line, series+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			return f, err == nil
		}
	}
	return 0, false
}

func TestMetrics(t *testing.T) {
	kc := newCluster(t, 2)
	fake := &fakeSender{reply: func(m Message, attempt int) error {
		switch {
		case m.To == "bounce@example.com":
			return &SendError{Step: StepRcpt, Code: 550, Err: fmt.Errorf("no such user")}
		case m.To == "later@example.com" && attempt == 1:
			return &SendError{Step: StepRcpt, Code: 451, Err: fmt.Errorf("try again later")}
		}
		return nil
	}}
	const good = 5
	for i := range good {
		to := fmt.Sprintf("user%d@example.com", i)
		kc.produce(t, int32(i%2), envelope(t, "ev-"+to, events.TypeVerificationCode, events.CodeMail{Email: to, Code: "123456"}))
	}
	for _, to := range []string{"bounce@example.com", "later@example.com"} {
		kc.produce(t, 0, envelope(t, "ev-"+to, events.TypeVerificationCode, events.CodeMail{Email: to, Code: "123456"}))
	}
	kc.produce(t, 1, []byte("not an event")) // poison

	cfg := testConfig(kc, "127.0.0.1:1")
	m := startMailer(t, cfg, testLog(t, nil), fake)
	kc.waitSettled(t, cfg.Group, 2)
	var d deliveryResponse
	if status := getJSON(t, m.health+"/v1/deliveries/ev-later@example.com", &d); status != http.StatusOK || d.Attempts != 2 {
		t.Fatalf("delivery of the deferred mail: %d %+v", status, d)
	}

	body := scrapeMetrics(t, m)
	for _, tc := range []struct {
		series string
		want   float64
	}{
		{"kinoteka_mailer_sent_total", good + 1},
		{"kinoteka_mailer_retried_total", 1},
		{"kinoteka_mailer_dead_lettered_total", 2},
		{"kinoteka_mailer_send_failures_total", 2},
		{"kinoteka_mailer_duplicates_skipped_total", 0},
		{`kinoteka_mailer_send_duration_seconds_count{outcome="ok"}`, good + 1},
		{`kinoteka_mailer_send_duration_seconds_count{outcome="error"}`, 2},
		{`kinoteka_mailer_consumer_lag{partition="0",topic="` + topic + `"}`, 0},
		{`kinoteka_mailer_consumer_lag{partition="1",topic="` + topic + `"}`, 0},
		{`kinoteka_http_requests_total{method="GET",route="GET /v1/deliveries/{event_id}",status="200"}`, 1},
	} {
		if got, ok := sampleValue(body, tc.series); !ok || got != tc.want {
			t.Errorf("%s = %v (present %v), want %v", tc.series, got, ok, tc.want)
		}
	}
	// The Kafka client's own series (kprom), by broker and topic: every
	// record was fetched at least once.
	var fetched float64
	for line := range strings.SplitSeq(body, "\n") {
		if strings.HasPrefix(line, "kinoteka_kafka_fetch_records_total{") && strings.Contains(line, `topic="`+topic+`"`) {
			v, _ := strconv.ParseFloat(line[strings.LastIndexByte(line, ' ')+1:], 64)
			fetched += v
		}
	}
	if fetched < good+3 {
		t.Errorf("kinoteka_kafka_fetch_records_total sums to %v, want at least %d:\n%s", fetched, good+3, body)
	}
}
