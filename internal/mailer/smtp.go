package mailer

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"sync"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// Sender delivers one rendered message. A nil error means the server
// accepted it (250 after DATA); a *SendError says why not.
type Sender interface {
	Send(ctx context.Context, m Message) error
}

// Steps of an SMTP delivery, as reported in SendError.Step.
const (
	StepConnect  = "connect"  // dial, implicit TLS handshake, greeting
	StepStartTLS = "starttls" // STARTTLS offered, negotiated and verified
	StepAuth     = "auth"
	StepMail     = "mail"
	StepRcpt     = "rcpt"
	StepData     = "data"
)

// SendError is a failed delivery: the step, and the SMTP reply code when the
// server gave one (0 for network and TLS failures).
type SendError struct {
	Step string
	Code int
	Err  error
}

func (e *SendError) Error() string { return fmt.Sprintf("smtp %s: %v", e.Step, e.Err) }

func (e *SendError) Unwrap() error { return e.Err }

// Permanent reports a 5yz reply: the same command will fail the same way
// (RFC 5321 §4.2.1). A wrong password is permanent, for example.
func (e *SendError) Permanent() bool { return e.Code >= 500 && e.Code <= 599 }

// Rejected reports that the server refused this message (5yz at MAIL, RCPT
// or DATA), as opposed to refusing us: no TLS, bad credentials, or 530
// (authentication or STARTTLS required) are faults of the configuration that
// every message would meet.
func (e *SendError) Rejected() bool {
	return e.Permanent() && e.Code != 530 && (e.Step == StepMail || e.Step == StepRcpt || e.Step == StepData)
}

// IsPermanent reports whether err is a SendError with a 5yz reply.
func IsPermanent(err error) bool {
	var se *SendError
	return errors.As(err, &se) && se.Permanent()
}

// isRejected reports whether err is a permanent refusal of the message itself.
func isRejected(err error) bool {
	var se *SendError
	return errors.As(err, &se) && se.Rejected()
}

func stepError(step string, err error) *SendError {
	se := &SendError{Step: step, Err: err}
	var smtpErr *smtp.SMTPError
	if errors.As(err, &smtpErr) {
		se.Code = smtpErr.Code
	}
	return se
}

// SMTPSender sends over a pool of up to SMTPConfig.Connections SMTP
// connections, used by that many Sends at once. A connection is secured
// and authenticated once, then reused for the next messages: a new message
// goes straight to MAIL FROM after one that was accepted, and RSET first
// (which also proves the server still listens) after an idle spell or a
// refusal. A connection is dropped after a network error, a 4yz reply
// (421 means the server is closing) or a cancelled send, and closed with
// QUIT after MessagesPerConnection messages, a successor opening in the
// background (see replace).
type SMTPSender struct {
	cfg       SMTPConfig
	tls       *tls.Config
	localName string
	log       *slog.Logger
	slots     chan struct{} // one per connection that may be in use

	off extensionsOff // tests: extensions to ignore when offered

	mu     sync.Mutex
	idle   []*smtpConn // most recently used last
	closed bool
}

// smtpConn is one open, authenticated connection.
type smtpConn struct {
	client   *wire
	raw      net.Conn // its TCP connection, closed to abandon a send
	sent     int      // messages accepted over it
	clean    bool     // the last transaction ended with 250: no RSET needed
	lastUsed time.Time
}

// idleCheck: a connection idle longer than this is checked with RSET
// before reuse; idleClose: one idle longer than this is closed rather than
// reused, before the server's own idle timer (often a minute or more) can
// cut it in the middle of a message.
const (
	idleCheck = time.Second
	idleClose = 30 * time.Second
)

// NewSMTPSender checks cfg (build one from DefaultConfig().SMTP) and
// prepares TLS; it does not connect yet, so a mail server that is down at
// start-up delays mail rather than the service.
func NewSMTPSender(cfg SMTPConfig, log *slog.Logger) (*SMTPSender, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	host, _, _ := net.SplitHostPort(cfg.Addr)
	// The session cache lets a connection that replaces a recycled one
	// resume the TLS session instead of a full handshake with certificate
	// verification (about a tenth of the CPU of a mail at 100 mails per
	// connection).
	tlsCfg := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: cfg.ServerName, ClientSessionCache: tls.NewLRUClientSessionCache(0)}
	if tlsCfg.ServerName == "" {
		tlsCfg.ServerName = host
	}
	if cfg.CAFile != "" {
		pem, err := os.ReadFile(cfg.CAFile)
		if err != nil {
			return nil, fmt.Errorf("SMTP_CA_FILE: %w", err)
		}
		roots, err := x509.SystemCertPool()
		if err != nil {
			roots = x509.NewCertPool()
		}
		if !roots.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("SMTP_CA_FILE: %s holds no PEM certificate", cfg.CAFile)
		}
		tlsCfg.RootCAs = roots
	}
	localName, err := os.Hostname()
	if err != nil || localName == "" {
		localName = "localhost"
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &SMTPSender{cfg: cfg, tls: tlsCfg, localName: localName, log: log, slots: make(chan struct{}, cfg.Connections)}, nil
}

// Send delivers m. It waits for a free connection slot while ctx lasts, and
// gives up a send in progress when ctx ends, by closing the connection.
func (s *SMTPSender) Send(ctx context.Context, m Message) error {
	select {
	case s.slots <- struct{}{}:
	case <-ctx.Done():
		return stepError(StepConnect, ctx.Err())
	}
	handedOver := false // the slot went to replace
	defer func() {
		if !handedOver {
			<-s.slots
		}
	}()
	if err := ctx.Err(); err != nil {
		return stepError(StepConnect, err)
	}

	c := s.take()
	reused := c != nil
	if reused && (!c.clean || time.Since(c.lastUsed) > idleCheck) {
		// RSET both clears any earlier transaction and proves that the
		// server has not dropped the idle connection meanwhile.
		if err := c.client.reset(); err != nil {
			s.log.Debug("smtp connection not reusable, reconnecting", "err", err)
			c.drop()
			c, reused = nil, false
		}
	}
	for {
		if c == nil {
			var err error
			if c, err = s.connect(ctx); err != nil {
				return err
			}
		}
		raw := c.raw
		stop := context.AfterFunc(ctx, func() { _ = raw.Close() })
		err := c.transaction(ctx, m)
		stop()
		c.lastUsed = time.Now()
		if err == nil {
			c.sent++
			c.clean = true
			if s.cfg.MessagesPerConnection > 1 && c.sent >= s.cfg.MessagesPerConnection {
				handedOver = true
				go s.replace(c)
				return nil
			}
			s.put(c)
			return nil
		}
		c.clean = false
		if ctx.Err() == nil && IsPermanent(err) {
			// After a 5yz the connection is fine; the next use resets it.
			s.put(c)
			return err
		}
		// A network error, a cancelled send or a 4yz: start afresh next time.
		c.drop()
		if reused && ctx.Err() == nil && refusedAtMail(err) {
			// A reused connection the server closed meanwhile fails at
			// MAIL, before any of the message went out: reconnect at once.
			c, reused = nil, false
			continue
		}
		return err
	}
}

// replace closes a connection that has served its share and opens its
// successor in the slot of the send that finished with it, after that send
// returned: the send does not wait for QUIT, and the next one finds a
// connection ready instead of paying TCP, STARTTLS and AUTH (the tail of
// the mailer's latency at a steady rate). Opened within the slot, the
// successor never makes more than Connections connections at once.
func (s *SMTPSender) replace(old *smtpConn) {
	defer func() { <-s.slots }()
	_ = old.quit()
	s.mu.Lock()
	closed := s.closed
	s.mu.Unlock()
	if closed {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*s.cfg.Timeout)
	defer cancel()
	c, err := s.connect(ctx)
	if err != nil {
		s.log.Debug("no successor for a recycled smtp connection yet; the next send connects", "err", err)
		return
	}
	s.put(c)
}

// refusedAtMail reports a network error or 421 at MAIL FROM.
func refusedAtMail(err error) bool {
	var se *SendError
	return errors.As(err, &se) && se.Step == StepMail && (se.Code == 0 || se.Code == 421)
}

// take returns an idle connection, closing those idle for too long; nil if
// none is left.
func (s *SMTPSender) take() *smtpConn {
	s.mu.Lock()
	defer s.mu.Unlock()
	for len(s.idle) > 0 {
		c := s.idle[len(s.idle)-1]
		s.idle = s.idle[:len(s.idle)-1]
		if time.Since(c.lastUsed) <= idleClose {
			return c
		}
		go c.quit()
	}
	return nil
}

// put returns c to the pool, or closes it when it has served its share of
// messages or the sender is closed.
func (s *SMTPSender) put(c *smtpConn) {
	s.mu.Lock()
	if s.closed || c.sent >= s.cfg.MessagesPerConnection {
		s.mu.Unlock()
		c.quit()
		return
	}
	s.idle = append(s.idle, c)
	s.mu.Unlock()
}

func (c *smtpConn) transaction(ctx context.Context, m Message) error {
	return c.client.transaction(ctx, m)
}

// connect opens the connection, secures it as configured and authenticates.
func (s *SMTPSender) connect(ctx context.Context) (_ *smtpConn, err error) {
	ctx, cancel := context.WithTimeout(ctx, 3*s.cfg.Timeout)
	defer cancel()
	dialer := net.Dialer{Timeout: s.cfg.Timeout}
	raw, err := dialer.DialContext(ctx, "tcp", s.cfg.Addr)
	if err != nil {
		return nil, stepError(StepConnect, err)
	}
	raw = newQuickConn(raw)
	// Until connected, a stalled server is cut off when ctx ends.
	stop := context.AfterFunc(ctx, func() { _ = raw.Close() })
	defer stop()
	defer func() {
		if err != nil {
			_ = raw.Close()
		}
	}()

	// Until the connection is secured, a failure is STARTTLS's when it
	// is required.
	step := StepConnect
	if s.cfg.Security == SecurityStartTLS {
		step = StepStartTLS
	}
	var c *wire
	switch s.cfg.Security {
	case SecurityTLS:
		tc := tls.Client(raw, s.tls)
		if err := tc.HandshakeContext(ctx); err != nil {
			return nil, stepError(StepConnect, err)
		}
		c = newWire(tc, raw, s.cfg.Timeout)
	default:
		c = newWire(raw, raw, s.cfg.Timeout)
	}
	c.off = s.off
	if err := c.greet(); err != nil {
		return nil, stepError(step, err)
	}
	if err := c.hello(s.localName); err != nil {
		return nil, stepError(step, err)
	}
	if s.cfg.Security == SecurityStartTLS {
		// No credentials or mail ever cross an unencrypted connection:
		// without STARTTLS offered, this is where it ends.
		if _, err := c.startTLS(raw, s.tls); err != nil {
			return nil, stepError(StepStartTLS, err)
		}
		if err := c.hello(s.localName); err != nil {
			return nil, stepError(StepStartTLS, err)
		}
	}
	if s.cfg.Security != SecurityPlain {
		if tc, ok := c.conn.(*tls.Conn); !ok || !tc.ConnectionState().HandshakeComplete {
			return nil, stepError(StepStartTLS, errors.New("connection is not encrypted"))
		}
	}
	if s.cfg.Username != "" {
		if err := s.auth(c); err != nil {
			return nil, err
		}
	}
	return &smtpConn{client: c, raw: raw, clean: true, lastUsed: time.Now()}, nil
}

func (s *SMTPSender) auth(c *wire) error {
	host, _, _ := net.SplitHostPort(s.cfg.Addr)
	if _, isTLS := c.conn.(*tls.Conn); !isTLS && !(s.cfg.Security == SecurityPlain && isLoopback(host)) {
		return stepError(StepAuth, errors.New("refusing to send credentials without TLS"))
	}
	var mech sasl.Client
	switch {
	case c.supportsAuth(sasl.Plain):
		mech = sasl.NewPlainClient("", s.cfg.Username, s.cfg.Password)
	case c.supportsAuth(sasl.Login):
		mech = sasl.NewLoginClient(s.cfg.Username, s.cfg.Password)
	default:
		return stepError(StepAuth, errors.New("the server offers neither AUTH PLAIN nor AUTH LOGIN"))
	}
	if err := c.auth(mech); err != nil {
		return stepError(StepAuth, err)
	}
	return nil
}

// drop forgets the connection without a QUIT.
func (c *smtpConn) drop() { _ = c.raw.Close() }

// quit says QUIT and closes the connection.
func (c *smtpConn) quit() error {
	err := c.client.quit()
	c.drop()
	return err
}

// Close closes the idle connections with QUIT, and each busy one as soon as
// its send ends.
func (s *SMTPSender) Close() error {
	s.mu.Lock()
	idle := s.idle
	s.idle, s.closed = nil, true
	s.mu.Unlock()
	var errs []error
	for _, c := range idle {
		errs = append(errs, c.quit())
	}
	return errors.Join(errs...)
}
