package mailer

import (
	"context"
	"runtime"
	"slices"
	"strings"
	"sync/atomic"

	"github.com/twmb/franz-go/pkg/kgo"
)

// window holds one partition's records from the oldest one not yet
// committed on, and decides which may be mailed now and which offsets may
// be committed. It is the partition worker's alone (not safe for
// concurrent use).
//
// The rules:
//   - records of one order key — the record key, i.e. one user, or for a
//     keyless record its recipient — are mailed one at a time, in offset
//     order; so are records of one event id, so that a re-published event
//     finds its first copy sent rather than racing it;
//   - any others may be mailed at once, the oldest first, up to a limit
//     the worker sets (see worker.run);
//   - an offset is committed only when it and every record before it are
//     finished: a record behind a slow one waits for it, so a crash never
//     skips a record that was not mailed.
type window struct {
	slots []*slot             // oldest first; the first is the oldest not committed
	lines map[string]*keyLine // the unfinished records of each key, oldest first
	ready []*slot             // may start now, oldest first
}

// slot is one record in the window.
type slot struct {
	it       item
	lines    []*keyLine // its event id's line, then its order key's
	started  bool
	finished bool
	p        progress // shared with the record's handler while it runs
}

// progress is what a record's handler and its partition's worker share.
// The handler writes firstTry, read by the worker once it has finished.
type progress struct {
	sent     *bool     // the event was sent: read and set by the handler
	firstTry bool      // the handler sent it at its first attempt
	retrying func()    // called by the handler before it waits to retry
	final    *turnGate // the partition's final turn (see finalTurn)
}

// finalTurn is one send's claim on its partition's final turn: the span
// from the moment the SMTP server may take the mail (the final dot) to
// the moment its outcome would survive a crash (in the delivery log's
// journal, or the log itself). A crash in that span
// makes the partition's next owner send the mail again; one send of a
// partition at a time being in it keeps that to one mail per partition,
// as when a partition was mailed one record at a time, while the sends
// around it — connecting, MAIL, RCPT, the message itself — overlap.
type finalTurn struct {
	gate *turnGate // nil: no turns (a Sender that never asks)
	held bool
}

// turnGate is a partition's final turn, held by one send at a time.
type turnGate struct {
	ch      chan struct{} // holds a token while the turn is held
	waiting atomic.Int32  // sends blocked in take
}

func newTurnGate() *turnGate { return &turnGate{ch: make(chan struct{}, 1)} }

// take waits for the turn; the Sender calls it through Message.final.
func (t *finalTurn) take(ctx context.Context) error {
	if t.gate == nil || t.held {
		return nil
	}
	select {
	case t.gate.ch <- struct{}{}:
	default:
		t.gate.waiting.Add(1)
		defer t.gate.waiting.Add(-1)
		select {
		case t.gate.ch <- struct{}{}:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	t.held = true
	return nil
}

// give ends the turn, if taken. A send waiting for it runs at once: the
// turn is the one thing a partition's sends do one at a time, and the
// waiter, readied by the hand-off, would otherwise fall behind whatever
// this goroutine readies next (its partition's worker, say) on the
// mailer's one thread (MAILER_PROCS).
func (t *finalTurn) give() {
	if !t.held {
		return
	}
	t.held = false
	<-t.gate.ch
	if t.gate.waiting.Load() > 0 {
		runtime.Gosched()
	}
}

// keyLine is the queue of unfinished records sharing a key.
type keyLine struct {
	key   string
	queue []*slot
	// sent is whether the event (for an event id's line) was sent: set
	// from the delivery log when the record joins, and by the send.
	sent bool
}

func newWindow() *window { return &window{lines: map[string]*keyLine{}} }

// len is the number of records not yet committed.
func (w *window) len() int { return len(w.slots) }

// add appends a record, in offset order after those already added; sent
// says the delivery log has its event as sent.
func (w *window) add(it item, sent bool) {
	s := &slot{it: it}
	keys := [2]string{"event:" + it.id, orderKey(it)}
	for _, k := range keys {
		if k == "" {
			continue
		}
		l := w.lines[k]
		if l == nil {
			l = &keyLine{key: k}
			w.lines[k] = l
		}
		l.queue = append(l.queue, s)
		s.lines = append(s.lines, l)
	}
	s.lines[0].sent = s.lines[0].sent || sent
	// Records of one event never run at once, so only the one running
	// touches the flag.
	s.p.sent = &s.lines[0].sent
	w.slots = append(w.slots, s)
	w.readyIfFirst(s)
}

// orderKey is the key whose records are mailed one at a time: the record
// key, or for a keyless record (the original design's producer sent none)
// its recipient; "" for a record that could not be decoded.
func orderKey(it item) string {
	if len(it.r.Key) > 0 {
		return "key:" + string(it.r.Key)
	}
	if it.err == nil && it.d.Mail.Email != "" {
		return "to:" + strings.ToLower(it.d.Mail.Email)
	}
	return ""
}

// readyIfFirst makes s ready when it is the oldest unfinished record of
// each of its keys.
func (w *window) readyIfFirst(s *slot) {
	if s.started {
		return
	}
	for _, l := range s.lines {
		if l.queue[0] != s {
			return
		}
	}
	i, _ := slices.BinarySearchFunc(w.ready, s.it.r.Offset, func(x *slot, off int64) int {
		switch {
		case x.it.r.Offset < off:
			return -1
		case x.it.r.Offset > off:
			return 1
		}
		return 0
	})
	w.ready = slices.Insert(w.ready, i, s)
}

// next returns the oldest record that may be mailed now and marks it
// started; nil when none may.
func (w *window) next() *slot {
	if len(w.ready) == 0 {
		return nil
	}
	s := w.ready[0]
	w.ready = w.ready[1:]
	s.started = true
	return s
}

// finish records that s is finished and returns the newest record of the
// finished prefix when that prefix grew (its offset is the one to commit),
// else nil.
func (w *window) finish(s *slot) *kgo.Record {
	s.finished = true
	for _, l := range s.lines {
		l.queue = l.queue[1:] // s was the oldest of each of its keys
		if len(l.queue) == 0 {
			delete(w.lines, l.key)
			continue
		}
		w.readyIfFirst(l.queue[0])
	}
	var last *kgo.Record
	for len(w.slots) > 0 && w.slots[0].finished {
		last = w.slots[0].it.r
		w.slots[0] = nil
		w.slots = w.slots[1:]
	}
	return last
}
