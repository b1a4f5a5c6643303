package mailer

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"io"
	"net"
	"net/textproto"
	"strconv"
	"strings"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// wire is the client side of one SMTP connection: commands, replies, and a
// mail transaction in as few round trips as the server allows.
//
// With PIPELINING (RFC 2920), which most servers offer, a mail takes two
// round trips instead of go-smtp's four: MAIL, RCPT and DATA go together,
// then the message and its final dot. With CHUNKING (RFC 3030) as well it
// takes one: MAIL, RCPT and BDAT with the message go together, and an
// empty last chunk follows without a reply awaited between. Fewer round
// trips mean fewer system calls, TLS records and wake-ups per mail on both
// sides, and less waiting. Without PIPELINING it goes step by step.
type wire struct {
	raw     net.Conn // the TCP connection
	conn    net.Conn // the connection in use: TLS once secured
	r       *textproto.Reader
	w       *bufio.Writer
	ext     map[string]string // EHLO keywords (upper case) and their parameters
	timeout time.Duration     // per exchange

	off extensionsOff
}

// extensionsOff makes a connection ignore extensions the server offers, so
// that tests cover every way of sending.
type extensionsOff struct{ pipelining, chunking bool }

func newWire(conn, raw net.Conn, timeout time.Duration) *wire {
	c := &wire{raw: raw, timeout: timeout}
	c.use(conn)
	return c
}

// use switches to conn (after STARTTLS: the TLS connection).
func (c *wire) use(conn net.Conn) {
	c.conn = conn
	c.r = textproto.NewReader(bufio.NewReader(conn))
	c.w = bufio.NewWriterSize(conn, 16<<10)
}

// deadline bounds the next exchange.
func (c *wire) deadline() { _ = c.conn.SetDeadline(time.Now().Add(c.timeout)) }

// reply reads one reply; a code other than expect (a prefix such as 25,
// or 0 for any) is an *smtp.SMTPError.
func (c *wire) reply(expect int) (int, string, error) {
	code, msg, err := c.r.ReadResponse(expect)
	var protoErr *textproto.Error
	if errors.As(err, &protoErr) {
		return code, msg, replyError(protoErr.Code, protoErr.Msg)
	}
	return code, msg, err
}

// replyError is a refusal as go-smtp reports it, with its enhanced status
// code split off.
func replyError(code int, msg string) *smtp.SMTPError {
	e := &smtp.SMTPError{Code: code, Message: msg}
	if first, rest, ok := strings.Cut(msg, " "); ok {
		parts := strings.Split(first, ".")
		if len(parts) == 3 {
			var ec smtp.EnhancedCode
			valid := true
			for i, p := range parts {
				n, err := strconv.Atoi(p)
				valid = valid && err == nil
				ec[i] = n
			}
			if valid {
				e.EnhancedCode, e.Message = ec, rest
			}
		}
	}
	return e
}

// cmd sends one command and reads its reply.
func (c *wire) cmd(expect int, line string) (int, string, error) {
	c.deadline()
	c.w.WriteString(line)
	c.w.WriteString("\r\n")
	if err := c.w.Flush(); err != nil {
		return 0, "", err
	}
	return c.reply(expect)
}

// greet reads the server's 220.
func (c *wire) greet() error {
	c.deadline()
	_, _, err := c.reply(220)
	return err
}

// hello says EHLO and keeps the extensions offered.
func (c *wire) hello(localName string) error {
	if strings.ContainsAny(localName, "\r\n") {
		return errors.New("smtp: a line break in the local name")
	}
	_, msg, err := c.cmd(250, "EHLO "+localName)
	if err != nil {
		return err
	}
	c.ext = map[string]string{}
	lines := strings.Split(msg, "\n")
	for _, l := range lines[1:] {
		k, v, _ := strings.Cut(l, " ")
		c.ext[strings.ToUpper(k)] = v
	}
	return nil
}

func (c *wire) has(ext string) bool {
	_, ok := c.ext[ext]
	return ok
}

// supportsAuth reports whether AUTH offers mech.
func (c *wire) supportsAuth(mech string) bool {
	for _, m := range strings.Fields(c.ext["AUTH"]) {
		if strings.EqualFold(m, mech) {
			return true
		}
	}
	return false
}

// startTLS asks for STARTTLS and shakes hands over raw; the caller says
// EHLO again.
func (c *wire) startTLS(raw net.Conn, cfg *tls.Config) (*tls.Conn, error) {
	if !c.has("STARTTLS") {
		return nil, errors.New("smtp: server doesn't support STARTTLS")
	}
	if _, _, err := c.cmd(220, "STARTTLS"); err != nil {
		return nil, err
	}
	tc := tls.Client(raw, cfg)
	c.use(tc)
	c.deadline()
	if err := tc.Handshake(); err != nil {
		return nil, err
	}
	return tc, nil
}

// auth runs a SASL exchange.
func (c *wire) auth(a sasl.Client) error {
	enc := base64.StdEncoding
	mech, resp, err := a.Start()
	if err != nil {
		return err
	}
	line := "AUTH " + mech
	if resp != nil {
		line += " " + enc.EncodeToString(resp)
		if len(resp) == 0 {
			line += "="
		}
	}
	code, msg, err := c.cmd(0, line)
	for err == nil {
		switch code {
		case 235:
			return nil
		case 334:
			var challenge []byte
			if challenge, err = enc.DecodeString(msg); err == nil {
				resp, err = a.Next(challenge)
			}
			if err != nil {
				_, _, _ = c.cmd(0, "*") // abort the exchange
				return err
			}
			code, msg, err = c.cmd(0, enc.EncodeToString(resp))
		default:
			return replyError(code, msg)
		}
	}
	return err
}

// transaction sends m, returning a *SendError naming the step that failed.
// Before the end of the message, which makes the server take it, it calls
// m.final when set (see Message). After a refusal of MAIL or RCPT it has
// read every reply, so the connection stays usable, except when a
// pipelined DATA was answered 354 anyway: then it closes the connection
// rather than send the message.
func (c *wire) transaction(ctx context.Context, m Message) error {
	if strings.ContainsAny(m.From, "\r\n<>") {
		return stepError(StepMail, errors.New("smtp: bad sender address"))
	}
	if strings.ContainsAny(m.To, "\r\n<>") {
		return stepError(StepRcpt, errors.New("smtp: bad recipient address"))
	}
	c.deadline()
	switch {
	case !c.has("PIPELINING") || c.off.pipelining:
		if _, _, err := c.cmd(250, "MAIL FROM:<"+m.From+">"); err != nil {
			return stepError(StepMail, err)
		}
		if _, _, err := c.cmd(25, "RCPT TO:<"+m.To+">"); err != nil {
			return stepError(StepRcpt, err)
		}
		if _, _, err := c.cmd(354, "DATA"); err != nil {
			return stepError(StepData, err)
		}
		return c.data(ctx, m)
	case c.has("CHUNKING") && !c.off.chunking:
		return c.chunked(ctx, m)
	}

	c.w.WriteString("MAIL FROM:<" + m.From + ">\r\nRCPT TO:<" + m.To + ">\r\nDATA\r\n")
	if err := c.w.Flush(); err != nil {
		return stepError(StepMail, err)
	}
	if err := c.replies(false, awaited{StepMail, 250}, awaited{StepRcpt, 25}, awaited{StepData, 354}); err != nil {
		return err
	}
	return c.data(ctx, m)
}

// chunked sends m as one pipelined group: MAIL, RCPT, a BDAT chunk with
// the whole message (RFC 3030), which goes as it is, counted rather than
// dot-stuffed, so that a server that refused MAIL or RCPT reads past it;
// then, once m.final allows, an empty last chunk, BDAT 0 LAST, which makes
// the server take the message. The server works through everything else
// while m.final waits, and a connection that ends before the last chunk
// leaves it an unfinished message to drop. (A message sent as one LAST
// chunk with its last byte held back would not do: go-smtp's server takes
// a LAST chunk that the connection cuts short as if it were whole.) Until
// BDAT 0 LAST has gone out, a connection that fails does so at MAIL, as
// nothing the server could take reached it.
func (c *wire) chunked(ctx context.Context, m Message) error {
	c.w.WriteString("MAIL FROM:<" + m.From + ">\r\nRCPT TO:<" + m.To + ">\r\nBDAT " + strconv.Itoa(len(m.Data)) + "\r\n")
	c.w.Write(m.Data)
	if err := c.w.Flush(); err != nil {
		return stepError(StepMail, err)
	}
	if m.final != nil {
		if err := m.final(ctx); err != nil {
			return stepError(StepData, err) // the message stays unfinished
		}
		c.deadline()
	}
	c.w.WriteString("BDAT 0 LAST\r\n")
	if err := c.w.Flush(); err != nil {
		return stepError(StepMail, err)
	}
	return c.replies(true, awaited{StepMail, 250}, awaited{StepRcpt, 25}, awaited{StepData, 250}, awaited{StepData, 250})
}

// awaited is the reply a pipelined command expects (a code or a prefix).
type awaited struct {
	step   string
	expect int
}

// replies reads the replies to pipelined commands, in order and every
// one, even after a refusal: the server answers each command sent. It
// returns the first refusal as a *SendError naming its step, or the
// connection's failure; with delivered, the group ended the message, so a
// connection that fails before the last reply may have delivered it: that
// failure is the DATA step's, whichever reply it cut.
func (c *wire) replies(delivered bool, want ...awaited) error {
	var first error
	for _, r := range want {
		code, _, err := c.reply(r.expect)
		if first != nil && code == 354 {
			// Ready for a message we must not send: end the connection
			// rather than the message.
			_ = c.conn.Close()
		}
		if err == nil || first != nil {
			continue
		}
		var smtpErr *smtp.SMTPError
		if !errors.As(err, &smtpErr) { // the connection failed: no more replies to read
			if delivered {
				return stepError(StepData, err)
			}
			return stepError(r.step, err)
		}
		first = stepError(r.step, err)
	}
	return first
}

// data sends the message after a 354 and reads the final reply.
func (c *wire) data(ctx context.Context, m Message) error {
	c.deadline()
	dw := textproto.NewWriter(c.w).DotWriter()
	if _, err := dw.Write(m.Data); err != nil {
		return stepError(StepData, err)
	}
	if m.final != nil {
		// Nothing the server can take has gone out: the message waits in
		// the buffer (a long one but for its last 16 KiB), to go with its
		// final dot in one write and one TLS record.
		if err := m.final(ctx); err != nil {
			return stepError(StepData, err)
		}
		c.deadline()
	}
	if err := dw.Close(); err != nil { // writes the final "." line and flushes
		return stepError(StepData, err)
	}
	if _, _, err := c.reply(250); err != nil {
		return stepError(StepData, err)
	}
	return nil
}

// reset says RSET.
func (c *wire) reset() error {
	_, _, err := c.cmd(250, "RSET")
	return err
}

// quit says QUIT and, once the server has closed its side (it does so
// right after its 221: TLS's close_notify, then TCP's FIN), closes the
// connection; so a connection replaced by a new one is gone before the
// new one opens.
func (c *wire) quit() error {
	_, _, err := c.cmd(221, "QUIT")
	if err == nil {
		_, _ = c.r.R.Discard(1 << 20) // returns at EOF (or the deadline)
		if c.conn != c.raw {
			_, _ = io.Copy(io.Discard, c.raw) // after close_notify, the FIN
		}
	}
	return errors.Join(err, c.conn.Close())
}
