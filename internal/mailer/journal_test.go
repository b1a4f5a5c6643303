//go:build unix

package mailer

import (
	"context"
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
	if _, err := os.Stat(dead); !os.IsNotExist(err) {
		t.Errorf("the dead mailer's journal is still there: %v", err)
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
