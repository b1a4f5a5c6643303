package main

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// In the embedded mode the catcher asks what a production server asks —
// STARTTLS, then AUTH — and the mailer gets through: a plain or anonymous
// submission is refused, and the mail of a sign-up arrives authenticated.
func TestEmbeddedCatcherRequiresTLSAndAuth(t *testing.T) {
	s, env, _ := runSystem(t)
	dir := s.cfg.DataDir
	addr := s.smtpLn.Addr().String()

	certPEM, err := os.ReadFile(filepath.Join(dir, catcherCertFile))
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(certPEM) {
		t.Fatalf("%s holds no certificate", catcherCertFile)
	}
	password, err := os.ReadFile(filepath.Join(dir, catcherPasswordFile))
	if err != nil {
		t.Fatal(err)
	}
	if info, err := os.Stat(filepath.Join(dir, catcherPasswordFile)); err != nil || info.Mode().Perm() != 0o600 {
		t.Errorf("%s: mode %v (%v), want 0600", catcherPasswordFile, info.Mode().Perm(), err)
	}

	dial := func(t *testing.T, startTLS bool) *smtp.Client {
		t.Helper()
		c, err := smtp.Dial(addr)
		if startTLS {
			c, err = smtp.DialStartTLS(addr, &tls.Config{RootCAs: pool, ServerName: "localhost", MinVersion: tls.VersionTLS12})
		}
		if err != nil {
			t.Fatalf("connect (STARTTLS %v, trusting %s): %v", startTLS, catcherCertFile, err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	code := func(err error) int {
		var se *smtp.SMTPError
		if errors.As(err, &se) {
			return se.Code
		}
		return 0
	}

	if err := dial(t, false).Mail("me@example.com", nil); code(err) != 530 || !strings.Contains(err.Error(), "STARTTLS") {
		t.Errorf("MAIL without TLS: %v, want 530 asking for STARTTLS", err)
	}
	if err := dial(t, true).Mail("me@example.com", nil); code(err) != 530 || !strings.Contains(err.Error(), "Authentication required") {
		t.Errorf("MAIL with TLS, without AUTH: %v, want 530 asking for authentication", err)
	}
	if err := dial(t, true).Auth(sasl.NewPlainClient("", catcherUser, "not-the-password")); code(err) != 535 {
		t.Errorf("AUTH with a wrong password: %v, want 535", err)
	}
	c := dial(t, true)
	if err := c.Auth(sasl.NewPlainClient("", catcherUser, string(password))); err != nil {
		t.Fatalf("AUTH with the password from %s: %v", catcherPasswordFile, err)
	}
	if err := c.Mail("me@example.com", nil); err != nil {
		t.Errorf("MAIL after STARTTLS and AUTH: %v", err)
	}

	env.SignUp(t, "wire@example.com", "correct horse battery")
	msgs := s.catcher.Messages()
	if len(msgs) != 1 {
		t.Fatalf("caught %d mails, want the sign-up's", len(msgs))
	}
	if msgs[0].Username != catcherUser {
		t.Errorf("the sign-up's mail came as user %q, want %q", msgs[0].Username, catcherUser)
	}
}
