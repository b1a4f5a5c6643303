package mailer

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/emersion/go-smtp"

	"kinoteka/internal/catcher"
)

// Every way of sending a mail — chunked (the catcher, as go-smtp servers
// do, offers PIPELINING and CHUNKING), pipelined with DATA, and step by
// step — delivers the message byte for byte and reports a refusal at the
// step it happened, leaving the connection usable after a 5yz.
func TestSenderTransactionModes(t *testing.T) {
	modes := []struct {
		name string
		off  extensionsOff
	}{
		{"chunked", extensionsOff{}},
		{"pipelined DATA", extensionsOff{chunking: true}},
		{"step by step", extensionsOff{pipelining: true}},
	}
	for _, mode := range modes {
		t.Run(mode.name, func(t *testing.T) {
			var fault atomic.Pointer[struct {
				stage catcher.Stage
				err   *smtp.SMTPError
			}]
			serverTLS, caFile := selfSigned(t)
			cat, ln := startCatcher(t, catcher.Config{TLS: serverTLS, RequireTLS: true, Users: map[string]string{"mailer": "s3cret"},
				Fault: func(s catcher.Stage) error {
					if f := fault.Load(); f != nil && f.stage == s {
						fault.Store(nil)
						return f.err
					}
					return nil
				}}, false)
			s := newSender(t, secureSMTP(ln.Addr().String(), caFile))
			s.off = mode.off
			ctx := context.Background()

			m := testMessage(t, "alice@example.com", "123456")
			// A line that starts with a dot must arrive as it was sent.
			m.Data = bytes.Replace(m.Data, []byte("\r\n\r\n"), []byte("\r\n\r\n.leading dot\r\n..two\r\n"), 1)
			if err := s.Send(ctx, m); err != nil {
				t.Fatal(err)
			}
			if msgs := cat.Messages(); len(msgs) != 1 || !bytes.Equal(msgs[0].Raw, m.Data) {
				t.Fatalf("the message did not arrive intact")
			}

			refusals := []struct {
				stage    catcher.Stage
				code     int
				wantStep string
			}{
				{catcher.StageMail, 550, StepMail},
				{catcher.StageRcpt, 550, StepRcpt},
				{catcher.StageData, 554, StepData},
				{catcher.StageRcpt, 451, StepRcpt},
				{catcher.StageData, 452, StepData},
			}
			for _, r := range refusals {
				fault.Store(&struct {
					stage catcher.Stage
					err   *smtp.SMTPError
				}{r.stage, &smtp.SMTPError{Code: r.code, EnhancedCode: smtp.EnhancedCode{r.code / 100, 0, 0}, Message: "no"}})
				se := sendErr(t, s.Send(ctx, testMessage(t, "bob@example.com", "999999")))
				if se.Step != r.wantStep || se.Code != r.code {
					t.Errorf("%d at %s: step %q code %d, want %q %d", r.code, r.stage, se.Step, se.Code, r.wantStep, r.code)
				}
				var smtpErr *smtp.SMTPError
				if !errors.As(se, &smtpErr) || smtpErr.Message != "no" || smtpErr.EnhancedCode != (smtp.EnhancedCode{r.code / 100, 0, 0}) {
					t.Errorf("%d at %s: reply %+v", r.code, r.stage, smtpErr)
				}
				// The next mail goes through, over the same connection
				// after a 5yz.
				before := ln.accepted.Load()
				if err := s.Send(ctx, testMessage(t, "carol@example.com", "111111")); err != nil {
					t.Fatalf("after %d at %s: %v", r.code, r.stage, err)
				}
				if r.code >= 500 && ln.accepted.Load() != before {
					t.Errorf("after %d at %s: a new connection", r.code, r.stage)
				}
			}
			if n := len(cat.Messages()); n != 1+len(refusals) {
				t.Errorf("%d messages caught, want %d", n, 1+len(refusals))
			}
		})
	}
}

// The sender uses BDAT when the server offers CHUNKING, and DATA when it
// does not (or the test turns it off); the server gets the same bytes.
func TestSenderChunksWhenOffered(t *testing.T) {
	for _, c := range []struct {
		name      string
		off       extensionsOff
		want, not string
	}{
		{"chunking offered", extensionsOff{}, "\r\nBDAT ", "\r\nDATA\r\n"},
		{"chunking off", extensionsOff{chunking: true}, "\r\nDATA\r\n", "BDAT"},
	} {
		t.Run(c.name, func(t *testing.T) {
			cat, ln := startCatcher(t, catcher.Config{}, false)
			s := newSender(t, plainSMTP(ln.Addr().String()))
			s.off = c.off
			m := testMessage(t, "alice@example.com", "123456")
			m.Data = bytes.Replace(m.Data, []byte("\r\n\r\n"), []byte("\r\n\r\n.leading dot\r\n"), 1)
			if err := s.Send(context.Background(), m); err != nil {
				t.Fatal(err)
			}
			if msgs := cat.Messages(); len(msgs) != 1 || !bytes.Equal(msgs[0].Raw, m.Data) {
				t.Fatalf("the message did not arrive intact")
			}
			heard := ln.sent()
			if !strings.Contains(heard, c.want) || strings.Contains(heard, c.not) {
				t.Errorf("the server heard %q; want %q in it and not %q", heard, c.want, c.not)
			}
			if c.off.chunking {
				return
			}
			if want := fmt.Sprintf("BDAT %d\r\n%sBDAT 0 LAST\r\n", len(m.Data), m.Data); !strings.Contains(heard, want) {
				t.Errorf("the server did not hear the message as one chunk, as it is, then an empty last chunk")
			}
		})
	}
}

// A connection that ends after the whole chunk went out, before any reply,
// may have delivered the mail: that failure is DATA's, so the sender does
// not send the mail again at once over a new connection, as it does after
// a reused connection fails at MAIL. The server here answers the first
// mail of a connection and hangs up after reading the second.
func TestSenderChunkCutBeforeItsReplies(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	var accepted atomic.Int32
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accepted.Add(1)
			go func() {
				defer c.Close()
				r := bufio.NewReader(c)
				fmt.Fprint(c, "220 fake\r\n")
				for mails := 0; ; {
					line, err := r.ReadString('\n')
					if err != nil {
						return
					}
					var size int64
					switch {
					case strings.HasPrefix(line, "EHLO"):
						fmt.Fprint(c, "250-fake\r\n250-PIPELINING\r\n250 CHUNKING\r\n")
					case strings.HasPrefix(line, "QUIT"):
						fmt.Fprint(c, "221 bye\r\n")
						return
					case line == "BDAT 0 LAST\r\n":
						if mails++; mails > 1 {
							return // the cut: no reply to MAIL, RCPT or either BDAT
						}
						fmt.Fprint(c, "250 ok\r\n250 ok\r\n250 ok\r\n250 ok\r\n")
					case strings.HasPrefix(line, "BDAT"):
						if _, err := fmt.Sscanf(line, "BDAT %d", &size); err != nil {
							t.Errorf("%q: %v", line, err)
							return
						}
						if _, err := io.CopyN(io.Discard, r, size); err != nil {
							return
						}
					}
				}
			}()
		}
	}()
	s := newSender(t, plainSMTP(ln.Addr().String()))
	ctx := context.Background()
	if err := s.Send(ctx, testMessage(t, "alice@example.com", "111111")); err != nil {
		t.Fatal(err)
	}
	se := sendErr(t, s.Send(ctx, testMessage(t, "alice@example.com", "222222")))
	if se.Step != StepData || se.Code != 0 {
		t.Errorf("step %q code %d, want a connection failure at %q", se.Step, se.Code, StepData)
	}
	if n := accepted.Load(); n != 1 {
		t.Errorf("%d connections; the mail that may have gone was sent again", n)
	}
}

// A send abandoned while it waits for its final turn leaves the server
// nothing to take: the message went out as a chunk that is not the last,
// and the connection closes before the empty last chunk. (go-smtp's server
// takes a LAST chunk that a closed connection cut short as if it were
// whole, so a message sent as one LAST chunk with its last byte held back
// was delivered here, truncated.)
func TestSenderAbandonedBeforeItsTurnDeliversNothing(t *testing.T) {
	cat, ln := startCatcher(t, catcher.Config{}, false)
	s := newSender(t, plainSMTP(ln.Addr().String()))
	ctx, cancel := context.WithCancel(context.Background())
	m := testMessage(t, "alice@example.com", "123456")
	m.final = func(ctx context.Context) error {
		cancel() // as when a rebalance or a stop ends the wait for the turn
		<-ctx.Done()
		return ctx.Err()
	}
	se := sendErr(t, s.Send(ctx, m))
	if se.Step != StepData || !errors.Is(se, context.Canceled) {
		t.Errorf("step %q, err %v; want the cancelled wait at %q", se.Step, se.Err, StepData)
	}
	waitFor(t, "the server to see the connection closed", func() bool { return ln.open.Load() == 0 })
	if n := len(cat.Messages()); n != 0 {
		t.Fatalf("the server took %d message(s) of a send abandoned before its turn", n)
	}
	if !strings.Contains(ln.sent(), "BDAT ") {
		t.Fatal("the send did not use BDAT")
	}
}
