package mailer

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// writeBehind writes the sent outcomes that the journal already made
// durable into the SQLite delivery log later, many in one transaction: the
// send waits for the journal's append only, and a commit — the WAL frames
// of every page it touched, SQLite's file locks taken and dropped — serves
// a batch of mails instead of the two or three that happened to arrive
// together. It was the mailer's largest cost per mail.
//
// What the log does not have yet is known here: Sent answers from it, and
// Get and a revoked partition (stopWorkers) flush first, so no reader of
// the log can miss a send. A crash loses the queue but not the journal,
// which the next mailer replays before it reads a record.
type writeBehind struct {
	l      *DeliveryLog
	log    *slog.Logger
	linger time.Duration // how long a batch's first row waits for others
	max    int           // a batch this large is written without waiting

	mu      sync.Mutex
	queue   []*recordReq
	waiting map[string]int  // event ids queued or being written → how many rows
	flushes []chan struct{} // closed once what was queued before them is written

	kick   chan struct{} // rows were queued
	urgent chan struct{} // a flush waits or the batch is full: no lingering
	stop   chan struct{}
	closed sync.Once
	done   chan struct{}
}

const (
	behindLinger = 20 * time.Millisecond
	behindMax    = 512
)

func newWriteBehind(l *DeliveryLog, log *slog.Logger) *writeBehind {
	b := &writeBehind{l: l, log: log, linger: behindLinger, max: behindMax, waiting: map[string]int{},
		kick: make(chan struct{}, 1), urgent: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{})}
	go b.run()
	return b
}

func notify(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// add queues r, a sent outcome whose journal entry is in r.journal.
func (b *writeBehind) add(r *recordReq) {
	b.mu.Lock()
	b.queue = append(b.queue, r)
	b.waiting[r.id]++
	full := len(b.queue) >= b.max
	b.mu.Unlock()
	notify(b.kick)
	if full {
		notify(b.urgent)
	}
}

// has returns which of ids are queued or being written.
func (b *writeBehind) has(ids []string, into map[string]bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.waiting) == 0 {
		return
	}
	for _, id := range ids {
		if b.waiting[id] > 0 {
			into[id] = true
		}
	}
}

// flush returns once everything queued before it is written (or its write
// failed and was logged).
func (b *writeBehind) flush(ctx context.Context) error {
	ch := make(chan struct{})
	b.mu.Lock()
	b.flushes = append(b.flushes, ch)
	b.mu.Unlock()
	notify(b.urgent)
	select {
	case <-ch:
		return nil
	case <-b.done:
		return nil // closed: close wrote what was left
	case <-ctx.Done():
		return ctx.Err()
	}
}

// close writes what is queued and stops the writer.
func (b *writeBehind) close() {
	b.closed.Do(func() { close(b.stop) })
	<-b.done
}

func (b *writeBehind) run() {
	defer close(b.done)
	linger := time.NewTimer(time.Hour)
	linger.Stop()
	for {
		select {
		case <-b.kick:
			linger.Reset(b.linger)
			select {
			case <-linger.C:
			case <-b.urgent:
				linger.Stop()
			case <-b.stop:
				linger.Stop()
				b.write()
				return
			}
		case <-b.urgent:
		case <-b.stop:
			b.write()
			return
		}
		b.write()
	}
}

// write writes the whole queue in one transaction (writeBatch tries the
// rows one by one if that fails) and answers the flushes waiting.
func (b *writeBehind) write() {
	b.mu.Lock()
	batch, flushes := b.queue, b.flushes
	b.queue, b.flushes = nil, nil
	b.mu.Unlock()
	if len(batch) > 0 {
		ctx, cancel := context.WithTimeout(context.Background(), dbTimeout)
		b.l.writeBatch(ctx, batch)
		cancel()
		failed := 0
		var last error
		for _, r := range batch {
			if err := <-r.done; err != nil {
				failed, last = failed+1, err
			}
			// Its journal file may go once the log has every entry; a
			// failed write leaves the send to the journal alone, as a
			// failed synchronous write did.
			b.l.journal.written(r.journal)
		}
		if failed > 0 {
			b.log.Warn("could not write sent mails to the delivery log; a re-delivered record may be mailed twice",
				"rows", failed, "batch", len(batch), "err", last)
		}
		b.mu.Lock()
		for _, r := range batch {
			if b.waiting[r.id]--; b.waiting[r.id] <= 0 {
				delete(b.waiting, r.id)
			}
		}
		b.mu.Unlock()
	}
	for _, ch := range flushes {
		close(ch)
	}
}
