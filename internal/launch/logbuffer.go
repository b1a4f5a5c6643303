package launch

import (
	"context"
	"io"
	"log/slog"
	"sync"
	"time"
)

// logBuffer gathers log lines and writes them to w in one system call at
// most logFlushEvery after the first, or once logFlushSize bytes wait: a
// busy service logs a line per request or per mail, and a write(2) each
// was a measurable share of the mailer's CPU (docs/benchmarks.md). A
// warning or an error goes out at once, with the lines before it (see
// flushingHandler), and so does everything when the service stops. What
// a process killed outright loses is its last moment of info lines.
type logBuffer struct {
	w io.Writer

	mu    sync.Mutex
	buf   []byte
	armed bool // the timer will flush
	timer *time.Timer
}

const (
	logFlushEvery = 100 * time.Millisecond
	logFlushSize  = 32 << 10
)

func newLogBuffer(w io.Writer) *logBuffer {
	b := &logBuffer{w: w}
	b.timer = time.AfterFunc(time.Hour, b.Flush)
	b.timer.Stop()
	return b
}

// Write keeps p (one log line: slog's handlers write a record at once).
func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf = append(b.buf, p...)
	if len(b.buf) >= logFlushSize {
		return len(p), b.flushLocked()
	}
	if !b.armed {
		b.armed = true
		b.timer.Reset(logFlushEvery)
	}
	return len(p), nil
}

// Flush writes what waits.
func (b *logBuffer) Flush() {
	b.mu.Lock()
	defer b.mu.Unlock()
	_ = b.flushLocked()
}

func (b *logBuffer) flushLocked() error {
	if b.armed {
		b.armed = false
		b.timer.Stop()
	}
	if len(b.buf) == 0 {
		return nil
	}
	_, err := b.w.Write(b.buf)
	if cap(b.buf) > 4*logFlushSize {
		b.buf = nil // after a burst, do not keep its memory
	} else {
		b.buf = b.buf[:0]
	}
	return err
}

// flushingHandler flushes the buffer after every record at warn or above.
type flushingHandler struct {
	slog.Handler
	b *logBuffer
}

func (h flushingHandler) Handle(ctx context.Context, r slog.Record) error {
	err := h.Handler.Handle(ctx, r)
	if r.Level >= slog.LevelWarn {
		h.b.Flush()
	}
	return err
}

func (h flushingHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return flushingHandler{h.Handler.WithAttrs(attrs), h.b}
}

func (h flushingHandler) WithGroup(name string) slog.Handler {
	return flushingHandler{h.Handler.WithGroup(name), h.b}
}

// BufferedLogger is Logger writing through a buffer (see logBuffer); call
// flush when the service stops.
func BufferedLogger(w io.Writer, level string) (log *slog.Logger, flush func()) {
	b := newLogBuffer(w)
	return slog.New(flushingHandler{Logger(b, level).Handler(), b}), b.Flush
}
