package auth

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"kinoteka/internal/events"
	"kinoteka/internal/kafka"
	"kinoteka/internal/launch"
	"kinoteka/internal/sqldb"
)

// running is an auth service started by Run on a loopback port.
type running struct {
	url    string // the API
	opsURL string // the operators' endpoints
	cfg    Config
	stop   func() error // cancels Run and returns its error
}

// startRun runs auth on a loopback port against brokers; edit, when given,
// adjusts the configuration first.
func startRun(t *testing.T, brokers []string, edit ...func(*Config)) running {
	t.Helper()
	dir := t.TempDir()
	cfg := testConfig()
	cfg.DatabaseURL = "sqlite:" + filepath.Join(dir, "auth.db")
	cfg.SigningKeyFile = filepath.Join(dir, "key.pem")
	cfg.GenerateKey = true
	cfg.Kafka.Brokers = brokers
	cfg.OutboxPoll = 50 * time.Millisecond
	for _, e := range edit {
		e(&cfg)
	}
	// Requests wait in the listener's backlog until Run serves, so the test
	// needs no readiness polling.
	ln := loopback(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Run(ctx, cfg, discard, ln) }()
	stopped := false
	stop := func() error {
		if stopped {
			return nil
		}
		stopped = true
		cancel()
		return <-done
	}
	t.Cleanup(func() {
		if err := stop(); err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	return running{url: "http://" + ln.Public.Addr().String(), opsURL: "http://" + ln.Ops.Addr().String(), cfg: cfg, stop: stop}
}

// loopback is a public and an operators' listener on free loopback ports.
func loopback(t *testing.T) launch.Listeners {
	t.Helper()
	var ln launch.Listeners
	var err error
	if ln.Public, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	if ln.Ops, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
		ln.Close()
		t.Fatal(err)
	}
	return ln
}

var client = &http.Client{Timeout: 30 * time.Second}

// waitReady polls /readyz until it answers 200 with status, and returns
// the body; it fails the test after a minute.
func waitReady(t *testing.T, url, status string) string {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	var last string
	for time.Now().Before(deadline) {
		resp, err := client.Get(url + "/readyz")
		if err != nil {
			t.Fatal(err)
		}
		var body struct{ Status string }
		raw, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		last = fmt.Sprintf("%d %s", resp.StatusCode, raw)
		if json.Unmarshal(raw, &body) == nil && resp.StatusCode == 200 && body.Status == status {
			return string(raw)
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("readyz never said %s; last: %s", status, last)
	return ""
}

func post(t *testing.T, url, body string) (int, []byte) {
	t.Helper()
	resp, err := client.Post(url, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var raw json.RawMessage
	_ = json.NewDecoder(resp.Body).Decode(&raw)
	return resp.StatusCode, raw
}

// consumeOne reads the first record of the mail topic.
func consumeOne(t *testing.T, brokers []string) *kgo.Record {
	t.Helper()
	return consume(t, brokers, 1)[0]
}

// consume reads the first n records of the mail topic.
func consume(t *testing.T, brokers []string, n int) []*kgo.Record {
	t.Helper()
	cl, err := kafka.NewClient(kafka.Config{Brokers: brokers}, kgo.ConsumeTopics(events.Topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var recs []*kgo.Record
	for len(recs) < n {
		fetches := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("%d of %d mail requests arrived in Kafka", len(recs), n)
		}
		recs = append(recs, fetches.Records()...)
	}
	return recs[:n]
}

func TestRunServesTheFlowThroughKafka(t *testing.T) {
	cluster, err := kfake.NewCluster(kfake.SeedTopics(1, events.Topic))
	if err != nil {
		t.Fatal(err)
	}
	defer cluster.Close()
	srv := startRun(t, cluster.ListenAddrs())

	if status, body := post(t, srv.url+"/v1/auth/register", `{"email":"a@example.com","password":"correct horse"}`); status != 202 {
		t.Fatalf("register: %d %s", status, body)
	}
	rec := consumeOne(t, cluster.ListenAddrs())
	d, err := events.Decode(rec.Value, "")
	if err != nil || d.Mail.Email != "a@example.com" || !sixDigits.MatchString(d.Mail.Code) {
		t.Fatalf("record: %+v, %v", d, err)
	}
	headers := map[string]string{}
	for _, h := range rec.Headers {
		headers[h.Key] = string(h.Value)
	}
	if headers["event-id"] != d.ID || headers["event-type"] != events.TypeVerificationCode || headers["content-type"] != "application/json" {
		t.Errorf("headers = %v", headers)
	}

	status, body := post(t, srv.url+"/v1/auth/verify", `{"email":"a@example.com","code":"`+d.Mail.Code+`","password":"correct horse"}`)
	var tok tokenResponse
	if err := json.Unmarshal(body, &tok); err != nil || status != 200 {
		t.Fatalf("verify: %d %s", status, body)
	}
	req, _ := http.NewRequest("GET", srv.url+"/v1/auth/me", nil)
	req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var me struct{ ID string }
	_ = json.NewDecoder(resp.Body).Decode(&me)
	resp.Body.Close()
	if resp.StatusCode != 200 || me.ID != string(rec.Key) {
		t.Errorf("me: %d, id %q; the record's key was %q", resp.StatusCode, me.ID, rec.Key)
	}

	if err := srv.stop(); err != nil {
		t.Errorf("Run returned %v after a clean shutdown", err)
	}
	// Production hashes use OWASP's parameters (the rule tests use cheap ones).
	db, err := sqldb.Open(context.Background(), srv.cfg.DatabaseURL)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var hash string
	if err := db.QueryRow("SELECT password_hash FROM users").Scan(&hash); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(hash, "$argon2id$v=19$m=19456,t=2,p=1$") {
		t.Errorf("production hash %s… does not use m=19456,t=2,p=1", hash[:32])
	}
}

func TestRunStartsWithKafkaDownAndMailsWhenItReturns(t *testing.T) {
	// A free port where the broker will appear later.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	brokers := []string{"127.0.0.1:" + strconv.Itoa(port)}
	srv := startRun(t, brokers)

	resp, err := client.Get(srv.opsURL + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("readyz with Kafka down: %d, want 200 (Kafka is not a readiness condition)", resp.StatusCode)
	}
	if status, body := post(t, srv.url+"/v1/auth/register", `{"email":"a@example.com","password":"correct horse"}`); status != 202 {
		t.Fatalf("register with Kafka down: %d %s", status, body)
	}
	// The relay's attempt fails within its bound; readiness says so and
	// stays 200.
	if body := waitReady(t, srv.opsURL, "degraded"); !strings.Contains(body, `"outbox relay":"degraded: publishing fails since`) {
		t.Errorf("readyz while the relay fails: %s", body)
	}

	cluster, err := kfake.NewCluster(kfake.Ports(port), kfake.SeedTopics(1, events.Topic))
	if err != nil {
		t.Fatalf("start the broker on port %d: %v", port, err)
	}
	defer cluster.Close()
	if d, err := events.Decode(consumeOne(t, brokers).Value, ""); err != nil || d.Mail.Email != "a@example.com" {
		t.Errorf("mail request after Kafka returned: %+v, %v", d, err)
	}
	if body := waitReady(t, srv.opsURL, "OK"); !strings.Contains(body, `"outbox relay":"ok"`) {
		t.Errorf("readyz once the relay published: %s", body)
	}
	if err := srv.stop(); err != nil {
		t.Errorf("Run: %v", err)
	}
}

func TestRunWithoutAKeyFileExplains(t *testing.T) {
	dir := t.TempDir()
	ln := loopback(t)
	cfg := testConfig()
	cfg.DatabaseURL = "sqlite:" + filepath.Join(dir, "auth.db")
	cfg.SigningKeyFile = filepath.Join(dir, "missing.pem")
	cfg.Kafka.Brokers = []string{"127.0.0.1:1"}
	err := Run(context.Background(), cfg, discard, ln)
	if err == nil || !strings.Contains(err.Error(), "AUTH_SIGNING_KEY_FILE") {
		t.Errorf("Run without a key = %v, want an error naming AUTH_SIGNING_KEY_FILE", err)
	}
	// Run fills in no default: an empty Config is refused, field by field.
	if err := Run(context.Background(), Config{}, discard, ln); err == nil || !strings.Contains(err.Error(), "AUTH_CODE_SECRET") ||
		!strings.Contains(err.Error(), "AUTH_ACCESS_TTL") {
		t.Errorf("Run with an empty config = %v, want a validation error", err)
	}
}
