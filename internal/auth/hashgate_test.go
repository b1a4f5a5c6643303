package auth

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"runtime"
	"testing"
	"time"

	"kinoteka/internal/httpapi"
)

// gatedFixture is a fixture whose hash gate has one slot and waits wait.
func gatedFixture(t *testing.T, wait time.Duration) *fixture {
	t.Helper()
	return newFixture(t, sqliteDB(t), func(c *serviceConfig) { c.HashConcurrency, c.HashWait = 1, wait })
}

// hold takes the gate's only slot until the test ends or release is called.
func hold(t *testing.T, g *hashGate) (release func()) {
	t.Helper()
	r, err := g.acquire(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	done := false
	release = func() {
		if !done {
			done = true
			r()
		}
	}
	t.Cleanup(release)
	return release
}

// Every request that hashes — register, login for a known or an unknown
// address, verify and reset with the right code — is refused with 503 busy,
// Retry-After and problem+json while every slot stays taken, and goes
// through once one is free. Nothing is changed by a refused request: the
// codes still verify and reset afterwards.
func TestHashGateRefusesWhenEverySlotStaysTaken(t *testing.T) {
	for _, wait := range []time.Duration{0, 20 * time.Millisecond} {
		t.Run("wait "+wait.String(), func(t *testing.T) {
			f := gatedFixture(t, wait)
			f.registerVerified(t, "known@example.com")
			verifyCode := f.register(t, "pending@example.com")
			f.clock.Advance(time.Minute) // one mail a minute per address
			if err := f.svc.Forgot(context.Background(), "known@example.com"); err != nil {
				t.Fatal(err)
			}
			resetCode := lastMail(t, f.db).mail.Code
			h := testRoutes(f)
			requests := []struct{ path, body string }{
				{"/v1/auth/register", `{"email":"new@example.com","password":"correct horse"}`},
				{"/v1/auth/login", `{"email":"known@example.com","password":"correct horse"}`},
				{"/v1/auth/login", `{"email":"nobody@example.com","password":"correct horse"}`},
				{"/v1/auth/verify", `{"email":"pending@example.com","code":"` + verifyCode + `","password":"correct horse"}`},
				{"/v1/auth/password/reset", `{"email":"known@example.com","code":"` + resetCode + `","new_password":"a brand new secret"}`},
			}
			release := hold(t, f.svc.hashes)
			for _, r := range requests {
				w := do(t, h, "POST", r.path, "application/json", r.body)
				var p httpapi.Problem
				_ = json.Unmarshal(w.Body.Bytes(), &p)
				if w.Code != http.StatusServiceUnavailable || p.Code != "busy" || w.Header().Get("Retry-After") != "1" ||
					w.Header().Get("Content-Type") != "application/problem+json" {
					t.Errorf("%s while the slot is held: %d %v %s, want 503 busy with Retry-After: 1", r.path, w.Code, w.Header(), w.Body)
				}
			}
			release()
			for i, want := range []int{http.StatusAccepted, http.StatusOK, http.StatusUnauthorized, http.StatusOK, http.StatusNoContent} {
				if w := do(t, h, "POST", requests[i].path, "application/json", requests[i].body); w.Code != want {
					t.Errorf("%s with a free slot: %d %s, want %d", requests[i].path, w.Code, w.Body, want)
				}
			}
		})
	}
}

// A request that finds every slot taken waits for one, in line, and goes
// through when it is given back before the wait ends.
func TestHashGateQueuesUpToTheWait(t *testing.T) {
	f := gatedFixture(t, time.Hour)
	f.registerVerified(t, "known@example.com")
	h := testRoutes(f)
	release := hold(t, f.svc.hashes)
	answer := make(chan int, 1)
	go func() {
		answer <- do(t, h, "POST", "/v1/auth/login", "application/json", `{"email":"known@example.com","password":"correct horse"}`).Code
	}()
	for f.svc.hashes.waiting.Load() != 1 {
		runtime.Gosched()
	}
	release()
	if got := <-answer; got != http.StatusOK {
		t.Errorf("the queued login answered %d, want 200", got)
	}
}

// A client that goes away while waiting leaves the line with its context's
// error; the slot count is unchanged.
func TestHashGateWaitEndsWithTheRequest(t *testing.T) {
	g := newHashGate(1, time.Hour, nil)
	release := hold(t, g)
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		_, err := g.acquire(ctx)
		errc <- err
	}()
	for g.waiting.Load() != 1 {
		runtime.Gosched()
	}
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Errorf("acquire after the request ended: %v, want context.Canceled", err)
	}
	release()
	r, err := g.acquire(context.Background())
	if err != nil {
		t.Fatalf("the slot was not given back: %v", err)
	}
	r()
}

// The gate's refusals and its queue are exported as metrics.
func TestHashGateMetrics(t *testing.T) {
	m := newServiceMetrics(httpapi.NewMetrics())
	g := newHashGate(1, 0, m.hashBusy)
	m.watchHashes(g)
	hold(t, g)
	if _, err := g.acquire(context.Background()); err == nil {
		t.Fatal("a second slot was given")
	}
	w := do(t, m.http.Handler(), "GET", "/metrics", "", "")
	for series, want := range map[string]float64{"kinoteka_auth_hash_refused_total ": 1, "kinoteka_auth_hash_waiting ": 0} {
		if got, ok := sample(w.Body.String(), series); !ok || got != want {
			t.Errorf("%s= %v (present %v), want %v", series, got, ok, want)
		}
	}
}
