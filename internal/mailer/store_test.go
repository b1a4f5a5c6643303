package mailer

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"kinoteka/internal/apperr"
	"kinoteka/internal/sqldb"
	"kinoteka/internal/sqldb/sqldbtest"
)

var d0 = time.Date(2026, 11, 27, 10, 0, 0, 123456789, time.UTC)

// discardLog is the logger of tests that read no log lines.
var discardLog = slog.New(slog.DiscardHandler)

func TestDeliveryLog(t *testing.T) {
	sqldbtest.Each(t, Migrations, func(t *testing.T, db *sqldb.DB) {
		ctx := context.Background()
		l := NewDeliveryLog(db)
		if _, err := l.Get(ctx, "ev-1"); !apperr.Is(err, apperr.NotFound) {
			t.Fatalf("Get of an unknown event: %v, want NotFound", err)
		}
		base := Delivery{EventID: "ev-1", EventType: "verification_code", Topic: "mail.requests", Partition: 2, Offset: 7}
		step := func(status Status, attempts int, lastErr string, at time.Time) {
			t.Helper()
			d := base
			d.Status, d.Attempts, d.LastError, d.Updated = status, attempts, lastErr, at
			if err := l.Record(ctx, d); err != nil {
				t.Fatal(err)
			}
		}
		step(StatusRetrying, 1, "smtp data: 451 try later", d0)
		step(StatusRetrying, 1, "smtp connect: refused", d0.Add(time.Second))
		base.Offset = 9 // re-delivered at another offset after a rebalance
		step(StatusSent, 1, "", d0.Add(2*time.Second))
		// A late failure of a duplicate attempt must not make it look unsent.
		step(StatusRetrying, 1, "smtp data: 451 again", d0.Add(3*time.Second))

		got, err := l.Get(ctx, "ev-1")
		if err != nil {
			t.Fatal(err)
		}
		want := Delivery{
			EventID: "ev-1", EventType: "verification_code", Status: StatusSent, Attempts: 4, LastError: "smtp data: 451 again",
			Topic: "mail.requests", Partition: 2, Offset: 9,
			FirstSeen: d0.Truncate(time.Microsecond), Updated: d0.Add(3 * time.Second).Truncate(time.Microsecond), SentAt: d0.Add(2 * time.Second).Truncate(time.Microsecond),
		}
		if got != want {
			t.Errorf("Get =\n%+v, want\n%+v", got, want)
		}

		// A poison record: dead-lettered without an SMTP attempt, type unknown.
		if err := l.Record(ctx, Delivery{EventID: "kafka:mail.requests/0/3", Status: StatusDeadLettered, LastError: "poison message: not JSON",
			Topic: "mail.requests", Offset: 3, Updated: d0}); err != nil {
			t.Fatal(err)
		}
		if got, err := l.Get(ctx, "kafka:mail.requests/0/3"); err != nil || got.Status != StatusDeadLettered || got.Attempts != 0 || !got.SentAt.IsZero() {
			t.Errorf("poison entry = %+v, %v", got, err)
		}

		sent, err := l.Sent(ctx, []string{"ev-1", "kafka:mail.requests/0/3", "ev-unknown"})
		if err != nil {
			t.Fatal(err)
		}
		if ids := slices.Collect(maps.Keys(sent)); !slices.Equal(ids, []string{"ev-1"}) {
			t.Errorf("Sent = %v, want only ev-1", ids)
		}
		if sent, err := l.Sent(ctx, nil); err != nil || len(sent) != 0 {
			t.Errorf("Sent(nil) = %v, %v", sent, err)
		}

		// Retention goes by the last update.
		n, err := l.DeleteBefore(ctx, d0.Add(time.Second))
		if err != nil || n != 1 {
			t.Fatalf("DeleteBefore = %d, %v; want the poison entry only", n, err)
		}
		if _, err := l.Get(ctx, "ev-1"); err != nil {
			t.Errorf("ev-1 after DeleteBefore: %v", err)
		}
	})
}

func TestDeliveryLogSentLooksUpManyAtOnce(t *testing.T) {
	sqldbtest.Each(t, Migrations, func(t *testing.T, db *sqldb.DB) {
		ctx := context.Background()
		l := NewDeliveryLog(db)
		var ids []string
		for i := range 500 {
			id := "ev-" + time.Duration(i).String()
			ids = append(ids, id)
			status := StatusRetrying
			if i%2 == 0 {
				status = StatusSent
			}
			if err := l.Record(ctx, Delivery{EventID: id, Status: status, Attempts: 1, Topic: "t", Updated: d0}); err != nil {
				t.Fatal(err)
			}
		}
		sent, err := l.Sent(ctx, ids)
		if err != nil || len(sent) != 250 {
			t.Fatalf("Sent = %d ids, %v; want 250", len(sent), err)
		}
	})
}

func TestOpenDeliveryLog(t *testing.T) {
	ctx := context.Background()
	// No URL: an in-memory database, migrated and usable.
	l, err := OpenDeliveryLog(ctx, "", discardLog)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if err := l.Record(ctx, Delivery{EventID: "e", Status: StatusSent, Attempts: 1, Topic: "t", Updated: d0}); err != nil {
		t.Fatal(err)
	}
	if d, err := l.Get(ctx, "e"); err != nil || d.Status != StatusSent {
		t.Errorf("Get = %+v, %v", d, err)
	}
	// A file, in a folder made for it, survives a reopen.
	path := "sqlite:" + t.TempDir() + "/data/mailer.db" // the folder is created
	for range 2 {
		l, err := OpenDeliveryLog(ctx, path, discardLog)
		if err != nil {
			t.Fatal(err)
		}
		if err := l.Record(ctx, Delivery{EventID: "e", Status: StatusRetrying, Attempts: 1, Topic: "t", Updated: d0}); err != nil {
			t.Fatal(err)
		}
		l.Close()
	}
	l2, err := OpenDeliveryLog(ctx, path, discardLog)
	if err != nil {
		t.Fatal(err)
	}
	defer l2.Close()
	if d, err := l2.Get(ctx, "e"); err != nil || d.Attempts != 2 {
		t.Errorf("after a reopen: %+v, %v; want 2 attempts", d, err)
	}
}

// Records written at once — on SQLite gathered into shared transactions —
// all land, each with its own outcome, including several of one event.
func TestDeliveryLogConcurrentRecords(t *testing.T) {
	sqldbtest.Each(t, Migrations, func(t *testing.T, db *sqldb.DB) {
		ctx := context.Background()
		l := NewDeliveryLog(db)
		const events, perEvent = 40, 3
		var wg sync.WaitGroup
		errs := make(chan error, events*perEvent)
		for i := range events {
			for j := range perEvent {
				wg.Go(func() {
					status := StatusRetrying
					if j == perEvent-1 {
						status = StatusSent
					}
					errs <- l.Record(ctx, Delivery{EventID: fmt.Sprintf("ev-%d", i), EventType: "verification_code", Status: status,
						Attempts: 1, Topic: "t", Offset: int64(i), Updated: d0.Add(time.Duration(j) * time.Second)})
				})
			}
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Fatal(err)
			}
		}
		for i := range events {
			got, err := l.Get(ctx, fmt.Sprintf("ev-%d", i))
			if err != nil {
				t.Fatal(err)
			}
			if got.Status != StatusSent || got.Attempts != perEvent {
				t.Errorf("ev-%d: %s after %d attempts, want sent after %d", i, got.Status, got.Attempts, perEvent)
			}
		}
	})
}

// BenchmarkDeliveryLogSent looks up batches of 250 new event ids, as a
// partition's worker does for every fill, in a log of 20,000 entries on a
// SQLite file; ns/op is per batch.
func BenchmarkDeliveryLogSent(b *testing.B) {
	ctx := context.Background()
	l, err := OpenDeliveryLog(ctx, "sqlite:"+b.TempDir()+"/mailer.db", discardLog)
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	for i := range 20000 {
		if err := l.Record(ctx, Delivery{EventID: fmt.Sprintf("old-%d", i), Status: StatusSent, Attempts: 1, Topic: "t", Updated: d0}); err != nil {
			b.Fatal(err)
		}
	}
	if err := l.flush(ctx); err != nil {
		b.Fatal(err)
	}
	ids := make([]string, 250)
	for b.Loop() {
		for i := range ids {
			ids[i] = fmt.Sprintf("new-%d-%d", b.N, i)
		}
		if _, err := l.Sent(ctx, ids); err != nil {
			b.Fatal(err)
		}
	}
}

// On a SQLite file a sent outcome is durable in the journal at once and
// reaches the table later (writeBehind): until then Sent answers from the
// queue, and Get and Close write it first.
func TestDeliveryLogWritesSentBehindTheJournal(t *testing.T) {
	ctx := context.Background()
	path := t.TempDir() + "/mailer.db"
	l, err := OpenDeliveryLog(ctx, "sqlite:"+path, discardLog)
	if err != nil {
		t.Fatal(err)
	}
	l.behind.linger = time.Hour // nothing but a flush writes
	for _, id := range []string{"ev-1", "ev-2"} {
		if err := l.Record(ctx, Delivery{EventID: id, EventType: "verification_code", Status: StatusSent, Attempts: 1, Topic: "t", Updated: d0}); err != nil {
			t.Fatal(err)
		}
	}
	inTable := func(id string) bool {
		var n int
		if err := l.db.QueryRow("SELECT COUNT(*) FROM deliveries WHERE event_id = $1", id).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n == 1
	}
	if inTable("ev-1") {
		t.Fatal("the row was written at once; want it queued behind the journal")
	}
	sent, err := l.Sent(ctx, []string{"ev-1", "ev-3"})
	if err != nil || !sent["ev-1"] || sent["ev-3"] || len(sent) != 1 {
		t.Fatalf("Sent = %v, %v; want ev-1 alone, from the queue", sent, err)
	}
	if d, err := l.Get(ctx, "ev-1"); err != nil || d.Status != StatusSent || !inTable("ev-2") {
		t.Fatalf("Get = %+v, %v; want the queue written first", d, err)
	}
	if err := l.Record(ctx, Delivery{EventID: "ev-4", Status: StatusSent, Attempts: 1, Topic: "t", Updated: d0}); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	// Its journal is deleted only once the table has every entry.
	if files, _ := filepath.Glob(path + ".sent-*"); len(files) != 0 {
		t.Fatalf("journals left after Close: %v; the queue was not written", files)
	}
	again, err := OpenDeliveryLog(ctx, "sqlite:"+path, discardLog)
	if err != nil {
		t.Fatal(err)
	}
	defer again.Close()
	if d, err := again.Get(ctx, "ev-4"); err != nil || d.Status != StatusSent {
		t.Fatalf("after Close, Get = %+v, %v; want the queued row written", d, err)
	}
}
