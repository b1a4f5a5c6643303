package catcher

import (
	"html/template"
	"io"
	"net/http"
	"net/mail"
	"strings"
)

// The inbox is server-rendered with html/template, which escapes every
// value. The HTML body of a mail is shown only inside a sandboxed iframe
// (no scripts, no same origin), and the page's CSP forbids scripts anyway.
//
// The pages aim at WCAG 2.1 AA (Lighthouse accessibility 100, see
// docs/benchmarks.md): a language, one <main>, headings in order, table
// headers with a scope, a title on the iframe, text colours of at least
// 4.5:1 and a visible focus ring. Unread mail is marked in bold and, for a
// screen reader, by a hidden word in its link.
var pages = template.Must(template.New("layout").Funcs(template.FuncMap{
	"addr": formatAddress,
	"addrs": func(list []mail.Address) string {
		parts := make([]string, len(list))
		for i, a := range list {
			parts[i] = formatAddress(a)
		}
		return strings.Join(parts, ", ")
	},
}).Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{block "title" .}}Kinoteka mail catcher{{end}}</title>
<style>
body{font:15px/1.4 system-ui,sans-serif;margin:0 auto;max-width:60rem;padding:1rem;color:#222;background:#fff}
table{border-collapse:collapse;width:100%}td,th{text-align:left;padding:.4rem;border-bottom:1px solid #ddd;vertical-align:top}
tr.unread td{font-weight:600}a{color:#05c}pre{white-space:pre-wrap;overflow-wrap:anywhere;background:#f6f6f6;padding:1rem}
a:focus-visible{outline:3px solid #1550b5;outline-offset:2px}
iframe{width:100%;min-height:24rem;border:1px solid #ddd}.muted{color:#595959}
.vh{position:absolute;width:1px;height:1px;overflow:hidden;clip-path:inset(50%);white-space:nowrap}
</style></head><body>
{{block "nav" .}}{{end}}
<main>
{{block "content" .}}{{end}}
</main>
</body></html>`))

var inboxPage = template.Must(template.Must(pages.Clone()).Parse(`
{{define "title"}}Inbox ({{len .}}) — Kinoteka mail catcher{{end}}
{{define "content"}}<h1>Inbox <span class="muted">({{len .}})</span></h1>
{{if not .}}<p class="muted">No mail yet. Send some to the SMTP port.</p>{{else}}
<table><caption class="vh">Messages, newest first</caption>
<thead><tr><th scope="col">From</th><th scope="col">To</th><th scope="col">Subject</th><th scope="col">Received</th></tr></thead>
<tbody>
{{range .}}<tr{{if not .Read}} class="unread"{{end}}><td>{{addr .From}}</td><td>{{addrs .To}}</td>
<td><a href="/view/{{.ID}}">{{if not .Read}}<span class="vh">Unread: </span>{{end}}{{if .Subject}}{{.Subject}}{{else}}(no subject){{end}}</a><br><span class="muted">{{.Snippet}}</span></td>
<td><time datetime="{{.Created.Format "2006-01-02T15:04:05Z07:00"}}">{{.Created.Format "2006-01-02 15:04:05"}}</time></td></tr>
{{end}}</tbody></table>{{end}}{{end}}`))

var viewPage = template.Must(template.Must(pages.Clone()).Parse(`
{{define "subject"}}{{if .Subject}}{{.Subject}}{{else}}(no subject){{end}}{{end}}
{{define "title"}}{{template "subject" .}} — Kinoteka mail catcher{{end}}
{{define "nav"}}<nav aria-label="Mail catcher"><p><a href="/"><span aria-hidden="true">&larr; </span>Inbox</a></p></nav>{{end}}
{{define "content"}}<h1>{{template "subject" .}}</h1>
<table><caption class="vh">Headers</caption>
<tr><th scope="row">From</th><td>{{addr .From}}</td></tr>
<tr><th scope="row">To</th><td>{{addrs .To}}</td></tr>
{{if .Cc}}<tr><th scope="row">Cc</th><td>{{addrs .Cc}}</td></tr>{{end}}
<tr><th scope="row">Received</th><td><time datetime="{{.Created.Format "2006-01-02T15:04:05Z07:00"}}">{{.Created.Format "2006-01-02 15:04:05 MST"}}</time></td></tr>
<tr><th scope="row">Message-ID</th><td>{{.MessageID}}</td></tr>
</table>
{{if .HTML}}<h2>HTML</h2><iframe title="The message's HTML part" sandbox="" referrerpolicy="no-referrer" srcdoc="{{.HTML}}"></iframe>{{end}}
{{if .Text}}<h2>Text</h2><pre>{{.Text}}</pre>{{end}}
<h2>Source</h2><pre>{{printf "%s" .Raw}}</pre>{{end}}`))

func formatAddress(a mail.Address) string {
	switch {
	case a.Name == "":
		return a.Address
	case a.Address == "":
		return a.Name
	default:
		return a.Name + " <" + a.Address + ">"
	}
}

func securePage(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; img-src data:; frame-src 'self'")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Referrer-Policy", "no-referrer")
	w.Header().Set("Cache-Control", "no-store")
}

func (c *Catcher) handleInbox(w http.ResponseWriter, r *http.Request) {
	msgs, _, _ := c.newest(nil)
	securePage(w)
	if err := inboxPage.Execute(w, msgs); err != nil {
		c.log.Error("render inbox", "err", err)
	}
}

func (c *Catcher) handleView(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	// As in Mailpit, /view/{id}.txt is the plain-text part alone, which is what
	// a shell needs to read a code: curl …/view/latest.txt.
	id, plain := strings.CutSuffix(id, ".txt")
	m, ok := c.open(id)
	if !ok {
		http.NotFound(w, r)
		return
	}
	if plain {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		_, _ = io.WriteString(w, m.Text)
		return
	}
	securePage(w)
	if err := viewPage.Execute(w, m); err != nil {
		c.log.Error("render message", "err", err)
	}
}
