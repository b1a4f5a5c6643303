package launch

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"kinoteka/internal/httpapi"
)

// DefaultDrain is how long in-flight requests may take to finish once a
// service is told to stop.
const DefaultDrain = 10 * time.Second

// Lifecycle starts one service's HTTP servers and background workers (the
// outbox relay, consumers, key refresh) and stops them in one explicit
// order when the context ends or any part fails:
//
//  1. stop accepting connections and drain the requests in flight (up to
//     Drain), so a request already accepted is answered;
//  2. cancel the workers' context and wait for every one of them, so work
//     the drained requests started (an outbox row's wake-up) is still done;
//  3. return, so the service's deferred Close calls close its stores last.
//
// Every goroutine it starts has ended when Run returns.
type Lifecycle struct {
	Log   *slog.Logger  // nil: discard
	Drain time.Duration // 0: DefaultDrain

	servers []server
	workers []worker
}

type server struct {
	name string
	ln   net.Listener
	srv  *http.Server
}

type worker struct {
	name string
	run  func(ctx context.Context) error
}

// Serve adds an HTTP server answering h on ln (an httpapi.NewServer).
func (l *Lifecycle) Serve(name string, ln net.Listener, h http.Handler) {
	l.servers = append(l.servers, server{name: name, ln: ln, srv: httpapi.NewServer(h)})
}

// Go adds a worker. run must return soon after its context ends; an error
// it returns before that stops the service, and Run returns it.
func (l *Lifecycle) Go(name string, run func(ctx context.Context) error) {
	l.workers = append(l.workers, worker{name: name, run: run})
}

// Run starts every part and blocks until ctx is done or a part fails, then
// stops them in order. It returns the failure that stopped the service, if
// any, joined with any a part reported while stopping.
func (l *Lifecycle) Run(ctx context.Context) error {
	log := l.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	drain := l.Drain
	if drain <= 0 {
		drain = DefaultDrain
	}
	failed := make(chan error, len(l.servers)+len(l.workers))

	// Workers outlive the servers, so their context is not ctx.
	workCtx, stopWork := context.WithCancel(context.WithoutCancel(ctx))
	defer stopWork()
	var workers sync.WaitGroup
	for _, w := range l.workers {
		workers.Go(func() {
			if err := w.run(workCtx); err != nil && !errors.Is(err, context.Canceled) {
				failed <- fmt.Errorf("%s: %w", w.name, err)
			}
		})
	}
	var servers sync.WaitGroup
	for _, s := range l.servers {
		servers.Go(func() {
			if err := s.srv.Serve(s.ln); !errors.Is(err, http.ErrServerClosed) {
				failed <- fmt.Errorf("%s: serve on %s: %w", s.name, s.ln.Addr(), err)
			}
		})
	}

	var errs []error
	select {
	case <-ctx.Done():
		log.Info("stopping", "cause", context.Cause(ctx))
	case err := <-failed:
		log.Error("stopping: a part failed", "err", err)
		errs = append(errs, err)
	}

	// 1. Stop accepting and drain.
	shutdownCtx, cancel := context.WithTimeout(context.Background(), drain)
	var shutdown sync.WaitGroup
	for _, s := range l.servers {
		shutdown.Go(func() {
			if err := s.srv.Shutdown(shutdownCtx); err != nil {
				log.Warn("requests still running after the drain were cut off", "server", s.name, "drain", drain, "err", err)
				_ = s.srv.Close()
			}
		})
	}
	shutdown.Wait()
	cancel()
	servers.Wait()

	// 2. Stop the workers and wait for each.
	stopWork()
	workers.Wait()
	close(failed)
	for err := range failed {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}
