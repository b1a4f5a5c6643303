package mailer

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"strings"
	"testing"

	"kinoteka/internal/catcher"
	"kinoteka/internal/events"
)

// /readyz names each dependency — Kafka (and the mail topic), the delivery
// log, the SMTP server — and answers 503 while one is down. Before, an SMTP
// server that was down left it at 200.
func TestReadyzReportsEachDependency(t *testing.T) {
	kc := newCluster(t, 1)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	serve := func(ln net.Listener) (*catcher.Catcher, func()) {
		cat := catcher.New(catcher.Config{}, nil)
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- cat.ServeSMTP(ctx, ln) }()
		return cat, func() { cancel(); <-done }
	}
	_, stop := serve(ln)
	m := startMailer(t, testConfig(kc, addr), testLog(t, nil), nil)

	checks := func() (int, map[string]string) {
		res, err := http.Get(m.health + "/readyz")
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		var body struct{ Checks map[string]string }
		_ = json.NewDecoder(res.Body).Decode(&body)
		return res.StatusCode, body.Checks
	}
	var got map[string]string
	waitFor(t, "ready", func() bool {
		var code int
		code, got = checks()
		return code == http.StatusOK
	})
	for _, name := range []string{"kafka", "delivery_log", "smtp"} {
		if got[name] != "ok" {
			t.Errorf("readyz checks = %v, want %s ok", got, name)
		}
	}

	stop()
	waitFor(t, "not ready while the SMTP server is down", func() bool {
		code, got := checks()
		return code == http.StatusServiceUnavailable && strings.Contains(got["smtp"], "connect") && got["kafka"] == "ok"
	})

	// A send that meets the server down says so at once, and one that goes
	// through says it is back.
	ln2, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	cat, stop2 := serve(ln2)
	defer stop2()
	kc.produce(t, 0, envelope(t, "ev-1", events.TypeVerificationCode, events.CodeMail{Email: "a@example.com", Code: "123456"}))
	waitFor(t, "the mail", func() bool { return len(cat.Messages()) == 1 })
	waitFor(t, "ready again", func() bool { code, _ := checks(); return code == http.StatusOK })
}
