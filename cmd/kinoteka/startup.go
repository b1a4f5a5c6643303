package main

import (
	"errors"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"syscall"
)

// startError is a start-up failure worded for the person starting Kinoteka,
// on one line: what failed (the part and its address or path), why, and
// what to do about it — usually the flag and variable that change it.
type startError struct {
	what   string // "mail catcher SMTP: listen on 127.0.0.1:1025"
	err    error
	hint   string // a guess at the cause, e.g. "another Mailpit?"; may be empty
	advice string // "change it with -smtp-addr or KINOTEKA_SMTP_ADDR"
}

func (e *startError) Error() string {
	msg := e.what + ": " + plainCause(e.err).Error()
	if e.hint != "" {
		msg += " (" + e.hint + ")"
	}
	if e.advice != "" {
		msg += "; " + e.advice
	}
	return msg
}

func (e *startError) Unwrap() error { return e.err }

// plainCause strips what the start-up error already says (the operation,
// the network, the address or path) from a net or os error, leaving
// "address already in use" rather than "listen tcp 127.0.0.1:1025: bind:
// address already in use".
func plainCause(err error) error {
	var errno syscall.Errno
	if errors.As(err, &errno) {
		return errno
	}
	var addrErr *net.AddrError
	if errors.As(err, &addrErr) {
		return errors.New(addrErr.Err)
	}
	var opErr *net.OpError
	if errors.As(err, &opErr) && opErr.Err != nil {
		return opErr.Err
	}
	var pathErr *fs.PathError
	if errors.As(err, &pathErr) {
		return pathErr.Err
	}
	return err
}

// part is one listening part of the embedded system.
type part struct {
	name string // as the banner names it
	flag string // the flag that moves it
	busy string // who else is likely on its default port
}

var (
	partAuth   = part{"auth HTTP", "auth-addr", "another Kinoteka?"}
	partFilms  = part{"films HTTP", "films-addr", "another Kinoteka?"}
	partMailer = part{"mailer health/metrics", "mailer-addr", "another Kinoteka?"}
	partSMTP   = part{"mail catcher SMTP", "smtp-addr", "another Mailpit or Kinoteka?"}
	partMailUI = part{"mail catcher inbox", "mail-ui-addr", "another Mailpit or Kinoteka?"}
	partWeb    = part{"web site", "web-addr", "another Kinoteka?"}
	partKafka  = part{"Kafka broker", "kafka-addr", "a Kafka broker or another Kinoteka?"}

	// The operators' listeners of auth, films and web (the mailer's is
	// partMailer).
	partAuthOps  = part{"auth health/metrics", "auth-ops-addr", "another Kinoteka?"}
	partFilmsOps = part{"films health/metrics", "films-ops-addr", "another Kinoteka?"}
	partWebOps   = part{"web health/metrics", "web-ops-addr", "another Kinoteka?"}
)

// listen opens a part's listener, or says which part could not listen where.
func listen(p part, addr string) (net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, listenError(p, addr, err)
	}
	return ln, nil
}

func listenError(p part, addr string, err error) error {
	e := &startError{what: p.name + ": listen on " + addr, err: err, advice: changeWith(p.flag)}
	if errors.Is(err, syscall.EADDRINUSE) {
		e.hint = p.busy
	}
	return e
}

// listenKafka opens the in-process broker's port. kfake binds and
// advertises 127.0.0.1 whatever it is told, so another host is refused here
// rather than silently ignored.
func listenKafka(addr string) (net.Listener, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, listenError(partKafka, addr, err)
	}
	if host != "" && host != "127.0.0.1" && host != "localhost" {
		return nil, listenError(partKafka, addr, errors.New("the in-process broker listens on 127.0.0.1 only"))
	}
	return listen(partKafka, net.JoinHostPort("127.0.0.1", port))
}

// dataDirError is a data folder that cannot be used, e.g. "cannot create it: not a directory".
func dataDirError(dir, doing string, err error) error {
	return &startError{what: "data folder " + absPath(dir) + ": " + doing, err: err, advice: changeWith("data")}
}

// absPath is path made absolute for messages, or path itself if that fails.
func absPath(path string) string {
	if abs, err := filepath.Abs(path); err == nil {
		return abs
	}
	return path
}

// openLogFile opens -log-file for appending.
func openLogFile(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		return nil, &startError{what: "log file " + absPath(path) + ": cannot open it", err: err, advice: changeWith("log-file")}
	}
	return f, nil
}
