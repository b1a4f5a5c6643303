package launch

import (
	"bytes"
	"strings"
	"sync"
	"testing"
	"time"
)

// syncBuffer is a bytes.Buffer the flush timer may write to meanwhile.
type syncBuffer struct {
	mu     sync.Mutex
	b      bytes.Buffer
	writes int
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.writes++
	return s.b.Write(p)
}

func (s *syncBuffer) String() (string, int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String(), s.writes
}

// Info lines wait and go out together; a warning takes them out at once,
// itself included; the timer writes what is left; flush writes everything.
func TestBufferedLoggerWritesWarningsAtOnceAndInfoLinesTogether(t *testing.T) {
	var out syncBuffer
	log, flush := BufferedLogger(&out, "info")
	log = log.With("service", "test")
	log.Info("one")
	log.Info("two")
	if got, _ := out.String(); got != "" {
		// The timer fires 100 ms after the first line; a test machine
		// that stalls that long between two calls would land here.
		t.Logf("info lines already written (a stalled machine?): %q", got)
	}
	log.Warn("three")
	got, writes := out.String()
	if !strings.Contains(got, `"msg":"one"`) || !strings.Contains(got, `"msg":"two"`) || !strings.Contains(got, `"msg":"three"`) {
		t.Fatalf("after a warning the log holds %q; want the two info lines and the warning", got)
	}
	if writes > 2 {
		t.Errorf("%d writes for three lines; want them together", writes)
	}
	log.Info("four")
	for deadline := time.Now().Add(10 * time.Second); ; {
		if got, _ := out.String(); strings.Contains(got, `"msg":"four"`) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("an info line was not written by the timer")
		}
		time.Sleep(5 * time.Millisecond)
	}
	log.Info("five")
	flush()
	if got, _ := out.String(); !strings.Contains(got, `"msg":"five"`) || !strings.Contains(got, `"service":"test"`) {
		t.Fatalf("after flush the log holds %q; want line five, with the service", got)
	}
}

// A burst goes out in writes of about logFlushSize, not a line each.
func TestBufferedLoggerWritesABurstInLargeWrites(t *testing.T) {
	var out syncBuffer
	log, flush := BufferedLogger(&out, "info")
	const lines = 2000
	for i := range lines {
		log.Info("a line of the burst", "i", i)
	}
	flush()
	got, writes := out.String()
	if n := strings.Count(got, "\n"); n != lines {
		t.Fatalf("%d lines written; want %d", n, lines)
	}
	if max := len(got)/logFlushSize + 2; writes > max {
		t.Errorf("%d writes for %d bytes; want at most %d", writes, len(got), max)
	}
}
