package mailer

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	htmltemplate "html/template"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net/mail"
	"net/textproto"
	"strings"
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
}

// renderer turns code mail events into MIME messages.
type renderer struct {
	from *mail.Address
	now  func() time.Time
	text map[string]*template.Template
	html map[string]*htmltemplate.Template
}

func newRenderer(from string, now func() time.Time) (*renderer, error) {
	addr, err := parseFrom(from)
	if err != nil {
		return nil, err
	}
	r := &renderer{from: addr, now: now, text: map[string]*template.Template{}, html: map[string]*htmltemplate.Template{}}
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
	loc := locale(d.Mail.Locale)
	data := mailData{Kind: d.Type, Reset: d.Type == events.TypePasswordResetCode, Code: d.Mail.Code}
	if exp := d.Mail.ExpiresAt; !exp.IsZero() {
		data.ValidUntil = exp.UTC().Format("2006-01-02 15:04 MST")
		// A code already expired when rendered (the consumer lagged) gets
		// only its end time: "valid for 0 minutes" would read oddly.
		if left := exp.Sub(r.now()); left > 0 {
			data.Validity = minutes(loc, int((left+time.Minute-1)/time.Minute))
		}
	}

	var subject, text, html bytes.Buffer
	if err := r.text[loc].ExecuteTemplate(&subject, "subject", data); err != nil {
		return Message{}, err
	}
	data.Subject = strings.TrimSpace(subject.String())
	if err := r.text[loc].ExecuteTemplate(&text, "body", data); err != nil {
		return Message{}, err
	}
	if err := r.html[loc].ExecuteTemplate(&html, "html", data); err != nil {
		return Message{}, err
	}

	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	header := []struct{ name, value string }{
		{"From", r.from.String()},
		{"To", to.String()},
		{"Subject", encodeHeader(data.Subject)},
		{"Date", r.now().Format(time.RFC1123Z)},
		{"Message-ID", messageID(d.ID, r.from.Address)},
		{"MIME-Version", "1.0"},
		// Folded: with its 60-character boundary the line would pass 78.
		{"Content-Type", "multipart/alternative;\r\n " + strings.TrimPrefix(mime.FormatMediaType("x/x", map[string]string{"boundary": mw.Boundary()}), "x/x; ")},
		{"Content-Language", loc},
		// RFC 3834: automatic mail, so auto-responders keep quiet.
		{"Auto-Submitted", "auto-generated"},
	}
	for _, h := range header {
		fmt.Fprintf(&buf, "%s: %s\r\n", h.name, h.value)
	}
	buf.WriteString("\r\n")
	for _, part := range []struct {
		contentType string
		body        []byte
	}{{"text/plain; charset=utf-8", text.Bytes()}, {"text/html; charset=utf-8", html.Bytes()}} {
		w, err := mw.CreatePart(textproto.MIMEHeader{
			"Content-Type":              {part.contentType},
			"Content-Transfer-Encoding": {"quoted-printable"},
		})
		if err != nil {
			return Message{}, err
		}
		qp := quotedprintable.NewWriter(w)
		if _, err := qp.Write(part.body); err != nil {
			return Message{}, err
		}
		if err := qp.Close(); err != nil {
			return Message{}, err
		}
	}
	if err := mw.Close(); err != nil {
		return Message{}, err
	}
	return Message{EventID: d.ID, From: r.from.Address, To: to.Address, Data: buf.Bytes()}, nil
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
