// Package catcher is a small real SMTP server that keeps the mail it receives
// in memory and shows it on a web page and through the subset of Mailpit's
// JSON API that Kinoteka's tests use, so one end-to-end test runs unchanged
// against this catcher (embedded mode) and against Mailpit (docker-compose).
package catcher

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/mail"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emersion/go-smtp"
)

// DefaultMaxMessages bounds the inbox when Config.MaxMessages is not set.
const DefaultMaxMessages = 1000

// maxMessageBytes is the largest message accepted (SIZE is advertised).
const maxMessageBytes = 10 << 20

// Stage names the SMTP command a Fault is asked about.
type Stage string

// The stages at which a Fault can refuse a message.
const (
	StageMail Stage = "MAIL"
	StageRcpt Stage = "RCPT"
	StageData Stage = "DATA" // after the message was read, before it is stored
)

// Config configures a Catcher. The zero value is a plain SMTP server that
// accepts everything.
type Config struct {
	TLS         *tls.Config       // optional: offer STARTTLS with this certificate
	RequireTLS  bool              // refuse MAIL before STARTTLS (530, like Mailpit)
	Users       map[string]string // optional AUTH PLAIN credentials; when set AUTH is required
	MaxMessages int               // inbox bound, oldest dropped first; default DefaultMaxMessages

	// Fault, when set, is asked before MAIL, RCPT and the end of DATA are
	// accepted; a non-nil error is answered instead (an *smtp.SMTPError keeps
	// its code, anything else becomes 451). It plays the part of Mailpit's
	// chaos triggers in tests.
	Fault func(stage Stage) error
	// RecipientFault, when set, is asked about each RCPT TO address after
	// Fault, and answers the same way: a chaos trigger for one mailbox
	// (say, 550 for a user that does not exist) among good ones.
	RecipientFault func(rcpt string) error

	// Received, when set, hears about every message as it is stored,
	// before the client is answered 250. Tests and benchmarks count and
	// time deliveries with it even beyond MaxMessages.
	Received func(m Message)
}

// Message is one received mail.
type Message struct {
	ID          string // the catcher's id, used by the API
	MessageID   string // the Message-ID header without angle brackets
	From        mail.Address
	To          []mail.Address
	Cc          []mail.Address
	Bcc         []mail.Address
	ReplyTo     []mail.Address
	ReturnPath  string
	Subject     string // decoded (RFC 2047)
	Date        time.Time
	Created     time.Time // when the catcher received it
	Text        string    // decoded text/plain body
	HTML        string    // decoded text/html body
	Snippet     string
	Attachments int
	Size        int
	Username    string   // the AUTH user, if any
	MailFrom    string   // SMTP envelope sender
	RcptTo      []string // SMTP envelope recipients
	Raw         []byte
	Read        bool
}

// Catcher receives mail over SMTP and serves it over HTTP.
type Catcher struct {
	cfg   Config
	log   *slog.Logger
	now   func() time.Time
	ready atomic.Bool

	mu   sync.Mutex
	msgs []*Message // oldest first
}

// New returns a Catcher; nothing listens until ServeSMTP.
func New(cfg Config, log *slog.Logger) *Catcher {
	if cfg.MaxMessages <= 0 {
		cfg.MaxMessages = DefaultMaxMessages
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Catcher{cfg: cfg, log: log, now: time.Now}
}

// ServeSMTP accepts SMTP connections on ln until ctx is done, then closes
// the listener and every open connection.
func (c *Catcher) ServeSMTP(ctx context.Context, ln net.Listener) error {
	srv := smtp.NewServer(backend{c})
	srv.Domain = "kinoteka-catcher"
	srv.TLSConfig = c.cfg.TLS
	// With a certificate, AUTH is only offered after STARTTLS (as Mailpit
	// does); without one, a local test catcher has no other choice.
	srv.AllowInsecureAuth = c.cfg.TLS == nil
	srv.MaxMessageBytes = maxMessageBytes
	srv.MaxRecipients = 100
	srv.ReadTimeout = time.Minute
	srv.WriteTimeout = time.Minute
	srv.ErrorLog = slogPrinter{c.log}

	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	c.ready.Store(true)
	defer c.ready.Store(false)
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	// Close rather than Shutdown: a client such as the mailer keeps an idle
	// connection open, which Shutdown would wait for forever (and go-smtp's
	// Close does nothing once Shutdown has begun). A client cut off in the
	// middle of a message gets no 250 and sends it again.
	_ = srv.Close()
	if err := <-errc; err != nil && !errors.Is(err, net.ErrClosed) {
		return err
	}
	return nil
}

// Messages returns a snapshot of the inbox, oldest first.
func (c *Catcher) Messages() []Message {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]Message, len(c.msgs))
	for i, m := range c.msgs {
		out[i] = *m
	}
	return out
}

// store parses and keeps a received message, dropping the oldest beyond the bound.
func (c *Catcher) store(raw []byte, mailFrom string, rcptTo []string, username string) Message {
	p := parseMessage(raw)
	m := &Message{
		ID:          newID(),
		MessageID:   p.MessageID,
		From:        p.From,
		To:          p.To,
		Cc:          p.Cc,
		Bcc:         p.Bcc,
		ReplyTo:     p.ReplyTo,
		ReturnPath:  p.ReturnPath,
		Subject:     p.Subject,
		Date:        p.Date,
		Created:     c.now().UTC().Truncate(time.Millisecond),
		Text:        p.Text,
		HTML:        p.HTML,
		Snippet:     snippet(p.Text, p.HTML),
		Attachments: p.Attachments,
		Size:        len(raw),
		Username:    username,
		MailFrom:    mailFrom,
		RcptTo:      slices.Clone(rcptTo),
		Raw:         raw,
	}
	if m.ReturnPath == "" {
		m.ReturnPath = mailFrom
	}
	c.mu.Lock()
	c.msgs = append(c.msgs, m)
	if extra := len(c.msgs) - c.cfg.MaxMessages; extra > 0 {
		clear(c.msgs[:extra])
		c.msgs = slices.Delete(c.msgs, 0, extra)
	}
	c.mu.Unlock()
	return *m
}

// newest returns copies of the messages matching keep, newest first.
func (c *Catcher) newest(keep func(*Message) bool) (matched []Message, total, unread int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i := len(c.msgs) - 1; i >= 0; i-- {
		m := c.msgs[i]
		if !m.Read {
			unread++
		}
		if keep == nil || keep(m) {
			matched = append(matched, *m)
		}
	}
	return matched, len(c.msgs), unread
}

// open returns a copy of the message with id ("latest" for the newest) and
// marks it read, as Mailpit does.
func (c *Catcher) open(id string) (Message, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i := len(c.msgs) - 1; i >= 0; i-- {
		if m := c.msgs[i]; m.ID == id || id == "latest" {
			m.Read = true
			return *m, true
		}
	}
	return Message{}, false
}

// remove deletes the messages with the given ids, or all of them when ids is empty.
func (c *Catcher) remove(ids []string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(ids) == 0 {
		clear(c.msgs)
		c.msgs = c.msgs[:0]
		return
	}
	c.msgs = slices.DeleteFunc(c.msgs, func(m *Message) bool { return slices.Contains(ids, m.ID) })
}

// newID returns a 22-character random id, the same length as Mailpit's.
func newID() string {
	const alphabet = "23456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
	var b [22]byte
	_, _ = rand.Read(b[:])
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return string(b[:])
}

// slogPrinter adapts slog to go-smtp's logger.
type slogPrinter struct{ log *slog.Logger }

func (p slogPrinter) Printf(format string, v ...any) {
	p.log.Warn("smtp server", "msg", fmt.Sprintf(format, v...))
}

func (p slogPrinter) Println(v ...any) { p.log.Warn("smtp server", "msg", fmt.Sprint(v...)) }
