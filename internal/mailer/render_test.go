package mailer

import (
	"bytes"
	"errors"
	"io"
	"mime"
	"mime/multipart"
	"net/mail"
	"strings"
	"testing"
	"time"

	"kinoteka/internal/events"
)

var renderNow = time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)

func testRenderer(t *testing.T) *renderer {
	t.Helper()
	r, err := newRenderer(DefaultConfig().SMTP.From, func() time.Time { return renderNow })
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// decoded is a rendered mail read back the way a mail client reads it.
type decoded struct {
	header  mail.Header
	subject string
	text    string
	html    string
}

func readMail(t *testing.T, data []byte) decoded {
	t.Helper()
	msg, err := mail.ReadMessage(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	d := decoded{header: msg.Header}
	if d.subject, err = new(mime.WordDecoder).DecodeHeader(msg.Header.Get("Subject")); err != nil {
		t.Fatal(err)
	}
	mediaType, params, err := mime.ParseMediaType(msg.Header.Get("Content-Type"))
	if err != nil || mediaType != "multipart/alternative" {
		t.Fatalf("Content-Type %q: %v", msg.Header.Get("Content-Type"), err)
	}
	mr := multipart.NewReader(msg.Body, params["boundary"])
	for {
		// NextPart undoes quoted-printable.
		p, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(p)
		switch p.Header.Get("Content-Type") {
		case "text/plain; charset=utf-8":
			d.text = string(body)
		case "text/html; charset=utf-8":
			d.html = string(body)
		default:
			t.Errorf("unexpected part %q", p.Header.Get("Content-Type"))
		}
	}
	return d
}

func codeMail(id, typ, email, code, locale string, expires time.Time) events.Decoded {
	return events.Decoded{ID: id, Type: typ, Mail: events.CodeMail{Email: email, Code: code, Locale: locale, ExpiresAt: expires}}
}

func TestRender(t *testing.T) {
	r := testRenderer(t)
	tests := []struct {
		typ, locale string
		subject     string
		intro       string // a phrase of the body in that language
		ignore      string // the "did not ask for it" line
		validity    string
	}{
		{events.TypeVerificationCode, "en", "Your one-time code", "confirm your email address", "If you did not ask for this code, ignore this email", "valid for 10 minutes"},
		{events.TypePasswordResetCode, "en", "Your password reset code", "reset your Kinoteka password", "If you did not ask for this code, ignore this email", "valid for 10 minutes"},
		{events.TypeVerificationCode, "ru", "Ваш одноразовый код", "подтвердить адрес электронной почты", "Если вы не запрашивали этот код", "действует 10 минут"},
		{events.TypePasswordResetCode, "ru-RU", "Код для сброса пароля", "сбросить пароль", "Если вы не запрашивали этот код", "действует 10 минут"},
	}
	for _, tt := range tests {
		t.Run(tt.typ+"/"+tt.locale, func(t *testing.T) {
			m, err := r.render(codeMail("ev-1", tt.typ, "alice@example.com", "482913", tt.locale, renderNow.Add(10*time.Minute)))
			if err != nil {
				t.Fatal(err)
			}
			if m.From != "no-reply@kinoteka.local" || m.To != "alice@example.com" || m.EventID != "ev-1" {
				t.Errorf("envelope = %q → %q (%q)", m.From, m.To, m.EventID)
			}
			d := readMail(t, m.Data)
			if d.subject != tt.subject {
				t.Errorf("subject = %q, want %q", d.subject, tt.subject)
			}
			for _, part := range []struct{ name, body string }{{"text", d.text}, {"html", d.html}} {
				for _, want := range []string{"482913", tt.intro, tt.ignore, tt.validity, "2026-11-27 10:10 UTC"} {
					if !strings.Contains(part.body, want) {
						t.Errorf("%s part lacks %q:\n%s", part.name, want, part.body)
					}
				}
			}
			if !strings.HasPrefix(d.html, "<!doctype html>") || !strings.Contains(d.html, "<title>"+tt.subject+"</title>") {
				t.Errorf("html part:\n%s", d.html)
			}
			h := d.header
			from, _ := h.AddressList("From")
			if h.Get("MIME-Version") != "1.0" || len(from) != 1 || *from[0] != (mail.Address{Name: "Kinoteka", Address: "no-reply@kinoteka.local"}) || h.Get("To") != "<alice@example.com>" ||
				h.Get("Auto-Submitted") != "auto-generated" {
				t.Errorf("headers = %v", h)
			}
			if date, err := h.Date(); err != nil || !date.Equal(renderNow) {
				t.Errorf("Date = %q (%v)", h.Get("Date"), err)
			}
			if raw := h.Get("Subject"); tt.locale != "en" && !strings.HasPrefix(raw, "=?utf-8?b?") {
				t.Errorf("raw Subject %q is not RFC 2047-encoded", raw)
			}
			checkLines(t, m.Data)
		})
	}
}

// checkLines asserts CRLF line ends, headers within 78 and body lines
// within 76 characters (quoted-printable), so no server re-wraps the mail.
func checkLines(t *testing.T, data []byte) {
	t.Helper()
	if bytes.Contains(bytes.ReplaceAll(data, []byte("\r\n"), nil), []byte("\n")) {
		t.Error("a bare LF in the message")
	}
	head, body, _ := strings.Cut(string(data), "\r\n\r\n")
	for _, l := range strings.Split(head, "\r\n") {
		if len(l) > 78 {
			t.Errorf("header line of %d characters: %q", len(l), l)
		}
	}
	for _, l := range strings.Split(body, "\r\n") {
		if len(l) > 76 {
			t.Errorf("body line of %d characters: %q", len(l), l)
		}
	}
}

func TestRenderEscapesHTML(t *testing.T) {
	m, err := testRenderer(t).render(codeMail("ev", events.TypeVerificationCode, "a@example.com", `<script>"&'`, "en", time.Time{}))
	if err != nil {
		t.Fatal(err)
	}
	d := readMail(t, m.Data)
	if strings.Contains(d.html, "<script>") || !strings.Contains(d.html, "&lt;script&gt;&#34;&amp;&#39;") {
		t.Errorf("code not escaped in HTML:\n%s", d.html)
	}
	if !strings.Contains(d.text, `<script>"&'`) {
		t.Errorf("text part should show the code as is:\n%s", d.text)
	}
	if strings.Contains(d.text, "valid") {
		t.Errorf("no expiry given, yet a validity line:\n%s", d.text)
	}
}

func TestRenderValidity(t *testing.T) {
	r := testRenderer(t)
	tests := []struct {
		locale  string
		expires time.Duration
		want    string
	}{
		{"en", time.Minute, "valid for 1 minute (until"},
		{"en", 90 * time.Second, "valid for 2 minutes"},
		{"ru", time.Minute, "действует 1 минуту"},
		{"ru", 3 * time.Minute, "действует 3 минуты"},
		{"ru", 11 * time.Minute, "действует 11 минут"},
		{"ru", 22 * time.Minute, "действует 22 минуты"},
		{"ru", 25 * time.Minute, "действует 25 минут"},
		{"en", -time.Minute, "was valid until 2026-11-27 09:59 UTC"},
		{"ru", -time.Minute, "действовал до 2026-11-27 09:59 UTC"},
	}
	for _, tt := range tests {
		m, err := r.render(codeMail("ev", events.TypeVerificationCode, "a@example.com", "1", tt.locale, renderNow.Add(tt.expires)))
		if err != nil {
			t.Fatal(err)
		}
		if d := readMail(t, m.Data); !strings.Contains(d.text, tt.want) || !strings.Contains(d.html, tt.want) {
			t.Errorf("%s %v: want %q in:\n%s", tt.locale, tt.expires, tt.want, d.text)
		}
	}
}

func TestRenderMessageID(t *testing.T) {
	a := testRenderer(t)
	b, err := newRenderer(DefaultConfig().SMTP.From, func() time.Time { return renderNow.Add(time.Hour) }) // a later re-send
	if err != nil {
		t.Fatal(err)
	}
	id := func(r *renderer, eventID string) string {
		m, err := r.render(codeMail(eventID, events.TypeVerificationCode, "a@example.com", "1", "", time.Time{}))
		if err != nil {
			t.Fatal(err)
		}
		return readMail(t, m.Data).header.Get("Message-ID")
	}
	first, again, other := id(a, "0193f6f2-aaaa"), id(b, "0193f6f2-aaaa"), id(a, "0193f6f2-bbbb")
	if first != again {
		t.Errorf("Message-ID changed between sends: %q vs %q", first, again)
	}
	if first == other {
		t.Errorf("two events share Message-ID %q", first)
	}
	legacy := id(a, "kafka:mail.requests/0/42\r\nBcc: x@evil.example")
	if !strings.HasSuffix(first, "@kinoteka.local>") || strings.ContainsAny(legacy, ":/ \r\n") {
		t.Errorf("Message-IDs %q, %q", first, legacy)
	}
}

func TestRenderRefusesBadInput(t *testing.T) {
	r := testRenderer(t)
	tests := []struct{ name, email, code string }{
		{"header injection in the address", "a@example.com\r\nBcc: victim@example.com", "1"},
		{"display name", "Alice <a@example.com>", "1"},
		{"two addresses", "a@example.com, b@example.com", "1"},
		{"not an address", "alice", "1"},
		{"control character in the code", "a@example.com", "12\x0034"},
		{"overlong code", "a@example.com", strings.Repeat("1", 65)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := r.render(codeMail("ev", events.TypeVerificationCode, tt.email, tt.code, "en", time.Time{}))
			if !errors.Is(err, events.ErrPoison) {
				t.Errorf("err = %v, want ErrPoison", err)
			}
		})
	}
}

func TestLocale(t *testing.T) {
	for tag, want := range map[string]string{"": "en", "en": "en", "ru": "ru", "RU": "ru", "ru-RU": "ru", "ru_RU": "ru", "de": "en", "english": "en"} {
		if got := locale(tag); got != want {
			t.Errorf("locale(%q) = %q, want %q", tag, got, want)
		}
	}
}
