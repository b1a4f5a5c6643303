//go:build unix

package mailer

import (
	"bufio"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"
)

// sentJournal makes "this event was sent" durable, against the mailer's
// death, a moment after the SMTP server accepted the mail: one append to a
// file of the process's own next to the SQLite delivery log, where the
// log's own write is a SQLite transaction, many times slower. A send of a
// partition holds the partition's final turn (see finalTurn) until its
// outcome is durable; with the journal that is a write(2), and the log's
// rows follow behind, many sends' in one transaction (see writeBehind).
//
// An entry is obsolete once the log has it. A file is replaced when it
// passes journalRotate bytes and deleted once the log has its last entry;
// the current one is deleted at Close. Each file is locked (flock) while
// its process lives, so that a mailer opening the log replays into it the
// files of dead processes only, then deletes them.
type sentJournal struct {
	prefix string // the database path + ".sent-"

	mu  sync.Mutex
	cur *journalFile
}

// journalFile is one file of a journal.
type journalFile struct {
	f       *os.File
	size    int64
	pending int  // entries appended whose log write has not returned
	retired bool // replaced: deleted once pending is 0
}

// journalEntry is one line of a journal: what the log needs of a send.
type journalEntry struct {
	EventID   string    `json:"id"`
	EventType string    `json:"type"`
	Topic     string    `json:"topic"`
	Partition int32     `json:"partition"`
	Offset    int64     `json:"offset"`
	At        time.Time `json:"at"`
}

const journalRotate = 1 << 20

func openJournal(dbPath string) (*sentJournal, error) {
	j := &sentJournal{prefix: dbPath + ".sent-"}
	f, err := j.create()
	if err != nil {
		return nil, err
	}
	j.cur = f
	return j, nil
}

func (j *sentJournal) create() (*journalFile, error) {
	var b [8]byte
	_, _ = rand.Read(b[:])
	f, err := os.OpenFile(j.prefix+hex.EncodeToString(b[:]), os.O_CREATE|os.O_EXCL|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("delivery log journal: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		_ = f.Close()
		_ = os.Remove(f.Name())
		return nil, fmt.Errorf("delivery log journal: lock: %w", err)
	}
	return &journalFile{f: f}, nil
}

// append writes d's entry; the caller passes the file to written once the
// log write has returned, whatever its outcome.
func (j *sentJournal) append(d Delivery) (*journalFile, error) {
	line, err := json.Marshal(journalEntry{d.EventID, d.EventType, d.Topic, d.Partition, d.Offset, d.Updated})
	if err != nil {
		return nil, err
	}
	line = append(line, '\n')
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.cur.size >= journalRotate {
		if next, err := j.create(); err == nil {
			j.cur.retired = true
			if j.cur.pending == 0 {
				j.cur.remove()
			}
			j.cur = next
		}
	}
	f := j.cur
	if _, err := f.f.Write(line); err != nil {
		return nil, err
	}
	f.size += int64(len(line))
	f.pending++
	return f, nil
}

// written says an entry of f went through its log write.
func (j *sentJournal) written(f *journalFile) {
	j.mu.Lock()
	defer j.mu.Unlock()
	f.pending--
	if f.retired && f.pending == 0 {
		f.remove()
	}
}

// remove deletes the file before closing (so unlocking) it, so that no
// other process replays entries the log already has.
func (f *journalFile) remove() {
	_ = os.Remove(f.f.Name())
	_ = f.f.Close()
}

// close deletes the current file if the log has all its entries, as it
// has once every Record has returned.
func (j *sentJournal) close() {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.cur.pending == 0 {
		j.cur.remove()
	} else {
		_ = j.cur.f.Close()
	}
}

// orphanedJournals reads the journals next to dbPath that no live process
// holds, and returns their entries and a function that deletes them, to
// call once the log has the entries.
func orphanedJournals(dbPath string) ([]journalEntry, func(), error) {
	paths, err := filepath.Glob(dbPath + ".sent-*")
	if err != nil {
		return nil, nil, err
	}
	var (
		entries []journalEntry
		held    []*os.File
	)
	done := func() {
		for _, f := range held {
			_ = os.Remove(f.Name())
			_ = f.Close()
		}
	}
	for _, p := range paths {
		f, err := os.Open(p)
		if err != nil {
			continue // deleted meanwhile by its owner
		}
		if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
			_ = f.Close() // its process is alive
			continue
		}
		held = append(held, f)
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			var e journalEntry
			// A line cut short by the crash is skipped: its send had not
			// become durable, and the record was not committed either.
			if json.Unmarshal(sc.Bytes(), &e) == nil && e.EventID != "" {
				entries = append(entries, e)
			}
		}
		if err := sc.Err(); err != nil {
			for _, f := range held {
				_ = f.Close()
			}
			return nil, nil, errors.Join(fmt.Errorf("delivery log journal %s", p), err)
		}
	}
	return entries, done, nil
}
