package launch

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// A stop under load answers every request already accepted, stops the
// workers only after the drain, and leaves no goroutine running.
func TestLifecycleDrainsAcceptedRequestsThenStopsWorkers(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	inHandler := make(chan struct{}, 100)
	release := make(chan struct{})
	var answered atomic.Int32
	var order []string
	var mu sync.Mutex
	note := func(s string) { mu.Lock(); order = append(order, s); mu.Unlock() }

	var lc Lifecycle
	lc.Serve("api", ln, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		inHandler <- struct{}{}
		<-release
		answered.Add(1)
		_, _ = io.WriteString(w, "ok")
	}))
	lc.Go("relay", func(ctx context.Context) error {
		<-ctx.Done()
		note("worker stopped")
		return ctx.Err()
	})
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- lc.Run(ctx) }()

	const n = 20
	var clients sync.WaitGroup
	var ok atomic.Int32
	for range n {
		clients.Go(func() {
			resp, err := http.Get("http://" + ln.Addr().String())
			if err != nil {
				t.Error(err)
				return
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == 200 && string(body) == "ok" {
				ok.Add(1)
			}
		})
	}
	for range n {
		<-inHandler
	}
	stop() // SIGTERM with n requests in flight
	time.Sleep(50 * time.Millisecond)
	note("releasing requests")
	close(release)
	clients.Wait()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if ok.Load() != n || answered.Load() != n {
		t.Errorf("%d of %d requests answered", ok.Load(), n)
	}
	if len(order) != 2 || order[0] != "releasing requests" || order[1] != "worker stopped" {
		t.Errorf("order %v: the worker must stop after the drain", order)
	}
	if _, err := http.Get("http://" + ln.Addr().String()); err == nil {
		t.Error("still accepting after Run returned")
	}
}

// A worker that fails stops the whole service with its error.
func TestLifecycleStopsWhenAWorkerFails(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var lc Lifecycle
	lc.Serve("api", ln, http.NotFoundHandler())
	boom := errors.New("boom")
	lc.Go("consumer", func(ctx context.Context) error { return boom })
	stopped := make(chan struct{})
	lc.Go("refresh", func(ctx context.Context) error { <-ctx.Done(); close(stopped); return nil })
	err = lc.Run(context.Background())
	if !errors.Is(err, boom) || err.Error() != "consumer: boom" {
		t.Fatalf("Run = %v", err)
	}
	select {
	case <-stopped:
	default:
		t.Error("the other worker was not waited for")
	}
}
