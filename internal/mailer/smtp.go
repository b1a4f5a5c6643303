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

// SMTPSender sends over one SMTP connection that it keeps open between
// messages (RSET before each reuse) and re-opens after any failure. It
// serialises Sends; pooling is a later concern.
type SMTPSender struct {
	cfg       SMTPConfig
	tls       *tls.Config
	localName string
	log       *slog.Logger

	mu     sync.Mutex
	client *smtp.Client // nil when there is no open connection
	raw    net.Conn     // its TCP connection, closed to abandon a send
}

// NewSMTPSender checks cfg and prepares TLS; it does not connect yet, so a
// mail server that is down at start-up delays mail rather than the service.
func NewSMTPSender(cfg SMTPConfig, log *slog.Logger) (*SMTPSender, error) {
	cfg, err := cfg.normalize()
	if err != nil {
		return nil, err
	}
	host, _, _ := net.SplitHostPort(cfg.Addr)
	tlsCfg := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: cfg.ServerName}
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
	return &SMTPSender{cfg: cfg, tls: tlsCfg, localName: localName, log: log}, nil
}

// Send delivers m. It gives up when ctx ends, by closing the connection.
func (s *SMTPSender) Send(ctx context.Context, m Message) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := ctx.Err(); err != nil {
		return stepError(StepConnect, err)
	}
	if s.client != nil {
		// RSET both clears the previous transaction and proves that the
		// server has not dropped the idle connection meanwhile.
		if err := s.client.Reset(); err != nil {
			s.log.Debug("smtp connection not reusable, reconnecting", "err", err)
			s.drop()
		}
	}
	if s.client == nil {
		if err := s.connect(ctx); err != nil {
			return err
		}
	}
	raw := s.raw
	stop := context.AfterFunc(ctx, func() { _ = raw.Close() })
	defer stop()

	err := s.transaction(m)
	if err != nil && (ctx.Err() != nil || !IsPermanent(err)) {
		// A network error, a cancelled send or a 4yz (421 means the server
		// is closing): start afresh next time. After a 5yz the connection
		// is fine and the next RSET reuses it.
		s.drop()
	}
	return err
}

func (s *SMTPSender) transaction(m Message) error {
	if err := s.client.Mail(m.From, nil); err != nil {
		return stepError(StepMail, err)
	}
	if err := s.client.Rcpt(m.To, nil); err != nil {
		return stepError(StepRcpt, err)
	}
	w, err := s.client.Data()
	if err != nil {
		return stepError(StepData, err)
	}
	if _, err := w.Write(m.Data); err != nil {
		_ = w.Close()
		return stepError(StepData, err)
	}
	if err := w.Close(); err != nil {
		return stepError(StepData, err)
	}
	return nil
}

// connect opens the connection, secures it as configured and authenticates.
func (s *SMTPSender) connect(ctx context.Context) (err error) {
	ctx, cancel := context.WithTimeout(ctx, 3*s.cfg.Timeout)
	defer cancel()
	dialer := net.Dialer{Timeout: s.cfg.Timeout}
	raw, err := dialer.DialContext(ctx, "tcp", s.cfg.Addr)
	if err != nil {
		return stepError(StepConnect, err)
	}
	// Until connected, a stalled server is cut off when ctx ends.
	stop := context.AfterFunc(ctx, func() { _ = raw.Close() })
	defer stop()
	defer func() {
		if err != nil {
			_ = raw.Close()
		}
	}()
	conn := &boundedConn{Conn: raw, limit: s.cfg.Timeout}

	var c *smtp.Client
	switch s.cfg.Security {
	case SecurityTLS:
		tc := tls.Client(conn, s.tls)
		if err := tc.HandshakeContext(ctx); err != nil {
			return stepError(StepConnect, err)
		}
		c = smtp.NewClient(tc)
	case SecurityStartTLS:
		// go-smtp refuses to continue when STARTTLS is not offered, so no
		// credentials or mail ever cross an unencrypted connection.
		c, err = smtp.NewClientStartTLS(conn, s.tls)
		if err != nil {
			return stepError(StepStartTLS, err)
		}
	default:
		c = smtp.NewClient(conn)
	}
	c.CommandTimeout, c.SubmissionTimeout = s.cfg.Timeout, s.cfg.Timeout
	// EHLO (for STARTTLS the second one, the first to run over TLS, which
	// performs the handshake and verifies the certificate).
	if err := c.Hello(s.localName); err != nil {
		step := StepConnect
		if s.cfg.Security == SecurityStartTLS {
			step = StepStartTLS
		}
		return stepError(step, err)
	}
	if s.cfg.Security != SecurityPlain {
		if state, ok := c.TLSConnectionState(); !ok || !state.HandshakeComplete {
			return stepError(StepStartTLS, errors.New("connection is not encrypted"))
		}
	}
	if s.cfg.Username != "" {
		if err := s.auth(c); err != nil {
			return err
		}
	}
	s.client, s.raw = c, raw
	return nil
}

func (s *SMTPSender) auth(c *smtp.Client) error {
	host, _, _ := net.SplitHostPort(s.cfg.Addr)
	if _, isTLS := c.TLSConnectionState(); !isTLS && !(s.cfg.Security == SecurityPlain && isLoopback(host)) {
		return stepError(StepAuth, errors.New("refusing to send credentials without TLS"))
	}
	var mech sasl.Client
	switch {
	case c.SupportsAuth(sasl.Plain):
		mech = sasl.NewPlainClient("", s.cfg.Username, s.cfg.Password)
	case c.SupportsAuth(sasl.Login):
		mech = sasl.NewLoginClient(s.cfg.Username, s.cfg.Password)
	default:
		return stepError(StepAuth, errors.New("the server offers neither AUTH PLAIN nor AUTH LOGIN"))
	}
	if err := c.Auth(mech); err != nil {
		return stepError(StepAuth, err)
	}
	return nil
}

// drop forgets the connection without a QUIT.
func (s *SMTPSender) drop() {
	if s.client != nil {
		_ = s.client.Close()
	}
	s.client, s.raw = nil, nil
}

// Close says QUIT and closes the connection, if one is open.
func (s *SMTPSender) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.client == nil {
		return nil
	}
	err := s.client.Quit()
	s.drop()
	return err
}

// boundedConn caps every deadline go-smtp sets at limit from now. go-smtp
// waits up to 5 minutes for a reply and lifts the deadline between
// commands; the mailer wants every step bounded by SMTP_TIMEOUT.
type boundedConn struct {
	net.Conn
	limit time.Duration
}

func (c *boundedConn) bound(t time.Time) time.Time {
	if max := time.Now().Add(c.limit); t.IsZero() || t.After(max) {
		return max
	}
	return t
}

func (c *boundedConn) SetDeadline(t time.Time) error      { return c.Conn.SetDeadline(c.bound(t)) }
func (c *boundedConn) SetReadDeadline(t time.Time) error  { return c.Conn.SetReadDeadline(c.bound(t)) }
func (c *boundedConn) SetWriteDeadline(t time.Time) error { return c.Conn.SetWriteDeadline(c.bound(t)) }
