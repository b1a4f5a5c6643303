//go:build unix

package mailer

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// What a killed mailer's journal holds is logged as sent by the next
// mailer to open the log, and the journal is deleted; the journal of a
// mailer still running is left alone.
func TestJournalOfADeadMailerIsReplayed(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "mailer.db")
	url := "sqlite:" + path

	live, err := OpenDeliveryLog(ctx, url, discardLog)
	if err != nil {
		t.Fatal(err)
	}
	defer live.Close()
	// A journal entry whose log write never happened, as when the process
	// dies between the two; written by hand into a second, unlocked file,
	// as a dead process leaves it.
	dead := path + ".sent-dead"
	line := `{"id":"ev-lost","type":"verification_code","topic":"mail.requests","partition":2,"offset":7,"at":"2026-11-27T10:00:00Z"}` + "\n"
	if err := os.WriteFile(dead, []byte(line+`{"id":"ev-cut`), 0o600); err != nil {
		t.Fatal(err)
	}
	// And a journal as this code leaves it when its process dies: one
	// entry, then the zeros of the file it was written into.
	killed, err := openJournal(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := killed.append(Delivery{EventID: "ev-killed", EventType: "verification_code", Status: StatusSent, Topic: "mail.requests", Partition: 1, Offset: 3, Updated: d0}); err != nil {
		t.Fatal(err)
	}
	killedPath := killed.cur.f.Name()
	killed.cur.close() // what the process's death does: unmapped, unlocked, not deleted
	// And one the live mailer wrote (and also logged).
	if err := live.Record(ctx, Delivery{EventID: "ev-live", EventType: "verification_code", Status: StatusSent, Attempts: 1, Topic: "mail.requests", Updated: d0}); err != nil {
		t.Fatal(err)
	}

	next, err := OpenDeliveryLog(ctx, url, discardLog)
	if err != nil {
		t.Fatal(err)
	}
	got, err := next.Get(ctx, "ev-lost")
	if err != nil || got.Status != StatusSent || got.Partition != 2 || got.Offset != 7 || got.SentAt.IsZero() {
		t.Errorf("replayed entry = %+v, %v; want sent at partition 2 offset 7", got, err)
	}
	got, err = next.Get(ctx, "ev-killed")
	if err != nil || got.Status != StatusSent || got.Partition != 1 || got.Offset != 3 {
		t.Errorf("replayed entry of the killed journal = %+v, %v; want sent at partition 1 offset 3", got, err)
	}
	for _, p := range []string{dead, killedPath} {
		if _, err := os.Stat(p); !os.IsNotExist(err) {
			t.Errorf("the dead mailer's journal %s is still there: %v", p, err)
		}
	}
	if files, _ := filepath.Glob(path + ".sent-*"); len(files) != 2 {
		t.Errorf("journals %v; want the live mailer's and the new one's", files)
	}
	if err := next.Close(); err != nil {
		t.Fatal(err)
	}
	if err := live.Close(); err != nil {
		t.Fatal(err)
	}
	// Closed after every write returned, a mailer leaves no journal.
	if files, _ := filepath.Glob(path + ".sent-*"); len(files) != 0 {
		t.Errorf("journals left after Close: %v", files)
	}
}

// A full journal file is replaced by a new one, and deleted once the log
// has every entry of it; what it held is replayed whole, up to its last
// entry and no further.
func TestJournalRotatesWhenFull(t *testing.T) {
	path := filepath.Join(t.TempDir(), "mailer.db")
	j, err := openJournal(path)
	if err != nil {
		t.Fatal(err)
	}
	first := j.cur
	var inFirst int
	for i := 0; j.cur == first; i++ {
		f, err := j.append(Delivery{EventID: fmt.Sprintf("ev-%06d", i), EventType: "verification_code", Status: StatusSent, Topic: "mail.requests", Offset: int64(i), Updated: d0})
		if err != nil {
			t.Fatal(err)
		}
		if f == first {
			inFirst++
		}
	}
	if inFirst < 1000 {
		t.Fatalf("only %d entries went into the first file", inFirst)
	}
	firstPath := first.f.Name()
	// The process dies with both files still there: both are replayed.
	j.cur.close()
	first.close()
	entries, done, err := orphanedJournals(path)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, e := range entries {
		seen[e.EventID] = true
	}
	if len(entries) != inFirst+1 || len(seen) != inFirst+1 || !seen[fmt.Sprintf("ev-%06d", inFirst)] {
		t.Fatalf("replayed %d entries (%d ids); want the %d of the full file and the 1 of the new one", len(entries), len(seen), inFirst)
	}
	done()
	if _, err := os.Stat(firstPath); !os.IsNotExist(err) {
		t.Errorf("replayed journal %s is still there: %v", firstPath, err)
	}

	// In a living process the full file goes once its entries are logged.
	j, err = openJournal(path)
	if err != nil {
		t.Fatal(err)
	}
	defer j.close()
	first = j.cur
	var pending []*journalFile
	for i := 0; j.cur == first; i++ {
		f, err := j.append(Delivery{EventID: fmt.Sprintf("ev-%06d", i), Status: StatusSent, Updated: d0})
		if err != nil {
			t.Fatal(err)
		}
		pending = append(pending, f)
	}
	for _, f := range pending[:len(pending)-1] {
		j.written(f)
	}
	if _, err := os.Stat(first.f.Name()); !os.IsNotExist(err) {
		t.Errorf("the full journal file is still there with every entry logged: %v", err)
	}
}
