package mailer

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"kinoteka/internal/catcher"
	"kinoteka/internal/events"
)

// countingListener counts accepted connections, to tell reuse from
// reconnect, and the most that were open at once; it keeps what the
// clients sent, to tell how they sent it.
type countingListener struct {
	net.Listener
	accepted atomic.Int32
	open     atomic.Int32
	maxOpen  atomic.Int32

	mu    sync.Mutex
	heard bytes.Buffer
}

// sent is all the clients have sent so far (encrypted where TLS is on).
func (l *countingListener) sent() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.heard.String()
}

func (l *countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	l.accepted.Add(1)
	n := l.open.Add(1)
	for {
		m := l.maxOpen.Load()
		if n <= m || l.maxOpen.CompareAndSwap(m, n) {
			break
		}
	}
	return &countedConn{Conn: c, l: l}, nil
}

type countedConn struct {
	net.Conn
	l    *countingListener
	once sync.Once
}

func (c *countedConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	c.l.mu.Lock()
	c.l.heard.Write(b[:n])
	c.l.mu.Unlock()
	return n, err
}

func (c *countedConn) Close() error {
	c.once.Do(func() { c.l.open.Add(-1) })
	return c.Conn.Close()
}

// startCatcher runs a catcher on a loopback port until the test ends. With
// implicitTLS the listener itself speaks TLS (SMTPS) with cfg.TLS.
func startCatcher(t *testing.T, cfg catcher.Config, implicitTLS bool) (*catcher.Catcher, *countingListener) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cl := &countingListener{Listener: ln}
	var serve net.Listener = cl
	if implicitTLS {
		serve = tls.NewListener(cl, cfg.TLS)
		cfg.TLS = nil
	}
	cat := catcher.New(cfg, nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- cat.ServeSMTP(ctx, serve) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("catcher: %v", err)
		}
	})
	return cat, cl
}

// selfSigned returns a server TLS config and the path of its certificate
// written as a CA file.
func selfSigned(t *testing.T) (*tls.Config, string) {
	t.Helper()
	serverTLS, certPEM, err := catcher.SelfSignedTLS("localhost", "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(caFile, certPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	return serverTLS, caFile
}

// plainSMTP is the default SMTP configuration for a catcher on addr that
// speaks no TLS.
func plainSMTP(addr string) SMTPConfig {
	c := DefaultConfig().SMTP
	c.Addr, c.Security = addr, SecurityPlain
	return c
}

// secureSMTP is the default SMTP configuration (STARTTLS) with AUTH as
// mailer/s3cret, for a catcher on addr whose certificate for localhost is
// in caFile.
func secureSMTP(addr, caFile string) SMTPConfig {
	c := DefaultConfig().SMTP
	c.Addr, c.ServerName, c.CAFile, c.Username, c.Password = addr, "localhost", caFile, "mailer", "s3cret"
	return c
}

func newSender(t *testing.T, cfg SMTPConfig) *SMTPSender {
	t.Helper()
	s, err := NewSMTPSender(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func testMessage(t *testing.T, to, code string) Message {
	t.Helper()
	m, err := testRenderer(t).render(codeMail("ev-"+code, events.TypeVerificationCode, to, code, "en", time.Time{}))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func sendErr(t *testing.T, err error) *SendError {
	t.Helper()
	var se *SendError
	if !errors.As(err, &se) {
		t.Fatalf("err = %v (%T), want a *SendError", err, err)
	}
	return se
}

func TestSenderStartTLSAndAuth(t *testing.T) {
	serverTLS, caFile := selfSigned(t)
	cat, ln := startCatcher(t, catcher.Config{TLS: serverTLS, RequireTLS: true, Users: map[string]string{"mailer": "s3cret"}}, false)
	s := newSender(t, secureSMTP(ln.Addr().String(), caFile))

	ctx := context.Background()
	for _, code := range []string{"111111", "222222", "333333"} {
		if err := s.Send(ctx, testMessage(t, "alice@example.com", code)); err != nil {
			t.Fatal(err)
		}
	}
	msgs := cat.Messages()
	if len(msgs) != 3 {
		t.Fatalf("%d messages caught, want 3", len(msgs))
	}
	for i, m := range msgs {
		if m.Username != "mailer" || m.Subject != "Your one-time code" || m.RcptTo[0] != "alice@example.com" || m.MailFrom != "no-reply@kinoteka.local" {
			t.Errorf("message %d = %+v", i, m)
		}
	}
	if !strings.Contains(msgs[2].Text, "333333") {
		t.Errorf("third text = %q", msgs[2].Text)
	}
	if n := ln.accepted.Load(); n != 1 {
		t.Errorf("%d connections for three messages, want one reused", n)
	}
}

func TestSenderImplicitTLS(t *testing.T) {
	serverTLS, caFile := selfSigned(t)
	cat, ln := startCatcher(t, catcher.Config{TLS: serverTLS, Users: map[string]string{"mailer": "s3cret"}}, true)
	cfg := secureSMTP(ln.Addr().String(), caFile)
	cfg.Security = SecurityTLS
	s := newSender(t, cfg)
	if err := s.Send(context.Background(), testMessage(t, "bob@example.com", "424242")); err != nil {
		t.Fatal(err)
	}
	if msgs := cat.Messages(); len(msgs) != 1 || msgs[0].Username != "mailer" {
		t.Fatalf("messages = %+v", msgs)
	}
}

func TestSenderRefusals(t *testing.T) {
	serverTLS, caFile := selfSigned(t)
	tests := []struct {
		name      string
		server    catcher.Config
		client    func(c *SMTPConfig) // changes the default configuration
		wantStep  string
		wantCode  int
		permanent bool
	}{
		{
			name:     "no STARTTLS offered",
			server:   catcher.Config{Users: map[string]string{"mailer": "s3cret"}},
			client:   func(c *SMTPConfig) { c.Username, c.Password = "mailer", "s3cret" },
			wantStep: StepStartTLS,
		},
		{
			name:     "untrusted certificate",
			server:   catcher.Config{TLS: serverTLS},
			client:   func(c *SMTPConfig) { c.ServerName = "localhost" },
			wantStep: StepStartTLS,
		},
		{
			name:     "certificate for another name",
			server:   catcher.Config{TLS: serverTLS},
			client:   func(c *SMTPConfig) { c.ServerName, c.CAFile = "mail.example.com", caFile },
			wantStep: StepStartTLS,
		},
		{
			name:   "wrong password",
			server: catcher.Config{TLS: serverTLS, RequireTLS: true, Users: map[string]string{"mailer": "s3cret"}},
			client: func(c *SMTPConfig) {
				c.ServerName, c.CAFile, c.Username, c.Password = "localhost", caFile, "mailer", "wrong"
			},
			wantStep:  StepAuth,
			wantCode:  535,
			permanent: true,
		},
		{
			name:      "AUTH required but not configured",
			server:    catcher.Config{TLS: serverTLS, Users: map[string]string{"mailer": "s3cret"}},
			client:    func(c *SMTPConfig) { c.ServerName, c.CAFile = "localhost", caFile },
			wantStep:  StepMail,
			wantCode:  530,
			permanent: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cat, ln := startCatcher(t, tt.server, false)
			cfg := DefaultConfig().SMTP
			cfg.Addr = ln.Addr().String()
			tt.client(&cfg)
			err := newSender(t, cfg).Send(context.Background(), testMessage(t, "alice@example.com", "123456"))
			se := sendErr(t, err)
			if se.Step != tt.wantStep || se.Code != tt.wantCode || se.Permanent() != tt.permanent || IsPermanent(err) != tt.permanent {
				t.Errorf("err = %v: step %q code %d permanent %v; want %q %d %v", err, se.Step, se.Code, se.Permanent(), tt.wantStep, tt.wantCode, tt.permanent)
			}
			if isRejected(err) {
				t.Errorf("%v counted as a rejection of the message; it is the connection's fault", err)
			}
			if n := len(cat.Messages()); n != 0 {
				t.Errorf("%d messages delivered despite the refusal", n)
			}
		})
	}
}

func TestSenderReplies(t *testing.T) {
	// One fault per run of the catcher, chosen by the test through reply.
	var reply atomic.Pointer[smtp.SMTPError]
	var stage atomic.Value
	cat, ln := startCatcher(t, catcher.Config{Fault: func(s catcher.Stage) error {
		if r := reply.Swap(nil); r != nil {
			if s == stage.Load().(catcher.Stage) {
				return r
			}
			reply.Store(r) // not this stage: keep it for the next
		}
		return nil
	}}, false)
	s := newSender(t, plainSMTP(ln.Addr().String()))
	ctx := context.Background()
	send := func(code string) error { return s.Send(ctx, testMessage(t, "alice@example.com", code)) }

	tests := []struct {
		stage          catcher.Stage
		reply          *smtp.SMTPError
		wantStep       string // "" when the sender recovers on its own and delivers
		rejected       bool
		wantReconnects int32 // new connections the next send needs
	}{
		{catcher.StageRcpt, &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "no such user"}, StepRcpt, true, 0},
		{catcher.StageData, &smtp.SMTPError{Code: 554, EnhancedCode: smtp.EnhancedCode{5, 6, 0}, Message: "content rejected"}, StepData, true, 0},
		{catcher.StageData, &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "try later"}, StepData, false, 1},
		{catcher.StageRcpt, &smtp.SMTPError{Code: 421, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "closing"}, StepRcpt, false, 1},
		// 421 at MAIL on a reused connection: nothing of the message went
		// out, so the sender reconnects at once and delivers it.
		{catcher.StageMail, &smtp.SMTPError{Code: 421, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "closing"}, "", false, 0},
	}
	if err := send("000000"); err != nil {
		t.Fatal(err)
	}
	delivered := 1
	for _, tt := range tests {
		stage.Store(tt.stage)
		reply.Store(tt.reply)
		before := ln.accepted.Load()
		err := send("999999")
		if tt.wantStep == "" {
			if err != nil || ln.accepted.Load()-before != 1 {
				t.Errorf("%d at %s: err = %v after %d new connections; want delivered over one new connection", tt.reply.Code, tt.stage, err, ln.accepted.Load()-before)
			}
			delivered++
		} else {
			se := sendErr(t, err)
			if se.Step != tt.wantStep || se.Code != tt.reply.Code || se.Rejected() != tt.rejected || isRejected(se) != tt.rejected {
				t.Errorf("%d at %s: step %q code %d rejected %v", tt.reply.Code, tt.stage, se.Step, se.Code, se.Rejected())
			}
		}
		before = ln.accepted.Load()
		if err := send("111111"); err != nil {
			t.Fatalf("send after %d: %v", tt.reply.Code, err)
		}
		delivered++
		if got := ln.accepted.Load() - before; got != tt.wantReconnects {
			t.Errorf("after %d at %s: %d new connections, want %d", tt.reply.Code, tt.stage, got, tt.wantReconnects)
		}
	}
	if n := len(cat.Messages()); n != delivered {
		t.Errorf("%d messages caught, want %d", n, delivered)
	}
}

func TestSenderReconnectsAfterServerRestart(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	serve := func(ln net.Listener) (*catcher.Catcher, func()) {
		cat := catcher.New(catcher.Config{}, nil)
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- cat.ServeSMTP(ctx, ln) }()
		return cat, func() { cancel(); <-done }
	}
	_, stop := serve(ln)
	s := newSender(t, plainSMTP(addr))
	if err := s.Send(context.Background(), testMessage(t, "a@example.com", "1")); err != nil {
		t.Fatal(err)
	}
	stop() // closes the idle connection the sender holds

	ln2, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	cat, stop2 := serve(ln2)
	defer stop2()
	// The RSET on the dead connection fails and the sender reconnects
	// within the same Send.
	if err := s.Send(context.Background(), testMessage(t, "a@example.com", "2")); err != nil {
		t.Fatal(err)
	}
	if n := len(cat.Messages()); n != 1 {
		t.Errorf("%d messages after the restart, want 1", n)
	}
}

func TestSenderGivesUpWhenContextEnds(t *testing.T) {
	// A server that accepts and then says nothing at all.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		if c, err := ln.Accept(); err == nil {
			accepted <- c
		}
	}()
	cfg := plainSMTP(ln.Addr().String())
	cfg.Timeout = time.Hour
	s := newSender(t, cfg)
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- s.Send(ctx, testMessage(t, "a@example.com", "1")) }()
	conn := <-accepted // the sender now waits for a greeting that never comes
	defer conn.Close()
	cancel()
	if se := sendErr(t, <-errc); se.Step != StepConnect || se.Permanent() {
		t.Errorf("err = %v", se)
	}
}

func TestSenderConfig(t *testing.T) {
	with := func(set func(c *SMTPConfig)) SMTPConfig {
		c := DefaultConfig().SMTP
		set(&c)
		return c
	}
	if _, err := NewSMTPSender(with(func(c *SMTPConfig) { c.CAFile = filepath.Join(t.TempDir(), "missing.pem") }), nil); err == nil || !strings.Contains(err.Error(), "SMTP_CA_FILE") {
		t.Errorf("missing CA file: %v", err)
	}
	bad := filepath.Join(t.TempDir(), "bad.pem")
	_ = os.WriteFile(bad, []byte("not a certificate"), 0o600)
	if _, err := NewSMTPSender(with(func(c *SMTPConfig) { c.CAFile = bad }), nil); err == nil || !strings.Contains(err.Error(), "no PEM certificate") {
		t.Errorf("bad CA file: %v", err)
	}
	if _, err := NewSMTPSender(with(func(c *SMTPConfig) { c.Security = "ssl" }), nil); err == nil {
		t.Error("unknown security mode accepted")
	}
	// Zero means zero: a pool of no connections is refused, not enlarged.
	if _, err := NewSMTPSender(with(func(c *SMTPConfig) { c.Connections = 0 }), nil); err == nil || !strings.Contains(err.Error(), "SMTP_CONNECTIONS") {
		t.Errorf("no connections: %v", err)
	}
}

func TestSenderPool(t *testing.T) {
	serverTLS, caFile := selfSigned(t)
	cat, ln := startCatcher(t, catcher.Config{TLS: serverTLS, RequireTLS: true, Users: map[string]string{"mailer": "s3cret"}, MaxMessages: 100}, false)
	cfg := secureSMTP(ln.Addr().String(), caFile)
	cfg.Connections, cfg.MessagesPerConnection = 3, 5
	s := newSender(t, cfg)
	const senders, each = 8, 5
	var wg sync.WaitGroup
	errs := make(chan error, senders*each)
	for g := range senders {
		wg.Go(func() {
			for i := range each {
				errs <- s.Send(context.Background(), testMessage(t, fmt.Sprintf("u%d@example.com", g), fmt.Sprintf("%d%05d", g, i)))
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if n := len(cat.Messages()); n != senders*each {
		t.Errorf("%d messages caught, want %d", n, senders*each)
	}
	// Three at most at once; each secured and authenticated once, then
	// replaced after five messages (the last ones may still be open with fewer).
	if m := ln.maxOpen.Load(); m > 3 {
		t.Errorf("%d connections open at once, want at most 3", m)
	}
	if a := ln.accepted.Load(); a < senders*each/5 || a > senders*each/5+3 {
		t.Errorf("%d connections for %d messages, want 8 to 11 (recycled after 5 each)", a, senders*each)
	}
	if err := s.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	waitFor(t, "every connection closed", func() bool { return ln.open.Load() == 0 })
}

func TestSenderOneConnectionPerMessage(t *testing.T) {
	cat, ln := startCatcher(t, catcher.Config{}, false)
	cfg := plainSMTP(ln.Addr().String())
	cfg.MessagesPerConnection = 1
	s := newSender(t, cfg)
	for i := range 3 {
		if err := s.Send(context.Background(), testMessage(t, "a@example.com", fmt.Sprint(i))); err != nil {
			t.Fatal(err)
		}
	}
	if n, a := len(cat.Messages()), ln.accepted.Load(); n != 3 || a != 3 {
		t.Errorf("%d messages over %d connections, want 3 over 3", n, a)
	}
}
