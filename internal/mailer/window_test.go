package mailer

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"kinoteka/internal/events"
)

// rec is a decoded record of partition 0 for the window's rules.
func rec(offset int64, key, id, email string) item {
	r := &kgo.Record{Topic: topic, Offset: offset}
	if key != "" {
		r.Key = []byte(key)
	}
	return item{r: r, id: id, d: events.Decoded{ID: id, Mail: events.CodeMail{Email: email}}}
}

// started takes every record the window lets start now, by offset.
func started(w *window) []int64 {
	var offs []int64
	for s := w.next(); s != nil; s = w.next() {
		offs = append(offs, s.it.r.Offset)
	}
	return offs
}

func TestWindowCommitsOnlyTheFinishedPrefix(t *testing.T) {
	w := newWindow()
	slots := map[int64]*slot{}
	for i := range int64(4) {
		w.add(rec(i, fmt.Sprint("user-", i), fmt.Sprint("ev-", i), ""), false)
	}
	for _, s := range w.ready {
		slots[s.it.r.Offset] = s
	}
	if got := started(w); !slices.Equal(got, []int64{0, 1, 2, 3}) {
		t.Fatalf("started %v, want all four: their keys differ", got)
	}
	// 1, 2 and 3 finish while 0, the slow one, is still being mailed.
	for _, off := range []int64{2, 1, 3} {
		if last := w.finish(slots[off]); last != nil {
			t.Fatalf("finishing %d made %d committable while 0 is unfinished", off, last.Offset)
		}
	}
	if last := w.finish(slots[0]); last == nil || last.Offset != 3 {
		t.Fatalf("finishing 0 gave %v, want the prefix up to 3", last)
	}
	if w.len() != 0 || len(w.lines) != 0 {
		t.Errorf("window keeps %d records and %d keys after all finished", w.len(), len(w.lines))
	}
	// The prefix grows one record at a time too.
	w.add(rec(4, "user-4", "ev-4", ""), false)
	s := w.next()
	if last := w.finish(s); last == nil || last.Offset != 4 {
		t.Errorf("finishing 4 alone gave %v", last)
	}
}

func TestWindowKeepsPerKeyOrder(t *testing.T) {
	w := newWindow()
	w.add(rec(0, "alice", "ev-0", "a@example.com"), false)
	w.add(rec(1, "bob", "ev-1", "b@example.com"), false)
	w.add(rec(2, "alice", "ev-2", "a@example.com"), false)
	w.add(rec(3, "alice", "ev-3", "a@example.com"), false)
	w.add(rec(4, "carol", "ev-4", "c@example.com"), false)
	// Keyless records (the original payload) are ordered by recipient,
	// whatever the case of the address.
	w.add(rec(5, "", "kafka:t/0/5", "Dave@example.com"), false)
	w.add(rec(6, "", "kafka:t/0/6", "dave@example.com"), false)
	// The same event twice under different keys still goes one at a time.
	w.add(rec(7, "erin", "ev-dup", "e@example.com"), false)
	w.add(rec(8, "frank", "ev-dup", "f@example.com"), false)

	var running []*slot
	take := func() []int64 {
		var offs []int64
		for s := w.next(); s != nil; s = w.next() {
			offs = append(offs, s.it.r.Offset)
			running = append(running, s)
		}
		return offs
	}
	finish := func(off int64) {
		t.Helper()
		i := slices.IndexFunc(running, func(s *slot) bool { return s.it.r.Offset == off })
		if i < 0 {
			t.Fatalf("%d is not running", off)
		}
		w.finish(running[i])
		running = slices.Delete(running, i, i+1)
	}

	if got := take(); !slices.Equal(got, []int64{0, 1, 4, 5, 7}) {
		t.Fatalf("started %v, want the first of each key: 0 1 4 5 7", got)
	}
	finish(1)
	finish(7)
	if got := take(); !slices.Equal(got, []int64{8}) {
		t.Fatalf("after 1 and 7: started %v, want 8 (its event's first copy is done)", got)
	}
	finish(0)
	if got := take(); !slices.Equal(got, []int64{2}) {
		t.Fatalf("after 0: started %v, want alice's next, 2, and not 3", got)
	}
	finish(5)
	finish(2)
	if got := take(); !slices.Equal(got, []int64{3, 6}) {
		t.Fatalf("started %v, want 3 and 6, oldest first", got)
	}
}

func TestWindowSharesSentAcrossCopiesOfAnEvent(t *testing.T) {
	w := newWindow()
	w.add(rec(0, "alice", "ev-1", ""), false)
	w.add(rec(1, "alice", "ev-1", ""), false) // the relay published it twice
	first := w.next()
	if *first.p.sent {
		t.Fatal("the first copy looks sent")
	}
	*first.p.sent = true // handle sent it
	w.finish(first)
	second := w.next()
	if second == nil || !*second.p.sent {
		t.Fatal("the second copy does not see the first one sent")
	}
	// What the delivery log says is kept as well.
	w.add(rec(2, "bob", "ev-2", ""), true)
	if s := w.next(); s == nil || !*s.p.sent {
		t.Fatal("an event the log has as sent does not look sent")
	}
}

// orderSender is a Sender that holds the mails to held addresses until
// released, and checks that no two mails of one key are sent at once and
// that each key's mails go in the order given.
type orderSender struct {
	mu       sync.Mutex
	keyOf    map[string]string // event id → record key
	orderOf  map[string]int    // event id → its place among its key's records
	busy     map[string]bool   // keys being sent
	next     map[string]int    // each key's next place
	sent     []string
	inFlight int
	most     int
	held     map[string]chan struct{} // by recipient
	errs     []string
}

func (o *orderSender) Send(ctx context.Context, m Message) error {
	o.mu.Lock()
	key := o.keyOf[m.EventID]
	if o.busy[key] {
		o.errs = append(o.errs, fmt.Sprintf("%s sent while another mail of %s was being sent", m.EventID, key))
	}
	if o.orderOf[m.EventID] != o.next[key] {
		o.errs = append(o.errs, fmt.Sprintf("%s sent out of %s's order", m.EventID, key))
	}
	o.busy[key] = true
	o.inFlight++
	o.most = max(o.most, o.inFlight)
	hold := o.held[m.To]
	o.mu.Unlock()
	if hold != nil {
		select {
		case <-hold:
		case <-ctx.Done():
		}
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	o.busy[key] = false
	o.next[key]++
	o.inFlight--
	o.sent = append(o.sent, m.EventID)
	return nil
}

func (o *orderSender) sentCount() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return len(o.sent)
}

// One partition: a slow mail does not hold the mails behind it, but it
// holds their commit; one user's mails never overlap and keep their order.
func TestPartitionMailsConcurrentlyInKeyOrder(t *testing.T) {
	kc := newCluster(t, 1)
	o := &orderSender{keyOf: map[string]string{}, orderOf: map[string]int{}, busy: map[string]bool{}, next: map[string]int{},
		held: map[string]chan struct{}{"slow@example.com": make(chan struct{})}}
	var records []*kgo.Record
	add := func(id, key, email string) {
		o.keyOf[id], o.orderOf[id] = key, o.next[key]
		o.next[key]++
		records = append(records, &kgo.Record{Topic: topic, Partition: 0, Key: []byte(key),
			Value: envelope(t, id, events.TypeVerificationCode, events.CodeMail{Email: email, Code: "123456"})})
	}
	add("first", "user-first", "first@example.com") // goes alone: the partition opens on its success
	add("slow", "user-slow", "slow@example.com")
	const users, each = 5, 8
	for i := range users * each {
		u := i % users
		add(fmt.Sprintf("u%d-%d", u, i/users), fmt.Sprintf("user-%d", u), fmt.Sprintf("u%d-%d@example.com", u, i/users))
	}
	add("after-slow", "user-slow", "after@example.com") // the slow user's next mail waits for the slow one
	clear(o.next)
	if err := kc.cl.ProduceSync(context.Background(), records...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	end := kc.ends(t)[0]

	startMailer(t, testConfig(kc, "127.0.0.1:1"), testLog(t, nil), o)
	waitFor(t, "every mail but the slow user's sent", func() bool { return o.sentCount() == 1+users*each })
	// The commit must stay right before the slow record (offset 1) for as
	// long as it is being sent: watch a few commit intervals.
	for range 5 {
		if c := kc.committed(t, "mailer-test", 1)[0]; c > 1 {
			t.Fatalf("committed to %d while offset 1 is still being sent", c)
		}
		time.Sleep(testTuning.commitInterval)
	}
	close(o.held["slow@example.com"])
	waitFor(t, "everything committed", func() bool { return kc.committed(t, "mailer-test", 1)[0] == end })

	o.mu.Lock()
	defer o.mu.Unlock()
	for _, e := range o.errs {
		t.Error(e)
	}
	if o.most < 2 {
		t.Errorf("at most %d mail of the partition in flight at once; want several", o.most)
	}
	if o.most > DefaultConfig().SMTP.Connections {
		t.Errorf("%d mails of the partition in flight at once, more than the pool's %d", o.most, DefaultConfig().SMTP.Connections)
	}
	if len(o.sent) != len(records) || o.sent[len(o.sent)-1] != "after-slow" {
		t.Errorf("sent %d mails, the last %q; want %d, the last after-slow", len(o.sent), o.sent[len(o.sent)-1], len(records))
	}
}

// A partition's final turn is held by one send at a time, however many
// wait for it; a send that stops waiting (its context ends) leaves it to
// the others.
func TestFinalTurnIsHeldByOneSendAtATime(t *testing.T) {
	gate := newTurnGate()
	var holding atomic.Int32
	var overlapped atomic.Bool
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 200 {
				turn := &finalTurn{gate: gate}
				if err := turn.take(context.Background()); err != nil {
					t.Error(err)
					return
				}
				if holding.Add(1) > 1 {
					overlapped.Store(true)
				}
				runtime.Gosched() // let the others try while it is held
				holding.Add(-1)
				turn.give()
				turn.give() // a second give is harmless
			}
		})
	}
	wg.Wait()
	if overlapped.Load() {
		t.Error("two sends held the turn at once")
	}

	held := &finalTurn{gate: gate}
	if err := held.take(context.Background()); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	if err := (&finalTurn{gate: gate}).take(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("take while held = %v; want the context's error", err)
	}
	if n := gate.waiting.Load(); n != 0 {
		t.Errorf("%d sends counted as waiting after the last gave up", n)
	}
	held.give()
	if err := (&finalTurn{gate: gate}).take(context.Background()); err != nil {
		t.Errorf("take after give = %v", err)
	}
}
