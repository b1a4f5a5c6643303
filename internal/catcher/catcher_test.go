package catcher_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"slices"
	"strings"
	"testing"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"kinoteka/internal/catcher"
)

// start runs a catcher's SMTP side on a loopback port until the test ends.
func start(t *testing.T, cfg catcher.Config) (*catcher.Catcher, string) {
	t.Helper()
	c := catcher.New(cfg, nil)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.ServeSMTP(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("ServeSMTP: %v", err)
		}
	})
	return c, ln.Addr().String()
}

func trust(t *testing.T, certPEM []byte) *tls.Config {
	t.Helper()
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(certPEM) {
		t.Fatal("bad certificate PEM")
	}
	return &tls.Config{RootCAs: pool, ServerName: "localhost", MinVersion: tls.VersionTLS12}
}

const simpleMail = "From: Kinoteka <no-reply@kinoteka.local>\r\n" +
	"To: Alice <alice@example.com>\r\n" +
	"Subject: Hello\r\n" +
	"Message-ID: <m1@kinoteka.local>\r\n" +
	"\r\n" +
	"Hello, Alice.\r\n"

// send delivers raw through c: MAIL, RCPT, DATA.
func send(c *smtp.Client, to, raw string) error {
	if err := c.Mail("no-reply@kinoteka.local", nil); err != nil {
		return err
	}
	if err := c.Rcpt(to, nil); err != nil {
		return err
	}
	w, err := c.Data()
	if err != nil {
		return err
	}
	if _, err := w.Write([]byte(raw)); err != nil {
		return err
	}
	return w.Close()
}

func smtpCode(err error) int {
	var se *smtp.SMTPError
	if errors.As(err, &se) {
		return se.Code
	}
	return 0
}

func TestSMTPPlain(t *testing.T) {
	cat, addr := start(t, catcher.Config{})
	c, err := smtp.Dial(addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := send(c, "alice@example.com", simpleMail); err != nil {
		t.Fatal(err)
	}
	// A second message on the same connection, after RSET, as the mailer does.
	if err := c.Reset(); err != nil {
		t.Fatal(err)
	}
	if err := send(c, "bob@example.com", strings.Replace(simpleMail, "Hello\r\n", "Second\r\n", 1)); err != nil {
		t.Fatal(err)
	}
	if err := c.Quit(); err != nil {
		t.Fatal(err)
	}
	msgs := cat.Messages()
	if len(msgs) != 2 {
		t.Fatalf("got %d messages, want 2", len(msgs))
	}
	m := msgs[0]
	if m.Subject != "Hello" || m.From.Address != "no-reply@kinoteka.local" || m.From.Name != "Kinoteka" ||
		len(m.To) != 1 || m.To[0].Address != "alice@example.com" || m.MessageID != "m1@kinoteka.local" ||
		!strings.Contains(m.Text, "Hello, Alice.") || m.MailFrom != "no-reply@kinoteka.local" ||
		len(m.RcptTo) != 1 || m.RcptTo[0] != "alice@example.com" {
		t.Errorf("first message = %+v", m)
	}
	if msgs[1].Subject != "Second" || msgs[1].RcptTo[0] != "bob@example.com" {
		t.Errorf("second message = %+v", msgs[1])
	}
}

func TestSMTPStartTLSAndAuth(t *testing.T) {
	serverTLS, certPEM, err := catcher.SelfSignedTLS("localhost", "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	users := map[string]string{"mailer": "s3cret"}
	cat, addr := start(t, catcher.Config{TLS: serverTLS, RequireTLS: true, Users: users})

	t.Run("MAIL before STARTTLS is refused with 530", func(t *testing.T) {
		c, err := smtp.Dial(addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if ok, _ := c.Extension("STARTTLS"); !ok {
			t.Error("STARTTLS not offered")
		}
		if ok, _ := c.Extension("AUTH"); ok {
			t.Error("AUTH offered before TLS")
		}
		err = c.Mail("no-reply@kinoteka.local", nil)
		if code := smtpCode(err); code != 530 || !strings.Contains(err.Error(), "STARTTLS") {
			t.Errorf("MAIL without TLS: %v (code %d), want 530", err, code)
		}
	})

	t.Run("wrong password is 535", func(t *testing.T) {
		c, err := smtp.DialStartTLS(addr, trust(t, certPEM))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		err = c.Auth(sasl.NewPlainClient("", "mailer", "wrong"))
		if code := smtpCode(err); code != 535 {
			t.Errorf("Auth with a wrong password: %v (code %d), want 535", err, code)
		}
	})

	t.Run("unknown user is 535", func(t *testing.T) {
		c, err := smtp.DialStartTLS(addr, trust(t, certPEM))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if code := smtpCode(c.Auth(sasl.NewPlainClient("", "nobody", "s3cret"))); code != 535 {
			t.Errorf("Auth of an unknown user: code %d, want 535", code)
		}
	})

	t.Run("MAIL without AUTH is refused with 530", func(t *testing.T) {
		c, err := smtp.DialStartTLS(addr, trust(t, certPEM))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if code := smtpCode(c.Mail("no-reply@kinoteka.local", nil)); code != 530 {
			t.Errorf("MAIL without AUTH: code %d, want 530", code)
		}
	})

	t.Run("STARTTLS and AUTH deliver", func(t *testing.T) {
		c, err := smtp.DialStartTLS(addr, trust(t, certPEM))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if _, ok := c.TLSConnectionState(); !ok {
			t.Fatal("not TLS after STARTTLS")
		}
		if err := c.Auth(sasl.NewPlainClient("", "mailer", "s3cret")); err != nil {
			t.Fatal(err)
		}
		if err := send(c, "alice@example.com", simpleMail); err != nil {
			t.Fatal(err)
		}
		msgs := cat.Messages()
		if len(msgs) != 1 || msgs[0].Username != "mailer" || msgs[0].Subject != "Hello" {
			t.Fatalf("messages = %+v", msgs)
		}
	})

	t.Run("an untrusted certificate fails the handshake", func(t *testing.T) {
		c, err := smtp.DialStartTLS(addr, &tls.Config{ServerName: "localhost", MinVersion: tls.VersionTLS12})
		if err == nil {
			defer c.Close()
			err = c.Noop() // the handshake runs on first use
		}
		var unknownCA x509.UnknownAuthorityError
		if !errors.As(err, &unknownCA) {
			t.Fatalf("STARTTLS with an unknown CA: %v, want x509.UnknownAuthorityError", err)
		}
	})
}

func TestFault(t *testing.T) {
	tests := []struct {
		stage    catcher.Stage
		err      error
		wantCode int
	}{
		{catcher.StageMail, &smtp.SMTPError{Code: 421, Message: "closing"}, 421},
		{catcher.StageRcpt, &smtp.SMTPError{Code: 550, Message: "no such user"}, 550},
		{catcher.StageData, errors.New("try later"), 451},
	}
	for _, tt := range tests {
		t.Run(string(tt.stage), func(t *testing.T) {
			cat, addr := start(t, catcher.Config{Fault: func(s catcher.Stage) error {
				if s == tt.stage {
					return tt.err
				}
				return nil
			}})
			c, err := smtp.Dial(addr)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if code := smtpCode(send(c, "alice@example.com", simpleMail)); code != tt.wantCode {
				t.Errorf("code %d, want %d", code, tt.wantCode)
			}
			if n := len(cat.Messages()); n != 0 {
				t.Errorf("%d messages stored after a refusal", n)
			}
		})
	}
}

func TestMaxMessages(t *testing.T) {
	cat, addr := start(t, catcher.Config{MaxMessages: 2})
	c, err := smtp.Dial(addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for _, subject := range []string{"one", "two", "three"} {
		if err := send(c, "alice@example.com", "Subject: "+subject+"\r\n\r\nbody\r\n"); err != nil {
			t.Fatal(err)
		}
	}
	msgs := cat.Messages()
	if len(msgs) != 2 || msgs[0].Subject != "two" || msgs[1].Subject != "three" {
		t.Fatalf("kept %+v, want two and three", msgs)
	}
}

func TestRecipientFaultAndReceived(t *testing.T) {
	var received []string // Message-IDs, in the order the hook heard them
	cat, addr := start(t, catcher.Config{
		MaxMessages: 1,
		RecipientFault: func(rcpt string) error {
			if rcpt == "ghost@example.com" {
				return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "no such user"}
			}
			return nil
		},
		// Called on the session's goroutine before the 250: no lock needed
		// while the test's one client waits for its answer.
		Received: func(m catcher.Message) { received = append(received, m.MessageID) },
	})
	c, err := smtp.Dial(addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if code := smtpCode(send(c, "ghost@example.com", simpleMail)); code != 550 {
		t.Errorf("mail to the missing user: code %d, want 550", code)
	}
	if err := c.Reset(); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"a", "b"} {
		if err := send(c, "alice@example.com", strings.Replace(simpleMail, "m1@", id+"@", 1)); err != nil {
			t.Fatalf("mail to a good user: %v", err)
		}
	}
	// The hook hears every message, even those the inbox bound dropped.
	if !slices.Equal(received, []string{"a@kinoteka.local", "b@kinoteka.local"}) || len(cat.Messages()) != 1 {
		t.Errorf("received %v, inbox %d; want a and b heard, one kept", received, len(cat.Messages()))
	}
}
