package testkit

import (
	"context"
	"errors"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"sync"
	"testing"
	"time"
)

// childAddr, when set, makes this test binary a child process: an HTTP
// server answering /healthz until SIGINT.
const childAddr = "TESTKIT_CHILD_ADDR"

func TestMain(m *testing.M) {
	if addr := os.Getenv(childAddr); addr != "" {
		os.Exit(serveChild(addr))
	}
	os.Exit(m.Run())
}

func serveChild(addr string) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		os.Stderr.WriteString(err.Error() + "\n")
		return 1
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/healthz" {
			http.NotFound(w, r)
		}
	})}
	go func() { <-ctx.Done(); _ = srv.Close() }()
	os.Stdout.WriteString("child listening\n")
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return 1
	}
	os.Stdout.WriteString("child stopped on interrupt\n")
	return 0
}

func TestProcessStartWaitStop(t *testing.T) {
	addr := FreeAddr(t)
	p := Start(t, "child", os.Args[0], []string{childAddr + "=" + addr})
	WaitHTTP(t, p, "http://"+addr+"/healthz", 30*time.Second)
	if code := p.ExitCode(); code != -1 {
		t.Fatalf("ExitCode of a running process = %d, want -1", code)
	}
	p.Stop()
	if code := p.ExitCode(); code != 0 {
		t.Fatalf("exit code after Stop = %d, want 0 (stopped on SIGINT)", code)
	}
	if out := p.out.String(); !strings.Contains(out, "child listening") || !strings.Contains(out, "child stopped on interrupt") {
		t.Fatalf("child output not kept, or it did not stop on SIGINT: %q", out)
	}
	p.Stop() // a second Stop is harmless
}

func TestSyncBufferTakesConcurrentWrites(t *testing.T) {
	var b SyncBuffer
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			for range 100 {
				_, _ = b.Write([]byte("x"))
			}
		})
	}
	wg.Wait()
	if n := len(b.String()); n != 1600 {
		t.Fatalf("%d bytes kept, want 1600", n)
	}
}
