package catcher

import (
	"strings"
	"testing"
)

func TestParseMessage(t *testing.T) {
	tests := []struct {
		name        string
		raw         string
		subject     string
		from        string
		to          []string
		text        string // a substring the decoded text must hold
		html        string // a substring the decoded HTML must hold
		attachments int
	}{
		{
			name:    "plain, no MIME headers",
			raw:     "From: a@example.com\r\nTo: b@example.com\r\nSubject: Hi\r\n\r\nJust text.\r\n",
			subject: "Hi", from: "a@example.com", to: []string{"b@example.com"}, text: "Just text.",
		},
		{
			name: "RFC 2047 subject in base64 and Q, multipart/alternative in quoted-printable and base64",
			raw: "From: =?utf-8?q?=D0=9A=D0=B8=D0=BD=D0=BE=D1=82=D0=B5=D0=BA=D0=B0?= <no-reply@kinoteka.local>\r\n" +
				"To: =?utf-8?b?0JDQu9C40YHQsA==?= <alice@example.com>, bob@example.com\r\n" +
				"Subject: =?utf-8?b?0JLQsNGIINC+0LTQvdC+0YDQsNC30L7QstGL0Lkg0LrQvtC0?=\r\n" +
				"MIME-Version: 1.0\r\n" +
				"Content-Type: multipart/alternative; boundary=\"b1\"\r\n" +
				"\r\n" +
				"--b1\r\n" +
				"Content-Type: text/plain; charset=utf-8\r\n" +
				"Content-Transfer-Encoding: quoted-printable\r\n" +
				"\r\n" +
				"=D0=92=D0=B0=D1=88 =D0=BA=D0=BE=D0=B4: 123456, a long line that is soft=\r\n" +
				"-wrapped.\r\n" +
				"--b1\r\n" +
				"Content-Type: text/html; charset=utf-8\r\n" +
				"Content-Transfer-Encoding: base64\r\n" +
				"\r\n" +
				"PHA+0JLQsNGIINC60L7QtDogPGI+MTIzNDU2PC9iPjwvcD4=\r\n" +
				"--b1--\r\n",
			subject: "Ваш одноразовый код", from: "no-reply@kinoteka.local", to: []string{"alice@example.com", "bob@example.com"},
			text: "Ваш код: 123456, a long line that is soft-wrapped.", html: "<p>Ваш код: <b>123456</b></p>",
		},
		{
			name: "Q-encoded subject split over two encoded words, KOI8-R body",
			raw: "Subject: =?utf-8?q?Your_one-time?= =?utf-8?q?_code?=\r\n" +
				"Content-Type: text/plain; charset=koi8-r\r\n" +
				"Content-Transfer-Encoding: quoted-printable\r\n" +
				"\r\n" +
				"=EB=CF=C4\r\n",
			subject: "Your one-time code", text: "Код",
		},
		{
			name: "mixed with a nested alternative and an attachment",
			raw: "Subject: nested\r\n" +
				"Content-Type: multipart/mixed; boundary=outer\r\n" +
				"\r\n" +
				"--outer\r\n" +
				"Content-Type: multipart/alternative; boundary=inner\r\n" +
				"\r\n" +
				"--inner\r\n" +
				"Content-Type: text/plain\r\n" +
				"\r\n" +
				"inner text\r\n" +
				"--inner\r\n" +
				"Content-Type: text/html\r\n" +
				"\r\n" +
				"<i>inner html</i>\r\n" +
				"--inner--\r\n" +
				"--outer\r\n" +
				"Content-Type: text/plain; name=notes.txt\r\n" +
				"Content-Disposition: attachment; filename=notes.txt\r\n" +
				"\r\n" +
				"not the body\r\n" +
				"--outer--\r\n",
			subject: "nested", text: "inner text", html: "<i>inner html</i>", attachments: 1,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := parseMessage([]byte(tt.raw))
			if p.Subject != tt.subject {
				t.Errorf("Subject = %q, want %q", p.Subject, tt.subject)
			}
			if p.From.Address != tt.from {
				t.Errorf("From = %+v, want %q", p.From, tt.from)
			}
			var to []string
			for _, a := range p.To {
				to = append(to, a.Address)
			}
			if strings.Join(to, ",") != strings.Join(tt.to, ",") {
				t.Errorf("To = %v, want %v", to, tt.to)
			}
			if !strings.Contains(p.Text, tt.text) {
				t.Errorf("Text = %q, want it to contain %q", p.Text, tt.text)
			}
			if !strings.Contains(p.HTML, tt.html) || (tt.html == "" && p.HTML != "") {
				t.Errorf("HTML = %q, want %q", p.HTML, tt.html)
			}
			if p.Attachments != tt.attachments {
				t.Errorf("Attachments = %d, want %d", p.Attachments, tt.attachments)
			}
		})
	}
	t.Run("display names are decoded", func(t *testing.T) {
		p := parseMessage([]byte(tests[1].raw))
		if p.From.Name != "Кинотека" || p.To[0].Name != "Алиса" {
			t.Errorf("From = %+v, To = %+v", p.From, p.To)
		}
	})
}

func TestParseNeverFails(t *testing.T) {
	for _, raw := range []string{"", "garbage without headers", "Content-Type: multipart/mixed; boundary=x\r\n\r\n--x\r\nbroken", "\x00\xff\xfe"} {
		_ = parseMessage([]byte(raw)) // must not panic
	}
}

func TestSnippet(t *testing.T) {
	tests := []struct {
		text, html, want string
	}{
		{"  Hello,\r\n\r\n  world  ", "", "Hello, world"},
		{"", "<html><head><title>T</title><style>p{}</style></head><body><p>Code&nbsp;<b>42</b></p><script>x()</script></body></html>", "Code 42"}, // NBSP counts as space
		{strings.Repeat("я", 300), "", strings.Repeat("я", 100) + "..."},                                                                           // 200 bytes
		{"x" + strings.Repeat("я", 300), "", "x" + strings.Repeat("я", 99) + "..."},                                                                // never half a character
		{"the text", "<p>the html</p>", "the html"},                                                                                                // HTML first, as Mailpit
	}
	for _, tt := range tests {
		if got := snippet(tt.text, tt.html); got != tt.want {
			t.Errorf("snippet(%q, %q) = %q, want %q", tt.text, tt.html, got, tt.want)
		}
	}
}
