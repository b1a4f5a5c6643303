package mailer

import (
	"bytes"
	"context"
	"errors"
	"sync/atomic"
	"testing"

	"github.com/emersion/go-smtp"

	"kinoteka/internal/catcher"
)

// Both ways of sending a mail — pipelined (the catcher, as go-smtp servers
// do, offers PIPELINING) and step by step — deliver the message byte for
// byte and report a refusal at the step it happened, leaving the
// connection usable after a 5yz.
func TestSenderTransactionModes(t *testing.T) {
	modes := []struct {
		name         string
		noPipelining bool
	}{
		{"pipelined", false},
		{"step by step", true},
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
			s.noPipelining = mode.noPipelining
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
