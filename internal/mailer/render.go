package mailer

import (
	"bytes"
	"context"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	htmltemplate "html/template"
	"io"
	"mime"
	"mime/quotedprintable"
	"net/mail"
	"strings"
	"sync"
	"text/template"
	"time"
	"unicode"
	"unicode/utf8"

	"kinoteka/internal/events"
)

//go:embed templates/*.tmpl
var templateFS embed.FS

// Locales with templates; the first is the default.
var locales = []string{"en", "ru"}

// Message is one rendered mail, ready for a Sender.
type Message struct {
	EventID string // the event it was rendered from (de-duplication key); not sent
	From    string // envelope sender, an addr-spec
	To      string // envelope recipient, an addr-spec
	Data    []byte // the whole RFC 5322 message with CRLF line ends

	// final, when set, is called by the SMTP sender before the end of
	// the message, which makes the server take it, goes out; an error
	// abandons the send. The consumer uses it to
	// let one mail of a partition at a time be taken and not yet logged.
	final func(ctx context.Context) error
}

// renderer turns code mail events into MIME messages.
//
// The templates run once per variant of a mail (locale, type, validity),
// with a placeholder for the code; the result is kept as a layout, encoded
// but for the lines that hold the code. Rendering a mail is then filling
// in the code and the headers: a mail costs a few microseconds instead of
// three template runs and a MIME writer.
type renderer struct {
	from       *mail.Address
	fromHeader string
	now        func() time.Time
	text       map[string]*template.Template
	html       map[string]*htmltemplate.Template

	mu      sync.Mutex
	layouts map[variant]*layout
}

// variant is what a mail's text depends on besides its code.
type variant struct {
	loc        string
	kind       string // the event type: a code mail or a notice
	validity   string
	validUntil string
}

// maxLayouts bounds the layout cache: validities and end times change by
// the minute, so old variants are dropped wholesale now and then.
const maxLayouts = 1024

func newRenderer(from string, now func() time.Time) (*renderer, error) {
	addr, err := parseFrom(from)
	if err != nil {
		return nil, err
	}
	r := &renderer{from: addr, fromHeader: addr.String(), now: now,
		text: map[string]*template.Template{}, html: map[string]*htmltemplate.Template{}, layouts: map[variant]*layout{}}
	for _, loc := range locales {
		t, err := template.New(loc).Option("missingkey=error").ParseFS(templateFS, "templates/"+loc+".txt.tmpl")
		if err != nil {
			return nil, err
		}
		h, err := htmltemplate.New(loc).Option("missingkey=error").ParseFS(templateFS, "templates/"+loc+".html.tmpl")
		if err != nil {
			return nil, err
		}
		r.text[loc], r.html[loc] = t, h
		// The layouts put the code where the templates put the
		// placeholder; check that they do so exactly as the templates
		// would with the code itself, escaping included.
		for _, kind := range events.CodeTypes {
			if err := r.checkLayout(variant{loc: loc, kind: kind}); err != nil {
				return nil, err
			}
		}
	}
	return r, nil
}

// mailData is what the templates see.
type mailData struct {
	Kind       string // the event type (events.Type…): which mail this is
	Reset      bool   // a password reset code rather than an address confirmation
	Code       string // the one-time code
	Subject    string
	Validity   string // "10 minutes" / "10 минут"; empty when the event has no expiry
	ValidUntil string // "2026-11-27 10:10 UTC"
}

// render builds the mail for d. An event that can never become a valid mail
// (bad address, odd code) gives an error wrapping events.ErrPoison.
func (r *renderer) render(d events.Decoded) (Message, error) {
	to, err := parseRecipient(d.Mail.Email)
	if err != nil {
		return Message{}, err
	}
	if events.HasCode(d.Type) {
		if err := checkCode(d.Mail.Code); err != nil {
			return Message{}, err
		}
	}
	now := r.now()
	v := variant{loc: locale(d.Mail.Locale), kind: d.Type}
	if exp := d.Mail.ExpiresAt; !exp.IsZero() {
		v.validUntil = exp.UTC().Format("2006-01-02 15:04 MST")
		// A code already expired when rendered (the consumer lagged) gets
		// only its end time: "valid for 0 minutes" would read oddly.
		if left := exp.Sub(now); left > 0 {
			v.validity = minutes(v.loc, int((left+time.Minute-1)/time.Minute))
		}
	}
	l, err := r.layout(v)
	if err != nil {
		return Message{}, err
	}

	buf := bytes.NewBuffer(make([]byte, 0, l.size+len(d.Mail.Code)*8+512))
	header := func(name, value string) {
		buf.WriteString(name)
		buf.WriteString(": ")
		buf.WriteString(value)
		buf.WriteString("\r\n")
	}
	header("From", r.fromHeader)
	header("To", to.String())
	header("Subject", l.subject)
	header("Date", now.Format(time.RFC1123Z))
	header("Message-ID", messageID(d.ID, r.from.Address))
	header("MIME-Version", "1.0")
	// Quoted-printable never holds "=_", so no body line can be taken
	// for the boundary; it comes from the event id, like the Message-ID,
	// rather than from a random source per mail.
	sum := sha256.Sum256([]byte("boundary:" + d.ID))
	boundary := "=_" + hex.EncodeToString(sum[:16])
	header("Content-Type", `multipart/alternative;`+"\r\n"+` boundary="`+boundary+`"`)
	header("Content-Language", v.loc)
	// RFC 3834: automatic mail, so auto-responders keep quiet.
	header("Auto-Submitted", "auto-generated")
	for _, part := range []struct {
		contentType string
		body        *encodedBody
		code        string
	}{{"text/plain; charset=utf-8", &l.text, d.Mail.Code}, {"text/html; charset=utf-8", &l.html, htmlEscaper.Replace(d.Mail.Code)}} {
		// The CRLF before "--" ends the headers, or the part before.
		buf.WriteString("\r\n--" + boundary + "\r\n")
		header("Content-Type", part.contentType)
		header("Content-Transfer-Encoding", "quoted-printable")
		buf.WriteString("\r\n")
		if err := part.body.writeTo(buf, part.code); err != nil {
			return Message{}, err
		}
	}
	buf.WriteString("\r\n--" + boundary + "--\r\n")
	return Message{EventID: d.ID, From: r.from.Address, To: to.Address, Data: buf.Bytes()}, nil
}

// htmlEscaper escapes as html/template does a value in HTML text, which is
// where the templates put the code (checkLayout makes sure).
var htmlEscaper = strings.NewReplacer("\x00", "\uFFFD", `"`, "&#34;", "&", "&amp;", "'", "&#39;", "+", "&#43;", "<", "&lt;", ">", "&gt;")

// codePlaceholder stands for the code when a layout is rendered: letters
// only, so that no escaping changes it.
const codePlaceholder = "KinotekaCodePlaceholderQx7"

// layout is a variant's mail rendered once: the encoded Subject and the
// two bodies, encoded but for the lines that hold the code.
type layout struct {
	subject    string
	text, html encodedBody
	size       int
}

// encodedBody is a body in quoted-printable, but for its lines holding the
// code: those stay raw, with the placeholder, and are encoded per mail.
// Quoted-printable starts afresh at every line break, so encoding the
// lines apart gives what encoding the body at once would.
type encodedBody struct {
	fixed [][]byte // encoded lines before codeLines[i], and after the last
	lines []string // the lines holding the code
}

func newEncodedBody(s string) (encodedBody, error) {
	var (
		b   encodedBody
		run strings.Builder
	)
	flush := func() error {
		var enc bytes.Buffer
		if err := encodeQP(&enc, run.String()); err != nil {
			return err
		}
		b.fixed = append(b.fixed, enc.Bytes())
		run.Reset()
		return nil
	}
	for _, line := range strings.SplitAfter(s, "\n") {
		if !strings.Contains(line, codePlaceholder) {
			run.WriteString(line)
			continue
		}
		if err := flush(); err != nil {
			return b, err
		}
		b.lines = append(b.lines, line)
	}
	return b, flush()
}

// writeTo writes the body with code (already escaped for the part).
func (b *encodedBody) writeTo(buf *bytes.Buffer, code string) error {
	for i, line := range b.lines {
		buf.Write(b.fixed[i])
		if err := encodeQP(buf, strings.ReplaceAll(line, codePlaceholder, code)); err != nil {
			return err
		}
	}
	buf.Write(b.fixed[len(b.fixed)-1])
	return nil
}

func (b *encodedBody) size() int {
	n := 0
	for _, f := range b.fixed {
		n += len(f)
	}
	for _, l := range b.lines {
		n += 3 * len(l)
	}
	return n
}

func encodeQP(buf *bytes.Buffer, s string) error {
	qp := quotedprintable.NewWriter(buf)
	if _, err := io.WriteString(qp, s); err != nil {
		return err
	}
	return qp.Close()
}

// layout returns v's layout, rendering it on first use.
func (r *renderer) layout(v variant) (*layout, error) {
	r.mu.Lock()
	l, ok := r.layouts[v]
	r.mu.Unlock()
	if ok {
		return l, nil
	}
	subject, text, html, err := r.execute(v, codePlaceholder)
	if err != nil {
		return nil, err
	}
	l = &layout{subject: encodeHeader(subject)}
	if l.text, err = newEncodedBody(text); err != nil {
		return nil, err
	}
	if l.html, err = newEncodedBody(html); err != nil {
		return nil, err
	}
	l.size = len(l.subject) + l.text.size() + l.html.size()
	r.mu.Lock()
	if len(r.layouts) >= maxLayouts {
		clear(r.layouts)
	}
	r.layouts[v] = l
	r.mu.Unlock()
	return l, nil
}

// execute runs v's templates with code: the subject, text and HTML.
func (r *renderer) execute(v variant, code string) (subject, text, html string, err error) {
	data := mailData{Kind: v.kind, Reset: v.kind == events.TypePasswordResetCode, Code: code, Validity: v.validity, ValidUntil: v.validUntil}
	var b bytes.Buffer
	if err := r.text[v.loc].ExecuteTemplate(&b, "subject", data); err != nil {
		return "", "", "", err
	}
	data.Subject = strings.TrimSpace(b.String())
	b.Reset()
	if err := r.text[v.loc].ExecuteTemplate(&b, "body", data); err != nil {
		return "", "", "", err
	}
	text = b.String()
	b.Reset()
	if err := r.html[v.loc].ExecuteTemplate(&b, "html", data); err != nil {
		return "", "", "", err
	}
	return data.Subject, text, b.String(), nil
}

// checkLayout compares v's templates run with a code full of characters
// HTML escapes against the placeholder replaced by that code.
func (r *renderer) checkLayout(v variant) error {
	const probe = `<b>"&'+`
	subject, text, html, err := r.execute(v, probe)
	if err != nil {
		return err
	}
	pSubject, pText, pHTML, err := r.execute(v, codePlaceholder)
	if err != nil {
		return err
	}
	if subject != pSubject || text != strings.ReplaceAll(pText, codePlaceholder, probe) ||
		html != strings.ReplaceAll(pHTML, codePlaceholder, htmlEscaper.Replace(probe)) || !strings.Contains(pHTML, codePlaceholder) {
		return fmt.Errorf("mail templates (%s, %s): the code must appear in the text and as HTML text, never in the subject or an attribute", v.loc, v.kind)
	}
	return nil
}

// parseRecipient accepts a bare address only: no display name, no
// comments, nothing that could smuggle a header line.
func parseRecipient(s string) (*mail.Address, error) {
	a, err := mail.ParseAddress(s)
	if err != nil || a.Name != "" || a.Address != strings.TrimSpace(s) || strings.ContainsAny(s, "\r\n") {
		return nil, fmt.Errorf("%w: recipient is not a plain email address", events.ErrPoison)
	}
	return a, nil
}

// checkCode accepts up to 64 printable characters. The code goes only into
// bodies (quoted-printable, escaped in HTML), so this guards the reader's
// eye rather than the format.
func checkCode(code string) error {
	if code == "" || utf8.RuneCountInString(code) > 64 || !utf8.ValidString(code) {
		return fmt.Errorf("%w: code is empty, too long or not UTF-8", events.ErrPoison)
	}
	for _, r := range code {
		if !unicode.IsPrint(r) {
			return fmt.Errorf("%w: code holds a control character", events.ErrPoison)
		}
	}
	return nil
}

// locale picks the template language from a tag such as "ru", "ru-RU" or "en_GB".
func locale(tag string) string {
	primary, _, _ := strings.Cut(strings.ToLower(strings.TrimSpace(tag)), "-")
	primary, _, _ = strings.Cut(primary, "_")
	for _, l := range locales {
		if l == primary {
			return l
		}
	}
	return locales[0]
}

// minutes says "n minutes" in the locale, with Russian's three plural forms
// (accusative, as in "действует 5 минут").
func minutes(loc string, n int) string {
	if loc == "ru" {
		form := "минут"
		switch {
		case n%10 == 1 && n%100 != 11:
			form = "минуту"
		case n%10 >= 2 && n%10 <= 4 && (n%100 < 12 || n%100 > 14):
			form = "минуты"
		}
		return fmt.Sprintf("%d %s", n, form)
	}
	if n == 1 {
		return "1 minute"
	}
	return fmt.Sprintf("%d minutes", n)
}

// messageID derives the Message-ID from the event id, so a re-sent event
// carries the same Message-ID and receiving systems can spot the duplicate.
// Hashing keeps any characters of the id out of the header.
func messageID(eventID, fromAddress string) string {
	sum := sha256.Sum256([]byte(eventID))
	domain := fromAddress[strings.LastIndexByte(fromAddress, '@')+1:]
	return "<" + hex.EncodeToString(sum[:16]) + "@" + domain + ">"
}

// encodeHeader RFC 2047-encodes a non-ASCII value as UTF-8 base64 words,
// folding between the words so that no line passes 78 characters.
func encodeHeader(v string) string {
	return strings.ReplaceAll(mime.BEncoding.Encode("utf-8", v), "?= =?", "?=\r\n =?")
}
