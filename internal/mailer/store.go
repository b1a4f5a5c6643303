package mailer

import (
	"context"
	"database/sql"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"kinoteka/internal/apperr"
	"kinoteka/internal/sqldb"
)

//go:embed migrations
var embedded embed.FS

// Migrations is the delivery log's schema for both engines, rooted as
// sqldb.Migrate expects.
var Migrations = func() fs.FS {
	sub, err := fs.Sub(embedded, "migrations")
	if err != nil {
		panic(err)
	}
	return sub
}()

// Status is where an event's mail stands in the delivery log.
type Status string

// The statuses.
const (
	StatusSent         Status = "sent"          // the SMTP server accepted it; never sent again
	StatusRetrying     Status = "retrying"      // the last attempt failed; it will be tried again
	StatusDeadLettered Status = "dead_lettered" // parked in the dead-letter topic; a replay may revive it
	StatusExpired      Status = "expired"       // not sent: the code had expired before it could be mailed
)

// Delivery is what the log knows about one event's mail.
type Delivery struct {
	EventID   string
	EventType string // empty when the record could not be decoded
	Status    Status
	Attempts  int    // SMTP attempts so far, over every delivery of the record
	LastError string // why the last attempt failed, or why it was dead-lettered
	Topic     string // where the record was last read
	Partition int32
	Offset    int64
	FirstSeen time.Time
	Updated   time.Time
	SentAt    time.Time // zero unless sent
}

// DeliveryLog is the mailer's own database: the delivery log, on SQLite or
// PostgreSQL with one set of queries.
type DeliveryLog struct {
	db *sqldb.DB
	// writes serialises writers on SQLite, which has one writer at a time:
	// waiting here is a queue, where SQLite's busy handler would sleep and
	// poll for the lock.
	writes sync.Mutex

	// recordStmt is Record's statement, prepared on first use: preparing
	// it for every mail cost about a tenth of the mailer's CPU.
	prepare    sync.Mutex
	recordStmt *sql.Stmt

	// journal, on a SQLite file, makes a send durable before its log
	// write commits (see sentJournal), and behind then writes it to the
	// log with others (see writeBehind); both nil otherwise.
	journal *sentJournal
	behind  *writeBehind

	// group gathers the Records that arrive on SQLite while one is being
	// written, to write them in one transaction (see recordGrouped).
	group struct {
		mu      sync.Mutex
		pending []*recordReq
		writing bool // a caller is writing; the others wait for it
	}
}

// recordReq is one Record waiting to be written with others.
type recordReq struct {
	args []any
	done chan error    // the outcome, once written
	lead chan struct{} // the writer hands the writing over to this caller

	id      string       // written behind: the event id
	journal *journalFile // and the journal file that holds it
}

// OpenDeliveryLog opens and migrates the delivery log at url; an empty url
// means an in-memory SQLite database. log hears of writes that failed
// after their caller went on (see writeBehind).
func OpenDeliveryLog(ctx context.Context, url string, log *slog.Logger) (*DeliveryLog, error) {
	if url == "" {
		url = "sqlite::memory:"
	}
	if path, ok := strings.CutPrefix(url, "sqlite:"); ok && path != ":memory:" {
		// The default, sqlite:data/mailer.db, should work from any folder
		// the process may write to.
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			return nil, fmt.Errorf("delivery log: %w", err)
		}
	}
	db, err := sqldb.Open(ctx, url)
	if err != nil {
		return nil, fmt.Errorf("delivery log: %w", err)
	}
	if err := db.Migrate(ctx, Migrations); err != nil {
		db.Close()
		return nil, fmt.Errorf("delivery log: %w", err)
	}
	l := NewDeliveryLog(db)
	if path, ok := strings.CutPrefix(url, "sqlite:"); ok && path != ":memory:" {
		if err := l.replayJournals(ctx, path); err != nil {
			db.Close()
			return nil, fmt.Errorf("delivery log: %w", err)
		}
		if l.journal, err = openJournal(path); err != nil {
			db.Close()
			return nil, err
		}
		if l.journal != nil {
			l.behind = newWriteBehind(l, log)
		}
	}
	return l, nil
}

// replayJournals logs as sent what the journals of dead mailers hold, then
// deletes them. Their attempts are not counted again: the log may already
// have had the send.
func (l *DeliveryLog) replayJournals(ctx context.Context, path string) error {
	entries, done, err := orphanedJournals(path)
	if err != nil {
		return err
	}
	batch := make([]*recordReq, len(entries))
	for i, e := range entries {
		at := dbTime(e.At)
		batch[i] = &recordReq{done: make(chan error, 1),
			args: []any{e.EventID, e.EventType, string(StatusSent), 0, "", e.Topic, e.Partition, e.Offset, at, sql.NullTime{Time: at, Valid: true}}}
	}
	if len(batch) > 0 {
		l.writeBatch(ctx, batch)
		for _, r := range batch {
			if err := <-r.done; err != nil {
				return fmt.Errorf("replaying a dead mailer's journal: %w", err)
			}
		}
	}
	done()
	return nil
}

// NewDeliveryLog returns the log on an already migrated database.
func NewDeliveryLog(db *sqldb.DB) *DeliveryLog { return &DeliveryLog{db: db} }

// Close closes the database.
func (l *DeliveryLog) Close() error {
	if l.behind != nil {
		l.behind.close()
	}
	if l.journal != nil {
		l.journal.close()
	}
	l.prepare.Lock()
	if l.recordStmt != nil {
		_ = l.recordStmt.Close()
	}
	l.prepare.Unlock()
	return l.db.Close()
}

// Ping checks that the database answers.
func (l *DeliveryLog) Ping(ctx context.Context) error { return l.db.PingContext(ctx) }

// Get returns the entry of eventID; a NotFound error when there is none.
func (l *DeliveryLog) Get(ctx context.Context, eventID string) (Delivery, error) {
	if err := l.flush(ctx); err != nil {
		return Delivery{}, fmt.Errorf("delivery log: get: %w", err)
	}
	var (
		d      Delivery
		status string
		sentAt sql.NullTime
	)
	err := l.db.QueryRowContext(ctx, `SELECT event_id, event_type, status, attempts, last_error, topic, kafka_partition, kafka_offset,
		first_seen_at, updated_at, sent_at FROM deliveries WHERE event_id = $1`, eventID).
		Scan(&d.EventID, &d.EventType, &status, &d.Attempts, &d.LastError, &d.Topic, &d.Partition, &d.Offset, &d.FirstSeen, &d.Updated, &sentAt)
	if errors.Is(err, sql.ErrNoRows) {
		return Delivery{}, apperr.New(apperr.NotFound, "delivery_not_found", "no delivery is logged for this event")
	}
	if err != nil {
		return Delivery{}, fmt.Errorf("delivery log: get: %w", err)
	}
	d.Status = Status(status)
	d.FirstSeen, d.Updated = d.FirstSeen.UTC(), d.Updated.UTC()
	if sentAt.Valid {
		d.SentAt = sentAt.Time.UTC()
	}
	return d, nil
}

// Sent returns which of ids the log has as sent.
func (l *DeliveryLog) Sent(ctx context.Context, ids []string) (map[string]bool, error) {
	sent := make(map[string]bool)
	if len(ids) == 0 {
		return sent, nil
	}
	// Before the query: a row leaves the queue only once it is written.
	if l.behind != nil {
		l.behind.has(ids, sent)
	}
	// One statement whatever the number of ids, with the ids as one
	// argument: a list of placeholders made SQLite parse and plan a new
	// statement for every batch.
	var (
		rs  *sql.Rows
		err error
	)
	if l.db.Dialect == sqldb.SQLite {
		list, _ := json.Marshal(ids)
		rs, err = l.db.QueryContext(ctx, `SELECT event_id FROM deliveries WHERE status = 'sent' AND event_id IN (SELECT value FROM json_each($1))`, string(list))
	} else {
		rs, err = l.db.QueryContext(ctx, `SELECT event_id FROM deliveries WHERE status = 'sent' AND event_id = ANY($1)`, ids)
	}
	if err != nil {
		return nil, fmt.Errorf("delivery log: look up: %w", err)
	}
	defer rs.Close()
	for rs.Next() {
		var id string
		if err := rs.Scan(&id); err != nil {
			return nil, fmt.Errorf("delivery log: look up: %w", err)
		}
		sent[id] = true
	}
	return sent, rs.Err()
}

// Record adds one outcome to the log: d.Attempts is the number of SMTP
// attempts this outcome adds (0 for a record dead-lettered unsent, 1 for an
// attempt), d.Updated its time. A sent entry stays sent, so a late outcome
// of a duplicate cannot make it look unsent.
func (l *DeliveryLog) Record(ctx context.Context, d Delivery) error { return l.record(ctx, d, nil) }

// record is Record, calling durable (when set) once the outcome survives
// the process: a sent one is in the journal (and is then written behind,
// see writeBehind), or else the write committed.
func (l *DeliveryLog) record(ctx context.Context, d Delivery, durable func()) error {
	at := dbTime(d.Updated)
	var sentAt sql.NullTime
	if d.Status == StatusSent {
		sentAt = sql.NullTime{Time: at, Valid: true}
	}
	errText := d.LastError
	if len(errText) > 1000 {
		errText = errText[:1000]
	}
	args := []any{d.EventID, d.EventType, string(d.Status), d.Attempts, errText, d.Topic, d.Partition, d.Offset, at, sentAt}
	if l.behind != nil && d.Status == StatusSent {
		// If the journal cannot take it, the write below still makes it
		// durable, a moment later.
		if f, err := l.journal.append(d); err == nil {
			if durable != nil {
				durable()
			}
			l.behind.add(&recordReq{args: args, done: make(chan error, 1), id: d.EventID, journal: f})
			return nil
		}
	}
	if durable != nil {
		defer durable()
	}
	var err error
	if l.db.Dialect == sqldb.SQLite {
		err = l.recordGrouped(ctx, args)
	} else {
		var stmt *sql.Stmt
		if stmt, err = l.recordStatement(ctx); err == nil {
			_, err = stmt.ExecContext(ctx, args...)
		}
	}
	if err != nil {
		return fmt.Errorf("delivery log: record %s: %w", d.Status, err)
	}
	return nil
}

// flush returns once the sent outcomes written behind so far are in the
// log (see writeBehind).
func (l *DeliveryLog) flush(ctx context.Context) error {
	if l.behind == nil {
		return nil
	}
	return l.behind.flush(ctx)
}

// recordGrouped writes one Record on SQLite, together with those that
// arrive while another is being written: a commit writes every page it
// touched to the WAL, so one transaction for several mails costs little
// more than one for a single mail, and the writes of a busy mailer no
// longer queue behind each other. The caller that finds no write going on
// writes everything pending, then hands over to the oldest caller that
// arrived meanwhile, so nobody writes for others for long.
func (l *DeliveryLog) recordGrouped(ctx context.Context, args []any) error {
	req := &recordReq{args: args, done: make(chan error, 1), lead: make(chan struct{}, 1)}
	g := &l.group
	g.mu.Lock()
	g.pending = append(g.pending, req)
	writer := !g.writing
	g.writing = true
	g.mu.Unlock()
	if !writer {
		// Whoever writes also writes this one, whatever ctx says.
		select {
		case err := <-req.done:
			return err
		case <-req.lead:
		}
	}
	g.mu.Lock()
	batch := g.pending
	g.pending = nil
	g.mu.Unlock()
	l.writeBatch(ctx, batch)
	g.mu.Lock()
	if len(g.pending) > 0 {
		g.pending[0].lead <- struct{}{}
	} else {
		g.writing = false
	}
	g.mu.Unlock()
	return <-req.done
}

// writeBatch writes the batch in one transaction and tells each request
// its outcome; if the transaction fails, each is tried alone, so that one
// bad entry does not cost the others theirs.
func (l *DeliveryLog) writeBatch(ctx context.Context, batch []*recordReq) {
	l.writes.Lock()
	defer l.writes.Unlock()
	stmt, err := l.recordStatement(ctx)
	if err != nil {
		for _, r := range batch {
			r.done <- err
		}
		return
	}
	if len(batch) > 1 {
		if err := l.db.InTx(ctx, func(tx *sql.Tx) error {
			txStmt := tx.StmtContext(ctx, stmt)
			for _, r := range batch {
				if _, err := txStmt.ExecContext(ctx, r.args...); err != nil {
					return err
				}
			}
			return nil
		}); err == nil {
			for _, r := range batch {
				r.done <- nil
			}
			return
		}
	}
	for _, r := range batch {
		_, err := stmt.ExecContext(ctx, r.args...)
		r.done <- err
	}
}

// recordSQL adds one outcome to an event's entry; see Record.
const recordSQL = `INSERT INTO deliveries
		(event_id, event_type, status, attempts, last_error, topic, kafka_partition, kafka_offset, first_seen_at, updated_at, sent_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9, $10)
		ON CONFLICT (event_id) DO UPDATE SET
			event_type      = CASE WHEN excluded.event_type = '' THEN deliveries.event_type ELSE excluded.event_type END,
			status          = CASE WHEN deliveries.status = 'sent' THEN deliveries.status ELSE excluded.status END,
			attempts        = deliveries.attempts + excluded.attempts,
			last_error      = CASE WHEN excluded.last_error = '' THEN deliveries.last_error ELSE excluded.last_error END,
			topic           = excluded.topic,
			kafka_partition = excluded.kafka_partition,
			kafka_offset    = excluded.kafka_offset,
			updated_at      = excluded.updated_at,
			sent_at         = COALESCE(deliveries.sent_at, excluded.sent_at)`

func (l *DeliveryLog) recordStatement(ctx context.Context) (*sql.Stmt, error) {
	l.prepare.Lock()
	defer l.prepare.Unlock()
	if l.recordStmt == nil {
		stmt, err := l.db.PrepareContext(ctx, recordSQL)
		if err != nil {
			return nil, err
		}
		l.recordStmt = stmt
	}
	return l.recordStmt, nil
}

// DeleteBefore deletes entries last updated before cutoff, in chunks so that
// no statement holds the database for long.
func (l *DeliveryLog) DeleteBefore(ctx context.Context, cutoff time.Time) (int64, error) {
	const chunk = 1000
	var total int64
	for {
		res, err := l.db.ExecContext(ctx, `DELETE FROM deliveries WHERE event_id IN (
			SELECT event_id FROM deliveries WHERE updated_at < $1 ORDER BY updated_at LIMIT $2)`, dbTime(cutoff), chunk)
		if err != nil {
			return total, fmt.Errorf("delivery log: delete old entries: %w", err)
		}
		n, err := res.RowsAffected()
		if err != nil {
			return total, err
		}
		total += n
		if n < chunk {
			return total, nil
		}
	}
}

// dbTime is how times go into the database: UTC, at PostgreSQL's
// microsecond precision, so a value reads back equal on both engines.
func dbTime(t time.Time) time.Time { return t.UTC().Truncate(time.Microsecond) }
