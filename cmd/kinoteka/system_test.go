package main

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"kinoteka/internal/e2e"
)

// runSystem starts the embedded system in-process with extra flags, on free
// ports in a fresh data folder, and returns it once every service answers,
// with an Env pointing at it. stop cancels it and returns what run returned;
// cleanup stops it too.
func runSystem(t testing.TB, extra ...string) (s *system, env e2e.Env, stop func() error) {
	t.Helper()
	// The ports come from testkit.FreeAddr: free when picked, but another
	// test process picking at the same time can take one before the system
	// listens on it. Such a start is tried again with other ports.
	var dir string
	for attempt := 1; ; attempt++ {
		dir = t.TempDir()
		cfg, err := parseConfig(append(freeArgs(t, dir), extra...), func(string) string { return "" }, io.Discard)
		if err != nil {
			t.Fatal(err)
		}
		s, err = newSystem(cfg, slog.New(slog.DiscardHandler))
		if err == nil {
			break
		}
		if !errors.Is(err, syscall.EADDRINUSE) || attempt == 3 {
			t.Fatal(err)
		}
		t.Logf("start-up, attempt %d: %v; again with other ports", attempt, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan struct{})
	done := make(chan error, 1)
	go func() { done <- s.run(ctx, func() { close(ready) }) }()
	select {
	case <-ready:
	case err := <-done:
		cancel()
		t.Fatalf("system stopped: %v", err)
	}
	var once sync.Once
	var runErr error
	stop = func() error {
		once.Do(func() { cancel(); runErr = <-done })
		return runErr
	}
	t.Cleanup(func() { _ = stop() })
	env = e2e.Env{AuthURL: s.authURL(), FilmsURL: s.filmsURL(), MailURL: s.mailUIURL(), KeyFile: filepath.Join(dir, "auth-signing-key.pem")}
	return s, env, stop
}

// With the broker down a registration still succeeds — the event waits in
// auth's outbox — and the mail goes out once the broker is back.
func TestKafkaDownRegistrationWaitsInOutbox(t *testing.T) {
	s, env, stop := runSystem(t)

	// One mail before the outage proves the path works and the group has joined.
	env.SignUp(t, "before@example.com", "correct horse battery")

	s.stopBroker()
	for _, addr := range []string{"during-1@example.com", "during-2@example.com"} {
		if r := env.Register(t, addr, "correct horse battery"); r.Status != http.StatusAccepted {
			t.Fatalf("register %s with the broker down: %d %s", addr, r.Status, r.Body)
		}
	}
	if got := len(s.catcher.Messages()); got != 1 {
		t.Fatalf("mails while the broker is down: want 1 (from before), got %d", got)
	}
	if err := s.startBroker(); err != nil {
		t.Fatal(err)
	}
	for _, addr := range []string{"during-1@example.com", "during-2@example.com"} {
		env.WaitForCode(t, addr, 90*time.Second)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
}
