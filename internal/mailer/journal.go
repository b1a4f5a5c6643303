//go:build unix

package mailer

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
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
// outcome is durable; with the journal that is a copy into the file's
// pages, mapped shared (no system call: the kernel's page cache has the
// bytes as it would after a write(2), and keeps them when the process
// dies), and the log's rows follow behind, many sends' in one transaction
// (see writeBehind). Like a write(2) without fsync, it does not outlive
// the machine: neither did the mail server's answer in our memory.
//
// A file is journalRotate bytes of zeros when created, written (not a
// hole), so that its blocks are allocated: a full disk fails the create,
// which the caller survives, not a store into the mapping, which it would
// not (SIGBUS). Entries are lines from the start; the first zero byte
// ends them.
//
// An entry is obsolete once the log has it. A file is replaced when the
// next entry does not fit, and deleted once the log has its last entry;
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
	mem     []byte // the file, mapped shared
	size    int    // bytes of entries at the start of mem
	pending int    // entries appended whose log write has not returned
	retired bool   // replaced: deleted once pending is 0
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
	f, err := os.OpenFile(j.prefix+hex.EncodeToString(b[:]), os.O_CREATE|os.O_EXCL|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("delivery log journal: %w", err)
	}
	fail := func(step string, err error) (*journalFile, error) {
		_ = os.Remove(f.Name())
		_ = f.Close()
		return nil, fmt.Errorf("delivery log journal: %s: %w", step, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		return fail("lock", err)
	}
	if _, err := f.Write(make([]byte, journalRotate)); err != nil {
		return fail("allocate", err)
	}
	mem, err := syscall.Mmap(int(f.Fd()), 0, journalRotate, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_SHARED)
	if err != nil {
		return fail("map", err)
	}
	return &journalFile{f: f, mem: mem}, nil
}

// append writes d's entry; the caller passes the file to written once the
// log write has returned, whatever its outcome.
func (j *sentJournal) append(d Delivery) (*journalFile, error) {
	line, err := json.Marshal(journalEntry{d.EventID, d.EventType, d.Topic, d.Partition, d.Offset, d.Updated})
	if err != nil {
		return nil, err
	}
	line = append(line, '\n')
	if len(line) > journalRotate {
		return nil, errors.New("delivery log journal: entry too long")
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.cur.size+len(line) > len(j.cur.mem) {
		next, err := j.create()
		if err != nil {
			return nil, err
		}
		j.cur.retired = true
		if j.cur.pending == 0 {
			j.cur.remove()
		}
		j.cur = next
	}
	f := j.cur
	f.size += copy(f.mem[f.size:], line)
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
	f.close()
}

// close unmaps and closes the file, which unlocks it: the mapping holds
// the file open, and its lock, until it is gone.
func (f *journalFile) close() {
	_ = syscall.Munmap(f.mem)
	f.mem = nil
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
		j.cur.close()
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
		data, err := io.ReadAll(f)
		if err != nil {
			for _, f := range held {
				_ = f.Close()
			}
			return nil, nil, fmt.Errorf("delivery log journal %s: %w", p, err)
		}
		if end := bytes.IndexByte(data, 0); end >= 0 {
			data = data[:end] // the zeros the entries had not reached
		}
		for line := range bytes.Lines(data) {
			var e journalEntry
			// A line cut short by the crash is skipped: its send had not
			// become durable, and the record was not committed either.
			if json.Unmarshal(line, &e) == nil && e.EventID != "" {
				entries = append(entries, e)
			}
		}
	}
	return entries, done, nil
}
