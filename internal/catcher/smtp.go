package catcher

import (
	"crypto/subtle"
	"errors"
	"io"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// Replies worded as Mailpit words them, so clients see the same thing from both.
var (
	errNeedTLS  = &smtp.SMTPError{Code: 530, EnhancedCode: smtp.EnhancedCode{5, 7, 0}, Message: "Must issue a STARTTLS command first"}
	errNeedAuth = &smtp.SMTPError{Code: 530, EnhancedCode: smtp.EnhancedCode{5, 7, 0}, Message: "Authentication required"}
	errBadAuth  = &smtp.SMTPError{Code: 535, EnhancedCode: smtp.EnhancedCode{5, 7, 8}, Message: "Authentication credentials invalid"}
)

type backend struct{ c *Catcher }

func (b backend) NewSession(conn *smtp.Conn) (smtp.Session, error) {
	_, isTLS := conn.TLSConnectionState()
	return &session{c: b.c, tls: isTLS}, nil
}

// session is one SMTP conversation. go-smtp makes a new one after STARTTLS,
// so tls is fixed for its lifetime.
type session struct {
	c        *Catcher
	tls      bool
	username string
	from     string
	rcpts    []string
}

var _ smtp.AuthSession = (*session)(nil)

func (s *session) AuthMechanisms() []string {
	if len(s.c.cfg.Users) == 0 {
		return nil
	}
	return []string{sasl.Plain}
}

func (s *session) Auth(mech string) (sasl.Server, error) {
	if mech != sasl.Plain || len(s.c.cfg.Users) == 0 {
		return nil, smtp.ErrAuthUnknownMechanism
	}
	return sasl.NewPlainServer(func(identity, username, password string) error {
		want, ok := s.c.cfg.Users[username]
		// Compare even for an unknown user so timing says nothing.
		match := subtle.ConstantTimeCompare([]byte(password), []byte(want)) == 1
		if !ok || !match || (identity != "" && identity != username) {
			return errBadAuth
		}
		s.username = username
		return nil
	}), nil
}

func (s *session) Mail(from string, _ *smtp.MailOptions) error {
	if s.c.cfg.RequireTLS && !s.tls {
		return errNeedTLS
	}
	if len(s.c.cfg.Users) > 0 && s.username == "" {
		return errNeedAuth
	}
	if err := s.fault(StageMail); err != nil {
		return err
	}
	s.from, s.rcpts = from, nil
	return nil
}

func (s *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	if err := s.fault(StageRcpt); err != nil {
		return err
	}
	if f := s.c.cfg.RecipientFault; f != nil {
		if err := asSMTPError(f(to)); err != nil {
			return err
		}
	}
	s.rcpts = append(s.rcpts, to)
	return nil
}

func (s *session) Data(r io.Reader) error {
	raw, err := io.ReadAll(r)
	if err != nil {
		return err // smtp.ErrDataTooLarge already carries its 552
	}
	if err := s.fault(StageData); err != nil {
		return err
	}
	m := s.c.store(raw, s.from, s.rcpts, s.username)
	s.c.log.Debug("mail caught", "id", m.ID, "size", m.Size)
	if s.c.cfg.Received != nil {
		s.c.cfg.Received(m)
	}
	return nil
}

func (s *session) Reset() { s.from, s.rcpts = "", nil }

func (s *session) Logout() error { return nil }

func (s *session) fault(stage Stage) error {
	if s.c.cfg.Fault == nil {
		return nil
	}
	return asSMTPError(s.c.cfg.Fault(stage))
}

// asSMTPError keeps an *smtp.SMTPError's code and makes anything else a 451.
func asSMTPError(err error) error {
	if err == nil {
		return nil
	}
	var smtpErr *smtp.SMTPError
	if errors.As(err, &smtpErr) {
		return smtpErr
	}
	return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: err.Error()}
}
