package mailer

import (
	"context"
	"errors"
	"sync"
	"time"
)

// smtpHealth tells /readyz whether the SMTP server takes mail, without
// sending any and without a round trip per probe: the outcome of the
// latest send says so while mail flows; when none went through for
// interval, a background probe connects as a send would (TLS, EHLO, AUTH)
// and says QUIT. /readyz reads the last answer.
type smtpHealth struct {
	probe    func(context.Context) error
	interval time.Duration

	mu      sync.Mutex
	err     error     // the last answer; nil is healthy
	checked time.Time // when it was given; zero: not yet
}

func newSMTPHealth(probe func(context.Context) error, interval time.Duration) *smtpHealth {
	return &smtpHealth{probe: probe, interval: interval}
}

func (h *smtpHealth) set(err error) {
	h.mu.Lock()
	h.err, h.checked = err, time.Now()
	h.mu.Unlock()
}

// check is the readiness check: the last answer.
func (h *smtpHealth) check(context.Context) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.checked.IsZero() {
		return errors.New("not checked yet")
	}
	return h.err
}

// observe takes a send's outcome: a refusal of one message still proves
// the server up; trouble reaching, securing or logging in to it does not.
func (h *smtpHealth) observe(err error) {
	if err != nil && !serverUnusable(err) {
		err = nil
	}
	h.set(err)
}

// serverUnusable reports a send error that every message would meet: the
// server cannot be reached or secured, refuses our login, or closes (421).
func serverUnusable(err error) bool {
	var se *SendError
	if !errors.As(err, &se) {
		return true
	}
	switch se.Step {
	case StepConnect, StepStartTLS, StepAuth:
		return true
	}
	return se.Code == 0 || se.Code == 421
}

// run probes now and then whenever no send has answered for interval,
// until ctx ends.
func (h *smtpHealth) run(ctx context.Context) {
	t := time.NewTicker(h.interval / 4)
	defer t.Stop()
	for {
		h.mu.Lock()
		due := h.checked.IsZero() || time.Since(h.checked) >= h.interval
		h.mu.Unlock()
		if due {
			err := h.probe(ctx)
			if ctx.Err() != nil {
				return
			}
			h.set(err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// observedSender reports each send's outcome to h.
type observedSender struct {
	Sender
	h *smtpHealth
}

func (s observedSender) Send(ctx context.Context, m Message) error {
	err := s.Sender.Send(ctx, m)
	if ctx.Err() == nil { // a send cut short by a stop says nothing of the server
		s.h.observe(err)
	}
	return err
}

// Check connects to the SMTP server as a send would — TLS as configured,
// EHLO, AUTH — and says QUIT: the readiness probe, which costs no mail.
func (s *SMTPSender) Check(ctx context.Context) error {
	c, err := s.connect(ctx)
	if err != nil {
		return err
	}
	_ = c.quit()
	return nil
}
